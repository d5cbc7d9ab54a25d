#!/usr/bin/env bash
# Fetch (or reuse) the option-ROM blobs a `-kernel` boot needs and print the
# directory that holds them: linuxboot_dma.bin (without it SeaBIOS finds no
# kernel to boot and the guest hangs silently) and kvmvapic.bin (without it
# QEMU warns, unless -global apic-common.vapic=off). Debian's +ds QEMU source
# has no firmware blobs, so they come from Debian's qemu-system-data package
# (apt-get download, pinned sha256, dpkg-deb -x; no root needed). It is the
# bookworm-backports build of 10.0.2, not 10.2.2: the option ROMs are loaded
# by the 10.2.2 build all the same, and the Linux end-to-end tests (every
# `-kernel` boot in tests/e2e/test_linux_*.py) are what shows that they work.
# scripts/qemu/build.sh installs them into the build's qemu-bundle/usr/local/share/qemu,
# where the built qemu-system-x86_64 looks for them after the -L directories.
# The cache lives outside the clone: ${CMX_CACHE:-$HOME/.cache/chardev-multiplex}.
set -euo pipefail

PKG=qemu-system-data
VERSION=1:10.0.2+ds-2+deb13u1~bpo12+1
SHA256=2d831088187087013b3fcbd19bdfb955b182a2d5a08f6dafa0ad1c6d2007fb4e
BLOBS=(linuxboot_dma.bin kvmvapic.bin)

die() { echo "firmware.sh: error: $*" >&2; exit 1; }
cache=${CMX_CACHE:-$HOME/.cache/chardev-multiplex}
dest=$cache/qemu-firmware-${SHA256:0:16}
ok=1
for b in "${BLOBS[@]}"; do [ -s "$dest/$b" ] || ok=0; done
if [ $ok = 1 ]; then echo "$dest"; exit 0; fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
apt_dir=$cache/apt-bookworm-backports-binary
mkdir -p "$apt_dir/lists/partial"
echo "deb http://deb.debian.org/debian bookworm-backports main" >"$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
          -o "Dir::State::Lists=$apt_dir/lists" -o "APT::Sandbox::User=root"
          -o "Acquire::Languages=none" -q)
if [ -z "$(find "$apt_dir/lists" -name '*Packages*' -mmin -1440 2>/dev/null)" ]; then
    apt-get "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1 \
        || { cat "$apt_dir/update.log" >&2; die "apt-get update for bookworm-backports failed"; }
fi
(cd "$tmp" && apt-get "${apt_opts[@]}" download "$PKG=$VERSION" >"$tmp/apt.log" 2>&1) \
    || { cat "$tmp/apt.log" >&2; die "cannot fetch $PKG version $VERSION (expected sha256 $SHA256)"; }
deb=$(ls "$tmp"/*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || die "apt-get download produced no .deb for $PKG version $VERSION"
got=$(sha256sum "$deb" | cut -d' ' -f1)
[ "$got" = "$SHA256" ] \
    || die "sha256 mismatch for $PKG version $VERSION ($(basename "$deb")): got $got, expected $SHA256"
dpkg-deb -x "$deb" "$tmp/x"
mkdir -p "$tmp/out"
for b in "${BLOBS[@]}"; do
    [ -s "$tmp/x/usr/share/qemu/$b" ] || die "$PKG $VERSION has no usr/share/qemu/$b"
    cp "$tmp/x/usr/share/qemu/$b" "$tmp/out/$b"
done
rm -rf "$dest"
mv "$tmp/out" "$dest"
echo "$dest"
