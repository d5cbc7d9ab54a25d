//! The multiplexer: one frontend, up to [`MAX_SINKS`](super::MAX_SINKS) sinks.
//!
//! Pull-based, like `quinn-proto`: the caller pushes what happened in
//! ([`Mux::write_at`], [`Mux::transmitted`], [`Mux::sink_writable`],
//! [`Mux::sink_event`], [`Mux::input`], [`Mux::handle_timeout`]) and pulls out
//! what to do ([`Mux::poll_transmit`], [`Mux::watch_mask`],
//! [`Mux::poll_event`], [`Mux::poll_sink_report`], [`Mux::poll_timeout`]).
//! Nothing is called back from inside a method, so the engine can never be
//! re-entered.

use core::fmt;
use std::collections::VecDeque;

use super::config::{Config, ConfigError, DropUnit, Overflow, SinkConfig, MAX_SINKS};
use super::io::{FrontendEvent, SinkEvent, SinkReport, Transmit, WriteOutcome};
use super::queue::ByteQueue;
use super::replay::{ImportError, ReplayStore};
use super::sink::{EpisodeChange, FrontKind, Sink};
use super::stamp::{time_slots, TimeRing, Wall};
use super::stats::{MuxStats, SinkState, SinkStats};

/// The frontend asked to write while a lossless sink's queue was full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WouldBlock;

impl fmt::Display for WouldBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("would block: a lossless sink's queue is full")
    }
}

impl std::error::Error for WouldBlock {}

/// A sink index that does not exist in this multiplexer (never attached,
/// or released).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSuchSink(pub usize);

impl fmt::Display for NoSuchSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no sink with index {}", self.0)
    }
}

impl std::error::Error for NoSuchSink {}

/// Why [`Mux::transmitted`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransmitError {
    /// No such sink.
    NoSuchSink(usize),
    /// That sink has no bytes out with the caller: [`Mux::poll_transmit`]
    /// did not hand any out, or they were reported already.
    NotOffered(usize),
}

impl From<NoSuchSink> for TransmitError {
    fn from(e: NoSuchSink) -> Self {
        TransmitError::NoSuchSink(e.0)
    }
}

impl fmt::Display for TransmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TransmitError::NoSuchSink(i) => NoSuchSink(i).fmt(f),
            TransmitError::NotOffered(i) => {
                write!(f, "sink {i} has no bytes out with the caller")
            }
        }
    }
}

impl std::error::Error for TransmitError {}

/// Why [`Mux::attach`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachError {
    /// Every one of the [`MAX_SINKS`] slots is in use.
    Full,
    /// The sink's configuration is invalid (a notice on a `Block` sink).
    Config(ConfigError),
    /// Its queue (or its ring of line times) could not be allocated.
    OutOfMemory,
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachError::Full => write!(f, "all {MAX_SINKS} sinks are in use"),
            AttachError::Config(e) => e.fmt(f),
            AttachError::OutOfMemory => f.write_str("out of memory for the sink's queue"),
        }
    }
}

impl std::error::Error for AttachError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AttachError::Config(e) => Some(e),
            _ => None,
        }
    }
}

/// Why [`Mux::detach`] or [`Mux::release`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetachError {
    /// No such sink.
    NoSuchSink(usize),
    /// It is the last sink that receives output: a multiplexer keeps one.
    LastSink(usize),
}

impl From<NoSuchSink> for DetachError {
    fn from(e: NoSuchSink) -> Self {
        DetachError::NoSuchSink(e.0)
    }
}

impl fmt::Display for DetachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DetachError::NoSuchSink(i) => NoSuchSink(i).fmt(f),
            DetachError::LastSink(i) => write!(
                f,
                "sink {i} is the last sink that receives output and cannot be detached"
            ),
        }
    }
}

impl std::error::Error for DetachError {}

/// How many bytes a non-input sink may read per call; they are discarded anyway.
pub const DISCARD_CHUNK: usize = 4096;

/// Frontend events kept for [`Mux::poll_event`]; a caller polls after every
/// call, so this is only reached by one that does not (see `push_event`).
const MAX_EVENTS: usize = 32;

/// Sink reports kept for [`Mux::poll_sink_report`] (see `push_report`).
const MAX_REPORTS: usize = 64;

/// One sink slot: free (keeping its queue's storage for the next sink) or
/// holding a sink.
// At most MAX_SINKS slots, reserved once: the size of a vacant one does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Slot {
    Vacant(ByteQueue),
    Live(Sink),
}

impl Slot {
    fn live(&self) -> Option<&Sink> {
        match self {
            Slot::Live(s) => Some(s),
            Slot::Vacant(_) => None,
        }
    }

    fn live_mut(&mut self) -> Option<&mut Sink> {
        match self {
            Slot::Live(s) => Some(s),
            Slot::Vacant(_) => None,
        }
    }
}

/// The bytes [`Mux::poll_transmit`] handed out, until they are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    /// Nothing is out with the caller.
    Nothing,
    /// These bytes of `sink` are out: `len` of them, from the notice or the queue.
    Handed {
        sink: usize,
        len: usize,
        kind: FrontKind,
    },
    /// The bytes out for `sink` were withdrawn before they were reported:
    /// the sink closed, was detached, or (a `drop` sink) discarded them to
    /// make room. Its report for them is accepted and ignored.
    Withdrawn { sink: usize },
}

impl Out {
    /// The bytes out for `sink`, if any, are withdrawn.
    fn withdraw(&mut self, sink: usize) {
        if matches!(*self, Out::Handed { sink: k, .. } if k == sink) {
            *self = Out::Withdrawn { sink };
        }
    }

    /// Forgets whatever is out for `sink` (it is released).
    fn forget(&mut self, sink: usize) {
        if matches!(*self, Out::Handed { sink: k, .. } | Out::Withdrawn { sink: k } if k == sink) {
            *self = Out::Nothing;
        }
    }
}

/// The sans-IO multiplexer state machine.
///
/// Memory is allocated by [`Mux::new`] and by [`Mux::attach`] (a new slot's
/// queue); nothing else allocates. Sink indexes are slots: they stay the
/// same for the life of a sink, and a released slot is reused by a later
/// attach.
///
/// After every call, the caller pulls: [`Mux::poll_transmit`] until `None`
/// (reporting each with [`Mux::transmitted`]), then [`Mux::watch_mask`],
/// [`Mux::poll_event`] and [`Mux::poll_sink_report`] until `None`, and
/// [`Mux::poll_timeout`].
#[derive(Debug)]
pub struct Mux {
    slots: Vec<Slot>,
    input: Option<usize>,
    /// Output kept for replay (the tail and the head; capacity 0 when off),
    /// how much was written, and where it stands in its line.
    replay: ReplayStore,
    /// Bytes each sink may queue; also the most one write accepts.
    capacity: usize,
    /// Sinks that are connected (open or failed, and attached).
    connected: usize,
    /// Whether the frontend was last told OPENED (and not CLOSED since).
    frontend_open: bool,
    /// Whether the frontend was told "would block" and not yet told it may write.
    frontend_blocked: bool,
    /// Free space every lossless sink needs before a blocked frontend is woken.
    wake_threshold: usize,
    /// Coalescing window of [`Mux::write_at`] (0: off).
    coalesce: u64,
    /// When output last went to the sinks: a write-through by `write_at` or a flush.
    last_out: Option<u64>,
    /// When coalesced output must be flushed; `Some` while any is held.
    flush_at: Option<u64>,
    /// Events for the frontend, oldest first.
    events: VecDeque<FrontendEvent>,
    /// Reports about sinks, oldest first.
    reports: VecDeque<SinkReport>,
    /// What [`Mux::poll_transmit`] handed out last, until reported.
    out: Out,
    stats: MuxStats,
}

impl Mux {
    /// Builds a multiplexer. If any sink starts open, the frontend's first
    /// event is OPENED.
    pub fn new(config: Config) -> Result<Mux, ConfigError> {
        config.validate()?;
        let cap = config.queue_capacity;
        let stamped = config.sinks.iter().filter(|s| s.timestamp).count();
        let total = cap
            .saturating_mul(config.sinks.len())
            .saturating_add(time_slots(cap).saturating_mul(8 * stamped))
            .saturating_add(config.replay_capacity)
            .saturating_add(time_slots(config.replay_capacity).saturating_mul(8))
            .saturating_add(config.replay_head_capacity)
            .saturating_add(time_slots(config.replay_head_capacity).saturating_mul(8));
        let oom = |_| ConfigError::OutOfMemory(total);
        let mut slots = Vec::new();
        // Room for every slot, so that attaching never grows the vector.
        slots.try_reserve_exact(MAX_SINKS).map_err(oom)?;
        for s in &config.sinks {
            let queue = ByteQueue::with_capacity(cap).map_err(oom)?;
            let times = stamp_ring(s, cap).map_err(oom)?;
            slots.push(Slot::Live(Sink::new(s, queue, times)));
        }
        let mut events = VecDeque::new();
        events.try_reserve_exact(MAX_EVENTS).map_err(oom)?;
        let mut reports = VecDeque::new();
        reports.try_reserve_exact(MAX_REPORTS).map_err(oom)?;
        let connected = config.sinks.iter().filter(|s| s.open).count();
        let mut mux = Mux {
            slots,
            input: config.input,
            replay: ReplayStore::new(config.replay_capacity, config.replay_head_capacity)
                .map_err(oom)?,
            capacity: cap,
            connected,
            frontend_open: false,
            frontend_blocked: false,
            wake_threshold: (cap / 2).max(1),
            coalesce: config.coalesce_ns,
            last_out: None,
            flush_at: None,
            events,
            reports,
            out: Out::Nothing,
            stats: MuxStats::default(),
        };
        if connected > 0 {
            mux.frontend_open = true;
            mux.push_event(FrontendEvent::Opened);
        }
        Ok(mux)
    }

    fn sinks(&self) -> impl Iterator<Item = &Sink> {
        self.slots.iter().filter_map(Slot::live)
    }

    fn sinks_mut(&mut self) -> impl Iterator<Item = &mut Sink> {
        self.slots.iter_mut().filter_map(Slot::live_mut)
    }

    /// Number of sink slots: one past the highest sink index ever used
    /// (released slots included).
    pub fn sink_count(&self) -> usize {
        self.slots.len()
    }

    /// Whether `sink` is a sink (attached, possibly being detached).
    pub fn has_sink(&self, sink: usize) -> bool {
        self.sink(sink).is_ok()
    }

    /// The state of sink `sink`.
    pub fn sink_state(&self, sink: usize) -> Result<SinkState, NoSuchSink> {
        Ok(self.sink(sink)?.state())
    }

    /// The overflow policy of sink `sink`.
    pub fn overflow(&self, sink: usize) -> Result<Overflow, NoSuchSink> {
        Ok(self.sink(sink)?.overflow())
    }

    /// The input source, if any.
    pub fn input_source(&self) -> Option<usize> {
        self.input
    }

    /// Makes `sink` the input source, or none. Input already passed to the
    /// frontend stays there; from now on [`Mux::input`] forwards from the
    /// new source only (the old one's input is discarded and counted). The
    /// frontend gets no event: it keeps its session. A sink being detached
    /// (or detached) cannot become the input.
    pub fn set_input(&mut self, sink: Option<usize>) -> Result<(), NoSuchSink> {
        if let Some(i) = sink {
            if !self.sink(i)?.is_attached() {
                return Err(NoSuchSink(i));
            }
        }
        self.input = sink;
        Ok(())
    }

    /// Adds a sink in the first free slot and returns its index. An open
    /// sink gets the replay first (see [`Mux::sink_event`]), then live
    /// output: no byte twice, none missing (output held for coalescing is
    /// in the history, so it comes once, in order). The first connected
    /// sink tells the frontend OPENED.
    pub fn attach(&mut self, config: SinkConfig) -> Result<usize, AttachError> {
        let slot = self.slots.iter().position(|s| matches!(s, Slot::Vacant(_)));
        if slot.is_none() && self.slots.len() >= MAX_SINKS {
            return Err(AttachError::Full);
        }
        config
            .validate(slot.unwrap_or(self.slots.len()))
            .map_err(AttachError::Config)?;
        let times = stamp_ring(&config, self.capacity).map_err(|_| AttachError::OutOfMemory)?;
        let i = match slot {
            Some(i) => {
                let queue = match core::mem::replace(
                    &mut self.slots[i],
                    Slot::Vacant(ByteQueue::empty()),
                ) {
                    Slot::Vacant(q) => q,
                    Slot::Live(_) => unreachable!("slot {i} was found vacant"),
                };
                self.slots[i] = Slot::Live(Sink::new(&config, queue, times));
                i
            }
            None => {
                let queue = ByteQueue::with_capacity(self.capacity)
                    .map_err(|_| AttachError::OutOfMemory)?;
                self.slots
                    .push(Slot::Live(Sink::new(&config, queue, times)));
                self.slots.len() - 1
            }
        };
        if config.open {
            let plan = self.replay.plan();
            let Some(s) = self.slots[i].live_mut() else {
                unreachable!("sink {i} was just attached");
            };
            s.open_replay(plan, &self.replay);
            s.writable();
            self.note_connected();
        }
        Ok(i)
    }

    /// Starts detaching `sink`, and returns at once: it gets no new output
    /// and no longer limits the frontend. A connected `block` sink goes on
    /// being offered its queue ([`SinkState::Detaching`]) until it is
    /// written out, or the sink closes or fails; any other sink (a `drop`
    /// sink's queue is discarded, counted) is detached at once. Either way
    /// [`SinkReport::Detached`] says when it is done ([`SinkState::Detached`]);
    /// then [`Mux::release`] it. Returns the bytes still queued. The input
    /// source becomes none if it was this sink. The last sink that receives
    /// output cannot be detached. Detaching a sink that is being detached
    /// (or is detached) changes nothing.
    pub fn detach(&mut self, sink: usize) -> Result<usize, DetachError> {
        self.start_detaching(sink, true)
    }

    /// [`Mux::detach`]; `report`: whether a sink detached at once is reported.
    fn start_detaching(&mut self, sink: usize, report: bool) -> Result<usize, DetachError> {
        let s = self.sink(sink)?;
        if !s.is_attached() {
            return Ok(s.pending());
        }
        let others = self
            .slots
            .iter()
            .enumerate()
            .filter(|&(i, slot)| i != sink && slot.live().is_some_and(Sink::is_attached))
            .count();
        if others == 0 {
            return Err(DetachError::LastSink(sink));
        }
        if self.input == Some(sink) {
            self.input = None;
        }
        let target = self.sink_mut(sink)?;
        let was_connected = target.is_connected();
        let change = target.detach();
        let detached = target.state() == SinkState::Detached;
        let backlog = target.pending();
        if detached {
            self.out.withdraw(sink);
        }
        self.report_episode(sink, change);
        if detached && report {
            self.push_report(SinkReport::Detached { sink });
        }
        if was_connected {
            self.note_disconnected();
        }
        self.wake_frontend_if_ready();
        Ok(backlog)
    }

    /// Removes `sink` (detaching it first if [`Mux::detach`] was not called):
    /// what it still has queued is discarded and counted as dropped. Returns
    /// its final statistics; its index is free for a later attach, and
    /// refused by every call until then. It is not reported
    /// ([`SinkReport::Detached`]): the caller knows. A drop episode under
    /// way ends ([`SinkReport::DropStopped`]).
    pub fn release(&mut self, sink: usize) -> Result<SinkStats, DetachError> {
        self.start_detaching(sink, false)?;
        self.out.forget(sink);
        let Slot::Live(s) =
            core::mem::replace(&mut self.slots[sink], Slot::Vacant(ByteQueue::empty()))
        else {
            unreachable!("sink {sink} was just detached");
        };
        let unit = s.drop_unit();
        let (stats, change, queue) = s.vacate();
        self.slots[sink] = Slot::Vacant(queue);
        self.push_episode(sink, change, unit, stats.dropped);
        Ok(stats)
    }

    fn note_connected(&mut self) {
        self.connected += 1;
        if !self.frontend_open {
            self.frontend_open = true;
            self.push_event(FrontendEvent::Opened);
        }
    }

    fn note_disconnected(&mut self) {
        self.connected -= 1;
        if self.connected == 0 && self.frontend_open {
            self.frontend_open = false;
            self.push_event(FrontendEvent::Closed);
        }
    }

    /// Whether the frontend was told OPENED and not CLOSED since (events not
    /// yet pulled included).
    pub fn frontend_open(&self) -> bool {
        self.frontend_open
    }

    /// How many bytes [`Mux::write`] would accept now (`usize::MAX` when no open
    /// lossless sink limits it; one call accepts at most the queue capacity).
    pub fn write_room(&self) -> usize {
        self.sinks()
            .filter(|s| s.limits_frontend())
            .map(|s| s.queue.free())
            .min()
            .unwrap_or(usize::MAX)
    }

    /// Output from the frontend. Returns how many leading bytes of `data` were
    /// accepted (at most the queue capacity); every accepted byte is queued for
    /// every open sink and offered through [`Mux::poll_transmit`].
    /// `Err(WouldBlock)` means nothing was accepted because an open `block`
    /// sink's queue is full; such sinks are offered again at once (so a caller
    /// that retries makes progress on whatever they take now), and
    /// [`FrontendEvent::Writable`] follows once every one has half its queue
    /// free. Output that [`Mux::write_at`] held is released first. What is
    /// not accepted is counted in [`MuxStats`]. The wall clock is not known:
    /// the lines that start in it are stamped [`UNKNOWN_STAMP`](super::UNKNOWN_STAMP)
    /// on stamped sinks (see [`Mux::write_at_wall`]).
    pub fn write(&mut self, data: &[u8]) -> Result<usize, WouldBlock> {
        self.release_held();
        let r = self.write_now(data, Wall::UNKNOWN);
        self.count_offer(data.len(), r);
        r
    }

    /// Like [`Mux::write`], but coalesces: `now` is the caller's monotonic
    /// clock (nanoseconds by convention). Output that follows other output
    /// within the configured window is held instead of offered, and
    /// [`Mux::poll_timeout`] says when the caller must call
    /// [`Mux::handle_timeout`]; the first output after a quiet window, or after
    /// input from the input source (a keystroke's echo), is offered at once,
    /// and input releases what is held. No byte waits longer than the window,
    /// order is kept on every sink, and `block`/`drop` apply as with
    /// [`Mux::write`]: when a queue has no room for `data`, held output is
    /// released first. With a window of 0 this is [`Mux::write`]. The wall
    /// clock is not known, as with [`Mux::write`].
    pub fn write_at(&mut self, data: &[u8], now: u64) -> Result<usize, WouldBlock> {
        self.write_at_wall(data, now, u64::MAX)
    }

    /// [`Mux::write_at`] with the wall clock: `wall_ns` is the UTC time in
    /// nanoseconds since the Unix epoch (`u64::MAX`: unknown), the time of
    /// every line whose first byte is in `data`. A sink with
    /// [`SinkConfig::timestamp`] gets each line it receives preceded by
    /// that time, `YYYY-MM-DDTHH:MM:SS.uuuuuuZ ` (QEMU's
    /// `-msg timestamp=on` format; a line that started in a write without
    /// a wall clock gets [`UNKNOWN_STAMP`](super::UNKNOWN_STAMP)). A line is
    /// the bytes up to and including `\n`: the stamp goes before the first
    /// byte of the output and before each byte that follows a `\n` (so
    /// with `\r\n` line ends the `\r` ends the line it belongs to and
    /// the stamp follows the `\n`). A sink that receives part of a line
    /// only (it opened in the middle of it, or a drop cut its start) gets
    /// that part preceded by the line's stamp; a line cut in its middle
    /// keeps its one stamp. Other sinks get the bytes unchanged.
    pub fn write_at_wall(
        &mut self,
        data: &[u8],
        now: u64,
        wall_ns: u64,
    ) -> Result<usize, WouldBlock> {
        let wall = Wall::from_ns(wall_ns);
        let r = if self.coalesce == 0 {
            self.release_held();
            self.write_now(data, wall)
        } else {
            self.write_held(data, now, wall)
        };
        self.count_offer(data.len(), r);
        r
    }

    fn count_offer(&mut self, len: usize, r: Result<usize, WouldBlock>) {
        let accepted = r.unwrap_or(0);
        let st = &mut self.stats;
        st.frontend_offered += len as u64;
        st.frontend_accepted += accepted as u64;
        if accepted < len {
            st.frontend_refusals += 1;
            st.frontend_refused_bytes += (len - accepted) as u64;
        }
    }

    fn write_held(&mut self, data: &[u8], now: u64, wall: Wall) -> Result<usize, WouldBlock> {
        if data.is_empty() {
            return Ok(0);
        }
        let data = &data[..data.len().min(self.capacity)];
        let quiet = self
            .last_out
            .is_none_or(|last| now.saturating_sub(last) >= self.coalesce);
        if self.flush_at.is_none() && quiet {
            // Nothing held and quiet for a whole window: out at once.
            self.last_out = Some(now);
            return self.write_now(data, wall);
        }
        // Held output must fit in every queue, except that of a `drop` sink
        // that is pushing back: it drops its oldest bytes, as it would anyway.
        let fits = self.sinks().all(|s| {
            !s.receives_output()
                || s.queue.free() >= data.len()
                || (s.overflow() == Overflow::Drop && s.is_blocked())
        });
        if !fits {
            self.handle_timeout(now);
            return self.write_now(data, wall);
        }
        // One window after the output that started it (never later than now + window).
        let since = self.last_out.map_or(now, |last| last.min(now));
        if self.flush_at.is_none() {
            self.flush_at = Some(since.saturating_add(self.coalesce));
        }
        self.fan_out(data, false, wall);
        Ok(data.len())
    }

    /// When held output must be released with [`Mux::handle_timeout`] (in the
    /// clock of [`Mux::write_at`]), or `None` when nothing is held.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.flush_at
    }

    /// The deadline of [`Mux::poll_timeout`] passed (or output must go out now,
    /// as before the multiplexer is freed): held output is offered through
    /// [`Mux::poll_transmit`]. With nothing held it does nothing.
    pub fn handle_timeout(&mut self, now: u64) {
        if self.flush_at.is_some() {
            self.last_out = Some(now);
            self.release_held();
        }
    }

    fn release_held(&mut self) {
        if self.flush_at.take().is_some() {
            for s in self.sinks_mut() {
                s.make_due();
            }
        }
    }

    fn write_now(&mut self, data: &[u8], wall: Wall) -> Result<usize, WouldBlock> {
        if data.is_empty() {
            return Ok(0);
        }
        let room = self.write_room();
        if room == 0 {
            let first = !self.frontend_blocked;
            self.frontend_blocked = true;
            for s in self.sinks_mut() {
                if s.limits_frontend() && s.queue.free() == 0 {
                    s.stats.backpressure_events += u64::from(first);
                    // A caller that spins (QEMU's write_all) retries at once:
                    // let it try the sink again rather than wait for a watch
                    // that its loop never dispatches.
                    s.writable();
                }
            }
            return Err(WouldBlock);
        }
        let data = &data[..data.len().min(room).min(self.capacity)];
        self.fan_out(data, true, wall);
        Ok(data.len())
    }

    /// Queues accepted output, written at `wall`, for every open sink,
    /// offered now (`due`) or held, and keeps what the replay needs of it.
    fn fan_out(&mut self, data: &[u8], due: bool, wall: Wall) {
        let ctx = self.replay.record(data, wall);
        for i in 0..self.slots.len() {
            let Some(s) = self.slots[i].live_mut().filter(|s| s.receives_output()) else {
                continue;
            };
            let (front_discarded, change) = s.enqueue(data, due, ctx);
            if front_discarded {
                // The bytes out with the caller, if any, are gone.
                self.out.withdraw(i);
            }
            self.report_episode(i, change);
        }
    }

    /// The next bytes to write: the front of a sink's queue. The caller writes
    /// them (or some of them) to that sink and reports the outcome with
    /// [`Mux::transmitted`] before its next call; asking again first hands out
    /// the same bytes. `None`: nothing to write now.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        let sink = match self.out {
            Out::Handed { sink, .. } => sink,
            Out::Nothing | Out::Withdrawn { .. } => self
                .slots
                .iter()
                .position(|s| s.live().is_some_and(Sink::is_due))?,
        };
        let front = self.slots[sink].live_mut()?.front(&self.replay.head);
        self.out = Out::Handed {
            sink,
            len: front.bytes().len(),
            kind: front.kind(),
        };
        Some(Transmit {
            sink,
            data: front.bytes(),
        })
    }

    /// What became of the bytes [`Mux::poll_transmit`] handed out for `sink`.
    ///
    /// If they were withdrawn before this report (the sink closed, even if
    /// it opened again since, or was detached, or a `drop` sink discarded
    /// them to make room), the report is accepted and ignored: a write that
    /// failed because the viewer hung up (EPIPE, then CLOSED from inside the
    /// caller's write) does not fail the sink. A second report for the same
    /// bytes, or one for a sink that has nothing out, is refused
    /// ([`TransmitError::NotOffered`]); a released index is refused as by
    /// every call.
    pub fn transmitted(&mut self, sink: usize, outcome: WriteOutcome) -> Result<(), TransmitError> {
        self.sink(sink)?;
        let (len, kind) = match self.out {
            Out::Handed { sink: k, len, kind } if k == sink => (len, kind),
            Out::Withdrawn { sink: k } if k == sink => {
                self.out = Out::Nothing;
                return Ok(());
            }
            _ => return Err(TransmitError::NotOffered(sink)),
        };
        self.out = Out::Nothing;
        let head = &self.replay.head;
        let s = self
            .slots
            .get_mut(sink)
            .and_then(Slot::live_mut)
            .ok_or(NoSuchSink(sink))?;
        match outcome {
            WriteOutcome::Written(0) | WriteOutcome::WouldBlock => s.push_back(),
            WriteOutcome::Written(n) if n <= len => {
                let change = s.consumed(n, kind, head);
                let finished = s.finish_detaching();
                self.report_episode(sink, change);
                if finished {
                    self.push_report(SinkReport::Detached { sink });
                }
            }
            // It claims more than it was given: a bug on its side; stop trusting it.
            WriteOutcome::Written(_) => self.fail(sink, libc_einval()),
            WriteOutcome::Interrupted => s.interrupt(),
            WriteOutcome::Failed(errno) => self.fail(sink, errno),
        }
        self.wake_frontend_if_ready();
        Ok(())
    }

    /// A hard write error on `sink`, which is open or being detached.
    fn fail(&mut self, sink: usize, errno: i32) {
        let Some(s) = self.slots[sink].live_mut() else {
            return;
        };
        let change = s.fail(errno);
        let detached = s.state() == SinkState::Detached;
        self.push_report(SinkReport::Failed { sink, errno });
        self.report_episode(sink, change);
        if detached {
            self.push_report(SinkReport::Detached { sink });
        }
    }

    /// Whether the caller should watch `sink` for writability (it pushed back
    /// and has bytes queued) and report it with [`Mux::sink_writable`].
    pub fn wants_writable(&self, sink: usize) -> bool {
        self.sink(sink).is_ok_and(Sink::is_blocked)
    }

    /// [`Mux::wants_writable`] of every sink as a bit mask (bit k: sink k).
    pub fn watch_mask(&self) -> u32 {
        (0..self.slots.len())
            .filter(|&i| self.wants_writable(i))
            .fold(0, |m, i| m | 1 << i)
    }

    /// Sink `sink` is writable (or should be tried again): its queue is
    /// offered through [`Mux::poll_transmit`]. Spurious calls are harmless.
    pub fn sink_writable(&mut self, sink: usize) -> Result<(), NoSuchSink> {
        self.sink_mut(sink)?.writable();
        Ok(())
    }

    /// Bytes queued for `block` sinks that are open or being detached: what
    /// must still be written before the multiplexer can be freed without
    /// losing accepted output.
    pub fn lossless_backlog(&self) -> usize {
        self.sinks()
            .filter(|s| s.owes_lossless_output())
            .map(Sink::pending)
            .sum()
    }

    /// A sink opened, closed or sent a break. A sink being detached only
    /// heeds a close (which finishes detaching it: its queue is discarded).
    ///
    /// A sink that opens is replayed what the multiplexer kept of the
    /// output, each byte once, in order: the head (the first
    /// `replay_head_capacity` bytes since creation or [`Mux::reset_head`]),
    /// then, if bytes between the head and the tail were kept in neither,
    /// one marker line `\r\n[multiplex: N bytes skipped]\r\n`, then the
    /// tail (the last `replay_capacity` bytes); then live output. Where the
    /// head and the tail overlap, that part is written once.
    pub fn sink_event(&mut self, sink: usize, event: SinkEvent) -> Result<(), NoSuchSink> {
        let plan = self.replay.plan();
        let store = &self.replay;
        let s = self
            .slots
            .get_mut(sink)
            .and_then(Slot::live_mut)
            .ok_or(NoSuchSink(sink))?;
        match (event, s.state()) {
            (SinkEvent::Break, _) => {
                if self.input == Some(sink) {
                    self.push_event(FrontendEvent::Break);
                }
                return Ok(());
            }
            (SinkEvent::Opened, SinkState::Closed | SinkState::Failed) => {
                let new_connection = s.open();
                s.open_replay(plan, store);
                s.writable();
                if new_connection {
                    if self.frontend_open && self.input == Some(sink) {
                        // A new client on the input: a frontend that keeps
                        // per-connection state (a monitor's greeting and
                        // capabilities) starts a session for it.
                        self.push_event(FrontendEvent::Closed);
                        self.push_event(FrontendEvent::Opened);
                    }
                    self.note_connected();
                }
            }
            (SinkEvent::Closed, SinkState::Open | SinkState::Failed | SinkState::Detaching) => {
                let was = s.state();
                let change = s.close();
                self.out.withdraw(sink);
                self.report_episode(sink, change);
                if was == SinkState::Detaching {
                    self.push_report(SinkReport::Detached { sink });
                } else {
                    self.note_disconnected();
                }
            }
            // Opened while open, closed while closed, anything while detached.
            _ => return Ok(()),
        }
        self.wake_frontend_if_ready();
        Ok(())
    }

    /// How many bytes the caller should read from `sink` now, given that the
    /// frontend can take `frontend_room` bytes. For the input source that is
    /// `frontend_room`; any other sink may always read (its input is discarded).
    pub fn input_room(&self, sink: usize, frontend_room: usize) -> Result<usize, NoSuchSink> {
        self.sink(sink)?;
        Ok(if self.input == Some(sink) {
            frontend_room
        } else {
            DISCARD_CHUNK
        })
    }

    /// `len` bytes of input were read from `sink`. Returns how many of them,
    /// from the start, the caller passes to the frontend: at most
    /// `frontend_room` from the input source (the rest stays the caller's),
    /// none from any other sink (its input is discarded and counted). Input
    /// from the input source releases held output, so an echo is never held.
    pub fn input(
        &mut self,
        sink: usize,
        len: usize,
        frontend_room: usize,
    ) -> Result<usize, NoSuchSink> {
        let is_source = self.input == Some(sink);
        let s = self.sink_mut(sink)?;
        if !is_source {
            s.stats.input_discarded += len as u64;
            return Ok(0);
        }
        let n = len.min(frontend_room);
        if n > 0 {
            s.stats.input_forwarded += n as u64;
            // Someone is typing: show what is held, and write the echo at once.
            self.release_held();
            self.last_out = None;
        }
        Ok(n)
    }

    /// The next event for the frontend, oldest first.
    pub fn poll_event(&mut self) -> Option<FrontendEvent> {
        self.events.pop_front()
    }

    /// The next report about a sink, oldest first. Poll them until `None`
    /// after every call, as with [`Mux::poll_event`]: the queue is bounded,
    /// and reports a caller leaves unpolled are discarded (the oldest first,
    /// [`SinkReport::Detached`] last) and counted in
    /// [`MuxStats::reports_lost`].
    pub fn poll_sink_report(&mut self) -> Option<SinkReport> {
        self.reports.pop_front()
    }

    /// A snapshot of sink `sink`'s statistics.
    pub fn stats(&self, sink: usize) -> Result<SinkStats, NoSuchSink> {
        Ok(self.sink(sink)?.stats)
    }

    /// A snapshot of the multiplexer's own counters.
    pub fn mux_stats(&self) -> MuxStats {
        self.stats
    }

    /// The head of the output starts again with the next byte written (QEMU
    /// calls it on a system reset, so that the head is the new boot's). A
    /// sink still being replayed the old head loses the rest of it (counted
    /// as dropped); what follows is then a new fragment, stamped again.
    pub fn reset_head(&mut self) {
        for i in 0..self.slots.len() {
            if self.slots[i].live_mut().is_some_and(Sink::cut_head_replay) {
                self.out.withdraw(i);
            }
        }
        self.replay.reset_head();
        self.wake_frontend_if_ready();
    }

    /// The length of the blob [`Mux::replay_export`] writes now.
    pub fn replay_export_len(&self) -> usize {
        self.replay.export_len()
    }

    /// Writes the replay state (head, tail, the size of the gap between
    /// them, their lines' times, how much output was written and where it
    /// stands in its line) as a self-describing, versioned blob into `out`,
    /// which must hold [`Mux::replay_export_len`] bytes; returns its length,
    /// or `None` (and writes nothing) if `out` is shorter.
    pub fn replay_export(&self, out: &mut [u8]) -> Option<usize> {
        self.replay.export(out)
    }

    /// Takes over the replay state of a blob from [`Mux::replay_export`] of
    /// another multiplexer (the source of a live migration). A sink that
    /// opens afterwards is replayed exactly what a sink that opened on the
    /// source would have been, and output continues the source's lines (a
    /// stamped sink does not stamp the rest of a line the source started).
    /// Only a multiplexer that has written no output takes it
    /// ([`ImportError::NotFresh`]), and its head and tail capacities must hold
    /// the blob's ([`ImportError::TooLarge`]); a malformed blob or one of
    /// another version is refused. Nothing changes unless it succeeds.
    pub fn replay_import(&mut self, blob: &[u8]) -> Result<(), ImportError> {
        self.replay.import(blob)
    }

    /// Bytes searched for newlines for `sink` so far (lines mode), for
    /// the tests that bound the cost of whole-line drops.
    #[cfg(any(test, feature = "model"))]
    pub fn scanned_bytes(&self, sink: usize) -> Result<u64, NoSuchSink> {
        Ok(self.sink(sink)?.scanned())
    }

    fn sink(&self, sink: usize) -> Result<&Sink, NoSuchSink> {
        self.slots
            .get(sink)
            .and_then(Slot::live)
            .ok_or(NoSuchSink(sink))
    }

    fn sink_mut(&mut self, sink: usize) -> Result<&mut Sink, NoSuchSink> {
        self.slots
            .get_mut(sink)
            .and_then(Slot::live_mut)
            .ok_or(NoSuchSink(sink))
    }

    /// Queues an event without ever growing past [`MAX_EVENTS`]: a caller
    /// that never polls loses repeated BREAKs and wake-ups first, and an
    /// OPENED that follows an undelivered CLOSED cancels it (or vice versa).
    fn push_event(&mut self, ev: FrontendEvent) {
        use FrontendEvent::{Break, Closed, Opened, Writable};
        if ev == Writable && self.events.contains(&Writable) {
            return;
        }
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(ev);
            return;
        }
        if matches!(ev, Break | Writable) {
            return;
        }
        if let Some(i) = self
            .events
            .iter()
            .position(|e| matches!(e, Break | Writable))
        {
            self.events.remove(i);
            self.events.push_back(ev);
        } else if matches!(
            (ev, self.events.back()),
            (Opened, Some(Closed)) | (Closed, Some(Opened))
        ) {
            self.events.pop_back();
        }
    }

    /// Queues a report without ever growing past [`MAX_REPORTS`]: when full,
    /// the oldest report that is not [`SinkReport::Detached`] goes (the
    /// oldest of all if every one is), counted in `reports_lost`.
    fn push_report(&mut self, report: SinkReport) {
        if self.reports.len() >= MAX_REPORTS {
            let victim = self
                .reports
                .iter()
                .position(|r| !matches!(r, SinkReport::Detached { .. }))
                .unwrap_or(0);
            self.reports.remove(victim);
            self.stats.reports_lost += 1;
        }
        self.reports.push_back(report);
    }

    /// Reports a drop episode of `sink` (a live sink) that started or ended.
    fn report_episode(&mut self, sink: usize, change: EpisodeChange) {
        if change == EpisodeChange::None {
            return;
        }
        if let Ok(s) = self.sink(sink) {
            let (unit, dropped) = (s.drop_unit(), s.stats.dropped);
            self.push_episode(sink, change, unit, dropped);
        }
    }

    /// Reports a drop episode that started or ended; `unit` and `dropped`
    /// are the sink's.
    fn push_episode(
        &mut self,
        sink: usize,
        change: EpisodeChange,
        unit: Option<DropUnit>,
        dropped: u64,
    ) {
        // Only a `drop` sink has episodes.
        let unit = unit.unwrap_or(DropUnit::Bytes);
        match change {
            EpisodeChange::None => {}
            EpisodeChange::Started => self.push_report(SinkReport::DropStarted {
                sink,
                unit,
                dropped,
            }),
            EpisodeChange::Ended(episode) => self.push_report(SinkReport::DropStopped {
                sink,
                episode,
                dropped,
            }),
        }
    }

    fn wake_frontend_if_ready(&mut self) {
        if !self.frontend_blocked {
            return;
        }
        let ready = self
            .sinks()
            .filter(|s| s.limits_frontend())
            .all(|s| s.queue.free() >= self.wake_threshold);
        if ready {
            self.frontend_blocked = false;
            self.push_event(FrontendEvent::Writable);
        }
    }
}

/// A ring for a stamped sink's line times, allocated now; `None` for an
/// unstamped sink.
fn stamp_ring(
    config: &SinkConfig,
    capacity: usize,
) -> Result<Option<TimeRing>, std::collections::TryReserveError> {
    config
        .timestamp
        .then(|| TimeRing::with_slots(time_slots(capacity)))
        .transpose()
}

/// EINVAL, without depending on libc in the engine (its value on every Linux ABI).
const fn libc_einval() -> i32 {
    22
}
