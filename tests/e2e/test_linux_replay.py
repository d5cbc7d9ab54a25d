"""What a late viewer of the Linux guest's ttyS0 is replayed (QEMU series
patches 21 and 22): with replay-head-size, the start of the boot besides the
latest output, again from the start after system_reset; with
replay-migrate=on, what the source kept, on the destination of a live
migration between two QEMUs (TCG, -incoming unix:).  The guest's output is
the log's, byte for byte (muxA, block, on an fdset pipe), so each replay is
checked against the exact bytes it must hold.
"""

import time

import pytest

import linux
import qemu as q
from test_linux_guest import BOOT_TIMEOUT, STREAM_TIMEOUT, Console, tcp_spec

HEAD = 2048
TAIL = 2048


@pytest.fixture(scope="module")
def gdir():
    linux.check_firmware()
    return linux.guest_dir()


def replay_of(out, start=0):
    """What a viewer that opens now is replayed, `out` being the whole
    output and `start` where the head began (0, or the last reset)."""
    skipped = len(out) - start - HEAD - TAIL
    assert skipped > 0, "the test needs more output than head and tail hold"
    return (out[start:start + HEAD] + b"\r\n[multiplex: %d bytes skipped]\r\n" % skipped
            + out[-TAIL:])


def replay_seen(port, want_len):
    """Connect a viewer to `port`; what it got once the replay is in and
    the guest (idle at its prompt) sent nothing more for half a second."""
    with q.connect_tcp(port) as v:
        view = linux.Collector(v)
        try:
            view.wait(lambda d: len(d) >= want_len, 30, "the replay")
            time.sleep(0.5)
            return view.data()
        finally:
            view.stop()


def type_and_read(port, command, timeout=STREAM_TIMEOUT):
    """Type a framed command on a viewer at `port` that reads along."""
    with q.connect_tcp(port) as v:
        view = linux.Collector(v)
        try:
            return linux.run_framed(v.sendall, view, command, timeout)
        finally:
            view.stop()


def settled_output(c, start=0):
    """The log (everything the guest printed) once the guest is back at its
    prompt after offset `start` and the log has all of it."""
    linux.wait_prompt(c.log, 60, start)
    c.wait_log_settled()
    return c.log.data()


def test_linux_late_viewer_gets_the_boot_and_the_latest_prompt_and_the_new_boot_after_reset(gdir):
    port = q.free_port()
    with Console(gdir, tcp_spec(port), ",muxB-overflow=drop,replay-size=%d,replay-head-size=%d"
                 % (TAIL, HEAD)) as c:
        c.wait_shell()
        start = len(c.log)
        got = type_and_read(port, "seq 1 600000")
        assert got == linux.crlf(linux.seq(1, 600000))
        out = settled_output(c, start)
        assert len(out) > 4 * 1024 * 1024, len(out)

        seen = replay_seen(port, len(replay_of(out)))
        assert seen == replay_of(out), q.first_difference(seen, replay_of(out))
        assert seen.startswith(b"[    0.000000] Linux version "), seen[:100]
        assert seen.endswith(linux.PROMPT + b"\x1b[6n"), seen[-100:]
        print("after %d bytes: replayed the first %d, a marker, the last %d"
              % (len(out), HEAD, TAIL))

        # A system reset: the head is the new boot's, the tail goes on.
        reset_at = len(c.log)
        c.vm.cmd("system_reset")
        c.vm.get_event("RESET")
        at = c.log.wait_for(linux.READY_TTYS0, BOOT_TIMEOUT, reset_at)
        out = settled_output(c, at)
        assert out[reset_at:].startswith(b"[    0.000000] Linux version "), out[reset_at:][:100]
        seen = replay_seen(port, len(replay_of(out, reset_at)))
        assert seen == replay_of(out, reset_at), \
            q.first_difference(seen, replay_of(out, reset_at))
        assert c.stats()["con0log"]["dropped"] == 0


def test_linux_replay_travels_with_a_live_migration(gdir, tmp_path):
    src_port = q.free_port()
    dst_port = q.free_port()
    uri = "unix:%s" % (tmp_path / "migrate.sock")
    options = (",muxB-overflow=drop,replay-size=%d,replay-head-size=%d,replay-migrate=on"
               % (TAIL, HEAD))
    with Console(gdir, tcp_spec(src_port), options) as src:
        src.wait_shell()
        start = len(src.log)
        type_and_read(src_port, "seq 1 20000")
        out = settled_output(src, start)
        with Console(gdir, tcp_spec(dst_port), options, extra=["-incoming", uri]) as dst:
            src.vm.cmd("migrate", uri=uri)
            deadline = time.monotonic() + 120
            while True:
                status = src.vm.cmd("query-migrate").get("status")
                assert status not in ("failed", "cancelled"), src.vm.log()
                if status == "completed":
                    break
                assert time.monotonic() < deadline, status
                time.sleep(0.1)
            dst.vm.get_event("RESUME", timeout=30)
            assert dst.vm.cmd("x-query-chardev-multiplex", id="con0")["replay-migrate"]

            # A viewer on the destination: the source's boot and last output...
            with q.connect_tcp(dst_port) as v:
                view = linux.Collector(v)
                try:
                    want = replay_of(out)
                    view.wait(lambda d: len(d) >= len(want), 30, "the replay")
                    assert view.data()[:len(want)] == want, \
                        q.first_difference(view.data()[:len(want)], want)
                    assert want.startswith(b"[    0.000000] Linux version ")
                    # ...then the guest, now running on the destination.
                    got = linux.run_framed(v.sendall, view, "echo on-the-des''tination", 60)
                    assert got == b"on-the-destination\r\n"
                finally:
                    view.stop()
            # The destination's log was open before: it goes on from the
            # migration and gets no replay (the source's log has the rest).
            dst.wait_log_settled()
            assert b"on-the-destination\r\n" in dst.log.data()
            assert b"Linux version" not in dst.log.data()
            assert b"Linux version" in src.log.data()
