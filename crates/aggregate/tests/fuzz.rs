//! Seeded fuzzing of what `insitu-aggregate` reads from outside: report
//! lines (plain and Prio3, one at a time and as a stream) and sums files.
//!
//! As in the core's `tests/fuzz.rs`, this is the seeded property test that
//! stands in for cargo fuzz on these offline machines. Inputs are valid
//! lines mutated by bit flips, random and boundary bytes, truncation,
//! duplication, insertion, splicing and inserted newlines, plus wholly
//! random bytes. Properties: no panic; every error carries a code that
//! input may produce; a stream's summary accounts for every line.
//!
//! `INSITU_FUZZ_INPUTS` sets the inputs per target (default 2,000).

mod common;

use common::*;
use insitu_aggregate::readout::{readout, Options};
use insitu_aggregate::{release, Aggregator, Mechanism};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn inputs_per_target() -> usize {
    std::env::var("INSITU_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

const BOUNDARY: [u8; 12] = [
    0, 1, b'"', b'\\', b'{', b'}', b'[', b',', b'9', b'-', 0x80, 0xff,
];

fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut b = seeds[rng.gen_range(0..seeds.len())].clone();
    for _ in 0..rng.gen_range(1..4) {
        let n = b.len().max(1);
        match rng.gen_range(0..9) {
            0 => {
                let i = rng.gen_range(0..n).min(b.len().saturating_sub(1));
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << rng.gen_range(0..8);
                }
            }
            1 => {
                if let Some(x) = b.get_mut(rng.gen_range(0..n)) {
                    *x = rng.gen();
                }
            }
            2 => {
                if let Some(x) = b.get_mut(rng.gen_range(0..n)) {
                    *x = BOUNDARY[rng.gen_range(0..BOUNDARY.len())];
                }
            }
            3 => b.truncate(rng.gen_range(0..n)),
            4 => {
                let (i, j) = (rng.gen_range(0..n), rng.gen_range(0..n));
                let (i, j) = (i.min(j).min(b.len()), i.max(j).min(b.len()));
                let chunk = b[i..j].to_vec();
                b.splice(j..j, chunk);
            }
            5 => {
                let at = rng.gen_range(0..=b.len());
                let junk: Vec<u8> = (0..rng.gen_range(1..16)).map(|_| rng.gen()).collect();
                b.splice(at..at, junk);
            }
            6 => {
                let other = &seeds[rng.gen_range(0..seeds.len())];
                let cut = rng.gen_range(0..=b.len());
                let from = rng.gen_range(0..=other.len());
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            }
            7 => {
                // A number made huge, negative or fractional.
                let s = String::from_utf8_lossy(&b).into_owned();
                let repl = [
                    "99999999999999999999999",
                    "-1",
                    "0.5",
                    "1e308",
                    "null",
                    "\"1\"",
                ];
                b = s
                    .replacen(
                        ",0,",
                        &format!(",{},", repl[rng.gen_range(0..repl.len())]),
                        1,
                    )
                    .into_bytes();
            }
            _ => {
                let at = rng.gen_range(0..=b.len());
                b.insert(at, b'\n');
            }
        }
    }
    b
}

fn random_bytes(rng: &mut StdRng) -> Vec<u8> {
    let n = rng.gen_range(0..300);
    (0..n).map(|_| rng.gen()).collect()
}

const LINE_CODES: [&str; 12] = [
    "LINE_TOO_LONG",
    "INVALID_UTF8",
    "MALFORMED_JSON",
    "INVALID_FIELD",
    "UNSUPPORTED_VERSION",
    "TASK_MISMATCH",
    "UNKNOWN_SEGMENT",
    "WRONG_LENGTH",
    "OUT_OF_RANGE",
    "BAD_ENCODING",
    "VERIFY_FAILED",
    "IO",
];

fn seeds(rng: &mut StdRng) -> Vec<Vec<u8>> {
    let t = task();
    let mut out = Vec::new();
    for seg in ["desktop", "mobile"] {
        let m = measurement(rng, &t);
        out.push(plain_line(&m, seg).into_bytes());
        out.push(prio_line(rng, &t, &m, seg).into_bytes());
    }
    out
}

#[test]
fn report_lines_never_panic_and_carry_known_codes() {
    let mut rng = StdRng::seed_from_u64(31);
    let seeds = seeds(&mut rng);
    let t = task();
    // A small limit too, so LINE_TOO_LONG is reached by the stream.
    let mut a = Aggregator::new(t.clone(), [9; 16], None).unwrap();
    let mut stream = Vec::new();
    let mut accepted = 0u64;
    for i in 0..inputs_per_target() {
        let input = if i % 10 == 0 {
            random_bytes(&mut rng)
        } else {
            mutate(&mut rng, &seeds)
        };
        match a.line(&input) {
            Ok(()) => accepted += 1,
            Err(e) => assert!(LINE_CODES.contains(&e.code()), "{e}"),
        }
        stream.extend_from_slice(&input);
        stream.push(b'\n');
    }
    // Mutations that keep a valid report (e.g. a flipped bit in a plain
    // entry that stays within its bound) are accepted; most are not.
    assert!(accepted < inputs_per_target() as u64 / 2, "{accepted}");
    for limit in [None, Some(512)] {
        let mut s = Aggregator::new(t.clone(), [9; 16], limit).unwrap();
        s.read(&stream[..]).unwrap();
        let sum = s.summary();
        let refused: u64 = sum.refused.values().sum();
        assert_eq!(sum.plain + sum.prio + refused, sum.lines);
        assert!(sum.refused.keys().all(|c| LINE_CODES.contains(c)));
        if limit.is_some() {
            assert!(sum.refused.contains_key("LINE_TOO_LONG"));
        }
        s.finish().unwrap();
    }
}

#[test]
fn sums_files_never_panic_and_carry_known_codes() {
    let mut rng = StdRng::seed_from_u64(32);
    let t = task();
    let exact = vec![vec![100; t.spec.len()]; 2];
    let mech = Mechanism::DiscreteLaplace { epsilon: 1.0 };
    let sums = release(&t, &exact, mech, &mut rng).unwrap();
    let seeds = vec![
        serde_json::to_vec(&sums).unwrap(),
        serde_json::to_vec_pretty(&sums).unwrap(),
    ];
    let opts = Options {
        min_reports: 10.0,
        confidence: 0.95,
    };
    readout(std::str::from_utf8(&seeds[0]).unwrap(), &opts).unwrap();
    for i in 0..inputs_per_target() {
        let input = if i % 10 == 0 {
            random_bytes(&mut rng)
        } else {
            mutate(&mut rng, &seeds)
        };
        let Ok(text) = std::str::from_utf8(&input) else {
            continue;
        };
        if let Err(e) = readout(text, &opts) {
            assert!(["INVALID_SUMS", "WRONG_LENGTH"].contains(&e.code()), "{e}");
        }
    }
}
