//! insitu's aggregator: private reports in, noisy sums, a readout and the
//! next prior model out. See `docs/aggregate.md` for the formats, the
//! guarantee and how to run it.
//!
//! - [`measure`]: the measurement encoding, the reference for the device.
//! - [`aggregate`]: stream report lines (plain or Prio3 shares), verify,
//!   sum per segment, and [`release`] with central noise ([`noise`]).
//! - [`readout`]: rates and intervals from the noisy sums.
//! - [`model`]: the next prior from the noisy sums.
//! - [`simulate`]: the end-to-end simulation (`npm run bench:federated`).
//!
//! Prio3 is `prio` 0.16.8, which implements VDAF-08, the VDAF of DAP-09:
//! the draft that Janus's release/0.7 crates and the `@divviup/dap` 0.9
//! npm client speak.

#![warn(missing_docs, unreachable_pub)]

pub mod aggregate;
mod error;
pub mod line;
pub mod measure;
pub mod noise;
pub mod prio;
pub mod task;

pub use aggregate::{release, Aggregator, Summary, SumsFile};
pub use error::{Code, Error, Result, CODES};
pub use measure::{decode, encode, Bounds, Decoded, Encoded, Group, Spec, Stats};
pub use noise::Mechanism;
pub use task::{Task, TaskFile};
pub mod model;
pub mod readout;
pub mod simulate;
