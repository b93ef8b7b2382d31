# SPDX-License-Identifier: Apache-2.0
"""vigil-loadgen's enrollment mode against a real collector and PostgreSQL:
20 simulated agents enroll with one multi-use join token (a key and a CSR
made in the load generator, EnrollRequest over TLS without a client
certificate), are recorded in agent_certs, write their key and chain, and
then send events with their issued certificates under the names the
collector assigned. Also its handshake storm (--handshakes) with enrolled
identities, and what a token with too few uses does."""

import os
import re
import stat
import subprocess

import vigiltest as vt

TOKEN_RE = re.compile(r"vgj_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")


def enrolling_collector(collector_factory, db, pki):
    return collector_factory(db, {
        "--agent-issuer-cert": os.path.join(pki.dir, "issuer.crt"),
        "--agent-issuer-key": os.path.join(pki.dir, "issuer.key"),
        # every simulated agent comes from 127.0.0.1
        "--enroll-rate-per-min": "100000",
        "--enroll-burst": "1000",
    })


def make_token(collector_bin, db, uses):
    r = subprocess.run([collector_bin, "enroll-token", "create", "--uses", str(uses),
                        "--db", db.conninfo], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60, env=vt.sanitizer_env())
    assert r.returncode == 0, r.stdout + r.stderr
    m = TOKEN_RE.search(r.stdout)
    return m.group(0), m.group(1)


def run_loadgen(loadgen_bin, pki, collector, log_path, *args, timeout=180):
    """Run vigil-loadgen with ARGS (no identity flags of its own); return
    (exit status, figures of its last line, stderr)."""
    cmd = [loadgen_bin, "--connect", collector.address, "--ca", pki.ca_crt,
           "--server-name", "localhost"] + [str(a) for a in args]
    with open(log_path, "w") as err:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                           timeout=timeout, env=vt.sanitizer_env())
    with open(log_path, errors="replace") as f:
        stderr = f.read()
    reports = vt.sanitizer_reports(stderr)
    assert not reports, "sanitizer reports from vigil-loadgen:\n" + vt.log_excerpt(stderr)
    return r.returncode, vt.parse_loadgen_line(r.stdout), stderr


def test_loadgen_enrolls_then_ingests(collector_factory, db, pki, collector_bin, loadgen_bin,
                                      tmp_path):
    c = enrolling_collector(collector_factory, db, pki)
    token, token_id = make_token(collector_bin, db, 20)
    out_dir = tmp_path / "enrolled"
    out_dir.mkdir()
    rc, s, err = run_loadgen(loadgen_bin, pki, c, str(tmp_path / "loadgen.log"),
                             "--enroll-token", token, "--agents", 20, "--enroll-concurrency", 5,
                             "--enroll-dir", out_dir, "--agent-prefix", "lgenr-",
                             "--events", 20000, "--batch-events", 100, "--timeout", 120)
    assert rc == 0, err[-3000:]
    assert s["enrolled"] == 20 and s["enroll_failed"] == 0, s
    assert s["enroll_s"] > 0 and s["enroll_per_s"] > 0, s
    # the run's keys are all still there, and everything was acknowledged
    assert s["agents"] == 20 and s["events_sent"] == 20000, s
    assert s["events_acked"] == s["events_sent"] and s["errors"] == 0, s
    assert token not in err and token.split("_", 2)[2] not in c.log_text()

    rows = db.query("SELECT agent_name, kind, token_id, not_after > now() FROM agent_certs "
                    "WHERE agent_name LIKE 'lgenr-%%' ORDER BY agent_name")
    names = ["lgenr-%05d" % i for i in range(20)]
    assert [r[0] for r in rows] == names, rows
    assert all(r[1:] == ("enroll", token_id, True) for r in rows), rows
    assert db.scalar("SELECT uses FROM enroll_tokens WHERE id = %s", (token_id,)) == 20

    # Each agent's events are stored under its assigned name: the name only
    # its issued certificate carries (loadgen has no other in this mode).
    for name in names:
        assert len(db.events_of(name)) == 1000, name
    assert "Hello claims agent id" not in c.log_text()

    # The files a node would keep: the key private to its owner, the chain
    # verifying against the CA through the issuing CA.
    for name in names:
        key, crt = out_dir / (name + ".key"), out_dir / (name + ".crt")
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600, name
        subprocess.run(["openssl", "verify", "-CAfile", pki.ca_crt, "-untrusted", str(crt),
                        str(crt)], check=True, stdout=subprocess.DEVNULL)


def test_loadgen_handshake_storm_with_enrolled_identities(collector_factory, db, pki,
                                                          collector_bin, loadgen_bin, tmp_path):
    c = enrolling_collector(collector_factory, db, pki)
    token, _ = make_token(collector_bin, db, 8)
    rc, s, err = run_loadgen(loadgen_bin, pki, c, str(tmp_path / "storm.log"),
                             "--enroll-token", token, "--agents", 8, "--agent-prefix", "lgstorm-",
                             "--handshakes", 200, "--concurrency", 4, "--timeout", 120)
    assert rc == 0, err[-3000:]
    assert s["enrolled"] == 8 and s["handshakes"] == 200 and s["handshake_failed"] == 0, s
    assert s["handshakes_per_s"] > 0 and s["events_sent"] == 0, s
    # every identity said Hello and was welcomed under its own name
    n = db.scalar("SELECT count(*) FROM agents WHERE name LIKE 'lgstorm-%%'")
    assert n == 8, n
    # TLS alone: each client waits for the collector to close after its
    # close_notify, so the collector never holds more than 4 at once
    token, _ = make_token(collector_bin, db, 4)
    rc, s, err = run_loadgen(loadgen_bin, pki, c, str(tmp_path / "storm2.log"),
                             "--enroll-token", token, "--agents", 4, "--agent-prefix", "lgtls-",
                             "--handshakes", 100, "--concurrency", 4, "--no-hello",
                             "--timeout", 120)
    assert rc == 0, err[-3000:]
    assert s["handshakes"] == 100 and s["handshake_failed"] == 0, s
    assert "refused at accept" not in c.log_text()


def test_loadgen_token_with_too_few_uses(collector_factory, db, pki, collector_bin, loadgen_bin,
                                         tmp_path):
    c = enrolling_collector(collector_factory, db, pki)
    token, _ = make_token(collector_bin, db, 3)
    rc, s, err = run_loadgen(loadgen_bin, pki, c, str(tmp_path / "short.log"),
                             "--enroll-token", token, "--agents", 5, "--enroll-concurrency", 1,
                             "--agent-prefix", "lgshort-", "--enroll-only", "--timeout", 60)
    assert rc == 1, err[-3000:]
    assert s["enrolled"] == 3 and s["enroll_failed"] == 2 and s["enroll_retries"] == 0, s
    assert "enrollment refused: token not accepted" in err
    assert db.scalar("SELECT count(*) FROM agent_certs WHERE agent_name LIKE 'lgshort-%%'") == 3
