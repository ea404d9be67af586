//! A slot's reports (`reports` in a slot's options): turning them on and
//! off, the sync of their statistics, the closed period's measurement, and
//! the ledger for the audit. The full engine only: nothing here is needed
//! for a first decision.

use super::slot::slot;
use super::store::with_snapshot;
use super::{bad, done, put_io, set_bytes, take_bytes, with_io};
use crate::prelude::*;
use crate::report::{ledger, Bounds, Group, Outcome, ReportTask, Spec, GROUPS};

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

/// The report's bit of each clipped group.
fn mask(groups: &[Group]) -> f64 {
    f64::from(groups.iter().fold(0u8, |m, g| m | 1 << *g as u8))
}

/// Sync slot `h`'s report statistics: `bytes` holds the slot's name
/// (`name_len` bytes), the task id (`task_len`) and the stored snapshot
/// (`stored_len`, or -1 when nothing is stored); `io` the specification:
/// scale, then the bounds (decisions, exposures, rewards, xy, xx). The
/// snapshot to write replaces `bytes` (its length is returned); `close` is
/// 1 when this sync may close a period (see `ReportTask::close`); `io`
/// gets whether the stored section was corrupt, the refusal's kind (0:
/// none, else 1 + `Refusal` as declared), whether the sync held (left an
/// ended period for a sync that may close it), the count of ledger entries
/// written, and each one's outcome and period.
#[no_mangle]
pub extern "C" fn report_sync(
    h: u32,
    name_len: i32,
    task_len: i32,
    stored_len: i32,
    now: f64,
    max: u32,
    close: u32,
) -> i32 {
    done((|| {
        let all = super::BYTES.with(core::mem::take);
        let (n, t) = (name_len.max(0) as usize, task_len.max(0) as usize);
        let past = || bad("a byte length past the buffer");
        let name = utf8(all.get(..n).ok_or_else(past)?)?;
        let task = utf8(all.get(n..n.saturating_add(t)).ok_or_else(past)?)?;
        let rest = n.saturating_add(t)
            ..n.saturating_add(t)
                .saturating_add(stored_len.max(0) as usize);
        let stored = match stored_len {
            0.. => Some(all.get(rest).ok_or_else(past)?),
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
        let r = slot(h, |e| {
            let space = e.feature_space();
            let t = e.reports().ok_or_else(|| bad("reports are off"))?;
            let (k, d) = t.shape();
            let spec = Spec::new(k, d, scale, bounds, None)?;
            let task = ReportTask {
                slot: name,
                task,
                spec: &spec,
                space: &space,
                close: close != 0,
            };
            t.sync(stored, now, max as usize, task)
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
        let Some(c) = e.reports().and_then(|t| t.take()) else {
            return Ok(0);
        };
        let mut io = vec![f64::from(c.period), mask(&c.clipped)];
        io.extend(c.measurement.iter().map(|x| *x as f64));
        put_io(io);
        Ok(c.measurement.len() as i32)
    }))
}

/// Numbers per ledger entry in `io`.
const ENTRY: usize = 12;

/// The ledger of slot `name` (the first `name_len` bytes of `bytes`) in
/// the decoded snapshot `snap`: `io` gets [`ENTRY`] numbers per entry
/// (period, outcome, clipped groups, length, bits, scale, the five bounds,
/// the task's length in bytes), then the last report's measurement; the
/// tasks, one after the other, replace `bytes`. Returns the entry count.
#[no_mangle]
pub extern "C" fn report_ledger(snap: u32, name_len: i32) -> i32 {
    done((|| {
        let b = take_bytes(name_len)?.ok_or_else(|| bad("a slot name"))?;
        let name = utf8(&b)?;
        let Some((entries, last)) = with_snapshot(snap, |s| ledger(s, name))? else {
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
