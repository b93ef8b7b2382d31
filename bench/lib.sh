# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Helpers for the benchmark scripts (sourced, not run): messages and
# arithmetic, ports, the build, a throwaway PKI and PostgreSQL, collectors
# and vigil-loadgen. The caller sets ROOT (the repository), BUILD_DIR, WORK
# (a fresh directory, removed by the caller's cleanup) and BENCH (its name,
# for messages) before calling anything here.

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

say() { echo "$BENCH: $*" >&2; }
die() {
  say "FAILED: $*"
  exit 1
}
# calc FORMAT EXPR: floating-point arithmetic through awk.
calc() { awk -v f="$1" "BEGIN { printf f, $2 }"; }
# kv KEY LINE: the value of KEY=value in a key=value line.
kv() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }

# ticks_of PID: utime + stime of PID (all its threads), in TCK ticks a second.
TCK=$(getconf CLK_TCK)
ticks_of() {
  { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null || echo; } | awk '{ print $12 + $13 }'
}
# rss_kib PID: its resident memory (VmRSS), KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# listening PORT: true if a socket listens on PORT (from /proc, no tools).
listening() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p="$hex" 'FNR > 1 { split($2, a, ":"); if (a[2] == p && $4 == "0A") f = 1 }
    END { exit f ? 0 : 1 }' /proc/net/tcp /proc/net/tcp6
}
# free_port: a TCP port nobody listens on (and none handed out before).
BENCH_PORTS=" "
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 30000))
    case $BENCH_PORTS in *" $p "*) continue ;; esac
    if ! listening "$p"; then
      BENCH_PORTS="$BENCH_PORTS$p "
      echo "$p"
      return
    fi
  done
  die "no free port"
}

# bench_deps_build TARGET...: install the packages (scripts/deps.sh) unless
# SKIP_DEPS=1, build TARGETs into BUILD_DIR (RelWithDebInfo, no
# sanitizers) unless SKIP_BUILD=1.
bench_deps_build() {
  if [ "${SKIP_DEPS:-0}" != 1 ]; then
    bash "$ROOT/scripts/deps.sh" >&2
  fi
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building $* in $BUILD_DIR (RelWithDebInfo)"
    local log
    log=$(mktemp)
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DVIGIL_SANITIZE=OFF >"$log" 2>&1 || {
      cat "$log" >&2
      rm -f "$log"
      die "cmake"
    }
    rm -f "$log"
    cmake --build "$BUILD_DIR" -j"$(nproc)" --target "$@" >/dev/null || die "build"
  fi
}

# bench_pki: the test CA, collector and agent-issuing certificates in
# WORK/pki (scripts/dev-pki.sh); sets PKI.
bench_pki() {
  bash "$ROOT/scripts/dev-pki.sh" "$WORK/pki" >/dev/null
  PKI=$WORK/pki
}

# bench_operator_cert CN: an operator CA (WORK/opca.crt, for the
# collectors' http_operator_ca) and a client certificate CN from it, key
# and certificate in one PEM file (WORK/CN.pem, as haproxy's crt wants).
bench_operator_cert() {
  local d=$WORK/operator
  mkdir -p "$d"
  if [ ! -s "$WORK/opca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -keyout "$d/opca.key" -out "$WORK/opca.crt" -subj "/CN=bench operator CA" \
      -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  fi
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/$1.key" \
    -out "$d/$1.csr" -subj "/CN=$1" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$d/ext"
  openssl x509 -req -in "$d/$1.csr" -CA "$WORK/opca.crt" -CAkey "$d/opca.key" \
    -CAcreateserial -days 2 -extfile "$d/ext" -out "$d/$1.crt" 2>/dev/null
  cat "$d/$1.crt" "$d/$1.key" >"$WORK/$1.pem"
  chmod 644 "$WORK/$1.pem"
}

# bench_pg_start PORT: a PostgreSQL 15 cluster in WORK/pg (scripts/pg.sh)
# on a unix socket, with durable commits and room for a whole run's WAL
# between checkpoints (and PG_EXTRA_SQL, one more ALTER SYSTEM statement,
# if set); sets PGPORT, DB (conninfo) and POSTMASTER (for CPU accounting).
# psql_ ARGS... runs psql on it.
bench_pg_start() {
  PGPORT=$1
  bash "$ROOT/scripts/pg.sh" start "$WORK/pg" "$PGPORT" >/dev/null
  psql_ -d postgres -c "ALTER SYSTEM SET shared_buffers = '512MB'" \
    -c "ALTER SYSTEM SET max_wal_size = '4GB'" \
    -c "ALTER SYSTEM SET checkpoint_timeout = '15min'" \
    -c "ALTER SYSTEM SET fsync = on" \
    -c "ALTER SYSTEM SET synchronous_commit = on" \
    ${PG_EXTRA_SQL:+-c "$PG_EXTRA_SQL"} >/dev/null
  bash "$ROOT/scripts/pg.sh" stop "$WORK/pg" >/dev/null
  bash "$ROOT/scripts/pg.sh" start "$WORK/pg" "$PGPORT" >/dev/null
  # shellcheck disable=SC2034 # for the caller
  POSTMASTER=$(head -n 1 "$WORK/pg/data/postmaster.pid")
  DB="host=$WORK/pg/sock port=$PGPORT dbname=vigil user=postgres"
}
psql_() {
  "$PGBIN/psql" -X -q -h "$WORK/pg/sock" -p "$PGPORT" -U postgres -d vigil \
    -v ON_ERROR_STOP=1 "$@"
}
bench_pg_stop() {
  if [ -d "$WORK/pg" ]; then bash "$ROOT/scripts/pg.sh" stop "$WORK/pg" >/dev/null 2>&1 || true; fi
}
# truncate_events: TRUNCATE events, again if it lost a deadlock (the
# collector's background index builds take locks on the partitions too).
truncate_events() {
  for _ in 1 2 3 4 5; do
    psql_ -c "SET lock_timeout = '60s'" -c "TRUNCATE events" >/dev/null 2>&1 && return 0
    sleep 1
  done
  psql_ -c "SET lock_timeout = '60s'" -c "TRUNCATE events"
}

# bench_collector_start PORT LOG ARGS...: start vigil-collector on
# 127.0.0.1:PORT against DB (log level warn, ARGS added), wait until it
# listens; sets COLLECTOR_PID.
bench_collector_start() {
  local port=$1 log=$2
  shift 2
  ulimit -n "$(ulimit -Hn)"
  "$BUILD_DIR/bin/vigil-collector" --listen "127.0.0.1:$port" \
    --tls-cert "$PKI/collector.crt" --tls-key "$PKI/collector.key" \
    --agent-ca "$PKI/ca.crt" --db "$DB" --log-level warn "$@" >>"$log" 2>&1 &
  COLLECTOR_PID=$!
  for _ in $(seq 1 600); do
    kill -0 "$COLLECTOR_PID" 2>/dev/null || {
      tail -n 20 "$log" >&2
      die "collector exited at start"
    }
    listening "$port" && return 0
    sleep 0.1
  done
  die "collector not listening on $port after 60 s"
}
# bench_stop PID: SIGTERM (a collector drains), SIGKILL after 10 s.
bench_stop() {
  [ -n "${1:-}" ] || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# bench_workdir NAME: make the work directory WORK (/tmp/vigil-NAME.*) and
# set the exit trap: SIGKILL the load generator (LOADGEN_PID), stop every
# process whose pid is in a variable named in BENCH_PID_VARS, stop
# PostgreSQL, and remove WORK unless KEEP=1 or the run failed.
BENCH_PID_VARS=()
bench_workdir() {
  WORK=$(mktemp -d "/tmp/vigil-$1.XXXXXX")
  chmod 755 "$WORK"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  say "work directory $WORK"
}
bench_cleanup() {
  local rc=$? v
  [ -n "${LOADGEN_PID:-}" ] && kill -KILL "$LOADGEN_PID" 2>/dev/null
  for v in "${BENCH_PID_VARS[@]}"; do
    bench_stop "${!v:-}"
  done
  bench_pg_stop
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    say "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}

# bench_loadgen OUT ADDRESS ARGS...: run vigil-loadgen against ADDRESS with
# the PKI's issuer (stderr to OUT.err), print its result line; return its
# exit status.
bench_loadgen() {
  local out=$1 addr=$2 rc=0
  shift 2
  "$BUILD_DIR/bin/vigil-loadgen" --connect "$addr" --ca "$PKI/ca.crt" \
    --issuer-cert "$PKI/ca.crt" --issuer-key "$PKI/ca.key" --quiet "$@" \
    >"$out" 2>"$out.err" || rc=$?
  tail -n 1 "$out"
  return "$rc"
}

# lost_dup WHERE: "LOST DUP ROWS DISTINCT" of the agents' events matching
# the SQL condition WHERE (on events e joined with agents a), given the
# number sent in SENT.
lost_dup() {
  local s d
  read -r s d < <(psql_ -tA -F ' ' -c "SELECT count(*), count(DISTINCT (e.agent_id, e.seq, e.idx))
      FROM events e JOIN agents a ON a.id = e.agent_id WHERE e.seq > 0 AND ($1)")
  echo "$((SENT - d)) $((s - d)) $s $d"
}
