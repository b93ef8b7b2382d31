#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite, as CI runs it (Quick start, command 2):
#   1. install missing Debian packages (scripts/deps.sh)
#   2. static checks: formatting, module layering, size, license lines,
#      the Kubernetes manifests against the pinned Kubernetes schema
#   3. normal build + every test (unit, integration against a real
#      PostgreSQL and the real binaries)
#   4. AddressSanitizer + UndefinedBehaviorSanitizer build + every test
#   5. ThreadSanitizer build of the collector + the tests of threads that
#      share what a reload replaces (TSAN_TESTS)
#   6. libFuzzer targets, briefly (FUZZ_SECONDS each, default 15)
# and, right after 3, the Debian packages: built, linted, installed,
# upgraded and purged on this machine (scripts/test-packages.sh), then the
# container images made from them, run with podman (tests/integration/
# test_images.py, which calls scripts/build-images.sh).
# Build trees: build/, build-asan/, build-tsan/, build-pkg/ and build-img/
# (override with VIGIL_BUILD_ROOT). Set VIGIL_SKIP_ASAN=1, VIGIL_SKIP_TSAN=1,
# VIGIL_SKIP_FUZZ=1, VIGIL_SKIP_PACKAGES=1 or VIGIL_SKIP_IMAGES=1 to leave a
# stage out locally.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
root=${VIGIL_BUILD_ROOT:-$here}
jobs=$(nproc)

stage() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

stage "dependencies"
bash scripts/deps.sh

stage "static checks"
bash scripts/check-format.sh
bash scripts/check-layering.sh
bash scripts/check-size.sh
bash scripts/check-license.sh
bash scripts/check-kubernetes.sh

run_suite() { # NAME BUILD_DIR CMAKE_ARGS...
  local name=$1 dir=$2
  shift 2
  stage "$name: build"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  stage "$name: tests"
  (cd "$dir" && ctest --output-on-failure --timeout 1500)
}

run_suite "normal" "$root/build"
if [ "${VIGIL_SKIP_PACKAGES:-0}" != 1 ]; then
  stage "packages"
  bash scripts/test-packages.sh
fi
if [ "${VIGIL_SKIP_IMAGES:-0}" != 1 ]; then
  # the container images from build-pkg's packages (scripts/build-images.sh,
  # called by the test; base cached in build-img/), run with podman
  stage "images"
  VIGIL_IMAGES_TEST=1 VIGIL_BUILD_DIR="$root/build" VIGIL_SOURCE_DIR="$here" \
    PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 -m pytest -q -x -p no:cacheprovider tests/integration/test_images.py
fi
if [ "${VIGIL_SKIP_ASAN:-0}" != 1 ]; then
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    run_suite "asan+ubsan" "$root/build-asan" -DVIGIL_SANITIZE=ON
fi
if [ "${VIGIL_SKIP_TSAN:-0}" != 1 ]; then
  stage "tsan: build"
  cmake -S . -B "$root/build-tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_TSAN=ON >/dev/null
  cmake --build "$root/build-tsan" -j "$jobs" --target vigil-collector
  stage "tsan: tests"
  TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1} \
  VIGIL_BUILD_DIR="$root/build-tsan" VIGIL_SOURCE_DIR="$here" PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 -m pytest -q -x -p no:cacheprovider tests/integration/test_http_reload.py
fi
if [ "${VIGIL_SKIP_FUZZ:-0}" != 1 ] && [ -f scripts/fuzz.sh ]; then
  stage "fuzz"
  FUZZ_SECONDS=${FUZZ_SECONDS:-15} bash scripts/fuzz.sh
fi
stage "all tests passed"
