//! One sink: its queue, its state and its counters.

use std::io::Write as _;

use super::config::{DropUnit, Overflow, SinkConfig};
use super::queue::ByteQueue;
use super::stats::{SinkState, SinkStats};

/// How many EINTRs in a row a sink may report before it waits for writability.
const EINTR_LIMIT: u8 = 16;

/// Where a sink's queued bytes stand with the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing to write now: the queue is empty, or holds coalesced output
    /// that waits for the flush deadline.
    Idle,
    /// The caller should write the queue now ([`Mux::poll_transmit`](super::Mux::poll_transmit)).
    Due,
    /// The sink pushed back: the caller watches it and reports it writable.
    Blocked,
}

/// Longest drop notice: `\r\n[multiplex: ` + 20 digits + ` bytes dropped]\r\n`.
const NOTICE_MAX: usize = 64;

/// The notice line a `Drop` sink gets when it catches up after dropping.
#[derive(Debug)]
struct Notice {
    buf: [u8; NOTICE_MAX],
    len: usize,
    /// How much of it the sink has taken.
    pos: usize,
}

impl Notice {
    fn new(dropped: u64) -> Notice {
        let mut buf = [0u8; NOTICE_MAX];
        let unit = if dropped == 1 { "byte" } else { "bytes" };
        let mut w = &mut buf[..];
        let room = w.len();
        // Cannot fail: the longest text fits in NOTICE_MAX.
        let _ = write!(w, "\r\n[multiplex: {dropped} {unit} dropped]\r\n");
        let len = room - w.len();
        Notice { buf, len, pos: 0 }
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }
}

#[derive(Debug)]
pub(crate) struct Sink {
    pub(crate) queue: ByteQueue,
    pub(crate) stats: SinkStats,
    pub(crate) phase: Phase,
    /// EINTRs since the last write that took bytes.
    interrupted: u8,
    drop_unit: DropUnit,
    notice_enabled: bool,
    /// The notice being written, written before the queue.
    notice: Option<Notice>,
    /// Bytes dropped since the sink last caught up (0: not in a drop episode).
    episode_dropped: u64,
    /// The last byte the sink took was not a newline (lines mode keeps the
    /// rest of that line).
    mid_line: bool,
    /// Lines mode: the start of the line now arriving was dropped, so its
    /// rest is dropped too.
    skipping: bool,
    /// Being detached: gets no new output; its queue drains until released.
    pub(crate) detaching: bool,
    /// The slot is free (released): no such sink for the caller.
    pub(crate) vacant: bool,
    /// Bytes of frontend output searched for newlines (lines mode).
    data_scanned: u64,
}

impl Sink {
    pub(crate) fn new(config: &SinkConfig, queue: ByteQueue) -> Self {
        Sink {
            queue,
            stats: SinkStats::new(config.overflow, config.open),
            phase: Phase::Idle,
            interrupted: 0,
            drop_unit: config.drop_unit,
            notice_enabled: config.drop_notice && config.overflow == Overflow::Drop,
            notice: None,
            episode_dropped: 0,
            mid_line: false,
            skipping: false,
            detaching: false,
            vacant: false,
            data_scanned: 0,
        }
    }

    /// Frees the slot, discarding (and counting) what is still queued, and
    /// returns the sink's final statistics; the queue's storage is kept for
    /// the next sink.
    pub(crate) fn vacate(&mut self) -> SinkStats {
        self.discard_queue();
        let last = self.stats;
        self.stats.state = SinkState::Closed;
        self.detaching = false;
        self.vacant = true;
        last
    }

    /// Reuses a vacant slot for a new sink.
    pub(crate) fn reuse(&mut self, config: &SinkConfig) {
        let queue = core::mem::replace(&mut self.queue, ByteQueue::empty());
        *self = Sink::new(config, queue.recycle());
    }

    pub(crate) fn state(&self) -> SinkState {
        self.stats.state
    }

    pub(crate) fn is_open(&self) -> bool {
        self.stats.state == SinkState::Open
    }

    /// Open and not being detached: new output is queued for it.
    pub(crate) fn receives_output(&self) -> bool {
        self.is_open() && !self.detaching
    }

    /// Receives output and is lossless: it limits what the frontend may write.
    pub(crate) fn limits_frontend(&self) -> bool {
        self.receives_output() && self.stats.overflow == Overflow::Block
    }

    /// Whether anything (queued output or a notice) waits to be written.
    fn has_pending(&self) -> bool {
        !self.queue.is_empty() || self.notice.is_some()
    }

    /// The next bytes to write: the notice first, then the queue's front.
    /// The flag says whether they are the notice.
    pub(crate) fn front(&self) -> (&[u8], bool) {
        match &self.notice {
            Some(n) => (n.rest(), true),
            None => (self.queue.front(), false),
        }
    }

    /// Whether the caller should watch this sink for writability.
    pub(crate) fn is_blocked(&self) -> bool {
        self.phase == Phase::Blocked
    }

    /// Whether the caller should write this sink's queue now.
    pub(crate) fn is_due(&self) -> bool {
        self.phase == Phase::Due && self.is_open() && self.has_pending()
    }

    /// Queues output for an open sink, to be written now (`due`) or at the
    /// flush deadline. Returns whether bytes at the front of the queue were
    /// discarded to make room (a `Drop` sink).
    pub(crate) fn enqueue(&mut self, data: &[u8], due: bool) -> bool {
        self.stats.offered += data.len() as u64;
        let discarded = match self.stats.overflow {
            Overflow::Block => {
                self.queue.push(data);
                0
            }
            Overflow::Drop => match self.drop_unit {
                DropUnit::Bytes => self.queue.push_overwrite(data),
                DropUnit::Lines => self.enqueue_lines(data),
            },
        };
        self.note_dropped(discarded);
        self.note_queue_len();
        if !self.has_pending() {
            // Lines mode dropped everything: nothing to wait for.
            self.phase = Phase::Idle;
        }
        if due {
            self.make_due();
        }
        discarded > 0
    }

    fn note_dropped(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        if self.episode_dropped == 0 {
            self.stats.drop_episodes += 1;
        }
        self.episode_dropped += n as u64;
        self.stats.dropped += n as u64;
    }

    /// Queues `data` on a lines-mode `Drop` sink, discarding whole lines to
    /// make room. Returns how many bytes (queued or of `data`) were discarded.
    fn enqueue_lines(&mut self, data: &[u8]) -> usize {
        let before = self.queue.len() + data.len();
        let mut data = data;
        if self.skipping {
            let found = memchr::memchr(b'\n', data);
            self.data_scanned += found.map_or(data.len(), |p| p + 1) as u64;
            match found {
                None => return data.len(),
                Some(p) => {
                    data = &data[p + 1..];
                    self.skipping = false;
                }
            }
        }
        if data.len() <= self.queue.free() {
            self.queue.push(data);
        } else {
            self.make_room_by_lines(data);
        }
        before - self.queue.len()
    }

    /// Appends `data`, which does not fit, by removing whole lines from the
    /// queue followed by `data` ("the stream"): the oldest lines go first,
    /// except the rest of the line the sink has started to take.
    fn make_room_by_lines(&mut self, data: &[u8]) {
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
        let keep = if self.mid_line {
            find_nl(&mut self.queue, 0).map_or(usize::MAX, |p| p + 1)
        } else {
            0
        };
        if keep > cap {
            // One line longer than the queue: fall back to bytes.
            self.data_scanned += data_scanned;
            self.queue.push_overwrite(data);
            return;
        }
        let need = total - cap;
        // Remove stream[keep..end]: whole lines, at least `need` bytes. With
        // no line end in reach the last line is cut: it all goes, and so does
        // the rest of it that is still to come.
        let end = match find_nl(&mut self.queue, keep + need - 1) {
            Some(p) => p + 1,
            None => {
                self.skipping = true;
                total
            }
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
    }

    /// Queues replayed history for a sink that just opened (its queue is empty).
    pub(crate) fn queue_replay(&mut self, history: (&[u8], &[u8])) {
        let n = history.0.len() + history.1.len();
        self.queue.push(history.0);
        self.queue.push(history.1);
        self.stats.offered += n as u64;
        self.stats.replayed += n as u64;
        self.note_queue_len();
    }

    /// Offers the queue to the caller now, unless the sink is pushing back.
    pub(crate) fn make_due(&mut self) {
        if self.phase == Phase::Idle && self.has_pending() {
            self.phase = Phase::Due;
        }
    }

    /// The caller reports the sink writable (or wants it tried again).
    pub(crate) fn writable(&mut self) {
        self.interrupted = 0;
        self.phase = if self.has_pending() {
            Phase::Due
        } else {
            Phase::Idle
        };
    }

    /// The caller wrote `n` bytes of the queue's front (`n` > 0, at most what
    /// it was offered).
    /// `notice`: they were the notice's (as [`Sink::front`] said).
    pub(crate) fn consumed(&mut self, n: usize, notice: bool) {
        self.interrupted = 0;
        if notice {
            if let Some(nt) = &mut self.notice {
                nt.pos += n;
                self.stats.notice_bytes += n as u64;
                if nt.pos >= nt.len {
                    // `mid_line` stays: the rest of a line the notice
                    // interrupted is still kept whole.
                    self.notice = None;
                    self.stats.notices += 1;
                }
            }
        } else {
            self.mid_line = self.queue.get(n - 1) != b'\n';
            self.queue.consume(n);
            self.stats.delivered += n as u64;
            self.stats.queued = self.queue.len() as u64;
            if self.queue.is_empty() && self.episode_dropped > 0 {
                // Caught up after dropping: the episode ends, and is told.
                if self.notice_enabled {
                    self.notice = Some(Notice::new(self.episode_dropped));
                }
                self.episode_dropped = 0;
            }
        }
        if !self.has_pending() {
            self.phase = Phase::Idle;
        }
    }

    /// The sink took nothing (EAGAIN): wait for writability.
    pub(crate) fn push_back(&mut self) {
        self.phase = Phase::Blocked;
    }

    /// The write was interrupted: offered again, unless that keeps happening.
    pub(crate) fn interrupt(&mut self) {
        self.interrupted += 1;
        if self.interrupted >= EINTR_LIMIT {
            self.push_back();
        }
    }

    /// Marks the sink failed after a hard write error.
    pub(crate) fn fail(&mut self, errno: i32) {
        self.stats.write_errors += 1;
        self.stats.last_errno = errno;
        self.discard_queue();
        self.stats.state = SinkState::Failed;
    }

    /// Drops whatever is queued (the sink closed or failed), counting it as dropped.
    pub(crate) fn discard_queue(&mut self) {
        self.stats.dropped += self.queue.clear() as u64;
        self.stats.queued = 0;
        self.phase = Phase::Idle;
        self.interrupted = 0;
        self.notice = None;
        self.episode_dropped = 0;
        self.mid_line = false;
        self.skipping = false;
    }

    /// Bytes searched for newlines so far, in the queue and in output
    /// arriving (lines mode): the work whole-line drops cost.
    #[cfg(any(test, feature = "model"))]
    pub(crate) fn scanned(&self) -> u64 {
        self.queue.scanned() + self.data_scanned
    }

    fn note_queue_len(&mut self) {
        let len = self.queue.len() as u64;
        self.stats.queued = len;
        self.stats.queue_high_water = self.stats.queue_high_water.max(len);
    }
}
