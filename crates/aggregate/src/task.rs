//! The task file: which reports are aggregated (task, period, key), their
//! [`Spec`], and the segment allowlist. JSON, given to `aggregate --spec`
//! and echoed into the sums file so `readout` and `model` decode with it.
//!
//! ```json
//! {
//!   "format": 1,
//!   "task": "shop-hero", "period": "2026-12-06", "key": "hero",
//!   "variants": 4, "slots": 32, "scale": 1024,
//!   "bounds": { "decisions": 20, "exposures": 20, "rewards": 20, "xy": 40, "xx": 400 },
//!   "segments": ["desktop", "mobile", "tablet"],
//!   "budget": { "reports": 1, "decisions": 1, "exposures": 1, "rewards": 1, "xy": 2, "xx": 2 }
//! }
//! ```
//!
//! `segments` and `budget` are optional; `slots` 0 is an A/B experiment.

use serde::{Deserialize, Serialize};

use crate::error::{Code, Error, Result};
use crate::measure::{Bounds, Spec, FORMAT};

/// Most segments of a task: they are coarse by design.
pub const MAX_SEGMENTS: usize = 32;
/// Longest task id, period, key or segment label, in bytes.
pub const MAX_LABEL: usize = 256;

/// The task file as written (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFile {
    /// Must be [`FORMAT`].
    pub format: u32,
    /// The task id (a DAP task id in production).
    pub task: String,
    /// The period the reports cover.
    pub period: String,
    /// The slot or experiment key.
    pub key: String,
    /// Variants `K`.
    pub variants: usize,
    /// Hashed slots `d` (0: an A/B experiment, no learner statistics).
    pub slots: usize,
    /// Fixed-point scale of real values.
    pub scale: u32,
    /// Per-report L1 bounds.
    pub bounds: BoundsFile,
    /// The segment allowlist (coarse labels such as device classes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
    /// Relative weights of each group in the privacy budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetFile>,
}

/// [`Bounds`] as written.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundsFile {
    /// See [`Bounds::decisions`].
    pub decisions: u32,
    /// See [`Bounds::exposures`].
    pub exposures: u32,
    /// See [`Bounds::rewards`].
    pub rewards: f64,
    /// See [`Bounds::xy`]; needed when `slots` > 0.
    #[serde(default = "one")]
    pub xy: f64,
    /// See [`Bounds::xx`]; needed when `slots` > 0.
    #[serde(default = "one")]
    pub xx: f64,
}

fn one() -> f64 {
    1.0
}

/// Budget weights as written (missing groups weigh 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetFile {
    #[serde(default = "one")]
    reports: f64,
    #[serde(default = "one")]
    decisions: f64,
    #[serde(default = "one")]
    exposures: f64,
    #[serde(default = "one")]
    rewards: f64,
    #[serde(default = "one")]
    xy: f64,
    #[serde(default = "one")]
    xx: f64,
}

/// A validated task.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The file it was read from (echoed into the sums).
    pub file: TaskFile,
    /// The validated specification.
    pub spec: Spec,
}

impl TaskFile {
    /// Parse a task file. [`Code::InvalidSpec`] names the bad field.
    pub fn parse(text: &str) -> Result<TaskFile> {
        serde_json::from_str(text)
            .map_err(|e| Error::new(Code::InvalidSpec, format!("task file: {e}")))
    }

    /// Validate into a [`Task`].
    pub fn check(self) -> Result<Task> {
        let bad = |m: String| Err(Error::new(Code::InvalidSpec, m));
        if self.format != FORMAT {
            return bad(format!("format should be {FORMAT}, but is {}", self.format));
        }
        for (name, s) in [
            ("task", &self.task),
            ("period", &self.period),
            ("key", &self.key),
        ] {
            if s.is_empty() || s.len() > MAX_LABEL {
                return bad(format!(
                    "{name} should be 1 to {MAX_LABEL} bytes, but is {}",
                    s.len()
                ));
            }
        }
        if self.segments.len() > MAX_SEGMENTS {
            return bad(format!(
                "segments should list at most {MAX_SEGMENTS}, but lists {}",
                self.segments.len()
            ));
        }
        for (i, s) in self.segments.iter().enumerate() {
            if s.is_empty() || s.len() > MAX_LABEL || self.segments[..i].contains(s) {
                return bad(format!(
                    "segments[{i}] `{s}` is empty, too long or a duplicate"
                ));
            }
        }
        let b = self.bounds;
        let bounds = Bounds {
            decisions: b.decisions,
            exposures: b.exposures,
            rewards: b.rewards,
            xy: b.xy,
            xx: b.xx,
        };
        let budget = self
            .budget
            .map(|w| [w.reports, w.decisions, w.exposures, w.rewards, w.xy, w.xx]);
        let spec = Spec::new(self.variants, self.slots, self.scale, bounds, budget)?;
        Ok(Task { file: self, spec })
    }
}

impl Task {
    /// The segment buckets: the allowlist, or one unnamed bucket.
    pub fn buckets(&self) -> Vec<Option<String>> {
        if self.file.segments.is_empty() {
            vec![None]
        } else {
            self.file.segments.iter().cloned().map(Some).collect()
        }
    }
}
