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

pub(crate) mod posterior;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::features::{Context, FeatureConfig, FeatureOptions};
pub use posterior::Posterior;

/// The only model format so far.
pub(crate) const MODEL_FORMAT: u32 = 1;
/// Most variants one model or engine may hold.
pub(crate) const MAX_VARIANTS: usize = 64;
/// Default observation noise variance: the largest variance of a reward in [0, 1].
pub(crate) const DEFAULT_NOISE: f64 = 0.25;
/// Default prior variance of every weight when no model is shipped.
pub(crate) const DEFAULT_PRIOR_VARIANCE: f64 = 1.0;

/// A number, or one number per slot.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PerSlot {
    /// The same value for every slot.
    Scalar(f64),
    /// One value per slot (`2^bits` of them).
    Dense(Vec<f64>),
}

/// Weights: dense per slot, or sparse slot → weight.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Weights {
    /// One weight per slot.
    Dense(Vec<f64>),
    /// Slot index (as a decimal string) → weight; missing slots are 0.
    Sparse(BTreeMap<String, f64>),
}

/// One variant as written in a model file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// Stable id the page uses to render the variant.
    pub id: String,
    /// Features describing the variant itself (VW's action features).
    #[serde(default)]
    pub features: Option<Context>,
    /// Prior mean of the weights; 0 where absent.
    #[serde(default)]
    pub weights: Option<Weights>,
    /// Prior variance of the weights (uncertainty); default 1.
    #[serde(default)]
    pub variance: Option<PerSlot>,
}

/// A model file as shipped, before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Format number; must be 1.
    pub format: u32,
    /// Feature configuration the weights were trained with.
    pub features: FeatureOptions,
    /// Observation noise variance of rewards.
    #[serde(default)]
    pub noise: Option<f64>,
    /// The variants, in order.
    pub variants: Vec<VariantSpec>,
    /// Content hash; checked when present.
    #[serde(default)]
    pub version: Option<String>,
}

/// A validated variant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variant {
    pub(crate) id: String,
    pub(crate) features: Option<Context>,
    pub(crate) mean: Vec<f64>,
    pub(crate) variance: Vec<f64>,
}

/// A validated model: everything needed to score variants before any learning.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactModel {
    pub(crate) features: FeatureConfig,
    pub(crate) noise: f64,
    pub(crate) variants: Vec<Variant>,
    pub(crate) version: String,
}

impl CompactModel {
    /// The content hash, e.g. `m1-0123456789abcdef`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Variant ids in order.
    pub fn variant_ids(&self) -> impl Iterator<Item = &str> {
        self.variants.iter().map(|v| v.id.as_str())
    }

    /// The feature configuration.
    pub fn features(&self) -> &FeatureConfig {
        &self.features
    }

    /// A flat model: zero means, one variance everywhere. What an engine
    /// without a shipped model starts from.
    pub fn uninformed(features: FeatureConfig, ids: Vec<(String, Option<Context>)>, noise: f64, variance: f64) -> Result<CompactModel> {
        let d = features.dim();
        let variants = ids
            .into_iter()
            .map(|(id, features)| Variant { id, features, mean: vec![0.0; d], variance: vec![variance; d] })
            .collect();
        let mut m = CompactModel { features, noise, variants, version: String::new() };
        validate_variants(&m.variants, "variants")?;
        m.version = m.content_hash();
        Ok(m)
    }

    /// A fresh posterior per variant, starting at the prior.
    pub fn posteriors(&self) -> Vec<Posterior> {
        self.variants.iter().map(|v| Posterior::new(v.mean.clone(), &v.variance)).collect()
    }

    /// FNV-1a 64 over a canonical byte encoding of every validated field.
    fn content_hash(&self) -> String {
        let mut h = Fnv::new();
        h.u32(MODEL_FORMAT);
        h.u32(self.features.hash_version);
        h.u32(self.features.bits as u32);
        for ns in &self.features.allow {
            h.str(ns);
        }
        for (a, b) in &self.features.interactions {
            h.u32(*a as u32);
            h.u32(*b as u32);
        }
        h.f64(self.noise);
        for v in &self.variants {
            h.str(&v.id);
            for (ns, feats) in v.features.iter().flatten() {
                h.str(ns);
                for (name, val) in feats {
                    h.str(name);
                    h.str(&format!("{val:?}"));
                }
            }
            v.mean.iter().for_each(|x| h.f64(*x));
            v.variance.iter().for_each(|x| h.f64(*x));
        }
        format!("m1-{:016x}", h.0)
    }
}

struct Fnv(u64);
impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for x in b {
            self.0 = (self.0 ^ *x as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn u32(&mut self, x: u32) {
        self.bytes(&x.to_le_bytes());
    }
    fn f64(&mut self, x: f64) {
        self.bytes(&x.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.bytes(s.as_bytes());
    }
}

fn validate_variants(vs: &[Variant], path: &str) -> Result<()> {
    if vs.len() < 2 {
        return Err(Error::option(path, format!("needs at least 2 variants, but has {}", vs.len())));
    }
    if vs.len() > MAX_VARIANTS {
        return Err(Error::option(path, format!("allows at most {MAX_VARIANTS} variants, but has {}", vs.len())));
    }
    for (i, v) in vs.iter().enumerate() {
        if v.id.is_empty() || v.id.len() > crate::features::MAX_STRING_BYTES {
            return Err(Error::option(format!("{path}[{i}].id"), "must be 1 to 256 bytes long"));
        }
        if vs[..i].iter().any(|w| w.id == v.id) {
            return Err(Error::option(format!("{path}[{i}].id"), format!("`{}` is a duplicate", v.id)));
        }
    }
    Ok(())
}

/// Check a positive finite number.
pub(crate) fn positive(x: f64, field: &str, err: fn(String, String) -> Error) -> Result<f64> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(err(field.to_owned(), format!("should be positive and finite, but is {x}")))
    }
}

fn model_err(field: String, reason: String) -> Error {
    Error::InvalidModel { field, reason }
}

impl ModelSpec {
    /// Validate every field; errors name the bad one.
    pub fn check(&self) -> Result<CompactModel> {
        if self.format != MODEL_FORMAT {
            return Err(Error::model("format", format!("should be {MODEL_FORMAT}, but is {}", self.format)));
        }
        let features = self.features.check("features.").map_err(as_model_error)?;
        let d = features.dim();
        let noise = positive(self.noise.unwrap_or(DEFAULT_NOISE), "noise", model_err)?;
        let mut variants = Vec::with_capacity(self.variants.len());
        for (i, v) in self.variants.iter().enumerate() {
            let path = format!("variants[{i}]");
            let mean = match &v.weights {
                None => vec![0.0; d],
                Some(Weights::Dense(w)) => {
                    if w.len() != d {
                        return Err(Error::model(
                            format!("{path}.weights"),
                            format!("should have 2^bits = {d} entries, but has {}", w.len()),
                        ));
                    }
                    w.clone()
                }
                Some(Weights::Sparse(m)) => {
                    let mut dense = vec![0.0; d];
                    for (k, w) in m {
                        let slot = k.parse::<usize>().ok().filter(|s| *s < d).ok_or_else(|| {
                            Error::model(format!("{path}.weights"), format!("key `{k}` is not a slot in [0, {d})"))
                        })?;
                        dense[slot] = *w;
                    }
                    dense
                }
            };
            if let Some(j) = mean.iter().position(|x| !x.is_finite()) {
                return Err(Error::model(format!("{path}.weights[{j}]"), "must be finite"));
            }
            let variance = match &v.variance {
                None => vec![DEFAULT_PRIOR_VARIANCE; d],
                Some(PerSlot::Scalar(x)) => vec![positive(*x, &format!("{path}.variance"), model_err)?; d],
                Some(PerSlot::Dense(xs)) => {
                    if xs.len() != d {
                        return Err(Error::model(
                            format!("{path}.variance"),
                            format!("should have 2^bits = {d} entries, but has {}", xs.len()),
                        ));
                    }
                    for (j, x) in xs.iter().enumerate() {
                        positive(*x, &format!("{path}.variance[{j}]"), model_err)?;
                    }
                    xs.clone()
                }
            };
            if let Some(f) = &v.features {
                // Validate now so a bad model fails at load, not at the first decision.
                features.featurize(&Context::new(), Some(f)).map_err(|e| {
                    Error::model(format!("{path}.features"), e.to_string())
                })?;
            }
            variants.push(Variant { id: v.id.clone(), features: v.features.clone(), mean, variance });
        }
        validate_variants(&variants, "variants").map_err(as_model_error)?;
        let mut model = CompactModel { features, noise, variants, version: String::new() };
        model.version = model.content_hash();
        if let Some(stated) = &self.version {
            if *stated != model.version {
                return Err(Error::model(
                    "version",
                    format!("is `{stated}`, but the content hashes to `{}`", model.version),
                ));
            }
        }
        Ok(model)
    }
}

fn as_model_error(e: Error) -> Error {
    match e {
        Error::InvalidOption { field, reason } | Error::InvalidContext { field, reason } => {
            Error::InvalidModel { field, reason }
        }
        other => Error::InvalidModel { field: "features".into(), reason: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<CompactModel> {
        serde_json::from_str::<ModelSpec>(json).expect("parses").check()
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
        let with = GOOD.replacen("{\"format\":1,", &format!("{{\"format\":1,\"version\":\"{}\",", m.version()), 1);
        assert_eq!(spec(&with).unwrap().version(), m.version());
        let wrong = GOOD.replacen("{\"format\":1,", "{\"format\":1,\"version\":\"m1-0000000000000000\",", 1);
        let e = spec(&wrong).unwrap_err();
        assert_eq!(e.code(), "INVALID_MODEL");
        assert!(e.to_string().contains("version"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases = [
            (GOOD.replace("\"format\":1", "\"format\":2"), "format"),
            (GOOD.replace("\"bits\":4", "\"bits\":40"), "features.bits"),
            (GOOD.replace("{\"3\":0.5}", "{\"99\":0.5}"), "variants[0].weights"),
            (GOOD.replace("{\"3\":0.5}", "[1,2]"), "variants[0].weights"),
            (GOOD.replace("\"variance\":0.5", "\"variance\":-1"), "variants[1].variance"),
            (GOOD.replace("\"id\":\"b\"", "\"id\":\"a\""), "variants[1].id"),
            (GOOD.replace("[[\"page\",\"variant\"]]", "[[\"page\",\"nope\"]]"), "features.interactions[0]"),
            (GOOD.replacen("\"format\":1,", "\"format\":1,\"noise\":0,", 1), "noise"),
        ];
        for (json, field) in cases {
            let e = spec(&json).unwrap_err();
            assert_eq!(e.code(), "INVALID_MODEL", "{json}");
            assert!(e.to_string().contains(field), "{e} should name {field}");
        }
        let one_variant = r#"{"format":1,"features":{},"variants":[{"id":"a"}]}"#;
        assert!(spec(one_variant).unwrap_err().to_string().contains("at least 2"));
        assert!(serde_json::from_str::<ModelSpec>(r#"{"format":1,"features":{},"variants":[],"extra":1}"#).is_err());
    }
}
