#!/usr/bin/env bash
# Create (once) a Python venv holding a pinned meson and pycotap, and print its python.
#
#   scripts/qemu/meson-venv.sh        # last stdout line: <venv>/bin/python3
#
# QEMU 10.2's configure wants meson >= 1.9.0 when Rust is on (pythondeps.toml, [meson-rust]);
# Debian 12 has 1.7.0 at best, and Debian's +ds tarball has no python/wheels/ for configure
# to install from. So configure runs as `configure --python=<this python>`: the venv that
# configure makes (with --system-site-packages) then finds meson and pycotap here and
# installs nothing. The same python works with and without --enable-rust.
#
# The venv lives outside the clone: ${CMX_CACHE:-$HOME/.cache/chardev-multiplex}/
# meson-venv-<meson version>. Wheels are checked with pip --require-hashes. Base python:
# $CMX_PYTHON, else /usr/bin/python3 (Debian's; needs python3-venv). Quiet on success.
set -euo pipefail

MESON_VERSION=1.9.2
MESON_SHA256=1a284dc1912929098a6462401af58dc49ae3f324e94814a38a8f1020cee07cba
PYCOTAP_VERSION=1.3.1
PYCOTAP_SHA256=1c3a25b3ff89e48f4e00f1f71dbbc1642b4f65c65d416524d07e73492fff25ea

cache=${CMX_CACHE:-$HOME/.cache/chardev-multiplex}
base_python=${CMX_PYTHON:-/usr/bin/python3}
venv=$cache/meson-venv-$MESON_VERSION
py=$venv/bin/python3
die() { echo "meson-venv.sh: error: $*" >&2; exit 1; }

# Ready when both packages import at the pinned versions.
ready() {
    [ -x "$py" ] && "$py" - "$MESON_VERSION" "$PYCOTAP_VERSION" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
sys.exit(0 if (version("meson"), version("pycotap")) == tuple(sys.argv[1:3]) else 1)
PY
}

if ! ready; then
    [ -x "$base_python" ] || die "$base_python not found (set CMX_PYTHON)"
    mkdir -p "$cache"
    exec 8>"$cache/.meson-venv.lock"
    flock 8 || die "cannot lock $cache/.meson-venv.lock"
    if ! ready; then
        rm -rf "$venv"
        "$base_python" -m venv "$venv" \
            || die "cannot create a venv with $base_python (Debian: apt-get install python3-venv)"
        reqs=$(mktemp)
        trap 'rm -f "$reqs"' EXIT
        cat >"$reqs" <<EOF
meson==$MESON_VERSION --hash=sha256:$MESON_SHA256
pycotap==$PYCOTAP_VERSION --hash=sha256:$PYCOTAP_SHA256
EOF
        log=$venv/pip-install.log
        "$py" -m pip install --quiet --disable-pip-version-check --no-input \
            --require-hashes --only-binary=:all: --no-deps -r "$reqs" >"$log" 2>&1 \
            || { cat "$log" >&2; rm -rf "$venv"; die "pip install of meson/pycotap failed"; }
        ready || { rm -rf "$venv"; die "venv $venv does not import meson $MESON_VERSION"; }
    fi
fi
echo "$py"
