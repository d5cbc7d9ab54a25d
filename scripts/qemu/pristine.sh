#!/usr/bin/env bash
# Unpack a pristine QEMU tarball into DIR as a git repository whose one commit is the
# tarball, on branch pristine-VERSION, and print that commit. The commit is the same on every
# machine (fixed author, committer and date), so it is the series' `base-commit:`.
#
#   scripts/qemu/pristine.sh [VERSION] DIR      # VERSION: 10.2.2 (default) or 10.0.2
#
# With DIR already a repository, the pristine commit is added to it (as a root commit of its
# own branch) unless it is there already.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -eq 1 ]; then version=10.2.2; dir=$1; else version=$1; dir=$2; fi
die() { echo "pristine.sh: error: $*" >&2; exit 1; }

tarball=$("$here/fetch.sh" "$version" | tail -n1) || die "fetch.sh $version failed"
export GIT_AUTHOR_NAME=pristine GIT_AUTHOR_EMAIL=pristine@chardev-multiplex.invalid
export GIT_COMMITTER_NAME=pristine GIT_COMMITTER_EMAIL=pristine@chardev-multiplex.invalid
export GIT_AUTHOR_DATE="2025-01-01T00:00:00Z" GIT_COMMITTER_DATE="2025-01-01T00:00:00Z"
g() { git -C "$dir" -c core.autocrlf=false -c commit.gpgsign=false -c core.fileMode=true "$@"; }

mkdir -p "$dir"
[ -d "$dir/.git" ] || g init -q -b "pristine-$version"
if g rev-parse -q --verify "refs/heads/pristine-$version" >/dev/null; then
    g rev-parse "pristine-$version"; exit 0
fi
# Build the commit in a separate index from an unpacked copy, so a work tree in use is
# left alone.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xJf "$tarball" -C "$tmp" --strip-components=1 --no-same-owner
trap 'rm -rf "$tmp" "$tmp.index"' EXIT
gitdir=$(cd "$dir" && git rev-parse --absolute-git-dir)
GIT_INDEX_FILE=$tmp.index git --git-dir="$gitdir" --work-tree="$tmp" -C "$tmp" \
    -c core.autocrlf=false -c core.fileMode=true add -A -f .
tree=$(GIT_INDEX_FILE=$tmp.index git --git-dir="$gitdir" write-tree)
commit=$(echo "QEMU $version (Debian +ds orig tarball, $(basename "$tarball"), pristine)" \
    | g commit-tree "$tree")
g update-ref "refs/heads/pristine-$version" "$commit"
# A new repository gets its work tree checked out; one in use is left as it is.
if [ -z "$(g ls-files | head -n 1)" ]; then
    g checkout -q -f "pristine-$version"
fi
echo "$commit"
