"""One measured boot of the test guest per function: throughput, stalled
viewer, echo latency, system-call profile."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import qemu as q
from rigs import Drain, build_rig, connect, cpu_seconds, start_qemu, wait_size

MIB = 1024 * 1024
STALL_RCVBUF = 4096
KEYS = b"abcdefghijklmnopqrstuvwxyz"  # no command letters (S, L, N)


class Session:
    """One boot of one rig: QEMU, the thread that drains viewers and pipes,
    the connected viewers.  Use as a context manager."""

    def __init__(self, rig_name, guest, tmp, console="serial", extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="run-", dir=tmp)
        self.drain = Drain()
        self.rig = build_rig(rig_name, self.dir, self.drain, console)
        self.rig.args += list(extra_args)
        self.socks = []
        self.vm = None
        self.drain.start()
        try:
            self.vm = start_qemu(self.rig, guest)
        except BaseException:
            self.close()
            raise
        self.binary = os.path.realpath(self.vm.binary)

    @property
    def log(self):
        return self.rig.sinks[0]

    def wait_banner(self, timeout=60):
        if self.rig.sinks:
            wait_size(self.log, self.vm, len(q.BANNER), timeout, poll=0.02)

    def viewer(self, port, reading=True, rcvbuf=None):
        s = connect(port, rcvbuf=rcvbuf)
        self.socks.append(s)
        if reading:
            self.drain.add(s.fileno())
        return s

    def reading_viewers(self):
        return [self.viewer(port) for port in self.rig.viewers]

    def start_stream(self, lines, viewers):
        """Type the stream command on the first viewer (or into the FIFO)."""
        cmd = q.stream_command(lines)
        if not viewers:
            os.write(self.rig.fifo_fd, cmd)
            return
        viewers[0].sendall(cmd)
        if self.rig.typist_leaves:
            leave(viewers[0])

    def wait_log(self, size, timeout):
        return wait_size(self.log, self.vm, size, timeout, poll=self.log.poll)

    def cpu(self):
        return cpu_seconds(self.vm.proc.pid)

    def multiplex_stats(self):
        if not self.rig.multiplex:
            return {}
        info = self.vm.cmd("x-query-chardev-multiplex", id=self.rig.multiplex)
        return {b["chardev"]: b for b in info["backends"]}

    def close(self):
        if self.vm is not None:
            self.vm.kill()
        self.drain.stop()
        for s in self.socks:
            s.close()
        self.rig.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def leave(viewer):
    """The viewer goes away.  Not close(): closing with unread data (the
    telnet negotiation) sends a reset, and QEMU would drop the typed command
    it has not read yet; after EOF it reads the rest, then disconnects."""
    viewer.shutdown(socket.SHUT_WR)


# ---- comparing a log with what the guest sent ---------------------------

def _mismatch(a, b, i, j, block=4096):
    """First k >= 0 with a[i+k] != b[j+k] (or the end of the shorter one)."""
    k = 0
    n = min(len(a) - i, len(b) - j)
    while k < n:
        m = min(block, n - k)
        if a[i + k:i + k + m] != b[j + k:j + k + m]:
            while a[i + k] == b[j + k]:
                k += 1
            return k
        k += m
    return n


def _repeated_byte(got, want, i, j, context=64):
    """got[i] repeats the byte before it, and got goes on as want[j:] after it."""
    after = got[i + 1:i + 1 + context]
    return j > 0 and got[i] == want[j - 1] and after == want[j:j + len(after)]


def compare(got, want):
    """('exact' | 'prefix' | 'duplicates' | 'differs', detail).

    'prefix': got is the first len(got) bytes of want (an unfinished run).
    'duplicates': got is want (or a prefix) with single bytes repeated; detail
    lists the offsets in got of the repeated bytes.
    """
    if got == want:
        return "exact", ""
    dups, i, j = [], 0, 0
    while True:
        k = _mismatch(got, want, i, j)
        i, j = i + k, j + k
        if i == len(got):
            break
        if _repeated_byte(got, want, i, j):
            dups.append(i)
            i += 1
            continue
        return "differs", q.first_difference(got, want)
    if not dups:
        return "prefix", "%d of %d bytes" % (len(got), len(want))
    state = "complete" if j == len(want) else "%d of %d bytes" % (j, len(want))
    return "duplicates", "%d duplicated byte(s) at log offsets %s; %s" % (
        len(dups), dups[:10], state)


# ---- throughput ----------------------------------------------------------

def throughput(rig_name, lines, guest, tmp, timeout=180, period=0.0, tick=None):
    """Stream `lines` lines with every viewer reading; time and CPU from the
    command to the last byte in the log (or, for a log that is expensive to
    poll, over a window inside the stream). With `tick`, tick(session) runs
    every `period` seconds while the guest streams."""
    with Session(rig_name, guest, tmp) as s:
        s.wait_banner()
        viewers = s.reading_viewers()
        want = q.BANNER + q.expected_reply(lines)
        cpu0, t0 = s.cpu(), time.monotonic()
        s.start_stream(lines, viewers)
        ticks = 0
        if s.log.windowed:
            nbytes, seconds, cpu = _window(s, len(want), timeout)
        else:
            if tick:
                t1, ticks = _wait_log_ticking(s, len(want), timeout, period, tick)
            else:
                t1 = s.wait_log(len(want), timeout)
            cpu1 = s.cpu()
            nbytes, seconds = len(q.expected_reply(lines)), t1 - t0
            cpu = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1])
        for sink in s.rig.sinks[1:]:
            wait_size(sink, s.vm, len(want), 10)
        verdicts = [compare(sink.data(s.vm), want)[0] for sink in s.rig.sinks]
        mib = nbytes / MIB
        return {
            "mib_s": mib / seconds,
            "cpu_s_per_mib": (cpu[0] + cpu[1]) / mib,
            "user_s_per_mib": cpu[0] / mib,
            "sys_s_per_mib": cpu[1] / mib,
            "exact": all(v == "exact" for v in verdicts),
            "ticks": ticks,
            "binary": s.binary,
        }


def _wait_log_ticking(s, size, timeout, period, tick):
    """wait_log(), calling tick(s) every `period` seconds; (time, ticks)."""
    t0 = time.monotonic()
    next_tick, ticks = t0 + period, 0
    while s.log.size() < size:
        now = time.monotonic()
        if now > t0 + timeout:
            raise TimeoutError("%d of %d bytes after %.0f s" % (s.log.size(), size, timeout))
        if now >= next_tick:
            tick(s)
            ticks += 1
            next_tick += period
        time.sleep(min(s.log.poll, max(0.0, next_tick - time.monotonic())))
    return time.monotonic(), ticks


def churn(rig_name, lines, guest, tmp, period=0.1, timeout=180):
    """throughput() with a viewer attached and detached over QMP every `period`
    seconds while the guest streams (period 0: no churn, the control). Each
    tick detaches and removes the previous extra viewer (a ringbuf chardev)
    and adds and attaches a new one; the log and the reading viewer must stay
    byte-exact."""
    attached = []

    def tick(s):
        if attached:
            s.vm.cmd("x-chardev-multiplex-detach", id=s.rig.multiplex, chardev=attached[-1])
            # Detaching finishes in the background; then the chardev is free.
            s.vm.get_event("MULTIPLEX_BACKEND_DETACHED", timeout=10)
            s.vm.cmd("chardev-remove", id=attached[-1])
        attached.append("churn%d" % len(attached))
        s.vm.cmd("chardev-add", id=attached[-1],
                 backend={"type": "ringbuf", "data": {"size": 65536}})
        s.vm.cmd("x-chardev-multiplex-attach", id=s.rig.multiplex, chardev=attached[-1],
                 overflow="drop")

    return throughput(rig_name, lines, guest, tmp, timeout, period, tick if period else None)


def _window(s, total, timeout, every=0.1):
    """(bytes, seconds, (user, sys)) between the second and the last log poll
    that fall inside the stream (the first one may still see start-up)."""
    deadline, points = time.monotonic() + timeout, []
    while True:
        time.sleep(every)
        before = time.monotonic()
        size = s.log.size(s.vm)
        if size >= total:
            break
        points.append(((before + time.monotonic()) / 2, size, s.cpu()))
        if time.monotonic() > deadline:
            raise TimeoutError("%d of %d bytes after %.0f s" % (size, total, timeout))
    if len(points) < 3:
        raise RuntimeError("stream too short to time over a window: use more --lines")
    (ta, ba, ca), (tb, bb, cb) = points[1], points[-1]
    return bb - ba, tb - ta, (cb[0] - ca[0], cb[1] - ca[1])


# ---- stalled viewer ------------------------------------------------------

VIEWER_MODES = ("stalled", "resumes", "leaves", "reads")
SAMPLE_S = 0.05  # seconds between log size samples of a stall run


def stalled(rig_name, mode, guest, tmp, max_s=60.0, idle_s=10.0, resume_after=5.0):
    """A viewer (small SO_RCVBUF) asks for the 'L' stream, then
    - 'stalled': never reads;
    - 'resumes': starts reading once the log did not grow for resume_after s;
    - 'leaves': disconnects at once (no viewer);
    - 'reads': reads all the time.
    Samples the log size every SAMPLE_S until END is in the log, max_s passed,
    or the log did not grow for idle_s."""
    assert mode in VIEWER_MODES, mode
    with Session(rig_name, guest, tmp) as s:
        s.wait_banner()
        viewer = s.viewer(s.rig.viewers[0], reading=mode == "reads", rcvbuf=STALL_RCVBUF)
        want = q.BANNER + q.expected_reply(q.LINES_L)
        cpu0, t0 = sum(s.cpu()), time.monotonic()
        viewer.sendall(q.stream_command(q.LINES_L))
        if mode == "leaves":
            leave(viewer)
        resume = (lambda: s.drain.add(viewer.fileno())) if mode == "resumes" else None
        samples, t_end, t_resumed = _sample_log(s, want, t0, max_s, idle_s, resume, resume_after)
        cpu = sum(s.cpu()) - cpu0
        got = s.log.data(s.vm)
        mib = len(q.expected_reply(q.LINES_L)) / MIB
        verdict, detail = compare(got, want)
        return {
            "samples": samples,
            "finished": t_end is not None,
            "t_end": t_end,
            "t_resumed": t_resumed,
            "mib_s": mib / t_end if t_end else None,
            "tail_mib_s": _tail_rate(samples, len(want)) if t_end else None,
            # while the guest waits for a stalled backend it polls at full speed
            "cpu_s_per_mib": cpu / mib if t_end else None,
            "log_bytes": len(got),
            "verdict": verdict,
            "detail": detail,
            "stats": s.multiplex_stats(),
            "binary": s.binary,
        }


def _tail_rate(samples, total, fraction=0.1):
    """MiB/s over the last `fraction` of the stream (a stalled viewer's socket
    is full by then: the kernel buffers ~2.85 MB of the 3.4 MB)."""
    t0, n0 = next((t, n) for t, n in samples if n >= total * (1 - fraction))
    t1, n1 = samples[-1]
    # Too few samples in a fast run to tell: leave it out.
    return (n1 - n0) / MIB / (t1 - t0) if t1 - t0 >= 4 * SAMPLE_S else None


def _sample_log(s, want, t0, max_s, idle_s, resume, resume_after):
    """[(t, log bytes)] every SAMPLE_S, the time END reached the log (or None),
    and the time `resume` was called (or None)."""
    samples, next_sample, last_growth, last_size, t_resumed = [], 0.0, 0.0, -1, None
    while True:
        t = time.monotonic() - t0
        size = s.log.size(s.vm)
        if size >= len(want) and s.log.data(s.vm).endswith(b"END\n"):
            samples.append((t, size))
            return samples, t, t_resumed
        if t >= next_sample:
            samples.append((t, size))
            next_sample += SAMPLE_S
        if size != last_size:
            last_size, last_growth = size, t
        if resume and t_resumed is None and t - last_growth >= resume_after:
            resume()
            t_resumed = last_growth = t
        if t > max_s or t - last_growth > idle_s:
            return samples, None, t_resumed
        time.sleep(0.01)


# ---- echo latency --------------------------------------------------------

def echo(rig_name, keys, guest, tmp):
    """Type `keys` keystrokes one at a time on the input viewer; the time
    from send to its echo, in ms."""
    with Session(rig_name, guest, tmp) as s:
        v = s.viewer(s.rig.viewers[0], reading=False)
        v.settimeout(30)
        reader = q.Reader(v)
        v.sendall(b"x")  # the guest may still be booting: it reads when ready
        reader.read_until(b"x", timeout=60)
        rtts = []
        for i in range(keys):
            key = KEYS[i % len(KEYS):][:1]
            t0 = time.perf_counter()
            v.sendall(key)
            reader.read_until(key, timeout=10)
            rtts.append((time.perf_counter() - t0) * 1000)
        return {"rtt_ms": rtts, "binary": s.binary}


# ---- system calls --------------------------------------------------------

def syscalls(rig_name, lines, guest, tmp, tool="perf"):
    """System calls per streamed byte, by name, counted on all of QEMU's
    threads during a stream (all viewers reading) with
    - perf: `perf stat` on the raw_syscalls:sys_enter tracepoint (all calls)
      and the calls a chardev makes (exact counts, little overhead), or
    - strace: `strace -c -f` (ptrace stops every call: QEMU runs many times
      slower, which also changes how often its threads contend)."""
    with Session(rig_name, guest, tmp) as s:
        s.wait_banner()
        viewers = s.reading_viewers()
        want = q.BANNER + q.expected_reply(lines)
        out = os.path.join(s.dir, "syscalls.txt")
        pid = str(s.vm.proc.pid)
        cmd = (["perf", "stat", "-x", ",", "-o", out, "-e", PERF_EVENTS, "-p", pid]
               if tool == "perf" else ["strace", "-c", "-f", "-o", out, "-p", pid])
        tracer = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(2)  # attaching to every thread
            if tracer.poll() is not None:
                raise RuntimeError("%s exited: %s" % (tool, tracer.stderr.read()))
            s.start_stream(lines, viewers)
            s.wait_log(len(want), 600)
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.communicate(timeout=30)
        calls = (_parse_perf if tool == "perf" else _parse_strace)(out)
        nbytes = len(q.expected_reply(lines))
        return {"per_byte": {name: n / nbytes for name, n in calls.items() if n},
                "tool": tool, "binary": s.binary}


PERF_SYSCALLS = ["write", "writev", "sendmsg", "sendto", "read", "readv", "recvmsg",
                 "futex", "ppoll", "poll", "ioctl"]
PERF_EVENTS = ",".join(["raw_syscalls:sys_enter"] +
                       ["syscalls:sys_enter_%s" % n for n in PERF_SYSCALLS])


def _parse_perf(path):
    """{syscall: calls} from `perf stat -x,` output; 'other' = the rest."""
    calls, total = {}, 0
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 3 or not parts[0].isdigit():
                continue
            if parts[2] == "raw_syscalls:sys_enter":
                total = int(parts[0])
            elif parts[2].startswith("syscalls:sys_enter_"):
                calls[parts[2][len("syscalls:sys_enter_"):]] = int(parts[0])
    calls["other"] = total - sum(calls.values())
    return calls


def _parse_strace(path):
    """{syscall: calls} from an `strace -c` table."""
    calls = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) in (5, 6) and re.fullmatch(r"[\d.]+", parts[0]) \
                    and parts[-1] != "total":
                calls[parts[-1]] = int(parts[3])
    return calls
