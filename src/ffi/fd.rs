//! `cmx_fd_*`: the fd re-open helper for QEMU's fdsets.

use core::ffi::{c_char, c_int};
use std::os::fd::IntoRawFd;

use super::boundary::guard_or;
use crate::fdset;

/// Duplicates `fd` and applies `flags` as `open(2)` would, the replacement for
/// QEMU's `qemu_dup_flags()`: the new fd is close-on-exec; a mismatched
/// `O_SYNC` is refused with EINVAL; status flags are set with `F_SETFL`; the
/// fd is truncated only if it is a regular file and `flags` has `O_TRUNC` or
/// both `O_CREAT` and `O_EXCL`. A pipe, FIFO, socket or character device is
/// never truncated.
///
/// Returns the new fd, owned by the caller (close it with `close(2)`), or -1
/// with `errno` set and nothing left open. `fd` stays owned by the caller, but
/// note that, as with `qemu_dup_flags()`, the status flags are set on the open
/// file description that `fd` and the new fd share, so `fd` sees them too.
#[no_mangle]
pub extern "C" fn cmx_fd_dup_flags(fd: c_int, flags: c_int) -> c_int {
    guard_or(-1, || match fdset::dup_flags(fd, flags) {
        Ok(new) => new.into_raw_fd(),
        Err(e) => {
            set_errno(e.raw_os_error().unwrap_or(libc::EIO));
            -1
        }
    })
}

/// Writes a description of `fd` for an error message, such as
/// `fd 33: pipe, write-only`, into `buf` (`len` bytes, always NUL-terminated
/// when `len > 0`, truncated if needed; `buf` may be NULL when `len` is 0).
/// Returns the length of the full description without its NUL, like
/// `snprintf`. `errno` is preserved.
///
/// # Safety
/// `buf` is NULL (with `len` 0) or valid for writing `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn cmx_fd_describe(fd: c_int, buf: *mut c_char, len: usize) -> usize {
    let saved = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let text = guard_or(String::from("fd: description failed"), || {
        fdset::describe(fd)
    });
    if !buf.is_null() && len > 0 {
        let n = text.len().min(len - 1);
        // SAFETY: the caller guarantees `buf` points to `len` writable bytes;
        // we write `n + 1 <= len` of them, and `text` does not overlap `buf`.
        unsafe {
            core::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    set_errno(saved);
    text.len()
}

/// Sets the calling thread's `errno`.
fn set_errno(errno: c_int) {
    // SAFETY: __errno_location() returns a valid pointer to the calling
    // thread's errno for the life of the thread.
    unsafe { *libc::__errno_location() = errno };
}
