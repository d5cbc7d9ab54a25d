#!/usr/bin/env bash
# Installs everything chardev-multiplex needs on a fresh Debian 12 (bookworm) machine, and
# prints the meson to use as its last line. Idempotent: safe to run again. Needs root (or sudo)
# for apt-get; leaves the machine's apt sources alone (QEMU's source, the firmware blobs and
# the pinned Python wheels come through the scripts in scripts/qemu/, on private apt lists and
# a venv in the cache).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

# Debian packages: compilers and libraries for QEMU, bindgen and libclang for QEMU's Rust,
# dtc (configure of the +ds tree wants it), valgrind and clang's sanitizer runtime for the C
# tests, pytest and matplotlib for the end-to-end tests and the benchmark, conserver for the
# end-to-end tests that compare it (tests/e2e/test_conserver.py runs an instance of its own; on
# a systemd machine the package also starts Debian's conserver service, on port 3109).
pkgs=(build-essential pkg-config ninja-build libglib2.0-dev zlib1g-dev python3-venv
      python3-matplotlib python3-pytest binutils bzip2 xz-utils seabios valgrind perl git
      dpkg-dev clang llvm libclang-rt-14-dev libclang-dev bindgen device-tree-compiler curl
      patch conserver-server conserver-client)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}" >&2
    stamp=/var/lib/apt/cmx-updated
    if [ ! -e "$stamp" ] || [ -n "$(find /var/lib/apt/lists -maxdepth 0 -mmin +1440)" ]; then
        $SUDO apt-get update -qq >/dev/null
        $SUDO touch "$stamp"
    fi
    $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Meson 1.9 (QEMU 10.2 wants it with Rust on; Debian 12 has 1.7 at best) and pycotap, pinned
# by sha256 in a venv outside the clone.
python=$("$here/qemu/meson-venv.sh" | tail -n1)

# The pinned cbindgen that generates include/chardev_multiplex.h (tests/header.rs checks it).
CBINDGEN_VERSION=0.29.4
if ! cbindgen --version 2>/dev/null | grep -q "$CBINDGEN_VERSION"; then
    echo "install-deps: cargo install cbindgen $CBINDGEN_VERSION" >&2
    cargo install --locked --quiet cbindgen --version "$CBINDGEN_VERSION"
fi
echo "$(dirname "$python")/meson"
