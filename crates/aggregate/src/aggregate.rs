//! `aggregate`: stream report lines, check and verify each, sum per
//! segment, then release the sums with noise.
//!
//! Memory is constant in the number of reports: one running sum per segment
//! (plain, and both aggregators' Prio3 shares) and one line buffer of at
//! most the line limit. A refused line is counted by its code and skipped;
//! it never changes a sum.

use std::collections::BTreeMap;
use std::io::BufRead;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Code, Error, Result};
use crate::line::{base64, Line, LineReader};
use crate::measure::{Group, Spec, FORMAT};
use crate::noise::{self, Mechanism};
use crate::prio::{Shares, Verifier, NONCE_BYTES, VERIFY_KEY_BYTES};
use crate::task::{Task, TaskFile};

/// How many refused lines the summary quotes.
pub const MAX_EXAMPLES: usize = 20;

/// What a run read: exact counts, for the operator (who holds the input
/// anyway). **Not private: do not publish it** with the sums.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Lines read (empty lines are not counted).
    pub lines: u64,
    /// Plain measurements summed.
    pub plain: u64,
    /// Prio3 reports verified and summed.
    pub prio: u64,
    /// Lines refused, by error code.
    pub refused: BTreeMap<&'static str, u64>,
    /// The first refused lines.
    pub examples: Vec<Example>,
}

/// A refused line, as the summary quotes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    /// Its 1-based line number.
    pub line: u64,
    /// The error code.
    pub code: &'static str,
    /// The error message.
    pub message: String,
}

struct Bucket {
    plain: Vec<u64>,
    shares: Shares,
}

/// The streaming aggregator of one task.
pub struct Aggregator {
    task: Task,
    verifier: Verifier,
    buckets: Vec<Bucket>,
    max_line: usize,
    summary: Summary,
}

impl Aggregator {
    /// An aggregator for `task`. `verify_key` must be secret from clients
    /// (see [`Verifier::new`]); `max_line` is the line limit in bytes
    /// (`None`: [`default_max_line`]).
    pub fn new(
        task: Task,
        verify_key: [u8; VERIFY_KEY_BYTES],
        max_line: Option<usize>,
    ) -> Result<Aggregator> {
        let verifier = Verifier::new(&task.spec, verify_key)?;
        let max_line = match max_line {
            Some(m) => m,
            None => default_max_line(&task.spec)?,
        };
        let buckets = task
            .buckets()
            .iter()
            .map(|_| Bucket {
                plain: vec![0; task.spec.len()],
                shares: verifier.empty(),
            })
            .collect();
        Ok(Aggregator {
            task,
            verifier,
            buckets,
            max_line,
            summary: Summary::default(),
        })
    }

    /// The line limit in force.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Read every line of `input`, summing the valid reports and counting
    /// the others. Only a read error stops it ([`Code::Io`]).
    pub fn read<R: BufRead>(&mut self, input: R) -> Result<()> {
        let mut reader = LineReader::new(input, self.max_line);
        while let Some(next) = reader.next_line() {
            let result = match next {
                Ok(bytes) => self.line(bytes),
                Err(e) if e.code == Code::Io => return Err(e),
                Err(e) => Err(e),
            };
            self.summary.lines += 1;
            if let Err(e) = result {
                self.refuse(reader.number, e);
            }
        }
        Ok(())
    }

    fn refuse(&mut self, number: u64, e: Error) {
        *self.summary.refused.entry(e.code()).or_default() += 1;
        if self.summary.examples.len() < MAX_EXAMPLES {
            self.summary.examples.push(Example {
                line: number,
                code: e.code(),
                message: e.message,
            });
        }
    }

    /// Check and add one line (without its newline). On error nothing is
    /// summed and the caller counts it.
    pub fn line(&mut self, bytes: &[u8]) -> Result<()> {
        let line = Line::parse(bytes)?;
        let f = &self.task.file;
        for (name, got, want) in [
            ("task", &line.task, &f.task),
            ("period", &line.period, &f.period),
            ("key", &line.key, &f.key),
        ] {
            if got != want {
                return Err(Error::new(
                    Code::TaskMismatch,
                    format!("{name} should be `{want}`, but is `{}`", clip(got)),
                ));
            }
        }
        let bucket = match (&line.segment, f.segments.is_empty()) {
            (None, true) => 0,
            (Some(s), false) => f.segments.iter().position(|x| x == s).ok_or_else(|| {
                Error::new(
                    Code::UnknownSegment,
                    format!("segment `{}` is not in the allowlist", clip(s)),
                )
            })?,
            (Some(s), true) => {
                return Err(Error::new(
                    Code::UnknownSegment,
                    format!("segment `{}` given, but the task declares none", clip(s)),
                ))
            }
            (None, false) => {
                return Err(Error::new(
                    Code::UnknownSegment,
                    "segment is required: the task declares segments",
                ))
            }
        };
        let prio = (
            &line.nonce,
            &line.public_share,
            &line.leader_share,
            &line.helper_share,
        );
        match (&line.measurement, prio) {
            (Some(m), (None, None, None, None)) => {
                check_plain(&self.task.spec, m)?;
                let sums = &mut self.buckets[bucket].plain;
                // Checked whole before adding, so a refused line adds nothing.
                if sums.iter().zip(m).any(|(s, x)| s.checked_add(*x).is_none()) {
                    return Err(Error::new(Code::OutOfRange, "a sum would overflow 64 bits"));
                }
                for (s, x) in sums.iter_mut().zip(m) {
                    *s += *x;
                }
                self.summary.plain += 1;
                Ok(())
            }
            (None, (Some(n), Some(p), Some(l), Some(h))) => {
                let nonce: [u8; NONCE_BYTES] = base64("nonce", n)?.try_into().map_err(|v: Vec<u8>| {
                    Error::new(
                        Code::BadEncoding,
                        format!("nonce should be {NONCE_BYTES} bytes, but is {}", v.len()),
                    )
                })?;
                let (p, l, h) = (
                    base64("publicShare", p)?,
                    base64("leaderShare", l)?,
                    base64("helperShare", h)?,
                );
                self.verifier
                    .add(&mut self.buckets[bucket].shares, &nonce, &p, [&l, &h])?;
                self.summary.prio += 1;
                Ok(())
            }
            _ => Err(Error::new(
                Code::InvalidField,
                "a line holds either `measurement`, or all of `nonce`, `publicShare`, `leaderShare` and `helperShare`",
            )),
        }
    }

    /// What was read so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The exact sums per segment bucket (plain plus unsharded Prio3),
    /// and the summary. Exact sums are not private: release them only
    /// through [`release`].
    pub fn finish(self) -> Result<(Task, Vec<Vec<u64>>, Summary)> {
        let mut out = Vec::with_capacity(self.buckets.len());
        for b in self.buckets {
            let prio = self.verifier.unshard(b.shares)?;
            let mut sums = b.plain;
            for (s, x) in sums.iter_mut().zip(prio) {
                let x = u64::try_from(x)
                    .ok()
                    .and_then(|x| s.checked_add(x))
                    .ok_or_else(|| Error::new(Code::OutOfRange, "a sum would overflow 64 bits"))?;
                *s = x;
            }
            out.push(sums);
        }
        Ok((self.task, out, self.summary))
    }
}

/// At most 40 characters of a value for an error message.
fn clip(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// A plain measurement must be what [`crate::measure::encode`] could
/// produce: the right length, `reports` 1, every group within its L1 cap
/// (so within `2^bits`). [`Code::WrongLength`], [`Code::OutOfRange`].
pub fn check_plain(spec: &Spec, m: &[u64]) -> Result<()> {
    crate::measure::check_len("measurement", m.len(), spec.len())?;
    for g in spec.groups() {
        let r = spec.range(g);
        let cap = spec.cap(g);
        let l1 = m[r.clone()].iter().try_fold(0u64, |a, x| a.checked_add(*x));
        if g == Group::Reports && m[0] != 1 {
            return Err(Error::new(
                Code::OutOfRange,
                format!("measurement[0] (reports) should be 1, but is {}", m[0]),
            ));
        }
        if l1.map_or(true, |s| s > cap) {
            let at = r.start + m[r].iter().position(|x| *x > cap).unwrap_or(0);
            return Err(Error::new(
                Code::OutOfRange,
                format!(
                    "the {} group (from entry {at}) sums to more than its bound {cap}",
                    g.name()
                ),
            ));
        }
    }
    Ok(())
}

/// The default line limit: the encoded size of a Prio3 report of this
/// spec (measured by sharding a zero measurement) in base64, or a plain
/// measurement of 20-digit entries, whichever is larger, plus 4 KiB for
/// the other fields.
pub fn default_max_line(spec: &Spec) -> Result<usize> {
    let vdaf = crate::prio::vdaf(spec)?;
    let mut zero = vec![0u64; spec.len()];
    zero[0] = 1;
    let (p, [l, h]) = crate::prio::shard(&vdaf, &zero, &[0; NONCE_BYTES])?;
    let prio = (p.len() + l.len() + h.len() + NONCE_BYTES) * 4 / 3 + 16;
    let plain = spec.len() * 21;
    Ok(prio.max(plain) + 4096)
}

/// The released sums of one segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentSums {
    /// The segment label (`null`: the task declares no segments).
    pub segment: Option<String>,
    /// The noisy integer sums, in the measurement's order.
    pub sums: Vec<i64>,
}

/// The noise of a release, as the sums file states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoiseFile {
    /// `"discrete-laplace"` or `"none"`.
    pub mechanism: String,
    /// ε per device, task and period (absent without noise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// Per group, the discrete Laplace parameter `t` in encoded units.
    #[serde(default)]
    pub scale: BTreeMap<String, f64>,
}

impl NoiseFile {
    /// The mechanism it states. [`Code::InvalidSums`] otherwise.
    pub fn mechanism(&self) -> Result<Mechanism> {
        match (self.mechanism.as_str(), self.epsilon) {
            ("none", _) => Ok(Mechanism::None),
            ("discrete-laplace", Some(e)) if e.is_finite() && e > 0.0 => {
                Ok(Mechanism::DiscreteLaplace { epsilon: e })
            }
            (m, e) => Err(Error::new(
                Code::InvalidSums,
                format!("noise: mechanism `{m}` with epsilon {e:?} is not one this build writes"),
            )),
        }
    }
}

/// The sums file: the output of `aggregate`, the input of `readout` and
/// `model`. In production it can be written from a DAP collector's result
/// (the noisy integer vector per segment task) with the same task file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SumsFile {
    /// Must be [`FORMAT`].
    pub format: u32,
    /// The task the sums are of.
    pub spec: TaskFile,
    /// The noise added.
    pub noise: NoiseFile,
    /// One entry per segment bucket.
    pub segments: Vec<SegmentSums>,
}

impl SumsFile {
    /// Read and check a sums file: the task validates and every segment's
    /// sums have the spec's length. [`Code::InvalidSums`].
    pub fn parse(text: &str) -> Result<(SumsFile, Task, Mechanism)> {
        let f: SumsFile = serde_json::from_str(text)
            .map_err(|e| Error::new(Code::InvalidSums, format!("sums file: {e}")))?;
        if f.format != FORMAT {
            return Err(Error::new(
                Code::InvalidSums,
                format!("format should be {FORMAT}, but is {}", f.format),
            ));
        }
        let task = f
            .spec
            .clone()
            .check()
            .map_err(|e| Error::new(Code::InvalidSums, e.message))?;
        let mech = f.noise.mechanism()?;
        if f.segments.is_empty() {
            return Err(Error::new(Code::InvalidSums, "segments is empty"));
        }
        for (i, s) in f.segments.iter().enumerate() {
            if s.sums.len() != task.spec.len() {
                return Err(Error::new(
                    Code::InvalidSums,
                    format!(
                        "segments[{i}].sums should have {} entries, but has {}",
                        task.spec.len(),
                        s.sums.len()
                    ),
                ));
            }
        }
        Ok((f, task, mech))
    }
}

/// Add noise to each segment's exact sums and build the sums file. The
/// noise is drawn in order (segments, then entries), so a seeded `rng`
/// reproduces the release.
pub fn release<R: Rng + ?Sized>(
    task: &Task,
    exact: &[Vec<u64>],
    mech: Mechanism,
    rng: &mut R,
) -> Result<SumsFile> {
    let buckets = task.buckets();
    if exact.len() != buckets.len() || exact.iter().any(|s| s.len() != task.spec.len()) {
        return Err(Error::new(
            Code::InvalidSums,
            format!(
                "release needs {} segments of {} sums, one per bucket of the task",
                buckets.len(),
                task.spec.len()
            ),
        ));
    }
    let mut segments = Vec::with_capacity(exact.len());
    for (label, sums) in buckets.into_iter().zip(exact) {
        let mut noisy = sums
            .iter()
            .map(|x| i64::try_from(*x))
            .collect::<std::result::Result<Vec<i64>, _>>()
            .map_err(|_| Error::new(Code::OutOfRange, "a sum is over 2^63"))?;
        noise::add(rng, &task.spec, &mech, &mut noisy);
        segments.push(SegmentSums {
            segment: label,
            sums: noisy,
        });
    }
    let (name, epsilon) = match mech {
        Mechanism::None => ("none", None),
        Mechanism::DiscreteLaplace { epsilon } => ("discrete-laplace", Some(epsilon)),
    };
    let scale = task
        .spec
        .groups()
        .map(|g| (g.name().to_owned(), mech.scale(&task.spec, g)))
        .collect();
    Ok(SumsFile {
        format: FORMAT,
        spec: task.file.clone(),
        noise: NoiseFile {
            mechanism: name.to_owned(),
            epsilon,
            scale,
        },
        segments,
    })
}

/// A DAP collector's result, as `noise` reads it: the exact integer sums
/// per segment (one DAP task per segment), in the task file's order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectedFile {
    segments: Vec<CollectedSegment>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectedSegment {
    segment: Option<String>,
    sums: Vec<u64>,
}

/// Read a collector's exact sums for `task` (the input of `noise`):
/// `{"segments": [{"segment": "desktop", "sums": [...]}, ...]}`, one entry
/// per segment bucket in the task's order. [`Code::InvalidSums`].
pub fn collected(task: &Task, text: &str) -> Result<Vec<Vec<u64>>> {
    let f: CollectedFile = serde_json::from_str(text)
        .map_err(|e| Error::new(Code::InvalidSums, format!("collected sums: {e}")))?;
    let buckets = task.buckets();
    if f.segments.len() != buckets.len() {
        return Err(Error::new(
            Code::InvalidSums,
            format!(
                "collected sums should have {} segments, but have {}",
                buckets.len(),
                f.segments.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(buckets.len());
    for (i, (s, want)) in f.segments.into_iter().zip(buckets).enumerate() {
        if s.segment != want || s.sums.len() != task.spec.len() {
            return Err(Error::new(
                Code::InvalidSums,
                format!(
                    "segments[{i}] should be {want:?} with {} sums, but is {:?} with {}",
                    task.spec.len(),
                    s.segment,
                    s.sums.len()
                ),
            ));
        }
        out.push(s.sums);
    }
    Ok(out)
}
