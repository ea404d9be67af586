//! The core and its boundary inside wasm, run by `wasm-pack test --node`
//! and `--headless --chrome` (with `--features full`, so the exports exist
//! in the test build). The golden decision sequence is replayed here as
//! natively (tests/determinism.rs) and from JS, so one seed reproduces a
//! decision on every platform; and the exports are driven through their
//! shared buffers as src/ts/core.ts drives them.

use wasm_bindgen_test::*;

use super::{bytes, io, io_at, slot};
use crate::prelude::*;
use crate::{Engine, EngineConfig, RankOptions, ERROR_CODES};

#[cfg(feature = "test-in-browser")]
wasm_bindgen_test_configure!(run_in_browser);

const FIXTURE: &str = include_str!("../../tests/fixtures/determinism.json");

/// The value of `"key": <number>` after `from` in the fixture text.
fn number_after(text: &str, from: usize, key: &str) -> (f64, usize) {
    let pat = alloc::format!("\"{key}\": ");
    let at = text[from..].find(&pat).unwrap() + from + pat.len();
    let end = text[at..].find([',', '\n', '}']).unwrap() + at;
    (text[at..end].trim().parse().unwrap(), end)
}

#[wasm_bindgen_test]
fn the_golden_decisions_replay_in_wasm() {
    // The fixture is JSON written by tests/determinism.rs: its options and
    // each step's rank options go through the crate's JSON reader, the
    // outcomes are compared number by number.
    let options_at = FIXTURE.find("\"options\": ").unwrap() + 11;
    let options_end = FIXTURE[options_at..].find("\n  },").unwrap() + options_at + 4;
    let mut engine =
        Engine::new(EngineConfig::parse(&FIXTURE[options_at..options_end], 0).unwrap());
    let mut at = FIXTURE.find("\"steps\"").unwrap();
    let mut steps = 0;
    while let Some(rank_at) = FIXTURE[at..].find("\"rank\": ") {
        let start = at + rank_at + 8;
        // The rank object ends where the next step field at its depth begins.
        let end = FIXTURE[start..].find("\n      },\n").unwrap() + start + 8;
        let rank = RankOptions::parse(&FIXTURE[start..end]).unwrap();
        let (now, _) = number_after(FIXTURE, at, "now");
        let (probability, _) = number_after(FIXTURE, at, "probability");
        let (reward, _) = number_after(FIXTURE, end, "reward");
        let (seed, next) = number_after(FIXTURE, end, "seed");
        let d = engine.rank(&rank, rank.now.unwrap()).unwrap();
        assert_eq!(d.probability, probability, "step {steps}");
        assert_eq!(d.seed.unwrap() as f64, seed, "step {steps}");
        engine
            .reward(d.decision_id.as_deref().unwrap(), reward, now)
            .unwrap();
        steps += 1;
        at = next;
    }
    assert_eq!(steps, 40);
}

/// Write `values` into the `io` buffer, as core.ts does.
fn put(values: &[f64]) {
    let p = io(values.len() as u32);
    for (i, v) in values.iter().enumerate() {
        // SAFETY: `io(n)` made room for n values at `p`.
        unsafe { p.add(i).write(*v) };
    }
}

/// The first `n` values of the `io` buffer.
fn read(n: usize) -> Vec<f64> {
    // SAFETY: the last call wrote at least n values there.
    (0..n).map(|i| unsafe { io_at().add(i).read() }).collect()
}

/// A slot layout (src/ts/core.ts `slotLayout`): 2 variants, bits 4, one
/// namespace, raw features, LinUCB with a 0.01 floor, seed 7, epoch 1.
fn layout() -> Vec<f64> {
    vec![
        2.0,
        1.0,
        4.0,
        1.0,
        12345.0,
        0.0,
        0.0, // layout, hash, bits, 1 namespace (seed), 0 interactions, not normalized
        0.25,
        1.0,
        0.5,
        0.0,
        0.01, // noise, linucb, alpha, samples, floor
        0.0,
        7.0,
        1.0,
        86_400_000.0,
        256.0, // fallback, seed, epoch, ttl, maxPending
        0.0,
        1.0,
        2.0, // version halves, K
        0.0,
        0.0,
        0.0,
        1.0, // variant a: no features, zero means, variance 1
        0.0,
        0.0,
        0.0,
        1.0, // variant b
    ]
}

#[wasm_bindgen_test]
fn a_slot_decides_and_learns_through_the_buffers() {
    put(&layout());
    let h = slot::slot_new();
    assert!(h > 0, "slot_new failed: {h}");
    put(&[0.0, 99.0, 1.0]);
    let index = slot::rank(h as u32, 1, 0, -1.0, 1000.0, 0, -1, 1);
    assert!(index == 0 || index == 1);
    let r = read(7);
    assert!((r[0] - 0.5).abs() < 1e-12, "the prior ties: {r:?}");
    assert_eq!(r[2], 1.0, "the first decision's counter");
    assert_eq!(slot::reward(h as u32, 1.0, 1.0, 1.0, 2000.0), 0);
    // Settled once: again is DUPLICATE_REWARD, as a negative code.
    let dup = slot::reward(h as u32, 1.0, 1.0, 1.0, 2000.0);
    assert_eq!(ERROR_CODES[(-dup - 1) as usize], "DUPLICATE_REWARD");
    assert_eq!(slot::stats(h as u32), 2);
    let updates = read(3);
    assert_eq!(updates[0] + updates[1], 1.0);
    assert_eq!(slot::slot_drop(h as u32), 0);
}

#[wasm_bindgen_test]
fn bad_bytes_get_codes_never_a_trap() {
    // Too few numbers, a namespace past the allowlist, a seed past 2^53,
    // a handle that does not exist, and a snapshot of garbage.
    put(&[1.0, 1.0]);
    assert!(slot::slot_new() < 0);
    put(&layout());
    let h = slot::slot_new() as u32;
    put(&[3.0, 5.0, 1.0]);
    assert!(slot::rank(h, 1, 0, -1.0, 0.0, 0, -1, 1) < 0);
    put(&[]);
    assert!(slot::rank(h, 0, 0, 9_007_199_254_740_993.0, 0.0, 0, -1, 1) < 0);
    assert!(slot::rank(999, 0, 0, -1.0, 0.0, 0, -1, 1) < 0);
    // An apprentice's baseline past the variants is UNKNOWN_VARIANT; one
    // that exists is served with probability 1.
    put(&[]);
    let unknown = slot::rank(h, 0, 0, -1.0, 0.0, 0, 2, 1);
    assert_eq!(ERROR_CODES[(-unknown - 1) as usize], "UNKNOWN_VARIANT");
    put(&[]);
    assert_eq!(slot::rank(h, 0, 0, -1.0, 0.0, 0, 1, 1), 1);
    assert_eq!(read(1)[0], 1.0);
    let p = bytes(5);
    // SAFETY: `bytes(5)` made room for five bytes at `p`.
    unsafe { core::ptr::copy_nonoverlapping(b"INSU!".as_ptr(), p, 5) };
    let code = super::store::snap_decode(5, 1024);
    assert_eq!(ERROR_CODES[(-code - 1) as usize], "SNAPSHOT_CORRUPT");
    // The slot still works after every refusal.
    put(&[]);
    assert!(slot::rank(h, 0, 0, -1.0, 0.0, 0, -1, 1) >= 0);
    assert_eq!(slot::slot_drop(h), 0);
}
