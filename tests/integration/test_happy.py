# SPDX-License-Identifier: Apache-2.0
"""A well-behaved agent: Hello/Welcome, batches and acks, the rows they
become, replays after a reconnect, and container state."""

import time

import pytest

import vigiltest as vt


@pytest.fixture(scope="module")
def coll(module_collector_factory, module_db):
    return module_collector_factory(module_db)


def test_hello_batches_acks_and_rows(coll, module_db, agent):
    E, P = vt.pb()
    db = module_db
    t0 = time.time()
    a = agent(coll.port, "happy-1")
    w = a.hello()
    assert w.committed_seq == 0
    assert w.agent_id == "happy-1"
    assert w.protocol_version == 1

    cid = "c0ffee" * 10 + "abcd"
    argv_odd = ["/bin/sh", "-c", 'echo "a, b" {x} \\ back', "", "NULL", "ünïcødé ✓"]
    sent = {}
    for seq in (1, 2, 3):
        evs = [vt.exec_event(100 * seq + i, ["/usr/bin/prog%d" % i, "--seq", str(seq)],
                             cwd="/work", uid=1000 + i, container_id=cid)
               for i in range(3)]
        if seq == 2:
            evs.append(vt.exec_event(999, argv_odd, exe="/bin/sh", cwd="/tmp/dir with space",
                                     severity=E.SEVERITY_HIGH))
        sent[seq] = evs
        ack = a.batch(seq, evs)
        assert ack.seq == seq
    a.close()

    row = db.query("SELECT id, committed_seq, hostname, agent_version FROM agents "
                   "WHERE name = 'happy-1'")
    assert len(row) == 1
    agent_id, committed, hostname, version = row[0]
    assert committed == 3
    assert hostname == "itest-host"
    assert version == "itest/1"

    rows = db.query(
        "SELECT seq, idx, kind, severity, container_id, container_key, "
        "vigil_container_key(container_id), pid, ppid, uid, exe, argv, cwd, "
        "(extract(epoch FROM ts) * 1000000)::bigint, recv_ts, details "
        "FROM events WHERE agent_id = %s ORDER BY seq, idx", (agent_id,))
    assert [(r[0], r[1]) for r in rows] == [(s, i) for s in (1, 2, 3)
                                            for i in range(len(sent[s]))]
    for r in rows:
        (seq, idx, kind, sev, r_cid, key, want_key, pid, ppid, uid, exe, argv, cwd,
         ts_us, recv_ts, details) = r
        e = sent[seq][idx]
        x = e.process_exec
        assert kind == E.EVENT_KIND_PROCESS_EXEC
        assert sev == e.severity
        assert (pid, ppid, uid) == (x.pid, x.ppid, x.uid)
        assert exe == x.executable
        assert argv == list(x.argv)
        assert cwd == x.cwd
        assert ts_us == e.time_ns // 1000
        assert t0 - 60 < recv_ts.timestamp() < time.time() + 60
        assert details is None
        if e.container_id:
            assert r_cid == e.container_id and key == want_key
        else:
            assert r_cid is None and key is None
    odd = [r for r in rows if r[0] == 2 and r[1] == 3][0]
    assert odd[11] == argv_odd
    assert odd[3] == E.SEVERITY_HIGH


def test_replay_after_reconnect_is_acked_not_stored_twice(coll, module_db, agent):
    db = module_db
    name = "happy-2"
    batches = {s: [vt.exec_event(s * 10 + i, ["/bin/b%d" % s, str(i)]) for i in range(4)]
               for s in (1, 2, 3, 4)}
    with agent(coll.port, name) as a:
        assert a.hello().committed_seq == 0
        for s in (1, 2, 3):
            a.batch(s, batches[s])
    assert db.agent_row(name)[1] == 3

    with agent(coll.port, name) as a:
        w = a.hello()
        assert w.committed_seq == 3
        # Resent identically, as an agent that lost the ack would.
        assert a.batch(2, batches[2]).seq == 2
        assert a.batch(3, batches[3]).seq == 3
        assert a.batch(4, batches[4]).seq == 4

    assert db.agent_row(name)[1] == 4
    got = [(s, i) for s, i, _, _ in db.events_of(name)]
    assert got == [(s, i) for s in (1, 2, 3, 4) for i in range(4)]
    # A third connection sees the new high-water mark.
    with agent(coll.port, name) as a:
        assert a.hello().committed_seq == 4


def test_pipelined_batches(coll, module_db, agent):
    """Many batches sent without waiting: every one acknowledged in order,
    every event stored once."""
    name = "happy-pipe"
    n_batches, per = 40, 25
    with agent(coll.port, name, timeout=30) as a:
        a.hello()
        for s in range(1, n_batches + 1):
            a.send_batch(s, [vt.exec_event(s * 100 + i, ["/bin/p", str(s), str(i)])
                             for i in range(per)])
        last = 0
        while last < n_batches:
            m = a.recv(30)
            if m.WhichOneof("msg") != "ack":
                assert m.WhichOneof("msg") == "heartbeat", m
                continue
            assert m.ack.seq > last, "acks out of order: %d after %d" % (m.ack.seq, last)
            last = m.ack.seq
    row = module_db.agent_row(name)
    assert row[1] == n_batches
    assert module_db.scalar(
        "SELECT count(*) = count(DISTINCT (seq, idx)) AND count(*) = %s "
        "FROM events WHERE agent_id = %s", (n_batches * per, row[0]))


def test_container_started_and_stopped(coll, module_db, agent):
    E, _ = vt.pb()
    db = module_db
    name = "happy-3"
    cid = "d" * 64
    caps = ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_CHOWN"]
    mounts = [("/var/run/docker.sock", "/var/run/docker.sock", False),
              ("/etc", "/host/etc", True)]
    with agent(coll.port, name) as a:
        a.hello()
        a.batch(1, [vt.container_started_event(cid, "evil", privileged=True, caps=caps,
                                               mounts=mounts)])
        rows = db.query(
            "SELECT c.name, c.runtime, c.image, c.privileged, c.cap_effective, "
            "c.cap_bounding, c.mounts, c.state, c.exit_code, c.labels, c.command, c.uid "
            "FROM containers c JOIN agents a ON a.id = c.agent_id "
            "WHERE a.name = %s AND c.id = %s", (name, cid))
        assert len(rows) == 1
        (cname, runtime, image, priv, capeff, capbnd, mnts, state, exit_code, labels,
         command, uid) = rows[0]
        assert cname == "evil"
        assert runtime == "podman"
        assert image == "localhost/busybox:latest"
        assert priv is True
        assert capeff == caps and capbnd == caps
        assert [(m["source"], m["destination"], m["read_only"]) for m in mnts] == \
            [tuple(m) for m in mounts]
        assert state == "running"
        assert exit_code is None
        assert labels == {"app": "web"}
        assert command == ["/bin/sh", "-c", "sleep 1000"]
        assert uid == 0

        a.batch(2, [vt.container_stopped_event(cid, 137)])

    rows = db.query(
        "SELECT c.state, c.exit_code, c.stopped_at IS NOT NULL, c.privileged "
        "FROM containers c JOIN agents a ON a.id = c.agent_id "
        "WHERE a.name = %s AND c.id = %s", (name, cid))
    assert rows == [("exited", 137, True, True)]
    kinds = [k for _, _, k, _ in db.events_of(name)]
    assert kinds == [E.EVENT_KIND_CONTAINER_STARTED, E.EVENT_KIND_CONTAINER_STOPPED]
    details = db.scalar(
        "SELECT details FROM events e JOIN agents a ON a.id = e.agent_id "
        "WHERE a.name = %s AND e.kind = %s", (name, E.EVENT_KIND_CONTAINER_STOPPED))
    assert details["exit_code"] == 137


def test_unknown_fields_are_ignored(coll, module_db, agent):
    """Protocol evolution: a Hello and a Batch carrying fields this
    collector does not know are accepted."""
    _, P = vt.pb()
    name = "happy-future"
    unknown = b"\xa0\x06\x2a" + b"\xaa\x06\x03new"  # field 100 varint, field 101 bytes
    with agent(coll.port, name) as a:
        m = P.AgentMessage()
        m.hello.protocol_version = 1
        m.hello.hostname = "future-host"
        # Unknown fields inside Hello: re-encode hello with extra bytes.
        hello = m.hello.SerializeToString() + unknown
        a.send_frame(b"\x0a" + bytes([len(hello)]) + hello)
        r = a.recv()
        assert r.WhichOneof("msg") == "welcome"
        b = P.AgentMessage()
        b.batch.seq = 1
        b.batch.events.append(vt.exec_event(7, ["/bin/new"]))
        a.send_frame(b.SerializeToString() + unknown)
        a.wait_ack(1)
    assert module_db.agent_row(name)[1] == 1
    assert len(module_db.events_of(name)) == 1
