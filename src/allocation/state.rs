//! The allocator: experiments plus the state they keep on the device, its
//! snapshot section, and the merge of that section across tabs.

use crate::prelude::*;

use super::assign::{eligibility, variant, Eligibility, Reason};
use super::config::{is_name, Allocation, Experiment, Experiments, Names, MAX_VARIANTS, NO_NAME};
use super::thompson;
use super::Bytes;
use crate::bandit::explore;
use crate::error::{Error, Result};
use crate::prim::clock::check_now;
use crate::prim::hash::murmur3_32;
use crate::prim::journal::{Journal, Marked, FOLD_OLDEST};
use crate::prim::rng::{Rng, MAX_SEED};
use crate::prim::vec::remove;
use crate::store::sync::{open, Persisted};
use crate::store::{corrupt, put_f64, put_u16, put_u32, put_u64, Snapshot};

// The kinds of record in the state (see `Rec`).
const EXPOSURE: u8 = 0;
const BANDIT: u8 = 1;
const COUNT: u8 = 2;
const SETTLED: u8 = 3;

/// The snapshot section holding the allocator's state.
pub const SECTION: &str = "experiments";
const SECTION_VERSION: u16 = 1;
/// Most exposures kept; the oldest go first (a device has one unit, or a
/// few: this bounds the log, not the experiments).
const MAX_EXPOSURES: usize = 512;
/// Settled trial seeds remembered per bandit, so a trial settled in two
/// tabs counts once.
const MAX_SETTLED: usize = 32;
/// Most bandit entries kept (configured or not).
const MAX_BANDITS: usize = 256;
/// Longest unit key, in bytes.
const MAX_UNIT: usize = 256;
/// Settlements kept unstored (storage failing, or consent `none` with a
/// site id, for that long). Beyond, the oldest moves into this page's own
/// counts: it keeps counting here, and reaches storage only if nothing
/// stored has an entry of its bandit when this page next writes (never
/// twice).
pub(crate) const MAX_JOURNAL: usize = 1024;

/// Where the unit key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitSource {
    /// None: consent `none` and no id from the site. Experiments serve their fallback.
    None,
    /// A random seed kept on this device (no identifier).
    Device,
    /// An id the site supplied.
    Site,
}

impl UnitSource {
    /// The name used in results and the audit.
    pub fn name(self) -> &'static str {
        match self {
            UnitSource::None => "none",
            UnitSource::Device => "device",
            UnitSource::Site => "site",
        }
    }
}

/// One logged exposure: this unit saw this variant of this experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposure {
    /// MurmurHash3 of the unit key, so the log deduplicates per unit
    /// without keeping a site-supplied id.
    pub unit_tag: u32,
    /// The experiment's key.
    pub experiment: String,
    /// The variant's id.
    pub variant: String,
    /// When it was first logged, in ms.
    pub at: f64,
}

/// The result of [`Allocator::assign`].
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The variant served (the fallback when not in the experiment).
    pub variant: usize,
    /// Whether the unit is in the experiment.
    pub in_experiment: bool,
    /// Why, or why not.
    pub reason: Reason,
    /// The probability with which this variant was assigned: its weight
    /// under fixed weights, the trial's probability under a bandit; 1 for
    /// the fallback of a unit outside the experiment.
    pub probability: f64,
    /// The unit's GrowthBook hash position (GrowthBook hash versions only).
    pub bucket: Option<f64>,
    /// The bandit trial's seed, which replays its draw.
    pub seed: Option<u64>,
    /// True the first time this unit is exposed to this variant (log it).
    pub new_exposure: bool,
}

/// One record of the device state: every table (exposures, bandits with
/// their trial, counts, settled seeds, and the journal of settlements) is
/// a list of these, so each is plain data handled by the same few lines.
/// Names are symbols of the experiments' [`Names`]. Fields by kind:
///
/// | kind | key | id | flag | seed | x | y | z |
/// |---|---|---|---|---|---|---|---|
/// | `EXPOSURE` | experiment | variant | | unit tag | at | | |
/// | `BANDIT` | experiment | trial's variant | trial: 0 none, 1 running, 2 settled | trial's | its probability | started | expires |
/// | `COUNT` | bandit | variant | | | successes | failures | |
/// | `SETTLED` | bandit | | | settled trial's | | | |
/// | journal | bandit | variant | | trial's | reward | | |
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Rec {
    kind: u8,
    flag: u8,
    key: u32,
    id: u32,
    seed: u64,
    x: f64,
    y: f64,
    z: f64,
}

impl Rec {
    /// Whether `self` and `other` are entries of the same thing: one
    /// exposure of a unit to a variant, one bandit, one variant's counts,
    /// one settled seed.
    fn same(&self, other: &Rec) -> bool {
        self.kind == other.kind
            && self.key == other.key
            && match self.kind {
                EXPOSURE => (self.id, self.seed) == (other.id, other.seed),
                COUNT => self.id == other.id,
                SETTLED => self.seed == other.seed,
                _ => true,
            }
    }
}

/// A record of `kind` for `key` and `id`, its other fields 0.
#[inline(never)]
fn rec(kind: u8, key: u32, id: u32) -> Rec {
    Rec {
        kind,
        key,
        id,
        ..Rec::default()
    }
}

/// The entry of `recs` that is the same as `probe`.
fn find(recs: &[Rec], probe: &Rec) -> Option<usize> {
    recs.iter().position(|r| r.same(probe))
}

/// The entry the same as `probe`, added as `probe` when there is none.
fn entry(recs: &mut Vec<Rec>, probe: Rec) -> &mut Rec {
    let i = match find(recs, &probe) {
        Some(i) => i,
        None => {
            recs.push(probe);
            recs.len() - 1
        }
    };
    &mut recs[i]
}

/// How many records of `kind` (and of bandit `key`, unless None) there
/// are, and where the first is.
fn tally(recs: &[Rec], kind: u8, key: Option<u32>) -> (usize, usize) {
    let (mut n, mut first) = (0, 0);
    for (i, r) in recs.iter().enumerate() {
        if r.kind == kind && key.map_or(true, |k| r.key == k) {
            if n == 0 {
                first = i;
            }
            n += 1;
        }
    }
    (n, first)
}

/// Drop the exposures of unit `tag` and those logged before `before`.
fn drop_exposures(recs: &mut Vec<Rec>, tag: u64, before: f64) {
    let mut i = 0;
    while let Some(r) = recs.get(i) {
        if r.kind != EXPOSURE || (r.seed != tag && r.x >= before) {
            i += 1;
        } else {
            remove(recs, i);
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct State {
    /// The device seed; empty when there is none.
    unit: Vec<u8>,
    /// In the order stored: exposures; bandits; per bandit its counts and
    /// its settled seeds (at most [`MAX_SETTLED`], oldest first).
    recs: Vec<Rec>,
}

/// Experiments and their device state. See the module docs.
#[derive(Debug, Clone)]
pub struct Allocator {
    /// The experiments, and the names the state refers to.
    experiments: Experiments,
    rng: Rng,
    /// The id the site supplied; empty when there is none.
    site_unit: Vec<u8>,
    /// Stored (or adopted) state, plus this page's exposures, device unit
    /// and trials; counts are the stored ones only.
    state: State,
    /// Settlements made here and not yet stored; at most [`MAX_JOURNAL`],
    /// past which the oldest counts in `state`. A commit drops those its
    /// sync saw: stored (learning), or never to be (consent `functional`,
    /// which stores no counts).
    journal: Journal<Vec<Rec>, FOLD_OLDEST>,
    /// A merged state waiting for `commit`.
    staged: Option<State>,
    /// A first visit's settlements (see [`Allocator::first`]): it keeps no
    /// journal, its settlements count at once.
    settled: usize,
    /// Native builds: whether this allocator serves a first visit only
    /// (the .wasm builds fix it: see [`Allocator::first`]).
    first: bool,
}

fn as_text(b: &[u8]) -> Option<&str> {
    crate::prim::utf8::str(b).filter(|s| !s.is_empty())
}

impl Allocator {
    /// An allocator for `experiments`; trial seeds come from `seed`.
    pub fn new(experiments: Experiments, seed: u64) -> Allocator {
        Allocator {
            experiments,
            rng: Rng::new(seed),
            site_unit: Vec::new(),
            state: State::default(),
            journal: Journal::new(MAX_JOURNAL),
            staged: None,
            settled: 0,
            first: false,
        }
    }

    /// An allocator for a first visit, as the first-decision module's:
    /// nothing is stored and it is never synced, restored or committed.
    /// It computes what [`Allocator::new`] computes on fresh state (every
    /// assignment, probability, seed and count; see tests/first_allocator.rs), with
    /// less code: its settlements count at once instead of waiting in a
    /// journal for storage. For tests of the first-decision module.
    #[doc(hidden)]
    pub fn first_visit(experiments: Experiments, seed: u64) -> Allocator {
        Allocator {
            first: true,
            ..Allocator::new(experiments, seed)
        }
    }

    /// Whether this allocator serves a first visit (nothing stored, never
    /// synced): always in the first-decision module, never in the full
    /// engine, natively as constructed. A first visit's settlement counts
    /// at once: the full engine's journal, folded into the stored counts at
    /// a sync (or into its own past the cap), adds the same rewards in the
    /// same order onto nothing, so the sums are the same bits (both start
    /// from zero; counts are never negative). The full engine's fold skips
    /// a seed settled twice, which only a repeated 53-bit trial seed could
    /// cause.
    #[inline(always)]
    fn first(&self) -> bool {
        if cfg!(feature = "full") {
            false
        } else if cfg!(feature = "first") {
            true
        } else {
            self.first
        }
    }

    /// The configured experiments.
    pub fn experiments(&self) -> &Experiments {
        &self.experiments
    }

    /// Replace the configured experiments; device state is kept (bandit
    /// counts are matched by experiment key and variant id).
    pub fn set_experiments(&mut self, mut experiments: Experiments) {
        // Their names become symbols of the names the state refers to.
        let (from, names) = (&experiments.names, &mut self.experiments.names);
        let mut sym = |s: &mut u32| *s = names.sym(from.get(*s));
        for e in &mut experiments.list {
            sym(&mut e.key);
            sym(&mut e.seed);
            for v in &mut e.variants {
                sym(&mut v.id);
            }
            if e.namespace.name != NO_NAME {
                sym(&mut e.namespace.name);
            }
        }
        experiments.names = core::mem::take(&mut self.experiments.names);
        self.experiments = experiments;
    }

    /// Use an id the site supplies as the unit key (None: the device seed).
    pub fn set_site_unit(&mut self, unit: Option<&str>) -> Result<()> {
        self.site_unit_bytes(unit.map(str::as_bytes))
    }

    /// [`set_site_unit`](Self::set_site_unit) with the id's UTF-8 bytes.
    pub(crate) fn site_unit_bytes(&mut self, unit: Option<&[u8]>) -> Result<()> {
        let u = unit.unwrap_or_default();
        if unit.is_some() {
            check_unit(u)?;
        }
        self.site_unit = u.to_vec();
        Ok(())
    }

    /// Set the device seed if there is none yet (the boundary draws it
    /// from the platform's CSPRNG). Returns whether it was set.
    pub fn set_device_unit(&mut self, unit: &str) -> Result<bool> {
        self.device_unit_bytes(unit.as_bytes(), false)
    }

    /// Use `unit` as the device seed, replacing any other (the stored
    /// device seed is kept under its own key, written the moment it is
    /// drawn, and wins over the copy in the allocator's section).
    pub fn use_device_unit(&mut self, unit: &str) -> Result<()> {
        self.device_unit_bytes(unit.as_bytes(), true).map(drop)
    }

    /// The device seed's UTF-8 bytes: with `force` replacing any other,
    /// else only if there is none yet. Whether it was set.
    pub(crate) fn device_unit_bytes(&mut self, unit: &[u8], force: bool) -> Result<bool> {
        check_unit(unit)?;
        let set = force || self.state.unit.is_empty();
        if set {
            self.state.unit = unit.to_vec();
        }
        Ok(set)
    }

    /// The device seed, if any.
    pub fn device_unit(&self) -> Option<&str> {
        as_text(&self.state.unit)
    }

    /// The device seed's bytes (empty: none).
    #[cfg_attr(not(feature = "first"), allow(dead_code))]
    pub(crate) fn device_bytes(&self) -> &[u8] {
        &self.state.unit
    }

    /// Forget the device seed and the exposures logged under it (consent
    /// moved to `none`); bandit state is kept in memory.
    pub fn drop_device_unit(&mut self) {
        let st = &mut self.state;
        if !st.unit.is_empty() {
            let tag = murmur3_32(&st.unit, 0) as u64;
            drop_exposures(&mut st.recs, tag, f64::NEG_INFINITY);
            st.unit.clear();
        }
    }

    /// The unit key in use and its source.
    pub fn unit(&self) -> (Option<&str>, UnitSource) {
        match (as_text(&self.site_unit), as_text(&self.state.unit)) {
            (Some(u), _) => (Some(u), UnitSource::Site),
            (None, Some(u)) => (Some(u), UnitSource::Device),
            (None, None) => (None, UnitSource::None),
        }
    }

    /// The unit key in use (empty: none).
    fn unit_bytes(&self) -> &[u8] {
        if self.site_unit.is_empty() {
            &self.state.unit
        } else {
            &self.site_unit
        }
    }

    /// Assign the unit to a variant of experiment `index` (see
    /// [`Experiments::index`]), log a first exposure, and, for a bandit,
    /// start a trial when none is running. `targeted` says whether the
    /// experiment's targeting conditions hold (the caller evaluates them).
    pub fn assign(&mut self, index: usize, targeted: bool, now_ms: f64) -> Result<Assignment> {
        let mut a = Assignment {
            variant: 0,
            in_experiment: false,
            reason: Reason::NoUnit,
            probability: 1.0,
            bucket: None,
            seed: None,
            new_exposure: false,
        };
        self.assign_into(index, targeted, now_ms, &mut a)?;
        Ok(a)
    }

    /// [`assign`](Self::assign) into `a`, whose fields are those of a unit
    /// outside the experiment (but its fallback) and without a unit.
    fn assign_into(
        &mut self,
        index: usize,
        targeted: bool,
        now_ms: f64,
        a: &mut Assignment,
    ) -> Result<()> {
        check_now(now_ms)?;
        let Some(e) = self.experiments.list.get(index) else {
            return Err(unknown(index));
        };
        a.variant = e.fallback;
        let unit = self.unit_bytes();
        if unit.is_empty() {
            return Ok(());
        }
        match eligibility(e, &self.experiments.names, unit, targeted) {
            Eligibility::Out(reason) => {
                a.reason = reason;
                return Ok(());
            }
            Eligibility::In(bucket) => a.bucket = bucket,
        }
        a.reason = Reason::Coverage;
        let mut x = Rec {
            seed: murmur3_32(unit, 0) as u64,
            x: now_ms,
            ..rec(EXPOSURE, e.key, 0)
        };
        (a.variant, x.id, a.probability) = match e.allocation {
            Allocation::Weights => match variant(e, unit, a.bucket) {
                Some(v) => v,
                None => return Ok(()),
            },
            Allocation::Thompson {
                min_probability,
                samples,
                window_ms,
            } => {
                let (v, seed) = self.trial(index, now_ms, min_probability, samples, window_ms);
                a.seed = Some(seed);
                v
            }
        };
        a.in_experiment = true;
        a.reason = Reason::Assigned;
        let recs = &mut self.state.recs;
        if find(recs, &x).is_none() {
            let (n, first) = tally(recs, EXPOSURE, None);
            if n >= MAX_EXPOSURES {
                remove(recs, first);
            }
            recs.push(x);
            a.new_exposure = true;
        }
        Ok(())
    }

    /// The running trial of bandit `index`: ((variant, its id's symbol,
    /// probability), seed). When none runs, a trial that ran out unrewarded
    /// is journaled as a failure and the next one is drawn from the counts
    /// that include it; the new trial runs for `window_ms`.
    fn trial(
        &mut self,
        index: usize,
        now_ms: f64,
        min_p: f64,
        samples: u32,
        window_ms: f64,
    ) -> ((usize, u32, f64), u64) {
        let Some(e) = self.experiments.list.get(index) else {
            return ((0, 0, 1.0), 0);
        };
        let bandit = rec(BANDIT, e.key, 0);
        let b = entry(&mut self.state.recs, bandit);
        let t = *b;
        if t.flag > 0 {
            let i = e.variants.iter().position(|v| v.id == t.id);
            if let Some(i) = i.filter(|_| now_ms < t.z) {
                return ((i, t.id, t.x), t.seed);
            }
            b.flag = 0;
            if t.flag == 1 && i.is_some() {
                self.settle(&t, 0.0);
            }
        }
        let Some(e) = self.experiments.list.get(index) else {
            return ((0, 0, 1.0), 0);
        };
        // Beta parameters per variant: 1 + prior + device counts.
        let mut params = self.variant_counts(e);
        for (i, v) in e.variants.iter().enumerate() {
            if let Some([a, b]) = params.get_mut(2 * i..2 * i + 2) {
                (*a, *b) = (1.0 + v.prior.0 + *a, 1.0 + v.prior.1 + *b);
            }
        }
        let seed = self.rng.next_seed();
        // The served distribution for a trial with `seed` and its sample:
        // replaying a trial from its seed and the counts gives the same result.
        let mut rng = Rng::new(seed);
        let mut pmf = thompson::pmf(&params, samples, &mut rng);
        explore::floor(&mut pmf, min_p);
        let (i, p) = explore::sample(&pmf, rng.next_f64());
        let id = e.variants.get(i).map_or(0, |v| v.id);
        *entry(&mut self.state.recs, bandit) = Rec {
            flag: 1,
            id,
            seed,
            x: p,
            y: now_ms,
            z: now_ms + window_ms,
            ..bandit
        };
        ((i, id, p), seed)
    }

    /// Device-learned (successes, failures) per variant of bandit `index`,
    /// stored and not yet stored (empty for a fixed-weight experiment).
    pub fn bandit_counts(&self, index: usize) -> Result<Vec<(f64, f64)>> {
        let c = self.counts(index)?;
        Ok(c.chunks_exact(2).map(|c| (c[0], c[1])).collect())
    }

    /// [`bandit_counts`](Self::bandit_counts), two numbers a variant.
    pub(crate) fn counts(&self, index: usize) -> Result<Vec<f64>> {
        let Some(e) = self.experiments.list.get(index) else {
            return Err(unknown(index));
        };
        Ok(match e.allocation {
            Allocation::Thompson { .. } => self.variant_counts(e),
            Allocation::Weights => Vec::new(),
        })
    }

    /// Reward the running trial of bandit experiment `index` with `reward`
    /// in [0, 1] (1: converted). Errors: `INVALID_REWARD`;
    /// `UNKNOWN_DECISION` when no trial runs (not a bandit, or never
    /// assigned); `DECISION_EXPIRED` after its window; `DUPLICATE_REWARD`.
    pub fn reward(&mut self, index: usize, reward: f64, now_ms: f64) -> Result<()> {
        check_now(now_ms)?;
        if !(0.0..=1.0).contains(&reward) {
            return Err(Error::InvalidReward {
                value: crate::error::figure(reward),
            });
        }
        let Some(e) = self.experiments.list.get(index) else {
            return Err(unknown(index));
        };
        let id = || text!("{}/trial", self.experiments.names.text(e.key));
        let bandit = rec(BANDIT, e.key, 0);
        let t = match e.allocation {
            Allocation::Thompson { .. } => {
                let i = find(&self.state.recs, &bandit);
                i.and_then(|i| self.state.recs.get_mut(i))
            }
            Allocation::Weights => None,
        };
        let Some(t) = t.filter(|t| t.flag > 0) else {
            return Err(Error::UnknownDecision { id: id() });
        };
        if now_ms >= t.z {
            return Err(Error::DecisionExpired { id: id() });
        }
        if t.flag == 2 {
            return Err(Error::DuplicateReward { id: id() });
        }
        t.flag = 2;
        let t = *t;
        self.settle(&t, reward);
        Ok(())
    }

    /// Device-learned successes and failures of each variant of `e` in
    /// turn (two numbers a variant): the stored counts plus the settlements
    /// not yet stored.
    fn variant_counts(&self, e: &Experiment) -> Vec<f64> {
        let journal = if self.first() {
            &[]
        } else {
            &self.journal.entries()[..]
        };
        state_counts(e, &self.state, journal)
    }

    /// Settle `trial` (a bandit's entry) with `reward`: journaled, or on
    /// a first visit counted at once (see [`Allocator::first`]).
    fn settle(&mut self, trial: &Rec, reward: f64) {
        let s = Rec {
            x: reward,
            ..*trial
        };
        if self.first() {
            count(&mut self.state.recs, &s);
            self.settled += 1;
        } else {
            // A full journal moves its oldest entry into the own counts.
            if let Some(old) = self.journal.push(s) {
                fold(&mut self.state, &old);
            }
        }
    }

    /// The exposure log (this page's and the stored ones).
    pub fn exposures(&self) -> Vec<Exposure> {
        let names = &self.experiments.names;
        let log = self.state.recs.iter().filter(|r| r.kind == EXPOSURE);
        log.map(|e| Exposure {
            unit_tag: e.seed as u32,
            experiment: names.text(e.key).into(),
            variant: names.text(e.id).into(),
            at: e.x,
        })
        .collect()
    }

    /// The exposure log as lines of experiment, a tab and variant; their
    /// times go to `at`.
    #[cfg_attr(not(feature = "first"), allow(dead_code))]
    pub(crate) fn exposure_lines(&self, text: &mut Vec<u8>, at: &mut Vec<f64>) {
        let names = &self.experiments.names;
        for e in self.state.recs.iter().filter(|r| r.kind == EXPOSURE) {
            text.extend_from_slice(names.get(e.key));
            text.extend_from_slice(b"\t");
            text.extend_from_slice(names.get(e.id));
            text.extend_from_slice(b"\n");
            at.push(e.x);
        }
    }

    /// Settlements made here and not yet stored.
    pub fn pending(&self) -> usize {
        if self.first() {
            self.settled.min(MAX_JOURNAL)
        } else {
            self.journal.len()
        }
    }

    /// Forget everything: device seed, exposures, bandit counts and trials.
    pub fn reset(&mut self) {
        self.state = State::default();
        // (A first visit's is always empty: it journals nothing.)
        if !self.first() {
            self.journal.reset();
        }
        self.staged = None;
        self.settled = 0;
    }

    /// Merge this page's state with the stored allocator snapshot `stored`
    /// and return the bytes to write; nothing changes until
    /// [`commit`](Allocator::commit). With `learning` false (consent
    /// `functional`) bandit counts are neither written nor folded in: the
    /// unit, exposures and trials are, and the commit drops the settlements
    /// made so far (consent keeps them from ever being stored). Exposures
    /// older than `max_age_ms` are dropped.
    pub fn sync(
        &mut self,
        stored: Option<&[u8]>,
        now_ms: f64,
        max_bytes: usize,
        max_age_ms: f64,
        learning: bool,
    ) -> Result<Vec<u8>> {
        Persisted::sync(self, stored, now_ms, max_bytes, (max_age_ms, learning))
    }

    /// Apply the last [`sync`](Allocator::sync) once its bytes were written.
    /// Returns false, changing nothing, when there is nothing to commit.
    pub fn commit(&mut self) -> bool {
        Persisted::commit(self)
    }

    /// Load the stored allocator snapshot on page load (or when consent
    /// allows storage again), keeping this page's own state; nothing is
    /// encoded. On error nothing changes.
    pub fn restore(&mut self, stored: &[u8], now_ms: f64, max_bytes: usize) -> Result<()> {
        check_now(now_ms)?;
        let snap = Snapshot::decode(stored, max_bytes)?;
        let from = self.read_state(&snap)?;
        self.state = merge(from, &self.state, &[]);
        self.staged = None;
        Ok(())
    }

    fn write_state(&self, s: &State, learning: bool) -> Vec<u8> {
        let names = &self.experiments.names;
        let mut w = Vec::new();
        put_u16(&mut w, SECTION_VERSION);
        w.push(!s.unit.is_empty() as u8);
        if !s.unit.is_empty() {
            put_bytes(&mut w, &s.unit);
        }
        let all = &s.recs;
        put_u32(&mut w, tally(all, EXPOSURE, None).0 as u32);
        for e in all {
            if e.kind == EXPOSURE {
                write_fields(&mut w, names, EXPOSURE_FIELDS, e);
            }
        }
        let bandits = tally(all, BANDIT, None).0.min(MAX_BANDITS);
        put_u32(&mut w, bandits as u32);
        for b in all.iter().filter(|r| r.kind == BANDIT).take(bandits) {
            write_fields(&mut w, names, b"k", b);
            let n = if learning {
                tally(all, COUNT, Some(b.key)).0
            } else {
                0
            };
            put_u16(&mut w, n as u16);
            for r in all {
                if learning && r.kind == COUNT && r.key == b.key {
                    write_fields(&mut w, names, COUNT_FIELDS, r);
                }
            }
            w.push(b.flag);
            if b.flag > 0 {
                write_fields(&mut w, names, TRIAL_FIELDS, b);
            }
            put_u16(&mut w, tally(all, SETTLED, Some(b.key)).0 as u16);
            for r in all {
                if r.kind == SETTLED && r.key == b.key {
                    write_fields(&mut w, names, b"s", r);
                }
            }
        }
        w
    }

    /// The state in `snap`'s section, if it has one. On error the names
    /// it added are taken out again.
    fn read_state(&mut self, snap: &Snapshot) -> Result<Option<State>> {
        let names = &mut self.experiments.names;
        let known = names.0.len();
        let r = snap.read(SECTION, |body| read_section(body, names));
        if r.is_err() {
            names.0.truncate(known);
        }
        r
    }
}

impl Persisted for Allocator {
    /// The exposure age kept, and whether consent lets counts be stored.
    type Args<'a> = (f64, bool);
    type Staged = State;
    type Report = Vec<u8>;
    type Journal = Journal<Vec<Rec>, FOLD_OLDEST>;

    fn parts(&mut self) -> (&mut Option<State>, &mut Journal<Vec<Rec>, FOLD_OLDEST>) {
        (&mut self.staged, &mut self.journal)
    }

    fn stage(
        &mut self,
        stored: Option<&[u8]>,
        now_ms: f64,
        max_bytes: usize,
        (max_age_ms, learning): (f64, bool),
    ) -> Result<Vec<u8>> {
        let mut snap = open(stored, max_bytes)?;
        // (An empty snapshot has no state.)
        let from = self.read_state(&snap)?;
        let journal = if learning {
            &self.journal.entries()[..]
        } else {
            &[]
        };
        let mut merged = merge(from, &self.state, journal);
        let oldest = now_ms - max_age_ms;
        // (No exposure is of unit tag u64::MAX: tags are u32s.)
        drop_exposures(&mut merged.recs, u64::MAX, oldest);
        snap.set_section(SECTION, self.write_state(&merged, learning));
        let bytes = snap.encode(max_bytes)?;
        self.staged = Some(merged);
        Ok(bytes)
    }

    /// Keep what happened here since the sync: exposures and trial starts.
    fn apply(&mut self, s: State) {
        self.state = merge(Some(s), &self.state, &[]);
        self.journal.drain_marked();
    }
}

/// The error for experiment `index`, which there is not.
#[inline(never)]
fn unknown(index: usize) -> Error {
    Error::UnknownExperiment {
        key: text!("#{index}"),
    }
}

/// Device-learned successes and failures of each variant of `e` in turn
/// (two numbers a variant): the stored counts plus the settlements not yet
/// stored.
fn state_counts(e: &Experiment, state: &State, journal: &[Rec]) -> Vec<f64> {
    let mut counts = vec![0.0; 2 * e.variants.len()];
    for r in &state.recs {
        if r.kind == COUNT {
            count_in(&mut counts, e, r, r.y);
        }
    }
    for s in journal {
        count_in(&mut counts, e, s, 1.0 - s.x);
    }
    counts
}

/// Add successes `r.x` and `failures` to the counts of the variant `r`
/// names, if it is one of `e`'s.
#[inline(never)]
fn count_in(counts: &mut [f64], e: &Experiment, r: &Rec, failures: f64) {
    if r.key != e.key {
        return;
    }
    if let Some(i) = e.variants.iter().position(|v| v.id == r.id) {
        if let Some([s, f]) = counts.get_mut(2 * i..2 * i + 2) {
            *s += r.x;
            *f += failures;
        }
    }
}

fn check_unit(u: &[u8]) -> Result<()> {
    if u.is_empty() || u.len() > MAX_UNIT {
        return Err(Error::option(
            "unit",
            text!("should be 1 to {MAX_UNIT} bytes, but is {} bytes", u.len()),
        ));
    }
    Ok(())
}

/// Settlement `s` applied to `out`: unless `out` settled its seed already,
/// it counts once and settles the trial it ends.
fn fold(out: &mut State, s: &Rec) {
    let recs = &mut out.recs;
    let seed = Rec {
        seed: s.seed,
        ..rec(SETTLED, s.key, 0)
    };
    // A seed settled there names an entry there: nothing to add then.
    if find(recs, &seed).is_some() {
        return;
    }
    let b = entry(recs, rec(BANDIT, s.key, 0));
    if b.flag > 0 && b.seed == s.seed {
        b.flag = 2;
    }
    recs.push(seed);
    let (n, oldest) = tally(recs, SETTLED, Some(s.key));
    if n > MAX_SETTLED {
        remove(recs, oldest);
    }
    count(recs, s);
}

/// Settlement `s` added to the counts of its variant in `recs`.
fn count(recs: &mut Vec<Rec>, s: &Rec) {
    // Starting from -0 adds the first reward exactly, its sign too.
    let c = entry(
        recs,
        Rec {
            x: -0.0,
            y: -0.0,
            ..rec(COUNT, s.key, s.id)
        },
    );
    c.x += s.x;
    c.y += 1.0 - s.x;
}

/// Stored state `from` (None: nothing stored) merged with this page's
/// `mine`, plus settlements `journal` not yet stored.
///
/// - unit: the stored one wins (the first tab to store a seed names the device);
/// - exposures: the union, per (unit, experiment, variant) the earliest;
/// - bandit counts: stored, or this page's when the key is not stored, plus
///   each settlement whose seed the stored entry has not settled already;
/// - trial: the later one, settled if either copy is.
fn merge(from: Option<State>, mine: &State, journal: &[Rec]) -> State {
    let mut out = from.unwrap_or_default();
    if out.unit.is_empty() {
        out.unit.clone_from(&mine.unit);
    }
    let recs = &mut out.recs;
    for m in &mine.recs {
        if m.kind == EXPOSURE {
            match find(recs, m).and_then(|i| recs.get_mut(i)) {
                Some(x) => x.x = x.x.min(m.x),
                None => recs.push(*m),
            }
        }
    }
    // Over the cap, the oldest go (a linear scan: no sort code in the .wasm).
    while tally(recs, EXPOSURE, None).0 > MAX_EXPOSURES {
        let mut oldest = 0;
        let mut at = f64::INFINITY;
        for (i, e) in recs.iter().enumerate() {
            if e.kind == EXPOSURE && e.x < at {
                (oldest, at) = (i, e.x);
            }
        }
        remove(recs, oldest);
    }
    for m in &mine.recs {
        if m.kind != BANDIT {
            continue;
        }
        match find(recs, m).and_then(|i| recs.get_mut(i)) {
            // Nothing stored for it: what this page believes is stored.
            None => {
                for r in &mine.recs {
                    if r.kind != EXPOSURE && r.key == m.key {
                        recs.push(*r);
                    }
                }
            }
            // The later trial, settled if either copy is.
            Some(s) => {
                if m.flag > 0 {
                    if s.flag == 0 || (s.seed != m.seed && m.y > s.y) {
                        *s = *m;
                    } else if s.seed == m.seed {
                        s.flag = s.flag.max(m.flag);
                    }
                }
            }
        }
    }
    for s in journal {
        fold(&mut out, s);
    }
    out
}

/// A string's bytes: its length (u16), then the bytes.
fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    put_u16(w, b.len() as u16);
    w.extend_from_slice(b);
}

/// Read the `fields` of `x` and add it to `recs`, which must not hold the
/// same entry yet (settled seeds may repeat); where it went.
#[inline(never)]
fn read_rec(
    r: &mut Bytes<'_>,
    names: &mut Names,
    recs: &mut Vec<Rec>,
    mut x: Rec,
    fields: &[u8],
) -> usize {
    read_fields(r, names, fields, &mut x);
    if x.kind != SETTLED && find(recs, &x).is_some() {
        r.fail(text!("an entry repeats"));
    }
    recs.push(x);
    recs.len() - 1
}

// How records are laid out in the section, a letter a field: `t` the
// seed as a u32 (a unit tag), `s` the seed (u64), `k` the key and `i` the
// id (names: a u16 length, then the bytes), `x` `y` `z` finite f64s, `c`
// `d` counts (f64s in [0, 1e12]) into x and y.
const EXPOSURE_FIELDS: &[u8] = b"tkix";
const COUNT_FIELDS: &[u8] = b"icd";
const TRIAL_FIELDS: &[u8] = b"sixyz";

/// Read the `fields` of `rec`; names are added to `names`, and must be
/// what a configuration could hold.
#[inline(never)]
fn read_fields(r: &mut Bytes<'_>, names: &mut Names, fields: &[u8], rec: &mut Rec) {
    for &f in fields {
        if f == b'k' || f == b'i' {
            let b = r.bytes16();
            if !is_name(b) {
                r.fail(text!("it holds an invalid name ({} bytes)", b.len()));
            }
            let sym = names.sym(b);
            if f == b'k' {
                rec.key = sym;
            } else {
                rec.id = sym;
            }
        } else if f == b's' || f == b't' {
            rec.seed = r.uint(if f == b's' { 8 } else { 4 });
        } else {
            let v = r.f64();
            // `c`, `d`: a count; `x`, `y`, `z`: any finite number.
            if !(if f < b'x' {
                (0.0..=1e12).contains(&v)
            } else {
                v.is_finite()
            }) {
                r.fail(text!(
                    "it holds a count out of range or a non-finite number"
                ));
            }
            match f {
                b'x' | b'c' => rec.x = v,
                b'y' | b'd' => rec.y = v,
                _ => rec.z = v,
            }
        }
    }
}

/// Write the `fields` of `rec` (see [`read_fields`]).
#[inline(never)]
fn write_fields(w: &mut Vec<u8>, names: &Names, fields: &[u8], rec: &Rec) {
    for &f in fields {
        match f {
            b't' => put_u32(w, rec.seed as u32),
            b's' => put_u64(w, rec.seed),
            b'k' => put_bytes(w, names.get(rec.key)),
            b'i' => put_bytes(w, names.get(rec.id)),
            b'x' | b'c' => put_f64(w, rec.x),
            b'y' | b'd' => put_f64(w, rec.y),
            _ => put_f64(w, rec.z),
        }
    }
}

/// The state in an `experiments` section body, its names added to
/// `names`. Refused: a newer section version, and everything a
/// configuration or this build could not have written.
fn read_section(body: &[u8], names: &mut Names) -> Result<State> {
    let mut r = Bytes::new(body);
    let v = r.uint(2);
    if body.len() >= 2 && v != SECTION_VERSION as u64 {
        return Err(Error::SnapshotVersion {
            found: crate::error::figure(v as u32),
            supported: crate::error::figure(SECTION_VERSION as u32),
        });
    }
    let mut st = State::default();
    match r.u8() {
        0 => {}
        1 => {
            let u = r.bytes16();
            if u.is_empty() || u.len() > MAX_UNIT || !crate::prim::utf8::is_utf8(u) {
                r.fail(text!("its device unit is empty, too long or not UTF-8"));
            }
            st.unit = u.to_vec();
        }
        f => r.fail(text!("its unit flag is {f}")),
    };
    let recs = &mut st.recs;
    for _ in 0..r.count(4 + 2 + 2 + 8, MAX_EXPOSURES) {
        read_rec(&mut r, names, recs, rec(EXPOSURE, 0, 0), EXPOSURE_FIELDS);
    }
    for _ in 0..r.count(2 + 2 + 1 + 2, MAX_BANDITS) {
        let at = read_rec(&mut r, names, recs, rec(BANDIT, 0, 0), b"k");
        let mut b = recs.get(at).copied().unwrap_or_default();
        let mut k = r.uint(2) as usize;
        if k > MAX_VARIANTS {
            r.fail(text!("a bandit has {k} variants"));
            k = 0;
        }
        for _ in 0..k {
            read_rec(&mut r, names, recs, rec(COUNT, b.key, 0), COUNT_FIELDS);
        }
        b.flag = r.u8();
        if b.flag > 0 {
            read_fields(&mut r, names, TRIAL_FIELDS, &mut b);
            if b.flag > 2 || b.seed > MAX_SEED || !(b.x > 0.0 && b.x <= 1.0) || b.z <= b.y {
                r.fail(text!("a bandit holds an impossible trial"));
            }
        }
        let mut m = r.uint(2) as usize;
        if m > MAX_SETTLED {
            r.fail(text!("a bandit remembers {m} settled trials"));
            m = 0;
        }
        for _ in 0..m {
            read_rec(&mut r, names, recs, rec(SETTLED, b.key, 0), b"s");
        }
        if let Some(x) = recs.get_mut(at) {
            *x = b;
        }
    }
    if r.left() > 0 {
        r.fail(text!("it has {} unread bytes at its end", r.left()));
    }
    match r.failed() {
        None => Ok(st),
        Some(why) => Err(corrupt(why)),
    }
}
