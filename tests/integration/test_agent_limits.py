# SPDX-License-Identifier: Apache-2.0
"""The agent obeys the collector's limits (issue 11, item 6): batches spooled
while the collector was away, larger than its --max-batch-events or
--max-frame-bytes, are cut to fit before they are sent, every event stored
exactly once and nothing refused; the cut survives an agent killed before
the pieces were acknowledged; an event too large for any frame is dropped
and counted as a loss instead of blocking the spool."""

import os
import struct

import psycopg2

import vigiltest as vt
from agent_fixtures import *  # noqa: F401,F403 (fixtures)
from agent_fixtures import SPOOL_MAGIC, agent_events, spool_events, statuses

KIND_EXEC = 4
N_EXECS = 1500
MARK = "vigil-limits-end"


def wait_rows(fn, what, timeout=60):
    return vt.wait_for(fn, timeout, interval=0.25, what=what)


def spool_dir(a):
    return a.args[a.args.index("--spool-dir") + 1]


def spool_batch_sizes(spool_dir):
    """(events, payload bytes) of every record in the spool."""
    out = []
    for name in sorted(n for n in os.listdir(spool_dir) if n.startswith("seg-")):
        with open(os.path.join(spool_dir, name), "rb") as f:
            data = f.read()
        off = 0
        while off + 48 <= len(data):
            magic, length, _seq, n_events = struct.unpack_from("<IIQI", data, off)
            if magic != SPOOL_MAGIC or off + 48 + length > len(data):
                break
            out.append((n_events, length))
            off += 48 + length
    return out


def exec_keys_in_spool(spool_dir, cid):
    return sorted((e.process_exec.pid, tuple(e.process_exec.argv))
                  for e in spool_events(spool_dir)
                  if e.kind == KIND_EXEC and e.container_id == cid)


def exec_keys_stored(db, name, cid):
    return sorted((r[4], tuple(r[6] or ())) for r in agent_events(db, name, KIND_EXEC, cid)
                  if r[0] > 0)


def spool_while_away(db, collector_factory, agent_factory, runc_factory, name, flags,
                     big_arg=0):
    """Start the collector once (the schema), stop it, and let agent NAME
    spool batches of up to 500 events: N_EXECS execs of one container, and
    with big_arg an exec whose argv holds big_arg bytes. The agent is
    stopped with everything in its spool. Return (collector, agent,
    container, spooled exec keys)."""
    col = collector_factory(db, flags)
    assert col.terminate() == 0
    a = agent_factory(col, name, wait_connected=False, batch_max_events=500,
                      batch_delay="3s", argv_max_bytes="64KiB", string_max_bytes="64KiB")
    # made inside the container (the container's own command stays small);
    # a shell that forks keeps its argv for the agent to read
    big = ("sh -c 'sleep 1; true' $(head -c %d /dev/zero | tr '\\0' b); " % big_arg
           if big_arg else "")
    c = runc_factory(["sh", "-c", "sleep 2; %si=0; while [ $i -lt %d ]; do /bin/true x $i; "
                      "i=$((i+1)); done; exec sh -c 'sleep 1000; true' %s"
                      % (big, N_EXECS, MARK)]).start()
    spool = spool_dir(a)
    wait_rows(lambda: any(MARK in e.process_exec.argv for e in spool_events(spool)
                          if e.kind == KIND_EXEC), "the last exec in the spool", 120)
    assert a.terminate() == 0  # its last batch goes to the spool
    keys = exec_keys_in_spool(spool, c.id)
    assert len(keys) >= N_EXECS
    assert len(set(keys)) == len(keys)
    return col, a, c, keys


def assert_exactly_once(db, name, cid, keys):
    def all_there():
        got = exec_keys_stored(db, name, cid)
        return got if len(got) >= len(keys) else None
    try:
        got = wait_rows(all_there, "every spooled exec stored")
    except AssertionError:
        got = exec_keys_stored(db, name, cid)
        raise AssertionError("%d of %d execs stored" % (len(got), len(keys)))
    assert got == keys  # each once, none missing, none twice


def test_batches_cut_to_max_batch_events(db, collector_factory, agent_factory, runc_factory):
    name = "agent-lim-events"
    col, a, c, keys = spool_while_away(db, collector_factory, agent_factory, runc_factory, name,
                                       {"--max-batch-events": "100"})
    spool = spool_dir(a)
    assert max(n for n, _ in spool_batch_sizes(spool)) > 100
    col.start()
    a.start(wait_connected=True)
    assert_exactly_once(db, name, c.id, keys)
    a.wait_log("are sent again as smaller batches")
    assert "above the limit" not in col.log_text()
    # what the agent makes from now on fits too
    assert max(r[1] for r in db.query(
        "SELECT e.seq, count(*) FROM events e JOIN agents g ON g.id = e.agent_id "
        "WHERE g.name = %s AND e.seq > 0 GROUP BY e.seq", (name,))) <= 100


def test_batches_cut_to_max_frame_bytes_and_a_too_large_event(db, collector_factory,
                                                              agent_factory, runc_factory):
    name = "agent-lim-frame"
    frame = 8 * 1024
    col, a, c, keys = spool_while_away(db, collector_factory, agent_factory, runc_factory, name,
                                       {"--max-frame-bytes": str(frame)}, big_arg=15000)
    spool = spool_dir(a)
    sizes = spool_batch_sizes(spool)
    assert max(length for _, length in sizes) > frame
    big = [k for k in keys if any(len(x) >= 15000 for x in k[1])]
    assert len(big) == 1, "the exec with the large argv was spooled whole"
    col.start()
    a.start(wait_connected=True)
    assert_exactly_once(db, name, c.id, [k for k in keys if k not in big])
    a.wait_log("events above the collector's frame limit were dropped")
    assert "above the limit" not in col.log_text()

    # the dropped event is a counted loss in the agent's status
    def too_large():
        for d in statuses(db, name):
            for loss in d.get("losses", []):
                if loss.get("what") == "event_too_large" and loss.get("total", 0) >= 1:
                    return loss
        return None
    wait_rows(too_large, "an event_too_large loss in an agent status")
    assert a.alive()


def test_cut_survives_an_agent_killed_before_the_acks(db, collector_factory, agent_factory,
                                                      runc_factory):
    """The pieces were sent but not acknowledged (the events table is
    locked) when the agent is killed: after its restart it sends the same
    pieces again, never its original batches nor a second cut of them."""
    name = "agent-lim-kill"
    col, a, c, keys = spool_while_away(db, collector_factory, agent_factory, runc_factory, name,
                                       {"--max-batch-events": "100"})
    lock = psycopg2.connect(db.conninfo)
    try:
        lock.cursor().execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        col.start()
        a.start(wait_connected=True)
        a.wait_log("are sent again as smaller batches")
        vt.wait_for(lambda: db.scalar(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = "
            "'events'::regclass") > 0, 30, what="a batch waiting on the locked events table")
        a.kill()
        a.start(wait_connected=False)
        a.wait_log("ranges of replaced batches are skipped")
    finally:
        lock.rollback()
        lock.close()
    a.wait_log("connected as", 60)
    assert_exactly_once(db, name, c.id, keys)
    assert "above the limit" not in col.log_text()
    assert "whose replacement did not finish" not in a.log_text()


def test_batch_refused_for_good_is_dropped_not_resent(collector_factory, db, agent_factory):
    """A batch the collector refuses whole (more bad events than
    max_bad_events_per_batch: PostgreSQL refuses the agent's status rows
    here) comes back as ERROR_CODE_BATCH_REFUSED naming its seq: the real
    agent drops it from its spool and counts the loss instead of sending it
    again forever, and what it sends next is stored."""
    coll = collector_factory(db, {"--max-bad-events-per-batch": "0"})
    db.query("""
        CREATE FUNCTION refuse_status() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.kind = 5 THEN
                RAISE EXCEPTION 'status refused' USING ERRCODE = '22023';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_status BEFORE INSERT ON events
            FOR EACH ROW EXECUTE FUNCTION refuse_status();""")
    name = "refused-batches"
    a = agent_factory(coll, name, status_interval="1s")
    try:
        a.wait_log("refused by the collector for good; dropped from the spool", 30)
    finally:
        db.query("DROP TRIGGER refuse_status ON events; DROP FUNCTION refuse_status()")
    refusals = coll.log_text().count("refused whole")
    # the agent goes on: its next status is stored, and says what was lost
    wait_rows(lambda: db.scalar(
        "SELECT count(*) FROM events e JOIN agents g ON g.id = e.agent_id "
        "WHERE g.name = %s AND e.kind = 5 AND e.details::text LIKE '%%batch_refused%%'",
        (name,)), "a status event that counts the refused batch")
    # each refused batch was refused once, not resent in a loop
    dropped = a.log_text().count("refused by the collector for good")
    assert dropped >= 1 and coll.log_text().count("refused whole") <= refusals + 2
    assert refusals <= dropped + 2, (refusals, dropped)
