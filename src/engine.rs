//! The decision engine: features → scorer → exploration → seeded sample →
//! [`Decision`]; then reward → update.
//!
//! Semantics follow Azure Personalizer's rank / reward / activate: `rank`
//! returns a decision id, `reward` settles it once, and a decision ranked with
//! `defer` must be `activate`d (the variant was really shown) before it may be
//! rewarded.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::bandit::{Policy, PolicyOptions};
use crate::error::{Error, Result};
use crate::features::{Context, FeatureOptions, SparseVec};
use crate::model::{self, CompactModel, ModelSpec, Posterior};
use crate::rng::{Rng, MAX_SEED};

/// Default time a decision may wait for its reward: 24 hours.
pub(crate) const DEFAULT_REWARD_TTL_MS: f64 = 24.0 * 3600.0 * 1000.0;
/// Default number of decisions kept for delayed rewards.
pub(crate) const DEFAULT_MAX_PENDING: u32 = 256;
/// Upper bound on `maxPending`.
pub(crate) const MAX_PENDING_LIMIT: u32 = 10_000;

/// A variant given by id alone or with its own features.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum VariantOption {
    /// Just the id.
    Id(String),
    /// Id and variant features.
    Full {
        /// Stable id.
        id: String,
        /// Features describing the variant.
        features: Option<Context>,
    },
}

/// Engine options as the site passes them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EngineOptions {
    /// The variants, when no model is shipped.
    pub variants: Option<Vec<VariantOption>>,
    /// The shipped prior model; carries variants and feature configuration.
    pub model: Option<ModelSpec>,
    /// Feature configuration, when no model is shipped.
    pub features: Option<FeatureOptions>,
    /// Exploration policy.
    pub policy: Option<PolicyOptions>,
    /// Variant served when anything fails; default the first.
    pub fallback: Option<String>,
    /// Seed of the engine's decision-seed stream (integer in [0, 2^53)).
    pub seed: Option<f64>,
    /// Observation noise variance of rewards (no model only; default 0.25).
    pub noise: Option<f64>,
    /// Prior variance of every weight (no model only; default 1).
    pub prior_variance: Option<f64>,
    /// How long a decision accepts its reward, in ms (default 24 h).
    pub reward_ttl_ms: Option<f64>,
    /// How many decisions are kept for delayed rewards (default 256).
    pub max_pending: Option<u32>,
}

/// Validated engine configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub(crate) model: CompactModel,
    pub(crate) policy: Policy,
    pub(crate) fallback: usize,
    pub(crate) seed: u64,
    pub(crate) reward_ttl_ms: f64,
    pub(crate) max_pending: usize,
}

/// Check a seed given as a JS number.
pub(crate) fn check_seed(x: f64, field: &str) -> Result<u64> {
    if x.is_finite() && x >= 0.0 && x <= MAX_SEED as f64 && x.fract() == 0.0 {
        Ok(x as u64)
    } else {
        Err(Error::option(field, format!("should be an integer in [0, 2^53), but is {x}")))
    }
}

impl EngineOptions {
    /// Validate. `default_seed` is used when no seed is given (the boundary
    /// passes fresh entropy; tests pass a constant).
    pub fn check(&self, default_seed: u64) -> Result<EngineConfig> {
        let model = match (&self.model, &self.variants) {
            (Some(spec), variants) => {
                if self.features.is_some() || self.noise.is_some() || self.prior_variance.is_some() {
                    return Err(Error::option(
                        "features",
                        "features, noise and priorVariance come from the model when one is given",
                    ));
                }
                let m = spec.check()?;
                if let Some(vs) = variants {
                    let ids: Vec<&str> = vs.iter().map(variant_id).collect();
                    if !ids.iter().copied().eq(m.variant_ids()) {
                        return Err(Error::option("variants", "must match the model's variant ids, or be left out"));
                    }
                }
                m
            }
            (None, Some(vs)) => {
                let features = self.features.clone().unwrap_or_default().check("features.")?;
                let noise = model::positive(self.noise.unwrap_or(model::DEFAULT_NOISE), "noise", Error::option_owned)?;
                let var = model::positive(
                    self.prior_variance.unwrap_or(model::DEFAULT_PRIOR_VARIANCE),
                    "priorVariance",
                    Error::option_owned,
                )?;
                let ids = vs
                    .iter()
                    .map(|v| match v {
                        VariantOption::Id(id) => (id.clone(), None),
                        VariantOption::Full { id, features } => (id.clone(), features.clone()),
                    })
                    .collect::<Vec<_>>();
                for (i, (_, f)) in ids.iter().enumerate() {
                    if let Some(f) = f {
                        features.featurize(&Context::new(), Some(f)).map_err(|e| {
                            Error::option(format!("variants[{i}].features"), e.to_string())
                        })?;
                    }
                }
                CompactModel::uninformed(features, ids, noise, var)?
            }
            (None, None) => return Err(Error::option("variants", "is required when no model is given")),
        };
        let k = model.variants.len();
        let policy = self.policy.clone().unwrap_or_default().check(k)?;
        let fallback = match &self.fallback {
            None => 0,
            Some(id) => model.variant_ids().position(|v| v == id).ok_or_else(|| {
                Error::option("fallback", format!("`{id}` is not one of the variants"))
            })?,
        };
        let seed = match self.seed {
            Some(s) => check_seed(s, "seed")?,
            None => default_seed & MAX_SEED,
        };
        let reward_ttl_ms = model::positive(
            self.reward_ttl_ms.unwrap_or(DEFAULT_REWARD_TTL_MS),
            "rewardTtlMs",
            Error::option_owned,
        )?;
        let max_pending = self.max_pending.unwrap_or(DEFAULT_MAX_PENDING);
        if !(1..=MAX_PENDING_LIMIT).contains(&max_pending) {
            return Err(Error::option(
                "maxPending",
                format!("should be in [1, {MAX_PENDING_LIMIT}], but is {max_pending}"),
            ));
        }
        Ok(EngineConfig { model, policy, fallback, seed, reward_ttl_ms, max_pending: max_pending as usize })
    }
}

fn variant_id(v: &VariantOption) -> &str {
    match v {
        VariantOption::Id(id) | VariantOption::Full { id, .. } => id,
    }
}

/// Options of one `rank` call.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RankOptions {
    /// Namespaced context features.
    pub context: Option<Context>,
    /// Features of each variant for this call (replacing the configured ones), one per variant.
    pub actions: Option<Vec<Option<Context>>>,
    /// Replay a decision: use this seed instead of the next one from the stream.
    pub seed: Option<f64>,
    /// Deferred activation: the decision must be `activate`d before its reward counts.
    pub defer: Option<bool>,
    /// The injected clock, in ms since the epoch; the JS boundary defaults it to `Date.now()`.
    pub now: Option<f64>,
}

/// Options of one `learn` call: a logged (context, variant, reward) triple.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LearnOptions {
    /// Namespaced context features.
    pub context: Option<Context>,
    /// Per-variant features, as in `rank`.
    pub actions: Option<Vec<Option<Context>>>,
    /// The variant that was shown, by id.
    pub variant: String,
    /// The reward in [0, 1].
    pub reward: f64,
}

/// The result of `rank`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Id of the chosen variant.
    pub variant: String,
    /// Its position in the variant list.
    pub index: usize,
    /// The probability that the policy chose it, given this context and state.
    pub probability: f64,
    /// The probability of every variant (same order as the variant list).
    pub pmf: Vec<f64>,
    /// Posterior mean score of every variant.
    pub scores: Vec<f64>,
    /// Pass to `reward` / `activate`.
    pub decision_id: String,
    /// Pass to `rank({seed})` with the same state to replay this decision.
    pub seed: u64,
    /// The content hash of the prior model.
    pub model_version: String,
    /// Policy name.
    pub policy: &'static str,
}

#[derive(Debug, Clone)]
struct Pending {
    id: String,
    arm: usize,
    x: SparseVec,
    expires_at: f64,
    activated: bool,
    rewarded: bool,
}

/// Learner statistics of one variant, for dashboards and audits.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantStats {
    /// Variant id.
    pub id: String,
    /// Rewards learned from.
    pub updates: u64,
}

/// The engine: one decision point (a page slot) with its variants.
#[derive(Debug, Clone)]
pub struct Engine {
    cfg: EngineConfig,
    arms: Vec<Posterior>,
    rng: Rng,
    pending: VecDeque<Pending>,
    counter: u64,
}

impl Engine {
    /// A new engine at the prior.
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine {
            arms: cfg.model.posteriors(),
            rng: Rng::new(cfg.seed),
            pending: VecDeque::new(),
            counter: 0,
            cfg,
        }
    }

    /// The validated configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The model version (content hash of the prior).
    pub fn model_version(&self) -> &str {
        self.cfg.model.version()
    }

    /// Variant ids in order.
    pub fn variant_ids(&self) -> Vec<String> {
        self.cfg.model.variant_ids().map(str::to_owned).collect()
    }

    /// Index of the fallback variant.
    pub fn fallback(&self) -> usize {
        self.cfg.fallback
    }

    /// Policy name.
    pub fn policy_name(&self) -> &'static str {
        self.cfg.policy.name()
    }

    /// Per-variant learner statistics.
    pub fn stats(&self) -> Vec<VariantStats> {
        self.cfg
            .model
            .variants
            .iter()
            .zip(&self.arms)
            .map(|(v, p)| VariantStats { id: v.id.clone(), updates: p.n })
            .collect()
    }

    /// Decisions waiting for a reward.
    pub fn pending_count(&self) -> usize {
        self.pending.iter().filter(|p| !p.rewarded).count()
    }

    fn featurize(&self, context: Option<&Context>, actions: Option<&[Option<Context>]>) -> Result<Vec<SparseVec>> {
        let k = self.arms.len();
        let fc = &self.cfg.model.features;
        if let Some(a) = actions {
            if a.len() != k {
                return Err(Error::context("actions", format!("should list {k} variants, but lists {}", a.len())));
            }
        }
        let empty = Context::new();
        let mut shared = Vec::new();
        fc.hash_context(context.unwrap_or(&empty), "context.", &mut shared)?;
        let action_of = |i: usize| -> Option<&Context> {
            match actions {
                Some(a) => a[i].as_ref(),
                None => self.cfg.model.variants[i].features.as_ref(),
            }
        };
        if (0..k).all(|i| action_of(i).is_none()) {
            let x = fc.fold(&shared)?;
            return Ok(vec![x; k]);
        }
        (0..k)
            .map(|i| {
                let mut feats = shared.clone();
                if let Some(a) = action_of(i) {
                    fc.hash_context(a, &format!("actions[{i}]."), &mut feats)?;
                }
                fc.fold(&feats)
            })
            .collect()
    }

    fn prune(&mut self, now: f64) {
        // Keep settled and expired entries for one more TTL, so a late or
        // repeated reward is told apart from an unknown id.
        let ttl = self.cfg.reward_ttl_ms;
        while self.pending.front().is_some_and(|p| p.expires_at + ttl < now) {
            self.pending.pop_front();
        }
        while self.pending.len() >= self.cfg.max_pending {
            self.pending.pop_front();
        }
    }

    /// Choose a variant. On error nothing changes (not even the seed stream).
    pub fn rank(&mut self, opts: &RankOptions, now_ms: f64) -> Result<Decision> {
        check_now(now_ms)?;
        let seed = match opts.seed {
            Some(s) => Some(check_seed(s, "seed")?),
            None => None,
        };
        let xs = self.featurize(opts.context.as_ref(), opts.actions.as_deref())?;
        let seed = seed.unwrap_or_else(|| self.rng.next_seed());
        let mut rng = Rng::new(seed);
        let policy = &self.cfg.policy;
        let scores: Vec<f64> = self.arms.iter().zip(&xs).map(|(p, x)| p.mean_score(x)).collect();
        let variances: Vec<f64> = if policy.needs_variance() {
            self.arms.iter().zip(&xs).map(|(p, x)| p.score_variance(x)).collect()
        } else {
            vec![0.0; xs.len()]
        };
        let pmf = policy.pmf(&scores, &variances, &mut rng);
        let _ = policy;
        let (index, probability) = crate::bandit::explore::sample(&pmf, rng.next_f64());
        self.counter += 1;
        let decision_id = format!("{seed:x}-{:x}", self.counter);
        self.prune(now_ms);
        let x = xs.into_iter().nth(index).unwrap_or_default();
        self.pending.push_back(Pending {
            id: decision_id.clone(),
            arm: index,
            x,
            expires_at: now_ms + self.cfg.reward_ttl_ms,
            activated: !opts.defer.unwrap_or(false),
            rewarded: false,
        });
        Ok(Decision {
            variant: self.cfg.model.variants[index].id.clone(),
            index,
            probability,
            pmf,
            scores,
            decision_id,
            seed,
            model_version: self.model_version().to_owned(),
            policy: self.cfg.policy.name(),
        })
    }

    fn find(&mut self, id: &str, now_ms: f64) -> Result<&mut Pending> {
        let p = self
            .pending
            .iter_mut()
            .rev()
            .find(|p| p.id == id)
            .ok_or_else(|| Error::UnknownDecision { id: id.to_owned() })?;
        if p.rewarded {
            return Err(Error::DuplicateReward { id: id.to_owned() });
        }
        if now_ms > p.expires_at {
            return Err(Error::DecisionExpired { id: id.to_owned() });
        }
        Ok(p)
    }

    /// Mark a deferred decision as shown, so its reward will count.
    pub fn activate(&mut self, id: &str, now_ms: f64) -> Result<()> {
        check_now(now_ms)?;
        self.find(id, now_ms)?.activated = true;
        Ok(())
    }

    /// Settle a decision with a reward in [0, 1]. On error nothing changes.
    pub fn reward(&mut self, id: &str, reward: f64, now_ms: f64) -> Result<()> {
        check_now(now_ms)?;
        check_reward(reward)?;
        let noise = self.cfg.model.noise;
        let p = self.find(id, now_ms)?;
        if !p.activated {
            return Err(Error::NotActivated { id: id.to_owned() });
        }
        let (arm, x) = (p.arm, p.x.clone());
        self.arms[arm].update(&x, reward, noise, 1.0)?;
        self.find(id, now_ms)?.rewarded = true;
        Ok(())
    }

    /// Learn from a logged observation (the variant may be one this engine did
    /// not choose). On error nothing changes.
    pub fn learn(&mut self, opts: &LearnOptions) -> Result<()> {
        check_reward(opts.reward)?;
        let arm = self.cfg.model.variant_ids().position(|v| v == opts.variant).ok_or_else(|| {
            Error::UnknownVariant { variant: opts.variant.clone() }
        })?;
        let xs = self.featurize(opts.context.as_ref(), opts.actions.as_deref())?;
        let noise = self.cfg.model.noise;
        self.arms[arm].update(&xs[arm], opts.reward, noise, 1.0)
    }
}

fn check_reward(r: f64) -> Result<()> {
    if r.is_finite() && (0.0..=1.0).contains(&r) {
        Ok(())
    } else {
        Err(Error::InvalidReward { value: r })
    }
}

fn check_now(now: f64) -> Result<()> {
    if now.is_finite() {
        Ok(())
    } else {
        Err(Error::option("now", format!("should be a finite time in ms, but is {now}")))
    }
}
