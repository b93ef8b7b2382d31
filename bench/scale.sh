#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Scale-out benchmark: one collector against two behind HAProxy, on the
# same PostgreSQL in the same run, then a collector SIGKILLed under load.
# Run as root on Debian 12 from anywhere:
#
#   bench/scale.sh                       # AGENTS=50 EVENTS=1000000 ROUNDS=2
#   AGENTS=20 EVENTS=200000 ROUNDS=1 FAILOVER_SECONDS=15 bench/scale.sh
#
# Measures (see bench/README.md, "Scale-out"):
# - one_collector_events_per_s: vigil-loadgen straight to collector 1;
# - two_collectors_haproxy_events_per_s: the same agents through HAProxy
#   (deploy/haproxy/haproxy.cfg with local ports and paths) to collectors
#   1 and 2; the two runs alternate ROUNDS times, each from the same
#   starting point (events truncated, checkpoint), and each figure is the
#   mean over the rounds; haproxy_cost_pct = 100 * (1 - two / one);
# - failover_s: FAILOVER_AGENTS agents send through HAProxy at half the
#   two-collector rate; collector 2 is SIGKILLed; each agent that lost its
#   connection times it from the loss to its first Ack after it (through
#   HAProxy, from collector 1): failover_s is the longest of those,
#   failover_p95_s the 95th percentile;
# - lost and dup over every run: an event sent but not stored, or stored
#   twice.
# Human-readable lines first; the last line is key=value figures. Exits 1
# only if something broke (a run failed, rows lost or duplicated).
#
# Environment: AGENTS (50), EVENTS (1000000), EVENT_BYTES (300),
# BATCH_EVENTS (500), DB_WRITERS (2), LOADGEN_THREADS (1), WARM_EVENTS
# (EVENTS), ROUNDS (2), FAILOVER_AGENTS (AGENTS), FAILOVER_SECONDS (30),
# BUILD_DIR (build), SKIP_DEPS=1, SKIP_BUILD=1, KEEP=1 keeps the work
# directory (PKI, database, logs, the HAProxy configuration).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=scale
AGENTS=${AGENTS:-50}
EVENTS=${EVENTS:-1000000}
EVENT_BYTES=${EVENT_BYTES:-300}
BATCH_EVENTS=${BATCH_EVENTS:-500}
DB_WRITERS=${DB_WRITERS:-2}
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
WARM_EVENTS=${WARM_EVENTS:-$EVENTS}
ROUNDS=${ROUNDS:-2}
FAILOVER_AGENTS=${FAILOVER_AGENTS:-$AGENTS}
FAILOVER_SECONDS=${FAILOVER_SECONDS:-30}
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and runs PostgreSQL as postgres)"
case "$AGENTS$EVENTS$EVENT_BYTES$WARM_EVENTS$ROUNDS$FAILOVER_AGENTS$FAILOVER_SECONDS" in
*[!0-9]*) die "sizes must be integers" ;;
esac
if [ "$ROUNDS" -lt 1 ] || [ "$FAILOVER_SECONDS" -lt 6 ]; then die "ROUNDS >= 1, FAILOVER_SECONDS >= 6"; fi

bench_deps_build vigil-collector vigil-loadgen
command -v haproxy >/dev/null || die "haproxy is not installed (scripts/deps.sh)"

C1_PID='' C2_PID='' HAPROXY_PID='' LOADGEN_PID=''
BENCH_PID_VARS=(HAPROXY_PID C1_PID C2_PID)
bench_workdir scale
bench_pki
bench_operator_cert vigil-haproxy
bench_pg_start 54339

# --- two collectors on one PostgreSQL, HAProxy in front --------------------------
P1=$(free_port) H1=$(free_port) P2=$(free_port) H2=$(free_port)
HP=$(free_port) HPAPI=$(free_port)
ports=("$P1 $H1" "$P2 $H2")
for i in 1 2; do
  read -r port http <<<"${ports[$((i - 1))]}"
  # Behind HAProxy every agent connection comes from one address: the
  # per-address cap on pending connections is raised to the global one
  # (deploy/haproxy/haproxy.cfg says so).
  bench_collector_start "$port" "$WORK/collector$i.log" --db-writers "$DB_WRITERS" \
    --http-listen "127.0.0.1:$http" --http-operator-ca "$WORK/opca.crt" \
    --max-pending-per-address 1024
  eval "C${i}_PID=\$COLLECTOR_PID"
done

# The shipped configuration, with this run's ports and files. Anything of
# the example addresses left means the file changed shape: fail.
sed -e "s#bind :7443#bind 127.0.0.1:$HP#" -e "s#bind :8443#bind 127.0.0.1:$HPAPI#" \
  -e "s#ca-file /etc/vigil/ca.crt#ca-file $PKI/ca.crt#" \
  -e "s#crt /etc/haproxy/vigil-health.pem#crt $WORK/vigil-haproxy.pem#" \
  -e "s#stats socket /run/haproxy/vigil-admin.sock#stats socket $WORK/haproxy.sock#" \
  -e "/^ *server collector1 /{s#192\.0\.2\.11:7443#127.0.0.1:$P1#;s#192\.0\.2\.11:8443#127.0.0.1:$H1#;s#port 8443#port $H1#;s#verifyhost [^ ]*#verifyhost localhost#}" \
  -e "/^ *server collector2 /{s#192\.0\.2\.12:7443#127.0.0.1:$P2#;s#192\.0\.2\.12:8443#127.0.0.1:$H2#;s#port 8443#port $H2#;s#verifyhost [^ ]*#verifyhost localhost#}" \
  "$ROOT/deploy/haproxy/haproxy.cfg" >"$WORK/haproxy.cfg"
if grep -qE '192\.0\.2\.|:7443|:8443|/etc/|/run/' "$WORK/haproxy.cfg"; then
  grep -nE '192\.0\.2\.|:7443|:8443|/etc/|/run/' "$WORK/haproxy.cfg" >&2
  die "deploy/haproxy/haproxy.cfg changed shape: update the substitutions in bench/scale.sh"
fi
haproxy -c -q -f "$WORK/haproxy.cfg" || die "haproxy -c"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!

# hp_cmd CMD: a command on HAProxy's stats socket.
hp_cmd() {
  python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode(errors="replace"))' "$WORK/haproxy.sock" "$1"
}
# hp_field BACKEND SERVER FIELD: a field of `show stat` (status, scur, ...).
hp_field() {
  hp_cmd "show stat" | awk -F, -v b="$1" -v s="$2" -v f="$3" '
    NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
    $1 == b && $2 == s { print $col[f] }'
}
up=0
for _ in $(seq 1 150); do
  kill -0 "$HAPROXY_PID" 2>/dev/null || {
    cat "$WORK/haproxy.log" >&2
    die "haproxy exited"
  }
  if [ "$(hp_field vigil_collectors collector1 status 2>/dev/null)" = UP ] &&
    [ "$(hp_field vigil_collectors collector2 status 2>/dev/null)" = UP ]; then
    up=1
    break
  fi
  sleep 0.2
done
[ "$up" = 1 ] || {
  tail -n 20 "$WORK/haproxy.log" >&2
  die "the collectors did not pass HAProxy's /readyz check within 30 s"
}
say "collectors 127.0.0.1:$P1 and :$P2 (API :$H1, :$H2), HAProxy 127.0.0.1:$HP;" \
  "PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}'), $(nproc) cores"

BROKEN=()
LOST=0 DUP=0
# run_flat OUT ADDRESS: the AGENTS bench- agents send EVENTS flat out to
# ADDRESS from a fresh start (no events, checkpointed); sets EPS and adds
# the run's lost and duplicated rows.
run_flat() {
  local out=$1 addr=$2 rc=0 r eps l d
  truncate_events
  psql_ -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null
  r=$(bench_loadgen "$out" "$addr" --agents "$AGENTS" --events "$EVENTS" \
    --threads "$LOADGEN_THREADS" --batch-events "$BATCH_EVENTS" --event-bytes "$EVENT_BYTES" \
    --agent-prefix bench- --timeout $((300 + EVENTS / 2000))) || rc=$?
  [ "$rc" -eq 0 ] || {
    BROKEN+=("run $(basename "$out") exit $rc")
    tail -n 5 "$out.err" >&2
  }
  eps=$(kv events_per_s "$r")
  SENT=$(kv events_sent "$r")
  SENT=${SENT:-0}
  read -r l d _ _ < <(lost_dup "a.name LIKE 'bench-%'")
  LOST=$((LOST + l))
  DUP=$((DUP + d))
  say "  $(basename "$out"): ${eps:-NA} events/s (sent $SENT, lost $l, duplicated $d)"
  EPS=${eps:-0}
}

# --- 0. warm-up (not measured) -----------------------------------------------------------
# As in bench/ingest.sh: recycled WAL, the agents and their containers known.
if [ "$WARM_EVENTS" -gt 0 ]; then
  say "0. warm-up: $AGENTS agents, $WARM_EVENTS events through HAProxy (not measured)"
  bench_loadgen "$WORK/warm.out" "127.0.0.1:$HP" --agents "$AGENTS" --events "$WARM_EVENTS" \
    --threads "$LOADGEN_THREADS" --batch-events "$BATCH_EVENTS" --event-bytes "$EVENT_BYTES" \
    --agent-prefix bench- --timeout $((300 + WARM_EVENTS / 2000)) >/dev/null ||
    BROKEN+=("warm-up run failed")
fi

# --- 1. one collector against two behind HAProxy, alternating -------------------------------
say "1. flat out, $AGENTS agents, $EVENTS events of ~$EVENT_BYTES bytes: one collector," \
  "then two behind HAProxy, $ROUNDS round(s)"
ONE_SUM=0 TWO_SUM=0
for r in $(seq 1 "$ROUNDS"); do
  run_flat "$WORK/one$r.out" "127.0.0.1:$P1"
  one=$EPS
  run_flat "$WORK/two$r.out" "127.0.0.1:$HP"
  two=$EPS
  echo "round $r: one collector $one events/s, two behind HAProxy $two events/s"
  ONE_SUM=$(calc %.1f "$ONE_SUM + $one")
  TWO_SUM=$(calc %.1f "$TWO_SUM + $two")
done
ONE=$(calc %.1f "$ONE_SUM / $ROUNDS")
TWO=$(calc %.1f "$TWO_SUM / $ROUNDS")
COST=NA
case $ONE in 0 | 0.0) ;; *) COST=$(calc %.1f "100 * (1 - $TWO / $ONE)") ;; esac
echo "mean: one collector $ONE events/s, two behind HAProxy $TWO events/s: HAProxy and a" \
  "second collector cost $COST %"

# --- 2. failover: a collector SIGKILLed under load -----------------------------------------
RATE=$(calc %d "$TWO / 2")
[ "$RATE" -gt 0 ] || RATE=$((FAILOVER_AGENTS * BATCH_EVENTS))
truncate_events
psql_ -c "CHECKPOINT" >/dev/null
say "2. failover: $FAILOVER_AGENTS agents through HAProxy at $RATE events/s for" \
  "$FAILOVER_SECONDS s; collector 2 SIGKILLed after a third of it"
T0=$SECONDS
"$BUILD_DIR/bin/vigil-loadgen" --connect "127.0.0.1:$HP" --ca "$PKI/ca.crt" \
  --issuer-cert "$PKI/ca.crt" --issuer-key "$PKI/ca.key" --agents "$FAILOVER_AGENTS" \
  --rate "$RATE" --duration "$FAILOVER_SECONDS" --batch-events "$BATCH_EVENTS" \
  --event-bytes "$EVENT_BYTES" --threads "$LOADGEN_THREADS" --agent-prefix fo- \
  --timeout $((FAILOVER_SECONDS + 300)) --report-interval 1 \
  >"$WORK/failover.out" 2>"$WORK/failover.out.err" &
LOADGEN_PID=$!
sleep $((FAILOVER_SECONDS / 3))
HELD=$(hp_field vigil_collectors collector2 scur)
kill -KILL "$C2_PID"
wait "$C2_PID" 2>/dev/null || true
C2_PID=
rc=0
wait "$LOADGEN_PID" || rc=$?
LOADGEN_PID=
[ "$rc" -eq 0 ] || {
  BROKEN+=("failover run exit $rc")
  tail -n 5 "$WORK/failover.out.err" >&2
}
R=$(tail -n 1 "$WORK/failover.out")
echo "loadgen: $R"
SENT=$(kv events_sent "$R")
SENT=${SENT:-0}
read -r l d _ _ < <(lost_dup "a.name LIKE 'fo-%'")
LOST=$((LOST + l))
DUP=$((DUP + d))
OUTAGES=$(kv outages "$R")
FAILOVER=NA FAILOVER_P95=NA
if [ -n "$OUTAGES" ] && [ "$OUTAGES" != NA ] && [ "$OUTAGES" -gt 0 ]; then
  FAILOVER=$(calc %.2f "$(kv outage_max_ms "$R") / 1000")
  FAILOVER_P95=$(calc %.2f "$(kv outage_p95_ms "$R") / 1000")
fi
[ "${OUTAGES:-0}" -ge "${HELD:-1}" ] ||
  BROKEN+=("collector 2 held ${HELD:-?} agents, ${OUTAGES:-0} acknowledged again after losing it")
echo "failover: collector 2 held $HELD of $FAILOVER_AGENTS agents when killed;" \
  "${OUTAGES:-0} connections lost and acknowledged again through HAProxy after" \
  "p95 $FAILOVER_P95 s, at most $FAILOVER s; haproxy: collector2 $(hp_field vigil_collectors collector2 status);" \
  "rows lost $l, duplicated $d; $((SECONDS - T0)) s"

# --- result ------------------------------------------------------------------------------------
if [ "$LOST" -ne 0 ] || [ "$DUP" -ne 0 ]; then BROKEN+=("lost $LOST, duplicated $DUP"); fi
for i in 1 2; do
  if [ -s "$WORK/collector$i.log" ]; then
    say "collector $i warnings/errors: $(wc -l <"$WORK/collector$i.log") lines, last ones:"
    tail -n 3 "$WORK/collector$i.log" >&2
  fi
done
echo "one_collector_events_per_s=$ONE two_collectors_haproxy_events_per_s=$TWO" \
  "haproxy_cost_pct=$COST failover_s=$FAILOVER failover_p95_s=$FAILOVER_P95" \
  "failover_agents=${OUTAGES:-0} lost=$LOST dup=$DUP"
if [ ${#BROKEN[@]} -gt 0 ]; then
  say "broken: ${BROKEN[*]}"
  exit 1
fi
