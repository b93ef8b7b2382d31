#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Everything needed to see Vigil run on one machine (Quick start, command 1):
# installs missing Debian packages, builds, makes a development PKI in
# var/pki, starts a throwaway PostgreSQL in var/pg, the collector, Podman's
# Docker-compatible API socket, a real vigil-agent for this node, and
# simulated agents (vigil-loadgen) next to it, and four real Podman
# containers for the rules to judge: three risky ones (privileged, a
# writable host mount with the host's PID namespace, a shell exec into one
# every minute) and a hardened one. Then it prints where to look.
# Runs until Ctrl-C, then stops everything it started.
#
#   scripts/demo.sh          start (foreground)
#   scripts/demo.sh stop     stop what an earlier run left behind
#
# Environment: VIGIL_PORT (agents, default 7443), VIGIL_HTTP_PORT (dashboard
# and API, 8443), VIGIL_PG_PORT (55432),
# DEMO_AGENTS (20), DEMO_RATE (events/s, 500).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
var=$here/var
port=${VIGIL_PORT:-7443}
http_port=${VIGIL_HTTP_PORT:-8443}
pg_port=${VIGIL_PG_PORT:-55432}
agents=${DEMO_AGENTS:-20}
rate=${DEMO_RATE:-500}

demo_containers=(vigil-demo-privileged vigil-demo-hostmount vigil-demo-shell vigil-demo-hardened)
podman_run=(--runtime runc --network none --ulimit nofile=20000:20000 --ulimit nproc=1000:1000)

# demo_image: a busybox image built here (there is no registry to pull from).
demo_image() {
  local rootfs=$var/demo-rootfs
  if ! podman image exists localhost/vigil-demo:busybox; then
    rm -rf "$rootfs"
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev}
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    chroot "$rootfs" /bin/busybox --install -s
    echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
    tar -C "$rootfs" -cf "$var/demo-rootfs.tar" .
    podman import "$var/demo-rootfs.tar" localhost/vigil-demo:busybox >/dev/null
    rm -rf "$rootfs" "$var/demo-rootfs.tar"
  fi
}

# start_demo_containers: the containers the rules judge (see the top).
start_demo_containers() {
  demo_image
  local img=localhost/vigil-demo:busybox digest
  digest=$(podman image inspect --format '{{.Digest}}' "$img")
  podman run -d --name vigil-demo-privileged "${podman_run[@]}" --privileged \
    "$img" sleep 1000000 >/dev/null
  podman run -d --name vigil-demo-hostmount "${podman_run[@]}" --pid host \
    -v /etc:/host-etc --cap-add SYS_ADMIN "$img" sleep 1000000 >/dev/null
  podman run -d --name vigil-demo-shell "${podman_run[@]}" "$img" sleep 1000000 >/dev/null
  podman run -d --name vigil-demo-hardened "${podman_run[@]}" --user 1000:1000 \
    --cap-drop ALL --read-only --security-opt no-new-privileges --memory 64m \
    --pids-limit 50 "localhost/vigil-demo@$digest" sleep 1000000 >/dev/null
  # someone at a terminal in the shell container, every minute
  (while sleep 60; do
    podman exec -t vigil-demo-shell sh -c 'id; find / -maxdepth 3 -name id_rsa; true' \
      >/dev/null 2>&1 || true
  done) &
  echo $! >"$var/demo-exec.pid"
  podman exec -t vigil-demo-shell sh -c 'id; sleep 1; true' >/dev/null 2>&1 || true
}

stop_all() {
  for f in "$var"/demo-exec.pid "$var"/loadgen.pid "$var"/agent.pid "$var"/podman.pid \
    "$var"/collector.pid; do
    if [ -f "$f" ]; then
      kill "$(cat "$f")" 2>/dev/null || true
      rm -f "$f"
    fi
  done
  podman rm -f -t 0 "${demo_containers[@]}" >/dev/null 2>&1 || true
  sleep 1
  bash scripts/pg.sh stop "$var/pg" >/dev/null 2>&1 || true
}

if [ "${1:-}" = stop ]; then
  stop_all
  echo "demo: stopped"
  exit 0
fi

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target vigil-collector vigil-loadgen vigil-agent
mkdir -p "$var"
stop_all
node=$(hostname)
bash scripts/dev-pki.sh "$var/pki" >/dev/null
# A dev PKI made before enrollment existed has no issuing CA: make a new one.
if [ ! -s "$var/pki/issuer.crt" ]; then
  echo "demo: $var/pki has no issuing CA; making a new development PKI" >&2
  rm -rf "$var/pki" "$var/agent"
  bash scripts/dev-pki.sh "$var/pki" >/dev/null
fi
bash scripts/pg.sh start "$var/pg" "$pg_port" >/dev/null
db="host=$var/pg/sock port=$pg_port dbname=vigil user=postgres"

build/bin/vigil-collector --listen "127.0.0.1:$port" \
  --tls-cert "$var/pki/collector.crt" --tls-key "$var/pki/collector.key" \
  --agent-ca "$var/pki/ca.crt" --db "$db" \
  --agent-issuer-cert "$var/pki/issuer.crt" --agent-issuer-key "$var/pki/issuer.key" \
  --http-listen "127.0.0.1:$http_port" --http-tls-cert "$var/pki/collector.crt" \
  --http-tls-key "$var/pki/collector.key" >"$var/collector.log" 2>&1 &
echo $! >"$var/collector.pid"
trap 'echo; echo "demo: stopping"; stop_all; exit 0' INT TERM
for _ in $(seq 100); do
  grep -q "listening on" "$var/collector.log" 2>/dev/null && break
  if ! kill -0 "$(cat "$var/collector.pid")" 2>/dev/null; then
    cat "$var/collector.log"
    echo "demo: the collector did not start" >&2
    stop_all
    exit 1
  fi
  sleep 0.1
done

# An admin token for the dashboard and the API (only its hash is stored).
token=$(build/bin/vigil-collector token create --name "demo-$(date +%s)" --role admin \
  --expires 7d --db "$db" 2>>"$var/collector.log")

# Podman's Docker-compatible API, for container names, images and labels.
podman system service --time=0 "unix://$var/podman.sock" >"$var/podman.log" 2>&1 &
echo $! >"$var/podman.pid"
# This node's agent enrolls as a real node would: a single-use join token,
# a key made here (var/agent/agent.key, never sent), a certificate signed by
# the collector's issuing CA. A certificate still valid is kept.
mkdir -p "$var/agent"
cat >"$var/agent/agent.conf" <<CONF
collectors = 127.0.0.1:$port
server_name = localhost
tls_cert = $var/agent/agent.crt
tls_key = $var/agent/agent.key
ca = $var/agent/ca.crt
spool_dir = $var/agent-spool
docker_socket = $var/podman.sock
CONF
if ! openssl x509 -in "$var/agent/agent.crt" -noout -checkend 3600 >/dev/null 2>&1; then
  build/bin/vigil-collector enroll-token create --db "$db" --uses 1 --expires 10m \
    --labels demo=yes 2>>"$var/collector.log" | grep -o 'vgj_[0-9a-f]*_[A-Za-z0-9_-]*' \
    >"$var/agent/join-token"
  # --force: the throwaway database may know this host from an earlier run.
  build/bin/vigil-agent enroll -c "$var/agent/agent.conf" --collector "127.0.0.1:$port" \
    --ca "$var/pki/ca.crt" --token-file "$var/agent/join-token" --force >>"$var/agent.log" 2>&1 ||
    { cat "$var/agent.log"; echo "demo: enrollment failed" >&2; stop_all; exit 1; }
  rm -f "$var/agent/join-token"
fi
build/bin/vigil-agent -c "$var/agent/agent.conf" >>"$var/agent.log" 2>&1 &
echo $! >"$var/agent.pid"
start_demo_containers

build/bin/vigil-loadgen --connect "127.0.0.1:$port" --ca "$var/pki/ca.crt" \
  --server-name localhost --issuer-cert "$var/pki/ca.crt" --issuer-key "$var/pki/ca.key" \
  --agents "$agents" --agent-prefix demo-node- --batch-events 100 --rate "$rate" \
  --duration 86400 --timeout 90000 --quiet >"$var/loadgen.log" 2>&1 &
echo $! >"$var/loadgen.pid"

cat <<INFO

Vigil demo is running.
  collector (agents):  127.0.0.1:$port   log: var/collector.log
  agent for this node: $node (enrolled: var/agent/)   log: var/agent.log   spool: var/agent-spool
  containers judged:   ${demo_containers[*]}
                       (findings within a minute: the dashboard's findings panel)
  simulated agents:    $agents sending $rate events/s   log: var/loadgen.log
  PostgreSQL:          $db
  development PKI:     var/pki (ca.crt, collector.crt, issuer.crt: signs enrolled agents)
  dashboard:           https://127.0.0.1:$http_port/   (certificate: var/pki/ca.crt)
  API token (admin):   $token
    curl --cacert var/pki/ca.crt -H "Authorization: Bearer $token" https://127.0.0.1:$http_port/api/v1/agents
Ctrl-C stops everything.
INFO
wait "$(cat "$var/collector.pid")" || true
stop_all
