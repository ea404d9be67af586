//! "Why this variant": explanations add up to the scores `rank` uses, name
//! what was learned, and change nothing.

use insitu::{Engine, EngineConfig, ExplainOptions, LearnOptions, RankOptions, Rng};

fn engine(options: &str) -> Engine {
    Engine::new(EngineConfig::parse(options, 7).unwrap())
}

fn explain(e: &Engine, options: &str) -> insitu::NamedExplanation {
    e.explain(&ExplainOptions::parse(options).unwrap()).unwrap()
}

fn learn(e: &mut Engine, context: &str, variant: &str, reward: f64) {
    let o = format!(r#"{{"context":{context},"variant":"{variant}","reward":{reward}}}"#);
    e.learn(&LearnOptions::parse(&o).unwrap()).unwrap();
}

/// Variant `b` pays on sports pages and not on news; `a` pays half
/// everywhere. Every section meets every device equally often, so the
/// device tells the variants nothing.
fn trained() -> Engine {
    let mut e =
        engine(r#"{"variants":["a","b"],"features":{"bits":18,"allow":["page","user"]},"seed":3}"#);
    for t in 0..200 {
        let section = if t % 2 == 0 { "sports" } else { "news" };
        let device = if (t / 2) % 2 == 0 {
            "mobile"
        } else {
            "desktop"
        };
        let ctx = format!(r#"{{"page":{{"section":"{section}"}},"user":{{"device":"{device}"}}}}"#);
        learn(&mut e, &ctx, "a", 0.5);
        learn(
            &mut e,
            &ctx,
            "b",
            if section == "sports" { 1.0 } else { 0.0 },
        );
    }
    e
}

#[test]
fn the_learned_feature_is_the_top_contribution() {
    let e = trained();
    let sports = r#"{"page":{"section":"sports"},"user":{"device":"mobile"}}"#;
    let x = explain(&e, &format!(r#"{{"context":{sports}}}"#));
    // No variant given: the best by mean score, which on sports is b.
    assert_eq!((x.variant.as_str(), x.index, x.best), ("b", 1, 1));
    assert_eq!(x.updates, 200);
    let top = &x.contributions[0];
    assert_eq!(top.feature, "page.section=sports");
    assert!(top.contribution > 0.3, "{top:?}");
    assert_eq!(top.value, 1.0);
    assert!(!top.shared);
    // Every visit had one device or the other, so the device terms share
    // the intercept with the bias; being balanced, both learn the same
    // weight, smaller than the section's.
    let device = |x: &insitu::NamedExplanation, d: &str| {
        let name = format!("user.device={d}");
        x.contributions
            .iter()
            .find(|c| c.feature == name)
            .unwrap()
            .contribution
    };
    let desktop = r#"{"page":{"section":"sports"},"user":{"device":"desktop"}}"#;
    let z = explain(&e, &format!(r#"{{"context":{desktop}}}"#));
    // (Equal up to the diagonal approximation wide tables use, which
    // depends a little on the order: 5e-5 here.)
    assert!((device(&x, "mobile") - device(&z, "desktop")).abs() < 1e-3);
    assert!((x.score - z.score).abs() < 1e-3);
    assert!(device(&x, "mobile") < top.contribution / 2.0, "{x:?}");

    // On news pages the same variant's section term pulls the other way.
    let news = r#"{"page":{"section":"news"},"user":{"device":"mobile"}}"#;
    let y = explain(&e, &format!(r#"{{"context":{news},"variant":"b"}}"#));
    assert_eq!(y.best, 0);
    assert_eq!(y.contributions[0].feature, "page.section=news");
    assert!(y.contributions[0].contribution < -0.3, "{y:?}");
    // Sports has been seen, but it is not in this context, so not listed.
    assert!(y
        .contributions
        .iter()
        .all(|c| !c.feature.contains("sports")));
}

#[test]
fn contributions_add_up_to_the_scores_rank_uses() {
    // One slot per feature (the default) and two (each feature one term
    // whose weight is its two slots' signed sum).
    for slots in [1, 2] {
        contributions_add_up_with(slots);
    }
}

fn contributions_add_up_with(slots: u8) {
    let mut e = engine(&format!(
        r#"{{"variants":[{{"id":"calm","features":{{"variant":{{"tone":"calm"}}}}}},
                        {{"id":"urgent","features":{{"variant":{{"tone":"urgent","size":2}}}}}}],
            "features":{{"bits":10,"allow":["page","variant"],"interactions":[["page","variant"]],
                         "slotsPerFeature":{slots}}},
            "policy":{{"type":"thompson"}},"seed":5}}"#
    ));
    let mut rng = Rng::new(11);
    let sections = ["sports", "news", "food"];
    let ctx = |rng: &mut Rng| {
        let s = sections[(rng.next_u64() % 3) as usize];
        let p = (rng.next_f64() * 100.0).round() / 10.0;
        format!(r#"{{"page":{{"section":"{s}","price":{p},"tags":["a","b"]}}}}"#)
    };
    for _ in 0..300 {
        let c = ctx(&mut rng);
        let v = if rng.next_f64() < 0.5 {
            "calm"
        } else {
            "urgent"
        };
        let r = if c.contains("sports") && v == "urgent" {
            1.0
        } else {
            0.2
        };
        learn(&mut e, &c, v, r);
    }
    for _ in 0..20 {
        let c = ctx(&mut rng);
        let d = e
            .rank(
                &RankOptions::parse(&format!(r#"{{"context":{c}}}"#)).unwrap(),
                0.0,
            )
            .unwrap();
        for v in ["calm", "urgent"] {
            let x = explain(
                &e,
                &format!(r#"{{"context":{c},"variant":"{v}","top":64}}"#),
            );
            // Same vectors, same weights, same sums as the decision.
            assert_eq!(x.scores, d.scores);
            let listed: f64 = x.contributions.iter().map(|c| c.contribution).sum();
            assert!((x.bias + listed - x.score).abs() < 1e-9, "{x:?}");
            assert!(x.other.abs() < 1e-9, "every term fits in 64: {}", x.other);
            // Largest first.
            let sizes: Vec<f64> = x
                .contributions
                .iter()
                .map(|c| c.contribution.abs())
                .collect();
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
            for c in &x.contributions {
                assert_eq!(c.contribution, c.value * c.weight);
            }
            // 3 page features, 1 or 2 variant features, and their crosses.
            let own = if v == "calm" { 1 } else { 2 };
            assert_eq!(x.contributions.len(), 4 + own + 4 * own, "{x:?}");
            assert!(x.sd.iter().all(|s| s.is_finite() && *s > 0.0));
        }
        // With a short list, what is left over is `other`.
        let x = explain(
            &e,
            &format!(r#"{{"context":{c},"variant":"urgent","top":2}}"#),
        );
        assert_eq!(x.contributions.len(), 2);
        let listed: f64 = x.contributions.iter().map(|c| c.contribution).sum();
        assert!((x.bias + listed + x.other - x.score).abs() < 1e-12);
    }
    // Interactions are named by both sides.
    let c = r#"{"page":{"section":"sports"}}"#;
    let x = explain(
        &e,
        &format!(r#"{{"context":{c},"variant":"urgent","top":64}}"#),
    );
    let names: Vec<&str> = x.contributions.iter().map(|c| c.feature.as_str()).collect();
    for want in [
        "page.section=sports",
        "variant.tone=urgent",
        "variant.size",
        "page.section=sports × variant.tone=urgent",
        "page.section=sports × variant.size",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert_eq!(names.len(), 5);
}

#[test]
fn per_call_actions_are_explained_like_rank() {
    let mut e = engine(
        r#"{"variants":["x","y"],"features":{"bits":12,"allow":["item","page"],"interactions":[["page","item"]]},"seed":1}"#,
    );
    let features = r#""context":{"page":{"section":"news"}},"actions":[{"item":{"kind":"video"}},{"item":{"kind":"text","len":3}}]"#;
    for _ in 0..50 {
        let l = format!(r#"{{{features},"variant":"y","reward":1}}"#);
        e.learn(&LearnOptions::parse(&l).unwrap()).unwrap();
    }
    let d = e
        .rank(
            &RankOptions::parse(&format!("{{{features}}}")).unwrap(),
            0.0,
        )
        .unwrap();
    let x = explain(&e, &format!(r#"{{{features},"variant":"y","top":64}}"#));
    assert_eq!(x.scores, d.scores);
    assert_eq!(x.best, 1);
    let names: Vec<&str> = x.contributions.iter().map(|c| c.feature.as_str()).collect();
    assert!(names.contains(&"item.kind=text") && names.contains(&"item.len"));
    // Interactions name the namespaces in allowlist order.
    assert!(
        names.contains(&"item.kind=text × page.section=news"),
        "{names:?}"
    );
    assert!(names.contains(&"item.len × page.section=news"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("video")));
    assert_eq!(names.len(), 5);
}

#[test]
fn shared_slots_are_marked_and_repeats_merge() {
    // 16 slots: among 12 features some must share a slot (or the bias's).
    let mut e = engine(
        r#"{"variants":["a","b"],"features":{"bits":4,"allow":["p"],"slotsPerFeature":1},"seed":2}"#,
    );
    let names: Vec<String> = (0..12).map(|i| format!("f{i}")).collect();
    let body: Vec<String> = names.iter().map(|n| format!(r#""{n}":1"#)).collect();
    let ctx = format!(r#"{{"p":{{{}}}}}"#, body.join(","));
    for _ in 0..20 {
        learn(&mut e, &ctx, "a", 1.0);
    }
    let x = explain(
        &e,
        &format!(r#"{{"context":{ctx},"variant":"a","top":64}}"#),
    );
    assert_eq!(x.contributions.len(), 12);
    // Recompute which slots are shared from the published hash.
    let seed = insitu::hash::namespace_seed("p");
    let slot = |n: &str| insitu::hash::numeric(seed, n) & 15;
    let bias = insitu::hash::constant() & 15;
    for c in &x.contributions {
        let name = c.feature.trim_start_matches("p.");
        let s = slot(name);
        let crowded = s == bias || names.iter().any(|o| o != name && slot(o) == s);
        assert_eq!(c.shared, crowded, "{c:?}");
    }
    assert!(x.contributions.iter().any(|c| c.shared));

    // A list naming one value twice is one term with value 2.
    let e = trained();
    let x = explain(
        &e,
        r#"{"context":{"page":{"section":["sports","sports"]}},"variant":"b","top":64}"#,
    );
    assert_eq!(x.contributions.len(), 1, "{x:?}");
    assert_eq!(x.contributions[0].value, 2.0);
    assert!((x.bias + x.contributions[0].contribution - x.score).abs() < 1e-12);
}

#[test]
fn bad_options_get_codes() {
    let e = trained();
    let code = |o: &str| match ExplainOptions::parse(o) {
        Err(err) => err.code(),
        Ok(opts) => e.explain(&opts).unwrap_err().code(),
    };
    assert_eq!(code(r#"{"variant":"zz"}"#), "UNKNOWN_VARIANT");
    assert_eq!(code(r#"{"top":0}"#), "INVALID_OPTION");
    assert_eq!(code(r#"{"top":65}"#), "INVALID_OPTION");
    assert_eq!(code(r#"{"top":1.5}"#), "INVALID_OPTION");
    assert_eq!(code(r#"{"seed":1}"#), "INVALID_OPTION");
    assert_eq!(code(r#"{"variant":3}"#), "INVALID_OPTION");
    assert_eq!(
        code(r#"{"context":{"page":{"section":null}}}"#),
        "NON_FINITE_FEATURE"
    );
    assert_eq!(code(r#"{"context":{"page":3}}"#), "INVALID_CONTEXT");
    assert_eq!(code(r#"{"context":{"page":{"x":{}}}}"#), "INVALID_CONTEXT");
    assert_eq!(code(r#"{"actions":[{}]}"#), "INVALID_CONTEXT");
    let many: Vec<String> = (0..300).map(|i| format!("\"v{i}\"")).collect();
    let o = format!(r#"{{"context":{{"page":{{"t":[{}]}}}}}}"#, many.join(","));
    assert_eq!(code(&o), "TOO_MANY_FEATURES");
    // Non-allowlisted namespaces are dropped unread, as in rank.
    let x = explain(&e, r#"{"context":{"pii":{"email":null}},"variant":"a"}"#);
    assert!(x.contributions.is_empty());
    assert_eq!(x.bias, x.score);
}

/// Seeded property test: random option objects, valid and not, never panic;
/// every explanation adds up to its score and agrees with `rank`.
#[test]
fn random_options_explain_or_fail_with_a_code() {
    let mut e = engine(
        r#"{"variants":[{"id":"a","features":{"v":{"t":"x"}}},"b","c"],
            "features":{"bits":6,"allow":["p","q","v"],"interactions":[["p","v"],["q","q"]]},"seed":9}"#,
    );
    let mut rng = Rng::new(21);
    let pick = |rng: &mut Rng, n: u64| (rng.next_u64() % n) as usize;
    let value = |rng: &mut Rng| -> String {
        match pick(rng, 9) {
            0 => format!("{}", rng.next_f64() * 10.0 - 5.0),
            1 => r#""s""#.into(),
            2 => format!(r#""v{}""#, pick(rng, 4)),
            3 => r#"["x","y","x"]"#.into(),
            4 => "true".into(),
            5 => "null".into(),
            6 => "{}".into(),
            7 => "[1]".into(),
            _ => "1e308".into(),
        }
    };
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..2_000 {
        let mut ns = Vec::new();
        for name in ["p", "q", "v", "zz"] {
            if rng.next_f64() < 0.6 {
                let feats: Vec<String> = (0..pick(&mut rng, 4))
                    .map(|i| format!(r#""f{i}":{}"#, value(&mut rng)))
                    .collect();
                ns.push(format!(r#""{name}":{{{}}}"#, feats.join(",")));
            }
        }
        let context = format!("{{{}}}", ns.join(","));
        let mut fields = vec![format!(r#""context":{context}"#)];
        match pick(&mut rng, 6) {
            0 => fields.push(r#""variant":"b""#.into()),
            1 => fields.push(r#""variant":"nope""#.into()),
            2 => fields.push(format!(r#""top":{}"#, pick(&mut rng, 70))),
            3 => fields.push(r#""extra":1"#.into()),
            _ => {}
        }
        let text = format!("{{{}}}", fields.join(","));
        let result = ExplainOptions::parse(&text).and_then(|o| e.explain(&o));
        match result {
            Ok(x) => {
                ok += 1;
                let listed: f64 = x.contributions.iter().map(|c| c.contribution).sum();
                assert!(
                    (x.bias + listed + x.other - x.score).abs() < 1e-9,
                    "{text}: {x:?}"
                );
                let d = e
                    .rank(
                        &RankOptions::parse(&format!(r#"{{"context":{context}}}"#)).unwrap(),
                        0.0,
                    )
                    .unwrap();
                assert_eq!(x.scores, d.scores, "{text}");
                // Teach the engine something so later rounds explain real weights.
                let reward = if d.variant == "a" { 1.0 } else { 0.0 };
                e.reward(d.decision_id.as_deref().unwrap(), reward, 0.0)
                    .unwrap();
            }
            Err(err) => {
                failed += 1;
                let known = [
                    "INVALID_OPTION",
                    "INVALID_CONTEXT",
                    "NON_FINITE_FEATURE",
                    "UNKNOWN_VARIANT",
                    "TOO_MANY_FEATURES",
                    "NUMERICAL_ERROR",
                ];
                assert!(known.contains(&err.code()), "{text}: {err}");
            }
        }
    }
    // Both paths were exercised.
    assert!(ok > 200 && failed > 200, "{ok} explained, {failed} refused");
}
