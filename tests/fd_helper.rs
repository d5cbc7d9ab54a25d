//! `cmx_fd_dup_flags` and `cmx_fd_describe` on real fds of every kind QEMU
//! passes in fdsets: pipes, sockets, regular files, character devices, FIFOs.

mod harness;

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use harness::*;

/// The tests in this file count open fds, so they run one at a time.
static FD_LOCK: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    FD_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

const TRUNC: i32 = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
const APPEND: i32 = libc::O_WRONLY | libc::O_APPEND;
const EXCL: i32 = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
const FLAG_SETS: [(&str, i32); 3] = [
    ("O_WRONLY|O_CREAT|O_TRUNC", TRUNC),
    ("O_WRONLY|O_APPEND", APPEND),
    ("O_WRONLY|O_CREAT|O_EXCL", EXCL),
];

/// A path under the temp dir that no other test or process uses.
fn unique_path(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::env::temp_dir().join(format!(
        "cmx-fd-test-{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Removes the file when the test ends, pass or fail.
struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The lowest fd number not in use (what the next open would get).
fn lowest_free_fd() -> RawFd {
    File::open("/dev/null").unwrap().as_raw_fd()
}

/// Calls `cmx_fd_dup_flags`, expecting success; checks close-on-exec.
#[track_caller]
fn dup_ok(fd: RawFd, flags: i32, what: &str) -> OwnedFd {
    set_errno(0);
    let new = cmx_fd_dup_flags(fd, flags);
    assert!(
        new >= 0,
        "{what}: cmx_fd_dup_flags failed: {}",
        std::io::Error::last_os_error()
    );
    assert_ne!(new, fd);
    let new = own(new);
    // SAFETY: fcntl on an fd we own.
    let fdfl = unsafe { libc::fcntl(new.as_raw_fd(), libc::F_GETFD) };
    assert!(
        fdfl & libc::FD_CLOEXEC != 0,
        "{what}: the dup is not close-on-exec"
    );
    // SAFETY: as above.
    let fl = unsafe { libc::fcntl(new.as_raw_fd(), libc::F_GETFL) };
    assert_eq!(
        fl & libc::O_APPEND != 0,
        flags & libc::O_APPEND != 0,
        "{what}: O_APPEND on the dup is wrong (F_GETFL {fl:#o})"
    );
    new
}

/// Calls `cmx_fd_dup_flags`, expecting -1 with `errno` and no fd left open.
#[track_caller]
fn dup_err(fd: RawFd, flags: i32, want_errno: i32, what: &str) {
    let free = lowest_free_fd();
    set_errno(0);
    let r = cmx_fd_dup_flags(fd, flags);
    let e = errno();
    assert_eq!(r, -1, "{what}: expected failure");
    assert_eq!(e, want_errno, "{what}: errno");
    assert_eq!(lowest_free_fd(), free, "{what}: an fd was left open");
}

fn fd_write(fd: RawFd, data: &[u8]) {
    write_all(fd, data);
}

fn fd_read_all_available(fd: RawFd) -> Vec<u8> {
    set_nonblocking(fd, true);
    let mut out = Vec::new();
    read_available(fd, &mut out);
    out
}

/// A stream-like fd (pipe, socket, FIFO) is never truncated: what was in it
/// before the dup is still there, followed by what went through the dup.
fn check_stream_kind(kind: &str, writer: RawFd, reader: RawFd) {
    for (name, flags) in FLAG_SETS {
        let what = format!("{kind} with {name}");
        fd_write(writer, b"before\n");
        let dup = dup_ok(writer, flags, &what);
        fd_write(dup.as_raw_fd(), b"after\n");
        drop(dup);
        assert_eq!(
            fd_read_all_available(reader),
            b"before\nafter\n",
            "{what}: data lost"
        );
    }
}

#[test]
fn dup_flags_never_truncates_a_pipe() {
    let _g = lock();
    let (r, w) = pipe();
    check_stream_kind("pipe", w.as_raw_fd(), r.as_raw_fd());
}

#[test]
fn dup_flags_never_truncates_a_socket() {
    let _g = lock();
    let (a, b) = socketpair();
    check_stream_kind("socket", a.as_raw_fd(), b.as_raw_fd());
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(r, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

#[test]
fn dup_flags_never_truncates_a_fifo() {
    let _g = lock();
    let path = unique_path("fifo");
    mkfifo(&path);
    let _c = Cleanup(path.clone());
    // The reader first, so that opening the writer does not block.
    let r = open_raw(&path, libc::O_RDONLY | libc::O_NONBLOCK);
    let w = open_raw(&path, libc::O_WRONLY);
    check_stream_kind("FIFO", w.as_raw_fd(), r.as_raw_fd());
}

#[test]
fn dup_flags_never_truncates_dev_null() {
    let _g = lock();
    let null = open_raw(Path::new("/dev/null"), libc::O_WRONLY);
    for (name, flags) in FLAG_SETS {
        let dup = dup_ok(null.as_raw_fd(), flags, &format!("/dev/null with {name}"));
        fd_write(dup.as_raw_fd(), b"gone\n");
    }
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn dup_flags_truncates_a_regular_file_for_trunc_and_excl_but_not_append() {
    let _g = lock();
    let path = unique_path("file");
    let _c = Cleanup(path.clone());
    let mut f = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    let content = stream(100);
    let refill = |file: &mut File| {
        file.set_len(0).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.write_all(&content).unwrap();
        assert_eq!(size(&path), 100);
    };

    refill(&mut f);
    let dup = dup_ok(f.as_raw_fd(), TRUNC, "file O_TRUNC");
    assert_eq!(size(&path), 0, "O_TRUNC did not truncate");
    drop(dup);

    refill(&mut f);
    let excl = dup_ok(f.as_raw_fd(), EXCL, "file O_CREAT|O_EXCL");
    assert_eq!(size(&path), 0, "O_CREAT|O_EXCL did not truncate");
    drop(excl);

    refill(&mut f);
    let append = dup_ok(f.as_raw_fd(), APPEND, "file O_APPEND");
    assert_eq!(size(&path), 100, "O_APPEND truncated");
    // The offset is shared with `f`; rewind it so that only O_APPEND can
    // put the write at the end.
    f.seek(SeekFrom::Start(0)).unwrap();
    fd_write(append.as_raw_fd(), b"tail");
    assert_eq!(size(&path), 104);
    let mut all = Vec::new();
    File::open(&path).unwrap().read_to_end(&mut all).unwrap();
    assert_eq!(&all[..100], &content[..]);
    assert_eq!(&all[100..], b"tail");
    drop(append);
    // O_CREAT without O_EXCL or O_TRUNC does not truncate either.
    let creat = dup_ok(
        f.as_raw_fd(),
        libc::O_WRONLY | libc::O_CREAT,
        "file O_CREAT",
    );
    assert_eq!(size(&path), 104);
    drop(creat);
}

#[test]
fn dup_flags_refuses_a_mismatched_o_sync_with_einval_and_changes_nothing() {
    let _g = lock();
    let path = unique_path("sync");
    let _c = Cleanup(path.clone());
    let plain = open_raw(&path, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL);
    fd_write(plain.as_raw_fd(), &stream(100));
    dup_err(
        plain.as_raw_fd(),
        TRUNC | libc::O_SYNC,
        libc::EINVAL,
        "O_SYNC asked, fd has none",
    );
    assert_eq!(size(&path), 100, "a refused dup truncated the file");

    let synced = open_raw(&path, libc::O_WRONLY | libc::O_SYNC);
    dup_err(
        synced.as_raw_fd(),
        APPEND,
        libc::EINVAL,
        "fd has O_SYNC, not asked",
    );
    drop(dup_ok(
        synced.as_raw_fd(),
        APPEND | libc::O_SYNC,
        "O_SYNC on both",
    ));
    assert_eq!(size(&path), 100);

    // The same on a pipe.
    let (_r, w) = pipe();
    dup_err(
        w.as_raw_fd(),
        TRUNC | libc::O_SYNC,
        libc::EINVAL,
        "pipe with O_SYNC",
    );
}

#[test]
fn dup_flags_on_a_closed_fd_fails_with_ebadf() {
    let _g = lock();
    for fd in [-1, 999_999] {
        for (name, flags) in FLAG_SETS {
            dup_err(fd, flags, libc::EBADF, &format!("fd {fd} with {name}"));
        }
    }
    // An fd that was open and was closed.
    let (r, w) = pipe();
    let n = w.as_raw_fd();
    drop(w);
    dup_err(n, TRUNC, libc::EBADF, "a just-closed fd");
    drop(r);
}

/// `cmx_fd_describe` into a buffer of exactly `len` bytes.
fn describe_into(fd: RawFd, len: usize) -> (usize, Vec<u8>) {
    let mut buf = vec![0xAAu8; len + 8];
    // SAFETY: `buf` has at least `len` writable bytes.
    let n = unsafe { cmx_fd_describe(fd, buf.as_mut_ptr().cast(), len) };
    assert!(
        buf[len..].iter().all(|&b| b == 0xAA),
        "wrote past len {len}"
    );
    buf.truncate(len);
    (n, buf)
}

fn describe(fd: RawFd) -> String {
    // SAFETY: NULL with length 0 is allowed.
    let n = unsafe { cmx_fd_describe(fd, std::ptr::null_mut(), 0) };
    let (m, buf) = describe_into(fd, n + 1);
    assert_eq!(m, n, "length changed between calls");
    assert_eq!(buf[n], 0, "not NUL-terminated");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn describe_names_each_kind_of_fd() {
    let _g = lock();
    let (r, w) = pipe();
    assert_eq!(
        describe(w.as_raw_fd()),
        format!("fd {}: pipe, write-only", w.as_raw_fd())
    );
    assert_eq!(
        describe(r.as_raw_fd()),
        format!("fd {}: pipe, read-only", r.as_raw_fd())
    );

    let (a, _b) = socketpair();
    assert_eq!(
        describe(a.as_raw_fd()),
        format!("fd {}: socket, read-write", a.as_raw_fd())
    );

    let path = unique_path("describe");
    let _c = Cleanup(path.clone());
    let f = open_raw(&path, libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND);
    let canon = std::fs::canonicalize(&path).unwrap();
    assert_eq!(
        describe(f.as_raw_fd()),
        format!(
            "fd {}: regular file {}, write-only, append",
            f.as_raw_fd(),
            canon.display()
        )
    );

    let null = open_raw(Path::new("/dev/null"), libc::O_WRONLY);
    assert_eq!(
        describe(null.as_raw_fd()),
        format!(
            "fd {}: character device /dev/null, write-only",
            null.as_raw_fd()
        )
    );

    let fifo = unique_path("describe-fifo");
    mkfifo(&fifo);
    let _c2 = Cleanup(fifo.clone());
    let fr = open_raw(&fifo, libc::O_RDONLY | libc::O_NONBLOCK);
    let canonical = std::fs::canonicalize(&fifo).unwrap();
    assert_eq!(
        describe(fr.as_raw_fd()),
        format!(
            "fd {}: FIFO {}, read-only",
            fr.as_raw_fd(),
            canonical.display()
        )
    );

    let closed = describe(999_999);
    assert!(closed.starts_with("fd 999999: not open"), "{closed:?}");
    let n = w.as_raw_fd();
    drop(w);
    let gone = describe(n);
    assert!(gone.starts_with(&format!("fd {n}: not open")), "{gone:?}");
}

#[test]
fn describe_truncates_like_snprintf_and_preserves_errno() {
    let _g = lock();
    let (_r, w) = pipe();
    let full = format!("fd {}: pipe, write-only", w.as_raw_fd());
    let n = full.len();
    for len in [1, 2, 5, n - 1, n, n + 1, n + 20] {
        let (ret, buf) = describe_into(w.as_raw_fd(), len);
        assert_eq!(
            ret, n,
            "returns the full length whatever the buffer (len {len})"
        );
        let kept = (len - 1).min(n);
        assert_eq!(&buf[..kept], &full.as_bytes()[..kept], "len {len}");
        assert_eq!(buf[kept], 0, "len {len}: not NUL-terminated at {kept}");
    }
    // len 0: nothing written, even with a real buffer.
    let (ret, _) = describe_into(w.as_raw_fd(), 0);
    assert_eq!(ret, n);

    for fd in [w.as_raw_fd(), 999_999, -1] {
        set_errno(4242);
        let mut buf = [0u8; 64];
        // SAFETY: `buf` is 64 writable bytes.
        unsafe {
            cmx_fd_describe(fd, buf.as_mut_ptr().cast(), buf.len());
        }
        assert_eq!(errno(), 4242, "errno changed describing fd {fd}");
    }
}
