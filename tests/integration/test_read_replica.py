# SPDX-License-Identifier: Apache-2.0
"""The API reads from a real streaming read replica (README.md, "Read
replica"): a primary set up for replication (a replication role, the
pg_hba entry for local connections), a replica made by `pg_basebackup -R`
and started as a hot standby on another port, and a collector with `db` on
the primary and `http_db` on the replica.

- Events ingested through the primary are served by the API once the
  replica has replayed them, and not before: with replay paused on the
  replica, new events are on the primary and not in the API's answers.
- Writes go to the primary: each audited read's record is in audit_log on
  the primary; sign-in writes the session there and the session is looked
  up there (read-your-writes: it works at once, replay paused or not);
  /api/v1/audit reads the primary, so it shows the request just made.
- The replica down: reads answer 503 `replica_unavailable`; sign-in,
  whoami, /readyz and ingest go on (they use the primary only); reads work
  again once the replica is back.
"""

import os
import subprocess

import pytest

import apitest as at
import vigiltest as vt

PGBIN = "/usr/lib/postgresql/15/bin"


def as_postgres(*cmd):
    r = subprocess.run(["runuser", "-u", "postgres", "--"] + list(cmd),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert r.returncode == 0, "%s failed:\n%s" % (" ".join(cmd), r.stdout)
    return r.stdout


@pytest.fixture(scope="module")
def clusters(workdir):
    """(primary, replica): two vt.Postgres clusters, the replica streaming
    from the primary's database vigil."""
    base = vt.make_tmpdir(os.path.join(workdir, "replica-"))
    primary = vt.Postgres(os.path.join(base, "primary"), vt.free_port())
    replica = vt.Postgres(os.path.join(base, "replica"), vt.free_port())
    started = []
    try:
        primary.start()
        started.append(primary)
        # wal_level = replica and max_wal_senders = 10 are PostgreSQL 15's
        # defaults; say so anyway, and name the replication role's entry
        with open(os.path.join(primary.dir, "data", "postgresql.conf"), "a") as f:
            f.write("\n# test_read_replica.py\nwal_level = replica\nmax_wal_senders = 5\n"
                    "hot_standby_feedback = on\n")
        with open(os.path.join(primary.dir, "data", "pg_hba.conf"), "r+") as f:
            hba = f.read()
            f.seek(0)
            f.write("local replication vigil_replicator trust\n" + hba)
        primary.stop()
        primary.start()
        vt.Database(primary, "postgres").query(
            "CREATE ROLE vigil_replicator WITH REPLICATION LOGIN")
        os.makedirs(replica.dir)
        os.chmod(replica.dir, 0o755)
        data = os.path.join(replica.dir, "data")
        os.makedirs(data, mode=0o700)
        subprocess.run(["chown", "postgres:", data], check=True)
        as_postgres(os.path.join(PGBIN, "pg_basebackup"), "-h", primary.sock,
                    "-p", str(primary.port), "-U", "vigil_replicator", "-D", data,
                    "-R", "-X", "stream", "-c", "fast")
        assert os.path.exists(os.path.join(data, "standby.signal"))
        replica.start()
        started.append(replica)
        rdb = vt.Database(replica, "vigil")
        assert rdb.scalar("SELECT pg_is_in_recovery()")
        vt.wait_for(lambda: vt.Database(primary, "postgres").scalar(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"), 30,
            what="the replica to stream")
        yield primary, replica
    finally:
        for p in reversed(started):
            try:
                p.stop()
            except RuntimeError:
                pass


def caught_up(primary_db, replica_db):
    lsn = primary_db.scalar("SELECT pg_current_wal_lsn()::text")
    return replica_db.scalar("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))


@pytest.fixture(scope="module")
def env(clusters, module_collector_factory, collector_bin, pki):
    primary, replica = clusters
    pdb, rdb = vt.Database(primary, "vigil"), vt.Database(replica, "vigil")
    port = vt.free_port()
    coll = module_collector_factory(pdb, flags={
        "--http-listen": "127.0.0.1:%d" % port,
        "--http-db": rdb.conninfo,
        "--http-rate-limit": "0",
        "--http-token-cache-ttl": "0",
    })
    admin = at.create_token(collector_bin, pdb, "replica-admin", "admin")
    viewer = at.create_token(collector_bin, pdb, "replica-viewer", "viewer")
    vt.wait_for(lambda: caught_up(pdb, rdb), 30, what="the replica to replay the schema")
    return {"primary": primary, "replica": replica, "pdb": pdb, "rdb": rdb, "coll": coll,
            "api": at.Api(port, pki, token=viewer), "admin": at.Api(port, pki, token=admin),
            "viewer": viewer}


def send(env, pki, name, seq, n):
    cert, key = pki.agent(name)
    with vt.RawAgent(env["coll"].port, vt.client_context(pki, cert, key)).connect() as a:
        a.hello()
        a.batch(seq, [vt.exec_event(100 + i, ["/bin/echo", "replica", str(seq), str(i)])
                      for i in range(n)])


def api_events(env, name):
    r = env["api"].get("/api/v1/events", {"agent": name, "limit": 1000})
    assert r.status == 200, r
    return r.json()["events"]


def audit_rows(env, path):
    return env["pdb"].scalar("SELECT count(*) FROM audit_log WHERE path = %s", (path,))


def test_collector_configuration_is_a_replica(env):
    assert env["rdb"].scalar("SELECT pg_is_in_recovery()")
    assert not env["pdb"].scalar("SELECT pg_is_in_recovery()")
    r = env["admin"].get("/readyz")
    assert r.status == 200, r


def test_reads_come_from_the_replica_and_writes_go_to_the_primary(env, pki):
    send(env, pki, "replica-node-1", 1, 5)
    assert env["pdb"].scalar("SELECT count(*) FROM events WHERE seq = 1") == 5
    got = vt.wait_for(lambda: len(api_events(env, "replica-node-1")) == 5 or None, 30,
                      what="the events through the replica")
    assert got
    # the API's reads hold connections to the replica
    assert env["rdb"].scalar("SELECT count(*) FROM pg_stat_activity "
                             "WHERE application_name = 'vigil-collector-api'") >= 1
    before = audit_rows(env, "/api/v1/events")
    assert before >= 1
    api_events(env, "replica-node-1")
    # the record of that read is on the primary, written before the read
    assert audit_rows(env, "/api/v1/events") == before + 1

    # Replay paused: the replica stops where it is.
    env["rdb"].query("SELECT pg_wal_replay_pause()")
    try:
        vt.wait_for(lambda: env["rdb"].scalar("SELECT pg_get_wal_replay_pause_state()")
                    == "paused", 10, what="replay to pause")
        send(env, pki, "replica-node-1", 2, 3)
        assert env["pdb"].scalar("SELECT count(*) FROM events e JOIN agents a "
                                 "ON a.id = e.agent_id WHERE a.name = 'replica-node-1'") == 8
        # reads are served by the replica: the new events are not there yet
        assert len(api_events(env, "replica-node-1")) == 5
        # every read still writes its record on the primary
        n = audit_rows(env, "/api/v1/events")
        api_events(env, "replica-node-1")
        assert audit_rows(env, "/api/v1/events") == n + 1
        # read-your-writes: sign-in writes the session on the primary, and
        # the session is looked up there, so it works at once
        r = env["api"].signin(env["viewer"])
        assert r.status == 303, r
        cookie = r.cookie()[0]
        r = env["api"].get("/api/v1/whoami", token="", cookie=cookie)
        assert r.status == 200 and r.json()["principal"] == "token:replica-viewer", r
        # the audit log is read on the primary: it shows the records written
        # since replay was paused (a statement does not see its own record)
        last = env["pdb"].scalar("SELECT max(id) FROM audit_log")
        entries = env["admin"].get("/api/v1/audit", {"limit": 5}).json()["entries"]
        assert entries[0]["id"] == last and entries[0]["path"] == "/api/v1/events", entries
        r = env["api"].signout(cookie=cookie)
        assert r.status == 204, r
    finally:
        env["rdb"].query("SELECT pg_wal_replay_resume()")
    vt.wait_for(lambda: len(api_events(env, "replica-node-1")) == 8 or None, 30,
                what="the replica to catch up")


@pytest.mark.parametrize("path,params", [
    ("/api/v1/agents", None),
    ("/api/v1/containers", None),
    ("/api/v1/events", {"format": "ndjson"}),
    ("/api/v1/findings", None),
    ("/api/v1/findings", {"format": "csv"}),
    ("/api/v1/images", {"image": "registry.test/web:1.0"}),
    ("/api/v1/stats", None),
    ("/api/v1/tokens", None),
])
def test_every_read_works_on_the_replica(env, path, params):
    r = env["admin"].get(path, params)
    assert r.status == 200, r


def test_replica_down(env, pki):
    replica = env["replica"]
    replica.stop()
    try:
        r = env["api"].get("/api/v1/events", {"agent": "replica-node-1"})
        assert r.status == 503, r
        assert r.json()["error"] == "replica_unavailable", r
        assert "read replica" in r.json()["message"], r
        # what needs only the primary goes on
        assert env["api"].get("/api/v1/whoami").status == 200
        assert env["admin"].get("/readyz").status == 200
        r = env["api"].signin(env["viewer"])
        assert r.status == 303, r
        vt.check_serves(env["coll"], env["pdb"], pki, "replica-node-2")
        assert "read replica (http_db)" in env["coll"].log_text()
    finally:
        replica.start()
    vt.wait_for(lambda: env["api"].get("/api/v1/events",
                                       {"agent": "replica-node-2"}).status == 200, 30,
                what="reads to work again")
    # every connection of the pool was left stale by the restart: each is
    # made again at its first use, with no request failing for it
    for _ in range(12):
        r = env["api"].get("/api/v1/events", {"agent": "replica-node-2"})
        assert r.status == 200, r
    vt.wait_for(lambda: len(api_events(env, "replica-node-2")) >= 1 or None, 30,
                what="the replica to catch up")
