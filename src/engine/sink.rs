//! One sink: its queue, its state and its counters.

use super::config::Overflow;
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

#[derive(Debug)]
pub(crate) struct Sink {
    pub(crate) queue: ByteQueue,
    pub(crate) stats: SinkStats,
    pub(crate) phase: Phase,
    /// EINTRs since the last write that took bytes.
    interrupted: u8,
}

impl Sink {
    pub(crate) fn new(overflow: Overflow, open: bool, queue: ByteQueue) -> Self {
        Sink {
            queue,
            stats: SinkStats::new(overflow, open),
            phase: Phase::Idle,
            interrupted: 0,
        }
    }

    pub(crate) fn state(&self) -> SinkState {
        self.stats.state
    }

    pub(crate) fn is_open(&self) -> bool {
        self.stats.state == SinkState::Open
    }

    /// Open and lossless: this sink limits what the frontend may write.
    pub(crate) fn limits_frontend(&self) -> bool {
        self.is_open() && self.stats.overflow == Overflow::Block
    }

    /// Whether the caller should watch this sink for writability.
    pub(crate) fn is_blocked(&self) -> bool {
        self.phase == Phase::Blocked
    }

    /// Whether the caller should write this sink's queue now.
    pub(crate) fn is_due(&self) -> bool {
        self.phase == Phase::Due && self.is_open() && !self.queue.is_empty()
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
            Overflow::Drop => self.queue.push_overwrite(data),
        };
        self.stats.dropped += discarded as u64;
        self.note_queue_len();
        if due {
            self.make_due();
        }
        discarded > 0
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
        if self.phase == Phase::Idle && !self.queue.is_empty() {
            self.phase = Phase::Due;
        }
    }

    /// The caller reports the sink writable (or wants it tried again).
    pub(crate) fn writable(&mut self) {
        self.interrupted = 0;
        self.phase = if self.queue.is_empty() {
            Phase::Idle
        } else {
            Phase::Due
        };
    }

    /// The caller wrote `n` bytes of the queue's front (`n` > 0, at most what
    /// it was offered).
    pub(crate) fn consumed(&mut self, n: usize) {
        self.queue.consume(n);
        self.stats.delivered += n as u64;
        self.stats.queued = self.queue.len() as u64;
        self.interrupted = 0;
        if self.queue.is_empty() {
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
    }

    fn note_queue_len(&mut self) {
        let len = self.queue.len() as u64;
        self.stats.queued = len;
        self.stats.queue_high_water = self.stats.queue_high_water.max(len);
    }
}
