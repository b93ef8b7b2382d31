#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Check that the project's own C sources follow .clang-format.
#
#   scripts/check-format.sh            check every .c/.h file; list the ones
#                                      clang-format would change; exit 1 if any
#   scripts/check-format.sh FILE...    check only these files
#   scripts/check-format.sh --fix [FILE...]
#                                      rewrite the files that are not formatted
#
# Files: those git knows (tracked, or new and not ignored), so build
# directories and the generated protobuf-c code in them are never looked
# at. CLANG_FORMAT names another clang-format binary.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

fix=0
if [ "${1:-}" = --fix ]; then
	fix=1
	shift
fi

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
	for c in clang-format clang-format-14; do
		if command -v "$c" >/dev/null; then
			cf=$c
			break
		fi
	done
fi
if [ -z "$cf" ]; then
	echo "check-format: clang-format not found (Debian package clang-format)" >&2
	exit 2
fi

# Generated or vendored code that is not ours to format.
is_excluded() {
	case $1 in
	*.pb-c.c | *.pb-c.h | build*/* | */build*/*) return 0 ;;
	esac
	return 1
}

files=()
if [ $# -gt 0 ]; then
	files=("$@")
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	while IFS= read -r f; do
		[ -f "$f" ] && files+=("$f")
	done < <(git ls-files --cached --others --exclude-standard -- '*.c' '*.h' | sort -u)
else
	while IFS= read -r f; do
		files+=("${f#./}")
	done < <(find . -path ./.git -prune -o -path './build*' -prune -o \
		-type f \( -name '*.c' -o -name '*.h' \) -print | sort)
fi

bad=()
checked=0
for f in "${files[@]}"; do
	is_excluded "$f" && continue
	checked=$((checked + 1))
	if ! "$cf" --dry-run -Werror "$f" >/dev/null 2>&1; then
		bad+=("$f")
	fi
done

if [ ${#bad[@]} -eq 0 ]; then
	echo "check-format: $checked files formatted ($("$cf" --version | head -n1))"
	exit 0
fi
if [ $fix = 1 ]; then
	"$cf" -i "${bad[@]}"
	printf 'check-format: reformatted %s\n' "${bad[@]}"
	exit 0
fi
echo "check-format: ${#bad[@]} of $checked files are not formatted (see .clang-format):"
printf '  %s\n' "${bad[@]}"
echo "check-format: show the changes with '$cf FILE | diff -u FILE -'," \
	"apply them with 'scripts/check-format.sh --fix FILE...'"
exit 1
