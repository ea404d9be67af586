//! # insitu
//!
//! On-device personalization: page signals become hashed features, a compact
//! prior model plus per-variant online statistics score the variants, an
//! exploration policy turns scores into probabilities, and a seeded sample
//! picks the variant. Rewards update the learner in place, in the browser.
//!
//! The core is plain Rust; the JS surface lives in `src/wasm/` only.
//!
//! ```
//! use insitu::{Engine, EngineOptions, RankOptions};
//! let opts: EngineOptions = serde_json::from_str(
//!     r#"{"variants": ["a", "b"], "features": {"allow": ["page"]}, "seed": 7}"#,
//! ).unwrap();
//! let mut engine = Engine::new(opts.check(0).unwrap());
//! let ctx = serde_json::from_str(r#"{"page": {"section": "sports"}}"#).unwrap();
//! let d = engine.rank(&RankOptions { context: Some(ctx), ..Default::default() }, 0.0).unwrap();
//! assert!(d.probability > 0.0);
//! engine.reward(&d.decision_id, 1.0, 1.0).unwrap();
//! ```
#![warn(missing_docs, unreachable_pub)]

mod bandit;
mod engine;
mod error;
mod features;
mod model;
mod rng;

#[cfg(target_arch = "wasm32")]
mod wasm;

pub use bandit::{explore, Policy, PolicyKind, PolicyOptions};
pub use engine::{
    Decision, Engine, EngineConfig, EngineOptions, LearnOptions, RankOptions, VariantOption,
    VariantStats,
};
pub use error::{Error, Result};
pub use features::{Context, FeatureConfig, FeatureOptions, SparseVec, Value, HASH_VERSION};
pub use model::{CompactModel, ModelSpec, Posterior};
pub use rng::Rng;
