//! What an operator reads to see what each sink got and lost.

/// Where a sink stands, as [`Mux::sink_state`](super::Mux::sink_state) reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkState {
    /// Connected and receiving output.
    Open,
    /// Not connected (a TCP viewer with no client): receives nothing, never blocks.
    Closed,
    /// Connected, but a write failed with a hard error: its queue was
    /// discarded (counted as dropped), it receives nothing and never
    /// blocks, until it opens again ([`SinkEvent::Opened`](super::SinkEvent::Opened)).
    Failed,
    /// Being detached ([`Mux::detach`](super::Mux::detach)) while connected:
    /// gets no new output, and what it has queued is still written out.
    Detaching,
    /// Detached: what it had queued is written out (or was discarded: a
    /// `drop` sink, or one that closed or failed); waiting for
    /// [`Mux::release`](super::Mux::release).
    Detached,
}

/// Per-sink counters. Byte counts are totals since the sink was attached
/// (or the multiplexer created).
///
/// `offered`, `delivered`, `queued` and `dropped` count the frontend's
/// bytes only, and `offered == delivered + queued + dropped` at all times.
/// What the sink was written besides them is counted apart: every byte
/// written to the sink is one of `delivered`, `stamp_bytes`,
/// `notice_bytes` or `skip_marker_bytes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Bytes handed to the sink while it was open (live output plus replay).
    pub offered: u64,
    /// Bytes the sink accepted.
    pub delivered: u64,
    /// Bytes waiting for the sink now: in its queue, and the rest of the
    /// head of the output that its replay still has to write.
    pub queued: u64,
    /// Bytes offered but discarded: overflow of a `Drop` queue, or still queued when
    /// the sink closed, failed, was detached (a `drop` sink) or released,
    /// or the rest of a head replay cut short by [`Mux::reset_head`](super::Mux::reset_head).
    pub dropped: u64,
    /// Bytes of history replayed when the sink opened, head and tail
    /// (included in `offered`).
    pub replayed: u64,
    /// Largest `queued` seen.
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
    /// Line stamps written in full (a stamped sink; not counted in
    /// `offered`/`delivered`).
    pub stamps: u64,
    /// Bytes of line stamps written (28 per stamp; a stamp being written
    /// counts what was written of it).
    pub stamp_bytes: u64,
    /// Skip markers of replays written in full (`\r\n[multiplex: N bytes
    /// skipped]\r\n`, between the head and the tail; not counted in
    /// `offered`/`delivered`).
    pub skip_markers: u64,
    /// Bytes of skip markers written.
    pub skip_marker_bytes: u64,
}

/// Counters of the multiplexer as a whole, from [`Mux::stats`](super::Mux::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MuxStats {
    /// Bytes the frontend offered ([`Mux::write`](super::Mux::write) and
    /// [`Mux::write_at`](super::Mux::write_at)), counted once per offer: a
    /// frontend that offers the same bytes again counts them again.
    pub frontend_offered: u64,
    /// Bytes of those accepted.
    pub frontend_accepted: u64,
    /// Bytes offered and not accepted: all of an offer turned away ("would
    /// block"), or what was left of one that was accepted in part.
    pub frontend_refused_bytes: u64,
    /// Offers that were turned away or accepted in part.
    pub frontend_refusals: u64,
    /// Sink reports discarded because the caller did not poll them (the
    /// queue of [`Mux::poll_sink_report`](super::Mux::poll_sink_report) is bounded).
    pub reports_lost: u64,
}
