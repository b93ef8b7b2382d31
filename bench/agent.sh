#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Footprint and latency of vigil-agent with real runc containers, a real
# collector and a real PostgreSQL, on a fresh machine (Debian 12, root):
#   bash bench/agent.sh [CONTAINERS] [BURST_EXECS] [STORM_PROCESSES]
# Installs what it needs, builds into build/ (or $VIGIL_BUILD_DIR), starts everything in a
# temporary directory and cleans up. Ends with one line of key=value:
#   containers rss_kib idle_cpu_pct inventory_ms exec_to_row_p50_ms
#   exec_to_row_p99_ms execs_sent execs_stored (plus execs_per_s)
#   exec_to_finding_p99_ms findings_seen
#   storm_rss_kib storm_peak_kib (the agent's RSS after, and its peak by
#   then, a fork storm of STORM processes in one container, 1,000 alive at
#   a time)
# exec_to_row: from the agent's clock when it saw the exec (the event's
# ts) to the row being visible in PostgreSQL, one exec at a time;
# exec_to_finding_p99_ms: the same to the finding it raises (reverse_shell,
# a shell naming /dev/tcp) showing that exec as its latest evidence, of
# findings_seen execs.
# The machine is shared and noisy: figures vary; nothing here fails on a
# timing.
set -euo pipefail

N=${1:-100}
BURST=${2:-5000}
STORM=${3:-20000}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

bash scripts/deps.sh >/dev/null
for p in runc busybox-static; do
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends runc busybox-static >/dev/null
		break
	fi
done
B=${VIGIL_BUILD_DIR:-build}
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$B" -j "$(nproc)" --target vigil-agent vigil-collector >/dev/null

W=$(mktemp -d /tmp/vigil-agent-bench-XXXXXX)
chmod 755 "$W"
PORT=$((20000 + RANDOM % 20000))
PGPORT=$((40000 + RANDOM % 20000))
IDS=()
COL_PID=
AGENT_PID=
cleanup() {
	set +e
	[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
	for id in "${IDS[@]}"; do runc delete --force "$id" >/dev/null 2>&1; done
	[ -n "$COL_PID" ] && kill "$COL_PID" 2>/dev/null && wait "$COL_PID" 2>/dev/null
	bash scripts/pg.sh stop "$W/pg" >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT

log() { printf 'bench: %s\n' "$*" >&2; }

bash scripts/dev-pki.sh "$W/pki" bench-agent >/dev/null
bash scripts/pg.sh start "$W/pg" "$PGPORT" >/dev/null
DB="host=$W/pg/sock port=$PGPORT dbname=vigil user=postgres"
"$B/bin/vigil-collector" --listen "127.0.0.1:$PORT" --tls-cert "$W/pki/collector.crt" \
	--tls-key "$W/pki/collector.key" --agent-ca "$W/pki/ca.crt" --db "$DB" \
	>"$W/collector.log" 2>&1 &
COL_PID=$!
for _ in $(seq 100); do grep -q "listening on" "$W/collector.log" && break; sleep 0.1; done

# a busybox root file system, shared read-only by every container
R=$W/rootfs
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$R/bin/"
chroot "$R" /bin/busybox --install -s
mkbundle() { # ID ARGS_JSON
	local b=$W/bundles/$1
	mkdir -p "$b"
	(cd "$b" && runc spec)
	/usr/bin/python3 - "$b/config.json" "$R" "$2" <<'PY'
import json, sys
p, root, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
c = json.load(open(p))
c["root"] = {"path": root, "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = args
c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                    "options": ["size=1m"]})
json.dump(c, open(p, "w"))
PY
}
newid() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

log "starting $N containers"
for i in $(seq "$N"); do
	id=$(newid)
	mkbundle "$id" '["sleep", "1000000"]'
	(cd "$W/bundles/$id" && runc run -d "$id" </dev/null >/dev/null 2>&1)
	IDS+=("$id")
done

log "starting the agent"
"$B/bin/vigil-agent" --collectors "127.0.0.1:$PORT" --server-name localhost \
	--tls-cert "$W/pki/agents/bench-agent.crt" --tls-key "$W/pki/agents/bench-agent.key" \
	--ca "$W/pki/ca.crt" --spool-dir "$W/spool" --docker-socket none \
	>"$W/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 100); do grep -q "connected as" "$W/agent.log" && break; sleep 0.1; done
inventory_ms=$(sed -n 's/.* \([0-9]*\) containers found in \([0-9.]*\) ms.*/\2/p' "$W/agent.log" |
	head -1)
found=$(sed -n 's/.* \([0-9]*\) containers found in .*/\1/p' "$W/agent.log" | head -1)
log "agent found $found containers in $inventory_ms ms"

sleep 5
ticks() { awk '{print $14 + $15}' "/proc/$AGENT_PID/stat"; }
t0=$(ticks)
sleep 20
t1=$(ticks)
hz=$(getconf CLK_TCK)
idle_cpu=$(/usr/bin/python3 -c "print(round(($t1 - $t0) / $hz / 20 * 100, 2))")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT_PID/status")
log "idle: cpu ${idle_cpu}% rss ${rss} KiB"

# exec -> row latency, one exec at a time, and a burst of execs
/usr/bin/python3 - "$DB" "${IDS[0]}" "$BURST" "${IDS[@]:1:10}" >"$W/figures" <<'PY'
import subprocess, sys, time
import psycopg2

db, first, burst = sys.argv[1], sys.argv[2], int(sys.argv[3])
burst_ids = sys.argv[4:]
conn = psycopg2.connect(db)
conn.autocommit = True
cur = conn.cursor()

def row_ts(marker):
    cur.execute("SELECT extract(epoch FROM ts) FROM events WHERE kind = 4 AND "
                "container_id = %s AND argv[3] = %s", (first, marker))
    r = cur.fetchone()
    return float(r[0]) if r else None

lat = []
for i in range(60):
    marker = "sleep 0.2; echo bench-%d; true" % i
    p = subprocess.Popen(["runc", "exec", first, "sh", "-c", marker],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    ts = None
    while time.time() < deadline:
        ts = row_ts(marker)
        if ts is not None:
            break
        time.sleep(0.002)
    seen = time.time()
    p.wait()
    if ts is not None:
        lat.append((seen - ts) * 1000)
lat.sort()
p50 = lat[len(lat) // 2] if lat else -1
p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else -1

# exec -> finding: a shell whose command line names /dev/tcp raises the
# reverse_shell rule; the finding row (its latest evidence) is visible in
# the transaction of the exec's own row
def exec_key(marker):
    cur.execute("SELECT seq, idx, extract(epoch FROM ts) FROM events WHERE kind = 4 AND "
                "container_id = %s AND argv[3] = %s", (first, marker))
    return cur.fetchone()

def finding_has(seq, idx):
    cur.execute("SELECT 1 FROM findings WHERE container_id = %s AND rule = 'reverse_shell' "
                "AND (last_seq, last_idx) >= (%s, %s)", (first, seq, idx))
    return cur.fetchone() is not None

flat = []
for i in range(60):
    marker = "sleep 0.2; : /dev/tcp/bench-%d; true" % i
    p = subprocess.Popen(["runc", "exec", first, "sh", "-c", marker],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    key = None
    while time.time() < deadline:
        key = key or exec_key(marker)
        if key and finding_has(key[0], key[1]):
            break
        time.sleep(0.002)
    seen = time.time()
    p.wait()
    if key and seen < deadline:
        flat.append((seen - float(key[2])) * 1000)
flat.sort()
f99 = flat[min(len(flat) - 1, int(len(flat) * 0.99))] if flat else -1

per = burst // len(burst_ids)
sent = per * len(burst_ids)
script = "i=0; while [ $i -lt %d ]; do /bin/true; i=$((i+1)); done" % per
cur.execute("SELECT now()")
start = cur.fetchone()[0]
t0 = time.time()
procs = [subprocess.Popen(["runc", "exec", c, "sh", "-c", script]) for c in burst_ids]
for p in procs:
    p.wait()
elapsed = time.time() - t0
q = ("SELECT count(*) FROM events WHERE kind = 4 AND container_id = ANY(%s) AND ts >= %s "
     "AND (argv = ARRAY['/bin/true'] OR argv = ARRAY['true'] OR details->>'incomplete' = 'true')")
stored = 0
deadline = time.time() + 60
while time.time() < deadline:
    cur.execute(q, (burst_ids, start))
    stored = cur.fetchone()[0]
    if stored >= sent:
        break
    time.sleep(0.5)
print("exec_to_row_p50_ms=%.1f exec_to_row_p99_ms=%.1f execs_sent=%d execs_stored=%d "
      "execs_per_s=%d exec_to_finding_p99_ms=%.1f findings_seen=%d"
      % (p50, p99, sent, stored, sent / elapsed, f99, len(flat)))
PY
rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT_PID/status")
log "rss after the burst: ${rss_after} KiB"

# a fork storm in one container: STORM processes, 1,000 alive at a time
rounds=$(((STORM + 999) / 1000))
log "fork storm: $rounds x 1000 processes in one container"
runc exec "${IDS[0]}" sh -c "j=0; while [ \$j -lt $rounds ]; do i=0; \
	while [ \$i -lt 1000 ]; do sleep 0.5 & i=\$((i+1)); done; wait; j=\$((j+1)); done" \
	>/dev/null 2>&1 || log "fork storm: runc exec failed"
sleep 3
storm_rss=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT_PID/status")
storm_peak=$(awk '/VmHWM/ {print $2}' "/proc/$AGENT_PID/status")
log "rss after the fork storm: ${storm_rss} KiB (peak ${storm_peak} KiB)"
echo "containers=$found rss_kib=$rss idle_cpu_pct=$idle_cpu inventory_ms=$inventory_ms $(cat "$W/figures") storm_rss_kib=$storm_rss storm_peak_kib=$storm_peak"
