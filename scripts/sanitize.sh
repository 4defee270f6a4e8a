#!/usr/bin/env bash
# Builds turnbroker with AddressSanitizer and UndefinedBehaviorSanitizer
# (-DTURNBROKER_SANITIZE=address, GCC) into ${BUILD_DIR:-build-asan} and runs
# the tests there (docs/security.md#sanitizers). Arguments go to ctest, e.g.
#   scripts/sanitize.sh -L unit
#   scripts/sanitize.sh -R '^(AgentHostile|AgentServer|PcscfKamailio)'
# Without arguments it runs every test except the fuzz label (fuzz.sh has
# its own sanitized build). A sanitizer report fails the test that made it:
# UBSan aborts (-fno-sanitize-recover), ASan exits non-zero, leaks included.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-asan}
"$root/scripts/setup.sh"
BUILD_DIR=$build "$root/scripts/build.sh" -DTURNBROKER_SANITIZE=address \
  -DTURNBROKER_BUILD_BENCH=OFF
cd "$build"
# Child processes the tests start (broker, agent, sync) are sanitized too;
# their reports go to the test's log and fail it through the exit status.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
args=("$@")
((${#args[@]})) || args=(-LE fuzz)
ctest --output-on-failure --no-tests=error --timeout 600 -j "$(nproc)" "${args[@]}"
