//! The allocator: experiments plus the state they keep on the device, its
//! snapshot section, and the merge of that section across tabs.

use crate::prelude::*;

use super::assign::{eligibility, variant, Eligibility, Reason};
use super::config::{Allocation, Experiment, Experiments};
use super::thompson;
use crate::bandit::explore;
use crate::error::{Error, Result};
use crate::prim::hash::murmur3_32;
use crate::prim::rng::{Rng, MAX_SEED};
use crate::store::{corrupt, put_f64, put_str, put_u16, put_u32, put_u64, Reader, Snapshot};

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

impl Exposure {
    /// Whether this is the exposure of unit `tag` to `variant` of `experiment`.
    fn is(&self, tag: u32, experiment: &str, variant: &str) -> bool {
        self.unit_tag == tag && self.experiment == experiment && self.variant == variant
    }
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

#[derive(Debug, Clone, PartialEq)]
struct Trial {
    seed: u64,
    variant: String,
    probability: f64,
    at: f64,
    expires: f64,
    settled: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Bandit {
    key: String,
    /// Device-learned (successes, failures) per variant id, as stored.
    counts: Vec<(String, f64, f64)>,
    trial: Option<Trial>,
    /// Recently settled trial seeds, oldest first.
    settled: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq)]
struct Settlement {
    key: String,
    seed: u64,
    variant: String,
    reward: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct State {
    unit: Option<String>,
    exposures: Vec<Exposure>,
    bandits: Vec<Bandit>,
}

/// Experiments and their device state. See the module docs.
#[derive(Debug, Clone)]
pub struct Allocator {
    experiments: Experiments,
    rng: Rng,
    site_unit: Option<String>,
    /// Stored (or adopted) state, plus this page's exposures, device unit
    /// and trials; counts are the stored ones only.
    state: State,
    /// Settlements made here and not yet stored.
    journal: Vec<Settlement>,
    /// A merged state waiting for `commit`, with the journal length it holds.
    staged: Option<(State, usize)>,
}

fn unit_tag(unit: &str) -> u32 {
    murmur3_32(unit.as_bytes(), 0)
}

impl Allocator {
    /// An allocator for `experiments`; trial seeds come from `seed`.
    pub fn new(experiments: Experiments, seed: u64) -> Allocator {
        Allocator {
            experiments,
            rng: Rng::new(seed),
            site_unit: None,
            state: State::default(),
            journal: Vec::new(),
            staged: None,
        }
    }

    /// The configured experiments.
    pub fn experiments(&self) -> &Experiments {
        &self.experiments
    }

    /// Replace the configured experiments; device state is kept (bandit
    /// counts are matched by experiment key and variant id).
    pub fn set_experiments(&mut self, experiments: Experiments) {
        self.experiments = experiments;
    }

    /// Use an id the site supplies as the unit key (None: the device seed).
    pub fn set_site_unit(&mut self, unit: Option<&str>) -> Result<()> {
        if let Some(u) = unit {
            check_unit(u, "unit")?;
        }
        self.site_unit = unit.map(str::to_owned);
        Ok(())
    }

    /// Set the device seed if there is none yet (the boundary draws it
    /// from the platform's CSPRNG). Returns whether it was set.
    pub fn set_device_unit(&mut self, unit: &str) -> Result<bool> {
        check_unit(unit, "unit")?;
        if self.state.unit.is_some() {
            return Ok(false);
        }
        self.state.unit = Some(unit.to_owned());
        Ok(true)
    }

    /// Use `unit` as the device seed, replacing any other (the stored
    /// device seed is kept under its own key, written the moment it is
    /// drawn, and wins over the copy in the allocator's section).
    pub fn use_device_unit(&mut self, unit: &str) -> Result<()> {
        check_unit(unit, "unit")?;
        self.state.unit = Some(unit.to_owned());
        Ok(())
    }

    /// The device seed, if any.
    pub fn device_unit(&self) -> Option<&str> {
        self.state.unit.as_deref()
    }

    /// Forget the device seed and the exposures logged under it (consent
    /// moved to `none`); bandit state is kept in memory.
    pub fn drop_device_unit(&mut self) {
        if let Some(u) = self.state.unit.take() {
            let tag = unit_tag(&u);
            self.state.exposures.retain(|e| e.unit_tag != tag);
        }
    }

    /// The unit key in use and its source.
    pub fn unit(&self) -> (Option<&str>, UnitSource) {
        match (&self.site_unit, &self.state.unit) {
            (Some(u), _) => (Some(u), UnitSource::Site),
            (None, Some(u)) => (Some(u), UnitSource::Device),
            (None, None) => (None, UnitSource::None),
        }
    }

    /// Assign the unit to a variant of experiment `index` (see
    /// [`Experiments::index`]), log a first exposure, and, for a bandit,
    /// start a trial when none is running. `targeted` says whether the
    /// experiment's targeting conditions hold (the caller evaluates them).
    pub fn assign(&mut self, index: usize, targeted: bool, now_ms: f64) -> Result<Assignment> {
        crate::prim::clock::check_now(now_ms)?;
        // Borrowed field by field: a bandit trial updates the state while
        // the experiment is read.
        let Allocator {
            experiments,
            rng,
            site_unit,
            state,
            journal,
            ..
        } = self;
        let e = experiment(experiments, index)?;
        let out = |reason| Assignment {
            variant: e.fallback,
            in_experiment: false,
            reason,
            probability: 1.0,
            bucket: None,
            seed: None,
            new_exposure: false,
        };
        let Some(unit) = site_unit.as_deref().or(state.unit.as_deref()) else {
            return Ok(out(Reason::NoUnit));
        };
        let bucket = match eligibility(e, unit, targeted) {
            Eligibility::Out(reason) => return Ok(out(reason)),
            Eligibility::In(bucket) => bucket,
        };
        let tag = unit_tag(unit);
        let mut a = Assignment {
            in_experiment: true,
            reason: Reason::Assigned,
            bucket,
            ..out(Reason::Assigned)
        };
        match &e.allocation {
            Allocation::Weights => match variant(e, unit, bucket) {
                Some(v) => {
                    a.variant = v;
                    a.probability = e.weights[v];
                }
                None => {
                    return Ok(Assignment {
                        bucket,
                        ..out(Reason::Coverage)
                    })
                }
            },
            Allocation::Thompson {
                prior,
                min_probability,
                samples,
                window_ms,
            } => {
                let t = trial(e, state, journal, now_ms, *window_ms, |state, journal| {
                    let (alpha, beta) = posterior(prior, &state_counts(e, state, journal));
                    let seed = rng.next_seed();
                    let (v, p) = draw(&alpha, &beta, *samples, *min_probability, seed);
                    (v, p, seed)
                });
                (a.variant, a.probability, a.seed) = (t.0, t.1, Some(t.2));
            }
        }
        let id = &e.variants[a.variant];
        if !state.exposures.iter().any(|x| x.is(tag, &e.key, id)) {
            if state.exposures.len() >= MAX_EXPOSURES {
                state.exposures.remove(0);
            }
            state.exposures.push(Exposure {
                unit_tag: tag,
                experiment: e.key.clone(),
                variant: id.clone(),
                at: now_ms,
            });
            a.new_exposure = true;
        }
        Ok(a)
    }

    /// Device-learned (successes, failures) per variant of bandit `index`,
    /// stored and not yet stored (empty for a fixed-weight experiment).
    pub fn bandit_counts(&self, index: usize) -> Result<Vec<(f64, f64)>> {
        let e = experiment(&self.experiments, index)?;
        Ok(match e.allocation {
            Allocation::Thompson { .. } => state_counts(e, &self.state, &self.journal),
            Allocation::Weights => Vec::new(),
        })
    }

    /// Reward the running trial of bandit experiment `index` with `reward`
    /// in [0, 1] (1: converted). Errors: `INVALID_REWARD`;
    /// `UNKNOWN_DECISION` when no trial runs (not a bandit, or never
    /// assigned); `DECISION_EXPIRED` after its window; `DUPLICATE_REWARD`.
    pub fn reward(&mut self, index: usize, reward: f64, now_ms: f64) -> Result<()> {
        crate::prim::clock::check_now(now_ms)?;
        if !(0.0..=1.0).contains(&reward) {
            return Err(Error::InvalidReward { value: (reward).into() });
        }
        let e = experiment(&self.experiments, index)?;
        let key = e.key.clone();
        let id = || text!("{key}/trial");
        if !matches!(e.allocation, Allocation::Thompson { .. }) {
            return Err(Error::UnknownDecision {
                id: text!("{key} (fixed weights: nothing to reward)"),
            });
        }
        let Some(t) = self
            .state
            .bandits
            .iter_mut()
            .find(|b| b.key == key)
            .and_then(|b| b.trial.as_mut())
        else {
            return Err(Error::UnknownDecision { id: id() });
        };
        if now_ms >= t.expires {
            return Err(Error::DecisionExpired { id: id() });
        }
        if t.settled {
            return Err(Error::DuplicateReward { id: id() });
        }
        t.settled = true;
        let s = Settlement {
            key: key.clone(),
            seed: t.seed,
            variant: t.variant.clone(),
            reward,
        };
        self.journal.push(s);
        Ok(())
    }

    /// The exposure log (this page's and the stored ones).
    pub fn exposures(&self) -> &[Exposure] {
        &self.state.exposures
    }

    /// Settlements made here and not yet stored.
    pub fn pending(&self) -> usize {
        self.journal.len()
    }

    /// Forget everything: device seed, exposures, bandit counts and trials.
    pub fn reset(&mut self) {
        self.state = State::default();
        self.journal.clear();
        self.staged = None;
    }

    /// Merge this page's state with the stored allocator snapshot `stored`
    /// and return the bytes to write; nothing changes until
    /// [`commit`](Allocator::commit). With `learning` false (consent
    /// `functional`) bandit counts are neither written nor folded in: the
    /// unit, exposures and trials are. Exposures older than `max_age_ms`
    /// are dropped.
    pub fn sync(
        &mut self,
        stored: Option<&[u8]>,
        now_ms: f64,
        max_bytes: usize,
        max_age_ms: f64,
        learning: bool,
    ) -> Result<Vec<u8>> {
        self.staged = None;
        crate::prim::clock::check_now(now_ms)?;
        let (mut snap, from) = match stored {
            Some(b) => {
                let snap = Snapshot::decode(b, max_bytes)?;
                let st = read_state(&snap)?;
                (snap, st)
            }
            None => (Snapshot::new(), None),
        };
        let journal = if learning { &self.journal[..] } else { &[] };
        let mut merged = merge(from, &self.state, journal);
        let oldest = now_ms - max_age_ms;
        merged.exposures.retain(|e| e.at >= oldest);
        snap.set_section(SECTION, write_state(&merged, learning));
        let bytes = snap.encode(max_bytes)?;
        self.staged = Some((merged, journal.len()));
        Ok(bytes)
    }

    /// Apply the last [`sync`](Allocator::sync) once its bytes were written.
    /// Returns false, changing nothing, when there is nothing to commit.
    pub fn commit(&mut self) -> bool {
        let Some((merged, folded)) = self.staged.take() else {
            return false;
        };
        // Keep what happened here since the sync: exposures and trial starts.
        self.state = merge(Some(merged), &self.state, &[]);
        self.journal.drain(..folded.min(self.journal.len()));
        true
    }

    /// Load the stored allocator snapshot on page load (or when consent
    /// allows storage again), keeping this page's own state; nothing is
    /// encoded. On error nothing changes.
    pub fn restore(&mut self, stored: &[u8], now_ms: f64, max_bytes: usize) -> Result<()> {
        crate::prim::clock::check_now(now_ms)?;
        let snap = Snapshot::decode(stored, max_bytes)?;
        let from = read_state(&snap)?;
        self.state = merge(from, &self.state, &[]);
        self.staged = None;
        Ok(())
    }
}

fn experiment(experiments: &Experiments, index: usize) -> Result<&Experiment> {
    experiments
        .list
        .get(index)
        .ok_or_else(|| Error::UnknownExperiment {
            key: text!("#{index}"),
        })
}

/// The entry of bandit `key`, added empty when there is none.
fn bandit_entry<'a>(bandits: &'a mut Vec<Bandit>, key: &str) -> &'a mut Bandit {
    let i = match bandits.iter().position(|b| b.key == key) {
        Some(i) => i,
        None => {
            bandits.push(Bandit {
                key: key.to_owned(),
                counts: Vec::new(),
                trial: None,
                settled: Vec::new(),
            });
            bandits.len() - 1
        }
    };
    &mut bandits[i]
}

/// The running trial of bandit `e`: (variant, probability, seed). When
/// none runs, a trial that ran out unrewarded is journaled as a failure and
/// `start` draws the next one from the state and journal that include it;
/// the new trial runs for `window_ms`.
fn trial(
    e: &Experiment,
    state: &mut State,
    journal: &mut Vec<Settlement>,
    now_ms: f64,
    window_ms: f64,
    start: impl FnOnce(&State, &[Settlement]) -> (usize, f64, u64),
) -> (usize, f64, u64) {
    let b = bandit_entry(&mut state.bandits, &e.key);
    if let Some(t) = &b.trial {
        if now_ms < t.expires {
            if let Some(v) = e.variants.iter().position(|id| *id == t.variant) {
                return (v, t.probability, t.seed);
            }
        }
    }
    if let Some(t) = b.trial.take() {
        if !t.settled && e.variants.contains(&t.variant) {
            journal.push(Settlement {
                key: e.key.clone(),
                seed: t.seed,
                variant: t.variant,
                reward: 0.0,
            });
        }
    }
    let (v, p, seed) = start(state, journal);
    bandit_entry(&mut state.bandits, &e.key).trial = Some(Trial {
        seed,
        variant: e.variants[v].clone(),
        probability: p,
        at: now_ms,
        expires: now_ms + window_ms,
        settled: false,
    });
    (v, p, seed)
}

/// The served distribution for a trial with `seed` and its sample:
/// replaying a trial from its seed and the counts gives the same result.
fn draw(alpha: &[f64], beta: &[f64], samples: u32, min_p: f64, seed: u64) -> (usize, f64) {
    let mut rng = Rng::new(seed);
    let mut pmf = thompson::pmf(alpha, beta, samples, &mut rng);
    explore::floor(&mut pmf, min_p);
    explore::sample(&pmf, rng.next_f64())
}

/// Device-learned (successes, failures) per variant of `e`: the stored
/// counts plus the settlements not yet stored.
fn state_counts(e: &Experiment, state: &State, journal: &[Settlement]) -> Vec<(f64, f64)> {
    let mut counts = vec![(0.0, 0.0); e.variants.len()];
    let at = |id: &str| e.variants.iter().position(|v| v == id);
    if let Some(b) = state.bandits.iter().find(|b| b.key == e.key) {
        for (id, s, f) in &b.counts {
            if let Some(i) = at(id) {
                counts[i].0 += s;
                counts[i].1 += f;
            }
        }
    }
    for s in journal.iter().filter(|s| s.key == e.key) {
        if let Some(i) = at(&s.variant) {
            counts[i].0 += s.reward;
            counts[i].1 += 1.0 - s.reward;
        }
    }
    counts
}

/// Beta parameters per variant: 1 + prior + device counts.
fn posterior(prior: &[(f64, f64)], counts: &[(f64, f64)]) -> (Vec<f64>, Vec<f64>) {
    let alpha = prior
        .iter()
        .zip(counts)
        .map(|(p, c)| 1.0 + p.0 + c.0)
        .collect();
    let beta = prior
        .iter()
        .zip(counts)
        .map(|(p, c)| 1.0 + p.1 + c.1)
        .collect();
    (alpha, beta)
}

fn check_unit(u: &str, field: &str) -> Result<()> {
    if u.is_empty() || u.len() > MAX_UNIT {
        return Err(Error::option(
            field,
            text!("should be 1 to {MAX_UNIT} bytes, but is {} bytes", u.len()),
        ));
    }
    Ok(())
}

/// Stored state `from` (None: nothing stored) merged with this page's
/// `mine`, plus settlements `journal` not yet stored.
///
/// - unit: the stored one wins (the first tab to store a seed names the device);
/// - exposures: the union, per (unit, experiment, variant) the earliest;
/// - bandit counts: stored, or this page's when the key is not stored, plus
///   each settlement whose seed the stored entry has not settled already;
/// - trial: the later one, settled if either copy is.
fn merge(from: Option<State>, mine: &State, journal: &[Settlement]) -> State {
    let nothing_stored = from.is_none();
    let mut out = from.unwrap_or_default();
    if out.unit.is_none() {
        out.unit = mine.unit.clone();
    }
    for e in &mine.exposures {
        match out
            .exposures
            .iter_mut()
            .find(|x| x.is(e.unit_tag, &e.experiment, &e.variant))
        {
            Some(x) => x.at = x.at.min(e.at),
            None => out.exposures.push(e.clone()),
        }
    }
    // Over the cap, the oldest go (a linear scan: no sort code in the .wasm).
    while out.exposures.len() > MAX_EXPOSURES {
        let mut oldest = 0;
        for (i, e) in out.exposures.iter().enumerate() {
            if e.at < out.exposures[oldest].at {
                oldest = i;
            }
        }
        out.exposures.remove(oldest);
    }
    for m in &mine.bandits {
        match out.bandits.iter_mut().find(|b| b.key == m.key) {
            // Nothing stored for it: what this page believes is stored.
            None => out.bandits.push(m.clone()),
            Some(b) => {
                if nothing_stored {
                    b.counts = m.counts.clone();
                }
                b.trial = match (b.trial.take(), &m.trial) {
                    (Some(s), Some(t)) if s.seed == t.seed => Some(Trial {
                        settled: s.settled || t.settled,
                        ..s
                    }),
                    (Some(s), Some(t)) if t.at > s.at => Some(t.clone()),
                    (s, None) => s,
                    (Some(s), Some(_)) => Some(s),
                    (None, t) => t.clone(),
                };
            }
        }
    }
    for s in journal {
        let b = bandit_entry(&mut out.bandits, &s.key);
        if b.settled.contains(&s.seed) {
            continue;
        }
        b.settled.push(s.seed);
        if b.settled.len() > MAX_SETTLED {
            b.settled.remove(0);
        }
        if let Some(t) = b.trial.as_mut().filter(|t| t.seed == s.seed) {
            t.settled = true;
        }
        match b.counts.iter_mut().find(|c| c.0 == s.variant) {
            Some(c) => {
                c.1 += s.reward;
                c.2 += 1.0 - s.reward;
            }
            None => b.counts.push((s.variant.clone(), s.reward, 1.0 - s.reward)),
        }
    }
    out
}

fn write_state(s: &State, learning: bool) -> Vec<u8> {
    let mut w = Vec::new();
    put_u16(&mut w, SECTION_VERSION);
    match &s.unit {
        Some(u) => {
            w.push(1);
            put_str(&mut w, u);
        }
        None => w.push(0),
    }
    put_u32(&mut w, s.exposures.len() as u32);
    for e in &s.exposures {
        put_u32(&mut w, e.unit_tag);
        put_str(&mut w, &e.experiment);
        put_str(&mut w, &e.variant);
        put_f64(&mut w, e.at);
    }
    put_u32(&mut w, s.bandits.len().min(MAX_BANDITS) as u32);
    for b in s.bandits.iter().take(MAX_BANDITS) {
        put_str(&mut w, &b.key);
        let counts: &[(String, f64, f64)] = if learning { &b.counts } else { &[] };
        put_u16(&mut w, counts.len() as u16);
        for (id, succ, fail) in counts {
            put_str(&mut w, id);
            put_f64(&mut w, *succ);
            put_f64(&mut w, *fail);
        }
        match &b.trial {
            Some(t) => {
                w.push(1 + t.settled as u8);
                put_u64(&mut w, t.seed);
                put_str(&mut w, &t.variant);
                put_f64(&mut w, t.probability);
                put_f64(&mut w, t.at);
                put_f64(&mut w, t.expires);
            }
            None => w.push(0),
        }
        put_u16(&mut w, b.settled.len() as u16);
        for seed in &b.settled {
            put_u64(&mut w, *seed);
        }
    }
    w
}

fn read_state(snap: &Snapshot) -> Result<Option<State>> {
    snap.read(SECTION, read_section)
}

/// A stored name (key, variant id): what a configuration could hold.
fn stored_name<'a>(r: &mut Reader<'a>, what: &str) -> Result<&'a str> {
    let s = r.str()?;
    if super::config::is_name(s) {
        Ok(s)
    } else {
        Err(corrupt(text!(
            "it holds an invalid {what} ({} bytes)",
            s.len()
        )))
    }
}

fn stored_count(x: f64) -> Result<f64> {
    if (0.0..=1e12).contains(&x) {
        Ok(x)
    } else {
        Err(corrupt(
            "it holds a negative or impossibly large count".into(),
        ))
    }
}

fn read_section(body: &[u8]) -> Result<State> {
    let mut r = Reader::new(body, "experiments section");
    let v = r.u16()?;
    if v != SECTION_VERSION {
        return Err(Error::SnapshotVersion {
            found: (v as u32).into(),
            supported: (SECTION_VERSION as u32).into(),
        });
    }
    let unit = match r.u8()? {
        0 => None,
        1 => {
            let u = r.str()?;
            if u.is_empty() || u.len() > MAX_UNIT {
                return Err(corrupt("its device unit is empty or too long".into()));
            }
            Some(u.to_owned())
        }
        f => return Err(corrupt(text!("its unit flag is {f}"))),
    };
    let n = r.count_at_most(4 + 2 + 2 + 8, MAX_EXPOSURES, "exposures")?;
    let mut exposures: Vec<Exposure> = Vec::with_capacity(n);
    for _ in 0..n {
        let e = Exposure {
            unit_tag: r.u32()?,
            experiment: stored_name(&mut r, "experiment key")?.to_owned(),
            variant: stored_name(&mut r, "variant id")?.to_owned(),
            at: r.f64()?,
        };
        if exposures
            .iter()
            .any(|x| x.is(e.unit_tag, &e.experiment, &e.variant))
        {
            return Err(corrupt(text!(
                "exposure {}/{} repeats",
                e.experiment,
                e.variant
            )));
        }
        exposures.push(e);
    }
    let n = r.count_at_most(2 + 2 + 1 + 2, MAX_BANDITS, "bandits")?;
    let mut bandits: Vec<Bandit> = Vec::with_capacity(n);
    for _ in 0..n {
        let key = stored_name(&mut r, "experiment key")?.to_owned();
        if bandits.iter().any(|b| b.key == key) {
            return Err(corrupt(text!("bandit `{key}` repeats")));
        }
        let k = r.u16()? as usize;
        if k > super::config::MAX_VARIANTS {
            return Err(corrupt(text!("bandit `{key}` has {k} variants")));
        }
        let mut counts: Vec<(String, f64, f64)> = Vec::with_capacity(k);
        for _ in 0..k {
            let id = stored_name(&mut r, "variant id")?.to_owned();
            if counts.iter().any(|c| c.0 == id) {
                return Err(corrupt(text!("bandit `{key}` repeats variant `{id}`")));
            }
            let s = stored_count(r.f64()?)?;
            let f = stored_count(r.f64()?)?;
            counts.push((id, s, f));
        }
        let trial = match r.u8()? {
            0 => None,
            flag @ (1 | 2) => {
                let t = Trial {
                    seed: r.u64()?,
                    variant: stored_name(&mut r, "variant id")?.to_owned(),
                    probability: r.f64()?,
                    at: r.f64()?,
                    expires: r.f64()?,
                    settled: flag == 2,
                };
                if t.seed > MAX_SEED
                    || !(t.probability > 0.0 && t.probability <= 1.0)
                    || t.expires <= t.at
                {
                    return Err(corrupt(text!("bandit `{key}` holds an impossible trial")));
                }
                Some(t)
            }
            f => return Err(corrupt(text!("bandit `{key}` has trial flag {f}"))),
        };
        let m = r.u16()? as usize;
        if m > MAX_SETTLED {
            return Err(corrupt(text!(
                "bandit `{key}` remembers {m} settled trials"
            )));
        }
        let mut settled = Vec::with_capacity(m);
        for _ in 0..m {
            settled.push(r.u64()?);
        }
        bandits.push(Bandit {
            key,
            counts,
            trial,
            settled,
        });
    }
    r.finish()?;
    Ok(State {
        unit,
        exposures,
        bandits,
    })
}
