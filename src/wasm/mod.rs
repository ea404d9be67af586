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
    js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| {
            let why =
                "cannot be converted to JSON: it holds a BigInt (pass seeds as numbers) or a cycle";
            Error::option_owned("options".into(), why.into()).into()
        })
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

fn num_array(xs: &[f64]) -> JsValue {
    js_sys::Array::from(&js_sys::Float64Array::from(xs)).into()
}

fn opt<T: Into<JsValue>>(v: Option<T>) -> JsValue {
    v.map_or(JsValue::NULL, Into::into)
}

/// A decision as the documented plain object.
fn decision_to_js(d: crate::Decision) -> JsValue {
    JsObj::new()
        .set("variant", d.variant)
        .set("index", d.index as f64)
        .set("probability", d.probability)
        .set("pmf", num_array(&d.pmf))
        .set("scores", num_array(&d.scores))
        .set("decisionId", opt(d.decision_id))
        .set("seed", opt(d.seed.map(|s| s as f64)))
        .set("modelVersion", d.model_version)
        .set("policy", d.policy)
        .set("fallback", d.fallback)
        .done()
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
