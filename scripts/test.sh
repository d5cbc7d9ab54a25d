#!/usr/bin/env bash
# Runs every test of chardev-multiplex on this machine, installing what it needs:
# Rust (format, lints, unit, property and C-ABI harness tests, header freshness), C (meson
# calling rustc, valgrind, ASan/UBSan), QEMU 10.2.2 with the series built twice (QEMU's Rust
# off, with the tools; and on), with QEMU's test-char and the series' qtests and link checks
# on both, end-to-end tests (a boot-sector guest and a Linux guest) on the Rust-on build, and
# a short fuzzing run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
t0=$SECONDS
step() { printf '\n=== [%d min] %s\n' $(((SECONDS - t0) / 60)) "$*"; }

step "installing dependencies"
meson=$(./scripts/install-deps.sh | tail -n1)

step "Rust: format, lints, tests"
cargo fmt --check
cargo clippy --quiet --locked --all-targets -- -D warnings
out=$(mktemp)
if ! cargo test --quiet --locked >"$out" 2>&1; then
    cat "$out"; exit 1
fi
awk '/^test result:/ { ok += $4; bad += $6 } END { print "cargo test: " ok " passed, " bad " failed" }' "$out"
rm -f "$out"

step "C: the library built by meson and rustc, meson test (also under valgrind)"
"$meson" subprojects download libc-0.2-rs memchr-2-rs static_assertions-1-rs >/dev/null
rm -rf build
"$meson" setup build --wrap-mode=nodownload >/dev/null
"$meson" test -C build --print-errorlogs

step "C: the same test under AddressSanitizer and UndefinedBehaviorSanitizer"
rm -rf build-asan
"$meson" setup build-asan --wrap-mode=nodownload -Db_sanitize=address,undefined \
    -Db_lundef=false >/dev/null
"$meson" test -C build-asan --no-suite valgrind --print-errorlogs

step "Rust: the C-ABI harness under valgrind memcheck"
./scripts/valgrind-rust.sh

step "QEMU: the series pins this checkout's library"
tarball=$(./scripts/library-tarball.sh "${CMX_CACHE:-$HOME/.cache/chardev-multiplex}/library" | tail -n1)
pinned=$(sed -n '/^+++ b\/subprojects\/chardev-multiplex.wrap$/,/^diff /s/^+source_hash = //p' \
    qemu-patches/*-meson-add-the-chardev_multiplex-*.patch)
have=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$pinned" != "$have" ]; then
    echo "subprojects/chardev-multiplex.wrap in the series pins $pinned, this checkout's" \
         "library is $have: put the new hash into the series (docs/series.md)"
    exit 1
fi
echo "the wrap pins $(basename "$tarball"), sha256 $have"

# run_tap WHAT CMD...: a TAP test program; prints how many passed and what failed.
run_tap() {
    local what=$1 out rc=0
    shift
    out=$(mktemp)
    "$@" --tap -k >"$out" 2>&1 || rc=$?
    echo "$what: $(grep -c '^ok' "$out") ok, $(grep -c '^not ok' "$out") not ok"
    grep '^not ok' "$out" || true
    if [ "$rc" != 0 ] || grep -q '^not ok' "$out"; then
        tail -n 40 "$out"
        rm -f "$out"
        exit 1
    fi
    rm -f "$out"
}

qemu_tests() { # BUILD_DIR ON|OFF
    local qbuild=$1 rust=$2 q
    step "QEMU (Rust $rust): test-char and the series' qtests"
    run_tap "tests/unit/test-char" "$qbuild/tests/unit/test-char"
    for q in multiplex-test serial-chardev-test; do
        QTEST_QEMU_BINARY="$qbuild/qemu-system-x86_64" run_tap "tests/qtest/$q" \
            "$qbuild/tests/qtest/$q"
    done
    step "QEMU (Rust $rust): what each binary links"
    ./scripts/qemu/check-links.sh "$qbuild" "$rust"
}

step "QEMU: build with QEMU's Rust off, and the tools (cached outside the clone)"
qemu_off=$(./scripts/qemu/build.sh --rust=off | tail -n 1)
qsrc=$(readlink -f "$(dirname "$qemu_off")/../qemu-src-$(cat "$(dirname "$qemu_off")/.cmx-src")")
step "QEMU: scripts/checkpatch.pl on every patch of the series"
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    # Clean means no error and no warning (checkpatch exits 0 on warnings).
    report=$(perl "$qsrc/scripts/checkpatch.pl" --no-tree -q "qemu-patches/$p" 2>&1) || true
    [ -z "$report" ] || { echo "checkpatch: $p:"; echo "$report"; exit 1; }
    echo "checkpatch: $p: clean"
done <qemu-patches/series
qemu_tests "$(dirname "$qemu_off")" off

step "QEMU: build with QEMU's Rust on"
qemu=$(./scripts/qemu/build.sh | tail -n 1)
qemu_tests "$(dirname "$qemu")" on

step "end-to-end: the boot-sector guest and the Linux guest, on the Rust-on build"
CMX_QEMU="$qemu" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e

step "fuzz: each target for a short, bounded time (docs/testing.md: how to run longer)"
./scripts/fuzz.sh "${CMX_FUZZ_SECONDS:-20}"
step "all tests passed"
