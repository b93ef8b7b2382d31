# SPDX-License-Identifier: Apache-2.0
"""The agent's image inventory reader on real containers: runc containers of
busybox root file systems written by the test (a dpkg status file and a
distroless status.d directory, an Alpine installed database, hostile
files: a symlink to a host file, a FIFO, a 100 MiB database) and, when
debootstrap is installed, a real Debian 12 root file system. The reader is
bin/vigil-vuln-inventory --pid PID (bench/vuln_inventory.c), which runs
what the agent's worker runs.
"""

import json
import os
import shutil
import subprocess
import time

import pytest

import vigiltest as vt
from agent_fixtures import *  # noqa: F401,F403 (fixtures)
from agent_fixtures import make_rootfs, need, new_id, RuncContainer

# a timed read (elapsed_s) and a debootstrap cache outside the work directory
pytestmark = pytest.mark.serial

DEBIAN_CACHE = "/var/tmp/vigil-debootstrap-bookworm"

STATUS = """Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries.

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.11-1~deb12u2+b1

Package: vim-tiny
Status: deinstall ok config-files
Architecture: amd64
Source: vim
Version: 2:9.0.1378-2
"""


def inventory(pid, timeout=20):
    path = os.path.join(vt.BUILD_DIR, "bin", "vigil-vuln-inventory")
    if not os.access(path, os.X_OK):
        pytest.skip("%s not built" % path)
    t0 = time.monotonic()
    r = subprocess.run([path, "--pid", str(pid)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    inv = json.loads(r.stdout)
    inv["elapsed_s"] = time.monotonic() - t0
    return inv


def write(root, rel, text):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)


@pytest.fixture
def image_root(workdir):
    """A fresh busybox root file system of the test's own."""
    need("runc", "busybox")
    path = os.path.join(workdir, "inv-rootfs-" + new_id()[:8])
    make_rootfs(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def container(workdir):
    made = []

    def start(root):
        c = RuncContainer(workdir, root, ["sleep", "1000"]).start()
        made.append(c)
        vt.wait_for(lambda: c.pid(), 10, what="the container's pid")
        return c

    yield start
    for c in made:
        c.remove()


def names(inv):
    return {p["name"]: p for p in inv["packages"]}


def test_dpkg_status_and_status_d(image_root, container):
    write(image_root, "etc/os-release",
          'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
          "VERSION_CODENAME=bookworm\n")
    write(image_root, "var/lib/dpkg/status", STATUS)
    write(image_root, "var/lib/dpkg/status.d/base-files",
          "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n")
    write(image_root, "var/lib/dpkg/status.d/base-files.md5sums", "00  /etc/issue\n")
    inv = inventory(container(image_root).pid())
    assert (inv["os_id"], inv["os_version"], inv["os_codename"]) == ("debian", "12", "bookworm")
    assert (inv["format"], inv["status"], inv["exited"]) == ("dpkg", "ok", False)
    pk = names(inv)
    assert sorted(pk) == ["base-files", "libc6", "libssl3"]
    assert (pk["libssl3"]["source_name"], pk["libssl3"]["source_version"]) == \
        ("openssl", "3.0.11-1~deb12u2")
    assert pk["libc6"]["source_name"] == "glibc"
    assert pk["base-files"]["source_version"] == "12.4+deb12u5"


def test_symlinks_out_of_the_root_stay_inside(image_root, container, workdir):
    # a host file with a package in it, outside the container's root
    secret = os.path.join(workdir, "host-status-" + new_id()[:8])
    with open(secret, "w") as f:
        f.write("Package: host-secret\nStatus: install ok installed\nVersion: 1\n")
    os.makedirs(os.path.join(image_root, "var/lib/dpkg/status.d"))
    os.symlink(secret, os.path.join(image_root, "var/lib/dpkg/status"))
    os.symlink("/../../../../../../.." + secret,
               os.path.join(image_root, "var/lib/dpkg/status.d/a"))
    os.symlink("/../../../etc/shadow", os.path.join(image_root, "var/lib/dpkg/status.d/b"))
    write(image_root, "var/lib/dpkg/status.d/c", "Package: c\nVersion: 1\n")
    os.symlink("/proc/self/root" + secret, os.path.join(image_root, "var/lib/dpkg/status.d/d"))
    inv = inventory(container(image_root).pid())
    assert inv["format"] == "dpkg"
    assert sorted(names(inv)) == ["c"]
    os.unlink(secret)


def test_fifo_and_huge_database(image_root, container):
    os.makedirs(os.path.join(image_root, "lib/apk/db"))
    os.mkfifo(os.path.join(image_root, "lib/apk/db/installed"))
    c = container(image_root)
    inv = inventory(c.pid(), timeout=10)
    assert (inv["format"], inv["status"]) == ("apk", "not read")
    assert "not a regular file" in inv["reason"]
    assert inv["elapsed_s"] < 5

    os.makedirs(os.path.join(image_root, "var/lib/dpkg"))
    with open(os.path.join(image_root, "var/lib/dpkg/status"), "w") as f:
        f.truncate(100 << 20)
    inv = inventory(c.pid())
    assert (inv["format"], inv["status"]) == ("dpkg", "not read")
    assert "over the cap" in inv["reason"]


def test_apk_installed_and_a_stopped_container(image_root, container):
    write(image_root, "etc/os-release", "ID=alpine\nVERSION_ID=3.19.1\n")
    write(image_root, "lib/apk/db/installed",
          "C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\no:musl\n\n"
          "P:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n")
    c = container(image_root)
    pid = c.pid()
    inv = inventory(pid)
    assert (inv["os_id"], inv["format"], inv["status"]) == ("alpine", "apk", "ok")
    assert names(inv)["libcrypto3"]["source_name"] == "openssl"
    c.kill("KILL")
    c.wait_stopped()
    inv = inventory(pid)
    assert inv["exited"] and inv["status"] == "not read"
    assert inv["packages"] == []


def debian_rootfs():
    """A debootstrapped Debian 12, cached under /var/tmp across runs."""
    if os.path.exists(os.path.join(DEBIAN_CACHE, "var/lib/dpkg/status")):
        return DEBIAN_CACHE
    need("debootstrap")
    tmp = DEBIAN_CACHE + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    r = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", tmp],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=900)
    if r.returncode != 0:
        pytest.fail("debootstrap failed:\n" + r.stdout[-2000:])
    os.rename(tmp, DEBIAN_CACHE)
    return DEBIAN_CACHE


def test_debian_12_rootfs(container):
    need("runc")
    root = debian_rootfs()
    r = subprocess.run(["chroot", root, "dpkg-query", "-W", "-f",
                        "${db:Status-Status} ${db:Status-Eflag} ${Package}\n"],
                       stdout=subprocess.PIPE, text=True, check=True)
    want = sorted(line.split()[2] for line in r.stdout.splitlines()
                  if line.startswith("installed ok "))
    inv = inventory(container(root).pid())
    assert (inv["os_id"], inv["os_version"], inv["format"], inv["status"]) == \
        ("debian", "12", "dpkg", "ok")
    assert sorted(p["name"] for p in inv["packages"]) == want
    pk = names(inv)
    assert pk["libc6"]["source_name"] == "glibc"
    assert pk["libc6"]["arch"] == "amd64"
