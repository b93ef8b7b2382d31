#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Check the module layering that HACKING.md states, on direct #includes.
#
# 1. Allow-lists. Every folder of the daemons' sources (proto, common,
#    agent, collector and each collector subsystem) has a .may_include file:
#    one repository path or glob per line of what its files may include with
#    #include "..." (# comments). A file NAME.c next to a NAME.may_include is
#    a unit of its own with that list (collector/main.c: the binary, which
#    may include every subsystem's face). Includes are resolved the way the
#    compiler does: the including file's folder first, then the collector's
#    include root (collector/ for collector/**), then common/ and proto/;
#    "vigil/v1/X.pb-c.h" is the generated code of proto/vigil/v1/X.proto.
#    In a collector subsystem, even its own headers are named with the
#    folder ("ingest/conn.h").
# 2. No cycles: the units, with an edge for each include of a header from one
#    unit into another, form no loop (checked with tsort). A subsystem's
#    settings rows (settings.inc, included by the one settings table) are
#    not an edge.
# 3. Library rules: only the storage modules include libpq-fe.h; only
#    common/ (TLS contexts), the load generator and the two connection
#    modules include <openssl/ssl.h>; generated protobuf-c sources are
#    compiled, never included.
# Prints every violation as FILE:LINE: text and exits 1 if there is one.
set -euo pipefail

LIBPQ_ALLOWED=(collector/ingest/store.c collector/http/apidb.c collector/alert/outbox.c
	collector/vuln/advdb.c collector/ingest/argvindex.c collector/enroll/revocations.c
	collector/enroll/revoke_cmd.c collector/enroll/enrolldb.c)
OPENSSL_SSL_ALLOWED=('common/*' 'bench/loadgen/*' collector/ingest/conn.c collector/http/http.c
	collector/alert/transport.c)
# Folders whose files must be covered by an allow-list (tests and benchmarks
# may include what they exercise).
CHECKED_ROOTS=(proto common agent collector)

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	while IFS= read -r f; do
		[ -f "$f" ] && files+=("$f")
	done < <(git ls-files --cached --others --exclude-standard -- '*.c' '*.h' '*.inc' | sort -u)
else
	while IFS= read -r f; do
		files+=("${f#./}")
	done < <(find . -path ./.git -prune -o -path './build*' -prune -o \
		-type f \( -name '*.c' -o -name '*.h' -o -name '*.inc' \) -print | sort)
fi

violations=0
report() { # report FILE:LINE TEXT RULE
	echo "$1: $2"
	echo "    -> $3"
	violations=$((violations + 1))
}

matches() { # matches PATH PATTERN...
	local f=$1 p
	shift
	for p in "$@"; do
		# shellcheck disable=SC2053 # $p is a glob on purpose
		[[ $f == $p ]] && return 0
	done
	return 1
}

# --- 1. allow-lists ------------------------------------------------------------
declare -A LIST_OF=() # unit -> allow-list file
unit_of() {           # unit_of FILE: prints the unit and sets UNIT_LIST
	local f=$1 dir base
	dir=$(dirname "$f")
	base=$(basename "$f")
	base=${base%.*}
	if [ -f "$dir/$base.may_include" ]; then
		UNIT="$dir/$base"
		UNIT_LIST="$dir/$base.may_include"
	else
		UNIT=$dir
		UNIT_LIST="$dir/.may_include"
	fi
}

resolve() { # resolve FILE INCLUDE: sets RESOLVED (a repository path) or ""
	local f=$1 inc=$2 dir top d
	dir=$(dirname "$f")
	top=${f%%/*}
	RESOLVED=""
	case $inc in
	vigil/v1/*.pb-c.h)
		[ -f "proto/${inc%.pb-c.h}.proto" ] && RESOLVED="proto/$inc"
		return
		;;
	esac
	for d in "$dir" "$top" common proto; do
		if [ -f "$d/$inc" ]; then
			RESOLVED=$(realpath -m --relative-to=. "$d/$inc")
			return
		fi
	done
}

declare -A EDGES=()
inc_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)"'
for f in "${files[@]}"; do
	matches "$f" "${CHECKED_ROOTS[@]/%//*}" || continue
	unit_of "$f"
	if [ ! -f "$UNIT_LIST" ]; then
		report "$f:1" "no allow-list" "add $UNIT_LIST (see HACKING.md)"
		continue
	fi
	mapfile -t allowed < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$UNIT_LIST")
	n=0
	while IFS= read -r line; do
		n=$((n + 1))
		[[ $line =~ $inc_re ]] || continue
		inc=${BASH_REMATCH[1]}
		resolve "$f" "$inc"
		if [ -z "$RESOLVED" ]; then
			report "$f:$n" "$line" "cannot resolve \"$inc\" (name it from its folder)"
			continue
		fi
		# In a collector subsystem, includes name the folder.
		if [[ $f == collector/*/* && $inc != */* && $RESOLVED == "$(dirname "$f")/$inc" ]]; then
			report "$f:$n" "$line" "name the folder: \"$(basename "$(dirname "$f")")/$inc\""
			continue
		fi
		[ "$RESOLVED" = "$f" ] && continue
		if ! matches "$RESOLVED" "${allowed[@]}"; then
			report "$f:$n" "$line" "$RESOLVED is not in $UNIT_LIST"
			continue
		fi
		# A subsystem's settings rows (*.inc) are data that the one table
		# collects, not a dependency on the subsystem.
		[[ $RESOLVED == *.inc ]] && continue
		to_unit=$(dirname "$RESOLVED")
		[ "$to_unit" = "$UNIT" ] || EDGES["$UNIT $to_unit"]=1
	done <"$f"
done

# --- 2. no cycles between units ------------------------------------------------
if [ ${#EDGES[@]} -gt 0 ]; then
	if ! loop=$(printf '%s\n' "${!EDGES[@]}" | tsort 2>&1 >/dev/null) || [ -n "$loop" ]; then
		report "layering" "cycle between folders" "$(echo "$loop" | tr '\n' ' ')"
	fi
fi

# --- 3. library rules ------------------------------------------------------------
check() { # check RULE REGEX ALLOWED...: report files outside ALLOWED that match REGEX
	local rule=$1 re=$2 f hits
	shift 2
	for f in "${files[@]}"; do
		matches "$f" "$@" && continue
		hits=$(grep -nE "$re" "$f" || true)
		[ -n "$hits" ] || continue
		while IFS= read -r h; do
			report "$f:${h%%:*}" "${h#*:}" "$rule"
		done <<<"$hits"
	done
}
sys='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]'
check "only ${LIBPQ_ALLOWED[*]} may include libpq-fe.h" \
	"${sys}(postgresql/)?libpq-fe\.h[>\"]" "${LIBPQ_ALLOWED[@]}"
check "only ${OPENSSL_SSL_ALLOWED[*]} may include <openssl/ssl.h>" \
	"${sys}openssl/ssl\.h[>\"]" "${OPENSSL_SSL_ALLOWED[@]}"
check "generated protobuf-c sources are compiled, never included" \
	"${sys}[^>\"]*\.pb-c\.c[>\"]"

if [ $violations -gt 0 ]; then
	echo "check-layering: $violations violation(s) in ${#files[@]} files"
	exit 1
fi
echo "check-layering: ${#files[@]} files, ${#EDGES[@]} edges between folders, no violations"
