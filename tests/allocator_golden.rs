//! Golden outputs of the A/B allocator, written by the implementation of
//! commit "allocator goldens" and kept in tests/fixtures/allocator.json, so a
//! rewrite must compute the same thing bit for bit:
//!
//! - assignments of 600 unit keys (ASCII and not) to experiments of every
//!   hash version, with coverage, holdouts, namespaces and a fallback;
//! - a two-tab bandit script: each assignment (variant, reason,
//!   probability, bucket, trial seed, new exposure), each reward's outcome,
//!   and the exact bytes of every snapshot written;
//! - a corpus of damaged `experiments` sections (every byte set to 0, 0xff
//!   and +1, every truncation, seeded multi-byte mutations), each with the
//!   error code a restore refuses it with, or a checksum of what a restore
//!   read and of what a sync merged onto it wrote.
//!
//! Regenerate only after an intended change of output, with
//! `INSITU_BLESS=1 cargo test --test allocator_golden`.

use insitu::{crc32, Allocator, Assignment, Experiments, Rng, Snapshot};
use serde_json::{json, Value};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/allocator.json");
const MAX: usize = 1 << 16;
const DAY: f64 = 86_400_000.0;

fn config() -> Value {
    json!([
        {"key": "hero", "variants": ["a", "b", "c"], "weights": [0.2, 0.3, 0.5], "coverage": 0.8,
         "holdout": {"key": "global", "fraction": 0.1}},
        {"key": "left", "variants": ["x", "y"], "namespace": {"name": "layer", "range": [0, 0.5]},
         "holdout": {"key": "global", "fraction": 0.1}},
        {"key": "right", "variants": ["x", "y", "z", "w"], "weights": [0.1, 0.2, 0.3, 0.4],
         "namespace": {"name": "layer", "range": [0.5, 1]}, "seed": "s\u{e9}ed \u{1f600}"},
        {"key": "gb1", "variants": ["a", "b"], "weights": [0.4, 0.6], "hash": "growthbook/1",
         "seed": "gr\u{fc}n-\u{1f600}", "coverage": 0.7, "namespace": {"name": "gb", "range": [0.1, 0.9]}},
        {"key": "gb2", "variants": ["a", "b", "c"], "hash": "growthbook/2", "coverage": 0.9,
         "holdout": {"key": "gbh", "fraction": 0.05}},
        {"key": "gb2ns", "variants": ["a", "b"], "hash": "growthbook/2", "seed": "x",
         "namespace": {"name": "gbl", "range": [0.2, 0.6]}},
        {"key": "zero", "variants": ["a", "b", "c"], "weights": [0, 1, 0], "fallback": "c"},
        {"key": "bandit", "variants": ["a", "b", "c"],
         "allocation": {"type": "thompson", "prior": {"b": [3, 1]}, "minProbability": 0.1,
                        "samples": 256, "rewardWindowMs": 1000}},
        {"key": "bandit2", "variants": ["p", "q"], "coverage": 0.5,
         "allocation": {"type": "thompson", "rewardWindowMs": 500, "samples": 64}},
    ])
}

fn experiments() -> Experiments {
    Experiments::parse(&config().to_string()).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn assignment(r: &Assignment) -> Value {
    json!([
        r.variant,
        r.reason.name(),
        r.probability,
        r.bucket,
        r.seed,
        r.new_exposure
    ])
}

/// Assignments of unit keys `u0..u499` and 100 non-ASCII ones, per
/// experiment: one string of `variant reason-initial` pairs each.
fn assignments() -> Value {
    let mut a = Allocator::new(experiments(), 1);
    let units: Vec<String> = (0..500)
        .map(|i| format!("u{i}"))
        .chain((0..100).map(|i| format!("\u{fc}-{i}-\u{1f600}")))
        .collect();
    let mut out = serde_json::Map::new();
    let set = experiments();
    for i in 0..set.list().len() {
        let mut s = String::new();
        for u in &units {
            a.set_site_unit(Some(u)).unwrap();
            let r = a.assign(i, i != 6 || u.len() % 7 != 0, 0.0).unwrap();
            s.push_str(&r.variant.to_string());
            s.push_str(&r.reason.name()[..1]);
            if let Some(b) = r.bucket {
                s.push_str(&format!("@{b}"));
            }
            s.push(' ');
        }
        out.insert(set.key(i).unwrap().to_string(), json!(s));
    }
    Value::Object(out)
}

/// Two tabs sharing one store: assignments, rewards, syncs and restores.
fn script() -> Value {
    let mut log = Vec::new();
    let mut tabs = [
        Allocator::new(experiments(), 11),
        Allocator::new(experiments(), 12),
    ];
    tabs[0].set_device_unit("d:0123456789abcdef").unwrap();
    let mut stored: Option<Vec<u8>> = None;
    for round in 0..24u32 {
        for (t, tab) in tabs.iter_mut().enumerate() {
            let now = 1_700_000_000_000.0 + (round * 700 + t as u32 * 301) as f64;
            if round == 3 && t == 1 {
                let r = tab.restore(stored.as_deref().unwrap(), now, MAX);
                log.push(json!(["restore", t, r.is_ok()]));
            }
            if round == 9 {
                tab.set_site_unit(Some(&format!("site-{t}"))).unwrap();
            }
            if round == 14 {
                tab.set_site_unit(None).unwrap();
            }
            if round == 18 && t == 1 {
                tab.use_device_unit("d:forced").unwrap();
            }
            for i in [0, 1, 4, 7, 8] {
                let r = tab.assign(i, true, now).unwrap();
                log.push(json!(["assign", t, i, assignment(&r)]));
            }
            for (i, reward) in [(7, (round % 3) as f64 / 2.0), (8, 1.0)] {
                if (round + t as u32 + i as u32) % 2 == 0 {
                    let r = tab.reward(i, reward, now + 5.0);
                    log.push(json!(["reward", t, i, r.map_err(|e| e.code())]));
                }
            }
            log.push(json!([
                "counts",
                t,
                tab.bandit_counts(7).unwrap(),
                tab.pending()
            ]));
            if (round + t as u32) % 4 == 1 {
                // What consent `functional` writes (not committed: what a
                // commit does with pending settlements then is not pinned).
                if round % 3 == 0 {
                    let b = tab
                        .sync(stored.as_deref(), now + 9.0, MAX, DAY, false)
                        .unwrap();
                    log.push(json!(["sync", t, false, tab.pending(), hex(&b)]));
                }
                let b = tab
                    .sync(stored.as_deref(), now + 10.0, MAX, DAY, true)
                    .unwrap();
                log.push(json!(["sync", t, true, hex(&b)]));
                if round % 7 != 3 {
                    assert!(tab.commit());
                    stored = Some(b);
                }
            }
        }
    }
    // Functional consent (not committed), then a page that forgets.
    let b = tabs[1]
        .sync(stored.as_deref(), 1.8e12, MAX, DAY, false)
        .unwrap();
    log.push(json!(["sync", 1, false, tabs[1].pending(), hex(&b)]));
    tabs[0].drop_device_unit();
    let b = tabs[0].sync(Some(&b), 1.8e12, MAX, 1e12, true).unwrap();
    log.push(json!(["sync", 0, true, hex(&b)]));
    Value::Array(log)
}

/// The stored snapshot the corpus damages: exposures, both bandits with
/// counts, trials (one settled) and settled seeds.
fn corpus_seed() -> Vec<u8> {
    let mut a = Allocator::new(experiments(), 5);
    a.set_device_unit("d:corpus").unwrap();
    for (t, i) in [0, 1, 3, 4, 7, 8, 7].into_iter().enumerate() {
        let now = 1_000_000.0 + t as f64 * 600.0;
        a.assign(i, true, now).unwrap();
        if i >= 7 {
            a.reward(i, 1.0, now + 1.0).unwrap();
        }
    }
    a.set_site_unit(Some("site")).unwrap();
    a.assign(0, true, 1_010_000.0).unwrap();
    a.assign(8, true, 1_010_000.0).unwrap();
    let b = a.sync(None, 1_010_001.0, MAX, 1e12, true).unwrap();
    assert!(a.commit());
    b
}

/// A page with state of its own, to merge each corpus entry onto.
fn page() -> Allocator {
    let mut a = Allocator::new(experiments(), 6);
    a.set_device_unit("d:page").unwrap();
    for i in [0, 7, 8] {
        a.assign(i, true, 1_000_500.0).unwrap();
    }
    a.reward(7, 0.5, 1_000_600.0).unwrap();
    a
}

fn outcome(body: &[u8], snap: &Snapshot) -> String {
    let mut s = snap.clone();
    s.set_section("experiments", body.to_vec());
    let bytes = s.encode(MAX).unwrap();
    let mut fresh = Allocator::new(experiments(), 7);
    match fresh.restore(&bytes, 1_020_000.0, MAX) {
        Err(e) => {
            let mut p = page();
            let e2 = p
                .sync(Some(&bytes), 1_020_000.0, MAX, 1e12, true)
                .unwrap_err();
            assert_eq!(e.code(), e2.code());
            e.code().to_string()
        }
        Ok(()) => {
            let read = fresh.sync(None, 1_020_000.0, MAX, 1e12, true).unwrap();
            let merged = page()
                .sync(Some(&bytes), 1_020_000.0, MAX, 1e12, true)
                .unwrap();
            format!("ok:{:08x}:{:08x}", crc32(&read), crc32(&merged))
        }
    }
}

fn corpus() -> Value {
    let snap = Snapshot::decode(&corpus_seed(), MAX).unwrap();
    let body = snap.section("experiments").unwrap().to_vec();
    let mut out = Vec::new();
    for i in 0..body.len() {
        let mut row = Vec::new();
        for v in [0u8, 0xff, body[i].wrapping_add(1)] {
            let mut b = body.clone();
            b[i] = v;
            row.push(outcome(&b, &snap));
        }
        row.push(outcome(&body[..i], &snap));
        out.push(row.join(" "));
    }
    let mut rng = Rng::new(0x601d);
    let mut random = Vec::new();
    for _ in 0..300 {
        let mut b = body.clone();
        for _ in 0..=rng.next_u64() % 3 {
            let i = (rng.next_u64() % b.len().max(1) as u64) as usize;
            let last = b.len() - 1;
            match rng.next_u64() % 4 {
                0 => b[i.min(last)] = rng.next_u64() as u8,
                1 => b.insert(i, rng.next_u64() as u8),
                2 => {
                    let j = (i + 1 + (rng.next_u64() % 40) as usize).min(b.len());
                    let copy = b[i..j].to_vec();
                    b.splice(i..i, copy);
                }
                _ => {
                    b.remove(i.min(last));
                }
            }
        }
        random.push(outcome(&b, &snap));
    }
    json!({"seed": hex(&body), "each_byte": out, "random": random.join(" ")})
}

fn compute() -> Value {
    json!({"config": config(), "assignments": assignments(), "script": script(), "corpus": corpus()})
}

#[test]
fn the_allocator_reproduces_its_golden_outputs() {
    let got = compute();
    if std::env::var("INSITU_BLESS").is_ok() {
        std::fs::write(PATH, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    assert_eq!(got["config"], want["config"]);
    for (k, v) in want["assignments"].as_object().unwrap() {
        assert_eq!(&got["assignments"][k], v, "assignments of {k}");
    }
    let (g, w) = (
        got["script"].as_array().unwrap(),
        want["script"].as_array().unwrap(),
    );
    assert_eq!(g.len(), w.len());
    for (i, (g, w)) in g.iter().zip(w).enumerate() {
        assert_eq!(g, w, "script step {i}");
    }
    let (g, w) = (&got["corpus"], &want["corpus"]);
    assert_eq!(g["seed"], w["seed"], "the corpus seed section");
    for (i, (g, w)) in g["each_byte"]
        .as_array()
        .unwrap()
        .iter()
        .zip(w["each_byte"].as_array().unwrap())
        .enumerate()
    {
        assert_eq!(g, w, "corpus, byte {i} set to 0, 0xff, +1, cut");
    }
    assert_eq!(g["random"], w["random"], "corpus, seeded mutations");
    // Not degenerate: the corpus has refusals of several kinds and reads.
    let all = w["random"].as_str().unwrap().to_string()
        + &w["each_byte"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ");
    for want in ["ok:", "SNAPSHOT_CORRUPT", "SNAPSHOT_VERSION"] {
        assert!(all.contains(want), "no {want} in the corpus");
    }
}
