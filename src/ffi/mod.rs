//! The C ABI. This module is the only place raw pointers are touched.
//!
//! Conventions (modelled on rustls-ffi):
//! - every function returns a `#[must_use]` `cmx_result` (or a value with a
//!   documented error value), checks its pointer arguments for NULL and
//!   catches panics (a panic poisons the multiplexer: later calls return
//!   `CMX_RESULT_PANIC`);
//! - objects are opaque and created by `cmx_*_new`, freed by `cmx_*_free`;
//! - pointers passed in are borrowed for the duration of the call only,
//!   unless a function's documentation says otherwise;
//! - the library never calls out: the caller pushes events in and pulls work
//!   out (`cmx_mux_poll_transmit()`, `cmx_mux_watch_mask()`,
//!   `cmx_mux_poll_event()`, `cmx_mux_poll_timeout()`), so it can never be
//!   re-entered;
//! - a multiplexer is used from one thread at a time.

#![allow(non_camel_case_types)]
// `#[must_use]` on functions that return the `#[must_use]` `cmx_result` is not
// for Rust callers: cbindgen turns it into CMX_MUST_USE (warn_unused_result)
// in the C header.
#![allow(clippy::double_must_use)]

mod boundary;
pub mod control;
pub(crate) mod enums;
pub mod events;
pub mod fd;
pub mod mux;
pub mod result;
pub mod transmit;
pub mod write;

pub use control::*;
pub use enums::*;
pub use events::*;
pub use fd::*;
pub use mux::*;
pub use result::*;
pub use transmit::*;
pub use write::*;

/// The library's version, a static NUL-terminated string such as "0.4.0".
/// Written out (not `env!("CARGO_PKG_VERSION")`), because meson builds the
/// crate without cargo; a test checks it against Cargo.toml and meson.build.
#[no_mangle]
pub extern "C" fn cmx_version() -> *const core::ffi::c_char {
    c"0.3.0".as_ptr()
}
