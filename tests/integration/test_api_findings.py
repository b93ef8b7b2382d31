# SPDX-License-Identifier: Apache-2.0
"""The findings API against a real collector and PostgreSQL: findings raised
by the rule engine from data sent through the real ingest path (a scripted
agent), then /api/v1/findings (every filter, keyset pages, the counts by
severity and the "not judged" count, NDJSON and CSV exports, 400s naming the
parameter, hostile strings kept as text, SQL injection, the audit log),
/api/v1/rules, and the containers' open findings."""

import csv
import io
import json

import pytest

import apitest as at
import vigiltest as vt

NODE1 = "fa-node-1"
NODE2 = "fa-node-2"
RISKY = "1a" * 32     # privileged, host mounts, runtime socket, xmrig from /tmp
STOPPED = "2b" * 32   # privileged, then removed: its findings are resolved
HARD = "3c" * 32      # hardened: no posture finding; a package manager ran
UNK = "4d" * 32       # facts no source could establish: judged "unknown"
EVIL = "5e" * 32      # hostile name, image and mount path
OTHER = "6f" * 32     # on node 2, privileged
EVIL_STR = "<script>alert(1)</script><img src=x onerror=alert(1)>\u202e\x1b[31mred\n"
FORMULA = "=cmd|' /C calc'!A0"


def risky(cid, name, image="docker.io/library/nginx:latest", privileged=True, mounts=None):
    E, _ = vt.pb()
    e = vt.container_started_event(
        cid, name, privileged=privileged, image=image,
        mounts=mounts if mounts is not None else [
            ("/", "/host", False), ("/var/run/docker.sock", "/var/run/docker.sock", False)])
    c = e.container_started.container
    c.host_pid = True
    c.seccomp_mode = E.SECCOMP_MODE_DISABLED
    return e


def unknown(cid, name):
    e = vt.container_started_event(cid, name, privileged=True)
    c = e.container_started.container
    c.unknown_facts.extend(["privileged", "host_pid", "mounts", "restart_policy"])
    c.user_known = False
    return e


def connect(port, pki, name):
    cert, key = pki.agent(name)
    a = vt.RawAgent(port, vt.client_context(pki, cert, key)).connect()
    a.hello()
    return a


@pytest.fixture(scope="module")
def env(module_collector_factory, module_db, pki, collector_bin):
    hport = vt.free_port()
    coll = module_collector_factory(module_db, flags={
        "--http-listen": "127.0.0.1:%d" % hport, "--http-rate-limit": "0",
        "--http-max-limit": "50"})
    now = vt.now_ns()
    a1 = connect(coll.port, pki, NODE1)
    a1.batch(1, [
        risky(RISKY, "risky-web", mounts=[("/", "/host", False),
                                          ("/var/run/docker.sock", "/var/run/docker.sock",
                                           False), ("/etc", "/host-etc", True)]),
        risky(STOPPED, "gone"),
        vt.hardened_container_event(HARD, "hardened"),
        unknown(UNK, "mystery"),
        risky(EVIL, EVIL_STR, image="registry.test/" + FORMULA,
              mounts=[("/etc/" + EVIL_STR, "/x", False)]),
    ])
    a1.batch(2, [
        vt.exec_event(100, ["xmrig", "--donate-level", "1"], exe="/tmp/xmrig",
                      container_id=RISKY, ts=now + 10**9),
        vt.exec_event(101, ["apt-get", "install", "nmap"], exe="/usr/bin/apt-get",
                      container_id=HARD, ts=now + 2 * 10**9),
        vt.exec_event(102, ["nsenter", EVIL_STR], exe="/tmp/" + EVIL_STR, container_id=EVIL,
                      ts=now + 3 * 10**9),
    ])
    # STOPPED stops, then the node no longer reports it: removed
    E, _ = vt.pb()
    inv = E.Event()
    inv.time_ns = now + 5 * 10**9
    inv.kind = E.EVENT_KIND_INVENTORY
    inv.inventory.full = True
    inv.inventory.all_ids.extend([RISKY, HARD, UNK, EVIL])
    a1.batch(3, [vt.container_stopped_event(STOPPED, 0, ts=now + 4 * 10**9), inv])
    a1.close()
    a2 = connect(coll.port, pki, NODE2)
    a2.batch(1, [risky(OTHER, "other", image="registry.test/other:1", mounts=[])])
    a2.close()
    viewer = at.create_token(collector_bin, module_db, "fa-viewer", "viewer")
    yield {"coll": coll, "db": module_db, "api": at.Api(hport, pki, viewer), "t0": now}


def db_findings(db, where="true", args=()):
    return db.query("SELECT f.id, a.name, f.container_id, f.rule, f.key, f.state, f.severity "
                    "FROM findings f JOIN agents a ON a.id = f.agent_id WHERE " + where,
                    args)


def all_pages(api, params):
    """Every page of /api/v1/findings with PARAMS: the rows, in order."""
    rows, cursor, pages = [], None, 0
    while True:
        p = dict(params)
        if cursor:
            p["cursor"] = cursor
        d = api.ok("/api/v1/findings", p)
        rows += d["findings"]
        pages += 1
        cursor = d["next_cursor"]
        assert pages < 200
        if not cursor:
            return rows, pages


SEV = {1: "info", 2: "low", 3: "medium", 4: "high", 5: "critical"}


def test_findings_rows(env):
    api, db = env["api"], env["db"]
    d = api.ok("/api/v1/findings", {"limit": 50})
    want = db_findings(db)
    assert d["total"] == len(want) and d["count"] == min(50, len(want))
    assert d["since"] is None and d["until"] is None
    f = next(x for x in d["findings"] if x["container_id"] == RISKY and x["rule"] == "privileged")
    assert f["agent"] == NODE1 and f["container_name"] == "risky-web"
    assert f["image"] == "docker.io/library/nginx:latest" and f["container_state"] == "running"
    assert f["severity"] == "critical" and f["state"] == "open" and f["kind"] == "posture"
    assert f["title"] == "Privileged container" and "--privileged" in f["remediation"]
    assert f["control"].startswith("CIS Docker Benchmark v1.6.0 5.5")
    assert f["evidence"] == {"agent": NODE1, "seq": 1, "idx": 0}
    assert f["count"] == 1 and f["first_seen"] and f["last_seen"] and f["resolved_at"] is None
    miner = next(x for x in d["findings"] if x["rule"] == "crypto_miner")
    assert miner["kind"] == "runtime" and miner["key"] == "xmrig"
    assert miner["evidence"] == {"agent": NODE1, "seq": 2, "idx": 0}
    assert miner["details"]["exe"] == "/tmp/xmrig"
    # newest last_seen first, ties by id
    keys = [(x["last_seen"], x["id"]) for x in d["findings"]]
    assert keys == sorted(keys, reverse=True)
    # counts by severity: of every matching finding, not of the page
    for n, name in SEV.items():
        assert d["by_severity"][name] == sum(1 for w in want if w[6] == n), name
    # the hardened container raised no posture finding
    assert not db_findings(db, "f.container_id = %s AND f.kind = 'posture'", (HARD,))


def test_states(env):
    api, db = env["api"], env["db"]
    gone = api.ok("/api/v1/findings", {"container": STOPPED, "limit": 50})
    assert gone["findings"] and {f["state"] for f in gone["findings"]} == {"resolved"}
    assert {f["resolved_reason"] for f in gone["findings"]} == {"container removed"}
    assert all(f["resolved_at"] for f in gone["findings"])
    opened = api.ok("/api/v1/findings", {"state": "open", "limit": 50})
    assert opened["total"] == len(db_findings(db, "f.state <> 'resolved'"))
    assert STOPPED not in {f["container_id"] for f in opened["findings"]}
    res = api.ok("/api/v1/findings", {"state": "resolved", "limit": 50})
    assert res["total"] == len(gone["findings"])
    assert api.ok("/api/v1/findings", {"state": "reopened"})["total"] == 0
    assert api.ok("/api/v1/findings", {"state": "all"})["total"] == len(db_findings(db))
    # reopened counts as open
    db.query("UPDATE findings SET state = 'reopened' WHERE container_id = %s AND rule = "
             "'host_pid' RETURNING id", (OTHER,))
    try:
        assert api.ok("/api/v1/findings", {"state": "reopened"})["total"] == 1
        o = api.ok("/api/v1/findings", {"state": "open", "container": OTHER})
        assert "reopened" in {f["state"] for f in o["findings"]}
    finally:
        db.query("UPDATE findings SET state = 'open' WHERE container_id = %s AND rule = "
                 "'host_pid' RETURNING id", (OTHER,))


def test_filters(env):
    api, db = env["api"], env["db"]
    d = api.ok("/api/v1/findings", {"rule": "privileged", "limit": 50})
    assert {f["rule"] for f in d["findings"]} == {"privileged"}
    assert d["total"] == len(db_findings(db, "f.rule = 'privileged'"))
    d = api.ok("/api/v1/findings", {"rule": "crypto_miner,package_manager"})
    assert {(f["rule"], f["container_id"]) for f in d["findings"]} == {
        ("crypto_miner", RISKY), ("package_manager", HARD)}
    d = api.ok("/api/v1/findings", {"severity": "critical", "limit": 50})
    assert d["findings"] and {f["severity"] for f in d["findings"]} == {"critical"}
    assert d["by_severity"]["high"] == 0
    d = api.ok("/api/v1/findings", {"severity": "high", "limit": 50})
    assert {f["severity"] for f in d["findings"]} <= {"high", "critical"}
    d = api.ok("/api/v1/findings", {"agent": NODE2, "limit": 50})
    assert d["findings"] and {f["container_id"] for f in d["findings"]} == {OTHER}
    d = api.ok("/api/v1/findings", {"image": "registry.test/other:1", "limit": 50})
    assert {f["container_id"] for f in d["findings"]} == {OTHER}
    d = api.ok("/api/v1/findings", {"kind": "runtime", "limit": 50})
    assert {f["rule"] for f in d["findings"]} >= {"crypto_miner", "package_manager"}
    assert {f["kind"] for f in d["findings"]} == {"runtime"}
    d = api.ok("/api/v1/findings", {"container": HARD, "kind": "posture"})
    assert d["total"] == 0 and d["findings"] == [] and d["next_cursor"] is None
    assert api.ok("/api/v1/findings", {"agent": "no-such-node"})["total"] == 0
    # the window: raised before until, not resolved before since
    assert api.ok("/api/v1/findings", {"until": "2000-01-01T00:00:00Z"})["total"] == 0
    later = (env["t0"] // 10**9) + 3600
    d = api.ok("/api/v1/findings", {"since": str(later), "limit": 50})
    assert STOPPED not in {f["container_id"] for f in d["findings"]}
    assert d["total"] == len(db_findings(db, "f.state <> 'resolved'"))
    assert d["since"].startswith("20")


def test_unknown_count(env):
    api, db = env["api"], env["db"]
    unk = db.scalar("SELECT rules_unknown FROM containers WHERE id = %s", (UNK,))
    assert unk and "privileged" in unk
    d = api.ok("/api/v1/findings", {"container": UNK})
    assert d["unknown"] == len(unk) and d["unknown_containers"] == 1
    d = api.ok("/api/v1/findings", {"container": UNK, "rule": "privileged,host_pid"})
    assert d["unknown"] == 2
    assert not [f for f in d["findings"] if f["rule"] in ("privileged", "host_pid")]
    d = api.ok("/api/v1/findings", {"container": UNK, "kind": "runtime"})
    assert d["unknown"] == 0
    total = db.scalar("SELECT count(*) FROM containers c, unnest(c.rules_unknown) "
                      "WHERE c.state = 'running'")
    assert api.ok("/api/v1/findings")["unknown"] == total
    assert api.ok("/api/v1/findings", {"agent": NODE2})["unknown"] == db.scalar(
        "SELECT count(*) FROM containers c JOIN agents a ON a.id = c.agent_id, "
        "unnest(c.rules_unknown) WHERE c.state = 'running' AND a.name = %s", (NODE2,))


def test_keyset_pages(env):
    api = env["api"]
    full = api.ok("/api/v1/findings", {"limit": 50})
    assert full["next_cursor"] is None
    got, pages = all_pages(api, {"limit": 3})
    assert [f["id"] for f in got] == [f["id"] for f in full["findings"]]
    assert pages >= 2
    assert len({f["id"] for f in got}) == len(got)
    # later pages carry no counts (the first page has them)
    first = api.ok("/api/v1/findings", {"limit": 2})
    second = api.ok("/api/v1/findings", {"limit": 2, "cursor": first["next_cursor"]})
    assert "by_severity" in first and "by_severity" not in second
    assert second["findings"][0]["id"] == full["findings"][2]["id"]
    # limit above http_max_limit is capped, not refused
    assert api.ok("/api/v1/findings", {"limit": 100000})["limit"] == 50


def test_exports(env):
    api, db = env["api"], env["db"]
    n = len(db_findings(db))
    r = api.get("/api/v1/findings", {"format": "ndjson"})
    assert r.status == 200 and r.header("content-type") == "application/x-ndjson"
    lines = r.body.decode().splitlines()
    assert len(lines) == n
    rows = [json.loads(x) for x in lines]
    assert all(x["title"] for x in rows if x["rule"] != "")
    # every match once, newest id first (ids never change while it runs)
    assert [x["id"] for x in rows] == sorted(
        (x["id"] for x in api.ok("/api/v1/findings", {"limit": 50})["findings"]), reverse=True)
    r = api.get("/api/v1/findings", {"format": "ndjson", "limit": 3, "state": "open"})
    assert len(r.body.decode().splitlines()) == 3
    r = api.get("/api/v1/findings", {"format": "csv", "rule": "privileged"})
    assert r.status == 200 and r.header("content-type") == "text/csv; charset=utf-8"
    assert "findings.csv" in r.header("content-disposition")
    table = list(csv.reader(io.StringIO(r.body.decode(), newline="")))
    assert table[0][:5] == ["last_seen", "first_seen", "severity", "state", "rule"]
    body = table[1:]
    assert len(body) == len(db_findings(db, "f.rule = 'privileged'"))
    col = {h: i for i, h in enumerate(table[0])}
    evil = next(x for x in body if x[col["container_id"]] == EVIL)
    # control bytes are written \xNN in a CSV cell: the file's own line
    # ends are the only ones in it, and no ESC reaches a terminal
    assert evil[col["container_name"]] == EVIL_STR.replace("\x1b", "\\x1b").replace("\n", "\\x0a")
    assert evil[col["image"]] == "registry.test/" + FORMULA
    assert evil[col["title"]] == "Privileged container"
    r = api.get("/api/v1/findings", {"format": "csv", "image": "registry.test/" + FORMULA})
    assert r.status == 200


BAD = [
    ({"severity": "urgent"}, "severity"),
    ({"state": "closed"}, "state"),
    ({"kind": "process_exec"}, "kind"),
    ({"rule": "no_such_rule"}, "rule"),
    ({"rule": "privileged,"}, "rule"),
    ({"rule": ",".join(["privileged"] * 17)}, "rule"),
    ({"since": "yesterday"}, "since"),
    ({"until": "2024-13-01T00:00:00Z"}, "until"),
    ({"since": "1h", "until": "2h"}, "until"),
    ({"cursor": "abc"}, "cursor"),
    ({"cursor": "1.0"}, "cursor"),
    ({"cursor": "1714564800000000.3", "format": "csv"}, "cursor"),
    ({"limit": "0"}, "limit"),
    ({"format": "xml"}, "format"),
    ({"agent": ""}, "agent"),
    ({"container": "x" * 600}, "container"),
    ({"exe": "/bin/sh"}, "exe"),
    ({"bogus": "1"}, "bogus"),
]


@pytest.mark.parametrize("params,name", BAD)
def test_bad_parameters(env, params, name):
    r = env["api"].get("/api/v1/findings", params)
    assert r.status == 400, r
    e = r.json()
    assert e["error"] == "bad_parameter" and e["parameter"] == name


def test_parameter_twice(env):
    r = env["api"].get("/api/v1/findings?rule=privileged&rule=host_pid")
    assert r.status == 400 and r.json()["parameter"] == "rule"


def test_hostile_strings_stay_text(env):
    api = env["api"]
    d = api.ok("/api/v1/findings", {"container": EVIL, "limit": 50})
    raw = api.get("/api/v1/findings", {"container": EVIL, "limit": 50}).body
    assert b"\x1b" not in raw and b"\n" not in raw  # control bytes escaped or replaced
    names = {f["container_name"] for f in d["findings"]}
    assert names == {EVIL_STR}  # as the agent sent it, JSON-escaped
    keys = {f["key"] for f in d["findings"] if f["rule"] in ("sensitive_mount",
                                                              "exec_from_tmp")}
    assert len(keys) == 2
    for k in keys:
        assert "<script>alert(1)</script>" in k and "\u202e" in k and "\x1b" not in k


@pytest.mark.parametrize("param", ["agent", "container", "image"])
def test_sql_injection(env, param):
    api, db = env["api"], env["db"]
    d = api.ok("/api/v1/findings", {param: at.INJECTION})
    assert d["total"] == 0 and d["unknown"] == 0
    assert db.scalar("SELECT count(*) FROM findings") > 0


def test_audit(env):
    api, db = env["api"], env["db"]
    api.ok("/api/v1/findings", {"rule": "privileged", "state": "open"})
    row = db.query("SELECT principal, path, query FROM audit_log ORDER BY id DESC LIMIT 1")[0]
    assert row[0] == "token:fa-viewer" and row[1] == "/api/v1/findings"
    assert "rule=privileged" in row[2]
    n = db.scalar("SELECT count(*) FROM audit_log")
    api.ok("/api/v1/rules")  # no stored data: not audited
    assert api.get("/api/v1/findings", {"state": "x"}).status == 400  # refused: not audited
    assert db.scalar("SELECT count(*) FROM audit_log") == n


def test_rules(env):
    api = env["api"]
    d = api.ok("/api/v1/rules")
    assert d["engine"] is True and d["count"] == len(d["rules"]) >= 30
    by = {r["id"]: r for r in d["rules"]}
    p = by["privileged"]
    assert p == {"id": "privileged", "kind": "posture", "title": "Privileged container",
                 "severity": "critical", "default_severity": "critical", "enabled": True,
                 "control": p["control"], "rationale": p["rationale"],
                 "remediation": p["remediation"]}
    assert p["control"].startswith("CIS Docker Benchmark v1.6.0 5.5")
    assert by["crypto_miner"]["kind"] == "runtime"
    runtime = api.ok("/api/v1/rules", {"kind": "runtime"})["rules"]
    assert runtime and {r["kind"] for r in runtime} == {"runtime"}
    assert api.ok("/api/v1/rules", {"enabled": "false"})["count"] == 0
    for params, name in (({"kind": "x"}, "kind"), ({"enabled": "maybe"}, "enabled"),
                         ({"x": "1"}, "x")):
        r = api.get("/api/v1/rules", params)
        assert r.status == 400 and r.json()["parameter"] == name


def test_containers_carry_open_findings(env):
    api, db = env["api"], env["db"]
    cs = {c["id"]: c for c in api.ok("/api/v1/containers", {"limit": 50})["containers"]}
    for cid in (RISKY, STOPPED, HARD, UNK, EVIL, OTHER):
        want = len(db_findings(db, "f.container_id = %s AND f.state <> 'resolved'", (cid,)))
        assert cs[cid]["findings_open"] == want, cid
    assert cs[RISKY]["findings_severity"] == "critical"
    assert cs[STOPPED]["findings_open"] == 0 and cs[STOPPED]["findings_severity"] is None
    assert "privileged" in cs[UNK]["rules_unknown"]
    # a fact no source established is null, not false
    assert cs[UNK]["privileged"] is None and cs[UNK]["host_pid"] is None
    assert cs[UNK]["mounts"] is None and cs[RISKY]["privileged"] is True
    r = api.get("/api/v1/containers", {"format": "csv", "id": RISKY})
    table = list(csv.reader(io.StringIO(r.body.decode(), newline="")))
    assert table[0][-1] == "findings_open" and int(table[1][-1]) == cs[RISKY]["findings_open"]


def test_openapi_describes_findings_and_rules(env):
    doc = env["api"].ok("/api/v1/openapi.json")
    f = doc["paths"]["/api/v1/findings"]["get"]
    names = {p["name"] for p in f["parameters"] if "name" in p} | {
        p.get("$ref", "").rsplit("/", 1)[-1] for p in f["parameters"]}
    for n in ("rule", "severity", "state", "agent", "container", "image", "kind", "cursor"):
        assert n in names, n
    assert "/api/v1/rules" in doc["paths"]
