//! What a sink that opens is replayed: the head of the output (the first
//! bytes since creation or the last [`Mux::reset_head`](super::Mux::reset_head)),
//! the tail (the most recent bytes), and, between them, a marker for what
//! was kept in neither. Both remember the start times of their lines, for
//! stamped sinks. The whole of it can be exported as a versioned blob and
//! imported into a new multiplexer (live migration).
//!
//! Positions are counted in bytes of output since creation (`written`):
//! the head holds `[head.start, head.start + head.len)`, the tail
//! `[written - tail.len, written)`. A replay is the union of the two, in
//! order, each byte once, with one marker for the gap if there is one.

use core::fmt;
use std::collections::TryReserveError;

use super::queue::ByteQueue;
use super::stamp::{count_newlines, time_slots, LineCtx, LineState, TimeRing, Wall};

/// The most recent output: the replay tail.
#[derive(Debug)]
pub struct History {
    bytes: ByteQueue,
    /// One per newline with a byte after it: that byte's line's time.
    times: TimeRing,
    /// The time of the line its first byte belongs to.
    front: Wall,
}

impl History {
    fn with_capacity(capacity: usize) -> Result<History, TryReserveError> {
        Ok(History {
            bytes: ByteQueue::with_capacity(capacity)?,
            times: TimeRing::with_slots(time_slots(capacity))?,
            front: Wall::UNKNOWN,
        })
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        self.bytes.as_slices()
    }

    pub fn times(&self) -> &TimeRing {
        &self.times
    }

    /// The time of the line its first byte belongs to.
    pub fn front(&self) -> Wall {
        self.front
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.times.clear();
        self.front = Wall::UNKNOWN;
    }

    /// Keeps `data` (written in the line context `ctx`), forgetting the
    /// oldest bytes (and their lines' times) to make room.
    fn push(&mut self, data: &[u8], ctx: LineCtx) {
        let cap = self.bytes.capacity();
        if cap == 0 || data.is_empty() {
            return;
        }
        let (data, ctx) = if data.len() >= cap {
            let (gone, kept) = data.split_at(data.len() - cap);
            self.clear();
            let ctx = if count_newlines(gone) > 0 {
                ctx.line_start()
            } else {
                ctx
            };
            (kept, ctx)
        } else {
            let q = self.bytes.len();
            let d = data.len().saturating_sub(self.bytes.free());
            if d > 0 {
                let newlines = self.bytes.count_newlines(0, d);
                self.bytes.consume(d);
                if d == q {
                    self.times.clear();
                } else if let Some(t) = self.times.pop_n(newlines) {
                    self.front = t;
                }
            }
            (data, ctx)
        };
        match self.bytes.last() {
            None => self.front = ctx.first,
            Some(b'\n') => self.times.push(ctx.first),
            Some(_) => {}
        }
        self.times
            .push_n(ctx.wall, count_newlines(&data[..data.len() - 1]));
        self.bytes.push(data);
    }
}

/// The first output since creation (or the last reset): the replay head.
/// It grows while it is the whole output since its start and has room;
/// then it stays as it is until it is reset.
#[derive(Debug)]
pub struct HeadStore {
    bytes: Vec<u8>,
    capacity: usize,
    times: TimeRing,
    front: Wall,
    /// Where it starts in the output.
    start: u64,
}

impl HeadStore {
    fn with_capacity(capacity: usize) -> Result<HeadStore, TryReserveError> {
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(capacity)?;
        Ok(HeadStore {
            bytes,
            capacity,
            times: TimeRing::with_slots(time_slots(capacity))?,
            front: Wall::UNKNOWN,
            start: 0,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The time of the line its first byte belongs to.
    pub fn front(&self) -> Wall {
        self.front
    }

    /// The time of the line that follows its `k`-th newline.
    pub fn time(&self, k: usize) -> Wall {
        self.times.get(k)
    }

    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// Keeps what fits of `data`, written at `written` in `ctx`, if the
    /// head still grows.
    fn append(&mut self, data: &[u8], ctx: LineCtx, written: u64) {
        if self.end() != written || self.bytes.len() >= self.capacity {
            return;
        }
        let take = &data[..data.len().min(self.capacity - self.bytes.len())];
        let Some((_, inner)) = take.split_last() else {
            return;
        };
        match self.bytes.last() {
            None => self.front = ctx.first,
            Some(b'\n') => self.times.push(ctx.first),
            Some(_) => {}
        }
        self.times.push_n(ctx.wall, count_newlines(inner));
        self.bytes.extend_from_slice(take);
    }

    fn reset(&mut self, written: u64) {
        self.bytes.clear();
        self.times.clear();
        self.front = Wall::UNKNOWN;
        self.start = written;
    }
}

/// What a sink that opens now is replayed: `head_len` bytes of the head,
/// then (if `skipped` > 0) the marker `\r\n[multiplex: N bytes skipped]\r\n`,
/// then the whole tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayPlan {
    pub head_len: usize,
    pub skipped: u64,
}

/// The output the engine keeps for replay, and where the output stands.
#[derive(Debug)]
pub struct ReplayStore {
    pub history: History,
    pub head: HeadStore,
    /// Bytes of output since creation.
    written: u64,
    /// Where the output stands in its current line.
    line: LineState,
}

impl ReplayStore {
    pub fn new(tail: usize, head: usize) -> Result<ReplayStore, TryReserveError> {
        Ok(ReplayStore {
            history: History::with_capacity(tail)?,
            head: HeadStore::with_capacity(head)?,
            written: 0,
            line: LineState::AtStart,
        })
    }

    /// Where the output stands in its current line.
    #[cfg(test)]
    pub fn line(&self) -> LineState {
        self.line
    }

    /// Takes note of output written at `wall` and keeps what the replay
    /// needs of it; returns the line context the queues take it in.
    #[inline]
    pub fn record(&mut self, data: &[u8], wall: Wall) -> LineCtx {
        let ctx = LineCtx::new(self.line, wall);
        if self.history.bytes.capacity() > 0 {
            self.history.push(data, ctx);
        }
        if self.head.capacity > 0 {
            self.head.append(data, ctx, self.written);
        }
        self.line = self.line.after(data, wall);
        self.written += data.len() as u64;
        ctx
    }

    /// What a sink that opens now is replayed.
    pub fn plan(&self) -> ReplayPlan {
        let tail_start = self.written - self.history.len() as u64;
        let (head_start, head_end) = (self.head.start, self.head.end());
        if head_end == head_start || tail_start <= head_start {
            // No head, or the tail holds it.
            ReplayPlan {
                head_len: 0,
                skipped: 0,
            }
        } else if tail_start <= head_end {
            ReplayPlan {
                head_len: (tail_start - head_start) as usize,
                skipped: 0,
            }
        } else {
            ReplayPlan {
                head_len: self.head.bytes.len(),
                skipped: tail_start - head_end,
            }
        }
    }

    /// The head starts again with the next byte written.
    pub fn reset_head(&mut self) {
        self.head.reset(self.written);
    }

    /// Nothing was written (and nothing imported).
    pub fn is_fresh(&self) -> bool {
        self.written == 0
    }
}

// The blob. Version 1, every integer little-endian:
//
//   magic "CMXRPLY\0", u32 version (1), u32 flags (0), u64 total length,
//   u64 written, u64 line (0: at a line start, 1: in a line), u64 line time,
//   u64 skipped,
//   head: u64 start, u64 len, u64 front time, u64 forgotten times,
//         u64 known times, the known times (u64 each), the bytes,
//   tail: u64 len, u64 front time, u64 forgotten times, u64 known times,
//         the known times, the bytes.
//
// Times are ns since the Unix epoch, u64::MAX for unknown. A field that
// does not apply (the front time of an empty part, the line time at a line
// start) is u64::MAX: the encoding of a state is unique, so exporting an
// imported blob gives it back byte for byte.

const MAGIC: &[u8; 8] = b"CMXRPLY\0";
/// The blob format this library writes and reads.
pub const BLOB_VERSION: u32 = 1;
/// Magic, version, flags, and 14 integers (5 of the whole, 5 of the head, 4 of the tail).
const FIXED_LEN: usize = 8 + 4 + 4 + 8 * 14;

/// Why [`Mux::replay_import`](super::Mux::replay_import) refused a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportError {
    /// Not a replay blob, or an inconsistent one (cut short, trailing
    /// bytes, counts that do not match its bytes, head and tail that
    /// disagree, a skip count that does not follow from them).
    Malformed,
    /// A replay blob of a version this library does not read.
    Version(u32),
    /// It holds more than this multiplexer keeps: a longer head or tail,
    /// or more line times, than its configuration has room for.
    TooLarge,
    /// This multiplexer has written output already: import into a new one.
    NotFresh,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ImportError::Malformed => f.write_str("not a well-formed replay blob"),
            ImportError::Version(v) => write!(
                f,
                "replay blob version {v}; this library reads version {BLOB_VERSION}"
            ),
            ImportError::TooLarge => {
                f.write_str("the replay blob holds more than this multiplexer keeps")
            }
            ImportError::NotFresh => {
                f.write_str("output was written already: import into a new multiplexer")
            }
        }
    }
}

impl std::error::Error for ImportError {}

/// Appends little-endian integers and bytes to a buffer of known size.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.out[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}

/// Reads what [`Writer`] wrote; every read past the end is `Malformed`.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: u64) -> Result<&'a [u8], ImportError> {
        let n = usize::try_from(n).map_err(|_| ImportError::Malformed)?;
        if n > self.rest.len() {
            return Err(ImportError::Malformed);
        }
        let (b, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(b)
    }

    fn u64(&mut self) -> Result<u64, ImportError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A count that must fit in `max`.
    fn count(&mut self, max: usize) -> Result<usize, ImportError> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= max)
            .ok_or(ImportError::TooLarge)
    }

    /// One part (head or tail), as [`ReplayStore::export`] writes it: its
    /// length (at most `max_len`), its front time, its counts of unknown
    /// and known times (at most `max_known`), the known times, its bytes.
    fn part(&mut self, max_len: usize, max_known: usize) -> Result<Part<'a>, ImportError> {
        let len = self.count(max_len)?;
        let front = self.u64()?;
        let unknown = self.count(usize::MAX)?;
        let known = self.count(max_known)?;
        Ok(Part {
            front,
            unknown,
            times: self.bytes(8 * known as u64)?,
            bytes: self.bytes(len as u64)?,
        })
    }
}

/// One part (head or tail) as the blob holds it.
struct Part<'a> {
    front: u64,
    unknown: usize,
    times: &'a [u8],
    bytes: &'a [u8],
}

impl Part<'_> {
    fn known(&self) -> impl Iterator<Item = Wall> + '_ {
        self.times.chunks_exact(8).map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            Wall::from_ns(u64::from_le_bytes(a))
        })
    }

    /// Its times are one per newline with a byte after it, and its front
    /// time is unknown when it is empty.
    fn check(&self) -> Result<(), ImportError> {
        let lines = self
            .bytes
            .split_last()
            .map_or(0, |(_, inner)| count_newlines(inner));
        let times = (self.unknown as u64).saturating_add((self.times.len() / 8) as u64);
        if lines as u64 != times || (self.bytes.is_empty() && self.front != u64::MAX) {
            return Err(ImportError::Malformed);
        }
        Ok(())
    }
}

fn front_raw(len: usize, front: Wall) -> u64 {
    if len == 0 {
        u64::MAX
    } else {
        front.raw()
    }
}

impl ReplayStore {
    /// The length of the blob [`ReplayStore::export`] writes.
    pub fn export_len(&self) -> usize {
        FIXED_LEN
            + self.head.bytes.len()
            + 8 * (self.head.times.len() - self.head.times.unknown())
            + self.history.len()
            + 8 * (self.history.times.len() - self.history.times.unknown())
    }

    /// Writes the blob into `out` (at least [`ReplayStore::export_len`]
    /// bytes; `None` if shorter) and returns its length.
    pub fn export(&self, out: &mut [u8]) -> Option<usize> {
        let len = self.export_len();
        let out = out.get_mut(..len)?;
        let mut w = Writer { out, at: 0 };
        w.bytes(MAGIC);
        w.bytes(&BLOB_VERSION.to_le_bytes());
        w.bytes(&0u32.to_le_bytes());
        w.u64(len as u64);
        w.u64(self.written);
        match self.line {
            LineState::AtStart => {
                w.u64(0);
                w.u64(u64::MAX);
            }
            LineState::In(t) => {
                w.u64(1);
                w.u64(t.raw());
            }
        }
        w.u64(self.plan().skipped);
        let head = &self.head;
        w.u64(head.start);
        w.u64(head.bytes.len() as u64);
        w.u64(front_raw(head.bytes.len(), head.front));
        w.u64(head.times.unknown() as u64);
        w.u64((head.times.len() - head.times.unknown()) as u64);
        for t in head.times.known() {
            w.u64(t.raw());
        }
        w.bytes(&head.bytes);
        let tail = &self.history;
        w.u64(tail.len() as u64);
        w.u64(front_raw(tail.len(), tail.front));
        w.u64(tail.times.unknown() as u64);
        w.u64((tail.times.len() - tail.times.unknown()) as u64);
        for t in tail.times.known() {
            w.u64(t.raw());
        }
        let (a, b) = tail.bytes.as_slices();
        w.bytes(a);
        w.bytes(b);
        debug_assert_eq!(w.at, len);
        Some(len)
    }

    /// Takes over the replay state of `blob` (from [`ReplayStore::export`]
    /// of another multiplexer). Nothing changes unless it succeeds.
    pub fn import(&mut self, blob: &[u8]) -> Result<(), ImportError> {
        if !self.is_fresh() {
            return Err(ImportError::NotFresh);
        }
        let mut r = Reader { rest: blob };
        if r.bytes(8)? != MAGIC {
            return Err(ImportError::Malformed);
        }
        let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let version = word(r.bytes(4)?);
        if version != BLOB_VERSION {
            return Err(ImportError::Version(version));
        }
        if word(r.bytes(4)?) != 0 || r.u64()? != blob.len() as u64 {
            return Err(ImportError::Malformed);
        }
        let written = r.u64()?;
        let line = match (r.u64()?, r.u64()?) {
            (0, u64::MAX) => LineState::AtStart,
            (1, t) => LineState::In(Wall::from_ns(t)),
            _ => return Err(ImportError::Malformed),
        };
        let skipped = r.u64()?;
        let head_start = r.u64()?;
        let head = r.part(self.head.capacity, self.head.times.slots())?;
        let tail = r.part(self.history.bytes.capacity(), self.history.times.slots())?;
        let (head_len, head_front) = (head.bytes.len(), head.front);
        let (tail_len, tail_front) = (tail.bytes.len(), tail.front);
        if !r.rest.is_empty() {
            return Err(ImportError::Malformed);
        }
        head.check()?;
        tail.check()?;
        // Where the parts lie in the output, and that they agree where
        // they overlap.
        let head_end = head_start
            .checked_add(head_len as u64)
            .filter(|&e| e <= written)
            .ok_or(ImportError::Malformed)?;
        let tail_start = written
            .checked_sub(tail_len as u64)
            .ok_or(ImportError::Malformed)?;
        let (lo, hi) = (head_start.max(tail_start), head_end.min(written));
        if lo < hi {
            let h = &head.bytes[(lo - head_start) as usize..(hi - head_start) as usize];
            let t = &tail.bytes[(lo - tail_start) as usize..(hi - tail_start) as usize];
            if h != t {
                return Err(ImportError::Malformed);
            }
        }
        // The line state agrees with the last byte written, where it is kept.
        let last = if tail_len > 0 {
            tail.bytes.last()
        } else if head_len > 0 && head_end == written {
            head.bytes.last()
        } else {
            None
        };
        let at_start = line == LineState::AtStart;
        let consistent = match last {
            Some(&b) => at_start == (b == b'\n'),
            None => written > 0 || at_start,
        };
        if !consistent {
            return Err(ImportError::Malformed);
        }
        // All checked: take it over.
        let mut new = ReplayStore {
            history: History {
                bytes: core::mem::replace(&mut self.history.bytes, ByteQueue::empty()),
                times: core::mem::replace(&mut self.history.times, TimeRing::empty()),
                front: Wall::from_ns(tail_front),
            },
            head: HeadStore {
                bytes: core::mem::take(&mut self.head.bytes),
                capacity: self.head.capacity,
                times: core::mem::replace(&mut self.head.times, TimeRing::empty()),
                front: Wall::from_ns(head_front),
                start: head_start,
            },
            written,
            line,
        };
        new.history.bytes.clear();
        new.history.bytes.push(tail.bytes);
        new.history.times.restore(tail.unknown, tail.known());
        new.head.bytes.clear();
        new.head.bytes.extend_from_slice(head.bytes);
        new.head.times.restore(head.unknown, head.known());
        if new.plan().skipped != skipped {
            // Put the storage back as it was (empty) before refusing.
            new.history.clear();
            new.head.reset(0);
            self.history = new.history;
            self.head = new.head;
            return Err(ImportError::Malformed);
        }
        *self = new;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(tail: usize, head: usize) -> ReplayStore {
        ReplayStore::new(tail, head).unwrap()
    }

    fn write(s: &mut ReplayStore, data: &[u8], t: u64) {
        s.record(data, Wall::from_ns(t));
    }

    #[test]
    fn the_head_and_the_tail_are_replayed_once_each_with_the_gap_counted() {
        let mut s = store(4, 3);
        write(&mut s, b"ab", 1);
        // Everything is in the tail.
        assert_eq!(
            s.plan(),
            ReplayPlan {
                head_len: 0,
                skipped: 0
            }
        );
        write(&mut s, b"cd", 2);
        write(&mut s, b"e", 3);
        // Output "abcde": head "abc", tail "bcde": head "a", then the tail.
        assert_eq!(
            s.plan(),
            ReplayPlan {
                head_len: 1,
                skipped: 0
            }
        );
        write(&mut s, b"fgh", 4);
        // "abcdefgh": head "abc", tail "efgh", "d" skipped.
        assert_eq!(
            s.plan(),
            ReplayPlan {
                head_len: 3,
                skipped: 1
            }
        );
        s.reset_head();
        assert_eq!(
            s.plan(),
            ReplayPlan {
                head_len: 0,
                skipped: 0
            }
        );
        write(&mut s, b"ijklmnop", 5);
        assert_eq!(s.head.bytes(), b"ijk");
        assert_eq!(
            s.plan(),
            ReplayPlan {
                head_len: 3,
                skipped: 1
            }
        );
    }

    #[test]
    fn line_times_follow_the_bytes_they_stamp() {
        let mut s = store(8, 8);
        write(&mut s, b"a\nb", 1);
        write(&mut s, b"c\nd\n", 2);
        // Lines: "a\n" at 1, "bc\n" at 1, "d\n" at 2.
        assert_eq!(s.head.front(), Wall::from_ns(1));
        assert_eq!(
            (s.head.time(0), s.head.time(1)),
            (Wall::from_ns(1), Wall::from_ns(2))
        );
        write(&mut s, b"e\nf", 3);
        // Tail "\nd\ne\nf" (8 of "a\nbc\nd\ne\nf"): its first byte ends "bc\n".
        assert_eq!(s.history.front(), Wall::from_ns(1));
        let times: Vec<Wall> = (0..3).map(|k| s.history.times().get(k)).collect();
        assert_eq!(times, [2, 3, 3].map(Wall::from_ns));
        assert_eq!(s.line(), LineState::In(Wall::from_ns(3)));
    }

    #[test]
    fn a_blob_round_trips_and_a_bad_one_changes_nothing() {
        let mut s = store(6, 4);
        write(&mut s, b"ab\ncd", 7);
        write(&mut s, b"ef\ngh\nij", 8);
        let mut blob = vec![0; s.export_len()];
        assert_eq!(s.export(&mut blob), Some(blob.len()));
        assert_eq!(s.export(&mut blob[..10]), None);
        let mut t = store(6, 4);
        t.import(&blob).unwrap();
        let mut again = vec![0; t.export_len()];
        t.export(&mut again).unwrap();
        assert_eq!(again, blob);
        assert_eq!(t.plan(), s.plan());
        assert_eq!(t.import(&blob), Err(ImportError::NotFresh));

        let mut fresh = store(6, 4);
        let mut bad = blob.clone();
        bad[8] = 2;
        assert_eq!(fresh.import(&bad), Err(ImportError::Version(2)));
        assert_eq!(
            fresh.import(&blob[..blob.len() - 1]),
            Err(ImportError::Malformed)
        );
        let mut small = store(5, 4);
        assert_eq!(small.import(&blob), Err(ImportError::TooLarge));
        // The skip count must follow from the rest.
        let mut skip = blob.clone();
        skip[48] ^= 1;
        assert_eq!(fresh.import(&skip), Err(ImportError::Malformed));
        assert!(fresh.is_fresh());
        assert_eq!(fresh.history.len(), 0);
        fresh.import(&blob).unwrap();
        assert_eq!(fresh.plan(), s.plan());
    }
}
