//! Report lines: the JSON-lines input of `aggregate`, and a line reader
//! that never holds more than the line limit in memory.
//!
//! Version 1, one report per line, one of two forms:
//!
//! ```json
//! {"v":1,"task":"shop-hero","period":"2026-12-06","key":"hero","segment":"mobile","measurement":[1,3,0,…]}
//! {"v":1,"task":"shop-hero","period":"2026-12-06","key":"hero","segment":"mobile","nonce":"…","publicShare":"…","leaderShare":"…","helperShare":"…"}
//! ```
//!
//! `measurement` is the plain encoded vector (a site that trusts its own
//! server: not private against that server). The other form carries one
//! Prio3 report whole: the 16-byte report id (`nonce`), the public share
//! and both aggregators' input shares, each base64url (padding optional;
//! the standard alphabet is accepted too), as DAP encodes them. One line
//! per report rather than one per aggregator keeps the embedded
//! aggregator streaming without joining two files; a DAP deployment
//! receives each share encrypted to its aggregator instead.
//! `segment` is optional and must be in the task's allowlist. Unknown
//! fields are refused.

use std::io::BufRead;

use serde::Deserialize;

use crate::error::{Code, Error, Result};

/// A report line as written (see the module docs).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Line {
    /// The line format version, [`crate::measure::FORMAT`].
    pub v: u32,
    /// The task id.
    pub task: String,
    /// The period.
    pub period: String,
    /// The slot or experiment key.
    pub key: String,
    /// The segment label, from the task's allowlist.
    #[serde(default)]
    pub segment: Option<String>,
    /// A plain measurement.
    #[serde(default)]
    pub measurement: Option<Vec<u64>>,
    /// The report id, base64url of 16 bytes.
    #[serde(default)]
    pub nonce: Option<String>,
    /// The Prio3 public share, base64url.
    #[serde(default)]
    pub public_share: Option<String>,
    /// The leader's input share, base64url.
    #[serde(default)]
    pub leader_share: Option<String>,
    /// The helper's input share, base64url.
    #[serde(default)]
    pub helper_share: Option<String>,
}

#[derive(Deserialize)]
struct VersionOnly {
    v: serde_json::Value,
}

impl Line {
    /// Parse one line: [`Code::InvalidUtf8`], [`Code::MalformedJson`]
    /// (syntax, truncation), [`Code::UnsupportedVersion`] or
    /// [`Code::InvalidField`].
    pub fn parse(bytes: &[u8]) -> Result<Line> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::new(Code::InvalidUtf8, format!("the line is not UTF-8: {e}")))?;
        match serde_json::from_str::<Line>(text) {
            Ok(line) if line.v == crate::measure::FORMAT => Ok(line),
            Ok(line) => Err(unsupported(&line.v.to_string())),
            Err(e) if e.is_data() => {
                // A line of another version may have other fields: say so
                // rather than naming the first field this one lacks.
                if let Ok(only) = serde_json::from_str::<VersionOnly>(text) {
                    if only.v != serde_json::json!(crate::measure::FORMAT) {
                        return Err(unsupported(&only.v.to_string()));
                    }
                }
                Err(Error::new(Code::InvalidField, format!("{e}")))
            }
            Err(e) => Err(Error::new(Code::MalformedJson, format!("{e}"))),
        }
    }
}

fn unsupported(v: &str) -> Error {
    Error::new(
        Code::UnsupportedVersion,
        format!("v should be {}, but is {v}", crate::measure::FORMAT),
    )
}

/// Decode base64url or standard base64, padding optional.
/// [`Code::BadEncoding`] names the field.
pub fn base64(field: &str, text: &str) -> Result<Vec<u8>> {
    let bad = |why: &str| Error::new(Code::BadEncoding, format!("{field} is not base64: {why}"));
    let digits = text.trim_end_matches('=');
    if text.len() - digits.len() > 2 {
        return Err(bad("too much padding"));
    }
    if digits.len() % 4 == 1 {
        return Err(bad("a length of 4n+1 digits"));
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let (mut acc, mut n) = (0u32, 0u32);
    for (i, c) in digits.bytes().enumerate() {
        let d = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return Err(bad(&format!("byte {c:#04x} at {i}"))),
        };
        acc = (acc << 6) | d as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((acc >> n) as u8);
            acc &= (1 << n) - 1;
        }
    }
    Ok(out)
}

/// Encode base64url without padding (for tests and simulations).
pub fn to_base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, b)| a | ((*b as u32) << (16 - 8 * i)));
        for i in 0..=c.len() {
            s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    s
}

/// Reads lines of at most `max` bytes (without the newline) into a reused
/// buffer; a longer line is skipped to its end and reported as
/// [`Code::LineTooLong`], so memory stays bounded whatever the input.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
    /// 1-based number of the line last returned.
    pub number: u64,
}

impl<R: BufRead> LineReader<R> {
    /// A reader of lines up to `max` bytes.
    pub fn new(inner: R, max: usize) -> LineReader<R> {
        LineReader {
            inner,
            max,
            buf: Vec::new(),
            number: 0,
        }
    }

    /// The next line: `None` at the end; `Some(Err)` with
    /// [`Code::LineTooLong`] for an oversized line (the reader has moved
    /// past it) or [`Code::Io`] for a read error. Empty lines are skipped.
    pub fn next_line(&mut self) -> Option<Result<&[u8]>> {
        loop {
            self.buf.clear();
            let mut over = false;
            let mut any = false;
            loop {
                let chunk = match self.inner.fill_buf() {
                    Ok(c) => c,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Some(Err(Error::new(Code::Io, format!("reading: {e}")))),
                };
                if chunk.is_empty() {
                    break;
                }
                any = true;
                let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
                    Some(i) => (i, true),
                    None => (chunk.len(), false),
                };
                if !over {
                    if self.buf.len() + take > self.max {
                        over = true;
                        self.buf.clear();
                    } else {
                        self.buf.extend_from_slice(&chunk[..take]);
                    }
                }
                self.inner.consume(take + done as usize);
                if done {
                    break;
                }
            }
            if !any {
                return None;
            }
            self.number += 1;
            if over {
                return Some(Err(Error::new(
                    Code::LineTooLong,
                    format!(
                        "line {} is over the limit of {} bytes",
                        self.number, self.max
                    ),
                )));
            }
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            return Some(Ok(&self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_both_alphabets() {
        for n in 0..40usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8 ^ 0xa5).collect();
            let s = to_base64(&bytes);
            assert_eq!(base64("x", &s).unwrap(), bytes);
            let std = s.replace('-', "+").replace('_', "/");
            assert_eq!(base64("x", &std).unwrap(), bytes);
        }
        assert_eq!(base64("x", "aGk=").unwrap(), b"hi");
        assert_eq!(base64("nonce", "a*").unwrap_err().code(), "BAD_ENCODING");
        assert_eq!(base64("nonce", "abcde").unwrap_err().code(), "BAD_ENCODING");
    }

    #[test]
    fn long_lines_are_skipped_not_held() {
        let input = format!("short\n{}\nafter\nlast", "x".repeat(100));
        let mut r = LineReader::new(std::io::BufReader::with_capacity(8, input.as_bytes()), 10);
        assert_eq!(r.next_line().unwrap().unwrap(), b"short");
        assert_eq!(r.next_line().unwrap().unwrap_err().code(), "LINE_TOO_LONG");
        assert_eq!(r.next_line().unwrap().unwrap(), b"after");
        assert_eq!(r.next_line().unwrap().unwrap(), b"last");
        assert!(r.next_line().is_none());
        assert!(r.buf.capacity() < 64);
    }
}
