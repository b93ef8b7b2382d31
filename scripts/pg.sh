#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Throwaway PostgreSQL 15 cluster for development and tests.
#
#   scripts/pg.sh start DIR PORT     initdb (first time), start, create db vigil
#   scripts/pg.sh stop DIR           fast shutdown
#   scripts/pg.sh psql DIR PORT [ARGS...]
#   scripts/pg.sh status DIR
#
# The cluster lives in DIR/data, its unix socket in DIR/sock, its log in
# DIR/log; it runs as the `postgres` user (the server refuses root) and
# listens on the unix socket only. A system-wide cluster is left alone.
# Connect with: host=DIR/sock port=PORT dbname=vigil user=postgres
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGUSER_OS=${VIGIL_PG_OS_USER:-postgres}

usage() {
  echo "usage: $0 start DIR PORT | stop DIR | psql DIR PORT [ARGS...] | status DIR" >&2
  exit 2
}

# as_pg CMD...: run CMD as the cluster's OS user (or directly if we are it).
as_pg() {
  if [ "$(id -un)" = "$PGUSER_OS" ]; then
    "$@"
  elif [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PGUSER_OS" -- "$@"
  else
    sudo -u "$PGUSER_OS" -- "$@"
  fi
}

# let_pg_reach DIR: make DIR and its parents traversable (o+x) so the
# postgres user reaches DIR; mktemp -d makes 0700 directories.
let_pg_reach() {
  local d
  d=$(cd "$1" && pwd -P)
  while [ "$d" != "/" ]; do
    if [ ! -O "$d" ] && [ "$(id -u)" -ne 0 ]; then break; fi
    perm=$(stat -c %a "$d")
    case ${perm: -1} in
      1 | 3 | 5 | 7) ;;
      *) chmod o+x "$d" ;;
    esac
    d=$(dirname "$d")
  done
}

conninfo() {
  echo "host=$1/sock port=$2 dbname=vigil user=postgres"
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift

case $cmd in
start)
  [ $# -eq 2 ] || usage
  mkdir -p "$1"
  dir=$(cd "$1" && pwd -P)
  port=$2
  let_pg_reach "$dir"
  mkdir -p "$dir/sock"
  chown "$PGUSER_OS:" "$dir/sock"
  chmod 755 "$dir/sock"
  if [ ! -s "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir/data"
    mkdir -p "$dir/data"
    chown "$PGUSER_OS:" "$dir/data"
    chmod 700 "$dir/data"
    as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust \
      --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
    cat >>"$dir/data/postgresql.conf" <<EOT

# --- vigil dev cluster (scripts/pg.sh) ---
listen_addresses = ''
unix_socket_directories = '$dir/sock'
shared_buffers = 256MB
max_wal_size = 4GB
fsync = on
max_connections = 200
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOT
  fi
  touch "$dir/log"
  chown "$PGUSER_OS:" "$dir/log"
  if as_pg "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    echo "pg: already running in $dir/data" >&2
  else
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
      -o "-p $port -k $dir/sock" start >/dev/null || {
      tail -n 30 "$dir/log" >&2
      exit 1
    }
  fi
  for _ in $(seq 1 100); do
    if "$PGBIN/pg_isready" -q -h "$dir/sock" -p "$port" -U postgres; then break; fi
    sleep 0.1
  done
  "$PGBIN/pg_isready" -q -h "$dir/sock" -p "$port" -U postgres || {
    echo "pg: server did not become ready" >&2
    exit 1
  }
  if ! "$PGBIN/psql" -X -q -h "$dir/sock" -p "$port" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'vigil'" | grep -q 1; then
    "$PGBIN/psql" -X -q -h "$dir/sock" -p "$port" -U postgres -d postgres \
      -c "CREATE DATABASE vigil" >/dev/null
  fi
  echo "pg: running, data $dir/data, log $dir/log"
  echo "pg: conninfo: $(conninfo "$dir" "$port")"
  ;;
stop)
  [ $# -eq 1 ] || usage
  dir=$(cd "$1" && pwd -P)
  if [ -s "$dir/data/PG_VERSION" ] &&
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    echo "pg: stopped $dir/data"
  else
    echo "pg: not running in $dir/data"
  fi
  ;;
status)
  [ $# -eq 1 ] || usage
  dir=$(cd "$1" && pwd -P)
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" status
  ;;
psql)
  [ $# -ge 2 ] || usage
  dir=$(cd "$1" && pwd -P)
  port=$2
  shift 2
  exec "$PGBIN/psql" -X -h "$dir/sock" -p "$port" -U postgres -d vigil "$@"
  ;;
*)
  usage
  ;;
esac
