//! Boundary tests, run by `wasm-pack test --node` and `--headless --chrome`.

use std::sync::atomic::Ordering;

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

use super::insitu::Insitu;
use super::{report_panic, POISONED};

// The same suite runs under `wasm-pack test --node` and, with this feature,
// in headless Chromium; without it the browser run would skip every test.
#[cfg(feature = "test-in-browser")]
wasm_bindgen_test_configure!(run_in_browser);

fn js(json: &str) -> JsValue {
    js_sys::JSON::parse(json).expect("test JSON parses")
}

fn code_of(err: &JsValue) -> String {
    assert!(
        err.is_instance_of::<js_sys::Error>(),
        "an Error object, not a string: {err:?}"
    );
    js_sys::Reflect::get(err, &"code".into())
        .unwrap()
        .as_string()
        .expect("code is a string")
}

fn get(v: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(v, &key.into()).unwrap()
}

const OPTS: &str = r#"{"variants":["a","b","c"],"features":{"allow":["page"]},"seed":42}"#;

#[wasm_bindgen_test]
fn bad_options_throw_error_objects_with_codes() {
    let err = Insitu::new(js(r#"{"variants":["a","b"],"policy":{"type":"nope"}}"#))
        .err()
        .unwrap();
    assert_eq!(code_of(&err), "INVALID_OPTION");
    let msg = get(&err, "message").as_string().unwrap();
    assert!(msg.contains("policy.type") && msg.contains("nope"), "{msg}");
    let err = Insitu::new(js(r#"{"variants":["a","b"],"unknownThing":1}"#))
        .err()
        .unwrap();
    assert_eq!(code_of(&err), "INVALID_OPTION");
    assert!(get(&err, "message")
        .as_string()
        .unwrap()
        .contains("unknownThing"));
    assert_eq!(get(&err, "name").as_string().unwrap(), "InsituError");
}

#[wasm_bindgen_test]
fn rank_reward_round_trip_and_bad_reward_changes_nothing() {
    let mut s = Insitu::new(js(OPTS)).unwrap();
    let d = s.rank(js(r#"{"context":{"page":{"section":"news"}},"now":0}"#));
    assert_eq!(get(&d, "fallback"), JsValue::FALSE);
    let id = get(&d, "decisionId").as_string().unwrap();
    let p = get(&d, "probability").as_f64().unwrap();
    assert!(p > 0.0 && p <= 1.0);
    let bad = s
        .reward(js(&format!(
            r#"{{"decisionId":"{id}","reward":1.5,"now":1}}"#
        )))
        .unwrap_err();
    assert_eq!(code_of(&bad), "INVALID_REWARD");
    s.reward(js(&format!(
        r#"{{"decisionId":"{id}","reward":1,"now":1}}"#
    )))
    .unwrap();
    let dup = s
        .reward(js(&format!(
            r#"{{"decisionId":"{id}","reward":1,"now":2}}"#
        )))
        .unwrap_err();
    assert_eq!(code_of(&dup), "DUPLICATE_REWARD");
    let unknown = s
        .reward(js(r#"{"decisionId":"nope","reward":1}"#))
        .unwrap_err();
    assert_eq!(code_of(&unknown), "UNKNOWN_DECISION");
    let variants: js_sys::Array = get(&s.stats().unwrap(), "variants").into();
    let total: f64 = variants
        .iter()
        .map(|v| get(&v, "updates").as_f64().unwrap())
        .sum();
    assert_eq!(total, 1.0, "only the one valid reward was learned");
}

#[wasm_bindgen_test]
fn bad_context_returns_the_fallback_with_an_error() {
    let mut s = Insitu::new(js(
        r#"{"variants":["a","b"],"fallback":"b","features":{"allow":["page"]}}"#,
    ))
    .unwrap();
    let ctx = js_sys::Object::new();
    let page = js_sys::Object::new();
    js_sys::Reflect::set(&page, &"price".into(), &JsValue::from_f64(f64::NAN)).unwrap();
    js_sys::Reflect::set(&ctx, &"page".into(), &page).unwrap();
    let opts = js_sys::Object::new();
    js_sys::Reflect::set(&opts, &"context".into(), &ctx).unwrap();
    let d = s.rank(opts.into());
    assert_eq!(get(&d, "variant").as_string().unwrap(), "b");
    assert_eq!(get(&d, "fallback"), JsValue::TRUE);
    assert_eq!(code_of(&get(&d, "error")), "NON_FINITE_FEATURE");
    assert!(get(&d, "decisionId").is_null());
}

#[wasm_bindgen_test]
fn same_seed_same_decisions_as_native() {
    // The golden sequence shared with tests/determinism.rs and the JS tests.
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/fixtures/determinism.json")).unwrap();
    let mut s = Insitu::new(js(&fixture["options"].to_string())).unwrap();
    for step in fixture["steps"].as_array().unwrap() {
        let d = s.rank(js(&step["rank"].to_string()));
        assert_eq!(
            get(&d, "variant").as_string().unwrap(),
            step["variant"].as_str().unwrap()
        );
        let p = get(&d, "probability").as_f64().unwrap();
        assert!((p - step["probability"].as_f64().unwrap()).abs() < 1e-12);
        assert_eq!(
            get(&d, "seed").as_f64().unwrap(),
            step["seed"].as_f64().unwrap()
        );
        let id = get(&d, "decisionId").as_string().unwrap();
        s.reward(js(&format!(
            r#"{{"decisionId":"{id}","reward":{},"now":{}}}"#,
            step["reward"], step["now"]
        )))
        .unwrap();
    }
}

// Runs last by name order is not guaranteed, so it restores the flag itself.
#[wasm_bindgen_test]
fn after_a_panic_every_call_throws_poisoned() {
    let mut s = Insitu::new(js(OPTS)).unwrap();
    report_panic("deliberate test panic");
    let err = s
        .reward(js(r#"{"decisionId":"x","reward":1}"#))
        .unwrap_err();
    let d = s.rank(JsValue::UNDEFINED);
    POISONED.store(false, Ordering::SeqCst);
    assert_eq!(code_of(&err), "POISONED");
    assert_eq!(code_of(&get(&d, "error")), "POISONED");
    assert_eq!(get(&d, "fallback"), JsValue::TRUE);
}
