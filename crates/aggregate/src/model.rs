//! `model`: the next prior from the noisy X'y and diagonal of X'X, in
//! insitu's model format (format 1), starting from the model the devices
//! learned from (the base).
//!
//! **The rule.** Per variant and hashed slot `i`, with the base prior mean
//! `m₀` and variance `v₀`, the model's observation noise `σ²`, and the
//! noisy sums `xy_i`, `xx_i` over every segment, the diagonal Gaussian
//! update is
//!
//! ```text
//! xx⁺   = max(xx_i, 0)                          the floor: a noisy sum can be negative
//! s     = σ² · xx⁺ + σ_xy²                      the variance of xy_i around xx⁺ · w
//! ρ     = max(0, 1 − 2 σ_xx / xx⁺)              how surely the slot was seen
//! prec  = 1/v₀ + ρ · xx⁺² / s                   (nothing added when xx⁺ = 0)
//! mean  = (m₀/v₀ + ρ · xx⁺ · xy_i / s) / prec
//! var   = clamp(1/prec, min_variance, v₀)
//! ```
//!
//! `σ_xy²` is the noise variance of a decoded X'y entry (its positive and
//! negative parts, summed over the segments). Under the diagonal model,
//! `xy_i ≈ xx_i · w + e` with `Var(e) = σ² · xx_i`; the release adds noise
//! of variance `σ_xy²`, so the noisy `xy_i` is an observation of `w` with
//! precision `xx⁺² / s`. Without noise this is the plain Gaussian update
//! (`prec = 1/v₀ + xx/σ²`, `mean = (m₀/v₀ + xy/σ²)/prec`); where the noise
//! dwarfs the evidence (few devices) the data's weight falls towards 0 and
//! the prior stays near the base, instead of taking a noise draw for a
//! weight. `ρ` does the same for the noise of `xx_i` (`σ_xx`, its noise
//! standard deviation): a slot whose `xx` is within two noise standard
//! deviations of 0 may never have been seen, and a noise draw there would
//! otherwise pass for evidence; `ρ` scales the precision and the mean's
//! data term alike, so the data's own estimate of the weight is unchanged
//! and only its weight against the base falls.
//! (The first rule, which used the noisy `xy_i` at face value and
//! only widened the variance, made fresh devices earn less than the flat
//! prior in most noise draws at 1,000 to 2,000 devices: `docs/aggregate.md`.)
//! The floor on `xx` keeps `prec ≥ 1/v₀`, so every variance is positive
//! and finite and the (diagonal) covariance is positive definite; the
//! ceiling `v₀` means the aggregate never makes the prior less certain
//! than the base;
//! `min_variance` keeps a little room to learn on every device however
//! many reports were summed. Treating slots as independent (only the
//! diagonal of X'X is reported) overstates the evidence where slots
//! co-occur: see [`crate::measure`].
//!
//! The output keeps the base's features, variant ids and variant features
//! and `noise`, writes dense `weights` and `variance`, and states the new
//! model version, which is insitu's content hash: the model is loaded by
//! insitu's own reader before it is written, so a model this command
//! prints is one insitu accepts.

use serde_json::{json, Map, Value};

use crate::aggregate::SumsFile;
use crate::error::{Code, Error, Result};
use crate::measure::{decode, Group};
use crate::readout::noise_variance;

/// The default smallest prior variance of the next model.
pub const DEFAULT_MIN_VARIANCE: f64 = 1e-4;
/// A slot's X'X must stand this many noise standard deviations above 0
/// before its evidence counts at all (see the module docs).
const RELIABLE_SD: f64 = 2.0;
/// insitu's default observation noise, when the base states none.
const DEFAULT_NOISE: f64 = 0.25;
/// insitu's default prior variance, when a base variant states none.
const DEFAULT_VARIANCE: f64 = 1.0;

fn bad(m: String) -> Error {
    Error::new(Code::InvalidModel, m)
}

/// Load a model with insitu's own reader; its version.
pub fn insitu_version(model: &Value) -> Result<String> {
    let cfg = insitu::EngineConfig::parse(&json!({ "model": model }).to_string(), 0)
        .map_err(|e| bad(format!("insitu refuses the model: {e}")))?;
    Ok(insitu::Engine::new(cfg).model_version().to_owned())
}

/// A dense vector of `d` from a base variant's `weights` (array, sparse
/// object or absent) or `variance` (array, number or absent).
fn dense(v: Option<&Value>, d: usize, default: f64) -> Vec<f64> {
    match v {
        Some(Value::Array(xs)) => xs.iter().map(|x| x.as_f64().unwrap_or(default)).collect(),
        Some(Value::Object(m)) => {
            let mut out = vec![default; d];
            for (k, x) in m {
                if let (Ok(i), Some(x)) = (k.parse::<usize>(), x.as_f64()) {
                    if i < d {
                        out[i] = x;
                    }
                }
            }
            out
        }
        Some(Value::Number(n)) => vec![n.as_f64().unwrap_or(default); d],
        _ => vec![default; d],
    }
}

/// The next model (as JSON) from the base model's text and the sums
/// file's text. [`Code::InvalidModel`] when the base does not load in
/// insitu or does not fit the sums; [`Code::InvalidSums`] for the sums.
pub fn next_model(base: &str, sums: &str, min_variance: f64) -> Result<Value> {
    if !(min_variance.is_finite() && min_variance > 0.0) {
        return Err(Error::new(
            Code::InvalidArgument,
            format!("min-variance should be positive and finite, but is {min_variance}"),
        ));
    }
    let base: Value = serde_json::from_str(base).map_err(|e| bad(format!("base model: {e}")))?;
    insitu_version(&base)?;
    let (file, task, mech) = SumsFile::parse(sums)?;
    let spec = &task.spec;
    let d = spec.slots();
    let variants = base["variants"].as_array().cloned().unwrap_or_default();
    let bits = base["features"]["bits"].as_u64().unwrap_or(0);
    if d == 0 || variants.len() != spec.variants() || 1usize.checked_shl(bits as u32) != Some(d) {
        return Err(bad(format!(
            "the base model has {} variants and 2^{bits} slots; the sums have {} and {d}",
            variants.len(),
            spec.variants()
        )));
    }
    let mut total = vec![0i64; spec.len()];
    for s in &file.segments {
        for (t, x) in total.iter_mut().zip(&s.sums) {
            *t = t.saturating_add(*x);
        }
    }
    let sums = decode(spec, &total)?;
    let n = file.segments.len();
    // X'y is two noisy entries (positive and negative parts).
    let var_xy = 2.0 * noise_variance(spec, &mech, Group::Xy, n);
    let sd_xx = noise_variance(spec, &mech, Group::Xx, n).sqrt();
    let sigma2 = base
        .get("noise")
        .and_then(Value::as_f64)
        .unwrap_or(DEFAULT_NOISE);
    let mut out_variants = Vec::with_capacity(variants.len());
    for (k, v) in variants.iter().enumerate() {
        let m0 = dense(v.get("weights"), d, 0.0);
        let v0 = dense(v.get("variance"), d, DEFAULT_VARIANCE);
        let mut weights = Vec::with_capacity(d);
        let mut variance = Vec::with_capacity(d);
        for i in 0..d {
            let (xy, xx) = (sums.xy[k * d + i], sums.xx[k * d + i].max(0.0));
            // X'y as a noisy observation of xx·w: the model's noise (σ²·xx)
            // plus the release's (var_xy); weighed by how surely xx is
            // above its own noise (0 within RELIABLE_SD of it).
            // (Divided through by xx, so that without noise p and m are
            // xx/σ² and xy/σ² to the bit, as the plain update has them.)
            let (p, m) = if xx > 0.0 {
                let rho = (1.0 - RELIABLE_SD * sd_xx / xx).max(0.0);
                let per = sigma2 + var_xy / xx;
                (rho * xx / per, rho * xy / per)
            } else {
                (0.0, 0.0)
            };
            let prec = 1.0 / v0[i] + p;
            let mean = (m0[i] / v0[i] + m) / prec;
            let var = (1.0 / prec).min(v0[i]).max(min_variance.min(v0[i]));
            if !(mean.is_finite() && var.is_finite() && var > 0.0) {
                return Err(bad(format!(
                    "variant {k} slot {i}: mean {mean}, variance {var}"
                )));
            }
            weights.push(mean);
            variance.push(var);
        }
        let mut o = Map::new();
        o.insert("id".into(), v["id"].clone());
        if let Some(f) = v.get("features") {
            o.insert("features".into(), f.clone());
        }
        o.insert("weights".into(), json!(weights));
        o.insert("variance".into(), json!(variance));
        out_variants.push(Value::Object(o));
    }
    let mut model = json!({
        "format": 1,
        "features": base["features"].clone(),
        "noise": sigma2,
        "variants": out_variants,
    });
    let version = insitu_version(&model)?;
    model["version"] = json!(version);
    Ok(model)
}
