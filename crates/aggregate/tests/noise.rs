//! The noise: calibrated to the bounds and ε, with the variance and mean
//! of its discrete Laplace distribution (seeded, statistical tolerances).
//!
//! **The tolerance.** For `n` independent draws of `X ~ DLap(t)` the sample
//! variance `s²` has, to first order, `Var(s²) = (μ₄ - σ⁴) / n`, with `σ²`
//! and `μ₄` the distribution's variance and fourth central moment. `X` is
//! the difference of two independent geometric variables `G` with
//! `P(G ≥ k) = q^k`, `q = exp(-1/t)`, whose cumulants are
//! `κ₂ = q / (1-q)²` and `κ₄ = q (1 + 4q + q²) / (1-q)⁴`. Cumulants of a
//! difference of independent copies add in even orders, so
//! `σ² = 2κ₂`, `κ₄(X) = 2κ₄`, and `μ₄ = κ₄(X) + 3σ⁴`, hence
//! `Var(s²) = (κ₄(X) + 2σ⁴) / n`. The test accepts `|s² - σ²| ≤ 5 sd(s²)`
//! and `|mean| ≤ 5 σ/√n`: a correct sampler fails either with probability
//! about 10⁻⁶. At n = 200,000 (the sampler test) 5 sd(s²) is about 2.5% of
//! σ², so a scale off by 2% (4% in variance) fails almost surely; the
//! release test has 12,000 to 48,000 draws per group and catches errors of
//! about 10% in variance, and checks the calibration itself exactly.

mod common;

use insitu_aggregate::noise::{self, Mechanism};
use insitu_aggregate::{release, Group};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// σ² and Var(s²)·n of DLap(t), from the cumulants (see the module docs);
/// written here independently of `noise::variance`.
fn moments(t: f64) -> (f64, f64) {
    let q = (-1.0 / t).exp();
    let k2 = q / (1.0 - q).powi(2);
    let k4 = q * (1.0 + 4.0 * q + q * q) / (1.0 - q).powi(4);
    let var = 2.0 * k2;
    (var, 2.0 * k4 + 2.0 * var * var)
}

fn check(draws: &[i64], t: f64, what: &str) {
    let n = draws.len() as f64;
    let mean = draws.iter().map(|x| *x as f64).sum::<f64>() / n;
    let s2 = draws
        .iter()
        .map(|x| (*x as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    let (var, n_var_s2) = moments(t);
    let sd_s2 = (n_var_s2 / n).sqrt();
    assert!(
        (s2 - var).abs() <= 5.0 * sd_s2,
        "{what}: t = {t}, sample variance {s2} vs {var} (sd {sd_s2})"
    );
    assert!(
        mean.abs() <= 5.0 * (var / n).sqrt(),
        "{what}: t = {t}, mean {mean} (se {})",
        (var / n).sqrt()
    );
}

#[test]
fn draws_have_the_variance_and_mean_of_their_scale() {
    let mut rng = StdRng::seed_from_u64(21);
    for t in [0.3, 1.0, 6.0, 250.0] {
        let draws: Vec<i64> = (0..200_000).map(|_| noise::sample(&mut rng, t)).collect();
        check(&draws, t, "sample");
        assert!((noise::variance(t) - moments(t).0).abs() <= 1e-9 * moments(t).0);
    }
    assert_eq!(noise::sample(&mut rng, 0.0), 0);
}

#[test]
fn released_sums_carry_noise_calibrated_to_the_bounds_and_epsilon() {
    let t = common::task();
    let spec = &t.spec;
    let epsilon = 0.5;
    let mech = Mechanism::DiscreteLaplace { epsilon };
    // Calibration, from the task file by hand: six groups share ε equally;
    // each group's L1 cap in encoded units is its bound times the scale.
    let share = epsilon / 6.0;
    let want = [
        (Group::Reports, 1.0 / share),
        (Group::Decisions, 8.0 / share),
        (Group::Exposures, 8.0 / share),
        (Group::Rewards, 4.0 * 64.0 / share),
        (Group::Xy, 6.0 * 64.0 / share),
        (Group::Xx, 20.0 * 64.0 / share),
    ];
    for (g, scale) in want {
        assert!((mech.scale(spec, g) - scale).abs() < 1e-9, "{}", g.name());
    }
    // Many releases of the same exact sums: the noise per group is the
    // released minus the exact sum.
    let mut rng = StdRng::seed_from_u64(22);
    let exact: Vec<Vec<u64>> = vec![vec![5_000; spec.len()]; 2];
    let mut noise: Vec<Vec<i64>> = vec![Vec::new(); 6];
    for _ in 0..6_000 {
        let r = release(&t, &exact, mech, &mut rng).unwrap();
        for s in &r.segments {
            for (gi, (g, _)) in want.iter().enumerate() {
                noise[gi].extend(s.sums[spec.range(*g)].iter().map(|x| x - 5_000));
            }
        }
    }
    for (gi, (g, scale)) in want.iter().enumerate() {
        assert!(noise[gi].len() >= 12_000);
        check(&noise[gi], *scale, g.name());
    }
    // A seed reproduces a release; another seed does not.
    let a = release(&t, &exact, mech, &mut StdRng::seed_from_u64(5)).unwrap();
    let b = release(&t, &exact, mech, &mut StdRng::seed_from_u64(5)).unwrap();
    let c = release(&t, &exact, mech, &mut StdRng::seed_from_u64(6)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Sums that do not fit the task's buckets are refused, not truncated.
    let e = release(&t, &exact[..1], mech, &mut rng).unwrap_err();
    assert_eq!(e.code(), "INVALID_SUMS");
    // Without noise the sums are exact.
    let none = release(&t, &exact, Mechanism::None, &mut rng).unwrap();
    assert!(none
        .segments
        .iter()
        .all(|s| s.sums.iter().all(|x| *x == 5_000)));
}
