#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60) with AddressSanitizer.
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
#
#   ./scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked --quiet cargo-fuzz --version 0.13.2
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    echo "fuzz: $target for ${secs}s"
    log=$(mktemp)
    if ! cargo fuzz run -O "$target" "corpus/$target" -- -max_total_time="$secs" \
            -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $target FAILED (crash input in fuzz/artifacts/$target/)"
        exit 1
    fi
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" | sed "s/^/fuzz: $target: /"
    rm -f "$log"
done
