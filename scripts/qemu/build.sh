#!/usr/bin/env bash
# Build QEMU 10.0.2 (+ qemu-patches/, + this repo as meson subproject) outside the clone.
#
#   scripts/qemu/build.sh [EXTRA_CONFIGURE_ARG...]
#
# Extra configure args also come from $CMX_QEMU_CONFIGURE_ARGS (word-split).
# configure/ninja output goes to <build dir>/cmx-build.log (CMX_VERBOSE=1: to stderr).
# Source tree: $CMX_CACHE/qemu-src-<key>, build dir: $CMX_CACHE/qemu-build-<key>;
# <key> hashes the tarball, qemu-patches/*, the crate sources and the extra args.
# A complete build for the key is reused. Last stdout line: path of qemu-system-x86_64.
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

# shellcheck disable=SC2206
extra=(${CMX_QEMU_CONFIGURE_ARGS:-} "$@")
# The patch series adds the option; with it the multiplex backend is built.
if [ -f "$root/qemu-patches/series" ]; then
    extra=(--enable-chardev-multiplex "${extra[@]}")
fi
tarball=$("$here/fetch.sh" | tail -n1) || die "fetch.sh failed"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 || die "cannot lock $cache/.lock"
# linuxboot_dma.bin and kvmvapic.bin from qemu-system-data (the +ds source has no
# blobs; without linuxboot_dma.bin a -kernel boot hangs silently): installed into
# the build's data directory, qemu-bundle/<datadir> (/usr/local/share/qemu), which
# the built QEMU searches after the -L directories (`qemu-system-x86_64 -L help`).
firmware=$("$here/firmware.sh" | tail -n1) || die "firmware.sh failed"
install_firmware() {
    local d=$1/qemu-bundle/usr/local/share/qemu
    mkdir -p "$d"
    cp -f "$firmware"/linuxboot_dma.bin "$firmware"/kvmvapic.bin "$d/"
}

# ---- cache key ------------------------------------------------------------
key=$(
    cd "$root"
    sha256sum "$tarball" | cut -d' ' -f1
    printf 'configure-args:'; printf ' %q' "${extra[@]}"; echo
    files=()
    # Everything that can change the build: this script, the patch series, the crate
    # (scripts/meson holds the helpers the crate's meson.build runs).
    for p in scripts/qemu/build.sh qemu-patches Cargo.toml Cargo.lock meson.build \
             meson.options meson_options.txt build.rs cbindgen.toml rust-toolchain.toml \
             .cargo scripts/meson scripts/vendor-crates.sh src include; do
        [ -e "$p" ] && files+=("$p")
    done
    if [ ${#files[@]} -gt 0 ]; then
        find "${files[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
    fi
) || die "cannot compute cache key"
key=$(printf '%s\n' "$key" | sha256sum | cut -c1-16)
src=$cache/qemu-src-$key
build=$cache/qemu-build-$key
qemu=$build/qemu-system-x86_64

if [ -f "$build/.cmx-complete" ] && [ -x "$qemu" ]; then
    log "reusing $build"
    install_firmware "$build"
    ln -sfn "$build" "$cache/current"
    echo "$qemu"; exit 0
fi

# ---- source tree: pristine commit + patch series + subproject -------------
if [ ! -f "$src/.cmx-ready" ]; then
    rm -rf "$src" "$build"
    log "unpacking into $src"
    mkdir -p "$src"
    tar -xJf "$tarball" -C "$src" --strip-components=1 --no-same-owner
    gitc=(git -C "$src" -c user.name=cmx -c user.email=cmx@localhost
          -c core.autocrlf=false -c commit.gpgsign=false)
    export GIT_AUTHOR_DATE="2025-01-01T00:00:00Z" GIT_COMMITTER_DATE="2025-01-01T00:00:00Z"
    "${gitc[@]}" init -q -b pristine
    "${gitc[@]}" add -A -f .
    "${gitc[@]}" commit -q -m "QEMU 10.0.2 (Debian +ds orig tarball, pristine)"
    if [ -d "$root/qemu-patches" ]; then
        series=$root/qemu-patches/series
        [ -f "$series" ] || die "qemu-patches/ exists but qemu-patches/series is missing"
        while read -r p; do
            case "$p" in ''|'#'*) continue ;; esac
            [ -f "$root/qemu-patches/$p" ] || die "series lists missing patch: $p"
            log "applying $p"
            "${gitc[@]}" am -q --committer-date-is-author-date "$root/qemu-patches/$p" \
                || { "${gitc[@]}" am --abort || true; die "git am failed for $p (tree left in $src)"; }
        done <"$series"
    else
        log "no qemu-patches/ directory: building stock QEMU"
    fi
    # Build-environment tweak (not part of the patch series): the +ds tarball has no
    # edk2 *.fd.bz2 firmware, so never try to unpack it even though bzip2 is installed.
    grep -q '^    unpack_edk2_blobs = bzip2.found()$' "$src/meson.build" \
        || die "edk2 line not found in meson.build (QEMU version changed?)"
    sed -i 's/^    unpack_edk2_blobs = bzip2.found()$/    unpack_edk2_blobs = false/' "$src/meson.build"
    # This repo as meson subproject: a copy (so cargo output stays out of the clone)
    # of the tracked and untracked-but-not-ignored files, i.e. no .git/, target/, build/.
    mkdir -p "$src/subprojects/chardev-multiplex"
    if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$root" ls-files -z --cached --others --exclude-standard \
            | tar -C "$root" --null -T - --ignore-failed-read -cf -
    else
        tar -C "$root" --exclude=./.git --exclude=./target --exclude=./build -cf - .
    fi | tar -C "$src/subprojects/chardev-multiplex" -xf - \
        || die "cannot copy $root into subprojects/chardev-multiplex"
    touch "$src/.cmx-ready"
fi

# ---- configure + build ----------------------------------------------------
# QEMU is configured with --disable-download, so cargo runs --offline: on crates
# vendored into the cache (scripts/vendor-crates.sh), never on the network.
CMX_CARGO_VENDOR_DIR=$("$root/scripts/vendor-crates.sh" | tail -n 1) \
    || die "scripts/vendor-crates.sh failed"
export CMX_CARGO_VENDOR_DIR
if [ ! -f "$build/build.ninja" ]; then
    rm -rf "$build"; mkdir -p "$build"
    log "configuring in $build (extra args:${extra[*]:+ ${extra[*]}})"
    (cd "$build" && run "$build/cmx-build.log" "$src/configure" --python=/usr/bin/python3 \
        --target-list=x86_64-softmmu --without-default-features \
        --disable-install-blobs --disable-download --disable-docs \
        "${extra[@]}") || die "configure failed (log: $build/cmx-build.log)"
fi
targets=(qemu-system-x86_64 tests/unit/test-char)
# The series' qtest, once the series has one.
grep -qs 'multiplex-test' "$src/tests/qtest/meson.build" && targets+=(tests/qtest/multiplex-test)
log "building (ninja -C $build ${targets[*]}; log: $build/cmx-build.log)"
run "$build/cmx-build.log" ninja -C "$build" "${targets[@]}" \
    || die "ninja failed (log: $build/cmx-build.log)"
[ -x "$qemu" ] || die "$qemu was not produced"
install_firmware "$build"
touch "$build/.cmx-complete"
ln -sfn "$build" "$cache/current"

# Keep old builds from piling up.
for d in "$cache"/qemu-build-* "$cache"/qemu-src-*; do
    [ "$d" = "$build" ] || [ "$d" = "$src" ] || [ ! -e "$d" ] || { log "removing old $d"; rm -rf "$d"; }
done
echo "$qemu"
