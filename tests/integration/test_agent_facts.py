# SPDX-License-Identifier: Apache-2.0
"""vigil-agent's security facts, read from its spool (no collector: what
the agent would send is what it wrote): the kernel's facts of a
container's init, cgroup limits, devices, propagation, published ports,
user namespaces, and the exec facts (exec session, tty, memfd, drift,
parent) and uid changes to root. Real runc and Podman containers."""

import json
import os
import subprocess
import time

import pytest

import vigiltest as vt
from agent_fixtures import *  # noqa: F401,F403 (fixtures)
from agent_fixtures import run, spool_events

LOOP = ["sh", "-c", "while :; do sleep 0.2; done"]
MiB = 1024 * 1024


def lonely_agent(agent_factory, name, **settings):
    """An agent whose collector never answers: its events stay in the spool."""
    a = agent_factory("127.0.0.1:%d" % vt.free_port(), name, wait_connected=False,
                      shutdown_timeout="0s", **settings)
    a.spool = a.args[a.args.index("--spool-dir") + 1]
    # the first scan is the baseline: containers started after it are events
    time.sleep(1.5)
    return a


def events(a, pred, what, timeout=20):
    def found():
        return [e for e in spool_events(a.spool) if pred(e)]
    return vt.wait_for(found, timeout, interval=0.3, what=what)


def started(a, cid):
    ev = events(a, lambda e: e.WhichOneof("body") == "container_started"
                and e.container_id == cid, "start event of %s" % cid[:12])
    return ev[0].container_started.container


def execs(a, cid, argv):
    return events(a, lambda e: e.WhichOneof("body") == "process_exec"
                  and e.container_id == cid and list(e.process_exec.argv) == argv,
                  "exec %r" % argv)


def test_runc_kernel_facts_and_exec_origin(agent_factory, runc_factory, workdir):
    pb, _ = vt.pb()
    shared = os.path.join(workdir, "facts-shared")
    os.makedirs(shared, exist_ok=True)

    def edit(cfg):
        cfg["process"]["noNewPrivileges"] = True
        res = cfg["linux"].setdefault("resources", {})
        res["memory"] = {"limit": 64 * MiB}
        res["pids"] = {"limit": 100}
        res["cpu"] = {"quota": 50000, "period": 100000}
        cfg["linux"]["devices"] = [{"path": "/dev/vigil-null", "type": "c", "major": 1,
                                    "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0}]
        cfg["mounts"].append({"destination": "/shared", "type": "bind", "source": shared,
                              "options": ["rbind", "rshared", "rw"]})

    a = lonely_agent(agent_factory, "facts-runc")
    c = runc_factory(LOOP, spec_edit=edit).start()
    ctr = started(a, c.id)
    assert ctr.runtime == pb.RUNTIME_RUNC
    assert ctr.no_new_privs == pb.TRISTATE_TRUE
    assert ctr.seccomp_mode == pb.SECCOMP_MODE_DISABLED
    assert ctr.HasField("memory_limit") and ctr.memory_limit.value == 64 * MiB
    assert ctr.pids_limit.value == 100 and not ctr.pids_limit.unlimited
    assert (ctr.cpu_limit.quota_us, ctr.cpu_limit.period_us) == (50000, 100000)
    assert ctr.host_user == pb.TRISTATE_TRUE  # no user namespace in runc's spec
    assert ctr.host_cgroup in (pb.TRISTATE_TRUE, pb.TRISTATE_FALSE)
    assert [d.path_in_container for d in ctr.devices] == ["/dev/vigil-null"]
    assert ctr.devices[0].major == 1 and ctr.devices[0].minor == 3
    m = [m for m in ctr.mounts if m.destination == "/shared"]
    assert m and m[0].propagation == "rshared"
    assert ctr.rootfs_propagation in ("private", "slave", "shared")
    assert "cgroup" in ctr.found_by and "oci" in ctr.found_by
    for fact in ("privileged", "read_only_rootfs", "host_pid", "mounts", "devices"):
        assert fact not in ctr.unknown_facts
    # no API for a runc container: ports are unknown, not "none"
    assert "ports" in ctr.unknown_facts

    # an exec session, and the container's own processes
    c.exec("sh", "-c", "sleep 0.6; true")
    x = execs(a, c.id, ["sh", "-c", "sleep 0.6; true"])[0].process_exec
    assert x.exec_session == pb.TRISTATE_TRUE
    assert x.tty == pb.TRISTATE_FALSE
    assert x.exe_memfd == pb.TRISTATE_FALSE
    assert x.parent_executable  # runc, outside the container
    own = execs(a, c.id, ["sleep", "0.2"])
    assert own[-1].process_exec.exec_session == pb.TRISTATE_FALSE
    assert own[-1].process_exec.parent_argv0 == "sh"
    # the exec session's children are the session's too
    kid = execs(a, c.id, ["sleep", "0.6"])[0].process_exec
    assert kid.exec_session == pb.TRISTATE_TRUE
    # a bundle root is no overlay: drift cannot be told
    assert x.exe_upper_layer == pb.TRISTATE_UNKNOWN


def test_runc_memfd_and_uid_change(agent_factory, runc_factory):
    pb, _ = vt.pb()

    def edit(cfg):
        cfg["process"]["noNewPrivileges"] = False  # setuid binaries work

    a = lonely_agent(agent_factory, "facts-memfd")
    # CAP_SETUID in the bounding set: setuid(0) changes the real uid too
    c = runc_factory(LOOP, spec_edit=edit, caps=["CAP_SETUID"]).start()
    started(a, c.id)
    c.exec("/usr/bin/memfd-sleep", "0.7")
    x = execs(a, c.id, ["sleep", "0.7"])[0].process_exec
    assert x.exe_memfd == pb.TRISTATE_TRUE, x
    assert x.executable.startswith("/memfd:vigil-fileless")

    # a non-root user runs a setuid-root binary that becomes root
    r = run(["runc", "exec", "--user", "1000:1000", c.id, "/usr/bin/suid-root"], check=False)
    assert r.returncode == 0, r.stderr
    x = execs(a, c.id, ["/usr/bin/suid-root"])[0].process_exec
    assert (x.real_uid, x.uid) == (1000, 0)
    u = events(a, lambda e: e.WhichOneof("body") == "process_uid_change"
               and e.container_id == c.id, "uid change event")[0]
    assert u.kind == pb.EVENT_KIND_PROCESS_UID_CHANGE
    ch = u.process_uid_change
    assert (ch.old_real_uid, ch.new_real_uid, ch.new_effective_uid) == (1000, 0, 0)
    assert ch.executable == "/usr/bin/suid-root"


def test_podman_facts_drift_tty_ports(agent_factory, podman, podman_api, workdir):
    pb, _ = vt.pb()
    shared = os.path.join(workdir, "facts-podman-shared")
    os.makedirs(shared, exist_ok=True)
    run(["mount", "--bind", shared, shared])
    run(["mount", "--make-shared", shared])
    try:
        a = lonely_agent(agent_factory, "facts-podman", docker_socket=podman_api.sock)
        name = "vigil-it-facts-%d" % os.getpid()
        opts = ["--security-opt", "no-new-privileges", "--memory", "64m",
                "--pids-limit", "100", "--device", "/dev/null:/dev/vigil-null",
                "-v", "%s:/shared:rshared" % shared, "--restart", "on-failure:3"]
        # publishing a port needs a network namespace with a network; on
        # loopback only
        port = vt.free_port()
        r = run(["podman", "run", "-d", "--name", name, "--runtime", "runc",
                 "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000",
                 "-p", "127.0.0.1:%d:80" % port] + opts + [podman.image] + LOOP,
                timeout=120)
        podman.names.append(name)
        cid = r.stdout.strip().splitlines()[-1]
        ctr = started(a, cid)
        assert ctr.runtime == pb.RUNTIME_PODMAN
        assert ctr.no_new_privs == pb.TRISTATE_TRUE
        assert ctr.memory_limit.value == 64 * MiB
        assert ctr.pids_limit.value == 100
        assert "/dev/vigil-null" in [d.path_in_container for d in ctr.devices]
        m = [m for m in ctr.mounts if m.destination == "/shared"]
        assert m and m[0].propagation == "rshared", ctr.mounts
        assert ctr.restart_policy == "on-failure" and ctr.restart_max_retries == 3
        assert [(p.container_port, p.host_ip, p.host_port) for p in ctr.ports] == [
            ("80/tcp", "127.0.0.1", port)]
        assert ctr.host_user == pb.TRISTATE_TRUE
        assert "api" in ctr.found_by
        # the image's registry digest comes from the image's own record
        events(a, lambda e: e.container_id == cid and any(
            "@sha256:" in d for d in getattr(e, e.WhichOneof("body")).container.repo_digests)
            if e.WhichOneof("body") in ("container_started", "container_changed") else False,
            "the image's repo digests")

        # drift: a binary copied into the container after it started
        podman.exec(name, "sh", "-c", "mkdir -p /opt && cp /bin/busybox /opt/sleep")
        podman.exec(name, "/opt/sleep", "0.8")
        x = execs(a, cid, ["/opt/sleep", "0.8"])[0].process_exec
        assert x.exe_upper_layer == pb.TRISTATE_TRUE, x
        podman.exec(name, "sleep", "0.9")
        x = execs(a, cid, ["sleep", "0.9"])[0].process_exec
        assert x.exe_upper_layer == pb.TRISTATE_FALSE, x
        assert x.exec_session == pb.TRISTATE_TRUE
        # with a tty, and without
        subprocess.run(["script", "-qec", "podman exec -t %s sleep 0.7" % name, "/dev/null"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=60,
                       check=True)
        x = execs(a, cid, ["sleep", "0.7"])[0].process_exec
        assert x.tty == pb.TRISTATE_TRUE, x
        assert x.tty != pb.TRISTATE_UNKNOWN
    finally:
        run(["umount", shared], check=False)


def test_podman_user_namespace(agent_factory, podman):
    pb, _ = vt.pb()
    a = lonely_agent(agent_factory, "facts-userns")
    name = "vigil-it-userns-%d" % os.getpid()
    cid = podman.run(name, LOOP, ["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"])
    ctr = started(a, cid)
    assert ctr.host_user == pb.TRISTATE_FALSE
    assert ctr.uid == 100000 or ctr.uid == 0  # the kernel's view is the host's uid


def test_podman_paused_container_stays(agent_factory, podman):
    pb, _ = vt.pb()
    a = lonely_agent(agent_factory, "facts-paused")
    name = "vigil-it-paused-%d" % os.getpid()
    cid = podman.run(name, LOOP)
    started(a, cid)
    run(["podman", "pause", name])
    try:
        ch = events(a, lambda e: e.WhichOneof("body") == "container_changed"
                    and e.container_id == cid
                    and e.container_changed.container.state == "paused", "paused state")
        assert ch[0].container_changed.container.init_pid
        time.sleep(2.5)  # a few scans: still there, not stopped
        assert not [e for e in spool_events(a.spool)
                    if e.WhichOneof("body") == "container_stopped" and e.container_id == cid]
    finally:
        run(["podman", "unpause", name], check=False)
    events(a, lambda e: e.WhichOneof("body") == "container_changed"
           and e.container_id == cid
           and e.container_changed.container.state == "running", "running again")


@pytest.mark.serial
def test_fork_storm_is_bounded(agent_factory, runc_factory):
    """Thousands of short processes in one container: the agent keeps up,
    and what it could not follow is counted, not hidden."""
    a = lonely_agent(agent_factory, "facts-storm", status_interval="1s")
    c = runc_factory(LOOP, spec_edit=lambda cfg: cfg["linux"].setdefault(
        "resources", {}).update({"pids": {"limit": 2000}})).start()
    started(a, c.id)
    c.exec("sh", "-c", "i=0; while [ $i -lt 3000 ]; do /bin/true & i=$((i+1)); done; wait",
           timeout=120)
    assert a.alive()
    with open("/proc/%d/status" % a.proc.pid) as f:
        rss_kib = int([ln for ln in f if ln.startswith("VmRSS:")][0].split()[1])
    # generous: sanitizer builds take more; bench/agent.sh measures the real figure
    assert rss_kib < (256 if os.environ.get("VIGIL_SANITIZE") else 64) * 1024, rss_kib
    st = events(a, lambda e: e.WhichOneof("body") == "agent_status", "a status event")
    assert st


def test_crun_state_directory(agent_factory, workdir):
    """CRI-O with crun, as crun leaves it: STATE/ID/status (no id inside)
    and the bundle's config.json. The container is found by its pid."""
    pb, _ = vt.pb()
    cid = os.urandom(32).hex()
    state = os.path.join(workdir, "crun-state-%d" % os.getpid())
    bundle = os.path.join(workdir, "crun-bundle-%s" % cid[:12])
    os.makedirs(state)
    os.makedirs(bundle)
    a = lonely_agent(agent_factory, "facts-crun", oci_state_dirs=state,
                     containerd_dirs="/nonexistent")
    proc = subprocess.Popen(["sleep", "60"])
    try:
        spec = {"ociVersion": "1.0.2",
                "process": {"args": ["sleep", "60"], "user": {"uid": 0, "gid": 0},
                            "noNewPrivileges": True},
                "root": {"path": "rootfs", "readonly": True},
                "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}],
                          "devices": [{"path": "/dev/fuse", "type": "c", "major": 10,
                                       "minor": 229}]},
                "annotations": {"io.kubernetes.cri-o.ContainerID": cid,
                                "io.kubernetes.container.name": "crun-web"}}
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        os.makedirs(os.path.join(state, cid))
        with open(os.path.join(state, cid, "status.tmp"), "w") as f:
            json.dump({"pid": proc.pid, "process-start-time": 1, "cgroup-path": "/x",
                       "rootfs": bundle + "/rootfs", "systemd-cgroup": "true",
                       "bundle": bundle, "created": "2026-01-02T03:04:05Z",
                       "owner": "root", "detached": "true"}, f)
        os.rename(os.path.join(state, cid, "status.tmp"), os.path.join(state, cid, "status"))
        ctr = started(a, cid)
        assert ctr.runtime == pb.RUNTIME_CRIO
        assert ctr.name == "crun-web"
        assert ctr.init_pid == proc.pid
        assert ctr.read_only_rootfs
        assert [d.path_in_container for d in ctr.devices] == ["/dev/fuse"]
        assert "oci" in ctr.found_by
    finally:
        proc.kill()
        proc.wait()
