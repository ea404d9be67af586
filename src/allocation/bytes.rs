//! A little-endian reader whose errors stick: a read past the end (or a
//! value a caller refuses) marks it failed and later reads give zeros, so
//! a format is read straight through without a branch per field, and the
//! caller turns `failed()` into its own error once. Every count it hands
//! out is bounded, so reading on after a failure stays cheap.

use crate::error::Text;

/// Reads forward through bytes; see the module docs.
pub(crate) struct Bytes<'a> {
    b: &'a [u8],
    /// Why it failed: None while it has not.
    why: Option<Text>,
}

impl<'a> Bytes<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Bytes<'a> {
        Bytes { b, why: None }
    }

    /// Mark the reader failed (the first reason is kept).
    pub(crate) fn fail(&mut self, why: Text) {
        if self.why.is_none() {
            self.why = Some(why);
        }
        self.b = &[];
    }

    /// Why it failed, if it did.
    pub(crate) fn failed(self) -> Option<Text> {
        self.why
    }

    /// Bytes left.
    pub(crate) fn left(&self) -> usize {
        self.b.len()
    }

    /// The next `n` bytes (empty after a failure).
    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        match self.b.split_at_checked(n) {
            Some((head, rest)) => {
                self.b = rest;
                head
            }
            None => {
                self.fail(text!(
                    "it ends early: {n} bytes wanted, {} left",
                    self.b.len()
                ));
                &[]
            }
        }
    }

    /// An unsigned integer of `n` bytes.
    pub(crate) fn uint(&mut self, n: usize) -> u64 {
        self.take(n)
            .iter()
            .rev()
            .fold(0, |v, b| v << 8 | u64::from(*b))
    }

    pub(crate) fn u8(&mut self) -> u8 {
        self.uint(1) as u8
    }

    /// A u16 length, then that many bytes.
    pub(crate) fn bytes16(&mut self) -> &'a [u8] {
        let n = self.uint(2) as usize;
        self.take(n)
    }

    /// An f64 (any bits).
    pub(crate) fn f64(&mut self) -> f64 {
        f64::from_bits(self.uint(8))
    }

    /// A u32 count of at most `max` items of at least `item` bytes each
    /// (0 when it is not).
    pub(crate) fn count(&mut self, item: usize, max: usize) -> usize {
        let n = self.uint(4) as usize;
        if n <= max && n * item <= self.b.len() {
            n
        } else {
            self.fail(text!("it claims {n} items; the limit is {max}"));
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_fails_for_good() {
        let mut r = Bytes::new(&[1, 2, 0, 3, 0, 0, 0, 0xff]);
        assert_eq!(r.u8(), 1);
        assert_eq!(r.uint(2), 2);
        assert_eq!(r.uint(4), 3);
        assert_eq!(r.left(), 1);
        assert_eq!(r.uint(2), 0, "past the end: zero");
        assert_eq!(r.u8(), 0, "and zero from then on");
        assert!(r.failed().is_some());
        let mut r = Bytes::new(&[2, 0, b'h', b'i', 9, 0, 0, 0]);
        assert_eq!(r.bytes16(), b"hi");
        assert_eq!(r.count(1, 8), 0, "9 items of a byte in 0 bytes");
        assert!(r.failed().is_some());
    }
}
