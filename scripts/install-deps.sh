#!/usr/bin/env bash
# Installs everything chardev-multiplex needs on a fresh Debian 12 (bookworm) machine.
# Idempotent: safe to run again. Needs root (or sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

# bookworm-backports (binary and source): QEMU 10.0.2 source, meson >= 1.5, pycotap.
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    $SUDO tee /etc/apt/sources.list.d/cmx-backports.sources >/dev/null <<'SRC'
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
stamp=/var/lib/apt/cmx-updated
if [ ! -e "$stamp" ] || [ -n "$(find /etc/apt/sources.list.d -newer "$stamp" 2>/dev/null)" ]; then
    $SUDO apt-get update -qq
    $SUDO touch "$stamp"
fi

pkgs=(build-essential pkg-config ninja-build libglib2.0-dev zlib1g-dev python3-venv
      python3-matplotlib python3-pytest binutils bzip2 xz-utils seabios valgrind perl git
      dpkg-dev clang llvm libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] || $SUDO apt-get install -y -qq "${missing[@]}"
# meson >= 1.5 and pycotap come from bookworm-backports.
if ! dpkg --compare-versions "$(dpkg-query -W -f='${Version}' meson 2>/dev/null || echo 0)" ge 1.5; then
    $SUDO apt-get install -y -qq -t bookworm-backports meson python3-pycotap
fi
dpkg-query -W -f='${Status}' python3-pycotap 2>/dev/null | grep -q 'install ok installed' \
    || $SUDO apt-get install -y -qq -t bookworm-backports python3-pycotap

# Rust side: the pinned cbindgen used to regenerate include/chardev_multiplex.h.
CBINDGEN_VERSION=0.29.4
if ! cbindgen --version 2>/dev/null | grep -q "$CBINDGEN_VERSION"; then
    cargo install --locked --quiet cbindgen --version "$CBINDGEN_VERSION"
fi
