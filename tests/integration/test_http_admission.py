# SPDX-License-Identifier: Apache-2.0
"""Admission on the HTTPS port: connections still in the TLS handshake or
before their first request have a budget of their own
(http_max_pending_connections) and a cap per address
(http_max_pending_per_address), so silent sockets, held open and re-opened
as they are closed, cannot take the places of the API's clients."""

import http.client

import pytest

import apitest as at
import vigiltest as vt


def metrics(api, tries=1):
    """The vigil_http_ figures of /metrics; while silent sockets crowd the
    pending budget, a request may be dropped before it is read: TRIES."""
    for attempt in range(tries):
        try:
            body = api.get("/metrics").body
            break
        except (OSError, http.client.HTTPException):
            if attempt == tries - 1:
                raise
    out = {}
    for line in body.decode().splitlines():
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


@pytest.mark.serial
def test_silent_sockets_from_one_address(api_env):
    """500 silent sockets from 127.0.0.2 against http_max_connections 100:
    the address gets 8 pending places, the rest are closed at accept, and a
    client from 127.0.0.1 is answered every time."""
    coll, hport, api = api_env
    with vt.SilentSockets(hport, ["127.0.0.2"], 500) as silent:
        assert answered(api, 20) == 20
        m = metrics(api)
        assert m["vigil_http_connections_pending"] <= 8 + 1, m
        assert m["vigil_http_connections_refused_total"] >= 400, m
        assert silent.opened > 500
    assert "http_max_pending_per_address reached" in coll.log_text()
    assert "127.0.0.2" in coll.log_text()


@pytest.mark.serial
def test_silent_sockets_from_many_addresses(api_env):
    """Silent sockets from 100 addresses, 4 each (400, over both the pending
    budget of 32 and http_max_connections): the oldest silent pending ones
    are dropped for newer ones, none of them takes a place of an
    established connection, and the client is answered. The sockets are
    re-opened as fast as they are dropped, so a client whose first bytes
    come late can be dropped too: it is answered within three tries."""
    coll, hport, api = api_env
    addrs = ["127.0.1.%d" % i for i in range(1, 101)]
    with vt.SilentSockets(hport, addrs, 400):
        assert answered(api, 20, tries=3) == 20
        m = metrics(api, tries=3)
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
