"""Faults while the test guest streams through `-chardev multiplex`.

(a) a TCP viewer that disconnects mid-stream and reconnects 100 times (FIN,
    RST, without reading); (b) the log pipe's reader process exits mid-stream
    (EPIPE); (c) a `file` backend on a full filesystem (ENOSPC, a 64 KiB
    tmpfs the test mounts; and HMP output cut short by a full 4 KiB tmpfs);
    (d) QEMU's memory and fds over a sustained run with reconnecting and
    stalling viewers (CMX_SOAK_SECONDS, default 60; e.g. 600 by hand).

In every case the lossless (block) log gets the byte-exact stream, QEMU keeps
running, and the counters add up (offered == delivered + queued + dropped).
"""

import contextlib
import errno
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

import qemu as q

TELNET_INIT = b"\xff\xfb\x01\xff\xfb\x03\xff\xfb\x00\xff\xfd\x00"  # WILL ECHO, SGA, BINARY; DO BINARY


def multiplex_stats(vm, chardev="serial0"):
    info = vm.cmd("x-query-chardev-multiplex", id=chardev)
    return {b["chardev"]: b for b in info["backends"]}


def assert_same(what, got, want):
    """Byte equality without pytest's (very slow) diff of large values."""
    same = bytes(got) == bytes(want)
    assert same, "%s: %s" % (what, q.first_difference(bytes(got), bytes(want)))


def assert_balanced(st):
    assert st["offered"] == st["delivered"] + st["queued"] + st["dropped"], st


def assert_running(vm):
    assert vm.proc.poll() is None, "QEMU exited with %s:\n%s" % (vm.proc.returncode, vm.log())
    assert vm.cmd("query-status")["status"] == "running"


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def settle(get, want, timeout=5.0):
    """get() once it returns `want` (QEMU may still be noticing that a
    viewer went away), else its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if value == want or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


class Log:
    """The guest's log side: our end of a socketpair that QEMU has as a
    `pipe` chardev on an fd set; it is also the multiplex's input, so it
    drives the guest and records every byte for the final comparison."""

    def __init__(self, sock):
        self.sock = sock
        self.reader = q.Reader(sock)
        self.want = bytearray()
        self.got = bytearray()

    def expect_banner(self):
        self.want += q.BANNER
        self.got += self.reader.read_exact(len(q.BANNER), timeout=30)

    def stream(self, lines, timeout=60):
        """Ask for `lines` lines; read the whole reply."""
        want = q.expected_reply(lines)
        self.sock.sendall(q.stream_command(lines))
        self.want += want
        self.got += self.reader.read_exact(len(want), timeout=timeout)

    def assert_exact(self):
        assert_same("log", self.got, self.want)


def console_args(log_fd, port, viewer_opts="muxB-overflow=drop", telnet=True, extra=()):
    """The console: muxA the log (fd set 2, input; block, so that it is
    lossless however late the test reads it), muxB a TCP viewer; `extra`
    chardevs (for muxC...) come before the multiplex."""
    return ["-add-fd", "set=2,fd=%d" % log_fd,
            "-chardev", "pipe,id=log,path=/dev/fdset/2",
            "-chardev", "socket,id=tcp,host=127.0.0.1,port=%d,server=on,wait=off%s" % (
                port, ",telnet=on" if telnet else ""),
            *extra,
            "-chardev", "multiplex,id=serial0,muxA=log,muxA-overflow=block,muxB=tcp,input=muxA,"
            + viewer_opts,
            "-serial", "chardev:serial0"]


class Flapper(threading.Thread):
    """A viewer (TCP or unix socket) that connects and goes away again,
    `cycles` times or until stopped, cycling through ways of leaving: after
    reading a little (FIN), at once without reading, with a reset (RST), and
    (if `stall`) after not reading for `stall` seconds with a tiny receive
    buffer."""

    def __init__(self, port, cycles=None, stall=0.0):
        """port: a TCP port on 127.0.0.1, or the path of a unix socket."""
        super().__init__(daemon=True)
        self.port, self.cycles, self.stall = port, cycles, stall
        self.stop = threading.Event()
        self.connections = 0
        self.heads = []  # the first bytes of what each connection received
        self.error = None

    def _one(self, k):
        modes = 4 if self.stall else 3
        mode = k % modes
        unix = isinstance(self.port, str)
        s = socket.socket(socket.AF_UNIX if unix else socket.AF_INET)
        if mode == 3:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        deadline = time.monotonic() + 10
        while True:
            try:
                s.connect(self.port if unix else ("127.0.0.1", self.port))
                break
            except BlockingIOError:
                # A unix socket's backlog (QEMU listens with 1) is still
                # full with the previous connection: try again.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.connections += 1
        data = b""
        try:
            if mode in (0, 2):
                # Read for a moment: the telnet greeting, replay, live output.
                deadline = time.monotonic() + 0.03
                s.settimeout(0.01)
                while time.monotonic() < deadline:
                    try:
                        chunk = s.recv(65536)
                    except socket.timeout:
                        continue
                    if not chunk:
                        break
                    data += chunk
            elif mode == 3:
                time.sleep(self.stall)  # the socket, then the viewer's queue fills
            if mode == 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            s.close()
        if data.startswith(b"\xff"):
            assert data.startswith(TELNET_INIT), data[:16]
            data = data[len(TELNET_INIT):]
        if data:
            self.heads.append(data[:64])

    def run(self):
        try:
            k = 0
            while not self.stop.is_set() and (self.cycles is None or k < self.cycles):
                self._one(k)
                k += 1
        except BaseException as e:  # reported by the test
            self.error = e

    def finish(self, timeout=30):
        self.stop.set()
        self.join(timeout)
        assert not self.is_alive(), "the viewer thread hangs"
        if self.error:
            raise self.error


# ---- (a) a viewer that keeps reconnecting ------------------------------------

def test_viewer_reconnecting_100_times_mid_stream_keeps_the_log_exact(guest):
    log_end, qemu_end = socket.socketpair()
    port = q.free_port()
    args = console_args(qemu_end.fileno(), port, "muxB-overflow=drop,replay-size=4k")
    start = time.monotonic()
    with log_end, q.Qemu(args, guest=guest, pass_fds=[qemu_end.fileno()]) as vm:
        qemu_end.close()
        log = Log(log_end)
        log.expect_banner()
        viewer = Flapper(port, cycles=100)
        viewer.start()
        streams = 0
        # Stream while the viewer comes and goes; then once more without it.
        while viewer.is_alive() and time.monotonic() - start < 90:
            log.stream(5000)
            streams += 1
        viewer.finish()
        log.stream(1000)
        log.assert_exact()
        assert viewer.connections == 100
        # What the viewers saw is the console's output (no garbage, no reordering
        # at the start of a connection: the replay, then live output).
        text = bytes(log.got)
        bad = [h for h in viewer.heads if h not in text]
        assert not bad, bad[:3]
        assert len(viewer.heads) >= 30, "hardly any connection got output"

        settle(lambda: multiplex_stats(vm)["tcp"]["state"], "closed")
        stats = multiplex_stats(vm)
        st_log, st_view = stats["log"], stats["tcp"]
        for st in stats.values():
            assert_balanced(st)
        assert (st_log["state"], st_log["dropped"], st_log["write-errors"]) == ("open", 0, 0)
        assert st_log["delivered"] == len(log.want)
        assert st_view["state"] == "closed" and st_view["queued"] == 0, st_view
        assert st_view["replayed"] > 0, st_view
        assert_running(vm)
        print("(a) 100 reconnects during %d streams (%d bytes) in %.1f s; viewer %s" % (
            streams, len(log.want), time.monotonic() - start, st_view))


# ---- (b) the log pipe's reader dies ------------------------------------------

@pytest.fixture(scope="module")
def dead_log_reader(guest):
    """The log is a pipe (a `file` chardev on an fd set holding its write
    end) whose reader, `head -c 20000`, exits in the middle of a stream; the
    viewer asks for the stream and reads it."""
    rd, wr = os.pipe()
    reader = subprocess.Popen(["head", "-c", "20000"], stdin=rd, stdout=subprocess.PIPE)
    os.close(rd)
    port = q.free_port()
    args = ["-add-fd", "set=2,fd=%d" % wr,
            "-chardev", "file,id=log,path=/dev/fdset/2",
            "-chardev", "socket,id=tcp,host=127.0.0.1,port=%d,server=on,wait=off" % port,
            "-chardev", "multiplex,id=serial0,muxA=log,muxB=tcp",
            "-serial", "chardev:serial0"]
    facts = {}
    try:
        with q.Qemu(args, guest=guest, pass_fds=[wr]) as vm:
            os.close(wr)
            wr = -1
            with socket.create_connection(("127.0.0.1", port), timeout=10) as v:
                view = q.Reader(v)
                lines = 20000  # 260 KB: the reader is gone long before the end
                cmd = q.stream_command(lines)
                v.sendall(cmd)
                facts["want"] = q.expected_reply(lines)
                # The banner comes first if the viewer was there before it.
                head = view.read_until(cmd, timeout=30)
                assert head in (cmd, q.BANNER + cmd), head
                facts["viewer"] = cmd + view.read_exact(len(facts["want"]) - len(cmd),
                                                        timeout=60)
                facts["reader_out"] = reader.communicate(timeout=30)[0]
                facts["reader_rc"] = reader.returncode
                # The viewer goes on working after the failure.
                v.sendall(q.stream_command(100))
                facts["want2"] = q.expected_reply(100)
                facts["viewer2"] = view.read_exact(len(facts["want2"]), timeout=60)
                facts["stats"] = multiplex_stats(vm)
            facts["alive"] = vm.proc.poll() is None
            facts["status"] = vm.cmd("query-status")["status"]
            facts["log"] = vm.log()
    finally:
        if wr >= 0:
            os.close(wr)
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    return facts


def test_log_reader_dying_mid_stream_fails_only_the_log(dead_log_reader):
    f = dead_log_reader
    assert f["alive"] and f["status"] == "running", f["log"]
    assert_same("viewer", f["viewer"], f["want"])
    assert_same("viewer after the failure", f["viewer2"], f["want2"])
    assert f["reader_rc"] == 0
    assert_same("what the log's reader read", f["reader_out"], (q.BANNER + f["want"])[:20000])
    st = f["stats"]["log"]
    print("(b) log after its reader died: %s" % st)
    assert st["state"] == "failed", st
    assert st["write-errors"] == 1, st
    assert st["last-errno"] != 0, st
    assert st["queued"] == 0 and st["delivered"] >= 20000, st
    assert_balanced(st)
    view = f["stats"]["tcp"]
    assert (view["state"], view["dropped"], view["write-errors"]) == ("open", 0, 0), view
    assert_balanced(view)


def test_log_reader_dying_mid_stream_is_reported_as_epipe(dead_log_reader):
    assert dead_log_reader["stats"]["log"]["last-errno"] == errno.EPIPE


# ---- (c) a file backend on a full filesystem ---------------------------------

@contextlib.contextmanager
def mounted_tmpfs(tmp_path_factory, size):
    """A tmpfs of `size` (mount's spelling, e.g. "64k"), lazily unmounted
    afterwards; skips the test when it cannot be mounted."""
    mnt = tmp_path_factory.mktemp("tmpfs" + size)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs",
                        str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a %s tmpfs (needs root or CAP_SYS_ADMIN): %s"
                    % (size, r.stderr.strip()))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


@pytest.fixture(scope="module")
def full_disk(guest, tmp_path_factory):
    """muxA: a `file` chardev on a 64 KiB tmpfs (block); muxB: a socketpair
    (block, the input) that asks for a 104 KB stream."""
    facts = {}
    with mounted_tmpfs(tmp_path_factory, "64k") as mnt:
        path = mnt / "console.log"
        sock_end, qemu_end = socket.socketpair()
        args = ["-chardev", "file,id=disk,path=%s" % path,
                "-add-fd", "set=2,fd=%d" % qemu_end.fileno(),
                "-chardev", "pipe,id=log,path=/dev/fdset/2",
                "-chardev", "multiplex,id=serial0,muxA=disk,muxA-overflow=block,"
                            "muxB=log,muxB-overflow=block",
                "-serial", "chardev:serial0"]
        with sock_end, q.Qemu(args, guest=guest, pass_fds=[qemu_end.fileno()]) as vm:
            qemu_end.close()
            log = Log(sock_end)
            log.expect_banner()
            log.stream(8000)  # 104 KB, more than the disk holds
            log.stream(100)   # and more after the failure
            facts["got"] = bytes(log.got)
            facts["want"] = bytes(log.want)
            facts["file"] = path.read_bytes()
            facts["df"] = os.statvfs(mnt)
            facts["stats"] = multiplex_stats(vm)
            facts["alive"] = vm.proc.poll() is None
            facts["status"] = vm.cmd("query-status")["status"]
            facts["log"] = vm.log()
    return facts


def test_file_backend_on_a_full_filesystem_fails_only_that_backend(full_disk):
    f = full_disk
    assert f["alive"] and f["status"] == "running", f["log"]
    assert_same("log", f["got"], f["want"])
    st = f["stats"]["disk"]
    print("(c) file on a full 64 KiB tmpfs: %d bytes on disk; %s" % (len(f["file"]), st))
    assert f["df"].f_bavail == 0, "the tmpfs is not full"
    assert 0 < len(f["file"]) <= 64 << 10
    assert_same("file", f["file"], f["want"][:len(f["file"])])
    assert st["state"] == "failed" and st["write-errors"] == 1, st
    assert st["last-errno"] != 0, st
    assert st["delivered"] == len(f["file"]), st
    assert st["queued"] == 0, st
    assert_balanced(st)
    other = f["stats"]["log"]
    assert (other["state"], other["dropped"], other["delivered"]) == (
        "open", 0, len(f["want"])), other


def test_file_backend_on_a_full_filesystem_is_reported_as_enospc(full_disk):
    assert full_disk["stats"]["disk"]["last-errno"] == errno.ENOSPC


@pytest.fixture(scope="module")
def monitor_on_a_full_disk(tmp_path_factory):
    """The HMP monitor on a multiplex: muxA a `file` on a 4 KiB tmpfs, muxB a
    socketpair (the input). The monitor writes whole lines and tables, so
    the write that fills the disk is cut short before it fails."""
    facts = {}
    with mounted_tmpfs(tmp_path_factory, "4k") as mnt:
        path = mnt / "monitor.log"
        sock_end, qemu_end = socket.socketpair()
        args = ["-chardev", "file,id=disk,path=%s" % path,
                "-add-fd", "set=2,fd=%d" % qemu_end.fileno(),
                "-chardev", "pipe,id=term,path=/dev/fdset/2",
                "-chardev", "multiplex,id=mon0,muxA=disk,muxB=term",
                "-mon", "chardev=mon0,mode=readline", "-S"]
        with sock_end, q.Qemu(args, pass_fds=[qemu_end.fileno()]) as vm:
            qemu_end.close()
            term = q.Reader(sock_end)
            out = term.read_until(b"(qemu) ", timeout=30)
            sock_end.sendall(b"info qtree\n")
            out += term.read_until(b"(qemu) ", timeout=30)
            facts["out"] = out
            facts["file"] = path.read_bytes()
            facts["stats"] = multiplex_stats(vm, "mon0")
            facts["alive"] = vm.proc.poll() is None
            facts["status"] = vm.cmd("query-status")["status"]
    return facts


def test_monitor_output_to_a_full_disk_fails_only_that_backend(monitor_on_a_full_disk):
    f = monitor_on_a_full_disk
    assert f["alive"] and f["status"] == "prelaunch"
    assert b"bus: main-system-bus" in f["out"] and len(f["out"]) > 4096, f["out"][-200:]
    st, term = f["stats"]["disk"], f["stats"]["term"]
    print("monitor on a 4 KiB tmpfs: %d bytes on disk; %s" % (len(f["file"]), st))
    assert len(f["file"]) == 4096
    assert_same("file", f["file"], f["out"][:4096])
    assert (st["state"], st["write-errors"], st["queued"]) == ("failed", 1, 0), st
    assert_balanced(st)
    assert (term["state"], term["dropped"], term["delivered"]) == ("open", 0, len(f["out"]))


def test_monitor_output_to_a_full_disk_counts_what_reached_the_disk(monitor_on_a_full_disk):
    f = monitor_on_a_full_disk
    assert f["stats"]["disk"]["delivered"] == len(f["file"]), f["stats"]["disk"]


def dev_full_run():
    """The smallest reproduction: the monitor's greeting into /dev/full, a
    block backend; then more monitor output (help) after the failure.
    Returns the backend's counters and QEMU's stderr."""
    sock_end, qemu_end = socket.socketpair()
    args = ["-chardev", "file,id=disk,path=/dev/full",
            "-add-fd", "set=2,fd=%d" % qemu_end.fileno(),
            "-chardev", "pipe,id=term,path=/dev/fdset/2",
            "-chardev", "multiplex,id=m,muxA=disk,muxA-overflow=block,muxB=term",
            "-mon", "chardev=m", "-S"]
    with sock_end, q.Qemu(args, pass_fds=[qemu_end.fileno()]) as vm:
        qemu_end.close()
        term = q.Reader(sock_end)
        term.read_until(b"(qemu) ", timeout=30)
        st = settle(lambda: multiplex_stats(vm, "m")["disk"]["state"], "failed")
        assert st == "failed", multiplex_stats(vm, "m")
        sock_end.sendall(b"help\n")
        term.read_until(b"(qemu) ", timeout=30)
        assert vm.cmd("query-status")["status"] == "prelaunch"
        return multiplex_stats(vm, "m")["disk"], vm.log()


def dev_full_stats():
    return dev_full_run()[0]


def test_dev_full_backend_fails_without_stopping_qemu():
    st = dev_full_stats()
    assert (st["write-errors"], st["delivered"], st["queued"]) == (1, 0, 0), st
    assert_balanced(st)


def test_dev_full_backend_is_reported_as_enospc():
    assert dev_full_stats()["last-errno"] == errno.ENOSPC


def test_a_failed_block_backend_is_reported_once_with_a_warning():
    """A block backend that fails stops being lossless: QEMU says so, once
    for the failure, however much output follows (v5 said nothing)."""
    st, log = dev_full_run()
    # The greeting fails while QEMU starts, so the option is named too.
    assert log == ("qemu-system-x86_64: -mon chardev=m: warning: multiplex chardev 'm': "
                   "block backend 'disk' failed: No space left on device; its output is "
                   "discarded until it is opened again\n"), log
    assert st["write-errors"] == 1, st


# ---- (d) memory over a sustained run ---------------------------------------------

def test_memory_stays_bounded_while_streaming_with_a_reconnecting_viewer(guest, request):
    """CMX_SOAK_SECONDS (default 60) of back-to-back streams while a TCP
    viewer and a unix-socket viewer keep reconnecting (the unix one also
    stalls, so that its drop queue overflows: a loopback TCP socket buffers
    megabytes); QEMU's RSS may grow by less than 8 MiB after warm-up, and no
    fd may leak."""
    seconds = float(os.environ.get("CMX_SOAK_SECONDS", "60"))
    limit_kib = 8 << 10
    log_end, qemu_end = socket.socketpair()
    port = q.free_port()
    sock_dir = tempfile.mkdtemp(prefix="cmx-soak-")  # short: sun_path limit
    request.addfinalizer(lambda: shutil.rmtree(sock_dir, ignore_errors=True))
    unix_path = os.path.join(sock_dir, "viewer.sock")
    args = console_args(qemu_end.fileno(), port,
                        "muxB-overflow=drop,muxC=unixv,muxC-overflow=drop,replay-size=4k,queue-size=16k",
                        extra=["-chardev", "socket,id=unixv,path=%s,server=on,wait=off"
                               % unix_path])
    with log_end, q.Qemu(args, guest=guest, pass_fds=[qemu_end.fileno()]) as vm:
        qemu_end.close()
        pid = vm.proc.pid
        log = Log(log_end)
        log.expect_banner()
        rss_boot = q.rss_kib(pid)
        # Warm-up: one stream with a viewer, one of each way of leaving.
        warm = [Flapper(port, cycles=4, stall=0.3), Flapper(unix_path, cycles=4, stall=0.5)]
        for w in warm:
            w.start()
        log.stream(5000)
        for w in warm:
            w.finish()
        log.stream(100)
        for chardev in ("tcp", "unixv"):
            assert settle(lambda: multiplex_stats(vm)[chardev]["state"], "closed") == "closed"
        rss_warm, fds_warm = q.rss_kib(pid), fd_count(pid)

        viewer = Flapper(port, stall=0.3)
        stalling = Flapper(unix_path, stall=1.0)
        viewer.start()
        stalling.start()
        start = time.monotonic()
        streams, samples = 0, []
        while not streams or time.monotonic() - start < seconds:
            log.stream(20000)
            streams += 1
            samples.append(q.rss_kib(pid))
        viewer.finish()
        stalling.finish()
        log.stream(100)
        elapsed = time.monotonic() - start
        log.assert_exact()
        fds_end = settle(lambda: fd_count(pid), fds_warm)
        rss_end = q.rss_kib(pid)
        stats = multiplex_stats(vm)
        for st in stats.values():
            assert_balanced(st)
        assert stats["log"]["dropped"] == 0 and stats["log"]["delivered"] == len(log.want)
        assert_running(vm)
        print("(d) soak %.0f s: %d streams, %.1f MB, %d+%d viewer connections; "
              "VmRSS boot %d KiB, after warm-up %d KiB, at 1/4..4/4 %s KiB, end %d KiB, "
              "max %d KiB, growth %+d KiB (limit %d); fds %d -> %d; tcp viewer %s; "
              "unix viewer %s" % (
                  elapsed, streams, len(log.want) / 1e6, viewer.connections,
                  stalling.connections, rss_boot, rss_warm,
                  [samples[len(samples) * i // 4 - 1] for i in range(1, 5)], rss_end,
                  max(samples + [rss_end]), rss_end - rss_warm, limit_kib, fds_warm,
                  fds_end, stats["tcp"], stats["unixv"]))
        assert viewer.connections >= 10 and stalling.connections >= 4
        assert stats["unixv"]["queue-high-water"] == 16 << 10, stats["unixv"]
        assert stats["unixv"]["dropped"] > 0
        assert rss_end - rss_warm < limit_kib, (rss_warm, rss_end)
        assert fds_end == fds_warm, (fds_warm, fds_end)
