# SPDX-License-Identifier: Apache-2.0
"""The schema is ready for Citus with agent_id as the distribution key
(README.md, "Past one primary: Citus"), checked against the catalog of a
database the collector migrated.

The tables to distribute are listed in one place, the view
vigil_distribution (schema/0016_distribution.sql): placement 'distributed'
(by agent_id, colocated with events) or 'reference' (a copy on every
node); tables it does not list stay on the coordinator. For each
distributed table (and each partition of one) every primary key and
unique index includes agent_id; its foreign keys go to reference tables
or include agent_id; no table references a distributed table from outside
its colocation group; every table with an agent_id column is listed; and
every ON CONFLICT target of the collector's SQL (C and SQL functions) that
names a distributed table's columns matches one of its unique indexes.
"""

import glob
import os
import re
import subprocess

import pytest

import vigiltest as vt


@pytest.fixture(scope="module")
def schema_db(module_db, collector_bin):
    r = subprocess.run([collector_bin, "migrate", "--db", module_db.conninfo],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                       env=vt.sanitizer_env())
    assert r.returncode == 0, r.stderr
    return module_db


def placements(db):
    return {t: (p, c) for t, p, c in db.query(
        "SELECT table_name, placement, distribution_column FROM vigil_distribution")}


def distributed(db):
    return sorted(t for t, (p, _) in placements(db).items() if p == "distributed")


def unique_indexes(db, table):
    """(index name, [column names], is primary) of TABLE and, if it is
    partitioned, of each of its partitions."""
    return db.query(
        "SELECT i.indexrelid::regclass::text, "
        "       array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(n, o) "
        "             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n "
        "             ORDER BY k.o)::text[], i.indisprimary "
        "FROM pg_index i WHERE i.indisunique AND i.indrelid IN "
        "  (SELECT %s::regclass UNION ALL "
        "   SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)",
        (table, table))


def test_distribution_list_names_real_tables(schema_db):
    pl = placements(schema_db)
    assert "events" in pl and pl["events"] == ("distributed", "agent_id")
    for t, (p, col) in pl.items():
        assert p in ("distributed", "reference"), (t, p)
        assert schema_db.table_exists(t), "vigil_distribution lists %s, which does not exist" % t
        if p == "distributed":
            assert col == "agent_id", (t, col)
            assert schema_db.scalar(
                "SELECT attnotnull FROM pg_attribute WHERE attrelid = %s::regclass "
                "AND attname = 'agent_id'", (t,)), "%s.agent_id must be NOT NULL" % t


def test_every_key_of_a_distributed_table_includes_agent_id(schema_db):
    checked = []
    missing = []
    for t in distributed(schema_db):
        for name, cols, primary in unique_indexes(schema_db, t):
            checked.append(name)
            if "agent_id" not in cols:
                missing.append("%s %s (%s)" % ("primary key" if primary else "unique index",
                                               name, ", ".join(cols)))
    assert not missing, "keys without agent_id: " + "; ".join(missing)
    # the check saw the keys it is about
    assert "containers_pkey" in checked and "findings_pkey" in checked
    assert "dead_letters_pkey" in checked


def test_foreign_keys_fit_the_placement(schema_db):
    pl = placements(schema_db)
    rows = schema_db.query(
        "SELECT conname, conrelid::regclass::text, confrelid::regclass::text, "
        "       array(SELECT a.attname FROM unnest(conkey) k(n) JOIN pg_attribute a "
        "             ON a.attrelid = conrelid AND a.attnum = k.n)::text[] "
        "FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace")
    bad = []
    for name, src, dst, cols in rows:
        sp, dp = pl.get(src, ("local",))[0], pl.get(dst, ("local",))[0]
        if sp == "distributed":
            ok = dp == "reference" or (dp == "distributed" and "agent_id" in cols)
        elif sp == "reference":
            ok = dp == "reference"
        else:
            ok = dp != "distributed"
        if not ok:
            bad.append("%s: %s (%s) -> %s (%s)" % (name, src, sp, dst, dp))
    assert not bad, "foreign keys Citus would refuse: " + "; ".join(bad)


def test_every_table_with_agent_id_is_placed(schema_db):
    pl = placements(schema_db)
    tables = [r[0] for r in schema_db.query(
        "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') "
        "AND NOT c.relispartition AND a.attname = 'agent_id' AND NOT a.attisdropped")]
    assert "events" in tables
    unplaced = sorted(set(tables) - set(pl))
    assert not unplaced, ("tables with an agent_id column that vigil_distribution does not "
                          "place: %s" % unplaced)


ON_CONFLICT = re.compile(r"ON\s+CONFLICT\s*\(([^)]*)\)", re.I)
INSERT_INTO = re.compile(r"INSERT\s+INTO\s+([a-z_]+)", re.I)


def conflict_targets():
    """(file, table, [columns]) of every ON CONFLICT (cols) in the
    collector's C sources and the schema: the table is that of the
    nearest INSERT INTO before it."""
    out = []
    files = glob.glob(os.path.join(vt.SOURCE_DIR, "schema", "*.sql"))
    files += glob.glob(os.path.join(vt.SOURCE_DIR, "collector", "**", "*.c"), recursive=True)
    for path in files:
        with open(path, errors="replace") as f:
            text = f.read()
        for m in ON_CONFLICT.finditer(text):
            inserts = list(INSERT_INTO.finditer(text, 0, m.start()))
            if not inserts:
                continue
            cols = [c.strip().strip('"') for c in m.group(1).split(",")]
            out.append((os.path.relpath(path, vt.SOURCE_DIR), inserts[-1].group(1), cols))
    return out


def test_upserts_match_the_keys(schema_db):
    dist = set(distributed(schema_db))
    targets = [t for t in conflict_targets() if t[1] in dist]
    # the collector's upserts of containers, findings and container images
    assert {t[1] for t in targets} >= {"containers", "findings", "vuln_container_images"}
    bad = []
    for path, table, cols in targets:
        keys = [sorted(c) for _, c, _ in unique_indexes(schema_db, table)]
        if sorted(cols) not in keys:
            bad.append("%s: ON CONFLICT (%s) on %s" % (path, ", ".join(cols), table))
        elif "agent_id" not in cols:
            bad.append("%s: ON CONFLICT (%s) on %s lacks agent_id" % (path, ", ".join(cols),
                                                                      table))
    assert not bad, "; ".join(bad)
