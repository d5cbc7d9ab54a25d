//! One sink: its queue, its state and its counters.

use super::config::Overflow;
use super::io::{Io, WriteOutcome};
use super::queue::ByteQueue;
use super::stats::{SinkState, SinkStats};

#[derive(Debug)]
pub(crate) struct Sink {
    pub(crate) queue: ByteQueue,
    pub(crate) stats: SinkStats,
    /// Whether the caller was asked to report writability.
    watching: bool,
}

impl Sink {
    pub(crate) fn new(overflow: Overflow, open: bool, capacity: usize) -> Self {
        Sink {
            queue: ByteQueue::with_capacity(capacity),
            stats: SinkStats::new(overflow, open),
            watching: false,
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

    /// Offers `data` to an open sink: straight through when nothing is queued,
    /// then queues what the sink did not take. A `Block` sink's queue must have
    /// room for all of `data` (the engine accepted no more than that).
    pub(crate) fn offer(&mut self, io: &mut impl Io, index: usize, data: &[u8]) {
        self.stats.offered += data.len() as u64;
        let mut rest = data;
        if self.queue.is_empty() {
            match io.write(index, data) {
                WriteOutcome::Written(n) => {
                    let n = n.min(data.len());
                    self.stats.delivered += n as u64;
                    rest = &data[n..];
                }
                WriteOutcome::WouldBlock => {}
                WriteOutcome::Failed(errno) => {
                    self.stats.dropped += data.len() as u64;
                    return self.fail(io, index, errno);
                }
            }
        }
        if rest.is_empty() {
            return;
        }
        self.enqueue(rest);
        self.set_watch(io, index, true);
    }

    /// Queues `data` for an open sink without writing it (coalescing): the
    /// caller checked that the queue has room for all of it.
    pub(crate) fn defer(&mut self, data: &[u8]) {
        self.stats.offered += data.len() as u64;
        self.enqueue(data);
    }

    /// Queues `data` by the overflow policy: a `Block` queue must have room,
    /// a `Drop` queue discards (and counts) its oldest bytes.
    fn enqueue(&mut self, data: &[u8]) {
        match self.stats.overflow {
            Overflow::Block => self.queue.push(data),
            Overflow::Drop => self.stats.dropped += self.queue.push_overwrite(data) as u64,
        }
        self.note_queue_len();
    }

    /// Whether the caller watches this sink for writability (it pushed back).
    pub(crate) fn is_watching(&self) -> bool {
        self.watching
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

    /// Writes as much of the queue as the sink takes.
    pub(crate) fn flush(&mut self, io: &mut impl Io, index: usize) {
        while self.is_open() && !self.queue.is_empty() {
            let front = self.queue.front();
            match io.write(index, front) {
                WriteOutcome::Written(0) | WriteOutcome::WouldBlock => break,
                WriteOutcome::Written(n) => {
                    let n = n.min(front.len());
                    self.queue.consume(n);
                    self.stats.delivered += n as u64;
                }
                WriteOutcome::Failed(errno) => return self.fail(io, index, errno),
            }
        }
        self.stats.queued = self.queue.len() as u64;
        let pending = !self.queue.is_empty();
        self.set_watch(io, index, pending);
    }

    /// Marks the sink failed after a hard write error.
    pub(crate) fn fail(&mut self, io: &mut impl Io, index: usize, errno: i32) {
        self.stats.write_errors += 1;
        self.stats.last_errno = errno;
        self.discard_queue(io, index);
        self.stats.state = SinkState::Failed;
    }

    /// Drops whatever is queued (the sink closed or failed), counting it as dropped.
    pub(crate) fn discard_queue(&mut self, io: &mut impl Io, index: usize) {
        self.stats.dropped += self.queue.clear() as u64;
        self.stats.queued = 0;
        self.set_watch(io, index, false);
    }

    fn note_queue_len(&mut self) {
        let len = self.queue.len() as u64;
        self.stats.queued = len;
        self.stats.queue_high_water = self.stats.queue_high_water.max(len);
    }

    fn set_watch(&mut self, io: &mut impl Io, index: usize, enable: bool) {
        if self.watching != enable {
            self.watching = enable;
            io.watch_writable(index, enable);
        }
    }
}
