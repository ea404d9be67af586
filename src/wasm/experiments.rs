//! The A/B allocator: the experiments and the state they keep on the device.

use super::{bad, done, put_bytes, put_io, take_bytes, utf8, Fields, Global, Table};
use crate::prelude::*;
use crate::{Allocation, Allocator, Experiment, Experiments, HashVersion, Reason};

static ALLOCATORS: Global<Table<Allocator>> = Global::new(Table::new());

fn allocator<R>(h: u32, f: impl FnOnce(&mut Allocator) -> crate::Result<R>) -> crate::Result<R> {
    ALLOCATORS.with(|t| f(t.get(h)?))
}

/// Read the experiments in `bytes` (`len` long; layout in src/ts/core.ts
/// `experimentsLayout`).
fn experiments(len: i32) -> crate::Result<Experiments> {
    let b = take_bytes(len)?.unwrap_or_default();
    let mut f = Fields::new(&b);
    let mut list = Vec::new();
    for _ in 0..f.u8()? {
        let key = f.str()?;
        let k = f.u8()? as usize;
        let variants = (0..k).map(|_| f.str()).collect::<crate::Result<Vec<_>>>()?;
        let weights = (0..k).map(|_| f.f64()).collect::<crate::Result<Vec<_>>>()?;
        let coverage = f.f64()?;
        let holdout = match f.u8()? {
            0 => None,
            _ => Some((f.str()?, f.f64()?)),
        };
        let namespace = match f.u8()? {
            0 => None,
            _ => Some((f.str()?, f.f64()?, f.f64()?)),
        };
        let targeted = f.u8()? != 0;
        let fallback = f.u8()? as usize;
        let hash = match f.u8()? {
            0 => HashVersion::Insitu1,
            1 => HashVersion::GrowthBook1,
            2 => HashVersion::GrowthBook2,
            _ => return Err(bad("a hash version")),
        };
        let seed = f.str()?;
        let allocation = match f.u8()? {
            0 => Allocation::Weights,
            _ => {
                let prior = (0..k)
                    .map(|_| Ok((f.f64()?, f.f64()?)))
                    .collect::<crate::Result<Vec<_>>>()?;
                let min_probability = f.f64()?;
                let samples = f.f64()?;
                if !(1.0..=8192.0).contains(&samples) || samples != libm::trunc(samples) {
                    return Err(bad("a sample count"));
                }
                Allocation::Thompson {
                    prior,
                    min_probability,
                    samples: samples as u32,
                    window_ms: f.f64()?,
                }
            }
        };
        list.push(Experiment::new(
            key, variants, weights, coverage, holdout, namespace, targeted, fallback, hash, seed,
            allocation,
        )?);
    }
    f.finish()?;
    Experiments::new(list)
}

/// A new allocator for the experiments in `bytes`; trial seeds come from `seed`.
#[no_mangle]
pub extern "C" fn ab_new(seed: f64, len: i32) -> i32 {
    done((|| {
        let seed = if seed >= 0.0 && seed <= crate::prim::rng::MAX_SEED as f64 {
            seed as u64
        } else {
            return Err(bad("a seed"));
        };
        let e = experiments(len)?;
        Ok(ALLOCATORS.with(|t| t.add(Allocator::new(e, seed))))
    })())
}

/// Free an allocator.
#[no_mangle]
pub extern "C" fn ab_drop(h: u32) -> i32 {
    ALLOCATORS.with(|t| t.remove(h))
}

/// Replace the experiments (device state is kept).
#[no_mangle]
pub extern "C" fn ab_set(h: u32, len: i32) -> i32 {
    done((|| {
        let e = experiments(len)?;
        allocator(h, |a| {
            a.set_experiments(e);
            Ok(0)
        })
    })())
}

/// Assign the unit to a variant of experiment `index`; `targeted`: its
/// targeting conditions hold. Returns the variant, the reason (bits 6 to
/// 8, in `Reason` order) and whether the exposure is new (bit 9); `io` gets
/// the probability, the GrowthBook bucket (NaN: none) and the bandit
/// trial's seed (-1: none).
#[no_mangle]
pub extern "C" fn ab_assign(h: u32, index: u32, targeted: u32, now: f64) -> i32 {
    done(allocator(h, |a| {
        let r = a.assign(index as usize, targeted != 0, now)?;
        let reason = match r.reason {
            Reason::Assigned => 0,
            Reason::NoUnit => 1,
            Reason::NotTargeted => 2,
            Reason::Namespace => 3,
            Reason::Holdout => 4,
            Reason::Coverage => 5,
        };
        put_io([
            r.probability,
            r.bucket.unwrap_or(f64::NAN),
            r.seed.map_or(-1.0, |s| s as f64),
        ]);
        Ok(r.variant as i32 | reason << 6 | i32::from(r.new_exposure) << 9)
    }))
}

/// Reward the running trial of bandit experiment `index`.
#[no_mangle]
pub extern "C" fn ab_reward(h: u32, index: u32, reward: f64, now: f64) -> i32 {
    done(allocator(h, |a| {
        a.reward(index as usize, reward, now).map(|()| 0)
    }))
}

/// Use the unit id in `bytes` (`len` long; -1: none, the device seed).
#[no_mangle]
pub extern "C" fn ab_site_unit(h: u32, len: i32) -> i32 {
    done((|| {
        let unit = take_bytes(len)?.map(utf8).transpose()?;
        allocator(h, |a| a.set_site_unit(unit.as_deref()).map(|()| 0))
    })())
}

/// Set the device seed in `bytes`: with `force`, replacing any other;
/// else only if there is none yet. 1 if set.
#[no_mangle]
pub extern "C" fn ab_device_unit(h: u32, len: i32, force: u32) -> i32 {
    done((|| {
        let unit = utf8(take_bytes(len)?.unwrap_or_default())?;
        allocator(h, |a| {
            if force != 0 {
                a.use_device_unit(&unit).map(|()| 1)
            } else {
                a.set_device_unit(&unit).map(i32::from)
            }
        })
    })())
}

/// The device seed into `bytes`; its length (0: none).
#[no_mangle]
pub extern "C" fn ab_device(h: u32) -> i32 {
    done(allocator(h, |a| {
        let u = a.device_unit().unwrap_or("").as_bytes().to_vec();
        Ok(put_bytes(&u))
    }))
}

/// Forget the device seed and its exposures (consent moved to `none`).
#[no_mangle]
pub extern "C" fn ab_drop_device(h: u32) -> i32 {
    done(allocator(h, |a| {
        a.drop_device_unit();
        Ok(0)
    }))
}

/// Bandit `index`'s (successes, failures) per variant into `io`; how many variants.
#[no_mangle]
pub extern "C" fn ab_counts(h: u32, index: u32) -> i32 {
    done(allocator(h, |a| {
        let c = a.bandit_counts(index as usize)?;
        put_io(c.iter().flat_map(|(s, f)| [*s, *f]));
        Ok(c.len() as i32)
    }))
}

/// The exposure log: `bytes` gets a line per exposure (experiment, a tab,
/// variant), `io` their times. Returns how many.
#[no_mangle]
pub extern "C" fn ab_exposures(h: u32) -> i32 {
    done(allocator(h, |a| {
        let mut text = String::new();
        let mut at = Vec::new();
        for e in a.exposures() {
            text.push_str(&e.experiment);
            text.push('\t');
            text.push_str(&e.variant);
            text.push('\n');
            at.push(e.at);
        }
        put_bytes(text.as_bytes());
        put_io(at);
        Ok(a.exposures().len() as i32)
    }))
}

/// Settlements made here and not yet stored.
#[no_mangle]
pub extern "C" fn ab_pending(h: u32) -> i32 {
    done(allocator(h, |a| Ok(a.pending() as i32)))
}

/// Forget everything: device seed, exposures, bandit counts and trials.
#[no_mangle]
pub extern "C" fn ab_reset(h: u32) -> i32 {
    done(allocator(h, |a| {
        a.reset();
        Ok(0)
    }))
}

/// Load the stored allocator snapshot in `bytes` (`len` long).
#[no_mangle]
pub extern "C" fn ab_restore(h: u32, len: i32, now: f64, max: u32) -> i32 {
    done((|| {
        let stored = take_bytes(len)?.ok_or_else(|| bad("stored bytes"))?;
        allocator(h, |a| a.restore(&stored, now, max as usize).map(|()| 0))
    })())
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
    done((|| {
        let stored = take_bytes(len)?;
        allocator(h, |a| {
            let b = a.sync(stored.as_deref(), now, max as usize, max_age, learning != 0)?;
            Ok(put_bytes(&b))
        })
    })())
}

/// Apply the last sync once its bytes were written: 1, or 0 when there was none.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn ab_commit(h: u32) -> i32 {
    done(allocator(h, |a| Ok(i32::from(a.commit()))))
}
