#!/usr/bin/env bash
# Installs what turnbroker needs from Debian 12 (bookworm) packages, if missing.
# Usage: scripts/setup.sh [--with-browser]
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git clang-format
  # benchmarks: scripts/scale-curves.sh draws with gnuplot
  gnuplot-nox
  # libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libssl-dev libhiredis-dev libsqlite3-dev libcpp-httplib-dev nlohmann-json3-dev
  libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  # the fuzz targets (scripts/fuzz.sh, ctest -L fuzz): Clang 14 and libFuzzer
  clang-14 libclang-rt-14-dev
  # the real peers the stack and the tests run
  redis-server redis-tools coturn kamailio kamailio-utils-modules kamailio-extra-modules
  kamailio-websocket-modules sip-tester sqlite3 curl procps iproute2 openssl
  # the chart test unpacks Helm (tests/helm/install-tools.sh); promtool checks
  # the /metrics the tests scrape
  unzip prometheus
  # the container image (scripts/build-image.sh, tests/image)
  buildah skopeo mmdebstrap uidmap
)
# The browser end-to-end test (tests/e2e/wic_*) and the stack's WIC page:
# Debian's Chromium, and Node.js with npm for playwright-core and JsSIP.
# A Node.js from elsewhere (e.g. NodeSource, which bundles npm) is kept:
# Debian's npm package cannot be installed beside it.
if [[ "${1:-}" == "--with-browser" ]]; then
  packages+=(chromium)
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  # Wait for another apt run (e.g. a parallel setup) instead of failing.
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packaged services must not run on their default ports: the stack and
# the tests start their own instances.
for svc in redis-server coturn kamailio; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    echo "setup: note: the system $svc service is running; turnbroker uses its own instances"
  fi
done
