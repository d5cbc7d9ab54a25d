"""Bad input to `-chardev multiplex`, QMP `chardev-add`, fd sets and the QMP
commands around a multiplex chardev: the exact message the user gets.

Command line: QEMU must print exactly one line (or the few lines QemuOpts
prints for a bad size), ``qemu-system-x86_64: <option>: <message>``, and exit
with status 1 (not a signal, no core).  QMP: the error's class and 'desc'
are exact, and QEMU keeps running (query-status) with its console working.

The cases below are also the catalogue in BAD-INPUT.md, generated from them:

    /usr/bin/python3 tests/e2e/test_bad_input.py > tests/e2e/BAD-INPUT.md

(test_catalogue_is_up_to_date fails when the two disagree).

Placeholders: ``{pipe_r}``, ``{pipe_w}``, ``{sock}``, ``{file_ro}`` in
arguments are fds the test opens (the read and write ends of a pipe, one end
of a socketpair, a regular file opened read-only); ``{fd}`` in a message is
the number of QEMU's own duplicate of such an fd, which is not predictable
and is matched as any number.
"""

import json
import os
import re
import socket
import sys
from collections import namedtuple
from pathlib import Path

import pytest

import qemu as q

HERE = Path(__file__).resolve().parent
DOC = HERE.parent.parent / "docs" / "bad-input.md"
BEGIN, END = "<!-- bad-input catalogue: begin -->\n", "<!-- bad-input catalogue: end -->\n"
PROG = "qemu-system-x86_64"

# Backends that every command-line case can use.
NULLS = ["-chardev", "null,id=a", "-chardev", "null,id=b", "-chardev", "null,id=c"]

# what: the mistake; args: the command line after BASE_ARGS and NULLS (with
# fd placeholders); message: what QEMU prints after "<prog>: <option>: ";
# at: index in args of the option QEMU names (default: the last one).
Cli = namedtuple("Cli", "id what args message at", defaults=(None,))


def mplex(opts):
    return ["-chardev", "multiplex,id=m," + opts]


CLI_CASES = [
    # ---- the multiplex chardev's own options -------------------------------
    Cli("unknown-backend", "a backend that does not exist",
        mplex("muxA=a,muxB=nope"), "multiplex: backend 'nope' not found"),
    Cli("empty-backend", "an empty backend ID",
        mplex("muxA=,muxB=b"), "multiplex: backend '' not found"),
    Cli("backend-twice", "the same backend in two slots",
        mplex("muxA=a,muxB=a"), "multiplex: backend 'a' is given twice"),
    Cli("backend-twice-far", "the same backend in slots A and H",
        mplex("muxA=a,muxC=b,muxH=a"), "multiplex: backend 'a' is given twice"),
    Cli("slot-twice", "a slot given twice (QemuOpts: the last one wins)",
        mplex("muxA=a,muxB=b,muxA=b"), "multiplex: backend 'b' is given twice"),
    Cli("self", "the multiplex chardev as its own backend",
        mplex("muxA=a,muxB=m"), "multiplex: chardev 'm' cannot be its own backend"),
    Cli("in-use-by-multiplex", "a backend already used by another multiplex",
        ["-chardev", "multiplex,id=m1,muxA=a,muxB=b", *mplex("muxA=b,muxB=c")],
        "multiplex: backend 'b': chardev 'b' is already in use"),
    Cli("in-use-by-mux", "the chardev under a mux=on chardev (ID-base)",
        ["-chardev", "null,id=x,mux=on", *mplex("muxA=a,muxB=x-base")],
        "multiplex: backend 'x-base': chardev 'x-base' is already in use"),
    Cli("hub", "a hub chardev as backend",
        ["-chardev", "null,id=h1", "-chardev", "null,id=h2",
         "-chardev", "hub,id=h,chardevs.0=h1,chardevs.1=h2", *mplex("muxA=a,muxB=h")],
        "multiplex: backend 'h' is a multiplex or hub chardev or has 'mux=on'; "
        "they cannot be stacked"),
    Cli("mux-on", "a chardev with mux=on as backend",
        ["-chardev", "null,id=x,mux=on", *mplex("muxA=a,muxB=x")],
        "multiplex: backend 'x' is a multiplex or hub chardev or has 'mux=on'; "
        "they cannot be stacked"),
    Cli("multiplex", "another multiplex chardev as backend",
        ["-chardev", "null,id=d", "-chardev", "multiplex,id=m1,muxA=c,muxB=d",
         *mplex("muxA=a,muxB=m1")],
        "multiplex: backend 'm1' is a multiplex or hub chardev or has 'mux=on'; "
        "they cannot be stacked"),
    Cli("one-backend", "one backend",
        mplex("muxA=a"), "multiplex: 1 backend given, at least 2 are needed"),
    Cli("one-backend-h", "one backend, in slot H",
        mplex("muxH=a"), "multiplex: 1 backend given, at least 2 are needed"),
    Cli("no-backend", "no backend",
        mplex("queue-size=4k"), "multiplex: 0 backends given, at least 2 are needed"),
    Cli("input-unset-slot", "input= naming a slot that is not set",
        mplex("muxA=a,muxB=b,input=muxC"),
        "multiplex: input=muxC names a slot that is not set"),
    Cli("input-bogus", "input= naming neither a slot nor a chardev",
        mplex("muxA=a,muxB=b,input=bogus"),
        "multiplex: input 'bogus' is not one of the backends"),
    Cli("input-chardev-not-backend", "input= naming a chardev that is not a backend",
        mplex("muxA=a,muxB=b,input=c"),
        "multiplex: input 'c' is not one of the backends"),
    Cli("input-lowercase", "input= with a lower-case slot letter",
        mplex("muxA=a,muxB=b,input=muxa"),
        "multiplex: input 'muxa' is not one of the backends"),
    Cli("input-muxI", "input= naming a ninth slot",
        mplex("muxA=a,muxB=b,input=muxI"),
        "multiplex: input 'muxI' is not one of the backends"),
    Cli("input-empty", "an empty input=",
        mplex("muxA=a,muxB=b,input="),
        "multiplex: input '' is not one of the backends"),
    Cli("queue-old-name", "queue= (the option is queue-size=)",
        mplex("muxA=a,muxB=b,queue=4k"), "Invalid parameter 'queue'"),
    Cli("other-backend-replay", "replay-size= on a file chardev",
        ["-chardev", "file,id=x,path=/dev/null,replay-size=5"],
        "chardev: option 'replay-size' is only for the multiplex backend, not for 'file'"),
    Cli("other-backend-slot", "muxA= on a file chardev",
        ["-chardev", "file,id=x,path=/dev/null,muxA=a"],
        "chardev: option 'muxA' is only for the multiplex backend, not for 'file'"),
    Cli("other-backend-input", "input= on a socket chardev",
        ["-chardev", "socket,id=x,host=127.0.0.1,port=1,server=on,wait=off,input=a"],
        "chardev: option 'input' is only for the multiplex backend, not for 'socket'"),
    Cli("other-backend-coalesce", "coalesce-us= on a null chardev",
        ["-chardev", "null,id=x,coalesce-us=100"],
        "chardev: option 'coalesce-us' is only for the multiplex backend, not for 'null'"),
    Cli("other-backend-notice", "muxB-drop-notice= on a ringbuf chardev",
        ["-chardev", "ringbuf,id=x,muxB-drop-notice=on"],
        "chardev: option 'muxB-drop-notice' is only for the multiplex backend, "
        "not for 'ringbuf'"),
    Cli("overflow-unknown", "an unknown muxX-overflow value",
        mplex("muxA=a,muxB=b,muxA-overflow=lossy"),
        "multiplex: muxA-overflow must be 'block' or 'drop', not 'lossy'"),
    Cli("overflow-case", "muxX-overflow in upper case",
        mplex("muxA=a,muxB=b,muxB-overflow=DROP"),
        "multiplex: muxB-overflow must be 'block' or 'drop', not 'DROP'"),
    Cli("overflow-unset-slot", "muxX-overflow for a slot that is not set",
        mplex("muxA=a,muxB=b,muxC-overflow=drop"),
        "multiplex: muxC-overflow is given but muxC is not set"),
    Cli("drop-unknown", "an unknown muxX-drop value",
        mplex("muxA=a,muxB=b,muxB-overflow=drop,muxB-drop=words"),
        "multiplex: muxB-drop must be 'bytes' or 'lines', not 'words'"),
    Cli("drop-on-block", "muxX-drop on a block backend",
        mplex("muxA=a,muxB=b,muxB-overflow=block,muxB-drop=lines"),
        "multiplex: muxB-drop is not for muxB-overflow=block (a 'block' backend loses nothing)"),
    Cli("notice-on-block", "muxX-drop-notice=on on a block backend",
        mplex("muxA=a,muxB=b,muxA-overflow=block,muxA-drop-notice=on"),
        "multiplex: muxA-drop-notice is not for muxA-overflow=block "
        "(a 'block' backend loses nothing)"),
    Cli("notice-not-bool", "muxX-drop-notice that is not on or off",
        mplex("muxA=a,muxB=b,muxB-overflow=drop,muxB-drop-notice=yes please"),
        "Parameter 'muxB-drop-notice' expects 'on' or 'off'"),
    Cli("drop-unset-slot", "muxX-drop for a slot that is not set",
        mplex("muxA=a,muxB=b,muxC-drop=lines"),
        "multiplex: muxC-drop is given but muxC is not set"),
    Cli("queue-zero", "queue-size=0",
        mplex("muxA=a,muxB=b,queue-size=0"),
        "multiplex: queue size 0 is out of range (1 to 67108864 bytes)"),
    Cli("queue-too-big", "queue larger than 64 MiB",
        mplex("muxA=a,muxB=b,queue-size=65M"),
        "multiplex: queue size 68157440 is out of range (1 to 67108864 bytes)"),
    Cli("queue-16E", "a queue size that does not fit 64 bits",
        mplex("muxA=a,muxB=b,queue-size=16E"),
        "Value '16E' is out of range for parameter 'queue-size'"),
    Cli("queue-not-a-number", "a non-numeric queue size",
        mplex("muxA=a,muxB=b,queue-size=abc"),
        "Parameter 'queue-size' expects a non-negative number below 2^64\n"
        "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
        "and exabytes, respectively."),
    Cli("replay-over-default-queue", "replay larger than the default queue",
        mplex("muxA=a,muxB=b,replay-size=65537"),
        "multiplex: replay size 65537 is larger than the queue size 65536"),
    Cli("replay-over-queue", "replay larger than queue",
        mplex("muxA=a,muxB=b,queue-size=4k,replay-size=8k"),
        "multiplex: replay size 8192 is larger than the queue size 4096"),
    Cli("replay-negative", "a negative replay size",
        mplex("muxA=a,muxB=b,replay-size=-1"),
        "Value '-1' is out of range for parameter 'replay-size'"),
    Cli("replay-not-a-number", "a non-numeric replay size",
        mplex("muxA=a,muxB=b,replay-size=lots"),
        "Parameter 'replay-size' expects a non-negative number below 2^64\n"
        "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
        "and exabytes, respectively."),
    Cli("coalesce-too-long", "coalesce-us over 100 ms",
        mplex("muxA=a,muxB=b,coalesce-us=100001"),
        "multiplex: coalesce-us 100001 is out of range (0 to 100000 microseconds)"),
    Cli("coalesce-negative", "a negative coalesce-us",
        mplex("muxA=a,muxB=b,coalesce-us=-1"),
        "multiplex: coalesce-us -1 is out of range (0 to 100000 microseconds)"),
    Cli("coalesce-not-a-number", "coalesce-us with a unit",
        mplex("muxA=a,muxB=b,coalesce-us=1ms"), "Parameter 'coalesce-us' expects a number"),
    Cli("muxI", "a ninth slot muxI",
        mplex("muxA=a,muxB=b,muxI=c"), "Invalid parameter 'muxI'"),
    Cli("muxI-overflow", "muxI-overflow",
        mplex("muxA=a,muxB=b,muxI-overflow=drop"), "Invalid parameter 'muxI-overflow'"),
    Cli("duplicate-id", "an ID that another chardev has",
        ["-chardev", "multiplex,id=a,muxA=b,muxB=c"], "Duplicate ID 'a' for chardev"),
    # ---- frontends that want a backend (or the multiplex) as well -------------
    Cli("backend-used-by-device", "a device using a backend of the multiplex",
        [*mplex("muxA=a,muxB=b"), "-device", "isa-serial,chardev=a"],
        "Property 'serial.chardev' can't take value 'a': chardev 'a' is already in use"),
    Cli("backend-used-by-monitor", "a monitor using a backend of the multiplex",
        [*mplex("muxA=a,muxB=b"), "-mon", "chardev=b"],
        "chardev 'b' is already in use"),
    Cli("backend-used-by-hub", "a hub using a backend of the multiplex",
        [*mplex("muxA=a,muxB=b"), "-chardev", "hub,id=h,chardevs.0=a,chardevs.1=c"],
        "chardev 'a' is already in use"),
    Cli("two-frontends", "two devices on the multiplex chardev",
        [*mplex("muxA=a,muxB=b"), "-device", "isa-serial,chardev=m",
         "-device", "isa-serial,chardev=m"],
        "Property 'serial.chardev' can't take value 'm': chardev 'm' is already in use"),
    # ---- fd sets ---------------------------------------------------------------
    Cli("fdset-read-end-for-file", "a pipe's read end for `file` output",
        ["-add-fd", "set=2,fd={pipe_r}", "-chardev", "file,id=log,path=/dev/fdset/2"],
        "fdset 2 has no fd opened write-only: fd {fd}: pipe, read-only"),
    Cli("fdset-read-end-opaque", "the same, with append=on and an opaque string",
        ["-add-fd", "set=2,fd={pipe_r},opaque=serial0-log",
         "-chardev", "file,id=log,path=/dev/fdset/2,append=on"],
        "fdset 2 has no fd opened write-only: fd {fd}: pipe, read-only (opaque 'serial0-log')"),
    Cli("fdset-socket-for-file", "a socket (read-write) for `file` output",
        ["-add-fd", "set=2,fd={sock}", "-chardev", "file,id=log,path=/dev/fdset/2"],
        "fdset 2 has no fd opened write-only: fd {fd}: socket, read-write"),
    Cli("fdset-read-only-file", "a regular file opened read-only for `file` output",
        ["-add-fd", "set=2,fd={file_ro}", "-chardev", "file,id=log,path=/dev/fdset/2"],
        "fdset 2 has no fd opened write-only: fd {fd}: regular file {file_ro_path}, "
        "read-only"),
    Cli("fdset-write-end-for-pipe", "a pipe's write end for the `pipe` chardev "
        "(which needs read-write, e.g. a socket)",
        ["-add-fd", "set=2,fd={pipe_w}", "-chardev", "pipe,id=log,path=/dev/fdset/2"],
        "fdset 2 has no fd opened read-write: fd {fd}: pipe, write-only"),
    Cli("fdset-both-ends-for-pipe", "both ends of a pipe in one set for the `pipe` chardev",
        ["-add-fd", "set=2,fd={pipe_r}", "-add-fd", "set=2,fd={pipe_w}",
         "-chardev", "pipe,id=log,path=/dev/fdset/2"],
        "fdset 2 has no fd opened read-write: fd {fd}: pipe, write-only; "
        "fd {fd}: pipe, read-only"),  # the set lists the fd added last first
    Cli("fdset-input-path-write-only", "input-path= on a write-only fd",
        ["-add-fd", "set=2,fd={pipe_w}", "-add-fd", "set=3,fd={pipe_w2}",
         "-chardev", "file,id=log,path=/dev/fdset/2,input-path=/dev/fdset/3"],
        "fdset 3 has no fd opened read-only: fd {fd}: pipe, write-only"),
    Cli("fdset-missing", "a set that does not exist",
        ["-add-fd", "set=2,fd={pipe_w}", "-chardev", "file,id=log,path=/dev/fdset/9"],
        "Failed to find fdset /dev/fdset/9"),
    Cli("add-fd-closed", "-add-fd of an fd that is not open",
        ["-add-fd", "set=2,fd=250", "-chardev", "file,id=log,path=/dev/fdset/2"],
        "fd is not valid or already in use", at=0),
    Cli("add-fd-stdio", "-add-fd of stderr",
        ["-add-fd", "set=2,fd=2", "-chardev", "file,id=log,path=/dev/fdset/2"],
        "fd cannot be a standard I/O stream", at=0),
]


class Fds:
    """The fds a command-line case may refer to, inherited by QEMU."""

    def __init__(self, tmpdir):
        self.pipe_r, self.pipe_w = os.pipe()
        self.pipe_w2 = os.dup(self.pipe_w)
        self.s1, self.s2 = socket.socketpair()
        self.file_ro_path = str(Path(tmpdir) / "readonly.log")
        Path(self.file_ro_path).write_bytes(b"")
        self.file_ro = os.open(self.file_ro_path, os.O_RDONLY)
        self.values = {"pipe_r": self.pipe_r, "pipe_w": self.pipe_w,
                       "pipe_w2": self.pipe_w2, "sock": self.s2.fileno(),
                       "file_ro": self.file_ro, "file_ro_path": self.file_ro_path}

    def pass_fds(self):
        return [v for k, v in self.values.items() if isinstance(v, int)]

    def close(self):
        for fd in (self.pipe_r, self.pipe_w, self.pipe_w2, self.file_ro):
            os.close(fd)
        self.s1.close()
        self.s2.close()


def fill(text, values):
    """Replace {name} placeholders (but not {fd}) with values."""
    return re.sub(r"\{(\w+)\}",
                  lambda m: m.group(0) if m.group(1) == "fd" else str(values[m.group(1)]),
                  text)


def message_regex(message):
    """The exact message, with each {fd} matching any fd number."""
    return r"\d+".join(re.escape(part) for part in message.split("{fd}"))


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_command_line_error(case, tmp_path):
    fds = Fds(tmp_path)
    try:
        args = [fill(a, fds.values) for a in case.args]
        r = q.run_to_exit(NULLS + args, pass_fds=fds.pass_fds())
    finally:
        fds.close()
    at = len(args) - 2 if case.at is None else case.at
    option = "%s %s" % (args[at], args[at + 1])
    want = "%s: %s: %s\n" % (PROG, option, fill(case.message, fds.values))
    assert re.fullmatch(message_regex(want), r.stderr), \
        "stderr:\n%s\nwant:\n%s" % (r.stderr, want)
    # A clean exit: status 1, not a signal (which would be negative) or abort.
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stdout == ""


def test_serial_option_on_a_backend_in_use_exits_cleanly():
    """-serial chardev:ID on a chardev already in use (a multiplex's backend,
    a hub's, or one -serial given twice) is an error with exit 1, as with
    -device isa-serial,chardev=ID; stock QEMU 10.2.2 aborts (SIGABRT,
    "Unexpected error in qemu_chr_fe_init()"): fixed by the series' patch
    "hw/char/serial-isa: exit cleanly when -serial's chardev is in use"."""
    for extra in (mplex("muxA=a,muxB=b"),
                  ["-chardev", "hub,id=h,chardevs.0=a,chardevs.1=b"],
                  ["-serial", "chardev:a"]):
        r = q.run_to_exit(NULLS + extra + ["-serial", "chardev:a"])
        assert r.returncode == 1, (extra, r.returncode, r.stderr)
        assert r.stderr.endswith("%s: Property 'serial.chardev' can't take value 'a': "
                                 "chardev 'a' is already in use\n" % PROG), r.stderr


# ---- QMP --------------------------------------------------------------------

# what: the mistake; args: chardev-add's arguments (or another command's);
# desc: the error's 'desc' (class is always GenericError).
Qmp = namedtuple("Qmp", "id what args desc cmd", defaults=("chardev-add",))


def mpx(backends, chardev_id="new", **data):
    """chardev-add arguments for a multiplex chardev; `backends` are IDs or dicts."""
    data = {k.replace("_", "-"): v for k, v in data.items()}
    data["backends"] = [b if isinstance(b, dict) else {"chardev": b} for b in backends]
    return {"id": chardev_id, "backend": {"type": "multiplex", "data": data}}


def raw(data, chardev_id="new"):
    return {"id": chardev_id, "backend": {"type": "multiplex", "data": data}}


def failed(msg):
    return "Failed to add chardev 'new': " + msg


STACK = "is a multiplex or hub chardev or has 'mux=on'; they cannot be stacked"

QMP_CASES = [
    Qmp("unknown-backend", "a backend that does not exist",
        mpx(["a", "nope"]), failed("multiplex: backend 'nope' not found")),
    Qmp("backend-twice", "the same backend twice",
        mpx(["a", "b", "a"]), failed("multiplex: backend 'a' is given twice")),
    Qmp("self", "the new chardev as its own backend",
        mpx(["a", "new"]), failed("multiplex: chardev 'new' cannot be its own backend")),
    Qmp("in-use-by-device", "a backend a device uses",
        mpx(["a", "used"]), failed("multiplex: backend 'used': chardev 'used' is already in use")),
    Qmp("in-use-by-multiplex", "a backend of the console's multiplex",
        mpx(["a", "log"]), failed("multiplex: backend 'log': chardev 'log' is already in use")),
    Qmp("in-use-by-monitor", "the QMP monitor's chardev",
        mpx(["a", "compat_monitor0"]),
        failed("multiplex: backend 'compat_monitor0': chardev 'compat_monitor0' "
               "is already in use")),
    Qmp("in-use-by-mux", "the chardev under a mux=on chardev",
        mpx(["a", "mx-base"]), failed("multiplex: backend 'mx-base': chardev 'mx-base' "
                                      "is already in use")),
    Qmp("hub", "a hub chardev", mpx(["a", "h"]), failed("multiplex: backend 'h' " + STACK)),
    Qmp("mux-on", "a chardev with mux=on", mpx(["a", "mx"]),
        failed("multiplex: backend 'mx' " + STACK)),
    Qmp("multiplex", "another multiplex chardev", mpx(["a", "serial0"]),
        failed("multiplex: backend 'serial0' " + STACK)),
    Qmp("one-backend", "one backend", mpx(["a"]),
        failed("multiplex: 1 backend given, at least 2 are needed")),
    Qmp("no-backend", "an empty list", mpx([]),
        failed("multiplex: 0 backends given, at least 2 are needed")),
    Qmp("nine-backends", "9 backends", mpx(["a", "b", "c", "d", "e", "f", "g", "h1", "i"]),
        failed("multiplex: 9 backends given, at most 8 are supported")),
    Qmp("input-not-a-backend", "input naming a chardev that is not a backend",
        mpx(["a", "b"], input="c"), failed("multiplex: input 'c' is not one of the backends")),
    Qmp("input-missing", "input naming a chardev that does not exist",
        mpx(["a", "b"], input="nope"),
        failed("multiplex: input 'nope' is not one of the backends")),
    Qmp("input-slot-name", "input as a command-line slot name",
        mpx(["a", "b"], input="muxB"), failed("multiplex: input 'muxB' is not one of the backends")),
    Qmp("input-wrong-type", "input as a number",
        mpx(["a", "b"], input=1), "Invalid parameter type for 'input', expected: StrOrNull"),
    Qmp("input-none-string", "input \"none\" (QMP spells it null)",
        mpx(["a", "b"], input="none"), failed("multiplex: input 'none' is not one of the backends")),
    Qmp("overflow-unknown", "an unknown overflow value",
        mpx([{"chardev": "a", "overflow": "lossy"}, "b"]),
        "Parameter 'overflow' does not accept value 'lossy'"),
    Qmp("overflow-wrong-type", "overflow as a number",
        mpx([{"chardev": "a", "overflow": 1}, "b"]),
        "Invalid parameter type for 'backend.data.backends[0].overflow', expected: string"),
    Qmp("queue-zero", "queue-size 0", mpx(["a", "b"], queue_size=0),
        failed("multiplex: queue size 0 is out of range (1 to 67108864 bytes)")),
    Qmp("queue-too-big", "queue-size 64 MiB + 1", mpx(["a", "b"], queue_size=(64 << 20) + 1),
        failed("multiplex: queue size 67108865 is out of range (1 to 67108864 bytes)")),
    Qmp("queue-negative", "queue-size -1 (QAPI takes it as 2^64-1)",
        mpx(["a", "b"], queue_size=-1),
        failed("multiplex: queue size 18446744073709551615 is out of range "
               "(1 to 67108864 bytes)")),
    Qmp("queue-string", "queue-size as a string",
        mpx(["a", "b"], queue_size="4k"), "Parameter 'backend.data.queue-size' expects uint64"),
    Qmp("replay-over-default-queue", "replay-size larger than the default queue",
        mpx(["a", "b"], replay_size=65537),
        failed("multiplex: replay size 65537 is larger than the queue size 65536")),
    Qmp("replay-over-queue", "replay-size larger than queue-size",
        mpx(["a", "b"], queue_size=4096, replay_size=4097),
        failed("multiplex: replay size 4097 is larger than the queue size 4096")),
    Qmp("coalesce-too-long", "coalesce-us over 100 ms",
        mpx(["a", "b"], coalesce_us=100001),
        failed("multiplex: coalesce-us 100001 is out of range (0 to 100000 microseconds)")),
    Qmp("coalesce-negative", "coalesce-us -1",
        mpx(["a", "b"], coalesce_us=-1), "Parameter 'coalesce-us' expects uint32_t"),
    Qmp("coalesce-string", "coalesce-us as a string",
        mpx(["a", "b"], coalesce_us="1000"),
        "Parameter 'backend.data.coalesce-us' expects uint64"),
    Qmp("missing-backends", "no backends member", raw({}),
        "Parameter 'backend.data.backends' is missing"),
    Qmp("backends-string", "backends as a string", raw({"backends": "a,b"}),
        "Invalid parameter type for 'backend.data.backends', expected: array"),
    Qmp("backends-of-strings", "backends as a list of IDs", raw({"backends": ["a", "b"]}),
        "Invalid parameter type for 'backend.data.backends[0]', expected: object"),
    Qmp("backend-without-chardev", "a backend without chardev",
        mpx(["a", {"overflow": "drop"}]), "Parameter 'backend.data.backends[1].chardev' is missing"),
    Qmp("backend-extra-member", "a backend with an unknown member",
        mpx(["a", {"chardev": "b", "slot": "muxB"}]),
        "Parameter 'backend.data.backends[1].slot' is unexpected"),
    Qmp("command-line-spelling", "command-line options in QMP",
        raw({"backends": [{"chardev": "a"}, {"chardev": "b"}], "muxA": "a"}),
        "Parameter 'backend.data.muxA' is unexpected"),
    Qmp("missing-data", "no data member", {"id": "new", "backend": {"type": "multiplex"}},
        "Parameter 'backend.data' is missing"),
    Qmp("duplicate-id", "the ID of an existing chardev", mpx(["b", "c"], chardev_id="a"),
        "Chardev with id 'a' already exists"),
    Qmp("fdset-read-end-for-file", "a `file` chardev on an fd set holding a pipe's read end",
        {"id": "new", "backend": {"type": "file", "data": {"out": "/dev/fdset/7"}}},
        failed("fdset 7 has no fd opened write-only: fd {fd}: pipe, read-only")),
    Qmp("fdset-missing", "a `file` chardev on a set that does not exist",
        {"id": "new", "backend": {"type": "file", "data": {"out": "/dev/fdset/9"}}},
        failed("Failed to find fdset /dev/fdset/9")),
    # ---- other commands on a multiplex chardev and its backends ----------------
    Qmp("remove-backend", "chardev-remove of a backend", {"id": "log"},
        "Chardev 'log' is busy", "chardev-remove"),
    Qmp("remove-multiplex", "chardev-remove of the multiplex while the serial port uses it",
        {"id": "serial0"}, "Chardev 'serial0' is busy", "chardev-remove"),
    Qmp("change-backend", "chardev-change of a backend",
        {"id": "tcp", "backend": {"type": "null", "data": {}}},
        "Chardev user does not support chardev hotswap", "chardev-change"),
    Qmp("change-to-same-backends", "chardev-change of the multiplex to a multiplex "
        "with the same backends (they are still the old one's)",
        mpx(["log", "tcp"], chardev_id="serial0"),
        "multiplex: backend 'log': chardev 'log' is already in use", "chardev-change"),
    Qmp("attach-missing", "attaching a chardev that does not exist",
        {"id": "serial0", "chardev": "nope"},
        "multiplex: backend 'nope' not found", "x-chardev-multiplex-attach"),
    Qmp("attach-used", "attaching a chardev a device uses",
        {"id": "serial0", "chardev": "used"},
        "multiplex: backend 'used': chardev 'used' is already in use",
        "x-chardev-multiplex-attach"),
    Qmp("attach-twice", "attaching one of its backends again",
        {"id": "serial0", "chardev": "log"},
        "multiplex: backend 'log' is given twice", "x-chardev-multiplex-attach"),
    Qmp("attach-itself", "attaching the multiplex to itself",
        {"id": "serial0", "chardev": "serial0"},
        "multiplex: chardev 'serial0' cannot be its own backend",
        "x-chardev-multiplex-attach"),
    Qmp("attach-hub", "attaching a hub chardev",
        {"id": "serial0", "chardev": "h"},
        "multiplex: backend 'h' is a multiplex or hub chardev or has 'mux=on'; "
        "they cannot be stacked", "x-chardev-multiplex-attach"),
    Qmp("attach-notice-on-block", "attaching a block backend with drop-notice",
        {"id": "serial0", "chardev": "a", "overflow": "block", "drop-notice": True},
        "multiplex: backend 'a': 'drop-notice' is not for overflow 'block' "
        "(a 'block' backend loses nothing)", "x-chardev-multiplex-attach"),
    Qmp("attach-drop-on-block", "attaching a block backend with a drop unit",
        {"id": "serial0", "chardev": "a", "overflow": "block", "drop": "lines"},
        "multiplex: backend 'a': 'drop' is not for overflow 'block' "
        "(a 'block' backend loses nothing)", "x-chardev-multiplex-attach"),
    Qmp("attach-drop-unknown", "an unknown drop unit",
        {"id": "serial0", "chardev": "a", "overflow": "drop", "drop": "words"},
        "Parameter 'drop' does not accept value 'words'", "x-chardev-multiplex-attach"),
    Qmp("attach-not-multiplex", "attaching to a chardev that is not a multiplex",
        {"id": "a", "chardev": "b"},
        "Chardev 'a' is not a multiplex chardev", "x-chardev-multiplex-attach"),
    Qmp("detach-not-backend", "detaching a chardev that is not a backend",
        {"id": "serial0", "chardev": "a"},
        "multiplex: chardev 'a' is not a backend of multiplex chardev 'serial0'",
        "x-chardev-multiplex-detach"),
    Qmp("detach-missing-multiplex", "detaching from a multiplex that does not exist",
        {"id": "nope", "chardev": "log"},
        "Chardev 'nope' not found", "x-chardev-multiplex-detach"),
    Qmp("set-input-not-backend", "moving the input to a chardev that is not a backend",
        {"id": "serial0", "input": "a"},
        "multiplex: chardev 'a' is not a backend of multiplex chardev 'serial0'",
        "x-chardev-multiplex-set-input"),
    Qmp("set-input-not-multiplex", "moving the input of a chardev that is not a multiplex",
        {"id": "a", "input": None},
        "Chardev 'a' is not a multiplex chardev", "x-chardev-multiplex-set-input"),
    Qmp("query-not-multiplex", "x-query-chardev-multiplex of another chardev",
        {"id": "a"}, "Chardev 'a' is not a multiplex chardev", "x-query-chardev-multiplex"),
    Qmp("query-missing", "x-query-chardev-multiplex of a missing chardev",
        {"id": "nope"}, "Chardev 'nope' not found", "x-query-chardev-multiplex"),
]


class Console:
    """The running VM for the QMP cases: the guest's console on a multiplex
    (log: a socketpair from -add-fd; tcp: a server socket), plus chardevs for
    the cases to name."""

    def __init__(self, guest):
        self.log_end, qemu_end = socket.socketpair()
        self.pipe_r, self.pipe_w = os.pipe()
        self.port = q.free_port()
        fds = [qemu_end.fileno(), self.pipe_r]
        args = ["-add-fd", "set=1,fd=%d" % fds[0],
                "-add-fd", "set=7,fd=%d" % self.pipe_r,
                "-chardev", "pipe,id=log,path=/dev/fdset/1",
                "-chardev", "socket,id=tcp,host=127.0.0.1,port=%d,server=on,wait=off" % self.port,
                "-chardev", "multiplex,id=serial0,muxA=log,muxB=tcp",
                "-serial", "chardev:serial0",
                *NULLS, "-chardev", "null,id=used", "-device", "isa-serial,chardev=used",
                "-chardev", "null,id=hb", "-chardev", "null,id=hc",
                "-chardev", "hub,id=h,chardevs.0=hb,chardevs.1=hc",
                "-chardev", "null,id=mx,mux=on"]
        self.vm = q.Qemu(args, guest=guest, pass_fds=fds)
        qemu_end.close()
        self.log = q.Reader(self.log_end)
        assert self.log.read_exact(len(q.BANNER), timeout=30) == q.BANNER

    def close(self):
        self.vm.kill()
        self.log_end.close()
        os.close(self.pipe_r)
        os.close(self.pipe_w)


@pytest.fixture(scope="module")
def console(guest):
    c = Console(guest)
    yield c
    c.close()


@pytest.mark.parametrize("case", QMP_CASES, ids=[c.id for c in QMP_CASES])
def test_qmp_error(console, case):
    vm = console.vm
    r = vm.cmd_raw(case.cmd, case.args)
    assert "error" in r, r
    assert r["error"]["class"] == "GenericError", r
    assert re.fullmatch(message_regex(case.desc), r["error"]["desc"]), \
        "desc %r, want %r" % (r["error"]["desc"], case.desc)
    assert vm.proc.poll() is None, vm.log()
    assert vm.cmd("query-status")["status"] == "running"
    assert "new" not in {c["label"] for c in vm.cmd("query-chardev")}


def test_qmp_failures_left_every_backend_free_and_the_console_working(console):
    """Runs after the cases above (same VM): a failed chardev-add released the
    backends it had claimed, and the multiplex console still works."""
    vm = console.vm
    assert vm.cmd("chardev-add", **mpx(["a", "b", "c"], input=None)) == {}
    info = vm.cmd("x-query-chardev-multiplex", id="new")
    assert [b["chardev"] for b in info["backends"]] == ["a", "b", "c"]
    assert [b["input"] for b in info["backends"]] == [False, False, False]
    assert vm.cmd("chardev-remove", id="new") == {}
    for chardev in ("a", "b", "c"):
        assert vm.cmd("chardev-remove", id=chardev) == {}

    with socket.create_connection(("127.0.0.1", console.port), timeout=10) as viewer:
        viewer.sendall(q.stream_command(q.LINES_S))
        want = q.expected_reply(q.LINES_S)
        got = console.log.read_exact(len(want), timeout=60)
        assert got == want, q.first_difference(got, want)
    assert vm.log() == ""


def test_send_break_reaches_the_guest_only_from_the_multiplex_or_its_input(console):
    """chardev-send-break on the multiplex chardev or on its input backend
    reaches the 16550 (the guest echoes the NUL it reads); on another backend
    it is dropped."""
    vm = console.vm
    for chardev, echoed in (("serial0", b"\0"), ("log", b""), ("tcp", b"\0")):
        assert vm.cmd("chardev-send-break", id=chardev) == {}
        # A marker after the break: what arrives before it is the break's echo.
        with socket.create_connection(("127.0.0.1", console.port), timeout=10) as viewer:
            viewer.sendall(b"|")
            got = console.log.read_until(b"|", timeout=30)
        assert got == echoed + b"|", (chardev, got)
    assert vm.cmd("query-status")["status"] == "running"


def test_remove_or_change_of_a_multiplex_frees_its_backends():
    """The accepted counterparts of the busy cases: without a frontend the
    multiplex chardev can be removed, with one it can be swapped for another
    chardev (chardev-change); either way its backends are free again."""
    args = ["-chardev", "null,id=p", "-chardev", "null,id=r",
            "-chardev", "multiplex,id=m0,muxA=p,muxB=r",
            "-chardev", "null,id=s", "-chardev", "null,id=t",
            "-chardev", "multiplex,id=m1,muxA=s,muxB=t", "-device", "isa-serial,chardev=m1",
            "-S"]
    with q.Qemu(args) as vm:
        assert vm.cmd_raw("chardev-remove", {"id": "p"})["error"]["desc"] == "Chardev 'p' is busy"
        assert vm.cmd("chardev-remove", id="m0") == {}
        assert vm.cmd("chardev-remove", id="p") == {}
        assert vm.cmd("chardev-change", id="m1", backend={"type": "null", "data": {}}) == {}
        assert vm.cmd("chardev-remove", id="s") == {}
        # ... and usable by a new multiplex chardev, which can be swapped in.
        assert vm.cmd("chardev-change", **mpx(["r", "t"], chardev_id="m1")) == {}
        assert [b["chardev"] for b in
                vm.cmd("x-query-chardev-multiplex", id="m1")["backends"]] == ["r", "t"]
        assert vm.cmd("query-status")["status"] == "prelaunch"
        assert vm.log() == ""


# ---- the catalogue ----------------------------------------------------------

def _md(text):
    return text.replace("|", "\\|").replace("\n", "<br>")


def _code(text):
    return "`%s`" % text.replace("|", "\\|") if text else ""


def _cli_shown(case):
    shown = {"pipe_r": "R", "pipe_w": "W", "pipe_w2": "W2", "sock": "S",
             "file_ro": "F", "file_ro_path": "/tmp/.../readonly.log"}
    return [fill(a, shown) for a in case.args]


def render_catalogue():
    out = ["# Bad input: what the user is told", "",
           "Generated from `tests/e2e/test_bad_input.py` (its `CLI_CASES` and `QMP_CASES`,",
           "which the tests check against the patched QEMU); regenerate with",
           "`/usr/bin/python3 tests/e2e/test_bad_input.py --update-doc`.", "",
           "## Command line", "",
           "Every case ends with exit status 1 and exactly this on stderr (after",
           "`qemu-system-x86_64: <option>: `; the option is the last one shown unless",
           "marked). Every case also has `-chardev null,id=a -chardev null,id=b",
           "-chardev null,id=c` first. `R`/`W` are a pipe's read/write end, `W2` a",
           "duplicate of `W`, `S` one end of a socketpair, `F` a regular file opened",
           "read-only, all inherited by QEMU; `fd N` is QEMU's duplicate of such an fd.", "",
           "| mistake | command line | message |", "| --- | --- | --- |"]
    for c in CLI_CASES:
        args = _cli_shown(c)
        if c.at is not None:
            args[c.at] = "**%s**" % args[c.at]
        cmdline = " ".join(args)
        msg = c.message.replace("{fd}", "N").replace(
            "{file_ro_path}", "/tmp/.../readonly.log")
        out.append("| %s | %s | %s |" % (_md(c.what), _code(cmdline),
                                          "<br>".join(_code(m) for m in msg.split("\n"))))
    out += ["", "`-serial chardev:ID` naming a chardev that a multiplex (or a hub, or",
            "another `-serial`) already uses exits with status 1 and",
            "`Property 'serial.chardev' can't take value 'ID': chardev 'ID' is already",
            "in use`; stock QEMU 10.2.2 aborts there (`Unexpected error in",
            "qemu_chr_fe_init()`, SIGABRT), which the series' patch \"hw/char/serial-isa:",
            "exit cleanly when -serial's chardev is in use\" fixes",
            "(`test_serial_option_on_a_backend_in_use_exits_cleanly`).", "",
            "## QMP", "",
            "Each command fails with class `GenericError` and exactly this `desc`; QEMU",
            "keeps running, the console keeps working, and a failed `chardev-add` leaves",
            "every backend it had claimed free. The VM has the guest's console on",
            "`-chardev multiplex,id=serial0,muxA=log,muxB=tcp` (`log` a `pipe` chardev on",
            "an fd set, `tcp` a server socket), null chardevs `a`, `b`, `c`, `used` (a",
            "second `isa-serial`'s), a hub `h` over `hb` and `hc`, `mx` with `mux=on`,",
            "the QMP monitor's `compat_monitor0`, and fd set 7 with a pipe's read end.",
            "", "| mistake | command and arguments | desc |", "| --- | --- | --- |"]
    for c in QMP_CASES:
        cmd = "%s %s" % (c.cmd, json.dumps(c.args, separators=(", ", ": ")))
        out.append("| %s | %s | %s |" % (_md(c.what), _code(cmd),
                                          _code(c.desc.replace("{fd}", "N"))))
    out += ["", "Accepted (not errors): `chardev-send-break` on the multiplex chardev or",
            "its input backend reaches the guest; on another backend it is dropped.",
            "`chardev-remove` of a multiplex chardev that no frontend uses succeeds and",
            "frees its backends. `chardev-change` of the multiplex chardev to another",
            "chardev (or to a multiplex of other backends) succeeds and frees the old",
            "backends (`test_remove_or_change_of_a_multiplex_frees_its_backends`).", ""]
    return "\n".join(out)


def doc_catalogue(text):
    """The catalogue section of docs/bad-input.md (between the markers) and the
    text around it."""
    head, rest = text.split(BEGIN, 1)
    section, tail = rest.split(END, 1)
    return head, section, tail


def test_catalogue_is_up_to_date():
    assert doc_catalogue(DOC.read_text())[1] == render_catalogue(), \
        "regenerate: /usr/bin/python3 tests/e2e/test_bad_input.py --update-doc"


if __name__ == "__main__":
    if sys.argv[1:] == ["--update-doc"]:
        head, _, tail = doc_catalogue(DOC.read_text())
        DOC.write_text(head + BEGIN + render_catalogue() + END + tail)
    else:
        sys.stdout.write(render_catalogue())
