# SPDX-License-Identifier: Apache-2.0
"""No byte from outside reaches a terminal or a spreadsheet raw: control
bytes, ESC and a lone CR from an agent or an HTTPS request are escaped
(\\xNN, C1 controls \\u00NN) in the collector's log and in CSV exports, so
a log line cannot be forged, cut or turned into terminal commands and a
CSV file has no line ends but its own. (The page's side is in
tests/browser.)"""


import apitest as at
import vigiltest as vt

HOSTILE = "\x1b[2J\x1b]0;owned\x07\rforged: line\nnext \u009b31m \u202egnp.exe"


def assert_clean(text):
    raw = text.encode()
    for bad in (b"\x1b", b"\x07", b"\r", b"\xc2\x9b"):
        assert bad not in raw, "raw %r in the log" % bad
    assert "forged: line" not in [ln.split(": ", 1)[-1] for ln in text.splitlines()]


def test_agent_strings_are_escaped_in_the_log(collector_factory, db, agent, pki):
    coll = collector_factory(db)
    off = coll.log_size()
    a = agent(coll.port, "log-escape")
    a.send_hello(claimed=HOSTILE)
    a.recv()  # Welcome
    vt.wait_for(lambda: "claims agent id" in coll.log_since(off), 10,
                what="the Hello logged")
    text = coll.log_since(off)
    assert_clean(text)
    line = [ln for ln in text.splitlines() if "claims agent id" in ln][0]
    # the Hello's own field check turned C0 controls into '?'; the log
    # escapes what is left (the C1 CSI)
    assert "?[2J?]0;owned??forged: line?next" in line and "\\u009b31m" in line, line


def test_https_request_bytes_are_escaped_in_the_log(collector_factory, db, pki):
    hport = vt.free_port()
    coll = collector_factory(db, {"--http-listen": "127.0.0.1:%d" % hport})
    off = coll.log_size()
    # a path with ESC and a lone CR: refused before any handler, the reason
    # logged without the client's bytes
    s = at.tls_socket(hport, pki)
    s.sendall(b"GET /api/v1/\x1b[2J\rx HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 400")
    s.close()
    # an unauthenticated request whose path carries escapes %-encoded
    r = at.Api(hport, pki).get("/api/v1/%1b[2J%0d%0aforged")
    assert r.status == 401
    vt.wait_for(lambda: "401 GET" in coll.log_since(off), 10, what="the 401 logged")
    assert_clean(coll.log_since(off))



def test_csv_export_escapes_control_bytes(collector_factory, db, agent, pki, collector_bin):
    hport = vt.free_port()
    coll = collector_factory(db, {"--http-listen": "127.0.0.1:%d" % hport})
    a = agent(coll.port, "csv-escape")
    a.hello()
    argv = ["/bin/sh", "-c", "\x1b]0;owned\x07 printf '\x1b[2J' \r\n=cmd|' /C calc'!A0",
            "\u009b31m"]
    a.batch(1, [vt.exec_event(7, argv)])
    api = at.Api(hport, pki, at.create_token(collector_bin, db, "csv-escape", "viewer"))
    r = api.get("/api/v1/events", {"since": "1h", "format": "csv", "kind": "process_exec"})
    assert r.status == 200, r
    body = r.body
    for bad in (b"\x1b", b"\x07", b"\xc2\x9b"):
        assert bad not in body, "raw %r in the CSV" % bad
    # the only line ends are the file's own: a header and one row
    assert body.count(b"\r\n") == 2 and body.count(b"\n") == 2 and body.count(b"\r") == 2, body
    row = body.split(b"\r\n")[1].decode()
    assert "\\x1b]0;owned\\x07" in row and "\\x0d\\x0a=cmd" in row and "\\u009b31m" in row, row
