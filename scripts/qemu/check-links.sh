#!/usr/bin/env bash
# What a QEMU build made by scripts/qemu/build.sh links, read with nm:
#
#   scripts/qemu/check-links.sh BUILD_DIR on|off     # QEMU's Rust on or off in that build
#
# - qemu-system-x86_64 and test-char contain the library (cmx_ symbols) and exactly one copy
#   of the Rust standard library (one defined rust_begin_unwind, whatever rustc's mangling);
# - with QEMU's Rust on, the library's crate is inside the emulator's one Rust static library
#   (librust_x86_64_softmmu.a), and the pc machine's HPET is QEMU's Rust HPET;
# - with it off (that build has the tools), no tool contains a cmx_ symbol or any Rust.
# Prints one line per check; exits 1 if any fails.
set -euo pipefail
build=$1 rust=$2
fail=0
ok() { echo "check-links: $*"; }
bad() { echo "check-links: FAILED: $*"; fail=1; }

# count BINARY PATTERN: defined (T) symbols matching the extended regex PATTERN
count() { nm "$1" 2>/dev/null | grep -cE " T ($2)" || true; }

for bin in qemu-system-x86_64 tests/unit/test-char; do
    f=$build/$bin
    [ -x "$f" ] || { bad "$bin was not built"; continue; }
    unwind=$(count "$f" '.*rust_begin_unwind$')
    cmx=$(count "$f" 'cmx_[a-z_]+$')
    if [ "$unwind" = 1 ] && [ "$cmx" -gt 0 ]; then
        ok "$bin: $cmx cmx_ functions, rust_begin_unwind defined once"
    else
        bad "$bin: $cmx cmx_ functions, rust_begin_unwind defined $unwind times"
    fi
done

if [ "$rust" = on ]; then
    lib=$build/librust_x86_64_softmmu.a
    members=$(ar t "$lib" 2>/dev/null | grep -c '^chardev_multiplex\.' || true)
    hpet=$(ar t "$lib" 2>/dev/null | grep -c '^hpet\.' || true)
    if [ "$members" -gt 0 ] && [ "$hpet" -gt 0 ]; then
        ok "the crate is in the emulator's one Rust static library, next to QEMU's" \
           "HPET ($(basename "$lib"): $members chardev_multiplex and $hpet hpet objects)"
    else
        bad "$lib: $members chardev_multiplex and $hpet hpet objects"
    fi
    rs_hpet=$(nm "$build/qemu-system-x86_64" | grep -cE ' [Tt] _ZN4hpet' || true)
    c_hpet=$(nm "$build/qemu-system-x86_64" | grep -cE ' [Tt] hpet_(realize|reset|ram_write)$' || true)
    if [ "$rs_hpet" -gt 0 ] && [ "$c_hpet" = 0 ]; then
        ok "x86's HPET is QEMU's Rust HPET ($rs_hpet Rust hpet functions, no C hpet_realize)"
    else
        bad "HPET: $rs_hpet Rust functions, $c_hpet C functions"
    fi
else
    for tool in qemu-img qemu-nbd qemu-io storage-daemon/qemu-storage-daemon qga/qemu-ga; do
        f=$build/$tool
        [ -x "$f" ] || { bad "$tool was not built"; continue; }
        cmx=$(nm "$f" 2>/dev/null | grep -c ' cmx_' || true)
        unwind=$(count "$f" '.*rust_begin_unwind$')
        if [ "$cmx" = 0 ] && [ "$unwind" = 0 ]; then
            ok "$tool: no cmx_ symbol, no Rust"
        else
            bad "$tool: $cmx cmx_ symbols, rust_begin_unwind $unwind"
        fi
    done
fi
exit "$fail"
