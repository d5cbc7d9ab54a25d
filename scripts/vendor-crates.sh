#!/usr/bin/env bash
# Vendors the crates that Cargo.lock names into the build cache (never into the clone) and
# prints the directory. scripts/qemu/build.sh exports it as CMX_CARGO_VENDOR_DIR, so that the
# QEMU build, configured with --disable-download, runs cargo --offline on these sources.
# Keyed by Cargo.lock: a new lock file gets a new directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CMX_CACHE:-$HOME/.cache/chardev-multiplex}
key=$(sha256sum "$root/Cargo.lock" | cut -c1-16)
dir=$cache/vendor-$key
if [ ! -f "$dir/.cmx-complete" ]; then
    rm -rf "$dir"
    mkdir -p "$cache"
    cargo vendor --quiet --locked --manifest-path "$root/Cargo.toml" "$dir" >/dev/null \
        || { echo "vendor-crates.sh: cargo vendor failed" >&2; exit 1; }
    touch "$dir/.cmx-complete"
fi
echo "$dir"
