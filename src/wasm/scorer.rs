//! The first-decision module's slots: scorers at their prior that decide,
//! and keep nothing else. The first-decision module serves a page view
//! with nothing stored (a first visit); a page view with stored learning
//! decides on the full engine. Until the whole engine arrives, the
//! TypeScript side records each decision made here and hands it over
//! (`slot_take_over`), and queues rewards, activations and `learn`.

use super::{done, with_io, Global, Table};
use crate::engine::Prior;
use crate::prelude::*;

static SCORERS: Global<Table<Prior>> = Global::new(Table::new());

fn scorer<R>(h: u32, f: impl FnOnce(&mut Prior) -> crate::Result<R>) -> crate::Result<R> {
    SCORERS.with(|t| f(t.get(h)?))
}

/// A new scorer from the slot configuration in `io` (as `slot_new`).
#[no_mangle]
pub extern "C" fn score_new() -> i32 {
    done(with_io(super::slot::config).map(|cfg| SCORERS.with(|t| t.add(Prior::new(cfg)))))
}

/// Free a scorer.
#[no_mangle]
pub extern "C" fn score_drop(h: u32) -> i32 {
    SCORERS.with(|t| t.remove(h))
}

/// Decide for the features in `io`, as `rank` does, without recording a
/// pending decision; the same results in `io`.
#[no_mangle]
pub extern "C" fn decide(h: u32, n: u32, actions: u32, seed: f64, now: f64, size: u32) -> i32 {
    done(scorer(h, |s| {
        let k = s.variant_count();
        let (shared, own) = super::slot::call_features(n, actions, k)?;
        let seed = super::slot::seed_of(seed)?;
        let c = s.decide_slate(&shared, own.as_deref(), seed, now, size as usize)?;
        Ok(super::slot::put_choice(
            &c,
            s.last_pmf(),
            s.last_scores(),
            s.last_slate(),
        ))
    }))
}
