//! Shared plumbing for the integration tests that drive the C ABI.
//!
//! Everything here goes through the `extern "C"` functions of
//! `chardev_multiplex::ffi`, exactly as a C caller would: after each call it
//! writes what `cmx_mux_poll_transmit()` hands out to real non-blocking
//! socketpairs (or pipes, FIFOs, files), watches the sinks in
//! `cmx_mux_watch_mask()` with a small `poll(2)` loop and takes the
//! frontend's events from `cmx_mux_poll_event()`.
//!
//! - [`Mux`]: owns a `cmx_mux` and its [`Ctx`] (the caller's side); thin
//!   wrappers over the calls, each followed by [`Mux::settle`].
//! - [`Rig`]: a [`Mux`] plus one socketpair per sink (our end is the sink fd
//!   the transmits are written to, the peer end is "the viewer"), and the
//!   poll loop ([`Rig::pump`], [`Rig::service`], [`Rig::drain`]).
//! - [`stream`], [`assert_bytes_eq`], [`assert_segments_of`]: sequence-numbered
//!   data so every check is byte-exact.

#![allow(dead_code)]

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
