# SPDX-License-Identifier: Apache-2.0
"""The query API's prepared statements (collector/apidb.c), with one API
database connection so that every request goes through the same cache:
more SQL shapes than the cache holds (it is then dropped and refilled),
and answers that stay the same on both sides of that, each request still
audited."""

import itertools

import pytest

import apitest as at
import vigiltest as vt

F = at.Fleet
STMT_CACHE = 128  # apidb.c


@pytest.fixture(scope="module")
def env(module_collector_factory, module_db, pki, collector_bin):
    hport = vt.free_port()
    coll = module_collector_factory(module_db, flags={
        "--http-listen": "127.0.0.1:%d" % hport,
        "--http-db-connections": "1",
        "--http-rate-limit": "0",
    })
    keep = F().load(coll.port, pki)
    tok = at.create_token(collector_bin, module_db, "stmt-viewer", "viewer")
    yield {"api": at.Api(hport, pki, tok), "db": module_db}
    keep.close()


def container_queries():
    """Every combination of five string filters and two three-way flags:
    2^5 * 3 * 3 = 288 SQL shapes."""
    values = {"agent": F.NODE2, "image": at.IMAGE, "name": "web-2", "digest": "sha256:x",
              "label": "tier=front"}
    for n in range(len(values) + 1):
        for keys in itertools.combinations(sorted(values), n):
            for priv, running in itertools.product((None, "true", "false"), repeat=2):
                q = {k: values[k] for k in keys}
                if priv:
                    q["privileged"] = priv
                if running:
                    q["running"] = running
                yield q


REFERENCE = [
    ("/api/v1/containers", {"agent": F.NODE2, "running": "true"}),
    ("/api/v1/containers", {"image": at.IMAGE}),
    ("/api/v1/containers", {"label": "tier=front", "privileged": "true"}),
    ("/api/v1/events", {"container": F.C1, "since": "24h"}),
    ("/api/v1/agents/" + F.NODE1, None),
]


def answers(api):
    """The reference queries' rows (the parts that do not move with the
    clock: an answer also echoes its time window)."""
    out = []
    for path, params in REFERENCE:
        body = api.ok(path, params)
        if "containers" in body:
            out.append(body["containers"])
        elif "events" in body:
            out.append(body["events"])
        else:
            out.append({k: body[k] for k in ("name", "containers_running", "lost",
                                              "sources")})
    return out


def test_more_shapes_than_the_cache_holds(env):
    api, db = env["api"], env["db"]
    audited0 = db.query("SELECT count(*) FROM audit_log")[0][0]
    before = answers(api)
    # what the reference queries say about the known data
    assert {c["id"] for c in before[0]} == {F.C2, F.C3, F.C4}
    assert {c["id"] for c in before[1]} == {F.C1, F.C2}
    assert [c["id"] for c in before[2]] == [F.C1]
    # all C1's agent sent but the 3-day-old exec, and the findings (seq < 0)
    # the collector opened when it started
    assert len([e for e in before[3] if e["seq"] > 0]) == 9
    assert {e["details"]["rule"] for e in before[3] if e["seq"] < 0} >= {"privileged"}
    shapes = list(container_queries())
    assert len(shapes) > STMT_CACHE * 2
    for q in shapes:
        r = api.get("/api/v1/containers", q)
        assert r.status == 200, (q, r)
        ids = {c["id"] for c in r.json()["containers"]}
        if q.get("agent") == F.NODE2:
            assert F.C1 not in ids, q
        if q.get("privileged") == "true":
            assert ids <= {F.C1}, q
    # the cache was dropped and refilled twice: the same answers
    assert answers(api) == before
    audited = db.query("SELECT count(*) FROM audit_log")[0][0] - audited0
    assert audited == len(shapes) + 2 * len(REFERENCE)
