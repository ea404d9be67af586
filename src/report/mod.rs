//! What may leave the device, and only through the site's `onReport`.
//!
//! A slot with reports on keeps a [`Tally`]: the additive statistics of the
//! current period (decisions, exposures and reward sums per variant, and
//! the learner's X'y and diagonal of X'X over the hashed slots), persisted
//! in its own section of the snapshot and merged across tabs by addition.
//! When a sync finds the stored period over, it encodes the closed period
//! into one measurement ([`measure`]: bounded non-negative integers, the
//! input of a Prio3 `SumVec`), records it in the slot's ledger (stored in
//! the same section, so a period is reported once), and hands it over on
//! commit. The module never sends anything; the TypeScript side passes the
//! measurement to the site's callback.

mod measure;
mod tally;

pub use crate::error::Refusal;
pub use measure::{
    check_len, decode, encode, Bounds, Decoded, Encoded, Group, Spec, Stats, FORMAT, GROUPS,
    MAX_BITS, MAX_SCALE, MAX_SLOTS, MAX_VARIANTS,
};
pub use tally::{
    ledger, mask, period_of, Closed, LedgerEntry, Outcome, Owner, ReportTask, Tally, TallySync,
    MAX_ENTRIES, MAX_LEDGER, MAX_PERIOD_DAYS,
};
