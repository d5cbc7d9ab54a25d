"""The test guest's console through `-chardev multiplex` in the patched QEMU.

Each test boots the guest and checks what a user would see, byte for byte:
the log side (a socketpair or a pipe passed with -add-fd) and a TCP viewer.
"""

import contextlib
import os
import socket
import time
from collections import namedtuple

import pytest

import qemu as q


def tcp_args(port, telnet=True):
    return ["-chardev", "socket,id=charserial0tcp,host=127.0.0.1,port=%d,%s"
            "server=on,wait=off" % (port, "telnet=on," if telnet else "")]


def fdset_log_and_viewer(fd, port, mux_options="", telnet=True,
                         frontend=("-serial", "chardev:charserial0"),
                         log_policy=",muxA-overflow=block"):
    """Log on fdset 2 (fd, a socketpair end) as muxA, lossless as a log asks
    (log_policy), a TCP viewer as muxB."""
    return ["-add-fd", "set=2,fd=%d" % fd,
            "-chardev", "pipe,id=charserial0file,path=/dev/fdset/2",
            *tcp_args(port, telnet),
            "-chardev", "multiplex,id=charserial0,muxA=charserial0file,"
                        "muxB=charserial0tcp" + log_policy + mux_options,
            *frontend]


Booted = namedtuple("Booted", "vm log_end log port")


@contextlib.contextmanager
def booted_with_log_and_viewer(guest, mux_options="", **kwargs):
    """QEMU with fdset_log_and_viewer()'s log and viewer, past the banner.

    Yields the VM, the host's end of the log socketpair, a Reader on it that has read the
    banner, and the viewer's TCP port. The keyword arguments go to fdset_log_and_viewer()."""
    log_end, qemu_end = socket.socketpair()
    port = q.free_port()
    fd = qemu_end.fileno()
    args = fdset_log_and_viewer(fd, port, mux_options, **kwargs)
    with log_end, q.Qemu(args, guest=guest, pass_fds=[fd]) as vm:
        qemu_end.close()
        log = q.Reader(log_end)
        # No viewer yet: the banner reaches the log anyway.
        assert log.read_exact(len(q.BANNER), timeout=30) == q.BANNER
        yield Booted(vm, log_end, log, port)


def multiplex_stats(vm, chardev="charserial0"):
    info = vm.cmd("x-query-chardev-multiplex", id=chardev)
    return {b["chardev"]: b for b in info["backends"]}


def test_original_command_line_logs_and_serves_a_viewer(guest):
    """The command line from the 2015 qemu-devel thread, as written there: no
    overflow policy, so both backends drop rather than stop the guest (the
    log is read all the time here, so it drops nothing)."""
    with booted_with_log_and_viewer(guest, log_policy="", frontend=(
            "-device", "isa-serial,chardev=charserial0,id=serial0")) as (vm, log_end, log, port):

        # Typing into the log side goes nowhere: only the viewer is the input.
        log_end.sendall(b"ignored")
        with q.connect_tcp(port) as viewer:
            view = q.Reader(viewer)
            viewer.sendall(b"hello")
            assert view.read_until(b"hello", timeout=30).endswith(b"hello")
            viewer.sendall(q.stream_command(q.LINES_S))
            want_stream = q.expected_reply(q.LINES_S)
            got = view.read_until(b"END\n", timeout=60)
            assert got.endswith(want_stream), q.first_difference(got[-len(want_stream):],
                                                                 want_stream)
        want_log = b"hello" + want_stream
        got_log = log.read_exact(len(want_log), timeout=60)
        assert got_log == want_log, q.first_difference(got_log, want_log)

        stats = multiplex_stats(vm)
        assert stats["charserial0file"]["dropped"] == 0
        assert stats["charserial0file"]["input-discarded"] == len(b"ignored")
        assert stats["charserial0tcp"]["input"] is True
        assert vm.cmd("query-status")["status"] == "running"


def test_file_chardev_on_an_fdset_pipe_without_append(guest):
    """-chardev file,path=/dev/fdset/N on a pipe, no append=on, as muxA."""
    rd, wr = os.pipe()
    port = q.free_port()
    args = ["-add-fd", "set=3,fd=%d" % wr,
            "-chardev", "file,id=charserial0file,path=/dev/fdset/3",
            *tcp_args(port),
            "-chardev", "multiplex,id=charserial0,muxA=charserial0file,muxB=charserial0tcp",
            "-serial", "chardev:charserial0"]
    try:
        with q.Qemu(args, guest=guest, pass_fds=[wr]) as vm:
            os.close(wr)
            wr = -1
            log = q.Reader(rd)
            assert log.read_exact(len(q.BANNER), timeout=30) == q.BANNER
            with q.connect_tcp(port) as viewer:
                viewer.sendall(q.stream_command(1000))
                want = q.expected_reply(1000)
                got = log.read_exact(len(want), timeout=60)
                assert got == want, q.first_difference(got, want)
            assert multiplex_stats(vm)["charserial0file"]["delivered"] == len(q.BANNER + want)
    finally:
        os.close(rd)
        if wr >= 0:
            os.close(wr)


def test_stalled_viewer_with_drop_never_stalls_the_log(guest):
    """A viewer that asks for a 3.4 MB stream and then never reads."""
    with booted_with_log_and_viewer(guest, ",muxB-overflow=drop") as (vm, _, log, port):
        with q.connect_tcp(port, rcvbuf=4096) as viewer:
            viewer.sendall(b"L")
            want = q.expected_reply(q.LINES_L)
            start = time.monotonic()
            got = log.read_exact(len(want), timeout=240)
            elapsed = time.monotonic() - start
            assert got == want, q.first_difference(got, want)
            stats = multiplex_stats(vm)
            print("3.4 MB stream with a stalled viewer: %.1f s; viewer %s" %
                  (elapsed, stats["charserial0tcp"]))
            view = stats["charserial0tcp"]
            assert view["state"] == "open" and view["overflow"] == "drop"
            assert view["dropped"] > 0
            assert view["delivered"] + view["queued"] + view["dropped"] == view["offered"]
            assert view["backpressure-events"] == 0
            logstats = stats["charserial0file"]
            assert logstats["dropped"] == 0
            assert logstats["delivered"] == len(q.BANNER) + len(want)


@pytest.mark.parametrize("replay", [0, 4096])
def test_replay_shows_a_late_viewer_recent_output(guest, replay):
    with booted_with_log_and_viewer(guest, ",replay-size=%d" % replay,
                                    telnet=False) as (vm, _, _, port):
        with q.connect_tcp(port) as viewer:
            view = q.Reader(viewer)
            viewer.sendall(b"x")
            got = view.read_until(b"x", timeout=30)
        # With replay the viewer first sees the banner it missed, then live output.
        assert got == (q.BANNER + b"x" if replay else b"x")
        assert multiplex_stats(vm)["charserial0tcp"]["replayed"] == (len(q.BANNER)
                                                                      if replay else 0)


@pytest.mark.parametrize("coalesce", [None, 0, 100000], ids=["default", "off", "max"])
def test_every_coalescing_window_delivers_streams_and_echoes_exactly(guest, coalesce):
    """coalesce-us: unset (1 ms), 0 (every byte at once) and 100 ms (the most)."""
    opts = "" if coalesce is None else ",coalesce-us=%d" % coalesce
    with booted_with_log_and_viewer(guest, opts) as (vm, _, log, port):
        with q.connect_tcp(port) as viewer:
            view = q.Reader(viewer)
            typed = b"echo"
            for key in typed:
                viewer.sendall(bytes([key]))
                assert view.read_until(bytes([key]), timeout=30).endswith(bytes([key]))
            viewer.sendall(q.stream_command(q.LINES_S))
            want = q.expected_reply(q.LINES_S)
            got = view.read_until(b"END\n", timeout=60)
            assert got.endswith(want), q.first_difference(got[-len(want):], want)
            got_log = log.read_exact(len(typed + want), timeout=60)
            assert got_log == typed + want, q.first_difference(got_log, typed + want)
        stats = multiplex_stats(vm)["charserial0file"]
        total = len(q.BANNER + typed + want)
        assert (stats["offered"], stats["delivered"], stats["queued"]) == (total, total, 0)
