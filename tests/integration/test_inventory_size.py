# SPDX-License-Identifier: Apache-2.0
"""A node with many containers: its inventory snapshot, one event of a few
hundred kilobytes, is stored whole. (The collector's budget of what one
frame may take once encoded, proportional to the frame's size, once
refused the snapshot of a node with about 65 containers; the agent then
sent it again forever and the node's inventory never arrived.)"""

import pytest

import vigiltest as vt
from agent_fixtures import *  # noqa: F401,F403 (fixtures)

N = 100  # containers: an inventory of about 70 KB


def inventory_event(n):
    E, _ = vt.pb()
    e = E.Event()
    e.time_ns = vt.now_ns()
    e.kind = E.EVENT_KIND_INVENTORY
    e.severity = E.SEVERITY_INFO
    inv = e.inventory
    inv.full = True
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
            "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"]
    for i in range(n):
        c = inv.containers.add()
        c.id = "%064x" % (0xc0ffee0000 + i)
        c.name = "svc-%d" % i
        c.runtime = E.RUNTIME_PODMAN
        c.image = "registry.example/team/app-%d:1.%d" % (i % 7, i)
        c.image_digest = "sha256:" + ("%02x" % (i % 256)) * 32
        for k in range(12):
            lab = c.labels.add()
            lab.key, lab.value = "io.example.label-%d" % k, "value-%d-%d" % (i, k)
        c.command.extend(["/usr/bin/app", "--config", "/etc/app/%d.yaml" % i, "--verbose"])
        # Settings the posture rules judge, so each container brings its
        # findings into the batch's state too.
        c.uid, c.gid, c.user_known = 0, 0, True
        c.privileged = i % 2 == 0
        c.host_pid = c.host_net = i % 3 == 0
        c.cap_effective.extend(caps)
        c.cap_bounding.extend(caps)
        for m in range(6):
            mt = c.mounts.add()
            mt.source, mt.destination = ("/var/run/docker.sock" if m == 0 else
                                         "/srv/data/%d/%d" % (i, m)), "/data/%d" % m
            mt.read_only, mt.type = m % 2 == 0, "bind"
        c.init_pid = 10000 + i
        c.created_ns = vt.now_ns() - 5_000_000_000
        c.started_ns = vt.now_ns() - 4_000_000_000
        c.state = "running"
    return e


def test_inventory_of_many_containers_is_stored(collector_factory, db, pki):
    c = collector_factory(db)
    crt, key = pki.agent("busy-node")
    ev = inventory_event(N)
    size = len(ev.SerializeToString())
    assert size > 60_000, size  # the size that was refused
    with vt.RawAgent(c.port, vt.client_context(pki, crt, key)).connect() as a:
        a.hello()
        a.batch(1, [ev], timeout=30)
    n = db.scalar("SELECT count(*) FROM containers c JOIN agents a ON a.id = c.agent_id "
                  "WHERE a.name = 'busy-node'")
    assert n == N, n


@pytest.mark.serial  # many real containers: the host's inventory is the test's
def test_real_node_with_many_containers(collector_factory, db, podman, agent_factory):
    """80 real Podman containers, labelled, half of them privileged: the
    agent's inventory of them is stored, and the collector refuses none of
    its batches."""
    c = collector_factory(db)
    for i in range(80):
        opts = ["--label", "io.example.team=team-%d" % (i % 5),
                "--label", "io.example.purpose=inventory-size-%d" % i]
        if i % 2 == 0:
            opts.append("--privileged")
        podman.run("invsize-%d-%s" % (i, vt.now_ns() % 100000), ["sleep", "600"], opts)
    agent_factory(c, "many-containers")
    ids = [podman.inspect(n, "{{.Id}}") for n in podman.names]
    vt.wait_for(lambda: (db.scalar(
        "SELECT count(*) FROM containers c JOIN agents a ON a.id = c.agent_id "
        "WHERE a.name = 'many-containers' AND c.id = ANY(%s)", (ids,)) or 0) == 80,
        90, what="the 80 containers in the inventory")
    assert "refused" not in c.log_text(), c.log_text()[-3000:]
