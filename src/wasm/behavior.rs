//! The `Behavior` class: the page's local behaviour store (see `src/behavior.rs`).

use wasm_bindgen::prelude::*;

use super::frame::JsSnapshot;
use super::{guard, now_or, pack, pack_as, JsObj, SyncArgs};
use crate::behavior::event_err;
use crate::json::Json;
use crate::{Behavior, BehaviorConfig, BehaviorValue, Error};

/// Events the page tracks, kept on this device under a retention policy,
/// and the `behavior` features derived from them.
///
/// ```js
/// const behavior = new Behavior({ maxAgeDays: 30, types: ["add_to_cart"] });
/// behavior.track({ type: "view", item: "sku-1", category: "shoes" });
/// slot.rank({ context: { behavior: behavior.features() } });
/// ```
#[wasm_bindgen(js_name = Behavior)]
pub struct JsBehavior {
    inner: Behavior,
}

#[wasm_bindgen(js_class = Behavior)]
impl JsBehavior {
    /// Validate the retention options (all optional). Throws `InsituError`
    /// `INVALID_OPTION` naming the bad field.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "BehaviorOptions | undefined")] options: JsValue,
    ) -> Result<JsBehavior, JsValue> {
        guard()?;
        let bytes = pack(&options)?;
        let json = Json::unpack(&bytes, "behavior options", Error::option_owned)?;
        Ok(JsBehavior {
            inner: Behavior::new(BehaviorConfig::from_json(&json, "")?),
        })
    }

    /// Record an event at `now` (default `Date.now()`). Throws `InsituError`
    /// `INVALID_EVENT` or `UNKNOWN_EVENT_TYPE`, storing nothing.
    pub fn track(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "BehaviorEvent")] event: JsValue,
        now: Option<f64>,
    ) -> Result<(), JsValue> {
        guard()?;
        let bytes = pack_as(&event, "event", event_err)?;
        Ok(self.inner.track_packed(&bytes, now_or(now))?)
    }

    /// The derived features at `now` for a visitor `tzOffset` minutes behind
    /// UTC (defaults: `Date.now()` and this browser's offset), as the
    /// `behavior` namespace of a context.
    #[wasm_bindgen(unchecked_return_type = "Record<string, number | string>")]
    pub fn features(
        &mut self,
        now: Option<f64>,
        tz_offset: Option<f64>,
    ) -> Result<JsValue, JsValue> {
        guard()?;
        let now = now_or(now);
        let tz = tz_offset
            .unwrap_or_else(|| js_sys::Date::new(&JsValue::from_f64(now)).get_timezone_offset());
        let mut o = JsObj::new();
        for (name, v) in self.inner.features(now, tz)? {
            o = match v {
                BehaviorValue::Num(x) => o.set(&name, x),
                BehaviorValue::Cat(c) => o.set(&name, c),
            };
        }
        Ok(o.done())
    }

    /// Merge with the stored snapshot and return the bytes to store, as
    /// `Insitu#sync` does (options `now`, `maxBytes`); `commit()` once stored.
    #[wasm_bindgen(unchecked_return_type = "BehaviorSyncResult")]
    pub fn sync(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | null | undefined")] stored: JsValue,
        #[wasm_bindgen(unchecked_param_type = "{ now?: number; maxBytes?: number } | undefined")]
        options: JsValue,
    ) -> Result<JsValue, JsValue> {
        guard()?;
        let a = SyncArgs::read(&stored, &options, false)?;
        let r = self.inner.sync(a.stored.as_deref(), a.now, a.max)?;
        Ok(JsObj::new()
            .set("bytes", js_sys::Uint8Array::from(&r.bytes[..]))
            .set("events", r.events as f64)
            .set("dropped", r.dropped as f64)
            .done())
    }

    /// Load the stored events on page load, keeping the events tracked here
    /// and not yet stored (they go with the next `sync()`); writes nothing
    /// and needs no `commit()`. Returns how many stored events were dropped
    /// because their type is no longer declared. Errors as for `sync()`.
    pub fn restore(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] stored: JsValue,
        #[wasm_bindgen(unchecked_param_type = "{ now?: number; maxBytes?: number } | undefined")]
        options: JsValue,
    ) -> Result<u32, JsValue> {
        guard()?;
        let mut a = SyncArgs::read(&stored, &options, false)?;
        let bytes = a.required()?;
        Ok(self.inner.restore(&bytes, a.now, a.max)? as u32)
    }

    /// `restore()` from the store's decoded snapshot, at `now`.
    #[wasm_bindgen(js_name = __restoreSnapshot, skip_typescript)]
    pub fn restore_snapshot(&mut self, snap: &JsSnapshot, now: f64) -> Result<u32, JsValue> {
        guard()?;
        Ok(self.inner.restore_snapshot(&snap.0, now)? as u32)
    }

    /// Apply the last `sync()` once its bytes are stored.
    pub fn commit(&mut self) -> Result<bool, JsValue> {
        guard()?;
        Ok(self.inner.commit())
    }

    /// Retained events by type: `{ view: 12, click: 3 }`.
    #[wasm_bindgen(unchecked_return_type = "Record<string, number>")]
    pub fn counts(&self) -> Result<JsValue, JsValue> {
        guard()?;
        let mut o = JsObj::new();
        for (t, n) in self.inner.counts() {
            o = o.set(&t, n as f64);
        }
        Ok(o.done())
    }

    /// The retention settings in force.
    #[wasm_bindgen(unchecked_return_type = "Required<BehaviorOptions>")]
    pub fn retention(&self) -> Result<JsValue, JsValue> {
        guard()?;
        let c = self.inner.config();
        let types: js_sys::Array = c.types.iter().map(|t| JsValue::from_str(t)).collect();
        Ok(JsObj::new()
            .set("maxAgeDays", c.max_age_days)
            .set("maxEvents", c.max_events as f64)
            .set("maxBytes", c.max_bytes as f64)
            .set("sessionGapMinutes", c.session_gap_minutes)
            .set("types", types)
            .done())
    }

    /// The retention's maximum age in days (also in `retention()`): what a
    /// page load needs to tell an expired snapshot, without the object.
    #[wasm_bindgen(getter, js_name = maxAgeDays)]
    pub fn max_age_days(&self) -> f64 {
        self.inner.config().max_age_days
    }

    /// Bytes the retained events take in the snapshot.
    #[wasm_bindgen(getter, js_name = storedBytes)]
    pub fn stored_bytes(&self) -> f64 {
        self.inner.stored_bytes() as f64
    }

    /// Delete every event held in memory (storage is the caller's).
    pub fn clear(&mut self) -> Result<(), JsValue> {
        guard()?;
        self.inner.clear();
        Ok(())
    }
}
