//! The `Insitu` class: one decision point (a page slot) and its learner.

use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::{from_js, guard, now_or, to_js};
use crate::{Engine, EngineOptions, LearnOptions, RankOptions};

/// One decision point: a page slot with its variants, model and learner.
///
/// ```js
/// const slot = new Insitu({ variants: ["a", "b"], features: { allow: ["page"] } });
/// const d = slot.rank({ context: { page: { section: "sports" } } });
/// show(d.variant);
/// slot.reward({ decisionId: d.decisionId, reward: 1 });
/// ```
#[wasm_bindgen]
pub struct Insitu(Engine);

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RewardCall {
    decision_id: String,
    reward: f64,
    now: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ActivateCall {
    decision_id: String,
    now: Option<f64>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Fallback<'a> {
    variant: &'a str,
    index: usize,
    probability: f64,
    pmf: Vec<f64>,
    decision_id: Option<()>,
    seed: Option<()>,
    model_version: &'a str,
    policy: &'a str,
    fallback: bool,
}

#[wasm_bindgen]
impl Insitu {
    /// Validate options and start at the prior. Throws `InsituError` with a `code`.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Insitu, JsValue> {
        guard()?;
        let opts: EngineOptions = from_js(options, "options")?;
        let cfg = opts.check(super::entropy_seed())?;
        Ok(Insitu(Engine::new(cfg)))
    }

    /// Choose a variant. Never throws: on bad input it returns the fallback
    /// variant with `fallback: true` and the `error` (an `InsituError`).
    pub fn rank(&mut self, options: JsValue) -> JsValue {
        let result = guard().and_then(|_| {
            let call: RankOptions = if options.is_undefined() {
                RankOptions::default()
            } else {
                from_js(options, "rank options")?
            };
            let d = self.0.rank(&call, now_or(call.now))?;
            let out = to_js(&d);
            let _ = js_sys::Reflect::set(&out, &"fallback".into(), &false.into());
            Ok(out)
        });
        result.unwrap_or_else(|err| self.fallback_decision(err))
    }

    fn fallback_decision(&self, err: JsValue) -> JsValue {
        let ids = self.0.variant_ids();
        let index = self.0.fallback();
        let mut pmf = vec![0.0; ids.len()];
        pmf[index] = 1.0;
        let out = to_js(&Fallback {
            variant: &ids[index],
            index,
            probability: 1.0,
            pmf,
            decision_id: None,
            seed: None,
            model_version: self.0.model_version(),
            policy: self.0.policy_name(),
            fallback: true,
        });
        let _ = js_sys::Reflect::set(&out, &"error".into(), &err);
        out
    }

    /// Settle a decision: `{ decisionId, reward }` with reward in [0, 1].
    pub fn reward(&mut self, options: JsValue) -> Result<(), JsValue> {
        guard()?;
        let call: RewardCall = from_js(options, "reward options")?;
        Ok(self.0.reward(&call.decision_id, call.reward, now_or(call.now))?)
    }

    /// Mark a decision ranked with `defer: true` as shown.
    pub fn activate(&mut self, options: JsValue) -> Result<(), JsValue> {
        guard()?;
        let call: ActivateCall = from_js(options, "activate options")?;
        Ok(self.0.activate(&call.decision_id, now_or(call.now))?)
    }

    /// Learn from a logged observation: `{ context, variant, reward }`.
    pub fn learn(&mut self, options: JsValue) -> Result<(), JsValue> {
        guard()?;
        let call: LearnOptions = from_js(options, "learn options")?;
        Ok(self.0.learn(&call)?)
    }

    /// Variant ids in order.
    #[wasm_bindgen(getter)]
    pub fn variants(&self) -> Vec<String> {
        self.0.variant_ids()
    }

    /// Content hash of the prior model.
    #[wasm_bindgen(getter, js_name = modelVersion)]
    pub fn model_version(&self) -> String {
        self.0.model_version().to_owned()
    }

    /// The exploration policy's name.
    #[wasm_bindgen(getter)]
    pub fn policy(&self) -> String {
        self.0.policy_name().to_owned()
    }

    /// Learner statistics: `{ variants: [{ id, updates }], pending }`.
    pub fn stats(&self) -> Result<JsValue, JsValue> {
        guard()?;
        #[derive(serde::Serialize)]
        struct Stats {
            variants: Vec<crate::VariantStats>,
            pending: usize,
        }
        Ok(to_js(&Stats { variants: self.0.stats(), pending: self.0.pending_count() }))
    }
}
