//! A slot: one engine (`new Insitu(options)` / `site.slot(name, options)`).

use super::{bad, with_io, Nums};
#[cfg(feature = "full")]
use super::{done, put_bytes, put_io, Global, Table};
use crate::features::FeatureConfig;
use crate::model::{CompactModel, Variant, CATALOGUE_BITS, MAX_CATALOGUE};
use crate::prelude::*;
use crate::prim::math::trunc;
#[cfg(feature = "full")]
use crate::Engine;
use crate::{EngineConfig, Hashed};

#[cfg(feature = "full")]
static SLOTS: Global<Table<Engine>> = Global::new(Table::new());

#[cfg(feature = "full")]
pub(super) fn slot<R>(h: u32, f: impl FnOnce(&mut Engine) -> crate::Result<R>) -> crate::Result<R> {
    SLOTS.with(|t| f(t.get(h)?))
}

/// The model version string of a content hash's halves: `m1-` and 16 hex digits.
#[cfg(feature = "full")]
fn version(hi: u64, lo: u64) -> String {
    let mut s = String::from("m1-");
    crate::prim::digits::push_hex(&mut s, hi << 32 | lo, 16);
    s
}

/// The next number, which must be finite.
fn finite(n: &mut Nums<'_>) -> f64 {
    let x = n.f64();
    n.bad |= !x.is_finite();
    x
}

/// The next number, which must be positive and finite.
fn positive(n: &mut Nums<'_>) -> f64 {
    let x = finite(n);
    n.bad |= x <= 0.0;
    x
}

/// Read a slot's configuration (layout 2, see src/ts/core.ts `slotLayout`):
/// layout 1 and the fold's flags after the interactions: 1, the folded
/// vectors are normalized; 2, each feature takes two slots; 4, a catalogue,
/// whose variant features' bits follow (and whose variants then give no
/// means and one variance, the shared learner's prior).
/// Every number is checked as it is read (the reader's errors stick), so
/// the model and engine configuration are built from checked parts.
pub(super) fn config(n: &mut Nums<'_>) -> crate::Result<EngineConfig> {
    use crate::bandit::{Policy, PolicyKind};
    let layout = n.int(255);
    let hash_version = n.int(255) as u32;
    // At most 2^18 slots (FeatureConfig checks the range; this bounds what
    // is allocated before it does).
    let bits = n.int(18) as u8;
    let ns = n.usize(crate::features::MAX_NAMESPACES);
    let mut seeds = Vec::with_capacity(ns);
    for _ in 0..ns {
        seeds.push(n.int(u32::MAX as u64) as u32);
    }
    let pairs = n.usize(ns * ns);
    let mut interactions = Vec::with_capacity(pairs);
    for _ in 0..pairs {
        interactions.push((n.usize(ns), n.usize(ns)));
    }
    let flags = n.int(7);
    let normalize = flags & 1 == 1;
    let two_slots = flags & 2 == 2;
    let catalogue = (flags & 4 == 4).then(|| n.int(u64::from(CATALOGUE_BITS.1)) as u8);
    let d = 1usize << bits;
    let noise = positive(n);
    let kind = n.int(3);
    let param = finite(n);
    let samples = n.int(crate::bandit::MAX_SAMPLES as u64) as u32;
    let min_probability = finite(n);
    let fallback = n.usize(MAX_CATALOGUE - 1);
    let seed = n.int(crate::prim::rng::MAX_SEED);
    let epoch = n.int((1 << crate::engine::EPOCH_BITS) - 1);
    let ttl = positive(n);
    let max_pending = n.usize(crate::engine::MAX_PENDING_LIMIT as usize);
    let (hi, lo) = (n.int(u32::MAX as u64), n.int(u32::MAX as u64));
    let k = n.usize(MAX_CATALOGUE);
    n.bad |= layout != 2
        || (catalogue.is_none() && k > crate::model::MAX_VARIANTS)
        || param < 0.0
        || min_probability < 0.0
        || max_pending == 0
        || k < 2
        || fallback >= k
        || min_probability * k as f64 > 1.0;
    let mut variants = Vec::with_capacity(k);
    let mut prior = 0.0;
    for _ in 0..k {
        let count = n.usize(crate::features::MAX_FEATURES);
        let hashed = n.features(count);
        for h in &hashed {
            n.bad |= h.ns() >= ns || !h.value().is_finite();
        }
        if catalogue.is_some() {
            // No means, one variance: the same for every variant.
            n.bad |= n.int(2) != 0 || n.int(1) != 0;
            let v = positive(n);
            n.bad |= prior != 0.0 && v != prior;
            prior = v;
            variants.push(Variant::new(hashed, Vec::new(), Vec::new()));
            continue;
        }
        let mut mean = vec![0.0; d];
        match n.int(2) {
            0 => {}
            1 => {
                for m in &mut mean {
                    *m = finite(n);
                }
            }
            _ => {
                for _ in 0..n.usize(d) {
                    let i = n.usize(d - 1);
                    mean[i] = finite(n);
                }
            }
        }
        let variance = if n.int(1) == 0 {
            vec![positive(n); d]
        } else {
            let mut v = vec![0.0; d];
            for x in &mut v {
                *x = positive(n);
            }
            v
        };
        variants.push(Variant::new(hashed, mean, variance));
    }
    n.ok()?;
    let features = FeatureConfig::new(hash_version, bits, seeds, interactions)?
        .normalized(normalize)
        .with_two_slots(two_slots);
    // The first-decision module shows no model version (the TypeScript side has it).
    #[cfg(feature = "full")]
    let version = version(hi, lo);
    #[cfg(not(feature = "full"))]
    let version = {
        let _ = (hi, lo);
        String::new()
    };
    let mut model = CompactModel::new(features, noise, variants, version);
    if let Some(bits) = catalogue {
        model = model.into_catalogue(bits, prior)?;
    }
    let kind = match kind {
        0 => PolicyKind::Thompson {
            scale: param,
            samples: samples.max(1),
        },
        1 => PolicyKind::LinUcb { alpha: param },
        2 => PolicyKind::EpsilonGreedy { epsilon: param },
        _ => PolicyKind::Greedy,
    };
    let policy = Policy {
        kind,
        min_probability,
    };
    Ok(EngineConfig::new(
        model,
        policy,
        fallback,
        seed,
        epoch,
        ttl,
        max_pending,
    ))
}

/// A new slot from the configuration in `io`; its handle.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn slot_new() -> i32 {
    done(with_io(config).map(|cfg| SLOTS.with(|t| t.add(Engine::new(cfg)))))
}

/// Free a slot.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn slot_drop(h: u32) -> i32 {
    SLOTS.with(|t| t.remove(h))
}

/// The features of a call in `io`: `n` shared triples, then, with
/// `actions`, one count per variant and each variant's triples.
/// (One copy of the reader for every export that reads features.)
pub(super) fn call_features(n: u32, actions: u32, k: usize) -> crate::Result<Features> {
    with_io(|io| read_features(io, n, actions, k))
}

/// A call's features: the shared ones, and each variant's own when the call passes actions.
type Features = (Vec<Hashed>, Option<Vec<Vec<Hashed>>>);

fn read_features(io: &mut Nums<'_>, n: u32, actions: u32, k: usize) -> crate::Result<Features> {
    let shared = io.features(n as usize);
    let mut own = None;
    if actions != 0 {
        let mut counts = Vec::with_capacity(k);
        for _ in 0..k {
            counts.push(io.usize(crate::features::MAX_FEATURES));
        }
        let mut each = Vec::with_capacity(k);
        for c in counts {
            each.push(io.features(c));
        }
        own = Some(each);
    }
    io.ok()?;
    Ok((shared, own))
}

/// Choose a variant for the features in `io` (see [`call_features`]).
/// `seed` < 0 draws one; `serve` ≥ 0 serves that variant (apprentice mode's
/// baseline, see `Engine::rank_serving`). Writes the probability, the seed,
/// the decision counter, the pmf and the mean scores into `io`; returns the
/// variant.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn rank(
    h: u32,
    n: u32,
    actions: u32,
    seed: f64,
    now: f64,
    defer: u32,
    serve: i32,
    size: u32,
) -> i32 {
    done(slot(h, |e| {
        let k = e.variant_count();
        let (shared, own) = call_features(n, actions, k)?;
        let seed = seed_of(seed)?;
        let serve = usize::try_from(serve).ok();
        let c = e.rank_slate(
            &shared,
            own.as_deref(),
            seed,
            defer != 0,
            now,
            serve,
            size as usize,
        )?;
        let s = e.scorer();
        Ok(put_choice(
            &c,
            s.last_pmf(),
            s.last_scores(),
            s.last_slate(),
        ))
    }))
}

/// A decision's probability, seed and counter, its pmf, its scores and its
/// slate (each position's variant and probability) into `io`; the variant.
pub(super) fn put_choice(
    c: &crate::Choice,
    pmf: &[f64],
    scores: &[f64],
    slate: &[(usize, f64)],
) -> i32 {
    super::put_slices(&[
        &[c.probability, c.seed as f64, c.counter as f64],
        pmf,
        scores,
    ]);
    super::IO.with(|v| {
        for &(i, p) in slate {
            v.push(i as f64);
            v.push(p);
        }
    });
    c.index as i32
}

/// A seed from JS: < 0 for none (draw one), else an integer below 2^53.
pub(super) fn seed_of(seed: f64) -> crate::Result<Option<u64>> {
    if seed < 0.0 {
        Ok(None)
    } else if seed == trunc(seed) && seed <= crate::prim::rng::MAX_SEED as f64 {
        Ok(Some(seed as u64))
    } else {
        Err(bad("a seed that is not an integer below 2^53"))
    }
}

#[cfg(feature = "full")]
fn id(epoch: f64, counter: f64) -> crate::Result<(u64, u64)> {
    let whole = |x: f64, max: f64| x >= 0.0 && x <= max && x == trunc(x);
    if whole(epoch, 281_474_976_710_655.0) && whole(counter, 9_007_199_254_740_991.0) {
        Ok((epoch as u64, counter as u64))
    } else {
        Err(bad("a decision id out of range"))
    }
}

/// Settle decision `epoch-counter` with `reward`.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn reward(h: u32, epoch: f64, counter: f64, reward: f64, now: f64) -> i32 {
    done(slot(h, |e| {
        let (ep, c) = id(epoch, counter)?;
        e.reward_id(ep, c, reward, now).map(|()| 0)
    }))
}

/// Mark the deferred decision `epoch-counter` as shown.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn activate(h: u32, epoch: f64, counter: f64, now: f64) -> i32 {
    done(slot(h, |e| {
        let (ep, c) = id(epoch, counter)?;
        e.activate_id(ep, c, now).map(|()| 0)
    }))
}

/// Learn `arm`'s `reward` for the features in `io`; `probability` < 0 for
/// none, else what the log served `arm` with (it then counts in `evaluate`).
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn learn(
    h: u32,
    arm: u32,
    n: u32,
    actions: u32,
    reward: f64,
    probability: f64,
) -> i32 {
    done(slot(h, |e| {
        let k = e.variant_count();
        let (shared, own) = call_features(n, actions, k)?;
        let p = (probability >= 0.0).then_some(probability);
        e.learn_hashed(arm as usize, &shared, own.as_deref(), reward, p)
            .map(|()| 0)
    }))
}

/// Updates per variant and the decisions waiting, into `io`; the number of variants.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn stats(h: u32) -> i32 {
    done(slot(h, |e| {
        let pending = e.pending_count() as f64;
        let s = e.scorer();
        let k = s.variant_count();
        super::IO.with(|v| {
            v.clear();
            for i in 0..k {
                v.push(s.arm_mean(i).map_or(0, |a| a.1) as f64);
            }
            v.push(pending);
        });
        Ok(k as i32)
    }))
}

/// Back to the prior with a new decision-id epoch (`forget()`).
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn slot_reset(h: u32, epoch: f64) -> i32 {
    done(slot(h, |e| {
        let (ep, _) = id(epoch, 0.0)?;
        e.reset(ep);
        Ok(0)
    }))
}

#[cfg(feature = "full")]
/// The slot's name, the first `name` bytes of `bytes`.
/// Run `f` on the slot name in the byte buffer's first `name_len` bytes
/// and the `stored_len` bytes after it (`None` when negative), borrowed
/// where they are: `f` must not use the byte buffer.
fn with_name<R>(
    name_len: i32,
    stored_len: i32,
    f: impl FnOnce(&str, Option<&[u8]>) -> crate::Result<R>,
) -> crate::Result<R> {
    let n = name_len.max(0) as usize;
    super::BYTES.with(|b| {
        let all = (b.get(..n.saturating_add(stored_len.max(0) as usize)))
            .ok_or_else(|| bad("a byte length past the buffer"))?;
        let (name, stored) = all.split_at(n);
        let name = core::str::from_utf8(name).map_err(|_| bad("a string that is not UTF-8"))?;
        f(name, (stored_len >= 0).then_some(stored))
    })
}

#[cfg(feature = "full")]
fn report(r: &crate::SyncReport) -> [f64; 8] {
    [
        f64::from(u8::from(r.model_changed)),
        f64::from(u8::from(r.merged)),
        r.replayed as f64,
        r.duplicates as f64,
        r.rejected as f64,
        r.adopted as f64,
        f64::from(u8::from(r.overwrote)),
        r.trimmed as f64,
    ]
}

/// Restore slot `name` (the first `name_len` bytes of `bytes`) from the
/// decoded snapshot `snap`; the report goes into `io`.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn slot_restore(h: u32, snap: u32, name_len: i32, now: f64) -> i32 {
    done(with_name(name_len, -1, |name, _| {
        super::store::with_snapshot(snap, |s| {
            slot(h, |e| {
                let r = e.restore_snapshot(s, name, now)?;
                put_io(report(&r));
                Ok(0)
            })
        })
    }))
}

/// Take over a decision the first-decision module made (see
/// `Engine::take_over`): `arm` chosen for the features in `io` (as for
/// `rank`) at `now`; `seed` < 0: its seed came from the stream, else the
/// seed given; `apprentice`: it served the baseline; `p`: the probability
/// the first-decision module chose `arm` with, its pmf and scores following
/// the features in `io` (what the evaluation logs).
#[cfg(feature = "full")]
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn slot_take_over(
    h: u32,
    n: u32,
    actions: u32,
    arm: u32,
    seed: f64,
    defer: u32,
    now: f64,
    apprentice: u32,
    p: f64,
) -> i32 {
    done(slot(h, |e| {
        let k = e.variant_count();
        let ((shared, own), seen) = super::with_io(|io| {
            let f = read_features(io, n, actions, k)?;
            let seen: Vec<f64> = (0..2 * k).map(|_| io.f64()).collect();
            io.ok()?;
            Ok((f, seen))
        })?;
        let seed = seed_of(seed)?;
        let (pmf, scores) = seen.split_at(k);
        let c = e.take_over(
            &shared,
            own.as_deref(),
            arm as usize,
            seed,
            defer != 0,
            now,
            apprentice != 0,
            Some((pmf, scores, p)),
        )?;
        Ok(c.counter as i32)
    }))
}

/// The offline evaluation at two-sided `level` into `io`: decisions counted
/// and greedy matches, then per candidate (served, policy, greedy, uniform,
/// each variant) IPS, SNIPS, DR and lift as (value, low, high), and the
/// effective sample size: 13 numbers each. Returns the number of
/// candidates. Errors: `NO_DATA`, `INVALID_OPTION` (the level).
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn slot_evaluate(h: u32, level: f64) -> i32 {
    done(slot(h, |e| {
        let s = e.evaluation();
        let m = crate::eval::FIXED + s.k();
        let mut out = vec![s.n, s.matches];
        for c in 0..m {
            let x = s.estimate(c, level)?;
            for i in [x.ips, x.snips, x.dr, x.lift] {
                out.extend_from_slice(&[i.value, i.low, i.high]);
            }
            out.push(x.ess);
        }
        put_io(out);
        Ok(m as i32)
    }))
}

/// Merge slot `name` with the stored snapshot: `bytes` holds the name
/// (`name_len` bytes) then the stored bytes (`stored_len`, or -1 when
/// nothing is stored). The snapshot to write replaces `bytes` (the
/// length is returned) and the report goes into `io`.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn slot_sync(h: u32, name_len: i32, stored_len: i32, now: f64, max: u32) -> i32 {
    let r = with_name(name_len, stored_len, |name, stored| {
        slot(h, |e| e.sync(stored, name, now, max as usize))
    });
    done(r.map(|r| {
        put_io(report(&r));
        put_bytes(&r.bytes)
    }))
}

/// Apply the last sync once its bytes were written: 1, or 0 when there was none.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn slot_commit(h: u32) -> i32 {
    done(slot(h, |e| Ok(i32::from(e.commit()))))
}

/// Every variant's posterior mean score, then its standard deviation, for
/// the features in `io` (as for `rank`), into `io`, without choosing.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn scores(h: u32, n: u32, actions: u32) -> i32 {
    done(slot(h, |e| {
        let k = e.variant_count();
        let (shared, own) = call_features(n, actions, k)?;
        let (means, sds) = e.scorer().score(&shared, own.as_deref())?;
        super::put_slices(&[means, sds]);
        Ok(k as i32)
    }))
}

/// Variant `arm`'s posterior mean weight of every slot into `io`, then the
/// rewards it learned from; the number of slots.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn arm_mean(h: u32, arm: u32) -> i32 {
    done(slot(h, |e| {
        let (mean, n) = e
            .scorer()
            .arm_mean(arm as usize)
            .ok_or_else(|| bad("no such variant"))?;
        super::put_slices(&[mean, &[n as f64]]);
        Ok(mean.len() as i32)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot layout (src/ts/core.ts `slotLayout`): 2 variants, bits 4,
    /// one namespace, raw features, LinUCB with a 0.01 floor; variant a
    /// with one feature of its own, sparse means and one variance (numbers
    /// 20 to 29), variant b with dense means and variances (30 to 64).
    fn layout() -> Vec<f64> {
        let mut v = vec![
            2.0,
            1.0,
            4.0,
            1.0,
            12345.0,
            0.0,
            0.0, // layout, hash, bits, 1 namespace (seed), 0 pairs, not normalized
            0.25,
            1.0,
            0.5,
            0.0,
            0.01, // noise, linucb, alpha, samples, floor
            1.0,
            7.0,
            3.0,
            86_400_000.0,
            256.0, // fallback, seed, epoch, ttl, maxPending
            0.0,
            1.0,
            2.0, // version halves, K
            1.0,
            0.0,
            99.0,
            0.5,
            2.0,
            1.0,
            3.0,
            -0.5,
            0.0,
            2.0, // a
            0.0,
            1.0, // b: no features, dense means
        ];
        v.extend((0..16).map(|i| f64::from(i) / 10.0));
        v.push(1.0);
        v.extend((0..16).map(|i| 1.0 / f64::from(i + 1)));
        v
    }

    fn read(v: &[f64]) -> crate::Result<EngineConfig> {
        config(&mut Nums {
            v,
            at: 0,
            bad: false,
        })
    }

    #[test]
    fn a_layout_reads_into_its_parts() {
        let c = read(&layout()).unwrap();
        let m = &c.model;
        assert_eq!(
            (m.features.dim(), m.noise, m.version()),
            (16, 0.25, "m1-0000000000000001")
        );
        assert_eq!(m.variants[0].hashed, [Hashed::new(0, 99, 0.5)]);
        let mut mean = [0.0; 16];
        mean[3] = -0.5;
        assert_eq!(m.variants[0].mean, mean);
        assert_eq!(m.variants[0].variance, [2.0; 16]);
        for i in 0..16 {
            assert_eq!(m.variants[1].mean[i], i as f64 / 10.0);
            assert_eq!(m.variants[1].variance[i], 1.0 / (i + 1) as f64);
        }
        assert_eq!((c.fallback, c.seed, c.epoch, c.max_pending), (1, 7, 3, 256));
        assert_eq!(c.reward_ttl_ms, 86_400_000.0);
        assert_eq!(c.policy.min_probability, 0.01);
        assert!(
            matches!(c.policy.kind, crate::bandit::PolicyKind::LinUcb { alpha } if alpha == 0.5)
        );
    }

    /// Every number out of range is refused with INVALID_OPTION, as the
    /// checks of the model and configuration constructors refused them.
    #[test]
    fn every_bad_number_is_refused() {
        let cases: &[(usize, f64)] = &[
            (0, 1.0),      // layout (1 has no normalize flag)
            (6, 8.0),      // the fold's flags, past 1, 2 and 4
            (1, 2.0),      // hash version
            (2, 19.0),     // bits
            (7, 0.0),      // noise
            (7, f64::NAN), // noise
            (9, -1.0),     // alpha
            (9, f64::INFINITY),
            (11, 0.6), // floor × 2 variants > 1
            (11, -0.01),
            (12, 2.0),                     // fallback past the variants
            (13, 9_007_199_254_740_992.0), // seed
            (14, 281_474_976_710_656.0),   // epoch
            (15, 0.0),                     // ttl
            (16, 0.0),                     // maxPending
            (16, 10_001.0),
            (19, 1.0),           // one variant
            (21, 1.0),           // a namespace past the allowlist
            (23, f64::NAN),      // a feature value
            (26, 16.0),          // a sparse mean's slot
            (27, f64::INFINITY), // a mean
            (29, 0.0),           // a variance
            (33, f64::NAN),      // a dense mean
            (61, -1.0),          // a dense variance
        ];
        for &(i, x) in cases {
            let mut v = layout();
            v[i] = x;
            let e = read(&v).unwrap_err();
            assert_eq!(e.code(), "INVALID_OPTION", "number {i} = {x}");
        }
        let v = layout();
        for n in 0..v.len() {
            assert!(read(&v[..n]).is_err(), "cut at {n}");
        }
    }
}
