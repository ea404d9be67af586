//! The persisted snapshot: one versioned, checksummed, size-capped container
//! of named sections. Each decision slot keeps its learner in a section of
//! its own (`learner:<slot>`, see `engine::persist`); sections this build does
//! not write are carried over unchanged.
//!
//! Layout, integers little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `INSU` |
//! | 2 | format version ([`FORMAT_VERSION`]) |
//! | 2 | flags, 0 |
//! | 4 | payload length |
//! | 4 | CRC-32 (IEEE) of the payload |
//! | … | payload: section count (u16), then per section, sorted by name: name length (u8), name (UTF-8), body length (u32), body |
//!
//! Reading never panics and never trusts a length before checking it
//! against the bytes actually present: foreign data, a newer format, a
//! truncation, a flipped bit or an oversized value each get their own error
//! code, and nothing is changed.

use crate::prelude::*;

use crate::error::{Error, Result};
use crate::prim::hash::crc32;

/// The newest container format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Default cap on an encoded snapshot: 256 KiB (base64 in localStorage makes
/// that about 342 K characters, well inside the usual 5 M-character quota
/// that the site's own keys share).
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024;

const MAGIC: &[u8; 4] = b"INSU";
const HEADER: usize = 16;
/// Longest section name.
pub(crate) const MAX_NAME: usize = 64;

/// A decoded snapshot: named sections of opaque bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The section table as the payload holds it after its count: per
    /// section, sorted by name (as bytes), names unique, the name's length
    /// (u8), the name, the body's length (u32) and the body. One buffer,
    /// read in place: decoding copies the payload once, encoding once more.
    /// Names are only compared, and every name this crate writes is ASCII.
    table: Vec<u8>,
    /// How many sections.
    count: u16,
}

/// One section in a snapshot's table.
struct Entry<'a> {
    name: &'a [u8],
    body: &'a [u8],
    /// Where in the table it starts and ends.
    start: usize,
    end: usize,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// Decode and verify a stored snapshot of at most `max` bytes.
    pub fn decode(bytes: &[u8], max: usize) -> Result<Snapshot> {
        if !bytes.starts_with(MAGIC) {
            return Err(Error::SnapshotForeign {
                reason: text!(
                    "it does not start with the insitu magic bytes ({} bytes)",
                    bytes.len()
                ),
            });
        }
        if bytes.len() > max {
            return Err(Error::SnapshotTooLarge {
                bytes: crate::error::figure(bytes.len()),
                max: crate::error::figure(max),
            });
        }
        // The header: magic, version (u16), flags (u16), payload length
        // (u32), checksum (u32). A fixed array: its fields need no checks.
        let Some(&h) = bytes.first_chunk::<HEADER>() else {
            return Err(corrupt(text!(
                "the header ends early ({} bytes)",
                bytes.len()
            )));
        };
        let version = u32::from(u16::from_le_bytes([h[4], h[5]]));
        let flags = u16::from_le_bytes([h[6], h[7]]);
        let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let crc = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        match version {
            1 => {}
            0 => return Err(corrupt("format version 0 was never written".into())),
            found => {
                return Err(Error::SnapshotVersion {
                    found: crate::error::figure(found),
                    supported: crate::error::figure(FORMAT_VERSION),
                })
            }
        }
        if flags != 0 {
            return Err(corrupt(text!("unknown flags {flags:#06x}")));
        }
        let payload = bytes.get(HEADER..).unwrap_or_default();
        if payload.len() != len {
            return Err(corrupt(text!(
                "the header gives {len} payload bytes but {} follow",
                payload.len()
            )));
        }
        if crc32(payload) != crc {
            return Err(corrupt("the checksum does not match".into()));
        }
        // The section table, checked by reading it as lookups do.
        let early = || corrupt(text!("the section table ends early"));
        let &[c0, c1] = payload.first_chunk::<2>().ok_or_else(early)?;
        let snap = Snapshot {
            table: payload.get(2..).unwrap_or_default().to_vec(),
            count: u16::from_le_bytes([c0, c1]),
        };
        let (mut n, mut end) = (0, 0);
        let mut last: &[u8] = &[];
        for e in snap.entries().take(snap.count.into()) {
            let name = e.name;
            if name.is_empty()
                || name.len() > MAX_NAME
                || !name.iter().all(u8::is_ascii_graphic)
                || last >= name
            {
                return Err(corrupt(text!(
                    "a section name is empty, too long, not ASCII, out of order or repeated"
                )));
            }
            (last, end, n) = (name, e.end, n + 1);
        }
        if n < snap.count {
            return Err(early());
        }
        if end != snap.table.len() {
            return Err(corrupt(text!(
                "the section table has {} unread bytes at its end",
                snap.table.len() - end
            )));
        }
        Ok(snap)
    }

    /// Encode, refusing to exceed `max` bytes.
    pub fn encode(&self, max: usize) -> Result<Vec<u8>> {
        let total = HEADER + 2 + self.table.len();
        if total > max {
            return Err(Error::SnapshotTooLarge {
                bytes: crate::error::figure(total),
                max: crate::error::figure(max),
            });
        }
        let mut w = Vec::with_capacity(total);
        w.extend_from_slice(MAGIC);
        put_u16(&mut w, FORMAT_VERSION as u16);
        put_u16(&mut w, 0);
        put_u32(&mut w, (total - HEADER) as u32);
        put_u32(&mut w, 0); // checksum, filled in below
        put_u16(&mut w, self.count);
        w.extend_from_slice(&self.table);
        let crc = crc32(w.get(HEADER..).unwrap_or_default());
        for (b, c) in w.iter_mut().skip(HEADER - 4).zip(crc.to_le_bytes()) {
            *b = c;
        }
        Ok(w)
    }

    /// The sections in name order.
    fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        let mut r = crate::prim::cursor::Cursor::new(&self.table);
        core::iter::from_fn(move || {
            let start = r.pos();
            let n = r.uint(1)? as usize;
            let name = r.take(n)?;
            let len = r.uint(4)? as usize;
            let body = r.take(len)?;
            Some(Entry {
                name,
                body,
                start,
                end: r.pos(),
            })
        })
    }

    /// The body of section `name`.
    pub fn section(&self, name: &str) -> Option<&[u8]> {
        self.section_parts(name.as_bytes(), b"")
    }

    /// The body of the section named `prefix` then `rest` (e.g. a slot's
    /// `learner:` section), built from parts without allocating.
    pub fn section_parts(&self, prefix: &[u8], rest: &[u8]) -> Option<&[u8]> {
        // (No `strip_prefix`: its split brings a bounds panic.)
        let is = |n: &[u8]| {
            n.len() == prefix.len() + rest.len() && n.starts_with(prefix) && n.ends_with(rest)
        };
        Some(self.entries().find(|e| is(e.name))?.body)
    }

    /// Set (or replace) section `name`.
    ///
    /// # Panics
    /// Never for names the crate builds; `name` must be 1 to [`MAX_NAME`]
    /// bytes, which callers check (debug builds assert it).
    pub fn set_section(&mut self, name: &str, body: Vec<u8>) {
        debug_assert!(!name.is_empty() && name.len() <= MAX_NAME);
        let name = name.as_bytes();
        let gone = self.find(name);
        self.count += u16::from(gone.is_empty());
        let t = &self.table;
        let mut out = Vec::with_capacity(t.len() + 5 + name.len() + body.len());
        out.extend_from_slice(t.get(..gone.start).unwrap_or_default());
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        put_u32(&mut out, body.len() as u32);
        out.extend_from_slice(&body);
        out.extend_from_slice(t.get(gone.end..).unwrap_or_default());
        self.table = out;
    }

    /// Remove section `name`; whether it was there.
    pub fn remove_section(&mut self, name: &str) -> bool {
        let gone = self.find(name.as_bytes());
        let was = !gone.is_empty();
        self.replace(gone, &[]);
        self.count -= u16::from(was);
        was
    }

    /// Section names and body sizes, in name order (a name that is not
    /// UTF-8, which no insitu build writes, reads as empty).
    pub fn sections(&self) -> impl Iterator<Item = (&str, usize)> {
        self.entries()
            .map(|e| (crate::prim::utf8::str(e.name).unwrap_or(""), e.body.len()))
    }

    /// Read section `name` with `read` (None if the snapshot has none); a
    /// corruption it finds names the section.
    pub(crate) fn read<T>(
        &self,
        name: &str,
        read: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        let Some(body) = self.section(name) else {
            return Ok(None);
        };
        read(body).map(Some).map_err(|e| match e {
            Error::SnapshotCorrupt { reason } => corrupt(text!("section `{name}`: {reason}")),
            e => e,
        })
    }

    /// The bytes section `name` takes in the table, or where it would go
    /// (an empty range) when it is not there.
    fn find(&self, name: &[u8]) -> core::ops::Range<usize> {
        for e in self.entries() {
            if e.name >= name {
                return e.start..if e.name == name { e.end } else { e.start };
            }
        }
        self.table.len()..self.table.len()
    }

    /// Replace the table's bytes `gone` with `with`.
    fn replace(&mut self, gone: core::ops::Range<usize>, with: &[u8]) {
        let t = &self.table;
        let mut out = Vec::with_capacity(t.len() + with.len());
        out.extend_from_slice(t.get(..gone.start).unwrap_or_default());
        out.extend_from_slice(with);
        out.extend_from_slice(t.get(gone.end..).unwrap_or_default());
        self.table = out;
    }
}

pub(crate) fn corrupt(reason: crate::error::Text) -> Error {
    Error::SnapshotCorrupt { reason }
}

pub(crate) fn put_u16(w: &mut Vec<u8>, v: u16) {
    w.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(w: &mut Vec<u8>, v: u32) {
    w.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_f64(w: &mut Vec<u8>, v: f64) {
    w.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_str(w: &mut Vec<u8>, s: &str) {
    // Callers only write short strings (model versions, names).
    debug_assert!(s.len() <= u16::MAX as usize);
    put_u16(w, s.len() as u16);
    w.extend_from_slice(s.as_bytes());
}

/// A [`Cursor`](crate::prim::cursor::Cursor) whose errors name the part of a
/// snapshot being read.
pub(crate) struct Reader<'a> {
    c: crate::prim::cursor::Cursor<'a>,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader {
            c: crate::prim::cursor::Cursor::new(b),
            what,
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        self.c.take(n).ok_or_else(|| self.early(n))
    }

    /// Bytes read so far.
    pub(crate) fn pos(&self) -> usize {
        self.c.pos()
    }

    /// An unsigned little-endian integer of `n` bytes: every fixed-size
    /// read goes through this one function (a generic array read would be
    /// one copy per size, each with its own error path).
    #[inline(never)]
    fn uint(&mut self, n: usize) -> Result<u64> {
        self.c.uint(n).ok_or_else(|| self.early(n))
    }

    fn early(&self, n: usize) -> Error {
        corrupt(text!(
            "the {} ends early: {n} bytes wanted at byte {}, {} left",
            self.what,
            self.c.pos(),
            self.c.left()
        ))
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        self.uint(1).map(|v| v as u8)
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        self.uint(2).map(|v| v as u16)
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        self.uint(4).map(|v| v as u32)
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        self.uint(8)
    }

    /// A finite f64.
    pub(crate) fn f64(&mut self) -> Result<f64> {
        let v = f64::from_bits(self.uint(8)?);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(corrupt(text!(
                "the {} holds a non-finite number at byte {}",
                self.what,
                self.c.pos() - 8
            )))
        }
    }

    /// A finite f32, widened.
    pub(crate) fn f32(&mut self) -> Result<f64> {
        let v = f32::from_bits(self.uint(4)? as u32);
        if v.is_finite() {
            Ok(f64::from(v))
        } else {
            Err(corrupt(text!(
                "the {} holds a non-finite number at byte {}",
                self.what,
                self.c.pos() - 4
            )))
        }
    }

    /// A string's bytes (u16 length, then the bytes), not checked as UTF-8:
    /// for names that are only compared.
    pub(crate) fn bytes16(&mut self) -> Result<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }

    /// A count of items of at least `item_bytes` each, checked against what
    /// is left so no caller reserves memory for a count the bytes cannot hold.
    pub(crate) fn count(&mut self, item_bytes: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(item_bytes.max(1)) > self.c.left() {
            return Err(corrupt(text!(
                "the {} claims {n} items but has only {} bytes left",
                self.what,
                self.c.left()
            )));
        }
        Ok(n)
    }

    pub(crate) fn finish(&self) -> Result<()> {
        if self.c.left() == 0 {
            Ok(())
        } else {
            Err(corrupt(text!(
                "the {} has {} unread bytes at its end",
                self.what,
                self.c.left()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prim::rng::Rng;

    fn sample() -> Snapshot {
        let mut s = Snapshot::new();
        s.set_section("learner:hero", vec![1, 2, 3, 4, 5]);
        s.set_section("behavior", (0..200u8).collect());
        s.set_section("learner:cta", Vec::new());
        s
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The CRC-32/ISO-HDLC check value from the CRC catalogue.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip_keeps_sections_sorted_and_intact() {
        let s = sample();
        let bytes = s.encode(DEFAULT_MAX_BYTES).unwrap();
        let back = Snapshot::decode(&bytes, DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(back, s);
        let names: Vec<_> = back.sections().map(|(n, _)| n).collect();
        assert_eq!(names, ["behavior", "learner:cta", "learner:hero"]);
        assert_eq!(back.section("learner:hero"), Some(&[1u8, 2, 3, 4, 5][..]));
        assert_eq!(back.section("nope"), None);
        let mut t = back.clone();
        assert!(t.remove_section("behavior"));
        assert!(!t.remove_section("behavior"));
        t.set_section("learner:hero", vec![9]);
        assert_eq!(t.section("learner:hero"), Some(&[9u8][..]));
        // Replacing keeps the count; the table reads as sections built afresh.
        let mut fresh = Snapshot::new();
        fresh.set_section("learner:cta", Vec::new());
        fresh.set_section("learner:hero", vec![9]);
        assert_eq!(t, fresh);
        // A name from parts: the whole name, not a prefix or an extension.
        assert_eq!(
            s.section_parts(b"learner:", b"hero"),
            Some(&[1u8, 2, 3, 4, 5][..])
        );
        assert_eq!(s.section_parts(b"learner:", b"her"), None);
        assert_eq!(s.section_parts(b"learner:", b"heroes"), None);
        assert_eq!(
            s.section_parts(b"learner:hero", b""),
            s.section("learner:hero")
        );
        assert_eq!(s.section_parts(b"", b"behavior"), s.section("behavior"));
    }

    #[test]
    fn every_truncation_is_refused_with_a_code() {
        let bytes = sample().encode(DEFAULT_MAX_BYTES).unwrap();
        for n in 0..bytes.len() {
            let e = Snapshot::decode(&bytes[..n], DEFAULT_MAX_BYTES).unwrap_err();
            let want = if n < 4 {
                "SNAPSHOT_FOREIGN"
            } else {
                "SNAPSHOT_CORRUPT"
            };
            assert_eq!(e.code(), want, "cut at {n}: {e}");
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = sample().encode(DEFAULT_MAX_BYTES).unwrap();
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            let e = Snapshot::decode(&b, DEFAULT_MAX_BYTES).unwrap_err();
            // A flip in the magic makes it foreign; in the version, a newer
            // format (or 0); anywhere else the length or checksum fails.
            assert!(
                matches!(
                    e.code(),
                    "SNAPSHOT_FOREIGN" | "SNAPSHOT_CORRUPT" | "SNAPSHOT_VERSION"
                ),
                "bit {i}: {e}"
            );
            if i >= 64 {
                assert_eq!(e.code(), "SNAPSHOT_CORRUPT", "bit {i}: {e}");
            }
        }
    }

    #[test]
    fn foreign_newer_and_oversized_data_get_their_own_codes() {
        let e = Snapshot::decode(br#"{"some":"other library"}"#, DEFAULT_MAX_BYTES).unwrap_err();
        assert_eq!(e.code(), "SNAPSHOT_FOREIGN");
        assert!(e.to_string().contains("magic"), "{e}");

        let mut newer = sample().encode(DEFAULT_MAX_BYTES).unwrap();
        newer[4] = 2;
        let e = Snapshot::decode(&newer, DEFAULT_MAX_BYTES).unwrap_err();
        assert_eq!(
            e,
            Error::SnapshotVersion {
                found: 2,
                supported: 1
            }
        );

        let bytes = sample().encode(DEFAULT_MAX_BYTES).unwrap();
        let e = Snapshot::decode(&bytes, bytes.len() - 1).unwrap_err();
        assert_eq!(e.code(), "SNAPSHOT_TOO_LARGE");
        let e = sample().encode(bytes.len() - 1).unwrap_err();
        assert_eq!(
            e,
            Error::SnapshotTooLarge {
                bytes: bytes.len(),
                max: bytes.len() - 1
            }
        );
        assert!(sample().encode(bytes.len()).is_ok());
    }

    /// Checksummed but structurally wrong payloads: each refused as corrupt.
    #[test]
    fn well_checksummed_nonsense_is_corrupt() {
        fn seal(payload: &[u8]) -> Vec<u8> {
            let mut w = MAGIC.to_vec();
            put_u16(&mut w, 1);
            put_u16(&mut w, 0);
            put_u32(&mut w, payload.len() as u32);
            put_u32(&mut w, crc32(payload));
            w.extend_from_slice(payload);
            w
        }
        let cases: &[(&[u8], &str)] = &[
            (&[1, 0, 1, b'a', 9, 0, 0, 0], "ends early"),
            (
                &[2, 0, 1, b'b', 0, 0, 0, 0, 1, b'a', 0, 0, 0, 0],
                "out of order",
            ),
            (
                &[2, 0, 1, b'a', 0, 0, 0, 0, 1, b'a', 0, 0, 0, 0],
                "out of order",
            ),
            (&[1, 0, 0, 0, 0, 0, 0], "empty"),
            (&[1, 0, 1, 0xff, 0, 0, 0, 0], "ASCII"),
            (&[0, 0, 7], "unread"),
        ];
        for (payload, want) in cases {
            let e = Snapshot::decode(&seal(payload), DEFAULT_MAX_BYTES).unwrap_err();
            assert_eq!(e.code(), "SNAPSHOT_CORRUPT", "{payload:?}: {e}");
            assert!(e.to_string().contains(want), "{payload:?}: {e}");
        }
        assert!(Snapshot::decode(&seal(&[0, 0]), DEFAULT_MAX_BYTES).is_ok());
    }

    #[test]
    fn seeded_mutations_decode_or_fail_and_never_panic() {
        let bytes = sample().encode(DEFAULT_MAX_BYTES).unwrap();
        let mut rng = Rng::new(41);
        let (mut mutated, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let mut b = bytes.clone();
            for _ in 0..=(rng.next_u64() % 4) {
                let i = (rng.next_u64() % b.len() as u64) as usize;
                match rng.next_u64() % 3 {
                    0 => b[i] = rng.next_u64() as u8,
                    1 => b.truncate(i),
                    _ => b.insert(i, rng.next_u64() as u8),
                }
                if b.is_empty() {
                    break;
                }
            }
            if b == bytes {
                continue; // a byte overwritten with itself
            }
            mutated += 1;
            if Snapshot::decode(&b, DEFAULT_MAX_BYTES).is_err() {
                refused += 1;
            }
        }
        // A random change passes a CRC-32 with probability 2^-32, so over
        // 20,000 changes the chance of one slipping through is about 5e-6.
        assert!(mutated > 19_000, "{mutated}");
        assert_eq!(refused, mutated);
    }
}
