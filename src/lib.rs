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
//! use insitu::{Engine, EngineConfig, RankOptions};
//! let cfg = EngineConfig::parse(
//!     r#"{"variants": ["a", "b"], "features": {"allow": ["page"]}, "seed": 7}"#,
//!     0,
//! )
//! .unwrap();
//! let mut engine = Engine::new(cfg);
//! let rank = RankOptions::parse(r#"{"context": {"page": {"section": "sports"}}}"#).unwrap();
//! let d = engine.rank(&rank, 0.0).unwrap();
//! assert!(d.probability > 0.0);
//! engine.reward(d.decision_id.as_deref().unwrap(), 1.0, 1.0).unwrap();
//!
//! // Unknown options are errors with a stable code, naming the bad key.
//! let err = EngineConfig::parse(r#"{"variants": ["a", "b"], "polcy": {}}"#, 0).unwrap_err();
//! assert_eq!(err.code(), "INVALID_OPTION");
//! assert!(err.to_string().contains("polcy"));
//! ```
#![warn(missing_docs, unreachable_pub)]

mod allocation;
mod bandit;
mod behavior;
mod bytes;
mod engine;
mod error;
mod features;
mod frame;
mod json;
mod model;
mod rng;
mod snapshot;

#[cfg(target_arch = "wasm32")]
mod wasm;

pub use allocation::{
    fnv1a32, growthbook_hash, Allocation, Allocator, Assignment, Condition, Experiment,
    Experiments, Exposure, HashVersion, Holdout, Namespace, Reason, Scalar, Test, UnitSource,
    SECTION as EXPERIMENTS_SECTION,
};
pub use bandit::explore;
pub use behavior::{
    Behavior, BehaviorConfig, BehaviorSync, Event, Value as BehaviorValue,
    BUILTIN_TYPES as BUILTIN_EVENT_TYPES, SECTION as BEHAVIOR_SECTION,
};
pub use engine::{
    parse_decision_id, Choice, Contribution, Decision, Engine, EngineConfig, ExplainOptions,
    Explanation, LearnOptions, RankOptions, SettleOptions, SyncReport,
};
pub use error::{Error, Result};
pub use features::{hash, Hashed, HASH_VERSION};
pub use frame::{from_base64, open as open_frame, seal as seal_frame, to_base64, Frame, FRAME_TAG};
pub use rng::Rng;
pub use snapshot::{
    crc32, Snapshot, DEFAULT_MAX_BYTES as DEFAULT_MAX_SNAPSHOT_BYTES,
    FORMAT_VERSION as SNAPSHOT_FORMAT_VERSION,
};
