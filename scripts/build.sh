#!/usr/bin/env bash
# Configures and builds turnbroker into ${BUILD_DIR:-build}.
# Extra arguments go to cmake (e.g. -DTURNBROKER_SANITIZE=address).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
if [[ ! -f "$build/build.ninja" || $# -gt 0 ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
fi
cmake --build "$build" -j "$(nproc)"
