# SPDX-License-Identifier: Apache-2.0
"""`vigil-collector advisories import` against a real PostgreSQL: OSV
advisories of Debian, Ubuntu and Alpine written by the test as files, a
directory tree and an all.zip archive; the rows they become; a second
import that changes nothing; a changed advisory; and bad input (malformed
JSON, an unknown ecosystem, a version that does not parse, a missing field,
oversized documents and archive members), each refused with the file, the
member and the field named, and nothing half-imported."""

import copy
import json
import os
import re
import subprocess
import zipfile

import pytest

import vigiltest as vt

MODIFIED = "2024-01-15T10:00:00Z"


def osv(id_, affected, **kw):
    doc = {"schema_version": "1.6.0", "id": id_, "modified": MODIFIED,
           "published": "2023-12-01T00:00:00Z", "summary": "summary of " + id_,
           "details": "details of " + id_, "affected": affected}
    doc.update(kw)
    return doc


def eco_range(*events):
    return {"type": "ECOSYSTEM", "events": [dict([e]) for e in events]}


def affected(eco, name, *ranges, **kw):
    a = {"package": {"ecosystem": eco, "name": name}, "ranges": list(ranges)}
    a.update(kw)
    return a


DEBIAN = [
    osv("DSA-5001-1", [affected("Debian:12", "openssl",
                                eco_range(("introduced", "0"),
                                          ("fixed", "3.0.11-1~deb12u2")),
                                ecosystem_specific={"urgency": "high"})],
        aliases=["CVE-2023-0001"]),
    osv("DEBIAN-CVE-2023-0002", [affected("Debian:12", "curl",
                                          eco_range(("introduced", "0")),
                                          ecosystem_specific={"urgency": "unimportant"})],
        upstream=["CVE-2023-0002"]),
    # listed versions only: one exact interval each
    osv("DSA-5002-1", [{"package": {"ecosystem": "Debian:11", "name": "zlib"},
                        "versions": ["1:1.2.11.dfsg-2", "1:1.2.11.dfsg-2+deb11u1"]}],
        aliases=["CVE-2022-37434"]),
]
UBUNTU = osv("UBUNTU-CVE-2023-0003", [
    affected("Ubuntu:22.04:LTS", "glibc",
             eco_range(("introduced", "0"), ("fixed", "2.35-0ubuntu3.5"))),
    affected("Ubuntu:Pro:18.04:LTS", "glibc",
             eco_range(("introduced", "2.27-3ubuntu1"), ("last_affected", "2.27-3ubuntu1.6"))),
    # a git range only: ignored with a reason, the advisory is kept
    {"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "glibc-git"},
     "ranges": [{"type": "GIT", "repo": "https://example.invalid/glibc",
                 "events": [{"introduced": "0"}]}]},
], severity=[{"type": "Ubuntu", "score": "medium"},
             {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    upstream=["CVE-2023-0003"])
ALPINE = [
    # two intervals in one range, events out of order
    osv("ALPINE-CVE-2023-0004", [affected(
        "Alpine:v3.19", "busybox",
        eco_range(("fixed", "1.37.0-r2"), ("introduced", "0"), ("fixed", "1.36.1-r16"),
                  ("introduced", "1.37.0-r0")))], aliases=["CVE-2023-0004"]),
    osv("ALPINE-CVE-2023-0005", [affected("Alpine:v3.19", "musl",
                                          eco_range(("introduced", "1.2.4_git20230717-r0"),
                                                    ("fixed", "1.2.4_git20230717-r4")))]),
]
SKIPPED = [
    osv("NOTHING-1", []),
    osv("GITONLY-1", [{"package": {"ecosystem": "Debian:12", "name": "x"},
                       "ranges": [{"type": "GIT", "repo": "r", "events": [{"introduced": "0"}]}]}]),
]


def write(path, doc, indent=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=indent)


def make_zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data if isinstance(data, (bytes, str)) else json.dumps(data))


def run_import(collector_bin, db, *paths):
    r = subprocess.run([collector_bin, "advisories", "import"] + [str(p) for p in paths] +
                       ["--db", db.conninfo, "--log-level", "warn"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                       env=vt.sanitizer_env())
    assert not vt.sanitizer_reports(r.stderr), r.stderr
    return r


def counts(out):
    m = re.search(r"(\d+) read .*: (\d+) new, (\d+) changed, (\d+) unchanged, (\d+) skipped; "
                  r"(\d+) affected ranges written", out)
    assert m, out
    keys = ("read", "new", "changed", "unchanged", "skipped", "ranges")
    return dict(zip(keys, map(int, m.groups())))


def snapshot(db):
    return (db.query("SELECT id, content_sha256, changed_at, ecosystems, aliases, severity "
                     "FROM advisories ORDER BY id"),
            db.query("SELECT id, advisory_id, ecosystem, package, introduced, fixed, "
                     "last_affected, severity FROM advisory_affected ORDER BY id"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A directory of Debian and Ubuntu files (nested, with a file that is
    not JSON), and an Alpine all.zip."""
    root = tmp_path_factory.mktemp("osv")
    d = root / "debian"
    for i, doc in enumerate(DEBIAN):
        write(str(d / ("nested" if i else "") / (doc["id"] + ".json")), doc)
    (d / "README.txt").write_text("not an advisory")
    write(str(root / "ubuntu" / "UBUNTU-CVE-2023-0003.json"), UBUNTU)
    for doc in SKIPPED:
        write(str(root / "skipped" / (doc["id"] + ".json")), doc)
    make_zip(str(root / "all.zip"), [("ALPINE/%s.json" % doc["id"], doc) for doc in ALPINE] +
             [("ALPINE/", b""), ("ALPINE/LICENSE", b"text")])
    return root


@pytest.fixture(scope="module")
def imported(collector_bin, module_db, tree):
    paths = [tree / "debian", tree / "ubuntu" / "UBUNTU-CVE-2023-0003.json",
             tree / "skipped", tree / "all.zip"]
    r = run_import(collector_bin, module_db, *paths)
    assert r.returncode == 0, r.stderr
    return r.stdout, paths


def test_first_import(imported, module_db):
    out, _ = imported
    c = counts(out)
    assert c == {"read": 8, "new": 6, "changed": 0, "unchanged": 0, "skipped": 2,
                 "ranges": 9}, out
    assert "skipped 1: no affected packages (first: " in out
    assert "NOTHING-1" in out and "GITONLY-1" in out
    assert "ignored 2 affected entries: no ECOSYSTEM range or versions" in out
    assert "passed over 1 archive members: not *.json" in out
    rows = {r[0]: r[1:] for r in module_db.query(
        "SELECT id, ecosystems, aliases, severity, summary, source, published IS NOT NULL "
        "FROM advisories")}
    assert set(rows) == {"DSA-5001-1", "DEBIAN-CVE-2023-0002", "DSA-5002-1",
                         "UBUNTU-CVE-2023-0003", "ALPINE-CVE-2023-0004",
                         "ALPINE-CVE-2023-0005"}
    assert rows["DSA-5001-1"][:3] == (["Debian:12"], ["CVE-2023-0001"], 4)
    assert rows["DEBIAN-CVE-2023-0002"][:3] == (["Debian:12"], ["CVE-2023-0002"], 1)
    assert rows["UBUNTU-CVE-2023-0003"][:3] == (
        ["Ubuntu:22.04:LTS", "Ubuntu:Pro:18.04:LTS"], ["CVE-2023-0003"], 3)
    assert rows["ALPINE-CVE-2023-0004"][2] == 0  # no severity named
    assert rows["DSA-5001-1"][3] == "summary of DSA-5001-1"
    assert rows["ALPINE-CVE-2023-0004"][4].endswith("all.zip (member ALPINE/ALPINE-CVE-2023-0004.json)")
    assert all(r[5] for r in rows.values())


def test_ranges(imported, module_db):
    rows = module_db.query(
        "SELECT advisory_id, ecosystem, distro, release, package, introduced, fixed, "
        "last_affected, severity FROM advisory_affected ORDER BY advisory_id, introduced "
        "NULLS FIRST, last_affected")
    assert rows == [
        ("ALPINE-CVE-2023-0004", "Alpine:v3.19", "alpine", "3.19", "busybox", None,
         "1.36.1-r16", None, 0),
        ("ALPINE-CVE-2023-0004", "Alpine:v3.19", "alpine", "3.19", "busybox", "1.37.0-r0",
         "1.37.0-r2", None, 0),
        ("ALPINE-CVE-2023-0005", "Alpine:v3.19", "alpine", "3.19", "musl",
         "1.2.4_git20230717-r0", "1.2.4_git20230717-r4", None, 0),
        ("DEBIAN-CVE-2023-0002", "Debian:12", "debian", "12", "curl", None, None, None, 1),
        ("DSA-5001-1", "Debian:12", "debian", "12", "openssl", None, "3.0.11-1~deb12u2",
         None, 4),
        ("DSA-5002-1", "Debian:11", "debian", "11", "zlib", "1:1.2.11.dfsg-2", None,
         "1:1.2.11.dfsg-2", 0),
        ("DSA-5002-1", "Debian:11", "debian", "11", "zlib", "1:1.2.11.dfsg-2+deb11u1", None,
         "1:1.2.11.dfsg-2+deb11u1", 0),
        ("UBUNTU-CVE-2023-0003", "Ubuntu:22.04:LTS", "ubuntu", "22.04", "glibc", None,
         "2.35-0ubuntu3.5", None, 3),
        ("UBUNTU-CVE-2023-0003", "Ubuntu:Pro:18.04:LTS", "ubuntu", "18.04", "glibc",
         "2.27-3ubuntu1", None, "2.27-3ubuntu1.6", 3),
    ]
    # the lookups the indexes serve
    assert module_db.query(
        "SELECT advisory_id FROM advisory_affected WHERE ecosystem = 'Debian:12' "
        "AND package = 'openssl'") == [("DSA-5001-1",)]
    assert module_db.query(
        "SELECT id FROM advisories WHERE aliases @> ARRAY['CVE-2023-0003']") == \
        [("UBUNTU-CVE-2023-0003",)]


def test_reimport_is_idempotent(imported, collector_bin, module_db, tree):
    before = snapshot(module_db)
    _, paths = imported
    r = run_import(collector_bin, module_db, *paths)
    assert r.returncode == 0, r.stderr
    assert counts(r.stdout) == {"read": 8, "new": 0, "changed": 0, "unchanged": 6,
                                "skipped": 2, "ranges": 0}
    assert snapshot(module_db) == before
    # the same documents formatted anew are not a change
    write(str(tree / "ubuntu" / "UBUNTU-CVE-2023-0003.json"), UBUNTU, indent=4)
    r = run_import(collector_bin, module_db, tree / "ubuntu")
    assert counts(r.stdout)["unchanged"] == 1, r.stdout
    assert snapshot(module_db) == before


def test_changed_advisory(imported, collector_bin, module_db, tmp_path):
    doc = copy.deepcopy(DEBIAN[0])
    doc["modified"] = "2024-02-01T00:00:00Z"
    doc["affected"][0]["ranges"][0]["events"][1]["fixed"] = "3.0.11-1~deb12u3"
    doc["affected"].append(affected("Debian:12", "openssl1.1",
                                    eco_range(("introduced", "0"), ("fixed", "1.1.1w-1"))))
    write(str(tmp_path / "dsa.json"), doc)
    # read twice in one import: counted once, the last read kept
    write(str(tmp_path / "again" / "dsa.json"), doc)
    others = module_db.query("SELECT id FROM advisory_affected WHERE advisory_id <> "
                             "'DSA-5001-1' ORDER BY id")
    r = run_import(collector_bin, module_db, tmp_path / "dsa.json", tmp_path / "again")
    assert r.returncode == 0, r.stderr
    assert counts(r.stdout) == {"read": 2, "new": 0, "changed": 1, "unchanged": 0,
                                "skipped": 0, "ranges": 2}
    assert "repeated 1: ids read more than once" in r.stdout
    assert module_db.query(
        "SELECT package, fixed FROM advisory_affected WHERE advisory_id = 'DSA-5001-1' "
        "ORDER BY package") == [("openssl", "3.0.11-1~deb12u3"), ("openssl1.1", "1.1.1w-1")]
    assert module_db.scalar("SELECT modified FROM advisories WHERE id = 'DSA-5001-1'") \
        .isoformat().startswith("2024-02-01")
    # the other advisories' rows were not rewritten
    assert module_db.query("SELECT id FROM advisory_affected WHERE advisory_id <> "
                           "'DSA-5001-1' ORDER BY id") == others


GOOD_NEW = osv("DSA-9999-1", [affected("Debian:12", "bash",
                                       eco_range(("introduced", "0"), ("fixed", "5.2.15-2+b7")))])


def bad_cases(tmp):
    """(paths, words the error must hold) of each bad import; each also
    names a good new advisory first, which must not be imported."""
    cases = []

    def case(name, content, *words, zip_members=None):
        path = tmp / name
        if zip_members is not None:
            make_zip(str(path), zip_members)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        cases.append((path, words))

    case("malformed.json", '{"id": "X-1", "modified": ', "malformed.json: (document): "
         "malformed JSON at line 1")
    bad = osv("PYPI-1", [affected("PyPI", "requests", eco_range(("introduced", "0")))])
    case("unknown.json", json.dumps(bad), "unknown.json: affected[0].package.ecosystem: "
         "unknown ecosystem 'PyPI'")
    bad = osv("ALP-1", [affected("Alpine:3.19", "x", eco_range(("introduced", "0")))])
    case("alpine-eco.json", json.dumps(bad), "affected[0].package.ecosystem: unknown "
         "ecosystem 'Alpine:3.19'")
    bad = osv("DSA-1", [affected("Debian:12", "x", eco_range(("introduced", "0"),
                                                             ("fixed", "1.0-")))])
    case("version.json", json.dumps(bad), "version.json: affected[0].ranges[0].events[1]."
         "fixed: version '1.0-' does not parse by dpkg rules: revision is empty")
    bad = osv("ALP-2", [affected("Alpine:v3.19", "x", eco_range(("introduced", "1.0_foo")))])
    case("apkver.json", json.dumps(bad), "affected[0].ranges[0].events[0].introduced: "
         "version '1.0_foo' does not parse by apk rules")
    bad = osv("DSA-2", [{"package": {"ecosystem": "Debian:12", "name": "x"},
                         "versions": ["1.0", "x y"]}])
    case("versions.json", json.dumps(bad), "affected[0].versions[1]: version 'x y'")
    bad = osv("DSA-3", [])
    del bad["modified"]
    case("nomodified.json", json.dumps(bad), "nomodified.json: modified: is missing")
    bad = osv("DSA-4", [], published="yesterday")
    case("time.json", json.dumps(bad), "published: 'yesterday' is not an RFC 3339 time")
    case("notobject.json", "[1, 2]", "notobject.json: (document): is not a JSON object")
    huge = osv("DSA-5", [], summary="x" * (5 * 1024 * 1024))
    case("huge.json", json.dumps(huge), "huge.json: ", "more than the 4194304 bytes")
    case("member.zip", None, "member.zip (member a/bad.json): (document): malformed JSON",
         zip_members=[("a/good.json", GOOD_NEW), ("a/bad.json", b"{nope")])
    case("bigmember.zip", None, "bigmember.zip (member big.json): ",
         "bytes uncompressed, more than the 4194304",
         zip_members=[("big.json", json.dumps(huge))])
    case("notzip.zip", "PK garbage", "notzip.zip: not a readable zip archive")
    return cases


def test_bad_input_imports_nothing(imported, collector_bin, module_db, tmp_path):
    before = snapshot(module_db)
    good = tmp_path / "good.json"
    write(str(good), GOOD_NEW)
    for path, words in bad_cases(tmp_path):
        r = run_import(collector_bin, module_db, good, path)
        assert r.returncode == 1, (path, r.stdout, r.stderr)
        for w in words:
            assert w in r.stderr, (path, w, r.stderr)
        assert "nothing imported" in r.stderr
        assert r.stdout == ""
        assert snapshot(module_db) == before, path
    assert module_db.scalar("SELECT count(*) FROM advisories WHERE id = 'DSA-9999-1'") == 0
    # and the good one alone goes in
    r = run_import(collector_bin, module_db, good)
    assert counts(r.stdout)["new"] == 1, r.stderr


def test_usage(collector_bin, module_db, tmp_path):
    r = run_import(collector_bin, module_db)
    assert r.returncode == 2 and "advisories import PATH" in r.stderr
    r = run_import(collector_bin, module_db, tmp_path / "missing.json")
    assert r.returncode == 1 and "missing.json: cannot stat" in r.stderr
