#!/usr/bin/env python3
"""Boots the test guest with its console multiplexed to a log pipe and a TCP viewer."""

import argparse
import os
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import qemu as q  # noqa: E402


def log_writer(rd, path):
    """Stands in for virtlogd: copies the console pipe into a log file."""
    with open(path, "wb") as out:
        while True:
            data = os.read(rd, 65536)
            if not data:
                return
            out.write(data)
            out.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--interactive", action="store_true",
                    help="keep QEMU running until Ctrl-C; connect with telnet")
    ap.add_argument("--port", type=int, default=4555)
    ap.add_argument("--log", default="/tmp/cmx-demo-console.log")
    args = ap.parse_args()

    guest = q.build_guest(Path(os.environ.get("TMPDIR", "/tmp")) / "cmx-demo-guest")
    rd, wr = os.pipe()
    log_path = Path(args.log).resolve()
    threading.Thread(target=log_writer, args=(rd, log_path), daemon=True).start()

    cmdline = ["-add-fd", "set=2,fd=%d" % wr,
               "-chardev", "file,id=con0log,path=/dev/fdset/2",
               "-chardev", "socket,id=con0tcp,host=127.0.0.1,port=%d,telnet=on,"
                           "server=on,wait=off" % args.port,
               "-chardev", "multiplex,id=con0,muxA=con0log,muxA-overflow=block,"
                           "muxB=con0tcp,replay-size=4096",
               "-device", "isa-serial,chardev=con0,id=serial0"]
    print("QEMU:", q.qemu_binary())
    print("console options:", " ".join(cmdline))
    with q.Qemu(cmdline, guest=guest, pass_fds=[wr]) as vm:
        os.close(wr)
        q.wait_file(log_path, pattern=q.BANNER, timeout=30)
        print("\nlog %s (no viewer connected yet): %r" % (log_path, log_path.read_bytes()))

        if args.interactive:
            print("\nConnect a viewer: telnet 127.0.0.1 %d   (type S for a stream; Ctrl-C here "
                  "to stop). The log keeps growing in %s." % (args.port, log_path))
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        else:
            with socket.create_connection(("127.0.0.1", args.port)) as viewer:
                view = q.Reader(viewer)
                seen = view.read_until(q.BANNER, timeout=30)
                print("viewer connects late and is replayed the banner: %r" % seen[-len(q.BANNER):])
                viewer.sendall(b"hello, guest")
                view.read_until(b"hello, guest", timeout=30)
                print("viewer types 'hello, guest' and sees the guest's echo")
                viewer.sendall(q.stream_command(2000))
                want = q.expected_reply(2000)
                got = view.read_until(b"END\n", timeout=60)
                print("viewer asks for 2000 numbered lines and gets them: %s" %
                      ("byte-exact" if got.endswith(want) else "MISMATCH"))
            expected_log = q.BANNER + b"hello, guest" + want
            log = q.wait_file(log_path, size=len(expected_log), timeout=60)
            print("log has everything the guest printed: %s (%d bytes)" %
                  ("byte-exact" if log == expected_log else "MISMATCH", len(log)))
        info = vm.cmd("x-query-chardev-multiplex", id="con0")
        print("\nx-query-chardev-multiplex:")
        for b in info["backends"]:
            print("  %-8s %-6s %-5s offered %8d delivered %8d dropped %6d replayed %5d%s" % (
                b["chardev"], b["state"], b["overflow"], b["offered"], b["delivered"],
                b["dropped"], b["replayed"], "  (input)" if b["input"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
