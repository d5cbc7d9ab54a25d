//! errno and file descriptors: socketpairs, pipes, non-blocking reads and writes.

use super::*;

pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub fn set_errno(value: i32) {
    // SAFETY: the calling thread's errno location is always valid.
    unsafe { *libc::__errno_location() = value }
}

/// Writes to a reader that went away must fail with EPIPE, not kill the test.
pub fn ignore_sigpipe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: installing SIG_IGN for SIGPIPE has no preconditions.
        let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        assert_ne!(old, libc::SIG_ERR);
    });
}

/// Serialises spawning child processes with closing a test's fds.
///
/// From `fork` until `exec` a child holds a copy of every fd of this process,
/// `O_CLOEXEC` or not. A test that closes a viewer's end while another test
/// thread is spawning would see the socket stay open for that window: writes
/// succeed into a buffer nobody will read, and EPIPE comes late. Every spawn
/// ([`spawn_child`]) and every close that a test observes
/// ([`Rig::hang_up`], [`Rig::close_ours`]) holds this lock.
pub fn no_fork_in_flight() -> std::sync::MutexGuard<'static, ()> {
    static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    FORK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `cmd.spawn()` under [`no_fork_in_flight`]; panics with the program name.
pub fn spawn_child(cmd: &mut std::process::Command) -> std::process::Child {
    let _no_close = no_fork_in_flight();
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()))
}

/// Panics with `what` and errno if a libc call returned a negative value.
pub fn check(r: libc::c_int, what: &str) -> libc::c_int {
    assert!(r >= 0, "{what}: {}", std::io::Error::last_os_error());
    r
}

/// Adopts a raw fd just returned by a syscall.
pub fn own(fd: RawFd) -> OwnedFd {
    assert!(fd >= 0);
    // SAFETY: `fd` was just created by the caller and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `open(2)` with `flags | O_CLOEXEC` and mode 0600; panics with the path and errno on failure.
pub fn open_raw(path: &std::path::Path, flags: i32) -> OwnedFd {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path; the fd is adopted at once.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
    assert!(
        fd >= 0,
        "open {path:?}: {}",
        std::io::Error::last_os_error()
    );
    own(fd)
}

/// A connected `AF_UNIX` stream socketpair, close-on-exec, blocking.
pub fn socketpair() -> (OwnedFd, OwnedFd) {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two fds.
    check(
        unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        },
        "socketpair",
    );
    (own(fds[0]), own(fds[1]))
}

/// A pipe, close-on-exec, blocking: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two fds.
    check(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) },
        "pipe2",
    );
    (own(fds[0]), own(fds[1]))
}

pub fn set_nonblocking(fd: RawFd, on: bool) {
    // SAFETY: fcntl on an fd the caller holds.
    let fl = check(unsafe { libc::fcntl(fd, libc::F_GETFL) }, "F_GETFL");
    let fl = if on {
        fl | libc::O_NONBLOCK
    } else {
        fl & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, fl) }, "F_SETFL");
}

fn sockopt(fd: RawFd, opt: libc::c_int) -> libc::c_int {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for getsockopt's writes.
    check(
        unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        },
        "getsockopt",
    );
    v
}

/// Shrinks a socket's send and receive buffers to the kernel's minimum
/// (asking for 1 byte gets the floor). Returns (`SO_SNDBUF`, `SO_RCVBUF`) as set.
pub fn shrink_socket_buffers(fd: RawFd) -> (i32, i32) {
    for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        let one: libc::c_int = 1;
        // SAFETY: `one` is a valid c_int for setsockopt to read.
        check(
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            },
            "setsockopt",
        );
    }
    (sockopt(fd, libc::SO_SNDBUF), sockopt(fd, libc::SO_RCVBUF))
}

/// Reads what is there without blocking (the fd is non-blocking) into `out`.
/// Returns false at end of file.
pub fn read_available(fd: RawFd, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 65536];
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 => return false,
            n if n > 0 => out.extend_from_slice(&buf[..n as usize]),
            _ => match errno() {
                libc::EINTR => continue,
                libc::EAGAIN => return true,
                // A reset connection reads as end of file for a viewer.
                libc::ECONNRESET => return false,
                e => panic!("read fd {fd}: {}", std::io::Error::from_raw_os_error(e)),
            },
        }
    }
}

/// Writes all of `data` to a (blocking) fd.
pub fn write_all(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: `data` is valid for `data.len()` bytes.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        assert!(n > 0, "write fd {fd}: {}", std::io::Error::last_os_error());
        data = &data[n as usize..];
    }
}
