"""Helpers for booting the Linux test guest (scripts/linux-guest/build.py) in
the patched QEMU: its command line, a thread that collects what a console
sends, and typing shell commands whose output is framed by markers.

The guest's /init prints READY_TTYS0 on ttyS0 and READY_HVC0 on hvc0, then
runs busybox ash on each.  The consoles keep the tty defaults (echo, ONLCR:
the guest's "\\n" arrives as "\\r\\n"), and ash prints "ESC [ 6 n" after each
prompt (line editing asks the terminal for the cursor), so tests compare the
bytes between two markers that a command prints, and whole streams (log
against viewer) with each other.  Standard library only.
"""

import os
import select
import socket
import subprocess
import threading
import time
from pathlib import Path

import qemu as q

BUILD_SCRIPT = q.REPO / "scripts" / "linux-guest" / "build.py"
READY_TTYS0 = b"CMX-LINUX READY ttyS0\r\n"
READY_HVC0 = b"CMX-LINUX READY hvc0\r\n"
PROMPT = b"# "
# Lines the marker commands print; typed as B''EGIN so that the echo of the
# command line never contains them.
BEGIN, END = b"CMX-BEGIN", b"CMX-END"


def guest_dir():
    """Build (or reuse from the cache) the kernel and initramfs; their directory."""
    proc = subprocess.run(["/usr/bin/python3", str(BUILD_SCRIPT)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        raise q.QemuError("scripts/linux-guest/build.py failed:\n" + proc.stderr)
    return Path(proc.stdout.strip().splitlines()[-1])


def check_firmware(binary=None):
    """A -kernel boot needs linuxboot_dma.bin where QEMU looks for it (the
    build's data directory, put there by scripts/qemu/build.sh): without it
    SeaBIOS boots nothing and the guest hangs without a word."""
    binary = binary or q.qemu_binary()
    dirs = subprocess.run([str(binary), "-L", "help"], stdout=subprocess.PIPE,
                          text=True).stdout.split("\n")
    if not any(d and (Path(d) / "linuxboot_dma.bin").exists() for d in dirs):
        raise q.QemuError("no linuxboot_dma.bin in %s's data directories %s: run "
                          "scripts/qemu/build.sh, which installs the option ROMs of "
                          "qemu-system-data (scripts/qemu/firmware.sh)" % (binary, dirs))


def boot_args(gdir, append="console=ttyS0", memory=256, virtconsole=None):
    """-kernel/-initrd arguments; virtconsole: chardev id of an hvc0 console."""
    args = ["-m", str(memory), "-kernel", str(Path(gdir) / "vmlinuz"),
            "-initrd", str(Path(gdir) / "initramfs.cpio"), "-append", append]
    if virtconsole:
        args += ["-device", "virtio-serial-pci",
                 "-device", "virtconsole,chardev=%s,id=vc0" % virtconsole]
    return args


def crlf(data):
    """What a console shows for `data` written by the guest with ONLCR."""
    return data.replace(b"\n", b"\r\n")


def seq(first, last):
    """What busybox `seq FIRST LAST` prints."""
    return b"".join(b"%d\n" % i for i in range(first, last + 1))


def framed(command, raw=False):
    """The line to type: `command` between the two marker lines.  raw: the
    tty's output processing is off while it runs (stty -opost: the guest's
    bytes reach the host unchanged, and a write(2) is not split at each
    newline), so the markers end in a bare "\\n"."""
    b, e = BEGIN.decode(), END.decode()
    line = "echo %s''%s; %s; echo %s''%s" % (b[:4], b[4:], command, e[:4], e[4:])
    if raw:
        line = "stty -opost; %s; stty opost" % line
    return line.encode() + b"\n"


def body(data, raw=False):
    """The bytes between the marker lines of a framed() command's output
    (the first complete pair in data), or None if END has not arrived."""
    nl = b"\n" if raw else b"\r\n"
    i = data.find(BEGIN + nl)
    if i < 0:
        return None
    start = i + len(BEGIN + nl)
    j = data.find(END + nl, start)
    if j < 0:
        return None
    return data[start:j]


class Collector(threading.Thread):
    """Reads a socket or fd into memory all the time (a log collector like
    virtlogd, or a viewer that keeps up); wait() blocks until the data
    satisfy a condition."""

    def __init__(self, src):
        super().__init__(daemon=True)
        self.src = src
        self.buf = bytearray()
        self.eof = False
        self.cond = threading.Condition()
        self.stopping = False
        self.start()

    def _read(self):
        if isinstance(self.src, socket.socket):
            return self.src.recv(1 << 16)
        return os.read(self.src, 1 << 16)

    def run(self):
        fd = self.src if isinstance(self.src, int) else self.src.fileno()
        while not self.stopping:
            r, _, _ = select.select([fd], [], [], 0.1)
            if not r:
                continue
            try:
                data = self._read()
            except OSError:
                data = b""
            with self.cond:
                self.buf += data
                self.eof = not data
                self.cond.notify_all()
            if not data:
                return

    def data(self):
        with self.cond:
            return bytes(self.buf)

    def __len__(self):
        with self.cond:
            return len(self.buf)

    def wait(self, pred, timeout, what="condition"):
        """Wait until pred(data) is true (data: everything so far); returns
        pred's value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = pred(bytes(self.buf))
                if got:
                    return got
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise TimeoutError("%s waiting for %s: %d bytes, tail %r" % (
                        "EOF" if self.eof else "timeout", what, len(self.buf),
                        bytes(self.buf[-200:])))
                self.cond.wait(min(left, 1.0))

    def wait_for(self, pattern, timeout, start=0):
        """Wait until `pattern` occurs at or after offset `start`; returns the
        offset just past it."""
        def pred(d):
            i = d.find(pattern, start)
            return i + len(pattern) if i >= 0 else None
        return self.wait(pred, timeout, repr(pattern))

    def stop(self):
        self.stopping = True
        if self.is_alive():
            self.join(5)


def wait_prompt(col, timeout, start=0):
    """Wait for a shell prompt after offset `start` (the prompt and the
    cursor query, ESC [ 6 n); the offset past it."""
    return col.wait_for(PROMPT + b"\x1b[6n", timeout, start)


def run_framed(send, col, command, timeout, raw=False):
    """Type a framed command (send: bytes -> None) and wait until its END
    marker and the next prompt reached collector col; returns the body."""
    start = len(col)
    send(framed(command, raw))
    col.wait(lambda d: body(d[start:], raw) is not None, timeout,
             "%s of %r" % (END, command))
    wait_prompt(col, timeout, start)
    return body(col.data()[start:], raw)
