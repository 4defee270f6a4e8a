#!/usr/bin/env bash
# Quick start, command 1: installs what is missing, builds, and runs the local
# stack with embedded defaults, then shows the flow. Stays up until Ctrl-C
# (STACK_EXIT_AFTER_DEMO=1: stop after the show).
#
# The parts live in scripts/stack.d/NN-name.sh; each defines stack_start_NAME
# (start its processes with `start_bg`) and optionally stack_demo_NAME.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh" "${STACK_SETUP_ARGS:-}"
"$root/scripts/build.sh"
# shellcheck source=lib/stack.sh
source "$root/scripts/lib/stack.sh"
stack_main "$@"
