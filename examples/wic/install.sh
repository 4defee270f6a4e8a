#!/usr/bin/env bash
# Installs the WIC's npm packages (jssip for the page, playwright-core for
# drive.js) with `npm ci` from the committed package-lock.json.
# Usage: examples/wic/install.sh [DIR]
# DIR gets package.json, package-lock.json and node_modules (default: this
# folder). Nothing is done when DIR already holds this exact lockfile's
# install; concurrent runs wait for each other. Prints DIR/node_modules.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
command -v npm >/dev/null || { echo "wic install: npm is missing (scripts/setup.sh --with-browser)" >&2; exit 1; }

exec 9>"$dir/.npm-ci.lock"
flock 9
want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
stamp="$dir/node_modules/.turnbroker-lockfile-sha256"
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "$dir/node_modules"
  exit 0
fi
if [[ $dir != "$here" ]]; then
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
fi
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
echo "$want" >"$stamp"
echo "$dir/node_modules"
