#!/usr/bin/env bash
# Installs the real, independently written peers that the interop tests talk to, from the
# package registries, into target/peers (idempotent; safe to run again):
#   - Python `websockets` (latest) in a virtualenv: target/peers/py/bin/python
#   - Node `ws` (latest): target/peers/node/node_modules/ws
#   - OpenSSL's command-line tool (Debian package) when it is missing
#   - chromium and playwright-core for the browser tests (scripts/install-browser.sh)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peers="${TETHER_PEERS_DIR:-$root/target/peers}"
mkdir -p "$peers"

if [ ! -x "$peers/py/bin/python" ] || ! "$peers/py/bin/python" -c 'import websockets' 2>/dev/null; then
  python3 -m venv "$peers/py"
  "$peers/py/bin/pip" install --quiet --disable-pip-version-check --upgrade websockets
fi

if [ ! -d "$peers/node/node_modules/ws" ]; then
  mkdir -p "$peers/node"
  npm install --silent --no-audit --no-fund --prefix "$peers/node" ws@latest >/dev/null
fi

if ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq openssl >/dev/null
  else
    echo "install-peers: openssl CLI missing and not root; install the 'openssl' package" >&2
    exit 1
  fi
fi

"$root/scripts/install-browser.sh"
"$root/scripts/install-pubsub.sh"
"$root/scripts/install-proxies.sh"

echo "install-peers: websockets $("$peers/py/bin/python" -c 'import websockets; print(websockets.__version__)')," \
  "ws $(node -p "require('$peers/node/node_modules/ws/package.json').version")," \
  "$(openssl version | cut -d' ' -f1-2)"
