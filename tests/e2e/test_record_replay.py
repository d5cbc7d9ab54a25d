"""Record/replay (-icount rr=record / rr=replay) with the guest's 16550 on a
multiplex chardev: QEMU starts in both modes (v5 refused: "Replay: ioctl is
not supported for serial devices yet"), and replay writes the same log as the
recording: the guest's boot output, through the multiplex to a file log.

The disk goes through blkreplay on an IDE disk, as docs/system/replay.rst
asks (the floppy controller's synchronous reads hang under record).
"""

import qemu as q


def rr_args(guest, mode, rrfile, log, port):
    return [
        "-icount", "shift=auto,rr=%s,rrfile=%s" % (mode, rrfile),
        "-drive", "file=%s,if=none,id=img-direct,format=raw,snapshot=on" % guest,
        "-drive", "driver=blkreplay,if=none,image=img-direct,id=img-blkreplay",
        "-device", "ide-hd,drive=img-blkreplay",
        "-chardev", "file,id=log,path=%s" % log,
        "-chardev", "socket,id=view,host=127.0.0.1,port=%d,server=on,wait=off" % port,
        "-chardev", "multiplex,id=m0,muxA=log,muxA-overflow=block,muxB=view",
        "-serial", "chardev:m0",
    ]


def test_record_then_replay_writes_the_same_log(guest, tmp_path):
    rrfile = tmp_path / "replay.bin"
    recorded, replayed = tmp_path / "recorded.log", tmp_path / "replayed.log"
    want = q.BANNER

    with q.Qemu(rr_args(guest, "record", rrfile, recorded, q.free_port())) as vm:
        q.wait_file(recorded, size=len(want), timeout=60)
        vm.cmd("quit")
        vm.proc.wait(timeout=30)
    assert recorded.read_bytes() == want

    with q.Qemu(rr_args(guest, "replay", rrfile, replayed, q.free_port())):
        q.wait_file(replayed, size=len(want), timeout=120)
    assert replayed.read_bytes() == recorded.read_bytes(), \
        q.first_difference(replayed.read_bytes(), recorded.read_bytes())
