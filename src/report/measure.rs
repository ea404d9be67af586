//! The measurement: what one report holds, and how it becomes the vector of
//! bounded integers that a Prio3 `SumVec` sums. The one encoding of the
//! device (a slot's [`Tally`](super::Tally) at the end of its period) and of
//! the aggregator (`insitu-aggregate`, which checks, sums and decodes with
//! it).
//!
//! # What a report holds
//!
//! One report per device, per period, per slot or experiment (the task).
//! Per variant `k` of `K`, over the model's `d = 2^bits` hashed slots:
//!
//! | group | entries | what | per-entry range | L1 bound per report |
//! |---|---|---|---|---|
//! | `reports` | 1 | always 1: the report itself | 1 | 1 |
//! | `decisions` | K | decisions made for variant k | integer | `bounds.decisions` |
//! | `exposures` | K | exposures of variant k | integer | `bounds.exposures` |
//! | `rewards` | K | sum of rewards (each in [0, 1]) of variant k | [0, b] | `bounds.rewards` |
//! | `xy` | 2Kd | X'y of variant k: Σ reward · x over its updates, split by sign | [-b, b] | `bounds.xy` |
//! | `xx` | Kd | the diagonal of X'X of variant k: Σ x_i² | [0, b] | `bounds.xx` |
//!
//! Every bound is an L1 bound on the whole group of one report (across
//! variants and slots), which is what calibrates the noise: one device's
//! report moves each group's sums by at most its bound, whatever `K` and `d`.
//!
//! **Why only the diagonal of X'X.** A full X'X per variant is symmetric,
//! `d(d+1)/2` numbers: 2,080 at d = 64, 528 at d = 32, against `d` for the
//! diagonal (and `d` for X'y). The diagonal keeps each slot's own evidence
//! (how often and how strongly it was seen) and loses the co-occurrence of
//! slots: a model built from it treats slots as independent, so two slots
//! that always appear together (a namespace's value and its interaction
//! with the variant, say) both take credit for the same reward. The
//! posterior means are then too large by up to the number of slots active
//! per row, and their variances too small, where features are correlated.
//!
//! # The encoding
//!
//! Counts are encoded as they are (scale 1). Real values are fixed point
//! with one scale `s` (units per 1.0): `round(x · s)`, or `trunc(x · s)`
//! for the whole group when rounding would take its L1 norm over its bound.
//! The resolution is `1/s` per entry.
//!
//! A signed value (X'y) is two entries, its positive part and its negative
//! part (`x⁺ = max(x, 0)`, `x⁻ = max(-x, 0)`), not one entry with an
//! offset. The issue asked for offsets; two parts are better for central
//! noise on three counts: the decoded sum needs no count of reports (the
//! exact count is not private, and a noisy one multiplies its noise by
//! `offset · s`), the L1 norm of the encoded group is `‖X'y‖₁` rather than
//! `2 · b` per entry, so the group bound holds whatever `d`, and no entry
//! is spent on a zero that is really `-b`. The cost is `Kd` more entries.
//!
//! Before encoding, each value is clipped to its range, then a group whose
//! L1 norm is over its bound is scaled down to it. NaN and ±infinity are
//! refused ([`Refusal::NonFinite`]), never clipped: they are a bug or an
//! attack, and the ledger should say so. Every entry lies in `[0, 2^bits)`
//! with `bits` the fewest bits that hold the largest group cap (see
//! [`Spec::bits`]): the measurement of `Prio3SumVec(bits, length)` with
//! `length` = [`Spec::len`].
//!
//! The order of the entries: `reports`, `decisions[K]`, `exposures[K]`,
//! `rewards[K]`, `xy⁺[K·d]`, `xy⁻[K·d]`, `xx[K·d]`; within the last three,
//! variant-major (`k · d + i`). With `slots = 0` (an A/B experiment) the
//! last three groups are absent.

use core::ops::Range;

use crate::error::{Error, Refusal, Result};
use crate::prelude::*;
#[cfg(not(feature = "std"))]
use crate::prim::math::Float;
use crate::prim::math::{round, trunc};

/// The report format version: the `v` of a report line.
pub const FORMAT: u32 = 1;
/// The largest fixed-point scale.
pub const MAX_SCALE: u32 = 1 << 20;
/// The most bits per entry: sums of up to 2^31 reports stay within `i64`.
pub const MAX_BITS: usize = 32;
/// The most variants of a task (the core's own limit).
pub const MAX_VARIANTS: usize = 64;
/// The most hashed slots of a task (2^12, the core's largest model).
pub const MAX_SLOTS: usize = 4096;

/// A group of statistics: one L1 bound and one share of the privacy budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// The report itself (always 1).
    Reports,
    /// Decisions per variant.
    Decisions,
    /// Exposures per variant.
    Exposures,
    /// Reward sums per variant.
    Rewards,
    /// X'y per variant and slot, as positive and negative parts.
    Xy,
    /// The diagonal of X'X per variant and slot.
    Xx,
}

/// Every group, in the order of the encoding.
pub const GROUPS: [Group; 6] = [
    Group::Reports,
    Group::Decisions,
    Group::Exposures,
    Group::Rewards,
    Group::Xy,
    Group::Xx,
];

impl Group {
    /// The group's name in JSON (specs, sums and budgets).
    pub fn name(self) -> &'static str {
        match self {
            Group::Reports => "reports",
            Group::Decisions => "decisions",
            Group::Exposures => "exposures",
            Group::Rewards => "rewards",
            Group::Xy => "xy",
            Group::Xx => "xx",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Per-report L1 bounds of each group (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Most decisions per report, over all variants.
    pub decisions: u32,
    /// Most exposures per report, over all variants.
    pub exposures: u32,
    /// Largest sum of rewards per report, over all variants.
    pub rewards: f64,
    /// Largest `‖X'y‖₁` per report, over all variants and slots.
    pub xy: f64,
    /// Largest sum of the diagonal of X'X per report, over all variants and slots.
    pub xx: f64,
}

/// A validated report specification: sizes, scale, bounds and the split of
/// the privacy budget between groups. Everything the device needs to encode
/// and the aggregator needs to check, sum, noise and decode.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    variants: usize,
    slots: usize,
    scale: u32,
    bounds: Bounds,
    budget: [f64; 6],
}

impl Spec {
    /// Check a specification. `budget` gives each group's relative weight
    /// in the privacy budget (index as [`GROUPS`]); `None` splits it
    /// equally between the groups present.
    pub fn new(
        variants: usize,
        slots: usize,
        scale: u32,
        bounds: Bounds,
        budget: Option<[f64; 6]>,
    ) -> Result<Spec> {
        if !(2..=MAX_VARIANTS).contains(&variants) {
            return Err(refused(
                Refusal::Spec,
                text!("variants should be in [2, {MAX_VARIANTS}], but is {variants}"),
            ));
        }
        if slots != 0 && (!slots.is_power_of_two() || slots > MAX_SLOTS) {
            return Err(refused(
                Refusal::Spec,
                text!("slots should be 0 or a power of two up to {MAX_SLOTS}, but is {slots}"),
            ));
        }
        if !(1..=MAX_SCALE).contains(&scale) {
            return Err(refused(
                Refusal::Spec,
                text!("scale should be in [1, {MAX_SCALE}], but is {scale}"),
            ));
        }
        if bounds.decisions == 0 || bounds.exposures == 0 {
            return Err(refused(
                Refusal::Spec,
                text!(
                    "bounds.decisions and bounds.exposures should be at least 1, but are {} and {}",
                    bounds.decisions,
                    bounds.exposures
                ),
            ));
        }
        let reals = [
            ("rewards", bounds.rewards),
            ("xy", bounds.xy),
            ("xx", bounds.xx),
        ];
        for (name, b) in reals {
            if !(b.is_finite() && b * scale as f64 >= 1.0) {
                return Err(refused(
                    Refusal::Spec,
                    text!(
                        "bounds.{name} should be finite and at least 1/scale = {}, but is {b}",
                        1.0 / scale as f64
                    ),
                ));
            }
        }
        let mut spec = Spec {
            variants,
            slots,
            scale,
            bounds,
            budget: [1.0; 6],
        };
        if spec.bits() > MAX_BITS {
            return Err(refused(
                Refusal::Spec,
                text!(
                    "the largest bound times the scale needs {} bits, over {MAX_BITS}",
                    spec.bits()
                ),
            ));
        }
        if let Some(w) = budget {
            for g in spec.groups() {
                let x = w[g.index()];
                if !(x.is_finite() && x > 0.0) {
                    return Err(refused(
                        Refusal::Spec,
                        text!(
                            "budget.{} should be positive and finite, but is {x}",
                            g.name()
                        ),
                    ));
                }
            }
            spec.budget = w;
        }
        Ok(spec)
    }

    /// Variants `K`.
    pub fn variants(&self) -> usize {
        self.variants
    }

    /// Hashed slots `d` (0: no learner statistics).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The fixed-point scale of real values (units per 1.0).
    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// The per-report L1 bounds.
    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// The groups this specification holds, in encoding order.
    pub fn groups(&self) -> impl Iterator<Item = Group> + '_ {
        GROUPS
            .into_iter()
            .filter(move |g| self.slots > 0 || !matches!(g, Group::Xy | Group::Xx))
    }

    /// A group's bound in encoded units: the largest L1 norm of its entries
    /// in one report, and so its L1 sensitivity.
    pub fn cap(&self, g: Group) -> u64 {
        let s = self.scale as f64;
        match g {
            Group::Reports => 1,
            Group::Decisions => self.bounds.decisions as u64,
            Group::Exposures => self.bounds.exposures as u64,
            Group::Rewards => (self.bounds.rewards * s).floor() as u64,
            Group::Xy => (self.bounds.xy * s).floor() as u64,
            Group::Xx => (self.bounds.xx * s).floor() as u64,
        }
    }

    /// What one encoded unit of a group is worth: 1 for counts, `1/scale`
    /// for real values.
    pub fn unit(&self, g: Group) -> f64 {
        match g {
            Group::Reports | Group::Decisions | Group::Exposures => 1.0,
            _ => 1.0 / self.scale as f64,
        }
    }

    /// The group's share of the privacy budget, in (0, 1].
    pub fn budget_share(&self, g: Group) -> f64 {
        let total: f64 = self.groups().map(|h| self.budget[h.index()]).sum();
        self.budget[g.index()] / total
    }

    /// The entries of a group in the measurement.
    pub fn range(&self, g: Group) -> Range<usize> {
        let (k, kd) = (self.variants, self.variants * self.slots);
        let start = match g {
            Group::Reports => return 0..1,
            Group::Decisions => 1,
            Group::Exposures => 1 + k,
            Group::Rewards => 1 + 2 * k,
            Group::Xy => return 1 + 3 * k..1 + 3 * k + 2 * kd,
            Group::Xx => 1 + 3 * k + 2 * kd,
        };
        let n = if g == Group::Xx { kd } else { k };
        start..start + n
    }

    /// The measurement's length: `1 + 3K + 3Kd`.
    pub fn len(&self) -> usize {
        1 + 3 * self.variants + 3 * self.variants * self.slots
    }

    /// Never empty (the `reports` entry); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bits per entry: the fewest that hold the largest group cap (an
    /// entry never exceeds its group's cap).
    pub fn bits(&self) -> usize {
        let max = self.groups().map(|g| self.cap(g)).max().unwrap_or(1);
        (64 - max.leading_zeros()) as usize
    }

    /// The `chunk_length` of the Prio3 `SumVec` (the parallel-sum gadget's
    /// chunk): `round(sqrt(bits · len))`, at least 1, the size the VDAF
    /// draft recommends. Device and aggregators must use the same value.
    pub fn chunk_length(&self) -> usize {
        (round(((self.bits() * self.len()) as f64).sqrt()) as usize).max(1)
    }
}

/// One report's statistics before encoding, as the device computed them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    /// Decisions per variant (`K`).
    pub decisions: Vec<u32>,
    /// Exposures per variant (`K`).
    pub exposures: Vec<u32>,
    /// Reward sums per variant (`K`).
    pub rewards: Vec<f64>,
    /// X'y per variant and slot (`K·d`, variant-major).
    pub xy: Vec<f64>,
    /// The diagonal of X'X per variant and slot (`K·d`, variant-major).
    pub xx: Vec<f64>,
}

impl Stats {
    /// All zeros, sized for `spec`.
    pub fn zeros(spec: &Spec) -> Stats {
        let (k, kd) = (spec.variants, spec.variants * spec.slots);
        Stats {
            decisions: vec![0; k],
            exposures: vec![0; k],
            rewards: vec![0.0; k],
            xy: vec![0.0; kd],
            xx: vec![0.0; kd],
        }
    }
}

/// An encoded measurement, and which groups had to be clipped to get it
/// (for the device's ledger).
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// The measurement: [`Spec::len`] entries, each in `[0, 2^bits)`.
    pub entries: Vec<u64>,
    /// The groups in which a value was clipped to its range or the group
    /// was scaled down to its L1 bound.
    pub clipped: Vec<Group>,
}

/// [`Refusal::WrongLength`] unless `name` has `want` entries (`got`).
pub fn check_len(name: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(refused(
        Refusal::WrongLength,
        text!("{name} should have {want} entries, but has {got}"),
    ))
}

/// Encode one report's statistics (see the module docs). Errors:
/// [`Refusal::WrongLength`] if a vector is not sized for `spec`,
/// [`Refusal::NonFinite`] for NaN or ±infinity (naming the field and index).
///
/// ```
/// use insitu::report::{decode, encode, Bounds, Spec, Stats};
///
/// let bounds = Bounds { decisions: 20, exposures: 20, rewards: 20.0, xy: 40.0, xx: 400.0 };
/// let spec = Spec::new(2, 16, 1024, bounds, None)?;
/// let mut stats = Stats::zeros(&spec);
/// stats.decisions = vec![3, 1];
/// stats.exposures = vec![2, 1];
/// stats.rewards = vec![1.5, 0.0];
/// stats.xy[3] = -0.75; // variant 0, slot 3
/// stats.xx[3] = 2.0;
/// let m = encode(&spec, &stats)?;
/// assert!(m.clipped.is_empty());
/// assert!(m.entries.iter().all(|x| *x < 1 << spec.bits()));
///
/// // The sum of two such reports decodes to the sums of their statistics.
/// let sums: Vec<i64> = m.entries.iter().map(|x| 2 * *x as i64).collect();
/// let d = decode(&spec, &sums)?;
/// assert_eq!((d.reports, d.decisions[0], d.rewards[0], d.xy[3]), (2.0, 6.0, 3.0, -1.5));
/// # Ok::<(), insitu::Error>(())
/// ```
pub fn encode(spec: &Spec, stats: &Stats) -> Result<Encoded> {
    let (k, kd) = (spec.variants, spec.variants * spec.slots);
    let sizes = [
        ("decisions", stats.decisions.len(), k),
        ("exposures", stats.exposures.len(), k),
        ("rewards", stats.rewards.len(), k),
        ("xy", stats.xy.len(), kd),
        ("xx", stats.xx.len(), kd),
    ];
    for (name, got, want) in sizes {
        check_len(name, got, want)?;
    }
    for (name, xs) in [
        ("rewards", &stats.rewards),
        ("xy", &stats.xy),
        ("xx", &stats.xx),
    ] {
        if let Some(i) = xs.iter().position(|x| !x.is_finite()) {
            return Err(refused(
                Refusal::NonFinite,
                text!("{name}[{i}] should be finite, but is {}", xs[i]),
            ));
        }
    }
    let mut entries = vec![0u64; spec.len()];
    let mut clipped = Vec::new();
    entries[0] = 1;
    let s = spec.scale as f64;
    for (g, counts) in [
        (Group::Decisions, &stats.decisions),
        (Group::Exposures, &stats.exposures),
    ] {
        let (e, c) = encode_counts(counts, spec.cap(g));
        entries[spec.range(g)].copy_from_slice(&e);
        if c {
            clipped.push(g);
        }
    }
    let b = spec.bounds;
    let (e, c) = encode_reals(
        &stats.rewards,
        false,
        b.rewards,
        s,
        spec.cap(Group::Rewards),
    );
    for (slot, v) in entries[spec.range(Group::Rewards)].iter_mut().zip(&e) {
        *slot = v.unsigned_abs();
    }
    if c {
        clipped.push(Group::Rewards);
    }
    if kd > 0 {
        let (e, c) = encode_reals(&stats.xy, true, b.xy, s, spec.cap(Group::Xy));
        let start = spec.range(Group::Xy).start;
        for (i, v) in e.iter().enumerate() {
            // The positive part at i, the negative part kd entries later.
            let at = if *v >= 0 { start + i } else { start + kd + i };
            entries[at] = v.unsigned_abs();
        }
        if c {
            clipped.push(Group::Xy);
        }
        let (e, c) = encode_reals(&stats.xx, false, b.xx, s, spec.cap(Group::Xx));
        for (slot, v) in entries[spec.range(Group::Xx)].iter_mut().zip(&e) {
            *slot = v.unsigned_abs();
        }
        if c {
            clipped.push(Group::Xx);
        }
    }
    Ok(Encoded { entries, clipped })
}

/// Counts clipped to `cap` each, then scaled down (rounding down) when
/// their sum is over `cap`; and whether anything was clipped.
fn encode_counts(counts: &[u32], cap: u64) -> (Vec<u64>, bool) {
    let mut out: Vec<u64> = counts.iter().map(|c| (*c as u64).min(cap)).collect();
    let mut clipped = out.iter().zip(counts).any(|(a, b)| *a != *b as u64);
    let sum: u64 = out.iter().sum();
    if sum > cap {
        for c in &mut out {
            // `*c <= cap < 2^32` (MAX_BITS): the product fits a u64.
            *c = *c * cap / sum;
        }
        clipped = true;
    }
    (out, clipped)
}

/// Fixed-point values (signed) of `xs` clipped to `[lo, bound]` (`lo` is
/// `-bound` when `signed`, else 0), scaled to L1 norm `bound` when over it,
/// rounded to nearest, or toward zero if rounding breaks the cap; and
/// whether anything was clipped.
fn encode_reals(xs: &[f64], signed: bool, bound: f64, scale: f64, cap: u64) -> (Vec<i64>, bool) {
    let lo = if signed { -bound } else { 0.0 };
    let mut clipped = false;
    let mut v: Vec<f64> = xs
        .iter()
        .map(|x| {
            // Not `clamp`, whose panic message would bring the float formatter into the .wasm.
            let c = x.max(lo).min(bound);
            clipped |= c != *x;
            c
        })
        .collect();
    let l1: f64 = v.iter().map(|x| x.abs()).sum();
    if l1 > bound {
        let f = bound / l1;
        v.iter_mut().for_each(|x| *x *= f);
        clipped = true;
    }
    let l1 = |e: &[i64]| e.iter().map(|x| x.unsigned_abs()).sum::<u64>();
    let mut e: Vec<i64> = v.iter().map(|x| round(x * scale) as i64).collect();
    if l1(&e) > cap {
        e = v.iter().map(|x| trunc(x * scale) as i64).collect();
    }
    // Float rounding in the scaling above could leave a unit too many;
    // take it from the largest magnitude so the cap holds exactly.
    while l1(&e) > cap {
        if let Some(m) = e.iter_mut().max_by_key(|x| x.unsigned_abs()) {
            *m -= m.signum();
        }
    }
    (e, clipped)
}

/// Real-valued sums decoded from a sum of encoded measurements (any number
/// of them, noisy or not): the same fields as [`Stats`], plus `reports`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// The (noisy) number of reports.
    pub reports: f64,
    /// Decisions per variant.
    pub decisions: Vec<f64>,
    /// Exposures per variant.
    pub exposures: Vec<f64>,
    /// Reward sums per variant.
    pub rewards: Vec<f64>,
    /// X'y per variant and slot (positive minus negative part).
    pub xy: Vec<f64>,
    /// The diagonal of X'X per variant and slot.
    pub xx: Vec<f64>,
}

/// Decode a sum of measurements, entry by entry: counts as they are, real
/// values divided by the scale, X'y as its positive minus its negative
/// part. Linear, so it decodes noisy sums too (whose entries may be
/// negative), and a sum of `N` measurements needs no `N` (there are no
/// offsets to remove: see the module docs). [`Refusal::WrongLength`] if
/// `sums` is not [`Spec::len`] long.
pub fn decode(spec: &Spec, sums: &[i64]) -> Result<Decoded> {
    check_len("sums", sums.len(), spec.len())?;
    let real = |g: Group| -> Vec<f64> {
        sums[spec.range(g)]
            .iter()
            .map(|x| *x as f64 * spec.unit(g))
            .collect()
    };
    let kd = spec.variants * spec.slots;
    let xy = if kd > 0 {
        let both = real(Group::Xy);
        (0..kd).map(|i| both[i] - both[kd + i]).collect()
    } else {
        Vec::new()
    };
    Ok(Decoded {
        reports: sums[0] as f64,
        decisions: real(Group::Decisions),
        exposures: real(Group::Exposures),
        rewards: real(Group::Rewards),
        xy,
        xx: if kd > 0 { real(Group::Xx) } else { Vec::new() },
    })
}

/// A report refused: `kind` says why, `reason` names the value.
fn refused(kind: Refusal, reason: crate::error::Text) -> Error {
    Error::ReportRefused { kind, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let b = Bounds {
            decisions: 20,
            exposures: 20,
            rewards: 20.0,
            xy: 40.0,
            xx: 400.0,
        };
        Spec::new(3, 4, 256, b, None).unwrap()
    }

    #[test]
    fn layout_covers_every_entry_once() {
        let s = spec();
        let mut seen = vec![0; s.len()];
        for g in s.groups() {
            for i in s.range(g) {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|n| *n == 1), "{seen:?}");
        assert_eq!(s.len(), 1 + 9 + 36);
        // 400 · 256 = 102,400 needs 17 bits.
        assert_eq!(s.bits(), 17);
    }

    #[test]
    fn signed_values_split_into_parts() {
        let s = spec();
        let mut st = Stats::zeros(&s);
        st.xy[1] = -1.5;
        st.xy[2] = 0.25;
        let e = encode(&s, &st).unwrap();
        let r = s.range(Group::Xy);
        assert_eq!(e.entries[r.start + 2], 64);
        assert_eq!(e.entries[r.start + 12 + 1], 384);
        let d = decode(&s, &e.entries.iter().map(|x| *x as i64).collect::<Vec<_>>()).unwrap();
        assert_eq!(d.xy[1], -1.5);
        assert_eq!(d.xy[2], 0.25);
        assert_eq!(d.reports, 1.0);
    }

    #[test]
    fn specs_name_the_bad_value() {
        let b = spec().bounds();
        let e = Spec::new(1, 4, 256, b, None).unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().contains("is 1")),
            ("REPORT_REFUSED", true)
        );
        let e = Spec::new(2, 3, 256, b, None).unwrap_err();
        assert!(e.to_string().contains("slots"));
        let e = Spec::new(2, 4, 256, Bounds { xy: f64::NAN, ..b }, None).unwrap_err();
        assert!(e.to_string().contains("bounds.xy"));
        let e = Spec::new(2, 4, 1 << 20, Bounds { xx: 1e9, ..b }, None).unwrap_err();
        assert!(e.to_string().contains("bits"));
        let e = Spec::new(2, 4, 256, b, Some([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])).unwrap_err();
        assert!(e.to_string().contains("budget.exposures"));
        // A/B only: the learner groups' weights are not needed.
        assert!(Spec::new(2, 0, 256, b, Some([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])).is_ok());
    }
}
