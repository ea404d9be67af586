//! Reading a shipped model from JSON, and its content hash (feature `json`:
//! tests, benchmarks and tools). The TypeScript side reads models for the
//! .wasm (`src/ts/validate/model.ts`) and computes the same version.

use crate::prelude::*;

use super::{
    CompactModel, Variant, DEFAULT_NOISE, DEFAULT_PRIOR_VARIANCE, MAX_CATALOGUE, MAX_VARIANTS,
    MODEL_FORMAT,
};
use crate::error::{Error, Num, Result};
use crate::features::{FeatureConfig, FeatureOptions, Hashed};
use crate::json::{Json, Obj};
use crate::prim::hash::Fnv64;

impl CompactModel {
    /// A flat model: zero means, one variance everywhere. What an engine
    /// without a shipped model starts from; with `catalogue`, the variant
    /// features' bits of a catalogue (see [`super::Catalogue`]).
    pub(crate) fn uninformed(
        features: FeatureConfig,
        ids: Vec<(String, Option<Json<'static>>, Vec<Hashed>)>,
        noise: f64,
        variance: f64,
        catalogue: Option<u8>,
    ) -> Result<CompactModel> {
        let d = if catalogue.is_some() {
            0
        } else {
            features.dim()
        };
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
            catalogue: None,
        };
        let max = if catalogue.is_some() {
            MAX_CATALOGUE
        } else {
            MAX_VARIANTS
        };
        validate_variants(&m.variants, "variants", max)?;
        if let Some(bits) = catalogue {
            m = m.into_catalogue(bits, variance)?;
        }
        m.version = m.content_hash();
        Ok(m)
    }

    /// FNV-1a 64 over a canonical byte encoding of every validated field.
    fn content_hash(&self) -> String {
        let mut h = Fnv64::new();
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
        // Only when set, so the versions of models without it stay as they were;
        // a length no namespace has, so no allowlist can read the same.
        if self.features.normalize {
            h.u32(u32::MAX);
        }
        if self.features.two_slots {
            h.u32(u32::MAX - 1);
        }
        // A catalogue's bits and its one prior variance (its variants have
        // no priors of their own).
        if let Some(c) = &self.catalogue {
            h.u32(u32::MAX - 2);
            h.u32(u32::from(c.bits));
            h.f64(c.variance.first().copied().unwrap_or(0.0));
        }
        h.f64(self.noise);
        // A catalogue's version is its weights' space alone: its variants
        // may come and go without setting its learning aside.
        let variants = if self.catalogue.is_some() {
            &[][..]
        } else {
            &self.variants[..]
        };
        for v in variants {
            h.str(&v.id);
            if let Some(f) = &v.features {
                hash_json(&mut h, f);
            }
            v.mean.iter().for_each(|x| h.f64(*x));
            v.variance.iter().for_each(|x| h.f64(*x));
        }
        format!("m1-{:016x}", h.0)
    }
}

/// The canonical encoding of a JSON value into the content hash.
fn hash_json(h: &mut Fnv64, v: &Json) {
    match v {
        Json::Null => h.bytes(b"n"),
        Json::Bool(b) => h.bytes(if *b { b"t" } else { b"f" }),
        Json::Num(x) => {
            h.bytes(b"#");
            h.f64(*x);
        }
        Json::Str(s) => {
            h.bytes(b"s");
            h.str(s);
        }
        Json::Arr(items) => {
            h.bytes(b"[");
            h.u32(items.len() as u32);
            items.iter().for_each(|i| hash_json(h, i));
        }
        Json::Obj(fields) => {
            h.bytes(b"{");
            h.u32(fields.len() as u32);
            for (k, v) in fields {
                h.str(k);
                hash_json(h, v);
            }
        }
    }
}

fn validate_variants(vs: &[Variant], path: &str, max: usize) -> Result<()> {
    if vs.len() < 2 {
        return Err(Error::option(
            path,
            format!("needs at least 2 variants, but has {}", vs.len()),
        ));
    }
    if vs.len() > max {
        return Err(Error::option(
            path,
            format!("allows at most {max} variants, but has {}", vs.len()),
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
            .and_then(|f| f.check_with("features.", crate::features::MODEL_DEFAULTS))
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
        validate_variants(&variants, "variants", MAX_VARIANTS).map_err(as_model_error)?;
        let mut model = CompactModel {
            catalogue: None,
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
