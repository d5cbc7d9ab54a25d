#!/usr/bin/python3
"""Build (or reuse) the Linux test guest: a Debian cloud kernel and an initramfs
with busybox whose /init gives a shell on ttyS0 and one on hvc0.

    /usr/bin/python3 scripts/linux-guest/build.py        # last stdout line: the guest dir

The guest dir ($CMX_CACHE/linux-guest-<key>, default ~/.cache/chardev-multiplex)
holds `vmlinuz` and `initramfs.cpio`.  Boot it with, e.g.:

    qemu-system-x86_64 -machine pc -accel tcg -m 256 -nodefaults -display none \\
        -L /usr/share/seabios -kernel DIR/vmlinuz -initrd DIR/initramfs.cpio \\
        -append 'console=ttyS0' -serial stdio \\
        -device virtio-serial-pci -device virtconsole,chardev=vc0 -chardev pty,id=vc0

(a `-kernel` boot needs QEMU's linuxboot_dma.bin: scripts/qemu/build.sh puts it
next to the patched QEMU, see scripts/qemu/firmware.sh).

The packages are fetched with `apt-get download` at pinned versions and checked
against pinned sha256 sums (like the QEMU tarball, scripts/qemu/fetch.sh), then
unpacked with `dpkg-deb -x`.  The initramfs is an uncompressed cpio (newc)
written here, so no root and no cpio tool are needed, and it is reproducible
(fixed mtimes, owners and order).  Standard library only.
"""

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (package, version, sha256 of the .deb).  The kernel is the versioned image that
# linux-image-cloud-amd64 pointed to in bookworm main; busybox-static is bookworm's.
KERNEL = ("linux-image-6.1.0-50-cloud-amd64", "6.1.176-1",
          "efe19f605b6f54a8352e68d85a629abb2d30b72a085faef603a9152590baa791")
BUSYBOX = ("busybox-static", "1:1.35.0-4+deb12u1+b1",
           "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744")
KERNEL_RELEASE = "6.1.0-50-cloud-amd64"

# Modules /init loads (with what they depend on, in load order).  The cloud
# kernel builds virtio, virtio_pci and virtio_console as modules (=m in its config).
MODULES = ["virtio_pci", "virtio_console"]

# What the guest prints on ttyS0 (and hvc0) once its shell is there.
READY_TTYS0 = "CMX-LINUX READY ttyS0"
READY_HVC0 = "CMX-LINUX READY hvc0"

INIT = r"""#!/bin/busybox sh
# /init of the chardev-multiplex Linux test guest (scripts/linux-guest/build.py).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in @MODULES@; do
    insmod /lib/modules/$m.ko || echo "init: insmod $m failed"
done
# Kernel messages stay off the consoles from here on (the tests compare bytes).
dmesg -n 1
# A shell on each console (busybox ash with line editing: after each prompt it
# asks the terminal for the cursor position, ESC [ 6 n).  Each restarts when it exits.
shell() {
    tty=$1
    while :; do
        setsid sh -c "exec sh -i <$tty >$tty 2>&1"
        sleep 1
    done
}
export PS1='# '
# A virtio console (virtio device id 3) becomes hvc0 once virtio_console probes it.
if grep -qs '^0x0003$' /sys/bus/virtio/devices/*/device; then
    i=0
    while [ ! -e /dev/hvc0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
fi
if [ -e /dev/hvc0 ]; then
    echo "@READY_HVC0@" >/dev/hvc0
    shell /dev/hvc0 &
fi
echo "@READY_TTYS0@" >/dev/ttyS0
shell /dev/ttyS0
"""


def die(msg):
    sys.exit("linux-guest/build.py: error: " + msg)


def log(msg):
    print("linux-guest/build.py: " + msg, file=sys.stderr, flush=True)


def cache_dir():
    return Path(os.environ.get("CMX_CACHE", Path.home() / ".cache" / "chardev-multiplex"))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_deb(pkg, debs):
    """The .deb of (name, version, sha256) in debs/, fetched with apt-get
    download if missing; its sha256 is checked either way."""
    name, version, want = pkg
    dest = debs / ("%s_%s.deb" % (name, version.replace(":", "%3a")))
    if dest.exists():
        got = sha256(dest)
        if got == want:
            return dest
        log("%s %s: cached %s has sha256 %s, want %s: fetching again"
            % (name, version, dest, got, want))
        dest.unlink()
    debs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fetch.", dir=debs) as tmp:
        proc = subprocess.run(["apt-get", "download", "-q", "%s=%s" % (name, version)],
                              cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
        got_files = list(Path(tmp).glob("*.deb"))
        if proc.returncode or len(got_files) != 1:
            die("cannot fetch %s version %s (expected sha256 %s) with apt-get download "
                "(exit %d):\n%s\nIs the package list up to date (apt-get update, run by "
                "scripts/install-deps.sh)? A version that left the archive needs a new pin "
                "in %s." % (name, version, want, proc.returncode, proc.stdout.strip(),
                            Path(__file__).resolve()))
        got = sha256(got_files[0])
        if got != want:
            die("sha256 mismatch for %s version %s (%s): got %s, expected %s"
                % (name, version, got_files[0].name, got, want))
        shutil.move(str(got_files[0]), dest)
    return dest


def extract(deb, dest):
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)


# ---- kernel modules --------------------------------------------------------

def modinfo(path):
    """{key: value} of a .ko's .modinfo section (a minimal ELF64 reader)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        die("%s is not a little-endian ELF64 object" % path)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i):
        # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size
        name, _, _, _, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    for i in range(shnum):
        name, off, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".modinfo":
            out = {}
            for item in data[off:off + size].split(b"\0"):
                key, sep, value = item.decode(errors="replace").partition("=")
                if sep:
                    out.setdefault(key, value)
            return out
    return {}


def module_order(moddir, wanted):
    """[(name, path)] of the wanted modules and their dependencies, each after
    what it depends on."""
    paths = {}
    for p in moddir.rglob("*.ko*"):
        paths[p.name.split(".ko")[0].replace("-", "_")] = p
    order, seen = [], set()

    def visit(name):
        name = name.replace("-", "_")
        if name in seen:
            return
        seen.add(name)
        if name not in paths:
            die("kernel module %s not found under %s (is it built in? then drop it "
                "from MODULES)" % (name, moddir))
        if paths[name].suffix != ".ko":
            die("%s is compressed: decompress it here before busybox insmod" % paths[name])
        for dep in filter(None, modinfo(paths[name]).get("depends", "").split(",")):
            visit(dep)
        order.append((name, paths[name]))

    for m in wanted:
        visit(m)
    return order


# ---- cpio (newc) -----------------------------------------------------------

class Cpio:
    """An uncompressed newc archive, as the kernel's initramfs unpacker reads it."""

    def __init__(self):
        self.out = bytearray()
        self.ino = 1

    def _entry(self, name, mode, data=b"", nlink=1):
        name_b = name.encode() + b"\0"
        hdr = b"070701" + b"".join(b"%08X" % v for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
        self.ino += 1
        self.out += hdr + name_b
        self.out += b"\0" * (-len(self.out) % 4)
        self.out += data
        self.out += b"\0" * (-len(self.out) % 4)

    def dir(self, name):
        self._entry(name, 0o040755, nlink=2)

    def file(self, name, data, mode=0o644):
        self._entry(name, 0o100000 | mode, data)

    def finish(self):
        self._entry("TRAILER!!!", 0)
        self.out += b"\0" * (-len(self.out) % 512)
        return bytes(self.out)


def initramfs(busybox, modules):
    c = Cpio()
    for d in ("bin", "etc", "dev", "proc", "sys", "tmp", "lib", "lib/modules", "root"):
        c.dir(d)
    c.file("bin/busybox", Path(busybox).read_bytes(), 0o755)
    for name, path in modules:
        c.file("lib/modules/%s.ko" % name, path.read_bytes())
    init = (INIT.replace("@MODULES@", " ".join(n for n, _ in modules))
            .replace("@READY_TTYS0@", READY_TTYS0).replace("@READY_HVC0@", READY_HVC0))
    c.file("init", init.encode(), 0o755)
    return c.finish()


# ---- main ------------------------------------------------------------------

def key():
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def build():
    cache = cache_dir()
    out = cache / ("linux-guest-" + key())
    if (out / ".complete").exists():
        return out
    debs = cache / "debs"
    kdeb, bdeb = fetch_deb(KERNEL, debs), fetch_deb(BUSYBOX, debs)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="linux-guest.", dir=cache) as tmp:
        tmp = Path(tmp)
        log("unpacking %s and %s" % (kdeb.name, bdeb.name))
        extract(kdeb, tmp / "k")
        extract(bdeb, tmp / "b")
        vmlinuz = tmp / "k" / "boot" / ("vmlinuz-" + KERNEL_RELEASE)
        if not vmlinuz.exists():
            die("%s has no boot/vmlinuz-%s" % (kdeb.name, KERNEL_RELEASE))
        modules = module_order(tmp / "k" / "lib" / "modules" / KERNEL_RELEASE, MODULES)
        log("modules: %s" % " ".join(n for n, _ in modules))
        stage = tmp / "out"
        stage.mkdir()
        shutil.copyfile(vmlinuz, stage / "vmlinuz")
        (stage / "initramfs.cpio").write_bytes(initramfs(tmp / "b" / "bin" / "busybox",
                                                         modules))
        (stage / "config").write_bytes(
            (tmp / "k" / "boot" / ("config-" + KERNEL_RELEASE)).read_bytes())
        (stage / ".complete").touch()
        shutil.rmtree(out, ignore_errors=True)
        os.rename(stage, out)
    for old in cache.glob("linux-guest-*"):
        if old != out and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return out


def main():
    out = build()
    print(out)


if __name__ == "__main__":
    main()
