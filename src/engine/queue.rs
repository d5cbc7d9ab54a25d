//! A byte queue whose storage is allocated once, at its capacity.

use std::collections::{TryReserveError, VecDeque};

/// A FIFO of at most `capacity` bytes. Pushing never reallocates.
#[derive(Debug)]
pub(crate) struct ByteQueue {
    buf: VecDeque<u8>,
    capacity: usize,
}

impl ByteQueue {
    /// A queue of `capacity` bytes, allocated now; an allocation failure is
    /// returned, not an abort.
    pub(crate) fn with_capacity(capacity: usize) -> Result<Self, TryReserveError> {
        let mut buf = VecDeque::new();
        buf.try_reserve_exact(capacity)?;
        Ok(ByteQueue { buf, capacity })
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn free(&self) -> usize {
        self.capacity - self.buf.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends `data`, which must fit.
    pub(crate) fn push(&mut self, data: &[u8]) {
        debug_assert!(data.len() <= self.free());
        self.buf.extend(data);
    }

    /// Appends `data`, discarding the oldest bytes (queued first, then the head of
    /// `data`) so that at most `capacity` remain. Returns how many were discarded.
    pub(crate) fn push_overwrite(&mut self, data: &[u8]) -> usize {
        if data.len() >= self.capacity {
            let dropped = self.buf.len() + data.len() - self.capacity;
            self.buf.clear();
            self.buf.extend(&data[data.len() - self.capacity..]);
            return dropped;
        }
        let dropped = data.len().saturating_sub(self.free());
        self.consume(dropped);
        self.buf.extend(data);
        dropped
    }

    /// The oldest contiguous run of queued bytes.
    pub(crate) fn front(&self) -> &[u8] {
        self.buf.as_slices().0
    }

    /// The queued bytes, oldest first, as at most two slices.
    pub(crate) fn as_slices(&self) -> (&[u8], &[u8]) {
        self.buf.as_slices()
    }

    /// Removes the `n` oldest bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.buf.len());
        self.buf.drain(..n);
    }

    /// Removes everything; returns how many bytes were removed.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.buf.len();
        self.buf.clear();
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
