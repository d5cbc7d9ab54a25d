//! One sink: its queue, its state and its counters.
//!
//! What a sink is doing is held in types, not in flags: [`State`] says
//! whether it is connected and whether it is being detached (only a sink
//! whose queue is being written has a [`Flow`]); [`Policy`] says what it
//! does when its queue is full (only a `Drop` sink has a drop unit, a
//! notice and a drop episode, and only in lines mode does it track where
//! it stands in a line). [`SinkStats`] holds counters only.

use std::io::Write as _;

use super::config::{DropUnit, Overflow, SinkConfig};
use super::queue::ByteQueue;
use super::stats::{SinkState, SinkStats};

/// How many EINTRs in a row a sink may report before it waits for writability.
const EINTR_LIMIT: u8 = 16;

/// Where a sink's queued bytes stand with the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Nothing to write now: the queue is empty, or holds coalesced output
    /// that waits for the flush deadline.
    Idle,
    /// The caller should write the queue now ([`Mux::poll_transmit`](super::Mux::poll_transmit)).
    Due,
    /// The sink pushed back: the caller watches it and reports it writable.
    Blocked,
}

/// How the writing of a connected sink's queue goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    phase: Phase,
    /// EINTRs since the last write that took bytes.
    interrupted: u8,
}

impl Flow {
    const IDLE: Flow = Flow {
        phase: Phase::Idle,
        interrupted: 0,
    };
}

/// Where a sink stands: connected or not, attached or on its way out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Connected: gets output, and its queue is written.
    Open(Flow),
    /// Not connected: gets nothing, never blocks.
    Closed,
    /// A write failed with a hard error: gets nothing (its queue was
    /// discarded) and never blocks, until it opens again.
    Failed,
    /// Being detached while connected: gets no new output; its queue is
    /// written out.
    Detaching(Flow),
    /// Detached: nothing left to write (its queue drained or was
    /// discarded); waits to be released.
    Detached,
}

/// Longest drop notice: `\r\n[multiplex: ` + 20 digits + ` bytes dropped]\r\n`.
const NOTICE_MAX: usize = 64;

/// The notice line a `Drop` sink gets when it catches up after dropping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoticeText {
    buf: [u8; NOTICE_MAX],
    len: usize,
    /// How much of it the sink has taken.
    pos: usize,
}

impl NoticeText {
    fn new(dropped: u64) -> NoticeText {
        let mut buf = [0u8; NOTICE_MAX];
        let unit = if dropped == 1 { "byte" } else { "bytes" };
        let mut w = &mut buf[..];
        let room = w.len();
        // Cannot fail: the longest text fits in NOTICE_MAX.
        let _ = write!(w, "\r\n[multiplex: {dropped} {unit} dropped]\r\n");
        let len = room - w.len();
        NoticeText { buf, len, pos: 0 }
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }
}

/// The drop notice of a `Drop` sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Not asked for.
    Off,
    /// Asked for; none to write now.
    Armed,
    /// Being written, before the queue.
    Writing(NoticeText),
}

/// Where the front of a lines-mode sink's queue stands in a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// The sink has taken whole lines only (or nothing).
    LineStart,
    /// The sink has taken the start of a line: the rest of it is kept whole.
    MidLine,
}

/// What becomes of the output arriving for a lines-mode sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// It is queued.
    Taking,
    /// The start of the line now arriving was dropped: so is its rest, up
    /// to and including its newline.
    Skipping,
}

/// What a `Drop` sink discards when its queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Lines { head: Head, tail: Tail },
}

/// A drop episode: dropping since the sink last caught up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Episode {
    /// Bytes dropped in it so far.
    pub dropped: u64,
}

/// What a sink does when its queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Lossless: the frontend waits.
    Block,
    /// Discards, counted; never slows the frontend.
    Drop {
        unit: Unit,
        notice: Notice,
        /// The episode under way, if the sink is dropping.
        episode: Option<Episode>,
    },
}

impl Policy {
    fn new(config: &SinkConfig) -> Policy {
        match config.overflow {
            Overflow::Block => Policy::Block,
            Overflow::Drop => Policy::Drop {
                unit: match config.drop_unit {
                    DropUnit::Bytes => Unit::Bytes,
                    DropUnit::Lines => Unit::Lines {
                        head: Head::LineStart,
                        tail: Tail::Taking,
                    },
                },
                notice: if config.drop_notice {
                    Notice::Armed
                } else {
                    Notice::Off
                },
                episode: None,
            },
        }
    }

    /// The policy as configured, with nothing under way (no episode, no
    /// notice being written, no line started or being skipped).
    fn reset(&mut self) {
        if let Policy::Drop {
            unit,
            notice,
            episode,
        } = self
        {
            if let Unit::Lines { head, tail } = unit {
                *head = Head::LineStart;
                *tail = Tail::Taking;
            }
            if let Notice::Writing(_) = notice {
                *notice = Notice::Armed;
            }
            *episode = None;
        }
    }
}

/// The next bytes to write to a sink, from [`Sink::front`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front<'a> {
    /// The drop notice (or the rest of it), written before the queue.
    Notice(&'a [u8]),
    /// The front of the queue.
    Queue(&'a [u8]),
}

impl<'a> Front<'a> {
    pub const fn bytes(self) -> &'a [u8] {
        match self {
            Front::Notice(b) | Front::Queue(b) => b,
        }
    }

    pub const fn kind(self) -> FrontKind {
        match self {
            Front::Notice(_) => FrontKind::Notice,
            Front::Queue(_) => FrontKind::Queue,
        }
    }
}

/// Which of [`Front`] some bytes handed out were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontKind {
    Notice,
    Queue,
}

/// What a drop episode did, for the multiplexer's reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpisodeChange {
    /// Nothing started or ended.
    None,
    /// The sink started dropping.
    Started,
    /// The episode ended; this many bytes were dropped in it.
    Ended(u64),
}

#[derive(Debug)]
pub struct Sink {
    pub queue: ByteQueue,
    pub stats: SinkStats,
    pub state: State,
    pub policy: Policy,
    /// Bytes of frontend output searched for newlines (lines mode).
    data_scanned: u64,
}

impl Sink {
    pub fn new(config: &SinkConfig, queue: ByteQueue) -> Self {
        Sink {
            queue,
            stats: SinkStats::default(),
            state: if config.open {
                State::Open(Flow::IDLE)
            } else {
                State::Closed
            },
            policy: Policy::new(config),
            data_scanned: 0,
        }
    }

    /// The state as the caller sees it.
    pub const fn state(&self) -> SinkState {
        match self.state {
            State::Open(_) => SinkState::Open,
            State::Closed => SinkState::Closed,
            State::Failed => SinkState::Failed,
            State::Detaching(_) => SinkState::Detaching,
            State::Detached => SinkState::Detached,
        }
    }

    pub const fn overflow(&self) -> Overflow {
        match self.policy {
            Policy::Block => Overflow::Block,
            Policy::Drop { .. } => Overflow::Drop,
        }
    }

    pub const fn drop_unit(&self) -> Option<DropUnit> {
        match self.policy {
            Policy::Block => None,
            Policy::Drop {
                unit: Unit::Bytes, ..
            } => Some(DropUnit::Bytes),
            Policy::Drop {
                unit: Unit::Lines { .. },
                ..
            } => Some(DropUnit::Lines),
        }
    }

    /// Connected and attached: new output is queued for it.
    pub const fn receives_output(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Counts as connected for the frontend (open or failed, not on its way out).
    pub const fn is_connected(&self) -> bool {
        matches!(self.state, State::Open(_) | State::Failed)
    }

    /// Attached (not being detached or detached).
    pub const fn is_attached(&self) -> bool {
        matches!(self.state, State::Open(_) | State::Closed | State::Failed)
    }

    /// Receives output and is lossless: it limits what the frontend may write.
    pub const fn limits_frontend(&self) -> bool {
        self.receives_output() && matches!(self.policy, Policy::Block)
    }

    /// A `block` sink whose queue is still being written out (open, or
    /// being detached): what it holds was accepted and must not be lost.
    pub fn owes_lossless_output(&self) -> bool {
        matches!(self.policy, Policy::Block) && self.flow().is_some()
    }

    fn flow(&self) -> Option<&Flow> {
        match &self.state {
            State::Open(f) | State::Detaching(f) => Some(f),
            _ => None,
        }
    }

    fn flow_mut(&mut self) -> Option<&mut Flow> {
        match &mut self.state {
            State::Open(f) | State::Detaching(f) => Some(f),
            _ => None,
        }
    }

    /// Whether anything (queued output or a notice) waits to be written.
    fn has_pending(&self) -> bool {
        !self.queue.is_empty()
            || matches!(
                self.policy,
                Policy::Drop {
                    notice: Notice::Writing(_),
                    ..
                }
            )
    }

    /// The next bytes to write: the notice first, then the queue's front.
    pub fn front(&self) -> Front<'_> {
        match &self.policy {
            Policy::Drop {
                notice: Notice::Writing(n),
                ..
            } => Front::Notice(n.rest()),
            _ => Front::Queue(self.queue.front()),
        }
    }

    /// Whether the caller should watch this sink for writability.
    pub fn is_blocked(&self) -> bool {
        self.flow().is_some_and(|f| f.phase == Phase::Blocked)
    }

    /// Whether the caller should write this sink's queue now.
    pub fn is_due(&self) -> bool {
        self.flow().is_some_and(|f| f.phase == Phase::Due) && self.has_pending()
    }

    /// Queues output for an open sink, to be written now (`due`) or at the
    /// flush deadline. Returns whether bytes at the front of the queue were
    /// discarded to make room (a `Drop` sink), and whether a drop episode
    /// started.
    pub fn enqueue(&mut self, data: &[u8], due: bool) -> (bool, EpisodeChange) {
        debug_assert!(self.receives_output());
        self.stats.offered += data.len() as u64;
        let dropped = match self.policy {
            Policy::Block => {
                self.queue.push(data);
                0
            }
            Policy::Drop {
                unit: Unit::Bytes, ..
            } => self.queue.push_overwrite(data),
            Policy::Drop {
                unit: Unit::Lines { head, tail },
                ..
            } => {
                let (n, tail) = self.enqueue_lines(data, head, tail);
                if let Policy::Drop {
                    unit: Unit::Lines { tail: t, .. },
                    ..
                } = &mut self.policy
                {
                    *t = tail;
                }
                n
            }
        };
        // Whatever was dropped, the front of the queue may have gone with it.
        let front_discarded = dropped > 0;
        let change = self.note_dropped(dropped);
        self.note_queue_len();
        if !self.has_pending() {
            // Lines mode dropped everything: nothing to wait for.
            if let Some(f) = self.flow_mut() {
                f.phase = Phase::Idle;
            }
        }
        if due {
            self.make_due();
        }
        (front_discarded, change)
    }

    fn note_dropped(&mut self, n: usize) -> EpisodeChange {
        if n == 0 {
            return EpisodeChange::None;
        }
        self.stats.dropped += n as u64;
        let Policy::Drop { episode, .. } = &mut self.policy else {
            unreachable!("a block sink dropped output");
        };
        match episode {
            Some(e) => {
                e.dropped += n as u64;
                EpisodeChange::None
            }
            None => {
                *episode = Some(Episode { dropped: n as u64 });
                self.stats.drop_episodes += 1;
                EpisodeChange::Started
            }
        }
    }

    /// Queues `data` on a lines-mode `Drop` sink, discarding whole lines to
    /// make room. Returns how many bytes (queued or of `data`) were
    /// discarded, and what becomes of the output that follows.
    fn enqueue_lines(&mut self, data: &[u8], head: Head, arriving: Tail) -> (usize, Tail) {
        let before = self.queue.len() + data.len();
        let mut data = data;
        if arriving == Tail::Skipping {
            let found = memchr::memchr(b'\n', data);
            self.data_scanned += found.map_or(data.len(), |p| p + 1) as u64;
            match found {
                None => return (data.len(), Tail::Skipping),
                Some(p) => data = &data[p + 1..],
            }
        }
        let tail = if data.len() <= self.queue.free() {
            self.queue.push(data);
            Tail::Taking
        } else {
            self.make_room_by_lines(data, head)
        };
        (before - self.queue.len(), tail)
    }

    /// Appends `data`, which does not fit, by removing whole lines from the
    /// queue followed by `data` ("the stream"): the oldest lines go first,
    /// except the rest of the line the sink has started to take. Returns
    /// whether the rest of the last line is to be skipped.
    fn make_room_by_lines(&mut self, data: &[u8], head: Head) -> Tail {
        let q = self.queue.len();
        let total = q + data.len();
        let cap = self.queue.capacity();
        let mut data_scanned = 0u64;
        let mut find_nl = |queue: &mut ByteQueue, from: usize| -> Option<usize> {
            if from < q {
                let found = if from == 0 {
                    queue.first_newline()
                } else {
                    queue.find_newline(from)
                };
                if found.is_some() {
                    return found;
                }
            }
            let skip = from.max(q) - q;
            let rest = data.get(skip..)?;
            let found = memchr::memchr(b'\n', rest);
            data_scanned += found.map_or(rest.len(), |p| p + 1) as u64;
            found.map(|p| q + skip + p)
        };
        // The rest of the line the sink has started stays.
        let keep = match head {
            Head::MidLine => find_nl(&mut self.queue, 0).map_or(usize::MAX, |p| p + 1),
            Head::LineStart => 0,
        };
        if keep > cap {
            // One line longer than the queue: fall back to bytes.
            self.data_scanned += data_scanned;
            self.queue.push_overwrite(data);
            return Tail::Taking;
        }
        let need = total - cap;
        // Remove stream[keep..end]: whole lines, at least `need` bytes. With
        // no line end in reach the last line is cut: it all goes, and so does
        // the rest of it that is still to come.
        let (end, tail) = match find_nl(&mut self.queue, keep + need - 1) {
            Some(p) => (p + 1, Tail::Taking),
            None => (total, Tail::Skipping),
        };
        self.data_scanned += data_scanned;
        if end <= q {
            self.queue.remove_range(keep, end);
            self.queue.push(data);
        } else if keep <= q {
            self.queue.truncate(keep);
            self.queue.push(&data[end - q..]);
        } else {
            self.queue.push(&data[..keep - q]);
            self.queue.push(&data[end - q..]);
        }
        tail
    }

    /// Queues replayed history for a sink that just opened (its queue is empty).
    pub fn queue_replay(&mut self, history: (&[u8], &[u8])) {
        let n = history.0.len() + history.1.len();
        self.queue.push(history.0);
        self.queue.push(history.1);
        self.stats.offered += n as u64;
        self.stats.replayed += n as u64;
        self.note_queue_len();
    }

    /// Offers the queue to the caller now, unless the sink is pushing back.
    pub fn make_due(&mut self) {
        let pending = self.has_pending();
        if let Some(f) = self.flow_mut() {
            if f.phase == Phase::Idle && pending {
                f.phase = Phase::Due;
            }
        }
    }

    /// The caller reports the sink writable (or wants it tried again).
    pub fn writable(&mut self) {
        let pending = self.has_pending();
        if let Some(f) = self.flow_mut() {
            f.interrupted = 0;
            f.phase = if pending { Phase::Due } else { Phase::Idle };
        }
    }

    /// The caller wrote `n` bytes of the front (`n` > 0, at most what it was
    /// offered; `kind` says which front, as [`Sink::front`] did). Returns
    /// whether a drop episode ended (the sink caught up).
    pub fn consumed(&mut self, n: usize, kind: FrontKind) -> EpisodeChange {
        let mut change = EpisodeChange::None;
        match kind {
            FrontKind::Notice => {
                if let Policy::Drop { notice, .. } = &mut self.policy {
                    if let Notice::Writing(nt) = notice {
                        nt.pos += n;
                        self.stats.notice_bytes += n as u64;
                        if nt.pos >= nt.len {
                            // The head stays as it was: the rest of a line
                            // the notice interrupted is still kept whole.
                            *notice = Notice::Armed;
                            self.stats.notices += 1;
                        }
                    }
                }
            }
            FrontKind::Queue => {
                let ends_line = self.queue.get(n - 1) == b'\n';
                self.queue.consume(n);
                self.stats.delivered += n as u64;
                self.stats.queued = self.queue.len() as u64;
                let empty = self.queue.is_empty();
                if let Policy::Drop {
                    unit,
                    notice,
                    episode,
                } = &mut self.policy
                {
                    if let Unit::Lines { head, .. } = unit {
                        *head = if ends_line {
                            Head::LineStart
                        } else {
                            Head::MidLine
                        };
                    }
                    if let (true, Some(e)) = (empty, *episode) {
                        // Caught up after dropping: the episode ends, and is told.
                        if *notice == Notice::Armed {
                            *notice = Notice::Writing(NoticeText::new(e.dropped));
                        }
                        *episode = None;
                        change = EpisodeChange::Ended(e.dropped);
                    }
                }
            }
        }
        if let Some(f) = self.flow_mut() {
            f.interrupted = 0;
        }
        if !self.has_pending() {
            if let Some(f) = self.flow_mut() {
                f.phase = Phase::Idle;
            }
        }
        change
    }

    /// The sink took nothing (EAGAIN): wait for writability.
    pub fn push_back(&mut self) {
        if let Some(f) = self.flow_mut() {
            f.phase = Phase::Blocked;
        }
    }

    /// The write was interrupted: offered again, unless that keeps happening.
    pub fn interrupt(&mut self) {
        if let Some(f) = self.flow_mut() {
            f.interrupted += 1;
            if f.interrupted >= EINTR_LIMIT {
                f.phase = Phase::Blocked;
            }
        }
    }

    /// The sink opened: its queue is written from now on. Returns whether it
    /// was closed before (a new connection), as opposed to failed.
    pub fn open(&mut self) -> bool {
        let was_closed = self.state == State::Closed;
        self.state = State::Open(Flow::IDLE);
        was_closed
    }

    /// A hard write error: the queue is discarded (counted) and the sink
    /// fails, or, being detached, is detached. Returns the episode that
    /// ended with it.
    pub fn fail(&mut self, errno: i32) -> EpisodeChange {
        self.stats.write_errors += 1;
        self.stats.last_errno = errno;
        let change = self.discard_queue();
        self.state = match self.state {
            State::Detaching(_) | State::Detached => State::Detached,
            _ => State::Failed,
        };
        change
    }

    /// The sink closed: the queue is discarded (counted); a sink being
    /// detached is detached.
    pub fn close(&mut self) -> EpisodeChange {
        let change = self.discard_queue();
        self.state = match self.state {
            State::Detaching(_) | State::Detached => State::Detached,
            _ => State::Closed,
        };
        change
    }

    /// Starts detaching: a connected `Block` sink with bytes queued goes on
    /// writing them ([`State::Detaching`]); any other sink is detached at
    /// once, its queue (if any) discarded and counted.
    pub fn detach(&mut self) -> EpisodeChange {
        match (self.state, self.policy) {
            (State::Open(flow), Policy::Block) if !self.queue.is_empty() => {
                self.state = State::Detaching(flow);
                EpisodeChange::None
            }
            _ => {
                let change = self.discard_queue();
                self.state = State::Detached;
                change
            }
        }
    }

    /// A sink being detached has written out its queue: it is detached.
    /// Returns whether that happened now.
    pub fn finish_detaching(&mut self) -> bool {
        if matches!(self.state, State::Detaching(_)) && !self.has_pending() {
            self.state = State::Detached;
            return true;
        }
        false
    }

    /// Discards whatever is queued (counted as dropped) and what is under
    /// way (a notice, a drop episode, a line started or being skipped).
    /// Returns the episode that ended.
    fn discard_queue(&mut self) -> EpisodeChange {
        self.stats.dropped += self.queue.clear() as u64;
        self.stats.queued = 0;
        let change = match self.policy {
            Policy::Drop {
                episode: Some(e), ..
            } => EpisodeChange::Ended(e.dropped),
            _ => EpisodeChange::None,
        };
        self.policy.reset();
        if let Some(f) = self.flow_mut() {
            *f = Flow::IDLE;
        }
        change
    }

    /// Empties the sink for release: discards (and counts) what is queued
    /// and returns its final statistics and its queue's storage.
    pub fn vacate(mut self) -> (SinkStats, EpisodeChange, ByteQueue) {
        let change = self.discard_queue();
        (self.stats, change, self.queue.recycle())
    }

    /// Bytes searched for newlines so far, in the queue and in output
    /// arriving (lines mode): the work whole-line drops cost.
    #[cfg(any(test, feature = "model"))]
    pub fn scanned(&self) -> u64 {
        self.queue.scanned() + self.data_scanned
    }

    fn note_queue_len(&mut self) {
        let len = self.queue.len() as u64;
        self.stats.queued = len;
        self.stats.queue_high_water = self.stats.queue_high_water.max(len);
    }
}
