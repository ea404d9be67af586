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

use crate::error::{Error, Num, Result};
use crate::features::{FeatureConfig, FeatureOptions, Hashed};
use crate::json::{Json, Obj};
pub(crate) use posterior::Posterior;

/// The only model format so far.
pub(crate) const MODEL_FORMAT: u32 = 1;
/// Most variants one model or engine may hold.
pub(crate) const MAX_VARIANTS: usize = 64;
/// Default observation noise variance: the largest variance of a reward in [0, 1].
pub(crate) const DEFAULT_NOISE: f64 = 0.25;
/// Default prior variance of every weight when no model is shipped.
pub(crate) const DEFAULT_PRIOR_VARIANCE: f64 = 1.0;

/// A validated variant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variant {
    pub(crate) id: String,
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
}

impl CompactModel {
    /// The content hash, e.g. `m1-0123456789abcdef`.
    pub(crate) fn version(&self) -> &str {
        &self.version
    }

    /// Variant ids in order.
    pub(crate) fn variant_ids(&self) -> impl Iterator<Item = &str> {
        self.variants.iter().map(|v| v.id.as_str())
    }

    /// A flat model: zero means, one variance everywhere. What an engine
    /// without a shipped model starts from.
    pub(crate) fn uninformed(
        features: FeatureConfig,
        ids: Vec<(String, Option<Json<'static>>, Vec<Hashed>)>,
        noise: f64,
        variance: f64,
    ) -> Result<CompactModel> {
        let d = features.dim();
        let variants = ids
            .into_iter()
            .map(|(id, features, hashed)| Variant {
                id,
                features,
                hashed,
                mean: vec![0.0; d],
                variance: vec![variance; d],
            })
            .collect();
        let mut m = CompactModel {
            features,
            noise,
            variants,
            version: String::new(),
        };
        validate_variants(&m.variants, "variants")?;
        m.version = m.content_hash();
        Ok(m)
    }

    /// A fresh posterior per variant, starting at the prior.
    pub(crate) fn posteriors(&self) -> Vec<Posterior> {
        self.variants
            .iter()
            .map(|v| Posterior::new(v.mean.clone(), &v.variance))
            .collect()
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
            if let Some(f) = &v.features {
                h.json(f);
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
    fn json(&mut self, v: &Json) {
        match v {
            Json::Null => self.bytes(b"n"),
            Json::Bool(b) => self.bytes(if *b { b"t" } else { b"f" }),
            Json::Num(x) => {
                self.bytes(b"#");
                self.f64(*x);
            }
            Json::Str(s) => {
                self.bytes(b"s");
                self.str(s);
            }
            Json::Arr(items) => {
                self.bytes(b"[");
                self.u32(items.len() as u32);
                items.iter().for_each(|i| self.json(i));
            }
            Json::Obj(fields) => {
                self.bytes(b"{");
                self.u32(fields.len() as u32);
                for (k, v) in fields {
                    self.str(k);
                    self.json(v);
                }
            }
        }
    }
}

fn validate_variants(vs: &[Variant], path: &str) -> Result<()> {
    if vs.len() < 2 {
        return Err(Error::option(
            path,
            format!("needs at least 2 variants, but has {}", vs.len()),
        ));
    }
    if vs.len() > MAX_VARIANTS {
        return Err(Error::option(
            path,
            format!(
                "allows at most {MAX_VARIANTS} variants, but has {}",
                vs.len()
            ),
        ));
    }
    for (i, v) in vs.iter().enumerate() {
        if v.id.is_empty() || v.id.len() > crate::features::MAX_STRING_BYTES {
            return Err(Error::option(
                format!("{path}[{i}].id"),
                "must be 1 to 256 bytes long",
            ));
        }
        if vs[..i].iter().any(|w| w.id == v.id) {
            return Err(Error::option(
                format!("{path}[{i}].id"),
                format!("`{}` is a duplicate", v.id),
            ));
        }
    }
    Ok(())
}

/// Check a positive finite number.
pub(crate) fn positive(x: f64, field: &str, err: crate::json::ErrKind) -> Result<f64> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(err(
            field.to_owned(),
            format!("should be positive and finite, but is {}", Num(x)),
        ))
    }
}

pub(crate) fn model_err(field: String, reason: String) -> Error {
    Error::InvalidModel { field, reason }
}

impl CompactModel {
    /// Parse and validate model JSON text.
    #[cfg(test)]
    pub(crate) fn parse(text: &str) -> Result<CompactModel> {
        CompactModel::from_json(&Json::parse(text, "model", model_err)?)
    }

    /// Validate a parsed model; errors name the bad field.
    pub(crate) fn from_json(json: &Json) -> Result<CompactModel> {
        let mut o = Obj::new(json, "", model_err)?;
        let format = o
            .num("format")?
            .ok_or_else(|| Error::model("format", "is required"))?;
        if format != MODEL_FORMAT as f64 {
            return Err(Error::model(
                "format",
                format!("should be {MODEL_FORMAT}, but is {}", Num(format)),
            ));
        }
        let fo = o
            .obj("features")?
            .ok_or_else(|| Error::model("features", "is required"))?;
        let features = FeatureOptions::read(fo)
            .and_then(|f| f.check("features."))
            .map_err(as_model_error)?;
        let d = features.dim();
        let noise = positive(o.num("noise")?.unwrap_or(DEFAULT_NOISE), "noise", model_err)?;
        let stated = o.str("version")?;
        let specs = o
            .arr("variants")?
            .ok_or_else(|| Error::model("variants", "is required"))?;
        o.finish()?;
        let mut variants = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let path = format!("variants[{i}]");
            let mut v = Obj::new(spec, &path, model_err)?;
            let id = v
                .str("id")?
                .ok_or_else(|| v.err("id", "is required"))?
                .to_owned();
            let mean = match v.get("weights") {
                None => vec![0.0; d],
                Some(Json::Arr(w)) => {
                    if w.len() != d {
                        return Err(v.err(
                            "weights",
                            format!("should have 2^bits = {d} entries, but has {}", w.len()),
                        ));
                    }
                    crate::json::map_items(w, |j, x| {
                        finite(x).ok_or_else(|| {
                            v.err(&format!("weights[{j}]"), "must be a finite number")
                        })
                    })?
                }
                Some(Json::Obj(m)) => {
                    let mut dense = vec![0.0; d];
                    for (k, x) in m {
                        let slot = k.parse::<usize>().ok().filter(|s| *s < d).ok_or_else(|| {
                            v.err("weights", format!("key `{k}` is not a slot in [0, {d})"))
                        })?;
                        dense[slot] = finite(x).ok_or_else(|| {
                            v.err(&format!("weights.{k}"), "must be a finite number")
                        })?;
                    }
                    dense
                }
                Some(other) => {
                    return Err(v.err(
                        "weights",
                        format!(
                            "should be an array or an object, but is {}",
                            other.type_name()
                        ),
                    ))
                }
            };
            let variance = match v.get("variance") {
                None => vec![DEFAULT_PRIOR_VARIANCE; d],
                Some(Json::Num(x)) => vec![positive(*x, &v.field("variance"), model_err)?; d],
                Some(Json::Arr(xs)) => {
                    if xs.len() != d {
                        return Err(v.err(
                            "variance",
                            format!("should have 2^bits = {d} entries, but has {}", xs.len()),
                        ));
                    }
                    crate::json::map_items(xs, |j, x| {
                        let field = v.field(&format!("variance[{j}]"));
                        positive(finite(x).unwrap_or(f64::NAN), &field, model_err)
                    })?
                }
                Some(other) => {
                    return Err(v.err(
                        "variance",
                        format!(
                            "should be a number or an array, but is {}",
                            other.type_name()
                        ),
                    ))
                }
            };
            let feats = v.get("features").map(|j| j.clone().into_owned());
            // Validated now, so a bad model fails at load, not at the first decision.
            let hashed = match &feats {
                Some(f) => features
                    .hash_variant(f)
                    .map_err(|e| v.err("features", e.to_string()))?,
                None => Vec::new(),
            };
            v.finish()?;
            variants.push(Variant {
                id,
                features: feats,
                hashed,
                mean,
                variance,
            });
        }
        validate_variants(&variants, "variants").map_err(as_model_error)?;
        let mut model = CompactModel {
            features,
            noise,
            variants,
            version: String::new(),
        };
        model.version = model.content_hash();
        if let Some(stated) = stated {
            if stated != model.version {
                return Err(Error::model(
                    "version",
                    format!(
                        "is `{stated}`, but the content hashes to `{}`",
                        model.version
                    ),
                ));
            }
        }
        Ok(model)
    }
}

fn finite(x: &Json) -> Option<f64> {
    match x {
        Json::Num(v) if v.is_finite() => Some(*v),
        _ => None,
    }
}

fn as_model_error(e: Error) -> Error {
    match e {
        Error::InvalidOption { field, reason } | Error::InvalidContext { field, reason } => {
            Error::InvalidModel { field, reason }
        }
        other => Error::InvalidModel {
            field: "features".into(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<CompactModel> {
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
