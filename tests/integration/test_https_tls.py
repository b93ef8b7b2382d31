# SPDX-License-Identifier: Apache-2.0
"""TLS on the HTTPS port: TLS 1.3 by default, 1.2 only when configured and
then with ECDHE and AEAD ciphers only, and no session resumption (a resumed
connection would skip the certificate checks of a full handshake)."""

import socket
import ssl

import pytest

import apitest as at
import vigiltest as vt


def connect(port, pki, ctx=None, session=None):
    ctx = ctx or at.https_context(pki)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    answer = s.recv(4096)
    return s, answer


def collector(collector_factory, db, **flags):
    hport = vt.free_port()
    f = {"--http-listen": "127.0.0.1:%d" % hport, "--http-rate-limit": "0"}
    f.update(flags)
    collector_factory(db, flags=f)
    return hport


def test_tls13_only_and_no_resumption(collector_factory, db, pki):
    hport = collector(collector_factory, db)
    ctx13 = at.https_context(pki)
    s, answer = connect(hport, pki, ctx=ctx13)
    assert s.version() == "TLSv1.3" and answer.startswith(b"HTTP/1.1 ")
    session = s.session
    s.close()
    # resumption: no ticket is issued, a second connection is a full handshake
    s2, _ = connect(hport, pki, ctx=ctx13, session=session)
    assert not s2.session_reused
    s2.close()
    # a TLS 1.2 client is refused
    ctx = at.https_context(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        connect(hport, pki, ctx=ctx)


def test_tls12_when_configured_forward_secret_aead_only(collector_factory, db, pki):
    hport = collector(collector_factory, db, **{"--tls-min-version": "1.2"})
    ctx = at.https_context(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    s, answer = connect(hport, pki, ctx=ctx)
    name, version, _ = s.cipher()
    assert version == "TLSv1.2" and name.startswith("ECDHE-") and (
        "GCM" in name or "CHACHA20" in name), name
    assert answer.startswith(b"HTTP/1.1 ")
    session = s.session
    s.close()
    s2, _ = connect(hport, pki, ctx=ctx, session=session)
    assert not s2.session_reused
    s2.close()
    # a client offering only CBC or non-ECDHE suites finds nothing in common
    for suites in ("AES128-GCM-SHA256:AES256-SHA256",
                   "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA"):
        weak = at.https_context(pki)
        weak.maximum_version = ssl.TLSVersion.TLSv1_2
        weak.set_ciphers(suites + ":@SECLEVEL=0")
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            connect(hport, pki, ctx=weak)
