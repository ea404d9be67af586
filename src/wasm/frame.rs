//! The storage frame (`src/frame.rs`) for the page store in `store.mjs`.
//! Exported under `__` names without TypeScript types: the store is their
//! only caller, and they may change with it.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{guard, JsObj};
use crate::Error;

/// Read a stored value's frame, given as UTF-8 (`TextEncoder`): `{savedAt,
/// generation, payload?}`, where the payload is left out (`"none"`),
/// returned as a string (`"text"`) or decoded from base64 (`"bytes"`).
/// Throws `SNAPSHOT_FOREIGN`, `SNAPSHOT_VERSION` or `SNAPSHOT_CORRUPT`.
///
/// UTF-8 bytes rather than a string: wasm-bindgen copies a string into wasm
/// with a JS loop over its characters, which on a page's first load runs in
/// the interpreter (1.7 ms for a 9 K-character snapshot in Chromium), while
/// `TextEncoder` and a byte copy are native.
#[wasm_bindgen(js_name = __openFrame, skip_typescript)]
#[allow(unreachable_pub)] // exported to JS, not to Rust
pub fn open_frame(raw: &[u8], payload: &str) -> Result<JsValue, JsValue> {
    guard()?;
    let raw = std::str::from_utf8(raw).map_err(|_| Error::SnapshotCorrupt {
        reason: "the stored value is not valid UTF-8".into(),
    })?;
    let f = crate::open_frame(raw)?;
    let o = JsObj::new()
        .set("savedAt", f.saved_at)
        .set("generation", f.generation as f64);
    Ok(match payload {
        "none" => o,
        "text" => o.set("payload", f.payload),
        "bytes" => o.set(
            "payload",
            js_sys::Uint8Array::from(crate::from_base64(f.payload)?.as_slice()),
        ),
        _ => return Err(Error::option("payload", "should be none, text or bytes").into()),
    }
    .done())
}

/// Frame `payload` (a string, or a Uint8Array written as base64) saved at
/// `savedAt` (ms) with `generation`. Throws `INVALID_OPTION` for a time that
/// is not finite or a generation that is not a safe integer.
#[wasm_bindgen(js_name = __sealFrame, skip_typescript)]
#[allow(unreachable_pub)] // exported to JS, not to Rust
pub fn seal_frame(saved_at: f64, generation: f64, payload: &JsValue) -> Result<String, JsValue> {
    guard()?;
    if !(generation >= 0.0 && generation.fract() == 0.0) {
        return Err(Error::option("generation", "should be a whole number ≥ 0").into());
    }
    let text;
    let payload = if let Some(s) = payload.as_string() {
        text = s;
        text.as_str()
    } else if let Some(a) = payload.dyn_ref::<js_sys::Uint8Array>() {
        text = crate::to_base64(&a.to_vec());
        text.as_str()
    } else {
        return Err(Error::option("payload", "should be a string or a Uint8Array").into());
    };
    Ok(crate::seal_frame(saved_at, generation as u64, payload)?)
}

/// A stored snapshot decoded once (its checksum checked, its sections
/// read) for every part a page load restores from it: the behaviour store
/// and each slot. The store's handle; see `__decodeSnapshot`.
#[wasm_bindgen(js_name = __Snapshot, skip_typescript)]
#[allow(unreachable_pub)] // exported to JS, not to Rust
pub struct JsSnapshot(pub(super) crate::Snapshot);

/// Decode `bytes` (a frame's payload) of at most `maxBytes`. Throws
/// `SNAPSHOT_FOREIGN`, `SNAPSHOT_VERSION`, `SNAPSHOT_CORRUPT` or
/// `SNAPSHOT_TOO_LARGE`, as a part's `restore()` would.
#[wasm_bindgen(js_name = __decodeSnapshot, skip_typescript)]
#[allow(unreachable_pub)] // exported to JS, not to Rust
pub fn decode_snapshot(bytes: &[u8], max_bytes: u32) -> Result<JsSnapshot, JsValue> {
    guard()?;
    Ok(JsSnapshot(crate::Snapshot::decode(
        bytes,
        max_bytes as usize,
    )?))
}
