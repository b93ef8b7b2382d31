# SPDX-License-Identifier: Apache-2.0
"""The status page's sessions against a real collector and PostgreSQL: the
cookie carries a random session id (never the API token), stored only as
its SHA-256 with an expiry, an idle timeout and the token it came from;
signing out ends the session on the server, so the old cookie replayed is
refused; revoking the token ends its sessions at once, token cache or not;
a session ends when unused for http_session_idle and after
http_session_lifetime however much it is used. Two collectors share the
database, so a session ended through one is refused by the other."""

import hashlib
import re
import time

import pytest

import apitest as at
import vigiltest as vt


@pytest.fixture(scope="module")
def env(module_collector_factory, module_db, pki, collector_bin):
    port_a, port_b = vt.free_port(), vt.free_port()
    # A: default session settings, and a long token cache: a revoked
    # bearer token is still taken from the cache here for a minute.
    coll_a = module_collector_factory(module_db, flags={
        "--http-listen": "127.0.0.1:%d" % port_a,
        "--http-rate-limit": "0",
        "--http-token-cache-ttl": "60s",
    })
    # B: short sessions, for the idle timeout and the lifetime.
    coll_b = module_collector_factory(module_db, flags={
        "--http-listen": "127.0.0.1:%d" % port_b,
        "--http-rate-limit": "0",
        "--http-session-lifetime": "5s",
        "--http-session-idle": "2s",
    })
    yield {"a": at.Api(port_a, pki), "b": at.Api(port_b, pki), "port_a": port_a,
           "db": module_db, "bin": collector_bin, "coll_a": coll_a, "coll_b": coll_b}


def token(env, name, role="viewer", expires=None):
    return at.create_token(env["bin"], env["db"], name, role, expires=expires)


def signin(api, tok):
    r = api.signin(tok)
    assert r.status == 303, r
    return r.cookie()[0]


def sha256(s):
    return hashlib.sha256(s.encode()).hexdigest()


def whoami(api, cookie):
    return api.get("/api/v1/whoami", token="", cookie=cookie)


def assert_refused(api, cookie):
    """COOKIE is refused: 401 for the API, the sign-in page for the page,
    and the cookie is cleared."""
    r = whoami(api, cookie)
    assert r.status == 401 and r.json()["error"] == "unauthorized", r
    v, attrs = r.cookie()
    assert v == "" and attrs["max-age"] == "0"
    r = api.get("/", token="", cookie=cookie)
    assert r.status == 401 and b"Sign in again." in r.body, r


def test_cookie_is_an_opaque_session_id(env):
    a, db = env["a"], env["db"]
    tok = token(env, "sess-opaque")
    r = a.signin(tok)
    assert r.status == 303, r
    raw = r.header_all("set-cookie")
    assert len(raw) == 1 and raw[0].startswith("__Host-vigil_session="), raw
    cookie, attrs = r.cookie()
    # __Host-: Secure, Path=/ and no Domain, or a browser drops it
    assert attrs == {"path": "/", "secure": "", "httponly": "", "samesite": "Strict"}, attrs
    assert re.fullmatch(r"vgs_[0-9a-f]{64}", cookie), cookie
    assert tok not in raw[0] and tok[4:] not in cookie
    assert whoami(a, cookie).json() == {"principal": "token:sess-opaque", "role": "viewer"}
    # the database holds the SHA-256 of the id, the token's row, an expiry
    # (12 h by default) and the idle timeout (30 min by default)
    rows = db.query(
        "SELECT s.hash, t.name, extract(epoch FROM s.expires_at - s.created_at), s.idle_ms "
        "FROM api_sessions s JOIN api_tokens t ON t.id = s.token_id WHERE t.name = %s",
        ("sess-opaque",))
    assert len(rows) == 1, rows
    h, name, life, idle = rows[0]
    assert h == sha256(cookie) and name == "sess-opaque"
    assert abs(float(life) - 12 * 3600) < 5 and idle == 30 * 60 * 1000
    # neither the id nor the token is stored in clear anywhere we write
    for table in ("api_sessions", "api_tokens", "audit_log"):
        n = db.scalar("SELECT count(*) FROM %s x WHERE row_to_json(x)::text LIKE %%s "
                      "OR row_to_json(x)::text LIKE %%s" % table,
                      ("%" + cookie[4:] + "%", "%" + tok[4:] + "%"))
        assert n == 0, table
    # each sign-in is a new session with a new id
    again = signin(a, tok)
    assert again != cookie and whoami(a, again).status == 200
    # the token is no session id, and an id nobody was given is refused
    assert whoami(a, tok).status == 401
    assert_refused(a, "vgs_" + "0" * 64)
    assert_refused(a, "vgs_" + sha256(cookie))
    # a session started on one collector is good on another of the database
    assert whoami(env["b"], cookie).status == 200
    # a bearer token is still a bearer token
    assert a.get("/api/v1/whoami", token=tok).status == 200


def test_signout_ends_the_session_on_the_server(env):
    a, b, db = env["a"], env["b"], env["db"]
    tok = token(env, "sess-signout")
    cookie = signin(a, tok)
    other = signin(a, tok)
    assert whoami(a, cookie).status == 200
    origin = {"Origin": "https://localhost:%d" % env["port_a"]}
    r = a.signout(cookie=cookie, headers=origin)
    assert r.status == 204, r
    v, attrs = r.cookie()
    assert v == "" and attrs["max-age"] == "0" and attrs["path"] == "/"
    assert db.scalar("SELECT count(*) FROM api_sessions WHERE hash = %s",
                     (sha256(cookie),)) == 0
    # the old cookie, replayed, is refused here and on the other collector
    assert_refused(a, cookie)
    assert_refused(b, cookie)
    # signing out again is harmless; the token's other session goes on
    assert a.signout(cookie=cookie, headers=origin).status == 204
    assert whoami(a, other).status == 200
    # signing out from another origin is refused and ends nothing
    r = a.signout(cookie=other, headers={"Origin": "https://evil.example"})
    assert r.status == 403 and r.cookie() is None
    assert whoami(a, other).status == 200
    # a signed-out session's id cannot be used to sign in either
    assert a.signin(cookie).status == 401


def test_revoking_the_token_ends_its_sessions_at_once(env):
    a, b, db = env["a"], env["b"], env["db"]
    tok = token(env, "sess-doomed")
    keep = token(env, "sess-kept")
    c1, c2, c3 = signin(a, tok), signin(b, tok), signin(a, keep)
    # the bearer token is in collector A's token cache (60 s) now
    assert a.get("/api/v1/whoami", token=tok).status == 200
    for c in (c1, c2, c3):
        assert whoami(a, c).status == 200
    r = at.token_cmd(env["bin"], db, "revoke", "sess-doomed")
    assert r.returncode == 0, r.stderr
    assert "2 status page session(s) ended" in r.stderr, r.stderr
    assert db.scalar("SELECT count(*) FROM api_sessions s JOIN api_tokens t "
                     "ON t.id = s.token_id WHERE t.name = 'sess-doomed'") == 0
    # no waiting: the next request with either cookie is refused, on both
    # collectors, though the bearer token is still cached on A
    for c in (c1, c2):
        assert_refused(a, c)
        assert_refused(b, c)
    assert a.get("/api/v1/whoami", token=tok).status == 200  # the cache, by design
    # signing in with the revoked token asks the database, not the cache
    r = a.signin(tok)
    assert r.status == 401 and r.cookie() is None
    # another token's session goes on
    assert whoami(a, c3).status == 200


def test_a_revoked_or_deleted_token_ends_sessions_whatever_the_rows(env):
    """A revocation written by anything else than `token revoke` (a row's
    revoked_at set, a token past its expiry) is checked on each request; a
    token's row deleted takes its sessions with it (ON DELETE CASCADE)."""
    a, db = env["a"], env["db"]
    t1, t2 = token(env, "sess-rowrevoked"), token(env, "sess-rowdeleted")
    c1, c2 = signin(a, t1), signin(a, t2)
    assert whoami(a, c1).status == 200 and whoami(a, c2).status == 200
    db.query("UPDATE api_tokens SET revoked_at = now() WHERE name = 'sess-rowrevoked' "
             "RETURNING 1")
    assert_refused(a, c1)
    db.query("DELETE FROM api_tokens WHERE name = 'sess-rowdeleted' RETURNING 1")
    assert db.scalar("SELECT count(*) FROM api_sessions WHERE hash = %s", (sha256(c2),)) == 0
    assert_refused(a, c2)
    # a token that expires takes its sessions along, which never outlive it
    short = token(env, "sess-expiring", expires="4s")
    expiry = time.monotonic() + 4
    c3 = signin(a, short)
    assert db.scalar("SELECT s.expires_at <= t.expires_at FROM api_sessions s "
                     "JOIN api_tokens t ON t.id = s.token_id WHERE s.hash = %s",
                     (sha256(c3),)) is True
    assert whoami(a, c3).status == 200
    time.sleep(max(0, expiry + 0.5 - time.monotonic()))
    assert_refused(a, c3)


@pytest.mark.serial
def test_idle_timeout(env):
    """Collector B: http_session_idle 2s. A session in use lives on; left
    alone for longer than that, it has ended."""
    b, db = env["b"], env["db"]
    tok = token(env, "sess-idle")
    cookie = signin(b, tok)
    assert db.scalar("SELECT idle_ms FROM api_sessions WHERE hash = %s",
                     (sha256(cookie),)) == 2000
    start = time.monotonic()
    while time.monotonic() - start < 3.5:  # longer than the idle timeout
        assert whoami(b, cookie).status == 200
        time.sleep(0.4)
    time.sleep(2.3)
    assert_refused(b, cookie)
    # signing in again starts a new session
    assert whoami(b, signin(b, tok)).status == 200


@pytest.mark.serial
def test_lifetime_ends_a_session_in_use(env):
    """Collector B: http_session_lifetime 5s. Used every 0.4 s, for longer
    than its idle timeout (2 s), the session still ends 5 s after signing
    in."""
    b, db = env["b"], env["db"]
    tok = token(env, "sess-life")
    cookie = signin(b, tok)
    signed_in = time.monotonic()
    life = db.scalar("SELECT extract(epoch FROM expires_at - created_at) FROM api_sessions "
                     "WHERE hash = %s", (sha256(cookie),))
    assert abs(float(life) - 5) < 0.5
    while time.monotonic() - signed_in < 3.0:
        assert whoami(b, cookie).status == 200
        time.sleep(0.4)
    while time.monotonic() - signed_in < 5.5:
        if whoami(b, cookie).status == 401:
            break
        time.sleep(0.2)
    assert_refused(b, cookie)


def test_ended_sessions_are_deleted(env):
    """Rows of ended sessions do not pile up: the next sign-in deletes
    them."""
    b, db = env["b"], env["db"]
    tok = token(env, "sess-sweep")
    old = signin(b, tok)
    time.sleep(2.3)  # past collector B's idle timeout
    assert db.scalar("SELECT count(*) FROM api_sessions WHERE hash = %s", (sha256(old),)) == 1
    signin(b, tok)
    assert db.scalar("SELECT count(*) FROM api_sessions WHERE hash = %s", (sha256(old),)) == 0
    assert db.scalar("SELECT count(*) FROM api_sessions WHERE expires_at <= now() OR "
                     "last_used + idle_ms * interval '1 millisecond' <= now()") == 0
