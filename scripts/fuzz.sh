#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build the libFuzzer targets with clang (in build-fuzz/) and run each for
# FUZZ_SECONDS (default 20) from its seed corpus. Exits non-zero if a
# target crashes, leaks or trips a sanitizer; the input that did it is
# left in build-fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh                 every target tests/fuzz declares
#   scripts/fuzz.sh fuzz_rows       only some
#   FUZZ_SECONDS=300 scripts/fuzz.sh
#   FUZZ_JOBS=1 scripts/fuzz.sh     one target at a time (default: one per core)
#
# Needs Debian's clang and libclang-rt-14-dev (the libFuzzer runtime).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-20}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	# every target tests/fuzz declares (vigil_fuzz(NAME ...)): a new one
	# cannot be left out of CI
	mapfile -t targets < <(sed -n 's/^vigil_fuzz(\(fuzz_[a-z0-9_]*\).*/\1/p' \
		"$root"/tests/fuzz/CMakeLists.txt "$root"/tests/fuzz/*.cmake | sort -u)
fi

mkdir -p "$build"
cmake -S "$root" -B "$build" -DVIGIL_FUZZ=ON -DCMAKE_C_COMPILER=clang \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1 || {
	cat "$build/configure.log"
	exit 1
}
cmake --build "$build" --target "${targets[@]}" -j "$(nproc)"

# Targets run FUZZ_JOBS at a time (default: one per core; each is one
# single-threaded process, so each still gets a core for its FUZZ_SECONDS).
fuzz_jobs=${FUZZ_JOBS:-$(nproc)}
run_target() { # TARGET: fuzz it; its exit status goes to $build/TARGET.rc
	local t=$1 rc=0
	local seeds=$root/tests/fuzz/corpus/$t
	local work=$build/corpus/$t # grows while fuzzing; the seeds stay as they are
	local artifacts=$build/artifacts/$t
	mkdir -p "$work" "$artifacts"
	# A fixed seed makes a run repeatable: a shorter run on a slower machine
	# tries a prefix of what a longer one tried (FUZZ_SEED=0 picks one).
	"$build/tests/fuzz/$t" -seed="${FUZZ_SEED:-1}" -max_total_time="$seconds" \
		-max_len=65536 \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$artifacts/" "$work" "$seeds" >"$build/$t.log" 2>&1 || rc=$?
	echo "$rc" >"$build/$t.rc"
}

for t in "${targets[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$fuzz_jobs" ]; do
		wait -n || true
	done
	echo "== $t: ${seconds}s"
	rm -f "$build/$t.rc"
	run_target "$t" &
done
wait

failed=()
for t in "${targets[@]}"; do
	if [ "$(cat "$build/$t.rc" 2>/dev/null)" != 0 ]; then
		tail -n 60 "$build/$t.log"
		echo "== $t: FAILED (log $build/$t.log, inputs in $build/artifacts/$t/)"
		failed+=("$t")
	else
		grep -E '^stat::number_of_executed_runs|^#[0-9]+.*DONE' "$build/$t.log" || true
		echo "== $t: ok"
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}"
	exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s without a crash"
