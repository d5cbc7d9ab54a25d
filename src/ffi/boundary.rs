//! The panic boundary: no Rust panic ever unwinds into C.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::result::cmx_result;

/// Runs `f`, turning a panic into `CMX_RESULT_PANIC`.
pub(crate) fn guard(f: impl FnOnce() -> cmx_result) -> cmx_result {
    guard_or(cmx_result::Panic, f)
}

/// Runs `f`, turning a panic into `on_panic`.
pub(crate) fn guard_or<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

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
