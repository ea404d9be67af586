//! A slot's report statistics for the current period, and its ledger.
//!
//! Statistics are attributed to the period in which a sync stores them (a
//! tab stores within seconds of an update, and at the latest when the page
//! is hidden). Every tab adds what it has not stored yet to the stored
//! period's sums; the first sync that finds the stored period over closes
//! it: encodes it ([`encode`]), writes a ledger entry, and starts the new
//! period with its own additions. The ledger lives in the same section, so
//! the close and its entry are one write. Only a sync allowed to close
//! ([`ReportTask::close`]: the caller holds the site's lock and read the
//! newest data) closes a period; any other sync that finds the stored
//! period over adds its own additions to it, for a sync that may close it.
//! A close of a period the ledger already lists is refused
//! ([`Outcome::Duplicate`]). Additions another tab had not stored when the
//! period closed go into the next period. A stored period one period ahead
//! of the clock (another tab's clock) is kept; one further ahead is taken
//! as the current one.
//!
//! Statistics are kept per *feature space* ([`ReportTask::space`]: the
//! feature settings and the variants' own features), not per prior: X'y
//! and X'X depend on the observations and how they are hashed, not on the
//! prior's weights, so shipping a new prior keeps the period's sums.
//!
//! Section `report:<slot>`, layout 1 (integers little-endian, f64 IEEE):
//! - u8 layout (1); period u32 (first day of the period, days since
//!   1970-01-01 UTC); feature space (u16 length, UTF-8); variants u32;
//!   slots u32 (0: no learner statistics);
//! - per variant: decisions u32, exposures u32, reward sum f64, touched
//!   slot count u32, the touched slots (u32, increasing), their X'y (f64),
//!   their X'X diagonal (f64);
//! - ledger count u8 (at most [`MAX_LEDGER`], oldest first); per entry:
//!   period u32, task (u16 length, UTF-8), outcome u8, clipped groups u8
//!   (bit `i` for [`GROUPS`]`[i]`), measurement length u32, bits u8, scale
//!   u32, bounds (decisions u32, exposures u32, rewards f64, xy f64, xx f64);
//! - the payload of the newest `Reported` entry: nonzero count u32, then
//!   (index u32 increasing, value u32) pairs (none without such an entry).

use crate::prelude::*;

#[cfg(not(feature = "std"))]
use crate::prim::math::Float;

use super::measure::{encode, Bounds, Group, Spec, Stats, GROUPS, MAX_BITS};
use crate::error::{Error, Refusal, Result};
use crate::features::SparseVec;
use crate::prim::clock::DAY_MS;
use crate::prim::journal::Marked;
use crate::store::sync::{open, Persisted};
use crate::store::{corrupt, put_f64, put_str, put_u32, Reader, Snapshot};

/// The section layout this build writes and reads.
const LAYOUT: u8 = 1;
/// Ledger entries a section keeps, the oldest dropped first.
pub const MAX_LEDGER: usize = 32;
/// Longest period, in days.
pub const MAX_PERIOD_DAYS: u32 = 366;
/// Most learner entries per report (`variants · slots`): a Prio3 share
/// grows with the measurement, 16 bytes per bit per entry.
pub const MAX_ENTRIES: usize = 4096;
/// Longest task id, in bytes.
const MAX_TASK: usize = 256;
/// Longest measurement: `1 + 3K + 3·MAX_ENTRIES` at 64 variants.
const MAX_LENGTH: u32 = (1 + 3 * super::MAX_VARIANTS + 3 * MAX_ENTRIES) as u32;

/// Why a ledger entry was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The period was encoded and handed to the site.
    Reported = 1,
    /// The ledger already listed this task's period: nothing was made.
    Duplicate = 2,
    /// A statistic was not finite: nothing was made.
    NonFinite = 3,
    /// The stored statistics were over another feature space or number of
    /// variants (the site changed its features): dropped, never reported.
    SpaceChanged = 4,
}

impl Outcome {
    /// Its name in the audit.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Reported => "reported",
            Outcome::Duplicate => "refused-duplicate",
            Outcome::NonFinite => "refused-non-finite",
            Outcome::SpaceChanged => "dropped-features-changed",
        }
    }

    fn of(b: u8) -> Option<Outcome> {
        Some(match b {
            1 => Outcome::Reported,
            2 => Outcome::Duplicate,
            3 => Outcome::NonFinite,
            4 => Outcome::SpaceChanged,
            _ => return None,
        })
    }
}

/// One line of the ledger: what happened to a closed period.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    /// The period's first day (days since 1970-01-01 UTC).
    pub period: u32,
    /// The task it was reported to.
    pub task: String,
    /// What happened.
    pub outcome: Outcome,
    /// Groups clipped to their bounds (bit `i` for [`GROUPS`]`[i]`).
    pub clipped: u8,
    /// Entries of the measurement.
    pub length: u32,
    /// Bits per entry.
    pub bits: u8,
    /// The fixed-point scale.
    pub scale: u32,
    /// The contribution bounds.
    pub bounds: Bounds,
}

/// A closed period's report, handed over once on commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    /// The period's first day (days since 1970-01-01 UTC).
    pub period: u32,
    /// The measurement ([`Spec::len`] entries, each below `2^bits`).
    pub measurement: Vec<u64>,
    /// Groups clipped to their bounds.
    pub clipped: Vec<Group>,
}

/// Whose statistics a tally keeps: a slot's (section `report:<name>`) or
/// an A/B experiment's (`report-ab:<key>`, counts only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A decision slot.
    Slot,
    /// An A/B experiment.
    Experiment,
}

/// What the reports of a slot or experiment go to: the task, its
/// specification, the feature space the statistics are over, and whether
/// this sync may close a period.
#[derive(Debug, Clone, Copy)]
pub struct ReportTask<'a> {
    /// The slot's name (the section is `report:<slot>`).
    pub slot: &'a str,
    /// Whether `slot` names a slot or an experiment.
    pub owner: Owner,
    /// The task id, 1 to 256 bytes.
    pub task: &'a str,
    /// The specification: its variants and slots must be the tally's.
    pub spec: &'a Spec,
    /// The feature space of the slot (`Engine::feature_space`).
    pub space: &'a str,
    /// Whether this sync may close a period: only when the caller holds
    /// the site's write lock and read the newest stored data, so that two
    /// tabs never both close one period.
    pub close: bool,
}

/// What a [`Tally`] sync found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TallySync {
    /// The snapshot to write.
    pub bytes: Vec<u8>,
    /// The stored section could not be read and was started again (the
    /// learning in the other sections is untouched).
    pub corrupt: bool,
    /// The ledger entries this sync wrote: the closed period's, and one
    /// for statistics dropped as not finite.
    pub entries: Vec<LedgerEntry>,
    /// Why the closed period was not reported, if it was not.
    pub refused: Option<Error>,
    /// The stored period is over but this sync may not close it: this
    /// tally's additions were added to it, for a sync that may close it.
    pub held: bool,
}

/// Additive statistics of one period.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Counts {
    decisions: Vec<u32>,
    exposures: Vec<u32>,
    rewards: Vec<f64>,
    /// `k · d`, variant-major.
    xy: Vec<f64>,
    xx: Vec<f64>,
}

impl Counts {
    fn zeros(k: usize, d: usize) -> Counts {
        Counts {
            decisions: vec![0; k],
            exposures: vec![0; k],
            rewards: vec![0.0; k],
            xy: vec![0.0; k * d],
            xx: vec![0.0; k * d],
        }
    }

    /// The real-valued sums, one after the other.
    fn reals(&self) -> [&[f64]; 3] {
        [&self.rewards, &self.xy, &self.xx]
    }

    fn is_finite(&self) -> bool {
        self.reals().iter().all(|v| v.iter().all(|x| x.is_finite()))
    }

    fn is_zero(&self) -> bool {
        [&self.decisions, &self.exposures]
            .iter()
            .all(|v| v.iter().all(|x| *x == 0))
            && self.reals().iter().all(|v| v.iter().all(|x| *x == 0.0))
    }

    fn add(&mut self, o: &Counts) {
        for (a, b) in [
            (&mut self.decisions, &o.decisions),
            (&mut self.exposures, &o.exposures),
        ] {
            for (x, y) in a.iter_mut().zip(b) {
                *x = x.saturating_add(*y);
            }
        }
        for (a, b) in [
            (&mut self.rewards, &o.rewards),
            (&mut self.xy, &o.xy),
            (&mut self.xx, &o.xx),
        ] {
            for (x, y) in a.iter_mut().zip(b) {
                *x += *y;
            }
        }
    }

    fn stats(&self) -> Stats {
        Stats {
            decisions: self.decisions.clone(),
            exposures: self.exposures.clone(),
            rewards: self.rewards.clone(),
            xy: self.xy.clone(),
            xx: self.xx.clone(),
        }
    }
}

/// What this tab added and has not stored: `fresh` since the last sync,
/// `marked` what syncs not yet committed read. A commit drops `marked`;
/// a sync that is never committed leaves it for the next sync to read
/// again.
#[derive(Debug, Clone)]
pub(crate) struct Unstored {
    fresh: Counts,
    marked: Option<Counts>,
}

impl Unstored {
    fn total(&self) -> Counts {
        let mut t = self.fresh.clone();
        if let Some(m) = &self.marked {
            t.add(m);
        }
        t
    }
}

impl Marked for Unstored {
    fn mark(&mut self) {
        let k = self.fresh.decisions.len();
        let d = self.fresh.xy.len() / k.max(1);
        let fresh = core::mem::replace(&mut self.fresh, Counts::zeros(k, d));
        match &mut self.marked {
            Some(m) => m.add(&fresh),
            None => self.marked = Some(fresh),
        }
    }

    fn drain_marked(&mut self) {
        self.marked = None;
    }

    fn recover(&mut self) {}
}

/// A slot's report statistics not yet stored, its period length, and what
/// its last sync staged. See the module docs.
#[derive(Debug, Clone)]
pub struct Tally {
    k: usize,
    d: usize,
    period_days: u32,
    unstored: Unstored,
    staged: Option<Option<Closed>>,
    closed: Option<Closed>,
}

impl Tally {
    /// A tally for `k` variants over `d` hashed slots (0: no learner
    /// statistics), in periods of `period_days` days. Errors
    /// (`INVALID_OPTION`): `period_days` outside [1, 366], `k · d` over
    /// [`MAX_ENTRIES`], `d` not 0 or a power of two.
    pub fn new(k: usize, d: usize, period_days: u32) -> Result<Tally> {
        if !(1..=MAX_PERIOD_DAYS).contains(&period_days) {
            return Err(Error::option(
                "reports.periodDays",
                text!("should be an integer in [1, {MAX_PERIOD_DAYS}], but is {period_days}"),
            ));
        }
        if (d != 0 && !d.is_power_of_two()) || k.saturating_mul(d) > MAX_ENTRIES {
            return Err(Error::option(
                "reports.learning",
                text!("needs variants × slots at most {MAX_ENTRIES}, but has {k} × {d} (use fewer `features.bits`, or `learning: false`)"),
            ));
        }
        Ok(Tally {
            k,
            d,
            period_days,
            unstored: Unstored {
                fresh: Counts::zeros(k, d),
                marked: None,
            },
            staged: None,
            closed: None,
        })
    }

    /// Variants and slots.
    pub fn shape(&self) -> (usize, usize) {
        (self.k, self.d)
    }

    /// The period's length in days.
    pub fn period_days(&self) -> u32 {
        self.period_days
    }

    /// A decision for variant `arm`, shown now unless deferred (the engine
    /// calls it for a slot; the control plane for an experiment's
    /// assignments).
    pub fn decision(&mut self, arm: usize, exposed: bool) {
        let f = &mut self.unstored.fresh;
        if let Some(n) = f.decisions.get_mut(arm) {
            *n = n.saturating_add(1);
        }
        if exposed {
            self.exposure(arm);
        }
    }

    /// A deferred decision for `arm` was shown (for an experiment: a first
    /// exposure of the unit).
    pub fn exposure(&mut self, arm: usize) {
        if let Some(n) = self.unstored.fresh.exposures.get_mut(arm) {
            *n = n.saturating_add(1);
        }
    }

    /// A decision for `arm` was rewarded `reward` (checked in [0, 1] by the
    /// caller).
    pub fn reward(&mut self, arm: usize, reward: f64) {
        if let Some(r) = self.unstored.fresh.rewards.get_mut(arm) {
            *r += reward;
        }
    }

    /// The learner updated `arm` on `x` with `reward`: X'y and X'X.
    pub(crate) fn observe(&mut self, arm: usize, x: &SparseVec, reward: f64) {
        let d = self.d;
        if d == 0 || arm >= self.k {
            return;
        }
        let f = &mut self.unstored.fresh;
        for (&i, &v) in x.idx.iter().zip(&x.val) {
            let at = arm * d + i as usize;
            if (i as usize) < d {
                f.xy[at] += reward * v;
                f.xx[at] += v * v;
            }
        }
    }

    /// Merge with the stored snapshot, closing the stored period when it is
    /// over; nothing changes until [`commit`](Persisted::commit). Errors:
    /// the stored bytes are foreign, too large or from a newer build; the
    /// slot name or task is invalid (`INVALID_OPTION`); the specification
    /// does not fit this tally (`REPORT_REFUSED`); the result is over
    /// `max_bytes`. A corrupt report section is not an error: it is
    /// started again ([`TallySync::corrupt`]).
    pub fn sync(
        &mut self,
        stored: Option<&[u8]>,
        now_ms: f64,
        max_bytes: usize,
        task: ReportTask<'_>,
    ) -> Result<TallySync> {
        Persisted::sync(self, stored, now_ms, max_bytes, task)
    }

    /// Apply the last sync once its bytes were written (false: none).
    pub fn commit(&mut self) -> bool {
        Persisted::commit(self)
    }

    /// What this tally counted and has not stored yet, as a report's
    /// statistics (a simulation of many devices encodes it directly).
    pub fn counted(&self) -> Stats {
        self.unstored.total().stats()
    }

    /// The report of the period the last committed sync closed, once.
    pub fn take(&mut self) -> Option<Closed> {
        self.closed.take()
    }

    /// Forget what was not stored and any report not taken.
    pub fn reset(&mut self) {
        self.unstored = Unstored {
            fresh: Counts::zeros(self.k, self.d),
            marked: None,
        };
        self.staged = None;
        self.closed = None;
    }
}

/// The first day of the period of `period_days` days holding `now_ms`
/// (days since 1970-01-01 UTC; times before it fall in period 0).
pub fn period_of(now_ms: f64, period_days: u32) -> u32 {
    let day = (now_ms / DAY_MS).floor().max(0.0);
    let days = f64::from(period_days.max(1));
    ((day / days).floor() * days).min(f64::from(u32::MAX)) as u32
}

/// The section name of a slot's or an experiment's reports.
fn section_name(name: &str, owner: Owner) -> Result<String> {
    let prefix = match owner {
        Owner::Slot => "report:",
        Owner::Experiment => "report-ab:",
    };
    crate::store::slot_section(prefix, name)
}

/// A decoded report section.
struct Section {
    period: u32,
    space: String,
    k: usize,
    d: usize,
    counts: Counts,
    ledger: Vec<LedgerEntry>,
    payload: Vec<(u32, u32)>,
}

impl Persisted for Tally {
    type Args<'a> = ReportTask<'a>;
    type Staged = Option<Closed>;
    type Report = TallySync;
    type Journal = Unstored;

    fn parts(&mut self) -> (&mut Option<Option<Closed>>, &mut Unstored) {
        (&mut self.staged, &mut self.unstored)
    }

    fn stage(
        &mut self,
        stored: Option<&[u8]>,
        now_ms: f64,
        max_bytes: usize,
        a: ReportTask<'_>,
    ) -> Result<TallySync> {
        let name = section_name(a.slot, a.owner)?;
        if a.task.is_empty() || a.task.len() > MAX_TASK {
            return Err(Error::option(
                "reports.task",
                text!(
                    "should be 1 to {MAX_TASK} bytes, but is {} bytes",
                    a.task.len()
                ),
            ));
        }
        if (a.spec.variants(), a.spec.slots()) != (self.k, self.d) {
            return Err(Error::ReportRefused {
                kind: Refusal::Spec,
                reason: text!(
                    "the specification is for {} variants and {} slots, the slot has {} and {}",
                    a.spec.variants(),
                    a.spec.slots(),
                    self.k,
                    self.d
                ),
            });
        }
        let mut snap = open(stored, max_bytes)?;
        let mut out = TallySync::default();
        let stored = match snap.read(&name, read_section) {
            Ok(s) => s,
            Err(Error::SnapshotCorrupt { .. }) => {
                out.corrupt = true;
                None
            }
            Err(e) => return Err(e),
        };
        let now = period_of(now_ms, self.period_days);
        let mut period = now;
        let mut counts = self.unstored.total();
        let (mut ledger, mut payload) = (Vec::new(), Vec::new());
        let mut closed = None;
        if let Some(st) = stored {
            ledger = st.ledger;
            payload = st.payload;
            let entry = |outcome, clipped| a.entry(st.period, outcome, clipped);
            let listed = |outcome| lists(&ledger, st.period, outcome, a.task);
            if st.space != a.space || (st.k, st.d) != (self.k, self.d) {
                // Listed once per period: two tabs on two feature spaces
                // would otherwise fill the ledger with these.
                if !st.counts.is_zero() && !listed(Outcome::SpaceChanged) {
                    out.entries.push(entry(Outcome::SpaceChanged, 0));
                }
            } else if st.period >= now {
                // The current period, or the next (another tab's clock is
                // ahead of this one's): kept. Further ahead, a clock is
                // wrong: taken as the current one, so reports go on.
                if st.period <= now.saturating_add(self.period_days) {
                    period = st.period;
                }
                counts.add(&st.counts);
            } else if !a.close {
                // Over, but this sync may not close it: this tab's additions
                // join the ended period, which a sync that may close it
                // will report (a page being left writes no other time).
                out.held = true;
                period = st.period;
                counts.add(&st.counts);
            } else if !st.counts.is_zero() {
                if listed(Outcome::Reported) {
                    // Listed once, however often the period comes back.
                    if !listed(Outcome::Duplicate) {
                        out.entries.push(entry(Outcome::Duplicate, 0));
                    }
                    out.refused = Some(Error::ReportRefused {
                        kind: Refusal::Duplicate,
                        reason: text!(
                            "the ledger lists the period of day {} of task `{}` as reported",
                            st.period,
                            a.task
                        ),
                    });
                } else {
                    match encode(a.spec, &st.counts.stats()) {
                        Ok(m) => {
                            out.entries.push(entry(Outcome::Reported, mask(&m.clipped)));
                            payload = nonzero(&m.entries);
                            closed = Some(Closed {
                                period: st.period,
                                measurement: m.entries,
                                clipped: m.clipped,
                            });
                        }
                        Err(e) => {
                            out.entries.push(entry(Outcome::NonFinite, 0));
                            out.refused = Some(e);
                        }
                    }
                }
            }
        }
        if !counts.is_finite() {
            // Sums that overflowed (hostile feature values): never written,
            // never reported; the ledger says so.
            out.entries.push(a.entry(period, Outcome::NonFinite, 0));
            out.refused = Some(Error::ReportRefused {
                kind: Refusal::NonFinite,
                reason: text!(
                    "a sum of this period's statistics is not finite; the period is dropped"
                ),
            });
            counts = Counts::zeros(self.k, self.d);
        }
        ledger.extend(out.entries.iter().cloned());
        // Over the cap, the oldest entry that is not a report goes first:
        // the reports are what keeps a period from being reported twice.
        while ledger.len() > MAX_LEDGER {
            let at = ledger
                .iter()
                .position(|e| e.outcome != Outcome::Reported)
                .unwrap_or(0);
            ledger.remove(at);
        }
        if !ledger.iter().any(|e| e.outcome == Outcome::Reported) {
            payload.clear();
        }
        let body = write_section(period, a.space, &counts, &ledger, &payload);
        snap.set_section(&name, body);
        out.bytes = snap.encode(max_bytes)?;
        self.staged = Some(closed);
        Ok(out)
    }

    fn apply(&mut self, closed: Option<Closed>) {
        if closed.is_some() {
            self.closed = closed;
        }
        self.unstored.drain_marked();
    }
}

impl ReportTask<'_> {
    /// The ledger entry of `outcome` for the period starting on day `period`.
    fn entry(&self, period: u32, outcome: Outcome, clipped: u8) -> LedgerEntry {
        LedgerEntry {
            period,
            task: self.task.to_owned(),
            outcome,
            clipped,
            length: self.spec.len() as u32,
            bits: self.spec.bits() as u8,
            scale: self.spec.scale(),
            bounds: self.spec.bounds(),
        }
    }
}

/// Whether `ledger` lists `outcome` for `task`'s period starting on day `period`.
fn lists(ledger: &[LedgerEntry], period: u32, outcome: Outcome, task: &str) -> bool {
    ledger
        .iter()
        .any(|e| (e.period, e.outcome, e.task.as_str()) == (period, outcome, task))
}

/// The clipped groups as a mask: bit `i` for [`GROUPS`]`[i]`.
pub fn mask(groups: &[Group]) -> u8 {
    groups.iter().fold(0, |m, g| m | 1 << *g as u8)
}

/// The nonzero entries of the measurement `m`, with their indices, as the
/// section stores them (u32: every entry is below `2^MAX_BITS`).
fn nonzero(m: &[u64]) -> Vec<(u32, u32)> {
    const _: () = assert!(MAX_BITS <= 32);
    let mut out = Vec::new();
    for (i, x) in m.iter().enumerate() {
        if *x != 0 {
            out.push((i as u32, *x as u32));
        }
    }
    out
}

fn write_section(
    period: u32,
    space: &str,
    c: &Counts,
    ledger: &[LedgerEntry],
    payload: &[(u32, u32)],
) -> Vec<u8> {
    let (k, d) = (c.decisions.len(), c.xy.len() / c.decisions.len().max(1));
    let mut w = vec![LAYOUT];
    put_u32(&mut w, period);
    put_str(&mut w, space);
    put_u32(&mut w, k as u32);
    put_u32(&mut w, d as u32);
    for a in 0..k {
        put_u32(&mut w, c.decisions[a]);
        put_u32(&mut w, c.exposures[a]);
        put_f64(&mut w, c.rewards[a]);
        let row = a * d..(a + 1) * d;
        let touched: Vec<usize> = row
            .clone()
            .filter(|i| c.xy[*i] != 0.0 || c.xx[*i] != 0.0)
            .collect();
        put_u32(&mut w, touched.len() as u32);
        for i in &touched {
            put_u32(&mut w, (i - row.start) as u32);
        }
        for i in &touched {
            put_f64(&mut w, c.xy[*i]);
        }
        for i in &touched {
            put_f64(&mut w, c.xx[*i]);
        }
    }
    w.push(ledger.len() as u8);
    for e in ledger {
        put_u32(&mut w, e.period);
        put_str(&mut w, &e.task);
        w.push(e.outcome as u8);
        w.push(e.clipped);
        put_u32(&mut w, e.length);
        w.push(e.bits);
        put_u32(&mut w, e.scale);
        put_u32(&mut w, e.bounds.decisions);
        put_u32(&mut w, e.bounds.exposures);
        put_f64(&mut w, e.bounds.rewards);
        put_f64(&mut w, e.bounds.xy);
        put_f64(&mut w, e.bounds.xx);
    }
    put_u32(&mut w, payload.len() as u32);
    for (i, x) in payload {
        put_u32(&mut w, *i);
        put_u32(&mut w, *x);
    }
    w
}

/// Read a report section, checking everything a writer guarantees.
fn read_section(body: &[u8]) -> Result<Section> {
    let mut r = Reader::new(body, "report section");
    let layout = r.u8()?;
    if layout != LAYOUT {
        return Err(if layout > LAYOUT {
            Error::SnapshotVersion {
                found: crate::error::figure(u32::from(layout)),
                supported: crate::error::figure(u32::from(LAYOUT)),
            }
        } else {
            corrupt(text!("layout {layout} is not one any build writes"))
        });
    }
    let period = r.u32()?;
    let space = core::str::from_utf8(r.bytes16()?)
        .map_err(|_| corrupt(text!("the feature space is not UTF-8")))?
        .to_owned();
    let k = r.u32()? as usize;
    let d = r.u32()? as usize;
    if !(1..=super::MAX_VARIANTS).contains(&k)
        || (d != 0 && !d.is_power_of_two())
        || k.saturating_mul(d) > MAX_ENTRIES
    {
        return Err(corrupt(text!(
            "{k} variants over {d} slots is not a shape any build writes"
        )));
    }
    let mut c = Counts::zeros(k, d);
    for a in 0..k {
        c.decisions[a] = r.u32()?;
        c.exposures[a] = r.u32()?;
        c.rewards[a] = r.f64()?;
        let n = r.count(20)?;
        if n > d {
            return Err(corrupt(text!("variant {a} touches {n} of {d} slots")));
        }
        let mut idx = Vec::with_capacity(n);
        for _ in 0..n {
            let i = r.u32()? as usize;
            if i >= d || idx.last().is_some_and(|p| *p >= i) {
                return Err(corrupt(text!(
                    "variant {a}: slot {i} is out of order or range"
                )));
            }
            idx.push(i);
        }
        for (dst, src) in [(&mut c.xy, 0), (&mut c.xx, 1)] {
            for &i in &idx {
                let v = r.f64()?;
                if src == 1 && v < 0.0 {
                    return Err(corrupt(text!("variant {a}: a negative X'X diagonal")));
                }
                dst[a * d + i] = v;
            }
        }
        if c.rewards[a] < 0.0 {
            return Err(corrupt(text!("variant {a}: a negative reward sum")));
        }
    }
    let n = r.u8()? as usize;
    if n > MAX_LEDGER {
        return Err(corrupt(text!("{n} ledger entries, over {MAX_LEDGER}")));
    }
    let mut ledger = Vec::with_capacity(n);
    for _ in 0..n {
        let period = r.u32()?;
        let task = core::str::from_utf8(r.bytes16()?)
            .ok()
            .filter(|t| !t.is_empty() && t.len() <= MAX_TASK)
            .ok_or_else(|| corrupt(text!("a ledger task is not 1 to {MAX_TASK} bytes of UTF-8")))?
            .to_owned();
        let outcome = Outcome::of(r.u8()?)
            .ok_or_else(|| corrupt(text!("a ledger outcome is not one any build writes")))?;
        let clipped = r.u8()?;
        let length = r.u32()?;
        let bits = r.u8()?;
        let scale = r.u32()?;
        let bounds = Bounds {
            decisions: r.u32()?,
            exposures: r.u32()?,
            rewards: r.f64()?,
            xy: r.f64()?,
            xx: r.f64()?,
        };
        if clipped >> GROUPS.len() != 0
            || bits as usize > MAX_BITS
            || bits == 0
            || !(1..=MAX_LENGTH).contains(&length)
            || scale == 0
            || bounds.decisions == 0
            || bounds.exposures == 0
            || !(bounds.rewards > 0.0 && bounds.xy > 0.0 && bounds.xx > 0.0)
        {
            return Err(corrupt(text!(
                "a ledger entry's groups or bits are out of range"
            )));
        }
        ledger.push(LedgerEntry {
            period,
            task,
            outcome,
            clipped,
            length,
            bits,
            scale,
            bounds,
        });
    }
    let m = r.count(8)?;
    let last = ledger.iter().rev().find(|e| e.outcome == Outcome::Reported);
    let mut payload = Vec::with_capacity(m);
    for _ in 0..m {
        let (i, x) = (r.u32()?, r.u32()?);
        let fits = last.is_some_and(|e| {
            i < e.length && (e.bits as usize >= 32 || u64::from(x) < 1u64 << e.bits)
        });
        if x == 0 || !fits || payload.last().is_some_and(|(p, _)| *p >= i) {
            return Err(corrupt(text!(
                "the last report's payload does not fit its ledger entry"
            )));
        }
        payload.push((i, x));
    }
    r.finish()?;
    Ok(Section {
        period,
        space,
        k,
        d,
        counts: c,
        ledger,
        payload,
    })
}

/// The ledger of slot (or experiment) `slot` in `snap`, oldest first, and the payload of
/// its newest `Reported` entry (the whole measurement, zeros included);
/// `None` when the slot has no report section. For the audit.
pub fn ledger(
    snap: &Snapshot,
    slot: &str,
    owner: Owner,
) -> Result<Option<(Vec<LedgerEntry>, Vec<u64>)>> {
    let name = section_name(slot, owner)?;
    Ok(snap.read(&name, read_section)?.map(|s| {
        let len = s
            .ledger
            .iter()
            .rev()
            .find(|e| e.outcome == Outcome::Reported)
            .map_or(0, |e| e.length as usize);
        let mut m = vec![0u64; len];
        for (i, x) in s.payload {
            m[i as usize] = u64::from(x);
        }
        (s.ledger, m)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_on_their_first_day() {
        assert_eq!(period_of(0.0, 1), 0);
        assert_eq!(period_of(DAY_MS * 10.5, 1), 10);
        assert_eq!(period_of(DAY_MS * 10.5, 7), 7);
        assert_eq!(period_of(DAY_MS * 13.99, 7), 7);
        assert_eq!(period_of(DAY_MS * 14.0, 7), 14);
        assert_eq!(period_of(-5.0, 1), 0);
    }

    #[test]
    fn sums_that_overflow_are_dropped_and_listed() {
        let b = Bounds {
            decisions: 20,
            exposures: 20,
            rewards: 20.0,
            xy: 40.0,
            xx: 20.0,
        };
        let spec = Spec::new(2, 4, 256, b, None).unwrap();
        let mut t = Tally::new(2, 4, 1).unwrap();
        t.decision(1, true);
        // As adding up hostile feature values would leave it.
        t.unstored.fresh.xx[5] = f64::INFINITY;
        let task = ReportTask {
            slot: "s",
            owner: Owner::Slot,
            task: "t",
            spec: &spec,
            space: "f1-00000001",
            close: true,
        };
        let r = t.sync(None, 0.0, 1 << 16, task).unwrap();
        assert_eq!(r.entries.len(), 1);
        assert_eq!(r.entries[0].outcome, Outcome::NonFinite);
        assert_eq!(r.refused.as_ref().map(|e| e.code()), Some("REPORT_REFUSED"));
        assert!(t.commit());
        // What was written reads back: the ledger entry, and no statistics.
        let snap = Snapshot::decode(&r.bytes, 1 << 16).unwrap();
        let (l, last) = ledger(&snap, "s", Owner::Slot).unwrap().unwrap();
        assert_eq!(
            (l.len(), l[0].outcome, last.len()),
            (1, Outcome::NonFinite, 0)
        );
        let st = snap.read("report:s", read_section).unwrap().unwrap();
        assert!(st.counts.is_zero());
    }

    #[test]
    fn groups_fit_the_clipped_mask() {
        assert!(GROUPS.len() <= 8);
        assert_eq!(GROUPS[Group::Xx as usize], Group::Xx);
    }
}
