# SPDX-License-Identifier: Apache-2.0
"""Two collectors on one PostgreSQL behind a real HAProxy, run with the
shipped deploy/haproxy/haproxy.cfg (test ports and paths substituted, the
rest as shipped: TCP passthrough, leastconn, HTTPS checks of /readyz).

- A collector is SIGKILLed while vigil-loadgen agents send through HAProxy:
  the agents reconnect through HAProxy to the other one and every event is
  stored exactly once.
- A collector loses PostgreSQL (its database connections go through a
  proxy that the test cuts): its /readyz says so, HAProxy marks it down and
  moves its agents to the other one; once PostgreSQL is back, it is ready
  and up again.
- Without a balancer, a real vigil-agent that lists several collectors
  fails over along its list.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading

import pytest

import apitest as at
import vigiltest as vt
from agent_fixtures import agent_bin, agent_factory  # noqa: F401 (fixtures)

TEMPLATE = os.path.join(vt.SOURCE_DIR, "deploy", "haproxy", "haproxy.cfg")
AGENTS, BATCH = 12, 200

pytestmark = pytest.mark.serial


# --- HAProxy ------------------------------------------------------------------------

def _sub(text, old, new, what):
    assert old in text, "deploy/haproxy/haproxy.cfg no longer has %s (%r)" % (what, old)
    return text.replace(old, new)


def haproxy_config(template, agent_port, api_port, servers, ca, health_pem, stats_sock):
    """The shipped configuration with test values: SERVERS maps the server
    names of the file (collector1, collector2) to (agent port, API port) on
    127.0.0.1."""
    t = _sub(template, "bind :7443", "bind 127.0.0.1:%d" % agent_port, "the agent port")
    t = _sub(t, "bind :8443", "bind 127.0.0.1:%d" % api_port, "the API port")
    t = _sub(t, "ca-file /etc/vigil/ca.crt", "ca-file " + ca, "the collectors' CA")
    t = _sub(t, "crt /etc/haproxy/vigil-health.pem", "crt " + health_pem,
             "the check's certificate")
    t = _sub(t, "stats socket /run/haproxy/vigil-admin.sock", "stats socket " + stats_sock,
             "the stats socket")
    if os.geteuid() != 0:  # the file drops root; without root there is none to drop
        t = re.sub(r"(?m)^\s*(chroot|user|group) .*$", "", t)
    seen = set()

    def server(m):
        name, port, rest = m.group(2), int(m.group(4)), m.group(5)
        assert name in servers, "unexpected server %s in the shipped file" % name
        agent, api = servers[name]
        seen.add((name, port))
        rest = re.sub(r"\bport 8443\b", "port %d" % api, rest)
        rest = re.sub(r"\bverifyhost \S+", "verifyhost localhost", rest)
        return "%s%s 127.0.0.1:%d%s" % (m.group(1), name, {7443: agent, 8443: api}[port], rest)

    t = re.sub(r"(?m)^(\s*server\s+)(\S+)\s+(\S+):(\d+)(.*)$", server, t)
    want = {(n, p) for n in servers for p in (7443, 8443)}
    assert seen == want, "server lines of the shipped file: %s" % sorted(seen)
    return t


class Haproxy:
    """A haproxy process in the foreground with its own configuration."""

    def __init__(self, cfg_path, sock, log_path):
        self.cfg, self.sock, self.log_path = cfg_path, sock, log_path
        r = subprocess.run(["haproxy", "-c", "-q", "-f", cfg_path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        assert r.returncode == 0, "haproxy -c:\n" + r.stdout
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", cfg_path],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        vt.wait_for(lambda: self._up(), 20, what="haproxy's stats socket")

    def _up(self):
        assert self.proc.poll() is None, "haproxy exited:\n" + self.log_text()
        try:
            self.command("show info")
            return True
        except OSError:
            return False

    def command(self, cmd):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.sock)
            s.sendall(cmd.encode() + b"\n")
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    return out.decode(errors="replace")
                out += b

    def stat(self, backend, server):
        """The `show stat` row of SERVER in BACKEND, as a dict."""
        lines = self.command("show stat").splitlines()
        head = lines[0].lstrip("# ").split(",")
        for ln in lines[1:]:
            row = dict(zip(head, ln.split(",")))
            if row.get("pxname") == backend and row.get("svname") == server:
                return row
        raise AssertionError("no %s/%s in show stat" % (backend, server))

    def op_state(self, backend, server):
        """srv_op_state of `show servers state`: 0 stopped (down), 2 running."""
        lines = self.command("show servers state " + backend).splitlines()
        head = lines[1].lstrip("# ").split()
        for ln in lines[2:]:
            row = dict(zip(head, ln.split()))
            if row.get("srv_name") == server:
                return int(row["srv_op_state"])
        raise AssertionError("no %s/%s in show servers state" % (backend, server))

    def status(self, server):
        """The status of SERVER in both backends, e.g. ('UP', 'UP')."""
        return tuple(self.stat(b, server)["status"]
                     for b in ("vigil_collectors", "vigil_collectors_api"))

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Address:
    """What vt.Loadgen needs of a collector: where agents connect."""

    def __init__(self, port):
        self.address = "127.0.0.1:%d" % port


# --- a PostgreSQL path the test can cut ------------------------------------------------

class PgProxy:
    """Forwards the unix socket DIR/.s.PGSQL.PORT to PostgreSQL's own, so a
    collector given host=DIR reaches the test cluster through it. down()
    closes every forwarded connection and stops listening (PostgreSQL is
    gone for that collector only); up() listens again."""

    def __init__(self, directory, port, target):
        self.dir, self.target = directory, target
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, ".s.PGSQL.%d" % port)
        self.lock = threading.Lock()
        self.socks = []
        self.listener = None

    def up(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(self.path)
        ls.listen(64)
        self.listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls):
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.target)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.socks += [c, s]
            for a, b in ((c, s), (s, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def down(self):
        if self.listener:
            self.listener.close()
            self.listener = None
        if os.path.exists(self.path):
            os.unlink(self.path)
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


# --- fixtures ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def check_pki(pki, workdir):
    """An operator CA for the collectors (http_operator_ca) and the client
    certificate HAProxy's checks present (viewer: not in http_admin_cns),
    key and certificate in one PEM file, as haproxy's crt wants."""
    if not shutil.which("haproxy"):
        pytest.fail("haproxy is not installed (scripts/deps.sh installs it)")
    from cryptography.hazmat.primitives import serialization
    d = os.path.join(workdir, "haproxy-pki")
    os.makedirs(d, exist_ok=True)
    ca, ca_key = pki.other_ca()
    ca_path = os.path.join(d, "opca.crt")
    with open(ca_path, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    crt, key, _ = pki.issue(os.path.join(d, "vigil-haproxy"), "vigil-haproxy", issuer=ca,
                            issuer_key=ca_key)
    pem = os.path.join(d, "health.pem")
    with open(pem, "w") as out:
        for p in (crt, key):
            with open(p) as f:
                out.write(f.read())
    os.chmod(pem, 0o644)  # haproxy reads it as root before dropping to its user
    return {"ca": ca_path, "pem": pem, "viewer": (crt, key)}


@pytest.fixture
def cluster(collector_factory, pki, workdir, check_pki, request):
    """start(db_a, db_b) -> (haproxy, [collector1, collector2], api ports);
    collector1 and collector2 as the shipped file names them."""
    made = []

    def start(db_a, db_b):
        colls, apis = [], []
        for db in (db_a, db_b):
            hport = vt.free_port()
            colls.append(collector_factory(db, flags={
                "--http-listen": "127.0.0.1:%d" % hport,
                "--http-operator-ca": check_pki["ca"],
                "--http-rate-limit": "0",
                "--db-retry-max": "1s",
            }))
            apis.append(hport)
        d = os.path.join(workdir, "haproxy-%s" % re.sub(r"\W+", "_", request.node.name)[:40])
        os.makedirs(d, exist_ok=True)
        sock = os.path.join(d, "admin.sock")
        with open(TEMPLATE) as f:
            cfg = haproxy_config(
                f.read(), vt.free_port(), vt.free_port(),
                {"collector1": (colls[0].port, apis[0]), "collector2": (colls[1].port, apis[1])},
                pki.ca_crt, check_pki["pem"], sock)
        path = os.path.join(d, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        os.chmod(d, 0o755)
        hp = Haproxy(path, sock, os.path.join(d, "haproxy.log"))
        made.append(hp)
        hp.agent_port = int(re.search(r"bind 127\.0\.0\.1:(\d+)", cfg).group(1))
        # Both collectors pass their /readyz check (and so the shipped
        # check works: the certificate, the request, the expected status).
        vt.wait_for(lambda: all(hp.status(s) == ("UP", "UP")
                                for s in ("collector1", "collector2")),
                    30, what="both collectors UP in haproxy:\n" + hp.log_text()[-2000:])
        return hp, colls, apis

    yield start
    for hp in made:
        hp.stop()


def readyz(port, pki, check_pki):
    """GET /readyz with the check's operator certificate."""
    return at.Api(port, pki, cert=check_pki["viewer"][0],
                  key=check_pki["viewer"][1]).get("/readyz")


def check_exactly_once(db, events, prefix):
    per_agent = events // AGENTS
    rows = db.query(
        "SELECT a.name, a.committed_seq, count(e.*), count(DISTINCT (e.seq, e.idx)) "
        "FROM agents a LEFT JOIN events e ON e.agent_id = a.id AND e.seq > 0 "
        "WHERE a.name LIKE %s GROUP BY a.name, a.committed_seq ORDER BY a.name",
        (prefix + "%",))
    assert len(rows) == AGENTS, rows
    for name, committed, total, distinct in rows:
        assert (committed, total, distinct) == (per_agent // BATCH, per_agent, per_agent), \
            "%s: committed_seq %s, %s rows, %s distinct; want %s events" % (
                name, committed, total, distinct, per_agent)


def stored(db):
    if not db.table_exists("agents"):
        return 0
    return (db.scalar("SELECT coalesce(sum(committed_seq), 0) FROM agents") or 0) * BATCH


# --- tests ----------------------------------------------------------------------------

def test_collector_killed_behind_haproxy(cluster, loadgen_factory, db):
    events = AGENTS * BATCH * 40
    hp, (c1, c2), _ = cluster(db, db)
    lg = loadgen_factory(Address(hp.agent_port), agents=AGENTS, batch_events=BATCH,
                         events=events, rate=events // 25, agent_prefix="hak-", timeout=240)
    vt.wait_for(lambda: stored(db) >= events * 0.3, 120, interval=0.2,
                what="a third of the events stored")
    assert lg.proc.poll() is None, "loadgen ended early:\n" + lg.stderr_text()[-2000:]
    held = {s: int(hp.stat("vigil_collectors", s)["scur"]) for s in ("collector1", "collector2")}
    assert held["collector1"] > 0 and held["collector2"] > 0, held  # leastconn spread them
    c1.kill()
    vt.wait_for(lambda: hp.op_state("vigil_collectors", "collector1") == 0, 15,
                what="haproxy marks the killed collector down")
    rc = lg.wait(240)
    assert rc == 0, "loadgen exited %d:\n%s" % (rc, lg.stderr_text()[-3000:])
    s = lg.summary()
    assert s["events_sent"] == s["events_acked"] == events, s
    # the killed collector's agents came back through haproxy and were
    # acknowledged again
    assert s["outages"] >= held["collector1"], s
    assert s["reconnects"] >= held["collector1"], s
    assert hp.status("collector1")[0].startswith("DOWN"), hp.status("collector1")
    assert int(hp.stat("vigil_collectors", "collector2")["scur"]) == 0  # loadgen is done
    check_exactly_once(db, events, "hak-")
    print("haproxy kill test: %s; agents per collector before the kill %s" % (s, held))


def test_collector_loses_postgresql(cluster, loadgen_factory, db, pg, pki, workdir, check_pki):
    proxy = PgProxy(os.path.join(workdir, "pgproxy"), pg.port,
                    os.path.join(pg.sock, ".s.PGSQL.%d" % pg.port))
    proxy.up()
    os.chmod(proxy.dir, 0o755)
    db_b = vt.Database(pg, db.name)
    db_b.conninfo = "host=%s port=%d dbname=%s user=postgres" % (proxy.dir, pg.port, db.name)
    events = AGENTS * BATCH * 40
    try:
        hp, (c1, c2), (api1, api2) = cluster(db, db_b)
        assert readyz(api2, pki, check_pki).status == 200
        lg = loadgen_factory(Address(hp.agent_port), agents=AGENTS, batch_events=BATCH,
                             events=events, rate=events // 30, agent_prefix="hapg-",
                             timeout=240)
        vt.wait_for(lambda: stored(db) >= events * 0.2, 120, interval=0.2,
                    what="a fifth of the events stored")
        assert int(hp.stat("vigil_collectors", "collector2")["scur"]) > 0

        proxy.down()  # collector2 loses PostgreSQL; collector1 keeps it
        r = vt.wait_for(lambda: (lambda r: r if r.status == 503 and
                                 b"writers cannot reach" in r.body else None)(
                                     readyz(api2, pki, check_pki)),
                        30, what="collector2's /readyz to say its writers lost PostgreSQL")
        assert r.json()["error"] == "not_ready", r.body
        vt.wait_for(lambda: hp.op_state("vigil_collectors", "collector2") == 0
                    and hp.op_state("vigil_collectors_api", "collector2") == 0, 30,
                    what="haproxy marks collector2 down")
        # its agents were moved (shutdown-sessions) and no new ones come
        vt.wait_for(lambda: int(hp.stat("vigil_collectors", "collector2")["scur"]) == 0,
                    10, what="collector2 without agents")
        assert readyz(api1, pki, check_pki).status == 200
        progress = stored(db)
        vt.wait_for(lambda: stored(db) > progress + AGENTS * BATCH, 30,
                    what="events stored through collector1 meanwhile")
        assert int(hp.stat("vigil_collectors", "collector2")["scur"]) == 0

        proxy.up()  # PostgreSQL is back for collector2
        vt.wait_for(lambda: readyz(api2, pki, check_pki).status == 200, 30,
                    what="collector2 ready again")
        vt.wait_for(lambda: hp.status("collector2") == ("UP", "UP"), 30,
                    what="haproxy marks collector2 up again")

        rc = lg.wait(240)
        assert rc == 0, "loadgen exited %d:\n%s" % (rc, lg.stderr_text()[-3000:])
        s = lg.summary()
        assert s["events_sent"] == s["events_acked"] == events, s
        check_exactly_once(db, events, "hapg-")
        print("haproxy postgresql-loss test: %s" % s)
    finally:
        if not proxy.listener:
            proxy.up()  # collector2 must reach PostgreSQL to stop cleanly


def test_agent_fails_over_along_its_collector_list(collector_factory, agent_factory, db):
    c1, c2 = collector_factory(db), collector_factory(db)
    dead = "127.0.0.1:%d" % vt.free_port()  # nothing listens there
    a = agent_factory(",".join((dead, c1.address, c2.address)), "agent-failover",
                      status_interval="1s")
    connected = [ln for ln in a.log_text().splitlines() if "connected as" in ln]
    assert connected and "[collector %s]" % c1.address in connected[-1], connected
    vt.wait_for(lambda: len(db.events_of("agent-failover")) > 0, 30,
                what="the agent's first events stored")
    since = a.log_size()
    c1.kill()
    a.wait_log("[collector %s] connected as" % c2.address, 30, since=since)
    n = len(db.events_of("agent-failover"))
    vt.wait_for(lambda: len(db.events_of("agent-failover")) > n, 30,
                what="events stored through the next collector")
    rows = [(seq, idx) for seq, idx, _, _ in db.events_of("agent-failover")]
    assert len(rows) == len(set(rows)), "an event stored twice"
