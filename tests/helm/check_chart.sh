#!/usr/bin/env bash
# The Helm chart, with real Helm 3.17.2 (install-tools.sh): lints clean
# (--strict), renders every values file here into objects that are valid
# against the Kubernetes and cert-manager schemas with no unknown field
# (validate.mjs), refuses what it must (helm template: lint only reports a
# template's fail as INFO), prints a valid agent sidecar in NOTES, has the
# turn-broker binary's defaults, and starts coturn with the same safety flags
# as the local stack.
# Usage: check_chart.sh CHART_DIR TURN_BROKER_BINARY [TOOLS_DIR]
set -euo pipefail
chart=$1 broker=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tools=$("$here/install-tools.sh" ${3:+"$3"})
helm=$tools/bin/helm
cp "$here/validate.mjs" "$tools/validate.mjs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
render() { "$helm" template rel "$chart" --namespace ims "$@"; }
validate() { node "$tools/validate.mjs" "$@"; }

"$helm" version --short | grep -q '^v3\.17\.2' || fail "not Helm 3.17.2"
"$helm" lint --strict "$chart" >"$work/lint" || { cat "$work/lint"; fail "helm lint --strict"; }
for f in "$here"/values-[a-z]*.yaml; do
  [[ $f == */values-bad-* ]] && continue
  "$helm" lint --strict "$chart" -f "$f" >"$work/lint" || { cat "$work/lint"; fail "lint with $f"; }
  render -f "$f" >"$work/$(basename "$f")" || fail "$(basename "$f") does not render"
  validate "$work/$(basename "$f")" || fail "$(basename "$f"): invalid objects"
done

# Default values: everything a new install needs, TLS on, Secrets scoped to
# the release, a DaemonSet of TURN nodes with the safe coturn flags.
out=$(render) || fail "default values do not render"
validate <<<"$out" >/dev/null || fail "default values: invalid objects"
for kind in Service StatefulSet PodDisruptionBudget Secret DaemonSet NetworkPolicy; do
  grep -q "^kind: $kind$" <<<"$out" || fail "default values: no $kind"
done
! grep -q "^kind: Deployment$" <<<"$out" || fail "TURN nodes are a Deployment"
grep -q "clusterIP: None" <<<"$out" || fail "no headless Service for the StatefulSet"
grep -q "serviceName: rel-turnbroker-broker-headless" <<<"$out" || fail "StatefulSet not governed by the headless Service"
grep -q -- "--tls-ca=/etc/turnbroker/tls/ca.crt" <<<"$out" || fail "mTLS is not on by default"
for s in broker sync; do
  grep -q "secretName: rel-turnbroker-$s-tls" <<<"$out" || fail "$s TLS Secret not scoped to the release"
done
grep -q 'command: \["turnserver"\]' <<<"$out" || fail "coturn not started as turnserver"
grep -q "fieldPath: status.hostIP" <<<"$out" || fail "TURN nodes do not take their node's IP"
grep -q 'echo "external-ip=$HOST_IP"' <<<"$out" || fail "no external-ip from the node"
grep -q -- "--metrics-listen=\$(HOST_IP):9465" <<<"$out" || fail "sync metrics not on the node's IP"
! grep -q -- "--metrics-listen=0.0.0.0:9465" <<<"$out" || fail "sync metrics on 0.0.0.0"
grep -q "requirepass" <<<"$out" || fail "node-local Redis has no password"
! grep -q -- "--cli-password" <<<"$out" || fail "coturn CLI password on the command line"
grep -q "preStop" <<<"$out" || fail "no drain on rollout"
for flag in --no-auth-pings --no-dynamic-ip-list --no-dynamic-realms --no-multicast-peers \
    --denied-peer-ip=127.0.0.0-127.255.255.255 --denied-peer-ip=169.254.0.0-169.254.255.255 \
    --denied-peer-ip=::ffff:0.0.0.0-::ffff:255.255.255.255 --denied-peer-ip=10.0.0.0-10.255.255.255; do
  grep -q -- "- $flag$" <<<"$out" || fail "coturn without $flag"
  # The local stack starts coturn with the same flag.
  grep -qF -- "$flag" "$root/scripts/stack.d/20-turn.sh" ||
    fail "scripts/stack.d/20-turn.sh does not start coturn with $flag"
done
# The TURN farm's mode: per-credential by default, coturn and the sync agree.
grep -q -- "- --lt-cred-mech$" <<<"$out" || fail "default coturn not in --lt-cred-mech"
grep -q -- "- --auth-mode=per-credential$" <<<"$out" || fail "default sync not --auth-mode=per-credential"
! grep -q -- "--use-auth-secret" <<<"$out" || fail "default coturn with --use-auth-secret"
grep -qF -- '"$auth_flag" --realm' "$root/scripts/stack.d/20-turn.sh" &&
  grep -qF -- '--auth-mode "$TURN_AUTH_MODE"' "$root/scripts/stack.d/20-turn.sh" ||
  fail "scripts/stack.d/20-turn.sh does not set coturn's and the sync's mode from TURN_AUTH_MODE"
grep -q "runAsUser: 65532" <<<"$out" || fail "not the image's non-root user"
grep -q "readOnlyRootFilesystem: true" <<<"$out" || fail "root filesystem writable"
[[ $(grep -c "readinessProbe:" <<<"$out") -ge 4 ]] || fail "want probes on the broker, Redis, coturn and the sync"

# NOTES: the TLS step, and an agent sidecar that is a valid container.
notes_chart=$work/notes-chart
cp -r "$chart" "$notes_chart"
echo 'notes: {{ include "turnbroker/templates/NOTES.txt" . | toJson }}' >"$notes_chart/templates/zz-notes.yaml"
notes=$("$helm" template rel "$notes_chart" --namespace ims --show-only templates/zz-notes.yaml |
  sed -n 's/^notes: //p' | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")))')
grep -q "scripts/tls-secrets.sh rel ims | kubectl apply -f -" <<<"$notes" || fail "NOTES: no TLS step"
grep -q -- "- --broker=rel-turnbroker-broker.ims.svc:50051" <<<"$notes" || fail "NOTES: no agent sidecar"
grep -q -- "- --listen=127.0.0.1:8480" <<<"$notes" || fail "NOTES: not the agent's default port"
{
  printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: sip}\nspec:\n  containers:\n'
  sed -n '/^      - name: pcscf-turn-agent/,/^    #/p' <<<"$notes" | grep -v '^    #' | sed 's/^    //'
  printf '  volumes:\n    - {name: turnbroker-tls, secret: {secretName: x}}\n'
} >"$work/sidecar.yaml"
validate "$work/sidecar.yaml" >/dev/null || { cat "$work/sidecar.yaml"; fail "NOTES: the sidecar is not a valid container"; }
# The Secrets scripts/tls-secrets.sh makes are the ones the pods mount.
"$root/scripts/tls-secrets.sh" rel ims "$work/ca" 2>/dev/null >"$work/secrets.yaml"
validate "$work/secrets.yaml" >/dev/null || fail "tls-secrets.sh: invalid Secrets"
for s in broker sync agent; do
  grep -q "name: rel-turnbroker-$s-tls" "$work/secrets.yaml" || fail "tls-secrets.sh: no $s Secret"
done

out=$(cat "$work/values-minimal.yaml")
grep -q -- "- --insecure" <<<"$out" || fail "plaintext without --insecure"
grep -q -- "- --no-fsync" <<<"$out" || fail "fsync: false not passed"
grep -q -- "- --max-watchers=100" <<<"$out" || fail "extraArgs not passed"
grep -q "emptyDir" <<<"$out" || fail "persistence off has no emptyDir"
! grep -q "^kind: DaemonSet$" <<<"$out" || fail "turn.enabled=false still renders TURN pods"

out=$(cat "$work/values-production.yaml")
[[ $(grep -c "^kind: Certificate$" <<<"$out") == 3 ]] || fail "cert-manager: want 3 Certificates"
grep -q "urn:turnbroker:role:subscriber" <<<"$out" || fail "sync certificate has no subscriber role"
grep -q "urn:turnbroker:role:publisher" <<<"$out" || fail "agent certificate has no publisher role"
grep -q "^kind: ServiceMonitor$" <<<"$out" || fail "no ServiceMonitor"
grep -q "turn-node-1: \"203.0.113.10\"" <<<"$out" || fail "external IPs by node not passed"
grep -q -- "- --farm=farm-east" <<<"$out" || fail "farm not passed"
grep -q -- "- --no-tcp-relay" <<<"$out" || fail "noTcpRelay not passed"
grep -q -- "- --allowed-peer-ip=10.20.0.5" <<<"$out" || fail "allowedPeerIps not passed"
grep -q "image: coturn/coturn@sha256:fedcba98" <<<"$out" || fail "coturn not pulled by digest"
grep -q "image: registry.example.org/ims/turnbroker@sha256:01234567" <<<"$out" || fail "image not pulled by digest"
grep -q "storageClassName: fast-ssd" <<<"$out" || fail "storageClass not passed"

out=$(cat "$work/values-ha-sentinel.yaml")
grep -q "^  replicas: 3$" <<<"$out" || fail "ha: broker.replicas not passed"
grep -q "podManagementPolicy: Parallel" <<<"$out" || fail "ha: replicas not managed in parallel"
grep -q -- "- --store=redis$" <<<"$out" || fail "ha: no --store=redis"
grep -q -- "- --redis-sentinels=redis-sentinel-0.redis-sentinel:26379,redis-sentinel-1.redis-sentinel:26379,redis-sentinel-2.redis-sentinel:26379$" <<<"$out" ||
  fail "ha: sentinels not passed as one list"
grep -q -- "- --redis-master=turnbroker$" <<<"$out" || fail "ha: master not passed"
grep -q -- "- --redis-password-file=/etc/turnbroker/redis/password$" <<<"$out" || fail "ha: no password file"
grep -q "secretName: turnbroker-redis$" <<<"$out" || fail "ha: password Secret not mounted"
grep -q "key: redis-password$" <<<"$out" || fail "ha: password Secret key not used"
grep -q -- "- --redis-min-replicas-ack=2$" <<<"$out" || fail "ha: minReplicasAck not passed"
grep -q -- "- --redis-ack-timeout=800$" <<<"$out" || fail "ha: ackTimeoutMs not passed"
grep -q "podAntiAffinity" <<<"$out" || fail "ha: replicas not spread over nodes"
! grep -q -- "--data-dir" <<<"$out" || fail "ha: --data-dir with the Redis store"
! grep -q "volumeClaimTemplates" <<<"$out" || fail "ha: a volume per replica with the Redis store"
out=$(cat "$work/values-ha-url.yaml")
grep -q -- "- --redis-url=redis://redis.ims.svc:6379/2$" <<<"$out" || fail "ha: url not passed"
! grep -q -- "--redis-min-replicas-ack" <<<"$out" || fail "ha: minReplicasAck auto passed a value"
! grep -q -- "--redis-password-file" <<<"$out" || fail "ha: a password file without passwordSecret"
out=$(cat "$work/values-minimal.yaml")
! grep -q -- "--store=\|--redis-" <<<"$out" || fail "embedded store given Redis flags"

out=$(cat "$work/values-remote-broker.yaml")
! grep -q "^kind: StatefulSet$" <<<"$out" || fail "broker.enabled=false still renders the broker"
grep -q -- "- --broker=broker.ims.example.org:50051" <<<"$out" || fail "turn.brokerAddress not used"
grep -q -- "- --tls-server-name=rel-turnbroker-broker" <<<"$out" || fail "turn.brokerServerName not used"

# turn.authMode=shared-secret (approach 1): coturn --use-auth-secret with no
# static secret and no long-term users, the sync in shared-secret mode.
out=$(cat "$work/values-shared-secret.yaml")
grep -q -- "- --use-auth-secret$" <<<"$out" || fail "shared-secret: coturn without --use-auth-secret"
! grep -q -- "--lt-cred-mech" <<<"$out" || fail "shared-secret: coturn still in --lt-cred-mech"
! grep -q -- "static-auth-secret" <<<"$out" || fail "shared-secret: a static secret in coturn's flags"
grep -q -- "- --auth-mode=shared-secret$" <<<"$out" || fail "shared-secret: sync not --auth-mode=shared-secret"
grep -q "redis-userdb=" <<<"$out" || fail "shared-secret: coturn does not read the node's Redis"
# Its agents mint locally (role minter, --mode=shared-secret).
grep -q '"urn:turnbroker:role:minter"' <<<"$out" || fail "shared-secret: agent certificate not minter"
! grep -q "urn:turnbroker:role:publisher" <<<"$out" || fail "shared-secret: agent still publisher"
notes=$("$helm" template rel "$notes_chart" --namespace ims -f "$here/values-shared-secret.yaml" \
  --set tls.certManager.enabled=false --show-only templates/zz-notes.yaml |
  sed -n 's/^notes: //p' | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")))')
grep -q -- "- --mode=shared-secret" <<<"$notes" || fail "shared-secret NOTES: agent without --mode"
grep -q "AGENT_ROLE=minter scripts/tls-secrets.sh" <<<"$notes" || fail "shared-secret NOTES: no minter TLS step"
grep -q "secret add --realm" <<<"$notes" || fail "shared-secret NOTES: no first secret"
AGENT_ROLE=minter "$root/scripts/tls-secrets.sh" rel ims "$work/ca-minter" 2>/dev/null >"$work/minter.yaml"
sed -n '/name: rel-turnbroker-agent-tls/,/tls.crt:/p' "$work/minter.yaml" | sed -n 's/^  tls.crt: //p' |
  base64 -d | openssl x509 -noout -ext subjectAltName | grep -q "urn:turnbroker:role:minter" ||
  fail "tls-secrets.sh AGENT_ROLE=minter: agent certificate without the minter role"
if AGENT_ROLE=root "$root/scripts/tls-secrets.sh" rel ims "$work/ca-bad" >/dev/null 2>&1; then
  fail "tls-secrets.sh took AGENT_ROLE=root"
fi

# Refusals (helm template, whose fail is an error).
refuses() {  # refuses VALUES_FILE TEXT
  local msg
  if msg=$(render -f "$here/$1" 2>&1); then fail "$1 rendered"; fi
  grep -q -- "$2" <<<"$msg" || fail "$1: unclear error: $msg"
}
refuses values-bad-two-brokers.yaml "broker.replicas"
refuses values-bad-redis-nowhere.yaml "broker.redis.url, or broker.redis.sentinels"
refuses values-bad-redis-both.yaml "either url, or sentinels"
refuses values-bad-redis-password-in-url.yaml "broker.redis.url"
refuses values-bad-remote.yaml "turn.brokerAddress"
refuses values-bad-nodemap.yaml "turn.externalIp.nodes"
refuses values-bad-unknown.yaml "Additional property externalIp is not allowed"
refuses values-bad-unknown.yaml "turn.coturn.image.digest"
refuses values-bad-authmode.yaml "turn.authMode"

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
v=$(sed -n "/^  redis:/,/^  [a-z]/p" "$chart/values.yaml" | grep -E "^    ackTimeoutMs:" | awk '{print $2}')
d=$(grep -oE -- "--redis-ack-timeout [A-Z]+[^=]*=[0-9]+" <<<"$help" | sed 's/.*=//')
[[ -n "$v" && "$v" == "$d" ]] || fail "values.yaml broker.redis.ackTimeoutMs=$v but --redis-ack-timeout defaults to $d"
echo "chart OK"
