#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian packages end to end (README.md, "Install from packages"), as
# root on a machine where they are not installed:
#   1. build vigil-collector and vigil-agent in build-pkg/ (-DVIGIL_PACKAGE=ON)
#      and package them twice with cpack: Debian revisions 1 and 2 (the
#      upgrade; no recompilation in between)
#   2. lintian: no errors (warnings are printed)
#   3. install revision 1 with dpkg: the maintainer scripts' effects (user,
#      directories and modes, units enabled), the units pass systemd-analyze
#      verify, and the unconfigured services' ExecCondition refuses to start
#      them, saying what to configure
#   4. configure both against a throwaway PostgreSQL and a test PKI and run
#      the installed binaries as their units would (the collector as vigil
#      with no capabilities, the agent as root with the unit's bounding
#      set): /readyz, the status page from /usr/share/vigil/web, the agent
#      connected; then leave batches in the agent's spool
#   5. upgrade to revision 2: configuration, spool, user kept; the agent
#      sends what it spooled before the upgrade
#   6. remove (configuration and state stay), purge: nothing is left (files
#      and directories compared before and after, user, group, overrides)
# systemd is not PID 1 on the CI machine, so the units themselves are not
# started: their commands are run by hand. Build tree: $VIGIL_BUILD_ROOT/
# build-pkg (default: the repository's). The machine is left as it was
# found, also on failure.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
root=${VIGIL_BUILD_ROOT:-$here}
bdir=$root/build-pkg
agent_name=pkgtest-agent
t0=$(date +%s)

say() { printf 'packages: [%3d s] %s\n' $(($(date +%s) - t0)) "$*"; }
fail() {
  printf 'packages: FAIL: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || fail "run as root (dpkg -i)"
# One run at a time on a machine (the packages and the user are global);
# what runs in the background does not inherit the lock (9>&-).
exec 9>/run/lock/vigil-test-packages.lock
flock -w 900 9 || fail "another scripts/test-packages.sh holds the lock for 15 min"
bash scripts/deps.sh >/dev/null
for p in vigil-collector vigil-agent; do
  if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv not-installed; then
    fail "$p is already installed here; purge it first (dpkg -P $p)"
  fi
done
getent passwd vigil >/dev/null && fail "a user vigil exists already; this test makes its own"

# --- 1. build, package twice ------------------------------------------------
say "building in $bdir"
cmake -S . -B "$bdir" -DVIGIL_PACKAGE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVIGIL_DEB_RELEASE=1 >/dev/null
cmake --build "$bdir" -j "$(nproc)" --target vigil-collector vigil-agent >/dev/null
t_built=$(date +%s)
out=$bdir/debs
rm -rf "$out"
for rev in 1 2; do
  cmake -S . -B "$bdir" -DVIGIL_DEB_RELEASE=$rev >/dev/null
  (cd "$bdir" && cpack -G DEB -B "$out/$rev" >"$bdir/cpack.log" 2>&1) ||
    fail "cpack: $(cat "$bdir/cpack.log")"
done
version=$(sed -n 's/^project(vigil VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
deb() { echo "$out/$2/vigil-$1_$version-$2_$(dpkg --print-architecture).deb"; }
for rev in 1 2; do
  for d in collector agent; do [ -f "$(deb $d $rev)" ] || fail "no $(deb $d $rev)"; done
done
say "built $(basename "$(deb collector 1)"), $(basename "$(deb agent 1)") and revision 2"

# --- 2. lintian ----------------------------------------------------------------
lint=$(lintian --pedantic "$(deb collector 1)" "$(deb agent 1)" 2>&1 |
  grep -v '^running with root' || true)
printf '%s\n' "$lint" | grep -E '^[EWI]:' | sed 's/^/  lintian /' || true
if printf '%s\n' "$lint" | grep -q '^E:'; then fail "lintian reports errors"; fi
say "lintian: $(printf '%s\n' "$lint" | grep -c '^E:' || true) errors," \
  "$(printf '%s\n' "$lint" | grep -c '^W:' || true) warnings"

# --- state of the machine before, and the clean-up that restores it -----------
tmp=$(mktemp -d /tmp/vigil-pkgtest.XXXXXX)
chmod 0755 "$tmp"
collector_pid=
agent_pid=
pg_start=
installed=0

# snapshot: every path named *vigil* where packages and their scripts put
# things (other engineers' container storage and databases left out), the
# unit state of deb-systemd-helper, users, groups and stat overrides.
snapshot() {
  local d dirs=()
  for d in /etc /usr /lib /var/lib /var/log /run/systemd; do [ ! -d $d ] || dirs+=("$d"); done
  find "${dirs[@]}" -xdev \
    \( -path /var/lib/containers -o -path /var/lib/docker -o -path /var/lib/postgresql \) \
    -prune -o -iname '*vigil*' -print 2>/dev/null | sort || true
  getent passwd vigil || true
  getent group vigil || true
  dpkg-statoverride --list | grep vigil || true
}
snapshot >"$tmp/before"
# the paths of both packages that exist already (shared directories)
for d in collector agent; do dpkg-deb -c "$(deb $d 1)"; done |
  awk '{print $6}' | sed 's|^\./|/|; s|/$||' | grep -v '^$' | sort -u >"$tmp/paths"
while read -r p; do [ ! -e "$p" ] || echo "$p"; done <"$tmp/paths" >"$tmp/paths.before"

# dpkg_do ARGS...: dpkg, waiting for the lock that another apt/dpkg may hold.
dpkg_do() {
  local o
  for _ in $(seq 1 120); do
    if o=$(dpkg "$@" 2>&1); then return 0; fi
    case $o in
    *lock*) sleep 1 ;;
    *)
      printf '%s\n' "$o" >&2
      return 1
      ;;
    esac
  done
  fail "dpkg lock not released in 120 s"
}

stop_pid() { # stop_pid PID: SIGTERM, wait up to 20 s, then SIGKILL (PID: ours)
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 200); do
    kill -0 "$1" 2>/dev/null || {
      wait "$1" 2>/dev/null || true
      return 0
    }
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  stop_pid "$agent_pid"
  stop_pid "$collector_pid"
  [ -z "$pg_start" ] || wait "$pg_start" 2>/dev/null
  [ -d "$tmp/pg/data" ] && bash scripts/pg.sh stop "$tmp/pg" >/dev/null 2>&1
  if [ "$installed" = 1 ]; then dpkg_do -P vigil-collector vigil-agent; fi
  if [ $rc -ne 0 ]; then
    for f in "$tmp"/*.log; do
      [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
    done >&2
  fi
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT

# PostgreSQL starts while the packages are checked (unix socket in $tmp only)
bash scripts/pg.sh start "$tmp/pg" 55490 >"$tmp/pg.log" 2>&1 9>&- &
pg_start=$!

# --- 3. install revision 1 ------------------------------------------------------
installed=1
dpkg_do -i "$(deb collector 1)" "$(deb agent 1)"
for p in vigil-collector vigil-agent; do
  v=$(dpkg-query -W -f='${db:Status-Status} ${Version}' $p)
  [ "$v" = "installed $version-1" ] || fail "$p: $v"
done
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd vigil) || fail "no user vigil"
[ "$uid" -lt 1000 ] || fail "vigil is not a system user (uid $uid)"
[ "$home:$shell" = /var/lib/vigil:/usr/sbin/nologin ] || fail "vigil: home $home, shell $shell"
getent group vigil >/dev/null || fail "no group vigil"
mode() { stat -c '%U:%G %a' "$1"; }
expect_mode() { # PATH "OWNER:GROUP MODE"
  [ "$(mode "$1")" = "$2" ] || fail "$1 is $(mode "$1"), not $2"
}
expect_mode /var/lib/vigil "vigil:vigil 750"
expect_mode /var/lib/vigil-agent "root:root 700"
expect_mode /var/lib/vigil-agent/spool "root:root 700"
expect_mode /etc/vigil/collector.conf "root:vigil 640"
expect_mode /etc/vigil/agent.conf "root:root 644"
for p in vigil-collector vigil-agent; do
  c=${p#vigil-}
  dpkg-query -W -f='${Conffiles}\n' $p | grep -q " /etc/vigil/$c.conf " ||
    fail "$p: /etc/vigil/$c.conf is not a conffile"
  [ "$(readlink /etc/systemd/system/multi-user.target.wants/$p.service)" = \
    /lib/systemd/system/$p.service ] || fail "$p.service is not enabled"
  systemd-analyze verify "/lib/systemd/system/$p.service" >"$tmp/verify.log" 2>&1 ||
    fail "systemd-analyze verify $p.service: $(cat "$tmp/verify.log")"
done
grep -q '^CapabilityBoundingSet=$' /lib/systemd/system/vigil-collector.service ||
  fail "the collector's unit keeps capabilities"
exposure() {
  systemd-analyze security --offline=true "/lib/systemd/system/$1.service" 2>/dev/null |
    sed -n 's/.*exposure level for .*: \([0-9.]*\) .*/\1/p'
}
say "systemd-analyze security (exposure, 0-10): collector $(exposure vigil-collector)," \
  "agent $(exposure vigil-agent)"
# Unconfigured: the units' ExecCondition (as their users) refuses and says why.
as_vigil() { setpriv --reuid=vigil --regid=vigil --init-groups "$@"; }
check_c=(/usr/libexec/vigil-collector/check-config collector /etc/vigil/collector.conf)
check_a=(/usr/libexec/vigil-agent/check-config agent /etc/vigil/agent.conf)
if as_vigil "${check_c[@]}" 2>"$tmp/check.log"; then fail "unconfigured collector would start"; fi
for w in "set db in" "tls_cert = /etc/vigil/collector.crt: missing" "agent_ca" \
  "not starting until /etc/vigil/collector.conf is configured"; do
  grep -q "$w" "$tmp/check.log" || fail "the collector's refusal does not say '$w'"
done
if "${check_a[@]}" 2>"$tmp/check.log"; then fail "unconfigured agent would start"; fi
for w in "set collectors in" "tls_cert = /etc/vigil/agent.crt: missing" "ca = /etc/vigil/ca.crt"; do
  grep -q "$w" "$tmp/check.log" || fail "the agent's refusal does not say '$w'"
done
say "installed revision 1: user, directories, conffiles, units enabled; unconfigured units refuse to start"

# --- 4. configure and run the installed binaries ------------------------------
wait "$pg_start" || fail "PostgreSQL did not start: $(cat "$tmp/pg.log")"
pg_start=
bash scripts/dev-pki.sh "$tmp/pki" "$agent_name" >/dev/null
chmod 0755 "$tmp/pki"
chmod 0644 "$tmp/pki"/*.crt
chown root:vigil "$tmp/pki/collector.key"
chmod 0640 "$tmp/pki/collector.key"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
aport=$(free_port)
hport=$(free_port)
set_conf() { # FILE NAME VALUE: replace NAME's line (commented out or not), else append
  if grep -Eq "^#?$2 = " "$1"; then
    sed -i -E "0,/^#?$2 = .*/s||$2 = $3|" "$1"
  else
    echo "$2 = $3" >>"$1"
  fi
}
cc=/etc/vigil/collector.conf
set_conf $cc db "\"host=$tmp/pg/sock port=55490 dbname=vigil user=postgres\""
set_conf $cc listen "127.0.0.1:$aport"
set_conf $cc http_listen "127.0.0.1:$hport"
set_conf $cc tls_cert "$tmp/pki/collector.crt"
set_conf $cc tls_key "$tmp/pki/collector.key"
set_conf $cc agent_ca "$tmp/pki/ca.crt"
ac=/etc/vigil/agent.conf
set_conf $ac collectors "127.0.0.1:$aport"
set_conf $ac tls_cert "$tmp/pki/agents/$agent_name.crt"
set_conf $ac tls_key "$tmp/pki/agents/$agent_name.key"
set_conf $ac ca "$tmp/pki/ca.crt"
set_conf $ac docker_socket none
set_conf $ac image_inventory false
set_conf $ac status_interval 1s
set_conf $ac scan_interval 1s
set_conf $ac backoff_max 1s
set_conf $ac shutdown_timeout 2s
as_vigil "${check_c[@]}" || fail "the configured collector would not start"
"${check_a[@]}" || fail "the configured agent would not start"

token=$(as_vigil /usr/bin/vigil-collector -c $cc token create --name pkgtest --role viewer \
  2>>"$tmp/collector.log") || fail "token create"
# The units' sandbox, as far as it matters here: the collector as vigil with
# no capabilities, the agent as root with the unit's bounding set only.
agent_caps=$(sed -n 's/^CapabilityBoundingSet=//p' /lib/systemd/system/vigil-agent.service |
  tr '[:upper:]' '[:lower:]' | sed 's/cap_/+/g; s/ /,/g')
start_collector() {
  setpriv --reuid=vigil --regid=vigil --init-groups --no-new-privs --bounding-set=-all \
    /usr/bin/vigil-collector -c $cc >>"$tmp/collector.log" 2>&1 9>&- &
  collector_pid=$!
}
start_agent() {
  setpriv --no-new-privs --bounding-set="-all,$agent_caps" \
    /usr/bin/vigil-agent -c $ac >>"$tmp/agent.log" 2>&1 9>&- &
  agent_pid=$!
}
api() { # api PATH: print the HTTP status
  curl -sk -o "$tmp/api.out" -w '%{http_code}' -H "Authorization: Bearer $token" \
    "https://127.0.0.1:$hport$1" || true
}
wait_for() { # wait_for SECONDS WHAT COMMAND...
  local n=$(($1 * 10)) what=$2
  shift 2
  until "$@"; do
    n=$((n - 1))
    [ $n -gt 0 ] || fail "timed out waiting for $what"
    sleep 0.1
  done
}
readyz() { [ "$(api /readyz)" = 200 ]; }
agent_said() { grep -q "$1" "$tmp/agent.log"; }
agent_known() { [ "$(api "/api/v1/agents/$agent_name")" = 200 ]; }

start_collector
wait_for 20 "/readyz" readyz
[ "$(api /app.js)" = 200 ] || fail "the status page is not served from /usr/share/vigil/web"
start_agent
wait_for 20 "the agent to connect" agent_said "connected as $agent_name"
agent_said "proc_connector ok" || fail "proc_connector failing with the unit's capabilities"
wait_for 10 "the agent in the API" agent_known
say "revision 1 runs: /readyz 200, status page served, $agent_name connected"

# Leave batches in the spool: the collector stops first, the agent spools.
stop_pid "$collector_pid"
collector_pid=
sleep 2.5
stop_pid "$agent_pid"
agent_pid=
agent_said "unacknowledged batches stay in the spool" || fail "nothing left in the spool"
spool_sum() { (cd /var/lib/vigil-agent && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
spool_before=$(spool_sum)
conf_before=$(sha256sum $cc $ac)
user_before=$(getent passwd vigil)
over_before=$(dpkg-statoverride --list $cc)

# --- 5. upgrade to revision 2 ----------------------------------------------------
dpkg_do -i "$(deb collector 2)" "$(deb agent 2)"
for p in vigil-collector vigil-agent; do
  v=$(dpkg-query -W -f='${db:Status-Status} ${Version}' $p)
  [ "$v" = "installed $version-2" ] || fail "$p after the upgrade: $v"
done
[ "$(sha256sum $cc $ac)" = "$conf_before" ] || fail "the upgrade changed the configuration"
[ "$(spool_sum)" = "$spool_before" ] || fail "the upgrade changed the agent's spool"
[ "$(getent passwd vigil)" = "$user_before" ] || fail "the upgrade changed the user vigil"
[ "$(dpkg-statoverride --list $cc)" = "$over_before" ] || fail "the upgrade changed $cc's owner"
: >"$tmp/agent.log"
start_collector
wait_for 20 "/readyz after the upgrade" readyz
start_agent
wait_for 20 "the agent to connect after the upgrade" agent_said "connected as $agent_name"
grep "connected as $agent_name" "$tmp/agent.log" | grep -qv ' 0 spooled batches' ||
  fail "the agent found nothing to send in its spool after the upgrade"
stop_pid "$agent_pid"
agent_pid=
if ! agent_said "every batch is acknowledged"; then
  if agent_said "refused by the collector for good"; then
    fail "the collector refused batches of the agent (ERROR_CODE_BATCH_REFUSED, agent.log" \
      "below): its ingest limits, not the packages; the agent reports every container here"
  fi
  fail "the spooled batches were not acknowledged"
fi
stop_pid "$collector_pid"
collector_pid=
say "upgraded to revision 2: configuration, spool and user kept; spooled batches delivered"

# --- 6. remove, then purge ---------------------------------------------------------
dpkg_do -r vigil-collector vigil-agent
for p in vigil-collector vigil-agent; do
  v=$(dpkg-query -W -f='${db:Status-Status}' $p)
  [ "$v" = config-files ] || fail "$p after remove: $v"
done
for f in /usr/bin/vigil-collector /usr/bin/vigil-agent; do
  [ ! -e "$f" ] || fail "remove left $f"
done
for f in $cc $ac /var/lib/vigil-agent/spool /var/lib/vigil; do
  [ -e "$f" ] || fail "remove deleted $f"
done
getent passwd vigil >/dev/null || fail "remove deleted the user vigil"
dpkg_do -P vigil-collector vigil-agent
installed=0
snapshot >"$tmp/after"
if ! diff -u "$tmp/before" "$tmp/after" >"$tmp/diff"; then
  cat "$tmp/diff" >&2
  fail "the purge left the machine different (above)"
fi
while read -r p; do [ ! -e "$p" ] || echo "$p"; done <"$tmp/paths" >"$tmp/paths.after"
if ! diff -u "$tmp/paths.before" "$tmp/paths.after" >"$tmp/diff"; then
  cat "$tmp/diff" >&2
  fail "the purge left files of the packages"
fi
for p in vigil-collector vigil-agent; do
  dpkg-query -W $p >/dev/null 2>&1 && fail "dpkg still knows $p"
done
say "removed (configuration and state kept), purged: nothing left"
t1=$(date +%s)
say "ok: build $((t_built - t0)) s, packaging and tests $((t1 - t_built)) s"
