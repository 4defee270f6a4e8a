#!/usr/bin/env bash
# The chart's broker, as Helm renders it, really runs highly available: the
# turn-broker container's command and args from `helm template` with
# broker.store=redis (two replicas, the password from a Secret) start two
# real turn-broker processes against a real redis-server with AUTH; a
# credential published through one replica is served by the other, and the
# stream of the other sees it. Only what a pod's environment changes is
# rewritten: the listen addresses (free loopback ports instead of 0.0.0.0 and
# the chart's ports) and the mounted password file's path.
# Usage: check_chart_runs.sh CHART_DIR TURN_BROKER TURNBROKERCTL [TOOLS_DIR]
set -euo pipefail
chart=$1 broker=$2 ctl=$3
here=$(cd "$(dirname "$0")" && pwd)
tools=$("$here/install-tools.sh" ${4:+"$4"})
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.log; do [[ -e $f ]] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
  exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_healthy() {  # wait_healthy METRICS_PORT PID
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || fail "the broker exited"
    curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "the broker on metrics port $1 is not healthy"
}

# A Redis with AUTH, as the Secret would name it.
redis_port=$(free_port)
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$password" >"$work/password"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --requirepass "$password" --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  redis-cli -p "$redis_port" -a "$password" --no-auth-warning ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done

# The broker container, as rendered.
"$tools/bin/helm" template rel "$chart" --namespace ims \
  --set broker.store=redis --set broker.replicas=2 \
  --set "broker.redis.url=redis://127.0.0.1:$redis_port" \
  --set broker.redis.passwordSecret.name=turnbroker-redis \
  --set tls.enabled=false --set turn.enabled=false >"$work/rendered.yaml"
NODE_PATH="$tools/node_modules" node -e '
  const { parseAllDocuments } = require("yaml");
  const docs = parseAllDocuments(require("fs").readFileSync(process.argv[1], "utf8")).map(d => d.toJS());
  const sts = docs.find(d => d && d.kind === "StatefulSet" && d.metadata.name === "rel-turnbroker-broker");
  if (sts.spec.replicas !== 2) throw new Error("replicas " + sts.spec.replicas);
  const c = sts.spec.template.spec.containers.find(c => c.name === "turn-broker");
  for (const a of [...c.command, ...c.args]) console.log(a);
' "$work/rendered.yaml" >"$work/argv" || fail "no turn-broker container in the rendered chart"
[[ $(head -1 "$work/argv") == turn-broker ]] || fail "the container does not run turn-broker"
grep -qx -- "--store=redis" "$work/argv" || fail "rendered args have no --store=redis"

start_replica() {  # start_replica N GRPC_PORT METRICS_PORT
  local args=()
  while IFS= read -r a; do
    case $a in
      turn-broker) ;;
      --listen=*) args+=("--listen=127.0.0.1:$2") ;;
      --metrics-listen=*) args+=("--metrics-listen=127.0.0.1:$3") ;;
      --redis-password-file=/etc/turnbroker/redis/password) args+=("--redis-password-file=$work/password") ;;
      *) args+=("$a") ;;
    esac
  done <"$work/argv"
  "$broker" "${args[@]}" >"$work/broker$1.log" 2>&1 &
  pids+=($!)
  wait_healthy "$3" "$!"
}
g1=$(free_port) m1=$(free_port) g2=$(free_port) m2=$(free_port)
start_replica 1 "$g1" "$m1"
start_replica 2 "$g2" "$m2"

# A watcher on replica 2, a publish through replica 1.
"$ctl" --broker "127.0.0.1:$g2" --timeout 20 watch >"$work/watch.log" 2>&1 &
watch_pid=$!
pids+=($watch_pid)
"$ctl" --broker "127.0.0.1:$g1" publish --realm ims.example.org --username chart-ha \
  --password pw --ttl 600 >"$work/publish.log" 2>&1 || fail "publish through replica 1"
"$ctl" --broker "127.0.0.1:$g2" get --realm ims.example.org --username chart-ha >"$work/get.log" 2>&1 ||
  fail "replica 2 does not serve what replica 1 committed"
for _ in $(seq 50); do grep -q chart-ha "$work/watch.log" && break; sleep 0.1; done
grep -q chart-ha "$work/watch.log" || fail "replica 2's watcher did not see the publish"
"$ctl" --broker "127.0.0.1:$g2" status >"$work/status.log" 2>&1 || fail "status"
grep -q "redis:127.0.0.1:$redis_port" "$work/status.log" || fail "replica 2 is not on the Redis store"
echo "chart HA OK"
