//! The compact model: the prior a site ships, and the per-variant posteriors
//! that local learning grows from it.
//!
//! Format 1 (JSON, or the same shape as a JS object):
//!
//! ```json
//! {
//!   "format": 1,
//!   "features": { "hashVersion": 1, "bits": 5, "allow": ["page"], "interactions": [["page", "variant"]] },
//!   "noise": 0.25,
//!   "variants": [
//!     { "id": "hero-a", "weights": { "0": 0.1, "17": 0.4 }, "variance": 1.0 },
//!     { "id": "hero-b", "features": { "variant": { "tone": "urgent" } }, "variance": [1.0, ...] }
//!   ],
//!   "version": "m1-…"
//! }
//! ```
//!
//! `weights` is sparse (slot index → weight, missing slots are 0) or a dense
//! array of `2^bits` numbers; `variance` is one number for every slot or a
//! dense array. The version is a content hash of the validated fields, so it
//! does not change with JSON formatting; when the file states one, it must
//! match, which catches truncated or edited models.

use crate::prelude::*;

pub(crate) mod posterior;

use crate::error::{Error, Result};
use crate::features::{FeatureConfig, Hashed, SparseVec};
#[cfg(feature = "json")]
use crate::json::Json;
pub(crate) use posterior::Posterior;

#[cfg(feature = "json")]
mod json;
#[cfg(feature = "json")]
pub(crate) use json::positive;

/// The only model format so far.
pub(crate) const MODEL_FORMAT: u32 = 1;
/// Most variants one model or engine may hold.
pub(crate) const MAX_VARIANTS: usize = 64;
/// Most variants a catalogue slot may hold (see [`Catalogue`]).
pub(crate) const MAX_CATALOGUE: usize = 4096;
/// Smallest and largest hash width of a catalogue's variant features.
pub(crate) const CATALOGUE_BITS: (u8, u8) = (1, 10);
/// Default hash width of a catalogue's variant features: 64 slots.
pub(crate) const DEFAULT_CATALOGUE_BITS: u8 = 6;
/// Most bits of a catalogue learner's weights: the context's bits plus the
/// variant features' (2^16 weights: 1 MB of mean and variance).
pub(crate) const MAX_CATALOGUE_DIM_BITS: u8 = 16;
/// Default observation noise variance: the largest variance of a reward in [0, 1].
pub(crate) const DEFAULT_NOISE: f64 = 0.25;
/// Default prior variance of every weight when no model is shipped.
pub(crate) const DEFAULT_PRIOR_VARIANCE: f64 = 1.0;

/// A validated variant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variant {
    /// The variant's id (read from JSON only: the .wasm knows variants by index).
    pub(crate) id: String,
    /// The variant's own features as given (JSON only: the .wasm gets them hashed).
    #[cfg(feature = "json")]
    pub(crate) features: Option<Json<'static>>,
    /// `features` hashed once, at validation; what every decision folds in.
    pub(crate) hashed: Vec<Hashed>,
    pub(crate) mean: Vec<f64>,
    pub(crate) variance: Vec<f64>,
}

/// A validated model: everything needed to score variants before any learning.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CompactModel {
    pub(crate) features: FeatureConfig,
    pub(crate) noise: f64,
    pub(crate) variants: Vec<Variant>,
    pub(crate) version: String,
    /// One learner shared by every variant (a catalogue), or one per variant.
    pub(crate) catalogue: Option<Catalogue>,
}

/// A catalogue: one learner whose weights every variant shares through its
/// own features (VW's action-dependent features with a single model, as
/// `--cb_explore_adf` learns them). A variant's score is `x' W y`: the
/// folded context `x` (2^bits slots) against the variant's folded features
/// `y` (2^catalogue-bits slots, unit length), so the weights are the outer
/// product's, slot `c · 2^catalogue-bits + v`, and the state grows with the
/// feature space, not with the number of variants. With one-hot variant
/// features (each variant a slot of its own) this is exactly one learner per
/// variant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Catalogue {
    /// Hash width of the variants' features.
    pub(crate) bits: u8,
    /// The prior: zero means, one variance everywhere.
    pub(crate) mean: Vec<f64>,
    pub(crate) variance: Vec<f64>,
    /// Each variant's features folded, in variant order.
    pub(crate) y: Vec<SparseVec>,
}

impl CompactModel {
    /// The content hash, e.g. `m1-0123456789abcdef`.
    pub(crate) fn version(&self) -> &str {
        &self.version
    }

    /// The space the learner's statistics live in: the feature settings
    /// and each variant's own features, not the prior's weights (`f1-` and
    /// a CRC-32). Two models with the same space count the same X'y and
    /// X'X for the same observations, so a new prior keeps a period's report
    /// statistics.
    pub(crate) fn space(&self) -> String {
        let f = &self.features;
        let mut b = Vec::new();
        let flags = u32::from(f.normalize) | u32::from(f.two_slots) << 1;
        for x in [f.hash_version, u32::from(f.bits), flags] {
            b.extend_from_slice(&x.to_le_bytes());
        }
        for s in &f.ns_seeds {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b.push(0xff);
        for (x, y) in &f.interactions {
            b.extend_from_slice(&(*x as u32).to_le_bytes());
            b.extend_from_slice(&(*y as u32).to_le_bytes());
        }
        for v in &self.variants {
            b.push(0xfe);
            for h in &v.hashed {
                b.extend_from_slice(&(h.ns() as u32).to_le_bytes());
                b.extend_from_slice(&h.hash().to_le_bytes());
                b.extend_from_slice(&h.value().to_bits().to_le_bytes());
            }
        }
        let mut s = String::from("f1-");
        crate::prim::digits::push_hex(&mut s, u64::from(crate::prim::hash::crc32(&b)), 8);
        s
    }

    /// Variant ids in order.
    pub(crate) fn variant_ids(&self) -> impl Iterator<Item = &str> {
        self.variants.iter().map(|v| v.id.as_str())
    }

    /// A fresh posterior per learner, starting at the prior.
    pub(crate) fn posteriors(&self) -> Vec<Posterior> {
        let n = self.learners();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let (mean, variance) = self.prior(i);
            out.push(Posterior::new(mean.to_vec(), variance));
        }
        out
    }

    /// Number of learners: one per variant, or one for a catalogue.
    pub(crate) fn learners(&self) -> usize {
        if self.catalogue.is_some() {
            1
        } else {
            self.variants.len()
        }
    }

    /// Learner `i`'s prior means and variances.
    pub(crate) fn prior(&self, i: usize) -> (&[f64], &[f64]) {
        match (&self.catalogue, self.variants.get(i)) {
            (Some(c), _) => (&c.mean, &c.variance),
            (None, Some(v)) => (&v.mean, &v.variance),
            (None, None) => (&[], &[]),
        }
    }

    /// Dimension of a learner's weights.
    pub(crate) fn dim(&self) -> usize {
        match &self.catalogue {
            Some(c) => self.features.dim() << c.bits,
            None => self.features.dim(),
        }
    }

    /// Dimension of the vector a decision keeps for its reward: the
    /// context's slots, and for a catalogue the variant features' after them
    /// (see `Scratch::keep_into`).
    pub(crate) fn kept_dim(&self) -> usize {
        self.features.dim() + self.catalogue.as_ref().map_or(0, |c| 1 << c.bits)
    }

    /// Variants the offline evaluation logs scores for: every one, or none
    /// for a catalogue (its thousands of variants would make each logged
    /// decision kilobytes; its evaluation is not kept).
    pub(crate) fn evaluated(&self) -> usize {
        if self.catalogue.is_some() {
            0
        } else {
            self.variants.len()
        }
    }

    /// This model as a catalogue (see [`Catalogue`]) whose variants' features
    /// take `bits` slots, every weight with prior variance `variance`
    /// (positive, finite): 2 to [`MAX_CATALOGUE`] variants, each with
    /// features of its own. Errors: `INVALID_OPTION` naming the field.
    pub(crate) fn into_catalogue(mut self, bits: u8, variance: f64) -> Result<CompactModel> {
        let k = self.variants.len();
        if !(2..=MAX_CATALOGUE).contains(&k) {
            return Err(Error::option(
                "variants",
                text!("a catalogue holds 2 to {MAX_CATALOGUE} variants, but has {k}"),
            ));
        }
        if !(CATALOGUE_BITS.0..=CATALOGUE_BITS.1).contains(&bits)
            || self.features.bits + bits > MAX_CATALOGUE_DIM_BITS
        {
            return Err(Error::option(
                "catalogue.bits",
                text!(
                    "should be in [{}, {}] and at most {MAX_CATALOGUE_DIM_BITS} with features.bits, but is {bits}",
                    CATALOGUE_BITS.0,
                    CATALOGUE_BITS.1
                ),
            ));
        }
        let mut y = Vec::with_capacity(k);
        for (i, v) in self.variants.iter_mut().enumerate() {
            let mut out = SparseVec::default();
            crate::features::fold_variant(&v.hashed, bits, &mut out);
            if out.val.iter().all(|x| *x == 0.0) || out.val.iter().any(|x| !x.is_finite()) {
                return Err(Error::option(
                    text!("variants[{i}].features"),
                    text!("are required in a catalogue, and cannot all be 0"),
                ));
            }
            y.push(out);
            // The shared learner's prior replaces the variants' own.
            v.mean = Vec::new();
            v.variance = Vec::new();
        }
        let d = self.features.dim() << bits;
        self.catalogue = Some(Catalogue {
            bits,
            mean: vec![0.0; d],
            variance: vec![variance; d],
            y,
        });
        Ok(self)
    }
}

impl Variant {
    /// A variant from what the boundary read: its hashed features and its
    /// prior means and variances, which the reader checked (namespaces
    /// below the allowlist's length, finite values, `2^bits` finite means
    /// and positive finite variances).
    #[cfg_attr(not(feature = "first"), allow(dead_code))] // the boundary's only
    pub(crate) fn new(hashed: Vec<Hashed>, mean: Vec<f64>, variance: Vec<f64>) -> Variant {
        Variant {
            id: String::new(),
            #[cfg(feature = "json")]
            features: None,
            hashed,
            mean,
            variance,
        }
    }
}

impl CompactModel {
    /// A model from its parts, as the boundary's reader checked them: the
    /// feature configuration, the noise (positive, finite), 2 to 64
    /// variants (see [`Variant::new`]) and the model version the TypeScript
    /// side computed (`m1-` and 16 hex digits, the content hash). Variant
    /// ids stay on the TypeScript side.
    pub(crate) fn new(
        features: FeatureConfig,
        noise: f64,
        variants: Vec<Variant>,
        version: String,
    ) -> CompactModel {
        CompactModel {
            features,
            noise,
            variants,
            version,
            catalogue: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> crate::Result<CompactModel> {
        CompactModel::parse(json)
    }

    const GOOD: &str = r#"{"format":1,"features":{"bits":4,"allow":["page","variant"],
        "interactions":[["page","variant"]]},
        "variants":[{"id":"a","weights":{"3":0.5}},
                    {"id":"b","features":{"variant":{"tone":"urgent"}},"variance":0.5}]}"#;

    #[test]
    fn loads_and_hashes_content_not_formatting() {
        let m = spec(GOOD).unwrap();
        assert_eq!(m.variants[0].mean[3], 0.5);
        assert_eq!(m.variants[1].variance, vec![0.5; 16]);
        let reformatted = GOOD.replace('\n', " ").replace("        ", "");
        assert_eq!(spec(&reformatted).unwrap().version(), m.version());
        let changed = GOOD.replace("0.5}}", "0.25}}");
        assert_ne!(spec(&changed).unwrap().version(), m.version());
        assert!(m.version().starts_with("m1-") && m.version().len() == 19);
    }

    #[test]
    fn stated_version_must_match() {
        let m = spec(GOOD).unwrap();
        let with = GOOD.replacen(
            "{\"format\":1,",
            &format!("{{\"format\":1,\"version\":\"{}\",", m.version()),
            1,
        );
        assert_eq!(spec(&with).unwrap().version(), m.version());
        let wrong = GOOD.replacen(
            "{\"format\":1,",
            "{\"format\":1,\"version\":\"m1-0000000000000000\",",
            1,
        );
        let e = spec(&wrong).unwrap_err();
        assert_eq!(e.code(), "INVALID_MODEL");
        assert!(e.to_string().contains("version"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases = [
            (GOOD.replace("\"format\":1", "\"format\":2"), "format"),
            (GOOD.replace("\"bits\":4", "\"bits\":40"), "features.bits"),
            (
                GOOD.replace("{\"3\":0.5}", "{\"99\":0.5}"),
                "variants[0].weights",
            ),
            (GOOD.replace("{\"3\":0.5}", "[1,2]"), "variants[0].weights"),
            (
                GOOD.replace("\"variance\":0.5", "\"variance\":-1"),
                "variants[1].variance",
            ),
            (
                GOOD.replace("\"id\":\"b\"", "\"id\":\"a\""),
                "variants[1].id",
            ),
            (
                GOOD.replace("[[\"page\",\"variant\"]]", "[[\"page\",\"nope\"]]"),
                "features.interactions[0]",
            ),
            (
                GOOD.replacen("\"format\":1,", "\"format\":1,\"noise\":0,", 1),
                "noise",
            ),
        ];
        for (json, field) in cases {
            let e = spec(&json).unwrap_err();
            assert_eq!(e.code(), "INVALID_MODEL", "{json}");
            assert!(e.to_string().contains(field), "{e} should name {field}");
        }
        let one_variant = r#"{"format":1,"features":{},"variants":[{"id":"a"}]}"#;
        assert!(spec(one_variant)
            .unwrap_err()
            .to_string()
            .contains("at least 2"));
        let e = spec(r#"{"format":1,"features":{},"variants":[],"extra":1}"#).unwrap_err();
        assert!(
            e.to_string().contains("`extra` is not a known option"),
            "{e}"
        );
        let e = spec(r#"{"format":1,"features":{},"variants":[{"id":"a","colour":1},{"id":"b"}]}"#)
            .unwrap_err();
        assert!(e.to_string().contains("variants[0].colour"), "{e}");
        assert_eq!(spec("{\"format\":1,").unwrap_err().code(), "INVALID_MODEL");
    }
}
