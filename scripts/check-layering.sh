#!/usr/bin/env bash
# Check the module layering that STYLE.md promises, on direct #includes:
#   - only the storage module includes libpq-fe.h;
#   - only common/ (TLS contexts), the load generator and the agent
#     connection code include <openssl/ssl.h>;
#   - no file includes generated protobuf-c code (*.pb-c.c).
# Prints every violation as FILE:LINE: text and exits 1 if there is one.
# Paths are relative to the repository root; patterns are shell globs.
set -euo pipefail

# --- allow-lists ---------------------------------------------------------------
LIBPQ_ALLOWED=(collector/store.c 'collector/migrate*.c' collector/apidb.c)
OPENSSL_SSL_ALLOWED=('common/*' 'bench/loadgen/*' collector/conn.c collector/http.c)

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	while IFS= read -r f; do
		[ -f "$f" ] && files+=("$f")
	done < <(git ls-files --cached --others --exclude-standard -- '*.c' '*.h' | sort -u)
else
	while IFS= read -r f; do
		files+=("${f#./}")
	done < <(find . -path ./.git -prune -o -path './build*' -prune -o \
		-type f \( -name '*.c' -o -name '*.h' \) -print | sort)
fi

allowed() { # allowed FILE PATTERN...
	local f=$1 p
	shift
	for p in "$@"; do
		# shellcheck disable=SC2053 # $p is a glob on purpose
		[[ $f == $p ]] && return 0
	done
	return 1
}

violations=0
# check RULE REGEX ALLOWED...: report files outside ALLOWED that match REGEX
check() {
	local rule=$1 re=$2 f hits
	shift 2
	for f in "${files[@]}"; do
		case $f in build*/* | */build*/*) continue ;; esac
		allowed "$f" "$@" && continue
		hits=$(grep -nE "$re" "$f" || true)
		[ -n "$hits" ] || continue
		while IFS= read -r h; do
			echo "$f:$h"
			echo "    -> $rule"
			violations=$((violations + 1))
		done <<<"$hits"
	done
}

inc='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]'
check "only ${LIBPQ_ALLOWED[*]} may include libpq-fe.h" \
	"${inc}(postgresql/)?libpq-fe\.h[>\"]" "${LIBPQ_ALLOWED[@]}"
check "only ${OPENSSL_SSL_ALLOWED[*]} may include <openssl/ssl.h>" \
	"${inc}openssl/ssl\.h[>\"]" "${OPENSSL_SSL_ALLOWED[@]}"
check "generated protobuf-c sources are compiled, never included" \
	"${inc}[^>\"]*\.pb-c\.c[>\"]"

if [ $violations -gt 0 ]; then
	echo "check-layering: $violations violation(s) in ${#files[@]} files"
	exit 1
fi
echo "check-layering: ${#files[@]} files, no violations"
