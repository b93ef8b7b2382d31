#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The size budget (HACKING.md): a .c file over FILE_MAX lines or a function
# over FUNC_MAX lines needs an entry in scripts/size-exceptions.txt, which
# also caps it at the size written there, so a listed file cannot keep
# growing. Functions are counted from the line of their opening brace in
# column 0 to their closing brace in column 0 (the project's format).
# Prints every file or function over its budget and exits 1 if there is one.
set -euo pipefail

FILE_MAX=1000
FUNC_MAX=100

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
exceptions=scripts/size-exceptions.txt

declare -A LIMIT=()
n=0
while IFS= read -r line; do
	n=$((n + 1))
	line=${line%%#*}
	[ -n "${line//[[:space:]]/}" ] || continue
	read -r what max _ <<<"$line"
	if ! [[ $max =~ ^[0-9]+$ ]]; then
		echo "$exceptions:$n: expected 'PATH[:FUNCTION] MAX-LINES  # reason'"
		exit 1
	fi
	LIMIT[$what]=$max
done <"$exceptions"

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.c' | sort -u)
else
	mapfile -t files < <(find . -path ./.git -prune -o -path './build*' -prune -o \
		-type f -name '*.c' -print | sed 's|^\./||' | sort)
fi

over=0
declare -A USED=()
budget() { # budget NAME LINES DEFAULT-MAX
	local name=$1 lines=$2 max=$3
	if [ -n "${LIMIT[$name]:-}" ]; then
		USED[$name]=1
		max=${LIMIT[$name]}
	fi
	if [ "$lines" -gt "$max" ]; then
		echo "$name: $lines lines, budget $max"
		over=$((over + 1))
	fi
}

for f in "${files[@]}"; do
	[ -f "$f" ] || continue
	budget "$f" "$(wc -l <"$f")" $FILE_MAX
	while read -r fn lines; do
		budget "$f:$fn" "$lines" $FUNC_MAX
	done < <(awk '
		/^[A-Za-z_].*\(/ && !/;[[:space:]]*$/ { cand = $0 }
		/^\{/ { start = NR; head = cand }
		/^\}/ && start {
			if (match(head, /[A-Za-z_][A-Za-z_0-9]*[[:space:]]*\(/)) {
				name = substr(head, RSTART, RLENGTH - 1)
				sub(/[[:space:]]+$/, "", name)
				print name, NR - start + 1
			}
			start = 0
		}' "$f")
done

for what in "${!LIMIT[@]}"; do
	[ -n "${USED[$what]:-}" ] || echo "$exceptions: $what is listed but no longer exists (remove it)"
done | sort

if [ $over -gt 0 ]; then
	echo "check-size: $over over budget (split it, or list it in $exceptions with a reason)"
	exit 1
fi
echo "check-size: ${#files[@]} files within budget (${#LIMIT[@]} listed exceptions)"
