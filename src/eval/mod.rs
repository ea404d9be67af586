//! Offline policy evaluation on the device (issue #24): from the decisions a
//! slot logged (the variant served, the probability it was served with, the
//! reward) and the model's scores at the time, the value that other
//! policies would have earned on the same visits.
//!
//! Each settled decision adds to additive sums per candidate policy, so that
//! two tabs' sums merge by addition and many devices' sums could be added
//! privately. The candidates, in order:
//! - `served`: what the slot served (weight 1: its mean reward);
//! - `policy`: the slot's exploration policy as it stood at each decision
//!   (the same as `served` unless the slot is an apprentice, which serves a
//!   baseline and keeps its policy in the shadow);
//! - `greedy`: the variant with the highest mean score at each decision;
//! - `uniform`: every variant with probability 1/K;
//! - each variant on its own (a site's control).
//!
//! For a candidate π and a decision that served variant `a` with
//! probability `p`, the importance weight is `w = π(a|x) / p`. Three
//! estimators are kept: inverse propensity scoring (IPS, `Σ w r / n`), its
//! self-normalised form (SNIPS, `Σ w r / Σ w`) and doubly robust (DR, the
//! mean of `Σ_b π(b|x) r̂_b + w (r − r̂_a)`, with `r̂` the posterior mean
//! scores at decision time, clamped to the reward range [0, 1]; the model
//! was fitted before the reward, so the estimate stays unbiased whatever its
//! errors). Intervals are normal approximations (central limit theorem) at
//! the caller's level: each needs only the sums and sums of squares, so it
//! stays additive. They are honest when the effective sample size
//! `(Σ w)² / Σ w²` is large; with heavy weights it is small, and it is
//! reported beside each estimate.

use crate::prelude::*;

use crate::error::{Error, Result};
use crate::prim::math::sqrt;
use crate::store::{corrupt, put_f64, put_u32, Reader};

/// Candidates before the fixed variants: served, policy, greedy, uniform.
pub const FIXED: usize = 4;
/// The least probability a logged decision may carry: below it, weights
/// (1/p, squared in the sums) would swamp every estimate or overflow.
pub const MIN_PROBABILITY: f64 = 1e-6;
/// Below this effective sample size an estimate has no interval: the normal
/// approximation the intervals rest on does not hold for a handful of
/// weighted decisions (a candidate that agreed with what was served once or
/// twice would get an interval of almost no width).
pub const MIN_ESS: f64 = 10.0;
/// What rounding may add to a probability or an expected score in [0, 1].
const SLACK: f64 = 1e-9;
/// Sums kept per candidate: Σw, Σw², Σwr, Σw²r, Σw²r², Σd, Σd², Σd·r.
const FIELDS: usize = 8;
/// The layout of [`Sums::encode`].
const LAYOUT: u8 = 1;

/// What a decision logged for its evaluation, fixed when it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    /// The probability the served variant was served with, in (0, 1].
    pub p: f64,
    /// The probability the slot's exploration policy gave it (`p`, unless
    /// the slot serves a baseline in apprentice mode).
    pub q: f64,
    /// The policy's expected score: Σ_b pmf_b r̂_b, the r̂ clamped to [0, 1].
    pub dm: f64,
    /// Each variant's posterior mean score at the decision (f32: what a
    /// snapshot stores, so every tab computes the same sums from it).
    pub scores: Vec<f32>,
}

impl Logged {
    /// A decision's record from the pmf of the slot's policy, the posterior
    /// mean scores, the variant served and its probability `p`.
    pub fn new(pmf: &[f64], scores: &[f64], served: usize, p: f64) -> Logged {
        let mut dm = 0.0;
        let mut s = Vec::with_capacity(scores.len());
        for (q, &m) in pmf.iter().zip(scores) {
            let m = m as f32;
            dm += q * unit(f64::from(m));
            s.push(m);
        }
        Logged {
            p,
            q: unit(pmf.get(served).copied().unwrap_or(0.0)),
            // A pmf may sum to 1 plus an ulp.
            dm: unit(dm),
            scores: s,
        }
    }

    /// The variant with the highest score (the first of equals).
    pub fn greedy(&self) -> usize {
        let mut g = 0;
        for (i, &s) in self.scores.iter().enumerate() {
            if s > self.scores[g] {
                g = i;
            }
        }
        g
    }

    /// Bytes: p, q, dm (f64), score count u32, scores (f32).
    pub(crate) fn encode(&self, w: &mut Vec<u8>) {
        put_f64(w, self.p);
        put_f64(w, self.q);
        put_f64(w, self.dm);
        put_u32(w, self.scores.len() as u32);
        for s in &self.scores {
            w.extend_from_slice(&s.to_le_bytes());
        }
    }

    /// Read what [`encode`](Logged::encode) wrote for a slot of `k`
    /// variants, checked: probabilities in range, finite scores.
    pub(crate) fn decode(r: &mut Reader<'_>, k: usize) -> Result<Logged> {
        let (p, q, dm) = (r.f64()?, r.f64()?, r.f64()?);
        let n = r.count(4)?;
        let unit_ok = |x: f64| (0.0..=1.0 + SLACK).contains(&x);
        if !(p >= MIN_PROBABILITY && unit_ok(p) && unit_ok(q) && unit_ok(dm)) || n != k {
            return Err(corrupt(text!("a logged decision is out of range")));
        }
        let mut scores = Vec::with_capacity(n);
        for _ in 0..n {
            let b = r.take(4)?;
            let s = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if !s.is_finite() {
                return Err(corrupt(text!("a logged score is not finite")));
            }
            scores.push(s);
        }
        Ok(Logged { p, q, dm, scores })
    }
}

/// `x` clamped to the reward range [0, 1] (`max`/`min`, not `f64::clamp`,
/// whose panic message brings the float formatter into the .wasm).
#[allow(clippy::manual_clamp)]
fn unit(x: f64) -> f64 {
    x.max(0.0).min(1.0)
}

/// The additive sums of one slot's evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Sums {
    /// Settled decisions counted.
    pub n: f64,
    /// Of those, decisions that served the greedy variant.
    pub matches: f64,
    /// Per candidate ([`FIXED`] then one per variant), the [`FIELDS`] sums.
    c: Vec<[f64; FIELDS]>,
}

/// One estimate with its interval (bounds NaN below an effective sample
/// size of [`MIN_ESS`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The estimate.
    pub value: f64,
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

/// A candidate policy's estimated value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Inverse propensity scoring.
    pub ips: Interval,
    /// Self-normalised IPS (NaN when no decision carried weight).
    pub snips: Interval,
    /// Doubly robust.
    pub dr: Interval,
    /// Doubly robust estimate minus the served mean reward, paired
    /// decision by decision: what switching to this candidate would change.
    pub lift: Interval,
    /// Effective sample size, (Σw)² / Σw².
    pub ess: f64,
}

impl Sums {
    /// No decisions yet, for a slot of `k` variants.
    pub fn new(k: usize) -> Sums {
        Sums {
            n: 0.0,
            matches: 0.0,
            c: vec![[0.0; FIELDS]; FIXED + k],
        }
    }

    /// Number of variants.
    pub fn k(&self) -> usize {
        self.c.len() - FIXED
    }

    /// Count decision `log` that served variant `a` and earned `r` in [0, 1].
    /// A record for another number of variants, or served with a
    /// probability below [`MIN_PROBABILITY`], is not counted.
    pub fn add(&mut self, a: usize, log: &Logged, r: f64) {
        let k = self.k();
        if log.scores.len() != k || a >= k || !(MIN_PROBABILITY..=1.0 + SLACK).contains(&log.p) {
            return;
        }
        let hat = |i: usize| unit(f64::from(log.scores[i]));
        let (p, ra) = (log.p, hat(a));
        let g = log.greedy();
        let mut mean = 0.0;
        for i in 0..k {
            mean += hat(i);
        }
        mean /= k as f64;
        let one = |hit: bool| if hit { 1.0 / p } else { 0.0 };
        let mut put = |c: usize, w: f64, dm: f64| {
            let d = dm + w * (r - ra);
            let s = &mut self.c[c];
            let wr = w * r;
            s[0] += w;
            s[1] += w * w;
            s[2] += wr;
            s[3] += w * wr;
            s[4] += wr * wr;
            s[5] += d;
            s[6] += d * d;
            s[7] += d * r;
        };
        put(0, 1.0, ra);
        put(1, log.q / p, log.dm);
        put(2, one(a == g), hat(g));
        put(3, 1.0 / (k as f64 * p), mean);
        for v in 0..k {
            put(FIXED + v, one(a == v), hat(v));
        }
        self.n += 1.0;
        self.matches += f64::from(u8::from(a == g));
    }

    /// Add another tab's sums (same number of variants).
    pub fn merge(&mut self, other: &Sums) {
        if other.c.len() != self.c.len() {
            return;
        }
        self.n += other.n;
        self.matches += other.matches;
        for (a, b) in self.c.iter_mut().zip(&other.c) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
    }

    /// Candidate `c`'s estimates at two-sided level `level` in (0, 1).
    /// A candidate whose effective sample size is below [`MIN_ESS`] has no
    /// interval (NaN bounds): one that never agreed with what was served
    /// has an IPS of 0 and a DR of the model's scores alone, and no logged
    /// reward can say how wrong either is; one that agreed a few times has
    /// too few for the normal approximation.
    /// Errors: `NO_DATA` when no decision was counted; `INVALID_OPTION` for
    /// a level outside [0.5, 0.999] or a candidate out of range.
    pub fn estimate(&self, c: usize, level: f64) -> Result<Estimate> {
        if !(0.5..=0.999).contains(&level) {
            return Err(Error::option("level", text!("should be in [0.5, 0.999]")));
        }
        let s = self
            .c
            .get(c)
            .ok_or_else(|| Error::option("candidate", text!("is out of range")))?;
        let n = self.n;
        if n < 1.0 {
            return Err(Error::NoData {
                reason: text!("no settled decision has been logged yet"),
            });
        }
        let z = normal_quantile(0.5 + level / 2.0);
        let [sw, sw2, swr, sw2r, sw2r2, sd, sd2, sdr] = *s;
        let r = &self.c[0];
        let (sr, sr2) = (r[2], r[4]);
        let mean = |sum: f64, sq: f64| {
            let m = sum / n;
            let var = if n > 1.0 {
                non_negative(sq - n * m * m) / (n - 1.0)
            } else {
                f64::NAN
            };
            around(m, z * sqrt(var / n))
        };
        let snips = if sw > 0.0 {
            let v = swr / sw;
            let var = non_negative(sw2r2 - 2.0 * v * sw2r + v * v * sw2);
            around(
                v,
                if n > 1.0 {
                    z * sqrt(var) / sw
                } else {
                    f64::NAN
                },
            )
        } else {
            around(f64::NAN, f64::NAN)
        };
        let ess = if sw2 > 0.0 { sw * sw / sw2 } else { 0.0 };
        let seen = |i: Interval| {
            if ess >= MIN_ESS {
                i
            } else {
                around(i.value, f64::NAN)
            }
        };
        Ok(Estimate {
            ips: seen(mean(swr, sw2r2)),
            snips: seen(snips),
            dr: seen(mean(sd, sd2)),
            lift: seen(mean(sd - sr, sd2 - 2.0 * sdr + sr2)),
            ess,
        })
    }

    /// Bytes: layout u8, variants u32, n and matches f64, then each
    /// candidate's sums (f64).
    pub fn encode(&self, w: &mut Vec<u8>) {
        w.push(LAYOUT);
        put_u32(w, self.k() as u32);
        put_f64(w, self.n);
        put_f64(w, self.matches);
        for s in &self.c {
            for &x in s {
                put_f64(w, x);
            }
        }
    }

    /// Read what [`encode`](Sums::encode) wrote, for a slot of `k`
    /// variants. A newer layout is `SNAPSHOT_VERSION`; sums that no run of
    /// decisions could have made (not finite, negative where squares are,
    /// more matches than decisions, another number of variants) are
    /// `SNAPSHOT_CORRUPT`.
    pub(crate) fn decode(r: &mut Reader<'_>, k: usize) -> Result<Sums> {
        let layout = r.u8()?;
        if layout > LAYOUT {
            return Err(Error::SnapshotVersion {
                found: crate::error::figure(u32::from(layout)),
                supported: crate::error::figure(u32::from(LAYOUT)),
            });
        }
        let sk = r.u32()? as usize;
        if layout != LAYOUT || sk != k {
            return Err(corrupt(text!("evaluation sums of {sk} variants, not {k}")));
        }
        let mut s = Sums::new(k);
        s.n = r.f64()?;
        s.matches = r.f64()?;
        let mut ok = s.n >= 0.0 && s.matches >= 0.0 && s.matches <= s.n;
        for c in &mut s.c {
            for (i, x) in c.iter_mut().enumerate() {
                *x = r.f64()?;
                // Σw, Σw², Σw²r², Σd² are never negative.
                ok &= x.is_finite() && (!matches!(i, 0 | 1 | 4 | 6) || *x >= 0.0);
            }
        }
        if !ok || !s.n.is_finite() {
            return Err(corrupt(text!("evaluation sums out of range")));
        }
        Ok(s)
    }
}

fn non_negative(x: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

fn around(value: f64, half: f64) -> Interval {
    Interval {
        value,
        low: value - half,
        high: value + half,
    }
}

/// The standard normal quantile at `p` in (0, 1) (the sampler's, by
/// Acklam's rational approximation).
pub fn normal_quantile(p: f64) -> f64 {
    crate::prim::rng::inverse_normal_cdf(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_the_tables() {
        for (p, z) in [
            (0.975, 1.959_963_985),
            (0.95, 1.644_853_627),
            (0.995, 2.575_829_304),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-8, "{p}");
            assert!((normal_quantile(1.0 - p) + z).abs() < 1e-8, "{p}");
        }
    }

    #[test]
    fn sums_round_trip_and_refuse_what_no_run_makes() {
        let mut s = Sums::new(3);
        let log = Logged::new(&[0.2, 0.5, 0.3], &[0.1, 0.7, 0.4], 1, 0.5);
        s.add(1, &log, 1.0);
        s.add(1, &log, 0.0);
        let mut w = Vec::new();
        s.encode(&mut w);
        assert_eq!(Sums::decode(&mut Reader::new(&w, "t"), 3).unwrap(), s);
        assert_eq!(
            Sums::decode(&mut Reader::new(&w, "t"), 2)
                .unwrap_err()
                .code(),
            "SNAPSHOT_CORRUPT"
        );
        let mut bad = w.clone();
        bad[13..21].copy_from_slice(&5.0f64.to_le_bytes()); // matches > n
        assert_eq!(
            Sums::decode(&mut Reader::new(&bad, "t"), 3)
                .unwrap_err()
                .code(),
            "SNAPSHOT_CORRUPT"
        );
        let mut newer = w;
        newer[0] = 2;
        assert_eq!(
            Sums::decode(&mut Reader::new(&newer, "t"), 3)
                .unwrap_err()
                .code(),
            "SNAPSHOT_VERSION"
        );
    }
}
