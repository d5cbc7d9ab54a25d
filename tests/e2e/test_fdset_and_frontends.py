"""fdset pipes for file and logfile=, QMP chardev-add of a multiplex, other frontends."""

import os
import socket

import qemu as q


def test_console_over_two_fdset_pipes(guest):
    """-chardev file,path=/dev/fdset/2,input-path=/dev/fdset/3 on two pipes."""
    out_rd, out_wr = os.pipe()
    in_rd, in_wr = os.pipe()
    args = ["-add-fd", "set=2,fd=%d" % out_wr, "-add-fd", "set=3,fd=%d" % in_rd,
            "-chardev", "file,id=con,path=/dev/fdset/2,input-path=/dev/fdset/3",
            "-serial", "chardev:con"]
    try:
        with q.Qemu(args, guest=guest, pass_fds=[out_wr, in_rd]):
            os.close(out_wr)
            os.close(in_rd)
            out_wr = in_rd = -1
            log = q.Reader(out_rd)
            assert log.read_exact(len(q.BANNER), timeout=30) == q.BANNER
            os.write(in_wr, q.stream_command(500))
            want = q.expected_reply(500)
            got = log.read_exact(len(want), timeout=60)
            assert got == want, q.first_difference(got, want)
    finally:
        for fd in (out_rd, out_wr, in_rd, in_wr):
            if fd >= 0:
                os.close(fd)


def test_logfile_on_an_fdset_pipe_without_logappend(guest):
    """socket,...,logfile=/dev/fdset/4 on a pipe: no ftruncate EINVAL any more."""
    log_rd, log_wr = os.pipe()
    host, qemu_end = socket.socketpair()
    fd = qemu_end.fileno()
    args = ["-add-fd", "set=4,fd=%d" % log_wr,
            "-chardev", "socket,id=con,fd=%d,logfile=/dev/fdset/4" % fd,
            "-serial", "chardev:con"]
    try:
        with host, q.Qemu(args, guest=guest, pass_fds=[log_wr, fd]):
            os.close(log_wr)
            log_wr = -1
            qemu_end.close()
            assert q.Reader(host).read_exact(len(q.BANNER), timeout=30) == q.BANNER
            host.sendall(b"hi")
            want = q.BANNER + b"hi"
            got = q.Reader(log_rd).read_exact(len(want), timeout=30)
            assert got == want, q.first_difference(got, want)
    finally:
        os.close(log_rd)
        if log_wr >= 0:
            os.close(log_wr)


def test_chardev_add_over_qmp_builds_a_multiplex(tmp_path):
    """QMP chardev-add accepts the same configuration as the command line."""
    with q.Qemu([]) as vm:
        for name in ("log", "view"):
            vm.cmd("chardev-add", id=name, backend={
                "type": "file", "data": {"out": str(tmp_path / name)}})
        vm.cmd("chardev-add", id="mx", backend={"type": "multiplex", "data": {
            "backends": [{"chardev": "log", "overflow": "block"}, {"chardev": "view"}],
            "input": None, "queue-size": 4096, "replay-size": 1024}})
        info = vm.cmd("x-query-chardev-multiplex", id="mx")
        assert [(b["chardev"], b["overflow"], b["input"], b["state"])
                for b in info["backends"]] == [("log", "block", False, "open"),
                                                ("view", "drop", False, "open")]
        assert info["frontend-open"] is True
        # A backend is claimed by the multiplex; the multiplex itself has no
        # frontend, so it can go, and then its backends can too.
        err = vm.cmd_raw("chardev-remove", {"id": "log"})
        assert "busy" in err["error"]["desc"], err
        vm.cmd("chardev-remove", id="mx")
        vm.cmd("chardev-remove", id="log")
        assert vm.cmd("query-status")["status"] == "running"


def test_virtconsole_and_isa_serial_attach_to_a_multiplex(guest, tmp_path):
    """virtconsole is accepted as the frontend (the test guest has no virtio
    driver, so no data goes through it; isa-serial is checked byte-exact elsewhere)."""
    args = ["-chardev", "file,id=a,path=%s" % (tmp_path / "a"),
            "-chardev", "file,id=b,path=%s" % (tmp_path / "b"),
            "-chardev", "multiplex,id=mx,muxA=a,muxB=b",
            "-device", "virtio-serial-pci", "-device", "virtconsole,chardev=mx,id=vc0"]
    with q.Qemu(args, guest=guest) as vm:
        labels = {c["label"]: c["frontend-open"] for c in vm.cmd("query-chardev")}
        assert "mx" in labels
        path = vm.cmd("qom-list", path="/machine/peripheral/vc0")
        assert any(p["name"] == "chardev" for p in path)
        assert vm.cmd("qom-get", path="/machine/peripheral/vc0", property="chardev") == "mx"
