//! The text frame around every value the page store writes to localStorage:
//!
//! ```text
//! insitu1;<CRC-32, 8 lowercase hex digits>;<saved at, ms>;<generation>;<payload>
//! ```
//!
//! The CRC-32 (IEEE) covers everything after its own field: the UTF-16 code
//! units of `<saved at>;<generation>;<payload>`, each as its low byte then its
//! high byte (what a JS string is). The saved time gives the value its expiry
//! before the payload is read; the generation orders writes across tabs (see
//! `src/wasm/store.mjs`). Snapshot payloads are base64 (standard alphabet,
//! padded) of the binary container in `snapshot.rs`, which has its own CRC.
//!
//! This lives in the core rather than in JS so that reading and writing a
//! frame costs the same on a page's first load as later: JS runs cold in the
//! interpreter on first load, where checking a 10 K-character value took
//! about 2 ms in Chromium; compiled wasm takes tens of microseconds.

use crate::prelude::*;

use crate::prim::hash::crc32_utf16;
use crate::{Error, Result};

/// The tag of the one frame layout this build writes and reads.
pub const FRAME_TAG: &str = "insitu1";

/// A frame read by [`open`]: its fields and the payload, not yet decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame<'a> {
    /// When the value was written (ms since the epoch, the store's clock).
    pub saved_at: f64,
    /// The write's generation (0 for values outside the merge protocol).
    pub generation: u64,
    /// Everything after the fourth `;`.
    pub payload: &'a str,
}

/// CRC-32 of a string's UTF-16 code units, low byte first.
fn crc_utf16(text: &str) -> u32 {
    crc32_utf16(text.as_bytes())
}

/// Frame `payload`, saved at `saved_at` (ms, kept to the millisecond) with
/// `generation`. Refuses a saved time that is negative or not finite and a
/// generation JS cannot hold exactly.
pub fn seal(saved_at: f64, generation: u64, payload: &str) -> Result<String> {
    // Whole milliseconds, written as an integer: formatting or parsing an
    // f64 in text would add about 30 KB of gzipped float code to the .wasm.
    if !(0.0..MAX_SAFE).contains(&saved_at) {
        return Err(Error::option("now", "should return a time in ms ≥ 0"));
    }
    if generation as f64 >= MAX_SAFE {
        return Err(Error::option("generation", "should be at most 2^53 - 1"));
    }
    let mut body = String::with_capacity(40 + payload.len());
    crate::prim::digits::push_decimal(&mut body, saved_at as u64);
    body.push(';');
    crate::prim::digits::push_decimal(&mut body, generation);
    body.push(';');
    body.push_str(payload);
    let crc = crc_utf16(&body);
    let mut out = String::with_capacity(FRAME_TAG.len() + 10 + body.len());
    out.push_str(FRAME_TAG);
    out.push(';');
    for k in (0..8).rev() {
        out.push(char::from_digit((crc >> (4 * k)) & 15, 16).unwrap_or('0'));
    }
    out.push(';');
    out.push_str(&body);
    Ok(out)
}

/// Read a frame: `SNAPSHOT_FOREIGN` when it is not ours, `SNAPSHOT_VERSION`
/// when a newer build framed it, `SNAPSHOT_CORRUPT` when the checksum or a
/// field fails.
pub fn open(raw: &str) -> Result<Frame<'_>> {
    let f = open_bytes(raw.as_bytes())?;
    Ok(Frame {
        saved_at: f.saved_at,
        generation: f.generation,
        // Every cut is at an ASCII `;`, so this is a character boundary.
        payload: raw.get(f.payload..).unwrap_or(""),
    })
}

/// A frame's fields as [`open_bytes`] reads them.
pub(crate) struct Opened {
    pub(crate) saved_at: f64,
    pub(crate) generation: u64,
    /// Where the payload starts.
    pub(crate) payload: usize,
}

/// [`open`] on the frame's UTF-8 bytes (checked as UTF-8 by the caller;
/// other bytes fail some check, never panic).
pub(crate) fn open_bytes(b: &[u8]) -> Result<Opened> {
    // Parsed as bytes, by hand: `str` splitting, slicing and number parsing
    // bring in panic and search code worth several KB of .wasm.
    let mut cut = [b.len(); 4]; // the first four `;`
    let mut found = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b';' {
            if let Some(k) = cut.get_mut(found) {
                *k = i;
            }
            found += 1;
            if found == 4 {
                break;
            }
        }
    }
    let [c0, c1, c2, c3] = cut;
    let tag = b.get(..c0).unwrap_or(b);
    if tag != FRAME_TAG.as_bytes() {
        let version = (tag.get(6..))
            .filter(|_| tag.starts_with(b"insitu"))
            .and_then(|v| number(v, 10));
        return Err(match version {
            Some(v) if v > FRAME_VERSION => Error::SnapshotVersion {
                found: crate::error::figure(v.min(u64::from(u32::MAX)) as u32),
                supported: crate::error::figure(FRAME_VERSION as u32),
            },
            _ => Error::SnapshotForeign {
                reason: text!("the stored value does not start with `{FRAME_TAG};`"),
            },
        });
    }
    let corrupt = |reason: &str| Error::SnapshotCorrupt {
        reason: text!("the storage frame {reason}"),
    };
    if found < 4 {
        return Err(corrupt("is truncated"));
    }
    let field = |from: usize, to: usize| b.get(from + 1..to).unwrap_or_default();
    let crc = field(c0, c1);
    let body = b.get(c1 + 1..).unwrap_or_default();
    if crc.len() != 8 || number(crc, 16) != Some(u64::from(crc32_utf16(body))) {
        return Err(corrupt("fails its checksum"));
    }
    let saved_at = parse_ms(field(c1, c2)).ok_or_else(|| corrupt("has no valid saved time"))?;
    let generation = number(field(c2, c3), 10)
        .filter(|&g| (g as f64) < MAX_SAFE)
        .ok_or_else(|| corrupt("has no valid generation"))?;
    Ok(Opened {
        saved_at,
        generation,
        payload: c3 + 1,
    })
}

/// The frame layout this build writes: the 1 of `insitu1`.
const FRAME_VERSION: u64 = 1;

/// 2^53: saved times and generations stay below it (JS's safe integers).
const MAX_SAFE: f64 = 9_007_199_254_740_992.0;

/// 1 to 16 digits in `radix`, or None.
fn number(digits: &[u8], radix: u32) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &c| {
        Some(n * u64::from(radix) + u64::from(char::from(c).to_digit(radix)?))
    })
}

/// A saved time: digits and an optional fraction (which builds before this
/// one wrote for fractional clocks), as whole ms.
fn parse_ms(text: &[u8]) -> Option<f64> {
    let dot = text.iter().position(|&c| c == b'.');
    let whole = text.get(..dot.unwrap_or(text.len()))?;
    if let Some(d) = dot {
        number(text.get(d + 1..)?, 10)?;
    }
    let ms = number(whole, 10)? as f64;
    (ms < MAX_SAFE).then_some(ms)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as `btoa` writes it.
pub fn to_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

/// Decode standard padded base64; `SNAPSHOT_CORRUPT` for anything else.
pub fn from_base64(text: &str) -> Result<Vec<u8>> {
    let mut b = text.as_bytes().to_vec();
    let n = base64_in_place(&mut b, 0)?;
    b.truncate(n);
    Ok(b)
}

/// Decode the standard padded base64 in `buf[from..]` into `buf[..n]`, in
/// place (each 4 digits become 3 bytes, so the output never overtakes the
/// input); `n`. The bits of a last digit before padding that make no
/// whole byte are ignored, as `atob` does.
pub(crate) fn base64_in_place(buf: &mut [u8], from: usize) -> Result<usize> {
    let bad = |why: crate::error::Text| Error::SnapshotCorrupt {
        reason: text!("the payload is not base64: {why}"),
    };
    let text = buf.get(from..).unwrap_or_default();
    if text.len() % 4 != 0 {
        return Err(bad("its length is not a multiple of 4".into()));
    }
    let pad = text.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return Err(bad("it has more than two `=`".into()));
    }
    let end = buf.len() - pad;
    let (mut acc, mut bits, mut out) = (0u32, 0u32, 0usize);
    for i in from..end {
        let c = buf.get(i).copied().unwrap_or(0);
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(bad(text!("byte {} is {c:#04x}", i - from))),
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if let Some(o) = buf.get_mut(out) {
                *o = (acc >> bits) as u8;
            }
            out += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prim::rng::Rng;

    #[test]
    fn crc_covers_utf16_code_units_low_byte_first() {
        // Reference: bytes of "ab€" as UTF-16LE fed to the standard CRC-32.
        let utf16le = [0x61, 0, 0x62, 0, 0xac, 0x20];
        assert_eq!(crc_utf16("ab€"), crate::crc32(&utf16le));
        assert_eq!(crc_utf16(""), 0);
    }

    #[test]
    fn sealed_frames_open_to_the_same_fields() {
        for (t, g, p) in [
            (0.0, 0, ""),
            (1.7e12, 42, "QUJD"),
            (3.0, 9, "{\"a\":\"é;\"}"),
        ] {
            let raw = seal(t, g, p).unwrap();
            assert!(raw.starts_with("insitu1;"));
            let f = open(&raw).unwrap();
            assert_eq!((f.saved_at, f.generation, f.payload), (t, g, p));
        }
        // A fractional clock is kept to the millisecond; older builds wrote
        // the fraction, which still reads.
        assert_eq!(
            open(&seal(1.7e12 + 0.75, 0, "").unwrap()).unwrap().saved_at,
            1.7e12
        );
        let old = format!("insitu1;{:08x};12.5;0;x", crc_utf16("12.5;0;x"));
        assert_eq!(open(&old).unwrap().saved_at, 12.0);
        assert_eq!(
            seal(1_700_000_000_000.0, 3, "x").unwrap(),
            format!(
                "insitu1;{:08x};1700000000000;3;x",
                crc_utf16("1700000000000;3;x")
            )
        );
        assert_eq!(seal(f64::NAN, 0, "").unwrap_err().code(), "INVALID_OPTION");
        assert_eq!(
            seal(f64::INFINITY, 0, "").unwrap_err().code(),
            "INVALID_OPTION"
        );
        assert_eq!(seal(-1.0, 0, "").unwrap_err().code(), "INVALID_OPTION");
        assert_eq!(seal(0.0, 1 << 53, "").unwrap_err().code(), "INVALID_OPTION");
    }

    #[test]
    fn bad_frames_get_their_codes() {
        let good = seal(5.0, 1, "QUJD").unwrap();
        let code = |raw: &str| open(raw).unwrap_err().code();
        assert_eq!(code(""), "SNAPSHOT_FOREIGN");
        assert_eq!(code("{\"theme\":\"dark\"}"), "SNAPSHOT_FOREIGN");
        assert_eq!(code("insitu;x"), "SNAPSHOT_FOREIGN");
        assert_eq!(code("insitu2;00000000;1;1;x"), "SNAPSHOT_VERSION");
        assert_eq!(code("insitu0;00000000;1;1;x"), "SNAPSHOT_FOREIGN");
        assert_eq!(code("insitu1;00"), "SNAPSHOT_CORRUPT");
        // Every truncation and every changed character fails.
        for n in 0..good.len() {
            assert!(open(&good[..n]).is_err(), "truncated to {n}");
        }
        for i in "insitu1;".len()..good.len() {
            let mut b = good.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let changed = String::from_utf8(b).unwrap();
            assert_eq!(code(&changed), "SNAPSHOT_CORRUPT", "char {i} of {changed}");
        }
        // A right checksum over fields that do not parse.
        for body in [
            "x;1;p",
            "5;-1;p",
            "5;9007199254740992;p",
            "inf;1;p",
            "1e3;1;p",
            ";1;p",
            "1.;1;p",
            "+5;1;p",
            "-5;1;p",
            "5.x;1;p",
            "99999999999999999;1;p",
            "5;1x;p",
        ] {
            let raw = format!("insitu1;{:08x};{body}", crc_utf16(body));
            assert_eq!(code(&raw), "SNAPSHOT_CORRUPT", "{body}");
        }
    }

    #[test]
    fn base64_round_trips_and_matches_the_standard() {
        assert_eq!(to_base64(b""), "");
        assert_eq!(to_base64(b"f"), "Zg==");
        assert_eq!(to_base64(b"fo"), "Zm8=");
        assert_eq!(to_base64(b"foobar"), "Zm9vYmFy");
        let mut rng = Rng::new(7);
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            assert_eq!(from_base64(&to_base64(&bytes)).unwrap(), bytes);
        }
        for bad in [
            "Zg=", "Z===", "Zg=a", "Z=g=", "Zm9v!mFy", "Zg==Zg==", " Zg=",
        ] {
            assert_eq!(
                from_base64(bad).unwrap_err().code(),
                "SNAPSHOT_CORRUPT",
                "{bad}"
            );
        }
    }

    /// The decoder before the in-place one (whole groups, then the padded
    /// last group with its `=` read as `A`), to compare against.
    fn reference_base64(text: &str) -> Option<Vec<u8>> {
        let b = text.as_bytes();
        let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
        if b.len() % 4 != 0 || pad > 2 {
            return None;
        }
        let mut digits = b[..b.len() - pad].to_vec();
        digits.resize(b.len(), b'A');
        let mut out = Vec::new();
        for quad in digits.chunks(4) {
            let mut n = 0u32;
            for &c in quad {
                n = n << 6 | ALPHABET.iter().position(|&a| a == c)? as u32;
            }
            out.extend_from_slice(&n.to_be_bytes()[1..]);
        }
        out.truncate(out.len() - pad);
        Some(out)
    }

    #[test]
    fn in_place_base64_decodes_as_before() {
        let mut rng = Rng::new(19);
        for i in 0..20_000 {
            let len = (rng.next_u64() % 24) as usize;
            let mut text: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(rng.next_u64() % 64) as usize])
                .collect();
            // Some padding, and some bytes that are not digits.
            let pad = (rng.next_u64() % 3) as usize;
            text.resize(text.len() + pad, b'=');
            if i % 5 == 0 && !text.is_empty() {
                let k = (rng.next_u64() % text.len() as u64) as usize;
                text[k] = b"=*-_ \x80"[(rng.next_u64() % 6) as usize];
            }
            let text = String::from_utf8_lossy(&text).into_owned();
            let got = from_base64(&text).ok();
            assert_eq!(got, reference_base64(&text), "{text:?}");
            // In place after a prefix, as a frame's payload is decoded.
            let mut buf = format!("insitu1;x;{text}").into_bytes();
            let n = base64_in_place(&mut buf, 10).ok();
            assert_eq!(n.map(|n| buf[..n].to_vec()), got, "{text:?}");
        }
    }
}
