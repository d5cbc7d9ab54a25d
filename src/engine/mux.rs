//! The multiplexer: one frontend, up to [`MAX_SINKS`](super::MAX_SINKS) sinks.
//!
//! Pull-based, like `quinn-proto`: the caller pushes what happened in
//! ([`Mux::write_at`], [`Mux::transmitted`], [`Mux::sink_writable`],
//! [`Mux::sink_event`], [`Mux::input`], [`Mux::handle_timeout`]) and pulls out
//! what to do ([`Mux::poll_transmit`], [`Mux::watch_mask`],
//! [`Mux::poll_event`], [`Mux::poll_timeout`]). Nothing is called back from
//! inside a method, so the engine can never be re-entered.

use std::collections::VecDeque;

use super::config::{Config, ConfigError, Overflow, SinkConfig, MAX_SINKS};
use super::io::{FrontendEvent, SinkEvent, Transmit, WriteOutcome};
use super::queue::ByteQueue;
use super::sink::Sink;
use super::stats::{SinkState, SinkStats};

/// The frontend asked to write while a lossless sink's queue was full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WouldBlock;

/// A sink index that does not exist in this multiplexer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSuchSink(pub usize);

/// Why [`Mux::transmitted`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransmitError {
    /// No such sink.
    NoSuchSink(usize),
    /// That open sink has no bytes out with the caller: [`Mux::poll_transmit`]
    /// did not hand any out, or they were reported already.
    NotOffered(usize),
}

impl From<NoSuchSink> for TransmitError {
    fn from(e: NoSuchSink) -> Self {
        TransmitError::NoSuchSink(e.0)
    }
}

/// Why [`Mux::attach`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachError {
    /// Every one of the [`MAX_SINKS`] slots is in use.
    Full,
    /// The sink's configuration is invalid (a notice on a `Block` sink).
    Config(ConfigError),
    /// Its queue could not be allocated.
    OutOfMemory,
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

/// How many bytes a non-input sink may read per call; they are discarded anyway.
pub const DISCARD_CHUNK: usize = 4096;

/// Frontend events kept for [`Mux::poll_event`]; a caller polls after every
/// call, so this is only reached by one that does not (see `push_event`).
const MAX_EVENTS: usize = 32;

/// Bytes out with the caller: sink, length, whether they are a drop notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InFlight(usize, usize, bool);

/// The sans-IO multiplexer state machine.
///
/// Memory is allocated by [`Mux::new`] and by [`Mux::attach`] (a new slot's
/// queue); nothing else allocates. Sink indexes are slots: they stay the
/// same for the life of a sink, and a released slot is reused by a later
/// attach.
#[derive(Debug)]
pub struct Mux {
    sinks: Vec<Sink>,
    input: Option<usize>,
    /// Recent output for replay (capacity 0 when replay is off).
    history: ByteQueue,
    /// Bytes each sink may queue; also the most one write accepts.
    capacity: usize,
    /// Sinks that are connected (open or failed).
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
    /// What [`Mux::poll_transmit`] handed out last, until reported.
    in_flight: Option<InFlight>,
}

impl Mux {
    /// Builds a multiplexer. If any sink starts open, the frontend's first
    /// event is OPENED.
    pub fn new(config: Config) -> Result<Mux, ConfigError> {
        config.validate()?;
        let cap = config.queue_capacity;
        let total = cap
            .saturating_mul(config.sinks.len())
            .saturating_add(config.replay_capacity);
        let oom = |_| ConfigError::OutOfMemory(total);
        let mut sinks = Vec::new();
        // Room for every slot, so that attaching never grows the vector.
        sinks.try_reserve_exact(MAX_SINKS).map_err(oom)?;
        for s in &config.sinks {
            let queue = ByteQueue::with_capacity(cap).map_err(oom)?;
            sinks.push(Sink::new(s, queue));
        }
        let mut events = VecDeque::new();
        events.try_reserve_exact(MAX_EVENTS).map_err(oom)?;
        let connected = sinks.iter().filter(|s| s.is_open()).count();
        let mut mux = Mux {
            sinks,
            input: config.input,
            history: ByteQueue::with_capacity(config.replay_capacity).map_err(oom)?,
            capacity: cap,
            connected,
            frontend_open: false,
            frontend_blocked: false,
            wake_threshold: (cap / 2).max(1),
            coalesce: config.coalesce_ns,
            last_out: None,
            flush_at: None,
            events,
            in_flight: None,
        };
        if connected > 0 {
            mux.frontend_open = true;
            mux.push_event(FrontendEvent::Opened);
        }
        Ok(mux)
    }

    /// Number of sink slots: one past the highest sink index ever used
    /// (released slots included).
    pub fn sink_count(&self) -> usize {
        self.sinks.len()
    }

    /// Whether `sink` is a sink (attached, possibly being detached).
    pub fn has_sink(&self, sink: usize) -> bool {
        self.sink(sink).is_ok()
    }

    /// Whether `sink` is being detached ([`Mux::detach`], not yet released).
    pub fn is_detaching(&self, sink: usize) -> bool {
        self.sink(sink).is_ok_and(|s| s.detaching)
    }

    /// The input source, if any.
    pub fn input_source(&self) -> Option<usize> {
        self.input
    }

    /// Makes `sink` the input source, or none. Input already passed to the
    /// frontend stays there; from now on [`Mux::input`] forwards from the
    /// new source only (the old one's input is discarded and counted). The
    /// frontend gets no event: it keeps its session.
    pub fn set_input(&mut self, sink: Option<usize>) -> Result<(), NoSuchSink> {
        if let Some(i) = sink {
            if self.sink(i)?.detaching {
                return Err(NoSuchSink(i));
            }
        }
        self.input = sink;
        Ok(())
    }

    /// Adds a sink in the first free slot and returns its index. An open
    /// sink gets the replay history first, then live output: no byte twice,
    /// none missing (output held for coalescing is in the history, so it
    /// comes once, in order). The first connected sink tells the frontend
    /// OPENED.
    pub fn attach(&mut self, config: SinkConfig) -> Result<usize, AttachError> {
        let slot = self.sinks.iter().position(|s| s.vacant);
        if slot.is_none() && self.sinks.len() >= MAX_SINKS {
            return Err(AttachError::Full);
        }
        config
            .validate(slot.unwrap_or(self.sinks.len()))
            .map_err(AttachError::Config)?;
        let i = match slot {
            Some(i) => {
                self.sinks[i].reuse(&config);
                i
            }
            None => {
                let queue = ByteQueue::with_capacity(self.capacity)
                    .map_err(|_| AttachError::OutOfMemory)?;
                self.sinks.push(Sink::new(&config, queue));
                self.sinks.len() - 1
            }
        };
        if config.open {
            let history = self.history.as_slices();
            let s = &mut self.sinks[i];
            if history.0.len() + history.1.len() > 0 {
                s.queue_replay(history);
            }
            s.writable();
            self.note_connected();
        }
        Ok(i)
    }

    /// Starts detaching `sink`: it gets no new output and no longer limits
    /// the frontend, a `drop` sink's queue is discarded (counted), and a
    /// `block` sink's queue goes on being offered so that the caller can
    /// write it out. Returns the bytes still queued. The input source
    /// becomes none if it was this sink. Finish with [`Mux::release`]. The
    /// last sink that receives output cannot be detached.
    pub fn detach(&mut self, sink: usize) -> Result<usize, DetachError> {
        let s = self.sink(sink)?;
        if s.detaching {
            return Ok(s.queue.len());
        }
        let others = self
            .sinks
            .iter()
            .enumerate()
            .filter(|&(i, s)| i != sink && !s.vacant && !s.detaching)
            .count();
        if others == 0 {
            return Err(DetachError::LastSink(sink));
        }
        if self.input == Some(sink) {
            self.input = None;
        }
        let s = &mut self.sinks[sink];
        s.detaching = true;
        if s.stats.overflow == Overflow::Drop {
            s.discard_queue();
            if self.in_flight.is_some_and(|f| f.0 == sink) {
                self.in_flight = None;
            }
        }
        let backlog = s.queue.len();
        if s.state() != SinkState::Closed {
            self.note_disconnected();
        }
        self.wake_frontend_if_ready();
        Ok(backlog)
    }

    /// Removes `sink` (detaching it first if [`Mux::detach`] was not called):
    /// what it still has queued is discarded and counted as dropped. Returns
    /// its final statistics; its index is free for a later attach.
    pub fn release(&mut self, sink: usize) -> Result<SinkStats, DetachError> {
        self.detach(sink)?;
        if self.in_flight.is_some_and(|f| f.0 == sink) {
            self.in_flight = None;
        }
        Ok(self.sinks[sink].vacate())
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
        self.sinks
            .iter()
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
    /// free. Output that [`Mux::write_at`] held is released first.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, WouldBlock> {
        self.release_held();
        self.write_now(data)
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
    /// released first. With a window of 0 this is [`Mux::write`].
    pub fn write_at(&mut self, data: &[u8], now: u64) -> Result<usize, WouldBlock> {
        if self.coalesce == 0 {
            return self.write(data);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let data = &data[..data.len().min(self.capacity)];
        let quiet = self
            .last_out
            .map_or(true, |last| now.saturating_sub(last) >= self.coalesce);
        if self.flush_at.is_none() && quiet {
            // Nothing held and quiet for a whole window: out at once.
            self.last_out = Some(now);
            return self.write_now(data);
        }
        // Held output must fit in every queue, except that of a `drop` sink
        // that is pushing back: it drops its oldest bytes, as it would anyway.
        let fits = self.sinks.iter().all(|s| {
            !s.receives_output()
                || s.queue.free() >= data.len()
                || (s.stats.overflow == Overflow::Drop && s.is_blocked())
        });
        if !fits {
            self.handle_timeout(now);
            return self.write_now(data);
        }
        // One window after the output that started it (never later than now + window).
        let since = self.last_out.map_or(now, |last| last.min(now));
        self.flush_at
            .get_or_insert(since.saturating_add(self.coalesce));
        self.fan_out(data, false);
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
            for s in self.sinks.iter_mut().filter(|s| s.is_open()) {
                s.make_due();
            }
        }
    }

    fn write_now(&mut self, data: &[u8]) -> Result<usize, WouldBlock> {
        if data.is_empty() {
            return Ok(0);
        }
        let room = self.write_room();
        if room == 0 {
            let first = !self.frontend_blocked;
            self.frontend_blocked = true;
            for s in self.sinks.iter_mut() {
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
        self.fan_out(data, true);
        Ok(data.len())
    }

    /// Queues accepted output for every open sink, offered now (`due`) or held.
    fn fan_out(&mut self, data: &[u8], due: bool) {
        if self.history.capacity() > 0 {
            self.history.push_overwrite(data);
        }
        for (i, s) in self.sinks.iter_mut().enumerate() {
            if s.receives_output()
                && s.enqueue(data, due)
                && self.in_flight.is_some_and(|f| f.0 == i)
            {
                // The bytes out with the caller were discarded.
                self.in_flight = None;
            }
        }
    }

    /// The next bytes to write: the front of a sink's queue. The caller writes
    /// them (or some of them) to that sink and reports the outcome with
    /// [`Mux::transmitted`] before its next call; asking again first hands out
    /// the same bytes. `None`: nothing to write now.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        let sink = match self.in_flight {
            Some(f) => f.0,
            None => self.sinks.iter().position(Sink::is_due)?,
        };
        let (data, notice) = self.sinks[sink].front();
        self.in_flight = Some(InFlight(sink, data.len(), notice));
        Some(Transmit { sink, data })
    }

    /// What became of the bytes [`Mux::poll_transmit`] handed out for `sink`.
    /// A sink that closed meanwhile (its write failed and it disconnected)
    /// ignores the report; a released index is refused, as by every call.
    pub fn transmitted(&mut self, sink: usize, outcome: WriteOutcome) -> Result<(), TransmitError> {
        let s = self
            .sinks
            .get_mut(sink)
            .filter(|s| !s.vacant)
            .ok_or(TransmitError::NoSuchSink(sink))?;
        let Some(InFlight(_, len, notice)) = self.in_flight.filter(|f| f.0 == sink) else {
            return if s.is_open() {
                Err(TransmitError::NotOffered(sink))
            } else {
                Ok(())
            };
        };
        self.in_flight = None;
        match outcome {
            WriteOutcome::Written(0) | WriteOutcome::WouldBlock => s.push_back(),
            WriteOutcome::Written(n) if n <= len => s.consumed(n, notice),
            // It claims more than it was given: a bug on its side; stop trusting it.
            WriteOutcome::Written(_) => s.fail(libc_einval()),
            WriteOutcome::Interrupted => s.interrupt(),
            WriteOutcome::Failed(errno) => s.fail(errno),
        }
        self.wake_frontend_if_ready();
        Ok(())
    }

    /// Whether the caller should watch `sink` for writability (it pushed back
    /// and has bytes queued) and report it with [`Mux::sink_writable`].
    pub fn wants_writable(&self, sink: usize) -> bool {
        self.sinks
            .get(sink)
            .is_some_and(|s| s.is_open() && s.is_blocked())
    }

    /// [`Mux::wants_writable`] of every sink as a bit mask (bit k: sink k).
    pub fn watch_mask(&self) -> u32 {
        (0..self.sinks.len())
            .filter(|&i| self.wants_writable(i))
            .fold(0, |m, i| m | 1 << i)
    }

    /// Sink `sink` is writable (or should be tried again): its queue is
    /// offered through [`Mux::poll_transmit`]. Spurious calls are harmless.
    pub fn sink_writable(&mut self, sink: usize) -> Result<(), NoSuchSink> {
        let s = self.sink_mut(sink)?;
        if s.is_open() {
            s.writable();
        }
        Ok(())
    }

    /// Bytes queued for open `block` sinks: what must still be written before
    /// the multiplexer can be freed without losing accepted output.
    pub fn lossless_backlog(&self) -> usize {
        self.sinks
            .iter()
            .filter(|s| s.limits_frontend())
            .map(|s| s.queue.len())
            .sum()
    }

    /// A sink opened, closed or sent a break.
    pub fn sink_event(&mut self, sink: usize, event: SinkEvent) -> Result<(), NoSuchSink> {
        self.sink(sink)?;
        if self.in_flight.is_some_and(|f| f.0 == sink) && event != SinkEvent::Break {
            self.in_flight = None;
        }
        let history = &self.history;
        let s = &mut self.sinks[sink];
        if s.detaching {
            // On its way out: a close drops its backlog, nothing else matters.
            if event == SinkEvent::Closed {
                s.discard_queue();
                s.stats.state = SinkState::Closed;
            }
            return Ok(());
        }
        match event {
            SinkEvent::Opened => {
                let was = s.state();
                if was == SinkState::Open {
                    return Ok(());
                }
                s.stats.state = SinkState::Open;
                if !history.is_empty() {
                    s.queue_replay(history.as_slices());
                }
                s.writable();
                if was == SinkState::Closed {
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
            SinkEvent::Closed => {
                if s.state() == SinkState::Closed {
                    return Ok(());
                }
                s.discard_queue();
                s.stats.state = SinkState::Closed;
                self.note_disconnected();
            }
            SinkEvent::Break => {
                if self.input == Some(sink) {
                    self.push_event(FrontendEvent::Break);
                }
            }
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

    /// Bytes searched for newlines for `sink` so far (lines mode), for
    /// the tests that bound the cost of whole-line drops.
    #[cfg(any(test, feature = "model"))]
    pub fn scanned_bytes(&self, sink: usize) -> Result<u64, NoSuchSink> {
        Ok(self.sink(sink)?.scanned())
    }

    /// A snapshot of sink `sink`'s statistics.
    pub fn stats(&self, sink: usize) -> Result<SinkStats, NoSuchSink> {
        Ok(self.sink(sink)?.stats)
    }

    fn sink(&self, sink: usize) -> Result<&Sink, NoSuchSink> {
        self.sinks
            .get(sink)
            .filter(|s| !s.vacant)
            .ok_or(NoSuchSink(sink))
    }

    fn sink_mut(&mut self, sink: usize) -> Result<&mut Sink, NoSuchSink> {
        self.sinks
            .get_mut(sink)
            .filter(|s| !s.vacant)
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

    fn wake_frontend_if_ready(&mut self) {
        if !self.frontend_blocked {
            return;
        }
        let ready = self
            .sinks
            .iter()
            .filter(|s| s.limits_frontend())
            .all(|s| s.queue.free() >= self.wake_threshold);
        if ready {
            self.frontend_blocked = false;
            self.push_event(FrontendEvent::Writable);
        }
    }
}

/// EINVAL, without depending on libc in the engine (its value on every Linux ABI).
const fn libc_einval() -> i32 {
    22
}
