#!/usr/bin/env bash
# The QEMU patch series as a git branch: import qemu-patches/ onto the pristine QEMU tree to
# edit, rebase and test it with git, then export it back. Nobody edits the .patch files by hand.
#
#   scripts/series.sh import    # qemu-patches/ -> branch `multiplex` in the work repository
#   scripts/series.sh export    # branch `multiplex` -> qemu-patches/ (format-patch, cover letter,
#                               # range-diff against the previous version, checkpatch on each)
#   scripts/series.sh path      # print the work repository's path
#
# The work repository is $CMX_SERIES_DIR (default ${CMX_CACHE:-~/.cache/chardev-multiplex}/series),
# outside the clone. It holds:
#   pristine-<base>          the pristine QEMU tree (scripts/qemu/pristine.sh: the same commit on
#                            every machine, the cover letter's base-commit)
#   multiplex                the series being worked on, one commit per patch
#   multiplex-v<N>           tag: the previous version, rebuilt from this repository's history
#                            (the commit named in qemu-patches/series.conf), for `git range-diff`
# The cover letter's text is qemu-patches/cover-letter.txt (first line: the subject without the
# [PATCH vN 00/NN] prefix; then a blank line and the body); export adds the shortlog, diffstat,
# range-diff and base-commit. See docs/series.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${CMX_CACHE:-$HOME/.cache/chardev-multiplex}
work=${CMX_SERIES_DIR:-$cache/series}
patches=$root/qemu-patches
die() { echo "series.sh: error: $*" >&2; exit 1; }
say() { echo "series.sh: $*" >&2; }

[ -f "$patches/series.conf" ] || die "$patches/series.conf is missing"
# shellcheck source=/dev/null
. "$patches/series.conf"
: "${version:?series.conf: version}" "${base:?series.conf: base}"
ident_name="chardev-multiplex developers"
ident_email="dev@chardev-multiplex.invalid"
# core.abbrev is fixed: git otherwise sizes the abbreviated ids of a patch's `index` lines by
# the repository's object count, and a new work repository would export other bytes.
g() {
    git -C "$work" -c user.name="$ident_name" -c user.email="$ident_email" \
        -c commit.gpgsign=false -c core.autocrlf=false -c am.threeWay=false \
        -c core.abbrev=12 "$@"
}

# apply_series REF BASE_BRANCH PATCH...: a branch REF on BASE_BRANCH with each patch applied by
# git am, committer = author and committer date = author date, so the commits (and their shas)
# are the same on every machine.
apply_series() {
    local ref=$1 base_branch=$2; shift 2
    g checkout -q -f -B "$ref" "$base_branch"
    local p
    for p in "$@"; do
        GIT_COMMITTER_NAME=$ident_name GIT_COMMITTER_EMAIL=$ident_email \
            g am -q --committer-date-is-author-date "$p" \
            || { g am --abort || true; die "git am failed for $(basename "$p")"; }
    done
}

series_files() { # DIR: the patches named in DIR/series, in order
    local p
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        echo "$1/$p"
    done <"$1/series"
}

cmd_import() {
    "$here/qemu/pristine.sh" "$base" "$work" >/dev/null
    # The previous version, for range-diff: from this repository's history, on its own base.
    if [ -n "${previous_version:-}" ] && ! g rev-parse -q --verify "refs/tags/multiplex-v$previous_version" >/dev/null; then
        say "rebuilding v$previous_version from commit $previous_commit on QEMU $previous_base"
        "$here/qemu/pristine.sh" "$previous_base" "$work" >/dev/null
        local old
        old=$(mktemp -d)
        git -C "$root" show "$previous_commit:qemu-patches/series" >"$old/series"
        local p
        while read -r p; do
            case "$p" in ''|'#'*) continue ;; esac
            git -C "$root" show "$previous_commit:qemu-patches/$p" >"$old/$p"
        done <"$old/series"
        mapfile -t files < <(series_files "$old")
        apply_series "tmp-v$previous_version" "pristine-$previous_base" "${files[@]}"
        g tag -f "multiplex-v$previous_version" >/dev/null
        g checkout -q --detach
        g branch -q -D "tmp-v$previous_version"
        rm -rf "$old"
    fi
    mapfile -t files < <(series_files "$patches")
    say "importing ${#files[@]} patches onto pristine-$base as branch multiplex"
    apply_series multiplex "pristine-$base" "${files[@]}"
    say "branch multiplex in $work: edit with git (rebase -i pristine-$base, commit --amend, ...), then: scripts/series.sh export"
}

cmd_export() {
    g rev-parse -q --verify refs/heads/multiplex >/dev/null || die "no branch multiplex in $work: run import first"
    local cover=$patches/cover-letter.txt
    [ -f "$cover" ] || die "$cover is missing"
    local n
    n=$(g rev-list --count "pristine-$base..multiplex")
    [ "$n" -gt 0 ] || die "branch multiplex has no commits on pristine-$base"
    # Commit the branch again the way import does (committer = author, committer date =
    # author date), so that the commit ids in the range-diff do not depend on when the
    # patches were edited, and export right after import gives the same files.
    g checkout -q multiplex
    GIT_COMMITTER_NAME=$ident_name GIT_COMMITTER_EMAIL=$ident_email \
        g rebase -q --force-rebase --committer-date-is-author-date "pristine-$base" \
        || die "normalizing the branch failed (git rebase); it is left as it was"
    local out
    out=$(mktemp -d)
    # The cover letter's text comes from the branch description; its date and sender are those
    # of the newest patch, so that the same branch always exports the same files.
    g config "branch.multiplex.description" "$(cat "$cover")"
    local last_date range=()
    last_date=$(g log -1 --format=%aI multiplex)
    if [ -n "${previous_version:-}" ]; then
        g rev-parse -q --verify "refs/tags/multiplex-v$previous_version" >/dev/null \
            || die "tag multiplex-v$previous_version missing: run import first"
        range=("--range-diff=pristine-$previous_base..multiplex-v$previous_version" --creation-factor=90)
    fi
    GIT_COMMITTER_DATE=$last_date g format-patch -q -o "$out" --cover-letter \
        --cover-from-description=subject --subject-prefix="PATCH v$version" \
        --zero-commit --no-signature --base="pristine-$base" "${range[@]}" \
        "pristine-$base..multiplex" >/dev/null
    # Replace the old patch files (and only those).
    rm -f "$patches"/[0-9][0-9][0-9][0-9]-*.patch
    cp "$out"/*.patch "$patches/"
    (cd "$out" && ls -1 [0-9][0-9][0-9][0-9]-*.patch | grep -v '^0000-cover-letter') >"$patches/series"
    rm -rf "$out"
    say "exported $n patches and the cover letter to qemu-patches/"
    local p bad=0
    while read -r p; do
        # Clean means no error and no warning: checkpatch exits 0 on warnings.
        local report
        report=$(perl "$work/scripts/checkpatch.pl" --no-tree -q "$patches/$p" 2>&1) || true
        if [ -z "$report" ]; then
            echo "checkpatch: $p: clean"
        else
            echo "checkpatch: $p: PROBLEMS"
            echo "$report"
            bad=1
        fi
    done <"$patches/series"
    return "$bad"
}

case "${1:-}" in
import) cmd_import ;;
export) cmd_export ;;
path) echo "$work" ;;
*) echo "usage: scripts/series.sh import|export|path" >&2; exit 2 ;;
esac
