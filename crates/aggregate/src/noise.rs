//! Central noise: discrete Laplace on the integer sums, calibrated to each
//! group's L1 bound and its share of ε.
//!
//! **The guarantee.** For a task (one slot or experiment) and one period,
//! the released sums are ε-differentially private with respect to adding or
//! removing one report, that is one device (a device sends at most one
//! report per task and period; the device side enforces it). Per group `g`
//! with L1 cap `Δ_g` (in encoded units, [`Spec::cap`]) and budget share
//! `w_g`, every entry gets independent noise `DLap(t_g)` with
//! `t_g = Δ_g / (w_g · ε)`: adding or removing one report moves the group's
//! sums by at most `Δ_g` in L1, so the group's release is `w_g·ε`-DP (the
//! discrete Laplace mechanism), and the groups compose to `Σ w_g·ε = ε`.
//! Per-segment sums are released instead of (never besides) the totals; a
//! report falls in one segment, so segments compose in parallel and the
//! bound stays ε. This protects devices that encoded their report with
//! [`crate::measure::encode`]; a dishonest client can shift the sums (by at
//! most `2^bits - 1` per entry, which Prio3 proves) but cannot weaken the
//! protection of the others.
//!
//! `DLap(t)`: `P(X = k) ∝ exp(-|k|/t)` on the integers, sampled as the
//! difference of two geometric variables with `P(G ≥ k) = exp(-k/t)`, each
//! `floor(t · E)` for an exponential `E = -ln U`. This inversion uses
//! floating point; an exact sampler (Canonne, Kamath and Steinke, 2020) is
//! the hardening left to do before a release is published to adversaries
//! who could exploit floating-point artefacts in the tails.

use rand::Rng;

use crate::measure::{Group, Spec};

/// How the sums are noised: a mechanism and its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mechanism {
    /// No noise (the non-private baseline; never publish its output).
    None,
    /// Discrete Laplace calibrated to ε (see the module docs).
    DiscreteLaplace {
        /// The privacy budget per device, task and period.
        epsilon: f64,
    },
}

impl Mechanism {
    /// The discrete Laplace parameter `t` of a group's entries, in encoded
    /// units (0: no noise).
    pub fn scale(&self, spec: &Spec, g: Group) -> f64 {
        match *self {
            Mechanism::None => 0.0,
            Mechanism::DiscreteLaplace { epsilon } => {
                spec.cap(g) as f64 / (spec.budget_share(g) * epsilon)
            }
        }
    }
}

/// The variance of `DLap(t)`: `2q / (1 - q)²` with `q = exp(-1/t)`.
pub fn variance(t: f64) -> f64 {
    if t <= 0.0 {
        return 0.0;
    }
    let q = (-1.0 / t).exp();
    let one_minus_q = -(-1.0 / t).exp_m1();
    2.0 * q / (one_minus_q * one_minus_q)
}

/// One draw of `DLap(t)` (0 when `t` is 0).
pub fn sample<R: Rng + ?Sized>(rng: &mut R, t: f64) -> i64 {
    if t <= 0.0 {
        return 0;
    }
    geometric(rng, t) - geometric(rng, t)
}

/// `floor(t · E)`, `E` exponential with mean 1: `P(G ≥ k) = exp(-k/t)`.
fn geometric<R: Rng + ?Sized>(rng: &mut R, t: f64) -> i64 {
    // 1 - [0, 1) is (0, 1], so the logarithm is finite.
    let u: f64 = 1.0 - rng.gen::<f64>();
    let g = (-u.ln() * t).floor();
    // Saturates for absurd t rather than wrapping.
    g.min(i64::MAX as f64 / 4.0) as i64
}

/// Add noise to the sums of one segment, entry by entry, in order (so a
/// seed reproduces the release).
pub fn add<R: Rng + ?Sized>(rng: &mut R, spec: &Spec, mech: &Mechanism, sums: &mut [i64]) {
    for g in spec.groups() {
        let t = mech.scale(spec, g);
        for x in &mut sums[spec.range(g)] {
            *x = x.saturating_add(sample(rng, t));
        }
    }
}
