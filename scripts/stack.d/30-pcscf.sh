# The eP-CSCF side: pcscf-turn-agent and Kamailio with the reference
# configuration (pcscf-plugin/kamailio/kamailio.cfg). Uses the broker of
# 10-broker.sh and, when 20-turn.sh ran, coturn's port and realm.
PCSCF_SIPP="$root/pcscf-plugin/kamailio/sipp"
PCSCF_DOMAIN=${PCSCF_DOMAIN:-ims.example.org}
# The SIP users Kamailio authenticates (digest): alice for the sipp demo,
# wic for the browser page (40-wic.sh). Their passwords are made at start,
# kept in $STACK_DIR/sip-passwords (mode 600); the subscriber table holds
# only HA1s (pcscf-plugin/kamailio/add-subscriber.sh).
PCSCF_SIP_USERS=(alice wic)

# pcscf_sip_password USER: the stack's SIP password of USER.
pcscf_sip_password() {
  sed -n "s/^$1 //p" "$STACK_DIR/sip-passwords"
}

# The agent mints in the TURN farm's mode (20-turn.sh's TURN_AUTH_MODE):
# per-credential, or shared-secret with the realm's active secret
# (docs/approach1.md).
PCSCF_AGENT_MODE=${TURN_AUTH_MODE:-per-credential}

stack_start_pcscf() {
  local realm=${TURN_REALM:-demo.example.org}
  AGENT_PORT=$(free_port)
  start_bg pcscf-agent "$BUILD/pcscf-plugin/pcscf-turn-agent" --broker "$BROKER" \
    --listen "127.0.0.1:$AGENT_PORT" --realm "$realm" --mode "$PCSCF_AGENT_MODE" \
    --turn-uri "turn:127.0.0.1:${TURN_PORT:-3478}?transport=udp" \
    --turn-uri "turn:127.0.0.1:${TURN_PORT:-3478}?transport=tcp"
  wait_for_log pcscf-agent "pcscf-turn-agent listening on"
  if [[ $PCSCF_AGENT_MODE == shared-secret ]]; then
    # Ready once the realm's active secret has arrived over Watch.
    for _ in $(seq 100); do
      curl -sf "http://127.0.0.1:$AGENT_PORT/healthz" >/dev/null && break
      sleep 0.1
    done
  fi

  local subscribers="$STACK_DIR/kamailio-subscribers" user password
  rm -rf "$subscribers"
  (umask 077 && : >"$STACK_DIR/sip-passwords")
  for user in "${PCSCF_SIP_USERS[@]}"; do
    password=$(openssl rand -hex 12)
    printf '%s %s\n' "$user" "$password" >>"$STACK_DIR/sip-passwords"
    printf '%s' "$password" |
      "$root/pcscf-plugin/kamailio/add-subscriber.sh" "$subscribers" "$user" "$PCSCF_DOMAIN"
  done

  SIP_PORT=$(free_port)
  # SIP over WebSocket too, for the WIC (40-wic.sh, docs/wic.md).
  PCSCF_WS_PORT=$(free_port)
  mkdir -p "$STACK_DIR/kamailio"
  start_bg kamailio kamailio -DD -E -f "$root/pcscf-plugin/kamailio/kamailio.cfg" \
    -Y "$STACK_DIR/kamailio" -P "$STACK_DIR/kamailio/kamailio.pid" -w "$STACK_DIR/kamailio" \
    -m 64 -M 8 -x tlsf -X tlsf -A WORKERS=4 \
    -A "SIP_LISTEN_UDP=udp:127.0.0.1:$SIP_PORT" -A "SIP_LISTEN_TCP=tcp:127.0.0.1:$SIP_PORT" \
    -A WITH_WEBSOCKET -A "WS_LISTEN=tcp:127.0.0.1:$PCSCF_WS_PORT" \
    -A "AGENT_HTTPCON=\"turnagent=>http://127.0.0.1:$AGENT_PORT;timeout=1\"" \
    -A "AUTH_DB_URL=\"text://$subscribers\""
  wait_for_log kamailio "SO_RCVBUF is finally"
  sleep 0.5  # the SIP workers start right after the sockets
  echo "pcscf-turn-agent on 127.0.0.1:$AGENT_PORT, Kamailio (eP-CSCF) on udp/tcp 127.0.0.1:$SIP_PORT" \
    "and ws://127.0.0.1:$PCSCF_WS_PORT; SIP users ${PCSCF_SIP_USERS[*]}@$PCSCF_DOMAIN" \
    "(passwords in $STACK_DIR/sip-passwords)"
}

# pcscf_sipp SCENARIO USER: one sipp run; prints what the scenario logged.
pcscf_sipp() {
  local log="$STACK_DIR/sipp-$1-$RANDOM.log"
  sipp -sf "$PCSCF_SIPP/$1" -m 1 -i 127.0.0.1 -p "$(free_port)" -nostdin \
    -key user "$2" -key domain "$PCSCF_DOMAIN" -key expires 600 \
    -au "$2" -ap "$(pcscf_sip_password "$2")" \
    -trace_logs -log_file "$log" -timeout 10s -timeout_error "127.0.0.1:$SIP_PORT" \
    >"$log.out" 2>&1 || { echo "sipp failed:"; tail -5 "$log.out"; return 1; }
  cat "$log"
}

stack_demo_pcscf() {
  say "eP-CSCF: sipp REGISTER through Kamailio; the 200 OK carries the TURN credential"
  local out header user pass
  out=$(pcscf_sipp register.xml alice) || return 1
  header=${out#*TURN-Credential=}
  # The password is shown masked: it belongs to the WIC alone.
  echo "200 OK header:  TURN-Credential: $(sed 's/password="[^"]*"/password="(hidden)"/' <<<"$header")"
  user=$(sed -n 's/.*username="\([^"]*\)".*/\1/p' <<<"$header")
  pass=$(sed -n 's/.*password="\([^"]*\)".*/\1/p' <<<"$header")
  [[ -n "$user" ]] || { echo "no TURN-Credential in the 200 OK"; return 1; }
  if [[ $PCSCF_AGENT_MODE == shared-secret ]]; then
    echo "minted by the agent with the realm's active secret (\"<expiry>:<opaque id>\"), no broker call:"
    curl -s "http://127.0.0.1:$AGENT_PORT/metrics" |
      grep -E '^pcscf_turn_(shared_secret_mints_total|shared_secrets)[ {]' | sed 's/^/  /'
  else
    echo "the broker holds it (published before the 200 OK left):"
    run "$CTL" get --username "$user"
  fi

  local turn=0
  if declare -F turn_allocate >/dev/null && declare -F turn_key_present >/dev/null; then
    turn=1
    [[ $PCSCF_AGENT_MODE == shared-secret ]] ||
      for _ in $(seq 50); do turn_key_present "$user" && break; sleep 0.1; done
    if turn_allocate "$user" "$pass"; then
      echo "turnutils_uclient with the credential from the 200 OK: allocation ACCEPTED by coturn"
    else
      echo "turnutils_uclient: allocation REFUSED (unexpected)" >&2
      return 1
    fi
  else
    echo "(no TURN side in this stack: scripts/stack.d/20-turn.sh adds coturn)"
  fi

  say "eP-CSCF: sipp de-REGISTER; the credential is revoked"
  pcscf_sipp deregister.xml alice || return 1
  if [[ $PCSCF_AGENT_MODE == shared-secret ]]; then
    # Approach 1: the broker records the revocation and the sync ends the
    # username's live allocations; coturn itself would still accept a new
    # Allocate with it until it expires (docs/approach1.md, Revocation).
    echo "revoked at the broker by username; live allocations are ended, new ones not refused"
    return 0
  fi
  run "$CTL" get --username "$user" || echo "(get fails: revoked, exit code $?)"
  if ((turn)); then
    for _ in $(seq 50); do turn_key_present "$user" || break; sleep 0.1; done
    if turn_allocate "$user" "$pass"; then
      echo "turnutils_uclient: allocation still ACCEPTED (unexpected)" >&2
      return 1
    else
      echo "turnutils_uclient with the same credential: allocation REFUSED by coturn"
    fi
  fi
}
