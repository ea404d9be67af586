//! A slot: one engine (`new Insitu(options)` / `site.slot(name, options)`).

use super::{bad, done, put_bytes, put_io, take_bytes, utf8, with_io, Global, Nums, Table};
use crate::features::FeatureConfig;
use crate::model::CompactModel;
use crate::prelude::*;
use crate::prim::math::trunc;
use crate::{Engine, EngineConfig, Hashed};

#[cfg(feature = "full")]
static SLOTS: Global<Table<Engine>> = Global::new(Table::new());

#[cfg(feature = "full")]
fn slot<R>(h: u32, f: impl FnOnce(&mut Engine) -> crate::Result<R>) -> crate::Result<R> {
    SLOTS.with(|t| f(t.get(h)?))
}

/// The model version string of a content hash's halves: `m1-` and 16 hex digits.
#[cfg(feature = "full")]
fn version(hi: u64, lo: u64) -> String {
    let mut s = String::from("m1-");
    crate::prim::digits::push_hex(&mut s, hi << 32 | lo, 16);
    s
}

/// Read a slot's configuration (layout 1, see src/ts/core.ts `slotLayout`).
pub(super) fn config(n: &mut Nums<'_>) -> crate::Result<EngineConfig> {
    use crate::bandit::{Policy, PolicyKind};
    if n.int(255) != 1 {
        return Err(bad("slot layout"));
    }
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
    let d = 1usize << bits;
    let noise = n.f64();
    let kind = n.int(3);
    let param = n.f64();
    let samples = n.int(crate::bandit::MAX_SAMPLES as u64) as u32;
    let min_probability = n.f64();
    let fallback = n.usize(usize::MAX >> 1);
    let seed = n.int(crate::prim::rng::MAX_SEED);
    let epoch = n.int((1 << crate::engine::EPOCH_BITS) - 1);
    let ttl = n.f64();
    let max_pending = n.int(u32::MAX as u64);
    let (hi, lo) = (n.int(u32::MAX as u64), n.int(u32::MAX as u64));
    let k = n.usize(crate::model::MAX_VARIANTS);
    let mut variants = Vec::with_capacity(k);
    for _ in 0..k {
        let count = n.usize(crate::features::MAX_FEATURES);
        let hashed = n.features(count);
        let mut mean = vec![0.0; d];
        match n.int(2) {
            0 => {}
            1 => {
                let v = n.slice(d);
                if v.len() == d {
                    mean.copy_from_slice(v);
                }
            }
            _ => {
                for _ in 0..n.usize(d) {
                    let i = n.usize(d - 1);
                    let x = n.f64();
                    if let Some(m) = mean.get_mut(i) {
                        *m = x;
                    }
                }
            }
        }
        let variance = match n.int(1) {
            0 => vec![n.f64(); d],
            _ => {
                let v = n.slice(d);
                if v.len() == d {
                    v.to_vec()
                } else {
                    vec![0.0; d]
                }
            }
        };
        variants.push(crate::model::Variant {
            id: String::new(),
            #[cfg(feature = "json")]
            features: None,
            hashed,
            mean,
            variance,
        });
    }
    n.ok()?;
    #[cfg(feature = "full")]
    let model = {
        let features = FeatureConfig::new(hash_version, bits, seeds, interactions)?;
        CompactModel::new(features, noise, variants, version(hi, lo))?
    };
    let kind = match kind {
        0 => PolicyKind::Thompson {
            scale: param,
            samples: samples.max(1),
        },
        1 => PolicyKind::LinUcb { alpha: param },
        2 => PolicyKind::EpsilonGreedy { epsilon: param },
        _ => PolicyKind::Greedy,
    };
    if !(param.is_finite() && param >= 0.0 && min_probability >= 0.0)
        || min_probability * k as f64 > 1.0
        || (cfg!(not(feature = "full")) && k < 2)
    {
        return Err(bad("a policy"));
    }
    let policy = Policy {
        kind,
        min_probability,
    };
    // The first-decision module's scorer at the prior reads the features,
    // the variants' priors, the policy, the seed and the epoch; the
    // TypeScript side checked them all, and nothing it could be handed
    // makes the scorer index out of bounds (every vector is `2^bits` long,
    // every slot masked below it, 2 to 64 variants). The full engine, which
    // learns, keeps and stores, checks its configuration again.
    #[cfg(not(feature = "full"))]
    {
        let _ = (hi, lo);
        let features = FeatureConfig {
            hash_version,
            bits,
            #[cfg(feature = "json")]
            allow: Vec::new(),
            interactions,
            ns_seeds: seeds,
        };
        let model = CompactModel {
            features,
            noise,
            variants,
            version: String::new(),
        };
        Ok(EngineConfig {
            model,
            policy,
            fallback,
            seed,
            reward_ttl_ms: ttl,
            max_pending: max_pending as usize,
            epoch,
        })
    }
    #[cfg(feature = "full")]
    EngineConfig::new(model, policy, fallback, seed, epoch, ttl, max_pending)
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
pub(super) fn call_features(
    io: &mut Nums<'_>,
    n: u32,
    actions: u32,
    k: usize,
) -> crate::Result<(Vec<Hashed>, Option<Vec<Vec<Hashed>>>)> {
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
/// `seed` < 0 draws one. Writes the probability, the seed, the decision
/// counter, the pmf and the mean scores into `io`; returns the variant.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn rank(h: u32, n: u32, actions: u32, seed: f64, now: f64, defer: u32) -> i32 {
    done(slot(h, |e| {
        let k = e.variant_count();
        let (shared, own) = with_io(|io| call_features(io, n, actions, k))?;
        let seed = seed_of(seed)?;
        let c = e.rank_hashed(&shared, own.as_deref(), seed, defer != 0, now)?;
        Ok(put_choice(&c, e.last_pmf(), e.last_scores()))
    }))
}

/// A decision's probability, seed and counter, its pmf and its scores into
/// `io`; the variant.
pub(super) fn put_choice(c: &crate::Choice, pmf: &[f64], scores: &[f64]) -> i32 {
    super::put_slices(&[&[c.probability, c.seed as f64, c.counter as f64], pmf, scores]);
    c.index as i32
}

/// Updates per variant, then the decisions waiting, into `io`; the number
/// of variants.
#[cfg(feature = "full")]
fn put_stats(updates: &[u64], pending: usize) -> i32 {
    super::IO.with(|v| {
        v.clear();
        for u in updates {
            v.push(*u as f64);
        }
        v.push(pending as f64);
    });
    updates.len() as i32
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

/// Learn `arm`'s `reward` for the features in `io`.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn learn(h: u32, arm: u32, n: u32, actions: u32, reward: f64) -> i32 {
    done(slot(h, |e| {
        let k = e.variant_count();
        let (shared, own) = with_io(|io| call_features(io, n, actions, k))?;
        e.learn_hashed(arm as usize, &shared, own.as_deref(), reward)
            .map(|()| 0)
    }))
}

/// Updates per variant and the decisions waiting, into `io`; the number of variants.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn stats(h: u32) -> i32 {
    done(slot(h, |e| {
        Ok(put_stats(&e.updates(), e.pending_count()))
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

/// The slot's name, the first `name` bytes of `bytes`.
fn name(name: i32) -> crate::Result<String> {
    utf8(take_bytes(name)?.ok_or_else(|| bad("a slot name"))?)
}

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
    done((|| {
        let name = name(name_len)?;
        super::store::with_snapshot(snap, |s| {
            slot(h, |e| {
                let r = e.restore_snapshot(s, &name, now)?;
                put_io(report(&r));
                Ok(0)
            })
        })
    })())
}

/// Take over a decision the first-decision module made (see
/// `Engine::take_over`): `arm` chosen for the features in `io` (as for
/// `rank`) at `now`; `drew`: its seed came from the stream.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn slot_take_over(
    h: u32,
    n: u32,
    actions: u32,
    arm: u32,
    drew: u32,
    defer: u32,
    now: f64,
) -> i32 {
    done(slot(h, |e| {
        let k = e.variant_count();
        let (shared, own) = with_io(|io| call_features(io, n, actions, k))?;
        let c = e.take_over(
            &shared,
            own.as_deref(),
            arm as usize,
            drew != 0,
            defer != 0,
            now,
        )?;
        Ok(c.counter as i32)
    }))
}

/// Merge slot `name` with the stored snapshot: `bytes` holds the name
/// (`name_len` bytes) then the stored bytes (`stored_len`, or -1 when
/// nothing is stored). The snapshot to write replaces `bytes` (the
/// length is returned) and the report goes into `io`.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn slot_sync(h: u32, name_len: i32, stored_len: i32, now: f64, max: u32) -> i32 {
    done((|| {
        let all = take_bytes(name_len.max(0) + stored_len.max(0))?.unwrap_or_default();
        let (name, stored) = all.split_at(name_len.max(0) as usize);
        let name = utf8(name.to_vec())?;
        let stored = (stored_len >= 0).then_some(stored);
        slot(h, |e| {
            let r = e.sync(stored, &name, now, max as usize)?;
            put_io(report(&r));
            Ok(put_bytes(&r.bytes))
        })
    })())
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
        let (shared, own) = with_io(|io| call_features(io, n, actions, k))?;
        let (means, sds) = e.scorer().score(&shared, own.as_deref())?;
        super::put_slices(&[&means, &sds]);
        Ok(k as i32)
    }))
}

/// Variant `arm`'s posterior mean weight of every slot into `io`, then the
/// rewards it learned from; the number of slots.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn arm_mean(h: u32, arm: u32) -> i32 {
    done(slot(h, |e| {
        let (mean, n) = e.scorer().arm_mean(arm as usize).ok_or_else(|| bad("no such variant"))?;
        super::put_slices(&[mean, &[n as f64]]);
        Ok(mean.len() as i32)
    }))
}
