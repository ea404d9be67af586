//! From page signals to a hashed sparse feature vector.
//!
//! A context is namespaced: `{ page: { section: "sports", price: 12.5 } }`.
//! Only allowlisted namespaces survive; the rest are dropped before anything is
//! hashed or validated. Each surviving feature is hashed (see [`hash`]) into one
//! of `2^bits` slots, configured namespace pairs are crossed (VW's quadratic
//! interactions, which is how variant features meet context features), and a
//! constant bias slot is added.

use crate::prelude::*;

pub mod hash;

use crate::error::{Error, Result};
pub use hash::HASH_VERSION;

#[cfg(feature = "json")]
mod json;
#[cfg(feature = "json")]
pub(crate) use json::{FeatureOptions, Label, Origin};

/// Longest namespace, feature name or categorical value, in bytes.
pub(crate) const MAX_STRING_BYTES: usize = 256;
/// Most raw features (list items count one each) in one shared context plus one action.
pub(crate) const MAX_FEATURES: usize = 256;
/// Most features after interactions are expanded.
pub(crate) const MAX_EXPANDED_FEATURES: usize = 4096;
/// Smallest and largest hash width.
pub(crate) const BITS_RANGE: (u8, u8) = (4, 18);
/// Most allowlisted namespaces (a namespace index is one byte at the boundary).
pub(crate) const MAX_NAMESPACES: usize = 255;

/// Validated feature configuration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FeatureConfig {
    pub(crate) hash_version: u32,
    pub(crate) bits: u8,
    /// The allowlisted namespaces' names, sorted, deduplicated (read from
    /// JSON only: the .wasm knows namespaces by index and seed).
    #[cfg(feature = "json")]
    pub(crate) allow: Vec<String>,
    /// Indices into the allowlist, `a <= b`.
    pub(crate) interactions: Vec<(usize, usize)>,
    pub(crate) ns_seeds: Vec<u32>,
    /// Scale each folded vector to unit length (see [`FeatureConfig::fold_into`]).
    pub(crate) normalize: bool,
    /// Fold each feature (not interactions, not the constant) into two
    /// slots, each with a weight of ±1/√2 (`slotsPerFeature: 2`): the second
    /// slot and both signs come from the feature's hash, so two features
    /// that share one slot almost never share both, and no weight is shared
    /// whole; the vector's length is unchanged.
    pub(crate) two_slots: bool,
}

/// Feature defaults: the hash width, whether vectors are normalized, and
/// whether each feature takes two slots.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults {
    pub(crate) bits: u8,
    pub(crate) normalize: bool,
    pub(crate) two_slots: bool,
}

/// A slot's own features (up to [`WIDE_MAX_VARIANTS`] variants, without a
/// catalogue; see [`slot_defaults`]): 128 slots, normalized. Colliding features share
/// one weight: 64 slots trail Vowpal Wabbit on a context of 30 dense
/// numbers (breast_cancer, about 6 collisions) where 128 beat it, and 128
/// earned more on every real dataset with a dense context and on the
/// generated problems. 128 is the widest table that keeps a full covariance
/// per variant (66 KB, an O(8256) update); its stored form is the f32
/// Cholesky factor over the slots learned in (engine::persist), which
/// keeps issue #4's snapshot measure under its 64 KB target.
/// Normalizing gives every context length 1, so one prior variance fits
/// contexts of 3 features and of 60 (on real data the best fixed prior
/// variance went as 1 / the number of features). One slot per feature: two
/// slots cost wine, whose 13 features never collide, 0.015. Chosen with
/// scripts/eval-real.py and scripts/eval-quality.mjs (docs/performance.md).
pub(crate) const SLOT_DEFAULTS: Defaults = Defaults {
    bits: 7,
    normalize: true,
    two_slots: false,
};

/// The features of a catalogue, and of a slot of more than
/// [`WIDE_MAX_VARIANTS`] variants: 64 slots. A catalogue's learner is
/// diagonal past 128 weights whatever the width, so the full covariance
/// that makes 128 slots the default of a slot's own learners does not
/// apply; 64 keep its weights (64 × 2^catalogue.bits) at half the memory,
/// and a catalogue slot made before 128 became the default keeps its model
/// version (on the Open Bandit Dataset's "all" campaign no width could be
/// told apart from another: 38 clicks; docs/performance.md). A slot of 33
/// to 64 variants keeps 64 slots so that its covariances stay under 1.1 MB
/// (64 × 17 KB, against 4.2 MB at 128 slots) and its private reports with
/// `learning` within their 4,096 entries per group (variants × slots).
pub(crate) const NARROW_DEFAULTS: Defaults = Defaults {
    bits: 6,
    normalize: true,
    two_slots: false,
};

/// Most variants of a slot (without a catalogue) whose features default to
/// [`SLOT_DEFAULTS`]' 128 slots; past it, [`NARROW_DEFAULTS`]' 64.
pub(crate) const WIDE_MAX_VARIANTS: usize = 32;

/// The feature defaults of a slot without a model, of `variants` variants.
#[cfg(feature = "json")]
pub(crate) fn slot_defaults(variants: usize, catalogue: bool) -> Defaults {
    if catalogue || variants > WIDE_MAX_VARIANTS {
        NARROW_DEFAULTS
    } else {
        SLOT_DEFAULTS
    }
}

/// A model's features: as before normalization existed (64 slots, raw
/// values), so a model written then keeps its meaning.
pub(crate) const MODEL_DEFAULTS: Defaults = Defaults {
    bits: 6,
    normalize: false,
    two_slots: false,
};

impl FeatureConfig {
    /// A checked configuration from its parts: hash version 1, `bits` in
    /// [4, 18], one hash seed per allowlisted namespace (at most 255), and
    /// interactions as pairs of namespace indices `a <= b`, each once. The
    /// TypeScript side computes the seeds from the sorted allowlist.
    pub(crate) fn new(
        hash_version: u32,
        bits: u8,
        ns_seeds: Vec<u32>,
        interactions: Vec<(usize, usize)>,
    ) -> Result<FeatureConfig> {
        if hash_version != HASH_VERSION {
            return Err(Error::option(
                "features.hashVersion",
                text!("should be {HASH_VERSION}, but is {hash_version}"),
            ));
        }
        if !(BITS_RANGE.0..=BITS_RANGE.1).contains(&bits) {
            return Err(Error::option(
                "features.bits",
                text!(
                    "should be in [{}, {}], but is {bits}",
                    BITS_RANGE.0,
                    BITS_RANGE.1
                ),
            ));
        }
        if ns_seeds.len() > MAX_NAMESPACES {
            return Err(Error::option(
                "features.allow",
                text!("lists over {MAX_NAMESPACES} namespaces"),
            ));
        }
        let n = ns_seeds.len();
        for (i, &(a, b)) in interactions.iter().enumerate() {
            if a > b || b >= n || interactions[..i].contains(&(a, b)) {
                return Err(Error::option(
                    "features.interactions",
                    text!("pair {i} is not an ordered pair of allowlisted namespaces, once"),
                ));
            }
        }
        Ok(FeatureConfig {
            hash_version,
            bits,
            #[cfg(feature = "json")]
            allow: Vec::new(),
            interactions,
            ns_seeds,
            normalize: false,
            two_slots: false,
        })
    }

    /// This configuration with each feature in two slots, or in one.
    pub(crate) fn with_two_slots(mut self, two_slots: bool) -> FeatureConfig {
        self.two_slots = two_slots;
        self
    }

    /// This configuration with each folded vector scaled to unit length, or not.
    pub(crate) fn normalized(mut self, normalize: bool) -> FeatureConfig {
        self.normalize = normalize;
        self
    }

    /// Number of allowlisted namespaces.
    pub(crate) fn namespaces(&self) -> usize {
        self.ns_seeds.len()
    }
}

/// A feature vector: sorted unique slot indices with their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SparseVec {
    /// Slot indices, strictly increasing.
    pub(crate) idx: Vec<u32>,
    /// Values, same length as `idx`.
    pub(crate) val: Vec<f64>,
}

impl SparseVec {
    /// Make this a copy of `other`, reusing this vector's buffers.
    pub(crate) fn copy_from(&mut self, other: &SparseVec) {
        self.idx.clear();
        self.idx.extend_from_slice(&other.idx);
        self.val.clear();
        self.val.extend_from_slice(&other.val);
    }

    /// Dot product with a dense vector.
    pub(crate) fn dot(&self, dense: &[f64]) -> f64 {
        insitu_kernels::sparse_dot(&self.idx, &self.val, dense)
    }

    /// Refill from (slot, value) pairs, every slot below `dim`: sorted by
    /// slot, duplicates summed in input order. Sums go through a dense
    /// accumulator, so only the distinct slots are sorted (sorting the pairs
    /// was most of a decision's cost); buffers are reused, so a warm decision
    /// allocates nothing.
    fn fill_from(&mut self, pairs: &[(u32, f64)], dense: &mut Dense, dim: usize) {
        if dense.acc.len() < dim {
            dense.acc.resize(dim, 0.0);
            dense.seen.resize(dim, false);
        }
        self.idx.clear();
        self.val.clear();
        insitu_kernels::accumulate(pairs, &mut dense.acc, &mut dense.seen, &mut self.idx);
        insitu_kernels::order_slots(&mut self.idx, &dense.seen[..dim]);
        insitu_kernels::drain(&self.idx, &mut dense.acc, &mut dense.seen, &mut self.val);
    }
}

/// Scratch for [`FeatureConfig::fold_into`]: the pairs of one vector and a
/// dense accumulator over the slots, all zero between calls.
#[derive(Debug, Clone, Default)]
pub(crate) struct Dense {
    pairs: Vec<(u32, f64)>,
    acc: Vec<f64>,
    seen: Vec<bool>,
}

/// A feature hashed but not yet folded into a slot: namespace index, hash, value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hashed {
    ns: usize,
    h: u32,
    x: f64,
}

impl Hashed {
    /// A feature of namespace `ns` (an index into the sorted allowlist) whose
    /// name (and value, for a categorical) hashed to `h`, with value `x`.
    pub fn new(ns: usize, h: u32, x: f64) -> Hashed {
        Hashed { ns, h, x }
    }

    /// The namespace index.
    pub fn ns(&self) -> usize {
        self.ns
    }

    /// The feature's value.
    pub fn value(&self) -> f64 {
        self.x
    }

    /// The hash of its name (and categorical value).
    pub(crate) fn hash(&self) -> u32 {
        self.h
    }
}

/// One term of an expanded feature vector ([`FeatureConfig::expand_each`]):
/// indices are into the features it was expanded from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Term {
    /// The bias slot.
    Constant,
    /// A feature on its own.
    Feature(usize),
    /// The product of two features (a configured interaction).
    Cross(usize, usize),
}

impl FeatureConfig {
    /// Hash seed of each allowlisted namespace, in `allow` order.
    pub(crate) fn ns_seeds(&self) -> &[u32] {
        &self.ns_seeds
    }

    /// Number of slots, `2^bits`.
    pub(crate) fn dim(&self) -> usize {
        1 << self.bits
    }

    /// Fold hashed features (shared plus one action's) into a sparse vector,
    /// adding interactions and the constant.
    pub(crate) fn fold(&self, feats: &[Hashed]) -> Result<SparseVec> {
        let mut out = SparseVec::default();
        self.fold_into(feats, &mut Dense::default(), &mut out)?;
        Ok(out)
    }

    /// [`fold`](Self::fold) into caller-owned buffers.
    pub(crate) fn fold_into(
        &self,
        feats: &[Hashed],
        dense: &mut Dense,
        out: &mut SparseVec,
    ) -> Result<()> {
        self.fold_as(feats, dense, out, self.normalize)
    }

    /// [`fold`](Self::fold) without the normalization: the values the page
    /// gave, for the factor [`scale`](Self::scale) takes (`explain`).
    pub(crate) fn fold_raw(&self, feats: &[Hashed]) -> Result<SparseVec> {
        let mut out = SparseVec::default();
        self.fold_as(feats, &mut Dense::default(), &mut out, false)?;
        Ok(out)
    }

    fn fold_as(
        &self,
        feats: &[Hashed],
        dense: &mut Dense,
        out: &mut SparseVec,
        normalize: bool,
    ) -> Result<()> {
        let mut pairs = core::mem::take(&mut dense.pairs);
        let result = self.expand(feats, &mut pairs);
        if result.is_ok() {
            out.fill_from(&pairs, dense, self.dim());
            if normalize {
                let scale = self.scale(out);
                out.val.iter_mut().for_each(|x| *x *= scale);
            }
        }
        dense.pairs = pairs;
        result
    }

    /// The factor [`fold_into`](Self::fold_into) applies to a folded vector
    /// whose values are `x`: `1 / |x|` when the configuration normalizes (so
    /// every context has the same length and one prior variance fits
    /// contexts of 3 features and of 60), otherwise 1. A vector whose values
    /// cancel to length 0 is left alone.
    #[inline(never)]
    pub(crate) fn scale(&self, x: &SparseVec) -> f64 {
        let n2 = x.val.iter().map(|v| v * v).sum::<f64>();
        if self.normalize && n2 > 0.0 && n2.is_finite() {
            1.0 / crate::prim::math::sqrt(n2)
        } else {
            1.0
        }
    }

    /// The (slot, value) pairs of `feats`: the constant, each feature, and
    /// each configured interaction product.
    fn expand(&self, feats: &[Hashed], pairs: &mut Vec<(u32, f64)>) -> Result<()> {
        pairs.clear();
        self.expand_each(feats, |slot, x, _| pairs.push((slot, x)))
    }

    /// Hand `each` every term of `feats` with its slot and value, in
    /// [`expand`](Self::expand)'s order: the constant, each feature, then
    /// each interaction product.
    pub(crate) fn expand_each(
        &self,
        feats: &[Hashed],
        mut each: impl FnMut(u32, f64, Term),
    ) -> Result<()> {
        let mask = (self.dim() - 1) as u32;
        each(hash::constant() & mask, 1.0, Term::Constant);
        for (i, f) in feats.iter().enumerate() {
            if self.two_slots {
                let (a, b, x, y) = two_slots(f.h, mask, f.x);
                each(a, x, Term::Feature(i));
                each(b, y, Term::Feature(i));
            } else {
                each(f.h & mask, f.x, Term::Feature(i));
            }
        }
        let mut count = 1 + feats.len();
        for &(a, b) in &self.interactions {
            for (i, fa) in feats.iter().enumerate().filter(|(_, f)| f.ns == a) {
                // Within one namespace, each unordered pair once.
                let start = if a == b { i + 1 } else { 0 };
                for (j, fb) in feats
                    .iter()
                    .enumerate()
                    .skip(start)
                    .filter(|(_, f)| f.ns == b)
                {
                    if count >= MAX_EXPANDED_FEATURES {
                        return Err(Error::TooManyFeatures {
                            count: crate::error::figure(count),
                            max: crate::error::figure(MAX_EXPANDED_FEATURES),
                        });
                    }
                    let x = fa.x * fb.x;
                    if !x.is_finite() {
                        return Err(Error::NonFiniteFeature {
                            field: "interaction product".into(),
                        });
                    }
                    each(hash::interaction(fa.h, fb.h) & mask, x, Term::Cross(i, j));
                    count += 1;
                }
            }
        }
        Ok(())
    }
}

/// Fold a catalogue variant's hashed features into `2^bits` slots (each
/// feature's hash under the mask, duplicates summed, slots increasing),
/// scaled to unit length so a variant described by 2 features and one by 8
/// start alike. No constant: a constant shared by every variant cannot rank
/// them. Values that cancel leave a slot of 0 (an all-zero vector is the
/// caller's to refuse).
pub(crate) fn fold_variant(feats: &[Hashed], bits: u8, out: &mut SparseVec) {
    let mask = (1u32 << bits) - 1;
    out.idx.clear();
    out.val.clear();
    for f in feats {
        let slot = f.h & mask;
        let at = out.idx.partition_point(|&s| s < slot);
        match out.val.get_mut(at) {
            Some(v) if out.idx.get(at) == Some(&slot) => *v += f.x,
            _ => {
                out.idx.insert(at, slot);
                out.val.insert(at, f.x);
            }
        }
    }
    // Scaled by the largest value first, so values near the ends of the
    // f64 range neither overflow nor vanish when squared.
    let max = out.val.iter().fold(0.0, |m: f64, v| m.max(v.abs()));
    if max > 0.0 && max.is_finite() {
        out.val.iter_mut().for_each(|x| *x /= max);
        let n2 = out.val.iter().map(|v| v * v).sum::<f64>();
        let s = 1.0 / crate::prim::math::sqrt(n2);
        out.val.iter_mut().for_each(|x| *x *= s);
    }
}

/// The outer product of a folded context `x` and a catalogue variant's
/// folded features `y` (`2^bits` slots), into `out`: slot `c · 2^bits + v`
/// holds `x_c · y_v`, in increasing order since both are.
pub(crate) fn outer_into(x: &SparseVec, y: &SparseVec, bits: u8, out: &mut SparseVec) {
    outer((&x.idx, &x.val), (&y.idx, &y.val), 0, bits, out);
}

/// [`outer_into`] of a catalogue decision's kept vector `x`: its slots
/// below `d` are the folded context, those from `d` on the variant's folded
/// features (shifted by `d`).
pub(crate) fn outer_split(x: &SparseVec, d: u32, bits: u8, out: &mut SparseVec) {
    let p = x.idx.partition_point(|&i| i < d);
    // (Checked reads, never out of bounds: no panic location in the .wasm.)
    outer(
        (x.idx.get(..p).unwrap_or(&[]), x.val.get(..p).unwrap_or(&[])),
        (x.idx.get(p..).unwrap_or(&[]), x.val.get(p..).unwrap_or(&[])),
        d,
        bits,
        out,
    );
}

/// The outer product of `x` and `y` (whose slots are `shift` past their
/// place), into `out`.
fn outer(x: (&[u32], &[f64]), y: (&[u32], &[f64]), shift: u32, bits: u8, out: &mut SparseVec) {
    out.idx.clear();
    out.val.clear();
    for (&c, &xc) in x.0.iter().zip(x.1) {
        for (&v, &yv) in y.0.iter().zip(y.1) {
            out.idx.push(c << bits | (v - shift));
            out.val.push(xc * yv);
        }
    }
}

/// The two slots of a feature hashed to `h` (under `mask`), and its value
/// `x` split between them: ±x/√2 each, the signs from the hash's top bits,
/// the second slot from a multiplicative mix of it (never the first).
pub(crate) fn two_slots(h: u32, mask: u32, x: f64) -> (u32, u32, f64, f64) {
    let h2 = h.wrapping_mul(0x9e37_79b1).rotate_left(13);
    let half = x * core::f64::consts::FRAC_1_SQRT_2;
    let sign = |bit: bool| if bit { -half } else { half };
    let a = h & mask;
    let mut b = h2 & mask;
    if b == a {
        b = (b + 1) & mask;
    }
    (
        a,
        b,
        sign(h & 0x8000_0000 != 0),
        sign(h2 & 0x4000_0000 != 0),
    )
}

/// Push one feature, refusing more than [`MAX_FEATURES`].
pub(crate) fn push(out: &mut Vec<Hashed>, h: Hashed) -> Result<()> {
    check_count(out.len() + 1)?;
    out.push(h);
    Ok(())
}

/// Refuse `count` raw features (a context plus one action's) over [`MAX_FEATURES`].
pub(crate) fn check_count(count: usize) -> Result<()> {
    if count > MAX_FEATURES {
        return Err(Error::TooManyFeatures {
            count: crate::error::figure(count),
            max: crate::error::figure(MAX_FEATURES),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{Json, Obj};
    use crate::prim::sort::sort_strings;

    fn cfg(allow: &[&str], inter: &[(&str, &str)], bits: u8) -> FeatureConfig {
        FeatureOptions {
            hash_version: None,
            bits: Some(bits),
            allow: Some(allow.iter().map(|s| s.to_string()).collect()),
            interactions: Some(
                inter
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            ),
            // Raw values, so the tests below can name them.
            normalize: Some(false),
            slots_per_feature: Some(1),
        }
        .check("features.")
        .unwrap()
    }

    #[test]
    fn normalized_vectors_have_length_one_and_keep_their_direction() {
        let raw = cfg(&["p"], &[("p", "p")], 10);
        let unit = raw.clone().normalized(true);
        let c = ctx(r#"{"p":{"n":2.5,"m":-4,"s":"a"}}"#);
        let (x, y) = (
            raw.featurize(&c, None).unwrap(),
            unit.featurize(&c, None).unwrap(),
        );
        assert_eq!(x.idx, y.idx);
        let len = |v: &SparseVec| v.val.iter().map(|a| a * a).sum::<f64>().sqrt();
        assert!((len(&y) - 1.0).abs() < 1e-12, "length {}", len(&y));
        let k = len(&x);
        assert!(k > 4.0, "the raw vector is longer than its largest value");
        for (a, b) in x.val.iter().zip(&y.val) {
            assert!((a / k - b).abs() < 1e-12);
        }
        // The factor is that of the raw vector, and 1 when not normalizing
        // or when the values cancel to nothing.
        assert!((unit.scale(&x) - 1.0 / k).abs() < 1e-15);
        assert_eq!(raw.scale(&x), 1.0);
        let zero = SparseVec {
            idx: vec![0, 3],
            val: vec![0.0, 0.0],
        };
        assert_eq!(unit.scale(&zero), 1.0);
        // A slot's defaults: 128 slots, normalized; a model's: 64, raw.
        let slot = FeatureOptions::default().check("").unwrap();
        assert_eq!((slot.bits, slot.normalize), (7, true));
        // 64 slots past 32 variants, and for a catalogue of any size.
        let bits = |k, c| slot_defaults(k, c).bits;
        assert_eq!(
            (bits(2, false), bits(32, false), bits(33, false)),
            (7, 7, 6)
        );
        assert_eq!((bits(2, true), bits(4096, true)), (6, 6));
        let model = FeatureOptions::default()
            .check_with("", MODEL_DEFAULTS)
            .unwrap();
        assert_eq!((model.bits, model.normalize), (6, false));
    }

    fn ctx(json: &str) -> Json<'_> {
        Json::parse(json, "context", Error::option_owned).unwrap()
    }

    #[test]
    fn non_allowlisted_namespaces_are_dropped_unread() {
        let c = cfg(&["page"], &[], 10);
        let a = c.featurize(&ctx(r#"{"page":{"s":"x"}}"#), None).unwrap();
        // `pii` would fail validation (null, an object) if it were read at all.
        let b = c
            .featurize(
                &ctx(r#"{"page":{"s":"x"},"pii":{"email":"a@b.c","bad":null,"o":{}}}"#),
                None,
            )
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.idx.len(), 2); // the feature and the constant
    }

    #[test]
    fn values_numbers_strings_booleans_and_lists() {
        let c = cfg(&["p"], &[], 18);
        let v = c
            .featurize(
                &ctx(r#"{"p":{"n":2.5,"s":"a","l":["x","y"],"b":true}}"#),
                None,
            )
            .unwrap();
        assert_eq!(v.idx.len(), 6);
        assert!(v.val.contains(&2.5));
        assert!(v.idx.iter().all(|&i| i < 1 << 18));
        assert!(v.idx.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn collisions_sum_in_small_tables() {
        let c = cfg(&["p"], &[], 4);
        let json: String = (0..40)
            .map(|i| format!("\"f{i}\":1"))
            .collect::<Vec<_>>()
            .join(",");
        let v = c
            .featurize(&ctx(&format!("{{\"p\":{{{json}}}}}")), None)
            .unwrap();
        assert!(v.idx.len() <= 16);
        assert!((v.val.iter().sum::<f64>() - 41.0).abs() < 1e-12);
    }

    #[test]
    fn interactions_cross_context_and_action() {
        let c = cfg(&["a", "u"], &[("u", "a")], 18);
        let shared = ctx(r#"{"u":{"seg":"x","n":2}}"#);
        let act = ctx(r#"{"a":{"color":"red"}}"#);
        let v = c.featurize(&shared, Some(&act)).unwrap();
        // 2 shared + 1 action + 2 crosses + constant.
        assert_eq!(v.idx.len(), 6);
        assert!(v.val.contains(&2.0));
    }

    #[test]
    fn bad_values_are_rejected_with_codes() {
        let c = cfg(&["p"], &[], 8);
        let e = c.featurize(&ctx(r#"{"p":{"x":null}}"#), None).unwrap_err();
        assert_eq!(e.code(), "NON_FINITE_FEATURE");
        assert!(e.to_string().contains("p.x"));
        let long = format!(r#"{{"p":{{"x":"{}"}}}}"#, "z".repeat(300));
        assert_eq!(
            c.featurize(&ctx(&long), None).unwrap_err().code(),
            "STRING_TOO_LONG"
        );
        let many = format!(r#"{{"p":{{"x":[{}]}}}}"#, vec!["\"q\""; 300].join(","));
        assert_eq!(
            c.featurize(&ctx(&many), None).unwrap_err().code(),
            "TOO_MANY_FEATURES"
        );
        for bad in [
            r#"{"p":{"x":{}}}"#,
            r#"{"p":{"x":[1]}}"#,
            r#"{"p":3}"#,
            r#"[1]"#,
            r#"{"p":{"":1}}"#,
        ] {
            assert_eq!(
                c.featurize(&ctx(bad), None).unwrap_err().code(),
                "INVALID_CONTEXT",
                "{bad}"
            );
        }
    }

    #[test]
    fn sorts_order_keys() {
        let mut rng = crate::prim::rng::Rng::new(4);
        for n in [0, 1, 2, 10, 1000, 4096] {
            let mut v: Vec<u32> = (0..n).map(|_| (rng.next_u64() % 300) as u32).collect();
            let mut want = v.clone();
            want.sort();
            insitu_kernels::sort_slots(&mut v);
            assert_eq!(v, want);
        }
        let mut s: Vec<String> = ["b", "a", "c", "a"].iter().map(|x| x.to_string()).collect();
        sort_strings(&mut s);
        assert_eq!(s, ["a", "a", "b", "c"]);
    }

    #[test]
    fn options_are_checked() {
        let bad_bits = FeatureOptions {
            bits: Some(30),
            ..Default::default()
        }
        .check("features.");
        let e = bad_bits.unwrap_err();
        assert_eq!(e.code(), "INVALID_OPTION");
        assert!(e.to_string().contains("features.bits") && e.to_string().contains("30"));
        let bad_inter = FeatureOptions {
            allow: Some(vec!["a".into()]),
            interactions: Some(vec![("a".into(), "zz".into())]),
            ..Default::default()
        };
        assert!(bad_inter.check("").unwrap_err().to_string().contains("zz"));
        let bad_hash = FeatureOptions {
            hash_version: Some(2),
            ..Default::default()
        };
        assert_eq!(bad_hash.check("").unwrap_err().code(), "INVALID_OPTION");
        let j = ctx(r#"{"bits":5,"allow":["a"],"interactions":[["a"]]}"#);
        let e = FeatureOptions::read(Obj::new(&j, "features", Error::option_owned).unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("features.interactions[0]"), "{e}");
        let j = ctx(r#"{"bitz":5}"#);
        let e = FeatureOptions::read(Obj::new(&j, "features", Error::option_owned).unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("features.bitz"), "{e}");
    }

    #[test]
    fn hashing_is_stable_across_releases() {
        // Golden slots: a change here silently invalidates every shipped model.
        let c = cfg(&["page"], &[], 18);
        let v = c
            .featurize(&ctx(r#"{"page":{"section":"sports"}}"#), None)
            .unwrap();
        let s = hash::categorical(hash::namespace_seed("page"), "section", "sports") & 0x3ffff;
        let k = hash::constant() & 0x3ffff;
        let mut want = vec![s, k];
        want.sort_unstable();
        assert_eq!(v.idx, want);
        assert_eq!((s, k), (GOLDEN_SECTION_SPORTS, GOLDEN_CONSTANT));
    }
    const GOLDEN_SECTION_SPORTS: u32 = 75797;
    const GOLDEN_CONSTANT: u32 = 99154;
}
