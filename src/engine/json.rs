//! Reading engine options and calls from JSON (feature `json`: tests,
//! benchmarks and tools such as the criterion benches), and the string
//! forms of decision ids. The .wasm receives options checked by the
//! TypeScript side (`src/ts/validate/`) and features already hashed.

use crate::prelude::*;

use super::{
    epoch_of, Choice, Decision, Engine, EngineConfig, DEFAULT_MAX_PENDING, DEFAULT_REWARD_TTL_MS,
    EPOCH_BITS, MAX_PENDING_LIMIT,
};
use crate::bandit::PolicyOptions;
use crate::error::{Error, Result};
use crate::features::{FeatureOptions, Hashed, Origin};
use crate::json::{Json, Obj};
use crate::model::{self, CompactModel};
use crate::prim::clock::check_now;
use crate::prim::rng::MAX_SEED;

use super::check_reward;
pub use super::explain::ExplainOptions;

fn unknown(id: &str) -> Error {
    Error::UnknownDecision { id: id.to_owned() }
}

pub(super) const OPT_ERR: crate::json::ErrKind = Error::option_owned;

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
        let catalogue = match o.get("catalogue") {
            None | Some(Json::Bool(false)) => None,
            Some(Json::Bool(true)) => Some(model::DEFAULT_CATALOGUE_BITS),
            Some(c) => {
                let mut co = Obj::new(c, "catalogue", OPT_ERR)?;
                let bits = co.int(
                    "bits",
                    u64::from(model::CATALOGUE_BITS.0),
                    u64::from(model::CATALOGUE_BITS.1),
                )?;
                co.finish()?;
                Some(bits.map_or(model::DEFAULT_CATALOGUE_BITS, |b| b as u8))
            }
        };
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
            (Some(_), _) if catalogue.is_some() => return Err(Error::option(
                "catalogue",
                "cannot be used with a model: a catalogue learns from the prior of `priorVariance`",
            )),
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
                .check_with(
                    "features.",
                    crate::features::slot_defaults(ids.len(), catalogue.is_some()),
                )?;
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
                CompactModel::uninformed(fc, variants, noise, var, catalogue)?
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
    /// Variants in the slate (1 for one decision; see [`Engine::rank_slate`]).
    pub(crate) k: usize,
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
pub(super) fn take_features<'a>(json: &mut Json<'a>) -> (Option<Json<'a>>, Option<Vec<Json<'a>>>) {
    let context = json.take("context");
    let actions = match json.take("actions") {
        Some(Json::Arr(a)) => Some(a),
        _ => None,
    };
    (context, actions)
}

/// The options object with `context` and `actions` type-checked, for
/// [`take_features`] to move them out once the other fields are read.
pub(super) fn feature_options<'j>(json: &'j Json<'j>) -> Result<Obj<'j>> {
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
            k: self.k,
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
        let k = o.int("k", 1, super::MAX_SLATE as u64)?.unwrap_or(1) as usize;
        o.finish()?;
        let (context, actions) = take_features(&mut json);
        Ok(RankOptions {
            k,
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
    pub(crate) probability: Option<f64>,
}

impl<'a> LearnOptions<'a> {
    /// Parse `{ context?, actions?, variant, reward, probability? }`
    /// (`probability`: what the log served `variant` with, for `evaluate`).
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
        let probability = o.num("probability")?;
        o.finish()?;
        let (context, actions) = take_features(&mut json);
        Ok(LearnOptions {
            context,
            actions,
            variant,
            reward,
            probability,
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

impl Choice {
    /// The decision id: `<epoch, 12 hex digits>-<counter, decimal>`.
    pub fn decision_id(&self) -> String {
        decision_id(self.epoch, self.counter)
    }
}

/// The decision id of `counter` in an engine with `epoch`.
pub(super) fn decision_id(epoch: u64, counter: u64) -> String {
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

impl Engine {
    /// Variant ids in order.
    pub fn variant_ids(&self) -> Vec<String> {
        self.s.cfg.model.variant_ids().map(str::to_owned).collect()
    }

    /// Allowlisted namespaces, sorted (feature namespace indices refer to
    /// this order), and their hash seeds.
    pub fn namespaces(&self) -> (&[String], &[u32]) {
        let f = &self.s.cfg.model.features;
        (&f.allow, f.ns_seeds())
    }

    /// The decision served when anything fails: the fallback variant with
    /// probability 1 and no decision id (the boundary attaches the error).
    pub fn fallback_decision(&self) -> Decision {
        let index = self.s.cfg.fallback;
        Decision {
            variant: self.s.cfg.model.variants[index].id.clone(),
            index,
            probability: 1.0,
            pmf: (0..self.s.variant_count())
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

    /// Validate and hash a JSON context and optional per-call action features.
    fn hash_json(
        &self,
        context: Option<&Json>,
        actions: Option<&[Json]>,
    ) -> Result<(Vec<Hashed>, PerAction)> {
        let fc = &self.s.cfg.model.features;
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
    pub(super) fn check_actions<T>(&self, actions: Option<&[T]>) -> Result<()> {
        let k = self.s.variant_count();
        match actions {
            Some(_) if self.s.cfg.model.catalogue.is_some() => Err(Error::context(
                "actions",
                "cannot be given to a catalogue: its variants' features are the slot's",
            )),
            Some(a) if a.len() != k => Err(Error::context(
                "actions",
                format!("should list {k} variants, but lists {}", a.len()),
            )),
            _ => Ok(()),
        }
    }

    /// The position of variant `id`, or `UNKNOWN_VARIANT`.
    pub(super) fn arm_of(&self, id: &str) -> Result<usize> {
        self.s
            .cfg
            .model
            .variant_ids()
            .position(|v| v == id)
            .ok_or_else(|| Error::UnknownVariant {
                variant: id.to_owned(),
            })
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
        self.rank_slate(
            &shared,
            actions.as_deref(),
            opts.seed,
            opts.defer,
            now_ms,
            None,
            opts.k.max(1),
        )
    }

    /// The full decision for the latest choice `c`.
    pub fn decision(&self, c: Choice) -> Decision {
        Decision {
            variant: self.s.cfg.model.variants[c.index].id.clone(),
            index: c.index,
            probability: c.probability,
            pmf: self.s.scratch.pmf.clone(),
            scores: self.s.scratch.scores.clone(),
            decision_id: Some(c.decision_id()),
            seed: Some(c.seed),
            model_version: self.model_version().to_owned(),
            policy: self.s.cfg.policy.name(),
            fallback: false,
        }
    }

    /// Mark a deferred decision as shown, so its reward will count.
    pub fn activate(&mut self, id: &str, now_ms: f64) -> Result<()> {
        let (epoch, counter) = parse_decision_id(id).ok_or_else(|| unknown(id))?;
        self.activate_id(epoch, counter, now_ms)
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

    /// The prefix of every decision id of this engine (`<epoch>-`).
    pub fn decision_prefix(&self) -> String {
        format!("{:012x}-", self.s.cfg.epoch)
    }

    /// Learn from a logged observation (the variant may be one this engine did
    /// not choose). On error nothing changes.
    pub fn learn(&mut self, opts: &LearnOptions<'_>) -> Result<()> {
        check_reward(opts.reward)?;
        let arm = self.arm_of(&opts.variant)?;
        let (shared, actions) = self.hash_json(opts.context.as_ref(), opts.actions.as_deref())?;
        self.learn_hashed(
            arm,
            &shared,
            actions.as_deref(),
            opts.reward,
            opts.probability,
        )
    }
}
