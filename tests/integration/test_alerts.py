# SPDX-License-Identifier: Apache-2.0
"""Alert forwarding end to end: findings at or above alert_min_severity reach
an HTTPS webhook (OCSF JSON) and a syslog-over-TLS receiver (RFC 5425
framing) run by the test, at least once and, outside a crash window, once:
through a receiver outage, a collector SIGKILL mid-delivery, receivers that
fail (500, hang, redirect, certificate from another CA), hostile strings in
container names, labels and argv, and two collectors sharing the outbox."""

import json
import os
import re
import signal
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import vigiltest as vt


# --- receivers ---------------------------------------------------------------------

def server_context(pki, name, other_ca=False):
    base = os.path.join(pki.bad_dir, name)
    if other_ca:
        ca, ca_key = pki.other_ca()
        crt, key, _ = pki.issue(base, "localhost", issuer=ca, issuer_key=ca_key,
                                eku=(vt.ExtendedKeyUsageOID.SERVER_AUTH,),
                                san=[vt.x509.DNSName("localhost"),
                                     vt.x509.IPAddress(__import__("ipaddress")
                                                       .ip_address("127.0.0.1"))])
    else:
        crt, key, _ = pki.collector_cert(base)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    return ctx


class Webhook:
    """An HTTPS receiver on a fixed port. mode: ok, 500, hang, redirect,
    slow (answers after delay). A delivery is recorded only when it is
    answered 2xx to a client that is still connected."""

    def __init__(self, pki, name="webhook", other_ca=False, mode="ok", delay=0.0):
        self.port = vt.free_port()
        self.ctx = server_context(pki, name, other_ca)
        self.mode, self.delay = mode, delay
        self.redirect_to = None
        self.got = []        # parsed JSON bodies, in order
        self.requests = 0    # every request, answered or not
        self.headers = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.httpd = None

    def start(self):
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    outer.requests += 1
                mode = outer.mode
                if mode == "hang":
                    outer.release.wait(30)
                    return
                if mode == "500":
                    return self._answer(500)
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "https://127.0.0.1:%d/hook" % outer.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "slow":
                    time.sleep(outer.delay)
                if not self._client_alive():
                    return
                doc = json.loads(body.decode("ascii"))  # ASCII and valid JSON, or fail
                with outer.lock:
                    outer.got.append(doc)
                    outer.headers.append(dict(self.headers))
                self._answer(200)

            def _client_alive(self):
                s = socket.socket(fileno=os.dup(self.connection.fileno()))
                try:
                    return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) is None
                except BlockingIOError:
                    return True
                except OSError:
                    return False
                finally:
                    s.close()

            def _answer(self, code):
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class S(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.httpd = S(("127.0.0.1", self.port), H)
        self.httpd.socket = self.ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def url(self):
        return "https://127.0.0.1:%d/hook" % self.port

    def keys(self):
        with self.lock:
            return [(int(d["finding_info"]["uid"].rsplit("-", 1)[1]),
                     d["unmapped"]["vigil"]["action"]) for d in self.got]


class Syslog:
    """An RFC 5425 receiver (TLS, octet-counted frames) on a fixed port."""

    def __init__(self, pki):
        self.port = vt.free_port()
        self.ctx = server_context(pki, "syslog")
        self.msgs = []
        self.lock = threading.Lock()
        self.sock = None
        self.conns = []

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.sock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()
        return self

    def _accept(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, raw):
        try:
            c = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        with self.lock:
            self.conns.append(c)
        buf = b""
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                buf += data
                while True:
                    m = re.match(rb"([1-9][0-9]{0,5}) ", buf)
                    if not m:
                        assert len(buf) < 8 or b" " in buf[:8], buf[:32]
                        break
                    n, start = int(m.group(1)), m.end()
                    if len(buf) < start + n:
                        break
                    with self.lock:
                        self.msgs.append(buf[start:start + n])
                    buf = buf[start + n:]
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()

    def stop(self):
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept()
            except OSError:
                pass
            self.sock.close()
            self.sock = None
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def keys(self):
        with self.lock:
            msgs = list(self.msgs)
        out = []
        for m in msgs:
            f = re.search(rb' finding="([0-9]+)"', m)
            action = m.split(b" ")[5].decode()
            out.append((int(f.group(1)), action))
        return out


# --- helpers -----------------------------------------------------------------------

def alert_flags(webhook=None, syslog=None, pki=None, **extra):
    f = {"--alert-min-severity": "high", "--alert-retry-max": "1s",
         "--alert-timeout": "2s", "--alert-rate": "100", "--alert-update-interval": "1h"}
    if webhook:
        f["--alert-webhook-url"] = webhook.url()
        f["--alert-webhook-ca"] = pki.ca_crt
        f["--alert-webhook-token"] = "s3cret-token"
    if syslog:
        f["--alert-syslog"] = "127.0.0.1:%d" % syslog.port
        f["--alert-syslog-ca"] = pki.ca_crt
    f.update(extra)
    return f


def cid_of(tag, i):
    return ("%s%04d" % (tag, i)).ljust(64, "0")


class Fleet:
    """A scripted agent making privileged containers (a critical finding
    each), then fixing them (resolved)."""

    def __init__(self, agent, coll, name):
        self.a = agent(coll.port, name)
        self.seq = self.a.hello().committed_seq

    def reconnect(self, agent, coll, name):
        self.a = agent(coll.port, name)
        self.seq = self.a.hello().committed_seq

    def start(self, cids, name="priv", labels=()):
        evs = []
        for cid in cids:
            e = vt.container_started_event(cid, name, privileged=True)
            for k, v in labels:
                lab = e.container_started.container.labels.add()
                lab.key, lab.value = k, v
            evs.append(e)
        self.seq += 1
        self.a.batch(self.seq, evs)

    def fix(self, cids, name="priv"):
        """The containers report again, no longer privileged: resolved."""
        self.seq += 1
        self.a.batch(self.seq, [vt.container_started_event(cid, name) for cid in cids])


def expected(db, min_sev=4, resolved=False):
    rows = db.query("SELECT id, state FROM findings WHERE severity >= %s", (min_sev,))
    out = {(r[0], "opened") for r in rows}
    if resolved:
        out |= {(r[0], "resolved") for r in rows if r[1] == "resolved"}
    return out


def wait_delivered(recv, want, timeout=30, what="deliveries"):
    vt.wait_for(lambda: want <= set(recv.keys()), timeout,
                what="%s: %d of %d" % (what, len(want & set(recv.keys())), len(want)))


def assert_once(recv, allow=()):
    keys = recv.keys()
    dups = {k for k in keys if keys.count(k) > 1 and k[1] != "update"} - set(allow)
    assert not dups, "delivered twice: %r" % sorted(dups)


def outbox_left(db):
    return db.scalar("SELECT count(*) FROM alert_outbox")


# --- tests -------------------------------------------------------------------------

def test_webhook_and_syslog_get_every_finding_once(collector_factory, db, agent, pki):
    wh, sl = Webhook(pki).start(), Syslog(pki).start()
    try:
        coll = collector_factory(db, alert_flags(wh, sl, pki))
        fleet = Fleet(agent, coll, "alert-basic")
        cids = [cid_of("a1", i) for i in range(5)]
        fleet.start(cids)
        want = expected(db)
        assert len(want) >= 5
        assert db.scalar("SELECT count(*) FROM findings WHERE severity < 4") > 0
        wait_delivered(wh, want, what="webhook")
        wait_delivered(sl, want, what="syslog")
        # Below the minimum severity: nothing queued.
        assert set(wh.keys()) == want
        fleet.fix(cids)
        want = expected(db, resolved=True)
        assert len([k for k in want if k[1] == "resolved"]) >= 5
        wait_delivered(wh, want, what="webhook resolves")
        wait_delivered(sl, want, what="syslog resolves")
        vt.wait_for(lambda: outbox_left(db) == 0, 10, what="an empty outbox")
        assert_once(wh)
        assert_once(sl)

        doc = wh.got[0]
        assert doc["class_uid"] == 2004 and doc["category_uid"] == 2
        assert doc["activity_id"] == 1 and doc["type_uid"] == 200401
        assert doc["severity_id"] in (4, 5) and doc["metadata"]["version"].startswith("1.")
        assert doc["finding_info"]["analytic"]["uid"]
        assert doc["resources"][0]["type"] == "Container"
        closes = [d for d in wh.got if d["unmapped"]["vigil"]["action"] == "resolved"]
        assert closes and all(d["activity_id"] == 3 and d["status_id"] == 4 for d in closes)
        assert wh.headers[0]["Authorization"] == "Bearer s3cret-token"
        m = sl.msgs[0]
        assert re.match(rb"<8[0-9]>1 \d{4}-\d\d-\d\dT[0-9:.]+Z ", m), m
    finally:
        wh.stop()
        sl.stop()


def test_hostile_strings_stay_one_line_and_valid_json(collector_factory, db, agent, pki):
    wh, sl = Webhook(pki).start(), Syslog(pki).start()
    try:
        coll = collector_factory(db, alert_flags(wh, sl, pki))
        fleet = Fleet(agent, coll, "alert-hostile")
        evil = "<script>alert(1)</script>\x1b[31mred\nsecond line\r\u202eevil\\\"]"
        cid = cid_of("h1", 0)
        fleet.start([cid], name=evil, labels=[("x<b>", evil)])
        fleet.seq += 1
        fleet.a.batch(fleet.seq, [vt.exec_event(77, ["nc", "-e", "/bin/sh", evil],
                                                container_id=cid)])
        want = expected(db)
        wait_delivered(wh, want, what="webhook")
        wait_delivered(sl, want, what="syslog")
        names = {d["resources"][0].get("name") for d in wh.got}
        assert evil in names  # the exact string, escaped in transit
        for m in sl.msgs:
            assert b"\n" not in m and b"\r" not in m and b"\x1b" not in m, m
            assert "\u202e".encode() not in m, m
            text = m.decode("utf-8")
            sd = text[text.index("[vigil@"):text.index("] \ufeff")]
            # Every '"' and ']' inside a value is escaped (RFC 5424 PARAM-VALUE).
            assert re.fullmatch(r'\[vigil@32473( [a-z_]+="([^"\\\]]|\\.)*")+', sd), sd
        assert any("\\x1B[31m" in m.decode() for m in sl.msgs)
    finally:
        wh.stop()
        sl.stop()


def test_outage_and_sigkill_lose_nothing(collector_factory, db, agent, pki):
    wh, sl = Webhook(pki, mode="slow", delay=0.3).start(), Syslog(pki).start()
    try:
        flags = alert_flags(wh, sl, pki)
        coll = collector_factory(db, flags)
        fleet = Fleet(agent, coll, "alert-outage")
        fleet.start([cid_of("o1", 0)])
        wait_delivered(wh, expected(db), what="first delivery")
        wait_delivered(sl, expected(db), what="first syslog delivery")

        # Outage: both receivers down while findings are made.
        wh.stop()
        sl.stop()
        fleet.start([cid_of("o2", i) for i in range(4)])
        vt.wait_for(lambda: db.scalar("SELECT count(*) FROM alert_outbox WHERE attempts > 0"),
                    20, what="failed attempts during the outage")
        wh.start()
        sl.start()
        want = expected(db)
        wait_delivered(wh, want, what="webhook after the outage")
        wait_delivered(sl, want, what="syslog after the outage")

        # SIGKILL mid-delivery (each webhook answer takes 0.3 s), then restart.
        fleet.start([cid_of("o3", i) for i in range(12)])
        want = expected(db)
        vt.wait_for(lambda: len(set(wh.keys())) >= len(want) - 10, 20, what="deliveries under way")
        coll.proc.send_signal(signal.SIGKILL)
        coll.proc.wait(10)
        coll.reported = True
        assert not want <= set(wh.keys()), "all delivered before the kill: test too slow"
        coll2 = collector_factory(db, flags, port=coll.port)
        fleet.reconnect(agent, coll2, "alert-outage")
        fleet.fix([cid_of("o3", i) for i in range(12)])
        want = expected(db, resolved=True)
        wait_delivered(wh, want, timeout=60, what="webhook after the restart")
        wait_delivered(sl, want, timeout=60, what="syslog after the restart")
        # The webhook sender delivers one row at a time and commits it after
        # the 2xx: a kill between the two repeats that one alert (receivers
        # dedupe on its Idempotency-Key); nothing else comes twice.
        keys = wh.keys()
        dups = {k for k in keys if keys.count(k) > 1 and k[1] != "update"}
        assert len(dups) <= 1 and all(keys.count(k) == 2 for k in dups), sorted(dups)
        # Syslog has no acknowledgement: a frame written just before the kill
        # may come again (at least once); everything else comes once.
        keys = sl.keys()
        assert len(keys) - len(set(keys)) <= 32
        vt.wait_for(lambda: outbox_left(db) == 0, 10, what="an empty outbox")
    finally:
        wh.stop()
        sl.stop()


@pytest.mark.parametrize("mode", ["500", "hang", "redirect", "other_ca"])
def test_failing_webhook_is_retried_and_others_unaffected(collector_factory, db, agent, pki,
                                                          mode):
    other_ca = mode == "other_ca"
    wh = Webhook(pki, name="bad-" + mode, other_ca=other_ca,
                 mode="ok" if other_ca else mode).start()
    target = Webhook(pki, name="target").start()  # where a redirect points
    wh.redirect_to = target.port
    sl = Syslog(pki).start()
    try:
        coll = collector_factory(db, alert_flags(wh, sl, pki))
        fleet = Fleet(agent, coll, "alert-bad-" + mode)
        fleet.start([cid_of("b1", i) for i in range(3)])
        want = expected(db)
        wait_delivered(sl, want, what="syslog while the webhook fails")
        vt.wait_for(lambda: db.query(
            "SELECT min(attempts) >= 2 FROM alert_outbox "
            "WHERE receiver = 'webhook'")[0][0], 60, what="every row retried")
        assert db.scalar("SELECT count(*) FROM alert_outbox WHERE receiver = 'webhook'") \
            == len(want)
        assert wh.got == [] and target.got == [] and target.requests == 0
        if other_ca:
            assert wh.requests == 0
        err = db.scalar("SELECT last_error FROM alert_outbox WHERE receiver = 'webhook' LIMIT 1")
        assert err
        # The receiver recovers: everything arrives, once.
        if other_ca:
            wh.stop()
            good = Webhook(pki, name="good")
            good.port = wh.port
            wh = good.start()
        else:
            wh.mode = "ok"
            wh.release.set()
        wait_delivered(wh, want, timeout=30, what="webhook after recovery")
        assert_once(wh)
        assert target.requests == 0
        assert coll.alive()
    finally:
        wh.release.set()
        wh.stop()
        target.stop()
        sl.stop()


def test_two_collectors_share_the_outbox(collector_factory, db, agent, pki):
    wh, sl = Webhook(pki).start(), Syslog(pki).start()
    try:
        flags = alert_flags(wh, sl, pki, **{"--alert-rate": "20"})
        c1 = collector_factory(db, flags)
        c2 = collector_factory(db, flags)
        f1 = Fleet(agent, c1, "alert-share-1")
        f2 = Fleet(agent, c2, "alert-share-2")
        for r in range(3):
            f1.start([cid_of("s1%d" % r, i) for i in range(8)])
            f2.start([cid_of("s2%d" % r, i) for i in range(8)])
        want = expected(db)
        assert len(want) >= 48
        wait_delivered(wh, want, timeout=60, what="webhook")
        wait_delivered(sl, want, timeout=60, what="syslog")
        time.sleep(1.5)
        assert_once(wh)
        assert_once(sl)
        assert len(wh.keys()) == len(want)
        apps = {r[0] for r in db.query(
            "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()")}
        assert "vigil-collector-alert-webhook" in apps
    finally:
        wh.stop()
        sl.stop()


def test_seen_again_is_one_update_per_interval(collector_factory, db, agent, pki):
    wh = Webhook(pki).start()
    try:
        coll = collector_factory(db, alert_flags(wh, None, pki,
                                                 **{"--alert-update-interval": "2s"}))
        fleet = Fleet(agent, coll, "alert-update")
        cid = cid_of("u1", 0)
        fleet.start([cid])
        # the same runtime finding, opened, then seen five times more in one
        # batch (one count increase: one update, however slow the machine)
        for execs in (range(1), range(1, 6)):
            fleet.seq += 1
            fleet.a.batch(fleet.seq, [vt.exec_event(100 + i, ["nc", "-e", "/bin/sh", "x"],
                                                    container_id=cid) for i in execs])
        fid, count = db.query("SELECT id, count FROM findings WHERE rule = 'reverse_shell' "
                              "AND severity >= 4")[0]
        assert count == 6
        vt.wait_for(lambda: (fid, "update") in wh.keys(), 10, what="an update")
        ups = [d for d in wh.got if d["unmapped"]["vigil"]["action"] == "update"]
        assert len(ups) == 1 and ups[0]["count"] == 6 and ups[0]["activity_id"] == 2
        assert wh.keys().index((fid, "opened")) < wh.keys().index((fid, "update"))
        time.sleep(2.5)
        assert len([k for k in wh.keys() if k[1] == "update"]) == 1
    finally:
        wh.stop()
