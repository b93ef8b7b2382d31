#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Development PKI for Vigil, made with the openssl CLI.
#
#   scripts/dev-pki.sh DIR [AGENT_NAME...]
#
# Creates (keeping whatever already exists):
#   DIR/ca.crt, DIR/ca.key                 dev CA: signs agent certificates
#                                          and the collector's certificate
#   DIR/collector.crt, DIR/collector.key   serverAuth; SAN localhost,
#                                          127.0.0.1, ::1 and this host name
#   DIR/issuer.crt, DIR/issuer.key         issuing CA below the dev CA: the
#                                          collector signs enrolled agents'
#                                          certificates with it
#                                          (agent_issuer_cert/_key)
#   DIR/agents/NAME.crt, NAME.key          CN=NAME, clientAuth
# Keys are EC P-256, mode 0600. For development and tests only.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  echo "usage: $0 DIR [AGENT_NAME...]" >&2
  exit 2
fi
dir=$1
shift
days=${VIGIL_PKI_DAYS:-825}

mkdir -p "$dir/agents"
umask 077

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# new_key FILE: EC P-256 private key, mode 0600.
new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod 600 "$1"
}

# sign NAME_BASE SUBJECT EXTFILE: CSR from NAME_BASE.key, certificate signed
# by the CA into NAME_BASE.crt.
sign() {
  local base=$1 subj=$2 ext=$3
  openssl req -new -key "$base.key" -subj "$subj" -out "$tmp/req.csr"
  openssl x509 -req -in "$tmp/req.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
    -extfile "$ext" -out "$base.crt.new" 2>/dev/null
  chmod 644 "$base.crt.new"
  mv "$base.crt.new" "$base.crt"
}

created=()

if [ ! -s "$dir/ca.crt" ] || [ ! -s "$dir/ca.key" ]; then
  new_key "$dir/ca.key"
  cat > "$tmp/ca.cnf" <<EOT
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
O = Vigil dev
CN = Vigil dev CA
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:1
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOT
  openssl req -new -x509 -config "$tmp/ca.cnf" -key "$dir/ca.key" \
    -days "$((days + 365))" -sha256 -set_serial "0x$(openssl rand -hex 16)" \
    -out "$dir/ca.crt"
  chmod 644 "$dir/ca.crt"
  created+=("$dir/ca.crt")
fi

if [ ! -s "$dir/collector.crt" ] || [ ! -s "$dir/collector.key" ]; then
  new_key "$dir/collector.key"
  host=$(hostname 2>/dev/null || echo localhost)
  san="DNS:localhost,IP:127.0.0.1,IP:::1"
  if [ -n "$host" ] && [ "$host" != "localhost" ]; then
    san="$san,DNS:$host"
  fi
  cat > "$tmp/server.ext" <<EOT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOT
  sign "$dir/collector" "/O=Vigil dev/CN=vigil-collector" "$tmp/server.ext"
  created+=("$dir/collector.crt")
fi

# The issuing CA needs a root that may have a CA below it (a dev CA made
# before enrollment existed has pathlen:0: remove DIR to make a new one).
if [ ! -s "$dir/issuer.crt" ] || [ ! -s "$dir/issuer.key" ]; then
  if openssl x509 -in "$dir/ca.crt" -noout -ext basicConstraints 2>/dev/null | grep -q 'pathlen:0'; then
    echo "dev-pki: $dir/ca.crt cannot sign an issuing CA (pathlen:0); no issuer made" >&2
  else
    new_key "$dir/issuer.key"
    cat > "$tmp/issuer.ext" <<EOT
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOT
    sign "$dir/issuer" "/O=Vigil dev/CN=Vigil dev agent issuer" "$tmp/issuer.ext"
    created+=("$dir/issuer.crt")
  fi
fi

cat > "$tmp/client.ext" <<EOT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOT
for name in "$@"; do
  case $name in
    */* | .* | "") echo "dev-pki: bad agent name '$name'" >&2; exit 2 ;;
  esac
  base="$dir/agents/$name"
  if [ -s "$base.crt" ] && [ -s "$base.key" ]; then
    continue
  fi
  new_key "$base.key"
  sign "$base" "/O=Vigil dev/CN=$name" "$tmp/client.ext"
  created+=("$base.crt")
done

echo "dev-pki: CA             $dir/ca.crt (key $dir/ca.key)"
echo "dev-pki: collector      $dir/collector.crt (key $dir/collector.key)"
[ -s "$dir/issuer.crt" ] && echo "dev-pki: agent issuer   $dir/issuer.crt (key $dir/issuer.key)"
echo "dev-pki: agents         $dir/agents/"
if [ ${#created[@]} -gt 0 ]; then
  echo "dev-pki: created        ${created[*]}"
fi
