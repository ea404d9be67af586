//! `readout`: per-variant exposure and reward rates, with intervals that
//! count both the sampling variance and the noise, in total and per
//! segment; segments whose noisy report count is below a minimum are
//! suppressed.
//!
//! **The interval.** For a rate `p = A/B` of two noisy sums (exposures per
//! decision, or rewards per exposure), each with its own noise variance
//! `σ_A²` and `σ_B²` (from the discrete Laplace parameter of its group,
//! times the number of segments summed for a total), the delta method
//! gives
//!
//! ```text
//! Var(p̂) ≈ p(1 - p) / B  +  (σ_A² + p² σ_B²) / B²
//! ```
//!
//! The first term is the sampling variance of a mean of `B` values in
//! [0, 1] (at most Bernoulli's `p(1-p)`), the second the noise's. The
//! interval is `p̂ ± z · sqrt(Var)`, clipped to [0, 1]; no rate is given
//! when the noisy `B` is below 1. The sampling term treats the `B` events
//! as independent; events of one device are correlated, so with few
//! devices and many events each the interval is too narrow (a per-device
//! sum of squares in the report would fix this).
//!
//! **Segments** are labels from an allowlisted, coarse context field
//! (device class, region), declared in the task file: never an identifier.
//! A segment whose noisy `reports` is below `min_reports` is shown as
//! suppressed, with no figure. Totals sum every segment (suppressed ones
//! too), which is post-processing of the private release and costs no ε.

use serde::Serialize;

use crate::aggregate::SumsFile;
use crate::error::{Code, Error, Result};
use crate::measure::{decode, Decoded, Group, Spec};
use crate::noise::{self, Mechanism};

/// The default minimum noisy report count of a segment.
pub const DEFAULT_MIN_REPORTS: f64 = 100.0;

/// Readout options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Segments with fewer noisy reports are suppressed.
    pub min_reports: f64,
    /// The intervals' confidence: 0.8, 0.9, 0.95, 0.99 or 0.999.
    pub confidence: f64,
}

/// A rate with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    /// The point estimate, clipped to [0, 1].
    pub estimate: f64,
    /// The interval's lower end.
    pub low: f64,
    /// The interval's upper end.
    pub high: f64,
    /// The standard error (sampling and noise).
    pub se: f64,
}

/// One variant's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantReadout {
    /// The variant's index, in the model's order.
    pub variant: usize,
    /// Noisy decisions.
    pub decisions: f64,
    /// Noisy exposures.
    pub exposures: f64,
    /// Noisy reward sum.
    pub rewards: f64,
    /// Exposures per decision.
    pub exposure_rate: Option<Rate>,
    /// Reward per exposure.
    pub reward_rate: Option<Rate>,
}

/// The figures of a segment or of the total.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// The segment (`null` for the total, or a task without segments).
    pub segment: Option<String>,
    /// Whether the segment is suppressed (then no figures).
    pub suppressed: bool,
    /// Noisy report count (absent when suppressed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reports: Option<f64>,
    /// Per variant (empty when suppressed).
    pub variants: Vec<VariantReadout>,
}

/// The readout.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readout {
    /// The task.
    pub task: String,
    /// The period.
    pub period: String,
    /// The slot or experiment key.
    pub key: String,
    /// The noise mechanism of the sums.
    pub noise: String,
    /// The intervals' confidence.
    pub confidence: f64,
    /// The suppression threshold used.
    pub min_reports: f64,
    /// Every segment summed.
    pub total: Part,
    /// Per segment (empty when the task declares none).
    pub segments: Vec<Part>,
}

/// The normal quantile of a two-sided confidence level.
fn z(confidence: f64) -> Result<f64> {
    const TABLE: [(f64, f64); 5] = [
        (0.8, 1.281_551_565_5),
        (0.9, 1.644_853_626_9),
        (0.95, 1.959_963_984_5),
        (0.99, 2.575_829_303_5),
        (0.999, 3.290_526_731_5),
    ];
    TABLE
        .iter()
        .find(|(c, _)| (c - confidence).abs() < 1e-9)
        .map(|(_, z)| *z)
        .ok_or_else(|| {
            Error::new(
                Code::InvalidArgument,
                format!("confidence should be 0.8, 0.9, 0.95, 0.99 or 0.999, but is {confidence}"),
            )
        })
}

/// The rate `a/b` with its interval (see the module docs); `None` when
/// `b < 1`.
pub fn rate(a: f64, b: f64, var_a: f64, var_b: f64, z: f64) -> Option<Rate> {
    if b.is_nan() || b < 1.0 {
        return None;
    }
    let p = (a / b).clamp(0.0, 1.0);
    let var = p * (1.0 - p) / b + (var_a + p * p * var_b) / (b * b);
    let se = var.sqrt();
    Some(Rate {
        estimate: p,
        low: (p - z * se).max(0.0),
        high: (p + z * se).min(1.0),
        se,
    })
}

/// Noise variance of one decoded entry of a group, in real units, for a
/// sum over `segments` releases.
pub fn noise_variance(spec: &Spec, mech: &Mechanism, g: Group, segments: usize) -> f64 {
    let u = spec.unit(g);
    noise::variance(mech.scale(spec, g)) * u * u * segments as f64
}

fn part(
    spec: &Spec,
    mech: &Mechanism,
    d: &Decoded,
    segments: usize,
    z: f64,
) -> Vec<VariantReadout> {
    let v = |g| noise_variance(spec, mech, g, segments);
    let (vd, ve, vr) = (v(Group::Decisions), v(Group::Exposures), v(Group::Rewards));
    (0..spec.variants())
        .map(|k| VariantReadout {
            variant: k,
            decisions: d.decisions[k],
            exposures: d.exposures[k],
            rewards: d.rewards[k],
            exposure_rate: rate(d.exposures[k], d.decisions[k], ve, vd, z),
            reward_rate: rate(d.rewards[k], d.exposures[k], vr, ve, z),
        })
        .collect()
}

/// The readout of a sums file (its text).
pub fn readout(text: &str, opts: &Options) -> Result<Readout> {
    let z = z(opts.confidence)?;
    if !opts.min_reports.is_finite() {
        return Err(Error::new(
            Code::InvalidArgument,
            "min-reports should be finite",
        ));
    }
    let (file, task, mech) = SumsFile::parse(text)?;
    let spec = &task.spec;
    let mut total = vec![0i64; spec.len()];
    let mut segments = Vec::new();
    for s in &file.segments {
        for (t, x) in total.iter_mut().zip(&s.sums) {
            *t = t.saturating_add(*x);
        }
        if s.segment.is_none() {
            continue;
        }
        let d = decode(spec, &s.sums)?;
        let suppressed = d.reports < opts.min_reports;
        segments.push(Part {
            segment: s.segment.clone(),
            suppressed,
            reports: (!suppressed).then_some(d.reports),
            variants: if suppressed {
                Vec::new()
            } else {
                part(spec, &mech, &d, 1, z)
            },
        });
    }
    let d = decode(spec, &total)?;
    let n = file.segments.len();
    Ok(Readout {
        task: task.file.task.clone(),
        period: task.file.period.clone(),
        key: task.file.key.clone(),
        noise: file.noise.mechanism.clone(),
        confidence: opts.confidence,
        min_reports: opts.min_reports,
        total: Part {
            segment: None,
            suppressed: false,
            reports: Some(d.reports),
            variants: part(spec, &mech, &d, n, z),
        },
        segments,
    })
}
