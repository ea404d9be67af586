//! Policies: how posterior scores become a probability distribution.
//!
//! Every policy reads the same scorer output (per-variant posterior mean and
//! variance of the score) and hands a pmf to the shared floor and sampler.

use crate::prelude::*;

#[cfg(not(feature = "std"))]
use crate::prim::math::Float;

pub mod explore;

use crate::error::{Error, Num, Result};
#[cfg(feature = "json")]
use crate::json::Obj;
use crate::prim::rng::Rng;

/// Policy options as the site passes them: `{ type: "thompson", ... }`.
#[derive(Debug, Clone, Default)]
pub(crate) struct PolicyOptions {
    /// `"linucb"` (default), `"thompson"`, `"egreedy"` or `"greedy"`.
    pub kind: Option<String>,
    /// Thompson: multiplier on the posterior standard deviation (default 0.25).
    pub scale: Option<f64>,
    /// Thompson: posterior draws used to compute the pmf (default 32).
    pub samples: Option<u32>,
    /// LinUCB: width of the confidence bonus (default 0.5).
    pub alpha: Option<f64>,
    /// Epsilon-greedy: exploration rate (default 0.1).
    pub epsilon: Option<f64>,
    /// Floor on every variant's probability (default 0.01; at most 1/K).
    pub min_probability: Option<f64>,
}

/// A validated exploration policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PolicyKind {
    /// Linear Thompson sampling.
    Thompson {
        /// Posterior sd multiplier.
        scale: f64,
        /// Draws per decision used to estimate the pmf.
        samples: u32,
    },
    /// Upper confidence bound: mean + alpha * sd, then greedy.
    LinUcb {
        /// Bonus width.
        alpha: f64,
    },
    /// Ridge mean, then epsilon-greedy.
    EpsilonGreedy {
        /// Exploration rate.
        epsilon: f64,
    },
    /// Ridge mean, then greedy.
    Greedy,
}

/// A validated policy with its probability floor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Policy {
    pub(crate) kind: PolicyKind,
    pub(crate) min_probability: f64,
}

/// The default policy. In the offline evaluation (scripts/eval-quality.mjs:
/// linear, non-linear, two classification-to-bandit and an action-feature
/// problem) LinUCB with alpha 0.5 wins or ties on every problem and has the
/// best mean rank; Thompson sampling (scale 0.25) comes close but never ahead
/// of it, and costs K x 32 normal draws per decision for its propensity.
pub(crate) const DEFAULT_POLICY: &str = "linucb";
/// Default LinUCB bonus width (see [`DEFAULT_POLICY`]).
pub(crate) const DEFAULT_LINUCB_ALPHA: f64 = 0.5;
/// Default Thompson scale: 0.25 ranks well ahead of scale 1, which
/// over-explores with our unit prior variance.
pub(crate) const DEFAULT_THOMPSON_SCALE: f64 = 0.25;
/// Default probability floor per variant. 0.01 spread 9% of a 10-variant
/// slot's decisions over variants the learner knew to be worse; 0.001
/// earned more on real and generated problems (docs/performance.md).
pub(crate) const DEFAULT_MIN_PROBABILITY: f64 = 0.001;
/// Most of a decision's probability the default floor may spread: with more
/// than 100 variants the default floor is this budget shared by them (a
/// catalogue of 1,000 variants gets 0.0001 each, not a uniform pmf).
pub(crate) const DEFAULT_FLOOR_BUDGET: f64 = 0.1;
/// Most posterior draws Thompson sampling may use per decision.
pub(crate) const MAX_SAMPLES: u32 = 4096;

fn in_unit(x: f64, field: &str) -> Result<f64> {
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(Error::option(
            field,
            text!("should be in [0, 1], but is {}", Num(x)),
        ))
    }
}

#[cfg(feature = "json")]
impl PolicyOptions {
    /// Read from a JSON object; unknown keys are errors.
    pub(crate) fn read(mut o: Obj<'_>) -> Result<PolicyOptions> {
        let p = PolicyOptions {
            kind: o.str("type")?.map(str::to_owned),
            scale: o.num("scale")?,
            samples: o.int("samples", 0, u32::MAX as u64)?.map(|x| x as u32),
            alpha: o.num("alpha")?,
            epsilon: o.num("epsilon")?,
            min_probability: o.num("minProbability")?,
        };
        o.finish()?;
        Ok(p)
    }
}

impl PolicyOptions {
    /// Validate for `k` variants.
    pub(crate) fn check(&self, k: usize) -> Result<Policy> {
        let kind_name = self.kind.as_deref().unwrap_or(DEFAULT_POLICY);
        let allowed: &[&str] = match kind_name {
            "thompson" => &["scale", "samples"],
            "linucb" => &["alpha"],
            "egreedy" => &["epsilon"],
            "greedy" => &[],
            other => {
                return Err(Error::option(
                    "policy.type",
                    text!("should be one of thompson, linucb, egreedy, greedy, but is `{other}`"),
                ))
            }
        };
        let given = [
            ("scale", self.scale.is_some()),
            ("samples", self.samples.is_some()),
            ("alpha", self.alpha.is_some()),
            ("epsilon", self.epsilon.is_some()),
        ];
        if let Some((name, _)) = given.iter().find(|(n, set)| *set && !allowed.contains(n)) {
            return Err(Error::option(
                text!("policy.{name}"),
                text!("does not apply to policy `{kind_name}`"),
            ));
        }
        let non_negative = |x: f64, field: &str| {
            if x.is_finite() && x >= 0.0 {
                Ok(x)
            } else {
                Err(Error::option(
                    field,
                    text!("should be non-negative and finite, but is {}", Num(x)),
                ))
            }
        };
        let kind = match kind_name {
            "thompson" => {
                let samples = self.samples.unwrap_or(32);
                if !(1..=MAX_SAMPLES).contains(&samples) {
                    return Err(Error::option(
                        "policy.samples",
                        text!("should be in [1, {MAX_SAMPLES}], but is {samples}"),
                    ));
                }
                PolicyKind::Thompson {
                    scale: non_negative(
                        self.scale.unwrap_or(DEFAULT_THOMPSON_SCALE),
                        "policy.scale",
                    )?,
                    samples,
                }
            }
            "linucb" => PolicyKind::LinUcb {
                alpha: non_negative(self.alpha.unwrap_or(DEFAULT_LINUCB_ALPHA), "policy.alpha")?,
            },
            "egreedy" => PolicyKind::EpsilonGreedy {
                epsilon: in_unit(self.epsilon.unwrap_or(0.1), "policy.epsilon")?,
            },
            _ => PolicyKind::Greedy,
        };
        let min_probability = in_unit(
            self.min_probability
                .unwrap_or(DEFAULT_MIN_PROBABILITY.min(DEFAULT_FLOOR_BUDGET / k as f64)),
            "policy.minProbability",
        )?;
        if min_probability * k as f64 > 1.0 {
            return Err(Error::option(
                "policy.minProbability",
                text!(
                    "should be at most 1/{k} for {k} variants, but is {}",
                    Num(min_probability)
                ),
            ));
        }
        Ok(Policy {
            kind,
            min_probability,
        })
    }
}

impl Policy {
    /// Short name, as in `insitu-thompson`.
    pub(crate) fn name(&self) -> &'static str {
        match self.kind {
            PolicyKind::Thompson { .. } => "thompson",
            PolicyKind::LinUcb { .. } => "linucb",
            PolicyKind::EpsilonGreedy { .. } => "egreedy",
            PolicyKind::Greedy => "greedy",
        }
    }

    /// Whether the policy reads score variances (so the scorer must compute them).
    pub(crate) fn needs_variance(&self) -> bool {
        matches!(
            self.kind,
            PolicyKind::Thompson { .. } | PolicyKind::LinUcb { .. }
        )
    }

    /// The pmf over variants from posterior score means and variances, floor applied.
    #[cfg(test)]
    pub(crate) fn pmf(&self, mean: &[f64], variance: &[f64], rng: &mut Rng) -> Vec<f64> {
        let mut pmf = Vec::new();
        self.pmf_into(mean, variance, rng, &mut pmf);
        pmf
    }

    /// [`pmf`](Self::pmf) into `out`, reusing its buffer: the deterministic
    /// policies allocate nothing per decision.
    pub(crate) fn pmf_into(
        &self,
        mean: &[f64],
        variance: &[f64],
        rng: &mut Rng,
        out: &mut Vec<f64>,
    ) {
        out.clear();
        match self.kind {
            PolicyKind::Thompson { scale, samples } => {
                let mut sd = Vec::with_capacity(variance.len());
                for v in variance {
                    sd.push(scale * v.sqrt());
                }
                explore::thompson_into(mean, &sd, samples, rng, out);
            }
            PolicyKind::LinUcb { alpha } => {
                out.extend(mean.iter().zip(variance).map(|(m, v)| m + alpha * v.sqrt()));
                explore::greedy_in_place(out);
            }
            PolicyKind::EpsilonGreedy { epsilon } => {
                out.extend_from_slice(mean);
                explore::epsilon_greedy_in_place(out, epsilon);
            }
            PolicyKind::Greedy => {
                out.extend_from_slice(mean);
                explore::greedy_in_place(out);
            }
        }
        explore::floor(out, self.min_probability);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(json: &str) -> PolicyOptions {
        let j = crate::json::Json::parse(json, "policy", Error::option_owned).unwrap();
        PolicyOptions::read(Obj::new(&j, "policy", Error::option_owned).unwrap()).unwrap()
    }

    #[test]
    fn defaults_and_each_kind() {
        let p = PolicyOptions::default().check(5).unwrap();
        assert_eq!(p.kind, PolicyKind::LinUcb { alpha: 0.5 });
        assert_eq!(p.min_probability, 0.001);
        assert_eq!(
            opts(r#"{"type":"thompson"}"#).check(2).unwrap().kind,
            PolicyKind::Thompson {
                scale: DEFAULT_THOMPSON_SCALE,
                samples: 32
            }
        );
        assert_eq!(
            opts(r#"{"type":"linucb","alpha":2}"#)
                .check(2)
                .unwrap()
                .name(),
            "linucb"
        );
        assert_eq!(
            opts(r#"{"type":"greedy","minProbability":0}"#)
                .check(2)
                .unwrap()
                .kind,
            PolicyKind::Greedy
        );
    }

    #[test]
    fn bad_options_name_the_field() {
        let cases = [
            (r#"{"type":"ucb"}"#, "policy.type"),
            (r#"{"type":"egreedy","epsilon":1.5}"#, "policy.epsilon"),
            (r#"{"type":"greedy","alpha":1}"#, "policy.alpha"),
            (r#"{"samples":0}"#, "policy.samples"),
            (r#"{"scale":-1}"#, "policy.scale"),
            (r#"{"minProbability":0.3}"#, "policy.minProbability"),
        ];
        for (json, field) in cases {
            let e = opts(json).check(4).unwrap_err();
            assert_eq!(e.code(), "INVALID_OPTION");
            assert!(e.to_string().contains(field), "{e}");
        }
        let j = crate::json::Json::parse(r#"{"typo":1}"#, "policy", Error::option_owned).unwrap();
        let e =
            PolicyOptions::read(Obj::new(&j, "policy", Error::option_owned).unwrap()).unwrap_err();
        assert!(e.to_string().contains("policy.typo"), "{e}");
    }

    #[test]
    fn pmfs_respect_the_floor() {
        let mut rng = Rng::new(1);
        for json in [
            r#"{}"#,
            r#"{"type":"linucb"}"#,
            r#"{"type":"egreedy"}"#,
            r#"{"type":"greedy"}"#,
        ] {
            let p = opts(json).check(3).unwrap();
            let pmf = p.pmf(&[0.0, 5.0, 1.0], &[0.01, 0.01, 0.01], &mut rng);
            assert!((pmf.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let floor = DEFAULT_MIN_PROBABILITY;
            assert!(pmf.iter().all(|x| *x >= floor - 1e-15), "{json}: {pmf:?}");
            assert!(pmf[1] > 0.9, "{json}: {pmf:?}");
        }
    }
}
