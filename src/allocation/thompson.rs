//! Beta-Bernoulli Thompson sampling: the probability that each variant's
//! posterior draw is the largest, estimated from seeded joint draws.
//!
//! As with the engine's Gaussian Thompson policy, the estimate is what the
//! variant is then sampled from, so the probability returned with a trial is
//! exactly the probability with which its variant was served.

use crate::prelude::*;

#[cfg(not(feature = "std"))]
use crate::prim::math::Float;

use crate::prim::math;

use crate::prim::rng::Rng;

/// A Gamma(shape, 1) draw for `shape >= 1` (Marsaglia and Tsang, 2000).
/// Every posterior here has shape at least 1: Beta(1, 1) plus counts.
pub(crate) fn gamma(shape: f64, rng: &mut Rng) -> f64 {
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = rng.normal();
        let t = 1.0 + c * x;
        if t <= 0.0 {
            continue;
        }
        let v = t * t * t;
        let u = rng.next_f64();
        let x2 = x * x;
        // The squeeze accepts about 98% of draws without a logarithm.
        if u < 1.0 - 0.0331 * x2 * x2
            || (u > 0.0 && math::ln(u) < 0.5 * x2 + d * (1.0 - v + math::ln(v)))
        {
            return d * v;
        }
    }
}

/// A Beta(a, b) draw, `a, b >= 1`.
pub(crate) fn beta(a: f64, b: f64, rng: &mut Rng) -> f64 {
    let x = gamma(a, rng);
    let y = gamma(b, rng);
    x / (x + y)
}

/// P(variant i's Beta(alpha, beta) draw is the largest), from `samples`
/// joint draws; `params` holds each variant's alpha and beta in turn.
pub(crate) fn pmf(params: &[f64], samples: u32, rng: &mut Rng) -> Vec<f64> {
    let mut wins = vec![0.0; params.len() / 2];
    for _ in 0..samples {
        let mut best = 0;
        let mut best_v = f64::NEG_INFINITY;
        for (i, p) in params.chunks_exact(2).enumerate() {
            if let [a, b] = p {
                let v = beta(*a, *b, rng);
                if v > best_v {
                    best_v = v;
                    best = i;
                }
            }
        }
        if let Some(w) = wins.get_mut(best) {
            *w += 1.0;
        }
    }
    for w in &mut wins {
        *w /= samples as f64;
    }
    wins
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean and variance of `n` draws.
    fn moments(n: usize, mut draw: impl FnMut() -> f64) -> (f64, f64) {
        let xs: Vec<f64> = (0..n).map(|_| draw()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var)
    }

    #[test]
    fn gamma_and_beta_draws_have_their_moments() {
        let n = 200_000;
        let mut rng = Rng::new(11);
        for shape in [1.0, 1.5, 4.0, 30.0, 1000.0] {
            // Gamma(k): mean k, variance k. The mean of n draws has sd
            // sqrt(k/n); the sample variance has sd about k sqrt(2/n)
            // (sqrt((mu4 - sigma^4)/n) with mu4 = 3k^2 + 6k).
            let (m, v) = moments(n, || gamma(shape, &mut rng));
            let sd_mean = (shape / n as f64).sqrt();
            let sd_var = ((2.0 * shape * shape + 6.0 * shape) / n as f64).sqrt();
            assert!((m - shape).abs() < 5.0 * sd_mean, "Gamma({shape}) mean {m}");
            assert!(
                (v - shape).abs() < 5.0 * sd_var,
                "Gamma({shape}) variance {v}"
            );
        }
        for (a, b) in [(1.0, 1.0), (2.0, 5.0), (31.0, 71.0)] {
            let (m, v) = moments(n, || beta(a, b, &mut rng));
            let mean = a / (a + b);
            let var = a * b / ((a + b) * (a + b) * (a + b + 1.0));
            // Draws lie in [0, 1], so the fourth central moment is at most
            // the variance: the sample variance has sd at most sqrt(var/n).
            assert!(
                (m - mean).abs() < 5.0 * (var / n as f64).sqrt(),
                "Beta({a},{b}) mean {m}"
            );
            assert!(
                (v - var).abs() < 5.0 * (var / n as f64).sqrt(),
                "Beta({a},{b}) var {v}"
            );
        }
    }

    #[test]
    fn pmf_matches_the_exact_probability_for_two_arms() {
        // For integer parameters, P(X > Y) with X ~ Beta(a1, b1), Y ~ Beta(a2,
        // b2), P(Y > X) has Miller's closed form (Evan Miller, "Formulas for
        // Bayesian A/B testing"): sum over i < a2 of B(a1+i, b1+b2) /
        // ((b2+i) B(1+i, b2) B(a1, b1)).
        fn ln_beta(a: f64, b: f64) -> f64 {
            ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
        }
        fn ln_gamma(x: f64) -> f64 {
            // Integer arguments only here: ln((x-1)!).
            (1..x as u64).map(|i| (i as f64).ln()).sum()
        }
        let (a1, b1, a2, b2) = (13.0, 40.0, 9.0, 41.0);
        let exact: f64 = (0..a2 as u64)
            .map(|i| {
                let i = i as f64;
                (ln_beta(a1 + i, b1 + b2) - (b2 + i).ln() - ln_beta(1.0 + i, b2) - ln_beta(a1, b1))
                    .exp()
            })
            .sum();
        let n = 100_000;
        let p = pmf(&[a1, b1, a2, b2], n, &mut Rng::new(5));
        let sd = (exact * (1.0 - exact) / n as f64).sqrt();
        assert!(
            (p[1] - exact).abs() < 5.0 * sd,
            "estimate {} exact {exact}",
            p[1]
        );
        assert!((p[0] + p[1] - 1.0).abs() < 1e-12);
    }
}
