//! The A/B allocator: the experiments and the state they keep on the device.
//!
//! Every export but `ab_new` runs one [`Op`] through [`call`], so the
//! plumbing (the bytes passed in, the handle, the error code) is compiled
//! once, not once per export.

use super::{bad, done, put_bytes, put_io, take_bytes, Global, Table, BYTES, IO};
use crate::allocation::{Bytes, Names};
use crate::prelude::*;
use crate::{Allocation, Allocator, Experiment, Experiments, HashVersion};

// Boxed: the table then moves a pointer, not the allocator.
static ALLOCATORS: Global<Table<Box<Allocator>>> = Global::new(Table::new());

/// What an export does with its allocator: it gets the bytes passed in
/// `bytes` (None when none were) and the export's numbers.
type Op = fn(&mut Allocator, Option<&[u8]>, [f64; 4]) -> crate::Result<i32>;

/// Run `op` on allocator `h` with the first `len` bytes of `bytes` (none
/// when `len` is negative) and the numbers `x`; the export's result.
fn call(h: u32, len: i32, x: [f64; 4], op: Op) -> i32 {
    done(take_bytes(len).and_then(|b| ALLOCATORS.with(|t| op(t.get(h)?, b.as_deref(), x))))
}

/// Read the experiments in `b` (layout in src/ts/core.ts
/// `experimentsLayout`). The TypeScript side checked them with messages;
/// this refuses only what would not be safe: no such fallback or hash
/// version, a sample count that is not an integer in [1, 8192] (it bounds
/// the work of a draw).
fn experiments(b: Option<&[u8]>) -> crate::Result<Experiments> {
    let mut f = Bytes::new(b.unwrap_or_default());
    let mut set = Experiments::default();
    for _ in 0..f.u8() {
        let key = f.bytes16();
        let k = f.u8();
        let mut e = set.start(key, (0..k).map(|_| f.bytes16()));
        if !read(&mut f, &mut e, &mut set.names) {
            f.fail(text!("a bad experiment"));
        }
        set.list.push(e);
    }
    if f.left() > 0 || f.failed().is_some() {
        return Err(bad("experiments"));
    }
    Ok(set)
}

/// The rest of experiment `e` of the layout, after its variant ids; false
/// when it cannot be safe (see `experiments`).
fn read(f: &mut Bytes<'_>, e: &mut Experiment, names: &mut Names) -> bool {
    for v in &mut e.variants {
        v.weight = f.f64();
    }
    e.coverage = f.f64();
    if f.u8() != 0 {
        let key = f.bytes16();
        e.set_holdout(key, f.f64());
    }
    if f.u8() != 0 {
        let (name, start) = (f.bytes16(), f.f64());
        e.set_namespace(names, name, start, f.f64());
    }
    e.targeted = f.u8() != 0;
    e.fallback = f.u8() as usize;
    let hash = f.u8();
    e.hash = match hash {
        1 => HashVersion::GrowthBook1,
        2 => HashVersion::GrowthBook2,
        _ => HashVersion::Insitu1,
    };
    e.set_seed(names, f.bytes16());
    let mut samples = 1.0;
    if f.u8() != 0 {
        for v in &mut e.variants {
            v.prior = (f.f64(), f.f64());
        }
        let min_probability = f.f64();
        samples = f.f64();
        e.allocation = Allocation::Thompson {
            min_probability,
            samples: samples as u32,
            window_ms: f.f64(),
        };
    }
    hash <= 2
        && (1.0..=8192.0).contains(&samples)
        && samples == crate::prim::math::trunc(samples)
        && e.fallback < e.variants.len()
}

/// A new allocator for the experiments in `bytes` (`len` long); trial
/// seeds come from `seed`.
#[no_mangle]
pub extern "C" fn ab_new(seed: f64, len: i32) -> i32 {
    done((|| {
        if !(seed >= 0.0 && seed <= crate::prim::rng::MAX_SEED as f64) {
            return Err(bad("a seed"));
        }
        let e = experiments(take_bytes(len)?.as_deref())?;
        let a = Box::new(Allocator::new(e, seed as u64));
        Ok(ALLOCATORS.with(|t| t.add(a)))
    })())
}

/// Free an allocator.
#[no_mangle]
pub extern "C" fn ab_drop(h: u32) -> i32 {
    ALLOCATORS.with(|t| t.remove(h))
}

/// Replace the experiments with those in `bytes` (`len` long); device
/// state is kept.
#[no_mangle]
pub extern "C" fn ab_set(h: u32, len: i32) -> i32 {
    call(h, len, [0.0; 4], |a, b, _| {
        a.set_experiments(experiments(b)?);
        Ok(0)
    })
}

/// Assign the unit to a variant of experiment `index`; `targeted`: its
/// targeting conditions hold. Returns the variant, the reason (bits 6 to
/// 8, in `Reason` order) and whether the exposure is new (bit 9); `io` gets
/// the probability, the GrowthBook bucket (NaN: none) and the bandit
/// trial's seed (-1: none).
#[no_mangle]
pub extern "C" fn ab_assign(h: u32, index: u32, targeted: u32, now: f64) -> i32 {
    let x = [index as f64, targeted as f64, now, 0.0];
    call(h, -1, x, |a, _, x| {
        let r = a.assign(x[0] as usize, x[1] != 0.0, x[2])?;
        put_io([
            r.probability,
            r.bucket.unwrap_or(f64::NAN),
            r.seed.map_or(-1.0, |s| s as f64),
        ]);
        Ok(r.variant as i32 | (r.reason as i32) << 6 | i32::from(r.new_exposure) << 9)
    })
}

/// Reward the running trial of bandit experiment `index`.
#[no_mangle]
pub extern "C" fn ab_reward(h: u32, index: u32, reward: f64, now: f64) -> i32 {
    call(h, -1, [index as f64, reward, now, 0.0], |a, _, x| {
        a.reward(x[0] as usize, x[1], x[2]).map(|()| 0)
    })
}

/// Use the unit id in `bytes` (`len` long; -1: none, the device seed).
#[no_mangle]
pub extern "C" fn ab_site_unit(h: u32, len: i32) -> i32 {
    call(h, len, [0.0; 4], |a, b, _| a.site_unit_bytes(b).map(|()| 0))
}

/// Set the device seed in `bytes`: with `force`, replacing any other;
/// else only if there is none yet. 1 if set.
#[no_mangle]
pub extern "C" fn ab_device_unit(h: u32, len: i32, force: u32) -> i32 {
    call(h, len, [force as f64, 0.0, 0.0, 0.0], |a, b, x| {
        a.device_unit_bytes(b.unwrap_or_default(), x[0] != 0.0)
            .map(i32::from)
    })
}

/// The device seed into `bytes`; its length (0: none).
#[no_mangle]
pub extern "C" fn ab_device(h: u32) -> i32 {
    call(h, -1, [0.0; 4], |a, _, _| Ok(put_bytes(a.device_bytes())))
}

/// Forget the device seed and its exposures (consent moved to `none`).
#[no_mangle]
pub extern "C" fn ab_drop_device(h: u32) -> i32 {
    call(h, -1, [0.0; 4], |a, _, _| {
        a.drop_device_unit();
        Ok(0)
    })
}

/// Bandit `index`'s (successes, failures) per variant into `io`; how many variants.
#[no_mangle]
pub extern "C" fn ab_counts(h: u32, index: u32) -> i32 {
    call(h, -1, [index as f64, 0.0, 0.0, 0.0], |a, _, x| {
        let c = a.counts(x[0] as usize)?;
        let n = c.len() as i32 / 2;
        IO.with(|io| *io = c);
        Ok(n)
    })
}

/// The exposure log: `bytes` gets a line per exposure (experiment, a tab,
/// variant), `io` their times. Returns how many.
#[no_mangle]
pub extern "C" fn ab_exposures(h: u32) -> i32 {
    call(h, -1, [0.0; 4], |a, _, _| {
        let mut at = Vec::new();
        BYTES.with(|text| {
            text.clear();
            a.exposure_lines(text, &mut at);
        });
        let n = at.len() as i32;
        IO.with(|io| *io = at);
        Ok(n)
    })
}

/// Settlements made here and not yet stored (what the full engine's next
/// write holds: the first-decision module writes nothing).
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn ab_pending(h: u32) -> i32 {
    call(h, -1, [0.0; 4], |a, _, _| Ok(a.pending() as i32))
}

/// Forget everything: device seed, exposures, bandit counts and trials.
#[no_mangle]
pub extern "C" fn ab_reset(h: u32) -> i32 {
    call(h, -1, [0.0; 4], |a, _, _| {
        a.reset();
        Ok(0)
    })
}

/// Load the stored allocator snapshot in `bytes` (`len` long). Not in the
/// first-decision module, which serves page views with nothing stored.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn ab_restore(h: u32, len: i32, now: f64, max: u32) -> i32 {
    call(h, len, [now, max as f64, 0.0, 0.0], |a, b, x| {
        let stored = b.ok_or_else(|| bad("stored bytes"))?;
        a.restore(stored, x[0], x[1] as usize).map(|()| 0)
    })
}

/// Merge with the stored allocator snapshot in `bytes` (`len` long, -1 when
/// nothing is stored); `learning`: consent lets bandit counts be stored.
/// The snapshot to write replaces `bytes`; its length.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn ab_sync(
    h: u32,
    len: i32,
    now: f64,
    max: u32,
    max_age: f64,
    learning: u32,
) -> i32 {
    let x = [now, max as f64, max_age, learning as f64];
    call(h, len, x, |a, b, x| {
        let bytes = a.sync(b, x[0], x[1] as usize, x[2], x[3] != 0.0)?;
        Ok(put_bytes(&bytes))
    })
}

/// Apply the last sync once its bytes were written: 1, or 0 when there was none.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn ab_commit(h: u32) -> i32 {
    call(h, -1, [0.0; 4], |a, _, _| Ok(i32::from(a.commit())))
}

/// The exports driven through their buffers as src/ts/core.ts and
/// src/ts/experiments.ts drive them, and compared with the JSON path:
/// natively with `cargo test --features full` (one test, as the buffers are
/// globals), and in wasm with `wasm-pack test --node -- --features full`.
#[cfg(test)]
mod tests {
    use super::super::{bytes, bytes_at, bytes_len, io_at};
    use super::*;

    /// Put `b` into `bytes`; its length.
    fn put(b: &[u8]) -> i32 {
        let p = bytes(b.len() as u32);
        // SAFETY: `bytes(n)` made room for n bytes at `p`.
        unsafe { core::ptr::copy_nonoverlapping(b.as_ptr(), p, b.len()) };
        b.len() as i32
    }

    /// What `bytes` holds.
    fn taken() -> Vec<u8> {
        let n = bytes_len() as usize;
        // SAFETY: `bytes` holds n bytes at `bytes_at()`.
        unsafe { core::slice::from_raw_parts(bytes_at(), n) }.to_vec()
    }

    fn io(n: usize) -> Vec<f64> {
        // SAFETY: the last call wrote at least n values there.
        (0..n).map(|i| unsafe { io_at().add(i).read() }).collect()
    }

    fn code(r: i32) -> &'static str {
        assert!(r < 0, "{r} is not an error");
        crate::ERROR_CODES[(-r - 1) as usize]
    }

    /// A layout as `experimentsLayout` writes it: a fixed-weight experiment
    /// `hero` (a, b; holdout, namespace) and a bandit `cta` (x, y).
    fn layout(fallback: u8, hash: u8, samples: f64) -> Vec<u8> {
        let mut w = vec![2];
        let s = |w: &mut Vec<u8>, t: &str| {
            w.extend_from_slice(&(t.len() as u16).to_le_bytes());
            w.extend_from_slice(t.as_bytes());
        };
        let f = |w: &mut Vec<u8>, x: f64| w.extend_from_slice(&x.to_le_bytes());
        s(&mut w, "hero");
        w.push(2);
        s(&mut w, "a");
        s(&mut w, "b");
        f(&mut w, 0.5);
        f(&mut w, 0.5);
        f(&mut w, 1.0);
        w.push(1);
        s(&mut w, "h");
        f(&mut w, 0.1);
        w.push(1);
        s(&mut w, "layer");
        f(&mut w, 0.0);
        f(&mut w, 1.0);
        w.extend_from_slice(&[0, fallback, hash]);
        s(&mut w, "hero");
        w.push(0);
        s(&mut w, "cta");
        w.push(2);
        s(&mut w, "x");
        s(&mut w, "y");
        f(&mut w, 0.5);
        f(&mut w, 0.5);
        f(&mut w, 1.0);
        w.extend_from_slice(&[0, 0, 0, 0, 0]);
        s(&mut w, "cta");
        w.push(1);
        for x in [1.0, 2.0, 0.0, 0.0, 0.05, samples, 1000.0] {
            f(&mut w, x);
        }
        w
    }

    /// The layout `experimentsLayout` writes for JSON configurations that
    /// give every field.
    fn layout_of(cfg: &serde_json::Value) -> Vec<u8> {
        let mut w = Vec::new();
        let s = |w: &mut Vec<u8>, v: &serde_json::Value| {
            let t = v.as_str().unwrap();
            w.extend_from_slice(&(t.len() as u16).to_le_bytes());
            w.extend_from_slice(t.as_bytes());
        };
        let f = |w: &mut Vec<u8>, v: &serde_json::Value| {
            w.extend_from_slice(&v.as_f64().unwrap().to_le_bytes())
        };
        let list = cfg.as_array().unwrap();
        w.push(list.len() as u8);
        for e in list {
            let ids = e["variants"].as_array().unwrap();
            s(&mut w, &e["key"]);
            w.push(ids.len() as u8);
            ids.iter().for_each(|v| s(&mut w, v));
            e["weights"]
                .as_array()
                .unwrap()
                .iter()
                .for_each(|x| f(&mut w, x));
            f(&mut w, &e["coverage"]);
            if let Some(h) = e.get("holdout") {
                w.push(1);
                s(&mut w, &h["key"]);
                f(&mut w, &h["fraction"]);
            } else {
                w.push(0);
            }
            if let Some(n) = e.get("namespace") {
                w.push(1);
                s(&mut w, &n["name"]);
                f(&mut w, &n["range"][0]);
                f(&mut w, &n["range"][1]);
            } else {
                w.push(0);
            }
            let fallback = ids.iter().position(|v| *v == e["fallback"]).unwrap();
            let hash = ["insitu/1", "growthbook/1", "growthbook/2"]
                .iter()
                .position(|h| *h == e["hash"])
                .unwrap();
            w.extend_from_slice(&[0, fallback as u8, hash as u8]);
            s(&mut w, &e["seed"]);
            match e.get("allocation") {
                Some(a) => {
                    w.push(1);
                    for v in ids {
                        let p = &a["prior"][v.as_str().unwrap()];
                        f(&mut w, &p[0]);
                        f(&mut w, &p[1]);
                    }
                    f(&mut w, &a["minProbability"]);
                    f(&mut w, &a["samples"]);
                    f(&mut w, &a["rewardWindowMs"]);
                }
                None => w.push(0),
            }
        }
        w
    }

    /// Assignments through the layout and the exports equal those of the
    /// same configuration read from JSON, natively.
    fn the_layout_assigns_as_the_json_reader_does() {
        let cfg = serde_json::json!([
            {"key": "hero", "variants": ["a", "b", "c"], "weights": [0.2, 0.3, 0.5],
             "coverage": 0.8, "holdout": {"key": "h", "fraction": 0.1},
             "namespace": {"name": "layer", "range": [0.1, 0.9]}, "fallback": "b",
             "hash": "insitu/1", "seed": "s\u{e9}ed"},
            {"key": "gb1", "variants": ["a", "b"], "weights": [0.4, 0.6], "coverage": 0.7,
             "namespace": {"name": "gb", "range": [0.1, 0.9]}, "fallback": "a",
             "hash": "growthbook/1", "seed": "gr\u{fc}n-\u{1f600}"},
            {"key": "gb2", "variants": ["a", "b", "c"], "weights": [0.25, 0.25, 0.5],
             "coverage": 0.9, "holdout": {"key": "h", "fraction": 0.05}, "fallback": "c",
             "hash": "growthbook/2", "seed": "gb2"},
            {"key": "cta", "variants": ["x", "y"], "weights": [0.5, 0.5], "coverage": 1,
             "allocation": {"type": "thompson", "prior": {"x": [1, 2], "y": [0, 0]},
                            "minProbability": 0.05, "samples": 64, "rewardWindowMs": 1},
             "fallback": "x", "hash": "insitu/1", "seed": "cta"},
        ]);
        let h = ab_new(7.0, put(&layout_of(&cfg))) as u32;
        assert!(h > 0);
        // The JSON reader takes no weights with a bandit, and needs none.
        let mut json = cfg.clone();
        json[3].as_object_mut().unwrap().remove("weights");
        let mut native = Allocator::new(Experiments::parse(&json.to_string()).unwrap(), 7);
        for u in 0..300 {
            let unit = if u % 3 == 0 {
                format!("\u{fc}-{u}-\u{1f600}")
            } else {
                format!("u{u}")
            };
            assert_eq!(ab_site_unit(h, put(unit.as_bytes())), 0);
            native.set_site_unit(Some(&unit)).unwrap();
            for i in 0..4 {
                let now = (u * 4 + i) as f64;
                let r = ab_assign(h, i, 1, now);
                let v = io(3);
                let n = native.assign(i as usize, true, now).unwrap();
                assert_eq!(r & 63, n.variant as i32, "{unit} {i}");
                assert_eq!((r >> 6) & 7, n.reason as i32, "{unit} {i}");
                assert_eq!(r >> 9, n.new_exposure as i32, "{unit} {i}");
                assert_eq!(v[0], n.probability, "{unit} {i}");
                assert_eq!(v[1].is_nan(), n.bucket.is_none(), "{unit} {i}");
                assert!(n.bucket.map_or(true, |b| b == v[1]), "{unit} {i}");
                assert_eq!(v[2], n.seed.map_or(-1.0, |s| s as f64), "{unit} {i}");
            }
        }
        assert_eq!(ab_drop(h), 0);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn the_allocator_exports_work_through_their_buffers() {
        // Layouts that would not be safe, and a truncated one, are refused.
        for bad in [
            layout(2, 0, 64.0),
            layout(0, 3, 64.0),
            layout(0, 0, 0.0),
            layout(0, 0, 1.5),
        ] {
            assert_eq!(code(ab_new(7.0, put(&bad))), "INVALID_OPTION");
        }
        let good = layout(1, 0, 64.0);
        assert_eq!(
            code(ab_new(7.0, put(&good[..good.len() - 1]))),
            "INVALID_OPTION"
        );
        assert_eq!(code(ab_new(-1.0, put(&good))), "INVALID_OPTION");
        let h = ab_new(7.0, put(&good)) as u32;
        assert!(h > 0);

        // No unit: the fallback, reason no-unit (1).
        let r = ab_assign(h, 0, 1, 1000.0);
        assert_eq!((r & 63, (r >> 6) & 7, r >> 9), (1, 1, 0));
        let v = io(3);
        assert!(v[0] == 1.0 && v[1].is_nan() && v[2] == -1.0, "{v:?}");
        assert_eq!(ab_device_unit(h, put(b"d:unit"), 0), 1);
        assert_eq!(ab_device_unit(h, put(b"d:other"), 0), 0, "kept");
        assert_eq!(ab_device(h), 6);
        assert_eq!(taken(), b"d:unit");
        // Not targeted (2); then assigned, a new exposure.
        assert_eq!((ab_assign(h, 0, 0, 1000.0) >> 6) & 7, 2);
        let r = ab_assign(h, 0, 1, 1000.0);
        assert!(matches!((r >> 6) & 7, 0 | 3 | 4), "{r}");
        // The bandit: a trial with its seed, rewarded once.
        let r = ab_assign(h, 1, 1, 1000.0);
        assert_eq!(((r >> 6) & 7, r >> 9), (0, 1));
        let [p, bucket, seed] = <[f64; 3]>::try_from(io(3)).unwrap();
        assert!(p > 0.0 && p <= 1.0 && bucket.is_nan() && seed >= 0.0);
        assert_eq!(ab_reward(h, 1, 1.0, 1001.0), 0);
        assert_eq!(code(ab_reward(h, 1, 1.0, 1002.0)), "DUPLICATE_REWARD");
        assert_eq!(code(ab_reward(h, 0, 1.0, 1002.0)), "UNKNOWN_DECISION");
        assert_eq!(code(ab_reward(h, 9, 1.0, 1002.0)), "UNKNOWN_EXPERIMENT");
        assert_eq!(ab_pending(h), 1);
        assert_eq!(ab_counts(h, 1), 2);
        let c = io(4);
        assert_eq!(c.iter().sum::<f64>(), 1.0, "{c:?}");
        assert_eq!(ab_counts(h, 0), 0, "not a bandit");
        let n = ab_exposures(h);
        assert!(n >= 1);
        let lines = taken();
        assert!(
            lines.starts_with(b"hero\ta\n")
                || lines.starts_with(b"hero\tb\n")
                || lines.starts_with(b"cta\t")
        );

        // Stored and read back by another allocator: the same trial.
        assert_eq!(
            code(ab_restore(h, put(b"INSU"), 1003.0, 1 << 16)),
            "SNAPSHOT_CORRUPT"
        );
        assert_eq!(code(ab_restore(h, -1, 1003.0, 1 << 16)), "INVALID_OPTION");
        let n = ab_sync(h, -1, 1003.0, 1 << 16, 1e10, 1);
        assert!(n > 0);
        let stored = taken();
        assert_eq!(ab_commit(h), 1);
        assert_eq!(ab_commit(h), 0);
        assert_eq!(ab_pending(h), 0);
        let g = ab_new(8.0, put(&good)) as u32;
        assert_eq!(ab_restore(g, put(&stored), 1004.0, 1 << 16), 0);
        assert_eq!(
            ab_assign(g, 1, 1, 1004.0) & 63,
            ab_assign(h, 1, 1, 1004.0) & 63
        );
        assert_eq!(io(3)[2], seed, "the stored trial");
        assert_eq!(ab_device(g), 6);

        // A site id, consent none, a new configuration, forgetting.
        assert_eq!(ab_site_unit(g, put(b"user-1")), 0);
        assert_eq!(code(ab_site_unit(g, put(b""))), "INVALID_OPTION");
        assert_eq!(ab_site_unit(g, -1), 0);
        assert_eq!(ab_drop_device(g), 0);
        assert_eq!(ab_device(g), 0);
        assert_eq!(ab_set(g, put(&layout(0, 2, 16.0))), 0);
        assert_eq!(code(ab_set(g, put(&layout(5, 0, 16.0)))), "INVALID_OPTION");
        assert_eq!(ab_reset(g), 0);
        assert_eq!(ab_exposures(g), 0);
        assert_eq!(ab_drop(g), 0);
        assert_eq!(code(ab_drop(g)), "INVALID_OPTION");
        assert_eq!(code(ab_pending(g)), "INVALID_OPTION");
        assert_eq!(ab_drop(h), 0);

        the_layout_assigns_as_the_json_reader_does();
    }
}
