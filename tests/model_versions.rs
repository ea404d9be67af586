//! The model version (the content hash of a slot's prior) is shared with
//! the TypeScript validators, which compute it for the .wasm: both are
//! checked against one golden fixture, so neither can drift. A change here
//! would orphan every stored learner section.

use std::collections::BTreeMap;

use insitu::{Engine, EngineConfig};
use serde_json::value::RawValue;

type Fields = BTreeMap<String, Box<RawValue>>;

#[test]
fn model_versions_match_the_golden_fixture() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/model-versions.json"
    ))
    .unwrap();
    let doc: Fields = serde_json::from_str(&text).unwrap();
    let cases: Vec<Fields> = serde_json::from_str(doc["cases"].get()).unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let name: String = serde_json::from_str(case["name"].get()).unwrap();
        let version: String = serde_json::from_str(case["version"].get()).unwrap();
        // The raw option text goes through the crate's own JSON reader,
        // which reads a lone surrogate escape as U+FFFD, as JS's
        // TextEncoder does; serde_json would refuse it.
        let cfg =
            EngineConfig::parse(case["options"].get(), 0).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(Engine::new(cfg).model_version(), version, "{name}");
    }
}
