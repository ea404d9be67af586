//! A/B allocation: GrowthBook compatibility (golden fixtures), statistical
//! properties of assignment (χ² tests at fixed seeds), the weight-change
//! rule, targeting, configuration errors, and the bandit mode.

use insitu::{
    growthbook_hash, Allocator, Experiments, Reason, UnitSource, DEFAULT_MAX_SNAPSHOT_BYTES,
};
use serde_json::{json, Value};

const DAY: f64 = 86_400_000.0;
const MAX: usize = DEFAULT_MAX_SNAPSHOT_BYTES;

/// χ² critical values at p = 0.001 for 1 to 6 degrees of freedom: a correct
/// implementation fails one of these tests with probability 0.001.
const CHI2_999: [f64; 6] = [10.828, 13.816, 16.266, 18.467, 20.515, 22.458];

fn experiments(v: Value) -> Experiments {
    Experiments::parse(&v.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn allocator(v: Value) -> Allocator {
    Allocator::new(experiments(v), 42)
}

/// The variant index `unit` gets in experiment 0 (None: not in it).
fn assign(a: &mut Allocator, index: usize, unit: &str) -> Option<usize> {
    a.set_site_unit(Some(unit)).unwrap();
    let r = a.assign_attributes(index, None, 0.0).unwrap();
    r.in_experiment.then_some(r.variant)
}

fn chi2(observed: &[f64], expected: &[f64]) -> f64 {
    observed
        .iter()
        .zip(expected)
        .map(|(o, e)| (o - e) * (o - e) / e)
        .sum()
}

fn fixtures() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/growthbook.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn growthbook_hashes_match_the_golden_fixtures() {
    let f = fixtures();
    let hashes = f["hashes"].as_array().unwrap();
    assert!(hashes.len() >= 100);
    for h in hashes {
        let got = growthbook_hash(
            h["seed"].as_str().unwrap(),
            h["value"].as_str().unwrap(),
            h["version"].as_u64().unwrap() as u32,
        );
        assert_eq!(got, h["n"].as_f64(), "{h}");
    }
}

#[test]
fn growthbook_assignments_match_the_golden_fixtures() {
    let f = fixtures();
    let mut checked = 0;
    for exp in f["experiments"].as_array().unwrap() {
        let weights: Vec<f64> = exp["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_f64().unwrap())
            .collect();
        let mut cfg = json!({
            "key": exp["key"],
            "variants": (0..weights.len()).map(|i| format!("v{i}")).collect::<Vec<_>>(),
            "weights": weights,
            "coverage": exp["coverage"],
            "hash": format!("growthbook/{}", exp["hashVersion"]),
        });
        if let Some(seed) = exp.get("seed") {
            cfg["seed"] = seed.clone();
        }
        if let Some(ns) = exp.get("namespace") {
            cfg["namespace"] = json!({"name": ns[0], "range": [ns[1], ns[2]]});
        }
        let mut a = allocator(json!([cfg]));
        for c in exp["cases"].as_array().unwrap() {
            let unit = c["unit"].as_str().unwrap();
            if unit.is_empty() {
                continue; // no unit: insitu refuses an empty id, GrowthBook skips it
            }
            a.set_site_unit(Some(unit)).unwrap();
            let r = a.assign_attributes(0, None, 0.0).unwrap();
            assert_eq!(
                r.in_experiment,
                c["inExperiment"].as_bool().unwrap(),
                "{} {unit:?}",
                exp["key"]
            );
            assert_eq!(
                r.variant as u64,
                c["variant"].as_u64().unwrap(),
                "{} {unit:?}",
                exp["key"]
            );
            if let Some(n) = c["bucket"].as_f64() {
                assert_eq!(r.bucket, Some(n));
            }
            checked += 1;
        }
    }
    assert!(checked > 1000, "only {checked} cases");
}

/// Counts of variants over `n` unit keys `u0..`.
fn counts(a: &mut Allocator, k: usize, n: usize) -> (Vec<f64>, usize) {
    let mut c = vec![0.0; k];
    let mut out = 0;
    for i in 0..n {
        match assign(a, 0, &format!("u{i}")) {
            Some(v) => c[v] += 1.0,
            None => out += 1,
        }
    }
    (c, out)
}

#[test]
fn assignment_is_uniform_over_a_million_units_for_several_weight_vectors() {
    let n = 1_000_000;
    for hash in ["insitu/1", "growthbook/2"] {
        for weights in [
            vec![0.5, 0.5],
            vec![0.1, 0.9],
            vec![0.2, 0.3, 0.5],
            vec![0.25; 4],
            vec![0.05, 0.15, 0.3, 0.5],
        ] {
            let k = weights.len();
            let mut a = allocator(json!([{
                "key": "uniform", "variants": (0..k).map(|i| format!("v{i}")).collect::<Vec<_>>(),
                "weights": weights, "hash": hash,
            }]));
            let (c, out) = counts(&mut a, k, n);
            assert_eq!(out, 0);
            let expected: Vec<f64> = weights.iter().map(|w| w * n as f64).collect();
            let x2 = chi2(&c, &expected);
            assert!(
                x2 < CHI2_999[k - 2],
                "{hash} {weights:?}: χ² = {x2:.2} (df {}), counts {c:?}",
                k - 1
            );
        }
    }
}

#[test]
fn coverage_admits_its_fraction_and_only_adds_units_as_it_grows() {
    let n = 200_000;
    let cfg = |coverage: f64| {
        allocator(json!([{"key": "cov", "variants": ["a", "b"], "coverage": coverage}]))
    };
    let (mut low, mut high) = (cfg(0.2), cfg(0.6));
    let mut in_low = 0.0;
    for i in 0..n {
        let u = format!("u{i}");
        let (l, h) = (assign(&mut low, 0, &u), assign(&mut high, 0, &u));
        if let Some(v) = l {
            in_low += 1.0;
            // Monotone: a unit covered at 20% is covered at 60%, in the same variant.
            assert_eq!(h, Some(v), "{u}");
        }
    }
    let x2 = chi2(
        &[in_low, n as f64 - in_low],
        &[0.2 * n as f64, 0.8 * n as f64],
    );
    assert!(x2 < CHI2_999[0], "χ² = {x2}");
}

#[test]
fn experiments_in_different_namespaces_are_independent() {
    // Joint table of two experiments over 10^6 units, χ² test of independence
    // with (2 - 1)(3 - 1) = 2 degrees of freedom.
    for hash in ["insitu/1", "growthbook/2"] {
        let mut a = allocator(json!([
            {"key": "first", "variants": ["a", "b"], "hash": hash},
            {"key": "second", "variants": ["x", "y", "z"], "weights": [0.2, 0.3, 0.5], "hash": hash,
             "namespace": {"name": "other", "range": [0, 1]}},
        ]));
        let n = 1_000_000;
        let mut t = [[0.0f64; 3]; 2];
        for i in 0..n {
            let u = format!("u{i}");
            let x = assign(&mut a, 0, &u).unwrap();
            let y = assign(&mut a, 1, &u).unwrap();
            t[x][y] += 1.0;
        }
        let rows: Vec<f64> = t.iter().map(|r| r.iter().sum()).collect();
        let cols: Vec<f64> = (0..3).map(|j| t[0][j] + t[1][j]).collect();
        let mut x2 = 0.0;
        for i in 0..2 {
            for j in 0..3 {
                let e = rows[i] * cols[j] / n as f64;
                x2 += (t[i][j] - e).powi(2) / e;
            }
        }
        assert!(x2 < CHI2_999[1], "{hash}: χ² = {x2:.2}, table {t:?}");
    }
}

#[test]
fn experiments_in_one_namespace_never_share_a_unit() {
    for hash in ["insitu/1", "growthbook/2"] {
        let mut a = allocator(json!([
            {"key": "left", "variants": ["a", "b"], "hash": hash, "namespace": {"name": "hero", "range": [0, 0.3]}},
            {"key": "right", "variants": ["a", "b"], "hash": hash, "namespace": {"name": "hero", "range": [0.3, 1]}},
        ]));
        let n = 200_000;
        let (mut left, mut right) = (0.0, 0.0);
        for i in 0..n {
            let u = format!("u{i}");
            let (l, r) = (assign(&mut a, 0, &u), assign(&mut a, 1, &u));
            assert!(l.is_none() || r.is_none(), "{hash}: {u} is in both");
            assert!(l.is_some() || r.is_some(), "{hash}: {u} is in neither");
            left += l.is_some() as u8 as f64;
            right += r.is_some() as u8 as f64;
        }
        // GrowthBook places namespaces with its 1,000-bucket hash: still 30%.
        let x2 = chi2(&[left, right], &[0.3 * n as f64, 0.7 * n as f64]);
        assert!(x2 < CHI2_999[0], "{hash}: χ² = {x2}");
    }
}

#[test]
fn a_weight_change_moves_units_only_into_or_out_of_that_variant() {
    // Variant a goes from 0.5 to 0.3; b and c keep their relative weights.
    let before = json!([{"key": "w", "variants": ["a", "b", "c"], "weights": [0.5, 0.25, 0.25]}]);
    let after = json!([{"key": "w", "variants": ["a", "b", "c"], "weights": [0.3, 0.35, 0.35]}]);
    let (mut x, mut y) = (allocator(before), allocator(after));
    let n = 200_000;
    let mut left_a = 0.0;
    let mut was_a = 0.0;
    for i in 0..n {
        let u = format!("u{i}");
        let (p, q) = (
            assign(&mut x, 0, &u).unwrap(),
            assign(&mut y, 0, &u).unwrap(),
        );
        if p != 0 {
            // Deterministic, not statistical: b and c units never move.
            assert_eq!(p, q, "{u} moved from variant {p} to {q}");
        } else {
            was_a += 1.0;
            if q != 0 {
                left_a += 1.0;
            }
        }
    }
    // Exactly the share the change requires leaves a: (0.5 - 0.3) / 0.5 of its units.
    let x2 = chi2(&[left_a, was_a - left_a], &[0.4 * was_a, 0.6 * was_a]);
    assert!(x2 < CHI2_999[0], "χ² = {x2}, {left_a} of {was_a} left");

    // Reordering variants or adding one to the end does not move anyone
    // between the existing variants (ids, not positions, seed the draws).
    let mut reordered =
        allocator(json!([{"key": "w", "variants": ["c", "a", "b"], "weights": [0.25, 0.5, 0.25]}]));
    let mut x =
        allocator(json!([{"key": "w", "variants": ["a", "b", "c"], "weights": [0.5, 0.25, 0.25]}]));
    for i in 0..20_000 {
        let u = format!("u{i}");
        let p = assign(&mut x, 0, &u).unwrap();
        let q = assign(&mut reordered, 0, &u).unwrap();
        assert_eq!(["a", "b", "c"][p], ["c", "a", "b"][q]);
    }
}

#[test]
fn holdouts_take_the_same_units_out_of_every_experiment_using_them() {
    let hold = json!({"key": "global", "fraction": 0.1});
    let mut a = allocator(json!([
        {"key": "one", "variants": ["a", "b"], "holdout": hold},
        {"key": "two", "variants": ["a", "b", "c"], "holdout": hold},
    ]));
    let n = 100_000;
    let mut held = 0.0;
    for i in 0..n {
        a.set_site_unit(Some(&format!("u{i}"))).unwrap();
        let r1 = a.assign_attributes(0, None, 0.0).unwrap();
        let r2 = a.assign_attributes(1, None, 0.0).unwrap();
        assert_eq!(r1.reason == Reason::Holdout, r2.reason == Reason::Holdout);
        if r1.reason == Reason::Holdout {
            held += 1.0;
            assert!(!r1.in_experiment && r1.variant == 0 && r1.probability == 1.0);
        }
    }
    let x2 = chi2(&[held, n as f64 - held], &[0.1 * n as f64, 0.9 * n as f64]);
    assert!(x2 < CHI2_999[0], "χ² = {x2}");
}

#[test]
fn targeting_reads_attributes_strictly() {
    let mut a = allocator(
        json!([{"key": "t", "variants": ["a", "b"], "fallback": "b", "targeting": [
            {"attribute": "country", "in": ["DE", "AT"]},
            {"attribute": "behavior.sessions", "range": [3, null]},
            {"attribute": "plan", "exists": false},
            {"attribute": "beta", "equals": true},
        ]}]),
    );
    a.set_site_unit(Some("unit-1")).unwrap();
    let run = |a: &mut Allocator, attrs: Value| {
        a.assign_attributes(0, Some(&attrs.to_string()), 0.0)
            .unwrap()
    };
    let base = json!({"country": "DE", "behavior": {"sessions": 3}, "beta": true});
    assert!(
        run(&mut a, base.clone()).in_experiment,
        "the minimum of a range is inside it"
    );
    let cases = [
        ("country", json!("FR")),
        ("country", json!(null)),
        ("country", json!(["DE"])),
        ("behavior", json!({"sessions": 2.999})),
        ("behavior", json!({"sessions": "3"})),
        ("behavior", json!(3)),
        ("plan", json!("pro")),
        ("beta", json!("true")),
        ("beta", json!(1)),
    ];
    for (k, v) in cases {
        let mut attrs = base.clone();
        attrs[k] = v.clone();
        let r = run(&mut a, attrs);
        assert!(!r.in_experiment, "{k} = {v} should not be targeted");
        assert_eq!(
            (r.reason, r.variant),
            (Reason::NotTargeted, 1),
            "the fallback is b"
        );
    }
    // `plan: null` is absent, so `exists: false` holds.
    let mut attrs = base.clone();
    attrs["plan"] = Value::Null;
    assert!(run(&mut a, attrs).in_experiment);
    // No attributes at all: every test but `exists: false` fails.
    assert_eq!(
        a.assign_attributes(0, None, 0.0).unwrap().reason,
        Reason::NotTargeted
    );
    // A range's maximum is outside it.
    let mut b = allocator(
        json!([{"key": "t", "variants": ["a", "b"], "targeting": [{"attribute": "n", "range": [null, 10]}]}]),
    );
    b.set_site_unit(Some("u")).unwrap();
    assert!(run(&mut b, json!({"n": -1e300})).in_experiment);
    assert!(!run(&mut b, json!({"n": 10})).in_experiment);
    // Attributes that are not JSON are an INVALID_CONTEXT.
    assert_eq!(
        b.assign_attributes(0, Some("{"), 0.0).unwrap_err().code(),
        "INVALID_CONTEXT"
    );
}

#[test]
fn bad_configurations_are_refused_naming_the_field() {
    let ok = json!({"key": "k", "variants": ["a", "b"]});
    let with = |k: &str, v: Value| {
        let mut e = ok.clone();
        e[k] = v;
        json!([e])
    };
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "experiments"),
        (json!([7]), "experiments[0]"),
        (with("weights", json!([0.6, 0.6])), "experiments[0].weights"),
        (with("weights", json!([0.5, 0.4])), "experiments[0].weights"),
        (
            with("weights", json!([1.5, -0.5])),
            "experiments[0].weights[1]",
        ),
        (
            with("weights", json!([0.5, null])),
            "experiments[0].weights[1]",
        ),
        (with("weights", json!([1])), "experiments[0].weights"),
        (with("colour", json!("red")), "experiments[0].colour"),
        (json!([ok, ok]), "experiments[1].key"),
        (
            with("variants", json!(["a", "a"])),
            "experiments[0].variants[1]",
        ),
        (with("variants", json!(["a"])), "experiments[0].variants"),
        (
            with("variants", json!(["a", "b c"])),
            "experiments[0].variants[1]",
        ),
        (with("coverage", json!(1.5)), "experiments[0].coverage"),
        (with("fallback", json!("z")), "experiments[0].fallback"),
        (with("hash", json!("md5")), "experiments[0].hash"),
        (with("seed", json!("")), "experiments[0].seed"),
        (
            with("holdout", json!({"key": "h", "fraction": 1})),
            "experiments[0].holdout.fraction",
        ),
        (
            with("holdout", json!({"fraction": 0.1})),
            "experiments[0].holdout.key",
        ),
        (
            with("namespace", json!({"name": "n", "range": [0.5, 0.5]})),
            "experiments[0].namespace.range",
        ),
        (
            with("targeting", json!([{"attribute": "a"}])),
            "experiments[0].targeting[0]",
        ),
        (
            with(
                "targeting",
                json!([{"attribute": "a", "equals": 1, "exists": true}]),
            ),
            "experiments[0].targeting[0]",
        ),
        (
            with("targeting", json!([{"attribute": "a", "in": []}])),
            "experiments[0].targeting[0].in",
        ),
        (
            with("targeting", json!([{"attribute": "a", "range": [5, 1]}])),
            "experiments[0].targeting[0].range",
        ),
        (
            with(
                "targeting",
                json!([{"attribute": "a", "range": [null, null]}]),
            ),
            "experiments[0].targeting[0].range",
        ),
        (
            with("targeting", json!([{"attribute": "a", "equals": {"x": 1}}])),
            "experiments[0].targeting[0].equals",
        ),
        (
            with("allocation", json!({"type": "ucb"})),
            "experiments[0].allocation.type",
        ),
        (
            with(
                "allocation",
                json!({"type": "thompson", "minProbability": 0.6}),
            ),
            "experiments[0].allocation.minProbability",
        ),
        (
            with(
                "allocation",
                json!({"type": "thompson", "prior": {"a": [-1, 3]}}),
            ),
            "experiments[0].allocation.prior.a",
        ),
        (
            with(
                "allocation",
                json!({"type": "thompson", "prior": {"zz": [1, 3]}}),
            ),
            "experiments[0].allocation.prior.zz",
        ),
        (
            with("allocation", json!({"type": "thompson", "samples": 0})),
            "experiments[0].allocation.samples",
        ),
    ];
    for (cfg, field) in cases {
        let e = Experiments::parse(&cfg.to_string()).expect_err(&cfg.to_string());
        assert_eq!(e.code(), "INVALID_EXPERIMENT", "{cfg}");
        assert!(e.to_string().contains(&format!("`{field}`")), "{cfg}: {e}");
    }
    // Weights with thompson allocation are a contradiction, not ignored.
    let mut e = ok.clone();
    e["weights"] = json!([0.5, 0.5]);
    e["allocation"] = json!({"type": "thompson"});
    assert_eq!(
        Experiments::parse(&json!([e]).to_string())
            .unwrap_err()
            .code(),
        "INVALID_EXPERIMENT"
    );
    // Duplicate JSON keys are refused by the reader.
    let dup = r#"[{"key": "k", "key": "j", "variants": ["a", "b"]}]"#;
    assert_eq!(
        Experiments::parse(dup).unwrap_err().code(),
        "INVALID_EXPERIMENT"
    );
    // Overlapping ranges in one namespace name both experiments.
    let e = Experiments::parse(
        &json!([
            {"key": "one", "variants": ["a", "b"], "namespace": {"name": "n", "range": [0, 0.6]}},
            {"key": "two", "variants": ["a", "b"], "namespace": {"name": "n", "range": [0.5, 1]}},
        ])
        .to_string(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("experiments[1].namespace.range") && e.to_string().contains("`one`"),
        "{e}"
    );
    // Weights within float rounding of 1 are fine.
    experiments(json!([{"key": "k", "variants": ["a", "b", "c"], "weights": [0.1, 0.2, 0.7]}]));
    // An unknown key at run time.
    assert_eq!(
        experiments(json!([ok])).index("nope").unwrap_err().code(),
        "UNKNOWN_EXPERIMENT"
    );
}

#[test]
fn without_a_unit_every_experiment_serves_its_fallback() {
    let mut a = allocator(json!([{"key": "k", "variants": ["a", "b"], "fallback": "b"}]));
    assert_eq!(a.unit().1, UnitSource::None);
    let r = a.assign_attributes(0, None, 0.0).unwrap();
    assert_eq!(
        (r.in_experiment, r.reason, r.variant, r.new_exposure),
        (false, Reason::NoUnit, 1, false)
    );
    assert!(a.exposures().is_empty());
    assert_eq!(
        a.set_site_unit(Some("")).unwrap_err().code(),
        "INVALID_OPTION"
    );
}

#[test]
fn the_device_seed_and_exposures_survive_a_reload_and_exposures_log_once() {
    let cfg =
        json!([{"key": "k", "variants": ["a", "b", "c"]}, {"key": "j", "variants": ["x", "y"]}]);
    let mut tab = allocator(cfg.clone());
    assert!(tab.set_device_unit("d:0123456789abcdef").unwrap());
    let first = tab.assign_attributes(0, None, 1000.0).unwrap();
    assert!(first.new_exposure && first.in_experiment);
    let again = tab.assign_attributes(0, None, 2000.0).unwrap();
    assert_eq!((again.variant, again.new_exposure), (first.variant, false));
    let stored = tab.sync(None, 3000.0, MAX, DAY, false).unwrap();
    assert!(tab.commit());

    // A reload: a fresh allocator restores the seed, so the same variant,
    // and the exposure is already logged.
    let mut reloaded = Allocator::new(experiments(cfg), 7);
    reloaded.restore(&stored, 4000.0, MAX).unwrap();
    assert_eq!(
        reloaded.unit(),
        (Some("d:0123456789abcdef"), UnitSource::Device)
    );
    assert!(
        !reloaded.set_device_unit("d:other").unwrap(),
        "the stored seed is kept"
    );
    let r = reloaded.assign_attributes(0, None, 5000.0).unwrap();
    assert_eq!((r.variant, r.new_exposure), (first.variant, false));
    assert_eq!(reloaded.exposures().len(), 1);
    assert_eq!(reloaded.exposures()[0].at, 1000.0);
    // A site-supplied id is a different unit: its own exposure.
    reloaded.set_site_unit(Some("user-9")).unwrap();
    assert!(
        reloaded
            .assign_attributes(0, None, 6000.0)
            .unwrap()
            .new_exposure
    );
    // Exposures older than the retention are dropped on the next write.
    let bytes = reloaded
        .sync(Some(&stored), 1000.0 + DAY + 1.0, MAX, DAY, false)
        .unwrap();
    reloaded.commit();
    let mut third = Allocator::new(Experiments::default(), 1);
    third.restore(&bytes, 0.0, MAX).unwrap();
    assert_eq!(
        third.exposures().len(),
        1,
        "the first exposure expired, the site unit's stayed"
    );
    // Consent none: the seed and its exposures go.
    reloaded.set_site_unit(None).unwrap();
    reloaded.drop_device_unit();
    assert_eq!(reloaded.unit().1, UnitSource::None);
}

fn bandit(extra: Value) -> Value {
    let mut e = json!({"key": "b", "variants": ["a", "b", "c"],
        "allocation": {"type": "thompson", "rewardWindowMs": 1000}});
    for (k, v) in extra.as_object().unwrap() {
        e["allocation"][k] = v.clone();
    }
    json!([e])
}

/// Bernoulli rewards from a fixed stream (splitmix-style), so tests replay.
struct Coin(u64);
impl Coin {
    fn flip(&mut self, p: f64) -> bool {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
}

/// Total (successes, failures) of the `bandit` experiment in stored bytes,
/// as a fresh page restoring them sees it.
fn stored_counts(bytes: &[u8]) -> (f64, f64) {
    let mut reader = allocator(bandit(json!({})));
    reader.restore(bytes, 0.0, MAX).unwrap();
    let counts = reader.bandit_counts(0).unwrap();
    (
        counts.iter().map(|c| c.0).sum(),
        counts.iter().map(|c| c.1).sum(),
    )
}

#[test]
fn the_bandit_learns_which_variant_converts() {
    let rates = [0.05, 0.25, 0.05];
    let mut a = allocator(bandit(json!({})));
    a.set_device_unit("d:x").unwrap();
    let mut coin = Coin(3);
    let mut late = [0.0; 3];
    let trials = 3000;
    for t in 0..trials {
        let now = t as f64 * 1000.0; // each trial's window ends as the next starts
        let r = a.assign_attributes(0, None, now).unwrap();
        assert!(
            r.probability >= 0.05 - 1e-12,
            "the floor holds: {}",
            r.probability
        );
        if coin.flip(rates[r.variant]) {
            a.reward(0, 1.0, now + 10.0).unwrap();
        }
        if t >= trials - 500 {
            late[r.variant] += 1.0;
        }
    }
    // The floor keeps 5% on each loser; the winner should take most of the rest.
    assert!(late[1] / 500.0 > 0.75, "late allocation {late:?}");
    let counts = a.bandit_counts(0).unwrap();
    let total: f64 = counts.iter().map(|c| c.0 + c.1).sum();
    assert_eq!(
        total,
        (trials - 1) as f64,
        "every finished trial counted once"
    );
}

#[test]
fn bandit_probabilities_are_the_serving_probabilities() {
    // Two nearly equal arms under a strong prior (so the counts barely move):
    // E[1{served b} / p] = 1 exactly when p is the probability b was served
    // with. Over n trials the mean has sd sqrt((1/P(b) - 1) / n).
    let prior = json!({"a": [300000, 700000], "b": [300300, 699700]});
    let mut a = Allocator::new(
        experiments(json!([{"key": "b", "variants": ["a", "b"],
            "allocation": {"type": "thompson", "prior": prior, "rewardWindowMs": 1, "samples": 64}}])),
        9,
    );
    a.set_device_unit("d:x").unwrap();
    let n = 4000;
    let (mut ipw, mut served_b) = (0.0, 0.0);
    for t in 0..n {
        let r = a.assign_attributes(0, None, t as f64).unwrap();
        if r.variant == 1 {
            ipw += 1.0 / r.probability;
            served_b += 1.0;
        }
    }
    let p_b = served_b / n as f64;
    let mean = ipw / n as f64;
    let sd = ((1.0 / p_b - 1.0) / n as f64).sqrt();
    assert!(
        (mean - 1.0).abs() < 5.0 * sd,
        "IPW mean {mean}, sd {sd}, P(b) {p_b}"
    );
    assert!(
        p_b > 0.55 && p_b < 0.85,
        "b is the better arm by about 0.46 sd: {p_b}"
    );
}

#[test]
fn a_bandit_trial_is_sticky_within_its_window_and_replays_from_its_seed() {
    let mut a = allocator(bandit(json!({})));
    let mut twin = allocator(bandit(json!({})));
    for x in [&mut a, &mut twin] {
        x.set_device_unit("d:x").unwrap();
    }
    let first = a.assign_attributes(0, None, 0.0).unwrap();
    let seed = first.seed.unwrap();
    for t in [1.0, 500.0, 999.0] {
        let r = a.assign_attributes(0, None, t).unwrap();
        assert_eq!(
            (r.variant, r.seed, r.probability),
            (first.variant, Some(seed), first.probability)
        );
    }
    assert_eq!(
        twin.assign_attributes(0, None, 0.0).unwrap(),
        first,
        "same seed, same history: same trial"
    );
    let next = a.assign_attributes(0, None, 1000.0).unwrap();
    assert_ne!(next.seed, Some(seed), "a new trial after the window");
    let counts = a.bandit_counts(0).unwrap();
    assert_eq!(
        counts[first.variant],
        (0.0, 1.0),
        "the unrewarded trial is one failure"
    );
}

#[test]
fn bandit_rewards_are_checked() {
    let mut a = allocator(bandit(json!({})));
    a.set_device_unit("d:x").unwrap();
    assert_eq!(
        a.reward(0, 1.0, 0.0).unwrap_err().code(),
        "UNKNOWN_DECISION"
    );
    a.assign_attributes(0, None, 0.0).unwrap();
    for bad in [1.5, -0.1, f64::NAN] {
        assert_eq!(a.reward(0, bad, 1.0).unwrap_err().code(), "INVALID_REWARD");
    }
    assert_eq!(
        a.reward(0, 1.0, 1000.0).unwrap_err().code(),
        "DECISION_EXPIRED"
    );
    a.reward(0, 0.5, 10.0).unwrap();
    assert_eq!(
        a.reward(0, 1.0, 20.0).unwrap_err().code(),
        "DUPLICATE_REWARD"
    );
    assert_eq!(
        a.reward(5, 1.0, 20.0).unwrap_err().code(),
        "UNKNOWN_EXPERIMENT"
    );
    let mut fixed = allocator(json!([{"key": "f", "variants": ["a", "b"]}]));
    fixed.set_device_unit("d:x").unwrap();
    fixed.assign_attributes(0, None, 0.0).unwrap();
    assert_eq!(
        fixed.reward(0, 1.0, 1.0).unwrap_err().code(),
        "UNKNOWN_DECISION"
    );
}

#[test]
fn two_tabs_merge_bandit_counts_without_losing_or_doubling_any() {
    let cfg = bandit(json!({}));
    let mut stored: Option<Vec<u8>> = None;
    let mut tabs = [
        Allocator::new(experiments(cfg.clone()), 1),
        Allocator::new(experiments(cfg), 2),
    ];
    for t in &mut tabs {
        t.set_device_unit("d:x").unwrap();
    }
    let mut settled = 0.0;
    for round in 0..200 {
        for (i, tab) in tabs.iter_mut().enumerate() {
            let now = (round * 2000 + i * 1001) as f64;
            tab.assign_attributes(0, None, now).unwrap();
            if tab.reward(0, 1.0, now + 1.0).is_ok() {
                settled += 1.0;
            }
            // Every third round a tab writes, merging onto what is stored.
            if round % 3 == i {
                stored = Some(
                    tab.sync(stored.as_deref(), now + 2.0, MAX, DAY, true)
                        .unwrap(),
                );
                tab.commit();
            }
        }
    }
    for tab in &mut tabs {
        stored = Some(tab.sync(stored.as_deref(), 1e9, MAX, DAY, true).unwrap());
        tab.commit();
    }
    let (successes, failures) = stored_counts(stored.as_deref().unwrap());
    assert_eq!(successes, settled, "every reward stored exactly once");
    // Trials that another tab's newer trial replaced before they ended were
    // never settled anywhere: they are not counted as failures either.
    assert!(failures <= 400.0 - settled);
}

#[test]
fn a_trial_settled_in_two_tabs_counts_once() {
    let cfg = bandit(json!({}));
    let mut a = Allocator::new(experiments(cfg.clone()), 1);
    a.set_device_unit("d:x").unwrap();
    a.assign_attributes(0, None, 0.0).unwrap();
    let shared = a.sync(None, 1.0, MAX, DAY, true).unwrap();
    a.commit();
    let mut b = Allocator::new(experiments(cfg), 2);
    b.restore(&shared, 2.0, MAX).unwrap();
    let (ra, rb) = (
        a.assign_attributes(0, None, 3.0).unwrap(),
        b.assign_attributes(0, None, 3.0).unwrap(),
    );
    assert_eq!(ra.seed, rb.seed, "the second tab serves the stored trial");
    a.reward(0, 1.0, 4.0).unwrap();
    b.reward(0, 1.0, 4.0).unwrap();
    let s1 = a.sync(Some(&shared), 5.0, MAX, DAY, true).unwrap();
    a.commit();
    let s2 = b.sync(Some(&s1), 6.0, MAX, DAY, true).unwrap();
    b.commit();
    let (successes, failures) = stored_counts(&s2);
    assert_eq!(successes + failures, 1.0);
}

#[test]
fn functional_consent_stores_the_unit_and_trials_but_no_counts() {
    let mut a = allocator(bandit(json!({})));
    a.set_device_unit("d:x").unwrap();
    a.assign_attributes(0, None, 0.0).unwrap();
    a.reward(0, 1.0, 1.0).unwrap();
    let bytes = a.sync(None, 2.0, MAX, DAY, false).unwrap();
    assert_eq!(a.pending(), 1, "nothing changes before the commit");
    assert!(a.commit());
    assert_eq!(
        a.pending(),
        0,
        "the journal drains: consent keeps the reward from being stored"
    );
    let mut r = allocator(bandit(json!({})));
    r.restore(&bytes, 3.0, MAX).unwrap();
    assert_eq!(r.unit().0, Some("d:x"));
    assert_eq!(stored_counts(&bytes).0, 0.0);
    // The trial stays settled, and a flush with nothing pending writes no counts.
    assert_eq!(
        a.reward(0, 1.0, 4.0).unwrap_err().code(),
        "DUPLICATE_REWARD"
    );
    // Personalization later stores what is settled from then on, not what
    // was settled before.
    let bytes = a.sync(Some(&bytes), 4.0, MAX, DAY, true).unwrap();
    assert!(a.commit());
    assert_eq!(stored_counts(&bytes), (0.0, 0.0));
    a.assign_attributes(0, None, 1000.0).unwrap();
    a.reward(0, 1.0, 1001.0).unwrap();
    let bytes = a.sync(Some(&bytes), 1002.0, MAX, DAY, true).unwrap();
    assert!(a.commit());
    assert_eq!(a.pending(), 0);
    assert_eq!(stored_counts(&bytes), (1.0, 0.0));
}

#[test]
fn the_journal_is_capped_and_what_leaves_it_counts_here_and_never_twice() {
    // Trials of 1 ms, each rewarded: one settlement per millisecond.
    let cfg = bandit(json!({"rewardWindowMs": 1, "samples": 1}));
    let settle = |a: &mut Allocator, from: usize, to: usize| {
        for t in from..to {
            a.assign_attributes(0, None, t as f64).unwrap();
            a.reward(0, 1.0, t as f64 + 0.5).unwrap();
        }
    };
    let total = |c: Vec<(f64, f64)>| c.iter().fold((0.0, 0.0), |s, c| (s.0 + c.0, s.1 + c.1));

    // Storage never written: every settlement is stored by the first sync.
    let mut a = allocator(cfg.clone());
    a.set_device_unit("d:x").unwrap();
    settle(&mut a, 0, 1100);
    assert_eq!(a.pending(), 1024, "the cap");
    assert_eq!(total(a.bandit_counts(0).unwrap()), (1100.0, 0.0));
    let bytes = a.sync(None, 2000.0, MAX, DAY, true).unwrap();
    assert!(a.commit());
    assert_eq!((a.pending(), stored_counts(&bytes)), (0, (1100.0, 0.0)));

    // Stored counts of the bandit: what left the journal is lost from
    // storage, the rest is added once.
    let mut b = allocator(cfg);
    b.set_device_unit("d:x").unwrap();
    settle(&mut b, 0, 10);
    let stored = b.sync(None, 20.0, MAX, DAY, true).unwrap();
    assert!(b.commit());
    settle(&mut b, 100, 1200);
    assert_eq!(total(b.bandit_counts(0).unwrap()), (1110.0, 0.0));
    let bytes = b.sync(Some(&stored), 2000.0, MAX, DAY, true).unwrap();
    assert!(b.commit());
    assert_eq!(stored_counts(&bytes), (10.0 + 1024.0, 0.0));

    // A full journal while a sync waits for its commit: the commit drains
    // only what the sync stored.
    settle(&mut b, 3000, 3000 + 1024);
    let staged = b.sync(Some(&bytes), 5000.0, MAX, DAY, true).unwrap();
    settle(&mut b, 6000, 6010);
    assert_eq!(b.pending(), 1024);
    assert!(b.commit());
    assert_eq!(b.pending(), 10, "the ten made after the sync stay");
    let bytes = b.sync(Some(&staged), 7000.0, MAX, DAY, true).unwrap();
    assert!(b.commit());
    assert_eq!(stored_counts(&bytes), (1034.0 + 1024.0 + 10.0, 0.0));
}

#[test]
fn damaged_allocator_state_is_refused_and_changes_nothing() {
    let mut a = allocator(bandit(json!({})));
    a.set_device_unit("d:x").unwrap();
    a.assign_attributes(0, None, 0.0).unwrap();
    a.reward(0, 1.0, 1.0).unwrap();
    let good = a.sync(None, 2.0, MAX, DAY, true).unwrap();
    let mut fresh = allocator(bandit(json!({})));
    // Every truncation is an error with a snapshot code; nothing panics.
    for cut in 0..good.len() {
        let e = fresh.restore(&good[..cut], 3.0, MAX).unwrap_err();
        assert!(e.code().starts_with("SNAPSHOT_"), "cut {cut}: {e}");
    }
    assert_eq!(fresh.unit().1, UnitSource::None, "nothing was adopted");
    // A section written by a newer build is a version error, not corruption.
    let mut snap = insitu::Snapshot::decode(&good, MAX).unwrap();
    let mut body = snap.section("experiments").unwrap().to_vec();
    body[0] = 2;
    snap.set_section("experiments", body.clone());
    assert_eq!(
        fresh
            .restore(&snap.encode(MAX).unwrap(), 3.0, MAX)
            .unwrap_err()
            .code(),
        "SNAPSHOT_VERSION"
    );
    // A negative count, recomputed checksum and all, is corrupt.
    body[0] = 1;
    // From the end: the settled seeds (a u16 count, one seed), the trial
    // (flag, seed, a one-letter variant id, three f64s), then the last
    // variant's failure count.
    let settled = 2 + 8;
    let trial = 1 + 8 + (2 + 1) + 3 * 8;
    let at = body.len() - settled - trial - 8;
    body[at..at + 8].copy_from_slice(&(-1.0f64).to_le_bytes());
    snap.set_section("experiments", body);
    let e = fresh
        .restore(&snap.encode(MAX).unwrap(), 3.0, MAX)
        .unwrap_err();
    assert_eq!(e.code(), "SNAPSHOT_CORRUPT", "{e}");
    assert!(e.to_string().contains("experiments"), "{e}");
    // And sync refuses it the same way, staging nothing.
    assert!(fresh.sync(Some(&good[..10]), 3.0, MAX, DAY, true).is_err());
    assert!(!fresh.commit());
}
