# SPDX-License-Identifier: Apache-2.0
"""Hostile and broken clients, one test each. After every one the collector
must still be running and serve a good agent, and nothing the bad
connection sent may be stored."""

import datetime
import select
import socket
import ssl
import struct
import threading
import time

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

import vigiltest as vt

MAX_FRAME = 1024 * 1024
TIMEOUT_FLAGS = {
    "--handshake-timeout": "2s",
    "--hello-timeout": "3s",
    "--frame-timeout": "2s",
    "--max-frame-bytes": "1MiB",
    "--max-batch-events": "1000",
}


@pytest.fixture(scope="module")
def coll(module_collector_factory, module_db):
    return module_collector_factory(module_db, TIMEOUT_FLAGS)


@pytest.fixture
def guard(coll, module_db, pki, request):
    """Counts before the test; after it: collector alive, a good agent is
    served, no event stored except those the test expects."""
    db = module_db
    before = db.count_events()

    class Guard:
        expected_new_events = 0

    g = Guard()
    yield g
    assert coll.alive(), "collector died:\n" + coll.log_text()[-3000:]
    assert db.count_events() == before + g.expected_new_events, \
        "events of a bad connection were stored"
    vt.check_serves(coll, db, pki, "good-after-" + request.node.name[5:40].replace("_", "-"))
    coll.assert_clean_log()


def no_events(db, name):
    row = db.agent_row(name)
    assert row is None or row[1] == 0, "agent %s has committed_seq %r" % (name, row)
    assert db.events_of(name) == []


def valid_batch_frame(seq, name):
    _, P = vt.pb()
    m = P.AgentMessage()
    m.batch.seq = seq
    m.batch.events.append(vt.exec_event(4242, ["/bin/should-not-be-stored", name]))
    b = m.SerializeToString()
    return struct.pack(">I", len(b)) + b


def expect_error(a, code, timeout=10):
    """Read until the collector closes; its last message must be Error CODE."""
    _, P = vt.pb()
    msgs = a.read_until_close(timeout)
    err = vt.error_of(msgs)
    assert err is not None, "no Error before close; got %s" % msgs
    assert err.code == code, "Error %s (%r), want %s" % (
        P.ErrorCode.Name(err.code), err.message, P.ErrorCode.Name(code))
    assert all(m.WhichOneof("msg") != "ack" for m in msgs), msgs
    return err


# --- TLS handshake refusals ------------------------------------------------------

def expect_handshake_refused(coll, pki, cert=None, key=None):
    off = coll.log_size()
    a = vt.RawAgent(coll.port, vt.client_context(pki, cert, key), timeout=10)
    msgs = []
    try:
        a.connect()
        a.send_hello()
        msgs = a.read_until_close(10)
    except (ssl.SSLError, ConnectionError, vt.Closed):
        pass
    finally:
        a.close()
    assert not any(m.WhichOneof("msg") == "welcome" for m in msgs), \
        "a refused certificate got a Welcome"
    vt.wait_for(lambda: "handshake" in coll.log_since(off).lower(), 10,
                what="a log line about the refused handshake")


def test_no_client_certificate(coll, pki, guard):
    expect_handshake_refused(coll, pki)


def test_certificate_from_other_ca(coll, module_db, pki, guard):
    ca, ca_key = pki.other_ca()
    crt, key, _ = pki.issue(pki.bad_dir + "/other-ca", "bad-other-ca",
                            issuer=ca, issuer_key=ca_key)
    expect_handshake_refused(coll, pki, crt, key)
    assert module_db.agent_row("bad-other-ca") is None


def test_expired_certificate(coll, module_db, pki, guard):
    now = datetime.datetime.now(datetime.timezone.utc)
    crt, key, _ = pki.issue(pki.bad_dir + "/expired", "bad-expired",
                            not_before=now - datetime.timedelta(days=30),
                            not_after=now - datetime.timedelta(days=1))
    expect_handshake_refused(coll, pki, crt, key)
    assert module_db.agent_row("bad-expired") is None


def test_certificate_without_client_auth(coll, module_db, pki, guard):
    crt, key, _ = pki.issue(pki.bad_dir + "/server-only", "bad-no-client-auth",
                            eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
    expect_handshake_refused(coll, pki, crt, key)
    assert module_db.agent_row("bad-no-client-auth") is None


def test_certificate_not_yet_valid(coll, module_db, pki, guard):
    now = datetime.datetime.now(datetime.timezone.utc)
    crt, key, _ = pki.issue(pki.bad_dir + "/future", "bad-future",
                            not_before=now + datetime.timedelta(days=1),
                            not_after=now + datetime.timedelta(days=30))
    expect_handshake_refused(coll, pki, crt, key)
    assert module_db.agent_row("bad-future") is None


# --- framing and messages ----------------------------------------------------------

def test_frame_length_zero(coll, module_db, agent, guard):
    _, P = vt.pb()
    name = "bad-zero-frame"
    a = agent(coll.port, name)
    a.hello()
    # The valid batch after the bad frame must not be read any more.
    a.send_raw(struct.pack(">I", 0) + valid_batch_frame(1, name))
    expect_error(a, P.ERROR_CODE_BAD_FRAME)
    no_events(module_db, name)


def test_frame_too_large(coll, module_db, agent, guard):
    _, P = vt.pb()
    name = "bad-big-frame"
    a = agent(coll.port, name)
    a.hello()
    # Only the header: the collector must refuse without waiting for the body.
    # (A collector that waited would end with TIMEOUT after --frame-timeout.)
    a.send_raw(struct.pack(">I", MAX_FRAME + 1))
    expect_error(a, P.ERROR_CODE_TOO_LARGE, timeout=10)
    no_events(module_db, name)


def test_batch_with_too_many_events(coll, module_db, agent, guard):
    """A small frame of many tiny events would become a large COPY buffer:
    the collector caps events per batch."""
    E, P = vt.pb()
    name = "bad-many-events"
    a = agent(coll.port, name)
    a.hello()
    a.batch(1, [vt.exec_event(i, ["/bin/ok"]) for i in range(1000)])
    a.send_batch(2, [E.Event() for _ in range(1001)])
    err = expect_error(a, P.ERROR_CODE_TOO_LARGE)
    assert "1001" in err.message, err.message
    guard.expected_new_events = 1000
    assert module_db.agent_row(name)[1] == 1


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def test_frame_of_many_empty_events(coll, module_db, agent, guard):
    """A frame just under the limit made of empty events (2 bytes each)
    would unpack to dozens of times its size: the collector refuses it
    instead of allocating that memory."""
    _, P = vt.pb()
    name = "bad-empty-events"
    a = agent(coll.port, name)
    a.hello()
    n = (MAX_FRAME - 64) // 2
    inner = b"\x08\x01" + b"\x12\x00" * n  # Batch{seq 1, n empty events}
    a.send_frame(b"\x12" + varint(len(inner)) + inner)  # AgentMessage{batch}
    expect_error(a, P.ERROR_CODE_BAD_MESSAGE)
    no_events(module_db, name)


def test_frame_length_huge_before_hello(coll, module_db, agent, guard):
    _, P = vt.pb()
    a = agent(coll.port, "bad-huge-first")
    a.send_raw(b"\xff\xff\xff\xff" + b"x" * 1000)
    expect_error(a, P.ERROR_CODE_TOO_LARGE)
    no_events(module_db, "bad-huge-first")


def test_frame_at_limit_is_accepted(coll, module_db, agent, guard):
    """The limit is inclusive: a batch frame of exactly --max-frame-bytes is
    accepted. Its argv string of almost a MiB is stored cut to the
    collector's own cap (event_string_max, 16 KiB) and the event marked
    truncated, never stored whole on the agent's word."""
    _, P = vt.pb()
    name = "edge-max-frame"
    m = P.AgentMessage()
    m.batch.seq = 1
    m.batch.events.append(vt.exec_event(1, ["/bin/big", ""]))
    argv = m.batch.events[0].process_exec.argv
    for _ in range(10):
        if m.ByteSize() == MAX_FRAME:
            break
        argv[1] = "x" * (len(argv[1]) + MAX_FRAME - m.ByteSize())
    assert m.ByteSize() == MAX_FRAME
    a = agent(coll.port, name, timeout=30)
    a.hello()
    a.send(m)
    a.wait_ack(1, timeout=30)
    guard.expected_new_events = 1
    assert module_db.agent_row(name)[1] == 1
    stored, truncated = module_db.query(
        "SELECT octet_length(argv[2]), details->>'truncated' FROM events e "
        "JOIN agents a ON a.id = e.agent_id WHERE a.name = %s", (name,))[0]
    assert len(argv[1]) > 16384 >= stored > 16000 and truncated == "true"


def test_connection_cut_mid_frame(coll, module_db, agent, guard):
    name = "bad-cut"
    frame = valid_batch_frame(1, name)
    a = agent(coll.port, name)
    a.hello()
    a.send_raw(frame[:len(frame) // 2])
    time.sleep(0.3)
    a.sock.shutdown(socket.SHUT_RDWR)
    a.close()
    time.sleep(0.5)
    no_events(module_db, name)
    # The agent comes back and sends the batch whole: stored once.
    with agent(coll.port, name) as b:
        assert b.hello().committed_seq == 0
        b.send_raw(frame)
        b.wait_ack(1)
    guard.expected_new_events = 1
    assert [(s, i) for s, i, _, _ in module_db.events_of(name)] == [(1, 0)]


def test_garbage_message(coll, module_db, agent, guard):
    _, P = vt.pb()
    name = "bad-garbage"
    # Field 1 (hello), length-delimited, claims 100 bytes but 4 follow.
    garbage = b"\x0a\x64\x08\x01\x12\x02"
    with pytest.raises(Exception):
        P.AgentMessage().ParseFromString(garbage)
    a = agent(coll.port, name)
    a.send_frame(garbage)
    a.send_raw(valid_batch_frame(1, name))
    expect_error(a, P.ERROR_CODE_BAD_MESSAGE)
    no_events(module_db, name)


def test_garbage_after_hello(coll, module_db, agent, guard):
    _, P = vt.pb()
    name = "bad-garbage-2"
    a = agent(coll.port, name)
    a.hello()
    a.send_frame(b"\xff" * 64)
    a.send_raw(valid_batch_frame(1, name))
    expect_error(a, P.ERROR_CODE_BAD_MESSAGE)
    no_events(module_db, name)


def test_batch_before_hello(coll, module_db, agent, guard):
    _, P = vt.pb()
    name = "bad-no-hello"
    a = agent(coll.port, name)
    a.send_raw(valid_batch_frame(1, name))
    expect_error(a, P.ERROR_CODE_UNEXPECTED_MESSAGE)
    no_events(module_db, name)


def test_second_hello(coll, module_db, agent, guard):
    _, P = vt.pb()
    name = "bad-two-hellos"
    a = agent(coll.port, name)
    a.hello()
    a.send_hello()
    a.send_raw(valid_batch_frame(1, name))
    expect_error(a, P.ERROR_CODE_UNEXPECTED_MESSAGE)
    no_events(module_db, name)


def test_unsupported_protocol_version(coll, module_db, agent, guard):
    _, P = vt.pb()
    name = "bad-version"
    a = agent(coll.port, name)
    a.send_hello(version=2)
    a.send_raw(valid_batch_frame(1, name))
    err = expect_error(a, P.ERROR_CODE_UNSUPPORTED_VERSION)
    assert err.message, "the Error should say why"
    no_events(module_db, name)


def test_seq_backwards(coll, module_db, agent, guard):
    _, P = vt.pb()
    name = "bad-backwards"
    good = {s: [vt.exec_event(s, ["/bin/good", str(s)])] for s in (1, 2)}
    a = agent(coll.port, name)
    a.hello()
    a.batch(1, good[1])
    a.batch(2, good[2])
    # seq 2 again with other content, then seq 1: both not greater.
    a.send_batch(2, [vt.exec_event(66, ["/bin/evil", "2"])])
    a.send_batch(1, [vt.exec_event(66, ["/bin/evil", "1"])])
    expect_error(a, P.ERROR_CODE_SEQ_BACKWARDS)
    guard.expected_new_events = 2
    assert module_db.agent_row(name)[1] == 2
    assert [(s, argv) for s, _, _, argv in module_db.events_of(name)] == \
        [(1, ["/bin/good", "1"]), (2, ["/bin/good", "2"])]


def test_claimed_agent_id_is_ignored(coll, module_db, agent, guard):
    db = module_db
    victim, mallory = "victim-agent", "mallory-agent"
    with agent(coll.port, victim) as v:
        v.hello()
        v.batch(1, [vt.exec_event(1, ["/bin/victim"])])
    with agent(coll.port, mallory) as m:
        w = m.hello(claimed=victim)
        assert w.agent_id == mallory
        assert w.committed_seq == 0, "mallory was given the victim's committed_seq"
        m.batch(1, [vt.exec_event(2, ["/bin/mallory", "1"])])
        m.batch(2, [vt.exec_event(3, ["/bin/mallory", "2"])])
    guard.expected_new_events = 3
    assert db.agent_row(victim)[1] == 1
    assert [a for _, _, _, a in db.events_of(victim)] == [["/bin/victim"]]
    assert db.agent_row(mallory)[1] == 2
    assert [a for _, _, _, a in db.events_of(mallory)] == \
        [["/bin/mallory", "1"], ["/bin/mallory", "2"]]


# --- slow and stalled peers ------------------------------------------------------------

def client_hello_bytes(pki, name):
    """The first flight of a real TLS client (its ClientHello record)."""
    cert, key = pki.agent(name)
    ctx = vt.client_context(pki, cert, key)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def closed_by_peer(sock):
    """True once the peer closed SOCK (EOF or reset); reads past data."""
    try:
        while True:
            r, _, _ = select.select([sock], [], [], 0)
            if not r:
                return False
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionError, OSError):
        return True


@pytest.mark.serial
def test_stalled_and_slow_connections(coll, module_db, pki, agent, guard):
    """300 connections that never finish the handshake, some that never say
    Hello, one that drips its ClientHello and one that drips a frame, one
    byte per second: all dropped after the short timeouts, while a good
    agent is served meanwhile. The 300 come from another address than the
    agents (127.0.0.3): more than max_pending_per_address from the agents'
    own address would be closed at accept (test_admission.py)."""
    hello = client_hello_bytes(pki, "slow-tls")
    stalled = []
    stop = threading.Event()
    try:
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", coll.port), timeout=10,
                                         source_address=("127.0.0.3", 0))
            if i % 2:
                s.sendall(hello[:5 + i % 40])  # a started, never finished ClientHello
            stalled.append(s)

        silent = []  # TLS done, never a Hello
        for i in range(5):
            silent.append(agent(coll.port, "silent-%d" % i))

        drip_results = {}

        def drip_tls():
            s = socket.create_connection(("127.0.0.1", coll.port), timeout=10)
            t0 = time.monotonic()
            try:
                for b in hello:
                    if stop.is_set():
                        break
                    s.sendall(bytes([b]))
                    if closed_by_peer(s):
                        break
                    time.sleep(1)
                else:
                    drip_results["tls"] = "sent whole ClientHello"
                    return
                drip_results["tls"] = time.monotonic() - t0
            except (ConnectionError, OSError):
                drip_results["tls"] = time.monotonic() - t0
            finally:
                s.close()

        drip_agent = agent(coll.port, "slow-frame")
        drip_agent.hello()
        frame = valid_batch_frame(1, "slow-frame")

        def drip_frame():
            # One thread both writes and reads this TLS socket.
            t0 = time.monotonic()
            try:
                for b in frame:
                    if stop.is_set():
                        break
                    drip_agent.sock.sendall(bytes([b]))
                    end = time.monotonic() + 1
                    while time.monotonic() < end:
                        r, _, _ = select.select([drip_agent.sock], [], [], end - time.monotonic())
                        if r or drip_agent.sock.pending():
                            m = drip_agent.recv(1)
                            drip_results.setdefault("frame_msgs", []).append(m)
                else:
                    drip_results["frame"] = "sent whole frame"
                    return
                drip_results["frame"] = "stopped"
            except (vt.Closed, ConnectionError, ssl.SSLError):
                drip_results["frame"] = time.monotonic() - t0
            except Exception as e:  # reported by the assertions below
                drip_results["frame"] = repr(e)

        threads = [threading.Thread(target=drip_tls), threading.Thread(target=drip_frame)]
        for t in threads:
            t.start()

        # Meanwhile a good agent is served promptly.
        t0 = time.monotonic()
        vt.check_serves(coll, module_db, pki, "good-during-slowloris")
        assert time.monotonic() - t0 < 8, "a good agent waited behind stalled connections"
        guard.expected_new_events = 1

        # All stalled handshakes dropped after --handshake-timeout (2s).
        open_ = list(stalled)
        deadline = time.monotonic() + 12
        while open_ and time.monotonic() < deadline:
            open_ = [s for s in open_ if not closed_by_peer(s)]
            time.sleep(0.2)
        assert not open_, "%d of 300 stalled handshakes still open" % len(open_)

        # Connections that never said Hello: dropped after --hello-timeout (3s).
        for s in silent:
            s.read_until_close(10)

        # The frame dripper is cut after --frame-timeout (2s) although it
        # was never idle; the TLS dripper after --handshake-timeout.
        for t in threads:
            t.join(20)
        stop.set()
        assert isinstance(drip_results.get("frame"), float), drip_results
        assert isinstance(drip_results.get("tls"), float), drip_results
        assert drip_results["tls"] < 10, drip_results
        assert drip_results["frame"] < 10, drip_results
        assert not any(m.WhichOneof("msg") == "ack" for m in drip_results.get("frame_msgs", []))
        no_events(module_db, "slow-frame")
        for i in range(5):
            no_events(module_db, "silent-%d" % i)
    finally:
        stop.set()
        for s in stalled:
            s.close()
