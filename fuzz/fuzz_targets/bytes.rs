//! Reads a fuzz input as a stream of small numbers.

pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    /// The next byte, or `None` at the end.
    pub fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// The next byte as a number, 0 at the end.
    pub fn small(&mut self) -> usize {
        self.byte().unwrap_or(0) as usize
    }
}
