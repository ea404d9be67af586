//! A bounded cursor over bytes, under both binary readers: the packed
//! options (`json::Unpacker`) and the snapshot (`snapshot::Reader`). Every
//! read checks what is left first; each reader words its own errors.

/// Reads forward through `b`, never past its end.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Cursor<'a> {
        Cursor { b, pos: 0 }
    }

    /// Bytes read so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub(crate) fn left(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes, or `None` (moving nothing) if fewer are left.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..)?.get(..n)?;
        self.pos += n;
        Some(s)
    }

    /// An unsigned little-endian integer of `n` bytes (at most 8).
    pub(crate) fn uint(&mut self, n: usize) -> Option<u64> {
        let b = self.take(n)?;
        Some(b.iter().rev().fold(0, |v, &x| v << 8 | u64::from(x)))
    }
}
