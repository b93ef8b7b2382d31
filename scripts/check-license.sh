#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fails when a source file lacks the SPDX line in its first three lines.
# Vendored files (web/vendor/, the Kubernetes schema in
# tests/kubernetes/schema/) keep their own licenses; JSON and fuzz corpora
# cannot carry comments.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=0
n=0
while IFS= read -r f; do
  case "$f" in
  web/vendor/* | tests/kubernetes/schema/* | tests/fuzz/corpus/* | *.json | *.md | LICENSE) continue ;;
  esac
  n=$((n + 1))
  if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0'; then
    echo "check-license: $f: no SPDX-License-Identifier line at the top" >&2
    missing=$((missing + 1))
  fi
done < <(git ls-files)
[ -f LICENSE ] || { echo "check-license: LICENSE is missing" >&2; exit 1; }
[ -f web/vendor/uplot/LICENSE ] || { echo "check-license: uPlot's LICENSE is missing" >&2; exit 1; }
for d in tests/kubernetes/schema/*/; do
  [ -f "$d/LICENSE" ] || { echo "check-license: $d has no LICENSE" >&2; exit 1; }
done
[ "$missing" = 0 ] || exit 1
echo "check-license: $n files carry the Apache-2.0 SPDX line"
