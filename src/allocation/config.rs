//! Experiment configuration: plain data from the site, checked once into
//! [`Experiments`]; nothing downstream re-checks it.

use crate::prelude::*;

use super::hash::purpose_seed;
#[cfg(feature = "json")]
use super::targeting::Condition;
use crate::error::{Error, Result};

/// Most experiments in one set.
pub(crate) const MAX_EXPERIMENTS: usize = 256;
/// Most variants of one experiment.
pub(crate) const MAX_VARIANTS: usize = 32;
/// Most targeting conditions of one experiment, and values of one `in` list.
pub(crate) const MAX_CONDITIONS: usize = 32;
/// Longest key, variant id, namespace or attribute path, in bytes.
pub(crate) const MAX_NAME: usize = 64;
/// Longest seed or string condition value, in bytes.
pub(crate) const MAX_TEXT: usize = 256;
/// How far the weights may sum from 1: enough for decimal fractions such as
/// 0.1 + 0.2 + 0.7, far too little to hide a mistake.
pub(crate) const WEIGHT_SUM_TOLERANCE: f64 = 1e-6;
/// Thompson draws per decision: default and limit.
pub(crate) const DEFAULT_SAMPLES: u32 = 512;
pub(crate) const MAX_SAMPLES: u64 = 8192;
/// Default reward window of a bandit trial: one day.
pub(crate) const DEFAULT_WINDOW_MS: f64 = crate::prim::clock::DAY_MS;

/// How units are hashed to positions (see [`super::hash`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashVersion {
    /// insitu's own: one independent MurmurHash3 draw per variant, which
    /// keeps weight changes from moving units between other variants.
    Insitu1,
    /// GrowthBook hash version 1 (FNV-1a, 1,000 buckets), contiguous ranges.
    GrowthBook1,
    /// GrowthBook hash version 2 (double FNV-1a, 10,000 buckets), contiguous ranges.
    GrowthBook2,
}

impl HashVersion {
    /// The name used in configurations and results, e.g. `"growthbook/2"`.
    pub fn name(self) -> &'static str {
        match self {
            HashVersion::Insitu1 => "insitu/1",
            HashVersion::GrowthBook1 => "growthbook/1",
            HashVersion::GrowthBook2 => "growthbook/2",
        }
    }
}

/// How an experiment picks among its variants.
#[derive(Debug, Clone, PartialEq)]
pub enum Allocation {
    /// Fixed weights: deterministic from the unit, for clean inference.
    Weights,
    /// Thompson sampling over a Beta-Bernoulli posterior per variant, from the
    /// rewards seen on this device, for optimisation.
    Thompson {
        /// Prior (successes, failures) per variant, added to Beta(1, 1).
        prior: Vec<(f64, f64)>,
        /// Least probability any variant keeps, so every trial's probability
        /// is bounded away from 0 for inverse-propensity analysis.
        min_probability: f64,
        /// Posterior draws used to compute the served distribution.
        samples: u32,
        /// How long a trial waits for its reward before counting as a failure.
        window_ms: f64,
    },
}

/// A holdout group shared by every experiment naming the same key.
#[derive(Debug, Clone, PartialEq)]
pub struct Holdout {
    /// The holdout's key: experiments with the same key hold out the same units.
    pub key: String,
    /// Fraction of units held out, in [0, 1).
    pub fraction: f64,
    pub(crate) seed: u32,
}

/// A namespace (layer): experiments in one namespace with disjoint ranges
/// never share a unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    /// The namespace's name.
    pub name: String,
    /// This experiment's range of the namespace, `[start, end)` within [0, 1].
    pub start: f64,
    /// End of the range (exclusive).
    pub end: f64,
    pub(crate) seed: u32,
    /// GrowthBook's namespace seed, `"__" + name`, built once.
    pub(crate) growthbook_seed: String,
}

/// One checked experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// The experiment's key, unique in its set.
    pub key: String,
    /// Variant ids, unique.
    pub variants: Vec<String>,
    /// Weights, summing to 1 (equal when not given).
    pub weights: Vec<f64>,
    /// Fraction of eligible units in the experiment, in [0, 1].
    pub coverage: f64,
    /// Holdout group, if any.
    pub holdout: Option<Holdout>,
    /// Namespace range, if any.
    pub namespace: Option<Namespace>,
    /// Targeting conditions, all of which must hold (read from JSON only:
    /// for the .wasm the TypeScript side evaluates them, see `targeted`).
    #[cfg(feature = "json")]
    pub targeting: Vec<Condition>,
    /// Whether the experiment has targeting conditions.
    pub targeted: bool,
    /// The variant served outside the experiment (default: the first).
    pub fallback: usize,
    /// How units are hashed.
    pub hash: HashVersion,
    /// The hash seed (default: the key).
    pub seed: String,
    /// Fixed weights or a bandit.
    pub allocation: Allocation,
    /// insitu/1 purpose seeds, one per variant.
    pub(crate) seeds: Vec<u32>,
    /// insitu/1 purpose seed of the coverage draw.
    pub(crate) coverage_seed: u32,
}

/// A checked set of experiments: keys unique, namespace ranges disjoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Experiments {
    pub(crate) list: Vec<Experiment>,
}

impl Experiments {
    /// The experiments, in the order given.
    pub fn list(&self) -> &[Experiment] {
        &self.list
    }

    /// The index of the experiment `key`.
    pub fn index(&self, key: &str) -> Result<usize> {
        self.list
            .iter()
            .position(|e| e.key == key)
            .ok_or_else(|| Error::UnknownExperiment { key: key.into() })
    }
}

/// Whether `v` is a name: 1 to 64 letters, digits, `_`, `-`, `.`, `:` or
/// `/`. Keys, variant ids, namespaces and attribute paths are names, and the
/// state reader admits only what a configuration could hold.
pub(super) fn is_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_NAME
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b))
}

impl Experiment {
    /// A checked experiment from its parts, as the boundary receives them
    /// (the TypeScript side has read and checked the configuration with
    /// messages naming each field; this refuses what it could not have
    /// sent): a key and 2 to 32 distinct variant ids that are names, one
    /// non-negative weight per variant summing to 1, coverage in [0, 1], a
    /// holdout fraction in [0, 1), a namespace range with `0 <= start < end
    /// <= 1`, the fallback's index, a seed of 1 to 256 bytes without NUL,
    /// and a Thompson allocation's prior, floor (at most 1/K), draws and
    /// window.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        key: String,
        variants: Vec<String>,
        weights: Vec<f64>,
        coverage: f64,
        holdout: Option<(String, f64)>,
        namespace: Option<(String, f64, f64)>,
        targeted: bool,
        fallback: usize,
        hash: HashVersion,
        seed: String,
        allocation: Allocation,
    ) -> Result<Experiment> {
        let bad = |why: crate::error::Text| Err(Error::experiment_owned(key.as_str().into(), why));
        let k = variants.len();
        if !is_name(&key) || !(2..=MAX_VARIANTS).contains(&k) {
            return bad(text!("needs a key and 2 to {MAX_VARIANTS} variants"));
        }
        for (i, v) in variants.iter().enumerate() {
            if !is_name(v) || variants[..i].contains(v) {
                return bad(text!("variant {i} is not a new name"));
            }
        }
        let sum: f64 = weights.iter().sum();
        if weights.len() != k
            || weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
            || (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE
        {
            return bad(text!("needs one weight per variant, summing to 1"));
        }
        if !(0.0..=1.0).contains(&coverage) || fallback >= k {
            return bad(text!("has a coverage outside [0, 1] or no such fallback"));
        }
        if seed.is_empty() || seed.len() > MAX_TEXT || seed.contains('\0') {
            return bad(text!("needs a seed of 1 to {MAX_TEXT} bytes without NUL"));
        }
        let holdout = match holdout {
            None => None,
            Some((hkey, fraction)) => {
                if !is_name(&hkey) || !(0.0..1.0).contains(&fraction) {
                    return bad(text!("has a bad holdout"));
                }
                Some(Holdout {
                    seed: purpose_seed(&["holdout", &hkey]),
                    key: hkey,
                    fraction,
                })
            }
        };
        let namespace = match namespace {
            None => None,
            Some((name, start, end)) => {
                if !is_name(&name) || !(0.0 <= start && start < end && end <= 1.0) {
                    return bad(text!("has a bad namespace"));
                }
                Some(Namespace {
                    seed: purpose_seed(&["namespace", &name]),
                    growthbook_seed: ["__", &name].concat(),
                    name,
                    start,
                    end,
                })
            }
        };
        if let Allocation::Thompson {
            prior,
            min_probability,
            samples,
            window_ms,
        } = &allocation
        {
            let ok = prior.len() == k
                && prior
                    .iter()
                    .all(|(s, f)| *s >= 0.0 && *f >= 0.0 && s + f <= 1e9)
                && (0.0..=1.0 / k as f64).contains(min_probability)
                && (1..=MAX_SAMPLES).contains(&u64::from(*samples))
                && (1.0..=365.0 * DEFAULT_WINDOW_MS).contains(window_ms);
            if !ok {
                return bad(text!("has a bad thompson allocation"));
            }
        }
        let seeds = variants
            .iter()
            .map(|v| purpose_seed(&["variant", &seed, v]))
            .collect();
        let coverage_seed = purpose_seed(&["coverage", &seed]);
        Ok(Experiment {
            key,
            variants,
            weights,
            coverage,
            holdout,
            namespace,
            #[cfg(feature = "json")]
            targeting: Vec::new(),
            targeted,
            fallback,
            hash,
            seed,
            allocation,
            seeds,
            coverage_seed,
        })
    }
}

impl Experiments {
    /// A checked set: at most 256 experiments, keys unique, ranges of one
    /// namespace disjoint.
    pub fn new(list: Vec<Experiment>) -> Result<Experiments> {
        if list.len() > MAX_EXPERIMENTS {
            return Err(Error::experiment_owned(
                "experiments".into(),
                text!("has over {MAX_EXPERIMENTS} items"),
            ));
        }
        for (i, e) in list.iter().enumerate() {
            for other in &list[..i] {
                let overlap = match (&e.namespace, &other.namespace) {
                    (Some(a), Some(b)) => a.name == b.name && a.start < b.end && b.start < a.end,
                    _ => false,
                };
                if other.key == e.key || overlap {
                    return Err(Error::experiment_owned(
                        e.key.as_str().into(),
                        text!("repeats a key or overlaps a namespace range"),
                    ));
                }
            }
        }
        Ok(Experiments { list })
    }
}
