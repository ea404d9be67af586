//! The behaviour store: tracked events and the features derived from them.

use super::{done, put_bytes, put_io, take_bytes, with_io, Fields, Global, Table};
use crate::prelude::*;
use crate::{Behavior, BehaviorConfig, BehaviorValue, Event};

static STORES: Global<Table<Behavior>> = Global::new(Table::new());

fn store<R>(h: u32, f: impl FnOnce(&mut Behavior) -> crate::Result<R>) -> crate::Result<R> {
    STORES.with(|t| f(t.get(h)?))
}

/// A new store: `io` holds maxAgeDays, maxEvents, maxBytes and
/// sessionGapMinutes; `bytes` the custom types (a u8 count, then each a
/// string), `types_len` bytes long.
#[no_mangle]
pub extern "C" fn beh_new(types_len: i32) -> i32 {
    done((|| {
        let (age, events, bytes, gap) =
            with_io(|n| Ok((n.f64()?, n.usize(1 << 20)?, n.usize(1 << 30)?, n.f64()?)))?;
        let b = take_bytes(types_len)?.unwrap_or_default();
        let mut f = Fields::new(&b);
        let types = (0..f.u8()?)
            .map(|_| f.str())
            .collect::<crate::Result<Vec<_>>>()?;
        f.finish()?;
        let cfg = BehaviorConfig {
            max_age_days: age,
            max_events: events,
            max_bytes: bytes,
            session_gap_minutes: gap,
            types,
        }
        .check()?;
        Ok(STORES.with(|t| t.add(Behavior::new(cfg))))
    })())
}

/// Free a store.
#[no_mangle]
pub extern "C" fn beh_drop(h: u32) -> i32 {
    STORES.with(|t| t.remove(h))
}

/// Track the event in `bytes` (`len` long: its type, then optional item and
/// category, a tag count and the tags, then an optional f64 value) at `now`.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn beh_track(h: u32, len: i32, now: f64) -> i32 {
    done((|| {
        let b = take_bytes(len)?.unwrap_or_default();
        let mut f = Fields::new(&b);
        let kind = f.str()?;
        let item = f.opt_str()?;
        let category = f.opt_str()?;
        let tags = (0..f.u8()?)
            .map(|_| f.str())
            .collect::<crate::Result<Vec<_>>>()?;
        let value = match f.u8()? {
            0 => None,
            _ => Some(f.f64()?),
        };
        f.finish()?;
        let ev = Event {
            at: now,
            kind,
            item,
            category,
            tags,
            value,
        };
        store(h, |b| b.track_event(ev, now).map(|()| 0))
    })())
}

/// The derived features at `now` (`tz`: the local time's offset in minutes,
/// as `Date#getTimezoneOffset`): `bytes` gets one line per feature, its
/// name, a tab and its value when categorical; `io` gets each numeric
/// value (0 for a categorical). Returns how many.
#[no_mangle]
pub extern "C" fn beh_features(h: u32, now: f64, tz: f64) -> i32 {
    done(store(h, |b| {
        let feats = b.features(now, tz)?;
        let mut text = String::new();
        let mut values = Vec::with_capacity(feats.len());
        for (name, v) in &feats {
            text.push_str(name);
            text.push('\t');
            match v {
                BehaviorValue::Num(x) => values.push(*x),
                BehaviorValue::Cat(c) => {
                    text.push_str(c);
                    values.push(0.0);
                }
            }
            text.push('\n');
        }
        put_bytes(text.as_bytes());
        put_io(values);
        Ok(feats.len() as i32)
    }))
}

/// Retained events by type: `bytes` gets the types, one per line, `io`
/// their counts. Returns how many types.
#[no_mangle]
pub extern "C" fn beh_counts(h: u32) -> i32 {
    done(store(h, |b| {
        let counts = b.counts();
        let mut text = String::new();
        for (t, _) in &counts {
            text.push_str(t);
            text.push('\n');
        }
        put_bytes(text.as_bytes());
        put_io(counts.iter().map(|(_, n)| *n as f64));
        Ok(counts.len() as i32)
    }))
}

/// Forget every event.
#[no_mangle]
pub extern "C" fn beh_clear(h: u32) -> i32 {
    done(store(h, |b| {
        b.clear();
        Ok(0)
    }))
}

/// Restore the stored events from the decoded snapshot `snap`; how many
/// stored events were dropped (their type is no longer declared).
#[no_mangle]
pub extern "C" fn beh_restore(h: u32, snap: u32, now: f64) -> i32 {
    done(super::store::with_snapshot(snap, |s| {
        store(h, |b| b.restore_snapshot(s, now).map(|d| d as i32))
    }))
}

/// Merge with the stored snapshot in `bytes` (`stored_len` long, -1 when
/// nothing is stored): the snapshot to write replaces `bytes` (its length
/// is returned); `io` gets the events kept and dropped.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn beh_sync(h: u32, stored_len: i32, now: f64, max: u32) -> i32 {
    done((|| {
        let stored = take_bytes(stored_len)?;
        store(h, |b| {
            let r = b.sync(stored.as_deref(), now, max as usize)?;
            put_io([r.events as f64, r.dropped as f64]);
            Ok(put_bytes(&r.bytes))
        })
    })())
}

/// Apply the last sync once its bytes were written: 1, or 0 when there was none.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn beh_commit(h: u32) -> i32 {
    done(store(h, |b| Ok(i32::from(b.commit()))))
}
