"""The QEMU command lines under test ("rigs") and the I/O around them.

A Rig collects the chardev arguments of one configuration, the sinks the
benchmark checks byte for byte (a file, a pipe passed with -add-fd, or a
ringbuf read over QMP) and the TCP viewers it connects.  Standard library
only; tests/e2e/qemu.py starts QEMU.
"""

import base64
import os
import select
import threading
import time
from pathlib import Path

import qemu as q

SERIAL = "charserial0"


def connect(port, rcvbuf=None, timeout=30.0):
    """A TCP client (telnet viewer) of a socket chardev."""
    return q.connect_tcp(port, rcvbuf=rcvbuf, timeout=timeout, nodelay=True)


class Drain(threading.Thread):
    """Reads fds until stopped, like a viewer or a log collector would.

    It naps `nap` seconds between rounds so that a byte-at-a-time producer
    does not cost a wake-up per byte.  Bytes of fds added with keep=True
    are kept (a pipe log); others are counted and discarded.
    """

    def __init__(self, nap=0.002):
        super().__init__(daemon=True)
        self.nap = nap
        self.bufs = {}
        self.counts = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def add(self, fd, keep=False):
        os.set_blocking(fd, False)
        with self.lock:
            self.bufs[fd] = bytearray() if keep else None
            self.counts[fd] = 0
        return fd

    def kept(self, fd):
        with self.lock:
            return bytes(self.bufs[fd])

    def size(self, fd):
        with self.lock:
            return self.counts[fd]

    def _read_all(self, fd):
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            if not data:
                return False
            with self.lock:
                self.counts[fd] += len(data)
                if self.bufs[fd] is not None:
                    self.bufs[fd] += data

    def run(self):
        eof = set()
        while not self.stopping.is_set():
            with self.lock:
                fds = [fd for fd in self.bufs if fd not in eof]
            if not fds:
                time.sleep(0.01)
                continue
            ready, _, _ = select.select(fds, [], [], 0.05)
            for fd in ready:
                if not self._read_all(fd):
                    eof.add(fd)
            time.sleep(self.nap)

    def stop(self):
        self.stopping.set()
        if self.is_alive():
            self.join(5)


# ---- sinks the benchmark checks ------------------------------------------

class FileSink:
    poll = 0.005  # seconds between size checks
    windowed = False  # cheap to poll: time the whole stream

    def __init__(self, path):
        self.path = Path(path)

    def size(self, vm=None):
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def data(self, vm=None):
        return self.path.read_bytes() if self.path.exists() else b""


class PipeSink:
    """The read end of a pipe whose write end QEMU got with -add-fd."""

    poll = 0.005
    windowed = False

    def __init__(self, drain, rfd):
        self.drain, self.fd = drain, drain.add(rfd, keep=True)

    def size(self, vm=None):
        return self.drain.size(self.fd)

    def data(self, vm=None):
        return self.drain.kept(self.fd)


class RingbufSink:
    """A ringbuf chardev read (and thereby emptied) over QMP."""

    # Each check is QMP commands, and QEMU reads a QMP request one byte per
    # recvmsg() (some 400 system calls per check): poll rarely, and time the
    # stream between polls inside it rather than to its end.
    poll = 0.25
    windowed = True

    def __init__(self, chardev):
        self.chardev = chardev
        self.buf = bytearray()

    def _pull(self, vm):
        while True:
            got = vm.cmd("ringbuf-read", device=self.chardev, size=1 << 20, format="base64")
            if not got:
                return
            self.buf += base64.b64decode(got)

    def size(self, vm):
        self._pull(vm)
        return len(self.buf)

    def data(self, vm):
        self._pull(vm)
        return bytes(self.buf)


# ---- the rigs ------------------------------------------------------------

class Rig:
    """One configuration: QEMU arguments, the checked sinks, the viewers.

    sinks[0] is "the log": its size tells when the guest is done.  Viewer
    ports are telnet servers; viewers[0] is the one that types (the input).
    """

    def __init__(self, name, workdir, drain):
        self.name, self.dir, self.drain = name, Path(workdir), drain
        self.args, self.pass_fds, self.sinks, self.viewers = [], [], [], []
        self.fifo_fd = None  # input through a FIFO (plain file backend)
        self._close_after_start = []
        self._close_at_end = []
        self.multiplex = None  # id of the multiplex chardev, for its stats
        self.typist_leaves = False  # the typing viewer disconnects after the command
        self.binary = None  # another QEMU build (a "... v1" configuration), or the default
        self.console = "serial"  # the guest's console: "serial" (COM1) or "hvc" (virtconsole)

    def chardev(self, spec):
        self.args += ["-chardev", spec]

    def serial(self, chardev):
        """The guest's console on `chardev`: COM1, or a virtio console (hvc0)."""
        if self.console == "hvc":
            self.args += ["-device", "virtio-serial-pci",
                          "-device", "virtconsole,chardev=%s,id=vc0" % chardev]
        else:
            self.args += ["-serial", "chardev:%s" % chardev]

    def file_sink(self, cid, extra=""):
        path = self.dir / ("%s.log" % cid)
        self.sinks.append(FileSink(path))
        self.chardev("file,id=%s,path=%s%s" % (cid, path, extra))

    def pipe_sink(self, cid, fdset):
        rfd, wfd = os.pipe()
        self.sinks.append(PipeSink(self.drain, rfd))
        self.pass_fds.append(wfd)
        self._close_after_start.append(wfd)
        self._close_at_end.append(rfd)
        self.args += ["-add-fd", "set=%d,fd=%d" % (fdset, wfd)]
        self.chardev("file,id=%s,path=/dev/fdset/%d" % (cid, fdset))

    def viewer(self, cid, extra=""):
        port = q.free_port()
        self.viewers.append(port)
        self.chardev("socket,id=%s,host=127.0.0.1,port=%d,telnet=on,server=on,wait=off%s"
                     % (cid, port, extra))

    def input_fifo(self):
        path = self.dir / "input.fifo"
        os.mkfifo(path)
        self.fifo_fd = os.open(path, os.O_RDWR)
        self._close_at_end.append(self.fifo_fd)
        return path

    def started(self):
        for fd in self._close_after_start:
            os.close(fd)
        self._close_after_start = []

    def close(self):
        for fd in self._close_after_start + self._close_at_end:
            try:
                os.close(fd)
            except OSError:
                pass
        self._close_after_start = self._close_at_end = []


def multiplex(rig, backends, extra=""):
    """Every backend is `block` (lossless, as the benchmark checks every log and
    viewer byte for byte) unless `extra` gives its slot another policy."""
    slots = [chr(ord("A") + i) for i in range(len(backends))]
    spec = ",".join("mux%s=%s" % (s, b) for s, b in zip(slots, backends))
    spec += "".join(",mux%s-overflow=block" % s for s in slots
                    if "mux%s-overflow=" % s not in extra)
    rig.chardev("multiplex,id=%s,%s%s" % (SERIAL, spec, extra))
    rig.serial(SERIAL)
    rig.multiplex = SERIAL


def rig_file(rig):
    rig.file_sink("log", ",input-path=%s" % rig.input_fifo())
    rig.serial("log")


def rig_hub(rig):
    rig.file_sink("log")
    rig.viewer("tcp")
    rig.chardev("hub,id=%s,chardevs.0=log,chardevs.1=tcp" % SERIAL)
    rig.serial(SERIAL)


def rig_socket_logfile(rig):
    path = rig.dir / "logfile.log"
    rig.sinks.append(FileSink(path))
    rig.viewer("tcp", ",logfile=%s" % path)
    rig.serial("tcp")


def rig_socket(rig):
    rig.viewer("tcp")
    rig.serial("tcp")


def rig_multiplex(rig, extra=""):
    rig.file_sink("log")
    rig.viewer("tcp")
    multiplex(rig, ["log", "tcp"], extra)


def rig_multiplex_nocoalesce(rig):
    """Every byte written at once: what multiplex did before coalescing."""
    rig_multiplex(rig, ",coalesce-us=0")


def rig_multiplex_drop(rig, extra=""):
    rig_multiplex(rig, ",muxB-overflow=drop" + extra)


def rig_multiplex_drop_nocoalesce(rig):
    rig_multiplex_drop(rig, ",coalesce-us=0")


def rig_multiplex_fdset(rig):
    rig.pipe_sink("log", fdset=3)
    rig.viewer("tcp")
    multiplex(rig, ["log", "tcp"])


def rig_multiplex_8(rig):
    """A file log, 4 reading viewers (the first one types), 3 more files."""
    rig.file_sink("log")
    tcps = ["tcp%d" % i for i in range(4)]
    for cid in tcps:
        rig.viewer(cid)
    files = ["file%d" % i for i in range(3)]
    for cid in files:
        rig.file_sink(cid)
    multiplex(rig, ["log", *tcps, *files], ",input=muxB")


def rig_multiplex_ringbuf(rig):
    """Output only to memory: no system call per byte (the viewer leaves)."""
    rig.sinks.append(RingbufSink("log"))
    rig.chardev("ringbuf,id=log,size=%d" % (4 << 20))
    rig.viewer("tcp")
    rig.typist_leaves = True
    multiplex(rig, ["log", "tcp"])


RIGS = {
    "file": rig_file,
    "hub": rig_hub,
    "socket+logfile": rig_socket_logfile,
    "socket": rig_socket,
    "multiplex": rig_multiplex,
    "multiplex nocoalesce": rig_multiplex_nocoalesce,
    "multiplex drop": rig_multiplex_drop,
    "multiplex drop nocoalesce": rig_multiplex_drop_nocoalesce,
    "multiplex fdset-pipe": rig_multiplex_fdset,
    "multiplex x8": rig_multiplex_8,
    "multiplex ringbuf": rig_multiplex_ringbuf,
}


# A configuration name ending in BASELINE runs in the QEMU at $CMX_BENCH_BASELINE_QEMU
# (the previous version of the series), side by side with the current one.
BASELINE = " v1"


def baseline_qemu():
    return os.environ.get("CMX_BENCH_BASELINE_QEMU")


def build_rig(name, workdir, drain, console="serial"):
    rig = Rig(name, workdir, drain)
    rig.console = console
    if name.endswith(BASELINE):
        RIGS[name[:-len(BASELINE)]](rig)
        rig.binary = baseline_qemu()
    else:
        RIGS[name](rig)
    return rig


# ---- process helpers -----------------------------------------------------

def start_qemu(rig, guest, attempts=3):
    """Start QEMU for a rig; the binary is resolved anew each time (another
    process may replace the build between runs)."""
    for attempt in range(attempts):
        try:
            vm = q.Qemu(rig.args, guest=guest, pass_fds=rig.pass_fds, binary=rig.binary,
                        timeout=30)
            rig.started()
            return vm
        except (q.QemuError, OSError):
            if attempt == attempts - 1:
                raise
            time.sleep(2)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """(utime, stime) of a process, all threads, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def wait_size(sink, vm, size, timeout, poll=0.005):
    """Wait until a sink holds at least `size` bytes; return the time it did."""
    deadline = time.monotonic() + timeout
    while sink.size(vm) < size:
        if time.monotonic() > deadline:
            raise TimeoutError("%d of %d bytes after %.0f s" % (sink.size(vm), size, timeout))
        time.sleep(poll)
    return time.monotonic()
