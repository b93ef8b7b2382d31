# SPDX-License-Identifier: Apache-2.0
"""Vulnerable images on the collector, against a real PostgreSQL and the
real collector: ImageInventory events through the real ingest path (rows in
images and image_packages, sizes and UTF-8 checked, an image stored once),
Welcome.known_image_ids on a later Hello, OSV advisories written by the test
and imported with `vigil-collector advisories import`, the matches the
matcher keeps (vuln_matches) and the version edge cases, the API's exposure
answers before and after an import and after a container stops, a changed
or withdrawn advisory losing its matches, and the "vulnerable image
running" finding."""

import json
import os
import subprocess
import time

import pytest

import apitest as at
import vigiltest as vt

DIGEST_A = "sha256:" + "a1" * 32   # Debian 12
DIGEST_B = "sha256:" + "b2" * 32   # Alpine 3.19
DIGEST_C = "sha256:" + "c3" * 32   # Ubuntu 22.04, never run
CID_A = "a" * 64
CID_A2 = "e" * 64
CID_B = "b" * 64

# Debian 12 packages: (name, version, arch, source, source version)
DEB_PKGS = [
    ("libssl3", "3.0.11-1~deb12u1", "amd64", "openssl", "3.0.11-1~deb12u1"),
    ("openssl", "3.0.11-1~deb12u1", "amd64", "openssl", "3.0.11-1~deb12u1"),
    ("curl", "7.88.1-10+deb12u5", "amd64", "curl", "7.88.1-10+deb12u5"),
    ("libc6", "2.36-9+deb12u4", "amd64", "glibc", "2.36-9+deb12u4"),
    ("zlib1g", "1:1.2.13.dfsg-1", "amd64", "zlib", "1:1.2.13.dfsg-1"),
    ("libtasn1-6", "4.19.0-2", "amd64", "libtasn1-6", "4.19.0-2"),
    ("bash", "5.2.15-2+b2", "amd64", "bash", "5.2.15-2"),
]
ALPINE_PKGS = [
    ("busybox", "1.36.1-r15", "x86_64", "busybox", "1.36.1-r15"),
    ("ssl_client", "1.36.1-r15", "x86_64", "busybox", "1.36.1-r15"),
    ("musl", "1.2.4_git20230717-r4", "x86_64", "musl", "1.2.4_git20230717-r4"),
]
UBUNTU_PKGS = [("libc6", "2.35-0ubuntu3.4", "amd64", "glibc", "2.35-0ubuntu3.4")]

MODIFIED = "2024-01-15T10:00:00Z"


def osv(id_, affected, modified=MODIFIED, **kw):
    doc = {"schema_version": "1.6.0", "id": id_, "modified": modified,
           "published": "2023-12-01T00:00:00Z", "summary": "summary of " + id_,
           "affected": affected}
    doc.update(kw)
    return doc


def aff(eco, name, *events, urgency=None):
    a = {"package": {"ecosystem": eco, "name": name},
         "ranges": [{"type": "ECOSYSTEM", "events": [dict([e]) for e in events]}]}
    if urgency:
        a["ecosystem_specific"] = {"urgency": urgency}
    return a


# What the first import brings, and whether each matches image A (Debian),
# B (Alpine) or C (Ubuntu).
FIRST = [
    # fixed above the installed version: affected, high
    osv("DSA-9001-1", [aff("Debian:12", "openssl", ("introduced", "0"),
                           ("fixed", "3.0.11-1~deb12u2"), urgency="high")],
        aliases=["CVE-2099-0001"]),
    # fixed == installed: not affected
    osv("DSA-9002-1", [aff("Debian:12", "curl", ("introduced", "0"),
                           ("fixed", "7.88.1-10+deb12u5"), urgency="high")],
        aliases=["CVE-2099-0002"]),
    # last_affected == installed: affected (inclusive), critical
    osv("DEBIAN-CVE-2099-0003", [aff("Debian:12", "glibc", ("introduced", "2.36-1"),
                                     ("last_affected", "2.36-9+deb12u4"),
                                     urgency="critical")],
        upstream=["CVE-2099-0003"]),
    # epoch: 1:1.2.13 is newer than 1.2.99 (no epoch): not affected
    osv("DSA-9004-1", [aff("Debian:12", "zlib", ("introduced", "0"), ("fixed", "1.2.99-1"),
                           urgency="high")], aliases=["CVE-2099-0004"]),
    # ~ sorts before anything: 4.19.0-2 is past 4.19.0-2~rc1: not affected
    osv("DSA-9005-1", [aff("Debian:12", "libtasn1-6", ("introduced", "0"),
                           ("fixed", "4.19.0-2~rc1"), urgency="high")],
        aliases=["CVE-2099-0005"]),
    # the source version (5.2.15-2), not the binary's (+b2), is compared:
    # affected, low
    osv("DSA-9006-1", [aff("Debian:12", "bash", ("introduced", "0"),
                           ("fixed", "5.2.15-2+deb12u1"), urgency="low")],
        aliases=["CVE-2099-0006"]),
    # Alpine 3.19 image with VERSION_ID 3.19.1; busybox (the origin) twice
    osv("ALPINE-CVE-2099-0007", [aff("Alpine:v3.19", "busybox", ("introduced", "0"),
                                     ("fixed", "1.36.1-r16"))],
        aliases=["CVE-2099-0007"], severity=[{"type": "Ubuntu", "score": "high"}]),
    # no fix: affected from introduced on
    osv("UBUNTU-CVE-2099-0008", [aff("Ubuntu:22.04:LTS", "glibc", ("introduced", "0"))],
        upstream=["CVE-2099-0008"], severity=[{"type": "Ubuntu", "score": "medium"}]),
]


def write(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f)


def run_import(collector_bin, db, *paths):
    r = subprocess.run([collector_bin, "advisories", "import"] + [str(p) for p in paths] +
                       ["--db", db.conninfo, "--log-level", "warn"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                       env=vt.sanitizer_env())
    assert not vt.sanitizer_reports(r.stderr), r.stderr
    assert r.returncode == 0, r.stderr
    return r.stdout


def started(cid, name, digest, image, ts=None):
    e = vt.container_started_event(cid, name, image=image, ts=ts)
    e.container_started.container.image_digest = digest
    return e


def matches(db, image_id=None):
    sql = ("SELECT image_id, package, source_name, version, advisory_id, fixed, severity "
           "FROM vuln_matches")
    if image_id:
        return db.query(sql + " WHERE image_id = %s ORDER BY advisory_id, package",
                        (image_id,))
    return db.query(sql + " ORDER BY image_id, advisory_id, package")


def wait_matched(db, timeout=20):
    vt.wait_for(lambda: db.scalar("SELECT count(*) FROM images WHERE matched_at IS NULL") == 0
                and db.scalar("SELECT count(*) FROM vuln_advisory_queue") == 0,
                timeout, what="the matcher to catch up")


@pytest.fixture(scope="module")
def opca(pki):
    return at.operator_pki(pki)


@pytest.fixture(scope="module")
def env(module_collector_factory, module_db, pki, collector_bin, opca, tmp_path_factory):
    hport = vt.free_port()
    coll = module_collector_factory(module_db, flags={
        "--http-listen": "127.0.0.1:%d" % hport,
        "--http-operator-ca": opca["ca"],
        "--http-rate-limit": "0",
        "--vuln-match-interval": "1s",
    })
    token = at.create_token(collector_bin, module_db, "vuln-viewer", "viewer")
    yield {"coll": coll, "db": module_db, "api": at.Api(hport, pki, token),
           "bin": collector_bin, "pki": pki, "dir": tmp_path_factory.mktemp("osv")}


def agent_conn(env, name):
    a = vt.RawAgent(env["coll"].port, vt.client_context(env["pki"], *env["pki"].agent(name)))
    return a.connect()


@pytest.fixture(scope="module")
def fleet(env):
    """Two nodes: node 1 runs image A twice and sent its inventory and
    image B's; node 2 runs image B. Image C is stored but runs nowhere."""
    db = env["db"]
    with agent_conn(env, "vuln-node-1") as a:
        w = a.hello(image_ids=[DIGEST_A, DIGEST_B])
        assert list(w.known_image_ids) == []
        a.batch(1, [started(CID_A, "web", DIGEST_A, "registry.example/web:1"),
                    started(CID_A2, "web2", DIGEST_A, "registry.example/web:1"),
                    vt.image_inventory_event(DIGEST_A, DEB_PKGS, image="registry.example/web:1",
                                             container_id=CID_A),
                    vt.image_inventory_event(DIGEST_B, ALPINE_PKGS, image="alpine:3.19",
                                             os_id="alpine", os_version_id="3.19.1",
                                             fmt="apk"),
                    vt.image_inventory_event(DIGEST_C, UBUNTU_PKGS, image="ubuntu:22.04",
                                             os_id="ubuntu", os_version_id="22.04")])
    with agent_conn(env, "vuln-node-2") as a:
        a.hello(image_ids=[DIGEST_B])
        a.batch(1, [started(CID_B, "cache", DIGEST_B, "alpine:3.19")])
    wait_matched(db)
    return db


# ---- ingest -------------------------------------------------------------------------------------

def test_inventory_rows(fleet):
    db = fleet
    rows = db.query("SELECT image_id, names, os_id, os_version_id, distro, release, format, "
                    "status, packages, packages_cut, read_ms FROM images ORDER BY image_id")
    assert rows == [
        (DIGEST_A, ["registry.example/web:1"], "debian", "12", "debian", "12", "dpkg", "ok",
         7, 0, 7),
        (DIGEST_B, ["alpine:3.19"], "alpine", "3.19.1", "alpine", "3.19", "apk", "ok", 3, 0,
         7),
        (DIGEST_C, ["ubuntu:22.04"], "ubuntu", "22.04", "ubuntu", "22.04", "dpkg", "ok", 1, 0,
         7),
    ]
    assert db.query("SELECT name, version, arch, source_name, source_version FROM "
                    "image_packages WHERE image_id = %s ORDER BY name", (DIGEST_A,)) == \
        sorted(DEB_PKGS)
    # the event itself is stored like any: its details without the packages
    ev = db.query("SELECT details FROM events WHERE kind = 9 AND details->>'image_id' = %s",
                  (DIGEST_A,))
    assert len(ev) == 1
    d = ev[0][0]
    assert d["packages"] == 7 and "pk" not in d and d["format"] == "dpkg"


def test_known_images_on_hello(env, fleet):
    with agent_conn(env, "vuln-node-1") as a:
        w = a.hello(image_ids=[DIGEST_A, "sha256:" + "ff" * 32, DIGEST_B, "x" * 300])
        assert sorted(w.known_image_ids) == sorted([DIGEST_A, DIGEST_B])


def test_stored_once(env, fleet):
    """A second inventory of a stored image adds its name, nothing else."""
    db = fleet
    with agent_conn(env, "vuln-node-3") as a:
        a.hello()
        a.batch(1, [vt.image_inventory_event(DIGEST_A, [("other", "1.0")],
                                             image="registry.example/web:latest")])
    assert db.scalar("SELECT names FROM images WHERE image_id = %s", (DIGEST_A,)) == \
        ["registry.example/web:1", "registry.example/web:latest"]
    assert db.scalar("SELECT count(*) FROM image_packages WHERE image_id = %s",
                     (DIGEST_A,)) == 7


def test_bad_inventories(env, fleet):
    """Refused events go to dead_letters with the reason; a list past the
    cap is cut and counted. (A string that is not UTF-8 never gets this
    far: the frame does not unpack; rows.c checks again all the same.)"""
    db = fleet
    big = [("p%05d" % i, "1.%d" % i) for i in range(20005)]
    with agent_conn(env, "vuln-node-4") as a:
        a.hello()
        a.batch(1, [vt.image_inventory_event("", [("pkg", "1.0")]),
                    vt.image_inventory_event("sha256:" + "d5" * 32, [("pkg", "v" * 300)]),
                    vt.image_inventory_event("sha256:" + "d6" * 32, big, cut=3)])
    reasons = [r[0] for r in db.query(
        "SELECT reason FROM dead_letters d JOIN agents a ON a.id = d.agent_id "
        "WHERE a.name = 'vuln-node-4' ORDER BY seq, idx")]
    assert reasons[0] == "image inventory without an image id"
    assert reasons[1] == "image inventory: a package field too long or not UTF-8"
    assert len(reasons) == 2
    assert db.query("SELECT packages, packages_cut FROM images WHERE image_id = %s",
                    ("sha256:" + "d6" * 32,)) == [(20000, 8)]
    assert db.scalar("SELECT count(*) FROM images WHERE image_id = %s",
                     ("sha256:" + "d5" * 32,)) == 0


# ---- matching -----------------------------------------------------------------------------------

def import_docs(env, name, docs):
    d = env["dir"] / name
    for doc in docs:
        write(str(d / (doc["id"] + ".json")), doc)
    return run_import(env["bin"], env["db"], d)


@pytest.fixture(scope="module")
def first_import(env, fleet):
    out = import_docs(env, "first", FIRST)
    wait_matched(fleet)
    return out


A_FIRST = [
    (DIGEST_A, "libc6", "glibc", "2.36-9+deb12u4", "DEBIAN-CVE-2099-0003", None, 5),
    (DIGEST_A, "libssl3", "openssl", "3.0.11-1~deb12u1", "DSA-9001-1", "3.0.11-1~deb12u2", 4),
    (DIGEST_A, "openssl", "openssl", "3.0.11-1~deb12u1", "DSA-9001-1", "3.0.11-1~deb12u2", 4),
    (DIGEST_A, "bash", "bash", "5.2.15-2+b2", "DSA-9006-1", "5.2.15-2+deb12u1", 2),
]


def test_import_matches(first_import, fleet):
    """The version edge cases: fixed == installed is not affected,
    last_affected is inclusive, an epoch outranks the upstream version, ~
    sorts first, the source version is compared, no fix means affected."""
    out = first_import
    assert "matched 0 new images and 8 advisories" in out, out
    assert matches(fleet, DIGEST_A) == A_FIRST
    assert matches(fleet, DIGEST_B) == [
        (DIGEST_B, "busybox", "busybox", "1.36.1-r15", "ALPINE-CVE-2099-0007", "1.36.1-r16", 4),
        (DIGEST_B, "ssl_client", "busybox", "1.36.1-r15", "ALPINE-CVE-2099-0007", "1.36.1-r16",
         4)]
    assert matches(fleet, DIGEST_C) == [
        (DIGEST_C, "libc6", "glibc", "2.35-0ubuntu3.4", "UBUNTU-CVE-2099-0008", None, 3)]
    assert fleet.query("SELECT image_id, vuln_counts, vuln_max FROM images WHERE image_id IN "
                       "(%s, %s, %s) ORDER BY image_id", (DIGEST_A, DIGEST_B, DIGEST_C)) == [
        (DIGEST_A, [0, 0, 1, 0, 2, 1], 5), (DIGEST_B, [0, 0, 0, 0, 2, 0], 4),
        (DIGEST_C, [0, 0, 0, 1, 0, 0], 3)]


def test_new_image_matched(env, first_import):
    """An image that arrives after the advisories is matched by the
    collector's matcher, off the ingest path."""
    db = env["db"]
    digest = "sha256:" + "f0" * 32
    with agent_conn(env, "vuln-node-5") as a:
        a.hello()
        a.batch(1, [vt.image_inventory_event(digest, DEB_PKGS[:2], image="late:1")])
    wait_matched(db)
    assert [m[4] for m in matches(db, digest)] == ["DSA-9001-1", "DSA-9001-1"]


# ---- the API and the findings ------------------------------------------------------------------

def exposure(env, id_, **params):
    return env["api"].ok("/api/v1/vulnerabilities/" + id_, params or None)


def test_api_before_import(env, fleet):
    """Before any advisory names it, a CVE is unknown (404)."""
    r = env["api"].get("/api/v1/vulnerabilities/CVE-2099-0009")
    assert r.status == 404 and r.json()["error"] == "not_found"


def test_exposure_now(env, first_import):
    d = exposure(env, "CVE-2099-0001")
    assert d["id"] == "CVE-2099-0001" and d["when"] == "now"
    assert [a["id"] for a in d["advisories"]] == ["DSA-9001-1"]
    assert d["advisories"][0]["severity"] == "high"
    assert d["count"] == 2
    assert sorted(c["container_id"] for c in d["containers"]) == sorted([CID_A, CID_A2])
    c = d["containers"][0]
    assert c["agent"] == "vuln-node-1" and c["image_digest"] == DIGEST_A
    assert c["packages"] == [
        {"package": "libssl3", "source": "openssl", "installed": "3.0.11-1~deb12u1",
         "fixed": "3.0.11-1~deb12u2", "advisory": "DSA-9001-1", "severity": "high"},
        {"package": "openssl", "source": "openssl", "installed": "3.0.11-1~deb12u1",
         "fixed": "3.0.11-1~deb12u2", "advisory": "DSA-9001-1", "severity": "high"}]
    assert d["nodes"] == [{"agent": "vuln-node-1", "hostname": "itest-host", "containers": 2}]
    # by advisory id as well; a CVE with no running image: known, nobody exposed
    assert exposure(env, "DSA-9001-1")["count"] == 2
    d = exposure(env, "CVE-2099-0008")
    assert d["count"] == 0 and d["containers"] == [] and \
        d["images"] == [{"image_id": DIGEST_C, "names": ["ubuntu:22.04"], "containers": 0}]
    # fixed == installed: nobody
    assert exposure(env, "CVE-2099-0002")["count"] == 0
    # Alpine, on node 2
    d = exposure(env, "CVE-2099-0007")
    assert [(c["agent"], c["container_id"]) for c in d["containers"]] == [("vuln-node-2", CID_B)]
    r = env["api"].get("/api/v1/vulnerabilities/CVE-2099-0001", {"at": "yesterday"})
    assert r.status == 400 and r.json()["parameter"] == "at"


def test_image_vulnerabilities(env, first_import):
    d = env["api"].ok("/api/v1/images/%s/vulnerabilities" % DIGEST_A)
    assert d["image"]["image_id"] == DIGEST_A and d["image"]["max_severity"] == "critical"
    assert d["image"]["counts"] == {"unknown": 0, "negligible": 0, "low": 1, "medium": 0,
                                    "high": 2, "critical": 1}
    assert d["containers_running"] == 2 and d["count"] == 3
    assert [(v["id"], v["severity"]) for v in d["vulnerabilities"]] == [
        ("DEBIAN-CVE-2099-0003", "critical"), ("DSA-9001-1", "high"), ("DSA-9006-1", "low")]
    assert d["vulnerabilities"][0]["packages"] == [
        {"package": "libc6", "source": "glibc", "installed": "2.36-9+deb12u4", "fixed": None}]
    d = env["api"].ok("/api/v1/images/%s/vulnerabilities" % DIGEST_A, {"severity": "high"})
    assert d["count"] == 2
    assert env["api"].get("/api/v1/images/sha256:%s/vulnerabilities" % ("00" * 32)).status == 404


def test_summary(env, first_import):
    d = env["api"].ok("/api/v1/vulnerabilities")
    assert d["images"]["vulnerable"] >= 3
    assert d["by_severity"]["critical"]["images"] >= 1
    top = d["top_images"]
    assert top[0]["image_id"] == DIGEST_A and top[0]["containers_running"] == 2
    assert top[0]["score"] == 10 and top[1]["image_id"] == DIGEST_B
    assert [n["agent"] for n in d["top_nodes"]][:2] == ["vuln-node-1", "vuln-node-2"]


def open_findings(db):
    return db.query("SELECT a.name, f.container_id, f.severity, f.state FROM findings f "
                    "JOIN agents a ON a.id = f.agent_id WHERE f.rule = 'vulnerable_image' "
                    "ORDER BY a.name, f.container_id")


def test_finding(env, first_import):
    """At or above high (the default): image A (critical) on two
    containers, image B (high) on one; each opening is an event too."""
    db = env["db"]
    vt.wait_for(lambda: len(open_findings(db)) == 3, 20, what="the findings")
    assert open_findings(db) == [("vuln-node-1", CID_A, 5, "open"),
                                 ("vuln-node-1", CID_A2, 5, "open"),
                                 ("vuln-node-2", CID_B, 4, "open")]
    s = db.scalar("SELECT summary FROM findings WHERE container_id = %s", (CID_A,))
    assert "DEBIAN-CVE-2099-0003" in s and "worst critical" in s, s
    assert db.scalar("SELECT count(*) FROM events WHERE kind = 6 AND "
                     "details->>'rule' = 'vulnerable_image' AND details->>'action' = 'opened'") == 3
    d = env["api"].ok("/api/v1/findings", {"rule": "vulnerable_image"})
    assert len(d["findings"]) == 3


def test_container_stops(env, first_import):
    """A stopped container is not exposed now, still is over a window that
    covers when it ran, and its finding resolves."""
    db = env["db"]
    before = time.time() - 1
    with agent_conn(env, "vuln-node-1") as a:
        a.hello()
        a.batch(2, [vt.container_stopped_event(CID_A2, 0)])
    d = exposure(env, "CVE-2099-0001")
    assert [c["container_id"] for c in d["containers"]] == [CID_A]
    d = exposure(env, "CVE-2099-0001", **{"from": "%d" % (before - 60), "to": "%d" % before})
    assert sorted(c["container_id"] for c in d["containers"]) == sorted([CID_A, CID_A2])
    assert d["when"]["from"] and d["when"]["to"]
    d = exposure(env, "CVE-2099-0001", at="%d" % before)
    assert d["count"] == 2
    d = exposure(env, "CVE-2099-0001", at="%d" % (time.time() + 5))
    assert [c["container_id"] for c in d["containers"]] == [CID_A]
    vt.wait_for(lambda: ("vuln-node-1", CID_A2, 5, "resolved") in open_findings(db), 20,
                what="the finding of the stopped container to resolve")
    assert db.scalar("SELECT resolved_reason FROM findings WHERE container_id = %s",
                     (CID_A2,)) == "container not running"


def test_changed_and_withdrawn(env, first_import):
    """A second import: DSA-9001-1 now fixed in the installed version, the
    bash advisory withdrawn, a new critical one for openssl. Matches follow,
    and so does the API."""
    db = env["db"]
    second = [
        osv("DSA-9001-1", [aff("Debian:12", "openssl", ("introduced", "0"),
                               ("fixed", "3.0.11-1~deb12u1"), urgency="high")],
            modified="2024-02-01T00:00:00Z", aliases=["CVE-2099-0001"]),
        osv("DSA-9006-1", [aff("Debian:12", "bash", ("introduced", "0"),
                               ("fixed", "5.2.15-2+deb12u1"), urgency="low")],
            modified="2024-02-01T00:00:00Z", withdrawn="2024-02-01T00:00:00Z",
            aliases=["CVE-2099-0006"]),
        osv("DSA-9009-1", [aff("Debian:12", "openssl", ("introduced", "3.0.0"),
                               ("fixed", "3.0.12-1"), urgency="critical")],
            aliases=["CVE-2099-0009"]),
    ]
    out = import_docs(env, "second", second)
    assert "1 new, 2 changed" in out and "3 advisories" in out, out
    assert "removed" in out
    got = matches(db, DIGEST_A)
    assert [m[4] for m in got] == ["DEBIAN-CVE-2099-0003", "DSA-9009-1", "DSA-9009-1"]
    assert db.scalar("SELECT vuln_counts FROM images WHERE image_id = %s", (DIGEST_A,)) == \
        [0, 0, 0, 0, 0, 3]
    assert exposure(env, "CVE-2099-0001")["count"] == 0
    assert exposure(env, "CVE-2099-0006")["count"] == 0
    d = exposure(env, "CVE-2099-0009")
    assert [c["container_id"] for c in d["containers"]] == [CID_A]
    assert d["containers"][0]["packages"][0]["fixed"] == "3.0.12-1"
    # the image that arrived late was matched again too
    assert [m[4] for m in matches(db, "sha256:" + "f0" * 32)] == ["DSA-9009-1", "DSA-9009-1"]


# ---- containers without an image digest ---------------------------------------------------------

DIGEST_R = "rootfs:sha256:" + "d7" * 32
CID_R = "7" * 64
RUNC_PKGS = [("libexpat1", "2.5.0-4", "amd64", "expat", "2.5.0-4"),
             ("libssl3", "3.0.11-1~deb12u1", "amd64", "openssl", "3.0.11-1~deb12u1")]


def test_container_without_digest(env, first_import):
    """A runc container has no image digest: the agent names its image by
    what its root holds (rootfs:sha256:...) in an inventory that names the
    container. That link is what the exposure answers follow."""
    db = env["db"]
    with agent_conn(env, "vuln-node-6") as a:
        a.hello()
        c = vt.container_started_event(CID_R, "runc-app", image="")
        c.container_started.container.runtime = vt.pb()[0].RUNTIME_RUNC
        c.container_started.container.image_digest = ""
        a.batch(1, [c, vt.image_inventory_event(DIGEST_R, RUNC_PKGS, image="",
                                                container_id=CID_R)])
    wait_matched(db)
    assert db.scalar("SELECT coalesce(image_digest, '') FROM containers WHERE id = %s",
                     (CID_R,)) == ""
    assert env["api"].get("/api/v1/vulnerabilities/CVE-2099-0010").status == 404
    out = import_docs(env, "runc", [
        osv("DSA-9010-1", [aff("Debian:12", "expat", ("introduced", "0"),
                               ("fixed", "2.5.0-4+deb12u1"), urgency="high")],
            aliases=["CVE-2099-0010"]),
        osv("DSA-9011-1", [aff("Debian:12", "openssl", ("introduced", "0"),
                               ("fixed", "3.0.11-1~deb12u3"), urgency="medium")],
            aliases=["CVE-2099-0011"])])
    assert "2 new" in out, out
    d = exposure(env, "CVE-2099-0010")
    assert d["count"] == 1
    assert [(c["agent"], c["container_id"]) for c in d["containers"]] == \
        [("vuln-node-6", CID_R)]
    assert d["containers"][0]["packages"] == [
        {"package": "libexpat1", "source": "expat", "installed": "2.5.0-4",
         "fixed": "2.5.0-4+deb12u1", "advisory": "DSA-9010-1", "severity": "high"}]
    assert d["images"] == [{"image_id": DIGEST_R, "names": [], "containers": 1}]
    assert d["nodes"] == [{"agent": "vuln-node-6", "hostname": "itest-host", "containers": 1}]
    # over a window as well; an advisory on a package it shares with image
    # A lists both kinds of container
    d = exposure(env, "CVE-2099-0010", **{"from": "%d" % (time.time() - 3600)})
    assert [c["container_id"] for c in d["containers"]] == [CID_R]
    d = exposure(env, "CVE-2099-0011")
    got = {c["container_id"]: c for c in d["containers"]}
    assert CID_A in got and CID_R in got
    assert [p["package"] for p in got[CID_R]["packages"]] == ["libssl3"]
    assert [p["package"] for p in got[CID_A]["packages"]] == ["libssl3", "openssl"]
