//! The multiplex engine: a deterministic, sans-IO state machine.
//!
//! It owns no file descriptors, makes no system calls and never calls back
//! into its caller. The caller pushes in what happened: output from the
//! frontend ([`Mux::write`], or [`Mux::write_at`] with a clock reading to
//! coalesce small writes, or [`Mux::write_at_wall`] with the wall clock as
//! well, for line stamps), what became of a write to a sink
//! ([`Mux::transmitted`]), readiness and events of sinks
//! ([`Mux::sink_writable`], [`Mux::sink_event`]), input ([`Mux::input`]) and
//! the clock ([`Mux::handle_timeout`]). It pulls out what to do: bytes to
//! write ([`Mux::poll_transmit`]), sinks to watch ([`Mux::watch_mask`]),
//! events for the frontend ([`Mux::poll_event`]), reports about the sinks
//! for whoever manages them ([`Mux::poll_sink_report`]) and the next
//! deadline ([`Mux::poll_timeout`]). [`drive::pump`] does the pulling for a caller
//! that has its sinks behind one trait.

#![forbid(unsafe_code)]

mod config;
pub mod drive;
mod io;
mod mux;
mod queue;
mod replay;
mod sink;
mod stamp;
mod stats;

pub use config::{
    Config, ConfigError, DropUnit, Overflow, SinkConfig, DEFAULT_QUEUE_CAPACITY, MAX_COALESCE_NS,
    MAX_QUEUE_CAPACITY, MAX_SINKS,
};
pub use drive::{pump, Io};
pub use io::{FrontendEvent, SinkEvent, SinkReport, Transmit, WriteOutcome};
pub use mux::{
    AttachError, DetachError, Mux, NoSuchSink, TransmitError, WouldBlock, DISCARD_CHUNK,
};
pub use replay::{ImportError, BLOB_VERSION};
pub use stamp::{format_stamp, STAMP_LEN, UNKNOWN_STAMP};
pub use stats::{MuxStats, SinkState, SinkStats};

#[cfg(any(test, feature = "model"))]
pub mod model;
#[cfg(test)]
mod tests;
