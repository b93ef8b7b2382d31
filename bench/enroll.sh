#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Enrollment benchmark: join-token enrollment of a fleet, full mutual-TLS
# handshakes on the agent port, and revocation to the drop of a live
# connection on another collector. Run as root on Debian 12 from anywhere:
#
#   bench/enroll.sh                      # 1,000 agents, 20,000 handshakes, 5 revocations
#   ENROLL_AGENTS=200 HANDSHAKES=2000 REVOKE_TRIALS=3 AGENT_CLI=0 bench/enroll.sh
#
# Measures (see bench/README.md, "The enrollment benchmark"):
# - enroll_1000_s: ENROLL_AGENTS agents enrolled by vigil-loadgen with one
#   multi-use token, ENROLL_CONCURRENCY at a time, from the first key made
#   to the last certificate written (key, CSR, TLS without a client
#   certificate, EnrollRequest, EnrollResponse, key and chain written);
# - enroll_1000_agent_cli_s (AGENT_CLI=1): the same with ENROLL_AGENTS real
#   `vigil-agent enroll` processes, CLI_CONCURRENCY at a time;
# - handshakes_per_s: HANDSHAKES full mutual-TLS 1.3 handshakes with
#   enrolled certificates, each followed by Hello/Welcome and a close,
#   HS_CONCURRENCY at a time (the agent port has no session resumption);
#   handshakes_per_s_no_hello: the same, closed right after the handshake;
# - revoke_to_drop_ms: an enrolled agent connected to collector B;
#   `vigil-collector agent revoke NAME` run against the shared database;
#   from the start of that command to the agent seeing B close its
#   connection; the median of REVOKE_TRIALS trials (and the max).
# Human-readable lines first; the last line is key=value figures. Exits 1
# only if something broke (an enrollment or handshake failed, a revoked
# agent was not dropped within 15 s, rows missing).
#
# Environment: ENROLL_AGENTS (1000), ENROLL_CONCURRENCY (50), HANDSHAKES
# (20000), HS_CONCURRENCY (50), REVOKE_TRIALS (5), AGENT_CLI (1),
# CLI_CONCURRENCY (ENROLL_CONCURRENCY), RATE_PER_MIN (1000000) and BURST
# (100000): the collectors' enroll_rate_per_min / enroll_burst (every
# client is 127.0.0.1), BUILD_DIR (build), SKIP_DEPS=1, SKIP_BUILD=1,
# KEEP=1 keeps the work directory (PKI, database, logs, enrolled files).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=enroll
ENROLL_AGENTS=${ENROLL_AGENTS:-1000}
ENROLL_CONCURRENCY=${ENROLL_CONCURRENCY:-50}
HANDSHAKES=${HANDSHAKES:-20000}
HS_CONCURRENCY=${HS_CONCURRENCY:-50}
REVOKE_TRIALS=${REVOKE_TRIALS:-5}
AGENT_CLI=${AGENT_CLI:-1}
CLI_CONCURRENCY=${CLI_CONCURRENCY:-$ENROLL_CONCURRENCY}
RATE_PER_MIN=${RATE_PER_MIN:-1000000}
BURST=${BURST:-100000}
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and runs PostgreSQL as postgres)"
case "$ENROLL_AGENTS$ENROLL_CONCURRENCY$HANDSHAKES$HS_CONCURRENCY$REVOKE_TRIALS$AGENT_CLI$CLI_CONCURRENCY$RATE_PER_MIN$BURST" in
*[!0-9]*) die "sizes must be integers" ;;
esac
if [ "$ENROLL_AGENTS" -lt 1 ] || [ "$HANDSHAKES" -lt 1 ] || [ "$REVOKE_TRIALS" -lt 1 ]; then
  die "ENROLL_AGENTS, HANDSHAKES and REVOKE_TRIALS must be at least 1"
fi

targets=(vigil-collector vigil-loadgen)
[ "$AGENT_CLI" = 1 ] && targets+=(vigil-agent)
bench_deps_build "${targets[@]}"
COLLECTOR=$BUILD_DIR/bin/vigil-collector
LOADGEN=$BUILD_DIR/bin/vigil-loadgen

A_PID='' B_PID='' LOADGEN_PID=''
BENCH_PID_VARS=(A_PID B_PID)
bench_workdir enroll
bench_pki
[ -s "$PKI/issuer.crt" ] || die "scripts/dev-pki.sh made no issuing CA ($PKI/issuer.crt)"
bench_pg_start 54349

# --- two collectors on one PostgreSQL, both able to enroll ----------------------------
# Every client of this benchmark is 127.0.0.1: the per-address rate limit
# of enrollment (default 30 a minute, burst 10) is raised out of the way.
PA=$(free_port) PB=$(free_port)
ISSUER=(--agent-issuer-cert "$PKI/issuer.crt" --agent-issuer-key "$PKI/issuer.key"
  --enroll-rate-per-min "$RATE_PER_MIN" --enroll-burst "$BURST")
bench_collector_start "$PA" "$WORK/collectorA.log" "${ISSUER[@]}"
A_PID=$COLLECTOR_PID
bench_collector_start "$PB" "$WORK/collectorB.log" "${ISSUER[@]}"
B_PID=$COLLECTOR_PID
say "collectors A 127.0.0.1:$PA (pid $A_PID) and B 127.0.0.1:$PB (pid $B_PID);" \
  "PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}'), $(nproc) cores;" \
  "enroll_rate_per_min=$RATE_PER_MIN enroll_burst=$BURST"

BROKEN=()
# token USES: a fresh join token for USES enrollments.
token() {
  "$COLLECTOR" enroll-token create --uses "$1" --expires 2h --db "$DB" --log-level warn \
    2>>"$WORK/tokens.log" |
    grep -o 'vgj_[0-9a-f]\{16\}_[A-Za-z0-9_-]\{43\}' | head -n 1
}
# loadgen OUT ADDRESS ARGS...: vigil-loadgen without identity flags
# (stderr to OUT.err); print its last line, return its status.
loadgen() {
  local out=$1 addr=$2 rc=0
  shift 2
  "$LOADGEN" --connect "$addr" --ca "$PKI/ca.crt" "$@" >"$out" 2>"$out.err" || rc=$?
  tail -n 1 "$out"
  return "$rc"
}
certs_of() { psql_ -tA -c "SELECT count(*) FROM agent_certs WHERE agent_name LIKE '$1%'"; }

# --- 1. enroll a fleet with one multi-use token (vigil-loadgen) -----------------------
say "1. enrollment: $ENROLL_AGENTS agents, one token, $ENROLL_CONCURRENCY at a time, to collector A"
T=$(token "$ENROLL_AGENTS")
[ -n "$T" ] || die "enroll-token create printed no token"
mkdir -p "$WORK/enrolled"
c0=$(ticks_of "$A_PID")
rc=0
R1=$(loadgen "$WORK/enroll.out" "127.0.0.1:$PA" --enroll-token "$T" --agents "$ENROLL_AGENTS" \
  --enroll-concurrency "$ENROLL_CONCURRENCY" --enroll-dir "$WORK/enrolled" --enroll-only \
  --agent-prefix node- --timeout 600 --quiet) || rc=$?
c1=$(ticks_of "$A_PID")
echo "loadgen: $R1"
[ "$rc" -eq 0 ] || {
  BROKEN+=("loadgen enrollment exit $rc")
  tail -n 5 "$WORK/enroll.out.err" >&2
}
ENROLL_S=$(kv enroll_s "$R1")
ENROLL_PER_S=$(kv enroll_per_s "$R1")
CERTS=$(certs_of node-)
FILES=$(find "$WORK/enrolled" -name 'node-*.crt' | wc -l)
[ "$CERTS" = "$ENROLL_AGENTS" ] || BROKEN+=("agent_certs has $CERTS node- rows, not $ENROLL_AGENTS")
[ "$FILES" = "$ENROLL_AGENTS" ] || BROKEN+=("$FILES certificate files written, not $ENROLL_AGENTS")
ENROLL_CPU=NA
[ "$CERTS" -gt 0 ] && ENROLL_CPU=$(calc %.2f "($c1 - $c0) * 1000 / $TCK / $CERTS")
echo "enrollment: $CERTS certificates in agent_certs, $FILES written, in ${ENROLL_S:-NA} s" \
  "(${ENROLL_PER_S:-NA}/s, p50 $(kv enroll_p50_ms "$R1") ms, p99 $(kv enroll_p99_ms "$R1") ms" \
  "per agent); collector A CPU $ENROLL_CPU ms per enrollment"
# Against the goal of 1,000 agents in 60 s, scaled when ENROLL_AGENTS differs.
ENROLL_1000=NA
[ "$rc" -eq 0 ] && [ -n "$ENROLL_S" ] && ENROLL_1000=$(calc %.2f "$ENROLL_S * 1000 / $ENROLL_AGENTS")

# --- 1b. the same with real `vigil-agent enroll` processes -------------------------------
CLI_S=NA
if [ "$AGENT_CLI" = 1 ]; then
  say "1b. enrollment: $ENROLL_AGENTS vigil-agent enroll processes, $CLI_CONCURRENCY at a time"
  T=$(token "$ENROLL_AGENTS")
  printf '%s\n' "$T" >"$WORK/token"
  chmod 600 "$WORK/token"
  mkdir -p "$WORK/cli"
  # where each process copies --ca (the same file for all; copied atomically)
  printf 'ca = %s\n' "$WORK/cli/ca.crt" >"$WORK/cli/agent.conf"
  t0=$(date +%s.%N)
  rc=0
  # shellcheck disable=SC2016 # expanded by the inner sh, from its arguments
  seq -f 'cli-%05g' 0 $((ENROLL_AGENTS - 1)) |
    xargs -P "$CLI_CONCURRENCY" -I{} sh -c '"$0" enroll -c "$4/agent.conf" \
      --collector "127.0.0.1:$1" --ca "$2" --token-file "$3" --hostname {} --tls-key "$4/{}.key" \
      --tls-cert "$4/{}.crt" >>"$4/{}.log" 2>&1 || { echo "{} failed" >&2; exit 255; }' \
      "$BUILD_DIR/bin/vigil-agent" "$PA" "$PKI/ca.crt" "$WORK/token" "$WORK/cli" || rc=$?
  t1=$(date +%s.%N)
  CLI_CERTS=$(certs_of cli-)
  if [ "$rc" -ne 0 ] || [ "$CLI_CERTS" != "$ENROLL_AGENTS" ]; then
    BROKEN+=("vigil-agent enroll: exit $rc, $CLI_CERTS of $ENROLL_AGENTS in agent_certs")
    find "$WORK/cli" -name '*.log' -size +0 | head -n 3 | xargs -r tail -n 3 >&2
  else
    CLI_S=$(calc %.2f "($t1 - $t0) * 1000 / $ENROLL_AGENTS")
  fi
  echo "vigil-agent enroll: $CLI_CERTS certificates in $(calc %.2f "$t1 - $t0") s"
fi

# --- 2. handshake storm on the agent port ----------------------------------------------
# The storm's clients use certificates enrolled at its start (the issuing
# CA's chain, as real nodes present), client c cycling through agents c,
# c + HS_CONCURRENCY, ...; each connection is a full handshake (the agent
# port keeps no session cache and sends no tickets).
HS_AGENTS=$((HS_CONCURRENCY * 2))
# storm OUT PREFIX [--no-hello]: sets HPS and HCPU (collector A CPU per handshake, us).
storm() {
  local out=$1 prefix=$2 r c0 c1 ok rc=0
  shift 2
  c0=$(ticks_of "$A_PID")
  r=$(loadgen "$out" "127.0.0.1:$PA" --enroll-token "$T" --agents "$HS_AGENTS" \
    --enroll-concurrency "$HS_CONCURRENCY" --agent-prefix "$prefix" --handshakes "$HANDSHAKES" \
    --concurrency "$HS_CONCURRENCY" --timeout 900 --quiet "$@") || rc=$?
  c1=$(ticks_of "$A_PID")
  echo "loadgen: $r"
  [ "$rc" -eq 0 ] || {
    BROKEN+=("handshake storm $(basename "$out") exit $rc")
    tail -n 5 "$out.err" >&2
  }
  HPS=$(kv handshakes_per_s "$r")
  ok=$(kv handshakes "$r")
  HCPU=NA
  [ "${ok:-0}" -gt 0 ] && HCPU=$(calc %.0f "($c1 - $c0) * 1000000 / $TCK / $ok")
  # enrollment of the storm's own agents is in c1 - c0; small next to the storm
  echo "  $ok handshakes in $(kv handshake_s "$r") s: ${HPS:-NA}/s, p50 $(kv handshake_p50_ms "$r") ms," \
    "p99 $(kv handshake_p99_ms "$r") ms; collector CPU about $HCPU us each"
}
say "2. handshakes: $HANDSHAKES full mutual-TLS 1.3 handshakes + Hello/Welcome, $HS_CONCURRENCY at a time"
T=$(token $((HS_AGENTS * 2)))
storm "$WORK/storm.out" hs-
HPS_HELLO=${HPS:-NA} HCPU_HELLO=$HCPU
say "2b. the same, closed right after the handshake (no Hello)"
storm "$WORK/storm-nohello.out" hsn- --no-hello
HPS_NOHELLO=${HPS:-NA} HCPU_NOHELLO=$HCPU

# --- 3. revocation to the drop of a live connection on collector B -----------------------
# Per trial: an agent enrolled at A (vigil-loadgen --enroll-only, files
# written), connected to B with that certificate (vigil-loadgen --cert,
# --idle); `vigil-collector agent revoke NAME` against the database; the
# time from the command's start to the agent's log line saying B closed
# the connection (millisecond timestamps).
say "3. revocation: $REVOKE_TRIALS trials, agent on collector B, revoke through the database"
T=$(token "$REVOKE_TRIALS")
DROPS=()
for k in $(seq 1 "$REVOKE_TRIALS"); do
  d=$WORK/revoke$k
  mkdir -p "$d"
  loadgen "$d/enroll.out" "127.0.0.1:$PA" --enroll-token "$T" --agents 1 --enroll-only \
    --enroll-dir "$d" --agent-prefix "rv$k-" --quiet >/dev/null || {
    BROKEN+=("revocation trial $k: enrollment failed")
    continue
  }
  name=$(basename "$(find "$d" -name '*.crt' | head -n 1)" .crt)
  "$LOADGEN" --connect "127.0.0.1:$PB" --ca "$PKI/ca.crt" --cert "$d/$name.crt" \
    --key "$d/$name.key" --agent-prefix "${name%00000}" --agents 1 --idle --duration 600 --timeout 601 \
    --backoff-min 600000 --backoff-max 600000 --report-interval 0.1 \
    >"$d/idle.out" 2>"$d/idle.err" &
  LOADGEN_PID=$!
  up=0
  for _ in $(seq 1 100); do
    grep -q 'connected=1/1' "$d/idle.err" && { up=1 && break; }
    sleep 0.1
  done
  if [ "$up" != 1 ]; then
    BROKEN+=("revocation trial $k: $name never connected to B")
  else
    sleep 0.5
    t0=$(date +%s.%N)
    "$COLLECTOR" agent revoke "$name" --reason "bench $k" --db "$DB" --log-level warn \
      >"$d/revoke.out" 2>&1 || BROKEN+=("agent revoke $name failed")
    line=''
    for _ in $(seq 1 150); do
      line=$(grep -m 1 -E 'disconnected|reconnecting' "$d/idle.err" || true)
      [ -n "$line" ] && break
      sleep 0.1
    done
    if [ -z "$line" ]; then
      BROKEN+=("revocation trial $k: $name still connected to B 15 s after the revoke")
    else
      t1=$(date -d "${line%%Z *}Z" +%s.%N)
      ms=$(calc %.0f "($t1 - $t0) * 1000")
      DROPS+=("$ms")
      echo "  trial $k: $name dropped by B $ms ms after 'agent revoke' started (${line#* })"
    fi
  fi
  kill -INT "$LOADGEN_PID" 2>/dev/null || true
  wait "$LOADGEN_PID" 2>/dev/null || true
  LOADGEN_PID=
done
REVOKE_MS=NA REVOKE_MAX=NA
if [ ${#DROPS[@]} -gt 0 ]; then
  read -r REVOKE_MS REVOKE_MAX < <(printf '%s\n' "${DROPS[@]}" | sort -n |
    awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.0f %d\n", m, v[NR] }')
fi
echo "revocation to drop: ${DROPS[*]:-none} ms; median $REVOKE_MS, max $REVOKE_MAX"

# --- result ------------------------------------------------------------------------------------
for c in A B; do
  if [ -s "$WORK/collector$c.log" ]; then
    say "collector $c warnings/errors: $(wc -l <"$WORK/collector$c.log") lines, last ones:"
    tail -n 3 "$WORK/collector$c.log" >&2
  fi
done
RATIO=NA HELLO_COST=NA
case ${HPS_HELLO:-NA}/${ENROLL_PER_S:-NA} in
NA/* | */NA | 0.0/* | */0.0) ;;
*) RATIO=$(calc %.3f "$ENROLL_PER_S / $HPS_HELLO") ;;
esac
case $HPS_HELLO/$HPS_NOHELLO in
NA/* | */NA | 0.0/* | */0.0) ;;
*) HELLO_COST=$(calc %.1f "100 * (1 - $HPS_HELLO / $HPS_NOHELLO)") ;;
esac
echo "enroll_1000_s=$ENROLL_1000 enroll_1000_agent_cli_s=$CLI_S enroll_per_s=${ENROLL_PER_S:-NA}" \
  "collector_cpu_ms_per_enroll=$ENROLL_CPU handshakes_per_s=$HPS_HELLO" \
  "handshakes_per_s_no_hello=$HPS_NOHELLO hello_cost_pct=$HELLO_COST" \
  "collector_cpu_us_per_handshake=$HCPU_HELLO collector_cpu_us_per_handshake_no_hello=$HCPU_NOHELLO" \
  "enroll_per_handshake_ratio=$RATIO revoke_to_drop_ms=$REVOKE_MS revoke_to_drop_max_ms=$REVOKE_MAX" \
  "revoke_trials=${#DROPS[@]} session_resumption=off enroll_rate_per_min=$RATE_PER_MIN enroll_burst=$BURST" \
  "enroll_agents=$ENROLL_AGENTS enroll_concurrency=$ENROLL_CONCURRENCY handshakes=$HANDSHAKES" \
  "hs_concurrency=$HS_CONCURRENCY"
if [ ${#BROKEN[@]} -gt 0 ]; then
  say "broken: ${BROKEN[*]}"
  exit 1
fi
