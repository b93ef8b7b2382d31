#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Vulnerable-images benchmark, the collector side: a throwaway PostgreSQL
# with IMAGES images of PACKAGES packages each (Debian 11/12, Ubuntu
# 20.04/22.04, Alpine 3.18/3.19; written with SQL, as the ingest path would
# leave them) and ADVISORIES OSV advisories written as an all.zip and loaded
# with the real `vigil-collector advisories import`; then
#   - import_advisories_per_s: advisories / seconds of that import (its
#     "imported in" line: reading, parsing, staging, merging, committing);
#   - the first full matching of every image (a human line: done once);
#   - exposure_p95_ms: "who is exposed to CVE-X now" through the real API
#     (TLS, token, audit) for QUERIES CVE ids that have matches, with
#     RUNNING running containers on NODES nodes;
#   - reeval_s: wall time of importing NEW_ADVISORIES new advisories, the
#     re-evaluation of the whole fleet included (the import command matches
#     what it queued before it exits).
# inventory_ms is the agent's side: bin/vigil-vuln-inventory (the agent's
# reader on a 400-package Debian root, bench/vuln_inventory.c) prints it,
# unless INVENTORY_MS is set (NA if neither).
#
# Run as root on Debian 12 from anywhere:
#
#   bench/vuln.sh                                  # the full size
#   IMAGES=500 PACKAGES=100 ADVISORIES=10000 NEW_ADVISORIES=200 bench/vuln.sh
#
# Human-readable lines go to stderr; the last line on stdout is
#   exposure_p95_ms=.. reeval_s=.. import_advisories_per_s=.. inventory_ms=..
# Environment: IMAGES (10000), PACKAGES (200 per image), ADVISORIES (200000),
# NEW_ADVISORIES (1000), NODES (1000), RUNNING (30000), QUERIES (200),
# BUILD_DIR (build), SKIP_DEPS=1, SKIP_BUILD=1, KEEP=1 (keep the work dir).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGES=${IMAGES:-10000}
PACKAGES=${PACKAGES:-200}
ADVISORIES=${ADVISORIES:-200000}
NEW_ADVISORIES=${NEW_ADVISORIES:-1000}
NODES=${NODES:-1000}
RUNNING=${RUNNING:-30000}
QUERIES=${QUERIES:-200}
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac

say() { echo "vuln-bench: $*" >&2; }
die() {
  say "FAILED: $*"
  exit 1
}
[ "$(id -u)" -eq 0 ] || die "run as root (it runs PostgreSQL as postgres)"
case "$IMAGES$PACKAGES$ADVISORIES$NEW_ADVISORIES$NODES$RUNNING$QUERIES" in
  *[!0-9]*) die "sizes must be integers" ;;
esac

[ "${SKIP_DEPS:-0}" = 1 ] || bash "$ROOT/scripts/deps.sh" >&2
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "building vigil-collector in $BUILD_DIR (RelWithDebInfo)"
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_SANITIZE=OFF \
    >/dev/null || die "cmake"
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target vigil-collector vigil-vuln-inventory \
    >/dev/null || die "build"
fi
COLLECTOR=$BUILD_DIR/bin/vigil-collector
[ -x "$COLLECTOR" ] || die "no $COLLECTOR"

WORK=$(mktemp -d /tmp/vigil-vuln-bench.XXXXXX)
chmod 755 "$WORK"
COLLECTOR_PID=
cleanup() {
  local rc=$?
  set +e
  if [ -n "$COLLECTOR_PID" ]; then
    kill -TERM "$COLLECTOR_PID" 2>/dev/null
    wait "$COLLECTOR_PID" 2>/dev/null
  fi
  bash "$ROOT/scripts/pg.sh" stop "$WORK/pg" >/dev/null 2>&1
  if [ "${KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
    say "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PGPORT=$(free_port)
bash "$ROOT/scripts/dev-pki.sh" "$WORK/pki" >/dev/null
bash "$ROOT/scripts/pg.sh" start "$WORK/pg" "$PGPORT" >/dev/null
DB="host=$WORK/pg/sock port=$PGPORT dbname=vigil user=postgres"
psql_() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
"$COLLECTOR" migrate --db "$DB" --log-level warn >&2 || die "migrate"

# The fleet's shape, shared by the SQL and the advisory generator: release
# r = i % 6 of RELEASES; each image draws PACKAGES source packages
# (pkg-N) out of POOL; the installed version of pkg-N in image i is
# 1.((i + N) % 20).0 with the release's revision syntax; an advisory names
# one (release, package) and, like most real ones, a fixed version below
# every installed one (1.0.0, 85%), or 1.K.0 (10%: it matches the images
# whose minor is below K), or no fix (5%). About 3,300 candidate pairs and
# 300 matches an image.
POOL=2000

# --- advisories -------------------------------------------------------------------------------
gen_osv() { # OUT COUNT FIRST_ID
  /usr/bin/python3 - "$@" <<'PY'
import json, random, sys, zipfile
out, count, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rel = [("Debian:11", "-1"), ("Debian:12", "-1"), ("Ubuntu:20.04:LTS", "-1"),
       ("Ubuntu:22.04:LTS", "-1"), ("Alpine:v3.18", "-r1"), ("Alpine:v3.19", "-r1")]
sev = ["low", "medium", "medium", "high", "high", "critical", "unimportant"]
rnd = random.Random(first)
with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
    for j in range(first, first + count):
        eco, rev = rel[j % 6]
        pkg = "pkg-%d" % rnd.randrange(2000)
        # most advisories were fixed before any installed version (1.0.0)
        x = rnd.random()
        fixed = "1.0.0%s" % rev if x < 0.85 else "1.%d.0%s" % (rnd.randrange(1, 24), rev)
        ev = [{"introduced": "0"}, {"fixed": fixed}]
        if x > 0.95:
            ev = [{"introduced": "0"}]  # no fix yet
        doc = {"schema_version": "1.6.0", "id": "BENCH-%07d" % j,
               "modified": "2024-01-01T00:00:00Z", "aliases": ["CVE-2090-%07d" % j],
               "summary": "benchmark advisory %d" % j,
               "affected": [{"package": {"ecosystem": eco, "name": pkg},
                             "ranges": [{"type": "ECOSYSTEM", "events": ev}],
                             "ecosystem_specific": {"urgency": sev[j % len(sev)]}}]}
        z.writestr("bench/BENCH-%07d.json" % j, json.dumps(doc))
PY
}
say "writing $ADVISORIES advisories (OSV, all.zip) and $NEW_ADVISORIES more"
gen_osv "$WORK/all.zip" "$ADVISORIES" 0
gen_osv "$WORK/new.zip" "$NEW_ADVISORIES" "$ADVISORIES"

say "importing $ADVISORIES advisories with vigil-collector advisories import"
out=$("$COLLECTOR" advisories import "$WORK/all.zip" --db "$DB" --log-level warn) ||
  die "import"
echo "$out" | sed 's/^/    /' >&2
import_s=$(echo "$out" | sed -n 's/^imported in \([0-9.]*\) s$/\1/p')
import_rate=$(python3 -c "print(round($ADVISORIES / max($import_s, 1e-3)))")

# --- images, packages, containers ------------------------------------------------------------
say "generating $IMAGES images x $PACKAGES packages, $RUNNING running containers on $NODES nodes"
t0=$(date +%s.%N)
psql_ <<SQL >&2
INSERT INTO images (image_id, names, os_id, os_version_id, distro, release, format, status,
                    packages, agent_id)
SELECT 'sha256:' || md5(i::text) || md5('i' || i), ARRAY['registry.test/app-' || i || ':1'],
       d, v, d, vigil_image_release(d, v), CASE WHEN d = 'alpine' THEN 'apk' ELSE 'dpkg' END,
       'ok', $PACKAGES, NULL
FROM (SELECT i, (ARRAY['debian', 'debian', 'ubuntu', 'ubuntu', 'alpine', 'alpine'])[i % 6 + 1] d,
             (ARRAY['11', '12', '20.04', '22.04', '3.18.4', '3.19.1'])[i % 6 + 1] v
      FROM generate_series(0, $IMAGES - 1) i) s;
INSERT INTO image_packages (image_id, name, version, arch, source_name, source_version)
SELECT image_id, 'lib' || p, ver, 'amd64', p, ver
FROM (SELECT 'sha256:' || md5(i::text) || md5('i' || i) AS image_id, 'pkg-' || n AS p,
             '1.' || ((i + n) % 20) || '.0' || CASE WHEN i % 6 >= 4 THEN '-r1' ELSE '-1' END
               AS ver
      FROM generate_series(0, $IMAGES - 1) i,
           LATERAL (SELECT DISTINCT floor($POOL * random())::int + 0 * i AS n
                    FROM generate_series(1, $PACKAGES * 6 / 5) LIMIT $PACKAGES) k) s;
INSERT INTO agents (name, hostname, agent_version, protocol_version, last_seen)
SELECT format('vuln-node-%s', lpad(a::text, 5, '0')), format('host-%s', a), 'bench/1', 1, now()
FROM generate_series(1, $NODES) a;
INSERT INTO containers (agent_id, id, name, image, image_digest, state, started_at, first_seen,
                        last_seen)
SELECT (c % $NODES) + 1, md5('c' || c) || md5(c::text), 'app-' || c,
       'registry.test/app-' || img || ':1', 'sha256:' || md5(img::text) || md5('i' || img),
       'running', now() - interval '1 day', now() - interval '1 day', now()
FROM (SELECT c, floor($IMAGES * random() ^ 1.5)::int AS img
      FROM generate_series(0, $RUNNING - 1) c) s;
ANALYZE images; ANALYZE image_packages; ANALYZE containers; ANALYZE agents;
SQL
say "  $(psql_ -At -c 'SELECT count(*) FROM image_packages') package rows in" \
  "$(python3 -c "import time; print(round(time.time() - $t0, 1))") s"

say "first full matching of $IMAGES images (an empty import matches what is queued)"
mkdir -p "$WORK/empty"
t0=$(date +%s.%N)
out=$("$COLLECTOR" advisories import "$WORK/empty" --db "$DB" --log-level warn) ||
  die "matching"
echo "$out" | tail -1 | sed 's/^/    /' >&2
psql_ -c "ANALYZE vuln_matches" >&2

# --- the collector with the API --------------------------------------------------------------
HPORT=$(free_port)
APORT=$(free_port)
TOKEN=$("$COLLECTOR" token create --name bench --role viewer --db "$DB" 2>/dev/null) ||
  die "token create"
"$COLLECTOR" --listen "127.0.0.1:$APORT" --tls-cert "$WORK/pki/collector.crt" \
  --tls-key "$WORK/pki/collector.key" --agent-ca "$WORK/pki/ca.crt" --db "$DB" \
  --http-listen "127.0.0.1:$HPORT" --http-rate-limit 0 --log-level warn \
  >"$WORK/collector.log" 2>&1 &
COLLECTOR_PID=$!
for _ in $(seq 1 100); do
  curl -sf --cacert "$WORK/pki/ca.crt" "https://localhost:$HPORT/healthz" >/dev/null && break
  sleep 0.2
done

say "exposure: $QUERIES queries of \"who runs CVE-X now\" through the API"
p95=NA
psql_ -At -c "SELECT a.aliases[1] FROM (SELECT DISTINCT advisory_id FROM vuln_matches
  ORDER BY 1 LIMIT 5000) m JOIN advisories a ON a.id = m.advisory_id
  ORDER BY random() LIMIT $QUERIES" >"$WORK/cves.txt"
cat >"$WORK/exposure.py" <<'PY'
import http.client, json, ssl, sys, time
port, token, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ids = [l.strip() for l in open(sys.argv[4]) if l.strip()]
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=60)
ms, exposed = [], []
for cve in ids:
    t = time.monotonic()
    c.request("GET", "/api/v1/vulnerabilities/" + cve, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    body = r.read()
    ms.append((time.monotonic() - t) * 1000)
    if r.status != 200:
        raise SystemExit("HTTP %d: %s" % (r.status, body[:200]))
    exposed.append(json.loads(body)["count"])
ms.sort()
p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
print("p95=%.1f p50=%.1f exposed_median=%d" % (p95, ms[len(ms) // 2],
                                               sorted(exposed)[len(exposed) // 2]))
PY
if out=$(/usr/bin/python3 "$WORK/exposure.py" "$HPORT" "$TOKEN" "$WORK/pki/ca.crt" \
  "$WORK/cves.txt"); then
  say "  $out"
  p95=$(echo "$out" | sed -n 's/^p95=\([0-9.]*\) .*/\1/p')
else
  say "  exposure queries failed"
fi

say "re-evaluation: importing $NEW_ADVISORIES new advisories"
t0=$(date +%s.%N)
out=$("$COLLECTOR" advisories import "$WORK/new.zip" --db "$DB" --log-level warn) ||
  die "second import"
reeval=$(python3 -c "import time; print(round(time.time() - $t0, 2))")
echo "$out" | sed 's/^/    /' >&2

INVENTORY_BIN=$BUILD_DIR/bin/vigil-vuln-inventory
if [ -z "${INVENTORY_MS:-}" ] && [ -x "$INVENTORY_BIN" ]; then
  say "inventory: $INVENTORY_BIN (400 packages)"
  INVENTORY_MS=$("$INVENTORY_BIN" | tr ' ' '\n' | sed -n 's/^inventory_ms=//p') || true
fi

echo "exposure_p95_ms=$p95 reeval_s=$reeval import_advisories_per_s=$import_rate" \
  "inventory_ms=${INVENTORY_MS:-NA}"
