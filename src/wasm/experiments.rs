//! The `Experiments` class: A/B allocation on the device (see `src/allocation/`).

use wasm_bindgen::prelude::*;

use super::{entropy_seed, guard, now_or, pack, pack_as, stored_bytes, JsObj};
use crate::json::{Json, Obj};
use crate::{Allocation, Allocator, Error, Experiments};

/// Experiments assigned on this device, and their state (device seed,
/// exposure log, bandit trials and counts). `open()`'s `site.experiments()`
/// and `site.run()` are the usual way in; this class is what they wrap.
///
/// ```js
/// const ab = new Experiments([{ key: "hero", variants: ["control", "bold"] }]);
/// ab.setUnit("user-42");
/// const code = ab.assign(ab.index("hero"));
/// ```
#[wasm_bindgen(js_name = Experiments)]
pub struct JsExperiments {
    inner: Allocator,
    last_probability: f64,
    last_bucket: f64,
    last_seed: f64,
}

fn read_experiments(configs: &JsValue) -> Result<Experiments, JsValue> {
    let bytes = pack_as(configs, "experiments", Error::experiment_owned)?;
    let json = Json::unpack(&bytes, "experiments", Error::experiment_owned)?;
    Ok(Experiments::from_json(&json)?)
}

#[wasm_bindgen(js_class = Experiments)]
impl JsExperiments {
    /// Check the configurations. Throws `InsituError` `INVALID_EXPERIMENT`
    /// naming the bad field (e.g. `experiments[1].weights`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "ExperimentConfig[]")] configs: JsValue,
    ) -> Result<JsExperiments, JsValue> {
        guard()?;
        Ok(JsExperiments {
            inner: Allocator::new(read_experiments(&configs)?, entropy_seed()),
            last_probability: f64::NAN,
            last_bucket: f64::NAN,
            last_seed: -1.0,
        })
    }

    /// Replace the configurations, keeping the device state. Throws as the
    /// constructor does, changing nothing.
    #[wasm_bindgen(js_name = setExperiments)]
    pub fn set_experiments(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "ExperimentConfig[]")] configs: JsValue,
    ) -> Result<(), JsValue> {
        guard()?;
        self.inner.set_experiments(read_experiments(&configs)?);
        Ok(())
    }

    /// The index of experiment `key`, for `assign`. Throws `UNKNOWN_EXPERIMENT`.
    pub fn index(&self, key: &str) -> Result<u32, JsValue> {
        guard()?;
        Ok(self.inner.experiments().index(key)? as u32)
    }

    /// The checked configurations as plain data.
    #[wasm_bindgen(unchecked_return_type = "ExperimentInfo[]")]
    pub fn describe(&self) -> Result<js_sys::Array, JsValue> {
        guard()?;
        let strs =
            |v: &[String]| -> js_sys::Array { v.iter().map(|s| JsValue::from_str(s)).collect() };
        let nums =
            |v: &[f64]| -> js_sys::Array { v.iter().map(|x| JsValue::from_f64(*x)).collect() };
        Ok(self
            .inner
            .experiments()
            .list()
            .iter()
            .map(|e| {
                let mut o = JsObj::new()
                    .set("key", e.key.as_str())
                    .set("variants", strs(&e.variants))
                    .set("weights", nums(&e.weights))
                    .set("coverage", e.coverage)
                    .set("fallback", e.variants[e.fallback].as_str())
                    .set("hash", e.hash.name())
                    .set("targeted", !e.targeting.is_empty())
                    .set(
                        "allocation",
                        match e.allocation {
                            Allocation::Weights => "weights",
                            Allocation::Thompson { .. } => "thompson",
                        },
                    );
                if let Some(n) = &e.namespace {
                    o = o.set(
                        "namespace",
                        JsObj::new()
                            .set("name", n.name.as_str())
                            .set("range", nums(&[n.start, n.end]))
                            .done(),
                    );
                }
                if let Some(h) = &e.holdout {
                    o = o.set(
                        "holdout",
                        JsObj::new()
                            .set("key", h.key.as_str())
                            .set("fraction", h.fraction)
                            .done(),
                    );
                }
                o.done()
            })
            .collect())
    }

    /// Use an id the site supplies as the unit key (`undefined`: the device seed).
    #[wasm_bindgen(js_name = setUnit)]
    pub fn set_unit(&mut self, unit: Option<String>) -> Result<(), JsValue> {
        guard()?;
        Ok(self.inner.set_site_unit(unit.as_deref())?)
    }

    /// Set the device seed unless one is held (restored or set before).
    #[wasm_bindgen(js_name = setDeviceUnit)]
    pub fn set_device_unit(&mut self, unit: &str) -> Result<bool, JsValue> {
        guard()?;
        Ok(self.inner.set_device_unit(unit)?)
    }

    /// Forget the device seed and its exposures (consent `none`).
    #[wasm_bindgen(js_name = dropDeviceUnit)]
    pub fn drop_device_unit(&mut self) {
        self.inner.drop_device_unit();
    }

    /// Whether a device seed is held.
    #[wasm_bindgen(getter, js_name = hasDeviceUnit)]
    pub fn has_device_unit(&self) -> bool {
        self.inner.device_unit().is_some()
    }

    /// Assign experiment `index` at `now`. Returns a code: bits 0-5 the
    /// variant index, 6-8 the reason (0 assigned, 1 no-unit, 2 targeting,
    /// 3 namespace, 4 holdout, 5 coverage), bit 9 a first exposure. The
    /// probability, GrowthBook bucket and bandit seed are then in
    /// `probability`, `bucket` (NaN: none) and `seed` (-1: none). One
    /// number instead of an object: this is the hot path.
    pub fn assign(
        &mut self,
        index: u32,
        #[wasm_bindgen(unchecked_param_type = "Record<string, unknown> | undefined")]
        attributes: JsValue,
        now: Option<f64>,
    ) -> Result<u32, JsValue> {
        guard()?;
        let a = if attributes.is_undefined() || attributes.is_null() {
            self.inner.assign_json(index as usize, None, now_or(now))?
        } else {
            let bytes = pack_as(&attributes, "attributes", Error::context_owned)?;
            let json = Json::unpack(&bytes, "attributes", Error::context_owned)?;
            self.inner
                .assign_json(index as usize, Some(&json), now_or(now))?
        };
        self.last_probability = a.probability;
        self.last_bucket = a.bucket.unwrap_or(f64::NAN);
        self.last_seed = a.seed.map_or(-1.0, |s| s as f64);
        let reason = a.reason as u32;
        Ok(a.variant as u32 | reason << 6 | (a.new_exposure as u32) << 9)
    }

    /// The probability of the last assignment.
    #[wasm_bindgen(getter)]
    pub fn probability(&self) -> f64 {
        self.last_probability
    }

    /// The GrowthBook hash position of the last assignment (NaN: none).
    #[wasm_bindgen(getter)]
    pub fn bucket(&self) -> f64 {
        self.last_bucket
    }

    /// The bandit trial seed of the last assignment (-1: none).
    #[wasm_bindgen(getter)]
    pub fn seed(&self) -> f64 {
        self.last_seed
    }

    /// Reward the running trial of bandit experiment `index` (reward in
    /// [0, 1]). Throws `INVALID_REWARD`, `UNKNOWN_DECISION`,
    /// `DECISION_EXPIRED` or `DUPLICATE_REWARD`.
    pub fn reward(&mut self, index: u32, reward: f64, now: Option<f64>) -> Result<(), JsValue> {
        guard()?;
        Ok(self.inner.reward(index as usize, reward, now_or(now))?)
    }

    /// Device-learned counts of bandit experiment `index`, per variant.
    #[wasm_bindgen(js_name = banditCounts, unchecked_return_type = "{ successes: number; failures: number }[]")]
    pub fn bandit_counts(&self, index: u32) -> Result<js_sys::Array, JsValue> {
        guard()?;
        Ok(self
            .inner
            .bandit_counts(index as usize)?
            .iter()
            .map(|(s, f)| JsObj::new().set("successes", *s).set("failures", *f).done())
            .collect())
    }

    /// The exposure log: `{ experiment, variant, at }`, oldest first.
    #[wasm_bindgen(unchecked_return_type = "{ experiment: string; variant: string; at: number }[]")]
    pub fn exposures(&self) -> Result<js_sys::Array, JsValue> {
        guard()?;
        Ok(self
            .inner
            .exposures()
            .iter()
            .map(|e| {
                JsObj::new()
                    .set("experiment", e.experiment.as_str())
                    .set("variant", e.variant.as_str())
                    .set("at", e.at)
                    .done()
            })
            .collect())
    }

    /// Settlements made here and not yet stored.
    #[wasm_bindgen(getter)]
    pub fn pending(&self) -> u32 {
        self.inner.pending() as u32
    }

    /// Merge with the stored state and return the bytes to store (options
    /// `now`, `maxBytes`, `maxAgeMs` for exposures, `learning`: whether
    /// bandit counts may be stored); `commit()` once stored.
    pub fn sync(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | null | undefined")] stored: JsValue,
        #[wasm_bindgen(
            unchecked_param_type = "{ now?: number; maxBytes?: number; maxAgeMs?: number; learning?: boolean } | undefined"
        )]
        options: JsValue,
    ) -> Result<js_sys::Uint8Array, JsValue> {
        guard()?;
        let bytes = pack(&options)?;
        let json = Json::unpack(&bytes, "sync options", Error::option_owned)?;
        let mut o = Obj::new(&json, "", Error::option_owned)?;
        let now = now_or(o.num("now")?);
        let max = o
            .int("maxBytes", 64, super::MAX_SNAPSHOT_CAP)?
            .map_or(crate::DEFAULT_MAX_SNAPSHOT_BYTES, |m| m as usize);
        let max_age = o.num("maxAgeMs")?.unwrap_or(f64::INFINITY);
        let learning = o.bool("learning")?.unwrap_or(false);
        o.finish()?;
        let stored = stored_bytes(&stored, max)?;
        let out = self
            .inner
            .sync(stored.as_deref(), now, max, max_age, learning)?;
        Ok(js_sys::Uint8Array::from(&out[..]))
    }

    /// Load the stored state, keeping this page's own; needs no `commit()`.
    pub fn restore(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] stored: JsValue,
        now: Option<f64>,
        max_bytes: Option<u32>,
    ) -> Result<(), JsValue> {
        guard()?;
        let max = max_bytes.map_or(crate::DEFAULT_MAX_SNAPSHOT_BYTES, |m| m as usize);
        let Some(bytes) = stored_bytes(&stored, max)? else {
            return Err(Error::option("stored", "should be the stored state, a Uint8Array").into());
        };
        Ok(self.inner.restore(&bytes, now_or(now), max)?)
    }

    /// Apply the last `sync()` once its bytes are stored.
    pub fn commit(&mut self) -> bool {
        self.inner.commit()
    }

    /// Forget everything held in memory (storage is the caller's).
    pub fn reset(&mut self) {
        self.inner.reset();
    }
}
