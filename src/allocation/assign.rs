//! Deterministic assignment of a unit to a variant of a fixed-weight
//! experiment, and the eligibility checks every experiment shares.

use crate::prim::math;

use super::config::{Experiment, HashVersion, Names};
use super::hash::{position, uniform};

/// Why a unit is or is not in an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// In the experiment: the variant was assigned.
    Assigned,
    /// No unit key: consent `none` and no id from the site.
    NoUnit,
    /// A targeting condition does not hold.
    NotTargeted,
    /// The unit falls outside the experiment's namespace range.
    Namespace,
    /// The unit is in the holdout group.
    Holdout,
    /// The unit falls outside the coverage.
    Coverage,
}

impl Reason {
    /// The name used in results, e.g. `"holdout"`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Assigned => "assigned",
            Reason::NoUnit => "no-unit",
            Reason::NotTargeted => "targeting",
            Reason::Namespace => "namespace",
            Reason::Holdout => "holdout",
            Reason::Coverage => "coverage",
        }
    }
}

/// Where a unit stands in an experiment before a variant is picked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Eligibility {
    /// Not in it, for this reason.
    Out(Reason),
    /// In it; with the unit's hash position (GrowthBook versions only).
    In(Option<f64>),
}

/// Targeting, namespace, holdout and coverage, in that order. `unit` is
/// the unit key; `targeted` whether the experiment's targeting conditions
/// hold (the caller evaluates them on its attributes).
pub(crate) fn eligibility(
    e: &Experiment,
    names: &Names,
    unit: &[u8],
    targeted: bool,
) -> Eligibility {
    if !targeted {
        return Eligibility::Out(Reason::NotTargeted);
    }
    let gb = e.hash != HashVersion::Insitu1;
    // No namespace is [0, 1) and no holdout 0, which exclude no unit.
    let ns = &e.namespace;
    // GrowthBook places namespaces with its version-1 hash of "__" + name,
    // whatever the experiment's version.
    let x = hashed(gb, ns.seed, &[b"__", names.get(ns.name)], unit, false);
    if x < ns.start || x >= ns.end {
        return Eligibility::Out(Reason::Namespace);
    }
    if uniform(e.holdout.seed, unit) < e.holdout.fraction {
        return Eligibility::Out(Reason::Holdout);
    }
    let v2 = e.hash == HashVersion::GrowthBook2;
    let x = hashed(gb, e.coverage_seed, &[names.get(e.seed)], unit, v2);
    if gb {
        // GrowthBook's coverage shrinks each variant's range (see `variant`).
        Eligibility::In(Some(x))
    } else if x >= e.coverage {
        Eligibility::Out(Reason::Coverage)
    } else {
        Eligibility::In(None)
    }
}

/// The position of `unit`: its GrowthBook hash (`gb`, version 2 or 1)
/// with the seed that is the concatenation of `parts`, or its `insitu/1`
/// draw for purpose seed `seed`.
#[inline(never)]
fn hashed(gb: bool, seed: u32, parts: &[&[u8]], unit: &[u8], v2: bool) -> f64 {
    if gb {
        position(parts, unit, v2)
    } else {
        uniform(seed, unit)
    }
}

/// The variant of an eligible unit under fixed weights; None when a
/// GrowthBook position falls in the gap its coverage leaves.
///
/// `insitu/1` is a weighted race: each variant draws an independent
/// exponential `E_i = -ln(U_i)` from its own hash of the unit, and the unit
/// goes to the least `E_i / w_i`, which variant `i` wins with probability
/// exactly `w_i` (the minimum of independent exponentials with rates `w_i`).
/// Changing one weight changes only that variant's `E_i / w_i`, so units
/// move only into (weight up) or out of (weight down) that variant, and
/// exactly the share the change requires; the other variants' units are
/// compared with each other as before. Adding a variant only takes units
/// from others; removing one only hands its own units out.
///
/// Returns the variant's index, its id's symbol and its weight.
pub(crate) fn variant(
    e: &Experiment,
    unit: &[u8],
    position: Option<f64>,
) -> Option<(usize, u32, f64)> {
    let mut best = None;
    let mut best_t = f64::INFINITY;
    let mut cumulative = 0.0;
    for (i, v) in e.variants.iter().enumerate() {
        let w = v.weight;
        match position {
            // GrowthBook's getBucketRanges and chooseVariation, with the
            // same floating-point operations in the same order.
            Some(n) => {
                let start = cumulative;
                cumulative += w;
                if n >= start && n < start + e.coverage * w {
                    return Some((i, v.id, w));
                }
            }
            None => {
                if w > 0.0 {
                    let t = -math::ln(uniform(v.seed, unit)) / w;
                    if t < best_t {
                        best_t = t;
                        best = Some((i, v.id, w));
                    }
                }
            }
        }
    }
    best
}
