//! Reports (`reports` in a slot's or an experiment's options): a slot's
//! turned on and off, an experiment's tally (a handle of its own, fed by
//! the control plane from the assignments it makes), the sync of their
//! statistics, the closed period's measurement, and the ledger for the
//! audit. The full engine only: nothing here is needed for a first
//! decision.

use super::slot::slot;
use super::store::with_snapshot;
use super::{bad, done, put_io, set_bytes, take_bytes, with_io, Global, Table};
use crate::prelude::*;
use crate::report::{
    ledger, mask, Bounds, Outcome, Owner, ReportTask, Spec, Tally, TallySync, GROUPS,
};

/// The experiments' tallies (a slot's lives in its engine).
static TALLIES: Global<Table<Tally>> = Global::new(Table::new());

fn tally<R>(h: u32, f: impl FnOnce(&mut Tally) -> crate::Result<R>) -> crate::Result<R> {
    TALLIES.with(|t| f(t.get(h)?))
}

/// A tally of `k` variants' counts (no learner statistics) in periods of
/// `days` days, for an experiment; its handle.
#[no_mangle]
pub extern "C" fn tally_new(k: u32, days: u32) -> i32 {
    done((|| {
        if !(2..=crate::report::MAX_VARIANTS as u32).contains(&k) {
            return Err(bad("a variant count"));
        }
        let t = Tally::new(k as usize, 0, days)?;
        Ok(TALLIES.with(|table| table.add(t)))
    })())
}

/// Free a tally.
#[no_mangle]
pub extern "C" fn tally_drop(h: u32) -> i32 {
    TALLIES.with(|t| t.remove(h))
}

/// Count, in tally `h`, for variant `arm`: a decision (`kind` 0), an
/// exposure (1), or a reward `value` in [0, 1] (2).
#[no_mangle]
pub extern "C" fn tally_add(h: u32, kind: u32, arm: u32, value: f64) -> i32 {
    done(tally(h, |t| {
        let arm = arm as usize;
        if arm >= t.shape().0 {
            return Err(bad("a variant index"));
        }
        match kind {
            0 => t.decision(arm, false),
            1 => t.exposure(arm),
            2 => {
                crate::engine::check_reward(value)?;
                t.reward(arm, value);
            }
            _ => return Err(bad("a tally event")),
        }
        Ok(0)
    }))
}

/// Turn slot `h`'s reports on, in periods of `days` days, with the
/// learner's statistics when `learning` is 1.
#[no_mangle]
pub extern "C" fn report_on(h: u32, days: u32, learning: u32) -> i32 {
    done(slot(h, |e| {
        e.enable_reports(days, learning != 0).map(|()| 0)
    }))
}

/// Turn slot `h`'s reports off, dropping what was not stored.
#[no_mangle]
pub extern "C" fn report_off(h: u32) -> i32 {
    done(slot(h, |e| {
        e.disable_reports();
        Ok(0)
    }))
}

/// `b` as text (what crossed the boundary must be UTF-8).
fn utf8(b: &[u8]) -> crate::Result<&str> {
    core::str::from_utf8(b).map_err(|_| bad("a string that is not UTF-8"))
}

/// What a report sync was given: the owner's name, the task id, a feature
/// space (a slot's: what the control plane adds to the engine's), the
/// stored snapshot, the specification's scale and bounds, the time, the
/// size cap and whether it may close a period.
struct SyncArgs<'a> {
    name: &'a str,
    task: &'a str,
    space: &'a str,
    stored: Option<&'a [u8]>,
    scale: u32,
    bounds: Bounds,
    now: f64,
    max: usize,
    close: bool,
}

impl SyncArgs<'_> {
    /// Sync tally `t` of `owner` over feature space `space`.
    fn run(&self, t: &mut Tally, owner: Owner, space: &str) -> crate::Result<TallySync> {
        let (k, d) = t.shape();
        let spec = Spec::new(k, d, self.scale, self.bounds, None)?;
        let task = ReportTask {
            slot: self.name,
            owner,
            task: self.task,
            spec: &spec,
            space,
            close: self.close,
        };
        t.sync(self.stored, self.now, self.max, task)
    }
}

/// Read a report sync's arguments: `bytes` holds the three texts (lengths
/// `lens`) then the stored snapshot (`stored_len`, -1: none); `io` the
/// specification (scale, then the bounds: decisions, exposures, rewards,
/// xy, xx). Run `sync` on them and put what it found in `io`: whether the
/// stored section was corrupt, the refusal's kind (0: none, else 1 +
/// `Refusal` as declared), whether the sync held (added to an ended period
/// it may not close), the count of ledger entries written, and each one's
/// outcome and period; the snapshot to write replaces `bytes` (its length
/// is returned). A part past the buffer is an error, never a panic.
fn sync_with(
    lens: [i32; 3],
    stored_len: i32,
    (now, max, close): (f64, u32, u32),
    sync: impl FnOnce(SyncArgs<'_>) -> crate::Result<TallySync>,
) -> i32 {
    done((|| {
        let all = super::BYTES.with(core::mem::take);
        let past = || bad("a byte length past the buffer");
        let mut at = 0usize;
        let mut text = [""; 3];
        for (i, n) in lens.into_iter().enumerate() {
            let end = at.saturating_add(n.max(0) as usize);
            text[i] = utf8(all.get(at..end).ok_or_else(past)?)?;
            at = end;
        }
        if text[2].len() > MAX_SPACE {
            return Err(bad("a feature space"));
        }
        let stored = match stored_len {
            0.. => Some(
                all.get(at..at.saturating_add(stored_len as usize))
                    .ok_or_else(past)?,
            ),
            _ => None,
        };
        let (scale, bounds) = with_io(|io| {
            let scale = io.int(u32::MAX as u64) as u32;
            let b = Bounds {
                decisions: io.int(u32::MAX as u64) as u32,
                exposures: io.int(u32::MAX as u64) as u32,
                rewards: io.f64(),
                xy: io.f64(),
                xx: io.f64(),
            };
            io.ok().map(|()| (scale, b))
        })?;
        let [name, task, space] = text;
        let r = sync(SyncArgs {
            name,
            task,
            space,
            stored,
            scale,
            bounds,
            now,
            max: max as usize,
            close: close != 0,
        })?;
        let refused = match &r.refused {
            Some(crate::Error::ReportRefused { kind, .. }) => 1.0 + *kind as u8 as f64,
            _ => 0.0,
        };
        let mut io = vec![
            f64::from(u8::from(r.corrupt)),
            refused,
            f64::from(u8::from(r.held)),
            r.entries.len() as f64,
        ];
        for e in &r.entries {
            io.push(f64::from(e.outcome as u8));
            io.push(f64::from(e.period));
        }
        put_io(io);
        Ok(set_bytes(r.bytes))
    })())
}

/// Sync slot `h`'s report statistics (see `sync_with`): the texts are the
/// slot's name, the task id and what the control plane adds to the
/// engine's feature space (its variants' ids, which the core does not
/// know); `close` is 1 when this sync may close a period (see
/// `ReportTask::close`).
#[no_mangle]
pub extern "C" fn report_sync(
    h: u32,
    name_len: i32,
    task_len: i32,
    ids_len: i32,
    stored_len: i32,
    now: f64,
    max: u32,
    close: u32,
) -> i32 {
    sync_with(
        [name_len, task_len, ids_len],
        stored_len,
        (now, max, close),
        |a| {
            slot(h, |e| {
                let mut space = e.feature_space();
                space.push_str(a.space);
                let t = e.reports().ok_or_else(|| bad("reports are off"))?;
                a.run(t, Owner::Slot, &space)
            })
        },
    )
}

/// Sync experiment tally `h` as `report_sync` does a slot's: the texts are
/// the experiment's key, the task id and its feature space (its variants,
/// as the control plane names them).
#[no_mangle]
pub extern "C" fn tally_sync(
    h: u32,
    key_len: i32,
    task_len: i32,
    space_len: i32,
    stored_len: i32,
    now: f64,
    max: u32,
    close: u32,
) -> i32 {
    sync_with(
        [key_len, task_len, space_len],
        stored_len,
        (now, max, close),
        |a| tally(h, |t| a.run(t, Owner::Experiment, a.space)),
    )
}

/// Apply experiment tally `h`'s last sync once its bytes were written: 1,
/// or 0 when there was none.
#[no_mangle]
pub extern "C" fn tally_commit(h: u32) -> i32 {
    done(tally(h, |t| Ok(i32::from(t.commit()))))
}

/// Put the closed period `c` into `io`: its period, clipped groups and
/// measurement; its length (0: none).
fn put_closed(c: Option<crate::report::Closed>) -> i32 {
    let Some(c) = c else {
        return 0;
    };
    let mut io = vec![f64::from(c.period), f64::from(mask(&c.clipped))];
    io.extend(c.measurement.iter().map(|x| *x as f64));
    put_io(io);
    c.measurement.len() as i32
}

/// The report of the period experiment tally `h`'s last committed sync
/// closed, once, as `report_take` gives a slot's.
#[no_mangle]
pub extern "C" fn tally_take(h: u32) -> i32 {
    done(tally(h, |t| Ok(put_closed(t.take()))))
}

/// Apply slot `h`'s last report sync once its bytes were written: 1, or 0
/// when there was none.
#[no_mangle]
pub extern "C" fn report_commit(h: u32) -> i32 {
    done(slot(h, |e| {
        Ok(e.reports().map_or(0, |t| i32::from(t.commit())))
    }))
}

/// The report of the period slot `h`'s last committed sync closed, once:
/// `io` gets its period, clipped groups (bit per group) and measurement;
/// returns the measurement's length (0: none).
#[no_mangle]
pub extern "C" fn report_take(h: u32) -> i32 {
    done(slot(h, |e| {
        Ok(put_closed(e.reports().and_then(|t| t.take())))
    }))
}

/// Longest feature space (or suffix of one) the control plane passes.
const MAX_SPACE: usize = 64;

/// Numbers per ledger entry in `io`.
const ENTRY: usize = 12;

/// The ledger of slot `name` (the first `name_len` bytes of `bytes`; an
/// experiment's key when `experiment` is 1) in the decoded snapshot `snap`: `io` gets [`ENTRY`] numbers per entry
/// (period, outcome, clipped groups, length, bits, scale, the five bounds,
/// the task's length in bytes), then the last report's measurement; the
/// tasks, one after the other, replace `bytes`. Returns the entry count.
#[no_mangle]
pub extern "C" fn report_ledger(snap: u32, name_len: i32, experiment: u32) -> i32 {
    done((|| {
        let b = take_bytes(name_len)?.ok_or_else(|| bad("a slot name"))?;
        let name = utf8(&b)?;
        let owner = if experiment == 0 {
            Owner::Slot
        } else {
            Owner::Experiment
        };
        let Some((entries, last)) = with_snapshot(snap, |s| ledger(s, name, owner))? else {
            return Ok(0);
        };
        let mut io = Vec::with_capacity(entries.len() * ENTRY + last.len());
        let mut tasks = Vec::new();
        for e in &entries {
            let b = e.bounds;
            io.extend([
                f64::from(e.period),
                f64::from(e.outcome as u8),
                f64::from(e.clipped),
                f64::from(e.length),
                f64::from(e.bits),
                f64::from(e.scale),
                f64::from(b.decisions),
                f64::from(b.exposures),
                b.rewards,
                b.xy,
                b.xx,
                e.task.len() as f64,
            ]);
            tasks.extend_from_slice(e.task.as_bytes());
        }
        io.extend(last.iter().map(|x| *x as f64));
        put_io(io);
        set_bytes(tasks);
        Ok(entries.len() as i32)
    })())
}

// The outcome and group numbers the TypeScript side names (src/ts/reports.ts).
const _: () = {
    assert!(Outcome::Reported as u8 == 1 && Outcome::SpaceChanged as u8 == 4);
    assert!(GROUPS.len() == 6);
};
