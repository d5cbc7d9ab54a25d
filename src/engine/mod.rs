//! The multiplex engine: a deterministic, sans-IO state machine.
//!
//! It owns no file descriptors and makes no system calls. The caller feeds it
//! output from the frontend ([`Mux::write`], or [`Mux::write_at`] with a clock
//! reading to coalesce small writes), readiness and events from sinks
//! ([`Mux::sink_writable`], [`Mux::sink_event`]) and input ([`Mux::input`]);
//! the engine answers through the caller's [`Io`] implementation.

mod config;
mod io;
mod mux;
mod queue;
mod sink;
mod stats;

pub use config::{
    Config, ConfigError, Overflow, SinkConfig, DEFAULT_QUEUE_CAPACITY, MAX_COALESCE_NS,
    MAX_QUEUE_CAPACITY, MAX_SINKS,
};
pub use io::{FrontendEvent, Io, SinkEvent, WriteOutcome};
pub use mux::{Mux, NoSuchSink, WouldBlock, DISCARD_CHUNK};
pub use stats::{SinkState, SinkStats};

#[cfg(any(test, feature = "model"))]
pub mod model;
#[cfg(test)]
mod tests;
