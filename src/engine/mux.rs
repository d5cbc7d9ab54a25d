//! The multiplexer: one frontend, up to [`MAX_SINKS`](super::MAX_SINKS) sinks.

use super::config::{Config, ConfigError, Overflow};
use super::io::{FrontendEvent, Io, SinkEvent};
use super::queue::ByteQueue;
use super::sink::Sink;
use super::stats::{SinkState, SinkStats};

/// The frontend asked to write while a lossless sink's queue was full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WouldBlock;

/// A sink index that does not exist in this multiplexer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSuchSink(pub usize);

/// How many bytes a non-input sink may read per call; they are discarded anyway.
pub const DISCARD_CHUNK: usize = 4096;

/// The sans-IO multiplexer state machine.
///
/// Every method that may cause an effect takes the caller's [`Io`]; nothing is
/// done behind the caller's back and nothing is allocated after [`Mux::new`].
#[derive(Debug)]
pub struct Mux {
    sinks: Vec<Sink>,
    input: Option<usize>,
    /// Recent output for replay (capacity 0 when replay is off).
    history: ByteQueue,
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
    /// When coalesced output must be flushed; `Some` while any is queued for it.
    flush_at: Option<u64>,
}

impl Mux {
    /// Builds a multiplexer. If any sink starts open, the frontend is told OPENED.
    pub fn new(config: Config, io: &mut impl Io) -> Result<Mux, ConfigError> {
        config.validate()?;
        let cap = config.queue_capacity;
        let sinks: Vec<Sink> = config
            .sinks
            .iter()
            .map(|s| Sink::new(s.overflow, s.open, cap))
            .collect();
        let connected = sinks.iter().filter(|s| s.is_open()).count();
        let mut mux = Mux {
            sinks,
            input: config.input,
            history: ByteQueue::with_capacity(config.replay_capacity),
            connected,
            frontend_open: false,
            frontend_blocked: false,
            wake_threshold: (cap / 2).max(1),
            coalesce: config.coalesce_ns,
            last_out: None,
            flush_at: None,
        };
        if connected > 0 {
            mux.frontend_open = true;
            io.frontend_event(FrontendEvent::Opened);
        }
        Ok(mux)
    }

    /// Number of sinks.
    pub fn sink_count(&self) -> usize {
        self.sinks.len()
    }

    /// The input source, if any.
    pub fn input_source(&self) -> Option<usize> {
        self.input
    }

    /// Whether the frontend was told OPENED and not CLOSED since.
    pub fn frontend_open(&self) -> bool {
        self.frontend_open
    }

    /// How many bytes [`Mux::write`] would accept now (`usize::MAX` when no open
    /// lossless sink limits it).
    pub fn write_room(&self) -> usize {
        self.sinks
            .iter()
            .filter(|s| s.limits_frontend())
            .map(|s| s.queue.free())
            .min()
            .unwrap_or(usize::MAX)
    }

    /// Output from the frontend. Returns how many leading bytes of `data` were
    /// accepted; every accepted byte goes (or is queued) to every open sink.
    /// `Err(WouldBlock)` means nothing was accepted; [`Io::frontend_writable`]
    /// will be called when writing may succeed again. Output that
    /// [`Mux::write_at`] coalesced is flushed first.
    pub fn write(&mut self, io: &mut impl Io, data: &[u8]) -> Result<usize, WouldBlock> {
        self.flush_deferred(io);
        self.write_now(io, data)
    }

    /// Like [`Mux::write`], but coalesces: `now` is the caller's monotonic
    /// clock (nanoseconds by convention). Output that follows other output
    /// within the configured window is queued instead of written, and
    /// [`Mux::flush_deadline`] says when the caller must call [`Mux::flush`];
    /// the first output after a quiet window, or after input from the input
    /// source (a keystroke's echo), is written at once, and input flushes
    /// what is held. No byte waits longer than the window, order is kept on every
    /// sink, and `block`/`drop` apply as with [`Mux::write`]: when a queue
    /// has no room for `data`, the coalesced output is flushed first.
    /// With a window of 0 this is [`Mux::write`].
    pub fn write_at(
        &mut self,
        io: &mut impl Io,
        data: &[u8],
        now: u64,
    ) -> Result<usize, WouldBlock> {
        if self.coalesce == 0 {
            return self.write(io, data);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let quiet = self
            .last_out
            .map_or(true, |last| now.saturating_sub(last) >= self.coalesce);
        if self.flush_at.is_none() && quiet {
            // Nothing held and quiet for a whole window: out at once.
            self.last_out = Some(now);
            return self.write_now(io, data);
        }
        // Held output must fit in every queue, except that of a `drop` sink
        // that is pushing back: it drops its oldest bytes, as it would anyway.
        let fits = self.sinks.iter().all(|s| {
            !s.is_open()
                || s.queue.free() >= data.len()
                || (s.stats.overflow == Overflow::Drop && s.is_watching())
        });
        if !fits {
            self.flush(io, now);
            return self.write_now(io, data);
        }
        // One window after the output that started it (never later than now + window).
        let since = self.last_out.map_or(now, |last| last.min(now));
        self.flush_at
            .get_or_insert(since.saturating_add(self.coalesce));
        self.remember(data);
        for s in self.sinks.iter_mut().filter(|s| s.is_open()) {
            s.defer(data);
        }
        Ok(data.len())
    }

    /// When coalesced output must be flushed with [`Mux::flush`] (in the
    /// clock of [`Mux::write_at`]), or `None` when nothing waits.
    pub fn flush_deadline(&self) -> Option<u64> {
        self.flush_at
    }

    /// Writes coalesced output to every open sink that is not pushing back
    /// (those drain through [`Mux::sink_writable`]). Call it at
    /// [`Mux::flush_deadline`] or whenever output must go out now (before the
    /// multiplexer is freed); calling it with nothing queued does nothing.
    pub fn flush(&mut self, io: &mut impl Io, now: u64) {
        if self.flush_at.is_some() {
            self.last_out = Some(now);
            self.flush_deferred(io);
        }
    }

    fn flush_deferred(&mut self, io: &mut impl Io) {
        if self.flush_at.take().is_none() {
            return;
        }
        for (i, s) in self.sinks.iter_mut().enumerate() {
            if s.is_open() && !s.is_watching() {
                s.flush(io, i);
            }
        }
        self.wake_frontend_if_ready(io);
    }

    /// Keeps `data` for replay (when replay is on).
    fn remember(&mut self, data: &[u8]) {
        if self.history.capacity() > 0 {
            self.history.push_overwrite(data);
        }
    }

    fn write_now(&mut self, io: &mut impl Io, data: &[u8]) -> Result<usize, WouldBlock> {
        if data.is_empty() {
            return Ok(0);
        }
        let room = self.write_room();
        if room == 0 {
            if !self.frontend_blocked {
                self.frontend_blocked = true;
                for s in self.sinks.iter_mut() {
                    if s.limits_frontend() && s.queue.free() == 0 {
                        s.stats.backpressure_events += 1;
                    }
                }
            }
            return Err(WouldBlock);
        }
        let data = &data[..data.len().min(room)];
        self.remember(data);
        for (i, s) in self.sinks.iter_mut().enumerate() {
            if s.is_open() {
                s.offer(io, i, data);
            }
        }
        // A sink that failed while offered may have been the only limit.
        self.wake_frontend_if_ready(io);
        Ok(data.len())
    }

    /// The caller saw sink `sink` become writable: flush its queue.
    pub fn sink_writable(&mut self, io: &mut impl Io, sink: usize) -> Result<(), NoSuchSink> {
        self.sink_mut(sink)?.flush(io, sink);
        self.wake_frontend_if_ready(io);
        Ok(())
    }

    /// A sink opened, closed or sent a break.
    pub fn sink_event(
        &mut self,
        io: &mut impl Io,
        sink: usize,
        event: SinkEvent,
    ) -> Result<(), NoSuchSink> {
        let history = &self.history;
        let s = self.sinks.get_mut(sink).ok_or(NoSuchSink(sink))?;
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
                s.flush(io, sink);
                if was == SinkState::Closed {
                    self.connected += 1;
                    if !self.frontend_open {
                        self.frontend_open = true;
                        io.frontend_event(FrontendEvent::Opened);
                    }
                }
            }
            SinkEvent::Closed => {
                if s.state() == SinkState::Closed {
                    return Ok(());
                }
                s.discard_queue(io, sink);
                s.stats.state = SinkState::Closed;
                self.connected -= 1;
                if self.connected == 0 && self.frontend_open {
                    self.frontend_open = false;
                    io.frontend_event(FrontendEvent::Closed);
                }
            }
            SinkEvent::Break => {
                if self.input == Some(sink) {
                    io.frontend_event(FrontendEvent::Break);
                }
            }
        }
        self.wake_frontend_if_ready(io);
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

    /// Input read from `sink`. From the input source, at most `frontend_room`
    /// bytes are passed to the frontend; from any other sink everything is
    /// discarded. Returns how many bytes of `data` were consumed.
    pub fn input(
        &mut self,
        io: &mut impl Io,
        sink: usize,
        data: &[u8],
        frontend_room: usize,
    ) -> Result<usize, NoSuchSink> {
        let is_source = self.input == Some(sink);
        let s = self.sink_mut(sink)?;
        if !is_source {
            s.stats.input_discarded += data.len() as u64;
            return Ok(data.len());
        }
        let n = data.len().min(frontend_room);
        if n > 0 {
            s.stats.input_forwarded += n as u64;
            io.frontend_input(&data[..n]);
            // Someone is typing: show what is held, and write the echo at once.
            self.flush_deferred(io);
            self.last_out = None;
        }
        Ok(n)
    }

    /// A snapshot of sink `sink`'s statistics.
    pub fn stats(&self, sink: usize) -> Result<SinkStats, NoSuchSink> {
        Ok(self.sink(sink)?.stats)
    }

    fn sink(&self, sink: usize) -> Result<&Sink, NoSuchSink> {
        self.sinks.get(sink).ok_or(NoSuchSink(sink))
    }

    fn sink_mut(&mut self, sink: usize) -> Result<&mut Sink, NoSuchSink> {
        self.sinks.get_mut(sink).ok_or(NoSuchSink(sink))
    }

    fn wake_frontend_if_ready(&mut self, io: &mut impl Io) {
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
            io.frontend_writable();
        }
    }
}
