#!/usr/bin/env bash
# Build QEMU 10.2.2 with the patch series (qemu-patches/) outside the clone, and print the path
# of qemu-system-x86_64 as the last line.
#
#   scripts/qemu/build.sh              # QEMU's Rust on (--enable-rust): the build the demo uses
#   scripts/qemu/build.sh --rust=off   # QEMU's Rust off (10.2's default), with the tools
#                                      # (qemu-img, qemu-nbd, qemu-io, storage daemon, guest agent)
#
# Either way: one target (x86_64-softmmu), --enable-chardev-multiplex, --disable-download, and the
# binaries test-char and the series' qtest. Extra configure arguments: $CMX_QEMU_CONFIGURE_ARGS.
# Output of configure and ninja goes to <build dir>/cmx-build.log (CMX_VERBOSE=1: to stderr).
#
# The source tree ($CMX_CACHE/qemu-src-<key>) is the pristine tree (scripts/qemu/pristine.sh)
# with the series applied by git am, plus what Debian's +ds tarball leaves out and this build
# needs, none of it committed: the crate tarballs in subprojects/packagecache (checked against
# each wrap's sha256), overlays for QEMU's own crate wraps (scripts/qemu/rust-crates.sh), and
# edk2 blobs switched off. The library comes from its release tarball made from this checkout
# (scripts/library-tarball.sh): when the series' subprojects/chardev-multiplex.wrap pins exactly
# that tarball, meson takes it through the wrap; otherwise the checkout stands in for it and a
# note says so. <key> hashes all of these inputs; a finished build for a key is reused.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${CMX_CACHE:-$HOME/.cache/chardev-multiplex}
export CMX_CACHE=$cache
die() { echo "build.sh: error: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }
# run LOGFILE CMD...: quiet unless CMX_VERBOSE=1; on failure show the log's tail.
run() {
    local logf=$1; shift
    if [ -n "${CMX_VERBOSE:-}" ]; then "$@" 2>&1 | tee -a "$logf" >&2; return; fi
    "$@" >>"$logf" 2>&1 || { local rc=$?; tail -n 60 "$logf" >&2; return $rc; }
}

rust=on
case "${1:-}" in
'') ;;
--rust=on) rust=on ;;
--rust=off) rust=off ;;
*) die "unknown argument '$1' (usage: build.sh [--rust=on|--rust=off])" ;;
esac

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 || die "cannot lock $cache/.lock"

tarball=$("$here/fetch.sh" 10.2.2 | tail -n1) || die "fetch.sh failed"
python=$("$here/meson-venv.sh" | tail -n1) || die "meson-venv.sh failed"
firmware=$("$here/firmware.sh" | tail -n1) || die "firmware.sh failed"
library=$("$root/scripts/library-tarball.sh" "$cache/library" | tail -n1) \
    || die "library-tarball.sh failed"

# ---- keys -------------------------------------------------------------------
src_key=$(
    cd "$root"
    sha256sum "$tarball" "$library" | cut -d' ' -f1
    # the cover letter is not applied: editing it does not rebuild QEMU
    find qemu-patches scripts/qemu scripts/library-tarball.sh -type f \
        ! -name 0000-cover-letter.patch ! -name cover-letter.txt -print0 \
        | LC_ALL=C sort -z | xargs -0r sha256sum
) || die "cannot compute the source key"
src_key=$(printf '%s\n' "$src_key" | sha256sum | cut -c1-16)
common=(--target-list=x86_64-softmmu --without-default-features --disable-install-blobs
        --disable-download --disable-docs --enable-chardev-multiplex)
if [ "$rust" = on ]; then
    args=("${common[@]}" --enable-rust)
else
    args=("${common[@]}" --enable-tools --enable-guest-agent)
fi
# shellcheck disable=SC2206
args+=(${CMX_QEMU_CONFIGURE_ARGS:-})
build_key=$(printf '%s %s\n' "$src_key" "${args[*]}" | sha256sum | cut -c1-16)
src=$cache/qemu-src-$src_key
build=$cache/qemu-build-rust-$rust-$build_key
qemu=$build/qemu-system-x86_64

# linuxboot_dma.bin and kvmvapic.bin (the +ds source has no blobs; without linuxboot_dma.bin a
# -kernel boot hangs silently) go where the built QEMU looks after the -L directories.
install_firmware() {
    local d=$1/qemu-bundle/usr/local/share/qemu
    mkdir -p "$d"
    cp -f "$firmware"/linuxboot_dma.bin "$firmware"/kvmvapic.bin "$d/"
}

if [ -f "$build/.cmx-complete" ] && [ -x "$qemu" ]; then
    log "reusing $build"
    install_firmware "$build"
    ln -sfn "$build" "$cache/current-rust-$rust"
    echo "$qemu"; exit 0
fi

# ---- source tree ------------------------------------------------------------
if [ ! -f "$src/.cmx-ready" ]; then
    rm -rf "$src"
    log "preparing $src (pristine QEMU 10.2.2 + qemu-patches/)"
    "$here/pristine.sh" 10.2.2 "$src" >/dev/null
    git -C "$src" checkout -q -b series pristine-10.2.2
    gitc=(git -C "$src" -c user.name="chardev-multiplex developers"
          -c user.email=dev@chardev-multiplex.invalid -c commit.gpgsign=false)
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        [ -f "$root/qemu-patches/$p" ] || die "series lists a missing patch: $p"
        "${gitc[@]}" am -q --committer-date-is-author-date "$root/qemu-patches/$p" \
            || { "${gitc[@]}" am --abort || true; die "git am failed for $p"; }
    done <"$root/qemu-patches/series"
    log "applied $("${gitc[@]}" rev-list --count pristine-10.2.2..HEAD) patches"
    # Not part of the series: the +ds tarball has no edk2 *.fd.bz2, never unpack them.
    grep -q '^    unpack_edk2_blobs = bzip2.found()$' "$src/meson.build" \
        || die "edk2 line not found in meson.build (QEMU version changed?)"
    sed -i 's/^    unpack_edk2_blobs = bzip2.found()$/    unpack_edk2_blobs = false/' \
        "$src/meson.build"
    # The library: through its wrap when the series pins this very tarball.
    wrap=$src/subprojects/chardev-multiplex.wrap
    [ -f "$wrap" ] || die "the series has no subprojects/chardev-multiplex.wrap"
    want=$(sed -n 's/^source_hash *= *//p' "$wrap")
    dir=$(sed -n 's/^directory *= *//p' "$wrap")
    have=$(sha256sum "$library" | cut -d' ' -f1)
    mkdir -p "$src/subprojects/packagecache"
    if [ "$want" = "$have" ]; then
        cp "$library" "$src/subprojects/packagecache/$(sed -n 's/^source_filename *= *//p' "$wrap")"
        log "library: $(basename "$library") through the series' wrap (sha256 matches)"
    else
        mkdir -p "$src/subprojects/$dir"
        tar -xJf "$library" -C "$src/subprojects/$dir" --strip-components=1
        log "library: this checkout stands in for the wrap's $dir" \
            "(the series pins sha256 ${want:0:12}..., this checkout's tarball is ${have:0:12}...)"
    fi
    # Crate tarballs for every *-rs wrap (QEMU's and the series'), and overlays for QEMU's
    # own crate wraps, whose packagefiles Debian's tarball leaves out.
    "$here/rust-crates.sh" "$src" >&2 || die "rust-crates.sh failed"
    touch "$src/.cmx-ready"
fi

# ---- configure + build ------------------------------------------------------
if [ ! -f "$build/build.ninja" ]; then
    rm -rf "$build"; mkdir -p "$build"
    log "configuring QEMU with Rust $rust in $build"
    (cd "$build" && run "$build/cmx-build.log" "$src/configure" --python="$python" "${args[@]}") \
        || die "configure failed (log: $build/cmx-build.log)"
fi
targets=(qemu-system-x86_64 tests/unit/test-char)
# The series' qtests.
for q in multiplex-test serial-chardev-test; do
    grep -qs "'$q'" "$src/tests/qtest/meson.build" && targets+=("tests/qtest/$q")
done
if [ "$rust" = off ]; then
    targets+=(qemu-img qemu-nbd qemu-io storage-daemon/qemu-storage-daemon qga/qemu-ga)
fi
log "building ${targets[*]} (log: $build/cmx-build.log)"
t0=$SECONDS
run "$build/cmx-build.log" ninja -C "$build" "${targets[@]}" \
    || die "ninja failed (log: $build/cmx-build.log)"
log "built in $((SECONDS - t0)) s"
[ -x "$qemu" ] || die "$qemu was not produced"
install_firmware "$build"
touch "$build/.cmx-complete"
ln -sfn "$build" "$cache/current-rust-$rust"

# Keep old builds from piling up: keep this one, the other configuration of this source, and
# the source tree itself.
for d in "$cache"/qemu-build-* "$cache"/qemu-src-*; do
    case "$d" in
    "$build"|"$src") continue ;;
    "$cache"/qemu-build-rust-*) [ -f "$d/.cmx-src" ] && [ "$(cat "$d/.cmx-src")" = "$src_key" ] && continue ;;
    esac
    [ -e "$d" ] && { log "removing old $d"; rm -rf "$d"; }
done
echo "$src_key" >"$build/.cmx-src"
echo "$qemu"
