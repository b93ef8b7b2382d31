# SPDX-License-Identifier: Apache-2.0
"""Exactly-once storage under faults: while a load generator runs, the
collector is killed with SIGKILL and started again on the same port,
PostgreSQL is restarted under the running collector, and the collector is
killed once more. In the end every event is stored exactly once.

Select it alone with: pytest -m fault tests/integration
Scale with VIGIL_IT_FAULT_EVENTS (default 400000, a multiple of 4000)."""

import os
import signal
import subprocess
import time

import pytest

import vigiltest as vt

AGENTS, BATCH = 20, 200
EVENTS = int(os.environ.get("VIGIL_IT_FAULT_EVENTS", "400000"))
MIN_RUN_S = 40  # loadgen's --rate spreads the run over at least this long


def stored_events(db):
    """Events in committed batches (cheap: the agents table)."""
    try:
        if not db.table_exists("agents"):
            return 0
        return (db.scalar("SELECT coalesce(sum(committed_seq), 0) FROM agents") or 0) * BATCH
    except Exception:  # PostgreSQL restarting
        return 0


@pytest.mark.fault
def test_exactly_once_under_faults(collector_factory, loadgen_factory, db, pg):
    assert EVENTS % (AGENTS * BATCH) == 0
    batches_per_agent = EVENTS // (AGENTS * BATCH)
    coll = collector_factory(db, {"--db-retry-max": "1s"})
    t_start = time.monotonic()
    lg = loadgen_factory(coll, agents=AGENTS, batch_events=BATCH, events=EVENTS, window=8,
                         rate=EVENTS // MIN_RUN_S, agent_prefix="fault-", timeout=240)

    def running():
        assert lg.proc.poll() is None, "loadgen ended before the faults (rc %s):\n%s" % (
            lg.proc.returncode, lg.stderr_text()[-2000:])

    # 1. Crash the collector in the middle of the run, restart it.
    vt.wait_for(lambda: stored_events(db) >= EVENTS * 0.25, 120, interval=0.2,
                what="a quarter of the events stored")
    running()
    coll.kill()
    killed_at = stored_events(db)
    time.sleep(1)
    coll.start()

    # 2. Restart PostgreSQL under the running collector.
    vt.wait_for(lambda: stored_events(db) >= max(EVENTS * 0.55, killed_at + AGENTS * BATCH),
                120, interval=0.2, what="progress after the collector restart")
    running()
    pg.stop()
    time.sleep(2)
    pg.start()

    # 3. Crash the collector once more soon after, start it at once.
    vt.wait_for(lambda: stored_events(db) >= EVENTS * 0.8, 120, interval=0.2,
                what="progress after the PostgreSQL restart")
    running()
    coll.kill()
    coll.start()

    # 4. The load generator finishes by itself: every event acknowledged.
    rc = lg.wait(300)
    assert rc == 0, "loadgen exited %d:\n%s" % (rc, lg.stderr_text()[-3000:])
    s = lg.summary()
    assert s["events_sent"] == EVENTS
    assert s["events_acked"] == EVENTS
    assert s["reconnects"] >= AGENTS, s
    assert coll.alive(), "collector died:\n" + coll.log_text()[-3000:]

    total, distinct = db.query(
        "SELECT count(*), count(DISTINCT (agent_id, seq, idx)) FROM events WHERE seq > 0")[0]
    assert total == distinct, "%d duplicated events" % (total - distinct)
    assert total == EVENTS, "%d events lost" % (EVENTS - total)
    assert db.scalar("SELECT count(*) FROM dead_letters") == 0

    per_agent = db.query(
        "SELECT a.name, a.committed_seq, count(e.*), count(DISTINCT e.seq), "
        "min(e.seq), max(e.seq), min(e.idx), max(e.idx) "
        "FROM agents a LEFT JOIN events e ON e.agent_id = a.id AND e.seq > 0 "
        "GROUP BY a.name, a.committed_seq ORDER BY a.name")
    assert len(per_agent) == AGENTS
    for name, committed, n, nseq, smin, smax, imin, imax in per_agent:
        assert committed == batches_per_agent, (name, committed)
        assert (n, nseq, smin, smax, imin, imax) == (
            batches_per_agent * BATCH, batches_per_agent, 1, batches_per_agent,
            0, BATCH - 1), name
    print("fault test: %d events in %.0fs, collector killed at %d stored; loadgen: %s"
          % (EVENTS, time.monotonic() - t_start, killed_at, s))


def postgres_pids(pg):
    with open(os.path.join(pg.dir, "data", "postmaster.pid")) as f:
        master = int(f.readline())
    kids = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [master] + [int(p) for p in kids.split()]


@pytest.mark.serial
@pytest.mark.fault
def test_hung_postgres(collector_factory, loadgen_factory, db, pg):
    """PostgreSQL stops answering (every process SIGSTOPped) under load:
    the collector gives up on the hung connection after --db-timeout,
    acknowledges nothing meanwhile, and recovers by itself once the server
    answers again; every event ends up stored once."""
    agents, batch, events = 5, 100, 60000
    coll = collector_factory(db, {"--db-timeout": "2s", "--db-retry-max": "500ms"})
    lg = loadgen_factory(coll, agents=agents, batch_events=batch, events=events, window=4,
                         rate=4000, agent_prefix="hung-", timeout=180)
    vt.wait_for(lambda: (db.scalar("SELECT coalesce(sum(committed_seq), 0) FROM agents")
                         or 0) * batch >= events // 4, 60, interval=0.2,
                what="a quarter of the events stored")
    off = coll.log_size()
    pids = postgres_pids(pg)

    def signal_all(sig):
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass  # a backend that exited since it was listed

    signal_all(signal.SIGSTOP)
    try:
        vt.wait_for(lambda: "did not answer in time" in coll.log_since(off), 20,
                    what="the collector noticing the hung server")
        time.sleep(2)
    finally:
        signal_all(signal.SIGCONT)
    rc = lg.wait(150)
    assert rc == 0, "loadgen exited %d:\n%s" % (rc, lg.stderr_text()[-3000:])
    assert coll.alive()
    assert "PostgreSQL is back" in coll.log_since(off)
    total, distinct = db.query(
        "SELECT count(*), count(DISTINCT (agent_id, seq, idx)) FROM events WHERE seq > 0")[0]
    assert (total, distinct) == (events, events)
