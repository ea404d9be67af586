//! The behaviour store: tracked events and the features derived from them.

use super::{done, BYTES, IO};
#[cfg(feature = "full")]
use {
    super::{bad, take_bytes, with_io, Global, Table},
    crate::allocation::Bytes,
    crate::prelude::*,
    crate::{Behavior, BehaviorConfig},
};

#[cfg(feature = "full")]
static STORES: Global<Table<Box<Behavior>>> = Global::new(Table::new());

#[cfg(feature = "full")]
fn store<R>(h: u32, f: impl FnOnce(&mut Behavior) -> crate::Result<R>) -> crate::Result<R> {
    STORES.with(|t| f(t.get(h)?))
}

/// A new store: `io` holds maxAgeDays, maxEvents, maxBytes and
/// sessionGapMinutes; `bytes` the custom types (a u8 count, then each a
/// string), `types_len` bytes long. The TypeScript side checked them with
/// messages; any values are safe here (retention only compares them), so
/// they are not checked again.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn beh_new(types_len: i32) -> i32 {
    done((|| {
        let (age, events, bytes, gap) = with_io(|n| {
            let v = (n.f64(), n.usize(1 << 20), n.usize(1 << 30), n.f64());
            n.ok().map(|()| v)
        })?;
        let b = take_bytes(types_len)?.unwrap_or_default();
        let mut f = Bytes::new(&b);
        let mut types = Vec::new();
        for _ in 0..f.u8() {
            let t = crate::prim::utf8::string(f.bytes16().to_vec());
            types.push(t.unwrap_or_default());
            if types.last().is_some_and(String::is_empty) {
                f.fail(text!("a type that is empty or not UTF-8"));
            }
        }
        if f.left() > 0 || f.failed().is_some() {
            return Err(bad("behaviour types"));
        }
        let cfg = BehaviorConfig {
            max_age_days: age,
            max_events: events,
            max_bytes: bytes,
            session_gap_minutes: gap,
            types,
        };
        Ok(STORES.with(|t| t.add(Box::new(Behavior::new(cfg)))))
    })())
}

/// A new store, in the first-decision module: it holds no events (it
/// neither restores nor tracks), so there is nothing to keep: it derives
/// the clock's features (`beh_features`), and every handle is the same.
#[cfg(not(feature = "full"))]
#[no_mangle]
pub extern "C" fn beh_new(_types_len: i32) -> i32 {
    1
}

/// Free a store.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn beh_drop(h: u32) -> i32 {
    STORES.with(|t| t.remove(h))
}

/// Free a store (the first-decision module's hold nothing).
#[cfg(not(feature = "full"))]
#[no_mangle]
pub extern "C" fn beh_drop(_h: u32) -> i32 {
    0
}

/// Track the event in `bytes` (`len` long: its type, then optional item and
/// category, a tag count and the tags, then an optional f64 value) at `now`.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn beh_track(h: u32, len: i32, now: f64) -> i32 {
    done((|| {
        let b = take_bytes(len)?.unwrap_or_default();
        // Its names are checked with the event (`EventRef::check`).
        let mut f = Bytes::new(&b);
        let kind = f.bytes16();
        let item = if f.u8() != 0 { Some(f.bytes16()) } else { None };
        let category = if f.u8() != 0 { Some(f.bytes16()) } else { None };
        // The tags are laid out as in the stored record.
        let ntags: usize = f.u8().into();
        let start = b.len() - f.left();
        for _ in 0..ntags {
            f.bytes16();
        }
        let tags = b.get(start..b.len() - f.left()).unwrap_or_default();
        let value = if f.u8() != 0 { Some(f.f64()) } else { None };
        if f.left() > 0 || f.failed().is_some() {
            return Err(bad("an event"));
        }
        let ev = crate::behavior::EventRef {
            at: now,
            kind,
            item,
            category,
            tags,
            ntags,
            value,
        };
        store(h, |b| b.track_parts(&ev, now).map(|()| 0))
    })())
}

/// The derived features at `now` (`tz`: the local time's offset in minutes,
/// as `Date#getTimezoneOffset`): `bytes` gets one line per feature, its
/// name, a tab and its value when categorical; `io` gets each numeric
/// value (0 for a categorical). Returns how many.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn beh_features(h: u32, now: f64, tz: f64) -> i32 {
    done(store(h, |b| {
        let n = BYTES.with(|t| IO.with(|v| b.features_into(now, tz, t, v)))?;
        Ok(n as i32)
    }))
}

/// The derived features at `now`, in the first-decision module: the
/// clock's (its stores hold no events).
#[cfg(not(feature = "full"))]
#[no_mangle]
pub extern "C" fn beh_features(_h: u32, now: f64, tz: f64) -> i32 {
    let n = BYTES.with(|t| IO.with(|v| crate::behavior::clock_features(now, tz, t, v)));
    done(n.map(|_| 2))
}

/// Retained events by type: `bytes` gets the types, one per line, `io`
/// their counts. Returns how many types.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn beh_counts(h: u32) -> i32 {
    done(store(h, |b| {
        let n = BYTES.with(|t| IO.with(|v| b.counts_into(t, v)));
        Ok(n as i32)
    }))
}

/// Forget every event.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn beh_clear(h: u32) -> i32 {
    done(store(h, |b| {
        b.clear();
        Ok(0)
    }))
}

/// Restore the stored events from the decoded snapshot `snap`; how many
/// stored events were dropped (their type is no longer declared). The
/// first-decision module restores nothing: it serves page views with
/// nothing stored.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn beh_restore(h: u32, snap: u32, now: f64) -> i32 {
    done(super::store::with_snapshot(snap, |s| {
        store(h, |b| b.restore_from(s, now, true)).map(|d| d as i32)
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
            super::put_io([r.events as f64, r.dropped as f64]);
            Ok(super::put_bytes(&r.bytes))
        })
    })())
}

/// Apply the last sync once its bytes were written: 1, or 0 when there was none.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn beh_commit(h: u32) -> i32 {
    done(store(h, |b| Ok(i32::from(b.commit()))))
}
