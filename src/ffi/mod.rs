//! The C ABI. This module is the only place raw pointers are touched.
//!
//! Conventions (modelled on rustls-ffi):
//! - every function returns a `cmx_result` (or a value with a documented
//!   error value), checks its pointer arguments for NULL and catches panics;
//! - objects are opaque and created by `cmx_*_new`, freed by `cmx_*_free`;
//! - pointers passed in are borrowed for the duration of the call only,
//!   unless a function's documentation says otherwise;
//! - a multiplexer is used from one thread at a time, and never from inside
//!   its own callbacks (such calls return `CMX_RESULT_REENTRANT_CALL`).

#![allow(non_camel_case_types)]

mod boundary;
pub mod coalesce;
pub mod fd;
pub mod mux;
pub mod result;

pub use coalesce::*;
pub use fd::*;
pub use mux::*;
pub use result::*;

/// The library's version, a static NUL-terminated string such as "0.1.0".
#[no_mangle]
pub extern "C" fn cmx_version() -> *const core::ffi::c_char {
    const VERSION: &core::ffi::CStr = match core::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => panic!("version contains a NUL"),
    };
    VERSION.as_ptr()
}
