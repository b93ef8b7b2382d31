#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Ingest benchmark: vigil-collector + a throwaway PostgreSQL + vigil-loadgen,
# all on this machine. Run as root on Debian 12 from anywhere:
#
#   bench/ingest.sh                       # AGENTS=100 EVENTS=2000000 EVENT_BYTES=300
#   AGENTS=10 EVENTS=100000 bench/ingest.sh
#
# Measures (see bench/README.md): flat-out events/s and CPU per event of the
# collector and of PostgreSQL; lost and duplicated rows; a plain binary COPY
# of the same rows into the same table for comparison; ack latency at half
# the flat-out rate; the flat-out run again with the rules off (the rule
# engine's cost, rules_cost_pct); collector memory per idle connection with
# 10,000 agents (idle_conn_kib); the same agents reconnecting after the
# collector is restarted (storm_settle_s, storm_drops).
# Rows are the agents' events (seq > 0): the finding events the collector
# adds (seq < 0) are not counted as sent or stored.
# Human-readable lines first; the last line is key=value figures. Exits 1
# only if something broke (a run failed, rows lost or duplicated).
#
# Environment: AGENTS, EVENTS, EVENT_BYTES (sizes); BATCH_EVENTS (500);
# DB_WRITERS (2); LOADGEN_THREADS (1); WARM_EVENTS (EVENTS); LAT_SECONDS (20);
# IDLE_AGENTS (10000); IDLE_RAMP (1 s per 1000 agents); IDLE_SECONDS (120);
# IDLE_LOADGEN_THREADS (2); SOURCE_ADDRS (1); STORM_SECONDS (180); STORM_WATCH
# (30); BUILD_DIR (build); SKIP_DEPS=1,
# SKIP_BUILD=1; KEEP=1 keeps the work directory (PKI, database, logs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=ingest
AGENTS=${AGENTS:-100}
EVENTS=${EVENTS:-2000000}
EVENT_BYTES=${EVENT_BYTES:-300}
BATCH_EVENTS=${BATCH_EVENTS:-500}
DB_WRITERS=${DB_WRITERS:-2}
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
WARM_EVENTS=${WARM_EVENTS:-$EVENTS}
LAT_SECONDS=${LAT_SECONDS:-20}
IDLE_AGENTS=${IDLE_AGENTS:-10000}
IDLE_SECONDS=${IDLE_SECONDS:-120}
IDLE_RAMP=${IDLE_RAMP:-$(((IDLE_AGENTS + 999) / 1000))}
IDLE_LOADGEN_THREADS=${IDLE_LOADGEN_THREADS:-2}
SOURCE_ADDRS=${SOURCE_ADDRS:-1}
STORM_SECONDS=${STORM_SECONDS:-180}
STORM_WATCH=${STORM_WATCH:-30}
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and runs PostgreSQL as postgres)"
case "$AGENTS$EVENTS$EVENT_BYTES$IDLE_AGENTS$WARM_EVENTS$IDLE_RAMP$SOURCE_ADDRS$STORM_WATCH" in *[!0-9]*) die "sizes must be integers" ;; esac

# --- dependencies and build -------------------------------------------------
bench_deps_build vigil-collector vigil-loadgen
COLLECTOR=$BUILD_DIR/bin/vigil-collector
LOADGEN=$BUILD_DIR/bin/vigil-loadgen
if [ ! -x "$COLLECTOR" ] || [ ! -x "$LOADGEN" ]; then die "no binaries in $BUILD_DIR/bin"; fi

# --- helpers -------------------------------------------------------------------------
# start_collector: start it on PORT (the rule engine on unless RULES=false)
# and wait until it listens.
start_collector() {
  bench_collector_start "$PORT" "$WORK/collector.log" --db-writers "$DB_WRITERS" \
    --rules "${RULES:-true}"
}
# stop_collector: SIGTERM (it drains), SIGKILL after 10 s.
stop_collector() {
  bench_stop "$COLLECTOR_PID"
  COLLECTOR_PID=
}

# --- throwaway PKI and PostgreSQL ----------------------------------------------
# The exit trap stops the idle agents' vigil-loadgen (IDLE_PID) and the
# collector with SIGTERM, then PostgreSQL.
COLLECTOR_PID='' IDLE_PID=''
BENCH_PID_VARS=(IDLE_PID COLLECTOR_PID)
bench_workdir ingest
bench_pki
bench_pg_start 54329

PORT=$(free_port)
# --- CPU accounting ----------------------------------------------------------------
# (ticks_of, rss_kib and TCK: bench/lib.sh)
# pg_ticks: the postmaster's own and reaped children's time (cutime,
# cstime) plus the time of its live children.
pg_ticks() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$POSTMASTER" '
    { pid = $1; line = $0; sub(/^.*\) /, "", line); split(line, a, " ")
      if (pid == pm) t += a[12] + a[13] + a[14] + a[15]
      else if (a[2] == pm) t += a[12] + a[13] }
    END { print t + 0 }'
}

# run_loadgen OUTFILE ARGS...: run vigil-loadgen (stderr to OUTFILE.err),
# print its result line; return its exit status.
run_loadgen() {
  local out=$1 rc=0
  shift
  local TIMEFORMAT='loadgen_cpu_s %U %S'
  { time "$LOADGEN" --connect "127.0.0.1:$PORT" --ca "$PKI/ca.crt" \
    --issuer-cert "$PKI/ca.crt" --issuer-key "$PKI/ca.key" \
    --threads "$LOADGEN_THREADS" --batch-events "$BATCH_EVENTS" \
    --event-bytes "$EVENT_BYTES" --quiet "$@" >"$out"; } 2>"$out.err" || rc=$?
  tail -n 1 "$out"
  return "$rc"
}

BROKEN=()
start_collector
say "collector pid $COLLECTOR_PID on 127.0.0.1:$PORT, PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}') pid $POSTMASTER, $(nproc) cores"

# --- 0. warm-up ----------------------------------------------------------------------------
# A fresh cluster creates (and zero-fills) every 16 MiB WAL segment it
# writes; once a checkpoint has passed, it renames old segments instead. The
# first phase to run would pay for that alone (about a sixth of the
# database's CPU here), so the same agents first send WARM_EVENTS events,
# which are then truncated away: both measured phases find recycled WAL,
# existing agents and containers, and a warm cache, as a running collector
# does.
if [ "$WARM_EVENTS" -gt 0 ]; then
  say "0. warm-up: $AGENTS agents, $WARM_EVENTS events (not measured)"
  rc=0
  R0=$(run_loadgen "$WORK/run0.out" --agents "$AGENTS" --events "$WARM_EVENTS" \
    --agent-prefix bench- --timeout $((300 + WARM_EVENTS / 2000))) || rc=$?
  [ "$rc" -eq 0 ] || BROKEN+=("warm-up run exit $rc")
  truncate_events
  psql_ -c "VACUUM (ANALYZE)" >/dev/null
fi
psql_ -c "CHECKPOINT"

# --- 1. flat out -------------------------------------------------------------------------
say "1. flat out: $AGENTS agents, $EVENTS events of ~$EVENT_BYTES bytes, batches of $BATCH_EVENTS"
c0=$(ticks_of "$COLLECTOR_PID")
p0=$(pg_ticks)
rc=0
R1=$(run_loadgen "$WORK/run1.out" --agents "$AGENTS" --events "$EVENTS" \
  --agent-prefix bench- --timeout $((300 + EVENTS / 2000))) || rc=$?
c1=$(ticks_of "$COLLECTOR_PID")
p1=$(pg_ticks)
kill -0 "$COLLECTOR_PID" 2>/dev/null || BROKEN+=("collector died during the flat-out run")
echo "loadgen: $R1"
[ "$rc" -eq 0 ] || {
  BROKEN+=("flat-out run exit $rc")
  grep -v loadgen_cpu_s "$WORK/run1.out.err" | tail -n 5 >&2
}
EPS=$(kv events_per_s "$R1")
EPS=${EPS:-0}
SENT1=$(kv events_sent "$R1")
SENT1=${SENT1:-0}
read -r STORED DISTINCT < <(psql_ -tA -F ' ' -c \
  "SELECT count(*), count(DISTINCT (agent_id, seq, idx)) FROM events WHERE seq > 0")
DEAD=$(psql_ -tA -c "SELECT count(*) FROM dead_letters")
LOST=$((SENT1 - DISTINCT))
DUP=$((STORED - DISTINCT))
CCPU=NA PCPU=NA LCPU=NA
if [ "$STORED" -gt 0 ] && [ "$c1" -gt 0 ]; then
  CCPU=$(calc %.2f "($c1 - $c0) * 1000000 / $TCK / $STORED")
  PCPU=$(calc %.2f "($p1 - $p0) * 1000000 / $TCK / $STORED")
fi
read -r _ lu ls < <(grep loadgen_cpu_s "$WORK/run1.out.err" | tail -n 1) || true
[ "$SENT1" -gt 0 ] && LCPU=$(calc %.2f "(${lu:-0} + ${ls:-0}) * 1000000 / $SENT1")
echo "flat out: $EPS events/s; CPU per stored event: collector $CCPU us," \
  "PostgreSQL $PCPU us, loadgen $LCPU us"
echo "rows: sent $SENT1, stored $STORED, distinct $DISTINCT, lost $LOST, duplicated $DUP," \
  "dead letters $DEAD"

# --- 2. plain COPY of the same rows ----------------------------------------------------------
say "2. binary COPY of the same $STORED rows by $DB_WRITERS sessions"
for k in $(seq 0 $((DB_WRITERS - 1))); do
  # the agents' rows only (seq > 0), as counted above: not the collector's
  # own finding events
  psql_ -c "\\copy (SELECT * FROM events WHERE seq > 0 AND agent_id % $DB_WRITERS = $k) TO '$WORK/copy$k.bin' WITH (FORMAT binary)"
done
truncate_events
psql_ -c "CHECKPOINT"
t0=$(date +%s.%N)
pids=()
for k in $(seq 0 $((DB_WRITERS - 1))); do
  psql_ -c "\\copy events FROM '$WORK/copy$k.bin' WITH (FORMAT binary)" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || BROKEN+=("COPY session failed"); done
t1=$(date +%s.%N)
rm -f "$WORK"/copy*.bin
COPIED=$(psql_ -tA -c "SELECT count(*) FROM events")
[ "$COPIED" = "$STORED" ] || BROKEN+=("COPY restored $COPIED of $STORED rows")
COPY_RPS=$(calc %.1f "$COPIED / ($t1 - $t0)")
RATIO=NA
[ "$COPIED" -gt 0 ] && RATIO=$(calc %.2f "$EPS / $COPY_RPS")
echo "copy: $COPIED rows in $(calc %.2f "$t1 - $t0") s = $COPY_RPS rows/s;" \
  "collector events/s / COPY rows/s = $RATIO"

# --- 3. ack latency at half the flat-out rate -------------------------------------------------
P50=NA P99=NA
case $EPS in
0 | 0.0) say "3. skipped: no flat-out rate" ;;
*)
  RATE=$(calc %d "$EPS / 2")
  # the same starting point as the other runs: no checkpoint due from the
  # COPY before (its WAL), table statistics up to date
  psql_ -c "VACUUM (ANALYZE) events" -c "CHECKPOINT" >/dev/null
  say "3. latency: $AGENTS agents at $RATE events/s for $LAT_SECONDS s"
  rc=0
  R2=$(run_loadgen "$WORK/run2.out" --agents "$AGENTS" --rate "$RATE" \
    --duration "$LAT_SECONDS" --agent-prefix lat- --timeout $((LAT_SECONDS + 300))) || rc=$?
  echo "loadgen: $R2"
  [ "$rc" -eq 0 ] || BROKEN+=("latency run exit $rc")
  P50=$(kv ack_p50_ms "$R2")
  P99=$(kv ack_p99_ms "$R2")
  SENT2=$(kv events_sent "$R2")
  read -r S2 D2 < <(psql_ -tA -F ' ' -c "SELECT count(*), count(DISTINCT (e.agent_id, e.seq, e.idx))
      FROM events e JOIN agents a ON a.id = e.agent_id WHERE a.name LIKE 'lat-%' AND e.seq > 0")
  LOST=$((LOST + SENT2 - D2))
  DUP=$((DUP + S2 - D2))
  echo "latency at $RATE events/s: ack p50 $P50 ms, p99 $P99 ms; rows sent $SENT2, stored $S2, distinct $D2"
  ;;
esac

# --- 4. flat out again, rules off ---------------------------------------------------------------
# The same run as 1, from the same starting point (the agents and
# containers known, recycled WAL), with the rule engine switched off: what
# judging every container state and exec, and writing the findings, costs.
say "4. flat out with rules off: $AGENTS agents, $EVENTS events"
truncate_events
psql_ -c "VACUUM (ANALYZE)" \
  -c "CHECKPOINT" >/dev/null
FINDINGS=$(psql_ -tA -c "SELECT count(*) FROM findings")
stop_collector
RULES=false start_collector
c0=$(ticks_of "$COLLECTOR_PID")
p0=$(pg_ticks)
rc=0
R4=$(run_loadgen "$WORK/run4.out" --agents "$AGENTS" --events "$EVENTS" \
  --agent-prefix bench- --timeout $((300 + EVENTS / 2000))) || rc=$?
c1=$(ticks_of "$COLLECTOR_PID")
p1=$(pg_ticks)
echo "loadgen: $R4"
[ "$rc" -eq 0 ] || BROKEN+=("rules-off run exit $rc")
EPS_OFF=$(kv events_per_s "$R4")
EPS_OFF=${EPS_OFF:-0}
STORED4=$(psql_ -tA -c "SELECT count(*) FROM events WHERE seq > 0")
CCPU_OFF=NA PCPU_OFF=NA RULES_COST=NA RULES_EPS_RATIO=NA
if [ "$STORED4" -gt 0 ] && [ "$CCPU" != NA ]; then
  CCPU_OFF=$(calc %.2f "($c1 - $c0) * 1000000 / $TCK / $STORED4")
  PCPU_OFF=$(calc %.2f "($p1 - $p0) * 1000000 / $TCK / $STORED4")
  RULES_COST=$(calc %.1f "(($CCPU + $PCPU) - ($CCPU_OFF + $PCPU_OFF)) * 100 / ($CCPU_OFF + $PCPU_OFF)")
fi
case $EPS_OFF in 0 | 0.0) ;; *) RULES_EPS_RATIO=$(calc %.2f "$EPS / $EPS_OFF") ;; esac
echo "rules off: $EPS_OFF events/s; CPU per stored event: collector $CCPU_OFF us," \
  "PostgreSQL $PCPU_OFF us; rules on: collector $CCPU us, PostgreSQL $PCPU us," \
  "$FINDINGS findings; cost of the rules $RULES_COST % of CPU per event," \
  "events/s on/off $RULES_EPS_RATIO"

# --- 5. memory per idle connection ----------------------------------------------------------
say "5. idle: $IDLE_AGENTS agents (first connections over $IDLE_RAMP s) against a freshly started collector"
[ "$(ulimit -Hn)" -ge $((IDLE_AGENTS + 200)) ] ||
  say "the open-file limit ($(ulimit -Hn)) is below $IDLE_AGENTS agents: expect refusals"
[ "$(cat /proc/sys/net/core/somaxconn)" -ge 1024 ] ||
  say "net.core.somaxconn is $(cat /proc/sys/net/core/somaxconn): a storm overflows the listen queue"
# progress_after T0: "SETTLE MIN FIRST_ALL" from the idle run's progress
# lines at or after Unix time T0: seconds from T0 to the first line with
# every agent connected (NA if none), the fewest connected on any line
# from then on, and that line's Unix time.
progress_after() {
  sed -n 's/.* connected=\([0-9]*\)\/.* unix=\([0-9.]*\)$/\2 \1/p' "$WORK/idle.err" |
    awk -v t0="$1" -v n="$IDLE_AGENTS" '$1 >= t0 {
        if (s == "" && $2 >= n) s = $1
        if (s != "" && (m == "" || $2 < m)) m = $2 }
      END { if (s == "") print "NA NA NA"; else printf "%.1f %d %s\n", s - t0, m, s }'
}
# last_connected: agents connected and welcomed, from the last progress line.
last_connected() {
  { grep -o 'connected=[0-9]*' "$WORK/idle.err" || echo connected=0; } | tail -n 1 | cut -d= -f2
}
stop_collector
start_collector
sleep 2
RSS0=$(rss_kib "$COLLECTOR_PID")
# The agents reconnect the way the real agent does (agent/settings.c:
# backoff_min 500 ms doubling to backoff_max 30 s, jittered) and stay until
# step 6 is over; SOURCE_ADDRS > 1 spreads them over that many loopback
# addresses (127.1.0.x), as distinct hosts; 1 is one host, or a fleet
# behind one NAT.
src=()
[ "$SOURCE_ADDRS" -gt 1 ] && src=(--source-addrs "$SOURCE_ADDRS")
"$LOADGEN" --connect "127.0.0.1:$PORT" --ca "$PKI/ca.crt" --issuer-cert "$PKI/ca.crt" \
  --issuer-key "$PKI/ca.key" --agents "$IDLE_AGENTS" --idle --duration 86400 \
  --threads "$IDLE_LOADGEN_THREADS" --ramp "$IDLE_RAMP" --backoff-min 500 --backoff-max 30000 \
  "${src[@]}" --agent-prefix idle- --report-interval 0.5 --timeout 86401 \
  >"$WORK/idle.out" 2>"$WORK/idle.err" &
IDLE_PID=$!
connected=0
end=$((SECONDS + IDLE_RAMP + IDLE_SECONDS))
while [ "$SECONDS" -lt "$end" ] && kill -0 "$IDLE_PID" 2>/dev/null; do
  connected=$(last_connected)
  [ "$connected" -ge "$IDLE_AGENTS" ] && break
  sleep 0.5
done
sleep 2
RSS1=0
for _ in 1 2 3; do
  r=$(rss_kib "$COLLECTOR_PID")
  [ "$r" -gt "$RSS1" ] && RSS1=$r
  sleep 1
done
connected=$(last_connected)
IDLE_KIB=NA
if [ "$connected" -gt 0 ]; then
  IDLE_KIB=$(calc %.1f "($RSS1 - $RSS0) / $connected")
  [ "$connected" -ge "$IDLE_AGENTS" ] || BROKEN+=("only $connected of $IDLE_AGENTS idle agents connected")
fi
printf 'idle: collector RSS %s KiB before, %s KiB with %s agents connected: %s KiB each (%s)\n' \
  "$RSS0" "$RSS1" "$connected" "$IDLE_KIB" \
  "$(grep -o 'reconnects=[0-9]*' "$WORK/idle.err" | tail -n 1) on the way"

# --- 6. reconnect storm -----------------------------------------------------------------------
# The collector is stopped (SIGTERM: it drains and closes every connection)
# and started again at once; every agent reconnects after its backoff.
# storm_settle_s: from the start of the new collector process to the first
# progress line with every agent connected and welcomed again. Then, for
# STORM_WATCH s, a second outage would show as agents that are no longer
# connected (storm_drops: all minus the fewest connected on any line).
STORM_SETTLE=NA STORM_DROPS=NA
if [ "$connected" -ge "$IDLE_AGENTS" ] && kill -0 "$IDLE_PID" 2>/dev/null; then
  say "6. storm: collector restarted under $IDLE_AGENTS connected agents"
  stop_collector
  T0=$(date +%s.%N)
  start_collector
  end=$((SECONDS + STORM_SECONDS))
  while [ "$SECONDS" -lt "$end" ] && kill -0 "$IDLE_PID" 2>/dev/null; do
    read -r STORM_SETTLE _ _ < <(progress_after "$T0")
    [ "$STORM_SETTLE" != NA ] && break
    sleep 0.5
  done
  [ "$STORM_SETTLE" != NA ] && sleep "$STORM_WATCH"
  read -r STORM_SETTLE min_after _ < <(progress_after "$T0")
  if [ "$STORM_SETTLE" = NA ]; then
    say "the agents were not all connected again within $STORM_SECONDS s"
  else
    STORM_DROPS=$((IDLE_AGENTS - min_after))
  fi
  # none at all (a small storm) is no failure under pipefail
  refusals=$({ grep -o 'so far: [0-9]* refused at accept, [0-9]* pending dropped' \
    "$WORK/collector.log" || true; } | tail -n 1)
  echo "storm: all $IDLE_AGENTS agents connected again $STORM_SETTLE s after the restart;" \
    "$STORM_DROPS lost their connection in the $STORM_WATCH s after that;" \
    "collector's last admission line: ${refusals:-none}; loadgen: $(last_connected)" \
    "connected, $(grep -o 'reconnects=[0-9]*' "$WORK/idle.err" | tail -n 1)"
fi
kill -INT "$IDLE_PID" 2>/dev/null || true
wait "$IDLE_PID" 2>/dev/null || true
IDLE_PID=
echo "loadgen: $(tail -n 1 "$WORK/idle.out")"

# --- result ------------------------------------------------------------------------------------
if [ "$LOST" -ne 0 ] || [ "$DUP" -ne 0 ]; then BROKEN+=("lost $LOST, duplicated $DUP"); fi
if [ -s "$WORK/collector.log" ]; then
  say "collector warnings/errors: $(wc -l <"$WORK/collector.log") lines, last ones:"
  tail -n 5 "$WORK/collector.log" >&2
fi
echo "events_per_s=$EPS copy_rows_per_s=$COPY_RPS ratio=$RATIO" \
  "collector_cpu_us_per_event=$CCPU pg_cpu_us_per_event=$PCPU lost=$LOST dup=$DUP" \
  "ack_p50_ms=$P50 ack_p99_ms=$P99 idle_conn_kib=$IDLE_KIB" \
  "rules_cost_pct=$RULES_COST events_per_s_rules_off=$EPS_OFF rules_eps_ratio=$RULES_EPS_RATIO" \
  "idle_agents=$IDLE_AGENTS storm_settle_s=$STORM_SETTLE storm_drops=$STORM_DROPS"
if [ ${#BROKEN[@]} -gt 0 ]; then
  say "broken: ${BROKEN[*]}"
  exit 1
fi
