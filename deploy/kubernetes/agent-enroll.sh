#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The agent pod's init container: enroll this node once. The key and the
# certificate stay on the node (hostPath /var/lib/vigil-agent/pki, mode
# 0700), so a restarted or upgraded pod finds them and does not enroll again;
# the agent renews the certificate by itself while it runs.
#   certificate and key present, certificate not expired -> nothing to do
#   certificate expired (node off longer than its lifetime) -> enroll --force
#                                     (this machine's old certificates revoked)
#   nothing there (new node)          -> enroll with the join token
#   VIGIL_ENROLL_FORCE=1 in the environment: enroll --force where there is
#   nothing valid (a node whose /var/lib/vigil-agent was wiped, which the
#   collector knows by its machine id and refuses otherwise)
# Needs /bin/sh; the expiry check uses openssl(1) if the image has it, and
# otherwise keeps any certificate that is there.
set -eu

state=/var/lib/vigil-agent
pki=$state/pki
conf=/etc/vigil/agent.conf
ca=/etc/vigil/collector-ca/ca.crt
token=/var/run/secrets/vigil-enroll/token
cert=$pki/agent.crt
key=$pki/agent.key

umask 077
mkdir -p "$pki" "$state/spool"
chmod 0700 "$state" "$pki" "$state/spool"

force=
if [ "${VIGIL_ENROLL_FORCE:-}" = 1 ]; then
  force=--force
fi
if [ -s "$cert" ] && [ -s "$key" ]; then
  if ! command -v openssl >/dev/null 2>&1; then
    echo "vigil-enroll: $cert is there (no openssl here to check its dates): not enrolling again"
    exit 0
  fi
  if openssl x509 -noout -checkend 0 -in "$cert" >/dev/null 2>&1; then
    echo "vigil-enroll: $cert is valid: not enrolling again"
    exit 0
  fi
  echo "vigil-enroll: $cert has expired or cannot be read: enrolling again (--force)"
  force=--force
fi

if [ ! -s "$token" ]; then
  echo "vigil-enroll: no join token in $token: create Secret vigil-enroll-token (deploy/kubernetes/README.md)" >&2
  exit 1
fi
if [ -z "${VIGIL_COLLECTOR:-}" ]; then
  echo "vigil-enroll: VIGIL_COLLECTOR is not set (ConfigMap vigil-agent-env)" >&2
  exit 1
fi
echo "vigil-enroll: enrolling $(uname -n) with $VIGIL_COLLECTOR"
# shellcheck disable=SC2086 # $force is empty or one word
exec /usr/bin/vigil-agent enroll -c "$conf" --collector "$VIGIL_COLLECTOR" --ca "$ca" \
  --token-file "$token" $force
