# The TURN side: coturn's Redis, an unmodified coturn reading its users from
# it (turnserver --redis-userdb --lt-cred-mech), and turn-credential-sync
# keeping that Redis equal to the broker's live credentials.
#
# TURN_AUTH_MODE picks the farm's mode (one coturn serves one mode):
#   per-credential (default)  approach 2: a long-term key per credential
#   shared-secret             approach 1 (docs/approach1.md): coturn
#                             --use-auth-secret with no static secret, the
#                             sync --auth-mode=shared-secret keeps the realm's
#                             secrets in turn/realm/<realm>/secret; the stack
#                             stages and activates a first secret, "stack-1"
TURN_REALM=${TURN_REALM:-demo.example.org}
TURN_AUTH_MODE=${TURN_AUTH_MODE:-per-credential}

stack_start_turn() {
  local auth_flag
  case $TURN_AUTH_MODE in
    per-credential) auth_flag=--lt-cred-mech ;;
    shared-secret) auth_flag=--use-auth-secret ;;
    *)
      echo "turn: TURN_AUTH_MODE must be per-credential or shared-secret, not '$TURN_AUTH_MODE'" >&2
      return 1
      ;;
  esac
  REDIS_PORT=$(free_port)
  start_bg redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$STACK_DIR"
  wait_for_log redis "Ready to accept connections"

  TURN_PORT=$(free_port)
  TURN_CLI_PORT=$(free_port)
  TURN_PEER_PORT=$(free_port)
  # The echo peer sits on a non-loopback address of this machine: coturn
  # denies loopback peers (its Redis is on 127.0.0.1), as in the chart.
  TURN_PEER_IP=$(ip -4 -o addr show scope global | awk '{sub("/.*", "", $4); print $4; exit}')
  if [[ -z $TURN_PEER_IP ]]; then
    echo "turn: this machine has no non-loopback IPv4 address for the echo peer" >&2
    return 1
  fi
  # coturn's admin CLI (loopback only) lets the sync end revoked sessions;
  # its password goes in a config file, not on the command line.
  umask 077
  head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STACK_DIR/coturn-cli-password"
  echo "cli-password=$(cat "$STACK_DIR/coturn-cli-password")" >"$STACK_DIR/turnserver.conf"
  # The flags of the chart (helm/turnbroker/templates/turn.yaml; tests/helm
  # checks they match): no KEYS scans of the user database, and no relay to
  # loopback, link-local (cloud metadata), private ranges, IPv4-mapped IPv6
  # (CVE-2026-27624, coturn < 4.9) or multicast; the echo peer's address is
  # the one exception.
  start_bg turnserver turnserver -c "$STACK_DIR/turnserver.conf" \
    --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 \
    --listening-port "$TURN_PORT" --no-tls --no-dtls \
    --redis-userdb "ip=127.0.0.1 port=$REDIS_PORT dbname=0" \
    "$auth_flag" --realm "$TURN_REALM" \
    --no-auth-pings --no-dynamic-ip-list --no-dynamic-realms --no-multicast-peers \
    --denied-peer-ip=0.0.0.0-0.255.255.255 --denied-peer-ip=127.0.0.0-127.255.255.255 \
    --denied-peer-ip=::1 --denied-peer-ip=169.254.0.0-169.254.255.255 \
    --denied-peer-ip=fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff \
    --denied-peer-ip=::ffff:0.0.0.0-::ffff:255.255.255.255 \
    --denied-peer-ip=10.0.0.0-10.255.255.255 --denied-peer-ip=172.16.0.0-172.31.255.255 \
    --denied-peer-ip=192.168.0.0-192.168.255.255 --denied-peer-ip=100.64.0.0-100.127.255.255 \
    --denied-peer-ip=fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff \
    --allowed-peer-ip="$TURN_PEER_IP" \
    --pidfile "$STACK_DIR/turnserver.pid" \
    --cli-ip 127.0.0.1 --cli-port "$TURN_CLI_PORT" \
    --log-file stdout --simple-log
  wait_for_log turnserver "Total General servers"
  # turnutils_uclient needs an echo peer behind the relay.
  start_bg turn-peer turnutils_peer -L "$TURN_PEER_IP" -p "$TURN_PEER_PORT"

  start_bg turn-sync "$BUILD/turn-plugin/turn-credential-sync" --broker "$BROKER" \
    --redis-url "redis://127.0.0.1:$REDIS_PORT/0" --realm "$TURN_REALM" --name stack \
    --auth-mode "$TURN_AUTH_MODE" \
    --coturn-admin "127.0.0.1:$TURN_CLI_PORT" \
    --coturn-admin-password-file "$STACK_DIR/coturn-cli-password" \
    --metrics-listen 127.0.0.1:0
  wait_for_log turn-sync 'msg="synced"'
  TURN_SYNC_METRICS=$(sed -n 's/.*running sync=stack metrics=\([^ ]*\).*/\1/p' "$STACK_DIR/turn-sync.log")
  echo "coturn on 127.0.0.1:$TURN_PORT (realm $TURN_REALM, $TURN_AUTH_MODE), its Redis on" \
    ":$REDIS_PORT, turn-credential-sync metrics on $TURN_SYNC_METRICS"
  if [[ $TURN_AUTH_MODE == shared-secret ]]; then turn_first_secret; fi
}

# turn_secret_count: how many secrets coturn's set of the realm holds.
turn_secret_count() {
  redis-cli -p "$REDIS_PORT" scard "turn/realm/$TURN_REALM/secret"
}

# turn_first_secret: stages the realm's first secret and activates it once
# the sync has acknowledged it (the broker refuses activation before).
turn_first_secret() {
  run "$CTL" secret add --realm "$TURN_REALM" --id stack-1
  for _ in $(seq 50); do [[ $(turn_secret_count) -ge 1 ]] && break; sleep 0.1; done
  for _ in $(seq 100); do
    "$CTL" secret activate --realm "$TURN_REALM" --id stack-1 >/dev/null 2>&1 && break
    sleep 0.1
  done
  run "$CTL" secret list --realm "$TURN_REALM"
}

# turn_rest_password USER SECRET: coturn's TURN REST API password of USER,
# base64(HMAC-SHA1(SECRET, USER)) (docs/approach1.md).
turn_rest_password() {
  printf '%s' "$1" | openssl dgst -sha1 -hmac "$2" -binary | base64
}

# turn_allocate USER PASSWORD: one TURN allocation with turnutils_uclient;
# succeeds if coturn accepted the credential.
turn_allocate() {
  local log="$STACK_DIR/uclient-$1-$RANDOM.log" client
  turnutils_uclient -v -c -n 1 -u "$1" -w "$2" -e "$TURN_PEER_IP" -r "$TURN_PEER_PORT" \
    -p "$TURN_PORT" 127.0.0.1 >"$log" 2>&1 &
  client=$!
  for _ in $(seq 50); do
    if grep -qs "Received relay addr" "$log"; then
      kill "$client" 2>/dev/null || true
      wait "$client" 2>/dev/null || true
      return 0
    fi
    kill -0 "$client" 2>/dev/null || break
    sleep 0.1
  done
  kill "$client" 2>/dev/null || true
  wait "$client" 2>/dev/null || true
  return 1
}

# turn_key_present USER: whether coturn's key for USER is in its Redis.
turn_key_present() {
  [[ $(redis-cli -p "$REDIS_PORT" exists "turn/realm/$TURN_REALM/user/$1/key") == 1 ]]
}

stack_demo_turn() {
  if [[ $TURN_AUTH_MODE == shared-secret ]]; then
    stack_demo_turn_shared_secret
    return
  fi
  say "TURN: a credential published with turnbrokerctl is accepted by coturn, refused after revoke"
  local user="wic-$RANDOM$RANDOM" pass key
  pass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  key="turn/realm/$TURN_REALM/user/$user/key"
  # The password goes on stdin (--password -): not on screen, not in ps.
  run_secret "$pass" "$CTL" publish --realm "$TURN_REALM" --username "$user" --password - \
    --ttl 600 --subscriber "sip:alice@$TURN_REALM" --issuer pcscf-demo
  for _ in $(seq 50); do turn_key_present "$user" && break; sleep 0.1; done
  echo "coturn's Redis now holds (HA1 as hex, absolute expiry in Unix ms):"
  run redis-cli -p "$REDIS_PORT" get "$key"
  run redis-cli -p "$REDIS_PORT" pexpiretime "$key"
  if turn_allocate "$user" "$pass"; then
    echo "turnutils_uclient: allocation ACCEPTED by coturn"
  else
    echo "turnutils_uclient: allocation refused (unexpected)" >&2
    return 1
  fi
  if turn_allocate "$user" "wrong-password"; then
    echo "turnutils_uclient: a wrong password was accepted (unexpected)" >&2
    return 1
  fi
  echo "turnutils_uclient: a wrong password is refused"
  run "$CTL" revoke --subscriber "sip:alice@$TURN_REALM" --reason de-REGISTER
  for _ in $(seq 50); do turn_key_present "$user" || break; sleep 0.1; done
  run redis-cli -p "$REDIS_PORT" exists "$key"
  if turn_allocate "$user" "$pass"; then
    echo "turnutils_uclient: allocation accepted after revoke (unexpected)" >&2
    return 1
  fi
  echo "turnutils_uclient: allocation REFUSED by coturn after revoke"
  echo "turn-credential-sync's view (/metrics):"
  curl -s "http://$TURN_SYNC_METRICS/metrics" |
    grep -E '^turnbroker_sync_(events_applied_total|keys_deleted_total|last_applied_revision|up)[ {]' |
    grep -v 'kind="secret' | sed 's/^/  /'
}

# Approach 1: a credential made from the realm's active secret is accepted by
# coturn; tampered or expired, it is refused.
stack_demo_turn_shared_secret() {
  say "TURN (shared-secret): a TURN REST API credential from the active secret is accepted"
  local secret user pass
  # The realm's one secret, as coturn reads it (not shown).
  secret=$(redis-cli --raw -p "$REDIS_PORT" srandmember "turn/realm/$TURN_REALM/secret")
  echo "coturn's Redis holds $(turn_secret_count) secret(s) in turn/realm/$TURN_REALM/secret"
  user="$(($(date +%s) + 600)):$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  pass=$(turn_rest_password "$user" "$secret")
  if turn_allocate "$user" "$pass"; then
    echo "turnutils_uclient: allocation ACCEPTED by coturn (username $user)"
  else
    echo "turnutils_uclient: allocation refused (unexpected)" >&2
    return 1
  fi
  if turn_allocate "$user" "${pass%?}A"; then
    echo "turnutils_uclient: a tampered password was accepted (unexpected)" >&2
    return 1
  fi
  echo "turnutils_uclient: a tampered password is refused"
  user="$(($(date +%s) - 1)):expired"
  if turn_allocate "$user" "$(turn_rest_password "$user" "$secret")"; then
    echo "turnutils_uclient: an expired username was accepted (unexpected)" >&2
    return 1
  fi
  echo "turnutils_uclient: an expired username is refused"
  curl -s "http://$TURN_SYNC_METRICS/metrics" |
    grep -E '^turnbroker_sync_(events_applied_total\{kind="secret|secrets |acknowledgements_total)' |
    sed 's/^/  /'
}
