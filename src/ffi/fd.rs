//! `cmx_fd_*`: the fd re-open helper for QEMU's fdsets.

use core::ffi::{c_char, c_int};
use std::os::fd::IntoRawFd;

use super::boundary::{errno, ffi_panic_boundary, set_errno, slice_mut_from_ptr};
use crate::fdset;

/// Duplicates `fd` and applies `flags` as `open(2)` would, the replacement for
/// QEMU's `qemu_dup_flags()`: the new fd is close-on-exec; a mismatched
/// `O_SYNC` is refused with EINVAL; status flags are set with `F_SETFL`; the
/// fd is truncated only if it is a regular file and `flags` has `O_TRUNC` or
/// both `O_CREAT` and `O_EXCL`. A pipe, FIFO, socket or character device is
/// never truncated.
///
/// Returns the new fd, owned by the caller (close it with `close(2)`; the
/// result must not be ignored, or the fd leaks), or -1 with `errno` set and
/// nothing left open. `fd` stays owned by the caller, but note that, as
/// with `qemu_dup_flags()`, the status flags are set on the open file
/// description that `fd` and the new fd share, so `fd` sees them too.
#[must_use]
#[no_mangle]
pub extern "C" fn cmx_fd_dup_flags(fd: c_int, flags: c_int) -> c_int {
    ffi_panic_boundary! {
        match fdset::dup_flags(fd, flags) {
            Ok(new) => new.into_raw_fd(),
            Err(e) => {
                set_errno(e.raw_os_error().unwrap_or(libc::EIO));
                -1
            }
        }
    }
}

/// Writes a description of `fd` for an error message, such as
/// `fd 33: pipe, write-only`, into `buf` (`len` bytes, always NUL-terminated
/// when `len > 0`, truncated if needed; `buf` may be NULL, and then nothing
/// is written). Returns the length of the full description without its
/// NUL, like `snprintf`. `errno` is preserved.
///
/// # Safety
/// `buf` is NULL or valid for writing `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn cmx_fd_describe(fd: c_int, buf: *mut c_char, len: usize) -> usize {
    ffi_panic_boundary! {
        let saved = errno();
        let text = fdset::describe(fd);
        // SAFETY: `buf` is NULL or valid for `len` bytes of writes, per this
        // function's contract.
        if let Some(out) = unsafe { slice_mut_from_ptr(buf.cast::<u8>(), len) } {
            if let Some(last) = out.len().checked_sub(1) {
                let n = text.len().min(last);
                out[..n].copy_from_slice(&text.as_bytes()[..n]);
                out[n] = 0;
            }
        }
        set_errno(saved);
        text.len()
    }
}
