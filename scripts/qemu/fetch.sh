#!/usr/bin/env bash
# Fetch (or reuse) the pristine QEMU source tarball and print its path.
# The cache lives outside the clone: ${CMX_CACHE:-$HOME/.cache/chardev-multiplex}.
# Needs a deb-src entry for bookworm-backports (scripts/install-deps.sh adds it).
set -euo pipefail

QEMU_DEB_VERSION=1:10.0.2+ds-2+deb13u1~bpo12+1
TARBALL=qemu_10.0.2+ds.orig.tar.xz
SHA256=0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1

cache=${CMX_CACHE:-$HOME/.cache/chardev-multiplex}
mkdir -p "$cache"
dest=$cache/$TARBALL

check() { [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }

if [ -f "$dest" ] && check "$dest"; then
    echo "$dest"; exit 0
fi

tmp=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt-get fetches the .orig tarball, then fails on the .dsc/.debian.tar.xz (404):
# ignore its exit status and judge by the tarball's checksum instead.
(cd "$tmp" && apt-get source --download-only "qemu=$QEMU_DEB_VERSION" >&2) || true
if [ ! -f "$tmp/$TARBALL" ]; then
    echo "fetch.sh: error: apt-get source did not produce $TARBALL" \
         "(is deb-src for bookworm-backports configured? run scripts/install-deps.sh)" >&2
    exit 1
fi
if ! check "$tmp/$TARBALL"; then
    echo "fetch.sh: error: sha256 mismatch for $TARBALL:" \
         "got $(sha256sum "$tmp/$TARBALL" | cut -d' ' -f1), want $SHA256" >&2
    exit 1
fi
mv "$tmp/$TARBALL" "$dest"
echo "$dest"
