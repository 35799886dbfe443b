#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each briefly from its committed seeds
# (fuzz/corpus/<target>/seed-*), so a change that makes a parser panic or break an invariant
# cannot land (issue 9). Any crash fails the script; the input that crashed is left in
# fuzz/artifacts/<target>/. Longer runs: fuzz/README.md.
#
# Knobs: FUZZ_SECONDS (per target, default 30), FUZZ_RUNS (per target, default 500000): a
# target stops at whichever comes first. FUZZ_SANITIZER (default none: our crates forbid
# unsafe code, so AddressSanitizer mostly slows the build and the run; set address to use it).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
FUZZ_RUNS="${FUZZ_RUNS:-500000}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}"

if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    cargo install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi

# The fuzz crates are outside the workspace, so `cargo fmt --all` at the root skips them.
cargo fmt --manifest-path fuzz/Cargo.toml --check
cargo fmt --manifest-path fuzz/seedgen/Cargo.toml --check

cd fuzz
cargo +nightly fuzz build --sanitizer "$FUZZ_SANITIZER"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo +nightly fuzz list); do
    echo "fuzz: $target (${FUZZ_SECONDS}s or $FUZZ_RUNS runs)"
    # New inputs go to the scratch directory, listed first; the seeds stay as committed.
    mkdir "$scratch/$target"
    log="$scratch/$target.log"
    if ! cargo +nightly fuzz run --sanitizer "$FUZZ_SANITIZER" "$target" \
        "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$FUZZ_SECONDS" -runs="$FUZZ_RUNS" -print_final_stats=1 >"$log" 2>&1; then
        # Everything but libFuzzer's progress lines: the panic, the backtrace, the input.
        grep -Ev '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|INITED)' "$log" >&2 || true
        echo "fuzz: $target failed; reproduce with" \
            "cd fuzz && cargo +nightly fuzz run $target artifacts/$target/<crash file>" >&2
        exit 1
    fi
    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units' "$log" || true
done
