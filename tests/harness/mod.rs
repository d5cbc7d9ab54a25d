//! Shared plumbing for the integration tests that drive the C ABI.
//!
//! Everything here goes through the `extern "C"` functions of
//! `chardev_multiplex::ffi`, exactly as a C caller would: a `cmx_callbacks`
//! table of `extern "C"` functions, an opaque pointer to a [`Ctx`], and real
//! non-blocking socketpairs (or pipes) serviced by a small `poll(2)` loop.
//!
//! - [`Mux`]: owns a `cmx_mux` and its [`Ctx`]; thin wrappers over the calls.
//! - [`Rig`]: a [`Mux`] plus one socketpair per sink (our end is the sink fd
//!   the write callback writes to, the peer end is "the viewer"), and the
//!   poll loop ([`Rig::pump`], [`Rig::service`], [`Rig::drain`]).
//! - [`stream`], [`assert_bytes_eq`], [`assert_segments_of`]: sequence-numbered
//!   data so every check is byte-exact.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Once;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use chardev_multiplex::ffi::*;

mod context;
mod fds;
mod handle;
mod rig;
mod sinks;
mod streams;

#[allow(unused_imports)]
pub use context::*;
#[allow(unused_imports)]
pub use fds::*;
#[allow(unused_imports)]
pub use handle::*;
#[allow(unused_imports)]
pub use rig::*;
#[allow(unused_imports)]
pub use sinks::*;
#[allow(unused_imports)]
pub use streams::*;
