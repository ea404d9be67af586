//! The model version (the content hash of a slot's prior) is shared with
//! the TypeScript validators, which compute it for the .wasm: both are
//! checked against one golden fixture, so neither can drift. A change here
//! would orphan every stored learner section.

use std::collections::BTreeMap;

use insitu::{Engine, EngineConfig};
use serde_json::value::RawValue;

type Fields = BTreeMap<String, Box<RawValue>>;

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/model-versions.json"
);

#[test]
fn model_versions_match_the_golden_fixture() {
    let text = std::fs::read_to_string(PATH).unwrap();
    let mut blessed = Vec::new();
    let mut from = 0;
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
        let got = Engine::new(cfg).model_version().to_string();
        // Each case's version, in file order after the previous one's.
        let at = from
            + text[from..]
                .find(&version)
                .expect("the version is in the text");
        from = at + version.len();
        if std::env::var("INSITU_BLESS").is_ok() && got != version {
            // After an intended change of the hash or the defaults (it orphans
            // the stored learning of every slot it touches: say so in the
            // README): `INSITU_BLESS=1 cargo test --test model_versions`.
            eprintln!("{name}: {version} -> {got}");
            blessed.push((at, version.len(), got));
            continue;
        }
        assert_eq!(got, version, "{name}");
    }
    if !blessed.is_empty() {
        let mut out = text.clone();
        // From the last, so the earlier positions stay where they were.
        for (at, len, new) in blessed.into_iter().rev() {
            out.replace_range(at..at + len, &new);
        }
        std::fs::write(PATH, out).unwrap();
    }
}
