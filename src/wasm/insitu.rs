//! The `Insitu` class: one decision point (a page slot) and its learner.

use wasm_bindgen::prelude::*;

use super::{guard, now_or, pack, pack_for, Fast, JsObj};
use crate::features::Hashed;
use crate::json::Json;
use crate::{
    Choice, Engine, EngineConfig, ExplainOptions, LearnOptions, RankOptions, SettleOptions,
};

/// One decision point: a page slot with its variants, model and learner.
///
/// ```js
/// const slot = new Insitu({ variants: ["a", "b"], features: { allow: ["page"] } });
/// const d = slot.rank({ context: { page: { section: "sports" } } });
/// show(d.variant);
/// slot.reward({ decisionId: d.decisionId, reward: 1 });
/// ```
#[wasm_bindgen]
pub struct Insitu {
    engine: Engine,
    fast: Fast,
    feats: Vec<Hashed>,
}

#[wasm_bindgen]
impl Insitu {
    /// Validate options and start at the prior. Throws `InsituError` with a `code`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "InsituOptions")] options: JsValue,
    ) -> Result<Insitu, JsValue> {
        guard()?;
        let cfg =
            EngineConfig::from_json(&unpack(&pack(&options)?, "options")?, super::entropy_seed())?;
        let engine = Engine::new(cfg);
        Ok(Insitu {
            fast: Fast::new(&engine),
            feats: Vec::new(),
            engine,
        })
    }

    /// Choose a variant. Never throws: on bad input it returns the fallback
    /// variant with `fallback: true` and the `error` (an `InsituError`).
    #[wasm_bindgen(unchecked_return_type = "Decision")]
    pub fn rank(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "RankOptions | undefined")] options: JsValue,
    ) -> JsValue {
        let result = guard().and_then(|_| {
            let n = super::prep_rank(&self.fast.walker, &options, self.fast.k as u32);
            let c = if n >= 0 {
                self.rank_fast(n as usize)?
            } else {
                // The JSON path: anything the JS half did not take, and every
                // validation error. The bytes outlive the parsed options.
                let bytes = pack_for(&self.fast.walker, &options)?;
                let opts = RankOptions::from_json(unpack(&bytes, "rank options")?)?;
                self.engine.rank_choice(&opts, now_or(opts.now))?
            };
            Ok(self.fast.decision(
                c.index,
                c.probability,
                Some((c.seed, c.counter)),
                self.engine.last_pmf(),
                self.engine.last_scores(),
            ))
        });
        result.unwrap_or_else(|err| self.fallback_decision(err))
    }

    fn rank_fast(&mut self, n: usize) -> Result<Choice, JsValue> {
        let buf = &self.fast.buf;
        let seed = buf.get(0);
        let seed = (seed >= 0.0).then_some(seed as u64);
        let (now, defer) = (buf.get(1), buf.get(2) != 0.0);
        self.fast.features(n, &mut self.feats);
        Ok(self.engine.rank_hashed(&self.feats, seed, defer, now)?)
    }

    /// `reward` / `activate` options as the JS half read them (decision
    /// counter, reward, now), or `None` for the JSON path.
    fn settle_fast(&self, options: &JsValue, with_reward: bool) -> Option<(u64, f64, f64)> {
        let b = &self.fast.buf;
        (super::prep_settle(&self.fast.walker, options, with_reward) > 0)
            .then(|| (b.get(1) as u64, b.get(2), b.get(3)))
    }

    fn fallback_decision(&self, err: JsValue) -> JsValue {
        let d = self.engine.fallback_decision();
        let out = self.fast.decision(d.index, 1.0, None, &d.pmf, &[]);
        let _ = js_sys::Reflect::set(&out, &"error".into(), &err);
        out
    }

    /// Settle a decision: `{ decisionId, reward }` with reward in [0, 1].
    pub fn reward(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "RewardOptions")] options: JsValue,
    ) -> Result<(), JsValue> {
        guard()?;
        if let Some((counter, reward, now)) = self.settle_fast(&options, true) {
            let epoch = self.engine.epoch();
            return Ok(self.engine.reward_id(epoch, counter, reward, now)?);
        }
        let o = SettleOptions::from_json(&unpack(&pack(&options)?, "options")?, true)?;
        Ok(self
            .engine
            .reward(&o.decision_id, o.reward, now_or(o.now))?)
    }

    /// Mark a decision ranked with `defer: true` as shown, so its reward counts.
    pub fn activate(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "ActivateOptions")] options: JsValue,
    ) -> Result<(), JsValue> {
        guard()?;
        if let Some((counter, _, now)) = self.settle_fast(&options, false) {
            let epoch = self.engine.epoch();
            return Ok(self.engine.activate_id(epoch, counter, now)?);
        }
        let o = SettleOptions::from_json(&unpack(&pack(&options)?, "options")?, false)?;
        Ok(self.engine.activate(&o.decision_id, now_or(o.now))?)
    }

    /// Learn from a logged observation: `{ context, variant, reward }`.
    pub fn learn(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "LearnOptions")] options: JsValue,
    ) -> Result<(), JsValue> {
        guard()?;
        let bytes = pack_for(&self.fast.walker, &options)?;
        Ok(self
            .engine
            .learn(&LearnOptions::from_json(unpack(&bytes, "learn options")?)?)?)
    }

    /// Why a variant: its posterior mean score split into what each feature
    /// of the context adds (`Explanation`). Takes the rank options the
    /// decision was made with (`context`, `actions`) plus `variant` (default:
    /// the highest mean score) and `top` (1 to 64 contributions, default 5).
    /// Changes nothing. Throws `InsituError` for bad input, with the codes
    /// `rank` reports in `error`, plus `UNKNOWN_VARIANT`.
    #[wasm_bindgen(unchecked_return_type = "Explanation")]
    pub fn explain(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ExplainOptions | undefined")] options: JsValue,
    ) -> Result<JsValue, JsValue> {
        guard()?;
        let bytes = pack_for(&self.fast.walker, &options)?;
        let opts = ExplainOptions::from_json(unpack(&bytes, "explain options")?)?;
        let x = self.engine.explain(&opts)?;
        let numbers =
            |v: &[f64]| -> js_sys::Array { v.iter().map(|&n| JsValue::from(n)).collect() };
        let contributions: js_sys::Array = (x.contributions.iter())
            .map(|c| {
                JsObj::new()
                    .set("feature", c.feature.as_str())
                    .set("value", c.value)
                    .set("weight", c.weight)
                    .set("contribution", c.contribution)
                    .set("shared", c.shared)
                    .done()
            })
            .collect();
        let best = self.engine.variant_ids().swap_remove(x.best);
        Ok(JsObj::new()
            .set("variant", &x.variant)
            .set("score", x.score)
            .set("bias", x.bias)
            .set("contributions", contributions)
            .set("other", x.other)
            .set("best", &best)
            .set("scores", numbers(&x.scores))
            .set("sd", numbers(&x.sd))
            .set("updates", x.updates as f64)
            .done())
    }

    /// Merge this slot's learning with a stored snapshot (a `Uint8Array`,
    /// or null when nothing is stored) and return the snapshot to store, with
    /// what the merge found. Nothing changes until `commit()`, which the
    /// caller makes once the bytes are written; if the write fails, sync
    /// again later and nothing is lost. Options: `slot` (required: the name
    /// of this slot's section), `now`, `maxBytes`. Throws `InsituError`:
    /// `SNAPSHOT_FOREIGN`, `SNAPSHOT_CORRUPT`, `SNAPSHOT_VERSION` (quarantine
    /// the stored bytes and sync with null), `SNAPSHOT_TOO_LARGE`,
    /// `INVALID_OPTION`.
    #[wasm_bindgen(unchecked_return_type = "SyncResult")]
    pub fn sync(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | null | undefined")] stored: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SyncOptions")] options: JsValue,
    ) -> Result<JsValue, JsValue> {
        guard()?;
        let a = super::SyncArgs::read(&stored, &options, true)?;
        let r = self
            .engine
            .sync(a.stored.as_deref(), &a.slot, a.now, a.max)?;
        Ok(report(&r)
            .set("bytes", js_sys::Uint8Array::from(&r.bytes[..]))
            .set("overwrote", r.overwrote)
            .done())
    }

    /// Load this slot's learning from a stored snapshot on page load: the
    /// stored learning with this slot's own updates not yet stored replayed
    /// onto it, and the stored pending decisions. Writes nothing and needs
    /// no `commit()`; own updates stay for the next `sync()`. Options and
    /// errors as for `sync()`; on error nothing changes.
    #[wasm_bindgen(unchecked_return_type = "RestoreResult")]
    pub fn restore(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] stored: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SyncOptions")] options: JsValue,
    ) -> Result<JsValue, JsValue> {
        guard()?;
        let mut a = super::SyncArgs::read(&stored, &options, true)?;
        let bytes = a.required()?;
        let r = self.engine.restore(&bytes, &a.slot, a.now, a.max)?;
        Ok(report(&r).done())
    }

    /// `restore()` from the store's decoded snapshot, for `slot` at `now`;
    /// the store reads no report.
    #[wasm_bindgen(js_name = __restoreSnapshot, skip_typescript)]
    pub fn restore_snapshot(
        &mut self,
        snap: &super::frame::JsSnapshot,
        slot: &str,
        now: f64,
    ) -> Result<(), JsValue> {
        guard()?;
        self.engine.restore_snapshot(&snap.0, slot, now)?;
        Ok(())
    }

    /// Apply the last `sync()` after its bytes were stored. Returns false,
    /// changing nothing, when there is nothing to commit or the slot decided
    /// or learned since that sync (sync again).
    pub fn commit(&mut self) -> Result<bool, JsValue> {
        guard()?;
        Ok(self.engine.commit())
    }

    /// Forget everything learned and every pending decision: back to the
    /// prior. Storage is the caller's (the store's `forget()` erases it).
    pub fn reset(&mut self) -> Result<(), JsValue> {
        guard()?;
        self.engine.reset(super::entropy_seed());
        // The JS half builds decision ids from the epoch, which changed.
        self.fast = Fast::new(&self.engine);
        Ok(())
    }

    /// Variant ids in order.
    #[wasm_bindgen(getter)]
    pub fn variants(&self) -> Vec<String> {
        self.engine.variant_ids()
    }

    /// Content hash of the prior model.
    #[wasm_bindgen(getter, js_name = modelVersion)]
    pub fn model_version(&self) -> String {
        self.engine.model_version().to_owned()
    }

    /// The exploration policy's name.
    #[wasm_bindgen(getter)]
    pub fn policy(&self) -> String {
        self.engine.policy_name().to_owned()
    }

    /// Learner statistics: `{ variants: [{ id, updates }], pending, policy, modelVersion }`.
    #[wasm_bindgen(unchecked_return_type = "Stats")]
    pub fn stats(&self) -> Result<JsValue, JsValue> {
        guard()?;
        let variants: js_sys::Array = self
            .engine
            .variant_ids()
            .into_iter()
            .zip(self.engine.updates())
            .map(|(id, n)| JsObj::new().set("id", &id).set("updates", n as f64).done())
            .collect();
        Ok(JsObj::new()
            .set("variants", variants)
            .set("pending", self.engine.pending_count() as f64)
            .set("policy", self.engine.policy_name())
            .set("modelVersion", self.engine.model_version())
            .done())
    }
}

/// Options the JS half packed ([`Json::unpack`]), named `what` in errors.
fn unpack<'a>(bytes: &'a [u8], what: &str) -> Result<Json<'a>, JsValue> {
    Ok(Json::unpack(bytes, what, crate::Error::option_owned)?)
}

/// What a sync or restore found, as the JS result's fields.
fn report(r: &crate::SyncReport) -> JsObj {
    JsObj::new()
        .set("modelChanged", r.model_changed)
        .set("merged", r.merged)
        .set("replayed", r.replayed as f64)
        .set("duplicates", r.duplicates as f64)
        .set("rejected", r.rejected as f64)
        .set("adopted", r.adopted as f64)
}
