"""What each kind of frontend does when a `block` backend stalls, and a
stalled line-mode viewer of a line with no newline, on the Linux guest:

- virtconsole (hvc0) drops the rest of any write the chardev refuses: the
  log loses output, and the multiplex counts it (refused-bytes);
- virtserialport (/dev/vport0p1) waits: nothing is lost;
- a 3 MB line with no newline through ttyS0 next to a stalled `drop` viewer
  in lines mode costs no more than without the viewer (v5 searched the whole
  queue for a newline on every write).
"""

import os
import socket
import time

import pytest

import linux
import qemu as q
from test_linux_guest import BOOT_TIMEOUT, STREAM_TIMEOUT, Console, assert_counters_add_up, \
    gdir, tcp_spec  # noqa: F401 (gdir is a fixture)


def mux_info(vm, chardev="con0"):
    return vm.cmd("x-query-chardev-multiplex", id=chardev)


def holes(got, want):
    """How many bytes of `want` are missing from `got`, which must be `want`
    with bytes taken out (in runs), nothing added, repeated or reordered."""
    i = j = missing = 0
    while j < len(got):
        if want[i] == got[j]:
            i, j = i + 1, j + 1
            continue
        k = want.find(got[j:j + 64], i)
        assert k > i, "byte %d of the log is not in the stream after %d" % (j, i)
        missing, i = missing + k - i, k
    return missing + len(want) - i


def port_console(gdir, tmp_path, viewer_spec, device):
    """The shell on ttyS0 (a socketpair: typed into and read by the test),
    and `device` (virtconsole: /dev/hvc0 in the guest, or virtserialport:
    /dev/vport0p1) on a multiplex of a log on an fdset pipe (block) and
    viewer_spec (block)."""
    shell_end, qemu_shell = socket.socketpair()
    rd, wr = os.pipe()
    args = ["-add-fd", "set=2,fd=%d" % wr,
            "-chardev", "file,id=portlog,path=/dev/fdset/2",
            "-chardev", viewer_spec + ",id=portview",
            "-chardev", "multiplex,id=port0,muxA=portlog,muxA-overflow=block,"
                        "muxB=portview,muxB-overflow=block,input=none",
            "-chardev", "socket,id=shell,fd=%d" % qemu_shell.fileno(),
            "-serial", "chardev:shell",
            "-device", "virtio-serial-pci",
            "-device", "%s,chardev=port0,name=org.cmx.port0" % device,
            *linux.boot_args(gdir)]
    try:
        vm = q.Qemu(args, pass_fds=[wr, qemu_shell.fileno()], timeout=30)
    finally:
        os.close(wr)
        qemu_shell.close()
    return vm, shell_end, rd


def wait_viewer_open(vm, timeout=30):
    deadline = time.monotonic() + timeout
    while mux_info(vm, "port0")["backends"][1]["state"] != "open":
        assert time.monotonic() < deadline, mux_info(vm, "port0")
        time.sleep(0.05)


def test_hvc0_drops_what_a_stalled_block_viewer_refuses_and_it_is_counted(gdir, tmp_path):
    """A block viewer that never reads stalls the multiplex; virtconsole does
    not wait (hw/char/virtio-console.c throttles only a virtserialport): it
    drops what the chardev refuses.  The loss reaches the log too (it is the
    guest's output that is gone), and refused-bytes counts it exactly."""
    port = q.free_port()
    last = 600000
    vm, shell_end, rd = port_console(gdir, tmp_path, tcp_spec(port), "virtconsole")
    log = linux.Collector(rd)
    shell = linux.Collector(shell_end)
    try:
        shell.wait_for(linux.READY_TTYS0, BOOT_TIMEOUT)
        linux.wait_prompt(shell, 60)
        linux.run_framed(shell_end.sendall, shell, "seq 1 %d >/tmp/f; stty -F /dev/hvc0 "
                         "raw -echo" % last, STREAM_TIMEOUT)
        time.sleep(1)
        start = len(log)  # hvc0's own shell wrote to it before
        with q.connect_tcp(port, rcvbuf=4096):  # never reads
            wait_viewer_open(vm)
            before = mux_info(vm, "port0")
            # 4.7 MB in 4 KiB writes to hvc0: more than the viewer's socket
            # buffers and queue hold.
            linux.run_framed(shell_end.sendall, shell,
                             "dd if=/tmp/f of=/dev/hvc0 bs=4096 2>/dev/null",
                             STREAM_TIMEOUT)
            after = mux_info(vm, "port0")
        want = linux.seq(1, last)
        refused = after["refused-bytes"] - before["refused-bytes"]
        log.wait(lambda d: len(d) - start + refused >= len(want), 60, "the log")
        got = log.data()[start:]
        print("hvc0, 4.7 MB with a stalled block viewer: %d bytes refused and lost, "
              "%d refusals" % (refused, after["refusals"] - before["refusals"]))
        assert refused > 0
        # What the log misses is exactly what was refused: the stream with
        # holes (from the first refusal until the viewer left), nothing
        # repeated or out of order.
        assert len(got) == len(want) - refused, (len(got), len(want), refused)
        assert holes(got, want) == refused
        assert_counters_add_up({b["chardev"]: b for b in after["backends"]})
    finally:
        vm.kill()
        log.stop()
        shell.stop()
        os.close(rd)
        shell_end.close()


def test_virtserialport_waits_for_a_stalled_block_viewer(gdir, tmp_path):
    """virtserialport is throttled by the chardev: while a block viewer does
    not read, what the guest writes to /dev/vport0p1 waits (in its
    virtqueue, then in the writer); once the viewer reads, the log and the
    viewer get every byte.  Refused writes are offered again, not lost."""
    port = q.free_port()
    last = 900000  # 6.3 MB: more than the viewer's socket buffers and queue
    vm, shell_end, rd = port_console(gdir, tmp_path, tcp_spec(port), "virtserialport")
    log = linux.Collector(rd)
    shell = linux.Collector(shell_end)
    try:
        shell.wait_for(linux.READY_TTYS0, BOOT_TIMEOUT)
        linux.wait_prompt(shell, 60)
        with q.connect_tcp(port, rcvbuf=4096) as v:
            wait_viewer_open(vm)
            linux.run_framed(shell_end.sendall, shell, "seq 1 %d >/tmp/f" % last,
                             STREAM_TIMEOUT)
            shell_end.sendall(b"cat /tmp/f >/dev/vport0p1; echo CAT''-DONE\n")
            want = linux.seq(1, last)
            # The viewer does not read: the port is throttled, and what the
            # guest wrote waits in its virtqueue (cat may be done already).
            deadline = time.monotonic() + STREAM_TIMEOUT
            while mux_info(vm, "port0")["refused-bytes"] == 0:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            time.sleep(2)
            held = len(log)
            assert held < len(want), "the multiplex did not hold the port back"
            # Now it reads, and everything arrives.
            view = linux.Collector(v)
            view.wait(lambda d: len(d) >= len(want), STREAM_TIMEOUT, "the viewer's copy")
            shell.wait_for(b"CAT-DONE", STREAM_TIMEOUT)
            log.wait(lambda d: len(d) >= len(want), STREAM_TIMEOUT, "the log")
            view.stop()
        assert view.data() == want, q.first_difference(view.data(), want)
        assert log.data() == want, q.first_difference(log.data(), want)
        info = mux_info(vm, "port0")
        assert info["refused-bytes"] > 0 and info["refusals"] > 0
        stats = {b["chardev"]: b for b in info["backends"]}
        assert_counters_add_up(stats)
        assert stats["portlog"]["dropped"] == 0 and stats["portview"]["dropped"] == 0
    finally:
        vm.kill()
        log.stop()
        shell.stop()
        os.close(rd)
        shell_end.close()


def test_ttys0_3mb_line_next_to_a_stalled_lines_viewer(gdir, tmp_path):
    """A 3 MB line with no newline on ttyS0, first with a viewer that reads,
    then with one that never reads (drop, lines mode, a 1 MiB queue).  v5:
    with the stalled viewer the stream had not finished after 17 s (1.85 of
    3 MB, every write searched the whole queue for a newline), against 3.3 s
    without it.  Both times are printed; the stalled run must end, give the
    log every byte, and take at most 3 times the reading run."""
    size = 3000000
    sock = tmp_path / "view.sock"
    spec = "socket,path=%s,server=on,wait=off" % sock
    want = b"x" * size + b"\r\n"
    cmd = linux.framed("head -c %d /dev/zero | tr '\\0' x; echo" % size)
    times = {}
    with Console(gdir, spec, ",muxB-overflow=drop,muxB-drop=lines,queue-size=1048576") as c:
        c.wait_shell()
        for kind in ("reading", "stalled"):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(str(sock))
            view = linux.Collector(client) if kind == "reading" else None
            deadline = time.monotonic() + 30
            while c.stats()["con0view"]["state"] != "open":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            start = len(c.log)
            t0 = time.monotonic()
            client.sendall(cmd)  # the viewer is the input backend
            c.log.wait(lambda d: linux.body(d[start:]) is not None, STREAM_TIMEOUT,
                       "the end of the 3 MB line (%s viewer)" % kind)
            times[kind] = time.monotonic() - t0
            linux.wait_prompt(c.log, 60, start)
            assert linux.body(c.log.data()[start:]) == want
            if view:
                view.stop()
            view_stats = c.stats()["con0view"]
            client.close()
            deadline = time.monotonic() + 30
            while c.stats()["con0view"]["state"] != "closed":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        print("3 MB line on ttyS0: %.1f s with a reading viewer, %.1f s with a stalled "
              "lines-mode viewer (queue 1 MiB); stalled viewer: %s"
              % (times["reading"], times["stalled"], view_stats))
        assert view_stats["dropped"] > 0
        assert times["stalled"] <= 3 * times["reading"], times
