# SPDX-License-Identifier: Apache-2.0
"""Enrollment from the agent's side: `vigil-agent enroll` against a real
collector (then ingest with the issued certificate), against collectors
that must not get the token (a certificate of another CA, or for another
name: a TLS server made here records every byte it receives), forced
re-enrollment revoking the old certificate, and renewal with a lifetime of
a few seconds while the agent sends, every event stored exactly once.

The collector's issuing CA is scripts/dev-pki.sh's DIR/issuer.crt, below
the session CA.
"""

import datetime
import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import vigiltest as vt
from agent_fixtures import *  # noqa: F401,F403 (fixtures)

TOKEN_RE = re.compile(r"vgj_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
EXIT_REFUSED, EXIT_TLS, EXIT_IO = 3, 4, 5


# --- helpers -------------------------------------------------------------------------

def issuer_files(pki):
    crt = os.path.join(pki.dir, "issuer.crt")
    key = os.path.join(pki.dir, "issuer.key")
    assert os.path.exists(crt) and os.path.exists(key), \
        "scripts/dev-pki.sh made no issuing CA in %s" % pki.dir
    return crt, key


def enroll_collector(collector_factory, db, pki, **flags):
    crt, key = issuer_files(pki)
    opts = {"--agent-issuer-cert": crt, "--agent-issuer-key": key}
    opts.update(flags)
    return collector_factory(db, opts)


def make_token(collector_bin, db, *args):
    """Run `vigil-collector enroll-token create` and return the token."""
    r = subprocess.run([collector_bin, "enroll-token", "create", "--db", db.conninfo]
                       + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60, env=vt.sanitizer_env())
    assert r.returncode == 0, "enroll-token create failed (%d): %s%s" % (
        r.returncode, r.stdout, r.stderr)
    assert not vt.sanitizer_reports(r.stderr), r.stderr
    m = TOKEN_RE.search(r.stdout)
    assert m, "no token printed: %r" % r.stdout
    return m.group(0)


class Node:
    """One node's files: the agent's config (tls_key, tls_cert, ca,
    hostname) in a directory of its own, and `vigil-agent enroll` runs."""

    def __init__(self, workdir, binary, hostname):
        self.binary = binary
        self.hostname = hostname
        self.dir = os.path.join(workdir, "nodes", "%s-%s" % (hostname, uuid.uuid4().hex[:6]))
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "etc", "agent.key")
        self.crt = os.path.join(self.dir, "etc", "agent.crt")
        self.ca = os.path.join(self.dir, "etc", "ca.crt")
        self.conf = os.path.join(self.dir, "agent.conf")
        self.token_file = os.path.join(self.dir, "token")
        with open(self.conf, "w") as f:
            f.write("tls_key = %s\ntls_cert = %s\nca = %s\nhostname = %s\n"
                    "server_name = localhost\nconnect_timeout = 5s\n"
                    % (self.key, self.crt, self.ca, hostname))

    def enroll(self, address, ca, token=None, force=False, via="file", timeout=60):
        """Run the command; return (exit code, stdout, stderr)."""
        args = [self.binary, "enroll", "-c", self.conf, "--collector", address, "--ca", ca]
        env = vt.sanitizer_env()
        env.pop("VIGIL_ENROLL_TOKEN", None)
        if token is not None:
            if via == "file":
                fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(token + "\n")
                args += ["--token-file", self.token_file]
            elif via == "env":
                env["VIGIL_ENROLL_TOKEN"] = token
            else:
                args += ["--token", token]
        if force:
            args.append("--force")
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout, env=env)
        assert not vt.sanitizer_reports(r.stderr), r.stderr
        return r.returncode, r.stdout, r.stderr

    def leaf(self):
        return load_chain(self.crt)[0]

    def key_public(self):
        with open(self.key, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        return key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)

    def agent_settings(self):
        return {"tls_cert": self.crt, "tls_key": self.key, "ca": self.ca,
                "hostname": self.hostname, "proc_connector": "false"}


def load_chain(path):
    """The certificates of a PEM file, in order."""
    with open(path, "rb") as f:
        text = f.read()
    end = b"-----END CERTIFICATE-----"
    return [x509.load_pem_x509_certificate(part + end)
            for part in text.split(end) if b"-----BEGIN CERTIFICATE-----" in part]


def serial_hex(cert):
    return "%x" % cert.serial_number


def pub_der(cert_or_csr):
    return cert_or_csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def wait_refused(port, pki, crt, key, timeout=15.0):
    """Wait until a connection with CRT/KEY gets no Welcome."""
    def refused():
        try:
            with vt.RawAgent(port, vt.client_context(pki, crt, key), 5.0).connect() as a:
                a.hello()
            return False
        except (vt.Closed, ssl.SSLError, OSError, AssertionError, TimeoutError):
            return True
    vt.wait_for(refused, timeout, interval=0.5, what="the old certificate to be refused")


class TlsServer:
    """A TLS server made here on 127.0.0.1 with context CTX: a thread of its
    own accepts one connection at a time until close(), sets its timeout to
    conn_timeout (seconds; None leaves it blocking) and passes it, once the
    handshake is done, to self._conn(tls), or a handshake that fails to
    self._refused(error). A subclass sets up its own state before calling
    __init__, which starts the thread."""

    conn_timeout = None

    def __init__(self, ctx):
        self.ctx = ctx
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.stopping = False
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.conn_timeout is not None:
                conn.settimeout(self.conn_timeout)
            try:
                tls = self.ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as e:
                self._refused(e)
                conn.close()
                continue
            self._conn(tls)

    def _refused(self, error):
        pass

    def _conn(self, tls):
        raise NotImplementedError

    def close(self):
        self.stopping = True
        self.t.join(5)
        self.srv.close()


class FakeCollector(TlsServer):
    """A TLS 1.3 server made here with certificate CERT: it records how each
    handshake ended and every byte received after it, and answers the first
    frame with ANSWER(AgentMessage) -> CollectorMessage (or nothing)."""

    conn_timeout = 10

    def __init__(self, cert, key, answer=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(cert, key)
        self.answer = answer
        self.handshakes = []
        self.received = b""
        self.requests = []
        super().__init__(ctx)

    def _refused(self, error):
        self.handshakes.append("failed: %s" % error)

    def _conn(self, tls):
        self.handshakes.append("ok")
        self._one(tls)

    def _one(self, tls):
        _, P = vt.pb()
        buf = b""
        try:
            while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
                data = tls.recv(65536)
                if not data:
                    break
                buf += data
                self.received += data
            if len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                m = P.AgentMessage()
                m.ParseFromString(buf[4:4 + struct.unpack(">I", buf[:4])[0]])
                self.requests.append(m)
                if self.answer:
                    out = self.answer(m).SerializeToString()
                    tls.sendall(struct.pack(">I", len(out)) + out)
        except (ssl.SSLError, OSError) as e:
            self.handshakes.append("after handshake: %s" % e)
        finally:
            tls.close()


def sign_csr(pki, csr_der, cn, lifetime=datetime.timedelta(hours=1)):
    """A clientAuth certificate for the CSR's key from the issuing CA:
    (leaf DER, [issuer DER])."""
    crt, key = issuer_files(pki)
    with open(crt, "rb") as f:
        issuer = x509.load_pem_x509_certificate(f.read())
    with open(key, "rb") as f:
        issuer_key = serialization.load_pem_private_key(f.read(), None)
    csr = x509.load_der_x509_csr(csr_der)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(issuer.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(issuer_key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.DER),
            [issuer.public_bytes(serialization.Encoding.DER)])


@pytest.fixture
def node(workdir, agent_bin):
    def make(hostname):
        return Node(workdir, agent_bin, hostname)
    return make


@pytest.fixture
def fake_collector():
    made = []

    def make(cert, key, answer=None):
        f = FakeCollector(cert, key, answer)
        made.append(f)
        return f
    yield make
    for f in made:
        f.close()


# --- the agent alone, against a TLS server made here ---------------------------------

def test_enroll_writes_key_chain_and_ca(pki, node, fake_collector):
    """The request carries the token, a CSR of the key made on the node (0600),
    the host name and machine id; the answer's chain lands in tls_cert, the
    CA given in ca."""
    n = node("fake-node")
    _, P = vt.pb()

    def answer(m):
        assert m.WhichOneof("msg") == "enroll"
        leaf, chain = sign_csr(pki, m.enroll.csr_der, "fake-node-2")
        out = P.CollectorMessage()
        out.enrolled.agent_id = "fake-node-2"
        out.enrolled.certificate_der = leaf
        out.enrolled.chain_der.extend(chain)
        return out
    f = fake_collector(pki.collector_crt, pki.collector_key, answer)
    rc, out, err = n.enroll(f.address, pki.ca_crt, token="vgj_0123456789abcdef_secret")
    assert rc == 0, err
    assert "enrolled as fake-node-2" in out, out
    req = f.requests[0].enroll
    assert req.token == "vgj_0123456789abcdef_secret"
    assert req.hostname == "fake-node"
    assert not req.force
    assert req.agent_version.startswith("vigil-agent/")
    if os.path.exists("/etc/machine-id"):
        with open("/etc/machine-id") as fh:
            assert req.machine_id == fh.read().strip()
    csr = x509.load_der_x509_csr(req.csr_der)
    assert csr.is_signature_valid
    assert pub_der(csr) == n.key_public()
    assert os.stat(n.key).st_mode & 0o777 == 0o600
    chain = load_chain(n.crt)
    assert len(chain) == 2 and pub_der(chain[0]) == n.key_public()
    assert chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "fake-node-2"
    with open(n.ca, "rb") as a, open(pki.ca_crt, "rb") as b:
        assert a.read() == b.read()
    leftovers = [x for x in os.listdir(os.path.dirname(n.key)) if ".tmp." in x]
    assert not leftovers, leftovers

    # again (the collector would want --force): the same key is reused
    before = n.key_public()
    rc, out, err = n.enroll(f.address, pki.ca_crt, token="vgj_0123456789abcdef_secret",
                            force=True, via="env")
    assert rc == 0, err
    assert f.requests[1].enroll.force
    assert n.key_public() == before


def test_enroll_refusal_and_bad_answers(pki, node, fake_collector):
    """An Error is printed with exit 3; a certificate for another key is not
    written (exit 5); no token at all is a usage error."""
    n = node("refused-node")
    _, P = vt.pb()

    def refuse(m):
        out = P.CollectorMessage()
        out.error.code = P.ERROR_CODE_ENROLL_REFUSED
        out.error.message = "enrollment refused: token not accepted"
        return out
    f = fake_collector(pki.collector_crt, pki.collector_key, refuse)
    rc, out, err = n.enroll(f.address, pki.ca_crt, token="vgj_bad", via="argv")
    assert rc == EXIT_REFUSED, (rc, err)
    assert "enrollment refused: token not accepted" in err
    assert not os.path.exists(n.crt)

    def wrong_key(m):
        other = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        from cryptography.hazmat.primitives.asymmetric import ec
        k = ec.generate_private_key(ec.SECP256R1())
        csr = other.sign(k, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        leaf, chain = sign_csr(pki, csr, "refused-node")
        out = P.CollectorMessage()
        out.enrolled.agent_id = "refused-node"
        out.enrolled.certificate_der = leaf
        out.enrolled.chain_der.extend(chain)
        return out
    g = fake_collector(pki.collector_crt, pki.collector_key, wrong_key)
    rc, out, err = n.enroll(g.address, pki.ca_crt, token="vgj_x")
    assert rc == EXIT_IO, (rc, err)
    assert "not for this agent's key" in err
    assert not os.path.exists(n.crt)

    rc, out, err = n.enroll(g.address, pki.ca_crt, token=None)
    assert rc == 2 and "token" in err, (rc, err)


@pytest.mark.parametrize("case", ["other_ca", "other_name"])
def test_untrusted_collector_never_gets_the_token(pki, node, fake_collector, case):
    """A collector whose certificate does not chain to --ca, or does not
    carry the collector's name: the handshake is aborted and not a byte of
    application data (the token) reaches it."""
    base = os.path.join(pki.bad_dir, "enroll-%s-%s" % (case, uuid.uuid4().hex[:6]))
    if case == "other_ca":
        ca, ca_key = pki.other_ca()
        import ipaddress
        san = [x509.DNSName("localhost"),
               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        crt, key, _ = pki.issue(base, "vigil-collector",
                                eku=(ExtendedKeyUsageOID.SERVER_AUTH,), issuer=ca,
                                issuer_key=ca_key, san=san)
    else:
        crt, key, _ = pki.issue(base, "vigil-collector",
                                eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
                                san=[x509.DNSName("collector.elsewhere.example")])
    f = fake_collector(crt, key, None)
    n = node("careful-node")
    rc, out, err = n.enroll(f.address, pki.ca_crt, token="vgj_0123456789abcdef_secret")
    assert rc == EXIT_TLS, (rc, out, err)
    assert "certificate verify failed" in err, err
    vt.wait_for(lambda: f.handshakes, 5, what="the fake collector to see the handshake")
    assert f.handshakes[0].startswith("failed"), f.handshakes
    assert f.received == b"", f.received
    assert not f.requests
    assert not os.path.exists(n.crt)


# --- against the real collector --------------------------------------------------------

def test_enroll_then_ingest(pki, db, collector_factory, collector_bin, node, agent_factory):
    """Enroll with a token, then run the agent with the issued certificate:
    its events are stored under the identity the collector assigned."""
    c = enroll_collector(collector_factory, db, pki)
    token = make_token(collector_bin, db)
    n = node("enroll-e2e")
    rc, out, err = n.enroll(c.address, pki.ca_crt, token=token)
    assert rc == 0, err
    m = re.search(r"enrolled as (\S+);", out)
    assert m, out
    name = m.group(1)
    assert name == "enroll-e2e"
    leaf = n.leaf()
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    rows = db.query("SELECT agent_name, kind, token_id FROM agent_certs WHERE serial = %s",
                    (serial_hex(leaf),))
    assert rows and rows[0][0] == name and rows[0][1] == "enroll", rows
    assert token.startswith("vgj_%s_" % rows[0][2])
    assert token not in c.log_text()

    # a single-use token is spent
    again = node("enroll-e2e-other")
    rc, out, err = again.enroll(c.address, pki.ca_crt, token=token)
    assert rc == EXIT_REFUSED, (rc, err)
    assert "token not accepted" in err

    a = agent_factory(c, name, **n.agent_settings())
    a.wait_log("connected as %s" % name)
    vt.wait_for(lambda: db.events_of(name), 30, what="events of %s" % name)
    assert db.agent_row(name) is not None


def test_enroll_wrong_ca_sends_nothing(pki, db, collector_factory, collector_bin, node):
    """--ca that the collector's certificate does not chain to: the agent
    stops at the handshake; the token stays unused."""
    c = enroll_collector(collector_factory, db, pki)
    token = make_token(collector_bin, db)
    other, _ = pki.other_ca()
    other_path = os.path.join(pki.bad_dir, "other-ca-%s.crt" % uuid.uuid4().hex[:6])
    with open(other_path, "wb") as f:
        f.write(other.public_bytes(serialization.Encoding.PEM))
    n = node("wrong-ca-node")
    rc, out, err = n.enroll(c.address, other_path, token=token)
    assert rc == EXIT_TLS, (rc, err)
    tid = token.split("_")[1]
    assert db.scalar("SELECT uses FROM enroll_tokens WHERE id = %s", (tid,)) == 0
    assert db.scalar("SELECT count(*) FROM agent_identities") == 0
    # and the token still works with the right CA
    rc, out, err = n.enroll(c.address, pki.ca_crt, token=token)
    assert rc == 0, err


def test_force_reenroll_revokes_old_certificate(pki, db, collector_factory, collector_bin,
                                                node):
    c = enroll_collector(collector_factory, db, pki)
    token = make_token(collector_bin, db, "--uses", "5")
    n = node("force-node")
    rc, out, err = n.enroll(c.address, pki.ca_crt, token=token)
    assert rc == 0, err
    old = n.leaf()
    old_copy = n.crt + ".old"
    with open(n.crt, "rb") as src, open(old_copy, "wb") as dst:
        dst.write(src.read())
    with vt.RawAgent(c.port, vt.client_context(pki, old_copy, n.key), 10).connect() as a:
        assert a.hello().agent_id == "force-node"

    rc, out, err = n.enroll(c.address, pki.ca_crt, token=token)
    assert rc == EXIT_REFUSED, (rc, err)
    assert "--force" in err, err

    rc, out, err = n.enroll(c.address, pki.ca_crt, token=token, force=True)
    assert rc == 0, err
    new = n.leaf()
    assert new.serial_number != old.serial_number
    assert "enrolled as force-node;" in out
    assert db.scalar("SELECT revoked_at IS NOT NULL FROM agent_certs WHERE serial = %s",
                     (serial_hex(old),))
    assert not db.scalar("SELECT revoked_at IS NOT NULL FROM agent_certs WHERE serial = %s",
                         (serial_hex(new),))
    wait_refused(c.port, pki, old_copy, n.key)
    with vt.RawAgent(c.port, vt.client_context(pki, n.crt, n.key), 10).connect() as a:
        assert a.hello().agent_id == "force-node"


@pytest.mark.serial  # the process connector: every exec of the machine
def test_renewal_while_sending(pki, db, collector_factory, collector_bin, node,
                               agent_factory):
    """Certificates of a few seconds: the agent renews over its connection
    and reconnects with each new certificate while execs are reported;
    every exec is stored exactly once."""
    c = enroll_collector(collector_factory, db, pki, **{"--agent-cert-lifetime": "6s"})
    token = make_token(collector_bin, db)
    n = node("renew-node")
    rc, out, err = n.enroll(c.address, pki.ca_crt, token=token)
    assert rc == 0, err
    first = n.leaf()
    settings = n.agent_settings()
    settings.update(proc_connector="true", host_execs="true", batch_delay="50ms")
    a = agent_factory(c, "renew-node", **settings)
    tag = "vigil-renew-%s" % uuid.uuid4().hex[:8]
    procs, sent = [], 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        procs.append(subprocess.Popen(["/bin/sh", "-c", "sleep 0.3; :", "%s-%d" % (tag, sent)]))
        sent += 1
        time.sleep(0.05)
        procs = [p for p in procs if p.poll() is None]
    for p in procs:
        p.wait(10)

    def stored():
        return db.query(
            "SELECT e.argv[array_length(e.argv, 1)] FROM events e JOIN agents g "
            "ON g.id = e.agent_id WHERE g.name = %s AND e.seq > 0 "
            "AND e.argv[array_length(e.argv, 1)] LIKE %s", ("renew-node", tag + "-%"))
    vt.wait_for(lambda: len(stored()) >= sent, 60,
                what="%d execs stored (%d so far)" % (sent, len(stored())))
    time.sleep(1)
    markers = [r[0] for r in stored()]
    assert len(markers) == sent, "%d rows for %d execs" % (len(markers), sent)
    assert sorted(markers) == sorted("%s-%d" % (tag, i) for i in range(sent))
    renewals = db.scalar("SELECT count(*) FROM agent_certs WHERE agent_name = %s "
                         "AND kind = 'renew'", ("renew-node",))
    assert renewals >= 2, renewals
    log = a.log_text()
    assert log.count("reconnecting with the renewed certificate") >= 2, log[-3000:]
    assert n.leaf().serial_number != first.serial_number
    assert os.stat(n.crt).st_mode & 0o777 == 0o644
    # the spool never dropped anything on the way
    assert "dropped" not in log, log[-3000:]
    # The agent's status says when its certificate ends and when it was
    # last renewed.
    vt.wait_for(lambda: any(s.get("cert_renewed_ns") for s in statuses(db, "renew-node")), 20,
                what="a status with cert_renewed_ns")
    last = [s for s in statuses(db, "renew-node") if s.get("cert_renewed_ns")][-1]
    ends = last["cert_not_after_ns"] / 1e9
    assert time.time() - 30 < ends < time.time() + 30, last


# --- renewal against a collector made here --------------------------------------------

class FakeIngest(TlsServer):
    """A mutual-TLS collector made here: Welcome, an Ack for each batch
    (recording every seq received, per connection), and RenewRequest
    answered by RENEW(csr_der) -> CollectorMessage."""

    def __init__(self, pki, renew):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(pki.collector_crt, pki.collector_key)
        ctx.load_verify_locations(pki.ca_crt)
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.renew = renew
        self.serials = []  # client certificate serial of each connection
        self.seqs = []     # every batch seq received, in order
        self.renews = []   # CSRs received
        self.committed = 0
        super().__init__(ctx)

    def _send(self, tls, m):
        out = m.SerializeToString()
        tls.sendall(struct.pack(">I", len(out)) + out)

    def _conn(self, tls):
        _, P = vt.pb()
        leaf = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
        self.serials.append(leaf.serial_number)
        tls.settimeout(0.2)
        buf = b""
        try:
            while not self.stopping:
                try:
                    data = tls.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    return
                buf += data
                while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                    n = struct.unpack(">I", buf[:4])[0]
                    m = P.AgentMessage()
                    m.ParseFromString(buf[4:4 + n])
                    buf = buf[4 + n:]
                    self._handle(tls, m, P)
        except (ssl.SSLError, OSError):
            pass
        finally:
            tls.close()

    def _handle(self, tls, m, P):
        kind = m.WhichOneof("msg")
        out = P.CollectorMessage()
        if kind == "hello":
            out.welcome.protocol_version = 1
            out.welcome.committed_seq = self.committed
            out.welcome.agent_id = "fake-renew"
        elif kind == "batch":
            self.seqs.append(m.batch.seq)
            self.committed = max(self.committed, m.batch.seq)
            out.ack.seq = m.batch.seq
        elif kind == "renew":
            self.renews.append(m.renew.csr_der)
            out = self.renew(m.renew.csr_der)
        else:
            return
        self._send(tls, out)


@pytest.mark.parametrize("mode", ["renewed", "refused"])
def test_renewal_over_the_uplink(pki, node, fake_collector, agent_factory, mode):
    """At two thirds of its certificate's life the agent asks for a new one
    (a CSR of its key) once per connection; renewed, it writes the chain
    over tls_cert and reconnects with it once its batches are acknowledged,
    no batch sent twice; refused, it logs it and stays connected."""
    _, P = vt.pb()
    n = node("fake-renew")

    def first(m):  # a certificate at two thirds of its life already
        leaf, chain = sign_csr(pki, m.enroll.csr_der, "fake-renew",
                               lifetime=datetime.timedelta(seconds=60))
        out = P.CollectorMessage()
        out.enrolled.agent_id = "fake-renew"
        out.enrolled.certificate_der = leaf
        out.enrolled.chain_der.extend(chain)
        return out
    f = fake_collector(pki.collector_crt, pki.collector_key, first)
    rc, out, err = n.enroll(f.address, pki.ca_crt, token="vgj_0123456789abcdef_x")
    assert rc == 0, err
    old = n.leaf()
    issued = []

    def renew(csr_der):
        out = P.CollectorMessage()
        if mode == "refused":
            out.error.code = P.ERROR_CODE_RENEW_REFUSED
            out.error.message = "renewal refused: identity revoked"
            return out
        leaf, chain = sign_csr(pki, csr_der, "fake-renew", lifetime=datetime.timedelta(hours=2))
        issued.append(x509.load_der_x509_certificate(leaf).serial_number)
        out.renewed.certificate_der = leaf
        out.renewed.chain_der.extend(chain)
        return out
    ingest = FakeIngest(pki, renew)
    try:
        settings = n.agent_settings()
        settings.update(status_interval="1s", batch_delay="20ms")
        a = agent_factory(ingest.address, "fake-renew", **settings)
        vt.wait_for(lambda: ingest.renews, 15, what="a RenewRequest")
        csr = x509.load_der_x509_csr(ingest.renews[0])
        assert csr.is_signature_valid and pub_der(csr) == n.key_public()
        if mode == "renewed":
            vt.wait_for(lambda: len(ingest.serials) >= 2, 15, what="a second connection")
            assert ingest.serials[:2] == [old.serial_number, issued[0]]
            assert n.leaf().serial_number == issued[0]
            assert os.stat(n.crt).st_mode & 0o777 == 0o644
            a.wait_log("reconnecting with the renewed certificate")
            # batches go on over the new connection; none is sent twice
            seen = len(ingest.seqs)
            vt.wait_for(lambda: len(ingest.seqs) >= seen + 2, 15, what="more batches")
            assert len(ingest.renews) == 1  # the new certificate is far from due
        else:
            a.wait_log("refused to renew the certificate")
            seen = len(ingest.seqs)
            vt.wait_for(lambda: len(ingest.seqs) >= seen + 2, 15, what="more batches")
            assert len(ingest.serials) == 1, "the agent reconnected after a refusal"
            assert len(ingest.renews) == 1
            assert n.leaf().serial_number == old.serial_number
        assert len(ingest.seqs) == len(set(ingest.seqs)), ingest.seqs
        assert ingest.seqs == sorted(ingest.seqs)
        assert a.terminate() == 0
    finally:
        ingest.close()
