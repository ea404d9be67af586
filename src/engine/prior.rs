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

use super::{check_now, check_seed, for_arm, Choice, EngineConfig, Scratch};
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
        for (i, v) in self.cfg.model.variants.iter().enumerate() {
            let x = for_arm(&s.xs, i);
            let var = if variance {
                crate::model::posterior::diag_quad_form(&v.variance, x)
            } else {
                0.0
            };
            let mean = x.dot(&v.mean);
            s.moment(mean, var)?;
        }
        let c = s.choose(&self.cfg, &mut self.rng, seed, self.counter);
        self.counter += 1;
        Ok(c)
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
