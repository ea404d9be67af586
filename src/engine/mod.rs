//! The decision engine: features → scorer → exploration → seeded sample →
//! [`Decision`]; then reward → update.
//!
//! Semantics follow Azure Personalizer's rank / reward / activate: `rank`
//! returns a decision id, `reward` settles it once, and a decision ranked with
//! `defer` must be `activate`d (the variant was really shown) before it may be
//! rewarded.

use crate::prelude::*;

use crate::bandit::Policy;
use crate::error::{Error, Result};
use crate::eval::{Logged, Sums};
use crate::features::{check_count, outer_into, Dense, FeatureConfig, Hashed, SparseVec};
use crate::model::posterior::{Covariance, FULL_COV_MAX_DIM};
use crate::model::{Catalogue, CompactModel, Posterior};
use crate::prim::clock::check_now;
use crate::prim::rng::{Rng, MAX_SEED};
use crate::report::Tally;

mod explain;
#[cfg(feature = "json")]
mod json;
mod persist;
mod prior;
pub use explain::{Contribution, Explanation, Labelled, Term};
#[cfg(feature = "json")]
#[cfg(feature = "json")]
pub use explain::{NamedContribution, NamedExplanation};
#[cfg(feature = "json")]
pub use json::{parse_decision_id, ExplainOptions, LearnOptions, RankOptions, SettleOptions};
pub use persist::SyncReport;
pub use prior::Prior;

/// Default time a decision may wait for its reward: 24 hours.
pub(crate) const DEFAULT_REWARD_TTL_MS: f64 = crate::prim::clock::DAY_MS;
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

impl EngineConfig {
    /// A configuration from its parts, as the boundary's reader checked
    /// them: the model and policy, the fallback's index (one of the
    /// variants), the seed of the decision-seed stream (below 2^53), the
    /// decision-id epoch (below 2^48, fresh entropy from the caller, so no
    /// two instances or page views accept each other's ids), the reward
    /// window in ms (positive, finite) and `maxPending` (1 to 10,000).
    pub(crate) fn new(
        model: CompactModel,
        policy: Policy,
        fallback: usize,
        seed: u64,
        epoch: u64,
        reward_ttl_ms: f64,
        max_pending: usize,
    ) -> EngineConfig {
        EngineConfig {
            model,
            policy,
            fallback,
            seed,
            reward_ttl_ms,
            max_pending,
            epoch,
        }
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

/// Most variants one `rank({ k })` slate may hold.
pub(crate) const MAX_SLATE: usize = 64;

/// Bits of the engine epoch that prefixes decision ids.
pub(crate) const EPOCH_BITS: u32 = 48;

/// The decision id `epoch-counter`, for a message (a builds without `std`
/// keep the pattern; the TypeScript side words its own message).
fn id_text(epoch: u64, counter: u64) -> crate::error::Text {
    text!("{epoch:012x}-{counter}")
}

#[derive(Debug, Clone)]
struct Pending {
    /// The epoch of the engine that made the decision: this engine's for its
    /// own queue, another page view's or tab's for restored entries.
    epoch: u64,
    /// The decision's sequence number; the own queue is ordered by it.
    counter: u64,
    arm: usize,
    /// What a reward updates with (see [`Scratch::keep_into`]).
    x: SparseVec,
    expires_at: f64,
    activated: bool,
    rewarded: bool,
    /// Written to (or read from) the shared snapshot, so other tabs may know
    /// it: if it is missing from a later snapshot, it was settled elsewhere.
    shared: bool,
    /// What its evaluation needs (none for a decision of a build that did
    /// not log it).
    log: Option<Logged>,
}

impl Pending {
    /// Still settleable at `now_ms`.
    fn live(&self, now_ms: f64) -> bool {
        !self.rewarded && now_ms <= self.expires_at
    }
}

/// Buffers reused from one decision to the next (not state: what a failed
/// call leaves in them means nothing, so `Debug` shows none of it).
#[derive(Clone, Default)]
struct Scratch {
    /// Shared plus one variant's hashed features.
    feats: Vec<Hashed>,
    /// Folding scratch.
    dense: Dense,
    /// Folded feature vectors: one shared by every variant, or one each.
    xs: Vec<SparseVec>,
    /// A catalogue's folded context, before its outer products.
    ctx: SparseVec,
    /// A catalogue's outer product of one variant (see [`Scratch::catalogue_moments`]).
    outer: SparseVec,
    /// A catalogue's weights summed over the context, per variant-feature
    /// slot: the means (`z`) and the variances (`u`).
    z: Vec<f64>,
    u: Vec<f64>,
    scores: Vec<f64>,
    variances: Vec<f64>,
    pmf: Vec<f64>,
    /// The latest decision's draws after its pmf, for the rest of a slate.
    draw: Option<Rng>,
    /// The latest slate: each position's variant and conditional probability.
    slate: Vec<(usize, f64)>,
    /// Which variants the slate holds.
    taken: Vec<bool>,
}

impl core::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Scratch")
    }
}

/// The decision-id epoch made of `entropy`: independent of the seed stream,
/// a different mix of the same entropy.
pub(crate) fn epoch_of(entropy: u64) -> u64 {
    Rng::new(entropy ^ 0x6570_6f63_6821).next_u64() >> (64 - EPOCH_BITS)
}

/// The scorer of one slot: its configuration, each variant's posterior,
/// the seed stream and the decision counter. It scores, explores and
/// samples; it keeps no pending decisions and nothing for storage, which
/// is all the first decision of a page needs (the first-decision module
/// holds scorers; the [`Engine`] wraps one).
#[derive(Debug, Clone)]
pub struct Scorer {
    cfg: EngineConfig,
    arms: Vec<Posterior>,
    rng: Rng,
    counter: u64,
    scratch: Scratch,
    /// A catalogue's outer product, made at an update (see [`learn`]).
    outer: SparseVec,
    /// What `learn_hashed` keeps (see [`Scratch::keep_into`]).
    kept: SparseVec,
}

/// The engine: one decision point (a page slot) with its variants: a
/// [`Scorer`], the decisions waiting for their rewards, and what its next
/// sync with storage needs.
#[derive(Debug, Clone)]
pub struct Engine {
    s: Scorer,
    /// Own decisions, oldest (lowest counter) first.
    pending: Vec<Pending>,
    /// Pending decisions of other page views or tabs, restored from the
    /// snapshot so their delayed rewards still count here.
    foreign: Vec<Pending>,
    /// Persistence state (see `persist`).
    sync: persist::SyncState,
    /// The report statistics of the current period, when reports are on.
    report: Option<Tally>,
    /// The offline evaluation's sums (see [`crate::eval`]).
    eval: Sums,
}

impl Scorer {
    /// A new scorer at the prior.
    pub fn new(cfg: EngineConfig) -> Scorer {
        Scorer {
            arms: cfg.model.posteriors(),
            rng: Rng::new(cfg.seed),
            counter: 0,
            scratch: Scratch::default(),
            outer: SparseVec::default(),
            kept: SparseVec::default(),
            cfg,
        }
    }

    /// Number of variants.
    pub fn variant_count(&self) -> usize {
        self.cfg.model.variants.len()
    }

    /// Take the learning of a stored slot section `body` (this model's
    /// entry: each variant's posterior; pending decisions and tombstones
    /// are the engine's business and are skipped). No entry for this model:
    /// nothing changes. Errors: `SNAPSHOT_*` codes; nothing changes then.
    pub fn restore_section(&mut self, body: &[u8]) -> Result<()> {
        if let Some(arms) = persist::read_arms(&self.cfg, body)? {
            self.arms = arms;
        }
        Ok(())
    }

    /// Choose a variant for hashed features (see [`Engine::rank_hashed`]),
    /// without recording a pending decision. On error nothing changes.
    pub fn decide(
        &mut self,
        shared: &[Hashed],
        actions: Option<&[Vec<Hashed>]>,
        seed: Option<u64>,
        now_ms: f64,
    ) -> Result<Choice> {
        check_now(now_ms)?;
        check_seed(seed)?;
        self.fold(shared, actions)?;
        let c = self.sample(seed)?;
        self.counter += 1;
        Ok(c)
    }

    /// The pmf of the latest decision, in variant order.
    pub fn last_pmf(&self) -> &[f64] {
        &self.scratch.pmf
    }

    /// The latest decision's slate: each position's variant and the
    /// probability it was drawn with given the positions before it (the
    /// first is the decision's own). One position after a plain decision.
    pub fn last_slate(&self) -> &[(usize, f64)] {
        &self.scratch.slate
    }

    /// The posterior mean scores of the latest decision, in variant order.
    pub fn last_scores(&self) -> &[f64] {
        &self.scratch.scores
    }

    /// Updates learned per learner: per variant, in variant order, or the
    /// one shared learner of a catalogue.
    pub fn updates(&self) -> Vec<u64> {
        self.arms.iter().map(|p| p.n).collect()
    }

    /// Decisions made so far: the counter of the latest decision id.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Every variant's posterior mean score and its standard deviation for
    /// these features, as `rank` computes them, without choosing (for
    /// explanations). Nothing changes but the scratch buffers, which hold
    /// both until the next call.
    pub fn score(
        &mut self,
        shared: &[Hashed],
        actions: Option<&[Vec<Hashed>]>,
    ) -> Result<(&[f64], &[f64])> {
        self.fold(shared, actions)?;
        self.moments(true)?;
        let s = &mut self.scratch;
        for v in &mut s.variances {
            *v = crate::prim::math::sqrt(*v);
        }
        Ok((&s.scores, &s.variances))
    }

    /// Variant `arm`'s posterior mean weight of every slot, and how many
    /// rewards it learned from.
    pub fn arm_mean(&self, arm: usize) -> Option<(&[f64], u64)> {
        self.arms.get(arm).map(|a| (&a.mean[..], a.n))
    }

    /// Fold the call's features into the scratch vectors (see [`Scratch::fold`]).
    fn fold(&mut self, shared: &[Hashed], actions: Option<&[Vec<Hashed>]>) -> Result<()> {
        self.scratch.fold(&self.cfg.model, shared, actions)
    }

    /// Every variant's posterior mean score (and, when `variance`, the
    /// variance of its score) for the folded vectors, into the scratch.
    /// Fails when they are not finite (feature values so large they overflow).
    fn moments(&mut self, variance: bool) -> Result<()> {
        let s = &mut self.scratch;
        let m = &self.cfg.model;
        s.scores.clear();
        s.variances.clear();
        if let (Some(c), Some(p)) = (&m.catalogue, self.arms.first()) {
            let diag = match &p.cov {
                Covariance::Full(_) => None,
                Covariance::Diag(v) => Some(&v[..]),
            };
            return s.catalogue_moments(c, &p.mean, diag, variance, |x| p.score_variance(x));
        }
        for (i, p) in self.arms.iter().enumerate() {
            let x = for_arm(&s.xs, i);
            let v = if variance { p.score_variance(x) } else { 0.0 };
            s.moment(p.mean_score(x), v)?;
        }
        Ok(())
    }

    /// Score, explore and sample the folded vectors: the variant, its
    /// probability and the seed of the draw (drawn from the stream unless
    /// given). Fails, before anything changes, only when the scores are not
    /// finite. The pmf and scores stay in the scratch.
    fn sample(&mut self, seed: Option<u64>) -> Result<Choice> {
        self.moments(self.cfg.policy.needs_variance())?;
        Ok(self
            .scratch
            .choose(&self.cfg, &mut self.rng, seed, self.counter))
    }
}

impl Scratch {
    /// Fold shared features plus each variant's own (from `actions`, else
    /// the model's) into the folded vectors, refusing features the
    /// TypeScript side could not have sent: a namespace outside the
    /// allowlist, a value that is not finite, too many of them, or per-call
    /// actions that do not list every variant. When no variant has features
    /// of its own, every variant sees the same vector and `xs` holds only
    /// that one (see [`for_arm`]).
    fn fold(
        &mut self,
        model: &CompactModel,
        shared: &[Hashed],
        actions: Option<&[Vec<Hashed>]>,
    ) -> Result<()> {
        let variants = &model.variants;
        let k = variants.len();
        let own = |i: usize| match actions {
            Some(a) => a.get(i).map_or(&[][..], |v| &v[..]),
            None => variants.get(i).map_or(&[][..], |v| &v.hashed[..]),
        };

        let fc = &model.features;
        if model.catalogue.is_some() {
            if actions.is_some() {
                return Err(Error::context(
                    "actions",
                    text!("cannot be given to a catalogue: its variants' features are the slot's"),
                ));
            }
            check_feats(fc, shared)?;
            fc.fold_into(shared, &mut self.dense, &mut self.ctx)?;
            // Scored without the products (see `catalogue_moments`).
            self.xs.clear();
            return Ok(());
        }
        if actions.is_some_and(|a| a.len() != k) {
            return Err(Error::context("actions", text!("should list {k} variants")));
        }
        let n = if (0..k).all(|i| own(i).is_empty()) {
            1
        } else {
            k
        };
        self.xs.resize_with(n, SparseVec::default);
        for (i, x) in self.xs.iter_mut().enumerate() {
            self.feats.clear();
            self.feats.extend_from_slice(shared);
            self.feats.extend_from_slice(own(i));
            check_feats(fc, &self.feats)?;
            fc.fold_into(&self.feats, &mut self.dense, x)?;
        }
        Ok(())
    }
}

/// Update variant `arm`'s learner with `reward` for `x`, a decision's kept
/// vector (see [`Scratch::keep_into`]): a catalogue's one learner takes the
/// outer product of the context and the variant's features that `x` holds,
/// made in `outer`. On error nothing changes.
pub(crate) fn learn(
    arms: &mut [Posterior],
    model: &CompactModel,
    arm: usize,
    x: &SparseVec,
    reward: f64,
    outer: &mut SparseVec,
) -> Result<()> {
    let (learner, x) = match &model.catalogue {
        Some(c) => {
            crate::features::outer_split(x, model.features.dim() as u32, c.bits, outer);
            (0, &*outer)
        }
        None => (arm, x),
    };
    match arms.get_mut(learner) {
        Some(a) => a.update(x, reward, model.noise, 1.0),
        None => Err(Error::UnknownVariant {
            variant: text!("#{arm}"),
        }),
    }
}

/// Refuse a slate size outside [1, min(`variants`, [`MAX_SLATE`])], and
/// any slate but one variant when `serving` (apprentice mode).
fn check_slate(k: usize, variants: usize, serving: bool) -> Result<()> {
    let max = variants.min(MAX_SLATE);
    if !(1..=max).contains(&k) {
        return Err(Error::option(
            "k",
            text!("should be an integer in [1, {max}], but is {k}"),
        ));
    }
    if serving && k > 1 {
        return Err(Error::option(
            "k",
            text!("should be 1 in apprentice mode, which serves the baseline alone"),
        ));
    }
    Ok(())
}

/// Refuse features the TypeScript side could not have sent: too many, a
/// namespace outside the allowlist, a value that is not finite.
fn check_feats(fc: &FeatureConfig, feats: &[Hashed]) -> Result<()> {
    check_count(feats.len())?;
    for f in feats {
        if f.ns() >= fc.namespaces() {
            return Err(Error::context(
                "context",
                text!("names a namespace outside the allowlist"),
            ));
        }
        if !f.value().is_finite() {
            return Err(Error::NonFiniteFeature {
                field: text!("context"),
            });
        }
    }
    Ok(())
}

impl Scratch {
    /// The vector a decision for variant `i` keeps for its reward (pending,
    /// journaled, stored), into `out`: the variant's folded vector; for a
    /// catalogue, the folded context then the variant's folded features
    /// shifted past the context's slots (see [`CompactModel::kept_dim`]):
    /// a few slots instead of their product, which [`learn`] makes again,
    /// and the reward teaches what the decision scored even when the
    /// catalogue's variants change before it arrives.
    fn keep_into(&self, model: &CompactModel, i: usize, out: &mut SparseVec) {
        match model.catalogue.as_ref().and_then(|c| c.y.get(i)) {
            Some(y) => {
                out.copy_from(&self.ctx);
                let d = model.features.dim() as u32;
                out.idx.extend(y.idx.iter().map(|v| v + d));
                out.val.extend_from_slice(&y.val);
            }
            None => out.copy_from(for_arm(&self.xs, i)),
        }
    }

    /// Every catalogue variant's mean score (and, when `variance`, its
    /// variance) for the folded context, into `scores` and `variances`,
    /// from the shared learner's `mean` and its covariance: `diag`, a
    /// diagonal's variances, or `var_of`, the variance of an explicit
    /// vector's score. Past [`FULL_COV_MAX_DIM`] weights (a diagonal
    /// covariance) without the products: the weights are summed over the
    /// context once per variant-feature slot (`z_v = Σ_c x_c w_cv`,
    /// `u_v = Σ_c s_cv x_c²`), then each variant's score is `y · z` and its
    /// variance `y² · u`, so a decision costs the context's slots × 2^bits
    /// plus the variants' features, and holds no product in memory. At most
    /// 128 weights, each variant's product is made in turn. The
    /// first-decision module scores its prior through the same function,
    /// so both give the same bits.
    fn catalogue_moments(
        &mut self,
        c: &Catalogue,
        mean: &[f64],
        diag: Option<&[f64]>,
        variance: bool,
        var_of: impl Fn(&SparseVec) -> f64,
    ) -> Result<()> {
        let var = match diag {
            Some(v) if mean.len() > FULL_COV_MAX_DIM => v,
            _ => {
                let mut buf = core::mem::take(&mut self.outer);
                let mut out = Ok(());
                for y in &c.y {
                    outer_into(&self.ctx, y, c.bits, &mut buf);
                    let v = if variance { var_of(&buf) } else { 0.0 };
                    out = self.moment(buf.dot(mean), v);
                    if out.is_err() {
                        break;
                    }
                }
                self.outer = buf;
                return out;
            }
        };
        let width = 1usize << c.bits;
        self.z.clear();
        self.z.resize(width, 0.0);
        self.u.clear();
        self.u.resize(width, 0.0);
        // One pass over the context: for each variant-feature slot the same
        // sums, in the same order, as a learner per variant takes.
        for (&ci, &xc) in self.ctx.idx.iter().zip(&self.ctx.val) {
            let at = (ci as usize) << c.bits;
            let (Some(ms), Some(ss)) = (mean.get(at..at + width), var.get(at..at + width)) else {
                continue;
            };
            for ((z, u), (m, s)) in self.z.iter_mut().zip(&mut self.u).zip(ms.iter().zip(ss)) {
                *z += m * xc;
                *u += s * xc * xc;
            }
        }
        for y in &c.y {
            let mut m = 0.0;
            for (&v, &yv) in y.idx.iter().zip(&y.val) {
                m += self.z.get(v as usize).copied().unwrap_or(0.0) * yv;
            }
            let s2: f64 = if variance {
                y.idx
                    .iter()
                    .zip(&y.val)
                    .map(|(&v, &yv)| self.u.get(v as usize).copied().unwrap_or(0.0) * yv * yv)
                    .sum()
            } else {
                0.0
            };
            if !(m.is_finite() && s2.is_finite()) {
                return Err(overflow());
            }
            self.scores.push(m);
            self.variances.push(s2);
        }
        Ok(())
    }

    /// Draw the rest of the latest decision's slate, to `k` positions,
    /// without replacement (see [`crate::bandit::explore::next_in_slate`]),
    /// from the generator the decision drew with.
    fn extend_slate(&mut self, k: usize) {
        let s = self;
        s.taken.clear();
        s.taken.resize(s.pmf.len(), false);
        for &(i, _) in &s.slate {
            if let Some(t) = s.taken.get_mut(i) {
                *t = true;
            }
        }
        let mut rng = s.draw.take().unwrap_or_else(|| Rng::new(0));
        while s.slate.len() < k {
            let (i, p) =
                crate::bandit::explore::next_in_slate(&s.pmf, &s.scores, &s.taken, rng.next_f64());
            if let Some(t) = s.taken.get_mut(i) {
                *t = true;
            }
            s.slate.push((i, p));
        }
    }

    /// Add a variant's mean score and score variance to `scores` and
    /// `variances`; an overflow (not finite) when they are not finite
    /// (feature values so large they overflow).
    fn moment(&mut self, mean: f64, variance: f64) -> Result<()> {
        if !(mean.is_finite() && variance.is_finite()) {
            return Err(overflow());
        }
        self.scores.push(mean);
        self.variances.push(variance);
        Ok(())
    }

    /// Explore and sample over `scores` and `variances`: the variant, its
    /// probability and the seed of the draw (drawn from `stream` unless
    /// given) of decision `counter + 1`. The pmf stays here.
    fn choose(
        &mut self,
        cfg: &EngineConfig,
        stream: &mut Rng,
        seed: Option<u64>,
        counter: u64,
    ) -> Choice {
        let seed = seed.unwrap_or_else(|| stream.next_seed());
        let mut rng = Rng::new(seed);
        cfg.policy
            .pmf_into(&self.scores, &self.variances, &mut rng, &mut self.pmf);
        let (index, probability) = crate::bandit::explore::sample(&self.pmf, rng.next_f64());
        self.draw = Some(rng);
        self.slate.clear();
        self.slate.push((index, probability));
        Choice {
            index,
            probability,
            seed,
            epoch: cfg.epoch,
            counter: counter + 1,
        }
    }
}

impl Engine {
    /// A new engine at the prior.
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine {
            eval: Sums::new(cfg.model.evaluated()),
            s: Scorer::new(cfg),
            pending: Vec::new(),
            foreign: Vec::new(),
            sync: persist::SyncState::default(),
            report: None,
        }
    }

    /// Forget everything learned and every pending decision: back to the
    /// prior, as if new, with a new decision-id `epoch` (below 2^48, fresh
    /// entropy from the caller) so no earlier id settles a later decision
    /// (the page's `forget()`).
    pub fn reset(&mut self, epoch: u64) {
        let s = &mut self.s;
        s.cfg.epoch = epoch & ((1 << EPOCH_BITS) - 1);
        s.arms = s.cfg.model.posteriors();
        s.rng = Rng::new(s.cfg.seed);
        s.counter = 0;
        self.pending.clear();
        self.foreign.clear();
        self.sync = persist::SyncState::default();
        self.eval = Sums::new(s.cfg.model.evaluated());
        if let Some(t) = &mut self.report {
            t.reset();
        }
    }

    /// The offline evaluation's sums: every settled decision that logged
    /// its probability, since the slot's learning began (see [`crate::eval`]).
    pub fn evaluation(&self) -> &Sums {
        &self.eval
    }

    /// Turn reports on: from now on this engine keeps the statistics of
    /// its period of `period_days` days (with the learner's X'y and X'X
    /// when `learning`) for [`reports`](Engine::reports) to sync. Already on
    /// with the same shape: nothing changes. Errors (`INVALID_OPTION`): see
    /// [`Tally::new`].
    pub fn enable_reports(&mut self, period_days: u32, learning: bool) -> Result<()> {
        if self.s.cfg.model.catalogue.is_some() {
            return Err(Error::option(
                "reports",
                text!("are not kept for a catalogue slot"),
            ));
        }
        let k = self.s.arms.len();
        let d = if learning {
            self.s.cfg.model.features.dim()
        } else {
            0
        };
        let t = Tally::new(k, d, period_days)?;
        let same = |r: &Tally| r.shape() == (k, d) && r.period_days() == period_days;
        if !self.report.as_ref().is_some_and(same) {
            self.report = Some(t);
        }
        Ok(())
    }

    /// The space of this engine's report statistics (see [`Tally`]): its
    /// feature settings and variants' own features, not its prior.
    pub fn feature_space(&self) -> String {
        self.s.cfg.model.space()
    }

    /// Turn reports off, dropping what was not stored (consent withdrawn).
    pub fn disable_reports(&mut self) {
        self.report = None;
    }

    /// The report statistics, when reports are on (their sync, commit and
    /// the closed period's report).
    pub fn reports(&mut self) -> Option<&mut Tally> {
        self.report.as_mut()
    }

    /// The model version (content hash of the prior).
    pub fn model_version(&self) -> &str {
        self.s.cfg.model.version()
    }

    /// Number of variants.
    pub fn variant_count(&self) -> usize {
        self.s.variant_count()
    }

    /// Policy name.
    pub fn policy_name(&self) -> &'static str {
        self.s.cfg.policy.name()
    }

    /// Updates learned per variant, in variant order.
    pub fn updates(&self) -> Vec<u64> {
        self.s.arms.iter().map(|p| p.n).collect()
    }

    /// Decisions waiting for a reward.
    pub fn pending_count(&self) -> usize {
        let mut n = 0;
        for q in [&self.pending, &self.foreign] {
            for p in q {
                n += usize::from(!p.rewarded);
            }
        }
        n
    }

    /// Drop what can no longer be settled, and make room for one more
    /// decision. `maxPending` caps the decisions still *waiting* for their
    /// reward (neither rewarded nor expired): when it is reached the oldest
    /// waiting one is evicted. Settled and expired decisions take no place;
    /// they are kept for one more reward window (at most `maxPending` of
    /// them) so a late or repeated reward is told apart from an unknown id.
    /// Returns the feature vector of an entry dropped (or an empty one), so
    /// the next pending decision reuses its buffers.
    fn prune(&mut self, now: f64) -> SparseVec {
        let ttl = self.s.cfg.reward_ttl_ms;
        let cap = self.s.cfg.max_pending;
        let gone = self
            .pending
            .iter()
            .take_while(|p| p.expires_at + ttl < now)
            .count();
        // Evict the oldest waiting decisions past the cap, then the oldest
        // settled or expired ones past it.
        let mut waiting = 0;
        for p in &self.pending[gone..] {
            waiting += usize::from(p.live(now));
        }
        let mut done = self.pending.len() - gone - waiting;
        let mut spare = SparseVec::default();
        for p in self.pending.drain(..gone) {
            spare = p.x;
        }
        // At the cap one decision goes per new one: one shift of the rest
        // (a pass that moves every entry would cost more on every `rank`).
        let mut i = 0;
        while i < self.pending.len() && (waiting >= cap || done > cap) {
            let live = self.pending[i].live(now);
            if (live && waiting >= cap) || (!live && done > cap) {
                if live {
                    waiting -= 1;
                } else {
                    done -= 1;
                }
                spare = self.pending.remove(i).x;
            } else {
                i += 1;
            }
        }
        spare
    }

    /// Choose a variant for a context already hashed (by the TypeScript
    /// side, which validates and caches feature hashes): `shared` holds the
    /// context's features, namespace indices into the sorted allowlist, and
    /// `actions`, when given, each variant's own features for this call
    /// (replacing the model's). `seed` replays a decision; `defer` requires
    /// `activate` before the reward counts. On error nothing changes (not
    /// even the seed stream).
    pub fn rank_hashed(
        &mut self,
        shared: &[Hashed],
        actions: Option<&[Vec<Hashed>]>,
        seed: Option<u64>,
        defer: bool,
        now_ms: f64,
    ) -> Result<Choice> {
        self.rank_serving(shared, actions, seed, defer, now_ms, None)
    }

    /// [`rank_hashed`](Engine::rank_hashed), serving variant `serve` when
    /// given (apprentice mode: the site's baseline, with probability 1; the
    /// policy still scores, draws and explores in the shadow, and the
    /// decision logs what it would have done, for `evaluate`). An unknown
    /// `serve` is `UNKNOWN_VARIANT`; on error nothing changes.
    pub fn rank_serving(
        &mut self,
        shared: &[Hashed],
        actions: Option<&[Vec<Hashed>]>,
        seed: Option<u64>,
        defer: bool,
        now_ms: f64,
        serve: Option<usize>,
    ) -> Result<Choice> {
        check_now(now_ms)?;
        check_seed(seed)?;
        self.check_arm(serve)?;
        self.s.fold(shared, actions)?;
        let mut c = self.s.sample(seed)?;
        let log = self.serve(&mut c, serve);
        self.record(c, defer, now_ms, log);
        Ok(c)
    }

    /// [`rank_serving`](Engine::rank_serving) a slate: `k` distinct
    /// variants (1 to min(variants, [`MAX_SLATE`])) for a row of content,
    /// drawn without replacement from the decision's pmf with its seed, so
    /// the same seed and state give the same slate. Each position is a
    /// pending decision of its own, with the next decision counter, so each
    /// is rewarded (and activated) on its own; [`Scorer::last_slate`] holds
    /// their variants and probabilities. Only the first position counts in
    /// the offline evaluation (the others' probabilities are conditional).
    /// Apprentice mode serves one variant: `k` must be 1 there. On error
    /// nothing changes.
    #[allow(clippy::too_many_arguments)]
    pub fn rank_slate(
        &mut self,
        shared: &[Hashed],
        actions: Option<&[Vec<Hashed>]>,
        seed: Option<u64>,
        defer: bool,
        now_ms: f64,
        serve: Option<usize>,
        k: usize,
    ) -> Result<Choice> {
        check_slate(k, self.s.variant_count(), serve.is_some())?;
        let c = self.rank_serving(shared, actions, seed, defer, now_ms, serve)?;
        if k > 1 {
            self.s.scratch.extend_slate(k);
            for j in 1..k {
                let Some(&(index, probability)) = self.s.scratch.slate.get(j) else {
                    break;
                };
                let next = Choice {
                    index,
                    probability,
                    counter: self.s.counter + 1,
                    ..c
                };
                self.record(next, defer, now_ms, None);
            }
        }
        Ok(c)
    }

    /// The latest decision's slate (see [`Scorer::last_slate`]).
    pub fn last_slate(&self) -> &[(usize, f64)] {
        self.s.last_slate()
    }

    fn check_arm(&self, arm: Option<usize>) -> Result<()> {
        match arm {
            Some(a) if a >= self.s.variant_count() => Err(Error::UnknownVariant {
                variant: text!("#{a}"),
            }),
            _ => Ok(()),
        }
    }

    /// The record of the latest scoring's decision `c`, which serves
    /// `serve` with probability 1 when given (its pmf then says so too);
    /// none for a catalogue, whose evaluation is not kept.
    fn serve(&mut self, c: &mut Choice, serve: Option<usize>) -> Option<Logged> {
        if let Some(b) = serve {
            c.index = b;
            c.probability = 1.0;
        }
        let sc = &mut self.s.scratch;
        // The slate's first position is what was served.
        if let Some(first) = sc.slate.first_mut() {
            *first = (c.index, c.probability);
        }
        let log = (self.s.cfg.model.evaluated() > 0)
            .then(|| Logged::new(&sc.pmf, &sc.scores, c.index, c.probability));
        if serve.is_some() {
            for (i, q) in sc.pmf.iter_mut().enumerate() {
                *q = f64::from(u8::from(i == c.index));
            }
        }
        log
    }

    /// Learn from a logged observation: `arm`'s reward for the context
    /// `shared` (and per-call `actions`), whether or not this engine chose
    /// it (e.g. replaying logs). On error nothing changes.
    ///
    /// With the `probability` the log served `arm` with, in (0, 1], it
    /// counts in the offline evaluation too: scored by this engine's state
    /// before the update, as if it had made the decision (a Thompson
    /// policy's pmf draws from a seed fixed by the updates so far, so a
    /// replay gives the same sums).
    pub fn learn_hashed(
        &mut self,
        arm: usize,
        shared: &[Hashed],
        actions: Option<&[Vec<Hashed>]>,
        reward: f64,
        probability: Option<f64>,
    ) -> Result<()> {
        check_reward(reward)?;
        self.check_arm(Some(arm))?;
        if probability.is_some_and(|p| !(crate::eval::MIN_PROBABILITY..=1.0).contains(&p)) {
            return Err(Error::option(
                "probability",
                text!("should be in [0.000001, 1]"),
            ));
        }
        self.s.fold(shared, actions)?;
        let log = match probability.filter(|_| self.s.cfg.model.evaluated() > 0) {
            Some(p) => {
                let n: u64 = self.s.arms.iter().map(|a| a.n).sum();
                self.s.sample(Some(Rng::new(n).next_seed()))?;
                let sc = &self.s.scratch;
                Some(Logged::new(&sc.pmf, &sc.scores, arm, p))
            }
            None => None,
        };
        let s = &mut self.s;
        let m = &s.cfg.model;
        // A catalogue keeps the context and the variant's features; any
        // other slot the folded vector as it is.
        let x = if m.catalogue.is_some() {
            s.scratch.keep_into(m, arm, &mut s.kept);
            &s.kept
        } else {
            for_arm(&s.scratch.xs, arm)
        };
        learn(&mut s.arms, m, arm, x, reward, &mut s.outer)?;
        if let Some(l) = &log {
            self.eval.add(arm, l, reward);
        }
        self.sync.journal(arm, x, reward, None, log);
        if let Some(t) = &mut self.report {
            t.observe(arm, x, reward);
        }
        Ok(())
    }

    /// The pmf of the latest decision, in variant order.
    pub fn last_pmf(&self) -> &[f64] {
        self.s.last_pmf()
    }

    /// The hashed slots (increasing) and their values that the latest
    /// decision scored variant `arm` on, which a reward for it updates:
    /// what a device adds to its report's X'y and X'X (issue #22).
    pub fn last_features(&self, arm: usize) -> (&[u32], &[f64]) {
        let x = for_arm(&self.s.scratch.xs, arm);
        (&x.idx, &x.val)
    }

    /// The scorer (for explanations: scores without choosing, mean weights).
    pub fn scorer(&mut self) -> &mut Scorer {
        &mut self.s
    }

    /// The posterior mean scores of the latest decision, in variant order.
    pub fn last_scores(&self) -> &[f64] {
        self.s.last_scores()
    }

    /// Take over a decision the first-decision module made on the same
    /// state (same configuration, restored from the same snapshot) before
    /// this engine existed: `arm` chosen for these features at `now_ms`,
    /// with its seed drawn from the stream (`drew`) or given. It becomes
    /// this engine's next decision, pending as `rank` would have left it,
    /// so its id, reward, activation and evaluation work here as there.
    /// `apprentice`: it served `arm` as the baseline, with probability 1.
    /// `seen`: what it saw (its policy's pmf, the mean scores, and the
    /// probability it chose `arm` with), which the evaluation logs: this
    /// engine may have learned since (the page's log replays rewards
    /// between decisions), so its own pmf could differ. Without it, this
    /// engine scores the decision again. On error nothing changes.
    #[allow(clippy::too_many_arguments)]
    pub fn take_over(
        &mut self,
        shared: &[Hashed],
        actions: Option<&[Vec<Hashed>]>,
        arm: usize,
        seed: Option<u64>,
        defer: bool,
        now_ms: f64,
        apprentice: bool,
        seen: Option<(&[f64], &[f64], f64)>,
    ) -> Result<Choice> {
        check_now(now_ms)?;
        check_seed(seed)?;
        self.check_arm(Some(arm))?;
        self.s.fold(shared, actions)?;
        // The same draw as there: the seed the stream gave it, or the given one.
        let mut stream = self.s.rng.clone();
        let seed = seed.unwrap_or_else(|| stream.next_seed());
        let k = self.s.variant_count();
        let log = match seen {
            Some(_) if self.s.cfg.model.evaluated() == 0 => None,
            Some((pmf, scores, p)) => {
                let fine = |v: &[f64]| v.len() == k && v.iter().all(|x| x.is_finite());
                let p = if apprentice { 1.0 } else { p };
                (fine(pmf) && fine(scores) && p > 0.0 && p <= 1.0)
                    .then(|| Logged::new(pmf, scores, arm, p))
            }
            None => {
                let mut c = self.s.sample(Some(seed))?;
                if !apprentice {
                    c.probability = self.s.scratch.pmf.get(arm).copied().unwrap_or(0.0);
                    c.index = arm;
                }
                let log = self.serve(&mut c, apprentice.then_some(arm));
                log.filter(|l| l.p > 0.0)
            }
        };
        self.s.rng = stream;
        let c = Choice {
            index: arm,
            probability: log.as_ref().map_or(0.0, |l| l.p),
            seed,
            epoch: self.s.cfg.epoch,
            counter: self.s.counter + 1,
        };
        self.record(c, defer, now_ms, log);
        Ok(c)
    }

    /// Record decision `c` as pending, with the feature vector of its variant.
    fn record(&mut self, c: Choice, defer: bool, now_ms: f64, log: impl Into<Option<Logged>>) {
        self.s.counter += 1;
        let mut x = self.prune(now_ms);
        self.s.scratch.keep_into(&self.s.cfg.model, c.index, &mut x);
        self.pending.push(Pending {
            epoch: self.s.cfg.epoch,
            counter: self.s.counter,
            arm: c.index,
            x,
            expires_at: now_ms + self.s.cfg.reward_ttl_ms,
            activated: !defer,
            rewarded: false,
            shared: false,
            log: log.into(),
        });
        if let Some(t) = &mut self.report {
            t.decision(c.index, !defer);
        }
    }

    /// Mark the deferred decision `epoch-counter` as shown, so its reward
    /// will count.
    pub fn activate_id(&mut self, epoch: u64, counter: u64, now_ms: f64) -> Result<()> {
        check_now(now_ms)?;
        let own = self.s.cfg.epoch;
        let p = find(
            &mut self.pending,
            &mut self.foreign,
            own,
            epoch,
            counter,
            now_ms,
        )?;
        if !p.activated {
            p.activated = true;
            if let Some(t) = &mut self.report {
                t.exposure(p.arm);
            }
        }
        Ok(())
    }

    /// Settle the decision `epoch-counter` with a reward in [0, 1]. On
    /// error nothing changes.
    pub fn reward_id(&mut self, epoch: u64, counter: u64, reward: f64, now_ms: f64) -> Result<()> {
        check_now(now_ms)?;
        check_reward(reward)?;
        let own = self.s.cfg.epoch;
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
                id: id_text(epoch, counter),
            });
        }
        let s = &mut self.s;
        learn(&mut s.arms, &s.cfg.model, p.arm, &p.x, reward, &mut s.outer)?;
        p.rewarded = true;
        if let Some(l) = &p.log {
            self.eval.add(p.arm, l, reward);
        }
        let key = persist::id_key(epoch, counter);
        self.sync
            .journal(p.arm, &p.x, reward, Some(key), p.log.clone());
        if let Some(t) = &mut self.report {
            t.reward(p.arm, reward);
            t.observe(p.arm, &p.x, reward);
        }
        // Other tabs holding it learn from the tombstone that it is settled.
        self.sync.settle(key, p.expires_at, p.shared);
        Ok(())
    }

    /// This engine's epoch, the first part of its decision ids.
    pub fn epoch(&self) -> u64 {
        self.s.cfg.epoch
    }

    /// Variant `i`'s own features, as the model configured them.
    pub fn variant_features(&self, i: usize) -> &[Hashed] {
        self.s.cfg.model.variants.get(i).map_or(&[], |v| &v.hashed)
    }

    /// Decisions made so far: the counter of the latest decision id.
    pub fn counter(&self) -> u64 {
        self.s.counter
    }
}

/// Scores that are not finite: feature values so large they overflow.
pub(crate) fn overflow() -> Error {
    Error::NumericalError {
        reason: text!("the variants' scores overflow; feature values are too large"),
    }
}

/// The feature vector of variant `i` from [`Engine::fold_arms`]'s result.
pub(crate) fn for_arm(xs: &[SparseVec], i: usize) -> &SparseVec {
    // (A checked read, never out of bounds: no panic location in the .wasm.)
    static NONE: SparseVec = SparseVec {
        idx: Vec::new(),
        val: Vec::new(),
    };
    xs.get(if xs.len() == 1 { 0 } else { i }).unwrap_or(&NONE)
}

/// The pending decision `epoch-counter` of an engine with `own_epoch`, if it
/// can still be settled: in the own queue, or among those restored from other
/// page views. A free function over the queues so callers can update the
/// learners while holding it.
fn find<'a>(
    pending: &'a mut [Pending],
    foreign: &'a mut [Pending],
    own_epoch: u64,
    epoch: u64,
    counter: u64,
    now_ms: f64,
) -> Result<&'a mut Pending> {
    let id = || id_text(epoch, counter);
    let p = if epoch == own_epoch {
        // The own queue is ordered by counter.
        match pending.binary_search_by(|p| p.counter.cmp(&counter)) {
            Ok(i) => pending.get_mut(i),
            Err(_) => None,
        }
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

/// Refuse a seed JS cannot hold exactly.
fn check_seed(seed: Option<u64>) -> Result<()> {
    if seed.is_some_and(|s| s > MAX_SEED) {
        return Err(Error::option(
            "seed",
            text!("should be an integer in [0, 2^53 - 1]"),
        ));
    }
    Ok(())
}

pub(crate) fn check_reward(r: f64) -> Result<()> {
    if r.is_finite() && (0.0..=1.0).contains(&r) {
        Ok(())
    } else {
        Err(Error::InvalidReward {
            value: crate::error::figure(r),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`Engine::prune`] must do, said another way: drop the leading
    /// entries past their reward window by the ttl, then the oldest waiting ones
    /// until one fewer than `cap` wait (room for the next decision), and the
    /// oldest settled or expired ones until `cap` are left.
    fn prune_spec(pending: &mut Vec<Pending>, now: f64, ttl: f64, cap: usize) {
        let gone = pending
            .iter()
            .take_while(|p| p.expires_at + ttl < now)
            .count();
        pending.drain(..gone);
        let waiting = pending.iter().filter(|p| p.live(now)).count();
        let done = pending.len() - waiting;
        let (mut live_over, mut done_over) =
            ((waiting + 1).saturating_sub(cap), done.saturating_sub(cap));
        pending.retain(|p| {
            let over = if p.live(now) {
                &mut live_over
            } else {
                &mut done_over
            };
            let drop = *over > 0;
            *over -= usize::from(drop);
            !drop
        });
    }

    #[test]
    fn pruning_keeps_what_it_always_kept() {
        let mut rng = Rng::new(5);
        for cap in [1usize, 2, 3, 7] {
            let ttl = 10.0;
            let mut pending: Vec<Pending> = Vec::new();
            let mut e = Engine {
                s: Scorer::new(
                    crate::EngineConfig::parse(r#"{"variants": ["a", "b"]}"#, 1).unwrap(),
                ),
                pending: Vec::new(),
                foreign: Vec::new(),
                sync: persist::SyncState::default(),
                report: None,
                eval: Sums::new(2),
            };
            e.s.cfg.reward_ttl_ms = ttl;
            e.s.cfg.max_pending = cap;
            let mut now = 0.0;
            for counter in 0..400u64 {
                now += (rng.next_u64() % 5) as f64;
                let p = Pending {
                    epoch: 0,
                    counter,
                    arm: 0,
                    x: SparseVec::default(),
                    expires_at: now + (rng.next_u64() % 20) as f64,
                    activated: true,
                    rewarded: rng.next_u64() % 3 == 0,
                    shared: false,
                    log: None,
                };
                prune_spec(&mut pending, now, ttl, cap);
                e.prune(now);
                let ids = |v: &[Pending]| v.iter().map(|p| p.counter).collect::<Vec<_>>();
                assert_eq!(
                    ids(&e.pending),
                    ids(&pending),
                    "cap {cap}, decision {counter}"
                );
                pending.push(p.clone());
                e.pending.push(p);
            }
        }
    }
}
