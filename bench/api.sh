#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Query API benchmark: a throwaway PostgreSQL filled with EVENTS generated
# events (INSERT ... SELECT of generated rows, in parallel sessions), AGENTS
# agents with 8 containers each, a collector serving the HTTPS API, then:
#   - p95 of "events of one container in the last 24 h" and "which nodes ran
#     image X in the last 7 days", through the real API (TLS, token, audit);
#   - p99 of the newest-first listings of the last 24 h (no filter, by kind,
#     by severity, keyset pages, argv= text search), export throughput
#     (NDJSON and CSV, the slower counts), and GET /api/v1/agents while 8
#     exports stream;
#   - small authenticated, audited reads/s over TLS with wrk (keep-alive);
#   - the status page's load time in headless Chromium with AGENTS agents.
# Run as root on Debian 12 from anywhere:
#
#   bench/api.sh                          # EVENTS=10000000 AGENTS=1000
#   EVENTS=1000000 bench/api.sh           # a quick run
#
# Human-readable lines go to stderr; the last line on stdout is
#   events_in_db=.. q_container_24h_p95_ms=.. q_image_7d_p95_ms=.. api_req_per_s=..
#   page_load_ms=.. q_latest_p99_ms=.. q_kind_p99_ms=.. q_severity_p99_ms=..
#   q_keyset_p99_ms=.. q_argv_p99_ms=.. q_argv_7d_p50_ms=.. export_rows_per_s=..
#   small_read_p99_under_load_ms=.. argv_index_build_s=..
# Before measuring, it waits (at most ARGV_INDEX_WAIT seconds, 1800) for the
# collector to build the argv= trigram index of every ended day
# (collector/ingest/argvindex.c); argv_index_build_s is how long that took
# from the collector's start.
# A figure that could not be measured is NA. Timings never fail the script.
# Environment: EVENTS, AGENTS, QUERIES (200), EXPORT_ROWS (200000, rows of
# one export), WRK_SECONDS (10), WRK_CONNS (32), ARGV_INDEX_WAIT (1800),
# API_DB_CONNS (8, the collector's http_db_connections),
# BUILD_DIR (build), SKIP_DEPS=1, SKIP_BUILD=1, KEEP=1 (keep the work dir).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EVENTS=${EVENTS:-10000000}
AGENTS=${AGENTS:-1000}
QUERIES=${QUERIES:-200}
EXPORT_ROWS=${EXPORT_ROWS:-200000}
WRK_SECONDS=${WRK_SECONDS:-10}
WRK_CONNS=${WRK_CONNS:-32}
API_DB_CONNS=${API_DB_CONNS:-8}
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac

say() { echo "api-bench: $*" >&2; }
die() {
  say "FAILED: $*"
  exit 1
}
[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and runs PostgreSQL as postgres)"
ARGV_INDEX_WAIT=${ARGV_INDEX_WAIT:-1800}
case "$EVENTS$AGENTS$QUERIES$EXPORT_ROWS$ARGV_INDEX_WAIT" in *[!0-9]*) die "sizes must be integers" ;; esac

if [ "${SKIP_DEPS:-0}" != 1 ]; then
  bash "$ROOT/scripts/deps.sh" >&2
  for p in wrk chromium chromium-driver python3-selenium; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -q installed ||
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >&2
  done
fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "building vigil-collector in $BUILD_DIR (RelWithDebInfo)"
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_SANITIZE=OFF \
    >/dev/null || die "cmake"
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target vigil-collector >/dev/null || die "build"
fi
COLLECTOR=$BUILD_DIR/bin/vigil-collector
[ -x "$COLLECTOR" ] || die "no $COLLECTOR"

WORK=$(mktemp -d /tmp/vigil-api-bench.XXXXXX)
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

# --- schema, then data --------------------------------------------------------------
"$COLLECTOR" migrate --db "$DB" --log-level warn >&2 || die "migrate"
say "generating $AGENTS agents, $((AGENTS * 8)) containers, $EVENTS events over 7 days"
t0=$(date +%s.%N)
psql_ <<SQL >&2
INSERT INTO agents (name, hostname, agent_version, os, kernel, boot_id, protocol_version,
                    last_seen, last_hello, status, status_at, lost_events, lost_batches,
                    lost_first, lost_last)
SELECT format('bench-node-%s', lpad(i::text, 5, '0')), format('host-%s', i), 'bench/1',
       'Debian GNU/Linux 12', '6.1.0-bench', md5(i::text), 1,
       now() - random() * interval '10 minutes', now() - interval '1 hour',
       jsonb_build_object('spool_bytes', 0, 'spool_capacity', 268435456,
         'sources', jsonb_build_array(
           jsonb_build_object('name', 'procfs', 'ok', true, 'error', ''),
           jsonb_build_object('name', 'docker-api', 'ok', i % 7 <> 0,
                              'error', CASE WHEN i % 7 = 0 THEN 'no socket' ELSE '' END))),
       now() - random() * interval '1 minute',
       CASE WHEN i % 50 = 0 THEN 1000 ELSE 0 END, CASE WHEN i % 50 = 0 THEN 2 ELSE 0 END,
       CASE WHEN i % 50 = 0 THEN now() - interval '2 days' END,
       CASE WHEN i % 50 = 0 THEN now() - interval '2 days' + interval '5 minutes' END
FROM generate_series(1, $AGENTS) i;
INSERT INTO containers (agent_id, id, name, runtime, image, image_digest, labels, command,
                        uid, gid, privileged, state, created_at, started_at, stopped_at,
                        first_seen, last_seen)
SELECT a.id, md5(a.id || '-' || c) || md5(c || '-' || a.id), format('app-%s-%s', a.id, c),
       'podman', format('registry.test/app-%s:1.%s', (a.id * 8 + c) % 50, c % 3),
       'sha256:' || md5(((a.id * 8 + c) % 50)::text) || md5('d'),
       jsonb_build_object('app', 'app-' || c, 'team', 'team-' || a.id % 10),
       ARRAY['/usr/bin/app', '--serve'], 1000, 1000, c = 0,
       CASE WHEN c < 6 THEN 'running' ELSE 'exited' END,
       now() - (c + 1) * interval '20 hours', now() - (c + 1) * interval '20 hours',
       CASE WHEN c < 6 THEN NULL ELSE now() - c * interval '10 hours' END,
       now() - (c + 1) * interval '20 hours',
       CASE WHEN c < 6 THEN now() ELSE now() - c * interval '10 hours' END
FROM agents a, generate_series(0, 7) c;
SQL
# Events: event g belongs to agent (g % AGENTS) + 1 and to one of its 6
# running containers; times spread evenly over the last 7 days.
gen_events() { # FROM TO
  psql_ <<SQL >&2
INSERT INTO events (ts, recv_ts, agent_id, seq, idx, kind, severity, container_key,
                    container_id, pid, ppid, uid, exe, argv, cwd, details)
SELECT ts, ts, a, g / $AGENTS + 1, 0,
       CASE WHEN g % 100 = 0 THEN 2 WHEN g % 1009 = 0 THEN 6 ELSE 4 END,
       CASE WHEN g % 997 = 0 THEN 4 ELSE 1 END,
       vigil_container_key(cid), cid, 1000 + g % 30000, 1, 1000,
       '/usr/bin/prog-' || g % 40, ARRAY['/usr/bin/prog-' || g % 40, '--run', (g % 977)::text],
       '/srv', NULL
FROM (SELECT g, g % $AGENTS + 1 AS a,
             now() - (g::float8 / $EVENTS) * interval '7 days' AS ts,
             md5((g % $AGENTS + 1) || '-' || (g / $AGENTS) % 6)
               || md5(((g / $AGENTS) % 6) || '-' || (g % $AGENTS + 1)) AS cid
      FROM generate_series($1, $2) g) s;
SQL
}
half=$((EVENTS / 2))
gen_events 0 $((half - 1)) &
p1=$!
gen_events "$half" $((EVENTS - 1)) &
p2=$!
wait $p1 || die "event generation"
wait $p2 || die "event generation"
psql_ -c "VACUUM ANALYZE" -c "CHECKPOINT" >&2
t1=$(date +%s.%N)
EVENTS_IN_DB=$(psql_ -At -c "SELECT count(*) FROM events")
say "loaded $EVENTS_IN_DB events in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", b-a}') s" \
  "($(psql_ -At -c "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits WHERE inhparent = 'events'::regclass") with indexes)"

# --- collector with the API ------------------------------------------------------------
HPORT=$(free_port)
APORT=$(free_port)
TOKEN=$("$COLLECTOR" token create --name bench --role viewer --db "$DB" 2>/dev/null) ||
  die "token create"
t_collector=$(date +%s.%N)
"$COLLECTOR" --listen "127.0.0.1:$APORT" --tls-cert "$WORK/pki/collector.crt" \
  --tls-key "$WORK/pki/collector.key" --agent-ca "$WORK/pki/ca.crt" --db "$DB" \
  --http-listen "127.0.0.1:$HPORT" --http-rate-limit 0 --http-db-connections "$API_DB_CONNS" \
  --log-level warn >"$WORK/collector.log" 2>&1 &
COLLECTOR_PID=$!
for _ in $(seq 100); do
  curl -sf --cacert "$WORK/pki/ca.crt" "https://localhost:$HPORT/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf --cacert "$WORK/pki/ca.crt" "https://localhost:$HPORT/healthz" >/dev/null ||
  die "the collector's API did not come up (log: $WORK/collector.log)"

# --- the argv= trigram indexes of the ended days, built by the collector ---------------------
# Days before today (UTC) within retention_days (30) without a valid index.
ARGV_UNINDEXED="SELECT count(*) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
  WHERE h.inhparent = 'events'::regclass AND c.relname ~ '^events_p[0-9]{8}\$'
  AND substr(c.relname, 9) < to_char((now() AT TIME ZONE 'UTC')::date, 'YYYYMMDD')
  AND substr(c.relname, 9) > to_char((now() AT TIME ZONE 'UTC')::date - 30, 'YYYYMMDD')
  AND NOT EXISTS (SELECT 1 FROM pg_index i
                  WHERE i.indexrelid = to_regclass(c.relname || '_argv_trgm') AND i.indisvalid)"
ARGV_INDEX_S=NA
say "waiting for the argv= indexes of the ended days (at most ${ARGV_INDEX_WAIT}s)"
while :; do
  left=$(psql_ -At -c "$ARGV_UNINDEXED" 2>/dev/null || echo error)
  now=$(date +%s.%N)
  if [ "$left" = 0 ]; then
    ARGV_INDEX_S=$(awk -v a="$t_collector" -v b="$now" 'BEGIN{printf "%.1f", b-a}')
    break
  fi
  if awk -v a="$t_collector" -v b="$now" -v w="$ARGV_INDEX_WAIT" 'BEGIN{exit !(b-a > w)}'; then
    say "argv= indexes: $left day(s) still without one after ${ARGV_INDEX_WAIT}s; measuring anyway"
    break
  fi
  sleep 1
done
say "argv= indexes built in ${ARGV_INDEX_S}s:" \
  "$(psql_ -At -c "SELECT count(*) || ' indexes, ' || pg_size_pretty(sum(pg_relation_size(indexrelid)))
     FROM pg_index WHERE indexrelid::regclass::text LIKE 'events_p%_argv_trgm'")"
grep "argv index: built" "$WORK/collector.log" | sed 's/^/    /' >&2 || true

# --- the two incident queries ----------------------------------------------------------------
Q_CONTAINER=NA
Q_IMAGE=NA
if out=$(/usr/bin/python3 "$ROOT/bench/api_measure.py" queries "$HPORT" "$TOKEN" "$WORK/pki/ca.crt" \
  "$DB" "$QUERIES"); then
  Q_CONTAINER=$(echo "$out" | sed -n 's/^q_container_24h_p95_ms=//p')
  Q_IMAGE=$(echo "$out" | sed -n 's/^q_image_7d_p95_ms=//p')
else
  say "query measurement failed"
fi
say "plan of the container query:"
cid=$(psql_ -At -c "SELECT id FROM containers WHERE state = 'running' LIMIT 1")
psql_ -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT ts, kind, exe, argv FROM events
  WHERE container_key = vigil_container_key('$cid') AND container_id = '$cid'
  AND ts > now() - interval '24 hours' ORDER BY ts DESC" 2>&1 | sed 's/^/    /' >&2

# --- newest-first listings, exports, small reads under export load ------------------------------
declare -A LIST=([q_latest_p99_ms]=NA [q_kind_p99_ms]=NA [q_severity_p99_ms]=NA
  [q_keyset_p99_ms]=NA [q_argv_p99_ms]=NA [q_argv_7d_p50_ms]=NA [export_rows_per_s]=NA
  [small_read_p99_under_load_ms]=NA)
take() { # KEY=VALUE lines on stdin -> LIST
  local k v
  while IFS='=' read -r k v; do
    [ -n "${LIST[$k]+x}" ] && LIST[$k]=$v
  done
}
if out=$(/usr/bin/python3 "$ROOT/bench/api_measure.py" listings "$HPORT" "$TOKEN" \
  "$WORK/pki/ca.crt" "$QUERIES"); then
  take <<<"$out"
else
  say "listing measurement failed"
fi
say "plan of the newest-first listing (no filter, the last 24 h):"
psql_ -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT e.ts, e.agent_id, e.seq, e.idx
  FROM events e WHERE e.ts >= now() - interval '24 hours' AND e.ts < now() + interval '1 minute'
  ORDER BY e.ts DESC, e.agent_id DESC, e.seq DESC, e.idx DESC LIMIT 101" 2>&1 |
  sed 's/^/    /' >&2
say "plan of argv= over the last 24 h (ended days through their trigram index):"
argv_q() { # SINCE UNTIL: the API's argv= filter on a rare command line
  echo "SELECT e.ts, e.agent_id, e.seq, e.idx FROM events e WHERE e.ts >= $1 AND e.ts < $2
  AND vigil_argv_text(e.argv) LIKE '%prog-7 --run 345%'
  AND strpos(array_to_string(e.argv, ' '), 'prog-7 --run 345') > 0
  ORDER BY e.ts DESC, e.agent_id DESC, e.seq DESC, e.idx DESC LIMIT 101"
}
psql_ -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
  $(argv_q "now() - interval '24 hours'" "now() + interval '1 minute'")" 2>&1 |
  sed 's/^/    /' >&2
# The current day is read through, as yesterday would be without its index:
# at the end of a UTC day that is a whole day of events.
say "argv= over one whole day read through (yesterday without its index), three runs:"
for _ in 1 2 3; do
  psql_ -c "SET enable_bitmapscan = off" -c "EXPLAIN (ANALYZE, COSTS OFF)
    $(argv_q "((now() AT TIME ZONE 'UTC')::date - 1)::timestamp AT TIME ZONE 'UTC'" \
      "(now() AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC'")" 2>&1 |
    grep -E "Seq Scan|Index Scan|Execution Time|ERROR" | sed 's/^/    /' >&2 || true
done
if out=$(/usr/bin/python3 "$ROOT/bench/api_measure.py" exports "$HPORT" "$TOKEN" \
  "$WORK/pki/ca.crt" "$EXPORT_ROWS"); then
  take <<<"$out"
else
  say "export measurement failed"
fi

# --- small requests/s over TLS -------------------------------------------------------------------
REQ_S=NA
if command -v wrk >/dev/null; then
  # The figure: a small audited database read (the agent's row, its running
  # containers), committed with its audit row before the answer goes out.
  say "wrk: $WRK_CONNS connections, ${WRK_SECONDS}s, GET /api/v1/agents/bench-node-00001" \
    "(token, TLS, keep-alive, audited)"
  if w=$(wrk -t2 -c"$WRK_CONNS" -d"${WRK_SECONDS}s" -H "Authorization: Bearer $TOKEN" \
    "https://127.0.0.1:$HPORT/api/v1/agents/bench-node-00001" 2>&1); then
    echo "$w" | sed 's/^/    /' >&2
    REQ_S=$(echo "$w" | awk '/Requests\/sec/ {printf "%.0f", $2}')
    if echo "$w" | grep -q "Non-2xx"; then
      say "wrk saw non-2xx answers: figure not counted"
      REQ_S=NA
    fi
  fi
  say "wrk: the same for GET /api/v1/whoami (no database), for comparison"
  wrk -t2 -c"$WRK_CONNS" -d"${WRK_SECONDS}s" -H "Authorization: Bearer $TOKEN" \
    "https://127.0.0.1:$HPORT/api/v1/whoami" 2>&1 | sed 's/^/    /' >&2 || true
else
  say "wrk not installed"
fi

# --- the status page with AGENTS agents ---------------------------------------------------------------
PAGE_MS=NA
if out=$(/usr/bin/python3 "$ROOT/bench/api_measure.py" page "$HPORT" "$TOKEN" 5); then
  PAGE_MS=$(echo "$out" | sed -n 's/^page_load_ms=//p')
else
  say "page measurement failed"
fi

grep -E " (warn|error): " "$WORK/collector.log" | head -5 >&2 || true
line="events_in_db=$EVENTS_IN_DB q_container_24h_p95_ms=$Q_CONTAINER q_image_7d_p95_ms=$Q_IMAGE"
line+=" api_req_per_s=$REQ_S page_load_ms=$PAGE_MS"
for k in q_latest_p99_ms q_kind_p99_ms q_severity_p99_ms q_keyset_p99_ms q_argv_p99_ms \
  q_argv_7d_p50_ms export_rows_per_s small_read_p99_under_load_ms; do
  line+=" $k=${LIST[$k]}"
done
line+=" argv_index_build_s=$ARGV_INDEX_S"
echo "$line"
