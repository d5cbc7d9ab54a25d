#!/usr/bin/env bash
# Checks every patch of qemu-patches/ on its own, as a QEMU maintainer applies them: after each
# `git am` onto pristine QEMU 10.2.2, checkpatch.pl on the patch, then build qemu-system-x86_64
# and tests/unit/test-char and run test-char, without --enable-chardev-multiplex and (once the
# series has the option) with it. So every fix that comes before the feature builds and passes
# without the library and without Rust, and the series bisects.
#
#   ./scripts/check-series.sh            # all patches
#   ./scripts/check-series.sh 5          # stop after patch 5
#
# Not part of ./scripts/test.sh (two QEMU builds, then one incremental build per patch and
# configuration: about an hour on 2 cores). Run it before each new version of the series. The
# trees live in ${CMX_CACHE:-~/.cache/chardev-multiplex}/check-series/; a report of every step
# is printed and written to check-series/report.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${CMX_CACHE:-$HOME/.cache/chardev-multiplex}
export CMX_CACHE=$cache
work=$cache/check-series
last=${1:-999}
die() { echo "check-series: error: $*" >&2; exit 1; }

python=$("$here/qemu/meson-venv.sh" | tail -n1)
library=$("$here/library-tarball.sh" "$cache/library" | tail -n1)
rm -rf "$work"
mkdir -p "$work/off" "$work/on"
report=$work/report.txt
: >"$report"
say() { echo "$*" | tee -a "$report"; }

src=$work/src
"$here/qemu/pristine.sh" 10.2.2 "$src" >/dev/null
gitc=(git -C "$src" -c user.name="chardev-multiplex developers"
      -c user.email=dev@chardev-multiplex.invalid -c commit.gpgsign=false)
"${gitc[@]}" checkout -q -b check pristine-10.2.2
# Not part of the series (see scripts/qemu/build.sh): the +ds tarball has no edk2 blobs.
sed -i 's/^    unpack_edk2_blobs = bzip2.found()$/    unpack_edk2_blobs = false/' "$src/meson.build"
"${gitc[@]}" commit -q -am "build environment: no edk2 blobs"

# Before a configure: crate tarballs and overlays (rust-crates.sh edits tracked wraps, so undo
# that before the next git am), and the library, through the series' wrap or this checkout.
prepare() {
    "$here/qemu/rust-crates.sh" "$src" 2>/dev/null
    local wrap=$src/subprojects/chardev-multiplex.wrap dir want
    [ -f "$wrap" ] || return 0
    dir=$(sed -n 's/^directory *= *//p' "$wrap")
    want=$(sed -n 's/^source_hash *= *//p' "$wrap")
    if [ "$want" = "$(sha256sum "$library" | cut -d' ' -f1)" ]; then
        cp "$library" "$src/subprojects/packagecache/$(sed -n 's/^source_filename *= *//p' "$wrap")"
    elif [ ! -d "$src/subprojects/$dir" ]; then
        mkdir -p "$src/subprojects/$dir"
        tar -xJf "$library" -C "$src/subprojects/$dir" --strip-components=1
    fi
}
# Undo it all: the edited wraps, and the overlays copied into packagefiles/ (left there, an
# overlay stops rust-crates.sh from switching its wrap to method = cargo the next time).
unprepare() {
    "${gitc[@]}" checkout -q -- subprojects
    "${gitc[@]}" clean -fdxq -- subprojects/packagefiles
}

common=(--python="$python" --target-list=x86_64-softmmu --without-default-features
        --disable-install-blobs --disable-download --disable-docs)
configure() { # DIR [ARGS...]
    local dir=$1; shift
    (cd "$dir" && "$src/configure" "${common[@]}" "$@" >"$dir/configure.log" 2>&1) \
        || { tail -n 30 "$dir/configure.log"; die "configure failed in $dir"; }
}
build_and_test() { # DIR LABEL
    local dir=$1 label=$2 t0=$SECONDS
    if ! ninja -C "$dir" qemu-system-x86_64 tests/unit/test-char >"$dir/ninja.log" 2>&1; then
        tail -n 40 "$dir/ninja.log"
        say "  $label: BUILD FAILED"
        return 1
    fi
    if ! "$dir/tests/unit/test-char" --tap -k >"$dir/test-char.log" 2>&1; then
        grep -E '^not ok' "$dir/test-char.log" | tee -a "$report"
        say "  $label: test-char FAILED"
        return 1
    fi
    say "  $label: built, test-char $(grep -c '^ok' "$dir/test-char.log") ok" \
        "($((SECONDS - t0)) s)"
}

prepare
configure "$work/off"
unprepare
fail=0
n=0
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    n=$((n + 1))
    [ "$n" -le "$last" ] || break
    say "patch $n: $p"
    "${gitc[@]}" am -q "$root/qemu-patches/$p" || die "git am failed for $p"
    # Clean means no error and no warning (checkpatch exits 0 on warnings).
    cp_report=$(perl "$src/scripts/checkpatch.pl" --no-tree -q "$root/qemu-patches/$p" 2>&1) \
        || true
    if [ -z "$cp_report" ]; then
        say "  checkpatch: clean"
    else
        say "  checkpatch: PROBLEMS"; echo "$cp_report" | tee -a "$report"; fail=1
    fi
    prepare
    build_and_test "$work/off" "without the option" || fail=1
    if grep -q chardev_multiplex "$src/meson_options.txt"; then
        [ -f "$work/on/build.ninja" ] || configure "$work/on" --enable-chardev-multiplex
        build_and_test "$work/on" "with --enable-chardev-multiplex" || fail=1
    else
        say "  with --enable-chardev-multiplex: (the option comes later in the series)"
    fi
    unprepare
done <"$root/qemu-patches/series"
if [ "$fail" = 0 ]; then
    say "check-series: every patch builds and passes test-char"
else
    say "check-series: FAILED (see above; trees in $work)"
fi
exit "$fail"
