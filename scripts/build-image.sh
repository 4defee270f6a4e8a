#!/usr/bin/env bash
# Builds the Containerfile with buildah (no daemon; --isolation chroot) into
# build/image/turnbroker.oci.tar (an OCI archive: skopeo copy it to your
# registry, docs/operations.md).
# When BASE (default debian:bookworm-slim) cannot be pulled (no registry
# reachable), the base is made from Debian's apt mirror with mmdebstrap and
# imported as localhost/turnbroker-base:bookworm, so the build works offline
# from the apt mirror alone.
# Environment: BASE, IMAGE_TAG (default turnbroker:VERSION), OUT (the
# archive), CCACHE_DIR (mounted as the build's compiler cache when set).
# Usage: scripts/build-image.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^project(turnbroker VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
base=${BASE:-debian:bookworm-slim}
tag=${IMAGE_TAG:-turnbroker:$version}
out=${OUT:-$root/build/image/turnbroker.oci.tar}
cache=$root/.cache/image
mkdir -p "$(dirname "$out")" "$cache"
for tool in buildah skopeo; do
  command -v $tool >/dev/null || { echo "build-image: $tool is missing (scripts/setup.sh)" >&2; exit 1; }
done
# Only one build at a time in this checkout.
exec 9>"$cache/.lock"
flock 9

if ! timeout 30 skopeo inspect --retry-times 0 "docker://$base" >/dev/null 2>&1 &&
   ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  local_base=localhost/turnbroker-base:bookworm
  if ! buildah inspect --type image "$local_base" >/dev/null 2>&1; then
    echo "build-image: $base is not reachable; making $local_base with mmdebstrap"
    command -v mmdebstrap >/dev/null || { echo "build-image: mmdebstrap is missing" >&2; exit 1; }
    # --variant=apt: the build stage installs its compilers with apt-get.
    mmdebstrap --quiet --variant=apt --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' bookworm "$cache/base.tar"
    ctr=$(buildah from scratch)
    buildah add --quiet "$ctr" "$cache/base.tar" / >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
    buildah commit --quiet --rm "$ctr" "$local_base" >/dev/null
    rm -f "$cache/base.tar"
  fi
  base=$local_base
fi

volumes=()
if [[ -n ${CCACHE_DIR:-} && -d ${CCACHE_DIR} ]]; then
  volumes=(--volume "$CCACHE_DIR:/ccache:rw")
fi
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
buildah bud --isolation chroot --layers --pull=never \
  --build-arg BASE="$base" --build-arg SRC_DIR="$root" \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  "${volumes[@]}" --file "$root/Containerfile" --tag "$tag" "$root"
rm -f "$out"
buildah push --quiet "$tag" "oci-archive:$out:$tag"
echo "build-image: $tag in $out (tests/image/check_image.sh --no-build checks it and prints its size)"
