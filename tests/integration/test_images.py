# SPDX-License-Identifier: Apache-2.0
"""The container images (deploy/containers/) with Podman: the collector
image serves agents and the API; the agent image, run as on a node (the
host's PID namespace, /proc, /sys/fs/cgroup, the runtimes' state
directories and the Docker-API socket read-only, three capabilities), sees
the host's containers and ships them.

The images come from scripts/build-images.sh (debootstrap'ed base, the
.debs of build-pkg/): what it builds here is removed at the end (the cached
base stays); images that were there and fresh are used and left alone.

Networking: both daemons' containers use --network host and talk over
127.0.0.1 only. The agent needs the host's network namespace anyway (the
kernel's process connector is a netlink socket of the initial one, as the
DaemonSet's hostNetwork); the collector shares it so that the agent and the
test reach it on loopback. PostgreSQL listens on its unix socket only:
its socket directory is mounted into the collector's container, read-only,
at the same path.

This module is collected only with VIGIL_IMAGES_TEST=1 (conftest.py), as
scripts/test.sh's "images" stage runs it, after the packages it needs are
built; a run of the whole directory (ctest) does not collect it. Where it
runs, a missing podman, runc or debootstrap is a failure, not a skip.
"""

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

import vigiltest as vt
from apitest import https_context
from agent_fixtures import *  # noqa: F401,F403 (fixtures)
from agent_fixtures import (IMAGE as BUSYBOX, PODMAN_RUN, agent_events, container_row,
                            source_state, statuses)

pytestmark = pytest.mark.serial

KIND_STARTED, KIND_EXEC = 2, 4
# the agent's capabilities in the DaemonSet and the unit: CAP_DAC_READ_SEARCH
# (2), CAP_NET_ADMIN (12), CAP_SYS_PTRACE (19)
AGENT_CAPS = (1 << 2) | (1 << 12) | (1 << 19)
AGENT_NAME = "img-agent"
BUILD_TIMEOUT = 1800
TAG = uuid.uuid4().hex[:8]
# runc and the ulimits of this machine (agent_fixtures.PODMAN_RUN, without
# its --network none)
RUNC = ["--runtime", "runc", "--ulimit", "nofile=20000:20000",
        "--ulimit", "nproc=1000:1000"]


def sh(cmd, timeout=120, check=True, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode,
                                                      r.stdout[-4000:]))
    return r


def image_id(ref):
    r = sh(["podman", "image", "inspect", "-f", "{{.Id}}", ref], check=False)
    return r.stdout.strip() if r.returncode == 0 else None


@pytest.fixture(scope="session", autouse=True)
def images(request, workdir):
    """Both images, built (or found fresh) by scripts/build-images.sh:
    {"collector": ref, "agent": ref}. What the script built is removed
    at the end, and a tag it moved goes back to the image it named."""
    if os.geteuid() != 0:
        pytest.fail("the images' test runs as root (rootful podman, debootstrap)")
    missing = [t for t in ("podman", "runc", "debootstrap", "busybox") if not shutil.which(t)]
    if missing:
        pytest.fail("missing %s: install with scripts/deps.sh" % ", ".join(missing))
    version = None
    with open(os.path.join(vt.SOURCE_DIR, "CMakeLists.txt")) as f:
        for line in f:
            if line.startswith("project(vigil VERSION "):
                version = line.split()[2]
    assert version, "no project version in CMakeLists.txt"
    refs = {d: "localhost/vigil-%s:%s" % (d, version) for d in ("collector", "agent")}
    before = {d: image_id(r) for d, r in refs.items()}
    log = os.path.join(workdir, "build-images.log")
    t0 = time.monotonic()
    with open(log, "w") as out:
        r = subprocess.run(["bash", os.path.join(vt.SCRIPTS, "build-images.sh")],
                           stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                           timeout=BUILD_TIMEOUT, cwd=vt.SOURCE_DIR)
    with open(log) as f:
        text = f.read()
    assert r.returncode == 0, "scripts/build-images.sh failed:\n" + text[-4000:]
    print("\nbuild-images.sh: %.0f s\n%s" % (time.monotonic() - t0, text))
    after = {d: image_id(r) for d, r in refs.items()}
    for d in refs:
        assert after[d], "build-images.sh left no %s" % refs[d]
        assert ("image %s %s " % (d, refs[d])) in text, text
    yield refs
    for d, ref in refs.items():
        if after[d] != before[d]:
            # by its tag, without -f: only what the script built for us goes
            sh(["podman", "rmi", ref], check=False)
            if before[d] and image_id(before[d]):
                sh(["podman", "tag", before[d], ref], check=False)


class Ctr:
    """A container of this module: run detached, its log kept, removed
    (with its anonymous volumes) at the end."""

    def __init__(self, name, image, opts, args, workdir):
        self.name = name
        self.log_path = os.path.join(workdir, "logs", name + ".log")
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        sh(["podman", "run", "-d", "--name", name] + list(opts) + [image] + list(args))

    def logs(self):
        r = sh(["podman", "logs", self.name], check=False)
        with open(self.log_path, "w") as f:
            f.write(r.stdout)
        return r.stdout

    def running(self):
        return sh(["podman", "inspect", "-f", "{{.State.Running}}", self.name],
                  check=False).stdout.strip() == "true"

    def pid(self):
        return int(sh(["podman", "inspect", "-f", "{{.State.Pid}}", self.name]).stdout)

    def stop(self, timeout):
        sh(["podman", "stop", "-t", str(timeout), self.name], timeout=timeout + 60)
        return int(sh(["podman", "inspect", "-f", "{{.State.ExitCode}}", self.name]).stdout)

    def remove(self):
        self.logs()
        sh(["podman", "rm", "-f", "-v", "-t", "0", self.name], check=False)


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


@pytest.fixture(scope="module")
def collector(images, pg, pki, workdir):
    """The collector image against a database of the test cluster, its
    configuration and TLS files mounted read-only."""
    db = pg.create_db("vt_images")
    base = os.path.join(workdir, "images")
    tls = os.path.join(base, "collector-tls")
    os.makedirs(tls, exist_ok=True)
    os.chmod(base, 0o755)
    os.chmod(tls, 0o755)
    uid = int(sh(["podman", "run", "--rm", "--entrypoint", "/usr/bin/id"] + PODMAN_RUN
                 + [images["collector"], "-u"]).stdout.strip().splitlines()[-1])
    assert uid != 0, "the collector image runs as root"
    for src, dst, mode in ((pki.collector_crt, "collector.crt", 0o644),
                           (pki.collector_key, "collector.key", 0o640),
                           (pki.ca_crt, "ca.crt", 0o644)):
        shutil.copy(src, os.path.join(tls, dst))
        os.chown(os.path.join(tls, dst), 0, uid)
        os.chmod(os.path.join(tls, dst), mode)
    aport, hport = vt.free_port(), vt.free_port()
    conf = os.path.join(base, "collector.conf")
    with open(conf, "w") as f:
        f.write('db = "%s"\n' % db.conninfo)
        f.write("listen = 127.0.0.1:%d\nhttp_listen = 127.0.0.1:%d\n" % (aport, hport))
        f.write("tls_cert = /etc/vigil/tls/collector.crt\n"
                "tls_key = /etc/vigil/tls/collector.key\n"
                "agent_ca = /etc/vigil/tls/ca.crt\n"
                "workers = 1\ndb_writers = 1\nlog_level = info\n")
    os.chmod(conf, 0o644)
    opts = RUNC + [
        "--network", "host", "--read-only", "--cap-drop", "all",
        "--security-opt", "no-new-privileges",
        "-v", "%s:/etc/vigil/collector.conf:ro" % conf,
        "-v", "%s:/etc/vigil/tls:ro" % tls,
        "-v", "%s:%s:ro" % (pg.sock, pg.sock)]
    c = Ctr("vigil-it-img-collector-" + TAG, images["collector"], opts, [], workdir)
    c.ctx = https_context(pki)
    c.db = db
    c.aport, c.hport = aport, hport
    c.address = "127.0.0.1:%d" % aport
    try:
        vt.wait_for(lambda: healthz(c) == 200 or not c.running(), 60,
                    what="the collector container's /healthz")
        assert c.running(), "the collector container exited:\n" + c.logs()[-4000:]
        # the token on stdout, the notice on stderr
        tok = subprocess.run(["podman", "exec", c.name, "vigil-collector", "token", "create",
                              "-c", "/etc/vigil/collector.conf", "--name", "it-images",
                              "--role", "viewer"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=60)
        c.token = tok.stdout.strip()
        assert tok.returncode == 0 and c.token.startswith("vgl_"), tok.stdout + tok.stderr
        yield c
        rc = c.stop(45)
        assert rc == 0, "the collector container exited %d on SIGTERM:\n%s" % (
            rc, c.logs()[-4000:])
    finally:
        c.remove()
        pg.drop_db(db.name)


def https_get(c, path, token=None):
    ctx = c.ctx
    req = urllib.request.Request("https://127.0.0.1:%d%s" % (c.hport, path))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def healthz(c):
    try:
        return https_get(c, "/healthz")[0]
    except OSError:
        return None


def test_collector_image_serves_api(collector):
    """/healthz over HTTPS (the test CA verifies the certificate), /readyz
    with a token (PostgreSQL reached through the mounted socket), the
    schema applied; the daemon runs as vigil with no capabilities."""
    st, body = https_get(collector, "/healthz")
    assert st == 200, body
    st, body = https_get(collector, "/readyz", collector.token)
    assert st == 200, body
    assert collector.db.table_exists("containers")
    status = proc_status(collector.pid())
    uid = status["Uid"].split()
    assert uid[0] != "0" and uid[1] != "0", status["Uid"]
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0, status
    assert status["NoNewPrivs"] == "1"


def test_agent_image_ships_host_containers(images, collector, podman, podman_api, pki,
                                           workdir):
    """The agent image as on a node sees a Podman container that was
    running before it started, one started after, and an exec inside;
    the containers table lists both, the API shows the agent connected."""
    before = "vigil-it-img-before-" + TAG
    before_id = podman.run(before, ["sleep", "600"])
    crt, key = pki.agent(AGENT_NAME)
    apki = os.path.join(workdir, "images", "agent-pki")
    os.makedirs(apki, exist_ok=True)
    for src, dst in ((crt, "agent.crt"), (key, "agent.key"), (pki.ca_crt, "ca.crt")):
        shutil.copy(src, os.path.join(apki, dst))
    opts = RUNC + [
        "--network", "host", "--pid", "host", "--cgroupns", "host", "--read-only",
        "--cap-drop", "all", "--cap-add", "SYS_PTRACE", "--cap-add", "DAC_READ_SEARCH",
        "--cap-add", "NET_ADMIN", "--security-opt", "no-new-privileges",
        "-v", "/proc:/host/proc:ro",
        "-v", "/sys/fs/cgroup:/host/sys/fs/cgroup:ro",
        "-v", "/run/runc:/run/runc:ro",
        "-v", "/run/containers:/run/containers:ro",
        "-v", "%s:/run/docker.sock:ro" % podman_api.sock,
        "-v", "%s:/etc/vigil/pki:ro" % apki]
    args = ["run", "-c", "/etc/vigil/agent.conf",
            "--collectors", collector.address, "--server-name", "localhost",
            "--tls-cert", "/etc/vigil/pki/agent.crt", "--tls-key", "/etc/vigil/pki/agent.key",
            "--ca", "/etc/vigil/pki/ca.crt", "--docker-socket", "/run/docker.sock",
            "--scan-interval", "1s", "--status-interval", "2s", "--backoff-max", "1s",
            "--image-inventory", "false"]
    agent = Ctr("vigil-it-img-agent-" + TAG, images["agent"], opts, args, workdir)
    try:
        check_agent(agent, collector, podman, before, before_id)
    finally:
        agent.remove()


def check_agent(agent, collector, podman, before, before_id):
    db = collector.db

    def connected():
        if not agent.running():
            raise AssertionError("the agent container exited:\n" + agent.logs()[-4000:])
        return "connected as %s" % AGENT_NAME in agent.logs()
    vt.wait_for(connected, 60, interval=0.5, what="the agent container to connect")

    def row(cid, name):
        # named once the Docker-API source answers (the first scan may
        # precede it and name the container by its short id)
        def get():
            r = container_row(db, AGENT_NAME, cid)
            return r if r and r["name"] == name else None
        return get
    r = vt.wait_for(row(before_id, before), 30, interval=0.3,
                    what="the container started before, by its name")
    assert r["runtime"] == "podman" and r["state"] == "running", r
    assert r["image"] == BUSYBOX, r

    after = "vigil-it-img-after-" + TAG
    after_id = podman.run(after, ["sleep", "600"])
    vt.wait_for(lambda: agent_events(db, AGENT_NAME, KIND_STARTED, after_id), 30,
                interval=0.3, what="the start event of the container started after")
    r = vt.wait_for(row(after_id, after), 30, interval=0.3,
                    what="the container started after, by its name")
    assert r["runtime"] == "podman" and r["state"] == "running", r
    cmd = ["sh", "-c", "echo image-test; sleep 0.3; true"]
    podman.exec(after, *cmd)
    ex = vt.wait_for(lambda: [e for e in agent_events(db, AGENT_NAME, KIND_EXEC, after_id)
                              if e[6] == cmd], 30, interval=0.3, what="the exec event")
    assert ex[0][5] == "/bin/busybox", ex[0]

    # the agent, as the API sees it
    def api_agent():
        st, body = https_get(collector, "/api/v1/agents/" + AGENT_NAME, collector.token)
        if st != 200:
            return None
        doc = json.loads(body)
        doc = doc.get("items", [doc])[0] if isinstance(doc, dict) else doc[0]
        return doc if doc.get("connected_here") and doc.get("containers_running", 0) >= 2 \
            else None
    vt.wait_for(api_agent, 30, interval=0.5, what="the API to show the agent connected")

    # every source works from inside the image
    def sources_ok():
        for d in reversed(statuses(db, AGENT_NAME)):
            states = {s: source_state(d, s) for s in ("procfs", "proc_connector",
                                                       "docker_api", "oci")}
            if all(v and v.get("ok") for v in states.values()):
                return states
        return None
    vt.wait_for(sources_ok, 30, interval=0.5,
                what="a status with procfs, proc_connector, docker_api and oci working")

    # uid 0 with the three capabilities only, no privilege escalation
    status = proc_status(agent.pid())
    assert status["Uid"].split()[0] == "0"
    assert int(status["CapEff"], 16) == AGENT_CAPS, status["CapEff"]
    assert int(status["CapBnd"], 16) == AGENT_CAPS, status["CapBnd"]
    assert status["NoNewPrivs"] == "1"

    rc = agent.stop(30)
    assert rc == 0, "the agent container exited %d on SIGTERM:\n%s" % (rc, agent.logs()[-4000:])

