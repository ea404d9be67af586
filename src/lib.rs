//! # insitu
//!
//! On-device personalization: page signals become hashed features, a compact
//! prior model plus per-variant online statistics score the variants, an
//! exploration policy turns scores into probabilities, and a seeded sample
//! picks the variant. Rewards update the learner in place, in the browser.
//!
//! This crate is the core: plain Rust that receives validated, typed data
//! (the TypeScript control plane in `src/ts/` validates the site's options)
//! and never panics on bad bytes. The WebAssembly boundary lives in
//! `src/wasm/` only. Native builds (`std`, the default) also read options as
//! JSON (feature `json`), for tests, benchmarks and tools; the .wasm does not.
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
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs, unreachable_pub)]
// Builds without `std` keep each message's text but fill in no values (see
// `text!`), so the values named in a format string go unused there.
#![cfg_attr(not(feature = "std"), allow(unused_variables))]
// One core serves three builds that each reach a part of it: the native
// build (tests, benches, tools: `std` and `json`) and the two .wasm modules
// (`first`, `full`, without `json`). What one build does not reach is not
// dead: the union of all three (`--features full` natively, as
// `scripts/test.sh` lints it) is where dead code and unused imports count.
#![cfg_attr(
    not(all(feature = "json", feature = "full")),
    allow(dead_code, unused_imports)
)]

extern crate alloc;

/// What every module takes from `alloc`: the share of the standard prelude
/// that `no_std` builds lack.
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}

#[macro_use]
mod error;
mod allocation;
mod bandit;
mod behavior;
mod engine;
pub mod eval;
mod features;
#[cfg(feature = "json")]
mod json;
mod model;
mod prim;
pub mod report;
mod store;

#[cfg(any(feature = "first", all(target_arch = "wasm32", test)))]
mod wasm;

pub use allocation::{
    fnv1a32, growthbook_hash, Allocation, Allocator, Assignment, Experiment, Experiments, Exposure,
    HashVersion, Holdout, Namespace, Reason, UnitSource, Variant, SECTION as EXPERIMENTS_SECTION,
};
#[cfg(feature = "json")]
pub use allocation::{Condition, Scalar, Test};
pub use bandit::explore;
pub use behavior::{
    Behavior, BehaviorConfig, BehaviorSync, Event, Value as BehaviorValue,
    BUILTIN_TYPES as BUILTIN_EVENT_TYPES, SECTION as BEHAVIOR_SECTION,
};
#[cfg(feature = "json")]
pub use engine::{
    parse_decision_id, ExplainOptions, LearnOptions, NamedContribution, NamedExplanation,
    RankOptions, SettleOptions,
};
pub use engine::{
    Choice, Contribution, Decision, Engine, EngineConfig, Explanation, Labelled, Prior, SyncReport,
    Term,
};
pub use error::{Error, Result, CODES as ERROR_CODES};
pub use features::{hash, Hashed, HASH_VERSION};
pub use prim::hash::{crc32, murmur3_32};
pub use prim::rng::Rng;
pub use store::frame::{
    from_base64, open as open_frame, seal as seal_frame, to_base64, Frame, FRAME_TAG,
};
pub use store::{
    Snapshot, DEFAULT_MAX_BYTES as DEFAULT_MAX_SNAPSHOT_BYTES,
    FORMAT_VERSION as SNAPSHOT_FORMAT_VERSION,
};
