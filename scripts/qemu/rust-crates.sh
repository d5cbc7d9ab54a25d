#!/usr/bin/env bash
# Prepare the Rust crate subprojects of an unpacked QEMU tree for an offline configure
# (--enable-rust --disable-download), on Debian's +ds tarball, which has no
# subprojects/packagefiles/ and no subprojects/packagecache/.
#
#   scripts/qemu/rust-crates.sh SRC
#
# Needs on Debian 12, besides a rustc >= 1.83 (rustup) and meson >= 1.9
# (scripts/qemu/meson-venv.sh, configure --python=...):
#   bindgen         0.60.1; QEMU wants >= 0.60 (it loads libclang at run time)
#   libclang-dev    libclang.so for bindgen, and clang's own headers (stddef.h, ...)
#   curl            downloads the .crate files (once, into the cache)
#   patch           applies crate-overlays/*.diff (meson falls back to git apply)
# and, for any configure of Debian's +ds tree, Rust or not:
#   device-tree-compiler  without dtc, pc-bios/dtb/meson.build installs the prebuilt
#                   .dtb files, which the +ds tarball lacks: "ERROR: File bamboo.dtb does
#                   not exist" (also with --disable-install-blobs).
#
# 1. Crates. For every SRC/subprojects/**/*-rs.wrap whose source_url is a crates.io crate
#    (QEMU's own wraps and any nested ones, e.g. a chardev-multiplex subproject's), the
#    .crate file comes from ${CMX_CACHE:-$HOME/.cache/chardev-multiplex}/crates/
#    NAME-VERSION.crate, downloaded from https://static.crates.io when missing (the
#    registry API URL in the wraps does not resolve everywhere), must have the wrap's
#    source_hash, and is copied to SRC/subprojects/packagecache/<source_filename>, the
#    one place meson looks for it (nested wraps included).
# 2. Build files. A top-level *-rs.wrap whose patch_directory is missing from
#    SRC/subprojects/packagefiles/ is switched to `method = cargo`: meson >= 1.9 then
#    generates the crate's build from its own Cargo.toml. What Cargo.toml does not say
#    (what a build.rs prints, features QEMU's meson-built crates ask for, one version
#    requirement meson cannot map) comes from scripts/qemu/crate-overlays/:
#      crate-overlays/P/       -> packagefiles/P/, kept as the wrap's patch_directory
#                                 (P/meson/meson.build adds to the crate's rustc args)
#      crate-overlays/P.diff   -> packagefiles/P.diff, the wrap's diff_files
#    where P is the wrap's original patch_directory. Other wraps are left as they are.
#    The edited wraps carry a comment naming the original patch_directory, so the script
#    can run again; an extracted crate directory left from different overlays is removed,
#    so that meson extracts it again.
# Quiet on success but for one line on stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
overlays=$here/crate-overlays
die() { echo "rust-crates.sh: error: $*" >&2; exit 1; }
warn() { echo "rust-crates.sh: warning: $*" >&2; }

[ $# -eq 1 ] || die "usage: $0 QEMU_SOURCE_DIR"
src=$(cd "$1" && pwd) || die "no such directory: $1"
subp=$src/subprojects
[ -d "$subp" ] || die "$src has no subprojects/ directory"
cache=${CMX_CACHE:-$HOME/.cache/chardev-multiplex}/crates
pkgcache=$subp/packagecache
mkdir -p "$cache" "$pkgcache"

MARK='# rust-crates.sh: packagefiles missing, on method = cargo; patch_directory was'

# wrapkey FILE KEY: the value of KEY in FILE's [wrap-file] section (empty if none).
wrapkey() {
    awk -v key="$2" '
        /^[ \t]*\[/ { sec = $0; gsub(/[ \t]/, "", sec); next }
        sec == "[wrap-file]" && $0 ~ "^[ \t]*" key "[ \t]*=" {
            sub(/^[^=]*=[ \t]*/, ""); sub(/[ \t\r]+$/, ""); print; exit }' "$1"
}

# fetch_crate NAME VERSION SHA256: sets $crate to the checked .crate file in the cache.
fetch_crate() {
    local name=$1 version=$2 want=$3 got tmp url
    crate=$cache/$name-$version.crate
    if [ -f "$crate" ]; then
        got=$(sha256sum "$crate" | cut -d' ' -f1)
        [ "$got" = "$want" ] || die "crate $name $version: $crate has sha256 $got," \
            "but the wrap's source_hash is $want (remove the file to download it again)"
        return
    fi
    url=https://static.crates.io/crates/$name/$name-$version.crate
    tmp=$(mktemp "$cache/.$name-$version.XXXXXX")
    if command -v curl >/dev/null; then
        curl -fsSL --retry 3 -o "$tmp" "$url" || { rm -f "$tmp"; die "cannot download $url"; }
    else
        wget -q -O "$tmp" "$url" || { rm -f "$tmp"; die "cannot download $url"; }
    fi
    got=$(sha256sum "$tmp" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
        rm -f "$tmp"
        die "crate $name $version: $url has sha256 $got, but the wrap's source_hash is" \
            "$want (not kept)"
    fi
    mv -f "$tmp" "$crate"
    downloaded=$((downloaded + 1))
}

# ---- 1. crates into packagecache --------------------------------------------------
declare -A seeded=()   # source_filename -> hash
downloaded=0 ncrates=0
# Top-level wraps first, so that they win a clash with a nested wrap (as in meson).
mapfile -t wraps < <(
    find "$subp" -maxdepth 1 -name '*-rs.wrap' -type f | LC_ALL=C sort
    find "$subp" -mindepth 2 -path '*/subprojects/*-rs.wrap' -type f \
        -not -path "$pkgcache/*" | LC_ALL=C sort
)
for w in "${wraps[@]}"; do
    [ "$(basename "$(dirname "$w")")" = subprojects ] || continue
    url=$(wrapkey "$w" source_url)
    file=$(wrapkey "$w" source_filename)
    hash=$(wrapkey "$w" source_hash)
    rel=${w#"$src"/}
    [ -n "$url" ] || continue             # not a [wrap-file] with a source (git, redirect)
    if [[ $url =~ ^https://crates\.io/api/v1/crates/([^/]+)/([^/]+)/download$ ]] ||
       [[ $url =~ ^https://static\.crates\.io/crates/([^/]+)/[^/]+-([^/]+)\.crate$ ]]; then
        name=${BASH_REMATCH[1]} version=${BASH_REMATCH[2]}
    else
        warn "$rel: source_url $url is not a crates.io crate; left to meson"; continue
    fi
    [ -n "$file" ] && [[ $hash =~ ^[0-9a-f]{64}$ ]] \
        || die "$rel: needs source_filename and a sha256 source_hash"
    if [ -n "${seeded[$file]:-}" ]; then
        [ "${seeded[$file]}" = "$hash" ] \
            || warn "$rel: packagecache/$file is already taken by a wrap with hash ${seeded[$file]}, this one wants $hash; meson uses the top-level wrap"
        continue
    fi
    fetch_crate "$name" "$version" "$hash"
    if [ ! -f "$pkgcache/$file" ] || ! cmp -s "$crate" "$pkgcache/$file"; then
        cp -f "$crate" "$pkgcache/$file.tmp" && mv -f "$pkgcache/$file.tmp" "$pkgcache/$file"
    fi
    seeded[$file]=$hash
    ncrates=$((ncrates + 1))
done

# ---- 2. method = cargo + overlays for top-level wraps without packagefiles ----------
ncargo=0 noverlay=0
declare -A used=()
for w in "$subp"/*-rs.wrap; do
    [ -f "$w" ] || continue
    orig=$(sed -n "s/^$MARK \(.*\)\$/\1/p" "$w")
    if [ -z "$orig" ]; then
        orig=$(wrapkey "$w" patch_directory)
        [ -n "$orig" ] && [ ! -d "$subp/packagefiles/$orig" ] || continue
    fi
    case $orig in */*|.*|'') die "${w#"$src"/}: odd patch_directory '$orig'" ;; esac
    pd='' df=''
    if [ -d "$overlays/$orig" ]; then
        rm -rf "$subp/packagefiles/$orig"
        mkdir -p "$subp/packagefiles"
        cp -R "$overlays/$orig" "$subp/packagefiles/$orig"
        pd=$orig
    fi
    if [ -f "$overlays/$orig.diff" ]; then
        mkdir -p "$subp/packagefiles"
        cp -f "$overlays/$orig.diff" "$subp/packagefiles/$orig.diff"
        df=$orig.diff
    fi
    [ -z "$pd$df" ] || { used[$orig]=1; noverlay=$((noverlay + 1)); }
    # Drop method (commented out or not), patch_directory, diff_files and our mark; put
    # the new keys where patch_directory (or the mark) was.
    awk -v mark="$MARK" -v orig="$orig" -v pd="$pd" -v df="$df" '
        function emit() {
            if (done) return
            print mark " " orig; print "method = cargo"
            if (pd != "") print "patch_directory = " pd
            if (df != "") print "diff_files = " df
            done = 1
        }
        index($0, mark " ") == 1 { emit(); next }
        /^[#;]?[ \t]*method[ \t]*=/ { next }
        /^[ \t]*patch_directory[ \t]*=/ { emit(); next }
        /^[ \t]*diff_files[ \t]*=/ { next }
        { print }
        END { if (!done) exit 1 }' "$w" >"$w.tmp" || { rm -f "$w.tmp"; die "cannot rewrite $w"; }
    if cmp -s "$w.tmp" "$w"; then rm -f "$w.tmp"; else mv -f "$w.tmp" "$w"; fi
    ncargo=$((ncargo + 1))

    # A crate directory extracted earlier with other overlays (or none) is stale: meson
    # would use it as it is. The stamp records what the current one was made from.
    dir=$(wrapkey "$w" directory)
    stamp=$pkgcache/.rust-crates-$(basename "$w" .wrap).stamp
    sum=$( { cat "$w"; [ -z "$pd" ] || find "$overlays/$pd" -type f -print0 | LC_ALL=C sort -z \
              | xargs -0 sha256sum; [ -z "$df" ] || sha256sum "$overlays/$df"; } \
           | sed "s|$overlays/||" | sha256sum | cut -d' ' -f1)
    if [ -n "$dir" ] && [ -d "$subp/$dir" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
        warn "removing subprojects/$dir, extracted from other overlays; meson extracts it again"
        rm -rf "${subp:?}/$dir"
    fi
    echo "$sum" >"$stamp"
done
for o in "$overlays"/*; do
    o=$(basename "$o" .diff)
    [ -n "${used[$o]:-}" ] || warn "overlay crate-overlays/$o matches no wrap without packagefiles in $src"
done

echo "rust-crates.sh: $ncrates crates in subprojects/packagecache ($downloaded downloaded)," \
     "$ncargo wraps on method = cargo, $noverlay with overlays" >&2
