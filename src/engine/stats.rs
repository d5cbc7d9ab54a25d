//! Counters an operator reads to see what each sink got and lost.

use super::config::Overflow;

/// A sink's connection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkState {
    /// Connected and receiving output.
    Open,
    /// Not connected (a TCP viewer with no client): receives nothing, never blocks.
    Closed,
    /// Connected, but a write failed with a hard error: receives nothing until it
    /// reconnects (closes and opens again), never blocks.
    Failed,
}

/// Per-sink statistics. Byte counts are totals since the multiplexer was created.
///
/// For every sink, `offered == delivered + queued + dropped` at all times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkStats {
    pub state: SinkState,
    pub overflow: Overflow,
    /// Bytes handed to the sink while it was open (live output plus replay).
    pub offered: u64,
    /// Bytes the sink accepted.
    pub delivered: u64,
    /// Bytes waiting in the sink's queue now.
    pub queued: u64,
    /// Bytes offered but discarded: overflow of a `Drop` queue, or still queued when
    /// the sink closed or failed.
    pub dropped: u64,
    /// Bytes of history replayed when the sink opened (included in `offered`).
    pub replayed: u64,
    /// Largest queue length seen.
    pub queue_high_water: u64,
    /// Times this sink's full queue turned the frontend away ("would block").
    pub backpressure_events: u64,
    /// Hard write errors (each one marked the sink failed).
    pub write_errors: u64,
    /// errno of the latest hard write error, 0 if none.
    pub last_errno: i32,
    /// Input bytes from this sink passed to the frontend.
    pub input_forwarded: u64,
    /// Input bytes from this sink read and discarded (it is not the input source).
    pub input_discarded: u64,
    /// Drop episodes: times this sink started dropping after it had caught up.
    pub drop_episodes: u64,
    /// Drop notices written in full (not counted in `offered`/`delivered`).
    pub notices: u64,
    /// Bytes of drop notices written.
    pub notice_bytes: u64,
}

impl SinkStats {
    pub(crate) fn new(overflow: Overflow, open: bool) -> Self {
        SinkStats {
            state: if open {
                SinkState::Open
            } else {
                SinkState::Closed
            },
            overflow,
            offered: 0,
            delivered: 0,
            queued: 0,
            dropped: 0,
            replayed: 0,
            queue_high_water: 0,
            backpressure_events: 0,
            write_errors: 0,
            last_errno: 0,
            input_forwarded: 0,
            input_discarded: 0,
            drop_episodes: 0,
            notices: 0,
            notice_bytes: 0,
        }
    }
}
