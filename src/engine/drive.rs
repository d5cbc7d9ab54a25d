//! A loop that carries out what a [`Mux`] asks for, against an [`Io`].
//!
//! The engine itself never calls out; this is a convenience for Rust callers
//! (and the engine's own tests and model) that keep their sinks behind one
//! trait. It runs after the engine call has returned, so an [`Io`] method may
//! do anything, but it is not re-entered from here.

use super::io::{FrontendEvent, SinkReport, WriteOutcome};
use super::mux::Mux;

/// The caller's side, for [`pump`].
pub trait Io {
    /// Write `data` (never empty) to sink `sink`.
    fn write(&mut self, sink: usize, data: &[u8]) -> WriteOutcome;
    /// Whether `sink` is watched for writability now.
    fn is_watching(&self, sink: usize) -> bool;
    /// Start (`true`) or stop (`false`) watching `sink`; called on changes only.
    fn watch_writable(&mut self, sink: usize, enable: bool);
    /// The frontend, which was turned away, may write again.
    fn frontend_writable(&mut self);
    /// Deliver an event (OPENED, CLOSED, BREAK) to the frontend.
    fn frontend_event(&mut self, event: FrontendEvent);
    /// Act on a report about a sink (tell whoever manages the sinks;
    /// release a sink that is detached).
    fn sink_report(&mut self, report: SinkReport);
}

/// Writes everything that is due, brings the watches in line with
/// [`Mux::watch_mask`], delivers the frontend's events and hands over the
/// sink reports.
pub fn pump(mux: &mut Mux, io: &mut impl Io) {
    while let Some(t) = mux.poll_transmit() {
        let sink = t.sink;
        let outcome = io.write(sink, t.data);
        mux.transmitted(sink, outcome)
            .expect("the transmit just polled is reported");
    }
    let mask = mux.watch_mask();
    for sink in 0..mux.sink_count() {
        let want = mask & (1 << sink) != 0;
        if io.is_watching(sink) != want {
            io.watch_writable(sink, want);
        }
    }
    while let Some(ev) = mux.poll_event() {
        match ev {
            FrontendEvent::Writable => io.frontend_writable(),
            ev => io.frontend_event(ev),
        }
    }
    while let Some(r) = mux.poll_sink_report() {
        io.sink_report(r);
    }
}
