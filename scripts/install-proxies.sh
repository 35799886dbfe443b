#!/usr/bin/env bash
# Installs the real proxies the client proxy tests start on loopback (each test runs its own
# instance with its own config in a temp dir; no system service is used):
#   - tinyproxy: HTTP CONNECT, with Basic auth
#   - dante-server (danted): SOCKS5 without authentication
#   - microsocks: SOCKS5 with RFC 1929 username/password (dante checks those against the
#     system's accounts only, which a test must not create)
# Idempotent; quick when they are already there. The tests find them on PATH, in /usr/sbin,
# or through TETHER_TINYPROXY, TETHER_DANTED, TETHER_MICROSOCKS.
set -euo pipefail
missing=()
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || missing+=(tinyproxy)
command -v danted >/dev/null 2>&1 || [ -x /usr/sbin/danted ] || missing+=(dante-server)
command -v microsocks >/dev/null 2>&1 || [ -x /usr/bin/microsocks ] || missing+=(microsocks)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    # Installing may start the packages' own services; the tests do not use them.
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "install-proxies: missing ${missing[*]} and not root; install those Debian packages" >&2
    exit 1
  fi
fi
echo "install-proxies: $(tinyproxy -v 2>&1 | head -1), $(/usr/sbin/danted -v 2>&1 | head -1 | cut -d' ' -f1-2), microsocks"
