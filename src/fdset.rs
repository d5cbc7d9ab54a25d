//! Re-opening pre-opened file descriptors (QEMU's `/dev/fdset/N` paths).
//!
//! QEMU opens `/dev/fdset/N` by duplicating an fd that the management layer
//! passed in and applying the open flags with `fcntl`. Its `qemu_dup_flags`
//! also calls `ftruncate` whenever the flags ask for truncation, which fails
//! with EINVAL on a pipe, socket or character device. [`dup_flags`] keeps every
//! other step as it was and truncates regular files only.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::{fstat, SFlag};
use nix::unistd::ftruncate;

/// Duplicates `fd` (close-on-exec) and applies the status flags of `flags`,
/// as `open(2)` with `flags` would have left a fresh fd:
///
/// - a mismatch in `O_SYNC` between `fd` and `flags` is refused with EINVAL
///   (it cannot be changed with `F_SETFL`);
/// - status flags (`O_APPEND`, `O_NONBLOCK`, ...) are set with `F_SETFL`;
/// - a regular file is truncated when `flags` has `O_TRUNC`, or both `O_CREAT`
///   and `O_EXCL`; any other kind of fd is never truncated.
///
/// On error nothing is left open and the errno is returned.
pub fn dup_flags(fd: RawFd, flags: OFlag) -> Result<OwnedFd, Errno> {
    let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(0))?;
    // SAFETY: `raw` was just returned by F_DUPFD_CLOEXEC, so it is an open fd
    // that nothing else owns; the OwnedFd closes it on every error path below.
    let new = unsafe { OwnedFd::from_raw_fd(raw) };
    let current = OFlag::from_bits_retain(fcntl(new.as_raw_fd(), FcntlArg::F_GETFL)?);
    if (flags & OFlag::O_SYNC) != (current & OFlag::O_SYNC) {
        return Err(Errno::EINVAL);
    }
    fcntl(new.as_raw_fd(), FcntlArg::F_SETFL(flags))?;
    let excl_create = OFlag::O_CREAT | OFlag::O_EXCL;
    let wants_truncate = flags.contains(OFlag::O_TRUNC) || flags.contains(excl_create);
    if wants_truncate && kind(fstat(new.as_raw_fd())?.st_mode) == SFlag::S_IFREG {
        ftruncate(&new, 0)?;
    }
    Ok(new)
}

fn kind(mode: libc::mode_t) -> SFlag {
    SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits())
}

/// Describes `fd` in words for an error message, for example
/// `fd 33: pipe, write-only` or `fd 7: not open (EBADF: Bad file number)`.
pub fn describe(fd: RawFd) -> String {
    let st = match fstat(fd) {
        Ok(st) => st,
        Err(e) => return format!("fd {fd}: not open ({e})"),
    };
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let what = match kind(st.st_mode) {
        SFlag::S_IFREG => format!("regular file {target}"),
        SFlag::S_IFIFO if target.starts_with("pipe:") => "pipe".to_owned(),
        SFlag::S_IFIFO => format!("FIFO {target}"),
        SFlag::S_IFSOCK => "socket".to_owned(),
        SFlag::S_IFCHR => format!("character device {target}"),
        SFlag::S_IFBLK => format!("block device {target}"),
        SFlag::S_IFDIR => format!("directory {target}"),
        _ => "file of unknown type".to_owned(),
    };
    let what = what.trim_end();
    match fcntl(fd, FcntlArg::F_GETFL) {
        Ok(fl) => {
            let fl = OFlag::from_bits_retain(fl);
            let append = if fl.contains(OFlag::O_APPEND) {
                ", append"
            } else {
                ""
            };
            format!("fd {fd}: {what}, {}{append}", access_mode_name(fl))
        }
        Err(e) => format!("fd {fd}: {what}, access mode unknown ({e})"),
    }
}

/// "read-only", "write-only" or "read-write" for the access mode in `flags`.
pub fn access_mode_name(flags: OFlag) -> &'static str {
    match flags & OFlag::O_ACCMODE {
        OFlag::O_RDONLY => "read-only",
        OFlag::O_WRONLY => "write-only",
        OFlag::O_RDWR => "read-write",
        _ => "invalid access mode",
    }
}
