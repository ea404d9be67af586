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
use crate::features::{check_count, Dense, FeatureOptions, Hashed, Origin, SparseVec};
use crate::json::{Json, Obj};
use crate::model::{self, CompactModel, Posterior};
use crate::rng::{Rng, MAX_SEED};

mod explain;
mod persist;
pub use explain::{Contribution, ExplainOptions, Explanation};
pub use persist::SyncReport;

/// Default time a decision may wait for its reward: 24 hours.
pub(crate) const DEFAULT_REWARD_TTL_MS: f64 = crate::behavior::DAY_MS;
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
    /// First part of every decision id, from the caller's entropy.
    pub(crate) epoch: u64,
}

const OPT_ERR: crate::json::ErrKind = Error::option_owned;

impl EngineConfig {
    /// Parse and validate engine options (JSON text). `entropy` is fresh
    /// randomness from the caller (the boundary passes `getrandom`): it seeds
    /// the decision stream when the options give no seed, and it always makes
    /// the decision-id epoch, so two instances (or two page views) configured
    /// with the same seed still never accept each other's ids.
    ///
    /// Options: `variants` (ids, or `{id, features}`) or `model`; `features`
    /// (`bits`, `allow`, `interactions`, `hashVersion`), `noise` and
    /// `priorVariance` when there is no model; `policy`; `fallback`; `seed`;
    /// `rewardTtlMs`; `maxPending`. Unknown keys are errors.
    pub fn parse(text: &str, entropy: u64) -> Result<EngineConfig> {
        EngineConfig::from_json(&Json::parse(text, "options", OPT_ERR)?, entropy)
    }

    /// [`parse`](Self::parse) of options already read (from text, or from
    /// the packed form the JS boundary writes).
    pub(crate) fn from_json(json: &Json<'_>, entropy: u64) -> Result<EngineConfig> {
        let mut o = Obj::new(json, "", OPT_ERR)?;
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
                let mut variants = Vec::with_capacity(ids.len());
                for (i, (id, f)) in ids.into_iter().enumerate() {
                    let hashed = match &f {
                        Some(f) => fc.hash_variant(f).map_err(|e| {
                            Error::option(format!("variants[{i}].features"), e.to_string())
                        })?,
                        None => Vec::new(),
                    };
                    variants.push((id, f, hashed));
                }
                CompactModel::uninformed(fc, variants, noise, var)?
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
            seed: seed.unwrap_or(entropy & MAX_SEED),
            epoch: epoch_of(entropy),
            reward_ttl_ms,
            max_pending: max_pending.unwrap_or(DEFAULT_MAX_PENDING) as usize,
        })
    }
}

/// Hashed features of each variant's per-call `actions`, when given.
type PerAction = Option<Vec<Vec<Hashed>>>;

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

/// The options object with `context` and `actions` type-checked, for
/// [`take_features`] to move them out once the other fields are read.
fn feature_options<'j>(json: &'j Json<'j>) -> Result<Obj<'j>> {
    let mut o = Obj::new(json, "", OPT_ERR)?;
    o.get("context");
    o.arr("actions")?;
    Ok(o)
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
        RankOptions::from_json(Json::parse(text, "rank options", OPT_ERR)?)
    }

    /// [`parse`](Self::parse) of options already read.
    pub(crate) fn from_json(mut json: Json<'a>) -> Result<RankOptions<'a>> {
        let mut o = feature_options(&json)?;
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
        LearnOptions::from_json(Json::parse(text, "learn options", OPT_ERR)?)
    }

    /// [`parse`](Self::parse) of options already read.
    pub(crate) fn from_json(mut json: Json<'a>) -> Result<LearnOptions<'a>> {
        let mut o = feature_options(&json)?;
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
        SettleOptions::from_json(&Json::parse(text, "options", OPT_ERR)?, with_reward)
    }

    /// [`parse`](Self::parse) of options already read.
    pub(crate) fn from_json(json: &Json<'_>, with_reward: bool) -> Result<SettleOptions> {
        let mut o = Obj::new(json, "", OPT_ERR)?;
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

/// What one decision chose. Its pmf and scores stay in the engine until the
/// next decision ([`Engine::last_pmf`], [`Engine::last_scores`]), so the hot
/// path allocates no result vectors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// Position of the chosen variant.
    pub index: usize,
    /// The probability that the policy chose it.
    pub probability: f64,
    /// The decision's seed: `rank({seed})` with the same state replays it.
    pub seed: u64,
    /// The engine's epoch, the first half of the decision id.
    pub epoch: u64,
    /// The engine's decision counter, the second half of the decision id.
    pub counter: u64,
}

impl Choice {
    /// The decision id: `<epoch, 12 hex digits>-<counter, decimal>`.
    pub fn decision_id(&self) -> String {
        decision_id(self.epoch, self.counter)
    }
}

/// Bits of the engine epoch that prefixes decision ids.
pub(super) const EPOCH_BITS: u32 = 48;

/// The decision id of `counter` in an engine with `epoch`.
fn decision_id(epoch: u64, counter: u64) -> String {
    format!("{epoch:012x}-{counter}")
}

/// Split a decision id into its epoch and counter. Only the canonical form
/// is accepted (12 lowercase hex digits, a dash, a decimal counter without
/// leading zeros), so one decision has exactly one id.
pub fn parse_decision_id(id: &str) -> Option<(u64, u64)> {
    let (epoch, counter) = id.split_once('-')?;
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    let epoch_ok = epoch.len() == (EPOCH_BITS / 4) as usize && epoch.bytes().all(hex);
    let counter_ok = !counter.is_empty()
        && counter.len() <= 16
        && (counter == "0" || !counter.starts_with('0'))
        && counter.bytes().all(|b| b.is_ascii_digit());
    if !(epoch_ok && counter_ok) {
        return None;
    }
    Some((u64::from_str_radix(epoch, 16).ok()?, counter.parse().ok()?))
}

#[derive(Debug, Clone)]
struct Pending {
    /// The epoch of the engine that made the decision: this engine's for its
    /// own queue, another page view's or tab's for restored entries.
    epoch: u64,
    /// The decision's sequence number; the own queue holds consecutive
    /// numbers because entries are only added at the back and removed at the
    /// front.
    counter: u64,
    arm: usize,
    x: SparseVec,
    expires_at: f64,
    activated: bool,
    rewarded: bool,
    /// Written to (or read from) the shared snapshot, so other tabs may know
    /// it: if it is missing from a later snapshot, it was settled elsewhere.
    shared: bool,
}

impl Pending {
    /// Still settleable at `now_ms`.
    fn live(&self, now_ms: f64) -> bool {
        !self.rewarded && now_ms <= self.expires_at
    }
}

/// Buffers reused from one decision to the next.
#[derive(Debug, Clone, Default)]
struct Scratch {
    /// Shared plus one variant's hashed features.
    feats: Vec<Hashed>,
    /// Folding scratch.
    dense: Dense,
    /// Folded feature vectors: one shared by every variant, or one each.
    xs: Vec<SparseVec>,
    scores: Vec<f64>,
    variances: Vec<f64>,
    pmf: Vec<f64>,
}

/// The decision-id epoch made of `entropy`: independent of the seed stream,
/// a different mix of the same entropy.
fn epoch_of(entropy: u64) -> u64 {
    Rng::new(entropy ^ 0x6570_6f63_6821).next_u64() >> (64 - EPOCH_BITS)
}

/// The engine: one decision point (a page slot) with its variants.
#[derive(Debug, Clone)]
pub struct Engine {
    cfg: EngineConfig,
    arms: Vec<Posterior>,
    rng: Rng,
    pending: VecDeque<Pending>,
    /// Pending decisions of other page views or tabs, restored from the
    /// snapshot so their delayed rewards still count here.
    foreign: Vec<Pending>,
    counter: u64,
    scratch: Scratch,
    /// Persistence state (see `persist`).
    sync: persist::SyncState,
}

impl Engine {
    /// A new engine at the prior.
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine {
            arms: cfg.model.posteriors(),
            rng: Rng::new(cfg.seed),
            pending: VecDeque::new(),
            foreign: Vec::new(),
            counter: 0,
            scratch: Scratch::default(),
            sync: persist::SyncState::default(),
            cfg,
        }
    }

    /// Forget everything learned and every pending decision: back to the
    /// prior, as if new, with a new decision-id epoch made of `entropy` so no
    /// earlier id settles a later decision (the page's `forget()`).
    pub fn reset(&mut self, entropy: u64) {
        let mut cfg = self.cfg.clone();
        cfg.epoch = epoch_of(entropy);
        *self = Engine::new(cfg);
    }

    /// The model version (content hash of the prior).
    pub fn model_version(&self) -> &str {
        self.cfg.model.version()
    }

    /// Variant ids in order.
    pub fn variant_ids(&self) -> Vec<String> {
        self.cfg.model.variant_ids().map(str::to_owned).collect()
    }

    /// Allowlisted namespaces, sorted (feature namespace indices refer to
    /// this order), and their hash seeds.
    pub fn namespaces(&self) -> (&[String], &[u32]) {
        let f = &self.cfg.model.features;
        (&f.allow, f.ns_seeds())
    }

    /// Number of variants.
    pub fn variant_count(&self) -> usize {
        self.arms.len()
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
        (self.pending.iter().chain(&self.foreign))
            .filter(|p| !p.rewarded)
            .count()
    }

    /// Validate and hash a JSON context and optional per-call action features.
    fn hash_json(
        &self,
        context: Option<&Json>,
        actions: Option<&[Json]>,
    ) -> Result<(Vec<Hashed>, PerAction)> {
        let fc = &self.cfg.model.features;
        self.check_actions(actions)?;
        let mut shared = Vec::new();
        fc.hash_context(context.unwrap_or(&Json::Null), Origin::Context, &mut shared)?;
        let per_action = match actions {
            None => None,
            Some(a) => Some(
                a.iter()
                    .enumerate()
                    .map(|(i, j)| {
                        let mut out = Vec::new();
                        fc.hash_context(j, Origin::Action(Some(i)), &mut out)?;
                        Ok(out)
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        Ok((shared, per_action))
    }

    /// Refuse per-call `actions` that do not list one entry per variant.
    fn check_actions<T>(&self, actions: Option<&[T]>) -> Result<()> {
        let k = self.arms.len();
        match actions {
            Some(a) if a.len() != k => Err(Error::context(
                "actions",
                format!("should list {k} variants, but lists {}", a.len()),
            )),
            _ => Ok(()),
        }
    }

    /// The position of variant `id`, or `UNKNOWN_VARIANT`.
    fn arm_of(&self, id: &str) -> Result<usize> {
        self.cfg
            .model
            .variant_ids()
            .position(|v| v == id)
            .ok_or_else(|| Error::UnknownVariant {
                variant: id.to_owned(),
            })
    }

    /// Fold shared features plus each variant's own (from `actions`, else
    /// the model's) into `xs`. When no variant has features of its own, every
    /// variant sees the same vector and `xs` holds only that one (see
    /// [`for_arm`]), rather than K copies.
    fn fold_arms(
        &mut self,
        shared: &[Hashed],
        actions: Option<&[Vec<Hashed>]>,
        xs: &mut Vec<SparseVec>,
    ) -> Result<()> {
        let k = self.arms.len();
        let own = |i: usize| match actions {
            Some(a) => &a[i],
            None => &self.cfg.model.variants[i].hashed,
        };
        let fc = &self.cfg.model.features;
        let s = &mut self.scratch;
        let n = if (0..k).all(|i| own(i).is_empty()) {
            1
        } else {
            k
        };
        xs.resize_with(n, SparseVec::default);
        if n == 1 {
            return fc.fold_into(shared, &mut s.dense, &mut xs[0]);
        }
        for (i, x) in xs.iter_mut().enumerate() {
            s.feats.clear();
            s.feats.extend_from_slice(shared);
            let a = own(i);
            check_count(s.feats.len() + a.len())?;
            s.feats.extend_from_slice(a);
            fc.fold_into(&s.feats, &mut s.dense, x)?;
        }
        Ok(())
    }

    /// Drop what can no longer be settled, and make room for one more.
    /// Returns the feature vector of the last entry dropped (or an empty
    /// one), so the next pending decision reuses its buffers.
    fn prune(&mut self, now: f64) -> SparseVec {
        // Keep settled and expired entries for one more TTL, so a late or
        // repeated reward is told apart from an unknown id.
        let ttl = self.cfg.reward_ttl_ms;
        let mut spare = SparseVec::default();
        while let Some(p) = self.pending.front() {
            if p.expires_at + ttl < now || self.pending.len() >= self.cfg.max_pending {
                if let Some(p) = self.pending.pop_front() {
                    spare = p.x;
                }
            } else {
                break;
            }
        }
        spare
    }

    /// Choose a variant. On error nothing changes (not even the seed stream).
    pub fn rank(&mut self, opts: &RankOptions<'_>, now_ms: f64) -> Result<Decision> {
        let c = self.rank_choice(opts, now_ms)?;
        Ok(self.decision(c))
    }

    /// [`rank`](Self::rank) without building the [`Decision`]: the pmf and
    /// scores stay in the engine ([`last_pmf`](Self::last_pmf)).
    pub fn rank_choice(&mut self, opts: &RankOptions<'_>, now_ms: f64) -> Result<Choice> {
        check_now(now_ms)?;
        let (shared, actions) = self.hash_json(opts.context.as_ref(), opts.actions.as_deref())?;
        self.choose(&shared, actions.as_deref(), opts.seed, opts.defer, now_ms)
    }

    /// The full decision for the latest choice `c`.
    pub fn decision(&self, c: Choice) -> Decision {
        Decision {
            variant: self.cfg.model.variants[c.index].id.clone(),
            index: c.index,
            probability: c.probability,
            pmf: self.scratch.pmf.clone(),
            scores: self.scratch.scores.clone(),
            decision_id: Some(c.decision_id()),
            seed: Some(c.seed),
            model_version: self.model_version().to_owned(),
            policy: self.cfg.policy.name(),
            fallback: false,
        }
    }

    /// [`rank`](Self::rank) for a context already hashed (by the JS boundary,
    /// which caches feature hashes): `feats` holds namespace indices into the
    /// sorted allowlist. On error nothing changes.
    pub fn rank_hashed(
        &mut self,
        feats: &[Hashed],
        seed: Option<u64>,
        defer: bool,
        now_ms: f64,
    ) -> Result<Choice> {
        check_now(now_ms)?;
        check_count(feats.len())?;
        let namespaces = self.cfg.model.features.allow.len();
        if feats.iter().any(|f| f.ns() >= namespaces) {
            return Err(Error::context(
                "context",
                "names a namespace outside the allowlist",
            ));
        }
        if feats.iter().any(|f| !f.value().is_finite()) {
            return Err(Error::NonFiniteFeature {
                field: "context".into(),
            });
        }
        if seed.is_some_and(|s| s > MAX_SEED) {
            return Err(Error::option(
                "seed",
                "should be an integer in [0, 2^53 - 1]",
            ));
        }
        self.choose(feats, None, seed, defer, now_ms)
    }

    /// The pmf of the latest decision, in variant order.
    pub fn last_pmf(&self) -> &[f64] {
        &self.scratch.pmf
    }

    /// The posterior mean scores of the latest decision, in variant order.
    pub fn last_scores(&self) -> &[f64] {
        &self.scratch.scores
    }

    fn choose(
        &mut self,
        shared: &[Hashed],
        actions: Option<&[Vec<Hashed>]>,
        seed: Option<u64>,
        defer: bool,
        now_ms: f64,
    ) -> Result<Choice> {
        self.with_folded(shared, actions, |e, xs| e.sample(xs, seed, defer, now_ms))
    }

    /// Fold the features into the scratch vectors (see [`fold_arms`]) and run
    /// `then` on them; the scratch buffers are kept for the next call.
    fn with_folded<T>(
        &mut self,
        shared: &[Hashed],
        actions: Option<&[Vec<Hashed>]>,
        then: impl FnOnce(&mut Engine, &[SparseVec]) -> Result<T>,
    ) -> Result<T> {
        let mut xs = std::mem::take(&mut self.scratch.xs);
        let result = self
            .fold_arms(shared, actions, &mut xs)
            .and_then(|()| then(self, &xs));
        self.scratch.xs = xs;
        result
    }

    /// Score, explore and sample. Fails, before anything changes, only when
    /// the scores are not finite (feature values so large they overflow).
    fn sample(
        &mut self,
        xs: &[SparseVec],
        seed: Option<u64>,
        defer: bool,
        now_ms: f64,
    ) -> Result<Choice> {
        let policy = &self.cfg.policy;
        let s = &mut self.scratch;
        s.scores.clear();
        s.scores
            .extend((self.arms.iter().enumerate()).map(|(i, p)| p.mean_score(for_arm(xs, i))));
        s.variances.clear();
        if policy.needs_variance() {
            s.variances.extend(
                (self.arms.iter().enumerate()).map(|(i, p)| p.score_variance(for_arm(xs, i))),
            );
        } else {
            s.variances.resize(self.arms.len(), 0.0);
        }
        if !s.scores.iter().chain(&s.variances).all(|v| v.is_finite()) {
            return Err(overflow());
        }
        let seed = seed.unwrap_or_else(|| self.rng.next_seed());
        let mut rng = Rng::new(seed);
        policy.pmf_into(&s.scores, &s.variances, &mut rng, &mut s.pmf);
        let (index, probability) = crate::bandit::explore::sample(&s.pmf, rng.next_f64());
        self.counter += 1;
        let mut x = self.prune(now_ms);
        x.copy_from(for_arm(xs, index));
        self.pending.push_back(Pending {
            epoch: self.cfg.epoch,
            counter: self.counter,
            arm: index,
            x,
            expires_at: now_ms + self.cfg.reward_ttl_ms,
            activated: !defer,
            rewarded: false,
            shared: false,
        });
        Ok(Choice {
            index,
            probability,
            seed,
            epoch: self.cfg.epoch,
            counter: self.counter,
        })
    }

    /// Mark a deferred decision as shown, so its reward will count.
    pub fn activate(&mut self, id: &str, now_ms: f64) -> Result<()> {
        let (epoch, counter) = parse_decision_id(id).ok_or_else(|| unknown(id))?;
        self.activate_id(epoch, counter, now_ms)
    }

    /// [`activate`](Self::activate) by the id's parts.
    pub fn activate_id(&mut self, epoch: u64, counter: u64, now_ms: f64) -> Result<()> {
        check_now(now_ms)?;
        let own = self.cfg.epoch;
        find(
            &mut self.pending,
            &mut self.foreign,
            own,
            epoch,
            counter,
            now_ms,
        )?
        .activated = true;
        Ok(())
    }

    /// Settle a decision with a reward in [0, 1]. On error nothing changes.
    pub fn reward(&mut self, id: &str, reward: f64, now_ms: f64) -> Result<()> {
        match parse_decision_id(id) {
            Some((epoch, counter)) => self.reward_id(epoch, counter, reward, now_ms),
            // The same order of checks as for a well-formed id.
            None => {
                check_now(now_ms)?;
                check_reward(reward)?;
                Err(unknown(id))
            }
        }
    }

    /// [`reward`](Self::reward) by the id's parts.
    pub fn reward_id(&mut self, epoch: u64, counter: u64, reward: f64, now_ms: f64) -> Result<()> {
        check_now(now_ms)?;
        check_reward(reward)?;
        let noise = self.cfg.model.noise;
        let own = self.cfg.epoch;
        let p = find(
            &mut self.pending,
            &mut self.foreign,
            own,
            epoch,
            counter,
            now_ms,
        )?;
        if !p.activated {
            return Err(Error::NotActivated {
                id: decision_id(epoch, counter),
            });
        }
        self.arms[p.arm].update(&p.x, reward, noise, 1.0)?;
        p.rewarded = true;
        let key = persist::id_key(epoch, counter);
        self.sync.journal(p.arm, &p.x, reward, Some(key));
        // Other tabs holding it learn from the tombstone that it is settled.
        self.sync.settle(key, p.expires_at, p.shared);
        Ok(())
    }

    /// This engine's epoch, the first part of its decision ids.
    pub fn epoch(&self) -> u64 {
        self.cfg.epoch
    }

    /// The prefix of every decision id of this engine (`<epoch>-`).
    pub fn decision_prefix(&self) -> String {
        format!("{:012x}-", self.cfg.epoch)
    }

    /// Learn from a logged observation (the variant may be one this engine did
    /// not choose). On error nothing changes.
    pub fn learn(&mut self, opts: &LearnOptions<'_>) -> Result<()> {
        check_reward(opts.reward)?;
        let arm = self.arm_of(&opts.variant)?;
        let (shared, actions) = self.hash_json(opts.context.as_ref(), opts.actions.as_deref())?;
        let (noise, reward) = (self.cfg.model.noise, opts.reward);
        self.with_folded(&shared, actions.as_deref(), |e, xs| {
            let x = for_arm(xs, arm);
            e.arms[arm].update(x, reward, noise, 1.0)?;
            e.sync.journal(arm, x, reward, None);
            Ok(())
        })
    }
}

/// Scores that are not finite: feature values so large they overflow.
fn overflow() -> Error {
    Error::NumericalError {
        reason: "the variants' scores overflow; feature values are too large".into(),
    }
}

fn unknown(id: &str) -> Error {
    Error::UnknownDecision { id: id.to_owned() }
}

/// The feature vector of variant `i` from [`Engine::fold_arms`]'s result.
fn for_arm(xs: &[SparseVec], i: usize) -> &SparseVec {
    if xs.len() == 1 {
        &xs[0]
    } else {
        &xs[i]
    }
}

/// The pending decision `epoch-counter` of an engine with `own_epoch`, if it
/// can still be settled: in the own queue, or among those restored from other
/// page views. A free function over the queues so callers can update the
/// learners while holding it.
fn find<'a>(
    pending: &'a mut VecDeque<Pending>,
    foreign: &'a mut [Pending],
    own_epoch: u64,
    epoch: u64,
    counter: u64,
    now_ms: f64,
) -> Result<&'a mut Pending> {
    let id = || decision_id(epoch, counter);
    let p = if epoch == own_epoch {
        // The deque holds consecutive counters, which gives the slot in O(1).
        let first = pending.front().map_or(0, |p| p.counter);
        counter
            .checked_sub(first)
            .and_then(|slot| usize::try_from(slot).ok())
            .and_then(|i| pending.get_mut(i))
    } else {
        // At most `maxPending` entries.
        foreign
            .iter_mut()
            .find(|p| p.epoch == epoch && p.counter == counter)
    }
    .ok_or_else(|| Error::UnknownDecision { id: id() })?;
    if p.rewarded {
        return Err(Error::DuplicateReward { id: id() });
    }
    if now_ms > p.expires_at {
        return Err(Error::DecisionExpired { id: id() });
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

pub(crate) fn check_now(now: f64) -> Result<()> {
    if now.is_finite() {
        Ok(())
    } else {
        Err(Error::option(
            "now",
            format!("should be a finite time in ms, but is {}", Num(now)),
        ))
    }
}
