#!/usr/bin/env bash
# The Helm chart renders (with Helm's template engine, see render/main.go)
# into valid manifests for several value sets, refuses what it must, and its
# broker defaults are the turn-broker binary's defaults.
# Usage: check_chart.sh RENDER_BINARY CHART_DIR TURN_BROKER_BINARY
set -euo pipefail
render=$1 chart=$2 broker=$3
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$render" "$chart") || fail "default values do not render"
for kind in Service StatefulSet PodDisruptionBudget Secret Deployment; do
  grep -q "^kind: $kind$" <<<"$out" || fail "default values: no $kind"
done
grep -q -- "--tls-ca=/etc/turnbroker/tls/ca.crt" <<<"$out" || fail "mTLS is not on by default"
"$render" "$chart" --notes | grep -q -- "- --broker=rel-turnbroker-broker.ims.svc:50051" \
  || fail "NOTES do not show the agent sidecar"

out=$("$render" "$chart" -f "$here/values-minimal.yaml") || fail "minimal values do not render"
grep -q -- "- --insecure" <<<"$out" || fail "plaintext without --insecure"
grep -q -- "- --no-fsync" <<<"$out" || fail "fsync: false not passed"
grep -q -- "- --max-watchers=100" <<<"$out" || fail "extraArgs not passed"
grep -q "emptyDir" <<<"$out" || fail "persistence off has no emptyDir"
! grep -q "^kind: Deployment$" <<<"$out" || fail "turn.enabled=false still renders TURN pods"

out=$("$render" "$chart" -f "$here/values-production.yaml") || fail "production values do not render"
[[ $(grep -c "^kind: Certificate$" <<<"$out") == 3 ]] || fail "cert-manager: want 3 Certificates"
grep -q "urn:turnbroker:role:subscriber" <<<"$out" || fail "sync certificate has no subscriber role"
grep -q "urn:turnbroker:role:publisher" <<<"$out" || fail "agent certificate has no publisher role"
grep -q -- "- --external-ip=203.0.113.10" <<<"$out" || fail "externalIp not passed"
grep -q -- "- --farm=farm-east" <<<"$out" || fail "farm not passed"
grep -q "storageClassName: fast-ssd" <<<"$out" || fail "storageClass not passed"

if msg=$("$render" "$chart" -f "$here/values-two-brokers.yaml" 2>&1); then
  fail "two broker replicas rendered; the embedded store is one writer"
fi
grep -q "broker.replicas" <<<"$msg" || fail "two replicas: unclear error: $msg"

# Every broker default in values.yaml is the binary's default.
help=$("$broker" --help)
check() {  # check VALUE_KEY FLAG
  local v d
  v=$(sed -n "/^broker:/,/^[a-z]/p" "$chart/values.yaml" | grep -E "^  $1:" | head -1 | awk '{print $2}')
  d=$(grep -oE -- "$2 [A-Z]+[^=]*=[0-9]+" <<<"$help" | sed 's/.*=//')
  [[ -n "$v" && "$v" == "$d" ]] || fail "values.yaml broker.$1=$v but turn-broker $2 defaults to $d"
}
check minTtl --min-ttl
check maxTtl --max-ttl
check maxBatch --max-batch
check historyMaxEvents --history-max-events
check historyMaxAge --history-max-age
check progressInterval --progress-interval
check maxConnectionAge --max-connection-age
echo "chart OK"
