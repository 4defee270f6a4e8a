# The TURN side: coturn's Redis, an unmodified coturn reading its users from
# it (turnserver --redis-userdb --lt-cred-mech), and turn-credential-sync
# keeping that Redis equal to the broker's live credentials.
TURN_REALM=${TURN_REALM:-demo.example.org}

stack_start_turn() {
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
    --lt-cred-mech --realm "$TURN_REALM" \
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
    --coturn-admin "127.0.0.1:$TURN_CLI_PORT" \
    --coturn-admin-password-file "$STACK_DIR/coturn-cli-password" \
    --metrics-listen 127.0.0.1:0
  wait_for_log turn-sync 'msg="synced"'
  TURN_SYNC_METRICS=$(sed -n 's/.*running sync=stack metrics=\([^ ]*\).*/\1/p' "$STACK_DIR/turn-sync.log")
  echo "coturn on 127.0.0.1:$TURN_PORT (realm $TURN_REALM), its Redis on :$REDIS_PORT," \
    "turn-credential-sync metrics on $TURN_SYNC_METRICS"
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
    sed 's/^/  /'
}
