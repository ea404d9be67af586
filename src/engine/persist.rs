//! Persisting an engine's learning, and merging it with what other tabs of
//! the same site stored meanwhile.
//!
//! Each decision slot keeps one section, `learner:<slot>`, in the shared
//! [`Snapshot`], holding the learning of each model version the slot ran
//! recently: a tab still running the previous release and a tab running the
//! new one each merge into their own model's entry and carry the other's
//! over unchanged, so neither erases the other's learning. Bayesian updates
//! commute, so two tabs that learned from different rewards since they last
//! met are merged exactly by replaying one tab's own observations (its
//! *journal*) onto the other's stored state; nobody's update is lost to a
//! last-writer-wins overwrite. A decision whose
//! reward was already counted elsewhere is not counted twice: the tab that
//! settles a stored decision leaves a *tombstone* (its id and expiry) in the
//! section, and other tabs treat a decision they hold as settled only when
//! they find its tombstone. A decision that left the stored pending list
//! for another reason (another tab's `maxPending` cap, or its clock saying
//! it expired) stays live here and is written back. Tombstones are kept
//! while they can matter (until a day past their expiry) and capped at
//! `maxPending`; the section records the latest expiry the cap evicted (the
//! *horizon*), and a decision expiring no later than that which is missing
//! without a tombstone is taken as settled, so a reward is never counted
//! twice (layout 1, which had no tombstones, reads with a horizon of one
//! reward window from now). Activation only goes one way, so a decision
//! stored as activated is activated in every tab that holds it.
//!
//! The caller (the JS boundary, holding a Web Lock) reads the stored bytes,
//! calls [`Engine::sync`], writes the bytes it returns, and on success calls
//! [`Engine::commit`]. Until `commit` the engine is unchanged, so a failed
//! write (quota, storage blocked) loses nothing: the next `sync` merges again.
//!
//! Section layout 1 (integers little-endian, f64 IEEE):
//! - u8 layout (1); model version (u16 length, UTF-8); hash version u32;
//!   dimension u32; variants u32; writer epoch u64; writer sequence u64;
//! - per variant: updates u64; touched slot count u32; the touched slots
//!   (u32, increasing); their means; their covariance (packed upper triangle
//!   over the touched slots, or the variances for a diagonal learner). Slots
//!   no update ever touched are still at the prior and are not written.
//! - pending count u32; per decision: epoch u64, counter u64, variant u32,
//!   expiry f64, activated u8, feature count u32, slots (u32, increasing),
//!   values f64.
//!
//! Layout 2 adds, after the pending decisions: tombstone count u32; per
//! settled decision: epoch u64, counter u64, expiry f64; then the horizon f64.
//!
//! Layout 3 holds one entry per model version: u8 layout (3); entry count
//! u8; per entry: last written f64 (ms), body length u32, body (one model's
//! learning in layout 1 or 2, which starts with its model version). Versions
//! are distinct. A writer puts its own entry first and keeps the other
//! versions written in the last [`MODEL_KEPT_MS`], the most recent
//! [`MAX_MODELS`]` - 1` of them, dropping the oldest first while the
//! snapshot would be over its size cap. Builds that read only layouts 1 and
//! 2 see a newer format and leave the data alone. A layout 1 or 2 section
//! reads as a single entry written now.
//!
//! Section layout 4 is layout 3 whose entries may also be in entry layout
//! 3, which builds that read section layouts up to 3 would refuse as
//! corrupt: to them layout 4 is a newer format, which they leave alone.
//! Entry layout 3 is layout 2 with a byte before each full covariance: 0,
//! the packed upper triangle in f64 as before, or 1, its Cholesky factor
//! over the touched slots in f32 (lower triangle, row by row: row `k` holds
//! `L[k][0..=k]`), which a reader multiplies out (`L L'`) in f64. The factor
//! takes half the bytes, and whatever its rounding `L L'` stays positive
//! semi-definite; a writer stores f64 when the rounded factor would not read
//! back (see `factor32`). Variances of a layout 3 entry may read up to 1e-6
//! above the prior's (the rounding); layouts 1 and 2 keep 1e-9.

use crate::prelude::*;

#[cfg(not(feature = "std"))]
use crate::prim::math::Float;

use super::{learn, Engine, EngineConfig, Pending};
use crate::error::{Error, Result};
use crate::eval::{Logged, Sums};
use crate::features::SparseVec;
use crate::model::posterior::Covariance;
use crate::model::{Posterior, MAX_CATALOGUE};
use crate::prim::journal::{Journal, Marked, FOLD_OLDEST, STOP};
use crate::prim::sort::{latest, sorted};
use crate::store::sync::{open, Persisted};
use crate::store::{corrupt, put_f64, put_str, put_u32, put_u64, Reader, Snapshot};

/// A full covariance in entry layout 3: packed f64, or its f32 Cholesky factor.
const COV_F64: u8 = 0;
const COV_F32: u8 = 1;
/// How far above its prior a variance stored in entry layout 3 may read: a
/// covariance stored as its f32 factor reads back within about 2^-23
/// (1.2e-7) of itself, and a learner that read one writes it on.
const ROUNDED: f64 = 1e-6;
/// The learner section layout this build writes (it reads 1 to 4).
const LAYOUT: u8 = 4;
/// The first layout of one entry per model version (entry layouts 1 and 2).
const LAYOUT_V3: u8 = 3;
/// One model's learning: the layout of each entry this build writes.
const ENTRY: u8 = 3;
/// The layout without tombstones.
const LAYOUT_V1: u8 = 1;
/// Model versions one slot's section keeps: this tab's and the most
/// recently written others.
const MAX_MODELS: usize = 3;
/// Entries a reader accepts (a later build may keep more versions).
const MAX_ENTRIES: usize = 16;
/// Another model version's learning is kept this long after it was last
/// written (a tab of the previous release left open for days keeps it).
const MODEL_KEPT_MS: f64 = 7.0 * crate::prim::clock::DAY_MS;
/// Journal length beyond which an engine stops journaling (storage has been
/// failing, or was never used, for that long); its next successful sync then
/// writes its own state over the stored one, and reports that it did. About
/// 0.5 MB at 32 features per observation.
pub(crate) const MAX_JOURNAL: usize = 1024;

/// One observation learned since the last successful sync.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    arm: usize,
    x: SparseVec,
    reward: f64,
    /// The [`id_key`] of the decision it settled (`learn` observations have
    /// none).
    decision: Option<u128>,
    /// What its evaluation counts, when it logged that.
    log: Option<Logged>,
}

/// What `sync` computed, applied by `commit`.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    /// The merged learners and evaluation sums, when other tabs had written.
    merged: Option<(Vec<Posterior>, Sums)>,
    /// Decisions settled elsewhere ([`key`]s, sorted): marked settled here
    /// on commit.
    gone: Vec<u128>,
    /// Decisions of other page views to adopt.
    adopt: Vec<Pending>,
    /// Held decisions another tab activated ([`key`]s, sorted).
    activated: Vec<u128>,
    /// Written as pending ([`key`]s, sorted).
    written: Vec<u128>,
    /// The writer id of the section written; `None` for a restore, which
    /// wrote nothing (its own updates stay journaled for the next sync).
    writer: Option<(u64, u64)>,
}

/// Persistence bookkeeping of one engine.
#[derive(Debug, Clone)]
pub(crate) struct SyncState {
    /// Updates since the last commit (since creation before the first);
    /// lost once it overflowed.
    journal: Journal<Vec<Observation>, STOP>,
    /// The writer id (epoch, sequence) of the last section this engine wrote.
    written: Option<(u64, u64)>,
    staged: Option<Staged>,
    /// Decisions this engine settled that other tabs may hold ([`id_key`],
    /// expiry), to write as tombstones; at most [`MAX_JOURNAL`], the oldest
    /// leaving into [`dropped`](Self::dropped). A sync marks those it
    /// wrote, and its commit drops them.
    settled: Journal<Vec<(u128, f64)>, FOLD_OLDEST>,
    /// The latest expiry among own tombstones dropped because `settled` was
    /// full: written as the horizon.
    dropped: f64,
}

impl Default for SyncState {
    fn default() -> SyncState {
        SyncState {
            journal: Journal::new(MAX_JOURNAL),
            written: None,
            staged: None,
            settled: Journal::new(MAX_JOURNAL),
            dropped: 0.0,
        }
    }
}

impl SyncState {
    /// Record an update, for replay onto another tab's state.
    pub(super) fn journal(
        &mut self,
        arm: usize,
        x: &SparseVec,
        reward: f64,
        decision: Option<u128>,
        log: Option<Logged>,
    ) {
        // (A lost journal takes nothing: no copy of `x` for it.)
        if self.journal.overflowed() {
            self.journal.miss();
        } else {
            self.journal.push(Observation {
                arm,
                x: x.clone(),
                reward,
                decision,
                log,
            });
        }
    }
}

impl SyncState {
    /// Record that this engine settled decision `key`, expiring at
    /// `expires_at`, which another tab may hold: `shared` (read from or
    /// written to the store), or possibly written by a sync not yet
    /// committed.
    pub(super) fn settle(&mut self, key: u128, expires_at: f64, shared: bool) {
        if !(shared || self.staged.is_some()) {
            return;
        }
        if let Some((_, e)) = self.settled.push((key, expires_at)) {
            self.dropped = self.dropped.max(e);
        }
    }
}

/// What a [`Engine::sync`] found and did, for the audit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncReport {
    /// The snapshot to write.
    pub bytes: Vec<u8>,
    /// The stored section held learning of other model versions only (a new
    /// prior was shipped): this engine starts its own entry, and the others
    /// are kept for tabs still running them.
    pub model_changed: bool,
    /// Another tab or page view had written since this engine last did; its
    /// state is the base that this engine's own observations were replayed on.
    pub merged: bool,
    /// Own observations replayed onto the stored state.
    pub replayed: usize,
    /// Own rewards not replayed because another tab had already counted
    /// the same decision.
    pub duplicates: usize,
    /// The journal had overflowed (storage failing for a long time): this
    /// engine's state was written over what other tabs stored meanwhile.
    pub overwrote: bool,
    /// Own observations the stored state refused numerically (counted,
    /// not applied).
    pub rejected: usize,
    /// Pending decisions restored from other page views.
    pub adopted: usize,
    /// Pending decisions left out of the snapshot to keep it under its
    /// size cap (the earliest-expiring: other page views cannot settle them).
    pub trimmed: usize,
}

impl Persisted for Engine {
    type Args<'a> = &'a str;
    type Staged = Staged;
    type Report = SyncReport;
    type Journal = Journal<Vec<Observation>, STOP>;

    fn parts(&mut self) -> (&mut Option<Staged>, &mut Journal<Vec<Observation>, STOP>) {
        (&mut self.sync.staged, &mut self.sync.journal)
    }

    fn stage(
        &mut self,
        stored: Option<&[u8]>,
        now_ms: f64,
        max_bytes: usize,
        slot: &str,
    ) -> Result<SyncReport> {
        let name = section_name(slot)?;
        let mut snap = open(stored, max_bytes)?;
        let Taken {
            mut staged,
            mut report,
            others,
            tombstones,
            horizon,
            eval_frozen,
        } = self.take(&snap, slot, now_ms, Vec::new())?;
        let eval_name = eval_section_name(slot)?;

        // What to write: every live decision of this engine and of those it
        // knows about, newest first up to `maxPending`, activated if any tab
        // activated it.
        let mut out: Vec<&Pending> = Vec::new();
        for q in [&self.pending, &self.foreign, &staged.adopt] {
            live_into(&mut out, q, now_ms, &staged.gone);
        }
        let mut out = latest(out, self.s.cfg.max_pending, |p| p.expires_at);
        let writer = (self.s.cfg.epoch, self.sync.written.map_or(0, |w| w.1) + 1);
        // Merged state is checked before it is written; this engine's own is
        // what its updates made.
        let (merged, sums) = match &staged.merged {
            Some((arms, sums)) => (Some(&arms[..]), sums),
            None => (None, &self.eval),
        };
        let mut kept = kept_models(&snap, &name, others, now_ms);
        // Over the size cap once the other versions are dropped, the pending
        // decisions expiring first are left out, halving until it fits: they
        // stay settleable here, only other page views cannot see them (as
        // when `maxPending` evicts them). Learning is never given up for them.
        // The evaluation gives way first, before anything learned: its logged
        // decisions (before another version's learning or any pending
        // decision is left out), then, with no pending decision left, its sums.
        let stored_eval = snap.section(&eval_name).map(<[u8]>::to_vec);
        let (mut with_logs, mut with_sums) = (!eval_frozen, !eval_frozen);
        report.bytes = loop {
            let logs = with_logs && out.iter().any(|p| p.log.is_some());
            if with_sums && (sums.n > 0.0 || logs) {
                snap.set_section(
                    &eval_name,
                    self.write_eval(sums, if logs { &out } else { &[] }),
                );
            } else if eval_frozen || (with_sums && stored_eval.is_some()) {
                // A newer build's section, or another model's with nothing
                // of this one's to write (a fresh learner writes none): as
                // it was stored.
                if let Some(b) = &stored_eval {
                    snap.set_section(&eval_name, b.clone());
                }
            } else {
                snap.remove_section(&eval_name);
            }
            let body = self.write_section(
                merged.unwrap_or(&self.s.arms),
                merged.is_some(),
                (&out, &staged.activated),
                (&tombstones, horizon),
                writer,
            )?;
            let mut trial = if logs { kept.clone() } else { Vec::new() };
            let models = if logs { &mut trial } else { &mut kept };
            let r = write_models(&mut snap, &name, (&body, now_ms), models, max_bytes);
            let dropped = logs && trial.len() < kept.len();
            match r {
                Err(Error::SnapshotTooLarge { .. }) if logs => with_logs = false,
                Ok(_) if dropped => with_logs = false,
                Err(Error::SnapshotTooLarge { .. }) if !out.is_empty() => {
                    let half = out.len() / 2;
                    report.trimmed += out.len() - half;
                    out = latest(out, half, |p| p.expires_at);
                }
                Err(Error::SnapshotTooLarge { .. }) if with_sums && sums.n > 0.0 => {
                    with_sums = false;
                }
                r => break r?,
            }
        };
        let mut written = Vec::with_capacity(out.len());
        for p in &out {
            written.push(key(p));
        }
        staged.written = sorted(written);
        staged.writer = Some(writer);
        self.sync.settled.mark();
        self.sync.staged = Some(staged);
        Ok(report)
    }

    fn apply(&mut self, s: Staged) {
        self.apply_staged(s);
    }
}

/// The section name of a slot.
pub(crate) fn section_name(slot: &str) -> Result<String> {
    crate::store::slot_section("learner:", slot)
}

/// The section of a slot's offline evaluation (see [`Engine::write_eval`]).
pub(crate) fn eval_section_name(slot: &str) -> Result<String> {
    crate::store::slot_section("eval:", slot)
}

/// The evaluation section layout this build writes.
const EVAL_LAYOUT: u8 = 1;

/// A decoded evaluation section of this model.
struct EvalStored {
    sums: Sums,
    /// Logged decisions and their [`id_key`]s (at most `maxPending`, as
    /// written: searched, not sorted).
    logs: Vec<(u128, Logged)>,
}

/// A decoded learner section: this model's entry, and where the other
/// versions' entries are, carried over unread (a restore copies nothing of
/// them).
struct Section {
    ours: Option<Stored>,
    others: Vec<Other>,
}

/// Another model version's entry: when it was written, and its bytes'
/// range in the section body.
struct Other {
    written: f64,
    body: core::ops::Range<usize>,
}

/// What [`Engine::take`] read and took.
struct Taken {
    staged: Staged,
    report: SyncReport,
    others: Vec<Other>,
    tombstones: Vec<(u128, f64)>,
    horizon: f64,
    /// The evaluation section is of a newer layout: left as it is.
    eval_frozen: bool,
}

/// This model's decoded learning.
struct Stored {
    writer: (u64, u64),
    arms: Vec<Posterior>,
    pending: Vec<Pending>,
    /// The pending decisions' [`key`]s, sorted.
    pending_keys: Vec<u128>,
    /// Decisions settled by the tabs that wrote it: ([`id_key`], expiry).
    tombstones: Vec<(u128, f64)>,
    /// Their keys, sorted.
    settled: Vec<u128>,
    /// A decision expiring no later than this that is missing without a
    /// tombstone may have been settled (its tombstone was evicted).
    horizon: f64,
}

impl Engine {
    /// Merge this engine's learning with the stored snapshot `stored` (none
    /// when nothing is stored) and return the snapshot to write, with the
    /// other sections carried over. Nothing changes until [`commit`]: call it
    /// once the bytes are written.
    ///
    /// Errors (nothing changes): the stored bytes are foreign, corrupt, too
    /// large or from a newer build ([`Snapshot::decode`], and the same codes
    /// for this slot's section); the result would exceed `max_bytes`
    /// (`SNAPSHOT_TOO_LARGE`); `slot` is not a valid name (`INVALID_OPTION`);
    /// `now_ms` is not finite.
    ///
    /// [`commit`]: Engine::commit
    pub fn sync(
        &mut self,
        stored: Option<&[u8]>,
        slot: &str,
        now_ms: f64,
        max_bytes: usize,
    ) -> Result<SyncReport> {
        Persisted::sync(self, stored, now_ms, max_bytes, slot)
    }

    /// Load the stored snapshot on page load (or when consent allows storage
    /// again): this engine takes the stored learning, with its own updates
    /// not yet stored replayed onto it, and the stored pending decisions.
    /// Unlike [`sync`](Engine::sync) it writes nothing and claims nothing was
    /// written: its own updates stay journaled for the next sync, so they
    /// reach storage exactly once. Cancels a sync not yet committed. Errors
    /// as for `sync`; on error nothing changes.
    pub fn restore(
        &mut self,
        stored: &[u8],
        slot: &str,
        now_ms: f64,
        max_bytes: usize,
    ) -> Result<SyncReport> {
        // The options are checked before the bytes, as `sync` does: a bad
        // slot name must not read as bad stored data.
        super::check_now(now_ms)?;
        section_name(slot)?;
        self.restore_section(&Snapshot::decode(stored, max_bytes)?, slot, now_ms)
    }

    /// [`restore`](Engine::restore) from a snapshot already decoded, as a
    /// page load does once for all its parts.
    pub fn restore_snapshot(
        &mut self,
        snap: &Snapshot,
        slot: &str,
        now_ms: f64,
    ) -> Result<SyncReport> {
        super::check_now(now_ms)?;
        self.restore_section(snap, slot, now_ms)
    }

    /// [`restore`](Engine::restore) of slot `slot`'s sections of `snap`,
    /// its name checked.
    fn restore_section(&mut self, snap: &Snapshot, slot: &str, now_ms: f64) -> Result<SyncReport> {
        // A fresh engine's learners are at the prior, where the reader starts
        // its own: lent to it, they take the stored learning, so a page load
        // holds one set of learners instead of two (each 66 KB at 128 slots,
        // which the .wasm's memory grows by).
        let lent = if self.s.arms.iter().all(|a| a.n == 0) {
            core::mem::take(&mut self.s.arms)
        } else {
            Vec::new()
        };
        let out = match self.take(snap, slot, now_ms, lent) {
            Ok(Taken {
                staged, mut report, ..
            }) => {
                // An overflowed journal cannot be replayed: this engine's own
                // state stays, and its next sync writes over the stored one
                // (as it reports then).
                report.overwrote = false;
                self.sync.staged = None;
                self.apply_staged(staged);
                Ok(report)
            }
            Err(e) => Err(e),
        };
        // Lent and not given back (nothing stored for this model, or an
        // error): they were at the prior, and are again.
        if self.s.arms.is_empty() {
            self.s.arms = self.s.cfg.model.posteriors();
        }
        out
    }

    /// Read section `name` of `snap` and what this engine takes from this
    /// model's entry in it: the decisions another tab settled, the stored
    /// learning with this engine's journal replayed onto it when another
    /// tab wrote since this engine last did, the activations and the other
    /// page views' decisions to adopt; the other versions' entries, and the
    /// tombstones to write. Nothing changes here.
    /// `lent`: learners at the prior for the reader to read the stored ones
    /// into (see [`Engine::restore`]), or none.
    fn take(
        &self,
        snap: &Snapshot,
        slot: &str,
        now_ms: f64,
        lent: Vec<Posterior>,
    ) -> Result<Taken> {
        let mut lent = Some(lent);
        let section = snap.read(&section_name(slot)?, |body| {
            self.read_section(body, now_ms, lent.take().unwrap_or_default())
        })?;
        let (st, others) = section.map_or((None, Vec::new()), |s| (s.ours, s.others));
        // The evaluation: a damaged section starts again and a newer one is
        // left alone; neither touches the learning.
        let (eval, eval_frozen) = match snap.read(&eval_section_name(slot)?, |b| self.read_eval(b))
        {
            Ok(e) => (e.flatten(), false),
            Err(Error::SnapshotVersion { .. }) => (None, true),
            Err(_) => (None, false),
        };
        let mut report = SyncReport {
            model_changed: st.is_none() && !others.is_empty(),
            ..SyncReport::default()
        };
        let (tombstones, horizon) = self.tombstones(st.as_ref(), now_ms);
        let mut s = Staged {
            merged: None,
            gone: Vec::new(),
            adopt: Vec::new(),
            activated: Vec::new(),
            written: Vec::new(),
            writer: None,
        };
        if let Some(mut st) = st {
            s.gone = self.gone_from(&st, now_ms);
            if self.sync.written != Some(st.writer) {
                report.merged = true;
                if self.sync.journal.overflowed() {
                    report.overwrote = true;
                } else {
                    let mut sums = match &eval {
                        Some(e) => e.sums.clone(),
                        None => Sums::new(self.eval.k()),
                    };
                    self.replay(&mut st.arms, &mut sums, &s.gone, &mut report);
                    s.merged = Some((core::mem::take(&mut st.arms), sums));
                }
            }
            s.activated = activated_in(&st);
            // Read as shared: they are in the store, so a later absence
            // means settled elsewhere.
            s.adopt = self.unknown(st.pending, now_ms);
            if let Some(e) = &eval {
                for p in &mut s.adopt {
                    let k = key(p);
                    if let Some(l) = e.logs.iter().find(|l| l.0 == k) {
                        p.log = Some(l.1.clone());
                    }
                }
            }
            report.adopted = s.adopt.len();
        }
        Ok(Taken {
            staged: s,
            report,
            others,
            tombstones,
            horizon,
            eval_frozen,
        })
    }

    /// Shared decisions (known to be in the store) that are live here but
    /// another tab settled: tombstoned in `st`, or missing from it and
    /// expiring within its horizon (tombstones evicted). Sorted keys.
    fn gone_from(&self, st: &Stored, now_ms: f64) -> Vec<u128> {
        let mut gone = Vec::new();
        for p in self.pending.iter().chain(&self.foreign) {
            let k = key(p);
            if p.shared
                && now_ms <= p.expires_at
                && (holds(&st.settled, k)
                    || (!holds(&st.pending_keys, k) && p.expires_at <= st.horizon))
            {
                gone.push(k);
            }
        }
        sorted(gone)
    }

    /// The tombstones and horizon to write: the stored ones (of this
    /// model's entry) and this engine's own, while they can matter (a day of
    /// clock slack past their expiry), the `maxPending` latest-expiring;
    /// the horizon rises to cover what that cap evicts.
    fn tombstones(&self, st: Option<&Stored>, now_ms: f64) -> (Vec<(u128, f64)>, f64) {
        let (stored, known): (&[(u128, f64)], &[u128]) =
            st.map_or((&[], &[]), |s| (&s.tombstones, &s.settled));
        let mut live: Vec<(u128, f64)> = Vec::new();
        // Own tombstones already stored are among the stored ones.
        for (own, ts) in [(false, stored), (true, &self.sync.settled.entries()[..])] {
            for t in ts {
                if (!own || !holds(known, t.0)) && now_ms <= t.1 + crate::prim::clock::DAY_MS {
                    live.push(*t);
                }
            }
        }
        let mut horizon = st.map_or(0.0, |s| s.horizon).max(self.sync.dropped);
        let n = live.len();
        let kept = latest(live, self.s.cfg.max_pending, |t| t.1);
        if kept.len() < n {
            // Everything evicted expires no later than the earliest kept.
            let mut earliest = f64::INFINITY;
            for t in &kept {
                earliest = earliest.min(t.1);
            }
            horizon = horizon.max(earliest);
        }
        (kept, horizon)
    }

    /// Replay the journal onto `arms`, except rewards for `gone` decisions
    /// (already counted by the tab that settled them).
    fn replay(
        &self,
        arms: &mut [Posterior],
        sums: &mut Sums,
        gone: &[u128],
        report: &mut SyncReport,
    ) {
        let m = &self.s.cfg.model;
        let mut outer = SparseVec::default();
        for o in self.sync.journal.entries() {
            if o.settles_one_of(gone) {
                report.duplicates += 1;
            } else if learn(arms, m, o.arm, &o.x, o.reward, &mut outer).is_ok() {
                o.count(sums);
                report.replayed += 1;
            } else {
                report.rejected += 1;
            }
        }
    }

    /// The stored pending decisions still live that this engine does not
    /// hold (its own are never adopted back).
    fn unknown(&self, stored: Vec<Pending>, now_ms: f64) -> Vec<Pending> {
        let own = self.s.cfg.epoch;
        let known = keys(&self.foreign);
        let mut out = Vec::new();
        for p in stored {
            if p.live(now_ms) && p.epoch != own && !holds(&known, key(&p)) {
                out.push(p);
            }
        }
        out
    }

    /// Apply the last [`sync`](Engine::sync) once its bytes were written.
    /// Updates made between the two (an `await` in the caller's write) are
    /// kept: replayed onto the merged state and journaled for the next sync.
    /// Returns false, changing nothing, when there is nothing to commit (no
    /// sync, a failed one, or one already committed).
    pub fn commit(&mut self) -> bool {
        Persisted::commit(self)
    }

    /// Apply what a sync staged, or what a restore took (no writer: nothing
    /// was written, so the whole journal but the rewards of decisions
    /// settled elsewhere stays for the next sync).
    fn apply_staged(&mut self, mut s: Staged) {
        let restore = s.writer.is_none();
        // The journal entries made after the sync (every one, for a
        // restore); none if it overflowed.
        let later = &mut self.sync.journal;
        later.retain(!restore, |o| !o.settles_one_of(&s.gone));
        if let Some((mut arms, mut sums)) = s.merged.take() {
            let m = &self.s.cfg.model;
            let mut outer = SparseVec::default();
            // If the journal overflowed since the sync, this tab's own state,
            // which has every one of its updates, is the better of the two.
            if !later.overflowed() {
                // A restore replayed its whole journal already.
                if !restore {
                    for o in later.entries() {
                        // It was accepted once on this tab's own state; a
                        // refusal here is counted nowhere else, like `sync`'s.
                        if learn(&mut arms, m, o.arm, &o.x, o.reward, &mut outer).is_ok() {
                            o.count(&mut sums);
                        }
                    }
                }
                self.s.arms = arms;
                self.eval = sums;
            }
        }
        self.foreign.extend(core::mem::take(&mut s.adopt));
        mark(&mut self.pending, &s);
        mark(&mut self.foreign, &s);
        // Other page views' decisions: the latest-expiring `maxPending`.
        let foreign = core::mem::take(&mut self.foreign);
        self.foreign = latest(foreign, self.s.cfg.max_pending, |p| p.expires_at);
        if s.writer.is_some() {
            self.sync.written = s.writer;
            // The written tombstones are in the store now, which carries them on.
            self.sync.settled.drain_marked();
        }
    }

    /// The evaluation section (layout 1): u8 layout; the model version
    /// (u16 length, UTF-8); the sums ([`Sums::encode`]); the logged
    /// decisions among those written as pending: count u32, then per
    /// decision epoch u64, counter u64 and its record ([`Logged`]'s
    /// bytes). Sums merge across tabs as the learning does: the stored
    /// sums plus this tab's journal replayed. Builds without it carry the
    /// section over unread.
    fn write_eval(&self, sums: &Sums, out: &[&Pending]) -> Vec<u8> {
        let mut w = vec![EVAL_LAYOUT];
        put_str(&mut w, self.s.cfg.model.version());
        sums.encode(&mut w);
        let logged: Vec<&&Pending> = out.iter().filter(|p| p.log.is_some()).collect();
        put_u32(&mut w, logged.len() as u32);
        for p in logged {
            put_u64(&mut w, p.epoch);
            put_u64(&mut w, p.counter);
            if let Some(l) = &p.log {
                l.encode(&mut w);
            }
        }
        w
    }

    /// The evaluation section, when it is this model's (None for another
    /// model's: it starts again). Errors: a newer layout
    /// (`SNAPSHOT_VERSION`), damage (`SNAPSHOT_CORRUPT`).
    fn read_eval(&self, body: &[u8]) -> Result<Option<EvalStored>> {
        let r = &mut Reader::new(body, "evaluation section");
        let layout = r.u8()?;
        if layout > EVAL_LAYOUT {
            return Err(Error::SnapshotVersion {
                found: crate::error::figure(u32::from(layout)),
                supported: crate::error::figure(u32::from(EVAL_LAYOUT)),
            });
        }
        if layout != EVAL_LAYOUT {
            return Err(corrupt(text!(
                "evaluation layout {layout} was never written"
            )));
        }
        if r.bytes16()? != self.s.cfg.model.version().as_bytes() {
            return Ok(None);
        }
        let k = self.s.cfg.model.evaluated();
        let sums = Sums::decode(r, k)?;
        let n = r.count(44)?;
        let mut logs = Vec::with_capacity(n);
        for _ in 0..n {
            let (epoch, counter) = (r.u64()?, r.u64()?);
            logs.push((id_key(epoch, counter), Logged::decode(r, k)?));
        }
        r.finish()?;
        let keys = sorted(logs.iter().map(|l| l.0).collect());
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(corrupt(text!("a logged decision is repeated")));
        }
        Ok(Some(EvalStored { sums, logs }))
    }

    fn write_section(
        &self,
        arms: &[Posterior],
        check: bool,
        (pending, activated): (&[&Pending], &[u128]),
        (tombstones, horizon): (&[(u128, f64)], f64),
        writer: (u64, u64),
    ) -> Result<Vec<u8>> {
        let m = &self.s.cfg.model;
        let d = m.dim();
        let mut w = vec![ENTRY];
        put_str(&mut w, m.version());
        put_u32(&mut w, m.features.hash_version);
        put_u32(&mut w, d as u32);
        put_u32(&mut w, m.learners() as u32);
        put_u64(&mut w, writer.0);
        put_u64(&mut w, writer.1);
        for (i, a) in arms.iter().enumerate() {
            let (mean, variance) = m.prior(i);
            let touched = touched(a, mean, variance);
            if check {
                // Merged state: never write what a reader would refuse.
                // Stored data that passed the checks can still be too close
                // to singular to take more updates. Not corruption: the
                // stored data is valid and must not be quarantined over this.
                check_arm(&a.cov, variance, &touched, ROUNDED).map_err(|e| {
                    Error::NumericalError {
                        reason: text!("the stored learner cannot take this tab's updates ({e})"),
                    }
                })?;
            }
            put_u64(&mut w, a.n);
            put_u32(&mut w, touched.len() as u32);
            for &i in &touched {
                put_u32(&mut w, i as u32);
            }
            for &i in &touched {
                put_f64(&mut w, a.mean[i]);
            }
            match &a.cov {
                Covariance::Full(c) => match factor32(c, variance, &touched) {
                    Some(l) => {
                        w.push(COV_F32);
                        for v in l {
                            w.extend_from_slice(&v.to_le_bytes());
                        }
                    }
                    None => {
                        w.push(COV_F64);
                        for (k, &i) in touched.iter().enumerate() {
                            let row = insitu_kernels::packed_row(i, d);
                            for &j in &touched[k..] {
                                put_f64(&mut w, c[row + j - i]);
                            }
                        }
                    }
                },
                Covariance::Diag(c) => {
                    for &i in &touched {
                        put_f64(&mut w, c[i]);
                    }
                }
            }
        }
        put_u32(&mut w, pending.len() as u32);
        for p in pending {
            put_u64(&mut w, p.epoch);
            put_u64(&mut w, p.counter);
            put_u32(&mut w, p.arm as u32);
            put_f64(&mut w, p.expires_at);
            w.push(u8::from(p.activated || holds(activated, key(p))));
            put_u32(&mut w, p.x.idx.len() as u32);
            for &i in &p.x.idx {
                put_u32(&mut w, i);
            }
            for &x in &p.x.val {
                put_f64(&mut w, x);
            }
        }
        put_u32(&mut w, tombstones.len() as u32);
        for &(k, expires_at) in tombstones {
            put_u64(&mut w, (k >> 64) as u64);
            put_u64(&mut w, k as u64);
            put_f64(&mut w, expires_at);
        }
        put_f64(&mut w, horizon);
        Ok(w)
    }

    /// The section: this model's entry decoded and checked, the others'
    /// kept as they are (a layout 1 or 2 section is one entry written now).
    fn read_section(&self, body: &[u8], now_ms: f64, lent: Vec<Posterior>) -> Result<Section> {
        let mut lent = Some(lent);
        let mut section = Section {
            ours: None,
            others: Vec::new(),
        };
        for_entries(
            body,
            now_ms,
            self.s.cfg.model.version(),
            |written, range, ours| {
                match ours {
                    Some((r, layout)) => {
                        let lent = lent.take().unwrap_or_default();
                        section.ours = Some(self.read_entry(r, layout, now_ms, lent)?);
                    }
                    None => section.others.push(Other {
                        written,
                        body: range,
                    }),
                }
                Ok(())
            },
        )?;
        Ok(section)
    }

    /// This model's entry, read past its layout and model version.
    fn read_entry(
        &self,
        r: Reader<'_>,
        layout: u8,
        now_ms: f64,
        lent: Vec<Posterior>,
    ) -> Result<Stored> {
        let m = &self.s.cfg.model;
        // A pending decision keeps a vector of the context's slots (and a
        // catalogue's variant features after them, not their product).
        let d = m.kept_dim();
        let k = m.variants.len();
        let r = &mut Sticky { r, err: None };
        let (arms, writer) = read_arms_of(&self.s.cfg, r, layout, lent);
        let count = r.count(41);
        let mut pending = Vec::new();
        // No decision made before now can expire later than one reward
        // window from now; another tab's clock may run a day ahead. Later
        // expiries (a different `rewardTtlMs`, or crafted data) are cut to
        // that, not refused, so a config change never sets learning aside.
        let latest_expiry = now_ms + self.s.cfg.reward_ttl_ms + crate::prim::clock::DAY_MS;
        for _ in 0..count {
            let (epoch, counter) = read_id(r);
            let arm = r.u32() as usize;
            let expires_at = r.f64().min(latest_expiry);
            let flag = r.u8();
            r.check(flag <= 1, || corrupt(text!("activation flag {flag}")));
            // A catalogue's decision carries what it scored (its variant's
            // features): its index only names it, and the list may have
            // changed since.
            let most = if m.catalogue.is_some() {
                MAX_CATALOGUE
            } else {
                k
            };
            r.check(arm < most, || {
                corrupt(text!("a decision names variant {arm} of {k}"))
            });
            let x = read_sparse(r, d);
            pending.push(Pending {
                epoch,
                counter,
                arm,
                x,
                expires_at,
                activated: flag == 1,
                rewarded: false,
                shared: true,
                log: None,
            });
        }
        let (tombstones, horizon) = if layout == LAYOUT_V1 {
            // No tombstones were kept: any stored decision missing later may
            // have been settled, as layout 1's writers meant.
            (Vec::new(), latest_expiry)
        } else {
            let count = r.count(24);
            let mut t = Vec::new();
            for _ in 0..count {
                let (epoch, counter) = read_id(r);
                t.push((id_key(epoch, counter), r.f64().min(latest_expiry)));
            }
            (t, r.f64())
        };
        if r.err.is_none() {
            let end = r.r.finish();
            r.keep(end);
        }
        let pending_keys = unique(r, keys(&pending), "decision");
        let mut settled = Vec::with_capacity(tombstones.len());
        for t in &tombstones {
            settled.push(t.0);
        }
        let settled = unique(r, sorted(settled), "tombstone");
        match r.err.take() {
            Some(e) => Err(e),
            None => Ok(Stored {
                writer,
                arms,
                pending_keys,
                pending,
                settled,
                tombstones,
                horizon,
            }),
        }
    }
}

/// A [`Reader`] whose first error sticks: every read after it gives 0 (a
/// count of 0), so an entry is read through without an exit at each field
/// (each of which would drop what was read so far) and checked once, at
/// the end. What it reads after an error is never used.
struct Sticky<'a> {
    r: Reader<'a>,
    err: Option<Error>,
}

impl Sticky<'_> {
    /// `v`'s value, or 0 and its error kept if it is the first.
    fn keep<T: Default>(&mut self, v: Result<T>) -> T {
        match v {
            Ok(v) => v,
            Err(e) => {
                self.err.get_or_insert(e);
                T::default()
            }
        }
    }

    /// Fail with `e()` unless `ok` (or it failed already).
    fn check(&mut self, ok: bool, e: impl FnOnce() -> Error) {
        if !ok && self.err.is_none() {
            self.err = Some(e());
        }
    }

    fn u8(&mut self) -> u8 {
        let v = if self.err.is_none() {
            self.r.u8()
        } else {
            Ok(0)
        };
        self.keep(v)
    }

    fn u32(&mut self) -> u32 {
        let v = if self.err.is_none() {
            self.r.u32()
        } else {
            Ok(0)
        };
        self.keep(v)
    }

    fn u64(&mut self) -> u64 {
        let v = if self.err.is_none() {
            self.r.u64()
        } else {
            Ok(0)
        };
        self.keep(v)
    }

    /// A finite f64.
    fn f64(&mut self) -> f64 {
        let v = if self.err.is_none() {
            self.r.f64()
        } else {
            Ok(0.0)
        };
        self.keep(v)
    }

    /// A finite f32, widened.
    fn f32(&mut self) -> f64 {
        let v = if self.err.is_none() {
            self.r.f32()
        } else {
            Ok(0.0)
        };
        self.keep(v)
    }

    /// See [`Reader::count`].
    fn count(&mut self, item_bytes: usize) -> usize {
        let v = if self.err.is_none() {
            self.r.count(item_bytes)
        } else {
            Ok(0)
        };
        self.keep(v)
    }
}

/// Walk the entries of a learner section (a layout 1 or 2 section is one
/// entry written at `now_ms`): `each` gets each entry's write time and byte
/// range, and for the entry of model `version` a reader past its layout and
/// version, and that layout.
fn for_entries<'b>(
    body: &'b [u8],
    now_ms: f64,
    version: &str,
    mut each: impl FnMut(f64, core::ops::Range<usize>, Option<(Reader<'b>, u8)>) -> Result<()>,
) -> Result<()> {
    let layout = body.first().copied().unwrap_or(0);
    if layout > LAYOUT {
        return Err(Error::SnapshotVersion {
            found: crate::error::figure(u32::from(layout)),
            supported: crate::error::figure(u32::from(LAYOUT)),
        });
    }
    let v3 = layout >= LAYOUT_V3;
    // Entry layout 3 came with section layout 4.
    let newest = if layout == LAYOUT { ENTRY } else { ENTRY - 1 };
    let outer = &mut Sticky {
        r: Reader::new(body, "learner section"),
        err: None,
    };
    let mut n = 1;
    if v3 {
        outer.u8();
        n = outer.u8() as usize;
        outer.check(n != 0 && n <= MAX_ENTRIES, || {
            corrupt(text!("{n} model entries"))
        });
    }
    let mut versions: Vec<&[u8]> = Vec::new();
    for _ in 0..n {
        let (mut written, mut range) = (now_ms, 0..body.len());
        if v3 {
            written = outer.f64();
            let len = outer.u32() as usize;
            let at = outer.r.pos();
            if outer.err.is_none() {
                let taken = outer.r.take(len).map(|_| ());
                outer.keep(taken);
            }
            range = at..at.saturating_add(len);
        }
        if let Some(e) = outer.err.take() {
            return Err(e);
        }
        let mut r = Reader::new(body.get(range.clone()).unwrap_or_default(), "learner entry");
        let layout = r.u8()?;
        if !(LAYOUT_V1..=newest).contains(&layout) {
            return Err(corrupt(text!("entry layout {layout} was never written")));
        }
        let v = r.bytes16()?;
        if !written.is_finite() || versions.contains(&v) {
            return Err(corrupt(text!(
                "a model version is repeated or has no finite write time"
            )));
        }
        versions.push(v);
        let ours = (v == version.as_bytes()).then_some((r, layout));
        each(written, range, ours)?;
    }
    if v3 {
        let end = outer.r.finish();
        outer.keep(end);
    }
    outer.err.take().map_or(Ok(()), Err)
}

/// The posteriors of model `cfg`'s entry of a learner section (None when it
/// has none), checked as [`Engine::restore`] checks them; the entry's
/// pending decisions and tombstones are not read.
pub(super) fn read_arms(cfg: &EngineConfig, body: &[u8]) -> Result<Option<Vec<Posterior>>> {
    let mut out = None;
    for_entries(body, 0.0, cfg.model.version(), |_, _, ours| {
        if let Some((r, layout)) = ours {
            let r = &mut Sticky { r, err: None };
            let (arms, _) = read_arms_of(cfg, r, layout, Vec::new());
            if let Some(e) = r.err.take() {
                return Err(e);
            }
            out = Some(arms);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Read an entry's header and arms, past its layout and version: the
/// posteriors (read into `lent`, learners at the prior, when there are as
/// many) and the writer id.
fn read_arms_of(
    cfg: &EngineConfig,
    r: &mut Sticky<'_>,
    layout: u8,
    lent: Vec<Posterior>,
) -> (Vec<Posterior>, (u64, u64)) {
    let m = &cfg.model;
    let d = m.dim();
    // Learners: one per variant, or a catalogue's one (whose variants may
    // change under the same model version); the message says variants, as
    // it always has.
    let k = m.learners();
    let (hv, sd, sk) = (r.u32(), r.u32() as usize, r.u32() as usize);
    r.check((hv, sd, sk) == (m.features.hash_version, d, k), || {
        corrupt(text!(
            "hash version {hv}, {sd} slots and {sk} variants do not match the model's \
             {}, {d} and {k}",
            m.features.hash_version
        ))
    });
    let writer = (r.u64(), r.u64());
    let mut arms = if lent.len() == k {
        lent
    } else {
        m.posteriors()
    };
    for (i, a) in arms.iter_mut().enumerate() {
        read_arm(r, a, m.prior(i).1, d, layout);
    }
    (arms, writer)
}

/// The other model versions' entries to keep (see the module docs), most
/// recently written first: their write times and bytes, copied out of the
/// stored section this write replaces.
fn kept_models(
    snap: &Snapshot,
    name: &str,
    others: Vec<Other>,
    now_ms: f64,
) -> Vec<(f64, Vec<u8>)> {
    let stored = snap.section(name).unwrap_or_default();
    let mut kept: Vec<(f64, Vec<u8>)> = Vec::new();
    for o in others {
        if o.written + MODEL_KEPT_MS >= now_ms {
            // At most MAX_ENTRIES: an insertion sort.
            let at = kept.partition_point(|k| k.0 >= o.written);
            kept.insert(
                at,
                (o.written, stored.get(o.body).unwrap_or_default().to_vec()),
            );
        }
    }
    kept.truncate(MAX_MODELS - 1);
    kept
}

/// Set section `name` to this model's entry `own` (its body, written at
/// `now_ms`) followed by the `kept` other versions, and encode the
/// snapshot: the oldest other versions are dropped (from `kept` too) while
/// it would exceed `max_bytes`.
fn write_models(
    snap: &mut Snapshot,
    name: &str,
    (own, now_ms): (&[u8], f64),
    kept: &mut Vec<(f64, Vec<u8>)>,
    max_bytes: usize,
) -> Result<Vec<u8>> {
    loop {
        let mut w = vec![LAYOUT, 1 + kept.len() as u8];
        put_f64(&mut w, now_ms);
        put_u32(&mut w, own.len() as u32);
        w.extend_from_slice(own);
        for (written, body) in kept.iter() {
            put_f64(&mut w, *written);
            put_u32(&mut w, body.len() as u32);
            w.extend_from_slice(body);
        }
        snap.set_section(name, w);
        match snap.encode(max_bytes) {
            Err(Error::SnapshotTooLarge { .. }) if !kept.is_empty() => {
                kept.pop();
            }
            r => return r,
        }
    }
}

/// Mark the decisions of `q` as `s` found them: settled when another tab
/// settled them, activated when another tab activated them (the variant
/// was shown, so a reward may arrive in any tab), shared when written.
/// (Adopted decisions are none of the settled ones, and carry their stored
/// activation already.)
fn mark(q: &mut [Pending], s: &Staged) {
    for p in q {
        let k = key(p);
        p.rewarded |= holds(&s.gone, k);
        p.activated |= holds(&s.activated, k);
        p.shared |= holds(&s.written, k);
    }
}

/// Add the decisions of `q` still live at `now_ms` and not `gone` (sorted
/// keys) to `out`.
fn live_into<'a>(out: &mut Vec<&'a Pending>, q: &'a [Pending], now_ms: f64, gone: &[u128]) {
    for p in q {
        if p.live(now_ms) && !holds(gone, key(p)) {
            out.push(p);
        }
    }
}

/// The stored decisions that are activated ([`key`]s, sorted).
fn activated_in(st: &Stored) -> Vec<u128> {
    let mut keys = Vec::new();
    for p in &st.pending {
        if p.activated {
            keys.push(key(p));
        }
    }
    sorted(keys)
}

/// A stored decision id, refusing epochs wider than decision ids allow.
fn read_id(r: &mut Sticky<'_>) -> (u64, u64) {
    let (epoch, counter) = (r.u64(), r.u64());
    r.check(epoch >> super::EPOCH_BITS == 0, || {
        corrupt(text!("a decision epoch {epoch:#x} wider than 48 bits"))
    });
    (epoch, counter)
}

/// The [`key`]s of decisions, sorted.
fn keys(ps: &[Pending]) -> Vec<u128> {
    let mut out = Vec::with_capacity(ps.len());
    for p in ps {
        out.push(key(p));
    }
    sorted(out)
}

/// `keys` (sorted), refusing a list of ids (`what`s) naming one twice.
fn unique(r: &mut Sticky<'_>, keys: Vec<u128>, what: &str) -> Vec<u128> {
    for w in keys.windows(2) {
        let (epoch, counter) = ((w[0] >> 64) as u64, w[0] as u64);
        r.check(w[0] != w[1], || {
            corrupt(text!("{what} {epoch:012x}-{counter} appears twice"))
        });
    }
    keys
}

/// A decision id (epoch, counter) as one sortable key.
pub(super) fn id_key(epoch: u64, counter: u64) -> u128 {
    (u128::from(epoch) << 64) | u128::from(counter)
}

/// `k` is among the sorted `keys`.
fn holds(keys: &[u128], k: u128) -> bool {
    let mut keys = keys;
    while let Some(&m) = keys.get(keys.len() / 2) {
        if m == k {
            return true;
        }
        keys = if m < k {
            &keys[keys.len() / 2 + 1..]
        } else {
            &keys[..keys.len() / 2]
        };
    }
    false
}

impl Observation {
    /// Add its evaluation to `sums`, when it logged one.
    fn count(&self, sums: &mut Sums) {
        if let Some(l) = &self.log {
            sums.add(self.arm, l, self.reward);
        }
    }

    /// It is the reward of one of the decisions `keys` (sorted).
    fn settles_one_of(&self, keys: &[u128]) -> bool {
        self.decision.is_some_and(|k| holds(keys, k))
    }
}

/// A pending decision's [`id_key`].
fn key(p: &Pending) -> u128 {
    id_key(p.epoch, p.counter)
}

/// Slots whose mean, variance or covariances differ from the prior.
fn touched(a: &Posterior, mean: &[f64], var: &[f64]) -> Vec<usize> {
    let d = a.mean.len();
    let mut t = vec![false; d];
    for i in 0..d {
        t[i] |= a.mean[i] != mean[i];
        match &a.cov {
            Covariance::Full(c) => {
                let row = insitu_kernels::packed_row(i, d);
                t[i] |= c[row] != var[i];
                for j in i + 1..d {
                    if c[row + j - i] != 0.0 {
                        t[i] = true;
                        t[j] = true;
                    }
                }
            }
            Covariance::Diag(c) => t[i] |= c[i] != var[i],
        }
    }
    let mut out = Vec::new();
    for (i, hit) in t.into_iter().enumerate() {
        if hit {
            out.push(i);
        }
    }
    out
}

/// Read one variant's touched slots onto its prior `a` (see [`check_arm`]):
/// in entry layout 3 a full covariance is either packed f64 or its Cholesky
/// factor in f32 (see [`factor32`]); before, always packed f64.
fn read_arm(r: &mut Sticky<'_>, a: &mut Posterior, prior_var: &[f64], d: usize, layout: u8) {
    a.n = r.u64();
    // A touched slot's index, mean and at least its variance: 8 bytes, or
    // a 4-byte pivot of the f32 factor.
    let t = r.count(4 + 8 + if layout == ENTRY { 4 } else { 8 });
    r.check(t <= d, || corrupt(text!("{t} touched slots of {d}")));
    // Only valid slots, increasing, are kept (see `slot`): the loops below
    // index with them whatever was read.
    let mut idx = Vec::with_capacity(t.min(d));
    for _ in 0..t {
        if let Some(i) = slot(r, d, idx.last().map(|&p| p as u32)) {
            idx.push(i as usize);
        }
    }
    for &i in &idx {
        a.mean[i] = r.f64();
    }
    match &mut a.cov {
        Covariance::Full(c) => {
            let f32s = layout == ENTRY && {
                let how = r.u8();
                r.check(how <= COV_F32, || {
                    corrupt(text!("covariance encoding {how}"))
                });
                how == COV_F32
            };
            if f32s {
                let mut l = Vec::with_capacity(t.min(d) * (t.min(d) + 1) / 2);
                for (k, &i) in idx.iter().enumerate() {
                    for _ in 0..k + 1 {
                        l.push(r.f32());
                    }
                    let pivot = l[l.len() - 1];
                    r.check(pivot > 0.0, || {
                        corrupt(text!("a Cholesky pivot of slot {i} is not positive"))
                    });
                }
                expand(&l, c, d, &idx);
            } else {
                for (k, &i) in idx.iter().enumerate() {
                    let row = insitu_kernels::packed_row(i, d);
                    for &j in &idx[k..] {
                        c[row + j - i] = r.f64();
                    }
                }
            }
        }
        Covariance::Diag(c) => {
            for &i in &idx {
                c[i] = r.f64();
            }
        }
    }
    if r.err.is_none() {
        // Layouts 1 and 2 stored f64 only, and their writers never rounded.
        let slack = if layout == ENTRY { ROUNDED } else { 1e-9 };
        let checked = check_arm(&a.cov, prior_var, &idx, slack);
        r.keep(checked);
    }
}

/// Set the covariances among the slots `idx` of the packed `d`×`d` matrix
/// `c` to `L L'`, for `l` a lower-triangular factor over those slots,
/// packed by rows (row `k` holds `L[k][0..=k]`).
fn expand(l: &[f64], c: &mut [f64], d: usize, idx: &[usize]) {
    // Plain index loops: iterator adapters cost the .wasm bytes here.
    for k in 0..idx.len() {
        let (i, lk) = (idx[k], k * (k + 1) / 2);
        let row = insitu_kernels::packed_row(i, d);
        for m in k..idx.len() {
            let lm = m * (m + 1) / 2;
            let mut s = 0.0;
            for p in 0..k + 1 {
                s += l[lk + p] * l[lm + p];
            }
            c[row + idx[m] - i] = s;
        }
    }
}

/// The Cholesky factor of the covariance among the slots `idx` rounded to
/// f32, packed by rows: half the bytes of the packed f64 covariance, and
/// whatever the rounding, `L L'` is positive semi-definite (a rounded
/// covariance need not be). Rounding moves each covariance by at most about
/// 2^-23 of its row's and column's standard deviations, which leaves the
/// learning as it was. `None` (write f64) unless the covariance factorises
/// and its rounded factor reads back as [`read_arm`] reads it, so a writer
/// never writes what a reader refuses.
fn factor32(c: &[f64], prior_var: &[f64], idx: &[usize]) -> Option<Vec<f32>> {
    let d = prior_var.len();
    let t = idx.len();
    let mut l = block(c, d, idx);
    if cholesky_fails(&mut l, t).is_some() {
        return None;
    }
    // The factor as stored (each entry rounded to f32), and widened back.
    let mut out = Vec::with_capacity(t * (t + 1) / 2);
    let mut wide = Vec::with_capacity(t * (t + 1) / 2);
    for k in 0..t {
        for m in 0..k + 1 {
            let v = l[k * t + m] as f32;
            // Infinite past f32's range (or NaN): never stored.
            if !v.is_finite() {
                return None;
            }
            out.push(v);
            wide.push(f64::from(v));
        }
        // A pivot that rounds to 0 (below f32's range) would read as corrupt.
        if wide[wide.len() - 1] <= 0.0 {
            return None;
        }
    }
    // Only the block is read back and checked, as a t×t matrix of its own.
    let local: Vec<usize> = (0..t).collect();
    let mut prior = Vec::with_capacity(t);
    for &i in idx {
        prior.push(prior_var[i]);
    }
    let mut back = vec![0.0; insitu_kernels::packed_len(t)];
    expand(&wide, &mut back, t, &local);
    check_arm(&Covariance::Full(back), &prior, &local, ROUNDED).ok()?;
    Some(out)
}

/// Check that the covariance over the touched slots `idx` could have come
/// from updates of the prior: every variance positive and no larger than
/// the prior's (an update never adds uncertainty), and the block symmetric
/// positive definite (a Cholesky factorisation, O(t³/3)). Anything less
/// lets a later rank-1 update turn it into garbage.
fn check_arm(cov: &Covariance, prior_var: &[f64], idx: &[usize], slack: f64) -> Result<()> {
    let d = prior_var.len();
    let var = |i: usize| match cov {
        Covariance::Full(c) => c[insitu_kernels::packed_row(i, d)],
        Covariance::Diag(c) => c[i],
    };
    for &i in idx {
        let v = var(i);
        if !(v > 0.0 && v <= prior_var[i] * (1.0 + slack)) {
            return Err(corrupt(text!(
                "variance of slot {i} is outside (0, prior variance]"
            )));
        }
    }
    // The first-decision module only decides: a covariance that is not
    // positive definite there gives a variance clamped at 0, and the full
    // engine, which learns from it, refuses it when it takes over.
    #[cfg(any(feature = "full", not(feature = "first")))]
    if let Covariance::Full(c) = cov {
        let mut l = block(c, d, idx);
        if let Some(k) = cholesky_fails(&mut l, idx.len()) {
            return Err(corrupt(text!(
                "the covariance is not positive definite (at slot {})",
                idx[k]
            )));
        }
    }
    Ok(())
}

/// The block of the packed `d`×`d` symmetric `c` among the slots `idx`,
/// dense and row-major.
fn block(c: &[f64], d: usize, idx: &[usize]) -> Vec<f64> {
    let t = idx.len();
    let mut l = vec![0.0; t * t];
    for k in 0..t {
        let row = insitu_kernels::packed_row(idx[k], d);
        for m in k..t {
            let v = c[row + idx[m] - idx[k]];
            l[k * t + m] = v;
            l[m * t + k] = v;
        }
    }
    l
}

/// Factorise the symmetric `t`×`t` matrix `a` in place (lower triangle);
/// the first pivot that is not positive, if any.
fn cholesky_fails(a: &mut [f64], t: usize) -> Option<usize> {
    for j in 0..t {
        let mut s = a[j * t + j];
        for k in 0..j {
            s -= a[j * t + k] * a[j * t + k];
        }
        if s.is_nan() || s <= 0.0 {
            return Some(j);
        }
        let p = s.sqrt();
        a[j * t + j] = p;
        for i in j + 1..t {
            let mut v = a[i * t + j];
            for k in 0..j {
                v -= a[i * t + k] * a[j * t + k];
            }
            a[i * t + j] = v / p;
        }
    }
    None
}

/// A slot index below `d`, above `prev`; `None` (an error) for any other.
fn slot(r: &mut Sticky<'_>, d: usize, prev: Option<u32>) -> Option<u32> {
    let i = r.u32();
    let ok = (i as usize) < d && prev.map_or(true, |p| i > p);
    r.check(ok, || {
        corrupt(text!("slot {i} is out of range or out of order"))
    });
    ok.then_some(i)
}

fn read_sparse(r: &mut Sticky<'_>, d: usize) -> SparseVec {
    let n = r.count(12);
    r.check(n <= d, || corrupt(text!("{n} features in {d} slots")));
    let mut x = SparseVec::default();
    for _ in 0..n {
        if let Some(i) = slot(r, d, x.idx.last().copied()) {
            x.idx.push(i);
        }
    }
    for _ in 0..n {
        x.val.push(r.f64());
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prim::rng::Rng;

    #[test]
    fn holds_finds_exactly_the_keys_held() {
        let mut rng = Rng::new(3);
        for n in 0..40 {
            let keys = sorted(
                (0..n)
                    .map(|_| u128::from(rng.next_u64() % 64) << 60)
                    .collect(),
            );
            for k in 0..70u128 {
                let k = k << 60;
                assert_eq!(
                    holds(&keys, k),
                    keys.binary_search(&k).is_ok(),
                    "{n} keys, {k}"
                );
            }
        }
    }

    /// The reader's checks must accept whatever long learning produces:
    /// after 100,000 updates of correlated sparse contexts every slot is
    /// touched and the covariance has shrunk far from the prior, and it
    /// still passes.
    #[test]
    fn long_learning_passes_the_readers_checks() {
        let d = 32;
        let prior = vec![1.0; d];
        let mut p = Posterior::new(vec![0.0; d], &prior);
        let mut rng = Rng::new(8);
        for _ in 0..100_000 {
            // Eight slots from a window of twelve: neighbours co-occur.
            let start = (rng.next_u64() % (d as u64 - 11)) as u32;
            let mut idx: Vec<u32> = (start..start + 12).collect();
            while idx.len() > 8 {
                idx.remove((rng.next_u64() % idx.len() as u64) as usize);
            }
            let val = idx.iter().map(|_| 0.5 + rng.next_f64()).collect();
            let x = SparseVec { idx, val };
            p.update(&x, rng.next_f64(), 0.25, 1.0).unwrap();
        }
        let all: Vec<usize> = (0..d).collect();
        assert_eq!(touched(&p, &vec![0.0; d], &prior), all);
        check_arm(&p.cov, &prior, &all, ROUNDED).unwrap();
        // And a nudge past the prior variance, or off definiteness, is caught.
        let Covariance::Full(c) = &mut p.cov else {
            unreachable!()
        };
        let saved = c.clone();
        let mut back = p.clone();
        factor32_round_trip(&p, &mut back, &prior, &all);
        let Covariance::Full(c) = &mut p.cov else {
            unreachable!()
        };
        c[0] = 1.5;
        assert!(check_arm(&p.cov, &prior, &all, ROUNDED).is_err());
        let Covariance::Full(c) = &mut p.cov else {
            unreachable!()
        };
        *c = saved;
        c[1] = (c[0] * c[insitu_kernels::packed_row(1, d)]).sqrt() * 1.01;
        let e = check_arm(&p.cov, &prior, &all, ROUNDED).unwrap_err();
        assert!(e.to_string().contains("positive definite"), "{e}");
    }

    /// Write `p`'s covariance over `idx` as [`factor32`] does and read it
    /// back into `back` as [`read_arm`] does: every covariance within
    /// 2^-22 of `sqrt(var_i var_j)`. (Each factor entry moves by at most
    /// 2^-24 of itself, so by Cauchy-Schwarz each covariance moves by at
    /// most about 2^-23 of the product of its rows' lengths, which is
    /// `sqrt(var_i var_j)`; the f64 sums add far less.)
    fn factor32_round_trip(p: &Posterior, back: &mut Posterior, prior: &[f64], idx: &[usize]) {
        let d = prior.len();
        let (Covariance::Full(c), Covariance::Full(b)) = (&p.cov, &mut back.cov) else {
            unreachable!()
        };
        let l: Vec<f64> = factor32(c, prior, idx)
            .expect("a positive definite block factorises")
            .into_iter()
            .map(f64::from)
            .collect();
        assert_eq!(l.len(), idx.len() * (idx.len() + 1) / 2);
        expand(&l, b, d, idx);
        let at = |c: &[f64], i: usize, j: usize| c[insitu_kernels::packed_row(i, d) + j - i];
        let mut worst: f64 = 0.0;
        for &i in idx {
            for &j in idx.iter().filter(|&&j| j >= i) {
                let scale = (at(c, i, i) * at(c, j, j)).sqrt();
                let moved = (at(b, i, j) - at(c, i, j)).abs() / scale;
                assert!(moved <= 2f64.powi(-22), "({i}, {j}) moved {moved:e}");
                worst = worst.max(moved);
            }
        }
        // Rounded, not copied: the bound is not met by accident.
        assert!(worst > 0.0);
        check_arm(&back.cov, prior, idx, ROUNDED).unwrap();
    }

    /// What has no f32 factor that reads back is written as f64: a block
    /// that is not positive definite, and one whose factor underflows f32.
    #[test]
    fn factor32_declines_what_would_not_read_back() {
        let d = 3;
        let prior = vec![1.0; d];
        let all = [0, 1, 2];
        // Packed rows: (0,0) (0,1) (0,2) (1,1) (1,2) (2,2).
        let singular = [1.0, 1.0, 0.0, 1.0, 0.0, 0.5];
        assert!(factor32(&singular, &prior, &all).is_none());
        let tiny = [1e-100, 0.0, 0.0, 1e-100, 0.0, 1e-100];
        assert!(factor32(&tiny, &prior, &all).is_none());
        let fine = [0.5, 0.1, 0.0, 0.5, 0.1, 0.5];
        assert!(factor32(&fine, &prior, &all).is_some());
        // Over the prior's variance: refused as a reader would.
        assert!(factor32(&fine, &[0.4; 3], &all).is_none());
    }
}
