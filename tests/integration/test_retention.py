# SPDX-License-Identifier: Apache-2.0
"""Retention on schedule, with or without a collector (README.md,
"Retention"): event partitions made old on purpose are dropped by
vigil_maintain_partitions() (schema/0017_maintenance.sql) run by pg_cron
(Debian package postgresql-15-cron) with every collector stopped, and
again while a collector runs; recent partitions and the policy the
collector recorded are kept. Without pg_cron, the fallback scheduler's
command, `vigil-collector migrate`, does the same with no collector
running."""

import datetime
import os
import subprocess
import time

import pytest

import vigiltest as vt

PG_CRON = "/usr/lib/postgresql/15/lib/pg_cron.so"
RETENTION = 7


def day(offset):
    return (datetime.datetime.now(datetime.timezone.utc).date()
            + datetime.timedelta(days=offset))


def part(d):
    return "events_p%s" % d.strftime("%Y%m%d")


def make_partition(db, d):
    """Create the daily partition of date D (if missing) with one event in
    it, as if an agent had sent it then."""
    if not db.table_exists(part(d)):
        db.query("CREATE TABLE %s PARTITION OF events FOR VALUES FROM ('%s 00:00+00') "
                 "TO ('%s 00:00+00')" % (part(d), d.isoformat(),
                                          (d + datetime.timedelta(days=1)).isoformat()))
    db.query("INSERT INTO events (ts, recv_ts, agent_id, seq, idx, kind, severity) "
             "VALUES (%s, now(), 1, 1, 0, 4, 1)",
             (datetime.datetime(d.year, d.month, d.day, 12, tzinfo=datetime.timezone.utc),))


def partitions(db):
    return {r[0] for r in db.query(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass")}


OLD = [datetime.date(2020, 1, 1), day(-(RETENTION + 3)), day(-(RETENTION + 1))]
KEPT = [day(-RETENTION), day(-3), day(0), day(1)]


def make_old(db):
    for d in OLD + KEPT:
        make_partition(db, d)
    have = partitions(db)
    assert all(part(d) in have for d in OLD + KEPT), have


def assert_retained(db):
    have = partitions(db)
    assert not [part(d) for d in OLD if part(d) in have], sorted(have)
    assert all(part(d) in have for d in KEPT), sorted(have)
    # the rows of the recent days are still there, those of old days gone
    assert db.scalar("SELECT count(*) FROM events WHERE ts < %s",
                     (datetime.datetime.combine(day(-RETENTION), datetime.time(),
                                                datetime.timezone.utc),)) == 0
    assert db.scalar("SELECT count(*) FROM events") >= len(KEPT)


def migrate(collector_bin, db, *flags):
    r = subprocess.run([collector_bin, "migrate", "--db", db.conninfo] + list(flags),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                       env=vt.sanitizer_env())
    assert r.returncode == 0, r.stderr
    assert not vt.sanitizer_reports(r.stderr), r.stderr
    return r.stderr


def test_migrate_command_drops_old_partitions_with_no_collector(db, collector_bin):
    migrate(collector_bin, db, "--retention-days", str(RETENTION))
    assert db.query("SELECT retention_days, partitions_ahead_days FROM vigil_retention") == [
        (RETENTION, 3)]
    make_old(db)
    err = migrate(collector_bin, db, "--retention-days", str(RETENTION))
    assert "dropped %d expired event partition(s)" % len(OLD) in err, err
    assert_retained(db)


# --- pg_cron ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cron_pg(workdir):
    """A cluster of its own with pg_cron loaded for its database vigil."""
    if not os.path.exists(PG_CRON):
        pytest.skip("postgresql-15-cron is not installed (scripts/deps.sh installs it)")
    p = vt.Postgres(vt.make_tmpdir(os.path.join(workdir, "cron-")), vt.free_port())
    p.start()
    try:
        with open(os.path.join(p.dir, "data", "postgresql.conf"), "a") as f:
            f.write("\n# test_retention.py\nshared_preload_libraries = 'pg_cron'\n"
                    "cron.database_name = 'vigil'\ncron.use_background_workers = on\n"
                    "max_worker_processes = 16\n")
        p.stop()
        p.start()
        db = vt.Database(p, "vigil")
        db.query("CREATE EXTENSION pg_cron")
        yield p
    finally:
        p.stop()


def cron_runs(db):
    return db.scalar("SELECT count(*) FROM cron.job_run_details WHERE status = 'succeeded' "
                     "AND command = 'SELECT vigil_maintain_partitions()'")


def wait_for_cron_run(db):
    """Wait for a run of the job (it runs every minute) to drop the old
    partitions (a run that had started before they were made may not)."""
    n = cron_runs(db)
    vt.wait_for(lambda: cron_runs(db) > n and not {part(d) for d in OLD} & partitions(db),
                135, interval=1, what="pg_cron to drop the old partitions")
    failed = db.query("SELECT return_message FROM cron.job_run_details WHERE status = 'failed'")
    assert not failed, failed


def test_pg_cron_drops_old_partitions(cron_pg, collector_factory, collector_bin, pki):
    db = vt.Database(cron_pg, "vigil")
    # a collector records its policy, then every collector stops
    coll = collector_factory(db, flags={"--retention-days": str(RETENTION)})
    assert coll.terminate(timeout=60) == 0
    assert db.query("SELECT retention_days FROM vigil_retention") == [(RETENTION,)]
    # the schedule an operator sets (README.md, "Retention")
    db.query("SELECT cron.schedule('vigil-partitions', '* * * * *', "
             "'SELECT vigil_maintain_partitions()')")

    # no collector: pg_cron alone
    make_old(db)
    wait_for_cron_run(db)
    assert_retained(db)
    # partitions ahead are kept up too
    assert part(day(3)) in partitions(db)

    # a collector running, pg_cron beside it
    coll.start()
    make_old(db)
    wait_for_cron_run(db)
    assert_retained(db)
    vt.check_serves(coll, db, pki, "retention-node")
    assert coll.alive()
