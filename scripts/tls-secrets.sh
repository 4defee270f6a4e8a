#!/usr/bin/env bash
# Makes the chart's TLS Secrets when cert-manager is not used: a CA and the
# broker's server certificate, the TURN syncs' (urn:turnbroker:role:subscriber)
# and the eP-CSCF agents' (urn:turnbroker:role:publisher) client certificates,
# each a kubernetes.io/tls Secret that also holds ca.crt, printed as YAML.
# Also leaves an operator certificate (urn:turnbroker:role:operator) for
# turnbrokerctl in CA_DIR. A CA already in CA_DIR is reused, so running it
# again renews the certificates under the same CA (the pods reload them).
# Usage: scripts/tls-secrets.sh RELEASE [NAMESPACE] [CA_DIR] | kubectl apply -f -
#   NAMESPACE default: default; CA_DIR default: ./turnbroker-ca-RELEASE
#   DAYS (environment) certificate lifetime, default 90.
#   AGENT_ROLE (environment) the agents' role: publisher (default) or, for
#   agents of a turn.authMode=shared-secret farm (approach 1), minter.
set -euo pipefail
release=${1:?usage: tls-secrets.sh RELEASE [NAMESPACE] [CA_DIR]}
namespace=${2:-default}
ca_dir=${3:-./turnbroker-ca-$release}
days=${DAYS:-90}
agent_role=${AGENT_ROLE:-publisher}
if [[ $agent_role != publisher && $agent_role != minter ]]; then
  echo "tls-secrets.sh: AGENT_ROLE must be publisher or minter, not '$agent_role'" >&2
  exit 2
fi
# The chart's fullname (helm/turnbroker/templates/_helpers.tpl).
if [[ $release == *turnbroker* ]]; then full=$release; else full=$release-turnbroker; fi
full=${full:0:63}
full=${full%-}

umask 077
mkdir -p "$ca_dir"
if [[ ! -f $ca_dir/ca.key ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=$full CA" -keyout "$ca_dir/ca.key" -out "$ca_dir/ca.crt" 2>/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

issue() {  # issue NAME CN EXTENSIONS
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$work/$1.key" -out "$work/$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$work/$1.ext"
  openssl x509 -req -in "$work/$1.csr" -CA "$ca_dir/ca.crt" -CAkey "$ca_dir/ca.key" \
    -CAcreateserial -days "$days" -extfile "$work/$1.ext" -out "$work/$1.crt" 2>/dev/null
}
client=$'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth'
issue broker "$full-broker" "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:$full-broker,DNS:$full-broker.$namespace.svc,DNS:$full-broker.$namespace.svc.cluster.local"
issue sync "$full-turn-credential-sync" "$client
subjectAltName=URI:urn:turnbroker:role:subscriber"
issue agent "$full-pcscf-agent" "$client
subjectAltName=URI:urn:turnbroker:role:$agent_role"
issue operator "$full-operator" "$client
subjectAltName=URI:urn:turnbroker:role:operator"
cp "$work/operator.crt" "$work/operator.key" "$ca_dir/"

b64() { base64 -w0 <"$1"; }
for part in broker sync agent; do
  cat <<YAML
---
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata:
  name: $full-$part-tls
  namespace: $namespace
  labels:
    app.kubernetes.io/name: turnbroker
    app.kubernetes.io/instance: $release
data:
  ca.crt: $(b64 "$ca_dir/ca.crt")
  tls.crt: $(b64 "$work/$part.crt")
  tls.key: $(b64 "$work/$part.key")
YAML
done
echo "tls-secrets: CA and operator certificate in $ca_dir (keep ca.key safe)" >&2
