# SPDX-License-Identifier: Apache-2.0
"""The ingest path under a hostile or faulty agent (issue 11, items 2, 3, 5
and 7), each attack performed against the real collector and PostgreSQL:

- one agent's refusable events cannot stall another agent on the same
  writer; a batch with too many bad events is refused whole; dead letters
  have a quota and a retention (2);
- the queue bound holds with the events table locked, and queued Hello
  jobs of closed connections do not pile up with PostgreSQL down (3);
- memory follows the frame, the collector caps fields itself, a NUL in a
  string is refused, not cut (5);
- a database error that no row explains does not retry forever, and its
  text is cut on a UTF-8 boundary (7).
"""

import os
import socket
import ssl
import threading
import time

import psycopg2
import pytest

import vigiltest as vt

BAD = b"BADUTF8X"          # placeholder, replaced by invalid UTF-8 of the same length
BAD_BYTES = b"\xff\xfeBAD\xc3(X"
NUL = b"NULNULXX"          # placeholder, replaced by a string holding a NUL
NUL_BYTES = b"ab\x00cdefg"


def batch_payload(seq, events):
    """An AgentMessage{batch} with the placeholders made bad."""
    _, P = vt.pb()
    m = P.AgentMessage()
    m.batch.seq = seq
    m.batch.events.extend(events)
    return m.SerializeToString().replace(BAD, BAD_BYTES).replace(NUL, NUL_BYTES)


def bad_exec(i):
    return vt.exec_event(10000 + i, ["/bin/x", BAD.decode()])


def good_exec(i, tag="ok"):
    return vt.exec_event(i, ["/bin/" + tag, str(i)])


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith(field + ":"):
                return int(ln.split()[1])
    raise AssertionError("no %s" % field)


def connect(pki, port, name, timeout=30.0):
    cert, key = pki.agent(name)
    a = vt.RawAgent(port, vt.client_context(pki, cert, key), timeout).connect()
    a.hello()
    return a


def agent_events(db, name):
    return db.scalar("SELECT count(*) FROM events e JOIN agents a ON a.id = e.agent_id "
                     "WHERE a.name = %s", (name,))


def dead_of(db, name):
    return db.query("SELECT d.seq, d.idx, d.reason, d.payload FROM dead_letters d "
                    "JOIN agents a ON a.id = d.agent_id WHERE a.name = %s ORDER BY d.seq, d.idx",
                    (name,))


@pytest.fixture(scope="module")
def coll(module_collector_factory, module_db):
    """One writer, so an agent and the hostile one share it."""
    return module_collector_factory(module_db, {
        "--db-writers": "1", "--dead-letters-per-agent": "300",
        "--event-string-max": "4KiB", "--event-argv-max": "16KiB", "--event-list-max": "64",
        "--db-retry-max": "1s"})


# --- item 2 ---------------------------------------------------------------------------


@pytest.mark.serial
def test_hostile_agent_does_not_stall_another(coll, module_db, pki):
    """16 pipelined batches of 20,000 refusable events (invalid UTF-8 in argv),
    sent again after each refusal, while another agent on the same writer
    measures its ack latency."""
    _, P = vt.pb()
    hostile_events = [bad_exec(i) for i in range(20000)]
    frames = [batch_payload(s, hostile_events) for s in range(1, 17)]
    good = connect(pki, coll.port, "abuse-good")
    lat, stop, errors = [], threading.Event(), []

    def hostile():
        while not stop.is_set():
            try:
                a = connect(pki, coll.port, "abuse-hostile")
            except (OSError, vt.Closed, ssl.SSLError, AssertionError):
                continue
            try:
                for f in frames:
                    a.send_frame(f)
            except (OSError, ssl.SSLError):
                pass  # refused and closed while the rest was being sent
            try:
                errors.append(vt.error_of(a.read_until_close(60)))
            except (OSError, ssl.SSLError, AssertionError):
                errors.append(None)
            a.close()

    t = threading.Thread(target=hostile, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 20
        seq = 0
        while time.monotonic() < deadline or len(errors) < 2:
            seq += 1
            t0 = time.monotonic()
            good.batch(seq, [good_exec(seq * 10 + i) for i in range(10)], timeout=60)
            lat.append(time.monotonic() - t0)
            assert time.monotonic() < deadline + 60, "hostile agent never refused"
    finally:
        stop.set()
        t.join(90)
    lat.sort()
    p99 = lat[int(len(lat) * 0.99) - 1] if len(lat) >= 100 else lat[-1]
    print("\nack latency of the other agent: %d batches, p50 %.1f ms, p99 %.1f ms, "
          "max %.1f ms; hostile refusals %d" % (len(lat), lat[len(lat) // 2] * 1000,
                                                p99 * 1000, lat[-1] * 1000, len(errors)))
    assert p99 < 1.0, p99
    err = next(e for e in errors if e is not None)
    assert err.code == P.ERROR_CODE_BATCH_REFUSED and err.seq >= 1  # the agent drops it
    assert "max_bad_events_per_batch" in err.message and "20000" in err.message, err.message
    assert agent_events(module_db, "abuse-hostile") == 0
    assert not dead_of(module_db, "abuse-hostile")
    assert agent_events(module_db, "abuse-good") == seq * 10
    good.close()


def test_bad_events_go_to_dead_letters_before_copy(coll, module_db, pki):
    """A few bad events of a batch are kept as dead letters with their bytes
    as sent, the NUL one not cut; the rest is stored."""
    name = "abuse-few-bad"
    a = connect(pki, coll.port, name)
    evs = [good_exec(i) for i in range(50)]
    evs[3] = bad_exec(3)
    evs[7] = vt.exec_event(7, ["/bin/x", NUL.decode()])
    a.send_frame(batch_payload(1, evs))
    a.wait_ack(1)
    assert agent_events(module_db, name) == 48
    dead = dead_of(module_db, name)
    assert [(s, i) for s, i, _, _ in dead] == [(1, 3), (1, 7)]
    assert "UTF-8" in dead[0][2]
    assert "NUL" in dead[1][2]
    assert BAD_BYTES in bytes(dead[0][3]) and NUL_BYTES in bytes(dead[1][3])
    a.close()


def test_dead_letter_quota_and_retention(coll, module_db, pki):
    name = "abuse-quota"
    a = connect(pki, coll.port, name)
    for s in range(1, 5):  # 4 x 100 bad events, quota 300
        a.send_frame(batch_payload(s, [bad_exec(i) for i in range(100)] + [good_exec(s)]))
        a.wait_ack(s)
    assert len(dead_of(module_db, name)) == 300
    # an expired dead letter of the agent goes when its next ones are written
    module_db.query("UPDATE dead_letters SET received_at = now() - interval '40 days' "
                    "WHERE id IN (SELECT d.id FROM dead_letters d JOIN agents a "
                    "ON a.id = d.agent_id WHERE a.name = %s ORDER BY d.id LIMIT 50)", (name,))
    a.send_frame(batch_payload(5, [bad_exec(0), good_exec(5)]))
    a.wait_ack(5)
    assert len(dead_of(module_db, name)) == 251
    assert module_db.scalar("SELECT count(*) FROM dead_letters WHERE received_at < "
                            "now() - interval '30 days'") == 0
    assert agent_events(module_db, name) == 5
    a.close()


def test_rows_postgresql_refuses_are_isolated(coll, module_db, pki):
    """Rows refused by PostgreSQL itself (a trigger here) are found by
    halving and kept as dead letters; more than max_bad_events_per_batch of
    them refuse the batch whole; another agent's batches are stored."""
    _, P = vt.pb()
    module_db.query("""
        CREATE FUNCTION abuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.exe = '/poison' THEN
                RAISE EXCEPTION 'poison row %', NEW.idx USING ERRCODE = '22023';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER abuse_poison BEFORE INSERT ON events
            FOR EACH ROW EXECUTE FUNCTION abuse_poison();""")
    try:
        name, other = "abuse-db-bad", "abuse-db-other"
        a, b = connect(pki, coll.port, name), connect(pki, coll.port, other)
        evs = [good_exec(i) for i in range(2000)]
        for i in (5, 999, 1500):
            evs[i] = vt.exec_event(i, ["/poison"], exe="/poison")
        a.send_batch(1, evs)
        b.send_batch(1, [good_exec(i) for i in range(100)])
        t0 = time.monotonic()
        a.wait_ack(1, timeout=60)
        b.wait_ack(1, timeout=60)
        print("\nbatch of 2000 with 3 rows PostgreSQL refuses: %.2f s" % (time.monotonic() - t0))
        assert agent_events(module_db, name) == 1997
        assert agent_events(module_db, other) == 100
        dead = dead_of(module_db, name)
        assert [i for _, i, _, _ in dead] == [5, 999, 1500]
        assert all("poison row" in r for _, _, r, _ in dead)
        # too many: refused whole, nothing stored, committed_seq unchanged
        a.send_batch(2, [vt.exec_event(i, ["/poison"], exe="/poison") for i in range(150)])
        err = vt.error_of(a.read_until_close(60))
        assert err.code == P.ERROR_CODE_BATCH_REFUSED and "refused whole" in err.message, err
        assert err.seq == 2  # which batch: the agent drops it instead of resending it
        assert module_db.agent_row(name)[1] == 1
        assert agent_events(module_db, name) == 1997
    finally:
        module_db.query("DROP TRIGGER abuse_poison ON events; DROP FUNCTION abuse_poison()")


# --- item 7 ---------------------------------------------------------------------------


def test_error_no_row_explains_is_quarantined(coll, module_db, pki):
    """A container state PostgreSQL refuses with a non-data error (P0001)
    does not block the writer; the reason is kept, cut on a UTF-8 boundary."""
    module_db.query("""
        CREATE FUNCTION abuse_state() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.name = 'poison' THEN
                RAISE EXCEPTION '%', repeat('é', 700);
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER abuse_state BEFORE INSERT OR UPDATE ON containers
            FOR EACH ROW EXECUTE FUNCTION abuse_state();""")
    try:
        name = "abuse-state"
        a, b = connect(pki, coll.port, name), connect(pki, coll.port, "abuse-state-other")
        a.send_batch(1, [vt.container_started_event("c" * 64, "poison"), good_exec(1)])
        a.wait_ack(1, timeout=60)
        b.batch(1, [good_exec(2)], timeout=30)
        assert agent_events(module_db, name) == 2
        dead = dead_of(module_db, name)
        assert len(dead) == 1 and dead[0][1] == -1, dead
        reason = dead[0][2]
        assert reason.startswith("container state: ") and "éé" in reason
        assert len(reason.encode()) < 700 and "\ufffd" not in reason, reason
        a.batch(2, [good_exec(3)], timeout=30)
    finally:
        module_db.query("DROP TRIGGER abuse_state ON containers; DROP FUNCTION abuse_state()")


# --- item 5 ---------------------------------------------------------------------------


def test_collector_caps_fields(coll, module_db, pki):
    name = "abuse-caps"
    a = connect(pki, coll.port, name)
    c = vt.container_started_event("d" * 64, "many-labels")
    for i in range(2000):
        lab = c.container_started.container.labels.add()
        lab.key, lab.value = "k%d" % i, "v" * (100 if i else 64 * 1024)
    x = vt.exec_event(1, ["/bin/long"] + ["a" * 1000] * 1000)
    a.batch(1, [c, x], timeout=30)
    n_labels, long_label = module_db.query(
        "SELECT (SELECT count(*) FROM jsonb_object_keys(labels)), "
        "length(labels->>'app') FROM containers WHERE name = 'many-labels'")[0]
    assert n_labels == 64, n_labels
    argv_len, truncated = module_db.query(
        "SELECT sum(length(u)), bool_or((details->>'truncated')::boolean) FROM events e "
        "JOIN agents a ON a.id = e.agent_id, unnest(e.argv) u WHERE a.name = %s AND "
        "e.exe = '/bin/long'", (name,))[0]
    assert argv_len <= 16 * 1024 and truncated, (argv_len, truncated)
    assert module_db.scalar(
        "SELECT (details->>'truncated')::boolean FROM events e JOIN agents a "
        "ON a.id = e.agent_id WHERE a.name = %s AND e.kind = 2", (name,)) is True
    a.close()


@pytest.mark.serial
def test_memory_follows_the_frame(coll, module_db, pki):
    """Ten 4 MiB batches of 2 million empty repeated strings at once: each
    is refused when unpacking it would pass its budget (16 bytes a byte)."""
    _, P = vt.pb()
    m = P.AgentMessage()
    m.batch.seq = 1
    e = m.batch.events.add()
    e.CopyFrom(vt.exec_event(1, ["/bin/x"]))
    e.process_exec.argv.extend([""] * 2000000)
    frame = m.SerializeToString()
    assert len(frame) < 4 * 1024 * 1024
    pid = coll.proc.pid
    before = rss_kib(pid)
    agents = [connect(pki, coll.port, "abuse-mem-%d" % i, timeout=60) for i in range(10)]
    errs = [None] * len(agents)

    def send(i):
        try:
            agents[i].send_frame(frame)
        except OSError:
            pass
        errs[i] = vt.error_of(agents[i].read_until_close(60))

    ts = [threading.Thread(target=send, args=(i,)) for i in range(len(agents))]
    for t in ts:
        t.start()
    peak = before
    while any(t.is_alive() for t in ts):
        peak = max(peak, rss_kib(pid))
        time.sleep(0.05)
    hwm = rss_kib(pid, "VmHWM")
    print("\nten frames of 2 million empty strings: RSS %d -> peak %d KiB (high water %d KiB)"
          % (before, peak, hwm))
    assert all(e is not None and e.code == P.ERROR_CODE_BAD_MESSAGE and "unpacked" in e.message
               for e in errs), errs
    assert (hwm - before) < 400 * 1024, (before, hwm)
    assert module_db.scalar("SELECT count(*) FROM events e JOIN agents a ON "
                            "a.id = e.agent_id WHERE a.name LIKE 'abuse-mem-%%'") == 0


def test_many_empty_events_refused_before_unpacking(coll, pki):
    _, P = vt.pb()
    a = connect(pki, coll.port, "abuse-empty-events")
    n = (4 * 1024 * 1024 - 64) // 2
    inner = b"\x08\x01" + b"\x12\x00" * n
    size = len(inner)
    hdr = b""
    while True:
        b = size & 0x7F
        size >>= 7
        hdr += bytes([b | (0x80 if size else 0)])
        if not size:
            break
    a.send_frame(b"\x12" + hdr + inner)
    err = vt.error_of(a.read_until_close(30))
    assert err is not None and "unpacked" in err.message, err


# --- item 3 ---------------------------------------------------------------------------


QUEUE_HIGH = 16 * 1024 * 1024


def queue_bytes(api):
    """The collector's queued bytes (vigil_queue_bytes), or None."""
    try:
        for line in api.get("/metrics").body.decode().splitlines():
            if line.startswith("vigil_queue_bytes "):
                return int(float(line.split()[1]))
    except OSError:
        pass
    return None


@pytest.mark.serial
def test_queue_bound_holds_with_events_locked(collector_factory, db, pki, collector_bin):
    import apitest as at
    hport = vt.free_port()
    coll = collector_factory(db, {"--queue-high-bytes": "16MiB", "--queue-low-bytes": "8MiB",
                                  "--db-timeout": "120s", "--workers": "2",
                                  "--http-listen": "127.0.0.1:%d" % hport,
                                  "--http-rate-limit": "0"})
    api = at.Api(hport, pki, at.create_token(collector_bin, db, "abuse-q", "viewer"), timeout=5)
    pid = coll.proc.pid
    n_agents, frames_each = 40, 4
    agents = [connect(pki, coll.port, "abuse-q-%d" % i, timeout=120) for i in range(n_agents)]
    big = ["y" * 1000] * 16
    frame_events = [vt.exec_event(i, ["/bin/q"] + big) for i in range(120)]  # ~2 MiB
    payloads = [batch_payload(s, frame_events) for s in range(1, frames_each + 1)]
    base = rss_kib(pid)
    lock = psycopg2.connect(db.conninfo)
    cur = lock.cursor()
    cur.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")

    def send(a):
        try:
            for p in payloads:
                a.send_frame(p)
        except OSError:
            pass

    ts = [threading.Thread(target=send, args=(a,), daemon=True) for a in agents]
    for t in ts:
        t.start()
    peak, queued = base, []
    end = time.monotonic() + 12
    while time.monotonic() < end:
        peak = max(peak, rss_kib(pid))
        q = queue_bytes(api)
        if q is not None:
            queued.append(q)
        time.sleep(0.2)
    lock.rollback()
    lock.close()
    print("\n%d agents, %d frames of %d bytes each, events locked: RSS %d -> peak %d KiB"
          % (n_agents, frames_each, len(payloads[0]), base, peak))
    assert (peak - base) * 1024 < 2 * QUEUE_HIGH + n_agents * 1024 * 1024 + 32 * 1024 * 1024
    # the queue gauge, read while the table was locked: full, and never past
    # the mark by more than a frame (each counted twice while it is read)
    print("queue bytes while locked: max %d of a %d mark (%d readings)"
          % (max(queued or [0]), QUEUE_HIGH, len(queued)))
    assert len(queued) >= 10 and max(queued) > QUEUE_HIGH // 2
    assert max(queued) <= QUEUE_HIGH + 2 * len(payloads[0]), max(queued)
    for t in ts:
        t.join(120)
    for a in agents:
        a.wait_ack(frames_each, timeout=120)
        a.close()
    total, distinct = db.query("SELECT count(*), count(DISTINCT (agent_id, seq, idx)) "
                               "FROM events WHERE seq > 0")[0]
    assert total == distinct == n_agents * frames_each * len(frame_events)


@pytest.mark.serial
def test_hellos_do_not_pile_up_with_postgresql_down(collector_factory, db, pg, pki):
    """Agents reconnect again and again while PostgreSQL is down; the Hello
    jobs of their closed connections are dropped, not written, so the first
    acks come within seconds of PostgreSQL's return."""
    coll = collector_factory(db, {"--db-retry-max": "1s"})
    names = ["abuse-down-%d" % i for i in range(10)]
    for n in names:
        connect(pki, coll.port, n).close()
    pg.stop()
    try:
        for _ in range(5):  # every agent reconnects five times, its Hello unanswered
            opened = []
            for n in names:
                cert, key = pki.agent(n)
                a = vt.RawAgent(coll.port, vt.client_context(pki, cert, key), 5).connect()
                a.send_hello()
                opened.append(a)
            time.sleep(0.5)
            for a in opened:
                a.close()
            time.sleep(1.5)  # a retry of the writers passes
    finally:
        pg.start()
    t0 = time.monotonic()
    agents = [connect(pki, coll.port, n, timeout=60) for n in names]
    for a in agents:
        a.batch(1, [good_exec(1)], timeout=60)
    took = time.monotonic() - t0
    print("\nacks of all %d agents %.1f s after PostgreSQL returned" % (len(names), took))
    assert took < 10
    for a in agents:
        a.close()
