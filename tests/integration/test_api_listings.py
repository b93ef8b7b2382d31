# SPDX-License-Identifier: Apache-2.0
"""The newest-first event listings of the query API against a real collector
and PostgreSQL (schema/0007_listings.sql, collector/http/apidb.c): keyset
pages that are complete and ordered, with or without a kind, severity or
argv= filter; exports of exactly the rows asked for; a query past
http_query_timeout cancelled on the server; small reads answered while
listings hold the pool; and the bounded database queue (503 with
Retry-After). Slow listings are made by locking the events table from the
test, so that they wait on PostgreSQL's lock, not on a sleep."""

import csv
import io
import json
import threading

import psycopg2
import pytest

import apitest as at
import vigiltest as vt

AGENTS = ("list-node-a", "list-node-b")
BATCHES = 4
PER_BATCH = 300
SPECIAL = ["50%", "a_b", "x\\y"]  # LIKE's wildcards and escape, searched literally


def event(i, now):
    """Event i of each agent: both agents send the same times, so that
    pages cut through rows of one microsecond."""
    ts = now - i * 997_000  # just under a millisecond apart
    if i % 50 == 7:
        return vt.container_started_event("%064x" % (0xc0de0000 + i), "ctr-%d" % i, ts=ts)
    argv = ["/usr/bin/tool", "--n", str(i), SPECIAL[i % 3] if i % 10 == 3 else "plain"]
    return vt.exec_event(1000 + i, argv, ts=ts, severity=4 if i % 37 == 0 else 1)


@pytest.fixture(scope="module")
def data(module_db, module_collector_factory, pki):
    """The events, sent through the real ingest path by two agents."""
    c = module_collector_factory(module_db)
    now = vt.now_ns() - 60 * 10**9
    for name in AGENTS:
        cert, key = pki.agent(name)
        with vt.RawAgent(c.port, vt.client_context(pki, cert, key)).connect() as a:
            a.hello()
            for b in range(BATCHES):
                a.batch(b + 1, [event(b * PER_BATCH + i, now) for i in range(PER_BATCH)])
    c.terminate()
    return module_db


def start(factory, db, pki, collector_bin, **flags):
    hport = vt.free_port()
    f = {"--http-listen": "127.0.0.1:%d" % hport, "--http-rate-limit": "0"}
    f.update({"--" + k.replace("_", "-"): v for k, v in flags.items()})
    c = factory(db, flags=f)
    tok = at.create_token(collector_bin, db, "list-%d" % hport, "viewer")
    api = at.Api(hport, pki, tok, timeout=60)
    api.ok("/api/v1/whoami")
    return c, api


@pytest.fixture(scope="module")
def api(data, module_collector_factory, pki, collector_bin):
    _, a = start(module_collector_factory, data, pki, collector_bin)
    return a


WINDOW = {"since": "2h"}


def expected(db, where="true", params=()):
    """(agent, seq, idx) of the window's events, newest first, by SQL."""
    return [tuple(r) for r in db.query(
        "SELECT a.name, e.seq, e.idx FROM events e JOIN agents a ON a.id = e.agent_id "
        "WHERE e.ts >= now() - interval '2 hours' AND " + where +
        " ORDER BY e.ts DESC, e.agent_id DESC, e.seq DESC, e.idx DESC", params)]


def key(e):
    return (e["agent"], e["seq"], e["idx"])


def pages(api, params, limit):
    """Every page of a listing through next_cursor: the events, the count
    of pages."""
    out, cursor, n = [], None, 0
    while True:
        p = dict(WINDOW, limit=limit, **params)
        if cursor:
            p["cursor"] = cursor
        d = api.ok("/api/v1/events", p)
        n += 1
        assert d["count"] == len(d["events"]) <= limit
        out += d["events"]
        cursor = d["next_cursor"]
        if not cursor:
            return out, n
        assert d["count"] == limit


FILTERS = [
    ({}, "true", ()),
    ({"kind": "process_exec"}, "e.kind = 4", ()),
    ({"kind": "container_started"}, "e.kind = 2", ()),
    ({"kind": "process_exec,container_started"}, "e.kind IN (2, 4)", ()),
    ({"severity": "high"}, "e.severity >= 4", ()),
    ({"argv": "--n 12"}, "strpos(array_to_string(e.argv, ' '), %s) > 0", ("--n 12",)),
]


@pytest.mark.parametrize("params,where,args", FILTERS, ids=lambda x: str(x))
def test_keyset_pages_complete_and_ordered(data, api, params, where, args):
    want = expected(data, where, args)
    assert want, "the filter matches some events"
    got, n = pages(api, params, 97)
    assert [key(e) for e in got] == want  # newest first, no gap, no repeat
    assert n == max(1, -(-len(want) // 97))
    ts = [e["ts"] for e in got]
    assert ts == sorted(ts, reverse=True)


def test_unfiltered_listing_has_every_kind(data, api):
    got, _ = pages(api, {}, 500)
    kinds = {e["kind"] for e in got}
    assert {"process_exec", "container_started"} <= kinds
    assert len(got) == data.scalar("SELECT count(*) FROM events "
                                   "WHERE ts >= now() - interval '2 hours'")


@pytest.mark.parametrize("term", SPECIAL + ["tool --n 3", "%", "_", "\\"])
def test_argv_search_is_literal(data, api, term):
    """argv= matches a substring of the command line; % _ and \\ are
    characters, not patterns."""
    want = expected(data, "strpos(array_to_string(e.argv, ' '), %s) > 0", (term,))
    got, _ = pages(api, {"argv": term}, 1000)
    assert [key(e) for e in got] == want
    for e in got:
        assert term in " ".join(e["argv"])


def test_exports_have_exactly_the_rows_in_order(data, api):
    want = expected(data)
    r = api.ok("/api/v1/events", dict(WINDOW, format="ndjson"))
    rows = [json.loads(ln) for ln in r.body.decode().splitlines()]
    assert [key(e) for e in rows] == want
    for n in (1, 999, len(want) - 1):
        r = api.ok("/api/v1/events", dict(WINDOW, format="ndjson", limit=n))
        assert [key(json.loads(ln)) for ln in r.body.decode().splitlines()] == want[:n]
    r = api.ok("/api/v1/events", dict(WINDOW, format="csv", kind="process_exec"))
    table = list(csv.reader(io.StringIO(r.body.decode(), newline="")))
    assert table[0][:3] == ["ts", "agent", "kind"]
    execs = expected(data, "e.kind = 4")
    assert len(table) - 1 == len(execs)
    assert [row[1] for row in table[1:]] == [k[0] for k in execs]
    assert {row[2] for row in table[1:]} == {"process_exec"}


# ---- slow queries ------------------------------------------------------------------------


class EventsLock:
    """ACCESS EXCLUSIVE on events from a session of the test: every listing
    waits on it until released."""

    def __init__(self, db):
        self.conn = psycopg2.connect(db.conninfo)
        self.conn.cursor().execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")

    def release(self):
        if self.conn:
            self.conn.rollback()
            self.conn.close()
            self.conn = None


def api_backends(db, waiting_on_lock=False):
    sql = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
           "'vigil-collector-api' AND state = 'active' AND query LIKE '%FROM events e%'")
    if waiting_on_lock:
        sql += " AND wait_event_type = 'Lock'"
    return db.scalar(sql)


def in_threads(fn, n):
    out = [None] * n

    def run(i):
        out[i] = fn()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    return out, ts


def test_query_past_timeout_is_cancelled_on_the_server(data, collector_factory, pki,
                                                       collector_bin):
    _, api = start(collector_factory, data, pki, collector_bin, http_query_timeout="1s")
    lock = EventsLock(data)
    try:
        r = api.get("/api/v1/events", WINDOW)
        assert r.status == 503 and r.json()["error"] == "query_timeout", r
        assert r.header("retry-after") == "1"
        # the statement is gone on the server, not left waiting for the lock
        assert api_backends(data) == 0
        r = api.get("/api/v1/events", dict(WINDOW, format="ndjson"))
        assert r.status == 503 and r.json()["error"] == "query_timeout", r
        assert api_backends(data) == 0
    finally:
        lock.release()
    assert api.ok("/api/v1/events", WINDOW)["count"] == 100


def test_small_reads_answer_while_listings_hold_the_pool(data, collector_factory, pki,
                                                         collector_bin):
    _, api = start(collector_factory, data, pki, collector_bin, http_db_connections="3",
                   http_query_timeout="60s")
    lock = EventsLock(data)
    try:
        out, threads = in_threads(lambda: api.get("/api/v1/events", WINDOW), 6)
        # two of three connections take listings; the third stays free
        vt.wait_for(lambda: api_backends(data, True) == 2, 20, 0.1, "listings waiting")
        for _ in range(5):
            d = api.ok("/api/v1/agents")
            assert {a["name"] for a in d["agents"]} >= set(AGENTS)
            assert api.ok("/api/v1/stats")["agents_known"] >= 2
        assert api_backends(data, True) == 2
        assert all(o is None for o in out)  # the listings still wait
    finally:
        lock.release()
    for t in threads:
        t.join(60)
    assert [o.status for o in out] == [200] * 6


def metric(api, name):
    for ln in api.ok("/metrics").body.decode().splitlines():
        if ln.startswith(name + " "):
            return int(ln.split()[1])
    raise AssertionError("no metric " + name)


def test_full_database_queue_is_503_with_retry_after(data, collector_factory, pki,
                                                     collector_bin):
    _, api = start(collector_factory, data, pki, collector_bin, http_db_connections="2",
                   http_db_queue="3", http_query_timeout="60s")
    lock = EventsLock(data)
    threads, results = [], []
    try:
        # one listing runs (the other connection is kept for small reads),
        # the rest wait: 2 connections + 3 waiting admitted, then 503
        for n in range(1, 6):
            o, t = in_threads(lambda: api.get("/api/v1/events", WINDOW), 1)
            threads += t
            results.append(o)
            vt.wait_for(lambda: metric(api, "vigil_http_db_pending") == n, 20, 0.05,
                        "%d jobs pending" % n)
        r = api.get("/api/v1/events", WINDOW)
        assert r.status == 503 and r.json()["error"] == "busy", r
        assert r.header("retry-after") == "1"
        r = api.get("/api/v1/agents")
        assert r.status == 503 and r.header("retry-after") == "1"
        assert api.get("/api/v1/whoami").status == 200  # no database: not queued
    finally:
        lock.release()
    for t in threads:
        t.join(60)
    assert [o[0].status for o in results] == [200] * 5
    assert api.ok("/api/v1/agents")["count"] >= 2
