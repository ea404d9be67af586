//! The JS boundary: the only place that knows about `wasm_bindgen` and `js_sys`.
//!
//! Errors cross as real `Error` objects whose `code` property is the core's
//! stable code. A panic hook is installed when the module is instantiated;
//! after a panic the instance is marked poisoned and every later call throws
//! `Error { code: "POISONED" }` instead of running on corrupt memory.

mod behavior;
mod experiments;
mod frame;
mod insitu;
mod types;

use std::sync::atomic::{AtomicBool, Ordering};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::json::{ErrKind, Json, Obj};
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

/// The caller's options in the packed form the core reads (`Json::unpack`):
/// what `JSON.stringify` makes of them, so NaN and ±Infinity read as null and
/// `toJSON` applies, exactly as for JSON text. `undefined` and null read as
/// `{}`; values JSON cannot hold are an `INVALID_OPTION`.
fn pack(value: &JsValue) -> Result<Vec<u8>, JsValue> {
    pack_as(value, "options", Error::option_owned)
}

/// [`pack`] for a value whose errors are of `kind`, naming it `what`.
fn pack_as(value: &JsValue, what: &str, kind: ErrKind) -> Result<Vec<u8>, JsValue> {
    packed(pack_js(&or_empty(value)), what, kind)
}

/// [`pack`] for rank and learn options: contexts and action features are
/// first cut to the allowlisted namespaces (see `packFor` in fast.js).
fn pack_for(walker: &JsValue, value: &JsValue) -> Result<Vec<u8>, JsValue> {
    packed(
        pack_for_js(walker, &or_empty(value)),
        "options",
        Error::option_owned,
    )
}

/// Options left out (`undefined` or null) as an empty object.
fn or_empty(value: &JsValue) -> JsValue {
    if value.is_undefined() || value.is_null() {
        js_sys::Object::new().into()
    } else {
        value.clone()
    }
}

fn packed(
    bytes: Result<js_sys::Uint8Array, JsValue>,
    what: &str,
    kind: ErrKind,
) -> Result<Vec<u8>, JsValue> {
    let bytes = bytes.map_err(|_| -> JsValue {
        let why = "cannot be converted to JSON: it is a function or holds a BigInt (pass \
                   seeds as numbers), a cycle, or a getter or toJSON that throws";
        kind(what.into(), why.into()).into()
    })?;
    Ok(bytes.to_vec())
}

/// Largest `maxBytes` a site may set: 16 MiB.
const MAX_SNAPSHOT_CAP: u64 = 16 << 20;

/// The arguments of a `sync()`: the stored bytes and `{slot?, now?, maxBytes?}`.
struct SyncArgs {
    stored: Option<Vec<u8>>,
    /// Empty unless `with_slot`.
    slot: String,
    now: f64,
    max: usize,
}

impl SyncArgs {
    fn read(stored: &JsValue, options: &JsValue, with_slot: bool) -> Result<SyncArgs, JsValue> {
        let bytes = pack(options)?;
        let json = Json::unpack(&bytes, "sync options", Error::option_owned)?;
        let mut o = Obj::new(&json, "", Error::option_owned)?;
        let slot = if with_slot {
            o.str("slot")?
                .ok_or_else(|| Error::option("slot", "is required"))?
                .to_owned()
        } else {
            String::new()
        };
        let now = now_or(o.num("now")?);
        let max = o
            .int("maxBytes", 64, MAX_SNAPSHOT_CAP)?
            .map_or(crate::DEFAULT_MAX_SNAPSHOT_BYTES, |m| m as usize);
        o.finish()?;
        let stored = stored_bytes(stored, max)?;
        Ok(SyncArgs {
            stored,
            slot,
            now,
            max,
        })
    }
}

/// Stored bytes passed to a `sync` or `restore`: a Uint8Array, or None for
/// `null`/`undefined`. Over `max` bytes it is refused before it is copied
/// into wasm memory.
fn stored_bytes(stored: &JsValue, max: usize) -> Result<Option<Vec<u8>>, JsValue> {
    if stored.is_undefined() || stored.is_null() {
        return Ok(None);
    }
    let Some(a) = stored.dyn_ref::<js_sys::Uint8Array>() else {
        return Err(Error::option(
            "stored",
            "should be a Uint8Array, or null when nothing is stored",
        )
        .into());
    };
    let bytes = a.length() as usize;
    if bytes > max {
        return Err(Error::SnapshotTooLarge { bytes, max }.into());
    }
    Ok(Some(a.to_vec()))
}

impl SyncArgs {
    /// The stored bytes, which a restore requires.
    fn required(&mut self) -> Result<Vec<u8>, JsValue> {
        self.stored.take().ok_or_else(|| {
            Error::option("stored", "should be the stored snapshot, a Uint8Array").into()
        })
    }
}

/// A plain JS object under construction, made in JS by one call (`obj` in
/// fast.js) however many fields it has. Setting each field by
/// `Reflect.set` took three crossings per field (key, value, set): on a
/// page's first load those ran cold, and V8 soon spent time compiling them
/// (a behaviour feature object alone took over 40), while the first
/// decision waited.
struct JsObj {
    /// Keys and string values, back to back.
    text: String,
    /// Per field: its kind, its key's length and its string's length (0
    /// unless a string), lengths in UTF-16 code units as JS counts them.
    layout: Vec<u32>,
    /// Numbers and booleans (1 or 0), in field order.
    nums: Vec<f64>,
    /// Any other JS value (arrays, nested objects, byte arrays), in order.
    vals: Vec<JsValue>,
}

/// A field's value for [`JsObj::set`].
enum Field<'a> {
    Num(f64),
    Bool(bool),
    Str(&'a str),
    Js(JsValue),
}

impl From<f64> for Field<'_> {
    fn from(x: f64) -> Self {
        Field::Num(x)
    }
}

impl From<bool> for Field<'_> {
    fn from(b: bool) -> Self {
        Field::Bool(b)
    }
}

impl<'a> From<&'a str> for Field<'a> {
    fn from(s: &'a str) -> Self {
        Field::Str(s)
    }
}

impl<'a> From<&'a String> for Field<'a> {
    fn from(s: &'a String) -> Self {
        Field::Str(s)
    }
}

impl From<JsValue> for Field<'_> {
    fn from(v: JsValue) -> Self {
        Field::Js(v)
    }
}

impl From<js_sys::Array> for Field<'_> {
    fn from(a: js_sys::Array) -> Self {
        Field::Js(a.into())
    }
}

impl From<js_sys::Uint8Array> for Field<'_> {
    fn from(a: js_sys::Uint8Array) -> Self {
        Field::Js(a.into())
    }
}

/// Length of `s` in UTF-16 code units (`String#length`).
fn utf16_len(s: &str) -> u32 {
    if s.is_ascii() {
        s.len() as u32
    } else {
        s.chars().map(|c| c.len_utf16() as u32).sum()
    }
}

impl JsObj {
    fn new() -> JsObj {
        JsObj {
            text: String::new(),
            layout: Vec::new(),
            nums: Vec::new(),
            vals: Vec::new(),
        }
    }

    fn set<'a>(self, key: &str, value: impl Into<Field<'a>>) -> JsObj {
        self.put(key, value.into())
    }

    #[inline(never)] // one copy, not one per value type
    fn put(mut self, key: &str, value: Field<'_>) -> JsObj {
        self.text.push_str(key);
        let (kind, len) = match value {
            Field::Num(x) => {
                self.nums.push(x);
                (0, 0)
            }
            Field::Bool(b) => {
                self.nums.push(if b { 1.0 } else { 0.0 });
                (1, 0)
            }
            Field::Str(s) => {
                self.text.push_str(s);
                (2, utf16_len(s))
            }
            Field::Js(v) => {
                self.vals.push(v);
                (3, 0)
            }
        };
        self.layout.extend_from_slice(&[kind, utf16_len(key), len]);
        self
    }

    fn done(self) -> JsValue {
        obj(&self.text, &self.layout, &self.nums, self.vals)
    }
}

// The JS half of the hot path: see the file's header.
#[wasm_bindgen(module = "/src/wasm/fast.js")]
extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn walker(
        memory: JsValue,
        ptr: u32,
        len: u32,
        namespaces: Vec<String>,
        seeds: &[u32],
        variants: Vec<String>,
        model_version: &str,
        policy: &str,
        prefix: &str,
    ) -> JsValue;
    #[wasm_bindgen(js_name = prepRank)]
    fn prep_rank(walker: &JsValue, options: &JsValue, k: u32) -> i32;
    #[wasm_bindgen(js_name = prepSettle)]
    fn prep_settle(walker: &JsValue, options: &JsValue, with_reward: bool) -> i32;
    #[wasm_bindgen(js_name = packFor, catch)]
    fn pack_for_js(walker: &JsValue, value: &JsValue) -> Result<js_sys::Uint8Array, JsValue>;
    #[wasm_bindgen(js_name = pack, catch)]
    fn pack_js(value: &JsValue) -> Result<js_sys::Uint8Array, JsValue>;
    fn obj(text: &str, layout: &[u32], nums: &[f64], vals: Vec<JsValue>) -> JsValue;
    #[allow(clippy::too_many_arguments)]
    fn decision(
        walker: &JsValue,
        index: u32,
        probability: f64,
        seed: f64,
        counter: f64,
        k: u32,
        scores: u32,
    ) -> JsValue;
}

/// A buffer in wasm memory that the JS half reads and writes between calls.
/// Held by raw pointer rather than as a `Box`, because JS writes to it while
/// Rust code holds no reference: every access is a plain read or write
/// through the pointer, bounds-checked, and never a long-lived slice.
struct SharedBuf {
    ptr: *mut f64,
    len: usize,
}

impl SharedBuf {
    fn new(len: usize) -> SharedBuf {
        let b: Box<[f64]> = vec![0.0; len].into_boxed_slice();
        SharedBuf {
            len: b.len(),
            ptr: Box::into_raw(b).cast::<f64>(),
        }
    }

    /// Slot `i`, or NaN outside the buffer.
    fn get(&self, i: usize) -> f64 {
        if i < self.len {
            // SAFETY: in bounds of the allocation this struct owns.
            unsafe { self.ptr.add(i).read() }
        } else {
            f64::NAN
        }
    }

    /// Write slot `i`; ignored outside the buffer.
    fn set(&self, i: usize, v: f64) {
        if i < self.len {
            // SAFETY: in bounds of the allocation this struct owns.
            unsafe { self.ptr.add(i).write(v) }
        }
    }
}

impl Drop for SharedBuf {
    fn drop(&mut self) {
        // SAFETY: ptr and len came from Box::into_raw of a boxed slice in new().
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.ptr, self.len,
            )))
        };
    }
}

/// Buffer layout (see fast.js): header slots, then pmf and scores, then features.
const HEADER: usize = 8;

/// The boundary's per-instance state for the hot path.
struct Fast {
    walker: JsValue,
    buf: SharedBuf,
    k: usize,
}

impl Fast {
    fn new(engine: &crate::Engine) -> Fast {
        let k = engine.variant_count();
        let buf = SharedBuf::new(HEADER + 2 * k + 3 * crate::features::MAX_FEATURES);
        let (namespaces, seeds) = engine.namespaces();
        let walker = walker(
            wasm_bindgen::memory(),
            buf.ptr as u32,
            buf.len as u32,
            namespaces.to_vec(),
            seeds,
            engine.variant_ids(),
            engine.model_version(),
            engine.policy_name(),
            &engine.decision_prefix(),
        );
        Fast { walker, buf, k }
    }

    /// The decision object for `index`, with the pmf and scores given.
    fn decision(
        &self,
        index: usize,
        probability: f64,
        ids: Option<(u64, u64)>,
        pmf: &[f64],
        scores: &[f64],
    ) -> JsValue {
        for (i, p) in pmf.iter().enumerate() {
            self.buf.set(HEADER + i, *p);
        }
        for (i, s) in scores.iter().enumerate() {
            self.buf.set(HEADER + self.k + i, *s);
        }
        let (seed, counter) = ids.map_or((-1.0, 0.0), |(s, c)| (s as f64, c as f64));
        decision(
            &self.walker,
            index as u32,
            probability,
            seed,
            counter,
            self.k as u32,
            scores.len() as u32,
        )
    }

    /// Features the JS half wrote, as (namespace, hash, value).
    fn features(&self, n: usize, out: &mut Vec<crate::features::Hashed>) {
        out.clear();
        let base = HEADER + 2 * self.k;
        for i in 0..n.min(crate::features::MAX_FEATURES) {
            let at = base + 3 * i;
            out.push(crate::features::Hashed::new(
                self.buf.get(at) as usize,
                self.buf.get(at + 1) as u32,
                self.buf.get(at + 2),
            ));
        }
    }
}

/// Current time in ms, when a call does not inject one.
fn now_or(now: Option<f64>) -> f64 {
    now.unwrap_or_else(js_sys::Date::now)
}

/// Fresh entropy for an engine: its decision-id epoch, and its seed when the
/// site gives none.
fn entropy_seed() -> u64 {
    getrandom::u64()
        .unwrap_or_else(|_| (js_sys::Math::random() * crate::rng::MAX_SEED as f64) as u64)
}

#[cfg(test)]
mod tests;
