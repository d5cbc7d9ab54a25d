//! The values that cross between the engine and its caller.

/// What became of bytes the caller wrote to a sink for [`Mux::poll_transmit`](super::Mux::poll_transmit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The sink took this many bytes (possibly fewer than offered; 0 counts as would-block).
    Written(usize),
    /// The sink cannot take anything now (EAGAIN): the engine waits for
    /// [`Mux::sink_writable`](super::Mux::sink_writable) before it offers that sink more.
    WouldBlock,
    /// The write was interrupted (EINTR) before it took anything: it is offered again.
    Interrupted,
    /// A hard error (an errno value such as EPIPE, EIO, ENOSPC): the sink is marked failed.
    Failed(i32),
}

/// An event for the frontend, pulled with [`Mux::poll_event`](super::Mux::poll_event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontendEvent {
    /// The first sink opened.
    Opened,
    /// The last open sink closed.
    Closed,
    /// The input source sent a break.
    Break,
    /// The frontend, which was turned away ("would block"), may write again.
    Writable,
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

/// Bytes the caller should write to a sink now, from [`Mux::poll_transmit`](super::Mux::poll_transmit).
/// Report what became of them with [`Mux::transmitted`](super::Mux::transmitted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// The sink's index.
    pub sink: usize,
    /// The bytes, never empty; they stay queued until reported written.
    pub data: &'a [u8],
}
