#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install every Debian package that Vigil's build, tests, demo and benchmarks
# use. Idempotent: a fast no-op when everything is already installed; runs
# `apt-get update` only when something is missing.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
  libevent-dev libssl-dev openssl libpq-dev libprotobuf-c-dev
  protobuf-c-compiler libjansson-dev libcmocka-dev libyaml-dev libsqlite3-dev
  libzip-dev
  # database for tests and the demo
  postgresql-15 postgresql-client-15
  # the partition schedule with no collector running (test_retention.py)
  postgresql-15-cron
  # integration tests
  python3 python3-pytest python3-pytest-xdist python3-protobuf protobuf-compiler
  python3-cryptography python3-psycopg2
  # the agent's integration tests and benchmark: real containers
  podman runc busybox-static
  # image inventories read from a real Debian 12 root file system
  debootstrap
  # several collectors behind a load balancer: its test and benchmark
  haproxy
  # the status page's browser test and the API benchmark
  chromium chromium-driver python3-selenium wrk
  # the Debian packages' test (scripts/test-packages.sh)
  lintian
  # the Kubernetes manifests' schema check (scripts/check-kubernetes.sh)
  python3-yaml python3-jsonschema
  # scripts, demo and benchmarks
  procps iproute2 curl ca-certificates
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  if [ "$status" != "installed" ]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
fi

echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: done"
