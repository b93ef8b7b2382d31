# SPDX-License-Identifier: Apache-2.0
"""argv= with the trigram indexes of ended days (schema/0012_argv_index.sql,
collector/ingest/argvindex.c) against a real collector and PostgreSQL:
the index is built on yesterday's events partition only, never on today's;
the statement the API runs uses it there; argv= answers the same before and
after it exists (LIKE's % _ and \\ still plain characters); a SIGTERM
during a build ends the collector promptly and cancels the build on the
server, and the next collector replaces the invalid index it left; and the
database's owner, no superuser, gets pg_trgm (a trusted extension)."""

import re
import threading
import time

import psycopg2
import pytest

import apitest as at
import vigiltest as vt

# the argv index builds (CREATE INDEX CONCURRENTLY) race the test's own locks and
# pg_stat_activity reads: timing under load
pytestmark = pytest.mark.serial

DAY_NS = 86400 * 10**9
AGENT = "argv-node"
PER_DAY = 400
FILLERS = 50000
SPECIAL = ["50%", "a_b", "x\\y"]
TERMS = ["needle-7 --at", "needle-1", "--at", "50%", "a_b", "x\\y", "%", "_", "\\",
         "le-3 --at 12", "absent-text", "ab"]


def argv_of(i):
    return ["/usr/bin/needle-%d" % (i % 10), "--at", str(i),
            SPECIAL[i % 3] if i % 7 == 3 else "plain"]


def clear_of_midnight():
    """Now, at least 3 minutes after a UTC midnight and 5 minutes before the
    next (a test that straddles one would see its "today" end)."""
    now = vt.now_ns()
    into = now % DAY_NS
    if into < 180 * 10**9 or into > DAY_NS - 300 * 10**9:
        time.sleep(((DAY_NS - into) % DAY_NS + 180 * 10**9) / 1e9)
        now = vt.now_ns()
    return now


def part_name(ns):
    return "events_p" + time.strftime("%Y%m%d", time.gmtime(ns // 10**9))


def send_events(c, db, pki, now):
    """PER_DAY exec events yesterday (UTC) and as many in the last minute,
    all in the default window (24 h) from now until an hour after, through
    the real ingest path; and FILLERS events yesterday that no term
    matches, so that the planner finds the index worth using."""
    into = now % DAY_NS
    past = now - 20 * 3600 * 10**9 if into < 20 * 3600 * 10**9 else now - into - 3600 * 10**9
    cert, key = pki.agent(AGENT)
    with vt.RawAgent(c.port, vt.client_context(pki, cert, key)).connect() as a:
        a.hello()
        for day, base in ((0, past), (1, now - 60 * 10**9)):
            evs = [vt.exec_event(100 + i, argv_of(i), ts=base + i * 100_000_000)
                   for i in range(PER_DAY)]
            a.batch(day + 1, evs)
    db.query("INSERT INTO events (ts, recv_ts, agent_id, seq, idx, kind, severity, argv) "
             "SELECT to_timestamp(%s) - g * interval '100 ms', now(), a.id, 1000 + g, 0, 4, 1, "
             "ARRAY['/bin/filler', '-q', g::text] FROM agents a, generate_series(1, %s) g "
             "WHERE a.name = %s", (past / 1e9, FILLERS, AGENT))


def start(factory, db, pki, collector_bin, index):
    hport = vt.free_port()
    c = factory(db, flags={"--http-listen": "127.0.0.1:%d" % hport, "--http-rate-limit": "0",
                           "--argv-index": "true" if index else "false"})
    tok = at.create_token(collector_bin, db, "argv-%d" % hport, "viewer")
    return c, at.Api(hport, pki, tok, timeout=60)


def answers(api):
    """Every term's events (agent, seq, idx), newest first, over the two days
    and over the default window (24 h)."""
    out = {}
    for t in TERMS:
        for w in ({"since": "48h"}, {}):
            d = api.ok("/api/v1/events", dict(w, argv=t, limit=1000))
            out[(t, bool(w))] = [(e["agent"], e["seq"], e["idx"]) for e in d["events"]]
    return out


def expected(db, term, hours):
    return [tuple(r) for r in db.query(
        "SELECT a.name, e.seq, e.idx FROM events e JOIN agents a ON a.id = e.agent_id "
        "WHERE e.ts >= now() - make_interval(hours => %s) "
        "AND strpos(array_to_string(e.argv, ' '), %s) > 0 "
        "ORDER BY e.ts DESC, e.agent_id DESC, e.seq DESC, e.idx DESC", (hours, term))]


def argv_indexes(db):
    """{index name: valid} of the argv= trigram indexes."""
    return dict(db.query("SELECT i.indexrelid::regclass::text, i.indisvalid FROM pg_index i "
                         "WHERE i.indexrelid::regclass::text LIKE 'events_p%%_argv_trgm'"))


def wait_for(what, fn, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.1)


@pytest.fixture(scope="module")
def data(module_db, module_collector_factory, pki, collector_bin):
    """The events, and argv= answers from a collector that builds no index."""
    now = clear_of_midnight()
    c, api = start(module_collector_factory, module_db, pki, collector_bin, index=False)
    send_events(c, module_db, pki, now)
    before = answers(api)
    assert argv_indexes(module_db) == {}
    c.terminate()
    return {"db": module_db, "now": now, "before": before,
            "past": part_name(now - DAY_NS), "today": part_name(now)}


def test_index_on_ended_days_only_and_same_answers(data, module_collector_factory, pki,
                                                   collector_bin):
    db = data["db"]
    for (term, wide), got in data["before"].items():
        assert got == expected(db, term, 48 if wide else 24), term
    assert data["before"][("needle-7 --at", True)], "terms match events of both days"
    assert any(data["before"][(t, True)] for t in SPECIAL)
    assert data["before"][("absent-text", True)] == []
    c, api = start(module_collector_factory, db, pki, collector_bin, index=True)
    past = data["past"] + "_argv_trgm"
    wait_for("the index of " + past, lambda: argv_indexes(db).get(past))
    idx = argv_indexes(db)
    assert data["today"] + "_argv_trgm" not in idx  # the day still takes inserts
    assert all(v for v in idx.values())
    ahead = db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%%_argv_trgm' "
                      "AND tablename >= %s", (data["today"],))
    assert ahead == 0
    assert db.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'") == 1
    assert answers(api) == data["before"]
    c.terminate()


def statement_of(db, api, params):
    """The SQL text the API runs for GET /api/v1/events with params, taken
    from pg_stat_activity while a lock the test holds keeps it waiting."""
    lock = psycopg2.connect(db.conninfo)
    lock.cursor().execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", api.get("/api/v1/events", params)))
    t.start()
    try:
        sql = wait_for("the API's statement", lambda: db.scalar(
            "SELECT query FROM pg_stat_activity WHERE application_name = "
            "'vigil-collector-api' AND wait_event_type = 'Lock' "
            "AND query LIKE '%%vigil_argv_text%%'"))
    finally:
        lock.rollback()
        lock.close()
        t.join()
    assert out["r"].status == 200
    return sql


def explain(db, sql, values):
    """The plan of sql with $n = values[n] (the API's own parameters), as a
    prepared statement's first, custom plan."""
    c = psycopg2.connect(db.conninfo)
    try:
        cur = c.cursor()
        cur.execute("PREPARE q AS " + sql.replace("%", "%%"))
        n = max(int(m) for m in re.findall(r"\$(\d+)", sql))
        args = ", ".join(["%s"] * n)
        cur.execute("EXPLAIN EXECUTE q(" + args + ")", [values.get(i, "x") for i in
                                                          range(1, n + 1)])
        return "\n".join(r[0] for r in cur.fetchall())
    finally:
        c.rollback()
        c.close()


def test_the_api_statement_uses_the_index(data, module_collector_factory, pki, collector_bin):
    db = data["db"]
    c, api = start(module_collector_factory, db, pki, collector_bin, index=True)
    past = data["past"] + "_argv_trgm"
    wait_for("the index of " + past, lambda: argv_indexes(db).get(past))
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(data["now"] // 10**9 - 25 * 3600))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(data["now"] // 10**9 + 3600))
    term = "needle-7 --at 1"
    sql = statement_of(db, api, {"argv": term, "since": since, "until": until})
    # the API's parameters, by where the statement puts them
    values = {}
    for pat, v in ((r"e\.ts >= \$(\d+)", since), (r"e\.ts < \$(\d+)", until),
                   (r"vigil_argv_text\(e\.argv\) LIKE \$(\d+)", "%" + term + "%"),
                   (r"strpos\(array_to_string\(e\.argv, ' '\), \$(\d+)\)", term),
                   (r"LIMIT \$(\d+)", "101")):
        m = re.search(pat, sql)
        assert m, pat
        values[int(m.group(1))] = v
    plan = explain(db, sql, values)
    assert "Bitmap Index Scan on " + past in plan, plan
    # today's partition is read without one (there is none to use)
    assert re.search(r"Scan\b.* on %s\b" % data["today"], plan), plan
    assert data["today"] + "_argv_trgm" not in plan
    c.terminate()


def test_sigterm_during_a_build(data, module_collector_factory, pki, collector_bin):
    """A build kept waiting by a transaction of the test (CREATE INDEX
    CONCURRENTLY waits for the writers of its table): SIGTERM ends the
    collector at once and the build on the server; the next collector
    replaces the invalid index left."""
    db = data["db"]
    past = data["past"] + "_argv_trgm"
    db.query('DROP INDEX IF EXISTS "%s"' % past)
    writer = psycopg2.connect(db.conninfo)
    writer.cursor().execute('LOCK TABLE "%s" IN ROW EXCLUSIVE MODE' % data["past"])
    try:
        c, _ = start(module_collector_factory, db, pki, collector_bin, index=True)
        wait_for("a build under way", lambda: db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
            "'vigil-collector-argv-index' AND query LIKE 'CREATE INDEX CONCURRENTLY%%' "
            "AND wait_event_type = 'Lock'"))
        t0 = time.monotonic()
        assert c.terminate(timeout=30) == 0
        took = time.monotonic() - t0
        assert took < 5, "the collector took %.1f s to exit" % took
        # the server ends the build's backend once the collector's cancel
        # and close reach it: a moment later, not at once
        wait_for("the build's backend gone", lambda: db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
            "'vigil-collector-argv-index'") == 0, timeout=5)
        assert argv_indexes(db).get(past) is False  # left invalid by the cancelled build
    finally:
        writer.rollback()
        writer.close()
    c, api = start(module_collector_factory, db, pki, collector_bin, index=True)
    wait_for("the index of " + past + " again", lambda: argv_indexes(db).get(past))
    assert answers(api) == data["before"]
    c.terminate()


def test_owner_without_superuser_gets_pg_trgm(pg, collector_factory, collector_bin):
    """A database owned by a role that is no superuser: the collector, as
    that role, creates the extension and builds the index."""
    role = "vigil_argv_owner"
    pg._admin("DROP DATABASE IF EXISTS vigil_argv_owner_db WITH (FORCE)")
    pg._admin("DROP ROLE IF EXISTS %s" % role)
    pg._admin("CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE" % role)
    pg._admin("CREATE DATABASE vigil_argv_owner_db OWNER %s" % role)
    db = vt.Database(pg, "vigil_argv_owner_db")
    db.conninfo = db.conninfo.replace("user=postgres", "user=" + role)
    try:
        assert not db.scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        c = collector_factory(db)  # migrates, then builds in the background
        now = vt.now_ns()
        past = part_name(now - DAY_NS) + "_argv_trgm"
        wait_for("the index of " + past, lambda: argv_indexes(db).get(past))
        assert db.scalar("SELECT r.rolname FROM pg_extension x JOIN pg_roles r "
                         "ON r.oid = x.extowner WHERE x.extname = 'pg_trgm'") == role
        c.terminate()
    finally:
        pg._admin("DROP DATABASE IF EXISTS vigil_argv_owner_db WITH (FORCE)")
        pg._admin("DROP ROLE IF EXISTS %s" % role)
