#!/usr/bin/env bash
# Usage: .ci/node.sh VERSION — installs that Node.js release from the npm registry's node-linux-<arch>
# package (the binary and its headers) into a cache directory, once, and prints its bin directory.
# For machines whose own Node is older than the lines we support: PATH="$(.ci/node.sh 24.22.3):$PATH".
set -euo pipefail
version=$1
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
dir="${XDG_CACHE_HOME:-$HOME/.cache}/iothub-tut/node-$version"
bin="$dir/node_modules/node-linux-$arch/bin"
if ! "$bin/node" --version >/dev/null 2>&1; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "node-linux-$arch@$version" >&2
fi
echo "$bin"
