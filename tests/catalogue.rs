//! The catalogue learner (one learner shared by every variant through the
//! variants' own features) and `rank({ k })` slates.

use insitu::{Engine, EngineConfig, RankOptions, Rng};

/// An engine of these options.
fn engine(json: &str) -> Engine {
    Engine::new(EngineConfig::parse(json, 7).unwrap())
}

/// A context of one categorical and two numeric page features.
fn context(rng: &mut Rng) -> (String, usize, f64) {
    let section = (rng.next_u64() % 4) as usize;
    let x = rng.next_f64();
    let y = rng.next_f64();
    let json = format!(r#"{{"context":{{"page":{{"section":"s{section}","x":{x},"y":{y}}}}}}}"#);
    (json, section, x)
}

/// The one-hot catalogue and the per-variant slot it must equal: the same
/// context features, prior, noise and policy, each catalogue variant a
/// feature (its id) of its own.
fn pair(bits: u8, catalogue_bits: u8, ids: &[&str], policy: &str) -> (Engine, Engine) {
    let plain = format!(
        r#"{{"variants":[{}],"features":{{"bits":{bits},"allow":["page"]}},"policy":{policy},"seed":11}}"#,
        ids.iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let cat = format!(
        r#"{{"variants":[{}],"features":{{"bits":{bits},"allow":["item","page"]}},
            "catalogue":{{"bits":{catalogue_bits}}},"policy":{policy},"seed":11}}"#,
        ids.iter()
            .map(|i| format!(r#"{{"id":"{i}","features":{{"item":{{"id":"{i}"}}}}}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    (engine(&plain), engine(&cat))
}

/// Over a seeded stream of contexts and rewards, two engines choose the
/// same variants with the same probabilities and scores.
fn same_decisions(a: &mut Engine, b: &mut Engine, rounds: usize) {
    let mut rng = Rng::new(3);
    let k = a.variant_count();
    for t in 0..rounds {
        let (ctx, section, x) = context(&mut rng);
        let opts = RankOptions::parse(&ctx).unwrap();
        let da = a.rank(&opts, t as f64).unwrap();
        let db = b.rank(&opts, t as f64).unwrap();
        assert_eq!(da.index, db.index, "round {t}");
        assert!((da.probability - db.probability).abs() < 1e-9, "round {t}");
        for i in 0..k {
            assert!(
                (da.scores[i] - db.scores[i]).abs() < 1e-9,
                "round {t}, variant {i}: {} vs {}",
                da.scores[i],
                db.scores[i]
            );
        }
        // Variant i is best in section i, more so as x grows.
        let p = if da.index == section % k {
            0.3 + 0.5 * x
        } else {
            0.2
        };
        let r = f64::from(u8::from(rng.next_f64() < p));
        a.reward(da.decision_id.as_deref().unwrap(), r, t as f64)
            .unwrap();
        b.reward(db.decision_id.as_deref().unwrap(), r, t as f64)
            .unwrap();
    }
}

/// With one-hot variant features the catalogue is exactly one learner per
/// variant: with a full covariance (16 context slots × 8 variant slots = 128
/// weights) and with a diagonal one (256 × 8).
#[test]
fn one_hot_catalogue_decides_as_per_variant_learners() {
    // Ids chosen to take distinct slots of 8 (the test below checks it: a
    // collision would make two variants share weights and the scores differ).
    let ids = ["v0", "v1", "v2", "v3"];
    for (bits, policy) in [
        (4, r#"{"type":"linucb"}"#),
        (8, r#"{"type":"thompson"}"#),
        (4, r#"{"type":"egreedy","epsilon":0.2}"#),
    ] {
        let (mut a, mut b) = pair(bits, 3, &ids, policy);
        same_decisions(&mut a, &mut b, 1500);
        let total: u64 = a.updates().iter().sum();
        assert_eq!(b.updates(), vec![total], "{policy}");
    }
}

/// The same catalogue with two variants' ids in one slot: their weights are
/// shared, so its scores are not the per-variant learners' (what makes the
/// test above able to fail).
#[test]
fn colliding_variant_features_share_weights() {
    // With 1 variant-feature bit, 4 ids cannot all take slots of their own.
    let (mut a, mut b) = pair(4, 1, &["v0", "v1", "v2", "v3"], r#"{"type":"linucb"}"#);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        same_decisions(&mut a, &mut b, 300)
    }));
    assert!(r.is_err(), "shared slots cannot score as separate learners");
}

/// A catalogue of `k` variants described by a category and a brand.
fn products(k: usize, extra: &str) -> Engine {
    engine(&products_options(k, extra))
}

/// The options of [`products`].
fn products_options(k: usize, extra: &str) -> String {
    let vs: Vec<String> = (0..k)
        .map(|i| {
            format!(
                r#"{{"id":"p{i}","features":{{"item":{{"cat":"c{}","brand":"b{}"}}}}}}"#,
                i % 10,
                i % 7
            )
        })
        .collect();
    format!(
        r#"{{"variants":[{}],"features":{{"allow":["item","page"]}},"catalogue":true,"seed":5{extra}}}"#,
        vs.join(",")
    )
}

/// `rounds` decisions of [`products`] on seeded contexts, each rewarded 1
/// when the product's category (its index mod 10) is the page's section.
fn play_sections(e: &mut Engine, rng: &mut Rng, rounds: usize) {
    for t in 0..rounds {
        let (ctx, section, _) = context(rng);
        let d = e
            .rank(&RankOptions::parse(&ctx).unwrap(), t as f64)
            .unwrap();
        let r = f64::from(u8::from(d.index % 10 == section));
        e.reward(d.decision_id.as_deref().unwrap(), r, t as f64)
            .unwrap();
    }
}

/// The catalogue's state does not grow with its variants: 100 and 1,000
/// products that learn the same observations write snapshots of one size.
#[test]
fn state_size_is_independent_of_the_number_of_variants() {
    let mut sizes = Vec::new();
    for k in [100, 1000] {
        let mut e = products(k, r#","maxPending":1"#);
        let mut rng = Rng::new(9);
        for t in 0..300 {
            let (ctx, _, _) = context(&mut rng);
            let v = (rng.next_u64() % 70) as usize;
            let opts = format!(
                r#"{},"variant":"p{v}","reward":{}}}"#,
                &ctx[..ctx.len() - 1],
                rng.next_u64() % 2
            );
            e.learn(&insitu::LearnOptions::parse(&opts).unwrap())
                .unwrap_or_else(|err| panic!("{t}: {err}"));
        }
        let r = e.sync(None, "row", 1.0, 1 << 22).unwrap();
        assert_eq!(e.updates(), vec![300]);
        sizes.push(r.bytes.len());
    }
    assert_eq!(
        sizes[0], sizes[1],
        "snapshot bytes at 100 and 1,000 variants"
    );
}

/// A catalogue learns: on a stream where the best product depends on the
/// page section through the product's category, it earns well above a
/// uniform pick among 200 products.
#[test]
fn a_catalogue_learns_through_variant_features() {
    let mut e = products(200, "");
    let mut rng = Rng::new(21);
    let (mut early, mut late) = (0.0, 0.0);
    let n = 4000;
    for t in 0..n {
        let (ctx, section, _) = context(&mut rng);
        let d = e
            .rank(&RankOptions::parse(&ctx).unwrap(), t as f64)
            .unwrap();
        // Section s likes category s (a tenth of the products).
        let p = if d.index % 10 == section { 0.6 } else { 0.05 };
        let r = f64::from(u8::from(rng.next_f64() < p));
        e.reward(d.decision_id.as_deref().unwrap(), r, t as f64)
            .unwrap();
        if t < 500 {
            early += r / 500.0;
        }
        if t >= n - 1000 {
            late += r / 1000.0;
        }
    }
    // Uniform earns 0.1 × 0.6 + 0.9 × 0.05 = 0.105; the best policy 0.6.
    // 1,000 Bernoulli draws have a sd of at most 0.016: 0.4 is 18 sd above
    // uniform.
    assert!(late > 0.4, "late reward {late} (early {early})");
}

/// A slate holds k distinct variants, and the probabilities it reports are
/// the ones it draws with: over 20,000 seeded slates of 3 from a fixed pmf
/// (ε-greedy, ε = 0.6 over 6 variants: 0.5 for the best, 0.1 each other),
/// the ordered triples' counts pass a χ² test against
/// pmf(a) · pmf(b) / (1 − pmf(a)) · pmf(c) / (1 − pmf(a) − pmf(b)).
#[test]
fn slates_are_drawn_without_replacement_with_their_stated_probabilities() {
    let mut e = engine(
        r#"{"variants":["a","b","c","d","e","f"],"policy":{"type":"egreedy","epsilon":0.6,"minProbability":0},"seed":1}"#,
    );
    // Make "c" the best.
    for _ in 0..5 {
        e.learn(&insitu::LearnOptions::parse(r#"{"variant":"c","reward":1}"#).unwrap())
            .unwrap();
    }
    let n = 20_000;
    let mut counts = std::collections::HashMap::<(usize, usize, usize), f64>::new();
    let mut pmf = Vec::new();
    for s in 0..n {
        let d = e
            .rank(
                &RankOptions::parse(&format!(r#"{{"seed":{s},"k":3}}"#)).unwrap(),
                0.0,
            )
            .unwrap();
        pmf.clone_from(&d.pmf);
        let slate = e.last_slate().to_vec();
        assert_eq!(slate.len(), 3);
        let (a, b, c) = (slate[0].0, slate[1].0, slate[2].0);
        assert!(a != b && b != c && a != c, "{slate:?}");
        assert_eq!(a, d.index);
        // The stated probabilities are the conditional ones.
        let expect = [
            pmf[a],
            pmf[b] / (1.0 - pmf[a]),
            pmf[c] / (1.0 - pmf[a] - pmf[b]),
        ];
        for (j, (_, p)) in slate.iter().enumerate() {
            assert!(
                (p - expect[j]).abs() < 1e-12,
                "position {j}: {p} vs {}",
                expect[j]
            );
        }
        *counts.entry((a, b, c)).or_default() += 1.0;
        // Each position is a decision of its own: the counter moved by 3.
        assert_eq!(e.counter(), 3 * (s as u64 + 1));
    }
    assert!((pmf[2] - 0.5).abs() < 1e-12);
    let mut chi2 = 0.0;
    let mut cells = 0;
    for a in 0..6 {
        for b in (0..6).filter(|&b| b != a) {
            for c in (0..6).filter(|&c| c != a && c != b) {
                let p = pmf[a] * pmf[b] / (1.0 - pmf[a]) * pmf[c] / (1.0 - pmf[a] - pmf[b]);
                let expected = p * n as f64;
                let seen = counts.get(&(a, b, c)).copied().unwrap_or(0.0);
                chi2 += (seen - expected).powi(2) / expected;
                cells += 1;
            }
        }
    }
    // The χ² critical value at α = 0.001 (Wilson–Hilferty, z = 3.09).
    let df = f64::from(cells - 1);
    let t = 2.0 / (9.0 * df);
    let critical = df * (1.0 - t + 3.09 * t.sqrt()).powi(3);
    assert!(
        chi2 < critical,
        "χ² {chi2:.1} over {cells} cells, critical {critical:.1}"
    );
}

/// The same seed and state give the same slate; every position can be
/// rewarded on its own; a greedy pmf without a floor fills the slate in
/// score order with probability 1.
#[test]
fn slates_replay_and_settle_position_by_position() {
    let mut e = products(50, r#","policy":{"type":"greedy","minProbability":0}"#);
    play_sections(&mut e, &mut Rng::new(4), 200);
    let opts = RankOptions::parse(
        r#"{"context":{"page":{"section":"s2","x":0.5,"y":0.5}},"seed":77,"k":4}"#,
    )
    .unwrap();
    let mut twin = e.clone();
    let d = e.rank(&opts, 300.0).unwrap();
    let slate = e.last_slate().to_vec();
    twin.rank(&opts, 300.0).unwrap();
    assert_eq!(twin.last_slate(), &slate[..]);
    // Greedy: the four best scores, in order, each with probability 1.
    let mut order: Vec<usize> = (0..50).collect();
    order.sort_by(|&a, &b| d.scores[b].total_cmp(&d.scores[a]).then(a.cmp(&b)));
    assert_eq!(
        slate.iter().map(|s| s.0).collect::<Vec<_>>(),
        order[..4].to_vec()
    );
    assert!(slate.iter().all(|s| s.1 == 1.0));
    // Positions are decisions epoch-(c), epoch-(c+1), ...: each settles once.
    let id = d.decision_id.unwrap();
    let (epoch, first) = id.split_once('-').unwrap();
    let first: u64 = first.parse().unwrap();
    for j in [3u64, 1, 0, 2] {
        let pid = format!("{epoch}-{}", first + j);
        e.reward(&pid, 0.0, 301.0).unwrap();
        assert_eq!(
            e.reward(&pid, 0.0, 301.0).unwrap_err().code(),
            "DUPLICATE_REWARD"
        );
    }
}

/// Bad catalogue options and slate sizes get INVALID_OPTION naming the
/// field; per-call actions, reports and explanations are refused; nothing
/// changes.
#[test]
fn bad_catalogue_input_is_refused_with_codes() {
    let bad = |json: &str, field: &str| {
        let e = EngineConfig::parse(json, 1).unwrap_err();
        assert_eq!(e.code(), "INVALID_OPTION", "{json}");
        assert!(e.to_string().contains(field), "{e} should name {field}");
    };
    bad(
        r#"{"variants":[{"id":"a","features":{"item":{"c":"x"}}},"b"],"features":{"allow":["item"]},"catalogue":true}"#,
        "variants[1].features",
    );
    bad(
        r#"{"variants":[{"id":"a","features":{"item":{"c":"x"}}},{"id":"b","features":{"item":{"c":"y"}}}],"features":{"allow":["item"]},"catalogue":{"bits":11}}"#,
        "catalogue.bits",
    );
    bad(
        r#"{"variants":[{"id":"a","features":{"item":{"c":"x"}}},{"id":"b","features":{"item":{"c":"y"}}}],"features":{"allow":["item"],"bits":12},"catalogue":{"bits":8}}"#,
        "catalogue.bits",
    );
    bad(
        r#"{"variants":[{"id":"a","features":{"item":{"c":"x"}}},{"id":"b","features":{"item":{"c":"y"}}}],"features":{"allow":["item"]},"catalogue":{"width":3}}"#,
        "catalogue.width",
    );
    bad(
        r#"{"model":{"format":1,"features":{},"variants":[{"id":"a"},{"id":"b"}]},"catalogue":true}"#,
        "catalogue",
    );
    let many: Vec<String> = (0..65).map(|i| format!("\"v{i}\"")).collect();
    bad(
        &format!(r#"{{"variants":[{}]}}"#, many.join(",")),
        "variants",
    );

    let mut e = products(20, "");
    let before = e.clone();
    for k in ["0", "21", "65", "1.5"] {
        let opts = format!(r#"{{"k":{k}}}"#);
        let err = match RankOptions::parse(&opts) {
            Err(err) => err,
            Ok(o) => e.rank(&o, 0.0).unwrap_err(),
        };
        assert_eq!(err.code(), "INVALID_OPTION", "k = {k}");
        assert!(err.to_string().contains('k'), "{err}");
    }
    let err = e
        .rank(
            &RankOptions::parse(r#"{"actions":[{"item":{"c":"x"}}]}"#).unwrap(),
            0.0,
        )
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_CONTEXT");
    assert_eq!(
        e.enable_reports(7, true).unwrap_err().code(),
        "INVALID_OPTION"
    );
    let err = e
        .explain(&insitu::ExplainOptions::parse(r#"{"variant":"p1"}"#).unwrap())
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_OPTION");
    assert_eq!(e.counter(), before.counter());
    assert_eq!(e.pending_count(), 0);
    // Its evaluation is not kept: a logged observation learns, and counts nowhere.
    e.learn(
        &insitu::LearnOptions::parse(r#"{"variant":"p1","reward":1,"probability":0.5}"#).unwrap(),
    )
    .unwrap();
    assert_eq!(e.evaluation().n, 0.0);
    assert_eq!(e.updates(), vec![1]);
}

/// The default floor is a budget shared by the variants past 100: a
/// catalogue of 1,000 is not uniform.
#[test]
fn the_default_floor_is_shared_by_large_catalogues() {
    let mut e = products(1000, "");
    for _ in 0..20 {
        e.learn(&insitu::LearnOptions::parse(r#"{"variant":"p3","reward":1}"#).unwrap())
            .unwrap();
    }
    let d = e.rank(&RankOptions::parse("{}").unwrap(), 0.0).unwrap();
    let min = d.pmf.iter().copied().fold(1.0, f64::min);
    assert!((min - 0.0001).abs() < 1e-12, "floor {min}");
    // p3's category and brand are those of every 70th product: they tie.
    let best: f64 = (0..1000).filter(|i| i % 70 == 3).map(|i| d.pmf[i]).sum();
    assert!(best > 0.5, "the learned best: {best}");
}

/// At its prior a catalogue's variants are equal whatever describes them:
/// their scores, summed over different features, differ in the last bits
/// only, and LinUCB shares its mass among them (not one variant taking it
/// all on rounding).
#[test]
fn a_catalogue_at_its_prior_ties_its_variants() {
    let mut e = engine(
        r#"{"variants":[{"id":"a","features":{"item":{"c":"x"}}},
                        {"id":"b","features":{"item":{"c":"y","p":0.5}}},
                        {"id":"c","features":{"item":{"c":"x","q":3,"r":-1.25}}}],
            "features":{"allow":["item","page"]},"catalogue":true,"seed":2}"#,
    );
    let d = e
        .rank(
            &RankOptions::parse(r#"{"context":{"page":{"s":"n","x":0.3}}}"#).unwrap(),
            0.0,
        )
        .unwrap();
    for p in &d.pmf {
        assert!((p - 1.0 / 3.0).abs() < 1e-12, "{:?}", d.pmf);
    }
}

/// A catalogue's pending decision keeps the folded context only (its product
/// with the variant's features is made at the reward): rewarded on the next
/// page view, from the stored snapshot, it teaches exactly what it teaches
/// where it was made; and a stored pending decision takes the context's few
/// slots, not their product with the variant's.
#[test]
fn a_stored_pending_decision_learns_as_where_it_was_made() {
    let opts = |k: usize| {
        let mut e = products(k, r#","maxPending":200"#);
        let mut rng = Rng::new(8);
        let mut ids = Vec::new();
        for t in 0..40 {
            let (ctx, _, _) = context(&mut rng);
            let text = format!(r#"{},"k":3}}"#, &ctx[..ctx.len() - 1]);
            let o = RankOptions::parse(&text).unwrap();
            let d = e.rank(&o, t as f64).unwrap();
            let (epoch, first) = d.decision_id.as_ref().unwrap().split_once('-').unwrap();
            let first: u64 = first.parse().unwrap();
            for j in 0..3u64 {
                ids.push((format!("{epoch}-{}", first + j), (t + j as usize) % 3 == 0));
            }
        }
        (e, ids)
    };
    let (mut here, ids) = opts(300);
    let stored = here.sync(None, "row", 100.0, 1 << 22).unwrap();
    here.commit();
    let mut there = Engine::new(
        EngineConfig::parse(&products_options(300, r#","maxPending":200"#), 8).unwrap(),
    );
    there.restore(&stored.bytes, "row", 100.0, 1 << 22).unwrap();
    for (id, click) in &ids {
        let r = f64::from(u8::from(*click));
        here.reward(id, r, 101.0).unwrap();
        there.reward(id, r, 101.0).unwrap();
    }
    assert_eq!(here.updates(), vec![120]);
    assert_eq!(there.updates(), vec![120]);
    let probe =
        RankOptions::parse(r#"{"context":{"page":{"section":"s1","x":0.2,"y":0.9}},"seed":4}"#)
            .unwrap();
    let (a, b) = (
        here.rank(&probe, 102.0).unwrap(),
        there.rank(&probe, 102.0).unwrap(),
    );
    for (x, y) in a.scores.iter().zip(&b.scores) {
        assert!((x - y).abs() < 1e-12, "{x} vs {y}");
    }
    // 120 pending decisions, each keeping a context of 4 slots (the bias,
    // the section, x and y) and its product's 2 (category and brand): about
    // 33 + 6 × 12 = 105 B each, where their product would take 33 + 8 × 12
    // = 129 (and a richer context or product much more).
    assert!(stored.bytes.len() < 120 * 115, "{} B", stored.bytes.len());
}

/// A catalogue's model version is its weights' space alone: a page view
/// whose catalogue lost or gained products restores the same learning, and
/// a stored decision for a product no longer listed still settles, teaching
/// what that product's features scored.
#[test]
fn a_changed_catalogue_keeps_its_learning_and_settles_its_decisions() {
    let mut before = products(300, r#","maxPending":100"#);
    play_sections(&mut before, &mut Rng::new(12), 200);
    let slate = RankOptions::parse(
        r#"{"context":{"page":{"section":"s3","x":0.1,"y":0.2}},"k":20,"seed":3}"#,
    )
    .unwrap();
    let d = before.rank(&slate, 300.0).unwrap();
    let (epoch, first) = d.decision_id.as_ref().unwrap().split_once('-').unwrap();
    let first: u64 = first.parse().unwrap();
    let gone: Vec<u64> = before
        .last_slate()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.0 >= 100)
        .map(|(j, _)| first + j as u64)
        .collect();
    assert!(
        !gone.is_empty(),
        "some of the slate is past the first 100 products"
    );
    let stored = before.sync(None, "row", 301.0, 1 << 22).unwrap();
    before.commit();
    // The next page view lists only the first 100 products.
    let mut after = Engine::new(
        EngineConfig::parse(&products_options(100, r#","maxPending":100"#), 3).unwrap(),
    );
    assert_eq!(after.model_version(), before.model_version());
    after.restore(&stored.bytes, "row", 302.0, 1 << 22).unwrap();
    assert_eq!(after.updates(), before.updates());
    for c in &gone {
        let id = format!("{epoch}-{c}");
        before.reward(&id, 1.0, 303.0).unwrap();
        after.reward(&id, 1.0, 303.0).unwrap();
    }
    assert_eq!(after.updates(), before.updates());
    let probe =
        RankOptions::parse(r#"{"context":{"page":{"section":"s3","x":0.5,"y":0.5}}}"#).unwrap();
    let (a, b) = (
        before.rank(&probe, 304.0).unwrap(),
        after.rank(&probe, 304.0).unwrap(),
    );
    for i in 0..100 {
        assert!((a.scores[i] - b.scores[i]).abs() < 1e-12, "product {i}");
    }
    // A catalogue's version changes with its space (here its prior variance).
    let other = EngineConfig::parse(
        &products_options(100, r#","maxPending":100,"priorVariance":0.5"#),
        3,
    )
    .unwrap();
    assert_ne!(Engine::new(other).model_version(), before.model_version());
}

/// Product features near the ends of the f64 range are scaled before they
/// are squared: the catalogue still scores and learns. An apprentice's
/// slate holds the baseline it served.
#[test]
fn extreme_product_values_and_an_apprentices_slate() {
    let mut e = engine(
        r#"{"variants":[{"id":"a","features":{"item":{"price":1e200,"c":"x"}}},
                        {"id":"b","features":{"item":{"price":1e-200}}},
                        {"id":"c","features":{"item":{"c":"y"}}}],
            "features":{"allow":["item","page"]},"catalogue":true,"seed":2}"#,
    );
    for t in 0..50 {
        let d = e
            .rank(
                &RankOptions::parse(r#"{"context":{"page":{"s":"n"}},"k":3}"#).unwrap(),
                t as f64,
            )
            .unwrap();
        assert!(d.scores.iter().all(|s| s.is_finite()), "{:?}", d.scores);
        e.reward(
            d.decision_id.as_deref().unwrap(),
            f64::from(u8::from(d.index == 1)),
            t as f64,
        )
        .unwrap();
    }
    assert_eq!(e.updates(), vec![50]);
    let c = e
        .rank_slate(&[], None, None, false, 60.0, Some(2), 1)
        .unwrap();
    assert_eq!((c.index, c.probability), (2, 1.0));
    assert_eq!(e.last_slate(), &[(2, 1.0)]);
    let err = e
        .rank_slate(&[], None, None, false, 60.0, Some(2), 2)
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_OPTION");
    // Actions of the wrong length on a catalogue: refused as actions on a catalogue.
    let err = e
        .rank(&RankOptions::parse(r#"{"actions":[{}]}"#).unwrap(), 61.0)
        .unwrap_err();
    assert!(err.to_string().contains("catalogue"), "{err}");
}

/// Two tabs of one catalogue merge their learning through storage, each
/// update counted once: both end with the same learner.
#[test]
fn two_tabs_merge_a_catalogues_learning() {
    let opts = products_options(200, "");
    let mut a = Engine::new(EngineConfig::parse(&opts, 21).unwrap());
    let mut b = Engine::new(EngineConfig::parse(&opts, 22).unwrap());
    let mut rng = Rng::new(5);
    let mut play = |e: &mut Engine, n: usize, t0: usize| {
        for t in t0..t0 + n {
            let (ctx, section, _) = context(&mut rng);
            let text = format!(r#"{},"k":2}}"#, &ctx[..ctx.len() - 1]);
            let d = e
                .rank(&RankOptions::parse(&text).unwrap(), t as f64)
                .unwrap();
            for (j, s) in e.last_slate().to_vec().iter().enumerate() {
                let (epoch, first) = d.decision_id.as_ref().unwrap().split_once('-').unwrap();
                let id = format!("{epoch}-{}", first.parse::<u64>().unwrap() + j as u64);
                let r = f64::from(u8::from(s.0 % 10 == section));
                e.reward(&id, r, t as f64).unwrap();
            }
        }
    };
    play(&mut a, 30, 0);
    play(&mut b, 20, 0);
    let max = 1 << 22;
    let s1 = a.sync(None, "row", 100.0, max).unwrap();
    a.commit();
    let s2 = b.sync(Some(&s1.bytes), "row", 101.0, max).unwrap();
    b.commit();
    let s3 = a.sync(Some(&s2.bytes), "row", 102.0, max).unwrap();
    a.commit();
    assert_eq!(a.updates(), vec![100]);
    assert_eq!(b.updates(), vec![100]);
    // Once more each way: nothing is counted twice.
    b.sync(Some(&s3.bytes), "row", 103.0, max).unwrap();
    b.commit();
    assert_eq!(b.updates(), vec![100]);
    let probe =
        RankOptions::parse(r#"{"context":{"page":{"section":"s2","x":0.4,"y":0.4}}}"#).unwrap();
    let (da, db) = (
        a.rank(&probe, 104.0).unwrap(),
        b.rank(&probe, 104.0).unwrap(),
    );
    for (x, y) in da.scores.iter().zip(&db.scores) {
        assert!((x - y).abs() < 1e-9, "{x} vs {y}");
    }
}
