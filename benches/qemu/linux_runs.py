"""One measured boot of the Linux test guest (scripts/linux-guest/build.py)
per function: bulk console output through a rig (file, hub, multiplex, ...)
on hvc0 (virtio console) or ttyS0 (the kernel's 8250 driver).

The guest writes a file of `seq` lines with `dd bs=4096` while the tty's
output processing is off (stty -opost), so each write(2) of 4 KiB reaches
the console driver whole: hvc0 hands it to virtio in one go, the 8250 driver
feeds its 16-byte FIFO from it on THRE interrupts.  Throughput and QEMU's
CPU time are taken from the command to the end marker in the log, and every
checked sink must hold exactly the file's bytes between the markers.
"""

import os
import time

import linux
from rigs import wait_size
from runs import MIB, Session



def seq_lines_for(nbytes):
    """The smallest N such that `seq 1 N` prints at least nbytes."""
    total, n = 0, 0
    digits, start = 1, 1
    while True:
        end = start * 10 - 1
        per = digits + 1
        count = end - start + 1
        if total + count * per >= nbytes:
            return n + -(-(nbytes - total) // per)
        total += count * per
        n = end
        digits, start = digits + 1, start * 10


def _session(rig_name, console, gdir, tmp):
    extra = linux.boot_args(gdir)
    if console == "hvc":
        extra += ["-serial", "null"]  # the kernel's console; its shell idles
    return Session(rig_name, None, tmp, console=console, extra_args=extra)


def _wait_data(sink, vm, pred, timeout, what, min_size=0, poll=0.05):
    """Poll a sink until pred(data) holds (data read only once the sink has
    at least min_size bytes); returns (pred's value, time it held)."""
    deadline = time.monotonic() + timeout
    while True:
        if sink.size(vm) >= min_size:
            got = pred(sink.data(vm))
            if got:
                return got, time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError("%s: %d bytes after %.0f s" % (what, sink.size(vm), timeout))
        time.sleep(poll)


def _prompt_after(data, start):
    i = data.find(linux.PROMPT + b"\x1b[6n", start)
    return i + len(linux.PROMPT) + 4 if i >= 0 else None


def _framed_done(start, raw):
    """pred: the body of the framed command output after `start`, once its
    END marker and the next prompt are there."""
    def pred(data):
        b = linux.body(data[start:], raw)
        if b is None or _prompt_after(data, start) is None:
            return None
        return (b,)
    return pred


def throughput(rig_name, console, nbytes, gdir, tmp, timeout=600):
    """Boot, write a file of about nbytes in the guest, then time `dd bs=4096`
    of it to the console until the end marker is in the log."""
    with _session(rig_name, console, gdir, tmp) as s:
        ready = linux.READY_HVC0 if console == "hvc" else linux.READY_TTYS0
        _wait_data(s.log, s.vm, lambda d: _prompt_after(d, max(0, d.find(ready))) if ready in d
                   else None, 180, "boot", poll=0.1)
        viewers = s.reading_viewers()
        typist = viewers[0] if viewers else None

        def send(data):
            if typist is not None:
                typist.sendall(data)
            else:
                os.write(s.rig.fifo_fd, data)

        lines = seq_lines_for(nbytes)
        want = linux.seq(1, lines)
        start = s.log.size(s.vm)
        send(linux.framed("seq 1 %d >/tmp/f" % lines))
        _wait_data(s.log, s.vm, _framed_done(start, False), timeout, "writing /tmp/f",
                   poll=0.1)

        start = s.log.size(s.vm)
        cpu0, t0 = s.cpu(), time.monotonic()
        send(linux.framed("dd if=/tmp/f bs=4096 2>/dev/null", raw=True))
        # The end marker is in the log: read the log only once it is long enough.
        markers = len(linux.BEGIN + linux.END) + 2
        wait_size(s.log, s.vm, start + len(want) + markers, timeout, poll=s.log.poll)
        _, t1 = _wait_data(s.log, s.vm, lambda d: linux.END + b"\n" in d[start + len(want):],
                           timeout, "the end marker", poll=0.005)
        cpu1 = s.cpu()
        verdicts = []
        for sink in s.rig.sinks:
            (got,), _ = _wait_data(sink, s.vm, _framed_done(start, True), 30, "sink",
                                   min_size=start + len(want))
            verdicts.append(got == want)
        mib = len(want) / MIB
        user, sys_ = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
        return {
            "mib_s": mib / (t1 - t0),
            "cpu_s_per_mib": (user + sys_) / mib,
            "user_s_per_mib": user / mib,
            "sys_s_per_mib": sys_ / mib,
            "exact": all(verdicts),
            "stats": {k: v for k, v in s.multiplex_stats().items()},
            "binary": s.binary,
        }
