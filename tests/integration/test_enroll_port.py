# SPDX-License-Identifier: Apache-2.0
"""Enrollment on the agent port, spoken by hand against the real collector
and PostgreSQL: a connection without a client certificate sends one
EnrollRequest (a token and a CSR made here) and gets an EnrollResponse or
an Error. Checks the issued certificate (assigned identity, clientAuth
only, no names from the CSR), then ingest with it, every token refusal
(one text for all, only the token id logged), CSR refusals, host-name
clashes and --force, the per-address rate limit under thousands of
guesses, renewal over the mutual-TLS connection, and that a connection
without a certificate can do nothing else."""

import concurrent.futures
import os
import re
import socket
import ssl
import struct
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import vigiltest as vt

TOKEN_RE = re.compile(r"vgj_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
TOKEN_TEXT = "enrollment refused: token not accepted"


def issuer_flags(pki, **extra):
    flags = {"--agent-issuer-cert": os.path.join(pki.dir, "issuer.crt"),
             "--agent-issuer-key": os.path.join(pki.dir, "issuer.key")}
    flags.update(extra)
    return flags


def make_token(collector_bin, db, *args):
    r = subprocess.run([collector_bin, "enroll-token", "create", "--db", db.conninfo] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
                       env=vt.sanitizer_env())
    assert r.returncode == 0, r.stdout + r.stderr
    return TOKEN_RE.search(r.stdout).group(0)


def token_cmd(collector_bin, db, *args):
    return subprocess.run([collector_bin, "enroll-token"] + list(args) + ["--db", db.conninfo],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
                          env=vt.sanitizer_env())


def csr_der(key, cn="node", sans=(), eku=None):
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), False)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), False)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def p256():
    return ec.generate_private_key(ec.SECP256R1())


def bare_connect(port, src="127.0.0.1", pki=None, timeout=10.0):
    """A TLS connection with no client certificate (the collector's is
    verified against the session CA)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(pki.ca_crt)
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                   source_address=(src, 0))
    a = vt.RawAgent(port, ctx, timeout)
    a.sock = ctx.wrap_socket(raw, server_hostname="localhost")
    return a


def enroll(port, pki, token, key=None, hostname="node-a", machine_id="m-a", force=False,
           src="127.0.0.1", csr=None):
    """Send one EnrollRequest; return the CollectorMessage answered."""
    _, P = vt.pb()
    key = key or p256()
    m = P.AgentMessage()
    m.enroll.token = token
    m.enroll.csr_der = csr if csr is not None else csr_der(key)
    m.enroll.hostname = hostname
    m.enroll.machine_id = machine_id
    m.enroll.force = force
    m.enroll.agent_version = "itest/1"
    with bare_connect(port, src, pki) as a:
        a.send(m)
        return a.recv()


def refusal(reply):
    assert reply.WhichOneof("msg") == "error", "expected an Error, got %s" % reply
    return reply.error


def write_identity(tmp_path, name, key, reply):
    """PEM files of an enrolled identity: (cert chain, key)."""
    crt = tmp_path / (name + ".crt")
    pem = [x509.load_der_x509_certificate(reply.enrolled.certificate_der)]
    pem += [x509.load_der_x509_certificate(d) for d in reply.enrolled.chain_der]
    crt.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in pem))
    k = tmp_path / (name + ".key")
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return str(crt), str(k)


def serial_hex(cert):
    return "%x" % cert.serial_number


@pytest.fixture(scope="module")
def enrolling(module_collector_factory, module_db, pki):
    """One collector that issues certificates, generous rate limit."""
    c = module_collector_factory(module_db, issuer_flags(pki, **{"--enroll-rate-per-min": "100000",
                                                         "--enroll-burst": "1000",
                                                         "--agent-cert-lifetime": "1h"}))
    return c


def test_enroll_then_ingest(enrolling, module_db, pki, collector_bin, tmp_path):
    token = make_token(collector_bin, module_db, "--uses", "1", "--labels", "zone=a")
    key = p256()
    reply = enroll(enrolling.port, pki, token, key, hostname="Web-01.Example",
                   machine_id="m-web01",
                   csr=csr_der(key, cn="admin", sans=["evil.example"],
                               eku=[ExtendedKeyUsageOID.SERVER_AUTH]))
    assert reply.WhichOneof("msg") == "enrolled", reply
    e = reply.enrolled
    assert e.agent_id == "web-01.example"
    cert = x509.load_der_x509_certificate(e.certificate_der)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == e.agent_id
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    issuer = x509.load_der_x509_certificate(e.chain_der[0])
    assert cert.issuer == issuer.subject
    assert abs(e.not_after_ns / 1e9 - (time.time() + 3600)) < 120
    # The key stayed here: the certificate carries the CSR's public key.
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()

    crt, k = write_identity(tmp_path, "web", key, reply)
    subprocess.run(["openssl", "verify", "-CAfile", pki.ca_crt, "-untrusted", crt, crt],
                   check=True, stdout=subprocess.DEVNULL)
    with vt.RawAgent(enrolling.port, vt.client_context(pki, crt, k)).connect() as a:
        w = a.hello()
        assert w.agent_id == e.agent_id
        a.batch(1, [vt.exec_event(4242, ["/bin/enrolled", "ok"])])
    assert module_db.events_of("web-01.example"), "nothing stored under the assigned identity"
    rows = module_db.query(
        "SELECT c.agent_name, c.kind, c.token_id IS NOT NULL, i.labels->>'zone' "
        "FROM agent_certs c JOIN agent_identities i ON i.name = c.agent_name "
        "WHERE c.serial = %s", (serial_hex(cert),))
    assert rows == [("web-01.example", "enroll", True, "a")], rows
    # The single-use token is spent.
    assert refusal(enroll(enrolling.port, pki, token, hostname="web-02")).message == TOKEN_TEXT


def test_every_token_problem_gets_the_same_answer(enrolling, module_db, pki, collector_bin):
    used = make_token(collector_bin, module_db, "--uses", "1")
    assert enroll(enrolling.port, pki, used, hostname="tok-1").WhichOneof("msg") == "enrolled"
    revoked = make_token(collector_bin, module_db, "--uses", "5")
    rid = TOKEN_RE.search(revoked).group(0).split("_")[1]
    assert token_cmd(collector_bin, module_db, "revoke", rid).returncode == 0
    expired = make_token(collector_bin, module_db, "--expires", "1s")
    time.sleep(1.5)
    good = make_token(collector_bin, module_db, "--uses", "5")
    wrong_secret = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    unknown = "vgj_0123456789abcdef_" + good.split("_", 2)[2]
    cases = {"reused": used, "revoked": revoked, "expired": expired,
             "wrong secret": wrong_secret, "unknown id": unknown,
             "malformed": "hello", "empty": "", "long": "x" * 5000}
    for what, tok in cases.items():
        err = refusal(enroll(enrolling.port, pki, tok, hostname="tok-x"))
        assert err.code == vt.pb()[1].ERROR_CODE_ENROLL_REFUSED, what
        assert err.message == TOKEN_TEXT, "%s: %r" % (what, err.message)
    log = enrolling.log_text()
    for tok in (used, revoked, expired, good, wrong_secret):
        secret = tok.split("_", 2)[2]
        assert secret not in log, "a token secret reached the log"
    assert rid in log, "the log names the token by its id"


def test_csr_and_host_name_refusals(enrolling, module_db, pki, collector_bin):
    token = make_token(collector_bin, module_db, "--unlimited")
    cases = [
        ("RSA 1024", dict(csr=csr_der(rsa.generate_private_key(65537, 1024))), "RSA"),
        ("DSA", dict(csr=csr_der(dsa.generate_private_key(2048))), "key"),
        ("garbage", dict(csr=b"\x30\x03\x02\x01\x00"), "CSR"),
        ("1 MiB", dict(csr=b"\x30" * (1 << 20)), "16384"),
        ("reserved name", dict(hostname="admin"), ""),
        ("bad name", dict(hostname="bad name;rm -rf"), ""),
    ]
    for what, kw, word in cases:
        err = refusal(enroll(enrolling.port, pki, token, **kw))
        assert err.code == vt.pb()[1].ERROR_CODE_ENROLL_REFUSED, what
        assert err.message != TOKEN_TEXT and word in err.message, "%s: %r" % (what, err.message)
    # A good RSA 2048 key is fine.
    ok = enroll(enrolling.port, pki, token, rsa.generate_private_key(65537, 2048),
                hostname="rsa-node", machine_id="m-rsa")
    assert ok.WhichOneof("msg") == "enrolled", ok


def test_name_clash_and_force(enrolling, module_db, pki, collector_bin, tmp_path):
    token = make_token(collector_bin, module_db, "--unlimited")
    k1 = p256()
    first = enroll(enrolling.port, pki, token, k1, hostname="db", machine_id="m-db-1")
    assert first.enrolled.agent_id == "db"
    other = enroll(enrolling.port, pki, token, hostname="db", machine_id="m-db-2")
    assert other.enrolled.agent_id == "db-2", "another machine gets a name of its own"
    again = refusal(enroll(enrolling.port, pki, token, hostname="db", machine_id="m-db-1"))
    assert "--force" in again.message
    k2 = p256()
    forced = enroll(enrolling.port, pki, token, k2, hostname="db", machine_id="m-db-1",
                    force=True)
    assert forced.enrolled.agent_id == "db"
    old_crt, old_key = write_identity(tmp_path, "db-old", k1, first)
    new_crt, new_key = write_identity(tmp_path, "db-new", k2, forced)
    # The old certificate is revoked (every collector learns it within 10 s).
    deadline = time.monotonic() + 12
    while True:
        try:
            with vt.RawAgent(enrolling.port, vt.client_context(pki, old_crt, old_key)).connect() as a:
                a.send_hello()
                m = a.recv()
                if m.WhichOneof("msg") == "error":
                    break
        except (vt.Closed, ssl.SSLError, ConnectionError):
            break
        assert time.monotonic() < deadline, "the replaced certificate still works"
        time.sleep(0.5)
    with vt.RawAgent(enrolling.port, vt.client_context(pki, new_crt, new_key)).connect() as a:
        assert a.hello().agent_id == "db"


def test_renewal_over_the_connection(enrolling, module_db, pki, collector_bin, tmp_path):
    token = make_token(collector_bin, module_db)
    key = p256()
    first = enroll(enrolling.port, pki, token, key, hostname="renewer", machine_id="m-r")
    crt, k = write_identity(tmp_path, "renewer", key, first)
    old = x509.load_der_x509_certificate(first.enrolled.certificate_der)
    _, P = vt.pb()
    with vt.RawAgent(enrolling.port, vt.client_context(pki, crt, k)).connect() as a:
        a.hello()
        m = P.AgentMessage()
        m.renew.csr_der = csr_der(key, cn="someone-else")
        a.send(m)
        r = a.recv()
        while r.WhichOneof("msg") == "heartbeat":
            r = a.recv()
        assert r.WhichOneof("msg") == "renewed", r
        new = x509.load_der_x509_certificate(r.renewed.certificate_der)
        assert new.subject == old.subject and new.serial_number != old.serial_number
        assert new.public_key().public_numbers() == key.public_key().public_numbers()
        # The connection stays up: a batch is still acked on it.
        a.batch(1, [vt.exec_event(4243, ["/bin/renewed"])])
    rows = module_db.query("SELECT kind FROM agent_certs WHERE agent_name = 'renewer' "
                           "ORDER BY issued_at")
    assert [r[0] for r in rows] == ["enroll", "renew"], rows


def test_renewal_refused_for_a_hand_made_certificate(enrolling, pki):
    crt, key = pki.agent("handmade-renewer")
    _, P = vt.pb()
    with vt.RawAgent(enrolling.port, vt.client_context(pki, crt, key)).connect() as a:
        a.hello()
        m = P.AgentMessage()
        m.renew.csr_der = csr_der(p256())
        a.send(m)
        r = a.recv()
        assert r.WhichOneof("msg") == "error" and \
            r.error.code == P.ERROR_CODE_RENEW_REFUSED, r


def test_without_a_certificate_only_enrollment(enrolling, pki):
    with bare_connect(enrolling.port, pki=pki) as a:
        a.send_hello()
        err = refusal(a.recv())
        assert err.code == vt.pb()[1].ERROR_CODE_UNEXPECTED_MESSAGE
        with pytest.raises(vt.Closed):
            a.recv(5)


def test_guesses_are_rate_limited_per_address(collector_factory, db, pki, collector_bin):
    """10,000 guesses, 1,000 in a row and 9,000 in parallel, from one address:
    every one refused with the same words, and past the burst even the
    right token from that address waits; another address is unaffected."""
    import apitest as at
    hport = vt.free_port()
    c = collector_factory(db, issuer_flags(pki, **{"--enroll-rate-per-min": "60",
                                                  "--enroll-burst": "10",
                                                  "--http-listen": "127.0.0.1:%d" % hport,
                                                  "--http-rate-limit": "0"}))
    api = at.Api(hport, pki, token=at.create_token(collector_bin, db, "m", "viewer"))

    def metric(name):
        text = api.get("/metrics").body.decode()
        return int([ln for ln in text.splitlines() if ln.startswith(name + " ")][0].split()[1])

    good = make_token(collector_bin, db, "--unlimited")
    t0 = time.monotonic()
    guess = "vgj_%016x_" + "A" * 42 + "E"

    def one(i):
        try:
            return refusal(enroll(c.port, pki, guess % i, hostname="g")).message
        except (vt.Closed, ConnectionError, ssl.SSLError, TimeoutError) as e:
            return "transport: %s" % e

    answers = [one(i) for i in range(1000)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers += list(pool.map(one, range(1000, 10000)))
    assert len(answers) == 10000
    assert set(answers) == {TOKEN_TEXT}, set(answers) - {TOKEN_TEXT}
    # The bucket is empty: the right token from the same address is refused
    # too, with the same words...
    assert refusal(enroll(c.port, pki, good, hostname="late")).message == TOKEN_TEXT
    # ...and the database saw at most the burst and what the rate refilled
    # meanwhile (one a second); every other guess was refused before it.
    elapsed = time.monotonic() - t0
    limited = metric("vigil_enroll_rate_limited_total")
    checked = metric("vigil_enroll_refused_total") - limited
    assert checked <= 10 + elapsed + 2, (checked, elapsed)
    assert limited >= 10001 - (10 + elapsed + 2), (limited, elapsed)
    assert metric("vigil_enrollments_total") == 0
    # Another address has its own bucket.
    ok = enroll(c.port, pki, good, hostname="other-addr", src="127.0.0.2")
    assert ok.WhichOneof("msg") == "enrolled", ok


def test_an_enrolled_certificate_is_never_an_operator(collector_factory, db, pki, collector_bin,
                                                      tmp_path):
    """The HTTPS port trusts the session CA for operators, which the issuing
    CA chains to: a certificate enrollment signed still names no operator,
    even one whose CN is an admin's."""
    import apitest as at
    hport = vt.free_port()
    c = collector_factory(db, issuer_flags(pki, **{
        "--http-listen": "127.0.0.1:%d" % hport, "--http-operator-ca": pki.ca_crt,
        "--http-admin-cns": "ops-lead", "--http-rate-limit": "0"}))
    token = make_token(collector_bin, db)
    err = refusal(enroll(c.port, pki, token, hostname="ops-lead"))
    assert "reserved" in err.message or "admin" in err.message, err.message
    key = p256()
    reply = enroll(c.port, pki, token, key, hostname="plain-node", machine_id="m-plain")
    crt, k = write_identity(tmp_path, "plain", key, reply)
    api = at.Api(hport, pki, cert=crt, key=k)
    assert api.get("/api/v1/whoami").status == 401
    # A certificate the session CA signed directly is still an operator.
    ocrt, okey = pki.agent("ops-lead")
    assert at.Api(hport, pki, cert=ocrt, key=okey).ok("/api/v1/whoami")["role"] == "admin"
