//! Offline policy evaluation (issue #24): the estimators are unbiased and
//! their intervals cover at the stated level on a simulated logging policy
//! with known target values; the engine logs what they need, merges the
//! sums across tabs, and apprentice mode serves only the baseline while its
//! learner learns as one fed the same stream.

#![allow(clippy::needless_range_loop)]

use insitu::eval::{normal_quantile, Logged, Sums, FIXED};
use insitu::{
    Engine, EngineConfig, Hashed, LearnOptions, RankOptions, Rng, Snapshot,
    DEFAULT_MAX_SNAPSHOT_BYTES as MAX,
};

const K: usize = 3;
/// Mean reward of each variant in each of four contexts.
const MU: [[f64; K]; 4] = [
    [0.2, 0.5, 0.3],
    [0.6, 0.1, 0.4],
    [0.3, 0.3, 0.7],
    [0.5, 0.8, 0.2],
];
/// The logging policy's pmf in context x: [0.6, 0.3, 0.1] rotated by x.
fn logging(x: usize) -> [f64; K] {
    let base = [0.6, 0.3, 0.1];
    [base[x % K], base[(x + 1) % K], base[(x + 2) % K]]
}
/// The reward model's scores: the truth, biased (DR stays unbiased).
fn scores(x: usize) -> [f64; K] {
    [MU[x][0] + 0.15, MU[x][1], MU[x][2] - 0.1]
}
/// The `policy` candidate's target pmf (not the logging one).
const TARGET: [f64; K] = [0.1, 0.1, 0.8];

fn argmax(s: &[f64]) -> usize {
    (0..s.len()).fold(0, |g, i| if s[i] > s[g] { i } else { g })
}

/// The true value of each candidate, served then policy, greedy, uniform
/// and each variant: means over the four equally likely contexts.
fn truth() -> Vec<f64> {
    let mut v = vec![0.0; FIXED + K];
    for x in 0..4 {
        let l = logging(x);
        let g = argmax(&scores(x));
        for a in 0..K {
            v[0] += l[a] * MU[x][a] / 4.0;
            v[1] += TARGET[a] * MU[x][a] / 4.0;
            v[3] += MU[x][a] / (4.0 * K as f64);
            v[FIXED + a] += MU[x][a] / 4.0;
        }
        v[2] += MU[x][g] / 4.0;
    }
    v
}

/// `n` logged decisions of the logging policy, seeded.
fn simulate(seed: u64, n: usize) -> Sums {
    let mut rng = Rng::new(seed);
    let mut s = Sums::new(K);
    for _ in 0..n {
        let x = (rng.next_u64() % 4) as usize;
        let l = logging(x);
        let (a, p) = insitu::explore::sample(&l, rng.next_f64());
        let r = f64::from(u8::from(rng.next_f64() < MU[x][a]));
        let log = Logged::new(&TARGET, &scores(x), a, p);
        s.add(a, &log, r);
    }
    s
}

/// Over 300 seeded runs of 1,000 decisions, each estimator's mean is within
/// four standard errors of the truth (unbiased), and its 95% interval
/// covers the truth in 95% ± 3 binomial standard deviations of the runs:
/// sqrt(0.95 × 0.05 / 300) = 0.0126, so [0.912, 0.988].
#[test]
fn estimators_are_unbiased_and_their_intervals_cover() {
    let (runs, n) = (300, 1000);
    let truth = truth();
    let sd = (0.95f64 * 0.05 / runs as f64).sqrt();
    for c in 0..FIXED + K {
        let mut est = [Vec::new(), Vec::new(), Vec::new()];
        let mut covered = [0usize; 3];
        for run in 0..runs {
            let e = simulate(1000 + run as u64, n).estimate(c, 0.95).unwrap();
            for (i, iv) in [e.ips, e.snips, e.dr].into_iter().enumerate() {
                est[i].push(iv.value);
                covered[i] += usize::from(iv.low <= truth[c] && truth[c] <= iv.high);
            }
        }
        for (i, name) in ["ips", "snips", "dr"].into_iter().enumerate() {
            let m = est[i].iter().sum::<f64>() / runs as f64;
            let var = est[i].iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (runs - 1) as f64;
            let se = (var / runs as f64).sqrt();
            // SNIPS is consistent, not unbiased: its bias is O(1/n), far
            // below four standard errors here.
            assert!(
                (m - truth[c]).abs() < 4.0 * se,
                "candidate {c} {name}: mean {m} vs truth {} (se {se})",
                truth[c]
            );
            let cov = covered[i] as f64 / runs as f64;
            assert!(
                (cov - 0.95).abs() <= 3.0 * sd,
                "candidate {c} {name}: coverage {cov}"
            );
        }
    }
}

/// The level sets the width: a 99% interval is wider than a 90% one by
/// the ratio of their normal quantiles.
#[test]
fn the_level_scales_the_interval() {
    let s = simulate(7, 500);
    let a = s.estimate(FIXED + 1, 0.9).unwrap().dr;
    let b = s.estimate(FIXED + 1, 0.99).unwrap().dr;
    let ratio = (b.high - b.low) / (a.high - a.low);
    let want = normal_quantile(0.995) / normal_quantile(0.95);
    assert!((ratio - want).abs() < 1e-9, "{ratio} vs {want}");
    assert_eq!(a.value, b.value);
    for bad in [0.0, 0.3, 1.0, f64::NAN] {
        assert_eq!(s.estimate(0, bad).unwrap_err().code(), "INVALID_OPTION");
    }
    assert_eq!(
        Sums::new(K).estimate(0, 0.95).unwrap_err().code(),
        "NO_DATA"
    );
    // Below an effective sample size of 10, no interval: the first 9
    // decisions (weight 1 each for the served candidate) give none, the
    // 10th does.
    let mut few = Sums::new(K);
    let log = Logged::new(&[0.5, 0.25, 0.25], &[0.1, 0.7, 0.4], 0, 0.5);
    for i in 0..10 {
        let e = few.estimate(0, 0.95);
        if i > 0 {
            let e = e.unwrap();
            assert!(e.ess < insitu::eval::MIN_ESS);
            assert!(e.ips.low.is_nan() && e.dr.high.is_nan() && e.snips.low.is_nan());
            assert!(e.ips.value.is_finite());
        }
        few.add(0, &log, f64::from(i % 2));
    }
    let e = few.estimate(0, 0.95).unwrap();
    assert_eq!(e.ess, 10.0);
    assert!(e.ips.low <= e.ips.value && e.ips.value <= e.ips.high);
}

/// When the weights sum to n (a uniform logging policy evaluated against
/// the uniform candidate: every weight is 1), SNIPS equals IPS, and the
/// served candidate's estimates are the mean reward.
#[test]
fn snips_equals_ips_when_the_weights_sum_to_n() {
    let mut rng = Rng::new(3);
    let mut s = Sums::new(K);
    let uniform = [1.0 / 3.0; K];
    let (mut sum, mut n) = (0.0, 0.0);
    for _ in 0..1000 {
        let x = (rng.next_u64() % 4) as usize;
        let (a, p) = insitu::explore::sample(&uniform, rng.next_f64());
        let r = f64::from(u8::from(rng.next_f64() < MU[x][a]));
        s.add(a, &Logged::new(&uniform, &scores(x), a, p), r);
        sum += r;
        n += 1.0;
    }
    for c in [0, 1, 3] {
        let e = s.estimate(c, 0.95).unwrap();
        assert!((e.snips.value - e.ips.value).abs() < 1e-12, "candidate {c}");
        assert!((e.ess - n).abs() < 1e-6, "candidate {c}: ess {}", e.ess);
        assert!((e.ips.value - sum / n).abs() < 1e-12);
    }
    // Served: DR is the mean reward too, and its lift over itself is 0.
    let e = s.estimate(0, 0.95).unwrap();
    assert!((e.dr.value - sum / n).abs() < 1e-12);
    assert!(e.lift.value.abs() < 1e-12 && e.lift.high - e.lift.low < 1e-9);
}

const OPTIONS: &str = r#"{"variants": ["a", "b", "c"], "seed": 5,
    "features": {"bits": 5, "allow": ["page"]}, "policy": {"type": "egreedy", "epsilon": 0.3}}"#;

fn context(t: usize) -> String {
    format!(r#"{{"context": {{"page": {{"section": "s{}"}}}}}}"#, t % 4)
}

fn rank(e: &mut Engine, t: usize) -> insitu::Decision {
    e.rank(&RankOptions::parse(&context(t)).unwrap(), t as f64)
        .unwrap()
}

/// Rewarded decisions of a slot count with the probability they were made
/// with: the served value is the mean reward, and the `policy` candidate
/// is the served one (the slot serves its policy).
#[test]
fn the_engine_logs_its_decisions_for_the_evaluation() {
    let mut e = Engine::new(EngineConfig::parse(OPTIONS, 1).unwrap());
    assert_eq!(e.evaluation().n, 0.0);
    let mut rewards = 0.0;
    for t in 0..200 {
        let d = rank(&mut e, t);
        let r = if d.variant == "b" { 1.0 } else { 0.0 };
        rewards += r;
        e.reward(d.decision_id.as_deref().unwrap(), r, t as f64)
            .unwrap();
    }
    // A decision not rewarded does not count.
    rank(&mut e, 999);
    let s = e.evaluation();
    assert_eq!(s.n, 200.0);
    let served = s.estimate(0, 0.95).unwrap();
    let policy = s.estimate(1, 0.95).unwrap();
    assert!((served.ips.value - rewards / 200.0).abs() < 1e-12);
    assert_eq!(served.ips, policy.ips);
    assert_eq!(served.snips, policy.snips);
    // `b` always pays: its value is 1 on every estimator that sees it.
    let b = s.estimate(FIXED + 1, 0.95).unwrap();
    assert!((b.snips.value - 1.0).abs() < 1e-12, "{b:?}");
    // Learning from a log with its probability counts too; without, not.
    let learn = |p: &str| {
        format!(r#"{{"context": {{"page": {{"section": "s1"}}}}, "variant": "b", "reward": 1{p}}}"#)
    };
    e.learn(&LearnOptions::parse(&learn("")).unwrap()).unwrap();
    assert_eq!(e.evaluation().n, 200.0);
    e.learn(&LearnOptions::parse(&learn(r#", "probability": 0.5"#)).unwrap())
        .unwrap();
    assert_eq!(e.evaluation().n, 201.0);
    for bad in ["0", "1.5", "-1", "1e-7", "1e-200"] {
        let text = learn(&format!(r#", "probability": {bad}"#));
        let err = e.learn(&LearnOptions::parse(&text).unwrap()).unwrap_err();
        assert_eq!(err.code(), "INVALID_OPTION", "{bad}");
    }
    assert_eq!(e.evaluation().n, 201.0);
}

fn save(e: &mut Engine, store: &mut Option<Vec<u8>>, now: f64) {
    let r = e.sync(store.as_deref(), "hero", now, MAX).unwrap();
    *store = Some(r.bytes);
    assert!(e.commit());
}

/// Two tabs' sums add up once each; a decision made on one page view and
/// rewarded on the next counts with its logged probability; `reset`
/// forgets the sums.
#[test]
fn sums_merge_across_tabs_and_page_views() {
    let mut store = None;
    let mut a = Engine::new(EngineConfig::parse(OPTIONS, 1).unwrap());
    let mut b = Engine::new(EngineConfig::parse(OPTIONS, 2).unwrap());
    for t in 0..5 {
        let d = rank(&mut a, t);
        a.reward(d.decision_id.as_deref().unwrap(), 1.0, 1.0)
            .unwrap();
    }
    for t in 0..3 {
        let d = rank(&mut b, t);
        b.reward(d.decision_id.as_deref().unwrap(), 0.0, 1.0)
            .unwrap();
    }
    let open = rank(&mut a, 7);
    save(&mut a, &mut store, 2.0);
    save(&mut b, &mut store, 3.0);
    save(&mut a, &mut store, 4.0);
    assert_eq!(a.evaluation(), b.evaluation());
    assert_eq!(a.evaluation().n, 8.0);
    let ips = a.evaluation().estimate(0, 0.95).unwrap().ips.value;
    assert!((ips - 5.0 / 8.0).abs() < 1e-12);

    // The next page view settles a's open decision, with a's probability.
    let mut c = Engine::new(EngineConfig::parse(OPTIONS, 3).unwrap());
    let snap = Snapshot::decode(store.as_deref().unwrap(), MAX).unwrap();
    c.restore_snapshot(&snap, "hero", 5.0).unwrap();
    assert_eq!(c.evaluation().n, 8.0);
    c.reward(open.decision_id.as_deref().unwrap(), 1.0, 6.0)
        .unwrap();
    let mut alone = Sums::new(K);
    alone.merge(c.evaluation());
    assert_eq!(alone.n, 9.0);
    let v = FIXED + open.index;
    let before = a.evaluation().estimate(v, 0.95).unwrap().ips.value * 8.0;
    let after = c.evaluation().estimate(v, 0.95).unwrap().ips.value * 9.0;
    assert!(
        (after - before - 1.0 / open.probability).abs() < 1e-9,
        "the reward counts with weight 1/p"
    );
    save(&mut c, &mut store, 7.0);
    save(&mut a, &mut store, 8.0);
    assert_eq!(a.evaluation(), c.evaluation());
    c.reset(9);
    assert_eq!(c.evaluation().n, 0.0);
}

/// A damaged evaluation section starts again and the learning is kept; a
/// newer one is left as it is, and the learning is still stored.
#[test]
fn bad_evaluation_sections_never_cost_the_learning() {
    let mut a = Engine::new(EngineConfig::parse(OPTIONS, 1).unwrap());
    let mut store = None;
    for t in 0..6 {
        let d = rank(&mut a, t);
        a.reward(d.decision_id.as_deref().unwrap(), 1.0, 1.0)
            .unwrap();
    }
    save(&mut a, &mut store, 2.0);
    let good = Snapshot::decode(store.as_deref().unwrap(), MAX).unwrap();
    let body = good.section("eval:hero").unwrap().to_vec();
    for (mutate, frozen) in [
        (
            Box::new(|b: &mut Vec<u8>| b.truncate(b.len() - 3)) as Box<dyn Fn(&mut Vec<u8>)>,
            false,
        ),
        (Box::new(|b: &mut Vec<u8>| b[0] = 0), false),
        // The sign of the decision count: negative.
        (
            Box::new(|b: &mut Vec<u8>| b[1 + 2 + 19 + 1 + 4 + 7] |= 0x80),
            false,
        ),
        (Box::new(|b: &mut Vec<u8>| b[0] = 9), true),
    ] {
        let mut bad = good.clone();
        let mut body = body.clone();
        mutate(&mut body);
        bad.set_section("eval:hero", body.clone());
        let bytes = bad.encode(MAX).unwrap();
        let mut b = Engine::new(EngineConfig::parse(OPTIONS, 2).unwrap());
        let r = b.restore(&bytes, "hero", 3.0, MAX).unwrap();
        assert_eq!(b.updates(), a.updates(), "the learning is restored");
        assert!(!r.overwrote);
        let d = rank(&mut b, 9);
        b.reward(d.decision_id.as_deref().unwrap(), 1.0, 4.0)
            .unwrap();
        let out = b.sync(Some(&bytes), "hero", 5.0, MAX).unwrap().bytes;
        let out = Snapshot::decode(&out, MAX).unwrap();
        if frozen {
            assert_eq!(out.section("eval:hero"), Some(&body[..]), "left alone");
        } else {
            // Started again: only this page view's reward.
            assert_eq!(b.evaluation().n, 1.0);
        }
        assert!(out.section("learner:hero").unwrap().len() > 100);
    }
}

/// Apprentice mode: over 10⁴ seeded decisions the slot serves only the
/// baseline, with probability 1; its learner ends where a learner fed the
/// same (context, variant, reward) stream with `learn` ends; and its
/// evaluation says how often the learner's greedy pick matched.
#[test]
fn apprentice_serves_the_baseline_and_learns_in_the_shadow() {
    let cfg = || EngineConfig::parse(OPTIONS, 1).unwrap();
    let (mut shadow, mut fed) = (Engine::new(cfg()), Engine::new(cfg()));
    let mut rng = Rng::new(11);
    let baseline = 2;
    for t in 0..10_000 {
        let x = vec![Hashed::new(0, (t % 4) as u32 * 7919, 1.0)];
        let c = shadow
            .rank_serving(&x, None, None, false, t as f64, Some(baseline))
            .unwrap();
        assert_eq!((c.index, c.probability), (baseline, 1.0));
        let pmf = shadow.last_pmf();
        assert!(pmf
            .iter()
            .enumerate()
            .all(|(i, &q)| q == f64::from(u8::from(i == baseline))));
        let r = f64::from(u8::from(rng.next_f64() < 0.4));
        shadow.reward_id(c.epoch, c.counter, r, t as f64).unwrap();
        fed.learn_hashed(baseline, &x, None, r, None).unwrap();
    }
    assert_eq!(shadow.updates(), fed.updates());
    let (a, b) = (
        shadow.scorer().arm_mean(baseline).unwrap().0.to_vec(),
        fed.scorer().arm_mean(baseline).unwrap().0.to_vec(),
    );
    assert_eq!(a, b, "the same posterior");
    let s = shadow.evaluation();
    assert_eq!(s.n, 10_000.0);
    assert!(s.matches > 0.0 && s.matches <= s.n);
    // The baseline's own value is the served value, weight 1 each time.
    let served = s.estimate(0, 0.95).unwrap();
    let base = s.estimate(FIXED + baseline, 0.95).unwrap();
    assert_eq!(served.ips, base.ips);
    // A variant never served has no interval: nothing logged can say how
    // wrong its estimate is.
    let never = s.estimate(FIXED, 0.95).unwrap();
    assert_eq!(never.ess, 0.0);
    for i in [never.ips, never.dr, never.lift] {
        assert!(
            i.value.is_finite() && i.low.is_nan() && i.high.is_nan(),
            "{i:?}"
        );
    }
    // An unknown baseline changes nothing.
    let before = shadow.counter();
    let x = vec![Hashed::new(0, 1, 1.0)];
    let err = shadow
        .rank_serving(&x, None, None, false, 1e5, Some(3))
        .unwrap_err();
    assert_eq!(err.code(), "UNKNOWN_VARIANT");
    assert_eq!(shadow.counter(), before);
}

/// A decision the first-decision module made and the full engine took
/// over logs the probability `rank` would have logged: scored again on the
/// same state, or as the first-decision module saw it when the full engine
/// has learned since (the page's log replays a reward between decisions).
#[test]
fn a_decision_taken_over_logs_what_the_first_decision_saw() {
    let x = vec![Hashed::new(0, 42, 1.0)];
    let mut ranked = Engine::new(EngineConfig::parse(OPTIONS, 1).unwrap());
    let mut taken = ranked.clone();
    let mut later = ranked.clone();
    let c = ranked.rank_hashed(&x, None, None, false, 0.0).unwrap();
    let (pmf, scores) = (ranked.last_pmf().to_vec(), ranked.last_scores().to_vec());
    let t = taken
        .take_over(&x, None, c.index, None, false, 0.0, false, None)
        .unwrap();
    assert_eq!(
        (t.seed, t.counter, t.probability),
        (c.seed, c.counter, c.probability)
    );
    // The full engine learned from earlier rewards before this take-over:
    // its own pmf now differs, and what the decision saw is logged.
    for _ in 0..20 {
        later.learn_hashed(c.index, &x, None, 0.0, None).unwrap();
    }
    let seen = (&pmf[..], &scores[..], c.probability);
    let l = later
        .take_over(&x, None, c.index, None, false, 0.0, false, Some(seen))
        .unwrap();
    assert_eq!((l.seed, l.probability), (c.seed, c.probability));
    for e in [&mut ranked, &mut taken, &mut later] {
        e.reward_id(c.epoch, c.counter, 1.0, 1.0).unwrap();
    }
    assert_eq!(ranked.evaluation(), taken.evaluation());
    assert_eq!(ranked.evaluation(), later.evaluation());
}

/// The evaluation gives way to learning when the snapshot nears its cap:
/// its logged decisions go before any pending decision is trimmed, and the
/// learner is stored whole.
#[test]
fn the_evaluation_gives_way_to_learning_at_the_size_cap() {
    let mut e = Engine::new(EngineConfig::parse(OPTIONS, 1).unwrap());
    for t in 0..40 {
        let d = rank(&mut e, t);
        if t % 2 == 0 {
            e.reward(d.decision_id.as_deref().unwrap(), 1.0, 1.0)
                .unwrap();
        }
    }
    let full = e.sync(None, "hero", 2.0, MAX).unwrap().bytes;
    let eval = |b: &[u8]| {
        Snapshot::decode(b, MAX)
            .unwrap()
            .section("eval:hero")
            .map(<[u8]>::len)
    };
    let with_logs = eval(&full).unwrap();
    let sums_only = 1 + 2 + 19 + 1 + 4 + 16 + (4 + 3) * 64 + 4;
    assert!(
        with_logs > sums_only + 20 * 40,
        "20 logged pending decisions"
    );
    // A cap the learner and the sums fit under, but not the logs.
    let cap = full.len() - (with_logs - sums_only) + 8;
    let r = e.sync(None, "hero", 2.0, cap).unwrap();
    assert_eq!(r.trimmed, 0, "no pending decision was left out");
    assert_eq!(eval(&r.bytes), Some(sums_only));
    // Under a cap the sums do not fit either, the learner is still stored.
    let cap = full.len() - with_logs - 10;
    let r = e.sync(None, "hero", 2.0, cap).unwrap();
    let snap = Snapshot::decode(&r.bytes, MAX).unwrap();
    assert!(snap.section("learner:hero").is_some());
    assert!(snap.section("eval:hero").is_none() || r.trimmed > 0);
}
