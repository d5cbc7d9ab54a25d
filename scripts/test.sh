#!/usr/bin/env bash
# Runs every test of chardev-multiplex on this machine, installing what it needs:
# Rust (engine, property, C-ABI harness over real fds, header freshness), C (meson,
# valgrind), QEMU's own tests/unit/test-char and our qtest on the patched tree, and end-to-end
# tests that boot the test guest in the patched QEMU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

step() { printf '\n=== %s\n' "$*"; }

step "installing dependencies"
./scripts/install-deps.sh

step "Rust: format, lints, tests"
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked

step "C: meson test (C ABI test, and under valgrind)"
rm -rf build
meson setup build >/dev/null
meson test -C build --print-errorlogs

step "C: the same test under AddressSanitizer and UndefinedBehaviorSanitizer"
rm -rf build-asan
meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
meson test -C build-asan --no-suite valgrind --print-errorlogs

step "Rust: the C-ABI harness under valgrind memcheck"
./scripts/valgrind-rust.sh

if [ -d qemu-patches ] && [ -f qemu-patches/series ]; then
    step "QEMU: build the patched QEMU (cached outside the clone)"
    qemu=$(./scripts/qemu/build.sh | tail -n 1)
    qbuild=$(dirname "$qemu")
    qsrc=$(dirname "$qbuild")/qemu-src-${qbuild##*/qemu-build-}
    step "QEMU: scripts/checkpatch.pl on every patch of the series"
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        perl "$qsrc/scripts/checkpatch.pl" --no-tree -q "qemu-patches/$p" \
            || { echo "checkpatch: $p has style problems"; exit 1; }
        echo "checkpatch: $p: clean"
    done <qemu-patches/series
    step "QEMU: tests/unit/test-char"
    "$qbuild/tests/unit/test-char" --tap -k
    step "QEMU: tests/qtest/multiplex-test (write_all frontends, monitors, quit)"
    QTEST_QEMU_BINARY="$qemu" "$qbuild/tests/qtest/multiplex-test" --tap -k
    step "end-to-end: the test guest in the patched QEMU"
    CMX_QEMU="$qemu" /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/e2e
fi

step "fuzz: each target for a short, bounded time (README: how to run longer)"
./scripts/fuzz.sh "${CMX_FUZZ_SECONDS:-20}"
