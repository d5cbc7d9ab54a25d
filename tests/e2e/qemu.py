"""Helpers for end-to-end tests against the QEMU built by scripts/qemu/build.sh.

Standard library only.  Typical use::

    img = build_guest(tmpdir)
    with Qemu(["-chardev", "socket,id=s0,fd=%d" % fd, "-serial", "chardev:s0"],
              guest=img, pass_fds=[fd]) as vm:
        vm.cmd("query-chardev")
"""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GUEST_DIR = HERE / "guest"

BANNER = b"CMX-GUEST READY\r\n"
LINES_S = 0x1000  # 'S' command
LINES_L = 0x40000  # 'L' command
LINE_LEN = len(b"SEQ 00000000\n")

# Machine options shared by every test: no default devices, Debian's seabios,
# no network, no kvmvapic option ROM (the +ds build has no pc-bios blobs).
BASE_ARGS = [
    "-nodefaults", "-display", "none", "-machine", "pc", "-accel", "tcg",
    "-L", "/usr/share/seabios", "-net", "none",
    "-global", "apic-common.vapic=off",
]


class QemuError(Exception):
    pass


class QmpError(QemuError):
    def __init__(self, cmd, error):
        super().__init__("QMP %s failed: %s" % (cmd, error))
        self.error = error


def qemu_binary():
    """$CMX_QEMU, else $CMX_CACHE/current/qemu-system-x86_64."""
    if os.environ.get("CMX_QEMU"):
        path = Path(os.environ["CMX_QEMU"])
    else:
        cache = Path(os.environ.get("CMX_CACHE",
                                    Path.home() / ".cache" / "chardev-multiplex"))
        path = cache / "current-rust-on" / "qemu-system-x86_64"
    if not os.access(path, os.X_OK):
        raise QemuError("no QEMU at %s: run scripts/qemu/build.sh (or set CMX_QEMU)" % path)
    return path


def build_guest(outdir):
    """Assemble the test guest into outdir; return the path of guest.img."""
    outdir = Path(outdir)
    subprocess.run(["make", "-s", "-C", str(GUEST_DIR), "O=%s" % outdir.resolve()],
                   check=True)
    return outdir / "guest.img"


# ---- expected guest output ------------------------------------------------

def expected_stream(lines):
    """The bytes the guest emits for a stream of `lines` lines (without the echo)."""
    return b"".join(b"SEQ %08X\n" % i for i in range(lines)) + b"END\n"


def stream_command(lines):
    """The command bytes that request `lines` lines."""
    if not 0 <= lines <= 0xFFFFFFFF:
        raise ValueError(lines)
    return {LINES_S: b"S", LINES_L: b"L"}.get(lines, b"N%08X" % lines)


def expected_reply(lines):
    """Echo of stream_command(lines) followed by the stream."""
    return stream_command(lines) + expected_stream(lines)


def first_difference(got, want):
    """Human-readable description of where two byte strings first differ."""
    n = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
             min(len(got), len(want)))
    if n == len(got) == len(want):
        return "identical"
    return "differ at byte %d (len got=%d want=%d): got %r want %r" % (
        n, len(got), len(want), got[max(0, n - 20):n + 20], want[max(0, n - 20):n + 20])


# ---- reading with timeouts ------------------------------------------------

class Reader:
    """Buffered reader over a socket, a pipe/file object or a raw fd.

    read_until() returns the data up to and including the match; bytes read
    past it stay buffered for the next call.
    """

    def __init__(self, src):
        self.src = src
        self.buf = bytearray()
        self.eof = False

    def _fileno(self):
        return self.src if isinstance(self.src, int) else self.src.fileno()

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self._fileno()], [], [], left)
        if not r:
            return False
        if isinstance(self.src, socket.socket):
            data = self.src.recv(1 << 16)
        else:
            data = os.read(self._fileno(), 1 << 16)
        if not data:
            self.eof = True
        self.buf += data
        return True

    def read_until(self, pattern, timeout=10.0):
        """pattern: bytes or compiled bytes regex."""
        deadline = time.monotonic() + timeout
        while True:
            if isinstance(pattern, bytes):
                i = self.buf.find(pattern)
                end = -1 if i < 0 else i + len(pattern)
            else:
                m = pattern.search(self.buf)
                end = -1 if m is None else m.end()
            if end >= 0:
                out = bytes(self.buf[:end])
                del self.buf[:end]
                return out
            if self.eof or not self._fill(deadline):
                raise TimeoutError("%s waiting for %r; got %d bytes, tail %r" % (
                    "EOF" if self.eof else "timeout", pattern, len(self.buf),
                    bytes(self.buf[-80:])))

    def read_exact(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            if self.eof or not self._fill(deadline):
                raise TimeoutError("%s after %d of %d bytes" % (
                    "EOF" if self.eof else "timeout", len(self.buf), n))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def read_until(src, pattern, timeout=10.0):
    """One-shot read_until on a socket/pipe/fd (bytes after the match are lost)."""
    return Reader(src).read_until(pattern, timeout)


def wait_file(path, size=None, pattern=None, timeout=10.0):
    """Poll a file (e.g. a -serial file: target) until it is at least `size`
    bytes long or contains `pattern`; return its contents."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            data = b""
        if size is not None and len(data) >= size:
            return data
        if pattern is not None and (pattern in data if isinstance(pattern, bytes)
                                    else pattern.search(data)):
            return data
        if time.monotonic() > deadline:
            raise TimeoutError("timeout on %s: %d bytes, tail %r" % (path, len(data), data[-80:]))
        time.sleep(0.02)


# ---- QEMU process + QMP ---------------------------------------------------

class Qemu:
    """A running qemu-system-x86_64 with a QMP connection.

    args: extra command-line arguments (appended after BASE_ARGS and the guest
    drive); pass_fds: fds inherited by QEMU under the same numbers.
    """

    def __init__(self, args=(), guest=None, pass_fds=(), binary=None, timeout=10.0):
        self.binary = Path(binary) if binary else qemu_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="cmx-qemu-"))  # short: sun_path limit
        self.qmp_path = self.dir / "qmp.sock"
        self.log_path = self.dir / "qemu.log"
        self.argv = [str(self.binary), *BASE_ARGS]
        if guest is not None:
            self.argv += ["-drive", "file=%s,format=raw,if=floppy,readonly=on" % guest]
        self.argv += ["-qmp", "unix:%s,server=on,wait=off" % self.qmp_path, *args]
        self.events = []
        self._qmp = None
        self._final_log = None
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, pass_fds=tuple(pass_fds))
        try:
            self._connect(timeout)
        except BaseException:
            self.kill()
            raise

    def _connect(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise QemuError("QEMU exited with %s:\n%s" % (self.proc.returncode, self.log()))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(self.qmp_path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.monotonic() > deadline:
                    raise QemuError("QMP socket did not appear:\n" + self.log())
                time.sleep(0.02)
        self._qmp = s
        self._qmp_reader = Reader(s)
        greeting = self._recv(timeout)
        if "QMP" not in greeting:
            raise QemuError("bad QMP greeting %r" % greeting)
        self.cmd("qmp_capabilities")

    def _recv(self, timeout):
        line = self._qmp_reader.read_until(b"\n", timeout)
        return json.loads(line)

    def cmd_raw(self, name, arguments=None, timeout=10.0):
        """Send a QMP command; return the whole response (dict with return or error)."""
        msg = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self._qmp.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            resp = self._recv(timeout)
            if "event" in resp:
                self.events.append(resp)
                continue
            return resp

    def cmd(self, name, arguments=None, timeout=10.0, **kwargs):
        """Send a QMP command; return its 'return' value or raise QmpError.
        Keyword names are sent with '_' replaced by '-' (command_line ->
        command-line); pass `arguments` as a dict to send names verbatim
        (also for arguments called `arguments` or `timeout`)."""
        args = dict(arguments or {})
        args.update({k.replace("_", "-"): v for k, v in kwargs.items()})
        resp = self.cmd_raw(name, args, timeout)
        if "error" in resp:
            raise QmpError(name, resp["error"])
        return resp["return"]

    def hmp(self, command_line):
        return self.cmd("human-monitor-command", command_line=command_line)

    def get_event(self, name, timeout=10.0):
        """Return (and consume) the first QMP event called `name`."""
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no QMP event %s" % name)
            self.events.append(self._recv(left))

    def log(self):
        """QEMU's stdout+stderr so far (still available after kill())."""
        if self._final_log is not None:
            return self._final_log
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self, timeout=5.0):
        """Ask QEMU to quit over QMP, then SIGTERM, then SIGKILL.  Returns the exit code."""
        if self.proc.poll() is None and self._qmp is not None:
            try:
                self._qmp.settimeout(timeout)
                self.cmd_raw("quit", timeout=timeout)
            except (OSError, ValueError, TimeoutError):
                pass
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        if self._qmp is not None:
            self._qmp.close()
            self._qmp = None
        self._log.close()
        self._final_log = self.log()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


# ---- one-shot runs and process facts ---------------------------------------

def run_to_exit(args, pass_fds=(), timeout=10.0, binary=None):
    """Run QEMU (BASE_ARGS + args, stdin from /dev/null) until it exits, for
    command lines that must fail; returns the CompletedProcess (stdout and
    stderr as text).  A QEMU still running after `timeout` is killed and
    QemuError raised."""
    argv = [str(binary or qemu_binary()), *BASE_ARGS, *args]
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, pass_fds=tuple(pass_fds), timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise QemuError("QEMU did not exit within %s s: %s\nstderr: %s" % (
            timeout, " ".join(argv), e.stderr)) from None


def rss_kib(pid):
    """Resident set size (VmRSS) of process `pid` in KiB."""
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise QemuError("no VmRSS for pid %d" % pid)


# ---- TCP viewers ----------------------------------------------------------

def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_tcp(port, rcvbuf=None, timeout=10.0, nodelay=False):
    """A TCP client (a viewer) of a socket chardev, retried until QEMU listens."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if nodelay:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            s.connect(("127.0.0.1", port))
            return s
        except ConnectionRefusedError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
