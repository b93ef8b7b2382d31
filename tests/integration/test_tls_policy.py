# SPDX-License-Identifier: Apache-2.0
"""TLS policy on the agent port and in the agent: with tls_min_version =
1.2, ECDHE with AEAD ciphers only; a live agent connection is closed when
its certificate expires or no longer chains to the agent CA after a
SIGHUP; the agent checks the collector's name against the certificate's
SANs only, never its CN."""

import datetime
import os
import shutil
import signal
import ssl
import time

import pytest

import vigiltest as vt
from agent_fixtures import agent_bin, agent_factory  # noqa: F401 - fixtures


def tls12_handshake(port, pki, name, cipher):
    cert, key = pki.agent(name)
    ctx = vt.client_context(pki, cert, key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher)
    with vt.RawAgent(port, ctx).connect() as a:
        return a.sock.cipher()[0]


def test_tls12_is_ecdhe_with_aead_only(collector_factory, db, pki):
    coll = collector_factory(db, {"--tls-min-version": "1.2"})
    assert tls12_handshake(coll.port, pki, "tls12-gcm",
                           "ECDHE-ECDSA-AES128-GCM-SHA256") == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert tls12_handshake(coll.port, pki, "tls12-chacha", "ECDHE-ECDSA-CHACHA20-POLY1305") \
        == "ECDHE-ECDSA-CHACHA20-POLY1305"
    for cipher in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                   "ECDHE-ECDSA-AES128-SHA256"):
        with pytest.raises((ssl.SSLError, OSError)):
            tls12_handshake(coll.port, pki, "tls12-cbc", cipher)


@pytest.mark.serial
def test_connection_closed_when_its_certificate_expires(collector_factory, db, pki, workdir):
    coll = collector_factory(db)
    d = vt.make_tmpdir(os.path.join(workdir, "expiring-"))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert, key, _ = pki.issue(os.path.join(d, "expiring"), "expiring-agent",
                             not_after=now + datetime.timedelta(seconds=6))
    a = vt.RawAgent(coll.port, vt.client_context(pki, cert, key)).connect()
    a.hello()
    a.batch(1, [vt.exec_event(1, ["/bin/before-expiry"])])
    t0 = time.monotonic()
    err = None
    while time.monotonic() - t0 < 15 and err is None:
        m = a.recv(timeout=15)
        if m is None or m.WhichOneof("msg") == "error":
            err = m
    assert err is not None and err.error.code == 11, err  # ERROR_CODE_CERTIFICATE
    assert "certificate has expired" in err.error.message
    a.close()
    assert "the agent certificate has expired" in coll.log_text()


def test_agent_ca_change_on_sighup_closes_agents_of_the_old_ca(collector_factory, db, pki,
                                                               workdir):
    d = vt.make_tmpdir(os.path.join(workdir, "ca-change-"))
    ca_file = os.path.join(d, "agent-ca.pem")
    shutil.copyfile(pki.ca_crt, ca_file)
    coll = collector_factory(db, {"--agent-ca": ca_file})
    cert, key = pki.agent("ca-change-old")
    a = vt.RawAgent(coll.port, vt.client_context(pki, cert, key)).connect()
    a.hello()
    a.batch(1, [vt.exec_event(1, ["/bin/old-ca"])])
    # the agent CA is replaced by another CA: agents of the old one lose trust
    other, _ = pki.other_ca()
    from cryptography.hazmat.primitives import serialization
    with open(ca_file + ".new", "wb") as f:
        f.write(other.public_bytes(serialization.Encoding.PEM))
    os.rename(ca_file + ".new", ca_file)
    coll.signal(signal.SIGHUP)
    m = a.recv(timeout=15)
    while m is not None and m.WhichOneof("msg") != "error":
        m = a.recv(timeout=15)
    assert m is not None and m.error.code == 11, m
    assert "no longer trusted" in m.error.message
    a.close()
    # and a new connection with that certificate is refused at the handshake
    with pytest.raises((ssl.SSLError, OSError, vt.Closed)):
        vt.RawAgent(coll.port, vt.client_context(pki, cert, key)).connect().hello()


def test_agent_checks_sans_not_cn(collector_factory, db, pki, workdir, agent_factory):  # noqa: F811
    """A collector certificate whose CN is the name the agent dials but that
    has no SAN is refused by the agent; one with the name in a SAN works."""
    from cryptography.x509.oid import ExtendedKeyUsageOID
    d = vt.make_tmpdir(os.path.join(workdir, "cn-only-"))
    crt, key, _ = pki.issue(os.path.join(d, "cn-only"), "localhost",
                            eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
    coll = collector_factory(db, {"--tls-cert": crt, "--tls-key": key})
    a = agent_factory(coll, "cn-only-agent", wait_connected=False)
    a.wait_log("certificate", 30)
    time.sleep(1.5)
    assert "connected as" not in a.log_text()
    assert "hostname mismatch" in a.log_text() or "verify" in a.log_text(), a.log_text()[-2000:]
    a.terminate()
    ok = collector_factory(db)  # the session's collector certificate: SAN localhost
    agent_factory(ok, "san-agent")
