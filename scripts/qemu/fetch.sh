#!/usr/bin/env bash
# Fetch (or reuse) a pristine QEMU source tarball from Debian's package registry and print its path.
#
#   scripts/qemu/fetch.sh            # QEMU 10.2.2, the base of the series
#   scripts/qemu/fetch.sh 10.0.2     # the base of series v5 (scripts/series.sh, for range-diff)
#
# apt-get runs on private source lists kept in the cache, so the machine's apt setup is not
# touched. The cache lives outside the clone: ${CMX_CACHE:-$HOME/.cache/chardev-multiplex}.
set -euo pipefail

version=${1:-10.2.2}
case "$version" in
10.2.2)
    SUITE=sid
    DEB_VERSION=1:10.2.2+ds-1
    TARBALL=qemu_10.2.2+ds.orig.tar.xz
    SHA256=be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb ;;
10.0.2)
    SUITE=bookworm-backports
    DEB_VERSION=1:10.0.2+ds-2+deb13u1~bpo12+1
    TARBALL=qemu_10.0.2+ds.orig.tar.xz
    SHA256=0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1 ;;
*)
    echo "fetch.sh: error: unknown QEMU version '$version' (known: 10.2.2, 10.0.2)" >&2
    exit 2 ;;
esac

cache=${CMX_CACHE:-$HOME/.cache/chardev-multiplex}
mkdir -p "$cache"
dest=$cache/$TARBALL
check() { [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }
if [ -f "$dest" ] && check "$dest"; then
    echo "$dest"; exit 0
fi

# A private apt configuration with one deb-src line for $SUITE.
apt_dir=$cache/apt-$SUITE
mkdir -p "$apt_dir/lists/partial"
echo "deb-src http://deb.debian.org/debian $SUITE main" >"$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
          -o "Dir::State::Lists=$apt_dir/lists" -o "APT::Sandbox::User=root" -q)
if [ -z "$(find "$apt_dir/lists" -name '*Sources*' -mmin -1440 2>/dev/null)" ]; then
    echo "fetch.sh: updating the $SUITE source index" >&2
    apt-get "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1 \
        || { cat "$apt_dir/update.log" >&2; echo "fetch.sh: error: apt-get update for $SUITE failed" >&2; exit 1; }
fi

tmp=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "fetch.sh: downloading qemu $DEB_VERSION (source) from $SUITE" >&2
# Only the .orig tarball is used; for 10.0.2 the .dsc is no longer served (404), so judge by
# the tarball's checksum, not by apt-get's exit status.
(cd "$tmp" && apt-get "${apt_opts[@]}" source --download-only "qemu=$DEB_VERSION") \
    >"$tmp/apt.log" 2>&1 || true
if [ ! -f "$tmp/$TARBALL" ]; then
    cat "$tmp/apt.log" >&2
    echo "fetch.sh: error: apt-get source did not produce $TARBALL" >&2
    exit 1
fi
if ! check "$tmp/$TARBALL"; then
    echo "fetch.sh: error: sha256 mismatch for $TARBALL:" \
         "got $(sha256sum "$tmp/$TARBALL" | cut -d' ' -f1), want $SHA256" >&2
    exit 1
fi
mv "$tmp/$TARBALL" "$dest"
echo "$dest"
