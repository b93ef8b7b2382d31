# SPDX-License-Identifier: Apache-2.0
"""Admission on the agent port: connections still in the TLS handshake or
before their Hello have a budget of their own (max_pending_connections)
and a cap per address (max_pending_per_address), so silent sockets, held
open and re-opened as they are closed, lock no agent out."""

import time

import pytest

import vigiltest as vt


def acked_within(agent, port, name, seconds, tries=1):
    """Connect agent NAME, send a batch of 100 events and wait for its ack.
    Return the seconds it took, retrying a connection closed under it."""
    t0 = time.monotonic()
    last = None
    for _ in range(tries):
        try:
            a = agent(port, name, timeout=seconds)
            a.hello()
            a.batch(1, [vt.exec_event(i, ["/bin/probe", str(i)]) for i in range(100)],
                    timeout=seconds)
            return time.monotonic() - t0
        except (OSError, AssertionError, EOFError, vt.Closed) as e:
            last = e
    raise AssertionError("agent %s got no ack in %d tries: %r" % (name, tries, last))


@pytest.mark.serial
def test_silent_sockets_from_one_address(collector_factory, db, agent):
    """10,000 silent sockets from 127.0.0.2, re-opened as they are closed,
    against max_connections 500: the address gets its share of pending
    places, the rest are closed at accept, and an agent from 127.0.0.1
    connects and has its batch acknowledged."""
    coll = collector_factory(db, {"--max-connections": "500"})
    with vt.SilentSockets(coll.port, ["127.0.0.2"], 10000) as silent:
        took = acked_within(agent, coll.port, "admission-1", 10)
        assert silent.opened > 10000
    print("acked %.2f s after connecting, under 10,000 silent sockets" % took)
    assert db.agent_row("admission-1")[1] == 1
    assert db.query("SELECT count(*) FROM events e JOIN agents a ON a.id = e.agent_id "
                    "WHERE a.name = 'admission-1' AND e.seq > 0")[0][0] == 100
    log = coll.log_text()
    assert "max_pending_per_address reached" in log and "127.0.0.2" in log


@pytest.mark.serial
def test_silent_sockets_from_many_addresses(collector_factory, db, agent):
    """4,000 silent sockets from 200 addresses (20 each, within the cap per
    address) against the default pending budget of 1,024: the oldest silent
    ones are dropped for newer ones, and agents still connect and are
    acknowledged. The sockets are re-opened as fast as the collector drops
    them, so a client that is slow to send its first bytes can be dropped
    too: agents retry (as the real agent does, with backoff)."""
    coll = collector_factory(db, {"--max-connections": "500"})
    addrs = ["127.0.2.%d" % i for i in range(1, 201)]
    with vt.SilentSockets(coll.port, addrs, 4000):
        for i in range(3):
            acked_within(agent, coll.port, "admission-many-%d" % i, 10, tries=5)
    assert "dropping the oldest pending connection" in coll.log_text()
    for i in range(3):
        assert db.agent_row("admission-many-%d" % i)[1] == 1


def test_established_agents_are_not_pending(collector_factory, db, agent):
    """Agents past their Hello leave the pending budget: more of them than
    max_pending_connections all stay connected and acknowledged, and
    max_connections counts them."""
    coll = collector_factory(db, {"--max-connections": "12",
                                  "--max-pending-connections": "4"})
    live = []
    for i in range(12):
        a = agent(coll.port, "admission-live-%d" % i)
        a.hello()
        live.append(a)
    for i, a in enumerate(live):
        a.batch(1, [vt.exec_event(1, ["/bin/live", str(i)])])
    # the 13th is over max_connections: closed at accept
    try:
        agent(coll.port, "admission-live-extra").hello()
        closed = False
    except (OSError, EOFError, AssertionError):
        closed = True
    assert closed, "a connection over max_connections was served"
    assert "dropped for a newer connection" not in coll.log_text()


def test_limits_follow_the_open_file_limit(collector_factory, db, agent):
    """Under an open-file limit of 160 (2 workers, 2 writers, no HTTPS) the
    collector lowers max_connections to what fits (70, after a reserve for
    PostgreSQL, its threads and files, and 16 pending places), says so,
    serves that many agents, refuses the next one at accept, and serves a
    new one once a place is free: no agent is shut out by EMFILE."""
    coll = collector_factory(db, {"--max-connections": "10000"}, nofile=160)
    log = coll.log_text()
    assert "open-file limit (160)" in log, log[-2000:]
    assert "max_connections 10000 -> 70" in log and "max_pending_connections 1024 -> 16" in log
    live = []
    for i in range(70):
        a = agent(coll.port, "fd-%d" % i)
        a.hello()
        live.append(a)
    live[0].batch(1, [vt.exec_event(1, ["/bin/fits"])])
    try:
        agent(coll.port, "fd-extra").hello()
        refused = False
    except (OSError, EOFError, AssertionError):
        refused = True
    assert refused, "an agent over the lowered max_connections was served"
    live.pop().close()
    vt.wait_for(lambda: _hello_ok(agent, coll.port, "fd-next"), 10, interval=0.3,
                what="a place for a new agent once one left")
    assert "Too many open files" not in coll.log_text()


def _hello_ok(agent, port, name):
    try:
        agent(port, name).hello()
        return True
    except (OSError, EOFError, AssertionError):
        return False


@pytest.mark.serial
def test_refusals_are_logged_at_a_bounded_rate(collector_factory, db, pki):
    """200 handshakes without a client certificate and 200 agents that send
    a bad frame: the log gets a bounded number of lines about them, with a
    count of what was suppressed, not one line each."""
    import socket
    import ssl
    coll = collector_factory(db)
    off = coll.log_size()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca_crt)
    for _ in range(200):  # no client certificate
        try:
            with socket.create_connection(("127.0.0.1", coll.port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.recv(1)
        except (OSError, ssl.SSLError):
            pass
    cert, key = pki.agent("bad-frames")
    for _ in range(200):  # a frame of length 0 right after the handshake
        try:
            a = vt.RawAgent(coll.port, vt.client_context(pki, cert, key)).connect()
            a.send_raw(b"\x00\x00\x00\x00")
            a.recv(timeout=5)
        except Exception:  # noqa: BLE001 - the collector closes it
            pass
        finally:
            a.close()
    time.sleep(1)
    lines = [ln for ln in coll.log_since(off).splitlines() if "closing (" in ln]
    assert len(lines) <= 60, "%d closing lines for 400 refused connections" % len(lines)
    assert any("similar lines suppressed" in ln for ln in lines) or len(lines) <= 40
    # what was left out is counted: the next window's first line says so
    vt.wait_for(lambda: _one_more_refusal(coll, ctx) and "similar lines suppressed"
                in coll.log_since(off), 25, interval=2, what="the count of suppressed lines")


def _one_more_refusal(coll, ctx):
    import socket
    import ssl
    try:
        with socket.create_connection(("127.0.0.1", coll.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.recv(1)
    except (OSError, ssl.SSLError):
        pass
    return True
