//! The decision engine: features → scorer → exploration → seeded sample →
//! [`Decision`]; then reward → update.
//!
//! Semantics follow Azure Personalizer's rank / reward / activate: `rank`
//! returns a decision id, `reward` settles it once, and a decision ranked with
//! `defer` must be `activate`d (the variant was really shown) before it may be
//! rewarded.

use std::collections::VecDeque;

use crate::bandit::{Policy, PolicyOptions};
use crate::error::{Error, Num, Result};
use crate::features::{FeatureOptions, Origin, SparseVec};
use crate::json::{Json, Obj};
use crate::model::{self, CompactModel, Posterior};
use crate::rng::{Rng, MAX_SEED};

/// Default time a decision may wait for its reward: 24 hours.
pub(crate) const DEFAULT_REWARD_TTL_MS: f64 = 24.0 * 3600.0 * 1000.0;
/// Default number of decisions kept for delayed rewards.
pub(crate) const DEFAULT_MAX_PENDING: u64 = 256;
/// Upper bound on `maxPending`.
pub(crate) const MAX_PENDING_LIMIT: u64 = 10_000;

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

const OPT_ERR: crate::json::ErrKind = Error::option_owned;

impl EngineConfig {
    /// Parse and validate engine options (JSON text). `default_seed` is used
    /// when the options give no seed: the boundary passes fresh entropy.
    ///
    /// Options: `variants` (ids, or `{id, features}`) or `model`; `features`
    /// (`bits`, `allow`, `interactions`, `hashVersion`), `noise` and
    /// `priorVariance` when there is no model; `policy`; `fallback`; `seed`;
    /// `rewardTtlMs`; `maxPending`. Unknown keys are errors.
    pub fn parse(text: &str, default_seed: u64) -> Result<EngineConfig> {
        let json = Json::parse(text, "options", OPT_ERR)?;
        let mut o = Obj::new(&json, "", OPT_ERR)?;
        let model_json = o.get("model");
        let variants = o.arr("variants")?;
        let features = o.obj("features")?;
        let noise = o.num("noise")?;
        let prior_variance = o.num("priorVariance")?;
        let policy = match o.obj("policy")? {
            Some(p) => PolicyOptions::read(p)?,
            None => PolicyOptions::default(),
        };
        let fallback = o.str("fallback")?;
        let seed = o.int("seed", 0, MAX_SEED)?;
        let reward_ttl_ms = o.num("rewardTtlMs")?;
        let max_pending = o.int("maxPending", 1, MAX_PENDING_LIMIT)?;
        o.finish()?;

        let variant_list = match variants {
            None => None,
            Some(vs) => Some(crate::json::map_items(vs, |i, v| match v {
                Json::Str(id) => Ok((id.to_string(), None)),
                other => {
                    let mut vo = Obj::new(other, &format!("variants[{i}]"), OPT_ERR)?;
                    let id = vo
                        .str("id")?
                        .ok_or_else(|| vo.err("id", "is required"))?
                        .to_owned();
                    let f = vo.get("features").map(|j| j.clone().into_owned());
                    vo.finish()?;
                    Ok((id, f))
                }
            })?),
        };

        let model = match (model_json, variant_list) {
            (Some(m), variants) => {
                if features.is_some() || noise.is_some() || prior_variance.is_some() {
                    return Err(Error::option(
                        "features",
                        "features, noise and priorVariance come from the model when one is given",
                    ));
                }
                let m = CompactModel::from_json(m)?;
                if let Some(vs) = variants {
                    if !vs.iter().map(|(id, _)| id.as_str()).eq(m.variant_ids()) {
                        return Err(Error::option(
                            "variants",
                            "must match the model's variant ids, or be left out",
                        ));
                    }
                }
                m
            }
            (None, Some(ids)) => {
                let fc = match features {
                    Some(f) => FeatureOptions::read(f)?,
                    None => FeatureOptions::default(),
                }
                .check("features.")?;
                let noise =
                    model::positive(noise.unwrap_or(model::DEFAULT_NOISE), "noise", OPT_ERR)?;
                let var = model::positive(
                    prior_variance.unwrap_or(model::DEFAULT_PRIOR_VARIANCE),
                    "priorVariance",
                    OPT_ERR,
                )?;
                for (i, (_, f)) in ids.iter().enumerate() {
                    if let Some(f) = f {
                        fc.featurize(&Json::Null, Some(f)).map_err(|e| {
                            Error::option(format!("variants[{i}].features"), e.to_string())
                        })?;
                    }
                }
                CompactModel::uninformed(fc, ids, noise, var)?
            }
            (None, None) => {
                return Err(Error::option(
                    "variants",
                    "is required when no model is given",
                ))
            }
        };
        let k = model.variants.len();
        let policy = policy.check(k)?;
        let fallback = match fallback {
            None => 0,
            Some(id) => model.variant_ids().position(|v| v == id).ok_or_else(|| {
                Error::option("fallback", format!("`{id}` is not one of the variants"))
            })?,
        };
        let reward_ttl_ms = model::positive(
            reward_ttl_ms.unwrap_or(DEFAULT_REWARD_TTL_MS),
            "rewardTtlMs",
            OPT_ERR,
        )?;
        Ok(EngineConfig {
            model,
            policy,
            fallback,
            seed: seed.unwrap_or(default_seed & MAX_SEED),
            reward_ttl_ms,
            max_pending: max_pending.unwrap_or(DEFAULT_MAX_PENDING) as usize,
        })
    }
}

/// Options of one `rank` call.
#[derive(Debug, Clone, Default)]
pub struct RankOptions<'a> {
    pub(crate) context: Option<Json<'a>>,
    pub(crate) actions: Option<Vec<Json<'a>>>,
    pub(crate) seed: Option<u64>,
    pub(crate) defer: bool,
    /// The injected clock, in ms since the epoch; the JS boundary defaults it to `Date.now()`.
    pub now: Option<f64>,
}

/// Read `reward`: required, and JSON.stringify writes NaN and ±Infinity as
/// null, which is an invalid reward, not a missing one.
fn read_reward(o: &mut Obj<'_>) -> Result<f64> {
    if o.is_null("reward") {
        o.get("reward");
        return Ok(f64::NAN); // rejected as INVALID_REWARD by the engine
    }
    o.num("reward")?
        .ok_or_else(|| o.err("reward", "is required"))
}

/// Read the injected clock `now`; a null (NaN or ±Infinity in JS) is an error,
/// not a reason to fall back to the wall clock.
fn read_now(o: &mut Obj<'_>) -> Result<Option<f64>> {
    if o.is_null("now") {
        return Err(o.err(
            "now",
            "should be a finite time in ms, but is NaN or Infinity",
        ));
    }
    o.num("now")
}

/// Move `context` and `actions` out of parsed options (after `Obj` has
/// checked their types): cloning the context tree was a large part of a decision.
fn take_features<'a>(json: &mut Json<'a>) -> (Option<Json<'a>>, Option<Vec<Json<'a>>>) {
    let context = json.take("context");
    let actions = match json.take("actions") {
        Some(Json::Arr(a)) => Some(a),
        _ => None,
    };
    (context, actions)
}

impl<'a> RankOptions<'a> {
    /// A copy that owns its features, to keep beyond the text it was parsed from.
    pub fn into_owned(self) -> RankOptions<'static> {
        RankOptions {
            context: self.context.map(Json::into_owned),
            actions: self
                .actions
                .map(|a| a.into_iter().map(Json::into_owned).collect()),
            seed: self.seed,
            defer: self.defer,
            now: self.now,
        }
    }

    /// Parse `{ context?, actions?, seed?, defer?, now? }`.
    ///
    /// `context` is namespaced features; `actions` gives each variant's
    /// features for this call (replacing the configured ones); `seed` replays
    /// a decision; `defer` requires `activate` before the reward counts.
    pub fn parse(text: &'a str) -> Result<RankOptions<'a>> {
        let mut json = Json::parse(text, "rank options", OPT_ERR)?;
        let mut o = Obj::new(&json, "", OPT_ERR)?;
        o.get("context");
        o.arr("actions")?;
        let seed = o.int("seed", 0, MAX_SEED)?;
        let defer = o.bool("defer")?.unwrap_or(false);
        let now = read_now(&mut o)?;
        o.finish()?;
        let (context, actions) = take_features(&mut json);
        Ok(RankOptions {
            context,
            actions,
            seed,
            defer,
            now,
        })
    }
}

/// Options of one `learn` call: a logged (context, variant, reward) triple.
#[derive(Debug, Clone)]
pub struct LearnOptions<'a> {
    pub(crate) context: Option<Json<'a>>,
    pub(crate) actions: Option<Vec<Json<'a>>>,
    pub(crate) variant: String,
    pub(crate) reward: f64,
}

impl<'a> LearnOptions<'a> {
    /// Parse `{ context?, actions?, variant, reward }`.
    pub fn parse(text: &'a str) -> Result<LearnOptions<'a>> {
        let mut json = Json::parse(text, "learn options", OPT_ERR)?;
        let mut o = Obj::new(&json, "", OPT_ERR)?;
        o.get("context");
        o.arr("actions")?;
        let variant = o
            .str("variant")?
            .ok_or_else(|| o.err("variant", "is required"))?
            .to_owned();
        let reward = read_reward(&mut o)?;
        o.finish()?;
        let (context, actions) = take_features(&mut json);
        Ok(LearnOptions {
            context,
            actions,
            variant,
            reward,
        })
    }
}

/// Options of `reward` (`{ decisionId, reward, now? }`) and `activate` (`{ decisionId, now? }`).
#[derive(Debug, Clone)]
pub struct SettleOptions {
    /// The decision to settle.
    pub decision_id: String,
    /// The reward (NaN for `activate`, and when JS passed NaN or ±Infinity).
    pub reward: f64,
    /// The injected clock, in ms.
    pub now: Option<f64>,
}

impl SettleOptions {
    /// Parse; `with_reward` says whether `reward` is required (reward) or not allowed (activate).
    pub fn parse(text: &str, with_reward: bool) -> Result<SettleOptions> {
        let json = Json::parse(text, "options", Error::option_owned)?;
        let mut o = Obj::new(&json, "", Error::option_owned)?;
        let decision_id = o
            .str("decisionId")?
            .ok_or_else(|| o.err("decisionId", "is required"))?
            .to_owned();
        let reward = if with_reward {
            read_reward(&mut o)?
        } else {
            f64::NAN
        };
        let now = read_now(&mut o)?;
        o.finish()?;
        Ok(SettleOptions {
            decision_id,
            reward,
            now,
        })
    }
}

/// The result of `rank`.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Id of the chosen variant.
    pub variant: String,
    /// Its position in the variant list.
    pub index: usize,
    /// The probability that the policy chose it, given this context and state.
    pub probability: f64,
    /// The probability of every variant (same order as the variant list).
    pub pmf: Vec<f64>,
    /// Posterior mean score of every variant (empty for a fallback).
    pub scores: Vec<f64>,
    /// Pass to `reward` / `activate`; `None` for a fallback.
    pub decision_id: Option<String>,
    /// Pass to `rank({seed})` with the same state to replay this decision; `None` for a fallback.
    pub seed: Option<u64>,
    /// The content hash of the prior model.
    pub model_version: String,
    /// Policy name.
    pub policy: &'static str,
    /// True when this is the configured fallback served because something failed.
    pub fallback: bool,
}

#[derive(Debug, Clone)]
struct Pending {
    /// The decision's sequence number; the deque holds consecutive numbers
    /// because entries are only added at the back and removed at the front.
    counter: u64,
    id: String,
    arm: usize,
    x: SparseVec,
    expires_at: f64,
    activated: bool,
    rewarded: bool,
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

    /// The model version (content hash of the prior).
    pub fn model_version(&self) -> &str {
        self.cfg.model.version()
    }

    /// Variant ids in order.
    pub fn variant_ids(&self) -> Vec<String> {
        self.cfg.model.variant_ids().map(str::to_owned).collect()
    }

    /// Policy name.
    pub fn policy_name(&self) -> &'static str {
        self.cfg.policy.name()
    }

    /// Updates learned per variant, in variant order.
    pub fn updates(&self) -> Vec<u64> {
        self.arms.iter().map(|p| p.n).collect()
    }

    /// The decision served when anything fails: the fallback variant with
    /// probability 1 and no decision id (the boundary attaches the error).
    pub fn fallback_decision(&self) -> Decision {
        let index = self.cfg.fallback;
        Decision {
            variant: self.cfg.model.variants[index].id.clone(),
            index,
            probability: 1.0,
            pmf: (0..self.arms.len())
                .map(|i| if i == index { 1.0 } else { 0.0 })
                .collect(),
            scores: Vec::new(),
            decision_id: None,
            seed: None,
            model_version: self.model_version().to_owned(),
            policy: self.policy_name(),
            fallback: true,
        }
    }

    /// Decisions waiting for a reward.
    pub fn pending_count(&self) -> usize {
        self.pending.iter().filter(|p| !p.rewarded).count()
    }

    /// Feature vectors per variant. When no variant has features of its own,
    /// every variant sees the same vector and only one is returned (see
    /// [`for_arm`]), rather than K copies.
    fn featurize(
        &self,
        context: Option<&Json>,
        actions: Option<&[Json]>,
    ) -> Result<Vec<SparseVec>> {
        let k = self.arms.len();
        let fc = &self.cfg.model.features;
        if let Some(a) = actions {
            if a.len() != k {
                return Err(Error::context(
                    "actions",
                    format!("should list {k} variants, but lists {}", a.len()),
                ));
            }
        }
        let mut shared = Vec::new();
        fc.hash_context(context.unwrap_or(&Json::Null), Origin::Context, &mut shared)?;
        let action_of = |i: usize| -> Option<&Json> {
            match actions {
                Some(a) => Some(&a[i]).filter(|j| **j != Json::Null),
                None => self.cfg.model.variants[i].features.as_ref(),
            }
        };
        if (0..k).all(|i| action_of(i).is_none()) {
            return Ok(vec![fc.fold(&shared)?]);
        }
        (0..k)
            .map(|i| {
                let mut feats = shared.clone();
                if let Some(a) = action_of(i) {
                    fc.hash_context(a, Origin::Action(Some(i)), &mut feats)?;
                }
                fc.fold(&feats)
            })
            .collect()
    }

    fn prune(&mut self, now: f64) {
        // Keep settled and expired entries for one more TTL, so a late or
        // repeated reward is told apart from an unknown id.
        let ttl = self.cfg.reward_ttl_ms;
        while self
            .pending
            .front()
            .is_some_and(|p| p.expires_at + ttl < now)
        {
            self.pending.pop_front();
        }
        while self.pending.len() >= self.cfg.max_pending {
            self.pending.pop_front();
        }
    }

    /// Choose a variant. On error nothing changes (not even the seed stream).
    pub fn rank(&mut self, opts: &RankOptions<'_>, now_ms: f64) -> Result<Decision> {
        check_now(now_ms)?;
        let xs = self.featurize(opts.context.as_ref(), opts.actions.as_deref())?;
        let seed = opts.seed.unwrap_or_else(|| self.rng.next_seed());
        let mut rng = Rng::new(seed);
        let policy = &self.cfg.policy;
        let scores: Vec<f64> = (self.arms.iter().enumerate())
            .map(|(i, p)| p.mean_score(for_arm(&xs, i)))
            .collect();
        let variances: Vec<f64> = if policy.needs_variance() {
            (self.arms.iter().enumerate())
                .map(|(i, p)| p.score_variance(for_arm(&xs, i)))
                .collect()
        } else {
            vec![0.0; self.arms.len()]
        };
        let pmf = policy.pmf(&scores, &variances, &mut rng);
        let (index, probability) = crate::bandit::explore::sample(&pmf, rng.next_f64());
        self.counter += 1;
        let decision_id = format!("{seed:x}-{:x}", self.counter);
        self.prune(now_ms);
        let x = for_arm(&xs, index).clone();
        self.pending.push_back(Pending {
            counter: self.counter,
            id: decision_id.clone(),
            arm: index,
            x,
            expires_at: now_ms + self.cfg.reward_ttl_ms,
            activated: !opts.defer,
            rewarded: false,
        });
        Ok(Decision {
            variant: self.cfg.model.variants[index].id.clone(),
            index,
            probability,
            pmf,
            scores,
            decision_id: Some(decision_id),
            seed: Some(seed),
            model_version: self.model_version().to_owned(),
            policy: self.cfg.policy.name(),
            fallback: false,
        })
    }

    /// Mark a deferred decision as shown, so its reward will count.
    pub fn activate(&mut self, id: &str, now_ms: f64) -> Result<()> {
        check_now(now_ms)?;
        find(&mut self.pending, id, now_ms)?.activated = true;
        Ok(())
    }

    /// Settle a decision with a reward in [0, 1]. On error nothing changes.
    pub fn reward(&mut self, id: &str, reward: f64, now_ms: f64) -> Result<()> {
        check_now(now_ms)?;
        check_reward(reward)?;
        let noise = self.cfg.model.noise;
        let p = find(&mut self.pending, id, now_ms)?;
        if !p.activated {
            return Err(Error::NotActivated { id: id.to_owned() });
        }
        self.arms[p.arm].update(&p.x, reward, noise, 1.0)?;
        p.rewarded = true;
        Ok(())
    }

    /// Learn from a logged observation (the variant may be one this engine did
    /// not choose). On error nothing changes.
    pub fn learn(&mut self, opts: &LearnOptions<'_>) -> Result<()> {
        check_reward(opts.reward)?;
        let arm = self
            .cfg
            .model
            .variant_ids()
            .position(|v| v == opts.variant.as_str())
            .ok_or_else(|| Error::UnknownVariant {
                variant: opts.variant.clone(),
            })?;
        let xs = self.featurize(opts.context.as_ref(), opts.actions.as_deref())?;
        let noise = self.cfg.model.noise;
        self.arms[arm].update(for_arm(&xs, arm), opts.reward, noise, 1.0)
    }
}

/// The feature vector of variant `i` from [`Engine::featurize`]'s result.
fn for_arm(xs: &[SparseVec], i: usize) -> &SparseVec {
    if xs.len() == 1 {
        &xs[0]
    } else {
        &xs[i]
    }
}

/// The pending decision `id`, if it can still be settled. A free function
/// over the queue so callers can update the learners while holding it.
fn find<'p>(pending: &'p mut VecDeque<Pending>, id: &str, now_ms: f64) -> Result<&'p mut Pending> {
    // Ids end in the hex sequence number, which gives the slot in O(1).
    let unknown = || Error::UnknownDecision { id: id.to_owned() };
    let counter = id
        .rsplit_once('-')
        .and_then(|(_, c)| u64::from_str_radix(c, 16).ok())
        .ok_or_else(unknown)?;
    let first = pending.front().map_or(0, |p| p.counter);
    let slot = counter.checked_sub(first).ok_or_else(unknown)?;
    let p = usize::try_from(slot)
        .ok()
        .and_then(|i| pending.get_mut(i))
        .filter(|p| p.id == id)
        .ok_or_else(unknown)?;
    if p.rewarded {
        return Err(Error::DuplicateReward { id: id.to_owned() });
    }
    if now_ms > p.expires_at {
        return Err(Error::DecisionExpired { id: id.to_owned() });
    }
    Ok(p)
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
        Err(Error::option(
            "now",
            format!("should be a finite time in ms, but is {}", Num(now)),
        ))
    }
}
