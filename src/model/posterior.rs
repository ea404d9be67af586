//! Bayesian linear regression for one variant, updated one reward at a time.
//!
//! The posterior over weights is Gaussian, N(mean, cov). A reward `r` for
//! features `x` with observation noise `noise` is a Kalman / recursive least
//! squares step: with `s = cov x` and `q = noise + x'cov x`,
//! `mean += s (r - x'mean) / q` and `cov -= s s' / q`. That is the
//! Sherman–Morrison rank-1 update of the inverse precision, O(d·nnz + d²),
//! never O(d³). Starting from the prior (mean, diagonal variance) it gives
//! exactly the Bayesian ridge posterior.
//!
//! Wide tables (more than [`FULL_COV_MAX_DIM`] slots) keep only the diagonal
//! of the covariance, which is O(nnz) per step and the usual approximation
//! for hashed linear bandits.

use crate::prelude::*;

use crate::error::{Error, Result};
use crate::features::SparseVec;

/// Largest dimension that keeps a full covariance matrix.
pub(crate) const FULL_COV_MAX_DIM: usize = 128;

/// Smallest variance a diagonal entry may reach; keeps the matrix positive
/// definite when rounding would otherwise push a variance to zero or below.
const MIN_VARIANCE: f64 = 1e-12;

/// Covariance storage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Covariance {
    /// The upper triangle of the symmetric d×d matrix, packed row by row
    /// (see `insitu_kernels::packed_row`): half the memory a decision reads.
    Full(Vec<f64>),
    /// Diagonal only.
    Diag(Vec<f64>),
}

/// The posterior of one variant's weights.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Posterior {
    pub(crate) mean: Vec<f64>,
    pub(crate) cov: Covariance,
    /// Rewards seen.
    pub(crate) n: u64,
}

impl Posterior {
    /// The prior: given means and per-slot variances (all > 0).
    pub(crate) fn new(mean: Vec<f64>, variance: &[f64]) -> Posterior {
        let d = mean.len();
        debug_assert_eq!(variance.len(), d);
        let cov = if d <= FULL_COV_MAX_DIM {
            let mut m = vec![0.0; insitu_kernels::packed_len(d)];
            for (i, v) in variance.iter().enumerate() {
                m[insitu_kernels::packed_row(i, d)] = *v;
            }
            Covariance::Full(m)
        } else {
            Covariance::Diag(variance.to_vec())
        };
        Posterior { mean, cov, n: 0 }
    }

    /// Dimension.
    pub(crate) fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Posterior mean of the score `x'w`.
    pub(crate) fn mean_score(&self, x: &SparseVec) -> f64 {
        x.dot(&self.mean)
    }

    /// Posterior variance of the score, `x' cov x`.
    pub(crate) fn score_variance(&self, x: &SparseVec) -> f64 {
        let d = self.dim();
        let v = match &self.cov {
            Covariance::Full(m) => insitu_kernels::quad_form(m, d, &x.idx, &x.val),
            Covariance::Diag(v) => diag_quad_form(v, x),
        };
        // Rounding can leave a tiny negative; NaN (from a kernel refusing its
        // input) stays NaN, for the engine to refuse.
        if v < 0.0 {
            0.0
        } else {
            v
        }
    }

    /// Fold in one observation `reward` for features `x`, with observation
    /// noise variance `noise` (> 0) and importance `weight` (> 0, 1 for a plain
    /// observation). On a numerical failure nothing changes.
    pub(crate) fn update(
        &mut self,
        x: &SparseVec,
        reward: f64,
        noise: f64,
        weight: f64,
    ) -> Result<()> {
        let d = self.dim();
        // A weighted observation is one with noise / weight.
        let noise = noise / weight;
        let resid = reward - x.dot(&self.mean);
        match &mut self.cov {
            Covariance::Full(m) => {
                // s = cov x (dense), q = noise + x's, then cov -= s s' / q.
                let mut s = vec![0.0; d];
                insitu_kernels::mat_vec(m, d, &x.idx, &x.val, &mut s);
                let q = noise + x.dot(&s);
                if !(q.is_finite() && q > 0.0 && resid.is_finite()) {
                    return Err(numerical(q));
                }
                let gain = resid / q;
                for (mi, si) in self.mean.iter_mut().zip(&s) {
                    *mi += si * gain;
                }
                insitu_kernels::rank1_downdate(m, d, &s, 1.0 / q, MIN_VARIANCE);
            }
            Covariance::Diag(v) => {
                let q = noise + diag_quad_form(v, x);
                if !(q.is_finite() && q > 0.0 && resid.is_finite()) {
                    return Err(numerical(q));
                }
                for (&i, &xi) in x.idx.iter().zip(&x.val) {
                    let i = i as usize;
                    let s = v[i] * xi;
                    self.mean[i] += s * resid / q;
                    v[i] = (v[i] - s * s / q).max(MIN_VARIANCE);
                }
            }
        }
        self.n += 1;
        Ok(())
    }
}

/// `x' diag(v) x`.
pub(crate) fn diag_quad_form(v: &[f64], x: &SparseVec) -> f64 {
    x.idx
        .iter()
        .zip(&x.val)
        .map(|(&i, &xi)| v.get(i as usize).copied().unwrap_or(0.0) * xi * xi)
        .sum()
}

fn numerical(q: f64) -> Error {
    Error::NumericalError {
        reason: text!("update denominator is {}", crate::error::Num(q)),
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index loops read like the maths they check
mod tests {
    use super::*;
    use crate::prim::rng::Rng;

    /// The full row-major covariance of a packed posterior.
    fn unpack(p: &Posterior) -> Vec<f64> {
        let Covariance::Full(m) = &p.cov else {
            panic!("expected full")
        };
        let d = p.dim();
        let mut full = vec![0.0; d * d];
        for i in 0..d {
            for j in i..d {
                let v = m[insitu_kernels::packed_row(i, d) + j - i];
                full[i * d + j] = v;
                full[j * d + i] = v;
            }
        }
        full
    }

    fn sv(pairs: &[(u32, f64)]) -> SparseVec {
        SparseVec {
            idx: pairs.iter().map(|p| p.0).collect(),
            val: pairs.iter().map(|p| p.1).collect(),
        }
    }

    /// Solve A w = b for a small SPD matrix by Cholesky: the closed form we compare against.
    fn solve_spd(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
        let mut l = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..=i {
                let s: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
                l[i * d + j] = if i == j {
                    (a[i * d + i] - s).sqrt()
                } else {
                    (a[i * d + j] - s) / l[j * d + j]
                };
            }
        }
        let mut y = vec![0.0; d];
        for i in 0..d {
            y[i] = (b[i] - (0..i).map(|k| l[i * d + k] * y[k]).sum::<f64>()) / l[i * d + i];
        }
        let mut x = vec![0.0; d];
        for i in (0..d).rev() {
            x[i] = (y[i] - (i + 1..d).map(|k| l[k * d + i] * x[k]).sum::<f64>()) / l[i * d + i];
        }
        x
    }

    fn inverse_spd(a: &[f64], d: usize) -> Vec<f64> {
        let mut inv = vec![0.0; d * d];
        for c in 0..d {
            let mut e = vec![0.0; d];
            e[c] = 1.0;
            let col = solve_spd(a, &e, d);
            for r in 0..d {
                inv[r * d + c] = col[r];
            }
        }
        inv
    }

    /// Closed-form posterior: precision A = diag(1/v0) + sum x x'/noise, b = mean0/v0 + sum x r/noise.
    fn closed_form(
        d: usize,
        m0: &[f64],
        v0: &[f64],
        data: &[(SparseVec, f64)],
        noise: f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut a = vec![0.0; d * d];
        let mut b = vec![0.0; d];
        for i in 0..d {
            a[i * d + i] = 1.0 / v0[i];
            b[i] = m0[i] / v0[i];
        }
        for (x, r) in data {
            for (&i, &xi) in x.idx.iter().zip(&x.val) {
                b[i as usize] += xi * r / noise;
                for (&j, &xj) in x.idx.iter().zip(&x.val) {
                    a[i as usize * d + j as usize] += xi * xj / noise;
                }
            }
        }
        (solve_spd(&a, &b, d), inverse_spd(&a, d))
    }

    #[test]
    fn matches_closed_form_bayesian_ridge() {
        let d = 4;
        let m0 = vec![0.1, -0.2, 0.0, 0.3];
        let v0 = vec![1.0, 0.5, 2.0, 1.0];
        let noise = 0.25;
        let mut rng = Rng::new(3);
        let data: Vec<(SparseVec, f64)> = (0..50)
            .map(|_| {
                let x = sv(&[
                    (0, 1.0),
                    (1 + (rng.next_u64() % 3) as u32, rng.next_f64() * 2.0 - 1.0),
                ]);
                (x, rng.next_f64())
            })
            .collect();
        let mut p = Posterior::new(m0.clone(), &v0);
        for (x, r) in &data {
            p.update(x, *r, noise, 1.0).unwrap();
        }
        let (mean, cov) = closed_form(d, &m0, &v0, &data, noise);
        for i in 0..d {
            assert!((p.mean[i] - mean[i]).abs() < 1e-10, "mean[{i}]");
        }
        let m = unpack(&p);
        for i in 0..d * d {
            assert!((m[i] - cov[i]).abs() < 1e-10, "cov[{i}]");
        }
        // Score variance is x' cov x.
        let x = sv(&[(0, 1.0), (2, 0.5)]);
        let want = cov[0] + 0.25 * cov[2 * d + 2] + 2.0 * 0.5 * cov[2];
        assert!((p.score_variance(&x) - want).abs() < 1e-12);
    }

    #[test]
    fn weighted_update_equals_repeated_update_for_mean() {
        // Weight w is the same as noise/w: two unit updates vs one weight-2 update
        // agree exactly on the precision, and so on the posterior.
        let x = sv(&[(0, 1.0), (1, 1.0)]);
        let mut a = Posterior::new(vec![0.0; 2], &[1.0, 1.0]);
        let mut b = a.clone();
        a.update(&x, 1.0, 0.5, 1.0).unwrap();
        a.update(&x, 1.0, 0.5, 1.0).unwrap();
        b.update(&x, 1.0, 0.5, 2.0).unwrap();
        for i in 0..2 {
            assert!((a.mean[i] - b.mean[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn diagonal_mode_for_wide_tables_and_rejects_bad_numbers() {
        let d = 256;
        let mut p = Posterior::new(vec![0.0; d], &vec![1.0; d]);
        assert!(matches!(p.cov, Covariance::Diag(_)));
        let x = sv(&[(5, 1.0)]);
        p.update(&x, 1.0, 1.0, 1.0).unwrap();
        assert!((p.mean[5] - 0.5).abs() < 1e-12);
        let Covariance::Diag(v) = &p.cov else {
            panic!("expected diagonal")
        };
        assert!((v[5] - 0.5).abs() < 1e-12);
        let before = p.clone();
        assert_eq!(
            p.update(&x, f64::NAN, 1.0, 1.0).unwrap_err().code(),
            "NUMERICAL_ERROR"
        );
        assert_eq!(p, before);
    }

    #[test]
    fn stable_over_a_million_updates() {
        // 10^6 rank-1 steps must agree with the closed form computed once at the end,
        // and the covariance must stay symmetric positive definite.
        let d = 8;
        let noise = 0.25;
        let true_w: Vec<f64> = (0..d).map(|i| (i as f64 - 3.5) / 8.0).collect();
        let mut rng = Rng::new(11);
        let mut p = Posterior::new(vec![0.0; d], &vec![1.0; d]);
        let mut a = vec![0.0; d * d];
        let mut b = vec![0.0; d];
        for i in 0..d {
            a[i * d + i] = 1.0;
        }
        for _ in 0..1_000_000 {
            let i = (rng.next_u64() % d as u64) as u32;
            let j = (rng.next_u64() % d as u64) as u32;
            let x = if i == j {
                sv(&[(i, 1.0)])
            } else {
                sv(&[(i.min(j), 1.0), (i.max(j), 0.5)])
            };
            let r = x.dot(&true_w) + (rng.next_f64() - 0.5) * 0.2;
            p.update(&x, r, noise, 1.0).unwrap();
            for (&ii, &xi) in x.idx.iter().zip(&x.val) {
                b[ii as usize] += xi * r / noise;
                for (&jj, &xj) in x.idx.iter().zip(&x.val) {
                    a[ii as usize * d + jj as usize] += xi * xj / noise;
                }
            }
        }
        let want = solve_spd(&a, &b, d);
        let want_cov = inverse_spd(&a, d);
        let m = unpack(&p);
        for i in 0..d {
            assert!(
                (p.mean[i] - want[i]).abs() < 1e-8,
                "mean[{i}] {} vs {}",
                p.mean[i],
                want[i]
            );
            assert!((p.mean[i] - true_w[i]).abs() < 0.01);
            for j in 0..d {
                let rel = (m[i * d + j] - want_cov[i * d + j]).abs() / want_cov[i * d + i];
                assert!(rel < 1e-6, "cov[{i},{j}] relative error {rel}");
                assert_eq!(m[i * d + j], m[j * d + i]);
            }
        }
        // Positive definite: Cholesky of the tracked covariance succeeds.
        let pd = solve_spd(&m, &vec![1.0; d], d);
        assert!(pd.iter().all(|v| v.is_finite()));
        assert_eq!(p.n, 1_000_000);
    }
}
