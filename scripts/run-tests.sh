#!/usr/bin/env bash
# Quick start, command 2: installs what is missing, builds, runs every test.
# Usage: scripts/run-tests.sh [ctest arguments, e.g. -L e2e]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh" --with-browser
"$root/scripts/build.sh"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure --no-tests=error --timeout 300 -j "$(nproc)" "$@"
