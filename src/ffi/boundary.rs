//! The boundary with C: no Rust panic ever unwinds into C, and raw pointers
//! become references in one checked step each.
//!
//! Every exported function's body is wrapped in [`ffi_panic_boundary!`],
//! which turns a panic into the value [`PanicOrDefault`] names for the
//! function's return type (`CMX_RESULT_PANIC` for a `cmx_result`).
//!
//! A pointer from C is turned into a reference by one macro, at the top of
//! the function, and never touched again: [`try_ref_from_ptr!`] (`&T`),
//! [`try_mut_from_ptr!`] (`&mut T`), [`try_opt_mut_from_ptr!`] (an optional
//! `&mut T`), [`try_slice!`] (`&[T]`), [`try_slice_mut!`] (`&mut [u8]`)
//! and [`try_config_from_ptr!`] (a
//! configuration struct whose leading `size` field is checked first). Each
//! returns `CMX_RESULT_NULL_PARAMETER` from the function when a required
//! pointer is NULL. They call `unsafe fn`s whose contracts the exported
//! function's own `# Safety` section passes on to its C caller, so each
//! use sits in an `unsafe` block with a `// SAFETY:` comment that says so.
//! Out-parameters are written through the `&mut T` they become, and only
//! when the function returns `CMX_RESULT_OK` (the rule the header states).

use core::ffi::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::result::cmx_result;

/// What an exported function returns when its body panicked.
pub trait PanicOrDefault {
    fn value() -> Self;
}

impl PanicOrDefault for cmx_result {
    fn value() -> Self {
        cmx_result::Panic
    }
}

impl PanicOrDefault for () {
    fn value() -> Self {}
}

/// An fd or -1: -1 (the fd helpers also set `errno`).
impl PanicOrDefault for c_int {
    fn value() -> Self {
        -1
    }
}

/// A length: 0.
impl PanicOrDefault for usize {
    fn value() -> Self {
        0
    }
}

/// A static string: one that says what happened.
impl PanicOrDefault for *const c_char {
    fn value() -> Self {
        c"internal error (Rust panic caught)".as_ptr()
    }
}

/// Runs `f`, turning a panic into `T`'s [`PanicOrDefault`] value.
pub fn guard<T: PanicOrDefault>(f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| T::value())
}

/// Wraps an exported function's body: a panic inside it returns the
/// [`PanicOrDefault`] value of the function's return type instead of
/// unwinding into C. `return` inside the body returns from the function.
macro_rules! ffi_panic_boundary {
    ( $($body:tt)* ) => {
        $crate::ffi::boundary::guard(|| { $($body)* })
    };
}
pub(crate) use ffi_panic_boundary;

/// Unwraps a `Result<T, cmx_result>` inside a function returning `cmx_result`.
macro_rules! try_ffi {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return code,
        }
    };
}
pub(crate) use try_ffi;

/// `p` as a shared reference, or `None` if it is NULL.
///
/// # Safety
/// `p` is NULL, or valid for reads of a `T` and not written through by
/// anyone else for `'a`.
pub unsafe fn ref_from_ptr<'a, T>(p: *const T) -> Option<&'a T> {
    // SAFETY: NULL or valid for reads and unaliased by writers for 'a, per
    // this function's contract.
    unsafe { p.as_ref() }
}

/// `p` as an exclusive reference, or `None` if it is NULL.
///
/// # Safety
/// `p` is NULL, or valid for reads and writes of a `T` and not accessed
/// through any other pointer for `'a`.
pub unsafe fn mut_from_ptr<'a, T>(p: *mut T) -> Option<&'a mut T> {
    // SAFETY: NULL or valid and unaliased for 'a, per this function's contract.
    unsafe { p.as_mut() }
}

/// `len` elements at `p` as a slice; `p` may be NULL only when `len` is 0.
///
/// # Safety
/// Unless `len` is 0, `p` is NULL or valid for reads of `len` `T`s (at most
/// `isize::MAX` bytes), not written through by anyone else for `'a`.
pub unsafe fn slice_from_ptr<'a, T>(p: *const T, len: usize) -> Option<&'a [T]> {
    if len == 0 {
        return Some(&[]);
    }
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL and valid for `len` reads for 'a, per this function's
    // contract.
    Some(unsafe { core::slice::from_raw_parts(p, len) })
}

/// Moves `value` to the heap and hands its ownership to C as a pointer,
/// which [`free_box`] takes back.
pub fn box_into_ptr<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back and drops what [`box_into_ptr`] handed out; NULL does nothing.
///
/// # Safety
/// `p` is NULL or came from [`box_into_ptr`] for this `T`, was not freed,
/// and is not used by anyone afterwards.
pub unsafe fn free_box<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: from Box::into_raw and not yet freed, per this function's
        // contract; ownership returns to Rust here.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// `len` bytes at `p` as a mutable slice; `p` may be NULL only when `len`
/// is 0.
///
/// # Safety
/// Unless `len` is 0, `p` is NULL or valid for writes of `len` bytes, not
/// accessed through any other pointer for `'a`.
pub unsafe fn slice_mut_from_ptr<'a>(p: *mut u8, len: usize) -> Option<&'a mut [u8]> {
    if len == 0 {
        return Some(&mut []);
    }
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL and valid for `len` writes for 'a, unaliased, per
    // this function's contract.
    Some(unsafe { core::slice::from_raw_parts_mut(p, len) })
}

/// A caller-allocated configuration struct whose first field is `size`,
/// which the caller sets to `sizeof` the struct as its header declares it.
///
/// # Safety
/// Implemented only for `#[repr(C)]` structs whose first field (offset 0)
/// is a `usize` holding the struct's size.
pub unsafe trait SizedConfig: Sized {}

/// Checks a configuration's `size` field before anything else is read:
/// `Err(CMX_RESULT_CONFIG_SIZE_MISMATCH)` when it is not `size_of::<T>()`
/// (the caller's header is another version than this library, or `size`
/// was not set), `Err(CMX_RESULT_NULL_PARAMETER)` for NULL.
///
/// # Safety
/// `p` is NULL or points to a readable `usize` (the caller's `size` field,
/// whatever its struct's version), and, if that holds `size_of::<T>()`, to
/// a `T` valid for reads and not written through by anyone else for `'a`.
pub unsafe fn config_from_ptr<'a, T: SizedConfig>(p: *const T) -> Result<&'a T, cmx_result> {
    if p.is_null() {
        return Err(cmx_result::NullParameter);
    }
    // SAFETY: non-NULL and the caller's leading size field is readable, per
    // this function's contract; `SizedConfig` puts `size` at offset 0.
    let size = unsafe { p.cast::<usize>().read_unaligned() };
    if size != core::mem::size_of::<T>() {
        return Err(cmx_result::ConfigSizeMismatch);
    }
    // SAFETY: the sizes agree, so it is a whole `T`, valid per this
    // function's contract.
    unsafe { p.as_ref() }.ok_or(cmx_result::NullParameter)
}

/// `try_ref_from_ptr!(p)`: `p` (a `*const T`) as `&T`, or return
/// `CMX_RESULT_NULL_PARAMETER`. Use inside `unsafe { }` with a `// SAFETY:`
/// comment: it calls [`ref_from_ptr`].
macro_rules! try_ref_from_ptr {
    ($p:expr) => {
        match $crate::ffi::boundary::ref_from_ptr($p) {
            Some(r) => r,
            None => return $crate::ffi::cmx_result::NullParameter,
        }
    };
}
pub(crate) use try_ref_from_ptr;

/// `try_mut_from_ptr!(p)`: `p` (a `*mut T`) as `&mut T`, or return
/// `CMX_RESULT_NULL_PARAMETER`. Use inside `unsafe { }` with a `// SAFETY:`
/// comment: it calls [`mut_from_ptr`].
macro_rules! try_mut_from_ptr {
    ($p:expr) => {
        match $crate::ffi::boundary::mut_from_ptr($p) {
            Some(r) => r,
            None => return $crate::ffi::cmx_result::NullParameter,
        }
    };
}
pub(crate) use try_mut_from_ptr;

/// `try_opt_mut_from_ptr!(p)`: an out-parameter that may be NULL, as
/// `Option<&mut T>`. Use inside `unsafe { }` with a `// SAFETY:` comment: it
/// calls [`mut_from_ptr`].
macro_rules! try_opt_mut_from_ptr {
    ($p:expr) => {
        $crate::ffi::boundary::mut_from_ptr($p)
    };
}
pub(crate) use try_opt_mut_from_ptr;

/// `try_slice!(p, len)`: `len` elements at `p` as `&[T]` (`p` may be NULL
/// when `len` is 0), or return `CMX_RESULT_NULL_PARAMETER`. Use inside
/// `unsafe { }` with a `// SAFETY:` comment: it calls [`slice_from_ptr`].
macro_rules! try_slice {
    ($p:expr, $len:expr) => {
        match $crate::ffi::boundary::slice_from_ptr($p, $len) {
            Some(s) => s,
            None => return $crate::ffi::cmx_result::NullParameter,
        }
    };
}
pub(crate) use try_slice;

/// `try_slice_mut!(p, len)`: `len` bytes at `p` as `&mut [u8]` (`p` may be
/// NULL when `len` is 0), or return `CMX_RESULT_NULL_PARAMETER`. Use inside
/// `unsafe { }` with a `// SAFETY:` comment: it calls [`slice_mut_from_ptr`].
macro_rules! try_slice_mut {
    ($p:expr, $len:expr) => {
        match $crate::ffi::boundary::slice_mut_from_ptr($p, $len) {
            Some(s) => s,
            None => return $crate::ffi::cmx_result::NullParameter,
        }
    };
}
pub(crate) use try_slice_mut;

/// `try_config_from_ptr!(p)`: a configuration struct, its `size` checked
/// first, or return the error of [`config_from_ptr`]. Use inside
/// `unsafe { }` with a `// SAFETY:` comment.
macro_rules! try_config_from_ptr {
    ($p:expr) => {
        match $crate::ffi::boundary::config_from_ptr($p) {
            Ok(r) => r,
            Err(code) => return code,
        }
    };
}
pub(crate) use try_config_from_ptr;

/// The calling thread's `errno`.
pub fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Sets the calling thread's `errno`, as a C function that fails does.
pub fn set_errno(value: c_int) {
    // SAFETY: __errno_location() returns a valid, aligned pointer to the
    // calling thread's errno, which lives as long as the thread.
    unsafe {
        *libc::__errno_location() = value;
    }
}
