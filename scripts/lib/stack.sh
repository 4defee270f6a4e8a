# Helpers for scripts/run-stack.sh and its parts (scripts/stack.d).
# Everything runs on loopback, in $STACK_DIR, and is stopped on exit.

root=${root:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD_DIR:-$root/build}
STACK_DIR=${STACK_DIR:-$root/.stack}
CTL="$BUILD/ctl/turnbrokerctl"
pids=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
# run_secret SECRET CMD...: like run, with SECRET on CMD's stdin (for
# turnbrokerctl's `--password -`), so it is neither on screen nor in ps.
run_secret() {
  local secret=$1; shift
  printf '$ echo (password hidden) | %s\n' "$*"
  printf '%s\n' "$secret" | "$@"
}

# A free TCP+UDP port on 127.0.0.1 (and the next one, for TURN servers).
free_port() {
  local p used
  used=$(ss -Htuan | awk '{print $5}' | sed 's/.*://' | sort -u)
  while :; do
    p=$((20000 + RANDOM % 12000))
    grep -qx -e "$p" -e "$((p + 1))" <<<"$used" || { echo "$p"; return; }
  done
}

# start_bg NAME CMD...: runs CMD in the background, output in $STACK_DIR/NAME.log.
start_bg() {
  local name=$1; shift
  "$@" >"$STACK_DIR/$name.log" 2>&1 &
  pids+=($!)
  echo "started $name (pid $!, log $STACK_DIR/$name.log)"
}

# wait_for_log NAME TEXT [SECONDS]
wait_for_log() {
  local name=$1 text=$2 secs=${3:-15}
  for _ in $(seq $((secs * 10))); do
    grep -q -- "$text" "$STACK_DIR/$name.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "stack: $name did not start; its log:" >&2
  tail -20 "$STACK_DIR/$name.log" >&2
  return 1
}

stack_stop() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

stack_main() {
  rm -rf "$STACK_DIR"
  mkdir -p "$STACK_DIR"
  trap stack_stop EXIT
  trap 'exit 130' INT TERM
  local parts=()
  for f in "$root"/scripts/stack.d/*.sh; do
    # shellcheck disable=SC1090
    source "$f"
    local n; n=$(basename "$f" .sh); parts+=("${n#*-}")
  done
  for p in "${parts[@]}"; do "stack_start_$p"; done
  for p in "${parts[@]}"; do
    if declare -F "stack_demo_$p" >/dev/null; then "stack_demo_$p"; fi
  done
  say "stack is running (state in $STACK_DIR)"
  if [[ "${STACK_EXIT_AFTER_DEMO:-0}" == 1 ]]; then return 0; fi
  echo "Ctrl-C stops it."
  wait
}
