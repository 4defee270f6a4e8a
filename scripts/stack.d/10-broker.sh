# The broker, with its embedded durable store in $STACK_DIR/broker-data.
stack_start_broker() {
  BROKER_PORT=$(free_port)
  BROKER="127.0.0.1:$BROKER_PORT"
  export TURNBROKER_BROKER=$BROKER
  start_bg broker "$BUILD/broker/turn-broker" --listen "$BROKER" \
    --data-dir "$STACK_DIR/broker-data" --metrics-listen 127.0.0.1:0
  wait_for_log broker "broker serving"
}

stack_demo_broker() {
  say "turnbrokerctl: publish, watch, revoke (broker $BROKER)"
  "$CTL" watch >"$STACK_DIR/watch.log" 2>&1 &
  local watcher=$!
  sleep 0.3
  # The password goes on stdin (--password -): not on screen, not in ps.
  run_secret demo-pass "$CTL" publish --realm demo.example.org --username demo-user \
    --password - --ttl 600 --subscriber sip:demo@demo.example.org
  run "$CTL" get --username demo-user
  run "$CTL" revoke --username demo-user --reason demo
  run "$CTL" get --username demo-user || echo "(get fails after revoke, exit code $?)"
  run "$CTL" status
  sleep 0.3
  kill "$watcher" 2>/dev/null || true
  echo "what a watcher (a TURN side) saw:"
  sed 's/^/  /' "$STACK_DIR/watch.log"
}
