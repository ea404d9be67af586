//! The measurement encoding: round trips within the fixed-point resolution,
//! clipping at the bounds, and hostile values. Seeded random reports.

#![allow(clippy::needless_range_loop)] // parallel arrays indexed by variant and slot

use insitu_aggregate::{decode, encode, Bounds, Group, Spec, Stats};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CASES: usize = 2_000;

fn spec() -> Spec {
    let b = Bounds {
        decisions: 20,
        exposures: 15,
        rewards: 10.0,
        xy: 30.0,
        xx: 200.0,
    };
    Spec::new(3, 8, 1024, b, None).unwrap()
}

/// Random statistics whose groups are within their bounds (so nothing is
/// clipped), spread so some values are 0, some tiny, some near the bound.
fn within(rng: &mut StdRng, s: &Spec) -> Stats {
    let b = s.bounds();
    let mut st = Stats::zeros(s);
    let split = |rng: &mut StdRng, n: usize, total: f64| -> Vec<f64> {
        let w: Vec<f64> = (0..n)
            .map(|_| {
                if rng.gen_bool(0.3) {
                    0.0
                } else {
                    rng.gen::<f64>()
                }
            })
            .collect();
        let sum: f64 = w.iter().sum::<f64>().max(1e-12);
        let t = total * rng.gen::<f64>();
        w.iter().map(|x| x / sum * t).collect()
    };
    let k = s.variants();
    let dec = split(rng, k, b.decisions as f64);
    st.decisions = dec.iter().map(|x| x.floor() as u32).collect();
    let exp = split(rng, k, b.exposures as f64);
    st.exposures = exp.iter().map(|x| x.floor() as u32).collect();
    st.rewards = split(rng, k, b.rewards);
    st.xy = split(rng, st.xy.len(), b.xy)
        .into_iter()
        .map(|x| if rng.gen_bool(0.5) { -x } else { x })
        .collect();
    st.xx = split(rng, st.xx.len(), b.xx);
    st
}

fn as_i64(e: &[u64]) -> Vec<i64> {
    e.iter().map(|x| *x as i64).collect()
}

#[test]
fn round_trip_within_the_resolution() {
    let s = spec();
    let res = 1.0 / s.scale() as f64;
    let mut rng = StdRng::seed_from_u64(1);
    let max = 1u64 << s.bits();
    for case in 0..CASES {
        let st = within(&mut rng, &s);
        let e = encode(&s, &st).unwrap();
        assert!(e.clipped.is_empty(), "case {case}: {:?}", e.clipped);
        assert_eq!(e.entries.len(), s.len());
        assert!(e.entries.iter().all(|x| *x < max));
        let d = decode(&s, &as_i64(&e.entries)).unwrap();
        assert_eq!(d.reports, 1.0);
        for k in 0..s.variants() {
            assert_eq!(d.decisions[k], st.decisions[k] as f64);
            assert_eq!(d.exposures[k], st.exposures[k] as f64);
        }
        // Rounding to nearest, or toward zero for a whole group: within
        // one unit of the resolution per entry.
        for (a, b) in [(&d.rewards, &st.rewards), (&d.xy, &st.xy), (&d.xx, &st.xx)] {
            for (x, y) in a.iter().zip(b.iter()) {
                assert!((x - y).abs() <= res, "case {case}: {x} vs {y}");
            }
        }
    }
}

#[test]
fn a_sum_of_reports_decodes_to_the_sum_of_their_statistics() {
    let s = spec();
    let res = 1.0 / s.scale() as f64;
    let mut rng = StdRng::seed_from_u64(2);
    let n = 500;
    let mut sums = vec![0i64; s.len()];
    let mut truth = Stats::zeros(&s);
    let mut dec = vec![0u64; s.variants()];
    for _ in 0..n {
        let st = within(&mut rng, &s);
        for (a, b) in sums.iter_mut().zip(encode(&s, &st).unwrap().entries) {
            *a += b as i64;
        }
        for k in 0..s.variants() {
            dec[k] += st.decisions[k] as u64;
            truth.rewards[k] += st.rewards[k];
        }
        for i in 0..truth.xy.len() {
            truth.xy[i] += st.xy[i];
            truth.xx[i] += st.xx[i];
        }
    }
    let d = decode(&s, &sums).unwrap();
    assert_eq!(d.reports, n as f64);
    for k in 0..s.variants() {
        assert_eq!(d.decisions[k], dec[k] as f64);
        assert!((d.rewards[k] - truth.rewards[k]).abs() <= n as f64 * res);
    }
    for i in 0..truth.xy.len() {
        assert!((d.xy[i] - truth.xy[i]).abs() <= n as f64 * res);
        assert!((d.xx[i] - truth.xx[i]).abs() <= n as f64 * res);
    }
}

#[test]
fn groups_over_their_bound_are_clipped_to_it() {
    let s = spec();
    let b = s.bounds();
    let mut rng = StdRng::seed_from_u64(3);
    for case in 0..CASES {
        let mut st = within(&mut rng, &s);
        // Blow up one group by a random factor (some stay within).
        let f = 10f64.powf(rng.gen_range(-1.0..6.0));
        let which = case % 5;
        match which {
            0 => st
                .decisions
                .iter_mut()
                .for_each(|x| *x = (*x as f64 * f).min(4e9) as u32),
            1 => st
                .exposures
                .iter_mut()
                .for_each(|x| *x = (*x as f64 * f).min(4e9) as u32),
            2 => st.rewards.iter_mut().for_each(|x| *x *= f),
            3 => st.xy.iter_mut().for_each(|x| *x *= f),
            _ => st.xx.iter_mut().for_each(|x| *x *= f),
        }
        let e = encode(&s, &st).unwrap();
        for g in s.groups() {
            let l1: u64 = e.entries[s.range(g)].iter().sum();
            assert!(
                l1 <= s.cap(g),
                "case {case}: {} {l1} > {}",
                g.name(),
                s.cap(g)
            );
        }
        let d = decode(&s, &as_i64(&e.entries)).unwrap();
        let l1 = |xs: &[f64]| xs.iter().map(|x| x.abs()).sum::<f64>();
        let over = match which {
            0 => st.decisions.iter().map(|x| *x as f64).sum::<f64>() > b.decisions as f64,
            1 => st.exposures.iter().map(|x| *x as f64).sum::<f64>() > b.exposures as f64,
            2 => l1(&st.rewards) > b.rewards,
            3 => l1(&st.xy) > b.xy,
            _ => l1(&st.xx) > b.xx,
        };
        let group = [
            Group::Decisions,
            Group::Exposures,
            Group::Rewards,
            Group::Xy,
            Group::Xx,
        ][which];
        assert_eq!(e.clipped.contains(&group), over, "case {case}");
        if over && which >= 2 {
            // Scaled down to the bound, keeping the direction.
            let (got, want, bound) = match which {
                2 => (&d.rewards, &st.rewards, b.rewards),
                3 => (&d.xy, &st.xy, b.xy),
                _ => (&d.xx, &st.xx, b.xx),
            };
            let res = got.len() as f64 / s.scale() as f64;
            assert!(
                (l1(got) - bound).abs() <= res,
                "case {case}: {} vs {bound}",
                l1(got)
            );
            // Each value clipped to its range first, then the group scaled.
            let lo = if which == 3 { -bound } else { 0.0 };
            let want: Vec<f64> = want.iter().map(|y| y.clamp(lo, bound)).collect();
            let f = (bound / l1(&want)).min(1.0);
            for (x, y) in got.iter().zip(want.iter()) {
                assert!((x - y * f).abs() <= 1.0 / s.scale() as f64, "case {case}");
            }
        }
    }
}

#[test]
fn values_outside_their_range_are_clipped_per_entry() {
    let s = spec();
    let mut st = Stats::zeros(&s);
    st.rewards[0] = -3.0; // rewards are never negative
    st.xx[5] = -1.0; // nor a sum of squares
    st.xy[2] = -1e300; // huge: clipped to -bound, then the group is within it
    let e = encode(&s, &st).unwrap();
    let d = decode(&s, &as_i64(&e.entries)).unwrap();
    assert_eq!(d.rewards[0], 0.0);
    assert_eq!(d.xx[5], 0.0);
    assert_eq!(d.xy[2], -s.bounds().xy);
    assert_eq!(e.clipped, vec![Group::Rewards, Group::Xy, Group::Xx]);
}

#[test]
fn non_finite_values_are_refused_with_a_stable_code() {
    let s = spec();
    for (field, v) in [
        ("rewards", f64::NAN),
        ("xy", f64::INFINITY),
        ("xx", f64::NEG_INFINITY),
    ] {
        let mut st = Stats::zeros(&s);
        match field {
            "rewards" => st.rewards[1] = v,
            "xy" => st.xy[7] = v,
            _ => st.xx[0] = v,
        }
        let e = encode(&s, &st).unwrap_err();
        assert_eq!(e.code(), "NON_FINITE");
        assert!(e.message.starts_with(field), "{}", e.message);
    }
    let mut st = Stats::zeros(&s);
    st.xy.pop();
    let e = encode(&s, &st).unwrap_err();
    assert_eq!((e.code(), e.message.contains("xy")), ("WRONG_LENGTH", true));
    assert_eq!(decode(&s, &[0; 3]).unwrap_err().code(), "WRONG_LENGTH");
}

#[test]
fn an_ab_experiment_has_no_learner_groups() {
    let b = spec().bounds();
    let s = Spec::new(4, 0, 1024, b, None).unwrap();
    assert_eq!(s.len(), 13);
    assert_eq!(s.groups().count(), 4);
    let mut st = Stats::zeros(&s);
    st.decisions = vec![3, 2, 1, 0];
    st.exposures = vec![1, 1, 1, 0];
    st.rewards = vec![0.5, 1.0, 0.0, 0.0];
    let e = encode(&s, &st).unwrap();
    assert_eq!(e.entries, vec![1, 3, 2, 1, 0, 1, 1, 1, 0, 512, 1024, 0, 0]);
    assert_eq!(s.budget_share(Group::Rewards), 0.25);
}
