//! Experiment configuration: plain data from the site, checked once into
//! [`Experiments`]; nothing downstream re-checks it.
//!
//! Checked where? The JSON reader ([`Experiments::parse`], native builds)
//! and the TypeScript side (`src/ts/validate/experiments.ts`, for the .wasm)
//! apply every rule with messages naming the field. The .wasm's reader of
//! the boundary layout ([`Experiment::read`]) trusts that and checks only
//! what keeps it safe: lengths that fit, a fallback among the variants, a
//! known hash version, a sample count that bounds the work.

use crate::prelude::*;

use super::hash::purpose_seed;
#[cfg(feature = "json")]
use super::targeting::Condition;
use crate::error::{Error, Result};

/// Most experiments in one set.
#[cfg(feature = "json")]
pub(crate) const MAX_EXPERIMENTS: usize = 256;
/// Most variants of one experiment.
pub(crate) const MAX_VARIANTS: usize = 32;
/// Most targeting conditions of one experiment, and values of one `in` list.
#[cfg(feature = "json")]
pub(crate) const MAX_CONDITIONS: usize = 32;
/// Longest key, variant id, namespace or attribute path, in bytes.
pub(crate) const MAX_NAME: usize = 64;
/// Longest seed or string condition value, in bytes.
#[cfg(feature = "json")]
pub(crate) const MAX_TEXT: usize = 256;
/// How far the weights may sum from 1: enough for decimal fractions such as
/// 0.1 + 0.2 + 0.7, far too little to hide a mistake.
#[cfg(feature = "json")]
pub(crate) const WEIGHT_SUM_TOLERANCE: f64 = 1e-6;
/// Thompson draws per decision: default and limit.
#[cfg(feature = "json")]
pub(crate) const DEFAULT_SAMPLES: u32 = 512;
#[cfg(feature = "json")]
pub(crate) const MAX_SAMPLES: u64 = 8192;
/// Default reward window of a bandit trial: one day.
#[cfg(feature = "json")]
pub(crate) const DEFAULT_WINDOW_MS: f64 = crate::prim::clock::DAY_MS;

/// Whether `v` is a name: 1 to 64 letters, digits, `_`, `-`, `.`, `:` or
/// `/`. Keys, variant ids, namespaces and attribute paths are names, and the
/// state reader admits only what a configuration could hold.
pub(super) fn is_name(v: &[u8]) -> bool {
    let mut ok = !v.is_empty() && v.len() <= MAX_NAME;
    for &b in v {
        ok &= b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/');
    }
    ok
}

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
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Allocation {
    /// Fixed weights: deterministic from the unit, for clean inference.
    Weights,
    /// Thompson sampling over a Beta-Bernoulli posterior per variant (its
    /// prior is [`Variant::prior`]), from the rewards seen on this device,
    /// for optimisation.
    Thompson {
        /// Least probability any variant keeps, so every trial's probability
        /// is bounded away from 0 for inverse-propensity analysis.
        min_probability: f64,
        /// Posterior draws used to compute the served distribution.
        samples: u32,
        /// How long a trial waits for its reward before counting as a failure.
        window_ms: f64,
    },
}

/// The names an allocator deals in (experiment keys, variant ids,
/// namespaces, hash seeds), each kept once: everything else refers to a
/// name by its symbol, its offset here, so names are copied and compared
/// as numbers. Each entry is a length (u16), then the name's bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Names(pub(crate) Vec<u8>);

impl Names {
    /// The symbol of `name`, added if new.
    pub(crate) fn sym(&mut self, name: &[u8]) -> u32 {
        let mut at = 0;
        while let Some(n) = self.0.get(at..at + 2) {
            let end = at + 2 + (n[0] as usize | (n[1] as usize) << 8);
            if self.0.get(at + 2..end) == Some(name) {
                return at as u32;
            }
            at = end;
        }
        self.0.extend_from_slice(&(name.len() as u16).to_le_bytes());
        self.0.extend_from_slice(name);
        at as u32
    }

    /// The name of symbol `sym` (empty for [`NO_NAME`]).
    pub(crate) fn get(&self, sym: u32) -> &[u8] {
        let at = (sym as usize).saturating_add(2);
        let n = match self.0.get(sym as usize..at) {
            Some(&[a, b]) => u16::from_le_bytes([a, b]) as usize,
            _ => 0,
        };
        self.0.get(at..at.saturating_add(n)).unwrap_or_default()
    }

    /// The name of `sym` as text ("" if it is not UTF-8, which neither
    /// reader lets in).
    pub(crate) fn text(&self, sym: u32) -> &str {
        crate::prim::utf8::str(self.get(sym)).unwrap_or_default()
    }
}

/// The symbol of no name: a namespace's when there is none.
pub(crate) const NO_NAME: u32 = u32::MAX;

/// One variant of an experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Its id's symbol.
    pub(crate) id: u32,
    /// Its weight (weights sum to 1; equal when not given).
    pub weight: f64,
    /// A bandit's prior (successes, failures), added to Beta(1, 1).
    pub prior: (f64, f64),
    /// Its `insitu/1` purpose seed.
    pub(crate) seed: u32,
}

/// A holdout group shared by every experiment naming the same key.
#[derive(Debug, Clone, PartialEq)]
pub struct Holdout {
    /// Fraction of units held out, in [0, 1).
    pub fraction: f64,
    /// The `insitu/1` purpose seed of its key.
    pub(crate) seed: u32,
}

/// A namespace (layer): experiments in one namespace with disjoint ranges
/// never share a unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    /// Its name's symbol.
    pub(crate) name: u32,
    /// This experiment's range of the namespace, `[start, end)` within [0, 1].
    pub start: f64,
    /// End of the range (exclusive).
    pub end: f64,
    /// The `insitu/1` purpose seed of its name.
    pub(crate) seed: u32,
}

/// One checked experiment. Its names are symbols of the [`Experiments`]
/// that hold it.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub(crate) key: u32,
    pub(crate) variants: Vec<Variant>,
    pub(crate) coverage: f64,
    /// Fraction 0 when there is none (a unit's position is never below 0).
    pub(crate) holdout: Holdout,
    /// [`NO_NAME`] and `[0, 1)` when there is none (every position is in it).
    pub(crate) namespace: Namespace,
    /// Targeting conditions, all of which must hold (read from JSON only:
    /// for the .wasm the TypeScript side evaluates them).
    #[cfg(feature = "json")]
    pub(crate) targeting: Vec<Condition>,
    pub(crate) targeted: bool,
    pub(crate) fallback: usize,
    pub(crate) hash: HashVersion,
    /// The hash seed's symbol (default: the key).
    pub(crate) seed: u32,
    pub(crate) allocation: Allocation,
    /// `insitu/1` purpose seed of the coverage draw.
    pub(crate) coverage_seed: u32,
}

impl Experiment {
    /// Its variants, in the order given.
    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }

    /// Fraction of eligible units in the experiment, in [0, 1].
    pub fn coverage(&self) -> f64 {
        self.coverage
    }

    /// The holdout group, if any.
    pub fn holdout(&self) -> Option<&Holdout> {
        Some(&self.holdout).filter(|h| h.fraction > 0.0)
    }

    /// The namespace range, if any.
    pub fn namespace(&self) -> Option<&Namespace> {
        Some(&self.namespace).filter(|n| n.name != NO_NAME)
    }

    /// Whether the experiment has targeting conditions.
    pub fn targeted(&self) -> bool {
        self.targeted
    }

    /// The index of the variant served outside the experiment.
    pub fn fallback(&self) -> usize {
        self.fallback
    }

    /// How units are hashed.
    pub fn hash(&self) -> HashVersion {
        self.hash
    }

    /// Fixed weights or a bandit.
    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// Set the hash seed `seed`, and the purpose seeds of the variants and
    /// of the coverage draw that derive from it.
    pub(crate) fn set_seed(&mut self, names: &mut Names, seed: &[u8]) {
        for v in &mut self.variants {
            v.seed = purpose_seed(b"variant", seed, names.get(v.id));
        }
        self.coverage_seed = purpose_seed(b"coverage", seed, b"");
        self.seed = names.sym(seed);
    }

    /// Hold out `fraction` of the units in holdout `key`.
    pub(crate) fn set_holdout(&mut self, key: &[u8], fraction: f64) {
        self.holdout = Holdout {
            fraction,
            seed: purpose_seed(b"holdout", key, b""),
        };
    }

    /// Take the range `[start, end)` of namespace `name`.
    pub(crate) fn set_namespace(&mut self, names: &mut Names, name: &[u8], start: f64, end: f64) {
        self.namespace = Namespace {
            name: names.sym(name),
            start,
            end,
            seed: purpose_seed(b"namespace", name, b""),
        };
    }
}

/// A checked set of experiments: keys unique, namespace ranges disjoint
/// (checked by [`Experiments::parse`], or for the .wasm by the TypeScript
/// side).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Experiments {
    /// The names of the experiments, and of the state of the allocator
    /// that holds them.
    pub(crate) names: Names,
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
            .position(|e| self.names.get(e.key) == key.as_bytes())
            .ok_or_else(|| Error::UnknownExperiment { key: key.into() })
    }

    /// The key of experiment `index`.
    pub fn key(&self, index: usize) -> Option<&str> {
        Some(self.names.text(self.list.get(index)?.key))
    }

    /// The id of variant `variant` of experiment `index`.
    pub fn variant(&self, index: usize, variant: usize) -> Option<&str> {
        let e = self.list.get(index)?;
        Some(self.names.text(e.variants.get(variant)?.id))
    }

    /// Experiment `key` with variant `ids` (weights 0, no prior), its names
    /// added here: full coverage, no holdout, namespace or targeting,
    /// fallback 0, fixed weights and no seed. Readers then set the seed
    /// ([`Experiment::set_seed`]) and the rest, and add it to the list.
    pub(crate) fn start<'a>(
        &mut self,
        key: &[u8],
        ids: impl Iterator<Item = &'a [u8]>,
    ) -> Experiment {
        let names = &mut self.names;
        let mut variants = Vec::new();
        for id in ids {
            variants.push(Variant {
                id: names.sym(id),
                weight: 0.0,
                prior: (0.0, 0.0),
                seed: 0,
            });
        }
        Experiment {
            key: names.sym(key),
            variants,
            coverage: 1.0,
            holdout: Holdout {
                fraction: 0.0,
                seed: 0,
            },
            namespace: Namespace {
                name: NO_NAME,
                start: 0.0,
                end: 1.0,
                seed: 0,
            },
            #[cfg(feature = "json")]
            targeting: Vec::new(),
            targeted: false,
            fallback: 0,
            hash: HashVersion::Insitu1,
            seed: 0,
            allocation: Allocation::Weights,
            coverage_seed: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kept_once_and_no_name_is_empty() {
        let mut n = Names::default();
        let a = n.sym(b"hero");
        let b = n.sym(b"");
        let c = n.sym(&[b'x'; 300]);
        assert_eq!((n.sym(b"hero"), n.sym(b""), n.sym(&[b'x'; 300])), (a, b, c));
        assert_eq!(
            (n.get(a), n.get(b), n.get(c)),
            (&b"hero"[..], &b""[..], &[b'x'; 300][..])
        );
        assert_eq!(n.text(a), "hero");
        assert_eq!(n.get(NO_NAME), b"");
        assert_eq!(n.get(u32::MAX - 1), b"");
        assert!(
            is_name(b"a-Z_0.9:/x") && !is_name(b"") && !is_name(b"a b") && !is_name(&[b'a'; 65])
        );
    }
}
