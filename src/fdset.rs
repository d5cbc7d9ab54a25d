//! Re-opening pre-opened file descriptors (QEMU's `/dev/fdset/N` paths).
//!
//! QEMU opens `/dev/fdset/N` by duplicating an fd that the management layer
//! passed in and applying the open flags with `fcntl`. Its `qemu_dup_flags`
//! also calls `ftruncate` whenever the flags ask for truncation, which fails
//! with EINVAL on a pipe, socket or character device. [`dup_flags`] keeps every
//! other step as it was and truncates regular files only.
//!
//! Built on `libc` and `std::os::fd` alone: the `nix` crate would need libc's
//! `extra_traits` feature, which the libc that QEMU builds for its own Rust
//! code does not enable, for the five calls made here.

use std::fs::File;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;

/// `fcntl(fd, cmd, arg)` for the commands that take an int and return one.
fn fcntl(fd: RawFd, cmd: libc::c_int, arg: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: F_DUPFD_CLOEXEC, F_GETFL and F_SETFL take an int argument (or
    // none) and touch no memory of ours; a bad fd is reported as EBADF.
    let r = unsafe { libc::fcntl(fd, cmd, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The metadata of `fd`, which stays owned by the caller.
fn metadata(fd: RawFd) -> io::Result<std::fs::Metadata> {
    if fd < 0 {
        // Not an fd at all (std's File refuses -1 outright).
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the File only borrows `fd` for the fstat: ManuallyDrop keeps it
    // from closing the fd, which the caller owns. A closed fd makes fstat fail
    // with EBADF, which is reported, not undefined behaviour.
    let file = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
    file.metadata()
}

/// Duplicates `fd` (close-on-exec) and applies the status flags of `flags`,
/// as `open(2)` with `flags` would have left a fresh fd:
///
/// - a mismatch in `O_SYNC` between `fd` and `flags` is refused with EINVAL
///   (it cannot be changed with `F_SETFL`);
/// - status flags (`O_APPEND`, `O_NONBLOCK`, ...) are set with `F_SETFL`;
/// - a regular file is truncated when `flags` has `O_TRUNC`, or both `O_CREAT`
///   and `O_EXCL`; any other kind of fd is never truncated.
///
/// On error nothing is left open and the OS error is returned.
pub fn dup_flags(fd: RawFd, flags: libc::c_int) -> io::Result<OwnedFd> {
    let raw = fcntl(fd, libc::F_DUPFD_CLOEXEC, 0)?;
    // SAFETY: `raw` was just returned by F_DUPFD_CLOEXEC, so it is an open fd
    // that nothing else owns; the OwnedFd closes it on every error path below.
    let new = unsafe { OwnedFd::from_raw_fd(raw) };
    let current = fcntl(new.as_raw_fd(), libc::F_GETFL, 0)?;
    if (flags & libc::O_SYNC) != (current & libc::O_SYNC) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    fcntl(new.as_raw_fd(), libc::F_SETFL, flags)?;
    let excl_create = libc::O_CREAT | libc::O_EXCL;
    let wants_truncate = flags & libc::O_TRUNC != 0 || flags & excl_create == excl_create;
    if wants_truncate && metadata(new.as_raw_fd())?.file_type().is_file() {
        // SAFETY: as in `metadata`: the File borrows `new` for the call only.
        let file = ManuallyDrop::new(unsafe { File::from_raw_fd(new.as_raw_fd()) });
        file.set_len(0)?;
    }
    Ok(new)
}

/// Describes `fd` in words for an error message, for example
/// `fd 33: pipe, write-only` or `fd 7: not open (Bad file descriptor)`.
pub fn describe(fd: RawFd) -> String {
    let meta = match metadata(fd) {
        Ok(meta) => meta,
        Err(e) => return format!("fd {fd}: not open ({})", os_error_text(&e)),
    };
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ft = meta.file_type();
    let what = if ft.is_file() {
        format!("regular file {target}")
    } else if ft.is_fifo() && target.starts_with("pipe:") {
        "pipe".to_owned()
    } else if ft.is_fifo() {
        format!("FIFO {target}")
    } else if ft.is_socket() {
        "socket".to_owned()
    } else if ft.is_char_device() {
        format!("character device {target}")
    } else if ft.is_block_device() {
        format!("block device {target}")
    } else if ft.is_dir() {
        format!("directory {target}")
    } else {
        "file of unknown type".to_owned()
    };
    let what = what.trim_end();
    match fcntl(fd, libc::F_GETFL, 0) {
        Ok(fl) => {
            let append = if fl & libc::O_APPEND != 0 {
                ", append"
            } else {
                ""
            };
            format!("fd {fd}: {what}, {}{append}", access_mode_name(fl))
        }
        Err(e) => format!(
            "fd {fd}: {what}, access mode unknown ({})",
            os_error_text(&e)
        ),
    }
}

/// "EBADF: Bad file descriptor" style text for an OS error.
fn os_error_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(errno) => format!("{}: {}", errno_name(errno), strerror(errno)),
        None => e.to_string(),
    }
}

/// The system's message for `errno`, without Rust's " (os error N)" suffix.
fn strerror(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The symbolic name of the errnos the fd helpers can meet.
fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EBADF => "EBADF",
        libc::EINVAL => "EINVAL",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::EMFILE => "EMFILE",
        libc::ENOSPC => "ENOSPC",
        libc::EIO => "EIO",
        _ => "errno",
    }
}

/// "read-only", "write-only" or "read-write" for the access mode in `flags`.
pub fn access_mode_name(flags: libc::c_int) -> &'static str {
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => "read-only",
        libc::O_WRONLY => "write-only",
        libc::O_RDWR => "read-write",
        _ => "invalid access mode",
    }
}
