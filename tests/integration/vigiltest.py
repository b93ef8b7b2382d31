# SPDX-License-Identifier: Apache-2.0
"""Helpers for Vigil's integration tests: the throwaway PostgreSQL, the test
PKI, the collector and load generator processes, and a raw agent client that
speaks the wire protocol (TLS + 4-byte big-endian length + protobuf).

Nothing here knows about pytest; conftest.py turns these into fixtures.
"""

import datetime
import os
import resource
import re
import shutil
import signal
import socket
import selectors
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

import psycopg2
import psycopg2.errors
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SOURCE_DIR = os.path.abspath(
    os.environ.get("VIGIL_SOURCE_DIR")
    or os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.path.abspath(
    os.environ.get("VIGIL_BUILD_DIR") or os.path.join(SOURCE_DIR, "build"))
SCRIPTS = os.path.join(SOURCE_DIR, "scripts")

# Lines that mean a sanitizer found a bug in the process that wrote the log.
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                      "runtime error:", "WARNING: ThreadSanitizer")


# --- protobuf ---------------------------------------------------------------

def generate_proto(out_dir):
    """Compile proto/vigil/v1/*.proto into OUT_DIR with protoc and make the
    vigil.v1 *_pb2 modules importable."""
    proto_root = os.path.join(SOURCE_DIR, "proto")
    files = sorted(
        os.path.join(proto_root, "vigil", "v1", f)
        for f in os.listdir(os.path.join(proto_root, "vigil", "v1"))
        if f.endswith(".proto"))
    subprocess.run(["protoc", "--proto_path=" + proto_root,
                    "--python_out=" + out_dir] + files, check=True)
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)


def pb():
    """The generated modules (events_pb2, protocol_pb2)."""
    from vigil.v1 import events_pb2, protocol_pb2  # noqa: generated
    return events_pb2, protocol_pb2


# --- small utilities ----------------------------------------------------------

# Ports handed out by free_port(): below the kernel's ephemeral range (so no
# client socket is given one by connect() or bind(0) meanwhile), each
# claimed with a lock on one byte of PORT_LOCK_FILE at the port's offset.
# The lock is held until this process exits, so no other test process of
# the machine (another pytest-xdist worker, another engineer's run) picks
# the same port between free_port() and the collector's bind().
PORT_RANGE = (20000, 32768)
PORT_LOCK_FILE = os.path.join(tempfile.gettempdir(), "vigil-it-ports.lock")
_port_state = {"fd": None, "next": None, "mine": set()}
_port_mutex = threading.Lock()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_bindable(port):
    """Nobody listens on or holds PORT (IPv4 any address; IPv6 too)."""
    for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6
        try:
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port():
    """A TCP port, free now, that no other test process (pytest-xdist
    worker or another run on this machine) is given until this one exits."""
    import fcntl
    with _port_mutex:
        st = _port_state
        lo, hi = PORT_RANGE
        hi = min(hi, _ephemeral_low())
        if st["fd"] is None:
            fd = os.open(PORT_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                os.fchmod(fd, 0o666)
            except OSError:
                pass  # another user's file: it is shared all the same
            st["fd"] = fd
            # start apart from the other processes: fewer locks to step over
            st["next"] = lo + (os.getpid() * 977) % (hi - lo)
        for _ in range(hi - lo):
            port = st["next"]
            st["next"] = port + 1 if port + 1 < hi else lo
            if port in st["mine"]:
                continue
            try:
                fcntl.lockf(st["fd"], fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
            except OSError:
                continue  # another process has it
            if not _port_bindable(port):
                fcntl.lockf(st["fd"], fcntl.LOCK_UN, 1, port)
                continue
            st["mine"].add(port)
            return port
        raise RuntimeError("no free port left in %d-%d" % (lo, hi - 1))


def wait_for(pred, timeout, interval=0.1, what="condition"):
    """Poll PRED until it returns a true value; return it. Fail after
    TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def now_ns():
    return time.time_ns()


# --- PostgreSQL -------------------------------------------------------------------

class Postgres:
    """A throwaway cluster run by scripts/pg.sh, reached over its unix
    socket. Each test database is created with create_db()."""

    def __init__(self, base_dir, port):
        self.dir = os.path.join(base_dir, "pg")
        self.port = port
        self.sock = os.path.join(self.dir, "sock")

    def _pg(self, *args):
        r = subprocess.run([os.path.join(SCRIPTS, "pg.sh")] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("pg.sh %s failed:\n%s" % (" ".join(args), r.stdout))
        return r.stdout

    def start(self):
        return self._pg("start", self.dir, str(self.port))

    def stop(self):
        return self._pg("stop", self.dir)

    def conninfo(self, dbname):
        return "host=%s port=%d dbname=%s user=postgres" % (self.sock, self.port, dbname)

    def _admin(self, sql):
        # bounded: a server left stopped by a failed test fails the next
        # create_db()/drop_db() instead of hanging the session
        c = psycopg2.connect(self.conninfo("postgres"), connect_timeout=60)
        try:
            c.autocommit = True
            with c.cursor() as cur:
                cur.execute(sql)
        finally:
            c.close()

    def create_db(self, name):
        self._admin('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        self._admin('CREATE DATABASE "%s"' % name)
        return Database(self, name)

    def drop_db(self, name):
        self._admin('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


class Database:
    """One database of the test cluster; each query opens its own short
    connection so that a restarted server does not break the helper."""

    def __init__(self, pg, name):
        self.pg = pg
        self.name = name
        self.conninfo = pg.conninfo(name)

    def query(self, sql, params=None):
        """Rows of SQL, in a transaction of its own. A transaction that
        PostgreSQL chose as a deadlock's victim (a test's DDL against the
        collector's background CREATE INDEX CONCURRENTLY) was rolled back
        whole, so it is run again."""
        for attempt in range(5):
            c = psycopg2.connect(self.conninfo)
            try:
                with c.cursor() as cur:
                    cur.execute(sql, params)
                    rows = cur.fetchall() if cur.description else []
                c.commit()
                return rows
            except psycopg2.errors.DeadlockDetected:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
            finally:
                c.close()

    def scalar(self, sql, params=None):
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def table_exists(self, name):
        return self.scalar("SELECT to_regclass(%s) IS NOT NULL", (name,))

    def agent_row(self, name):
        """(id, committed_seq) of agent NAME, or None."""
        if not self.table_exists("agents"):
            return None
        rows = self.query("SELECT id, committed_seq FROM agents WHERE name = %s", (name,))
        return rows[0] if rows else None

    # The agents' own events have seq > 0; the finding events the collector
    # makes (seq < 0) are not counted here.
    def events_of(self, name):
        """Rows (seq, idx, kind, argv) the agent NAME has stored."""
        if not self.table_exists("events"):
            return []
        return self.query(
            "SELECT e.seq, e.idx, e.kind, e.argv FROM events e JOIN agents a "
            "ON a.id = e.agent_id WHERE a.name = %s AND e.seq > 0 ORDER BY e.seq, e.idx",
            (name,))

    def count_events(self):
        if not self.table_exists("events"):
            return 0
        return self.scalar("SELECT count(*) FROM events WHERE seq > 0")


# --- PKI ------------------------------------------------------------------------------

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vigil test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path, key):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def _write_cert(path, cert):
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


class Pki:
    """The session's PKI: scripts/dev-pki.sh makes the CA, the collector's
    certificate and the agents' certificates; python-cryptography makes the
    deliberately broken ones (other CA, expired, wrong key usage)."""

    def __init__(self, base_dir):
        self.dir = os.path.join(base_dir, "pki")
        self.ca_crt = os.path.join(self.dir, "ca.crt")
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.collector_crt = os.path.join(self.dir, "collector.crt")
        self.collector_key = os.path.join(self.dir, "collector.key")
        self.bad_dir = os.path.join(self.dir, "bad")
        self._lock = threading.Lock()

    def make(self, agents=()):
        r = subprocess.run([os.path.join(SCRIPTS, "dev-pki.sh"), self.dir] + list(agents),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("dev-pki.sh failed:\n" + r.stdout)
        os.makedirs(self.bad_dir, exist_ok=True)
        return r.stdout

    def agent(self, name):
        """(cert, key) paths of agent NAME, issued by dev-pki.sh if new."""
        crt = os.path.join(self.dir, "agents", name + ".crt")
        key = os.path.join(self.dir, "agents", name + ".key")
        with self._lock:
            if not (os.path.exists(crt) and os.path.exists(key)):
                self.make([name])
        return crt, key

    def _load_ca(self):
        with open(self.ca_crt, "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        with open(self.ca_key, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        return ca, key

    def issue(self, path_base, cn, *, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,),
              not_before=None, not_after=None, issuer=None, issuer_key=None,
              san=None):
        """Issue a leaf certificate into PATH_BASE.crt/.key signed by the
        session CA (or ISSUER); return (crt, key, certificate)."""
        if issuer is None:
            issuer, issuer_key = self._load_ca()
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        b = (x509.CertificateBuilder()
             .subject_name(_name(cn))
             .issuer_name(issuer.subject)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(not_before or now - datetime.timedelta(hours=1))
             .not_valid_after(not_after or now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(True, False, False, False, False, False,
                                          False, False, False), critical=True))
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = b.sign(issuer_key, hashes.SHA256())
        crt_path, key_path = path_base + ".crt", path_base + ".key"
        _write_key(key_path, key)
        _write_cert(crt_path, cert)
        return crt_path, key_path, cert

    def other_ca(self):
        """A CA unrelated to the session CA: (certificate, key)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(_name("Some other CA"))
                .issuer_name(_name("Some other CA"))
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True,
                                             True, False, False), critical=True)
                .sign(key, hashes.SHA256()))
        return cert, key

    def collector_cert(self, path_base):
        """A new collector certificate from the session CA: (crt, key, cert)."""
        import ipaddress
        san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
               x509.IPAddress(ipaddress.ip_address("::1"))]
        return self.issue(path_base, "vigil-collector", eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
                          san=san)


# --- processes --------------------------------------------------------------------

def sanitizer_env(env=None):
    env = dict(os.environ if env is None else env)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def log_excerpt(text, tail=40):
    """The first sanitizer report in TEXT (if any) and the last lines."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if any(p in line for p in SANITIZER_PATTERNS):
            out = ["[first sanitizer report, line %d]" % (i + 1)] + lines[i:i + 45] + \
                ["[...]"]
            break
    return "\n".join(out + ["[last %d lines]" % tail] + lines[-tail:])


def sanitizer_reports(text):
    return [line for line in text.splitlines()
            if any(p in line for p in SANITIZER_PATTERNS)]


class Collector:
    """One vigil-collector process. Its stderr goes to LOG (appended across
    restarts); start() waits for 'listening on'."""

    def __init__(self, binary, log_path, args, port):
        self.binary = binary
        self.log_path = log_path
        self.args = list(args)
        self.port = port
        self.proc = None
        self.exit_codes = []   # return codes of finished runs
        self.killed = False    # the last run was ended with SIGKILL on purpose
        self.stopped = False   # the last run was ended by terminate()
        self.reported = False  # a problem of this collector was already reported

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def log_text(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_since(self, offset):
        with open(self.log_path, "r", errors="replace") as f:
            f.seek(offset)
            return f.read()

    def start(self, timeout=60):
        assert self.proc is None or self.proc.poll() is not None
        offset = self.log_size()
        with open(self.log_path, "a") as log:
            log.write("=== test: starting %s %s\n" % (self.binary, " ".join(self.args)))
            log.flush()
            offset = log.tell()
            nofile = getattr(self, "nofile", None)
            limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
                     ) if nofile else None
            self.proc = subprocess.Popen([self.binary] + self.args, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=sanitizer_env(),
                                         preexec_fn=limit)
        self.killed = False
        self.stopped = False
        want = "listening on %s" % self.address
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_since(offset)
            if want in text:
                return self
            rc = self.proc.poll()
            if rc is not None:
                self.exit_codes.append(rc)
                raise AssertionError("collector exited with %d before listening:\n%s"
                                     % (rc, text[-4000:]))
            if time.monotonic() > deadline:
                raise AssertionError("collector did not log %r within %ds:\n%s"
                                     % (want, timeout, text[-4000:]))
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        """SIGKILL (a crash on purpose) and reap."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.killed = True

    def unexpected_exit(self):
        """The exit code if the last run ended without kill() or
        terminate(), else None."""
        if self.proc is None or self.killed or self.stopped:
            return None
        return self.proc.poll()

    def terminate(self, timeout=60):
        """SIGTERM, wait for the exit; return the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.stopped = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            raise AssertionError("collector did not exit within %ds of SIGTERM" % timeout)
        self.exit_codes.append(rc)
        return rc

    def assert_clean_log(self):
        reports = sanitizer_reports(self.log_text())
        assert not reports, "sanitizer reports in %s:\n%s" % (
            self.log_path, "\n".join(reports[:20]))


LOADGEN_LINE = re.compile(r"^agents=\S+( \w+=\S+)+\s*$")


def parse_loadgen_line(stdout):
    """The key=value figures of loadgen's final stdout line."""
    lines = [ln for ln in stdout.splitlines() if LOADGEN_LINE.match(ln.strip())]
    assert lines, "no summary line in loadgen output:\n" + stdout[-2000:]
    out = {}
    for kv in lines[-1].split():
        k, _, v = kv.partition("=")
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


class Loadgen:
    """A vigil-loadgen process aimed at a collector."""

    def __init__(self, binary, pki, collector, log_path, **opts):
        self.log_path = log_path
        args = [binary, "--connect", collector.address, "--ca", pki.ca_crt,
                "--server-name", "localhost", "--issuer-cert", pki.ca_crt,
                "--issuer-key", pki.ca_key]
        for k, v in opts.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        self.args = args
        self.stderr = open(log_path, "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=sanitizer_env())
        self._out = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self._out.append(line)

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._reader.join(5)
            raise AssertionError("loadgen did not finish within %ds; stderr tail:\n%s"
                                 % (timeout, self.stderr_text()[-3000:]))
        self._reader.join(10)
        self.stderr.close()
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._reader.join(5)
        if not self.stderr.closed:
            self.stderr.close()

    def stdout(self):
        return "".join(self._out)

    def stderr_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def summary(self):
        return parse_loadgen_line(self.stdout())


# --- raw agent client ----------------------------------------------------------------

class Closed(Exception):
    """The collector closed the connection."""


def client_context(pki, cert=None, key=None, ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(ca or pki.ca_crt)
    ctx.check_hostname = True
    if hasattr(ssl, "OP_IGNORE_UNEXPECTED_EOF"):
        ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


class RawAgent:
    """An agent written by hand: TLS socket, frames, AgentMessage in,
    CollectorMessage out. Every read has a deadline."""

    def __init__(self, port, ctx, timeout=10.0):
        self.port = port
        self.ctx = ctx
        self.timeout = timeout
        self.sock = None
        self.buf = b""
        self.closed = False

    def connect(self):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.sock = self.ctx.wrap_socket(raw, server_hostname="localhost")
        return self

    def peer_cert(self):
        return x509.load_der_x509_certificate(self.sock.getpeercert(binary_form=True))

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # sending
    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        self.send_raw(struct.pack(">I", len(payload)) + payload)

    def send(self, msg):
        self.send_frame(msg.SerializeToString())

    def send_hello(self, version=1, claimed="", image_ids=()):
        _, P = pb()
        m = P.AgentMessage()
        h = m.hello
        h.image_ids.extend(image_ids)
        h.protocol_version = version
        h.agent_version = "itest/1"
        h.hostname = "itest-host"
        h.boot_id = "00000000-0000-0000-0000-000000000001"
        h.kernel = "6.1.0-test"
        h.os = "Debian GNU/Linux 12"
        h.agent_time_ns = now_ns()
        if claimed:
            h.claimed_agent_id = claimed
        self.send(m)

    def hello(self, **kw):
        """Send Hello and return the Welcome."""
        self.send_hello(**kw)
        m = self.recv()
        assert m.WhichOneof("msg") == "welcome", "expected Welcome, got %s" % m
        return m.welcome

    def send_batch(self, seq, events):
        _, P = pb()
        m = P.AgentMessage()
        m.batch.seq = seq
        m.batch.events.extend(events)
        self.send(m)

    def batch(self, seq, events, timeout=None):
        """Send one batch and wait for its Ack (an Ack of seq or later)."""
        self.send_batch(seq, events)
        return self.wait_ack(seq, timeout)

    def wait_ack(self, seq, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            m = self.recv(deadline - time.monotonic())
            kind = m.WhichOneof("msg")
            if kind == "ack":
                assert m.ack.seq <= seq, "ack %d beyond sent %d" % (m.ack.seq, seq)
                if m.ack.seq == seq:
                    return m.ack
                continue
            if kind == "heartbeat":
                continue
            raise AssertionError("expected Ack %d, got %s" % (seq, m))

    # receiving
    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete frame from the collector")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError):
                data = b""
            except ssl.SSLError as e:
                # A TLS alert from the collector ends the connection too.
                self.closed = True
                raise Closed("TLS error: %s" % e)
            except socket.timeout:
                raise TimeoutError("no complete frame from the collector")
            if not data:
                self.closed = True
                raise Closed("connection closed")
            self.buf += data

    def recv(self, timeout=None):
        """The next CollectorMessage; raise Closed at end of stream."""
        _, P = pb()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._fill(4, deadline)
        (n,) = struct.unpack(">I", self.buf[:4])
        assert 0 < n <= 16 * 1024 * 1024, "bad frame length %d from collector" % n
        self._fill(4 + n, deadline)
        payload, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        m = P.CollectorMessage()
        m.ParseFromString(payload)
        return m

    def read_until_close(self, timeout=10.0):
        """All messages until the collector closes; fail if it does not
        within TIMEOUT seconds."""
        msgs = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                msgs.append(self.recv(deadline - time.monotonic()))
            except Closed:
                return msgs
            except TimeoutError:
                raise AssertionError("collector did not close within %.0fs; got %s"
                                     % (timeout, msgs))


def error_of(msgs):
    """The Error among MSGS (the last one), or None."""
    errs = [m.error for m in msgs if m.WhichOneof("msg") == "error"]
    return errs[-1] if errs else None


# --- events ------------------------------------------------------------------------------------

def exec_event(pid, argv, exe=None, cwd="/", uid=0, container_id="", ts=None,
               severity=1):
    E, _ = pb()
    e = E.Event()
    e.time_ns = ts or now_ns()
    e.kind = E.EVENT_KIND_PROCESS_EXEC
    e.severity = severity
    if container_id:
        e.container_id = container_id
    x = e.process_exec
    x.pid = pid
    x.ppid = 1
    x.uid = uid
    x.gid = uid
    x.executable = exe or argv[0]
    x.argv.extend(argv)
    x.cwd = cwd
    return e


def container_started_event(cid, name, privileged=False, caps=(), mounts=(), ts=None,
                            image="localhost/busybox:latest"):
    E, _ = pb()
    e = E.Event()
    e.time_ns = ts or now_ns()
    e.kind = E.EVENT_KIND_CONTAINER_STARTED
    e.severity = E.SEVERITY_INFO
    e.container_id = cid
    c = e.container_started.container
    c.id = cid
    c.name = name
    c.runtime = E.RUNTIME_PODMAN
    c.image = image
    c.image_digest = "sha256:" + "ab" * 32
    lab = c.labels.add()
    lab.key, lab.value = "app", "web"
    c.command.extend(["/bin/sh", "-c", "sleep 1000"])
    c.uid, c.gid, c.user_known = 0, 0, True
    c.privileged = privileged
    c.cap_effective.extend(caps)
    c.cap_bounding.extend(caps)
    for src, dst, ro in mounts:
        m = c.mounts.add()
        m.source, m.destination, m.read_only, m.type = src, dst, ro, "bind"
    c.init_pid = 4242
    c.created_ns = now_ns() - 5_000_000_000
    c.started_ns = now_ns() - 4_000_000_000
    c.state = "running"
    return e


def hardened_container_event(cid, name="hardened"):
    """A container started with every setting the posture rules want:
    non-root, capabilities dropped, read-only root, seccomp filter, limits,
    no_new_privs, a bounded restart policy, an image pinned by digest."""
    E, _ = pb()
    e = container_started_event(
        cid, name, caps=["CAP_NET_BIND_SERVICE"], mounts=[("/srv/app", "/app", True)],
        image="registry.example/app@sha256:" + "cd" * 32)
    c = e.container_started.container
    c.uid, c.gid = 1000, 1000
    c.read_only_rootfs = True
    c.seccomp_mode = E.SECCOMP_MODE_FILTER
    c.seccomp_filters = 1
    c.mac_label = "containers-default-0.50.0 (enforce)"
    c.no_new_privs = E.TRISTATE_TRUE
    c.memory_limit.value = 256 << 20
    c.pids_limit.value = 200
    c.restart_policy = "on-failure"
    c.restart_max_retries = 3
    for m in c.mounts:
        m.propagation = "rprivate"
    return e


def image_inventory_event(image_id, packages, image="localhost/app:1", os_id="debian",
                          os_version_id="12", fmt="dpkg", status="ok", container_id="",
                          ts=None, reason="", cut=0):
    """An ImageInventory event; PACKAGES are (name, version) or (name,
    version, arch, source_name, source_version) tuples."""
    E, _ = pb()
    e = E.Event()
    e.time_ns = ts or now_ns()
    e.kind = E.EVENT_KIND_IMAGE_INVENTORY
    e.severity = E.SEVERITY_INFO
    if container_id:
        e.container_id = container_id
    im = e.image_inventory
    im.image_id, im.image, im.container_id = image_id, image, container_id
    im.os_id, im.os_version_id, im.os_pretty = os_id, os_version_id, "%s %s" % (os_id, os_version_id)
    im.format, im.status, im.reason, im.packages_cut, im.read_ms = fmt, status, reason, cut, 7
    for p in packages:
        pk = im.packages.add()
        pk.name, pk.version = p[0], p[1]
        if len(p) > 2:
            pk.arch, pk.source_name, pk.source_version = p[2], p[3], p[4]
    return e


def container_stopped_event(cid, exit_code, ts=None):
    E, _ = pb()
    e = E.Event()
    e.time_ns = ts or now_ns()
    e.kind = E.EVENT_KIND_CONTAINER_STOPPED
    e.severity = E.SEVERITY_INFO
    e.container_id = cid
    s = e.container_stopped
    s.exit_code_known = True
    s.exit_code = exit_code
    s.init_pid = 4242
    return e


def make_tmpdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


def check_serves(collector, db, pki, name, timeout=15.0):
    """A well-behaved agent NAME connects, sends one batch, gets its Ack,
    and the batch is in the database."""
    assert collector.alive(), "collector is not running"
    cert, key = pki.agent(name)
    with RawAgent(collector.port, client_context(pki, cert, key), timeout).connect() as a:
        w = a.hello()
        assert w.agent_id == name
        seq = w.committed_seq + 1
        a.batch(seq, [exec_event(1000 + seq, ["/bin/echo", "alive", name])])
    row = db.agent_row(name)
    assert row is not None and row[1] == seq, "agent %s: %r" % (name, row)
    assert any(r[0] == seq for r in db.events_of(name))


class SilentSockets:
    """N plain TCP sockets to PORT from the source addresses ADDRS (round
    robin) that never send a byte, each re-opened as soon as the collector
    closes it, until the with block ends. They run in a process of their
    own, as an attacker's would: in this one they would hold the GIL and
    slow the test's own clients down."""

    def __init__(self, port, addrs, n):
        import multiprocessing
        self.port, self.addrs, self.n = port, addrs, n
        mp = multiprocessing.get_context("fork")
        self.stopping = mp.Event()
        self._opened = mp.Value("q", 0)
        self.proc = mp.Process(target=self.run, daemon=True)

    @property
    def opened(self):
        return self._opened.value

    def open(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((self.addrs[i % len(self.addrs)], 0))
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        with self._opened.get_lock():
            self._opened.value += 1
        return s

    def run(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < self.n + 1024:
            top = max(hard, self.n + 1024)
            resource.setrlimit(resource.RLIMIT_NOFILE, (top, top))
        sel = selectors.DefaultSelector()
        for i in range(self.n):
            sel.register(self.open(i), selectors.EVENT_READ, i)
        while not self.stopping.is_set():
            for key, _ in sel.select(0.2):
                s, i = key.fileobj, key.data
                try:
                    gone = s.recv(4096) == b""
                except OSError:
                    gone = True
                if gone:  # closed by the collector: open another at once
                    sel.unregister(s)
                    s.close()
                    sel.register(self.open(i), selectors.EVENT_READ, i)
        for key in list(sel.get_map().values()):
            key.fileobj.close()

    def __enter__(self):
        self.proc.start()
        time.sleep(1.0 + self.n / 5000)  # all of them connected and being re-opened
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
