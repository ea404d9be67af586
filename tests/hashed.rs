//! The pre-hashed entry (`rank_hashed`, used by the JS boundary's fast path)
//! must decide exactly as the JSON entry does for the same context.

use insitu::{hash, Engine, EngineConfig, Hashed, RankOptions, Rng};

enum Value {
    Num(f64),
    Bool(bool),
    Cat(String),
    List(Vec<String>),
}

/// A random context: (namespace, [(name, value)]) in text order.
fn context(rng: &mut Rng) -> Vec<(&'static str, Vec<(String, Value)>)> {
    let mut out = Vec::new();
    for ns in ["user", "page", "ignored"] {
        let n = (rng.next_u64() % 6) as usize;
        let feats = (0..n)
            .map(|i| {
                let name = format!("f{}-{i}", rng.next_u64() % 5);
                let v = match rng.next_u64() % 4 {
                    0 => Value::Num(rng.normal() * 10.0),
                    1 => Value::Bool(rng.next_u64() % 2 == 0),
                    2 => Value::Cat(format!("v{}é", rng.next_u64() % 7)),
                    _ => Value::List(
                        (0..rng.next_u64() % 3)
                            .map(|j| format!("t{j}{}", rng.next_u64() % 4))
                            .collect(),
                    ),
                };
                (name, v)
            })
            .collect();
        out.push((ns, feats));
    }
    out
}

fn to_json(ctx: &[(&str, Vec<(String, Value)>)], seed: u64) -> String {
    let ns: Vec<String> = ctx
        .iter()
        .map(|(ns, feats)| {
            let fs: Vec<String> = feats
                .iter()
                .map(|(name, v)| {
                    let v = match v {
                        Value::Num(x) => format!("{x:?}"),
                        Value::Bool(b) => b.to_string(),
                        Value::Cat(s) => format!("\"{s}\""),
                        Value::List(l) => format!(
                            "[{}]",
                            l.iter()
                                .map(|s| format!("\"{s}\""))
                                .collect::<Vec<_>>()
                                .join(",")
                        ),
                    };
                    format!("\"{name}\":{v}")
                })
                .collect();
            format!("\"{ns}\":{{{}}}", fs.join(","))
        })
        .collect();
    format!("{{\"context\":{{{}}},\"seed\":{seed}}}", ns.join(","))
}

fn to_hashed(engine: &Engine, ctx: &[(&str, Vec<(String, Value)>)]) -> Vec<Hashed> {
    let (allow, _) = engine.namespaces();
    let mut out = Vec::new();
    for (ns, feats) in ctx {
        let Some(i) = allow.iter().position(|a| a == ns) else {
            continue;
        };
        let seed = hash::namespace_seed(ns);
        for (name, v) in feats {
            match v {
                Value::Num(x) => out.push(Hashed::new(i, hash::numeric(seed, name), *x)),
                Value::Bool(b) => out.push(Hashed::new(
                    i,
                    hash::numeric(seed, name),
                    f64::from(u8::from(*b)),
                )),
                Value::Cat(s) => out.push(Hashed::new(i, hash::categorical(seed, name, s), 1.0)),
                Value::List(l) => {
                    for s in l {
                        out.push(Hashed::new(i, hash::categorical(seed, name, s), 1.0));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn hashed_and_json_entries_decide_alike() {
    let opts = r#"{"variants":["a","b","c","d"],"features":{"bits":7,"allow":["page","user"],
        "interactions":[["page","user"],["user","user"]]},"policy":{"type":"linucb"},"seed":3}"#;
    let mut by_json = Engine::new(EngineConfig::parse(opts, 0).unwrap());
    let mut by_hash = by_json.clone();
    let mut rng = Rng::new(11);
    for t in 0..400 {
        let ctx = context(&mut rng);
        let seed = rng.next_seed();
        let text = to_json(&ctx, seed);
        let a = by_json
            .rank_choice(&RankOptions::parse(&text).unwrap(), t as f64)
            .unwrap();
        let pmf_a = by_json.last_pmf().to_vec();
        let b = by_hash
            .rank_hashed(
                &to_hashed(&by_hash, &ctx),
                None,
                Some(seed),
                false,
                t as f64,
            )
            .unwrap();
        assert_eq!(a, b, "step {t}: {text}");
        assert_eq!(pmf_a, by_hash.last_pmf(), "step {t}");
        let r = if a.index == t % 4 { 1.0 } else { 0.0 };
        by_json.reward(&a.decision_id(), r, t as f64).unwrap();
        by_hash.reward_id(b.epoch, b.counter, r, t as f64).unwrap();
    }
}

#[test]
fn hashed_entry_rejects_what_the_boundary_must_not_send() {
    let opts = r#"{"variants":["a","b"],"features":{"allow":["page"]},"seed":1}"#;
    let mut e = Engine::new(EngineConfig::parse(opts, 0).unwrap());
    let before = format!("{e:?}");
    let cases = [
        (vec![Hashed::new(1, 5, 1.0)], "INVALID_CONTEXT"),
        (vec![Hashed::new(0, 5, f64::NAN)], "NON_FINITE_FEATURE"),
        (vec![Hashed::new(0, 5, 1.0); 257], "TOO_MANY_FEATURES"),
    ];
    for (feats, code) in cases {
        assert_eq!(
            e.rank_hashed(&feats, None, None, false, 0.0)
                .unwrap_err()
                .code(),
            code
        );
    }
    let err = e
        .rank_hashed(&[], None, Some(1 << 53), false, 0.0)
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_OPTION");
    let err = e.rank_hashed(&[], None, None, false, f64::NAN).unwrap_err();
    assert_eq!(err.code(), "INVALID_OPTION");
    assert_eq!(
        format!("{e:?}"),
        before,
        "a rejected call changed the engine"
    );
}

#[test]
fn decision_ids_round_trip_and_only_canonical_ids_parse() {
    for (epoch, counter) in [(0, 1), (0xffff_ffff_ffff, 0xabc), (255, 10), (7, 0)] {
        let c = insitu::Choice {
            index: 0,
            probability: 1.0,
            seed: 0,
            epoch,
            counter,
        };
        let id = c.decision_id();
        assert_eq!(id.len(), 13 + counter.to_string().len(), "{id}");
        assert_eq!(insitu::parse_decision_id(&id), Some((epoch, counter)));
    }
    let ok = "00000000000a-12";
    assert_eq!(insitu::parse_decision_id(ok), Some((10, 12)));
    for bad in [
        "",
        "-",
        "00000000000a",
        "00000000000a-",
        "00000000000a-012",
        "00000000000A-1",
        "0000000000a-1",
        "00000000000a-1-1",
        "00000000000g-1",
        "00000000000a-+1",
        "00000000000a-12345678901234567",
        " 00000000000a-1",
    ] {
        assert_eq!(insitu::parse_decision_id(bad), None, "{bad:?}");
    }
}

#[test]
fn ids_of_another_engine_are_unknown() {
    // Two slots, or two page views, configured alike (same seed): the epoch
    // comes from the caller's entropy, not the seed (found in review).
    let opts = r#"{"variants":["a","b"],"seed":1}"#;
    let mut a = Engine::new(EngineConfig::parse(opts, 11).unwrap());
    let mut b = Engine::new(EngineConfig::parse(opts, 12).unwrap());
    assert_ne!(a.decision_prefix(), b.decision_prefix());
    let da = a.rank(&RankOptions::default(), 0.0).unwrap();
    let db = b.rank(&RankOptions::default(), 0.0).unwrap();
    // Same seed: the same decision, under different ids.
    assert_eq!(
        (da.variant.as_str(), da.seed),
        (db.variant.as_str(), db.seed)
    );
    let (ida, idb) = (da.decision_id.unwrap(), db.decision_id.unwrap());
    assert!(ida.starts_with(&a.decision_prefix()));
    assert_eq!(
        b.reward(&ida, 1.0, 1.0).unwrap_err().code(),
        "UNKNOWN_DECISION"
    );
    assert_eq!(b.updates(), [0, 0]);
    b.reward(&idb, 1.0, 1.0).unwrap();
    a.reward(&ida, 1.0, 1.0).unwrap();
}

#[test]
fn overflowing_values_are_refused_before_anything_changes() {
    let opts = r#"{"variants":["a","b"],"features":{"allow":["page"],"interactions":[["page","page"]]},"seed":4}"#;
    let mut e = Engine::new(EngineConfig::parse(opts, 1).unwrap());
    let twin = e.clone();
    let rank = |e: &mut Engine, ctx: &str| {
        let text = format!(r#"{{"context":{ctx}}}"#);
        e.rank(&RankOptions::parse(&text).unwrap(), 0.0)
            .map(|d| d.variant)
    };
    // JSON text can hold a number beyond f64; a product can overflow; a finite
    // value can make the score variance overflow (found in review: these gave
    // NaN scores and a pmf that did not sum to 1).
    let cases = [
        (r#"{"page":{"x":1e400}}"#, "NON_FINITE_FEATURE"),
        (r#"{"page":{"x":1e200,"y":1e200}}"#, "NON_FINITE_FEATURE"),
        (r#"{"page":{"x":1e300}}"#, "NUMERICAL_ERROR"),
    ];
    for (ctx, code) in cases {
        assert_eq!(rank(&mut e, ctx).unwrap_err().code(), code, "{ctx}");
    }
    assert_eq!(e.pending_count(), 0);
    // Nothing changed: the next decision is the one a fresh twin makes.
    let mut twin = twin;
    assert_eq!(
        rank(&mut e, r#"{"page":{"x":1}}"#).unwrap(),
        rank(&mut twin, r#"{"page":{"x":1}}"#).unwrap()
    );
    let (a, b) = (
        e.rank(&RankOptions::default(), 1.0).unwrap(),
        twin.rank(&RankOptions::default(), 1.0).unwrap(),
    );
    assert_eq!((a.seed, a.pmf), (b.seed, b.pmf));
}
