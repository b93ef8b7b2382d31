# SPDX-License-Identifier: Apache-2.0
"""Image inventories from the real vigil-agent to the real collector: runc
containers of busybox roots with a dpkg status file written by the test,
Podman containers of one image, hostile roots (a FIFO, a symlink to the
host's /etc/shadow) and, when debootstrap is installed, a real Debian 12
root. ImageInventory events (kind 9) land in events, and in images /
image_packages once the collector's schema has them; each image is sent
once, and not again after the agent restarts (its Hello names the image,
the collector's Welcome says it is stored).

The agent sees every container of the machine: counts are taken for the
test's own containers and images only.
"""

import os
import shutil
import subprocess
import time

import pytest

import vigiltest as vt
from agent_fixtures import *  # noqa: F401,F403 (fixtures)
from agent_fixtures import agent_events, need, new_id, RuncContainer, source_state, statuses
from test_agent_rootfs import DEBIAN_CACHE, STATUS, debian_rootfs, write

KIND_IMAGE = 9
OS_RELEASE = ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
              "VERSION_CODENAME=bookworm\n")


def inventories(db, agent, ids):
    """details of agent's ImageInventory events read from containers IDS."""
    return [r[8] for r in agent_events(db, agent, KIND_IMAGE)
            if r[8].get("container_id") in ids]


def image_events(db, agent, image_id):
    return [r[8] for r in agent_events(db, agent, KIND_IMAGE)
            if r[8].get("image_id") == image_id]


def images_table(db):
    return db.table_exists("images") and db.table_exists("image_packages")


def stored_packages(db, image_id):
    return {r[0]: r[1:] for r in db.query(
        "SELECT name, version, arch, source_name, source_version FROM image_packages "
        "WHERE image_id = %s", (image_id,))}


def copy_root(rootfs, workdir):
    """A copy of the session's busybox root file system, the test's own."""
    path = os.path.join(workdir, "img-rootfs-" + new_id()[:8])
    shutil.copytree(rootfs, path, symlinks=True)
    return path


@pytest.fixture
def image_root(rootfs, workdir):
    path = copy_root(rootfs, workdir)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def containers(workdir):
    made = []

    def start(root, readonly=True):
        c = RuncContainer(workdir, root, ["sleep", "1000"], readonly=readonly).start()
        made.append(c)
        vt.wait_for(lambda: c.pid(), 10, what="the container's pid")
        return c

    yield start
    for c in made:
        c.remove()


def test_one_inventory_per_image_and_none_after_restart(db, collector_factory, agent_factory,
                                                        image_root, containers):
    write(image_root, "etc/os-release", OS_RELEASE)
    write(image_root, "var/lib/dpkg/status", STATUS)
    col = collector_factory(db)
    agent = agent_factory(col, "agent-img")
    # two containers of one root, hence one image (runc knows no digest:
    # the image is named by the content read)
    c1, c2 = containers(image_root), containers(image_root)
    ids = {c1.id, c2.id}
    got = vt.wait_for(lambda: inventories(db, "agent-img", ids), 30,
                      what="an ImageInventory event")
    inv = got[0]
    assert inv["image_id"].startswith("rootfs:sha256:") and len(inv["image_id"]) == 14 + 64
    assert (inv["os_id"], inv["os_version_id"], inv["os_codename"]) == \
        ("debian", "12", "bookworm")
    assert (inv["format"], inv["status"], inv["reason"]) == ("dpkg", "ok", "")
    assert inv["packages"] == 2 and inv["packages_cut"] == 0
    image_id = inv["image_id"]
    if images_table(db):
        rows = vt.wait_for(lambda: db.query(
            "SELECT format, status, packages, os_id, os_version_id, container_id FROM images "
            "WHERE image_id = %s", (image_id,)), 10, what="the images row")
        assert rows[0][:5] == ("dpkg", "ok", 2, "debian", "12")
        assert rows[0][5] in ids
        pk = stored_packages(db, image_id)
        assert pk == {"libc6": ("2.36-9+deb12u4", "amd64", "glibc", "2.36-9+deb12u4"),
                      "libssl3": ("3.0.11-1~deb12u2+b1", "amd64", "openssl",
                                  "3.0.11-1~deb12u2")}
    # more scans (1 s apart) and a third container of it: nothing more
    c3 = containers(image_root)
    ids.add(c3.id)
    time.sleep(4)
    assert len(image_events(db, "agent-img", image_id)) == 1

    # a restart: the Hello names the image, the Welcome says it is stored
    assert agent.terminate() == 0
    if images_table(db):
        agent.start()
        agent.wait_log("images: the collector stores", 20)
        line = [ln for ln in agent.log_text()[agent.offset:].splitlines()
                if "images: the collector stores" in ln][0]
        stored, listed = [int(w) for w in line.split() if w.isdigit()][:2]
        assert stored >= 1 and listed >= 1, line
    else:
        agent.start()
    time.sleep(4)
    assert len(image_events(db, "agent-img", image_id)) == 1
    assert len(inventories(db, "agent-img", ids)) == 1
    st = vt.wait_for(lambda: [s for s in statuses(db, "agent-img")
                              if source_state(s, "image_inventory")], 20,
                     what="a status with the image reader")
    src = source_state(st[-1], "image_inventory")
    assert src["ok"] and "images read" in src["error"]


def test_hostile_roots_are_not_read_and_the_agent_keeps_going(db, collector_factory,
                                                              agent_factory, image_root,
                                                              containers, rootfs, workdir):
    # a FIFO where the status file should be: not read, and nothing blocks
    os.makedirs(os.path.join(image_root, "var/lib/dpkg"))
    os.mkfifo(os.path.join(image_root, "var/lib/dpkg/status"))
    # another root whose status file is a symlink to the host's /etc/shadow
    # (a file of that root's own, if any, is what a read may see), and a
    # host file of packages that must stay out of reach
    other = copy_root(rootfs, workdir)
    secret = os.path.join(workdir, "host-status-" + new_id()[:8])
    with open(secret, "w") as f:
        f.write("Package: host-secret\nStatus: install ok installed\nVersion: 1\n")
    os.makedirs(os.path.join(other, "var/lib/dpkg/status.d"))
    os.symlink("/etc/shadow", os.path.join(other, "var/lib/dpkg/status"))
    os.symlink("/../../../../../.." + secret, os.path.join(other, "var/lib/dpkg/status.d/a"))
    write(other, "var/lib/dpkg/status.d/c", "Package: c\nVersion: 1\n")
    try:
        col = collector_factory(db)
        agent = agent_factory(col, "agent-hostile")
        fifo, link = containers(image_root), containers(other)
        got = vt.wait_for(lambda: inventories(db, "agent-hostile", {fifo.id}), 30,
                          what="the FIFO root's inventory")
        assert (got[0]["format"], got[0]["status"]) == ("dpkg", "not read")
        assert "not a regular file" in got[0]["reason"]
        got = vt.wait_for(lambda: inventories(db, "agent-hostile", {link.id}), 30,
                          what="the symlinked root's inventory")
        inv = got[0]
        assert inv["format"] == "dpkg" and inv["packages"] == 1
        if images_table(db):
            pk = vt.wait_for(lambda: stored_packages(db, inv["image_id"]), 10,
                             what="image_packages rows")
            assert sorted(pk) == ["c"]
            assert not db.query("SELECT 1 FROM image_packages WHERE name = 'host-secret'")
        # the failure is in the agent status, and the agent goes on working
        st = vt.wait_for(lambda: [s for s in statuses(db, "agent-hostile")
                                  if "not a regular file" in
                                  (source_state(s, "image_inventory") or {}).get("error", "")],
                         20, what="the FIFO's reason in the agent status")
        assert source_state(st[-1], "image_inventory")["ok"]
        c = containers(image_root)
        vt.wait_for(lambda: agent_events(db, "agent-hostile", 2, c.id), 20,
                    what="a later container's start event")
        assert agent.alive()
        # each image once, the FIFO's too
        time.sleep(3)
        assert len(inventories(db, "agent-hostile", {fifo.id, link.id, c.id})) == 2
    finally:
        shutil.rmtree(other, ignore_errors=True)
        os.unlink(secret)


def big_status(n, width):
    """A dpkg status of N installed packages whose names and versions are
    about WIDTH bytes each."""
    pad = "x" * max(0, width - 12)
    out = []
    for i in range(n):
        out.append("Package: pkg%s-%05d\nStatus: install ok installed\nArchitecture: amd64\n"
                   "Source: src%s-%05d (1:%s.%05d-1)\nVersion: 1:%s.%05d-1+b1\n\n"
                   % (pad, i, pad, i, pad, i, pad, i))
    return "".join(out)


def test_twenty_thousand_packages_fit_a_batch(db, collector_factory, agent_factory, rootfs,
                                              workdir, containers):
    # 20,000 packages of ordinary lengths: one event, all of them
    plain = copy_root(rootfs, workdir)
    write(plain, "etc/os-release", OS_RELEASE)
    write(plain, "var/lib/dpkg/status", big_status(20000, 24))
    # 20,000 packages of 120-byte names and versions cannot fit a batch:
    # the event carries what fits, partial, with the rest counted as cut
    wide = copy_root(rootfs, workdir)
    write(wide, "var/lib/dpkg/status", big_status(20000, 120))
    try:
        col = collector_factory(db)
        agent_factory(col, "agent-big", image_read_budget="20s")
        a, b = containers(plain), containers(wide)
        inv = vt.wait_for(lambda: inventories(db, "agent-big", {a.id}), 60,
                          what="the 20,000-package inventory")[0]
        assert (inv["status"], inv["packages"], inv["packages_cut"]) == ("ok", 20000, 0)
        if images_table(db):
            n = vt.wait_for(lambda: db.scalar(
                "SELECT count(*) FROM image_packages WHERE image_id = %s",
                (inv["image_id"],)), 20, what="image_packages rows")
            assert n == 20000
        inv = vt.wait_for(lambda: inventories(db, "agent-big", {b.id}), 60,
                          what="the wide inventory")[0]
        assert inv["status"] == "partial" and "batch limit" in inv["reason"]
        assert inv["packages"] > 1000 and inv["packages"] + inv["packages_cut"] == 20000
    finally:
        shutil.rmtree(plain, ignore_errors=True)
        shutil.rmtree(wide, ignore_errors=True)


def test_podman_containers_of_one_image(db, collector_factory, agent_factory, podman,
                                        podman_api):
    col = collector_factory(db)
    agent_factory(col, "agent-podimg", docker_socket=podman_api.sock)
    tag = "%d-%s" % (os.getpid(), new_id()[:6])
    a = podman.run("vigil-it-img-a-" + tag, ["sleep", "1000"])
    b = podman.run("vigil-it-img-b-" + tag, ["sleep", "1000"])
    digest = podman.inspect("vigil-it-img-a-" + tag, "{{.Image}}")
    if not digest.startswith("sha256:"):
        digest = "sha256:" + digest
    got = vt.wait_for(lambda: image_events(db, "agent-podimg", digest), 40,
                      what="the image's inventory, by digest")
    assert got[0]["image"] == podman.image
    assert got[0]["container_id"] in (a, b)
    assert got[0]["format"] == "none"
    time.sleep(3)
    assert len(image_events(db, "agent-podimg", digest)) == 1
    # and none under a content address for want of the digest
    assert len(inventories(db, "agent-podimg", {a, b})) == 1


def test_debian_12_root(db, collector_factory, agent_factory, containers):
    need("runc")
    if not os.path.exists(os.path.join(DEBIAN_CACHE, "var/lib/dpkg/status")):
        need("debootstrap")
    root = debian_rootfs()
    r = subprocess.run(["chroot", root, "dpkg-query", "-W", "-f",
                        "${db:Status-Status} ${db:Status-Eflag} ${Package} ${Version}\n"],
                       stdout=subprocess.PIPE, text=True, check=True)
    want = {ln.split()[2]: ln.split()[3] for ln in r.stdout.splitlines()
            if ln.startswith("installed ok ")}
    col = collector_factory(db)
    agent_factory(col, "agent-deb")
    c = containers(root)
    got = vt.wait_for(lambda: inventories(db, "agent-deb", {c.id}), 30,
                      what="the Debian root's inventory")
    inv = got[0]
    assert (inv["os_id"], inv["os_version_id"], inv["format"], inv["status"]) == \
        ("debian", "12", "dpkg", "ok")
    assert inv["packages"] == len(want)
    if images_table(db):
        pk = vt.wait_for(lambda: stored_packages(db, inv["image_id"]), 10,
                         what="image_packages rows")
        assert {n: v[0] for n, v in pk.items()} == want
        assert pk["libc6"][2] == "glibc" and pk["libc6"][1] == "amd64"
