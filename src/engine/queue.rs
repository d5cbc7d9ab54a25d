//! A byte queue whose storage is allocated once, at its capacity.

use std::collections::{TryReserveError, VecDeque};

/// What the queue knows of its first newline, kept up to date by every
/// operation in O(1) so that [`ByteQueue::first_newline`] never searches a
/// byte twice while it stays queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FirstNewline {
    /// The first newline is at this index.
    At(usize),
    /// No newline among the first this many bytes; the rest is unsearched.
    NoneBefore(usize),
}

/// A FIFO of at most `capacity` bytes. Pushing never reallocates.
#[derive(Debug)]
pub struct ByteQueue {
    buf: VecDeque<u8>,
    capacity: usize,
    first_newline: FirstNewline,
    /// Bytes searched for newlines so far (see [`ByteQueue::scanned`]).
    scanned: u64,
}

impl ByteQueue {
    /// A queue of `capacity` bytes, allocated now; an allocation failure is
    /// returned, not an abort.
    pub fn with_capacity(capacity: usize) -> Result<Self, TryReserveError> {
        let mut buf = VecDeque::new();
        buf.try_reserve_exact(capacity)?;
        Ok(ByteQueue {
            buf,
            capacity,
            first_newline: FirstNewline::NoneBefore(0),
            scanned: 0,
        })
    }

    /// A queue of capacity 0, which allocates nothing.
    pub const fn empty() -> Self {
        ByteQueue {
            buf: VecDeque::new(),
            capacity: 0,
            first_newline: FirstNewline::NoneBefore(0),
            scanned: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn free(&self) -> usize {
        self.capacity - self.buf.len()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends `data`, which must fit.
    pub fn push(&mut self, data: &[u8]) {
        debug_assert!(data.len() <= self.free());
        self.buf.extend(data);
    }

    /// Appends `data`, discarding the oldest bytes (queued first, then the head of
    /// `data`) so that at most `capacity` remain. Returns how many were discarded.
    pub fn push_overwrite(&mut self, data: &[u8]) -> usize {
        if data.len() >= self.capacity {
            let dropped = self.buf.len() + data.len() - self.capacity;
            self.clear();
            self.buf.extend(&data[data.len() - self.capacity..]);
            return dropped;
        }
        let dropped = data.len().saturating_sub(self.free());
        self.consume(dropped);
        self.buf.extend(data);
        dropped
    }

    /// The oldest contiguous run of queued bytes.
    pub fn front(&self) -> &[u8] {
        self.buf.as_slices().0
    }

    /// The queued bytes, oldest first, as at most two slices.
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        self.buf.as_slices()
    }

    /// Removes the `n` oldest bytes.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.buf.len());
        self.buf.drain(..n);
        self.first_newline = match self.first_newline {
            FirstNewline::At(p) if p >= n => FirstNewline::At(p - n),
            FirstNewline::At(_) => FirstNewline::NoneBefore(0),
            FirstNewline::NoneBefore(k) => FirstNewline::NoneBefore(k.saturating_sub(n)),
        };
    }

    /// Where the first newline is, if any. Amortised O(1) per byte pushed:
    /// what was searched is remembered until it leaves the queue.
    pub fn first_newline(&mut self) -> Option<usize> {
        match self.first_newline {
            FirstNewline::At(p) => Some(p),
            FirstNewline::NoneBefore(k) => {
                let found = self.search(b'\n', k);
                self.first_newline = match found {
                    Some(p) => FirstNewline::At(p),
                    None => FirstNewline::NoneBefore(self.buf.len()),
                };
                found
            }
        }
    }

    /// The byte at `index` (which must be queued).
    pub fn get(&self, index: usize) -> u8 {
        self.buf[index]
    }

    /// The newest byte, if any.
    pub fn last(&self) -> Option<u8> {
        self.buf.back().copied()
    }

    /// Newlines among the bytes at `start..end` (which must be queued);
    /// counted as searched (see [`ByteQueue::scanned`]).
    pub fn count_newlines(&mut self, start: usize, end: usize) -> usize {
        debug_assert!(start <= end && end <= self.buf.len());
        let (a, b) = self.buf.as_slices();
        let in_a = &a[start.min(a.len())..end.min(a.len())];
        let in_b = &b[start.saturating_sub(a.len())..end.saturating_sub(a.len())];
        self.scanned += (end - start) as u64;
        super::stamp::count_newlines(in_a) + super::stamp::count_newlines(in_b)
    }

    /// Where the first newline at or after `from` is, if any. Searches
    /// from `from` on (the caller removes what it searched; see
    /// [`ByteQueue::first_newline`] for the search it repeats).
    pub fn find_newline(&mut self, from: usize) -> Option<usize> {
        match self.first_newline {
            FirstNewline::At(p) if p >= from => Some(p),
            FirstNewline::NoneBefore(k) if k > from => {
                // Known: nothing before k. Search on from there.
                self.first_newline().filter(|&p| p >= from)
            }
            _ => self.search(b'\n', from),
        }
    }

    /// Where the first `byte` at or after `from` is, if any.
    fn search(&mut self, byte: u8, from: usize) -> Option<usize> {
        let (a, b) = self.buf.as_slices();
        if from < a.len() {
            let found = memchr::memchr(byte, &a[from..]);
            self.scanned += found.map_or(a.len() - from, |p| p + 1) as u64;
            if let Some(p) = found {
                return Some(from + p);
            }
        }
        let skip = from.saturating_sub(a.len()).min(b.len());
        let found = memchr::memchr(byte, &b[skip..]);
        self.scanned += found.map_or(b.len() - skip, |p| p + 1) as u64;
        found.map(|p| a.len() + skip + p)
    }

    /// Bytes searched for newlines so far (up to and including the one
    /// found): the work whole-line drops spent here (for the tests).
    #[cfg(any(test, feature = "model"))]
    pub fn scanned(&self) -> u64 {
        self.scanned
    }

    /// Removes the bytes at `start..end`.
    pub fn remove_range(&mut self, start: usize, end: usize) {
        self.buf.drain(start..end);
        self.forget_from(start);
    }

    /// Keeps the `len` oldest bytes.
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
        self.forget_from(len);
    }

    /// Bytes from `index` on changed: forget what was known of them.
    fn forget_from(&mut self, index: usize) {
        self.first_newline = match self.first_newline {
            FirstNewline::At(p) if p < index => FirstNewline::At(p),
            FirstNewline::At(p) => FirstNewline::NoneBefore(p.min(index)),
            FirstNewline::NoneBefore(k) => FirstNewline::NoneBefore(k.min(index)),
        };
    }

    /// The same storage, empty and with its counter at 0, for a new owner.
    pub fn recycle(mut self) -> Self {
        self.clear();
        self.scanned = 0;
        self
    }

    /// Removes everything; returns how many bytes were removed.
    pub fn clear(&mut self) -> usize {
        let n = self.buf.len();
        self.buf.clear();
        self.first_newline = FirstNewline::NoneBefore(0);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(q: &ByteQueue) -> Vec<u8> {
        let (a, b) = q.as_slices();
        [a, b].concat()
    }

    #[test]
    fn overwrite_keeps_newest_bytes() {
        let mut q = ByteQueue::with_capacity(4).unwrap();
        assert_eq!(q.push_overwrite(b"abc"), 0);
        assert_eq!(q.push_overwrite(b"de"), 1);
        assert_eq!(contents(&q), b"bcde");
        assert_eq!(q.push_overwrite(b"123456"), 6);
        assert_eq!(contents(&q), b"3456");
    }

    #[test]
    fn find_looks_across_the_wrap() {
        let mut q = ByteQueue::with_capacity(8).unwrap();
        q.push(b"ab\ncdef");
        q.consume(5);
        q.push(b"g\nhij");
        assert_eq!(contents(&q), b"efg\nhij");
        assert_eq!(q.find_newline(0), Some(3));
        assert_eq!(q.find_newline(3), Some(3));
        assert_eq!(q.find_newline(4), None);
        assert_eq!(q.find_newline(9), None);
        assert_eq!(q.first_newline(), Some(3));
        q.remove_range(1, 4);
        assert_eq!(contents(&q), b"ehij");
        q.truncate(2);
        assert_eq!(contents(&q), b"eh");
    }

    #[test]
    fn storage_is_never_reallocated() {
        let mut q = ByteQueue::with_capacity(100).unwrap();
        let before = q.buf.capacity();
        for i in 0..1000u32 {
            q.push_overwrite(&i.to_le_bytes()[..(i % 4) as usize + 1]);
            if i % 7 == 0 {
                q.consume(q.len() / 2);
            }
        }
        assert_eq!(q.buf.capacity(), before);
    }
}
