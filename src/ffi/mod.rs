//! The C ABI. This module is the only place raw pointers are touched.
//!
//! Conventions (modelled on rustls-ffi; the header's preamble states them
//! for C callers):
//! - every `cmx_mux_*` function returns a `#[must_use]` `cmx_result`, whose
//!   values are stable; retired ones are never reused;
//! - out-parameters are written only when the call returns `CMX_RESULT_OK`:
//!   on any other result they keep the caller's values;
//! - a required pointer that is NULL gives `CMX_RESULT_NULL_PARAMETER`;
//!   pointers passed in are borrowed for the call only, unless a
//!   function's documentation says otherwise;
//! - no panic crosses into C: every exported function's body runs inside
//!   [`boundary::ffi_panic_boundary!`], and a panic inside a multiplexer
//!   poisons it (later calls return `CMX_RESULT_PANIC`);
//! - raw pointers become references in one checked step each, in
//!   [`boundary`], the only module that dereferences them;
//! - caller-allocated configuration structs start with a `size` field,
//!   checked before anything else is read, so that a header that does not
//!   match the library fails loudly (`CMX_RESULT_CONFIG_SIZE_MISMATCH`);
//! - objects are opaque, created by `cmx_*_new` and freed by `cmx_*_free`;
//! - the library never calls out: the caller pushes events in and pulls
//!   work out (`cmx_mux_poll_transmit()`, `cmx_mux_watch_mask()`,
//!   `cmx_mux_poll_event()`, `cmx_mux_poll_sink_report()`,
//!   `cmx_mux_poll_timeout()`), so it can never be re-entered; what the
//!   library writes into a caller's buffer (`cmx_mux_replay_export()`) is
//!   sized by a first call with a NULL buffer of length 0;
//! - a multiplexer is used from one thread at a time (it is `Send`, not
//!   `Sync`).

#![allow(non_camel_case_types)]
// `#[must_use]` on functions that return the `#[must_use]` `cmx_result` is not
// for Rust callers: cbindgen turns it into CMX_MUST_USE (warn_unused_result)
// in the C header.
#![allow(clippy::double_must_use)]

pub(crate) mod boundary;
pub mod control;
pub(crate) mod enums;
pub mod events;
pub mod fd;
pub mod mux;
pub mod replay;
pub mod result;
pub mod transmit;
pub mod write;

pub use control::*;
pub use enums::*;
pub use events::*;
pub use fd::*;
pub use mux::*;
pub use replay::*;
pub use result::*;
pub use transmit::*;
pub use write::*;

/// The crate's version, NUL-terminated. Written out (not
/// `env!("CARGO_PKG_VERSION")`), because meson builds the crate without
/// cargo; a test checks it against Cargo.toml and meson.build.
const VERSION: &core::ffi::CStr = c"0.4.0";

/// The library's version, a static NUL-terminated string such as "0.4.0".
#[no_mangle]
pub extern "C" fn cmx_version() -> *const core::ffi::c_char {
    boundary::ffi_panic_boundary! { VERSION.as_ptr() }
}
