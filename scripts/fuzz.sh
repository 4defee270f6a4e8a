#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with Clang 14, ASan and UBSan into
# ${BUILD_DIR:-build-fuzz}, and runs each for N seconds (or N runs), starting
# from its seed corpus in fuzz/corpus/<target>/ (new inputs go to the build
# folder, never into the repository). Prints libFuzzer's summary per target;
# exits non-zero if any target crashed, leaked, hit UB or a timeout (the
# input that did it is saved as BUILD_DIR/artifacts/<target>-crash-...).
# docs/security.md#fuzzing.
#
# Usage: scripts/fuzz.sh [--seconds N | --runs N] [--build-dir DIR] [TARGET...]
#   scripts/fuzz.sh --seconds 60                 every target for a minute
#   scripts/fuzz.sh --runs 10000000 record_fuzzer
# FUZZ_ARGS adds libFuzzer flags after the script's own (a later one wins),
# e.g. FUZZ_ARGS='-jobs=2 -workers=2'.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-fuzz}
seconds=10 runs="" targets=()
all=(http_request_fuzzer agent_api_fuzzer credential_fuzzer sip_header_fuzzer record_fuzzer
  watch_frame_fuzzer tls_claims_fuzzer)
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=("${all[@]}")

# Clang 14 and its fuzzer runtime (scripts/setup.sh installs them too).
if ! command -v clang++-14 >/dev/null ||
  ! compgen -G "/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null; then
  echo "fuzz.sh: installing clang-14 and libclang-rt-14-dev"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends clang-14 libclang-rt-14-dev >/dev/null
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [[ ! -f "$build/build.ninja" ]]; then
  CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTURNBROKER_FUZZ=ON -DTURNBROKER_SANITIZE=address \
    -DTURNBROKER_BUILD_TESTS=OFF -DTURNBROKER_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

mkdir -p "$build/artifacts"
failed=()
for t in "${targets[@]}"; do
  seeds="$root/fuzz/corpus/$t"
  work="$build/corpus/$t"
  mkdir -p "$work" "$seeds"
  limit=(-max_total_time="$seconds")
  [[ -n "$runs" ]] && limit=(-runs="$runs")
  log="$build/$t.log"
  what="$seconds s"
  [[ -n "$runs" ]] && what="$runs runs"
  echo "== $t ($what), seeds: fuzz/corpus/$t ($(ls "$seeds" | wc -l) files)"
  # UBSan findings are errors (the build has -fno-sanitize-recover).
  if ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    "$build/fuzz/$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t-" ${FUZZ_ARGS:-} "$work" "$seeds" >"$log" 2>&1; then
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added)" \
      "$log" || tail -3 "$log"
  else
    echo "!! $t FAILED (log: $log)"
    grep -E -A25 "ERROR: |runtime error|SUMMARY|Test unit written" "$log" | head -60
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz.sh: crashes in ${failed[*]}; inputs in $build/artifacts/" >&2
  exit 1
fi
echo "fuzz.sh: no crash in ${targets[*]}"
