"""Admission on the HTTPS port: connections still in the TLS handshake or
before their first request have a budget of their own
(http_max_pending_connections) and a cap per address
(http_max_pending_per_address), so silent sockets, held open and re-opened
as they are closed, cannot take the places of the API's clients."""

import socket
import threading
import time

import pytest

import apitest as at
import vigiltest as vt


class SilentSockets:
    """N plain TCP sockets to PORT from the source addresses ADDRS (round
    robin) that never send a byte, each re-opened as soon as the collector
    closes it, until stop()."""

    def __init__(self, port, addrs, n):
        self.port, self.addrs, self.n = port, addrs, n
        self.stopping = threading.Event()
        self.opened = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((self.addrs[i % len(self.addrs)], 0))
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        self.opened += 1
        return s

    def run(self):
        import selectors
        sel = selectors.DefaultSelector()
        for i in range(self.n):
            sel.register(self.open(i), selectors.EVENT_READ, i)
        while not self.stopping.is_set():
            for key, _ in sel.select(0.2):
                s, i = key.fileobj, key.data
                try:
                    gone = s.recv(4096) == b""
                except OSError:
                    gone = True
                if gone:  # closed by the collector: open another at once
                    sel.unregister(s)
                    s.close()
                    sel.register(self.open(i), selectors.EVENT_READ, i)
        for key in list(sel.get_map().values()):
            key.fileobj.close()

    def __enter__(self):
        self.thread.start()
        time.sleep(1.0)  # all of them connected and being re-opened
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(10)


def metrics(api):
    out = {}
    for line in api.get("/metrics").body.decode().splitlines():
        if line.startswith("vigil_http_") and " " in line:
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def healthz(s):
    """GET /healthz on the kept-alive TLS socket s: True if answered 200."""
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while not data.endswith(b'{"status":"ok"}'):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.startswith(b"HTTP/1.1 200")


@pytest.fixture
def api_env(collector_factory, db, pki, collector_bin):
    hport = vt.free_port()
    coll = collector_factory(db, flags={"--http-listen": "127.0.0.1:%d" % hport,
                                        "--http-max-connections": "100",
                                        "--http-max-pending-connections": "32",
                                        "--http-max-pending-per-address": "8",
                                        "--http-request-timeout": "10s",
                                        "--http-rate-limit": "0"})
    token = at.create_token(collector_bin, db, "admission", "viewer")
    return coll, hport, at.Api(hport, pki, token)


def answered(api, n, tries=1):
    """How many of N requests were answered 200, each tried up to TRIES
    times (a client retries a connection closed under it)."""
    ok = 0
    for _ in range(n):
        for _ in range(tries):
            try:
                if api.get("/api/v1/whoami").status == 200:
                    ok += 1
                    break
            except OSError as e:
                print("request failed: %r" % e)
    return ok


def test_silent_sockets_from_one_address(api_env):
    """500 silent sockets from 127.0.0.2 against http_max_connections 100:
    the address gets 8 pending places, the rest are closed at accept, and a
    client from 127.0.0.1 is answered every time."""
    coll, hport, api = api_env
    with SilentSockets(hport, ["127.0.0.2"], 500) as silent:
        assert answered(api, 20) == 20
        m = metrics(api)
        assert m["vigil_http_connections_pending"] <= 8 + 1, m
        assert m["vigil_http_connections_refused_total"] >= 400, m
        assert silent.opened > 500
    assert "http_max_pending_per_address reached" in coll.log_text()
    assert "127.0.0.2" in coll.log_text()


def test_silent_sockets_from_many_addresses(api_env):
    """Silent sockets from 100 addresses, 4 each (400, over both the pending
    budget of 32 and http_max_connections): the oldest silent pending ones
    are dropped for newer ones, none of them takes a place of an
    established connection, and the client is answered. The sockets are
    re-opened as fast as they are dropped, so a client whose first bytes
    come late can be dropped too: it is answered within three tries."""
    coll, hport, api = api_env
    addrs = ["127.0.1.%d" % i for i in range(1, 101)]
    with SilentSockets(hport, addrs, 400):
        assert answered(api, 20, tries=3) == 20
        m = metrics(api)
        assert m["vigil_http_connections_pending"] <= 32, m
        assert m["vigil_http_pending_dropped_total"] >= 300, m
    assert "dropping the oldest pending connection" in coll.log_text()


def test_pending_connection_that_finishes_is_no_longer_pending(api_env, pki):
    """A connection that made its first request leaves the pending budget:
    keep-alive clients beyond the pending budget all stay served."""
    coll, hport, api = api_env
    held = []
    try:
        for _ in range(40):  # more than http_max_pending_connections (32)
            s = at.tls_socket(hport, pki)
            assert healthz(s)
            held.append(s)
        for s in held:  # all still open and served
            assert healthz(s)
        m = metrics(api)
        assert m["vigil_http_pending_dropped_total"] == 0, m
        assert m["vigil_http_connections"] >= 40, m
    finally:
        for s in held:
            s.close()
