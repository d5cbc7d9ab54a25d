"""conserver (Debian's conserver-server and conserver-client 8.2.7), the
console server the README's comparison table measures next to multiplex.
The test guest's COM1 is a TCP socket chardev of the patched QEMU; a
conserver of the test's own (its own configuration, free ports) connects
to it and logs it; `console` clients are the viewers.  What is measured is
what the table says of conserver: a client that stops reading does not
stop the guest or the log; a client that connects late gets the last
lines on request (^Ec r); per-line timestamps are lines of their own in
the log only.
"""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import qemu as q

CONSERVER = "/usr/sbin/conserver"
CONSOLE = "/usr/bin/console"
STREAM_TIMEOUT = 600  # 3.4 MB through a socket chardev, a write per byte


class Conserver:
    """QEMU with the guest's COM1 on a TCP socket, and a conserver (in the
    foreground, its own configuration) logging it as console `guest`."""

    def __init__(self, guest, tmp, timestamp=""):
        self.tmp = Path(tmp)
        self.log_path = self.tmp / "guest.log"
        qport, self.port = q.free_port(), q.free_port()
        self.vm = q.Qemu(["-chardev", "socket,id=com1,host=127.0.0.1,port=%d,server=on,"
                          "wait=off" % qport, "-serial", "chardev:com1"], guest=guest)
        cf = self.tmp / "conserver.cf"
        cf.write_text('config * { }\n'
                      'default * { logfile %s/&.log; timestamp "%s"; rw *; }\n'
                      'console guest { master 127.0.0.1; type host; host 127.0.0.1; port %d; }\n'
                      'access * { trusted 127.0.0.1; }\n' % (self.tmp, timestamp, qport))
        passwd = self.tmp / "conserver.passwd"
        passwd.write_text("")
        self.err = open(self.tmp / "conserver.err", "wb")
        self.proc = subprocess.Popen([CONSERVER, "-C", str(cf), "-P", str(passwd), "-p",
                                      str(self.port), "-M", "127.0.0.1"],
                                     stdout=self.err, stderr=subprocess.STDOUT)
        self.clients = []
        deadline = time.monotonic() + 30
        while b"[-- Console up --" not in self.log() or not self._listening():
            assert self.proc.poll() is None, (self.tmp / "conserver.err").read_text()
            assert time.monotonic() < deadline, "conserver did not connect to QEMU"
            time.sleep(0.1)

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def log(self):
        try:
            return self.log_path.read_bytes()
        except FileNotFoundError:
            return b""

    def client(self, *args):
        """A `console` client of console `guest`; its output goes to a file."""
        out = self.tmp / ("client%d.out" % len(self.clients))
        with open(out, "wb") as f:
            p = subprocess.Popen([CONSOLE, "-M", "127.0.0.1", "-p", str(self.port), *args,
                                  "guest"], stdin=subprocess.PIPE, stdout=f,
                                 stderr=subprocess.STDOUT)
        p.out = out
        self.clients.append(p)
        wait_for(lambda: b"[Enter `^Ec?' for help]" in out.read_bytes(), 30,
                 "the client's greeting")
        return p

    def wait_log(self, pattern, timeout):
        wait_for(lambda: pattern in self.log(), timeout, "%r in conserver's log" % pattern)

    def close(self):
        for p in self.clients:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()
        self.proc.terminate()
        self.proc.wait(10)
        self.err.close()
        self.vm.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("waiting for " + what)
        time.sleep(0.1)


def guest_output(log):
    """The guest's bytes in conserver's log after its "[-- Console up --"
    line, without the guest's banner (which went out before conserver
    connected, or after)."""
    out = log[log.index(b"]\r\n", log.index(b"[-- Console up --")) + 3:]
    return out[len(q.BANNER):] if out.startswith(q.BANNER) else out


@pytest.fixture(autouse=True)
def installed():
    assert os.access(CONSERVER, os.X_OK) and os.access(CONSOLE, os.X_OK), \
        "scripts/install-deps.sh installs conserver-server and conserver-client"


def test_conserver_client_that_stops_reading_does_not_stop_the_guest_or_the_log(guest, tmp_path):
    with Conserver(guest, tmp_path) as cs:
        spy = cs.client("-s")
        spy.send_signal(signal.SIGSTOP)  # never reads again
        typist = cs.client()
        t0 = time.monotonic()
        typist.stdin.write(q.stream_command(q.LINES_L))
        typist.stdin.flush()
        cs.wait_log(b"\nEND\n", STREAM_TIMEOUT)
        elapsed = time.monotonic() - t0
        want = q.expected_reply(q.LINES_L)
        got = guest_output(cs.log())
        assert got == want, q.first_difference(got, want)
        assert len(spy.out.read_bytes()) < len(want) // 2
        print("conserver, a stopped client: the guest streamed %d bytes in %.1f s "
              "(%.3f MiB/s), the log byte-exact; the stopped client got %d bytes"
              % (len(want), elapsed, len(want) / elapsed / 2**20, len(spy.out.read_bytes())))


def test_conserver_late_client_gets_the_last_20_lines_on_request(guest, tmp_path):
    with Conserver(guest, tmp_path) as cs:
        typist = cs.client()
        typist.stdin.write(q.stream_command(q.LINES_S))
        typist.stdin.flush()
        cs.wait_log(b"\nEND\n", STREAM_TIMEOUT)
        late = cs.client("-s")
        assert b"SEQ" not in late.out.read_bytes()  # nothing until it asks
        late.stdin.write(b"\x05cr")  # ^E c r: replay
        late.stdin.flush()
        last20 = b"".join(b"SEQ %08X\n" % i for i in range(q.LINES_S - 19, q.LINES_S)) + b"END\n"
        wait_for(lambda: last20 in late.out.read_bytes(), 30, "the replay")
        assert b"SEQ %08X\n" % (q.LINES_S - 21) not in late.out.read_bytes()


def test_conserver_timestamp_1l_stamps_every_line_of_the_log_and_not_the_clients(guest, tmp_path):
    """conserver.cf's `timestamp 1l`: each line of the log but the first
    after conserver connects starts with the local time to the second;
    clients get the guest's bytes unchanged."""
    with Conserver(guest, tmp_path, timestamp="1l") as cs:
        viewer = cs.client("-s")
        typist = cs.client()
        t0 = int(time.time())
        typist.stdin.write(q.stream_command(q.LINES_S))
        typist.stdin.flush()
        cs.wait_log(b"]END\n", STREAM_TIMEOUT)
        t1 = int(time.time()) + 1
        want = q.expected_reply(q.LINES_S)
        wait_for(lambda: want in viewer.out.read_bytes(), 30, "the viewer's stream")
        stamp = re.compile(rb"\[([A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \d{4})\]")
        log = guest_output(cs.log())
        stamps = stamp.findall(log)
        assert stamp.sub(b"", log) == want, q.first_difference(stamp.sub(b"", log), want)
        # Each line starts with a stamp, but the first one conserver logs
        # after it connected (the banner's or the stream's first line,
        # whichever came first: both happened in CI runs)
        lines = log.split(b"\n")[:-1]
        assert all(stamp.match(line) for line in lines[1:]), \
            [x for x in lines[1:] if not stamp.match(x)][:3]
        assert len(stamps) in (len(lines) - 1, len(lines)), (len(stamps), len(lines))
        times = [time.mktime(time.strptime(x.decode(), "%a %b %d %H:%M:%S %Y")) for x in stamps]
        assert times == sorted(times) and t0 - 1 <= times[0] and times[-1] <= t1
        assert not stamp.search(viewer.out.read_bytes())
        print("conserver timestamp 1l: %d lines stamped, to the second" % len(stamps))
