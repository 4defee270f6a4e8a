#!/usr/bin/env bash
# The container image (Containerfile, scripts/build-image.sh), checked from
# its OCI archive: its config (non-root user 65532, OCI labels, no
# HEALTHCHECK), every binary's --version inside it (buildah run --isolation
# chroot: podman run fails in restricted sandboxes on setrlimit), and a
# turn-broker inside it that a turnbrokerctl outside publishes to (the
# container shares the host's network). Prints the uncompressed size.
# A CI step of its own (.ci/run), not part of the ctest suite: building the
# image takes minutes.
# Usage: tests/image/check_image.sh [--no-build] [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build_image=1
if [[ ${1:-} == --no-build ]]; then build_image=0; shift; fi
build=${1:-${BUILD_DIR:-$root/build}}
archive=$build/image/turnbroker.oci.tar
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
ctr="" broker_pid=""
cleanup() {
  if [[ -n $broker_pid ]]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  if [[ -n $ctr ]]; then buildah rm "$ctr" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# buildah 1.28 caches a COPY layer under its destination unexpanded: a COPY
# into an ARG's path would reuse a layer built for another path
# (docs/toolchain.md). Copy to fixed paths only.
if grep -nE '^(COPY|ADD)\b.*\$' "$root/Containerfile"; then
  fail "a COPY or ADD in the Containerfile names a variable (buildah caches it unexpanded)"
fi

if ((build_image)); then OUT=$archive "$root/scripts/build-image.sh"; fi
[[ -f $archive ]] || fail "no $archive (scripts/build-image.sh)"

# The image's configuration.
config=$(skopeo inspect --config "oci-archive:$archive")
inspect=$(skopeo inspect "oci-archive:$archive")
jq() { node -e 'const o = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const v = eval("o" + process.argv[1]); console.log(v === undefined ? "" : JSON.stringify(v));' "$1"; }
[[ $(jq .config.User <<<"$config") == '"65532:65532"' ]] || fail "user is not 65532:65532"
[[ -z $(jq .config.Healthcheck <<<"$config") ]] || fail "the image has a HEALTHCHECK"
for label in title description version revision; do
  [[ -n $(jq ".config.Labels['org.opencontainers.image.$label']" <<<"$config") ]] ||
    fail "no label org.opencontainers.image.$label"
done
[[ $(jq .Architecture <<<"$inspect") == '"amd64"' ]] || fail "not amd64: $(jq .Architecture <<<"$inspect")"

# Its size, uncompressed (the layers as the runtime unpacks them).
mkdir "$work/oci" && tar -xf "$archive" -C "$work/oci"
size=0
for digest in $(jq ".layers.map(l => l.digest.replace('sha256:', '')).join(' ')" \
                  <"$work/oci/blobs/sha256/$(jq ".manifests[0].digest.replace('sha256:', '')" \
                     <"$work/oci/index.json" | tr -d '"')" | tr -d '"'); do
  layer=$work/oci/blobs/sha256/$digest
  if gzip -t "$layer" 2>/dev/null; then n=$(gzip -dc "$layer" | wc -c); else n=$(wc -c <"$layer"); fi
  size=$((size + n))
done
echo "image: $((size / 1000000)) MB uncompressed ($size bytes), $(wc -c <"$archive") bytes archived"

# Every binary runs inside it.
ctr=$(buildah from --pull-never "oci-archive:$archive" 2>/dev/null || buildah from "oci-archive:$archive")
for bin in turn-broker turnbrokerctl turn-credential-sync pcscf-turn-agent turnbroker-probe; do
  out=$(buildah run --isolation chroot "$ctr" -- "$bin" --version 2>&1) || fail "$bin --version: $out"
  grep -q "[0-9]\+\.[0-9]\+\.[0-9]\+" <<<"$out" || fail "$bin --version printed: $out"
  echo "  $bin --version: $out"
done
# As uid 65532, not root.
out=$(buildah run --isolation chroot "$ctr" -- turnbroker-probe http://127.0.0.1:1/ 2>&1) &&
  fail "turnbroker-probe succeeded against a closed port"
grep -q "turnbroker-probe: http://127.0.0.1:1/" <<<"$out" || fail "turnbroker-probe: $out"

# A broker inside, turnbrokerctl outside.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port) metrics=$(free_port)
buildah run --isolation chroot "$ctr" -- turn-broker --listen "127.0.0.1:$port" --ephemeral \
  --metrics-listen "127.0.0.1:$metrics" >"$work/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do
  grep -q "turn-broker listening on" "$work/broker.log" && break
  kill -0 "$broker_pid" 2>/dev/null || { cat "$work/broker.log"; fail "turn-broker in the image exited"; }
  sleep 0.1
done
grep -q "turn-broker listening on" "$work/broker.log" || { cat "$work/broker.log"; fail "no broker"; }
ctl=$build/ctl/turnbrokerctl
echo "image-secret" | "$ctl" --broker "127.0.0.1:$port" publish --realm ims.example.org \
  --username image-test --password - --ttl 60 --subscriber sip:alice@ims.example.org \
  --issuer image-check >"$work/publish.out" 2>&1 || { cat "$work/publish.out"; fail "publish"; }
"$ctl" --broker "127.0.0.1:$port" get --realm ims.example.org --username image-test \
  >"$work/get.out" 2>&1 || { cat "$work/get.out"; fail "get"; }
grep -q "image-test" "$work/get.out" || { cat "$work/get.out"; fail "the credential is not in the broker"; }
echo "  turn-broker in the image: turnbrokerctl published and read back image-test"
out=$(buildah run --isolation chroot "$ctr" -- turnbroker-probe "http://127.0.0.1:$metrics/healthz" 2>&1) ||
  fail "turnbroker-probe of the broker's /healthz: $out"
echo "  turnbroker-probe: the broker's /healthz answers"
[[ $size -le 80000000 ]] || echo "WARNING: the image is over the 80 MB target"
echo "image OK"
