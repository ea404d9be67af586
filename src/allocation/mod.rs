//! Client-side A/B allocation: deterministic, sticky, identifier-free
//! assignment, the local exposure log, and bandit (Thompson) allocation.
//!
//! An [`Allocator`] holds a checked set of [`Experiments`] and the state
//! they need on this device: the unit key (a random device seed, or an id
//! the site supplies), the exposure log, and per bandit experiment its
//! counts and current trial. That state is its own snapshot (section
//! [`SECTION`]), merged across tabs like the learner's: stored counts plus
//! this page's own settlements, each settlement applied once (by its seed).
//! The settlements not yet stored (the journal) are at most 1,024, past
//! which the oldest counts in the own state; a commit under consent
//! `functional`, which stores no counts, drains them. Syncs and commits
//! follow the protocol every part does (`store/sync.rs`).
//!
//! Built for a small .wasm: names are interned once and handled as
//! numbers, the state is one table of plain records, and the stored
//! section is read with an error that sticks (see `state.rs` and
//! `bytes.rs`); the TypeScript side has checked the configuration, and the
//! .wasm's reader refuses only what would not be safe.

mod assign;
mod bytes;
mod config;
mod hash;
#[cfg(feature = "json")]
mod json;
mod state;
#[cfg(feature = "json")]
mod targeting;
mod thompson;

pub use crate::prim::hash::fnv1a32;
pub use assign::Reason;
pub(crate) use bytes::Bytes;
#[cfg(any(feature = "first", all(target_arch = "wasm32", test)))]
pub(crate) use config::Names;
pub use config::{Allocation, Experiment, Experiments, HashVersion, Holdout, Namespace, Variant};
pub use hash::growthbook as growthbook_hash;
pub use state::{Allocator, Assignment, Exposure, UnitSource, SECTION};
#[cfg(feature = "json")]
pub use targeting::{Condition, Scalar, Test};
