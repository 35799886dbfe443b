#!/usr/bin/env bash
# Runs every test of the workspace: installs the interop peers, then unit, integration,
# property and doc tests, and each criterion bench once in test mode (so benches are
# compiled and exercised, never timed), then the browser client's unit tests (Node).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh
export TETHER_PEERS_DIR="${TETHER_PEERS_DIR:-$PWD/target/peers}"
cargo test --workspace --all-targets
cargo test --workspace --doc
# tether.js, the browser client: its unit tests under Node's test runner, on a fake clock.
node --test web/test/tether.test.mjs web/test/session.test.mjs
