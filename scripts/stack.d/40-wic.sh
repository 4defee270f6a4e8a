# The WIC: the browser page of examples/wic, served on loopback, registering
# over SIP/WebSocket with an eP-CSCF Kamailio (the reference configuration
# with WITH_WEBSOCKET) that uses 30-pcscf.sh's agent. Its demo runs the page
# once in headless Chromium and prints each step. docs/wic.md.
WIC_IMPU=${WIC_IMPU:-sip:wic@${PCSCF_DOMAIN:-ims.example.org}}

stack_start_wic() {
  # Node.js, npm and Chromium come from Debian (scripts/setup.sh
  # --with-browser); WIC_NO_INSTALL=1 leaves the machine as it is.
  if [[ "${WIC_NO_INSTALL:-0}" != 1 ]] && { ! command -v node >/dev/null ||
    ! command -v npm >/dev/null || [[ ! -x /usr/bin/chromium ]]; }; then
    "$root/scripts/setup.sh" --with-browser || echo "wic: could not install the browser tools"
  fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "wic: skipped, no node/npm (scripts/setup.sh --with-browser installs them)"
    return 0
  fi
  if [[ -z "${AGENT_PORT:-}" ]]; then
    echo "wic: skipped, no pcscf-turn-agent in this stack (scripts/stack.d/30-pcscf.sh)"
    return 0
  fi
  WIC_MODULES=$("$root/examples/wic/install.sh" "$BUILD/wic" 2>"$STACK_DIR/wic-npm.log") || {
    echo "wic: npm ci failed:"; tail -5 "$STACK_DIR/wic-npm.log"; return 1
  }

  # An eP-CSCF Kamailio that also listens for SIP over WebSocket, unless the
  # pcscf part already runs one (it exports PCSCF_WS_PORT).
  WIC_WS_PORT=${PCSCF_WS_PORT:-}
  if [[ -z "$WIC_WS_PORT" ]]; then
    WIC_WS_PORT=$(free_port)
    local sip_port; sip_port=$(free_port)
    mkdir -p "$STACK_DIR/kamailio-ws"
    start_bg kamailio-ws kamailio -DD -E -f "$root/pcscf-plugin/kamailio/kamailio.cfg" \
      -Y "$STACK_DIR/kamailio-ws" -P "$STACK_DIR/kamailio-ws/kamailio.pid" \
      -w "$STACK_DIR/kamailio-ws" -m 64 -M 8 -x tlsf -X tlsf -A WORKERS=2 \
      -A "SIP_LISTEN_UDP=udp:127.0.0.1:$sip_port" -A "SIP_LISTEN_TCP=tcp:127.0.0.1:$sip_port" \
      -A WITH_WEBSOCKET -A "WS_LISTEN=tcp:127.0.0.1:$WIC_WS_PORT" \
      -A "AGENT_HTTPCON=\"turnagent=>http://127.0.0.1:$AGENT_PORT;timeout=1\"" \
      -A "AUTH_DB_URL=\"text://$STACK_DIR/kamailio-subscribers\""
    wait_for_log kamailio-ws "SO_RCVBUF is finally"
    sleep 0.5  # the workers start right after the sockets
  fi

  local page_port; page_port=$(free_port)
  start_bg wic node "$root/examples/wic/server.js" --port "$page_port" --modules "$WIC_MODULES"
  wait_for_log wic "wic page:"
  # The page answers Kamailio's digest challenge as user "wic" (30-pcscf.sh
  # made its password); a loopback demo, so the password rides in the URL.
  local wic_password=""
  declare -F pcscf_sip_password >/dev/null && wic_password=$(pcscf_sip_password wic)
  # Approach 1 (TURN_AUTH_MODE=shared-secret): coturn cannot refuse one
  # still-valid credential after de-REGISTER (docs/approach1.md, Revocation),
  # so the page does not check that.
  local check=revoked
  [[ ${TURN_AUTH_MODE:-per-credential} == shared-secret ]] && check=none
  WIC_URL="http://127.0.0.1:$page_port/?ws=ws://127.0.0.1:$WIC_WS_PORT&impu=$WIC_IMPU&check=$check&password=$wic_password"
  WIC_URL_SHOWN="${WIC_URL%%&password=*}&password=(see $STACK_DIR/sip-passwords)"
  echo "WIC page: $WIC_URL_SHOWN"
  echo "  (Kamailio SIP over WebSocket on ws://127.0.0.1:$WIC_WS_PORT; open the page in a browser" \
    "on this machine, or forward both ports)"
}

stack_demo_wic() {
  [[ -n "${WIC_URL:-}" ]] || return 0
  say "WIC: the page in headless Chromium: REGISTER over WebSocket, TURN credential, relay candidate, de-REGISTER"
  if [[ ! -x /usr/bin/chromium ]]; then
    echo "(no Chromium: scripts/setup.sh --with-browser installs it; or open $WIC_URL_SHOWN in your browser)"
    return 0
  fi
  echo "$ node examples/wic/drive.js --url '$WIC_URL_SHOWN' --screenshot $STACK_DIR/wic.png"
  if node "$root/examples/wic/drive.js" --url "$WIC_URL" --modules "$WIC_MODULES" \
    --screenshot "$STACK_DIR/wic.png" >"$STACK_DIR/wic-drive.json"; then
    echo "the whole flow worked; screenshot: $STACK_DIR/wic.png"
  else
    echo "the flow stopped (result: $STACK_DIR/wic-drive.json); the page's URL above shows it in a browser"
    return 1
  fi
  echo "WIC page (runs the flow again at every load): $WIC_URL_SHOWN"
}
