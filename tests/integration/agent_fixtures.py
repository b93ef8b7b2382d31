# SPDX-License-Identifier: Apache-2.0
"""Fixtures and helpers of the vigil-agent integration tests: a busybox
root file system and image built locally (no registry), runc containers
from bundles made with `runc spec`, Podman containers (--runtime runc),
Podman's Docker-compatible API service, and the real vigil-agent process.

Test modules import the fixtures with `from agent_fixtures import *`;
the session fixtures of conftest.py (pki, pg, collector factories) are
reused, not copied.
"""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest

import vigiltest as vt

PODMAN_RUN = ["--runtime", "runc", "--network", "none",
              "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000"]
IMAGE = "localhost/vigil-busybox:it"


def need(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        pytest.skip("missing %s (install with scripts/deps.sh)" % ", ".join(missing))


def run(cmd, timeout=60, check=True, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode, r.stdout))
    return r


def new_id():
    """A 64-hex container id (what cgroup paths carry)."""
    return (uuid.uuid4().hex + uuid.uuid4().hex)[:64]


# --- root file system and image -------------------------------------------------

def make_rootfs(path):
    """A busybox root file system with the applet links made inside it."""
    if os.path.exists(os.path.join(path, "bin", "sh")):
        return path
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc",
              "root"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(path, "bin", "busybox"))
    run(["chroot", path, "/bin/busybox", "--install", "-s"])
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    build_helpers(path)
    return path


# Test programs that busybox cannot be: built static on the host, copied
# into the root file system.
HELPERS = {
    # runs busybox's sleep from a memfd: a fileless executable
    "memfd-sleep": r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	int in = open("/bin/busybox", O_RDONLY);
	int m = memfd_create("vigil-fileless", MFD_CLOEXEC);
	char buf[65536];
	ssize_t n;
	if (in < 0 || m < 0)
		return 126;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(m, buf, (size_t)n) != n)
			return 126;
	char *args[] = {"sleep", argc > 1 ? argv[1] : "1", NULL};
	char *env[] = {NULL};
	fexecve(m, args, env);
	return 127;
}
""",
    # runs busybox's sleep from a file deleted before the exec (the exe
    # link then names "(deleted)")
    "deleted-sleep": r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	const char *path = "/tmp/.vigil-deleted";
	int in = open("/bin/busybox", O_RDONLY);
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	char buf[65536];
	ssize_t n;
	if (in < 0 || out < 0)
		return 126;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			return 126;
	close(out);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || unlink(path) != 0)
		return 126;
	char *args[] = {"sleep", argc > 1 ? argv[1] : "1", NULL};
	char *env[] = {NULL};
	fexecve(fd, args, env);
	return 127;
}
""",
    # clears its own command line at once, then waits
    "argv-clear": r"""
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		memset(argv[i], 0, strlen(argv[i]));
	usleep(1500000);
	return 0;
}
""",
    # installed setuid root: waits (so the agent reads its uids at exec),
    # becomes root for real, waits again
    "suid-root": r"""
#include <unistd.h>
int main(void)
{
	usleep(700000);
	if (setuid(0) != 0)
		return 1;
	usleep(700000);
	return 0;
}
""",
}


def build_helpers(rootfs_path):
    if not shutil.which("gcc"):
        return
    for name, src in HELPERS.items():
        c = os.path.join(rootfs_path, name + ".c")
        with open(c, "w") as f:
            f.write(src)
        out = os.path.join(rootfs_path, "usr", "bin", name)
        run(["gcc", "-static", "-O1", "-o", out, c], timeout=120)
        os.unlink(c)
    os.chown(os.path.join(rootfs_path, "usr", "bin", "suid-root"), 0, 0)
    os.chmod(os.path.join(rootfs_path, "usr", "bin", "suid-root"), 0o4755)


@pytest.fixture(scope="session")
def rootfs(workdir):
    need("runc", "busybox")
    return make_rootfs(os.path.join(workdir, "agent-rootfs"))


@pytest.fixture(scope="session")
def podman_image(workdir, rootfs):
    need("podman")
    tar = os.path.join(workdir, "agent-rootfs.tar")
    run(["tar", "-C", rootfs, "-cf", tar, "."])
    run(["podman", "import", tar, IMAGE], timeout=120)
    return IMAGE


# --- runc ---------------------------------------------------------------------------

class RuncContainer:
    """A runc container from a `runc spec` bundle that shares the session's
    read-only busybox root file system."""

    def __init__(self, workdir, rootfs, args, cid=None, caps=(), mounts=(), host_net=False,
                 readonly=True, env=None, spec_edit=None):
        self.id = cid or new_id()
        self.bundle = os.path.join(workdir, "bundles", self.id[:16])
        os.makedirs(self.bundle, exist_ok=True)
        run(["runc", "spec"], cwd=self.bundle)
        cfg_path = os.path.join(self.bundle, "config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg["root"] = {"path": rootfs, "readonly": readonly}
        p = cfg["process"]
        p["terminal"] = False
        p["args"] = list(args)
        if env:
            p["env"] = p.get("env", []) + ["%s=%s" % kv for kv in env.items()]
        for c in caps:
            for k in ("bounding", "effective", "permitted"):
                p["capabilities"].setdefault(k, []).append(c)
        cfg["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                              "options": ["nosuid", "nodev", "size=4m"]})
        for src, dst, ro in mounts:
            cfg["mounts"].append({"destination": dst, "type": "bind", "source": src,
                                  "options": ["rbind", "ro" if ro else "rw"]})
        if host_net:
            cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                          if n["type"] != "network"]
        if spec_edit:
            spec_edit(cfg)
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        self.started = False

    def start(self):
        # the container inherits runc's stdio: give it a file, not our pipe
        with open(os.path.join(self.bundle, "output.log"), "w") as out:
            r = subprocess.run(["runc", "run", "-d", "--no-new-keyring", self.id],
                               cwd=self.bundle, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=out, timeout=60)
        if r.returncode != 0:
            with open(os.path.join(self.bundle, "output.log")) as f:
                raise AssertionError("runc run failed:\n" + f.read())
        self.started = True
        return self

    def state(self):
        r = run(["runc", "state", self.id], check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def pid(self):
        st = self.state()
        return st["pid"] if st else None

    def exec(self, *args, check=True, timeout=30):
        return run(["runc", "exec", self.id] + list(args), check=check, timeout=timeout)

    def kill(self, sig="TERM"):
        run(["runc", "kill", self.id, sig], check=False)

    def wait_stopped(self, timeout=15):
        vt.wait_for(lambda: (self.state() or {}).get("status") in (None, "stopped"), timeout,
                    what="runc container %s to stop" % self.id[:12])

    def remove(self):
        if self.started:
            run(["runc", "delete", "--force", self.id], check=False)
            self.started = False


@pytest.fixture
def runc_factory(workdir, rootfs):
    made = []

    def make(args, **kw):
        c = RuncContainer(workdir, rootfs, args, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.remove()


# --- podman -------------------------------------------------------------------------

class Podman:
    """Podman containers of one test, removed at teardown."""

    def __init__(self, image):
        self.image = image
        self.names = []

    def run(self, name, cmd, opts=()):
        self.names.append(name)
        r = run(["podman", "run", "-d", "--name", name] + PODMAN_RUN + list(opts)
                + [self.image] + list(cmd), timeout=120)
        return r.stdout.strip().splitlines()[-1]

    def exec(self, name, *cmd, check=True):
        return run(["podman", "exec", name] + list(cmd), check=check)

    def stop(self, name, timeout=10):
        return run(["podman", "stop", "-t", str(timeout), name], timeout=timeout + 60)

    def inspect(self, name, fmt):
        return run(["podman", "inspect", "-f", fmt, name]).stdout.strip()

    def cleanup(self):
        for n in self.names:
            run(["podman", "rm", "-f", "-t", "0", n], check=False, timeout=120)


@pytest.fixture
def podman(podman_image):
    p = Podman(podman_image)
    yield p
    p.cleanup()


class PodmanService:
    """`podman system service` serving the Docker-compatible API on a unix
    socket."""

    def __init__(self, workdir):
        self.sock = os.path.join(workdir, "podman-%s.sock" % uuid.uuid4().hex[:8])
        self.log_path = self.sock + ".log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["podman", "system", "service", "--time=0",
                                      "unix://" + self.sock], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        vt.wait_for(lambda: os.path.exists(self.sock), 30, what="podman API socket")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        try:
            os.unlink(self.sock)
        except FileNotFoundError:
            pass


@pytest.fixture
def podman_api(workdir, podman_image):
    s = PodmanService(workdir)
    yield s
    s.stop()


class SilentApi:
    """A unix socket that accepts connections and never answers."""

    def __init__(self, path):
        self.path = path
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(16)
        self.conns = []
        self.stopping = False
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        self.srv.settimeout(0.2)
        while not self.stopping:
            try:
                c, _ = self.srv.accept()
                self.conns.append(c)
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.stopping = True
        self.t.join(5)
        for c in self.conns:
            c.close()
        self.srv.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


# --- the agent ------------------------------------------------------------------------

class Agent:
    """One vigil-agent process. Its stderr goes to LOG (appended across
    restarts)."""

    def __init__(self, binary, log_path, args):
        self.binary = binary
        self.log_path = log_path
        self.args = list(args)
        self.proc = None

    def start(self, wait_connected=True, timeout=30):
        with open(self.log_path, "a") as log:
            log.write("=== test: starting %s %s\n" % (self.binary, " ".join(self.args)))
            log.flush()
            self.offset = log.tell()
            self.proc = subprocess.Popen([self.binary] + self.args, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=vt.sanitizer_env())
        if wait_connected:
            self.wait_log("connected as", timeout)
        return self

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, text, timeout=30, since=None):
        off = self.offset if since is None else since

        def seen():
            if self.proc.poll() is not None:
                raise AssertionError("agent exited with %s:\n%s"
                                     % (self.proc.returncode, self.log_text()[-4000:]))
            return text in self.log_text()[off:]
        vt.wait_for(seen, timeout, what="agent log line %r" % text)

    def log_size(self):
        return len(self.log_text())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("agent did not exit within %ds of SIGTERM" % timeout)

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def agent_bin():
    path = os.path.join(vt.BUILD_DIR, "bin", "vigil-agent")
    if not os.access(path, os.X_OK):
        pytest.fail("%s not built (VIGIL_BUILD_DIR=%s)" % (path, vt.BUILD_DIR))
    return path


@pytest.fixture
def agent_factory(agent_bin, pki, workdir, request):
    """agent_factory(collector_or_addresses, name, **settings) -> Agent,
    started and connected unless start=False / wait_connected=False. Each
    agent gets its own spool directory and a quick scan interval. At
    teardown it must exit 0 on SIGTERM with no sanitizer report."""
    started = []

    def make(collectors, name, start=True, wait_connected=True, **settings):
        cert, key = pki.agent(name)
        label = "%s-%s" % (request.node.name[:50], name)
        label = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label)
        base = os.path.join(workdir, "agents", label)
        os.makedirs(base, exist_ok=True)
        if not isinstance(collectors, str):
            collectors = collectors.address
        opts = {
            "collectors": collectors,
            "server_name": "localhost",
            "tls_cert": cert,
            "tls_key": key,
            "ca": pki.ca_crt,
            "spool_dir": os.path.join(base, "spool"),
            "scan_interval": "1s",
            "status_interval": "5s",
            "backoff_min": "100ms",
            "backoff_max": "1s",
            "docker_socket": "none",
            "log_level": "info",
        }
        opts.update(settings)
        args = []
        for k, v in opts.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        a = Agent(agent_bin, os.path.join(base, "agent.log"), args)
        started.append(a)
        if start:
            a.start(wait_connected=wait_connected)
        return a

    yield make
    problems = []
    for a in started:
        if a.alive():
            rc = a.terminate()
            if rc != 0:
                problems.append("agent exited %s after SIGTERM (log %s)" % (rc, a.log_path))
        reports = vt.sanitizer_reports(a.log_text())
        if reports:
            problems.append("sanitizer reports in %s:\n%s" % (a.log_path, "\n".join(reports)))
    if problems and request.session.shouldstop:
        return
    assert not problems, "\n".join(problems)


# --- the agent's spool, read without a collector ---------------------------------------

SPOOL_MAGIC = 0x56475331


def _spool_payloads(spool_dir):
    """The payloads of every valid record in the spool's segments, in
    order (the layout of agent/spool.h; the CRC is not checked here)."""
    out = []
    for name in sorted(n for n in os.listdir(spool_dir) if n.startswith("seg-")):
        with open(os.path.join(spool_dir, name), "rb") as f:
            data = f.read()
        off = 0
        while off + 48 <= len(data):
            magic, length = struct.unpack_from("<II", data, off)
            if magic != SPOOL_MAGIC or off + 48 + length > len(data):
                break
            out.append(data[off + 48:off + 48 + length])
            off += 48 + length
    return out


def spool_events(spool_dir):
    """Every event the agent wrote to its spool (acknowledged batches are
    deleted: use with an agent that has no collector), as vigil.v1.Event
    messages in order."""
    events_pb2, protocol_pb2 = vt.pb()
    out = []
    for payload in _spool_payloads(spool_dir):
        # a payload is Batch.events (field 2) without the seq
        b = protocol_pb2.Batch()
        b.ParseFromString(payload)
        out.extend(b.events)
    return out


# --- queries ---------------------------------------------------------------------------

def agent_events(db, name, kind=None, container=None):
    """Rows (seq, idx, kind, container_id, pid, exe, argv, cwd, details) of
    agent NAME."""
    sql = ("SELECT e.seq, e.idx, e.kind, e.container_id, e.pid, e.exe, e.argv, e.cwd, "
           "e.details FROM events e JOIN agents a ON a.id = e.agent_id WHERE a.name = %s")
    params = [name]
    if kind is not None:
        sql += " AND e.kind = %s"
        params.append(kind)
    if container is not None:
        sql += " AND e.container_id = %s"
        params.append(container)
    if not db.table_exists("events"):
        return []
    return db.query(sql + " ORDER BY e.seq, e.idx", tuple(params))


def container_row(db, name, cid):
    if not db.table_exists("containers"):
        return None
    rows = db.query(
        "SELECT c.name, c.runtime, c.image, c.privileged, c.cap_effective, c.cap_bounding, "
        "c.host_pid, c.host_net, c.host_ipc, c.host_uts, c.mounts, c.read_only_rootfs, "
        "c.state, c.exit_code, c.labels, c.command, c.uid, c.init_pid, c.seccomp_profile, "
        "c.restart_policy "
        "FROM containers c JOIN agents a ON a.id = c.agent_id WHERE a.name = %s AND c.id = %s",
        (name, cid))
    if not rows:
        return None
    keys = ["name", "runtime", "image", "privileged", "cap_effective", "cap_bounding",
            "host_pid", "host_net", "host_ipc", "host_uts", "mounts", "read_only_rootfs",
            "state", "exit_code", "labels", "command", "uid", "init_pid", "seccomp_profile",
            "restart_policy"]
    return dict(zip(keys, rows[0]))


def statuses(db, name):
    """details of every AGENT_STATUS event of agent NAME."""
    return [r[8] for r in agent_events(db, name, kind=5)]


def source_state(details, source):
    for s in details.get("sources", []):
        if s["name"] == source:
            return s
    return None
