"""A Linux guest (Debian's cloud kernel, busybox; scripts/linux-guest/build.py)
on the consoles real users have: the 8250 UART driven by interrupts and its
FIFO (ttyS0), a virtio console (hvc0), and a pty as the interactive console
(what `virsh console` opens), each through `-chardev multiplex` next to a log
on an fdset pipe (as virtlogd holds it).  Byte for byte: the log, a viewer,
and the counters of x-query-chardev-multiplex.
"""

import fcntl
import os
import termios
import time
import tty

import pytest

import linux
import qemu as q

BOOT_TIMEOUT = 120  # TCG boot: ~6 s here, far more on a loaded 2-core machine
STREAM_TIMEOUT = 600


@pytest.fixture(scope="module")
def gdir():
    linux.check_firmware()
    return linux.guest_dir()


def multiplex_stats(vm, chardev="con0"):
    info = vm.cmd("x-query-chardev-multiplex", id=chardev)
    return {b["chardev"]: b for b in info["backends"]}


def assert_counters_add_up(stats):
    for name, b in stats.items():
        assert b["offered"] == b["delivered"] + b["queued"] + b["dropped"], (name, b)


class Console:
    """A Linux guest whose console (ttyS0, or hvc0 with hvc=True) is a
    multiplex of a log on an fdset pipe (muxA, block) and `viewer_args`
    (the chardev spec of muxB, id con0view).  The log is collected all the time."""

    def __init__(self, gdir, viewer_spec, mux_options="", hvc=False, extra=(), tmp=None):
        self.rd, wr = os.pipe()
        args = ["-add-fd", "set=2,fd=%d" % wr,
                "-chardev", "file,id=con0log,path=/dev/fdset/2",
                "-chardev", viewer_spec + ",id=con0view",
                "-chardev", "multiplex,id=con0,muxA=con0log,muxA-overflow=block,"
                            "muxB=con0view" + mux_options]
        if hvc:
            # ttyS0 (kernel messages, its own shell) goes to a file.
            args += ["-serial", "file:%s" % (tmp / "ttyS0.log")]
            args += linux.boot_args(gdir, virtconsole="con0")
        else:
            args += ["-serial", "chardev:con0"]
            args += linux.boot_args(gdir)
        args += list(extra)
        try:
            self.vm = q.Qemu(args, pass_fds=[wr], timeout=30)
        finally:
            os.close(wr)
        self.log = linux.Collector(self.rd)
        self.ready = linux.READY_HVC0 if hvc else linux.READY_TTYS0
        # With mux=on, con0 is QEMU's mux chardev and the multiplex is con0-base.
        self.mux_id = "con0-base" if "mux=on" in mux_options else "con0"

    def wait_shell(self):
        """Wait for READY and the first prompt in the log; the log offset past it."""
        at = self.log.wait_for(self.ready, BOOT_TIMEOUT)
        return linux.wait_prompt(self.log, 60, at)

    def stats(self):
        return multiplex_stats(self.vm, self.mux_id)

    def wait_log_settled(self, timeout=60):
        """Until everything the multiplex accepted for the log has been
        collected; returns the log's counters."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats()["con0log"]
            if s["queued"] == 0 and s["delivered"] == len(self.log):
                return s
            if time.monotonic() > deadline:
                raise TimeoutError("log: %s, collected %d" % (s, len(self.log)))
            time.sleep(0.05)

    def close(self):
        self.vm.kill()
        self.log.stop()
        os.close(self.rd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def tcp_spec(port):
    return "socket,host=127.0.0.1,port=%d,server=on,wait=off" % port


# ---- ttyS0: the 8250 driver -------------------------------------------------

def test_linux_boot_log_reaches_the_fdset_pipe_log_and_a_late_viewers_replay(gdir):
    port = q.free_port()
    with Console(gdir, tcp_spec(port),
                 ",muxB-overflow=drop,queue-size=262144,replay-size=262144") as c:
        c.wait_shell()
        log = c.log.data()
        assert log.startswith(b"[    0.000000] Linux version 6.1.0-50-cloud-amd64 "), log[:200]
        assert b"] Run /init as init process\r\n" in log
        assert log.count(linux.READY_TTYS0) == 1
        # The viewer connects once the guest is quiet at its prompt: the replay
        # is the whole boot log so far, then live output follows.
        with q.connect_tcp(port) as v:
            view = linux.Collector(v)
            try:
                view.wait(lambda d: len(d) >= len(log), 30, "the replay")
                assert view.data() == log, q.first_difference(view.data(), log)
                assert c.stats()["con0view"]["replayed"] == len(log)
                got = linux.run_framed(v.sendall, view, "echo typed-on-the-viewer", 60)
                assert got == b"typed-on-the-viewer\r\n"
                c.wait_log_settled()
                assert view.data() == c.log.data(), q.first_difference(view.data(),
                                                                       c.log.data())
            finally:
                view.stop()
        stats = c.stats()
        assert_counters_add_up(stats)
        assert stats["con0log"]["dropped"] == 0 and stats["con0view"]["dropped"] == 0


def test_linux_seq_of_6_mib_with_a_stalled_drop_viewer(gdir):
    """`seq` on ttyS0, 6.4 MiB: more than a stalled viewer's socket buffers
    (both ends) and its queue hold.  The guest never waits for the viewer,
    the log gets every byte, the viewer's losses are counted."""
    port = q.free_port()
    last = 850000
    want = linux.crlf(linux.seq(1, last))
    assert len(want) > 6 * 1024 * 1024
    with Console(gdir, tcp_spec(port), ",muxB-overflow=drop") as c:
        c.wait_shell()
        with q.connect_tcp(port, rcvbuf=4096) as viewer:  # types, then never reads
            wait_open(c)
            before = c.stats()["con0log"]["offered"]  # the boot: the viewer was not there
            start = len(c.log)
            t0 = time.monotonic()
            viewer.sendall(linux.framed("seq 1 %d" % last))
            c.log.wait(lambda d: linux.body(d[start:]) is not None, STREAM_TIMEOUT,
                       "the end of the stream")
            elapsed = time.monotonic() - t0
            got = linux.body(c.log.data()[start:])
            assert got == want, q.first_difference(got, want)
            linux.wait_prompt(c.log, 60, start)
            logstats = c.wait_log_settled()
            stats = c.stats()
            view = stats["con0view"]
            print("6.4 MiB seq on ttyS0 with a stalled viewer: %.1f s (%.2f MiB/s); viewer %s"
                  % (elapsed, len(want) / elapsed / 2**20, view))
            assert_counters_add_up(stats)
            assert logstats["dropped"] == 0 and logstats["delivered"] == len(c.log)
            assert view["state"] == "open" and view["overflow"] == "drop"
            assert view["dropped"] > 0
            # The viewer never held the guest back; the log is the guest's pace.
            assert view["backpressure-events"] == 0
            assert view["offered"] == logstats["offered"] - before
            assert c.vm.cmd("query-status")["status"] == "running"


# ---- hvc0: the virtio console -----------------------------------------------

def test_hvc0_through_a_multiplex_line_and_4k_writes(gdir, tmp_path):
    """hvc0's output is written by the guest a line at a time (seq to a tty)
    and 4 KiB at a time (dd bs=4096 with output processing off); the log and
    the reading viewer get exactly it, and the viewer types into hvc0's shell."""
    port = q.free_port()
    with Console(gdir, tcp_spec(port), ",muxB-overflow=drop,queue-size=262144,replay-size=262144",
                 hvc=True, tmp=tmp_path) as c:
        c.wait_shell()
        with q.connect_tcp(port) as v:
            view = linux.Collector(v)
            try:
                boot = c.log.data()
                view.wait(lambda d: len(d) >= len(boot), 30, "the replay")
                send = v.sendall
                assert linux.run_framed(send, view, "echo hv''c0-shell; tty", 60) == \
                    b"hvc0-shell\r\n/dev/hvc0\r\n"
                # Lines: one write(2) per line.
                got = linux.run_framed(send, view, "seq 1 20000", STREAM_TIMEOUT)
                want = linux.crlf(linux.seq(1, 20000))
                assert got == want, q.first_difference(got, want)
                # 4 KiB writes of a 1.3 MB file.
                linux.run_framed(send, view, "seq 1 200000 >/tmp/f", STREAM_TIMEOUT)
                got = linux.run_framed(send, view, "dd if=/tmp/f bs=4096 2>/dev/null",
                                       STREAM_TIMEOUT, raw=True)
                want = linux.seq(1, 200000)
                assert got == want, q.first_difference(got, want)
                logstats = c.wait_log_settled()
                log = c.log.data()
                assert view.data() == log, q.first_difference(view.data(), log)
            finally:
                view.stop()
        stats = c.stats()
        assert_counters_add_up(stats)
        assert logstats["dropped"] == 0 and stats["con0view"]["dropped"] == 0
        assert stats["con0view"]["input-forwarded"] > 0


# ---- a pty: what virsh console opens ----------------------------------------

def open_pty(vm, chardev):
    """Open the pty of a pty chardev the way virsh console does: raw."""
    info = next(c for c in vm.cmd("query-chardev") if c["label"] == chardev)
    assert info["filename"].startswith("pty:"), info
    fd = os.open(info["filename"][4:], os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd, termios.TCSANOW)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    return fd


def wait_open(c, timeout=30):
    """The pty backend notices its reader within a second (it polls)."""
    deadline = time.monotonic() + timeout
    while c.stats()["con0view"]["state"] != "open":
        if time.monotonic() > deadline:
            raise TimeoutError("pty backend not open: %s" % c.stats()["con0view"])
        time.sleep(0.05)


def pty_send(fd):
    def send(data):
        while data:
            try:
                n = os.write(fd, data)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            data = data[n:]
    return send


def test_pty_console_next_to_a_log(gdir):
    with Console(gdir, "pty", ",muxB-overflow=drop,replay-size=65536") as c:
        c.wait_shell()
        fd = open_pty(c.vm, "con0view")
        view = linux.Collector(fd)
        try:
            wait_open(c)
            log = c.log.data()
            # virsh console connects late: it sees the last 64 KiB, then live output.
            replayed = c.stats()["con0view"]["replayed"]
            assert replayed == min(len(log), 65536)
            view.wait(lambda d: len(d) >= replayed, 30, "the replay")
            assert view.data() == log[-replayed:]
            got = linux.run_framed(pty_send(fd), view, "echo from-the-p''ty; seq 1 5000", 120)
            assert got == b"from-the-pty\r\n" + linux.crlf(linux.seq(1, 5000))
            c.wait_log_settled()
            log = c.log.data()
            tail = view.data()
            assert log.endswith(tail), q.first_difference(log[-len(tail):], tail)
            stats = c.stats()
            assert stats["con0view"]["input"] is True
            assert stats["con0view"]["input-forwarded"] > 0
            assert_counters_add_up(stats)
            assert stats["con0log"]["dropped"] == 0 and stats["con0view"]["dropped"] == 0
        finally:
            view.stop()
            os.close(fd)


def test_pty_console_with_mux_on_and_the_hmp_monitor(gdir):
    """`mux=on` on the multiplex, `-mon chardev=con0`: Ctrl-A c on the pty
    switches between the guest's shell and the HMP monitor; the log records both."""
    with Console(gdir, "pty", ",muxB-overflow=drop,mux=on",
                 extra=["-mon", "chardev=con0,mode=readline"]) as c:
        c.wait_shell()
        fd = open_pty(c.vm, "con0view")
        view = linux.Collector(fd)
        send = pty_send(fd)
        try:
            wait_open(c)
            got = linux.run_framed(send, view, "echo sh''ell-before", 60)
            assert got == b"shell-before\r\n"
            start = len(view)
            send(b"\x01c")  # Ctrl-A c: to the monitor
            send(b"\r")
            at = view.wait_for(b"(qemu) ", 30, start)
            send(b"info status\r")
            view.wait_for(b"VM status: running\r\n(qemu) ", 30, at)
            send(b"\x01c")  # back to the guest
            got = linux.run_framed(send, view, "echo sh''ell-after", 60)
            assert got == b"shell-after\r\n"
            c.wait_log_settled()
            log, seen = c.log.data(), view.data()
            # The log holds what the pty showed, monitor included.
            assert log.endswith(seen), q.first_difference(log[-len(seen):], seen)
            assert b"VM status: running" in log
            stats = c.stats()
            assert_counters_add_up(stats)
            assert stats["con0log"]["dropped"] == 0
        finally:
            view.stop()
            os.close(fd)
