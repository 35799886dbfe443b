#!/usr/bin/env bash
# Installs what the pub/sub tests need: Debian's redis-server (the tests start their own
# instances on free loopback ports). Idempotent; quick when it is already there.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else
    echo "install-pubsub: redis-server missing and not root; install the 'redis-server' package" >&2
    exit 1
  fi
fi
echo "install-pubsub: $(redis-server --version | cut -d' ' -f1-3)"
