# SPDX-License-Identifier: Apache-2.0
"""Revocation everywhere at once: `vigil-collector agent revoke` and
`operator revoke` write a row that every collector on the same PostgreSQL
applies within 10 s (LISTEN/NOTIFY, and a re-read every 5 s): live agent
connections of the identity or certificate are closed with
ERROR_CODE_REVOKED, new handshakes are refused, operator certificates are
refused on the HTTPS port, and a collector that loses PostgreSQL keeps the
set it last read. The times from the command to the drop are printed."""

import os
import signal
import subprocess
import threading
import time

from cryptography import x509

import apitest as at
import vigiltest as vt

DROP_WITHIN_S = 10.0


def cli(collector_bin, db, *args):
    r = subprocess.run([collector_bin] + list(args) + ["--db", db.conninfo],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60, env=vt.sanitizer_env())
    assert not vt.sanitizer_reports(r.stderr), r.stderr
    return r


def revoke(collector_bin, db, *args):
    """Run a revoke command; return the monotonic time it was started."""
    t0 = time.monotonic()
    r = cli(collector_bin, db, *args)
    assert r.returncode == 0, r.stderr
    return t0


class CloseWatch:
    """Read each agent until the collector closes it, in a thread each,
    and note when that happened."""

    def __init__(self, agents, timeout):
        self.done = [None] * len(agents)
        self.threads = [threading.Thread(target=self._read, args=(i, a, timeout))
                        for i, a in enumerate(agents)]
        for t in self.threads:
            t.start()

    def _read(self, i, a, timeout):
        try:
            msgs = a.read_until_close(timeout)
        except AssertionError as e:
            self.done[i] = (None, str(e))
            return
        self.done[i] = (time.monotonic(), msgs)

    def wait(self):
        for t in self.threads:
            t.join()
        return self.done


def assert_revoked_close(done, t0, label):
    _, P = vt.pb()
    out = []
    for i, (t, msgs) in enumerate(done):
        assert t is not None, "%s: connection %d not closed: %s" % (label, i, msgs)
        err = vt.error_of(msgs)
        assert err is not None and err.code == P.ERROR_CODE_REVOKED, msgs
        took = t - t0
        assert took < DROP_WITHIN_S, "%s: dropped %.1f s after the revocation" % (label, took)
        out.append(took)
    return out


def refused(pki, port, cert, key):
    """True if a new connection with CERT is refused as revoked."""
    _, P = vt.pb()
    with vt.RawAgent(port, vt.client_context(pki, cert, key), 10).connect() as a:
        try:
            a.send_hello()
        except OSError:
            pass
        msgs = a.read_until_close(10)
    err = vt.error_of(msgs)
    return err is not None and err.code == P.ERROR_CODE_REVOKED


def serial_of(crt_path):
    with open(crt_path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).serial_number


def test_agent_revoke_drops_on_every_collector(collector_factory, db, pki, collector_bin):
    c1 = collector_factory(db)
    c2 = collector_factory(db)
    name = "rv-node-1"
    cert, key = pki.agent(name)
    a1 = vt.RawAgent(c1.port, vt.client_context(pki, cert, key), 30).connect()
    a2 = vt.RawAgent(c2.port, vt.client_context(pki, cert, key), 30).connect()
    a1.hello()
    a1.batch(1, [vt.exec_event(1, ["/bin/true"])])
    a2.hello()
    # an attacker-chosen host name is printed escaped
    db.query("UPDATE agents SET hostname = %s WHERE name = %s", ("evil\x1b[2J\rhost", name))

    watch = CloseWatch([a1, a2], DROP_WITHIN_S + 5)
    t0 = revoke(collector_bin, db, "agent", "revoke", name, "--reason", "node decommissioned")
    took = assert_revoked_close(watch.wait(), t0, "agent revoke")
    print("\nagent revoke -> drop: collector 1 %.0f ms, collector 2 %.0f ms (from the "
          "command's start)" % (took[0] * 1000, took[1] * 1000))
    a1.close()
    a2.close()

    for c in (c1, c2):
        assert refused(pki, c.port, cert, key), "new handshake accepted on %s" % c.address
        assert "agent identity is revoked" in c.log_text()
    # the same revocation again is no error and adds no row
    r = cli(collector_bin, db, "agent", "revoke", name)
    assert r.returncode == 0 and "already revoked" in r.stderr, r.stderr
    assert db.scalar("SELECT count(*) FROM revocations WHERE name = %s", (name,)) == 1
    row = db.query("SELECT scope, reason, revoked_by FROM revocations WHERE name = %s",
                   (name,))[0]
    assert row[0] == "agent" and row[1] == "node decommissioned" and row[2]

    r = cli(collector_bin, db, "agent", "list")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\r" not in r.stdout, repr(r.stdout)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith(name)]
    assert line and "\\x1b" in line[0] and line[0].rstrip().endswith("yes"), r.stdout
    r = cli(collector_bin, db, "agent", "show", name)
    assert r.returncode == 0, r.stderr
    assert "REVOKED" in r.stdout and "node decommissioned" in r.stdout, r.stdout
    assert "\x1b" not in r.stdout
    r = cli(collector_bin, db, "agent", "show", "rv-nobody")
    assert r.returncode == 1 and "no agent named" in r.stderr
    # bad input: no name, both forms, a serial that is not hex, a control character
    for args in (["agent", "revoke"], ["agent", "revoke", "x", "--serial", "ab"],
                 ["agent", "revoke", "--serial", "xyz"], ["agent", "revoke", "a\nb"],
                 ["agent", "frobnicate"]):
        assert cli(collector_bin, db, *args).returncode == 2, args
    vt.check_serves(c1, db, pki, "rv-other")


def test_serial_revocation_refuses_only_that_certificate(collector_factory, db, pki,
                                                         collector_bin):
    c1 = collector_factory(db)
    c2 = collector_factory(db)
    name = "rv-serial"
    base = os.path.join(pki.dir, "agents")
    os.makedirs(base, exist_ok=True)
    old_crt, old_key, old = pki.issue(os.path.join(base, "rv-serial-old"), name)
    new_crt, new_key, _ = pki.issue(os.path.join(base, "rv-serial-new"), name)
    a_old = vt.RawAgent(c1.port, vt.client_context(pki, old_crt, old_key), 30).connect()
    a_old.hello()
    a_new = vt.RawAgent(c2.port, vt.client_context(pki, new_crt, new_key), 30).connect()
    a_new.hello()

    watch = CloseWatch([a_old], DROP_WITHIN_S + 5)
    # upper case with colons, as openssl x509 -serial prints it: normalized
    hexs = "%X" % old.serial_number
    hexs = "0" * (len(hexs) % 2) + hexs
    hexs = ":".join(hexs[i:i + 2] for i in range(0, len(hexs), 2))
    t0 = revoke(collector_bin, db, "agent", "revoke", "--serial", hexs)
    took = assert_revoked_close(watch.wait(), t0, "serial revoke")
    print("\nserial revoke -> drop: %.0f ms" % (took[0] * 1000))
    a_old.close()
    assert "agent certificate revoked" in c1.log_text()

    # the other certificate of the same identity keeps working
    a_new.batch(1, [vt.exec_event(1, ["/bin/new"])])
    a_new.close()
    assert refused(pki, c2.port, old_crt, old_key)
    assert refused(pki, c1.port, old_crt, old_key)
    with vt.RawAgent(c1.port, vt.client_context(pki, new_crt, new_key), 30).connect() as a:
        a.hello()
        a.batch(2, [vt.exec_event(2, ["/bin/new"])])
    stored = db.scalar("SELECT serial FROM revocations WHERE serial IS NOT NULL")
    assert stored == "%x" % old.serial_number


def test_operator_certificate_revoked_on_https(collector_factory, db, pki, collector_bin):
    opca = at.operator_pki(pki)
    hport = vt.free_port()
    collector_factory(db, {"--http-listen": "127.0.0.1:%d" % hport,
                           "--http-operator-ca": opca["ca"],
                           "--http-admin-cns": "ops-admin", "--http-rate-limit": "0"})
    viewer = at.Api(hport, pki, cert=opca["viewer"][0], key=opca["viewer"][1])
    admin = at.Api(hport, pki, cert=opca["admin"][0], key=opca["admin"][1])
    assert viewer.ok("/api/v1/whoami")["principal"] == "cert:ops-viewer"
    assert admin.ok("/api/v1/whoami")["role"] == "admin"

    t0 = revoke(collector_bin, db, "operator", "revoke", "ops-viewer", "--reason", "lost")
    vt.wait_for(lambda: viewer.get("/api/v1/whoami").status == 401, DROP_WITHIN_S,
                what="the revoked operator CN refused")
    print("\noperator revoke (CN) -> refused: %.0f ms" % ((time.monotonic() - t0) * 1000))
    assert "operator certificate revoked" in viewer.get("/api/v1/whoami").body.decode()
    assert admin.get("/api/v1/whoami").status == 200

    revoke(collector_bin, db, "operator", "revoke", "--serial",
           "%x" % serial_of(opca["admin"][0]))
    vt.wait_for(lambda: admin.get("/api/v1/whoami").status == 401, DROP_WITHIN_S,
                what="the revoked operator serial refused")
    r = cli(collector_bin, db, "operator", "list")
    assert r.returncode == 0 and "ops-viewer" in r.stdout and "lost" in r.stdout, r.stdout


def test_revoked_agents_file_and_database_together(collector_factory, db, pki, collector_bin,
                                                  workdir):
    """The revoked_agents file keeps working: its names join the database's,
    and a reload that empties it leaves the database's in force."""
    path = os.path.join(workdir, "revoked-%d.txt" % vt.free_port())
    with open(path, "w") as f:
        f.write("# revoked by hand\nrv-file-node\n")
    coll = collector_factory(db, {"--revoked-agents": path})
    by_file, by_db = pki.agent("rv-file-node"), pki.agent("rv-db-node")
    revoke(collector_bin, db, "agent", "revoke", "rv-db-node")
    vt.wait_for(lambda: refused(pki, coll.port, *by_db), DROP_WITHIN_S,
                what="the database's revocation applied")
    assert refused(pki, coll.port, *by_file)
    with open(path, "w") as f:
        f.write("")
    offset = coll.log_size()
    coll.signal(signal.SIGHUP)
    vt.wait_for(lambda: "reload:" in coll.log_since(offset), 10, what="the reload")
    with vt.RawAgent(coll.port, vt.client_context(pki, *by_file), 30).connect() as a:
        a.hello()
    assert refused(pki, coll.port, *by_db)


def test_postgresql_unreachable_keeps_the_set(collector_factory, db, pg, pki, collector_bin):
    coll = collector_factory(db, {"--db-retry-max": "1s"})
    gone, later = "rv-pg-gone", "rv-pg-later"
    cert, key = pki.agent(gone)
    a = vt.RawAgent(coll.port, vt.client_context(pki, cert, key), 30).connect()
    a.hello()
    watch = CloseWatch([a], DROP_WITHIN_S + 5)
    t0 = revoke(collector_bin, db, "agent", "revoke", gone)
    assert_revoked_close(watch.wait(), t0, "before the outage")
    a.close()

    pg.stop()
    try:
        time.sleep(REREAD_AND_MORE_S)  # a re-read or two fail
        assert coll.alive()
        assert refused(pki, coll.port, cert, key), "the set was lost with PostgreSQL"
    finally:
        pg.start()
    assert "keeping the set last read" in coll.log_text()

    # the reader is back: a new revocation still reaches the live connection
    cert2, key2 = pki.agent(later)
    b = vt.RawAgent(coll.port, vt.client_context(pki, cert2, key2), 60).connect()
    b.hello()
    watch = CloseWatch([b], DROP_WITHIN_S + 5)
    t0 = revoke(collector_bin, db, "agent", "revoke", later)
    took = assert_revoked_close(watch.wait(), t0, "after the outage")
    print("\nagent revoke after a PostgreSQL outage -> drop: %.0f ms" % (took[0] * 1000))
    b.close()
    assert refused(pki, coll.port, cert, key)


REREAD_AND_MORE_S = 7
