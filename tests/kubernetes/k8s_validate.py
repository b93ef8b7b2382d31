#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Validate Kubernetes manifests offline against the OpenAPI schema of a
pinned Kubernetes release (tests/kubernetes/schema/VERSION/definitions.json,
vendored from the Kubernetes project), with python3-jsonschema and
python3-yaml from Debian.

    k8s_validate.py [--schema FILE] FILE.yaml...     validate; exit 1 on any error
    k8s_validate.py --self-test DIR                  prove that mistakes are caught

Strict, like the API server's strict field validation: an unknown field, a
wrong type or a missing required field is an error. The swagger schema is
made strict here (it is kept as Kubernetes publishes it): every object that
lists its properties refuses others, IntOrString takes an integer or a
string, and a Quantity a number or a string of Kubernetes' quantity syntax.
On top of the schema, a few checks that the API server makes and the schema
cannot express: metadata.name is set, a workload's selector matches its pod
template's labels, every volumeMount names a volume of the pod, container
names are unique, probes name ports the container declares, and YAML keys
are not repeated (a repeated key silently replaces the first).

A kustomization.yaml among the files is checked for its own shape: known
fields, resources and generator files that exist, and images that the
resources use."""
import copy
import json
import os
import re
import sys
import tempfile

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMA = os.path.join(HERE, "schema", "v1.34.1", "definitions.json")

# Kubernetes' resource.Quantity syntax (k8s.io/apimachinery/pkg/api/resource):
# a signed decimal number, then a binary (Ki..Ei) or decimal (n, u, m, k, M,
# G, T, P, E) suffix, or an exponent.
QUANTITY = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"


class Loader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping."""


def _mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "key %r repeated" % (key,), key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def strict(node):
    """The swagger definitions as a strict JSON schema."""
    if isinstance(node, list):
        return [strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if "properties" in out and "additionalProperties" not in out \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


class Schema:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        self.version = data.get("kubernetes_version", "?")
        defs = {name: strict(d) for name, d in data["definitions"].items()}
        defs[INT_OR_STRING] = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
        defs[QUANTITY_DEF] = {"anyOf": [{"type": "number"},
                                        {"type": "string", "pattern": QUANTITY}]}
        self.kinds = {}
        for name, d in data["definitions"].items():
            for g in d.get("x-kubernetes-group-version-kind", []):
                api = g["version"] if not g["group"] else g["group"] + "/" + g["version"]
                self.kinds[(api, g["kind"])] = name
        self.root = {"definitions": defs}
        self.validators = {}

    def validator(self, defname):
        v = self.validators.get(defname)
        if v is None:
            schema = dict(self.root)
            schema["$ref"] = "#/definitions/" + defname
            v = jsonschema.Draft4Validator(schema)
            self.validators[defname] = v
        return v


def where(path):
    out = ""
    for p in path:
        out += "[%d]" % p if isinstance(p, int) else ("." if out else "") + str(p)
    return out or "(document)"


def describe(err):
    """One line per schema error, with the deepest useful cause."""
    if err.validator == "anyOf" and err.context:
        # IntOrString / Quantity: say what was wrong, not "is not valid under any"
        if any(c.validator == "pattern" for c in err.context):
            return "%r is not a quantity (a number, or e.g. 64Mi, 1G, 250m)" % (err.instance,)
        return "%r is neither an integer nor a string" % (err.instance,)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return "unknown field%s %s" % ("s" if len(extra) > 1 else "", ", ".join(map(repr, extra)))
    if err.validator == "required":
        return "missing required field: " + err.message.split(" is a required")[0]
    return err.message


def pod_checks(spec, at, errors):
    """Checks the API server makes on a pod spec that the schema cannot."""
    volumes = {v.get("name") for v in spec.get("volumes") or []}
    names = set()
    for kind in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(kind) or []):
            cat = "%s.%s[%d]" % (at, kind, i)
            if c.get("name") in names:
                errors.append("%s.name: container name %r used twice" % (cat, c.get("name")))
            names.add(c.get("name"))
            for j, m in enumerate(c.get("volumeMounts") or []):
                if m.get("name") not in volumes:
                    errors.append("%s.volumeMounts[%d].name: no volume named %r in the pod"
                                  % (cat, j, m.get("name")))
            ports = {p.get("name") for p in c.get("ports") or [] if p.get("name")}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                p = c.get(probe) or {}
                for how in ("httpGet", "tcpSocket", "grpc"):
                    port = (p.get(how) or {}).get("port")
                    if isinstance(port, str) and port not in ports:
                        errors.append("%s.%s.%s.port: the container has no port named %r"
                                      % (cat, probe, how, port))


def object_checks(doc, errors):
    meta = doc.get("metadata") or {}
    if not meta.get("name"):
        errors.append("metadata.name: missing (every object needs a name)")
    spec = doc.get("spec") or {}
    if doc.get("kind") in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet"):
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        for k, v in sel.items():
            if labels.get(k) != v:
                errors.append("spec.selector.matchLabels.%s: %r does not match the pod "
                              "template's labels" % (k, v))
        pod_checks((spec.get("template") or {}).get("spec") or {}, "spec.template.spec", errors)


KUSTOMIZATION_FIELDS = {
    "apiVersion", "kind", "namespace", "namePrefix", "nameSuffix", "resources",
    "components", "images", "configMapGenerator", "secretGenerator", "generatorOptions",
    "patches", "patchesStrategicMerge", "patchesJson6902", "labels", "commonLabels",
    "commonAnnotations", "replicas",
}


def kustomization_checks(doc, base, errors):
    for k in sorted(set(doc) - KUSTOMIZATION_FIELDS):
        errors.append("%s: unknown kustomization field" % k)
    listed = set(doc.get("resources") or [])
    for f in sorted(os.listdir(base or ".")):
        if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml" and f not in listed:
            errors.append("resources: %s is not listed (neither applied nor rendered)" % f)
    images = set()
    for r in doc.get("resources") or []:
        p = os.path.join(base, r)
        if not os.path.exists(p):
            errors.append("resources: %s does not exist" % r)
            continue
        if os.path.isfile(p):
            with open(p, encoding="utf-8") as f:
                for d in yaml.load_all(f, Loader=Loader):
                    tpl = ((d or {}).get("spec") or {}).get("template") or {}
                    for kind in ("initContainers", "containers"):
                        for c in (tpl.get("spec") or {}).get(kind) or []:
                            images.add(str(c.get("image", "")).split(":")[0].split("@")[0])
    for i, im in enumerate(doc.get("images") or []):
        for k in sorted(set(im) - {"name", "newName", "newTag", "digest"}):
            errors.append("images[%d].%s: unknown field" % (i, k))
        if im.get("name") not in images:
            errors.append("images[%d].name: %r is the image of no container in resources"
                          % (i, im.get("name")))
    for gen in ("configMapGenerator", "secretGenerator"):
        for i, g in enumerate(doc.get(gen) or []):
            for k in sorted(set(g) - {"name", "namespace", "behavior", "files", "literals",
                                      "envs", "env", "options", "type"}):
                errors.append("%s[%d].%s: unknown field" % (gen, i, k))
            if not g.get("name"):
                errors.append("%s[%d].name: missing" % (gen, i))
            for f in g.get("files") or []:
                path = f.split("=", 1)[-1]
                if not os.path.isfile(os.path.join(base, path)):
                    errors.append("%s[%d].files: %s does not exist" % (gen, i, path))


def validate_docs(schema, docs, label):
    """docs: the parsed documents of one file. Return error lines."""
    errors = []
    for n, doc in enumerate(docs):
        if doc is None:
            continue
        where_doc = "%s#%d" % (label, n + 1)
        if not isinstance(doc, dict):
            errors.append("%s: not a mapping" % where_doc)
            continue
        api, kind = doc.get("apiVersion"), doc.get("kind")
        name = (doc.get("metadata") or {}).get("name", "?")
        here = "%s %s/%s" % (where_doc, kind, name)
        mine = []
        if kind == "Kustomization" and str(api).startswith("kustomize.config.k8s.io/"):
            kustomization_checks(doc, os.path.dirname(label), mine)
        elif (api, kind) not in schema.kinds:
            mine.append("apiVersion %r kind %r: not a kind of Kubernetes %s that these "
                        "manifests may use (%s)" % (api, kind, schema.version, ", ".join(
                            sorted("%s %s" % k for k in schema.kinds))))
        else:
            v = schema.validator(schema.kinds[(api, kind)])
            for err in sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.path))):
                mine.append("%s: %s" % (where(err.path), describe(err)))
            object_checks(doc, mine)
        errors.extend("%s: %s" % (here, m) for m in mine)
    return errors


def validate_file(schema, path):
    try:
        with open(path, encoding="utf-8") as f:
            docs = list(yaml.load_all(f, Loader=Loader))
    except (OSError, yaml.YAMLError) as e:
        return ["%s: %s" % (path, str(e).replace("\n", " "))]
    return validate_docs(schema, docs, path)


# --- self-test: each mutation of a copy of a manifest must be refused -------

def _containers(doc):
    return doc["spec"]["template"]["spec"]["containers"]


def _set(doc, path, value):
    node = doc
    for p in path[:-1]:
        node = node[p]
    if path[-1] not in node and not isinstance(node, list):
        raise KeyError("self-test: %s not in the manifest" % ".".join(map(str, path)))
    node[path[-1]] = value


def _rename(doc, path, new):
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[new] = node.pop(path[-1])


def _delete(doc, path):
    node = doc
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]


POD = ["spec", "template", "spec"]

# (file, kind, what it breaks, mutation, text the error must contain)
MUTATIONS = [
    ("agent-daemonset.yaml", "DaemonSet", "wrong field name (hostPid)",
     lambda d: _rename(d, POD + ["hostPID"], "hostPid"), "unknown field 'hostPid'"),
    ("agent-daemonset.yaml", "DaemonSet", "wrong field name in a list item (readonly)",
     lambda d: _rename(d, POD + ["containers", 0, "volumeMounts", 0, "readOnly"], "readonly"),
     "volumeMounts[0]: unknown field 'readonly'"),
    ("agent-daemonset.yaml", "DaemonSet", "missing required field (container name)",
     lambda d: _delete(d, POD + ["containers", 0, "name"]),
     "containers[0]: missing required field: 'name'"),
    ("agent-daemonset.yaml", "DaemonSet", "wrong type (hostPID: \"yes\")",
     lambda d: _set(d, POD + ["hostPID"], "yes"), "hostPID: 'yes' is not of type 'boolean'"),
    ("agent-daemonset.yaml", "DaemonSet", "bad quantity (memory: 128MB)",
     lambda d: _set(d, POD + ["containers", 0, "resources", "limits", "memory"], "128MB"),
     "limits.memory: '128MB' is not a quantity"),
    ("agent-daemonset.yaml", "DaemonSet", "volumeMount of no volume",
     lambda d: _set(d, POD + ["containers", 0, "volumeMounts", 0, "name"], "nosuch"),
     "no volume named 'nosuch'"),
    ("collector-deployment.yaml", "Deployment", "wrong type (replicas: two)",
     lambda d: _set(d, ["spec", "replicas"], "two"), "spec.replicas: 'two' is not of type"),
    ("collector-deployment.yaml", "Deployment", "selector that does not match the pods",
     lambda d: _set(d, ["spec", "selector", "matchLabels", "app.kubernetes.io/name"], "other"),
     "does not match the pod template's labels"),
    ("collector-deployment.yaml", "Deployment", "label value that is not a string",
     lambda d: _set(d, ["metadata", "labels", "app.kubernetes.io/name"], True),
     "True is not of type 'string'"),
    ("collector-deployment.yaml", "Deployment", "probe on a port the container lacks",
     lambda d: _set(d, POD + ["containers", 0, "livenessProbe", "httpGet", "port"], "htps"),
     "no port named 'htps'"),
    ("collector-service.yaml", "Service", "missing required field (port)",
     lambda d: _delete(d, ["spec", "ports", 0, "port"]),
     "ports[0]: missing required field: 'port'"),
    ("collector-pdb.yaml", "PodDisruptionBudget", "API version gone since 1.25",
     lambda d: _set(d, ["apiVersion"], "policy/v1beta1"), "not a kind of Kubernetes"),
    ("collector-networkpolicy.yaml", "NetworkPolicy", "wrong type (protocol: 6)",
     lambda d: _set(d, ["spec", "ingress", 0, "ports", 0, "protocol"], 6),
     "protocol: 6 is not of type 'string'"),
]


def self_test(schema, manifest_dir):
    failures = 0
    with tempfile.TemporaryDirectory(prefix="k8s-selftest-") as tmp:
        def run(name, text, expect):
            nonlocal failures
            path = os.path.join(tmp, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            errs = validate_file(schema, path)
            if expect is None:
                ok = not errs
            else:
                ok = any(expect in e for e in errs)
            return ok, errs

        cache = {}
        for fname, kind, what, mutate, expect in MUTATIONS:
            if fname not in cache:
                with open(os.path.join(manifest_dir, fname), encoding="utf-8") as f:
                    cache[fname] = list(yaml.load_all(f, Loader=Loader))
            docs = copy.deepcopy(cache[fname])
            target = [d for d in docs if d and d.get("kind") == kind]
            if not target:
                print("self-test: FAIL %s: no %s in %s" % (what, kind, fname))
                failures += 1
                continue
            try:
                mutate(target[0])
            except (KeyError, IndexError, TypeError) as e:
                print("self-test: FAIL %s: cannot apply to %s: %s" % (what, fname, e))
                failures += 1
                continue
            ok, errs = run(fname, yaml.safe_dump_all(docs, sort_keys=False), expect)
            print("self-test: %s %-45s %s" % ("ok  " if ok else "FAIL", what,
                                               errs[0].split(": ", 1)[1] if errs else "accepted"))
            if not ok:
                failures += 1
        # a key repeated in one mapping (YAML would keep the last one silently)
        with open(os.path.join(manifest_dir, "collector-service.yaml"), encoding="utf-8") as f:
            text = f.read()
        dup = text.replace("\nspec:\n", "\nspec:\n  type: ClusterIP\n", 1)
        dup = dup.replace("  type: ClusterIP\n", "  type: ClusterIP\n  type: NodePort\n", 1)
        ok, errs = run("collector-service.yaml", dup, "repeated")
        print("self-test: %s %-45s %s" % ("ok  " if ok else "FAIL", "repeated YAML key",
                                           errs[0] if errs else "accepted"))
        failures += 0 if ok else 1
        # a kustomization whose image name matches no container (the tag
        # would silently not be set), checked in place
        kpath = os.path.join(manifest_dir, "kustomization.yaml")
        with open(kpath, encoding="utf-8") as f:
            kdoc = yaml.load(f, Loader=Loader)
        kdoc["images"][0]["name"] += "x"
        errs = validate_docs(schema, [kdoc], kpath)
        ok = any("is the image of no container" in e for e in errs)
        print("self-test: %s %-45s %s" % ("ok  " if ok else "FAIL", "kustomization image of no container",
                                           errs[0].split(": ", 1)[1] if errs else "accepted"))
        failures += 0 if ok else 1
        # and the unmodified copies pass (the mutations, not the copying, fail)
        for fname in sorted(cache):
            ok, errs = run(fname, yaml.safe_dump_all(cache[fname], sort_keys=False), None)
            if not ok:
                print("self-test: FAIL unmodified copy of %s: %s" % (fname, errs))
                failures += 1
    print("self-test: %d mutations, %d not caught" % (len(MUTATIONS) + 2, failures))
    return failures == 0


def main(argv):
    schema_path = DEFAULT_SCHEMA
    args = list(argv)
    if len(args) >= 2 and args[0] == "--schema":
        schema_path = args[1]
        args = args[2:]
    if not args:
        sys.exit(__doc__)
    schema = Schema(schema_path)
    if args[0] == "--self-test":
        return 0 if self_test(schema, args[1]) else 1
    errors = []
    for path in args:
        errors.extend(validate_file(schema, path))
    for e in errors:
        print("k8s-validate: " + e)
    print("k8s-validate: %d files, %d errors (Kubernetes %s schema)"
          % (len(args), len(errors), schema.version))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
