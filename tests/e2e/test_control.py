"""Run-time control of a live console in the patched QEMU, with the test guest.

A second viewer is attached over QMP while the guest streams, takes the
input, and the first viewer is detached and removed; a stalled viewer that
drops whole lines is told what it lost. The log (a socketpair end passed
with -add-fd) must stay byte-exact throughout.
"""

import re
import time

import qemu as q
from test_multiplex import booted_with_log_and_viewer, multiplex_stats

NOTICE = re.compile(rb"\r\n\[multiplex: (\d+) bytes? dropped\]\r\n")


def test_a_viewer_attaches_mid_stream_takes_the_input_and_the_first_is_removed(guest):
    port2 = q.free_port()
    lines1, lines2 = 80000, 3000
    # The first viewer is lossless too, so that what it got is a prefix of
    # the stream; detaching it writes its queue out in the background.
    with booted_with_log_and_viewer(guest, ",muxB-overflow=block,replay-size=4k",
                                    telnet=False) as (vm, _, log, port1):
        with q.connect_tcp(port1) as v1:
            view1 = q.Reader(v1)
            got1 = view1.read_exact(len(q.BANNER), timeout=30)  # the replay
            v1.sendall(q.stream_command(lines1))
            reply1 = q.expected_reply(lines1)
            # Some of the stream is out: attach a second viewer now.
            got_log = log.read_exact(len(reply1) // 10, timeout=60)
            vm.cmd("chardev-add", id="viewer2", backend={
                "type": "socket", "data": {
                    "addr": {"type": "inet",
                             "data": {"host": "127.0.0.1", "port": str(port2)}},
                    "server": True, "wait": False}})
            vm.cmd("x-chardev-multiplex-attach", id="charserial0", chardev="viewer2")
            with q.connect_tcp(port2) as v2:
                view2 = q.Reader(v2)
                vm.cmd("x-chardev-multiplex-set-input", id="charserial0",
                       input="viewer2")
                info = vm.cmd("x-query-chardev-multiplex", id="charserial0")
                assert info["input"] == "viewer2"
                assert [b["chardev"] for b in info["backends"]] == [
                    "charserial0file", "charserial0tcp", "viewer2"]
                hmp = vm.hmp("info multiplex charserial0")
                assert re.search(r"\n> viewer2 +open +drop/lines ", hmp), hmp

                # The first viewer goes while the guest still streams; its
                # connection closes with the chardev.
                assert vm.cmd("x-chardev-multiplex-detach", id="charserial0",
                              chardev="charserial0tcp") == {}
                ev = vm.get_event("MULTIPLEX_BACKEND_DETACHED", timeout=60)
                assert ev["data"]["id"] == "charserial0"
                last1 = ev["data"]["backend"]
                vm.cmd("chardev-remove", id="charserial0tcp")
                assert last1["chardev"] == "charserial0tcp"
                assert last1["state"] == "detached"
                assert last1["dropped"] == 0, last1
                got1 += read_to_eof(view1, timeout=60)

                got_log += log.read_exact(len(reply1) - len(got_log), timeout=120)
                # The guest takes input from the second viewer only.
                v2.sendall(q.stream_command(lines2))
                reply2 = q.expected_reply(lines2)
                tail = log.read_exact(len(reply2), timeout=60)
                got2 = b""
                while not got2.endswith(reply2):
                    got2 += view2.read_until(b"END\n", timeout=60)

        assert got_log == reply1, q.first_difference(got_log, reply1)
        assert tail == reply2, q.first_difference(tail, reply2)
        whole_log = q.BANNER + reply1 + reply2
        # The second viewer: the replay, then every byte once, to the end.
        start = len(whole_log) - len(got2)
        assert whole_log[start:] == got2, q.first_difference(got2, whole_log[start:])
        assert len(q.BANNER) < start < len(q.BANNER) + len(reply1), \
            "viewer2 was not attached mid-stream"
        stats = multiplex_stats(vm)
        assert set(stats) == {"charserial0file", "viewer2"}
        assert stats["viewer2"]["replayed"] == 4096
        assert stats["viewer2"]["input-forwarded"] == len(q.stream_command(lines2))
        assert stats["charserial0file"]["dropped"] == 0
        assert stats["charserial0file"]["delivered"] == len(whole_log)
        # The detached viewer got a contiguous piece of the stream, from the
        # start, all that was delivered to it.
        assert len(got1) == last1["delivered"]
        assert whole_log.startswith(got1), q.first_difference(got1, whole_log[:len(got1)])


def read_to_eof(reader, timeout):
    """What is left on a connection that the other side closes."""
    deadline = time.monotonic() + timeout
    while not reader.eof:
        if not reader._fill(deadline):
            raise q.QemuError("the connection did not close within %s s" % timeout)
    out = bytes(reader.buf)
    reader.buf.clear()
    return out


def test_a_stalled_line_mode_viewer_sees_whole_lines_and_the_notice(guest):
    with booted_with_log_and_viewer(
            guest, ",muxB-overflow=drop,muxB-drop=lines,muxB-drop-notice=on,queue-size=4k",
            telnet=False) as (vm, _, log, port):
        with q.connect_tcp(port, rcvbuf=4096) as viewer:
            viewer.sendall(b"L")
            want = q.expected_reply(q.LINES_L)
            # The viewer reads nothing until the log has all of it.
            got_log = log.read_exact(len(want), timeout=240)
            assert got_log == want, q.first_difference(got_log, want)
            view = q.Reader(viewer)
            got = view.read_until(b"END\n", timeout=60)
            if not NOTICE.search(got):
                got += view.read_until(b"dropped]\r\n", timeout=30)
        stats = multiplex_stats(vm)["charserial0tcp"]

    notices = NOTICE.findall(got)
    assert len(notices) == stats["notices"] == stats["drop-episodes"] >= 1, stats
    assert sum(int(n) for n in notices) == stats["dropped"] > 0
    text = NOTICE.sub(b"", got)
    lines = text.split(b"\n")
    assert lines[-1] == b"" and lines[-2] == b"END"
    assert lines[0].startswith(b"L")
    numbers = []
    for line in [lines[0][1:]] + lines[1:-2]:
        m = re.fullmatch(rb"SEQ ([0-9A-F]{8})", line)
        assert m, "not a whole line: %r" % line
        numbers.append(int(m.group(1), 16))
    assert numbers == sorted(set(numbers)), "lines out of order or repeated"
    assert len(text) + stats["dropped"] == stats["offered"], stats
    print("line-mode viewer: %d of %d lines, %d bytes dropped in %d episodes" %
          (len(numbers), q.LINES_L, stats["dropped"], stats["drop-episodes"]))
