#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Cut the Kubernetes OpenAPI (swagger 2.0) definitions that Vigil's
manifests need out of a full api/openapi-spec/swagger.json.

    vendor_schema.py SWAGGER.json VERSION SOURCE > schema/VERSION/definitions.json

Keeps the definitions reachable from the kinds in KINDS, unchanged except
that their human-readable "description" texts are dropped (they are 80 % of
the bytes and the validator never reads them). Run again with the spec of a
newer Kubernetes release to move the pin (see tests/kubernetes/schema/README)."""
import json
import sys

# (group, version, kind) of every kind the manifests may use.
KINDS = [
    ("", "v1", "Namespace"),
    ("", "v1", "ServiceAccount"),
    ("", "v1", "ConfigMap"),
    ("", "v1", "Secret"),
    ("", "v1", "Service"),
    ("apps", "v1", "DaemonSet"),
    ("apps", "v1", "Deployment"),
    ("policy", "v1", "PodDisruptionBudget"),
    ("networking.k8s.io", "v1", "NetworkPolicy"),
]


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items()
                if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def refs(node, out):
    if isinstance(node, dict):
        r = node.get("$ref")
        if isinstance(r, str) and r.startswith("#/definitions/"):
            out.add(r[len("#/definitions/"):])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: vendor_schema.py SWAGGER.json VERSION SOURCE")
    spec = json.load(open(sys.argv[1], encoding="utf-8"))
    defs = spec["definitions"]
    roots = []
    for want in KINDS:
        found = [name for name, d in defs.items()
                 for g in d.get("x-kubernetes-group-version-kind", [])
                 if (g["group"], g["version"], g["kind"]) == want]
        if len(found) != 1:
            sys.exit("vendor_schema: %s/%s %s: %d definitions" % (*want, len(found)))
        roots.append(found[0])
    keep, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        more = set()
        refs(defs[name], more)
        todo.extend(sorted(more - keep))
    out = {
        "kubernetes_version": sys.argv[2],
        "source": sys.argv[3] + "; definitions reachable from the kinds below, descriptions removed",
        "kinds": ["%s %s" % ("/".join(filter(None, k[:2])), k[2]) for k in KINDS],
        "definitions": {n: strip(defs[n]) for n in sorted(keep)},
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
