# SPDX-License-Identifier: Apache-2.0
"""SIGHUP reloads the collector's certificate: new connections see the new
one, established connections go on, and a broken file does not take the
collector down."""

import os
import shutil
import signal

import vigiltest as vt


def install(src_crt, src_key, dst_crt, dst_key):
    """Replace the files the collector reads, each by an atomic rename."""
    for src, dst in ((src_key, dst_key), (src_crt, dst_crt)):
        shutil.copyfile(src, dst + ".new")
        os.chmod(dst + ".new", 0o600)
        os.rename(dst + ".new", dst)


def serial_seen(port, pki, name):
    cert, key = pki.agent(name)
    with vt.RawAgent(port, vt.client_context(pki, cert, key)).connect() as a:
        serial = a.peer_cert().serial_number
        a.hello()
        return serial


def test_sighup_reloads_certificate(collector_factory, db, pki, agent, workdir):
    d = vt.make_tmpdir(os.path.join(workdir, "reload-"))
    crt, key = os.path.join(d, "collector.crt"), os.path.join(d, "collector.key")
    install(pki.collector_crt, pki.collector_key, crt, key)
    coll = collector_factory(db, {"--tls-cert": crt, "--tls-key": key})

    with open(pki.collector_crt, "rb") as f:
        from cryptography import x509
        old_serial = x509.load_pem_x509_certificate(f.read()).serial_number
    assert serial_seen(coll.port, pki, "reload-probe") == old_serial

    established = agent(coll.port, "reload-1")
    established.hello()
    established.batch(1, [vt.exec_event(1, ["/bin/before"])])

    new_crt, new_key, new_cert = pki.collector_cert(os.path.join(d, "next"))
    install(new_crt, new_key, crt, key)
    coll.signal(signal.SIGHUP)
    vt.wait_for(lambda: serial_seen(coll.port, pki, "reload-probe") == new_cert.serial_number,
                10, interval=0.3, what="the new certificate on new connections")

    established.batch(2, [vt.exec_event(2, ["/bin/after"])])
    assert db.agent_row("reload-1")[1] == 2

    # A broken certificate file: the reload fails, the collector keeps the
    # certificate it has and goes on serving.
    off = coll.log_size()
    with open(crt, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    coll.signal(signal.SIGHUP)
    vt.wait_for(lambda: coll.log_size() > off, 10, what="a log line about the failed reload")
    assert coll.alive()
    assert serial_seen(coll.port, pki, "reload-probe") == new_cert.serial_number
    vt.check_serves(coll, db, pki, "reload-2")
    coll.assert_clean_log()
