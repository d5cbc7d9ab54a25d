//! What the engine asks of its caller, and what it tells it.

/// The result of asking the caller to write to a sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The sink took this many bytes (possibly fewer than offered; 0 counts as would-block).
    Written(usize),
    /// The sink cannot take anything now (EAGAIN); the engine queues and waits for
    /// [`crate::engine::Mux::sink_writable`].
    WouldBlock,
    /// A hard error (an errno value such as EPIPE, EIO, ENOSPC): the sink is marked failed.
    Failed(i32),
}

/// An event delivered to the frontend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontendEvent {
    /// The first sink opened.
    Opened,
    /// The last open sink closed.
    Closed,
    /// The input source sent a break.
    Break,
}

/// An event reported by a sink (a backend).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkEvent {
    /// The sink connected (for a TCP viewer: a client connected).
    Opened,
    /// The sink disconnected.
    Closed,
    /// The sink sent a break.
    Break,
}

/// The caller's side of the engine: every effect goes through here.
///
/// The engine never calls back into itself from these methods, and the
/// caller must not call the engine from inside them.
pub trait Io {
    /// Write `data` (never empty) to sink `sink`.
    fn write(&mut self, sink: usize, data: &[u8]) -> WriteOutcome;
    /// Start (`true`) or stop (`false`) telling the engine when `sink` is writable.
    fn watch_writable(&mut self, sink: usize, enable: bool);
    /// The frontend, which was told "would block", may write again.
    fn frontend_writable(&mut self);
    /// Deliver input from the input source to the frontend.
    fn frontend_input(&mut self, data: &[u8]);
    /// Deliver an event to the frontend.
    fn frontend_event(&mut self, event: FrontendEvent);
}
