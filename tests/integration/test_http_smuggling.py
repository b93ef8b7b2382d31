# SPDX-License-Identifier: Apache-2.0
"""Request smuggling and malformed heads against the real collector over
TLS: a head that parsers could read differently (a NUL or other control
byte, bare LF or CR line ends, obs-fold, blanks before a header's colon,
two different Content-Length values, any Transfer-Encoding) is answered
400 and the connection closed before evhttp sees it, so nothing behind it
is answered; well-formed pipelined requests are all served."""

import re

import pytest

import apitest as at
import vigiltest as vt


@pytest.fixture(scope="module")
def env(module_collector_factory, module_db, pki, collector_bin):
    hport = vt.free_port()
    coll = module_collector_factory(module_db, flags={
        "--http-listen": "127.0.0.1:%d" % hport,
        "--http-request-timeout": "2s",
        "--http-rate-limit": "0",
    })
    tok = at.create_token(collector_bin, module_db, "smug-viewer", "viewer")
    yield {"coll": coll, "port": hport, "pki": pki, "token": tok.encode(),
           "anon": at.Api(hport, pki)}


def exchange(env, data):
    """Send DATA on a new TLS connection; the plaintext until it closes."""
    s = at.tls_socket(env["port"], env["pki"])
    try:
        s.sendall(data)
        return at.read_all(s, 10)
    finally:
        s.close()


def statuses(out):
    return [int(x) for x in re.findall(rb"(?:^|\n|\})HTTP/1\.1 (\d{3}) ", out)]


def whoami(env, close=True):
    return (b"GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
            env["token"] + b"\r\n" + (b"Connection: close\r\n" if close else b"") + b"\r\n")


def assert_refused(out, reason):
    """OUT is one 400 naming REASON, with our headers, and nothing after it."""
    assert statuses(out) == [400], out[:400]
    head, _, body = out.partition(b"\r\n\r\n")
    h = {k.strip().lower(): v.strip() for k, _, v in
         (ln.partition(b":") for ln in head.split(b"\r\n")[1:])}
    assert h[b"connection"] == b"close"
    assert h[b"content-type"] == b"application/json"
    assert h[b"x-content-type-options"] == b"nosniff"
    assert int(h[b"content-length"]) == len(body)
    assert ("bad request head: " + reason).encode() in body, body


def test_token_with_nul_and_junk_is_refused(env):
    """A valid token followed by a NUL and junk does not authenticate."""
    req = (b"GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
           env["token"] + b"\x00junk\r\nConnection: close\r\n\r\n")
    assert_refused(exchange(env, req), "control byte in a header value")
    # the same token without the junk is served
    assert statuses(exchange(env, whoami(env))) == [200]


SMUGGLED = {
    "doubled_content_length": (
        lambda tail: b"POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        b"Content-Length: %d\r\n\r\n" % len(tail) + tail,
        "two different Content-Length values"),
    "spaced_transfer_encoding": (
        lambda tail: b"POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + tail,
        "whitespace between header name and colon"),
    "content_length_and_transfer_encoding": (
        lambda tail: b"POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + tail,
        "Content-Length with Transfer-Encoding"),
    "transfer_encoding": (
        lambda tail: b"POST /api/v1/session HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + tail,
        "Transfer-Encoding not accepted"),
    "bare_lf": (
        lambda tail: b"GET /healthz HTTP/1.1\nHost: x\n\n" + tail,
        "bare LF line end"),
    "bare_lf_in_headers": (
        lambda tail: b"GET /healthz HTTP/1.1\r\nHost: x\nX: y\r\n\r\n" + tail,
        "bare LF line end"),
    "bare_cr": (
        lambda tail: b"GET /healthz HTTP/1.1\r\nHost: x\rX: y\r\n\r\n" + tail,
        "CR not followed by LF"),
    "obs_fold": (
        lambda tail: b"GET /healthz HTTP/1.1\r\nHost: x\r\n Content-Length: 9\r\n\r\n" + tail,
        "header line starting with whitespace (obs-fold)"),
    "header_name_not_a_token": (
        lambda tail: b"GET /healthz HTTP/1.1\r\nHost: x\r\nX[1]: y\r\n\r\n" + tail,
        "header name not a token"),
}


@pytest.mark.parametrize("case", sorted(SMUGGLED))
def test_smuggled_request_is_not_answered(env, case):
    """One 400 and the connection closed: the request behind is not answered."""
    make, reason = SMUGGLED[case]
    assert_refused(exchange(env, make(whoami(env))), reason)
    assert env["anon"].get("/healthz").status == 200


@pytest.mark.parametrize("case", ["doubled_content_length", "bare_lf"])
def test_bad_head_after_a_good_request(env, case):
    """Pipelined behind a good request: the good one is answered, then 400."""
    make, reason = SMUGGLED[case]
    out = exchange(env, whoami(env, close=False) + make(whoami(env)))
    assert statuses(out) == [200, 400], out[:600]
    assert_refused(out[out.index(b"HTTP/1.1 400"):], reason)


def test_good_pipeline_is_served(env):
    """Two well-formed requests on one keep-alive connection: two 200s."""
    out = exchange(env, whoami(env, close=False) + whoami(env))
    assert statuses(out) == [200, 200], out[:600]


def test_accepted_heads(env):
    """The same Content-Length twice, tabs, blanks and obs-text in values are
    accepted: a form sign-in (303) and the request behind it are served."""
    form = b"token=" + env["token"]
    first = (b"POST /api/v1/session HTTP/1.1\r\nHost: x\r\n"
             b"Content-Type: application/x-www-form-urlencoded\r\n"
             b"Content-Length: %d\r\ncontent-length:\t%d \r\n"
             b"X-Note:\tcaf\xc3\xa9 \xff\r\n\r\n" % (len(form), len(form)) + form)
    out = exchange(env, first + whoami(env))
    assert statuses(out) == [303, 200], out[:600]


def test_refusals_are_logged_and_counted(env):
    before = env["anon"].get("/healthz")  # the connection is up
    assert before.status == 200
    exchange(env, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: \x1b]0;pwned\x07\r\n\r\n")
    log = env["coll"].log_text()
    assert "400: bad request head: control byte in a header value" in log
    assert "pwned" not in log and "junk" not in log and "\x1b" not in log
    r = at.Api(env["port"], env["pki"], env["token"].decode()).get("/metrics")
    assert r.status == 200
    body = r.body.decode() if isinstance(r.body, bytes) else r.body
    m = re.search(r'vigil_http_requests_total\{code="4xx"\} (\d+)', body)
    assert m and int(m.group(1)) >= len(SMUGGLED) + 1, body[:2000]
