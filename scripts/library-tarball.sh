#!/usr/bin/env bash
# Make the library's release tarball, chardev-multiplex-<version>.tar.xz, from this checkout
# (tracked files and untracked ones not ignored), and print its path. The same files always give
# the same tarball (sorted names, fixed owner and times), so its sha256 is what QEMU's
# subprojects/chardev-multiplex.wrap (added by the series) pins, and scripts/qemu/build.sh can
# tell whether the series pins this very checkout.
#
#   scripts/library-tarball.sh [OUTDIR]     # default: ${CMX_CACHE:-~/.cache/chardev-multiplex}
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-${CMX_CACHE:-$HOME/.cache/chardev-multiplex}}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n1)
[ -n "$version" ] || { echo "library-tarball.sh: error: no version in Cargo.toml" >&2; exit 1; }
name=chardev-multiplex-$version
# What a build of the library needs: meson and the crate, its wraps and packagefiles, the
# header, the C test meson runs, the licence. Not Cargo.lock: meson would read it as wraps.
paths=(meson.build meson src include subprojects tests/c Cargo.toml cbindgen.toml COPYING)
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/$name"
(cd "$root" && git ls-files -z --cached --others --exclude-standard -- "${paths[@]}" \
    | tar --null -T - -cf -) | tar -C "$tmp/$name" -xf -
tar -C "$tmp" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --mode='u+rw,go+r,go-w' --format=gnu -cf - "$name" | xz -T1 -6 >"$tmp/$name.tar.xz"
mv "$tmp/$name.tar.xz" "$out/$name.tar.xz"
echo "$out/$name.tar.xz"
