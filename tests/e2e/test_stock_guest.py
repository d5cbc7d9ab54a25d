"""The test guest on the QEMU built by scripts/qemu/build.sh (stock chardevs)."""

import socket

import qemu as q


def test_file_backend_banner_and_stream(guest, tmp_path):
    # -serial file: has no input side, so use the same file backend via -chardev
    # with input-path= to feed the 'S' command.
    out, inp = tmp_path / "serial.out", tmp_path / "serial.in"
    inp.write_bytes(b"S")
    want = q.BANNER + q.expected_reply(q.LINES_S)
    with q.Qemu(["-chardev", "file,id=s0,path=%s,input-path=%s" % (out, inp),
                 "-serial", "chardev:s0"], guest=guest) as vm:
        got = q.wait_file(out, size=len(want), timeout=60)
        assert vm.cmd("query-status")["status"] == "running"
    assert got == want, q.first_difference(got, want)


def test_socket_echo_and_stream(guest):
    host, guest_end = socket.socketpair()
    with host, guest_end:
        fd = guest_end.fileno()
        with q.Qemu(["-chardev", "socket,id=s0,fd=%d" % fd, "-serial", "chardev:s0"],
                    guest=guest, pass_fds=[fd]) as vm:
            guest_end.close()
            assert "s0" in [c["label"] for c in vm.cmd("query-chardev")]
            r = q.Reader(host)
            assert r.read_until(q.BANNER, timeout=30) == q.BANNER
            host.sendall(b"hello\r\n")
            assert r.read_exact(7) == b"hello\r\n"
            want = q.expected_reply(1000)
            host.sendall(q.stream_command(1000))
            got = r.read_exact(len(want), timeout=60)
            assert got == want, q.first_difference(got, want)
