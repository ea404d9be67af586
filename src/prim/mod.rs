//! Leaf helpers that depend on nothing else in the crate (but the error
//! type): the clock's units and check, the hashes, the seeded RNG, sorting,
//! float maths, a bounded byte cursor, `Vec` removals without panics and
//! the capped journal of updates not yet stored. Every domain module may
//! use them; they use no domain module.

pub(crate) mod clock;
pub(crate) mod cursor;
pub(crate) mod digits;
pub(crate) mod hash;
pub(crate) mod journal;
pub(crate) mod math;
pub(crate) mod rng;
pub(crate) mod sort;
pub(crate) mod utf8;
pub(crate) mod vec;
