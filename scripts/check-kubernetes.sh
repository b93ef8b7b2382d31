#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Static check of the Kubernetes manifests (deploy/kubernetes/), offline:
#   1. every YAML document parses (a repeated key is an error) and validates
#      against the OpenAPI schema of Kubernetes v1.34.1, vendored in
#      tests/kubernetes/schema/ (python3-jsonschema, python3-yaml: Debian):
#      unknown fields, wrong types, missing required fields, unknown kinds
#      fail, as do a selector that misses its pods, a volumeMount of no
#      volume, a probe of an undeclared port; kustomization.yaml lists every
#      manifest and names images that the manifests use;
#   2. a self-test: copies of the manifests, each with one mistake put in
#      (a wrong field name, a wrong type, a missing required field, ...),
#      must each be refused, and the unmodified copies accepted;
#   3. the init container's script passes sh -n;
#   4. if a kubectl is installed, `kubectl kustomize` renders the whole and
#      the rendered objects validate too (Debian's kubernetes-client cannot be
#      installed beside other kubectl packages, so this step is optional).
# Run by scripts/test.sh with the other static checks.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s%N)
py=/usr/bin/python3
dir=deploy/kubernetes
validator=tests/kubernetes/k8s_validate.py
schema_dir=tests/kubernetes/schema/v1.34.1

fail() { echo "check-kubernetes: $*" >&2; exit 1; }

"$py" -c 'import yaml, jsonschema' 2>/dev/null ||
  fail "needs python3-yaml and python3-jsonschema (bash scripts/deps.sh)"
[ -f "$schema_dir/definitions.json" ] || fail "$schema_dir/definitions.json is missing"
[ -f "$schema_dir/LICENSE" ] || fail "the vendored schema's LICENSE is missing"

# 1. the manifests as they are
mapfile -t files < <(find "$dir" -maxdepth 1 \( -name '*.yaml' -o -name '*.yml' \) | sort)
[ ${#files[@]} -gt 0 ] || fail "no manifests in $dir"
PYTHONDONTWRITEBYTECODE=1 "$py" "$validator" "${files[@]}"

# 2. mistakes must be caught
PYTHONDONTWRITEBYTECODE=1 "$py" "$validator" --self-test "$dir"

# 3. the enrollment script
for s in "$dir"/*.sh; do
  sh -n "$s" || fail "$s: sh -n failed"
done

# 4. the rendered whole, when a kustomize is at hand
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  out=$(mktemp --suffix=.yaml)
  trap 'rm -f "$out" "$out.log"' EXIT
  kubectl kustomize "$dir" >"$out" || fail "kubectl kustomize $dir failed"
  if ! PYTHONDONTWRITEBYTECODE=1 "$py" "$validator" "$out" >"$out.log"; then
    sed 's/^/rendered: /' "$out.log"
    fail "the rendered manifests do not validate"
  fi
  sed 's/^/rendered: /' "$out.log"
else
  echo "check-kubernetes: no kubectl here: the kustomize rendering is not checked"
fi

ms=$((($(date +%s%N) - start) / 1000000))
echo "check-kubernetes: ok (${ms} ms)"
