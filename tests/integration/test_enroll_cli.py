# SPDX-License-Identifier: Apache-2.0
"""`vigil-collector enroll-token create|list|revoke` against a real
PostgreSQL: the token is printed once, on stdout, in its documented form;
only the SHA-256 of its secret is stored; `list` and every log line name a
token by its id and never show its secret or hash; bad options are refused
before anything is stored; revoking marks the row."""

import base64
import datetime
import hashlib
import os
import pwd
import re
import subprocess

import pytest

import vigiltest as vt

TOKEN_RE = re.compile(r"^vgj_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


def run(collector_bin, db, *args, env=None, config=None):
    """Run `vigil-collector ARGS...` for db; return the CompletedProcess."""
    conn = ["-c", config] if config else ["--db", db.conninfo]
    r = subprocess.run([collector_bin] + list(args) + conn, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60,
                       env=vt.sanitizer_env(env))
    assert not vt.sanitizer_reports(r.stderr), r.stderr
    return r


def create(collector_bin, db, *opts, env=None):
    """Create a token; return (token, id, secret, stderr)."""
    r = run(collector_bin, db, "enroll-token", "create", *opts, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout  # the token alone, once
    m = TOKEN_RE.match(lines[0])
    assert m, lines[0]
    return lines[0], m.group(1), m.group(2), r.stderr


def secret_bytes(secret):
    raw = base64.urlsafe_b64decode(secret + "=")
    assert len(raw) == 32
    return raw


def row(db, token_id):
    rows = db.query(
        "SELECT encode(secret_sha256, 'hex'), uses_max, uses, labels, name_pattern, "
        "created_by, extract(epoch FROM expires_at - now()), revoked_at IS NOT NULL "
        "FROM enroll_tokens WHERE id = %s", (token_id,))
    return rows[0] if rows else None


def assert_no_secret(text, token, secret):
    assert token not in text
    assert secret not in text
    assert secret[:20] not in text


def test_create_list_revoke(collector_bin, db):
    token, tid, secret, err = create(collector_bin, db, "--uses", "3", "--expires", "2h",
                                     "--labels", "env=prod,team=sre", "--name-pattern",
                                     "web-*")
    # stderr says what was made, by id; never the secret
    assert tid in err and "uses 3" in err and "web-*" in err
    assert_no_secret(err, token, secret)

    h, uses_max, uses, labels, pattern, by, ttl, revoked = row(db, tid)
    raw = secret_bytes(secret)
    assert h == hashlib.sha256(raw).hexdigest()  # the hash of the secret's bytes
    assert h != raw.hex() and secret not in h and h != hashlib.sha256(
        token.encode()).hexdigest()
    assert (uses_max, uses, labels, pattern, revoked) == (
        3, 0, {"env": "prod", "team": "sre"}, "web-*", False)
    assert by == (os.environ.get("SUDO_USER") or pwd.getpwuid(os.geteuid()).pw_name)
    assert 7190 < float(ttl) <= 7200

    r = run(collector_bin, db, "enroll-token", "list")
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith(tid)]
    assert len(line) == 1, r.stdout
    assert "active" in line[0] and "0/3" in line[0] and "web-*" in line[0]
    assert_no_secret(r.stdout + r.stderr, token, secret)
    assert h not in r.stdout + r.stderr

    r = run(collector_bin, db, "enroll-token", "revoke", tid)
    assert r.returncode == 0, r.stderr
    assert "revoked enrollment token %s" % tid in r.stderr
    assert row(db, tid)[7] is True
    r = run(collector_bin, db, "enroll-token", "list")
    assert "revoked" in [ln for ln in r.stdout.splitlines() if ln.startswith(tid)][0]
    # revoking twice: nothing left to revoke
    r = run(collector_bin, db, "enroll-token", "revoke", tid)
    assert r.returncode == 1 and "no unrevoked token" in r.stderr


def test_defaults_and_unlimited(collector_bin, db):
    _, tid, _, err = create(collector_bin, db)
    _, uses_max, uses, labels, pattern, _, ttl, _ = row(db, tid)
    assert (uses_max, uses, labels, pattern) == (1, 0, {}, None)
    assert 86390 < float(ttl) <= 86400
    assert "uses 1" in err

    _, tid2, _, err = create(collector_bin, db, "--unlimited", "--expires", "7d")
    _, uses_max, _, _, _, _, ttl, _ = row(db, tid2)
    assert uses_max is None and 7 * 86400 - 10 < float(ttl) <= 7 * 86400
    assert "uses unlimited" in err
    r = run(collector_bin, db, "enroll-token", "list")
    assert "0/unlimited" in [ln for ln in r.stdout.splitlines() if ln.startswith(tid2)][0]
    assert tid != tid2


def test_created_by_sudo_user_and_config_file(collector_bin, db, tmp_path):
    env = dict(os.environ, SUDO_USER="alice")
    _, tid, _, _ = create(collector_bin, db, env=env)
    assert row(db, tid)[5] == "alice"
    # -c FILE names the database as well as --db
    cfg = tmp_path / "collector.conf"
    cfg.write_text("db = %s\n" % db.conninfo)
    r = run(collector_bin, db, "enroll-token", "list", config=str(cfg))
    assert r.returncode == 0, r.stderr
    assert tid in r.stdout


def test_status_expired_and_used_up(collector_bin, db):
    _, expired, _, _ = create(collector_bin, db)
    _, used, _, _ = create(collector_bin, db, "--uses", "2")
    db.query("UPDATE enroll_tokens SET expires_at = now() - interval '1 minute' "
             "WHERE id = %s", (expired,))
    db.query("UPDATE enroll_tokens SET uses = 2 WHERE id = %s", (used,))
    r = run(collector_bin, db, "enroll-token", "list")
    status = {ln.split()[0]: ln.split()[1] for ln in r.stdout.splitlines()[1:]}
    assert status[expired] == "expired"
    assert status[used] == "used"  # "used up"


def test_revoke_by_whole_token(collector_bin, db):
    token, tid, secret, _ = create(collector_bin, db)
    r = run(collector_bin, db, "enroll-token", "revoke", token)
    assert r.returncode == 0, r.stderr
    assert_no_secret(r.stdout + r.stderr, token, secret)
    assert row(db, tid)[7] is True


@pytest.mark.parametrize("opts", [
    ["--uses", "0"], ["--uses", "x"], ["--uses", "-1"], ["--uses", "2", "--unlimited"],
    ["--uses", "1000001"], ["--expires", "5y"], ["--expires", "0h"], ["--expires", "400d"],
    ["--expires", "h"], ["--labels", "a"], ["--labels", "a=b,a=c"], ["--labels", "a=b,"],
    ["--labels", "bad key=v"], ["--labels", "=v"], ["--labels", "k=\x01"],
    ["--name-pattern", ""], ["--name-pattern", "a b"],
])
def test_create_refuses_bad_options(collector_bin, db, opts):
    r = run(collector_bin, db, "enroll-token", "create", *opts)
    assert r.returncode == 2, (opts, r.stdout, r.stderr)
    assert r.stdout == ""
    assert db.scalar("SELECT count(*) FROM enroll_tokens") == 0


@pytest.mark.parametrize("args", [
    ["enroll-token", "list", "--uses", "3"],
    ["enroll-token", "revoke", "0123456789abcdef", "--labels", "a=b"],
    ["enroll-token", "list", "--expires", "1h"],
    ["token", "list", "--uses", "3"],
    ["enroll-token"],
    ["enroll-token", "show"],
    ["enroll-token", "create", "extra"],
    ["enroll-token", "revoke"],
    ["enroll-token", "revoke", "NOTHEX"],
    ["enroll-token", "revoke", "0123456789ABCDEF"],
])
def test_usage_errors(collector_bin, db, args):
    r = run(collector_bin, db, *args)
    assert r.returncode == 2, (args, r.stderr)


def test_revoke_unknown(collector_bin, db):
    r = run(collector_bin, db, "enroll-token", "revoke", "0123456789abcdef")
    assert r.returncode == 1 and "no unrevoked token" in r.stderr


def test_tokens_are_unique(collector_bin, db):
    seen = set()
    for _ in range(5):
        token, tid, secret, _ = create(collector_bin, db, "--expires", "10m")
        assert tid not in seen
        seen.add(tid)
    assert db.scalar("SELECT count(DISTINCT secret_sha256) FROM enroll_tokens") == 5
    now = datetime.datetime.now(datetime.timezone.utc)
    exp = db.scalar("SELECT min(expires_at) FROM enroll_tokens")
    assert datetime.timedelta(minutes=9) < exp - now <= datetime.timedelta(minutes=10)
