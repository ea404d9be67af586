//! The first-decision module's scorer ([`Prior`]) decides exactly as the
//! full engine does before its first update: the same variant, probability,
//! seed, pmf and scores, bit for bit, for every policy, full and diagonal
//! covariances (up to 128 slots and beyond), shipped models with random
//! priors, variants with features of their own and per-call actions. A
//! decision made on a first visit is then the one the full engine would
//! have made, and the handover replays it as such.

use insitu::{Engine, EngineConfig, Hashed, Prior, Rng};

/// A model of `bits` with random prior means and variances (some variants
/// with features of their own), and options using `policy`.
fn options(rng: &mut Rng, bits: u32, policy: &str, own: bool) -> String {
    let d = 1usize << bits;
    let mut variants = Vec::new();
    for v in 0..4 {
        let weights: Vec<String> = (0..d)
            .map(|_| format!("{:.6}", rng.next_f64() - 0.5))
            .collect();
        let variance: Vec<String> = (0..d)
            .map(|_| format!("{:.6}", 0.05 + rng.next_f64()))
            .collect();
        let features = if own && v % 2 == 1 {
            format!(
                r#","features":{{"variant":{{"tone":"t{v}","size":{}}}}}"#,
                v + 1
            )
        } else {
            String::new()
        };
        variants.push(format!(
            r#"{{"id":"v{v}","weights":[{}],"variance":[{}]{features}}}"#,
            weights.join(","),
            variance.join(",")
        ));
    }
    let model = format!(
        r#"{{"format":1,"features":{{"bits":{bits},"allow":["page","user","variant"],
            "interactions":[["page","variant"],["page","user"]]}},"variants":[{}]}}"#,
        variants.join(",")
    );
    format!(
        r#"{{"model":{model},"policy":{policy},"seed":{}}}"#,
        rng.next_u64() >> 12
    )
}

/// Random hashed features over the allowlist (namespaces 0 to 2).
fn features(rng: &mut Rng, n: usize) -> Vec<Hashed> {
    (0..n)
        .map(|_| {
            let ns = (rng.next_u64() % 3) as usize;
            Hashed::new(ns, rng.next_u64() as u32, 4.0 * rng.next_f64() - 2.0)
        })
        .collect()
}

#[test]
fn the_prior_decides_as_the_full_engine_before_learning() {
    let mut rng = Rng::new(2026);
    let policies = [
        r#"{"type":"thompson","samples":16}"#,
        r#"{"type":"linucb","alpha":0.7}"#,
        r#"{"type":"egreedy","epsilon":0.2}"#,
        r#"{"type":"greedy"}"#,
    ];
    let mut compared = 0;
    for bits in [4, 6, 7, 8, 10] {
        for policy in policies {
            for own in [false, true] {
                let cfg = EngineConfig::parse(&options(&mut rng, bits, policy, own), 7).unwrap();
                let mut full = Engine::new(cfg.clone());
                let mut prior = Prior::new(cfg);
                for call in 0..12 {
                    let shared = features(&mut rng, 1 + call % 9);
                    let actions: Option<Vec<Vec<Hashed>>> =
                        (call % 4 == 3).then(|| (0..4).map(|_| features(&mut rng, 3)).collect());
                    let seed = (call % 3 == 0).then(|| rng.next_u64() >> 12);
                    let a = full
                        .rank_hashed(&shared, actions.as_deref(), seed, false, 0.0)
                        .unwrap();
                    let b = prior
                        .decide(&shared, actions.as_deref(), seed, 0.0)
                        .unwrap();
                    let what = format!("bits {bits}, {policy}, own {own}, call {call}");
                    assert_eq!(a, b, "{what}");
                    let bits_of = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits_of(full.last_pmf()),
                        bits_of(prior.last_pmf()),
                        "{what}"
                    );
                    assert_eq!(
                        bits_of(full.last_scores()),
                        bits_of(prior.last_scores()),
                        "{what}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 5 * 4 * 2 * 12);
}

#[test]
fn the_prior_refuses_what_the_engine_refuses() {
    let mut rng = Rng::new(7);
    let cfg = EngineConfig::parse(&options(&mut rng, 5, r#"{"type":"linucb"}"#, true), 7).unwrap();
    let (mut full, mut prior) = (Engine::new(cfg.clone()), Prior::new(cfg));
    let bad: [Vec<Hashed>; 3] = [
        vec![Hashed::new(3, 1, 1.0)],
        vec![Hashed::new(0, 1, f64::NAN)],
        vec![Hashed::new(0, 1, 1e300); 3],
    ];
    for feats in bad {
        let a = full
            .rank_hashed(&feats, None, None, false, 0.0)
            .unwrap_err();
        let b = prior.decide(&feats, None, None, 0.0).unwrap_err();
        assert_eq!(a.code(), b.code());
    }
    // Nothing was drawn from either stream: the next decisions still agree.
    let ok = features(&mut rng, 4);
    assert_eq!(
        full.rank_hashed(&ok, None, None, false, 0.0).unwrap(),
        prior.decide(&ok, None, None, 0.0).unwrap()
    );
}

/// A catalogue's slates: the first-decision module draws the same slates
/// (variants, probabilities, decision counters) as the full engine at the
/// prior, for every policy, with full (4 + 3 bits) and diagonal weights.
#[test]
fn the_prior_draws_a_catalogues_slates_as_the_full_engine() {
    let mut rng = Rng::new(31);
    for (bits, catalogue_bits) in [(4, 3), (6, 6)] {
        for policy in [
            r#"{"type":"thompson","samples":8}"#,
            r#"{"type":"linucb"}"#,
            r#"{"type":"egreedy","epsilon":0.3}"#,
            r#"{"type":"greedy","minProbability":0}"#,
        ] {
            let variants: Vec<String> = (0..150)
                .map(|i| {
                    format!(
                        r#"{{"id":"p{i}","features":{{"variant":{{"cat":"c{}","price":{}}}}}}}"#,
                        i % 12,
                        1 + i % 5
                    )
                })
                .collect();
            let opts = format!(
                r#"{{"variants":[{}],"features":{{"bits":{bits},"allow":["page","user","variant"]}},
                    "catalogue":{{"bits":{catalogue_bits}}},"policy":{policy},"seed":3}}"#,
                variants.join(",")
            );
            let cfg = EngineConfig::parse(&opts, 7).unwrap();
            let (mut full, mut prior) = (Engine::new(cfg.clone()), Prior::new(cfg));
            for call in 0..8 {
                let shared: Vec<Hashed> = features(&mut rng, 1 + call % 5)
                    .into_iter()
                    .filter(|h| h.ns() != 2)
                    .collect();
                let seed = (call % 2 == 0).then(|| rng.next_u64() >> 12);
                let k = 1 + call % 6;
                let a = full
                    .rank_slate(&shared, None, seed, false, 0.0, None, k)
                    .unwrap();
                let b = prior.decide_slate(&shared, None, seed, 0.0, k).unwrap();
                let what = format!("bits {bits}+{catalogue_bits}, {policy}, call {call}");
                assert_eq!(a, b, "{what}");
                assert_eq!(full.last_slate(), prior.last_slate(), "{what}");
                assert_eq!(full.last_slate().len(), k, "{what}");
                assert_eq!(full.last_pmf(), prior.last_pmf(), "{what}");
                assert_eq!(full.counter(), prior.counter(), "{what}");
            }
        }
    }
}
