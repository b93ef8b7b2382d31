#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerate the seed corpora in tests/fuzz/corpus/ from the protobuf text
# below (needs protoc from Debian's protobuf-compiler). The seeds are
# committed; run this only after changing the messages or the seeds.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/tests/fuzz/corpus
proto=$root/proto

encode() { # encode MESSAGE_TYPE < text > binary
	protoc --proto_path="$proto" --encode="vigil.v1.$1" \
		"$proto/vigil/v1/protocol.proto"
}

frame() { # frame FILE: write a 4-byte big-endian length, then FILE
	local n
	n=$(stat -c %s "$1")
	printf '%b' "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((n >> 24 & 255)) \
		$((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255)))"
	cat "$1"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$out/fuzz_frame" "$out/fuzz_rows" "$out/fuzz_config" # only the seeds made here
mkdir -p "$out/fuzz_frame" "$out/fuzz_rows" "$out/fuzz_config"

exec_event='events {
  time_ns: 1700000000000000000 kind: EVENT_KIND_PROCESS_EXEC
  severity: SEVERITY_LOW container_id: "3f2a9c"
  process_exec { pid: 4242 ppid: 1 uid: 0 executable: "/bin/sh"
    argv: "/bin/sh" argv: "-c" argv: "id" cwd: "/" truncated: true }
}'
container='id: "3f2a9c" name: "web" runtime: RUNTIME_DOCKER image: "nginx:1.25"
  image_digest: "sha256:feed" labels { key: "app" value: "web" }
  command: "nginx" command: "-g" command: "daemon off;" uid: 101 gid: 101
  user_known: true privileged: true cap_effective: "CAP_SYS_ADMIN"
  cap_bounding: "CAP_CHOWN" host_net: true
  mounts { source: "/var/run/docker.sock" destination: "/run/docker.sock" type: "bind" }
  read_only_rootfs: true seccomp_profile: "unconfined" apparmor_profile: "docker-default"
  init_pid: 777 created_ns: 1 started_ns: 2 state: "running"'
inventory_event="events {
  time_ns: 1700000000000000000 kind: EVENT_KIND_INVENTORY
  inventory { full: true
    host { hostname: \"node-1\" os: \"Debian\" kernel: \"6.1\" boot_id: \"b\"
      agent_version: \"0.1.0\" runtimes: \"docker\" }
    containers { $container } }
}"
misc_events="events { time_ns: 1 kind: EVENT_KIND_CONTAINER_STARTED container_id: \"3f2a9c\"
  container_started { container { $container } } }
events { time_ns: 1700000000000000001 kind: EVENT_KIND_CONTAINER_STOPPED
  container_id: \"3f2a9c\" container_stopped { exit_code_known: true exit_code: 137 } }
events { kind: EVENT_KIND_AGENT_STATUS agent_status { spool_bytes: 10 dropped_events: 3
  sources { name: \"docker\" error: \"permission denied\" } } }
events { kind: EVENT_KIND_FINDING severity: SEVERITY_HIGH
  finding { rule: \"privileged\" summary: \"runs privileged\" } }
events { kind: EVENT_KIND_CONTAINER_CHANGED container_changed { container { id: \"x\" } } }"

# fuzz_rows: bare Batch messages.
echo "seq: 1 $exec_event" | encode Batch >"$out/fuzz_rows/exec"
echo "seq: 2 $inventory_event" | encode Batch >"$out/fuzz_rows/inventory"
echo "seq: 3 $misc_events" | encode Batch >"$out/fuzz_rows/misc"

# fuzz_frame: framed AgentMessages, and a few bad headers.
echo 'hello { protocol_version: 1 agent_version: "0.1.0" hostname: "node-1"
  boot_id: "b" kernel: "6.1" os: "Debian" agent_time_ns: 1700000000000000000 }' |
	encode AgentMessage >"$tmp/hello"
echo "batch { seq: 1 $exec_event }" | encode AgentMessage >"$tmp/batch_exec"
echo "batch { seq: 2 $inventory_event $misc_events }" | encode AgentMessage >"$tmp/batch_misc"
echo 'heartbeat { time_ns: 1700000000000000000 }' | encode AgentMessage >"$tmp/heartbeat"
for f in hello batch_exec batch_misc heartbeat; do
	frame "$tmp/$f" >"$out/fuzz_frame/$f"
done
printf '\x00\x00\x00\x00' >"$out/fuzz_frame/empty"
printf '\x00\x40\x00\x01' >"$out/fuzz_frame/too_large"
printf '\x00\x00\x00\x10\x0a\x02' >"$out/fuzz_frame/partial"

# fuzz_config: settings files (see the table in fuzz_config.c).
cat >"$out/fuzz_config/full" <<'CONF'
# listener
listen = "0.0.0.0:7443"
name = node-1
port = 7443
verbose = yes
max_frame_bytes = 4MiB
timeout = 250ms
CONF
printf 'verbose = on\r\nmax_frame_bytes = 512k\r\ntimeout = 2m\r\n' >"$out/fuzz_config/crlf"
printf 'port = 99999\n' >"$out/fuzz_config/bounds"
printf '\n\n  # only comments\n\t\n' >"$out/fuzz_config/comments"
printf 'name = "quoted value with = and #"\nbogus' >"$out/fuzz_config/errors"

ls -l "$out"/*
