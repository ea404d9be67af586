//! The scorer of a page view with nothing stored: every variant at its
//! prior, which is exactly where the full engine's [`Scorer`] starts, so it
//! decides as that scorer would before its first update, bit for bit
//! (tests/prior.rs). It keeps no posterior: at the prior the covariance is
//! the diagonal of prior variances, and a score's variance is
//! `sum(variance[i] * x[i]^2)`, the value the full engine's packed
//! quadratic form gives with zero covariances. This is the whole scorer
//! of the first-decision module.
//!
//! [`Scorer`]: super::Scorer

use crate::prelude::*;

use super::{check_now, check_seed, check_slate, for_arm, Choice, EngineConfig, Scratch};
use crate::error::Result;
use crate::features::Hashed;
use crate::prim::rng::Rng;

/// A slot's scorer at its prior.
#[derive(Debug, Clone)]
pub struct Prior {
    cfg: EngineConfig,
    rng: Rng,
    counter: u64,
    scratch: Scratch,
}

impl Prior {
    /// A scorer for `cfg`.
    pub fn new(cfg: EngineConfig) -> Prior {
        Prior {
            rng: Rng::new(cfg.seed),
            counter: 0,
            scratch: Scratch::default(),
            cfg,
        }
    }

    /// Number of variants.
    pub fn variant_count(&self) -> usize {
        self.cfg.model.variants.len()
    }

    /// Choose a variant for hashed features, as [`Scorer::decide`] does at
    /// the prior. On error nothing changes.
    ///
    /// [`Scorer::decide`]: super::Scorer::decide
    pub fn decide(
        &mut self,
        shared: &[Hashed],
        actions: Option<&[Vec<Hashed>]>,
        seed: Option<u64>,
        now_ms: f64,
    ) -> Result<Choice> {
        check_now(now_ms)?;
        check_seed(seed)?;
        let s = &mut self.scratch;
        s.fold(&self.cfg.model, shared, actions)?;
        let variance = self.cfg.policy.needs_variance();
        s.scores.clear();
        s.variances.clear();
        let m = &self.cfg.model;
        if let Some(c) = &m.catalogue {
            let var = &c.variance[..];
            let diag =
                |x: &crate::features::SparseVec| crate::model::posterior::diag_quad_form(var, x);
            s.catalogue_moments(c, &c.mean, Some(var), variance, diag)?;
        } else {
            for i in 0..m.variants.len() {
                let x = for_arm(&s.xs, i);
                let (mean, var) = m.prior(i);
                let var = if variance {
                    crate::model::posterior::diag_quad_form(var, x)
                } else {
                    0.0
                };
                s.moment(x.dot(mean), var)?;
            }
        }
        let c = s.choose(&self.cfg, &mut self.rng, seed, self.counter);
        self.counter += 1;
        Ok(c)
    }

    /// [`decide`](Self::decide) a slate of `k` distinct variants, as
    /// [`Engine::rank_slate`](super::Engine::rank_slate) draws them: the
    /// first is the decision's, and each position takes a decision counter
    /// of its own. On error nothing changes.
    pub fn decide_slate(
        &mut self,
        shared: &[Hashed],
        actions: Option<&[Vec<Hashed>]>,
        seed: Option<u64>,
        now_ms: f64,
        k: usize,
    ) -> Result<Choice> {
        check_slate(k, self.variant_count(), false)?;
        let c = self.decide(shared, actions, seed, now_ms)?;
        self.scratch.extend_slate(k);
        self.counter += k as u64 - 1;
        Ok(c)
    }

    /// The latest decision's slate (see [`Scorer::last_slate`](super::Scorer::last_slate)).
    pub fn last_slate(&self) -> &[(usize, f64)] {
        &self.scratch.slate
    }

    /// Decisions made so far: the counter of the latest decision id.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// The pmf of the latest decision, in variant order.
    pub fn last_pmf(&self) -> &[f64] {
        &self.scratch.pmf
    }

    /// The mean scores of the latest decision, in variant order.
    pub fn last_scores(&self) -> &[f64] {
        &self.scratch.scores
    }
}
