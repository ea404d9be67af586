//! Shared helpers: a task, random valid reports, and their lines.

#![allow(dead_code)] // each test file uses its own part

use insitu_aggregate::line::to_base64;
use insitu_aggregate::prio::{shard, vdaf};
use insitu_aggregate::{encode, Stats, Task, TaskFile};
use rand::rngs::StdRng;
use rand::Rng;

pub const TASK: &str = r#"{
  "format": 1, "task": "shop-hero", "period": "2026-12-06", "key": "hero",
  "variants": 2, "slots": 16, "scale": 64,
  "bounds": { "decisions": 8, "exposures": 8, "rewards": 4, "xy": 6, "xx": 20 },
  "segments": ["desktop", "mobile"]
}"#;

pub fn task() -> Task {
    TaskFile::parse(TASK).unwrap().check().unwrap()
}

/// Random statistics of one report, sometimes over the bounds (the
/// encoder clips them).
pub fn stats(rng: &mut StdRng, t: &Task) -> Stats {
    let mut st = Stats::zeros(&t.spec);
    for k in 0..t.spec.variants() {
        st.decisions[k] = rng.gen_range(0..6);
        st.exposures[k] = rng.gen_range(0..=st.decisions[k]);
        st.rewards[k] = rng.gen::<f64>() * st.exposures[k] as f64;
    }
    for i in 0..st.xy.len() {
        st.xy[i] = rng.gen_range(-2.0..2.0);
        st.xx[i] = rng.gen_range(0.0..4.0);
    }
    st
}

/// A random valid measurement.
pub fn measurement(rng: &mut StdRng, t: &Task) -> Vec<u64> {
    encode(&t.spec, &stats(rng, t)).unwrap().entries
}

fn head(segment: &str) -> String {
    format!(
        r#"{{"v":1,"task":"shop-hero","period":"2026-12-06","key":"hero","segment":"{segment}""#
    )
}

/// A plain line.
pub fn plain_line(m: &[u64], segment: &str) -> String {
    format!(r#"{},"measurement":{:?}}}"#, head(segment), m)
}

/// A plain line when `plain`, else a Prio3 one, ending in a newline.
pub fn line_of(rng: &mut StdRng, t: &Task, m: &[u64], segment: &str, plain: bool) -> String {
    let line = if plain {
        plain_line(m, segment)
    } else {
        prio_line(rng, t, m, segment)
    };
    line + "\n"
}

/// A Prio3 line: the measurement sharded with prio, a random report id.
pub fn prio_line(rng: &mut StdRng, t: &Task, m: &[u64], segment: &str) -> String {
    let nonce: [u8; 16] = rng.gen();
    let (p, [l, h]) = shard(&vdaf(&t.spec).unwrap(), m, &nonce).unwrap();
    prio_line_of(segment, &nonce, &p, &l, &h)
}

pub fn prio_line_of(segment: &str, nonce: &[u8], p: &[u8], l: &[u8], h: &[u8]) -> String {
    format!(
        r#"{},"nonce":"{}","publicShare":"{}","leaderShare":"{}","helperShare":"{}"}}"#,
        head(segment),
        to_base64(nonce),
        to_base64(p),
        to_base64(l),
        to_base64(h)
    )
}
