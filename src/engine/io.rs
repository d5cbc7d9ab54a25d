//! The values that cross between the engine and its caller.

use super::config::DropUnit;

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

/// A report about one sink, for whoever manages the sinks (QEMU turns them
/// into QMP events), pulled with [`Mux::poll_sink_report`](super::Mux::poll_sink_report).
/// They come in the order they happened; `sink` is the sink's index at the
/// time (a released index may be reused by a later attach).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkReport {
    /// A `drop` sink started dropping: a drop episode began. `dropped` is
    /// every byte it has dropped so far, this episode's first included.
    DropStarted {
        sink: usize,
        unit: DropUnit,
        dropped: u64,
    },
    /// A drop episode ended: the sink caught up (its queue emptied), or it
    /// closed, failed, was detached or released. `episode`: bytes dropped
    /// in the episode; `dropped`: every byte it has dropped so far. Every
    /// [`SinkReport::DropStarted`] is followed by one of these.
    DropStopped {
        sink: usize,
        episode: u64,
        dropped: u64,
    },
    /// A write to the sink failed with a hard error (`errno`), once per
    /// failure: the sink is failed from now on (its queue discarded and
    /// counted, it receives nothing and never blocks) until it opens again
    /// ([`SinkEvent::Opened`]).
    Failed { sink: usize, errno: i32 },
    /// Detaching finished ([`Mux::detach`](super::Mux::detach)): the sink
    /// wrote out its queue, or had nothing to write (a `drop` sink's queue
    /// is discarded when it is detached), or closed or failed meanwhile.
    /// Release it with [`Mux::release`](super::Mux::release), which returns
    /// its final counters.
    Detached { sink: usize },
}
