#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# PostgreSQL away under a fleet: AGENTS simulated agents send to one
# collector; PostgreSQL is stopped for DOWN_SECONDS while they go on
# sending and reconnecting (the real agent's backoff: 500 ms doubling to
# 30 s, jittered), then started again. Run as root on Debian 12:
#
#   bench/pgdown.sh                        # 1,000 agents, 180 s down
#   AGENTS=200 DOWN_SECONDS=30 bench/pgdown.sh
#
# Measures (bench/README.md, "PostgreSQL away"):
# - rss_before_mib, rss_mid_mib, rss_peak_mib, rss_end_mib: the
#   collector's RSS just before PostgreSQL stops, halfway through the
#   outage, the highest sampled (every second) while it is away, and at
#   its return; rss_growth_mib = peak - before: what the outage cost in
#   memory. It is bounded by queue_high_bytes (128 MiB by default: the
#   batches held until they can be written) and then stays flat: end - mid
#   is about 0 (issue 11, item 3);
# - first_ack_after_pg_s: from PostgreSQL accepting connections again to
#   the first batch acknowledged after it (progress lines every 0.25 s);
# - backlog_acked_after_pg_s: from the same moment to every event sent
#   before it (the outage's backlog) being acknowledged;
# - lost, dup: events sent against distinct events stored, and rows stored
#   twice.
# Human-readable lines first; the last line is key=value figures. Exits 1
# only if something broke (lost or duplicated events, no ack after
# PostgreSQL returned).
#
# Environment: AGENTS (1000), RATE (total events/s, 2000), BATCH_EVENTS
# (20), WARM_SECONDS (20), DOWN_SECONDS (180), AFTER_SECONDS (60: how long
# the agents go on sending after the return), BUILD_DIR (build),
# SKIP_DEPS=1, SKIP_BUILD=1, KEEP=1 keeps the work directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=pgdown
AGENTS=${AGENTS:-1000}
RATE=${RATE:-2000}
BATCH_EVENTS=${BATCH_EVENTS:-20}
WARM_SECONDS=${WARM_SECONDS:-20}
DOWN_SECONDS=${DOWN_SECONDS:-180}
AFTER_SECONDS=${AFTER_SECONDS:-60}
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and runs PostgreSQL as postgres)"
case "$AGENTS$RATE$BATCH_EVENTS$WARM_SECONDS$DOWN_SECONDS$AFTER_SECONDS" in
*[!0-9]*) die "sizes must be integers" ;;
esac
[ "$AGENTS" -ge 1 ] && [ "$RATE" -ge 1 ] && [ "$BATCH_EVENTS" -ge 1 ] ||
  die "AGENTS, RATE and BATCH_EVENTS must be at least 1"

bench_deps_build vigil-collector vigil-loadgen
COLLECTOR_PID='' LOADGEN_PID=''
BENCH_PID_VARS=(COLLECTOR_PID)
bench_workdir pgdown
bench_pki
bench_pg_start "$(free_port)"
PORT=$(free_port)
bench_collector_start "$PORT" "$WORK/collector.log"

# progress: "UNIX_TIME ACKED SENT" of each of vigil-loadgen's progress lines
progress() {
  sed -n 's/.* sent=\([0-9]*\) acked=\([0-9]*\) .* unix=\([0-9.]*\)$/\3 \2 \1/p' "$WORK/load.err"
}

duration=$((WARM_SECONDS + DOWN_SECONDS + AFTER_SECONDS))
say "$AGENTS agents, $RATE events/s in batches of $BATCH_EVENTS; PostgreSQL away for" \
  "$DOWN_SECONDS s after $WARM_SECONDS s"
"$BUILD_DIR/bin/vigil-loadgen" --connect "127.0.0.1:$PORT" --ca "$PKI/ca.crt" \
  --issuer-cert "$PKI/ca.crt" --issuer-key "$PKI/ca.key" --agents "$AGENTS" \
  --threads 2 --rate "$RATE" --batch-events "$BATCH_EVENTS" --event-bytes 300 \
  --duration "$duration" --backoff-min 500 --backoff-max 30000 --agent-prefix pgdown- \
  --report-interval 0.25 --timeout $((duration + 600)) \
  >"$WORK/load.out" 2>"$WORK/load.err" &
LOADGEN_PID=$!
sleep "$WARM_SECONDS"
kill -0 "$LOADGEN_PID" 2>/dev/null || die "vigil-loadgen exited early: $(tail -n 3 "$WORK/load.err")"

RSS0=$(rss_kib "$COLLECTOR_PID")
say "stopping PostgreSQL (collector RSS $((RSS0 / 1024)) MiB)"
bash "$ROOT/scripts/pg.sh" stop "$WORK/pg" >/dev/null
PEAK=$RSS0 RSS_MID=''
start=$SECONDS end=$((SECONDS + DOWN_SECONDS))
while [ "$SECONDS" -lt "$end" ]; do
  r=$(rss_kib "$COLLECTOR_PID") || die "the collector exited while PostgreSQL was away"
  [ "$r" -gt "$PEAK" ] && PEAK=$r
  [ -z "$RSS_MID" ] && [ $((SECONDS - start)) -ge $((DOWN_SECONDS / 2)) ] && RSS_MID=$r
  sleep 1
done
RSS_MID=${RSS_MID:-$PEAK}
RSS_END=$(rss_kib "$COLLECTOR_PID")
say "starting PostgreSQL (collector RSS $((RSS_END / 1024)) MiB, peak $((PEAK / 1024)) MiB)"
bash "$ROOT/scripts/pg.sh" start "$WORK/pg" "$PGPORT" >/dev/null
T_UP=$(date +%s.%N)
read -r ACKED_UP SENT_UP < <(progress | awk -v t="$T_UP" '$1 <= t { a = $2; n = $3 }
  END { print a + 0, n + 0 }')

wait "$LOADGEN_PID" || die "vigil-loadgen: not every batch was acknowledged: $(tail -n 2 "$WORK/load.err")"
T_DONE=$(date +%s.%N)
LOADGEN_PID=''
# (awk reads to the end: an early exit would fail the pipeline)
FIRST=$(progress | awk -v t="$T_UP" -v a="$ACKED_UP" '$1 > t && $2 > a && f == "" { f = $1 - t }
  END { print f }')
[ -n "$FIRST" ] || die "no batch was acknowledged after PostgreSQL returned"
SENT=$(kv events_sent "$(tail -n 1 "$WORK/load.out")")
BACKLOG=$(progress | awk -v t="$T_UP" -v n="$SENT_UP" '$1 > t && $2 >= n && f == "" { f = $1 - t }
  END { print f }')
[ -n "$BACKLOG" ] || BACKLOG=$(calc %.2f "$T_DONE - $T_UP")
read -r LOST DUP _ _ < <(lost_dup "a.name LIKE 'pgdown-%'")
say "sent $SENT events; lost $LOST, duplicated $DUP; first ack $(calc %.2f "$FIRST") s and" \
  "the $SENT_UP sent before it all acked $(calc %.2f "$BACKLOG") s after PostgreSQL returned"
echo "pgdown_agents=$AGENTS pgdown_s=$DOWN_SECONDS rss_before_mib=$(calc %.1f "$RSS0 / 1024")" \
  "rss_mid_mib=$(calc %.1f "$RSS_MID / 1024") rss_peak_mib=$(calc %.1f "$PEAK / 1024") rss_end_mib=$(calc %.1f "$RSS_END / 1024")" \
  "rss_growth_mib=$(calc %.1f "($PEAK - $RSS0) / 1024") first_ack_after_pg_s=$(calc %.2f "$FIRST")" \
  "backlog_acked_after_pg_s=$(calc %.2f "$BACKLOG") lost=$LOST dup=$DUP"
[ "$LOST" -eq 0 ] && [ "$DUP" -eq 0 ] || exit 1
