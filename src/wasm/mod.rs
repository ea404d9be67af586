//! The JS boundary: the only place that knows about `wasm_bindgen` and `js_sys`.
//!
//! Errors cross as real `Error` objects whose `code` property is the core's
//! stable code. A panic hook is installed when the module is instantiated;
//! after a panic the instance is marked poisoned and every later call throws
//! `Error { code: "POISONED" }` instead of running on corrupt memory.

mod insitu;

use std::sync::atomic::{AtomicBool, Ordering};

use wasm_bindgen::prelude::*;

use crate::Error;

// talc instead of the default dlmalloc: about 5 KB smaller in the .wasm, and
// as fast for our pattern of many small short-lived allocations.
// SAFETY: wasm32-unknown-unknown without threads is single-threaded.
#[global_allocator]
static ALLOCATOR: talc::TalckWasm = unsafe { talc::TalckWasm::new_global() };

static POISONED: AtomicBool = AtomicBool::new(false);

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(msg: &str);
}

/// Runs once at instantiation: no opt-in call for users to forget.
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| report_panic(&info.to_string())));
}

fn report_panic(msg: &str) {
    POISONED.store(true, Ordering::SeqCst);
    console_error(&format!(
        "insitu: internal error (this is a bug, please report it): {msg}"
    ));
}

/// Panics on purpose; only in builds with the `test-panic` feature.
#[cfg(feature = "test-panic")]
#[wasm_bindgen(js_name = __insituTestPanic)]
#[allow(unreachable_pub)] // exported to JS, not to Rust
pub fn test_panic() {
    panic!("deliberate test panic");
}

/// A JS `Error` with `name = "InsituError"` and a `code` property.
fn js_error(code: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name("InsituError");
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&e, &"code".into(), &code.into());
    e.into()
}

impl From<Error> for JsValue {
    fn from(e: Error) -> JsValue {
        js_error(e.code(), &e.to_string())
    }
}

/// Fail fast once a panic has left the instance in an unknown state.
fn guard() -> Result<(), JsValue> {
    if POISONED.load(Ordering::SeqCst) {
        Err(js_error(
            "POISONED",
            "insitu hit an internal error earlier; reload the module to continue",
        ))
    } else {
        Ok(())
    }
}

/// The caller's options object as JSON text. `undefined` reads as `{}`;
/// values JSON cannot hold (cycles, BigInt) are an `INVALID_OPTION`.
fn stringify(value: &JsValue) -> Result<String, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok("{}".into());
    }
    let bytes = json_bytes(value).map_err(|_| -> JsValue {
        let why =
            "cannot be converted to JSON: it holds a BigInt (pass seeds as numbers) or a cycle";
        Error::option_owned("options".into(), why.into()).into()
    })?;
    // TextEncoder output is valid UTF-8; a failure here would be a bug.
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::option_owned("options".into(), "is not valid UTF-8".into()).into())
}

// JSON.stringify plus the native TextEncoder, then one bulk copy into wasm:
// wasm-bindgen's own string passing copies ASCII one character at a time in
// JS, which cost about 10 us for a 1 KB options object.
#[wasm_bindgen(inline_js = r#"
const encoder = new TextEncoder();
export function jsonBytes(value) {
  return encoder.encode(JSON.stringify(value));
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = jsonBytes, catch)]
    fn json_bytes(value: &JsValue) -> Result<js_sys::Uint8Array, JsValue>;
}

/// A plain JS object under construction. Results are built property by
/// property rather than as JSON text, so the .wasm needs no float formatter.
struct JsObj(js_sys::Object);

impl JsObj {
    fn new() -> JsObj {
        JsObj(js_sys::Object::new())
    }

    fn set(self, key: &str, value: impl Into<JsValue>) -> JsObj {
        // Defining a property on a fresh plain object cannot fail.
        let _ = js_sys::Reflect::set(&self.0, &key.into(), &value.into());
        self
    }

    fn done(self) -> JsValue {
        self.0.into()
    }
}

// One crossing builds a whole decision: setting its ten properties one by
// one from Rust cost ten crossings and as many string decodes, most of the
// time of a decision.
#[wasm_bindgen(inline_js = r#"
function list(xs) {
  const out = new Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = xs[i];
  return out;
}
export function makeDecision(variant, index, probability, pmf, scores, decisionId, seed, modelVersion, policy, fallback) {
  return {
    variant, index, probability, pmf: list(pmf), scores: list(scores),
    decisionId: decisionId === undefined ? null : decisionId,
    seed: seed < 0 ? null : seed,
    modelVersion, policy, fallback,
  };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = makeDecision)]
    #[allow(clippy::too_many_arguments)]
    fn make_decision(
        variant: &JsValue,
        index: f64,
        probability: f64,
        pmf: &[f64],
        scores: &[f64],
        decision_id: Option<String>,
        seed: f64,
        model_version: &JsValue,
        policy: &JsValue,
        fallback: bool,
    ) -> JsValue;
}

/// The strings every decision repeats (variant ids, model version, policy),
/// converted to JS once per engine: decoding a string into JS costs about a
/// microsecond, more than the rest of a small decision.
struct JsStrings {
    variants: Vec<JsValue>,
    model_version: JsValue,
    policy: JsValue,
}

impl JsStrings {
    fn new(engine: &crate::Engine) -> JsStrings {
        JsStrings {
            variants: engine
                .variant_ids()
                .iter()
                .map(|v| JsValue::from_str(v))
                .collect(),
            model_version: JsValue::from_str(engine.model_version()),
            policy: JsValue::from_str(engine.policy_name()),
        }
    }

    /// A decision as the documented plain object.
    fn decision(&self, d: crate::Decision) -> JsValue {
        make_decision(
            &self.variants[d.index],
            d.index as f64,
            d.probability,
            &d.pmf,
            &d.scores,
            d.decision_id,
            d.seed.map_or(-1.0, |s| s as f64),
            &self.model_version,
            &self.policy,
            d.fallback,
        )
    }
}

/// Current time in ms, when a call does not inject one.
fn now_or(now: Option<f64>) -> f64 {
    now.unwrap_or_else(js_sys::Date::now)
}

/// Fresh entropy for an engine seed when the site gives none.
fn entropy_seed() -> u64 {
    getrandom::u64()
        .unwrap_or_else(|_| (js_sys::Math::random() * crate::rng::MAX_SEED as f64) as u64)
}

#[cfg(test)]
mod tests;
