//! Exploration: small pure functions from action scores to a probability mass
//! function (pmf), and the seeded sample from it. Kept apart from scoring, as
//! in Vowpal Wabbit, so each can be tested and swapped alone.

use crate::prelude::*;

use crate::prim::rng::Rng;

/// All mass on the best score; ties share it equally. Scores within 10^-12
/// of the best (relative) tie: equal scores summed in a different order
/// (a catalogue's variants at their prior, described by different features)
/// differ in their last bits, and must not take the whole mass from each
/// other.
pub fn greedy(scores: &[f64]) -> Vec<f64> {
    let mut pmf = scores.to_vec();
    greedy_in_place(&mut pmf);
    pmf
}

/// [`greedy`] over `v` in place: each score becomes its probability.
pub(crate) fn greedy_in_place(v: &mut [f64]) {
    let best = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let tie = best - best.abs() * 1e-12;
    let winners = v.iter().filter(|s| **s >= tie).count().max(1) as f64;
    for s in v.iter_mut() {
        *s = if *s >= tie { 1.0 / winners } else { 0.0 };
    }
}

/// Greedy with probability `1 - epsilon`, uniform with probability `epsilon`.
pub fn epsilon_greedy(scores: &[f64], epsilon: f64) -> Vec<f64> {
    let mut pmf = scores.to_vec();
    epsilon_greedy_in_place(&mut pmf, epsilon);
    pmf
}

/// [`epsilon_greedy`] over `v` in place.
pub(crate) fn epsilon_greedy_in_place(v: &mut [f64], epsilon: f64) {
    let k = v.len() as f64;
    greedy_in_place(v);
    for p in v.iter_mut() {
        *p = (1.0 - epsilon) * *p + epsilon / k;
    }
}

/// Thompson sampling over independent Gaussian scores `N(mean[a], sd[a]^2)`.
///
/// P(a has the largest draw) has no closed form, so it is estimated from
/// `samples` joint draws. The caller then samples the action from this pmf,
/// which makes the returned probability the exact probability of the action
/// actually served (the estimate is what is sampled from), and an unbiased
/// estimate of the ideal Thompson probability.
pub fn thompson(mean: &[f64], sd: &[f64], samples: u32, rng: &mut Rng) -> Vec<f64> {
    let mut out = Vec::new();
    thompson_into(mean, sd, samples, rng, &mut out);
    out
}

/// [`thompson`] into `out`.
pub(crate) fn thompson_into(
    mean: &[f64],
    sd: &[f64],
    samples: u32,
    rng: &mut Rng,
    out: &mut Vec<f64>,
) {
    let k = mean.len();
    out.clear();
    out.resize(k, 0.0);
    // When one variant beats every other even 8 sd apart, a draw could only
    // go another way with probability below 1e-15: skip the sampling (a large
    // share of a decision's time) and give it all the mass.
    // (Checked reads, never out of bounds: no panic location in the .wasm.)
    let at = |v: &[f64], a: usize| v.get(a).copied().unwrap_or(f64::NAN);
    let lo = |a: usize| at(mean, a) - 8.0 * at(sd, a);
    let hi = |a: usize| at(mean, a) + 8.0 * at(sd, a);
    if let Some(best) = (0..k).find(|&b| (0..k).all(|a| a == b || hi(a) < lo(b))) {
        if let Some(p) = out.get_mut(best) {
            *p = 1.0;
        }
        return;
    }
    for _ in 0..samples {
        let mut best = 0;
        let mut best_v = f64::NEG_INFINITY;
        for (a, (m, s)) in mean.iter().zip(sd).enumerate() {
            let v = m + s * rng.normal();
            if v > best_v {
                best_v = v;
                best = a;
            }
        }
        if let Some(p) = out.get_mut(best) {
            *p += 1.0;
        }
    }
    for p in out.iter_mut() {
        *p /= samples as f64;
    }
}

/// Mix with uniform so every action has at least `min_p` (requires `min_p <= 1/K`).
///
/// `p' = min_p + (1 - K min_p) p` keeps the pmf summing to 1 and keeps the
/// order of the actions.
pub fn floor(pmf: &mut [f64], min_p: f64) {
    if min_p <= 0.0 {
        return;
    }
    let k = pmf.len() as f64;
    let scale = 1.0 - k * min_p;
    for p in pmf.iter_mut() {
        *p = min_p + scale * *p;
    }
}

/// Pick an index with probability `pmf[i]`, from a uniform `u` in [0, 1).
///
/// Returns the index and its probability. Rounding can leave the cumulative
/// sum a hair under 1; a `u` beyond it goes to the last action with mass.
pub fn sample(pmf: &[f64], u: f64) -> (usize, f64) {
    let mut acc = 0.0;
    let mut last = 0;
    for (i, p) in pmf.iter().enumerate() {
        if *p > 0.0 {
            last = i;
            acc += p;
            if u < acc {
                return (i, *p);
            }
        }
    }
    (last, pmf.get(last).copied().unwrap_or(0.0))
}

/// The next variant of a slate drawn without replacement from `pmf`, from a
/// uniform `u` in [0, 1): among those not `taken`, `i` with probability
/// `pmf[i] / m`, where `m` is the mass not yet taken, which is returned as
/// its conditional probability. When no mass is left (a greedy pmf, no
/// floor) the next is the untaken variant with the highest `score` (the
/// first of equals), with probability 1: the policy's own order.
pub fn next_in_slate(pmf: &[f64], scores: &[f64], taken: &[bool], u: f64) -> (usize, f64) {
    let free = |i: usize| !taken.get(i).copied().unwrap_or(true);
    let mut rest = 0.0;
    for (i, p) in pmf.iter().enumerate() {
        if free(i) && *p > 0.0 {
            rest += p;
        }
    }
    if rest > 1e-12 && rest.is_finite() {
        let target = u * rest;
        let (mut acc, mut last) = (0.0, (0, 0.0));
        for (i, p) in pmf.iter().enumerate() {
            if free(i) && *p > 0.0 {
                acc += p;
                last = (i, *p);
                if target < acc {
                    break;
                }
            }
        }
        return (last.0, (last.1 / rest).min(1.0));
    }
    let mut best: Option<(usize, f64)> = None;
    for (i, s) in scores.iter().enumerate() {
        if free(i) && best.map_or(true, |b| *s > b.1) {
            best = Some((i, *s));
        }
    }
    (best.map_or(0, |b| b.0), 1.0)
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index loops read like the maths they check
mod tests {
    use super::*;

    fn sums_to_one(p: &[f64]) -> bool {
        (p.iter().sum::<f64>() - 1.0).abs() < 1e-12
    }

    /// Pearson chi-square statistic of counts against a pmf.
    fn chi2(counts: &[u64], pmf: &[f64]) -> f64 {
        let n: u64 = counts.iter().sum();
        counts
            .iter()
            .zip(pmf)
            .filter(|(_, p)| **p > 0.0)
            .map(|(c, p)| {
                let e = *p * n as f64;
                (*c as f64 - e).powi(2) / e
            })
            .sum()
    }

    #[test]
    fn greedy_and_epsilon_shapes() {
        assert_eq!(greedy(&[0.1, 0.5, 0.2]), vec![0.0, 1.0, 0.0]);
        assert_eq!(greedy(&[0.5, 0.5, 0.2]), vec![0.5, 0.5, 0.0]);
        let p = epsilon_greedy(&[0.1, 0.5, 0.2, 0.0], 0.2);
        assert!(sums_to_one(&p));
        assert!((p[1] - 0.85).abs() < 1e-12 && (p[0] - 0.05).abs() < 1e-12);
    }

    #[test]
    fn floor_is_respected_and_sums_to_one() {
        for min_p in [0.0, 0.01, 0.1, 0.25] {
            let mut p = vec![1.0, 0.0, 0.0, 0.0];
            floor(&mut p, min_p);
            assert!(sums_to_one(&p));
            assert!(p.iter().all(|x| *x >= min_p - 1e-15), "{p:?}");
        }
        let mut u = vec![0.25; 4];
        floor(&mut u, 0.25);
        assert!(u.iter().all(|x| (x - 0.25).abs() < 1e-15));
    }

    #[test]
    fn sample_matches_pmf_chi_square() {
        // 4 categories -> 3 degrees of freedom; the 0.999 quantile of chi2(3) is 16.27.
        let pmf = [0.1, 0.2, 0.3, 0.4];
        let mut rng = Rng::new(5);
        let mut counts = [0u64; 4];
        for _ in 0..100_000 {
            counts[sample(&pmf, rng.next_f64()).0] += 1;
        }
        assert!(chi2(&counts, &pmf) < 16.27, "{counts:?}");
        // Zero-mass actions are never picked, even at u -> 1.
        assert_eq!(sample(&[0.5, 0.5, 0.0], 0.999_999_999_999).0, 1);
    }

    /// P(a is the max of independent normals) by numerical integration:
    /// integral of pdf_a(t) * prod_b cdf_b(t) dt, the reference for the Monte-Carlo pmf.
    fn thompson_exact(mean: &[f64], sd: &[f64]) -> Vec<f64> {
        fn cdf(z: f64) -> f64 {
            // Abramowitz-Stegun 7.1.26 via erf, |error| < 1.5e-7.
            let x = z / std::f64::consts::SQRT_2;
            let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
            let y = 1.0
                - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t
                    - 0.284_496_736)
                    * t
                    + 0.254_829_592)
                    * t
                    * (-x * x).exp();
            0.5 * (1.0 + if x >= 0.0 { y } else { -y })
        }
        let lo = mean
            .iter()
            .zip(sd)
            .map(|(m, s)| m - 10.0 * s)
            .fold(f64::INFINITY, f64::min);
        let hi = mean
            .iter()
            .zip(sd)
            .map(|(m, s)| m + 10.0 * s)
            .fold(f64::NEG_INFINITY, f64::max);
        let n = 20_000;
        let h = (hi - lo) / n as f64;
        (0..mean.len())
            .map(|a| {
                (0..n)
                    .map(|i| {
                        let t = lo + (i as f64 + 0.5) * h;
                        let z = (t - mean[a]) / sd[a];
                        let pdf =
                            (-0.5 * z * z).exp() / (sd[a] * (2.0 * std::f64::consts::PI).sqrt());
                        let others: f64 = (0..mean.len())
                            .filter(|b| *b != a)
                            .map(|b| cdf((t - mean[b]) / sd[b]))
                            .product();
                        pdf * others * h
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn thompson_skips_sampling_only_when_decisive() {
        let mut rng = Rng::new(1);
        let before = rng.clone().next_u64();
        assert_eq!(
            thompson(&[1.0, 0.0, 0.2], &[0.01, 0.01, 0.05], 32, &mut rng),
            vec![1.0, 0.0, 0.0]
        );
        assert_eq!(rng.next_u64(), before, "no draws were spent");
        // 7 sd apart is not decisive: sampled, and the loser can still win a draw in principle.
        let p = thompson(&[1.0, 0.0], &[0.0715, 0.0715], 32, &mut rng);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn thompson_pmf_estimates_the_true_probabilities() {
        let mean = [0.2, 0.5, 0.45, 0.0];
        let sd = [0.3, 0.1, 0.2, 0.5];
        let exact = thompson_exact(&mean, &sd);
        assert!(sums_to_one(&exact) || (exact.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        // Average of R independent pmf estimates of S samples each: each entry is a
        // binomial proportion over R*S draws, sd sqrt(p(1-p)/(R*S)); allow 5 sd.
        let (reps, s) = (2000, 32);
        let mut rng = Rng::new(17);
        let mut avg = [0.0; 4];
        for _ in 0..reps {
            let p = thompson(&mean, &sd, s, &mut rng);
            assert!(sums_to_one(&p));
            for a in 0..4 {
                avg[a] += p[a] / reps as f64;
            }
        }
        for a in 0..4 {
            let tol = 5.0 * (exact[a] * (1.0 - exact[a]) / (reps * s) as f64).sqrt() + 1e-4;
            assert!(
                (avg[a] - exact[a]).abs() < tol,
                "arm {a}: {} vs {} (tol {tol})",
                avg[a],
                exact[a]
            );
        }
    }
}
