//! The golden decision sequence in tests/fixtures/determinism.json is replayed
//! here natively, in wasm (src/wasm/tests.rs) and from JS (tests/js). Equal
//! results everywhere prove that a seed reproduces a decision on any platform.
//!
//! Regenerate after an intended change with `INSITU_BLESS=1 cargo test --test determinism`.

use insitu::{Engine, EngineConfig, RankOptions};
use serde_json::{json, Value};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/determinism.json"
);

fn scenario() -> Value {
    let sections = ["news", "sports", "tech"];
    let steps: Vec<Value> = (0..40)
        .map(|t| {
            json!({
                "rank": {"context": {"page": {"section": sections[t % 3], "scroll": (t % 7) as f64 / 7.0},
                                     "user": {"tags": ["x", if t % 2 == 0 { "even" } else { "odd" }]}},
                         "now": t * 1000},
                "now": t * 1000 + 500,
            })
        })
        .collect();
    json!({
        // Thompson sampling: the policy that draws the most from the seed.
        "options": {"variants": ["hero-a", "hero-b", "hero-c"], "seed": 20261122,
                    "features": {"bits": 5, "allow": ["page", "user"]},
                    "policy": {"type": "thompson"}},
        "steps": steps,
    })
}

fn run(fixture: &mut Value) {
    let mut engine = Engine::new(EngineConfig::parse(&fixture["options"].to_string(), 0).unwrap());
    for step in fixture["steps"].as_array_mut().unwrap() {
        let text = step["rank"].to_string();
        let rank = RankOptions::parse(&text).unwrap();
        let d = engine.rank(&rank, rank.now.unwrap()).unwrap();
        // The hidden preference: hero-b on sports, hero-a elsewhere.
        let section = step["rank"]["context"]["page"]["section"].as_str().unwrap();
        let liked = if section == "sports" {
            "hero-b"
        } else {
            "hero-a"
        };
        let reward = if d.variant == liked { 1.0 } else { 0.0 };
        engine
            .reward(
                d.decision_id.as_deref().unwrap(),
                reward,
                step["now"].as_f64().unwrap(),
            )
            .unwrap();
        step["variant"] = json!(d.variant);
        step["probability"] = json!(d.probability);
        step["seed"] = json!(d.seed.unwrap());
        step["reward"] = json!(reward);
    }
}

#[test]
fn golden_sequence_replays_exactly() {
    let mut got = scenario();
    run(&mut got);
    if std::env::var("INSITU_BLESS").is_ok() {
        std::fs::write(PATH, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    assert_eq!(got["options"], want["options"]);
    let (g, w) = (
        got["steps"].as_array().unwrap(),
        want["steps"].as_array().unwrap(),
    );
    assert_eq!(g.len(), w.len());
    if let Some(i) = (0..g.len()).find(|&i| g[i] != w[i]) {
        panic!(
            "decisions changed at step {i}: a seed no longer reproduces its decision\n got: {}\nwant: {}",
            g[i], w[i]
        );
    }
    // Not degenerate: several variants were chosen and some probabilities are below 1.
    let steps = want["steps"].as_array().unwrap();
    let distinct: std::collections::BTreeSet<_> = steps
        .iter()
        .map(|s| s["variant"].as_str().unwrap())
        .collect();
    assert!(distinct.len() >= 2);
    assert!(steps
        .iter()
        .any(|s| s["probability"].as_f64().unwrap() < 0.99));
}
