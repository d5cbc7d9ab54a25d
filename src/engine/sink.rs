//! One sink: its queue, its state and its counters.
//!
//! What a sink is doing is held in types, not in flags: [`State`] says
//! whether it is connected and whether it is being detached (only a sink
//! whose queue is being written has a [`Flow`]); [`Policy`] says what it
//! does when its queue is full (only a `Drop` sink has a drop unit, a
//! notice and a drop episode, and only in lines mode does it track where
//! it stands in a line); only a stamped sink has [`Stamps`], and only a
//! sink being replayed the head of the output has a [`HeadPart`].
//! [`SinkStats`] holds counters only.
//!
//! What a sink is written, in order: the rest of a stamp it has started,
//! the head part of its replay (streamed from the multiplexer's head, with
//! its lines' stamps), the skip marker, the drop notice, then its queue
//! (with its lines' stamps). The queue holds the frontend's bytes only.

use super::config::{DropUnit, Overflow, SinkConfig};
use super::queue::ByteQueue;
use super::replay::{HeadStore, ReplayPlan, ReplayStore};
use super::stamp::{count_newlines, LineCtx, Text, TimeRing, Wall};
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

/// The drop notice of a `Drop` sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Not asked for.
    Off,
    /// Asked for; none to write now.
    Armed,
    /// Being written, before the queue.
    Writing(Text),
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
    /// A line's stamp (or the rest of it).
    Stamp(&'a [u8]),
    /// Bytes of the head part of a replay.
    Head(&'a [u8]),
    /// The skip marker of a replay (or the rest of it).
    Marker(&'a [u8]),
    /// The drop notice (or the rest of it), written before the queue.
    Notice(&'a [u8]),
    /// The front of the queue.
    Queue(&'a [u8]),
}

impl<'a> Front<'a> {
    pub const fn bytes(self) -> &'a [u8] {
        match self {
            Front::Stamp(b)
            | Front::Head(b)
            | Front::Marker(b)
            | Front::Notice(b)
            | Front::Queue(b) => b,
        }
    }

    pub const fn kind(self) -> FrontKind {
        match self {
            Front::Stamp(_) => FrontKind::Stamp,
            Front::Head(_) => FrontKind::Head,
            Front::Marker(_) => FrontKind::Marker,
            Front::Notice(_) => FrontKind::Notice,
            Front::Queue(_) => FrontKind::Queue,
        }
    }
}

/// Which of [`Front`] some bytes handed out were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontKind {
    Stamp,
    Head,
    Marker,
    Notice,
    Queue,
}

/// The stamp the line at the front of a stamped sink's queue gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFront {
    /// The queue is empty, and the sink has nothing of the line the next
    /// byte belongs to: that byte gets its line's stamp.
    Fresh,
    /// The front byte gets a stamp of this time first.
    Due(Wall),
    /// The sink has the stamp of the front byte's line (of this time), or
    /// (an empty queue) of the line the next byte continues.
    Given(Wall),
}

/// A stamped sink's line stamps.
#[derive(Debug)]
pub struct Stamps {
    /// One per newline in the queue with a byte after it: the time of the
    /// line that byte starts.
    times: TimeRing,
    front: LineFront,
    /// A stamp handed out: it is written whole before anything else.
    writing: Option<Text>,
}

impl Stamps {
    fn new(times: TimeRing) -> Stamps {
        Stamps {
            times,
            front: LineFront::Fresh,
            writing: None,
        }
    }

    fn reset(&mut self) {
        self.times.clear();
        self.front = LineFront::Fresh;
        self.writing = None;
    }

    /// `data` is about to be appended to a queue whose newest byte is
    /// `last` (`None`: empty), in the line context `ctx`.
    fn pushing(&mut self, last: Option<u8>, data: &[u8], ctx: LineCtx) {
        let Some((_, inner)) = data.split_last() else {
            return;
        };
        match last {
            None => {
                self.front = match self.front {
                    // (The line under way: its time is `ctx.first`.)
                    LineFront::Given(_) if ctx.continues => LineFront::Given(ctx.first),
                    _ => LineFront::Due(ctx.first),
                }
            }
            Some(b'\n') => self.times.push(ctx.first),
            Some(_) => {}
        }
        self.times.push_n(ctx.wall, count_newlines(inner));
    }

    /// Bytes were removed from the front of the queue, `newlines` of them
    /// newlines; `emptied`: none are left. `own`: a stamp being written is
    /// the queue's (not a replay head's), and goes if nothing of it was
    /// written yet.
    fn front_removed(&mut self, newlines: usize, emptied: bool, own: bool) {
        if newlines == 0 && !emptied {
            return;
        }
        let untouched = own && self.writing.as_ref().is_some_and(Text::untouched);
        if untouched {
            self.writing = None;
        }
        if emptied {
            self.times.clear();
            self.front = match self.front {
                LineFront::Given(t) if newlines == 0 && !untouched => LineFront::Given(t),
                _ => LineFront::Fresh,
            };
        } else if let Some(t) = self.times.pop_n(newlines) {
            self.front = LineFront::Due(t);
        }
    }
}

/// The head part of a replay: bytes `pos..end` of the multiplexer's head
/// are still to be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadPart {
    pos: usize,
    end: usize,
    /// Newlines of the head written so far (a stamped sink).
    next_mark: usize,
    /// A stamp of this time goes before the byte at `pos` (a stamped sink).
    due: Option<Wall>,
}

/// The skip marker of a replay, `\r\n[multiplex: N bytes skipped]\r\n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    skipped: u64,
    text: Text,
}

impl Marker {
    fn new(skipped: u64) -> Marker {
        Marker {
            skipped,
            text: Text::skipped(skipped),
        }
    }
}

/// What a replay writes before the queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replay {
    head: Option<HeadPart>,
    /// Between the head part and the tail: what was kept in neither (and
    /// what of the head part a reset cut off).
    marker: Option<Marker>,
}

/// A stamped sink hands out at most this much of the head at once (a
/// search for the line's end goes no further).
const HEAD_CHUNK: usize = 64 * 1024;

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
    /// Line stamps: a stamped sink only.
    stamps: Option<Stamps>,
    /// What its replay still writes before the queue.
    replay: Replay,
    /// Bytes of frontend output searched for newlines (lines mode, stamps).
    data_scanned: u64,
}

impl Sink {
    /// A sink; `times` (a ring for its queue's line times) makes it stamped.
    pub fn new(config: &SinkConfig, queue: ByteQueue, times: Option<TimeRing>) -> Self {
        debug_assert_eq!(config.timestamp, times.is_some());
        Sink {
            queue,
            stats: SinkStats::default(),
            state: if config.open {
                State::Open(Flow::IDLE)
            } else {
                State::Closed
            },
            policy: Policy::new(config),
            stamps: times.map(Stamps::new),
            replay: Replay::default(),
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

    /// The frontend's bytes waiting for this sink: its queue and the rest
    /// of the head part of its replay (`queued` in its statistics).
    #[inline]
    pub fn pending(&self) -> usize {
        self.queue.len() + self.replay.head.map_or(0, |h| h.end - h.pos)
    }

    /// Whether anything (queued output, a replay, a stamp or a notice)
    /// waits to be written.
    #[inline]
    fn has_pending(&self) -> bool {
        !self.queue.is_empty()
            || self.replay.head.is_some()
            || self.replay.marker.is_some()
            || self.stamps.as_ref().is_some_and(|s| s.writing.is_some())
            || matches!(
                self.policy,
                Policy::Drop {
                    notice: Notice::Writing(_),
                    ..
                }
            )
    }

    /// The next bytes to write: a stamp started, the head part of a replay,
    /// the skip marker, the drop notice, then the queue's front (for a
    /// stamped sink: its line's stamp first, and one line at a time).
    /// `head` is the multiplexer's head, which the head part is part of.
    pub fn front<'a>(&'a mut self, store: &'a HeadStore) -> Front<'a> {
        let notice_writing = matches!(
            self.policy,
            Policy::Drop {
                notice: Notice::Writing(_),
                ..
            }
        );
        if let Some(st) = &mut self.stamps {
            if st.writing.is_none() {
                if let Some(hp) = &mut self.replay.head {
                    if let Some(t) = hp.due.take() {
                        st.writing = Some(Text::stamp(t));
                    }
                } else if self.replay.marker.is_none() && !notice_writing && !self.queue.is_empty()
                {
                    if let LineFront::Due(t) = st.front {
                        st.writing = Some(Text::stamp(t));
                        st.front = LineFront::Given(t);
                        // Its stamp is out: the line is started, and kept whole.
                        if let Policy::Drop {
                            unit: Unit::Lines { head, .. },
                            ..
                        } = &mut self.policy
                        {
                            *head = Head::MidLine;
                        }
                    }
                }
            }
        }
        if let Some(t) = self.stamps.as_ref().and_then(|s| s.writing.as_ref()) {
            return Front::Stamp(t.rest());
        }
        if let Some(hp) = &self.replay.head {
            let rest = &store.bytes()[hp.pos..hp.end];
            if self.stamps.is_none() {
                return Front::Head(rest);
            }
            let window = &rest[..rest.len().min(HEAD_CHUNK)];
            return Front::Head(match memchr::memchr(b'\n', window) {
                Some(p) => &window[..=p],
                None => window,
            });
        }
        if let Some(m) = &self.replay.marker {
            return Front::Marker(m.text.rest());
        }
        if let Policy::Drop {
            notice: Notice::Writing(n),
            ..
        } = &self.policy
        {
            return Front::Notice(n.rest());
        }
        if self.stamps.is_some() {
            // One line at a time: the next one's stamp goes between.
            let newline = self.queue.first_newline();
            let f = self.queue.front();
            return Front::Queue(match newline {
                Some(p) if p < f.len() => &f[..=p],
                _ => f,
            });
        }
        Front::Queue(self.queue.front())
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
    /// flush deadline; `ctx` says where the output stands in its lines.
    /// Returns whether bytes at the front of the queue were discarded to
    /// make room (a `Drop` sink), and whether a drop episode started.
    pub fn enqueue(&mut self, data: &[u8], due: bool, ctx: LineCtx) -> (bool, EpisodeChange) {
        debug_assert!(self.receives_output());
        self.stats.offered += data.len() as u64;
        let dropped = match self.policy {
            Policy::Block => {
                self.push(data, ctx);
                0
            }
            Policy::Drop {
                unit: Unit::Bytes, ..
            } => self.push_overwrite(data, ctx),
            Policy::Drop {
                unit: Unit::Lines { head, tail },
                ..
            } => {
                let (n, tail) = self.enqueue_lines(data, head, tail, ctx);
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

    /// Appends `data`, which fits, and (a stamped sink) its lines' times.
    #[inline]
    fn push(&mut self, data: &[u8], ctx: LineCtx) {
        if let Some(st) = &mut self.stamps {
            st.pushing(self.queue.last(), data, ctx);
            self.data_scanned += data.len() as u64;
        }
        self.queue.push(data);
    }

    /// Removes the `n` oldest queued bytes to make room (a stamped sink:
    /// and the times of the lines they started).
    fn drop_front(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        if let Some(st) = &mut self.stamps {
            let newlines = self.queue.count_newlines(0, n);
            let own = self.replay.head.is_none();
            st.front_removed(newlines, n == self.queue.len(), own);
        }
        self.queue.consume(n);
    }

    /// Appends `data`, discarding the oldest bytes (queued first, then the
    /// start of `data`) so that at most the capacity remains. Returns how
    /// many were discarded.
    #[inline]
    fn push_overwrite(&mut self, data: &[u8], ctx: LineCtx) -> usize {
        if self.stamps.is_none() {
            return self.queue.push_overwrite(data);
        }
        self.push_overwrite_stamped(data, ctx)
    }

    /// [`Sink::push_overwrite`] of a stamped sink.
    fn push_overwrite_stamped(&mut self, data: &[u8], ctx: LineCtx) -> usize {
        let cap = self.queue.capacity();
        if data.len() >= cap {
            let q = self.queue.len();
            self.drop_front(q);
            let (gone, kept) = data.split_at(data.len() - cap);
            self.data_scanned += gone.len() as u64;
            // The first byte kept starts a fragment of its line: a new
            // line's if a newline was dropped before it.
            let ctx = if count_newlines(gone) > 0 {
                ctx.line_start()
            } else {
                ctx
            };
            self.push(kept, ctx);
            return q + gone.len();
        }
        let d = data.len().saturating_sub(self.queue.free());
        self.drop_front(d);
        self.push(data, ctx);
        d
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
    fn enqueue_lines(
        &mut self,
        data: &[u8],
        head: Head,
        arriving: Tail,
        ctx: LineCtx,
    ) -> (usize, Tail) {
        let before = self.queue.len() + data.len();
        let mut data = data;
        let mut ctx = ctx;
        if arriving == Tail::Skipping {
            let found = memchr::memchr(b'\n', data);
            self.data_scanned += found.map_or(data.len(), |p| p + 1) as u64;
            match found {
                None => return (data.len(), Tail::Skipping),
                Some(p) => {
                    data = &data[p + 1..];
                    ctx = ctx.line_start();
                }
            }
        }
        let tail = if data.len() <= self.queue.free() {
            self.push(data, ctx);
            Tail::Taking
        } else {
            self.make_room_by_lines(data, head, ctx)
        };
        (before - self.queue.len(), tail)
    }

    /// Appends `data`, which does not fit, by removing whole lines from the
    /// queue followed by `data` ("the stream"): the oldest lines go first,
    /// except the rest of the line the sink has started to take. Returns
    /// whether the rest of the last line is to be skipped.
    fn make_room_by_lines(&mut self, data: &[u8], head: Head, ctx: LineCtx) -> Tail {
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
            self.push_overwrite(data, ctx);
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
            if keep == 0 {
                self.drop_front(end);
            } else {
                if let Some(st) = &mut self.stamps {
                    // queue[keep - 1] and queue[end - 1] are newlines: the
                    // lines that go are those after the newlines in keep..end.
                    let newlines = self.queue.count_newlines(keep, end);
                    st.times.pop_n(newlines);
                }
                self.queue.remove_range(keep, end);
            }
            self.push(data, ctx);
        } else if keep <= q {
            if keep == 0 {
                self.drop_front(q);
            } else if let Some(st) = &mut self.stamps {
                // What is kept is one line: no newline in it has a byte after it.
                st.times.clear();
            }
            self.queue.truncate(keep);
            // data[..end - q] ends with a newline (or is all of it).
            self.push(&data[end - q..], ctx.line_start());
        } else {
            self.push(&data[..keep - q], ctx);
            self.push(&data[end - q..], ctx.line_start());
        }
        tail
    }

    /// A sink that just opened (its queue empty) is replayed `plan`: the
    /// head part streamed from `store`'s head, the skip marker, then the
    /// tail, queued.
    pub fn open_replay(&mut self, plan: ReplayPlan, store: &ReplayStore) {
        let (history, head_store) = (&store.history, &store.head);
        let tail = history.len();
        if plan.head_len > 0 {
            self.replay.head = Some(HeadPart {
                pos: 0,
                end: plan.head_len,
                next_mark: 0,
                due: self.stamps.is_some().then(|| head_store.front()),
            });
        }
        if plan.skipped > 0 {
            self.replay.marker = Some(Marker::new(plan.skipped));
        }
        let (a, b) = history.as_slices();
        self.queue.push(a);
        self.queue.push(b);
        let n = (plan.head_len + tail) as u64;
        self.stats.offered += n;
        self.stats.replayed += n;
        self.note_queue_len();
        // Whether what follows the head part continues its last line.
        let continues = plan.skipped == 0
            && plan.head_len > 0
            && head_store.bytes()[plan.head_len - 1] != b'\n';
        if let Some(st) = &mut self.stamps {
            st.front = match (tail > 0, continues) {
                (true, false) => LineFront::Due(history.front()),
                (true, true) => LineFront::Given(history.front()),
                (false, false) => LineFront::Fresh,
                (false, true) => LineFront::Given(Wall::UNKNOWN),
            };
            if tail > 0 {
                st.times.copy_from(history.times());
            }
        }
        if continues {
            if let Policy::Drop {
                unit: Unit::Lines { head, .. },
                ..
            } = &mut self.policy
            {
                *head = Head::MidLine;
            }
        }
    }

    /// The multiplexer's head was reset: the rest of the head part of this
    /// sink's replay is gone (counted as dropped), and the skip marker
    /// that follows counts it as skipped too (a marker comes now if none
    /// was to); what follows is stamped again. Returns whether it had a
    /// head part.
    pub fn cut_head_replay(&mut self) -> bool {
        let Some(hp) = self.replay.head.take() else {
            return false;
        };
        let rest = (hp.end - hp.pos) as u64;
        self.stats.dropped += rest;
        // (Not started yet: it comes after the head part.)
        let skipped = self.replay.marker.map_or(0, |m| m.skipped);
        self.replay.marker = Some(Marker::new(skipped + rest));
        self.note_queue_len();
        if let Some(st) = &mut self.stamps {
            if st.writing.as_ref().is_some_and(Text::untouched) {
                st.writing = None;
            }
            if let LineFront::Given(t) = st.front {
                st.front = if self.queue.is_empty() {
                    LineFront::Fresh
                } else {
                    LineFront::Due(t)
                };
            }
        }
        if let Policy::Drop {
            unit: Unit::Lines { head, .. },
            ..
        } = &mut self.policy
        {
            *head = Head::LineStart;
        }
        if !self.has_pending() {
            if let Some(f) = self.flow_mut() {
                f.phase = Phase::Idle;
            }
        }
        true
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
    /// offered; `kind` says which front, as [`Sink::front`] did; `head` is
    /// the multiplexer's head). Returns whether a drop episode ended (the
    /// sink caught up).
    pub fn consumed(&mut self, n: usize, kind: FrontKind, store: &HeadStore) -> EpisodeChange {
        let mut change = EpisodeChange::None;
        match kind {
            FrontKind::Stamp => {
                if let Some(st) = &mut self.stamps {
                    if let Some(t) = &mut st.writing {
                        self.stats.stamp_bytes += n as u64;
                        if t.advance(n) {
                            self.stats.stamps += 1;
                            st.writing = None;
                        }
                    }
                }
            }
            FrontKind::Head => {
                if let Some(hp) = &mut self.replay.head {
                    hp.pos += n;
                    self.stats.delivered += n as u64;
                    if self.stamps.is_some() && store.bytes()[hp.pos - 1] == b'\n' {
                        // (A stamped sink is handed out one line at a time.)
                        hp.due = Some(store.time(hp.next_mark));
                        hp.next_mark += 1;
                    }
                    if hp.pos >= hp.end {
                        self.replay.head = None;
                    }
                    self.stats.queued = self.pending() as u64;
                }
            }
            FrontKind::Marker => {
                if let Some(m) = &mut self.replay.marker {
                    self.stats.skip_marker_bytes += n as u64;
                    if m.text.advance(n) {
                        self.stats.skip_markers += 1;
                        self.replay.marker = None;
                    }
                }
            }
            FrontKind::Notice => {
                if let Policy::Drop { notice, .. } = &mut self.policy {
                    if let Notice::Writing(nt) = notice {
                        self.stats.notice_bytes += n as u64;
                        if nt.advance(n) {
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
                self.stats.queued = self.pending() as u64;
                let empty = self.queue.is_empty();
                if let (true, Some(st)) = (ends_line, &mut self.stamps) {
                    // (A stamped sink is handed out one line at a time.)
                    st.front = match st.times.pop_n(usize::from(!empty)) {
                        Some(t) => LineFront::Due(t),
                        None => LineFront::Fresh,
                    };
                }
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
                            *notice = Notice::Writing(Text::notice(e.dropped));
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
            (State::Open(flow), Policy::Block) if self.pending() > 0 => {
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
    /// way (a replay, a stamp, a notice, a drop episode, a line started or
    /// being skipped). Returns the episode that ended.
    fn discard_queue(&mut self) -> EpisodeChange {
        self.stats.dropped += self.pending() as u64;
        self.queue.clear();
        self.replay = Replay::default();
        self.stats.queued = 0;
        if let Some(st) = &mut self.stamps {
            st.reset();
        }
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
    /// arriving (lines mode, stamps): the work whole-line drops and line
    /// stamps cost.
    #[cfg(any(test, feature = "model"))]
    pub fn scanned(&self) -> u64 {
        self.queue.scanned() + self.data_scanned
    }

    fn note_queue_len(&mut self) {
        let len = self.pending() as u64;
        self.stats.queued = len;
        self.stats.queue_high_water = self.stats.queue_high_water.max(len);
    }
}
