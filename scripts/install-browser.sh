#!/usr/bin/env bash
# Installs what the headless-browser tests need, idempotently: Debian's chromium and CJK and
# emoji fonts (when they are missing and we are root), and playwright-core from npm (no
# browser download: it drives the system chromium) into target/peers/browser.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peers="${TETHER_PEERS_DIR:-$root/target/peers}"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "install-browser: chromium missing and not root; install Debian's 'chromium' package" >&2
    exit 1
  fi
fi

# Fonts for the CJK and emoji text the tests echo, so the screenshots are readable.
if ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || ! fc-list 2>/dev/null | grep -qi "Noto Color Emoji"; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      fonts-noto-cjk fonts-noto-color-emoji >/dev/null
  else
    echo "install-browser: CJK/emoji fonts missing (fonts-noto-cjk, fonts-noto-color-emoji);" \
      "screenshots will show boxes" >&2
  fi
fi

if [ ! -d "$peers/browser/node_modules/playwright-core" ]; then
  mkdir -p "$peers/browser"
  npm install --silent --no-audit --no-fund --prefix "$peers/browser" playwright-core@latest >/dev/null
fi

echo "install-browser: $(chromium --version 2>/dev/null | head -1)," \
  "playwright-core $(node -p "require('$peers/browser/node_modules/playwright-core/package.json').version")"
