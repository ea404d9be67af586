//! The local behaviour store: events the page tracks, kept on the device
//! under a retention policy, and the features derived from them.
//!
//! The page records events (`{type, item?, category?, tags?, value?}`); the
//! time comes from the injected clock. Retention keeps at most `maxEvents`
//! events, none older than `maxAgeDays`, and at most `maxBytes` of them as
//! stored; the oldest go first.
//!
//! The store keeps each retained event as its record in the section layout
//! below, and derives the features (the `behavior` namespace; a slot only
//! uses them when its allowlist names that namespace) in one scan of them
//! when asked: per event type, category and tag a count and the time last
//! seen, and the sessions. A page view holds at most `maxEvents` events and
//! asks for the features at most once a minute or after a `track`. See
//! [`Behavior::features`] for the exact list.
//!
//! Persistence follows the protocol every part does (`store/sync.rs`):
//! section [`SECTION`] of the shared [`Snapshot`]; each store keeps the
//! events it tracked since its last commit (its journal) and adds them to
//! what other tabs stored, so no tab's events are lost to a last-writer-wins
//! overwrite.
//!
//! Section layout 1 (integers little-endian): u8 layout; u32 event count;
//! per event, oldest first: time f64 (ms since the epoch); type (u16 length,
//! UTF-8); u8 flags (1 item, 2 category, 4 value); the item and category
//! strings when flagged; u8 tag count and the tags; the value f64 when
//! flagged.

use crate::prelude::*;

use crate::error::{Error, Result};
use crate::prim::clock::{check_now, DAY_MS, MINUTE_MS};
use crate::prim::journal::{Entries, Journal, Marked, STOP};
use crate::prim::math;

#[cfg(feature = "json")]
mod json;
mod record;

pub(crate) use record::EventRef;
use record::{names, records, until};

use crate::store::sync::{open, Persisted};
use crate::store::{corrupt, put_u32, Reader, Snapshot};

/// The snapshot section holding the events.
pub const SECTION: &str = "behavior";
/// Event types every store accepts; sites declare more in `types`.
pub const BUILTIN_TYPES: [&str; 3] = ["view", "click", "convert"];
/// The section layout this build writes and reads.
const LAYOUT: u8 = 1;
/// Longest item, category or tag, in bytes.
const MAX_NAME: usize = 64;
/// Longest event type name, in bytes.
const MAX_TYPE: usize = 32;
/// Most tags on one event.
pub(crate) const MAX_TAGS: usize = 8;
/// Most custom event types.
const MAX_TYPES: usize = 16;
/// Categories (and, separately, tags) that become features: the most frequent.
pub(crate) const TOP: usize = 8;
/// Half-life of the `:recent` features.
const HALF_LIFE_MS: f64 = DAY_MS;
/// The weekdays' feature values, 3 bytes each, from Sunday.
const WEEKDAYS: &[u8; 21] = b"sunmontuewedthufrisat";

/// Retention and event types (`behavior: {...}` in the store options).
#[derive(Debug, Clone, PartialEq)]
pub struct BehaviorConfig {
    /// Events older than this many days are deleted. Default 30.
    pub max_age_days: f64,
    /// At most this many events are kept. Default 500.
    pub max_events: usize,
    /// The stored events take at most this many bytes. Default 16 KiB.
    pub max_bytes: usize,
    /// A gap longer than this many minutes starts a new session. Default 30.
    pub session_gap_minutes: f64,
    /// Custom event types besides [`BUILTIN_TYPES`] (the JSON reader sorts
    /// them; their order does not matter).
    pub types: Vec<String>,
}

impl Default for BehaviorConfig {
    fn default() -> BehaviorConfig {
        BehaviorConfig {
            max_age_days: 30.0,
            max_events: 500,
            max_bytes: 16 << 10,
            session_gap_minutes: 30.0,
            types: Vec::new(),
        }
    }
}

impl BehaviorConfig {
    /// Check the settings: the ranges of the JS options, with the
    /// TypeScript side's messages, and at most 16 custom types, each 1 to
    /// 32 letters, digits, `_` or `-`, not a built-in type.
    pub fn check(self) -> Result<BehaviorConfig> {
        let bad = |field: &str, why: crate::error::Text| Err(Error::option(field, why));
        if !(self.max_age_days > 0.0 && self.max_age_days <= 400.0) {
            return bad("behavior.maxAgeDays", text!("should be in (0, 400]"));
        }
        if !(1..=5000).contains(&self.max_events) {
            return bad("behavior.maxEvents", text!("should be in [1, 5000]"));
        }
        if !(256..=256 << 10).contains(&self.max_bytes) {
            return bad("behavior.maxBytes", text!("should be in [256, 262144]"));
        }
        if !(1.0..=1440.0).contains(&self.session_gap_minutes) {
            return bad(
                "behavior.sessionGapMinutes",
                text!("should be in [1, 1440]"),
            );
        }
        if self.types.len() > MAX_TYPES {
            return bad(
                "behavior.types",
                text!("should hold at most {MAX_TYPES} types"),
            );
        }
        for t in &self.types {
            if !is_type_name(t) {
                return bad(
                    "behavior.types",
                    text!("should be type names, not built-in types"),
                );
            }
        }
        Ok(self)
    }

    fn known_type(&self, t: &[u8]) -> bool {
        builtin(t) || self.types.iter().any(|x| x.as_bytes() == t)
    }

    /// Apply retention at `now_ms` to `log`: too old, too many or too
    /// large, oldest first.
    fn retain(&self, log: &mut Log, now_ms: f64) {
        debug_assert_eq!(log.n, records(&log.bytes).count());
        let oldest = now_ms - self.max_age_days * DAY_MS;
        let (mut left, mut gone) = (log.n, 0);
        for (ev, rec) in records(&log.bytes) {
            let over = left > self.max_events || log.bytes.len() - gone > self.max_bytes;
            if !(ev.at < oldest || over) {
                break;
            }
            left -= 1;
            gone += rec.len();
        }
        if gone > 0 {
            log.bytes = log.bytes.get(gone..).unwrap_or_default().to_vec();
            log.n = left;
        }
    }

    fn gap_ms(&self) -> f64 {
        self.session_gap_minutes * MINUTE_MS
    }
}

/// One tracked event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When it happened, in ms since the epoch (the injected clock).
    pub at: f64,
    /// Its type: built in or declared.
    pub kind: String,
    /// The item it concerns, e.g. a product id.
    pub item: Option<String>,
    /// The item's category.
    pub category: Option<String>,
    /// Tags, at most 8, without repeats.
    pub tags: Vec<String>,
    /// A value, e.g. an order total.
    pub value: Option<f64>,
}

pub(crate) fn event_err(field: crate::error::Text, reason: crate::error::Text) -> Error {
    Error::InvalidEvent { field, reason }
}

/// A built-in event type.
fn builtin(t: &[u8]) -> bool {
    BUILTIN_TYPES.iter().any(|x| x.as_bytes() == t)
}

/// A custom event type: 1 to 32 letters, digits, `_` or `-`, not built in.
pub(crate) fn is_type_name(t: &str) -> bool {
    (1..=MAX_TYPE).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        && !builtin(t.as_bytes())
}

/// A derived feature's value: numeric, or categorical (hashed with its name).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Num(f64),
    /// A category, e.g. the weekday.
    Cat(&'static str),
}

/// What a stat counts.
const TYPE: u8 = 0;
const CATEGORY: u8 = 1;
const TAG: u8 = 2;

/// Per event type, category or tag: how many retained events have it and
/// when the latest was.
#[derive(Debug)]
struct Stat<'a> {
    kind: u8,
    name: &'a [u8],
    /// Of the kind and name.
    hash: u32,
    /// The stat before it in its hash bucket (index + 1; 0 for none).
    next: u32,
    count: u32,
    last: f64,
}

impl Stat<'_> {
    /// Comes before `b` of the same kind: types by name; categories and
    /// tags the most frequent first, ties to the most recent, then by name.
    fn before(&self, b: &Stat<'_>) -> bool {
        if self.kind != TYPE {
            if self.count != b.count {
                return self.count > b.count;
            }
            if self.last != b.last {
                return self.last > b.last;
            }
        }
        self.name < b.name
    }
}

/// Hash buckets of the stats: a few names per bucket even when a store
/// holds thousands of them, so a scan stays linear.
const BUCKETS: usize = 1024;

/// What one scan of the retained events finds.
struct Scan<'a> {
    /// In the order first seen.
    stats: Vec<Stat<'a>>,
    /// Per hash bucket the last stat in it (index + 1; 0 for none).
    heads: [u32; BUCKETS],
    sessions: usize,
    /// Events in the newest session.
    depth: usize,
    /// The times of the oldest and the newest event.
    first: f64,
    last: f64,
}

impl<'a> Scan<'a> {
    /// Count an event's type, category or tag, seen at `at` (events come
    /// oldest first, so the latest so far).
    fn tally(&mut self, kind: u8, name: &'a [u8], at: f64) {
        let hash = crate::prim::hash::murmur3_32(name, kind.into());
        let Some(head) = self.heads.get_mut(hash as usize % BUCKETS) else {
            return;
        };
        let mut k = *head;
        while let Some(s) = (k as usize)
            .checked_sub(1)
            .and_then(|i| self.stats.get_mut(i))
        {
            if s.hash == hash && s.kind == kind && s.name == name {
                s.count += 1;
                s.last = at;
                return;
            }
            k = s.next;
        }
        self.stats.push(Stat {
            kind,
            name,
            hash,
            next: *head,
            count: 1,
            last: at,
        });
        *head = self.stats.len() as u32;
    }

    /// The stat of `kind` that comes next (see [`Stat::before`]) after
    /// `prev`, or first.
    fn after(&self, kind: u8, prev: Option<&Stat<'a>>) -> Option<&Stat<'a>> {
        let mut best = None;
        for s in &self.stats {
            let next = prev.map_or(true, |p| p.before(s));
            if s.kind == kind && next && best.map_or(true, |b| s.before(b)) {
                best = Some(s);
            }
        }
        best
    }
}

/// `ln(1 + n)`: for a whole `n` below 2^20 the same bits as `ln_1p(n)`
/// (a test checks it), without a second logarithm in the .wasm.
fn ln_1p_count(n: usize) -> f64 {
    math::ln(1.0 + n as f64)
}

/// What [`Behavior::sync`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BehaviorSync {
    /// The snapshot to write.
    pub bytes: Vec<u8>,
    /// Events kept after the merge and retention.
    pub events: usize,
    /// Stored events whose type this store does not declare (the site
    /// removed a custom type): not kept.
    pub dropped: usize,
}

/// The behaviour store of one page view.
#[derive(Debug, Clone)]
pub struct Behavior {
    cfg: BehaviorConfig,
    /// The retained events, oldest first.
    log: Log,
    /// The events tracked since the last commit; lost once more than
    /// `max_events` (the next merge then deduplicates instead).
    journal: Journal<Log, STOP>,
    /// The merged events of the last sync.
    staged: Option<Log>,
}

impl Behavior {
    /// An empty store.
    pub fn new(cfg: BehaviorConfig) -> Behavior {
        Behavior {
            journal: Journal::new(cfg.max_events),
            cfg,
            log: Log::default(),
            staged: None,
        }
    }

    /// The retention settings.
    pub fn config(&self) -> &BehaviorConfig {
        &self.cfg
    }

    /// Record an event at `now_ms` (its `at` is set to it). Errors
    /// (`INVALID_EVENT`, `UNKNOWN_EVENT_TYPE`, or `INVALID_OPTION` for
    /// `now`) store nothing.
    pub fn track_event(&mut self, ev: Event, now_ms: f64) -> Result<()> {
        self.track_parts(&ev.parts(&ev.tag_bytes()), now_ms)
    }

    /// [`track_event`](Behavior::track_event) from the event's parts.
    pub(crate) fn track_parts(&mut self, ev: &EventRef<'_>, now_ms: f64) -> Result<()> {
        check_now(now_ms)?;
        ev.check(&self.cfg, false)?;
        let mut rec = Log {
            bytes: Vec::new(),
            n: 1,
        };
        EventRef { at: now_ms, ..*ev }.write(&mut rec.bytes);
        self.log.insert_all(&rec);
        self.journal.push(rec.bytes);
        self.cfg.retain(&mut self.log, now_ms);
        Ok(())
    }

    /// Retained events, oldest first.
    pub fn events(&self) -> impl Iterator<Item = Event> + '_ {
        records(&self.log.bytes).map(|(ev, _)| ev.to_event())
    }

    /// Retained events by type, in type order.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let (mut text, mut values) = (Vec::new(), Vec::new());
        self.counts_into(&mut text, &mut values);
        let lines = text.split(|&b| b == b'\n');
        (lines.zip(values))
            .map(|(t, n)| (String::from_utf8_lossy(t).into_owned(), n as usize))
            .collect()
    }

    /// [`counts`](Behavior::counts) as the boundary hands them over: per
    /// type a line `type\n` in `text`, its count in `values`. Returns how many.
    pub(crate) fn counts_into(&self, text: &mut Vec<u8>, values: &mut Vec<f64>) -> usize {
        text.clear();
        values.clear();
        let scan = self.scan();
        let mut prev = None;
        while let Some(s) = scan.after(TYPE, prev) {
            text.extend_from_slice(s.name);
            text.push(b'\n');
            values.push(s.count as f64);
            prev = Some(s);
        }
        values.len()
    }

    /// Bytes the retained events take in the snapshot.
    pub fn stored_bytes(&self) -> usize {
        self.log.bytes.len()
    }

    /// Drop every event and start empty (the page's `forget()`).
    pub fn clear(&mut self) {
        self.log = Log::default();
        self.journal.reset();
        self.staged = None;
    }

    /// One pass over the retained events, oldest first.
    fn scan(&self) -> Scan<'_> {
        let gap = self.cfg.gap_ms();
        let mut s = Scan {
            stats: Vec::new(),
            heads: [0; BUCKETS],
            sessions: 0,
            depth: 0,
            first: 0.0,
            last: f64::NEG_INFINITY,
        };
        for (ev, _) in records(&self.log.bytes) {
            // The oldest event, and each after a longer gap, starts a session.
            if ev.at - s.last > gap {
                if s.sessions == 0 {
                    s.first = ev.at;
                }
                s.sessions += 1;
                s.depth = 0;
            }
            s.depth += 1;
            s.last = ev.at;
            s.tally(TYPE, ev.kind, ev.at);
            if let Some(c) = ev.category {
                s.tally(CATEGORY, c, ev.at);
            }
            for t in names(ev.tags) {
                s.tally(TAG, t, ev.at);
            }
        }
        s
    }

    /// The derived features at `now_ms` (rounded down to the minute, so they
    /// change at most once a minute), for a visitor whose local time is
    /// `tz_offset_minutes` behind UTC (JS `Date#getTimezoneOffset`). Features
    /// that would be 0 are left out. Events past retention are dropped first.
    ///
    /// | name | value |
    /// |------|-------|
    /// | `hour` | local hour, categorical `"0"`–`"23"` |
    /// | `weekday` | local day, categorical `"sun"`–`"sat"` |
    /// | `sessions` | ln(1 + sessions among the retained events) |
    /// | `sessionDepth` | ln(1 + events in the current session), 0 once the session gap has passed |
    /// | `daysSinceFirst` | days since the oldest retained event (so at most `maxAgeDays`) |
    /// | `type:<type>` | ln(1 + events of that type) |
    /// | `cat:<category>` | ln(1 + events in that category), for the [`TOP`] most frequent |
    /// | `cat:<category>:recent` | 2^(−days since the latest such event) |
    /// | `tag:<tag>`, `tag:<tag>:recent` | the same for tags |
    pub fn features(
        &mut self,
        now_ms: f64,
        tz_offset_minutes: f64,
    ) -> Result<Vec<(String, Value)>> {
        /// The categorical values `features_into` writes.
        const CATEGORIES: [&str; 31] = [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
            "16", "17", "18", "19", "20", "21", "22", "23", "sun", "mon", "tue", "wed", "thu",
            "fri", "sat",
        ];
        let (mut text, mut values) = (Vec::new(), Vec::new());
        self.features_into(now_ms, tz_offset_minutes, &mut text, &mut values)?;
        let lines = text.split(|&b| b == b'\n');
        Ok(lines
            .zip(values)
            .map(|(line, x)| {
                let tab = line.iter().position(|&b| b == b'\t').unwrap_or(line.len());
                let (name, cat) = line.split_at(tab);
                let name = String::from_utf8_lossy(name).into_owned();
                let cat = cat.get(1..).unwrap_or_default();
                let cat = CATEGORIES.iter().find(|c| c.as_bytes() == cat);
                (name, cat.map_or(Value::Num(x), |c| Value::Cat(c)))
            })
            .collect())
    }

    /// [`features`](Behavior::features) as the boundary hands them over: per
    /// feature a line in `text`, its name, a tab and its value when
    /// categorical; in `values` its value (0 for a categorical one).
    /// Returns how many.
    pub(crate) fn features_into(
        &mut self,
        now_ms: f64,
        tz_offset_minutes: f64,
        text: &mut Vec<u8>,
        values: &mut Vec<f64>,
    ) -> Result<usize> {
        let t = clock_features(now_ms, tz_offset_minutes, text, values)?;
        let mut out = Lines { text, values };
        self.cfg.retain(&mut self.log, now_ms);
        let scan = self.scan();
        if scan.sessions == 0 {
            return Ok(out.values.len());
        }
        out.num(&[b"sessions"], ln_1p_count(scan.sessions));
        if t - scan.last <= self.cfg.gap_ms() {
            out.num(&[b"sessionDepth"], ln_1p_count(scan.depth));
        }
        out.num(&[b"daysSinceFirst"], ((t - scan.first) / DAY_MS).max(0.0));
        for kind in TYPE..=TAG {
            let prefix: &[u8] = match kind {
                TYPE => b"type:",
                CATEGORY => b"cat:",
                _ => b"tag:",
            };
            // Every type, by name; the TOP most frequent categories and tags.
            let mut prev = None;
            for _ in 0..if kind == TYPE { usize::MAX } else { TOP } {
                let Some(s) = scan.after(kind, prev) else {
                    break;
                };
                out.num(&[prefix, s.name], ln_1p_count(s.count as usize));
                if kind != TYPE {
                    let age = ((t - s.last) / HALF_LIFE_MS).max(0.0);
                    out.num(&[prefix, s.name, b":recent"], math::exp2_neg(age));
                }
                prev = Some(s);
            }
        }
        Ok(out.values.len())
    }

    /// Merge this store's events with the stored snapshot `stored` (none when
    /// nothing is stored) and return the snapshot to write, with the other
    /// sections carried over. Nothing changes until [`commit`](Behavior::commit).
    /// Errors as for `Engine::sync`.
    pub fn sync(
        &mut self,
        stored: Option<&[u8]>,
        now_ms: f64,
        max_bytes: usize,
    ) -> Result<BehaviorSync> {
        Persisted::sync(self, stored, now_ms, max_bytes, ())
    }

    /// Load the stored events on page load (or when consent allows storage
    /// again), keeping this store's own events not yet stored; they stay
    /// journaled for the next [`sync`](Behavior::sync), and nothing is
    /// encoded. Cancels a sync not yet committed. Errors as for `sync`; on
    /// error nothing changes. Returns the stored events dropped because
    /// their type is no longer declared.
    pub fn restore(&mut self, stored: &[u8], now_ms: f64, max_bytes: usize) -> Result<usize> {
        check_now(now_ms)?;
        self.restore_snapshot(&Snapshot::decode(stored, max_bytes)?, now_ms)
    }

    /// [`restore`](Behavior::restore) from a snapshot already decoded, as a
    /// page load does once for all its parts.
    pub fn restore_snapshot(&mut self, snap: &Snapshot, now_ms: f64) -> Result<usize> {
        self.restore_from(snap, now_ms, true)
    }

    /// [`restore_snapshot`](Behavior::restore_snapshot); with `own` false
    /// for a store that holds no events of its own (it cannot track), whose
    /// events the stored ones then replace without a merge: the
    /// first-decision module's.
    pub(crate) fn restore_from(
        &mut self,
        snap: &Snapshot,
        now_ms: f64,
        own: bool,
    ) -> Result<usize> {
        check_now(now_ms)?;
        let stored = self.stored_events(snap)?;
        self.staged = None;
        let Some((st, dropped)) = stored else {
            return Ok(0);
        };
        self.log = if own { self.with_own(Some(st)) } else { st };
        self.cfg.retain(&mut self.log, now_ms);
        Ok(dropped)
    }

    /// The records of the snapshot's behaviour section (none if it has none)
    /// whose type this store knows, and how many it did not.
    fn stored_events(&self, snap: &Snapshot) -> Result<Option<(Log, usize)>> {
        snap.read(SECTION, |body| self.read_section(body))
    }

    /// The `stored` records plus this store's own: those not yet stored
    /// (the journal; when it overflowed, each own event `stored` does not
    /// already hold), or all of them when nothing is stored.
    fn with_own(&self, stored: Option<Log>) -> Log {
        let Some(mut merged) = stored else {
            return self.log.clone();
        };
        if self.journal.overflowed() {
            let own = unstored(&self.log, &merged);
            merged.insert_all(&own);
        } else {
            merged.insert_all(self.journal.entries());
        }
        merged
    }

    /// Apply the last [`sync`](Behavior::sync) once its bytes were written;
    /// events tracked in between are kept. Returns false, changing nothing,
    /// when there is nothing to commit.
    pub fn commit(&mut self) -> bool {
        Persisted::commit(self)
    }

    /// Read a section: the records (oldest first) whose type this store
    /// knows, and how many it did not.
    fn read_section(&self, body: &[u8]) -> Result<(Log, usize)> {
        let mut r = Reader::new(body, "behavior section");
        let layout = r.u8()?;
        if layout != LAYOUT {
            return Err(Error::SnapshotVersion {
                found: crate::error::figure(layout as u32),
                supported: crate::error::figure(LAYOUT as u32),
            });
        }
        // The smallest event: time, a 1-byte type, flags, tag count.
        let n = r.count(8 + 3 + 2)?;
        let mut rest = body.get(r.pos()..).unwrap_or_default();
        let mut out = Log {
            bytes: Vec::with_capacity(body.len()),
            n: 0,
        };
        let mut dropped = 0;
        let mut prev = f64::NEG_INFINITY;
        for _ in 0..n {
            let start = rest;
            let ev = EventRef::read(&mut rest)
                .ok_or_else(|| corrupt(text!("an event ends early or has unknown flags")))?;
            let known = ev.check(&self.cfg, true)?;
            if ev.at < prev {
                return Err(corrupt(text!("events are out of time order")));
            }
            prev = ev.at;
            if known {
                out.push(until(start, rest));
            } else {
                dropped += 1;
            }
        }
        if !rest.is_empty() {
            return Err(corrupt(text!("{} bytes follow the events", rest.len())));
        }
        Ok((out, dropped))
    }
}

impl Persisted for Behavior {
    type Args<'a> = ();
    type Staged = Log;
    type Report = BehaviorSync;
    type Journal = Journal<Log, STOP>;

    fn parts(&mut self) -> (&mut Option<Log>, &mut Journal<Log, STOP>) {
        (&mut self.staged, &mut self.journal)
    }

    fn stage(
        &mut self,
        stored: Option<&[u8]>,
        now_ms: f64,
        max_bytes: usize,
        (): (),
    ) -> Result<BehaviorSync> {
        let mut snap = open(stored, max_bytes)?;
        let stored = self.stored_events(&snap)?;
        let dropped = stored.as_ref().map_or(0, |s| s.1);
        let mut merged = self.with_own(stored.map(|s| s.0));
        self.cfg.retain(&mut merged, now_ms);
        let events = merged.n;
        let mut section = Vec::with_capacity(5 + merged.bytes.len());
        section.push(LAYOUT);
        put_u32(&mut section, events as u32);
        section.extend_from_slice(&merged.bytes);
        snap.set_section(SECTION, section);
        let bytes = snap.encode(max_bytes)?;
        self.staged = Some(merged);
        Ok(BehaviorSync {
            bytes,
            events,
            dropped,
        })
    }

    /// Events tracked since the sync are kept: the journal's tail, or, if
    /// it overflowed meanwhile, each own event the merge does not hold.
    fn apply(&mut self, mut next: Log) {
        self.journal.drain_marked();
        if self.journal.overflowed() {
            let own = unstored(&self.log, &next);
            next.insert_all(&own);
        } else {
            next.insert_all(self.journal.entries());
        }
        // Retention as of the newest event: commit has no clock of its own.
        let now = records(&next.bytes).last().map_or(0.0, |(ev, _)| ev.at);
        self.cfg.retain(&mut next, now);
        self.log = next;
    }
}

/// Event records one after another, as the section holds them, and how many.
#[derive(Debug, Clone, Default)]
pub(crate) struct Log {
    bytes: Vec<u8>,
    n: usize,
}

impl Log {
    /// Append a record.
    fn push(&mut self, rec: &[u8]) {
        self.bytes.extend_from_slice(rec);
        self.n += 1;
    }

    /// Insert each record of `recs` in turn where it falls by time, after
    /// the events of the same time: one pass over these while they come in
    /// time order (a journal does, unless a clock went back), another each
    /// time one does not.
    fn insert_all(&mut self, recs: &Log) {
        let log = &mut self.bytes;
        let mut out = Vec::with_capacity(log.len() + recs.bytes.len());
        // Bytes of `log` already in `out`.
        let mut done = 0;
        let mut prev = f64::NEG_INFINITY;
        for (ev, rec) in records(&recs.bytes) {
            if ev.at < prev {
                out.extend_from_slice(log.get(done..).unwrap_or_default());
                core::mem::swap(log, &mut out);
                out.clear();
                done = 0;
            }
            prev = ev.at;
            for (e, r) in records(log.get(done..).unwrap_or_default()) {
                if e.at > ev.at {
                    break;
                }
                out.extend_from_slice(r);
                done += r.len();
            }
            out.extend_from_slice(rec);
        }
        out.extend_from_slice(log.get(done..).unwrap_or_default());
        *log = out;
        self.n += recs.n;
    }
}

/// The journal keeps the events it holds as one log: the merge inserts
/// them as they are, the same as the stored ones.
impl Entries for Log {
    /// One event's record.
    type Item = Vec<u8>;
    fn count(&self) -> usize {
        self.n
    }
    fn add(&mut self, rec: Vec<u8>) {
        self.push(&rec);
    }
    fn shift_in(&mut self, rec: Vec<u8>) -> Option<Vec<u8>> {
        let first = records(&self.bytes).next().map(|(_, r)| r.to_vec());
        self.drop_first(1);
        self.add(rec);
        first
    }
    fn drop_first(&mut self, n: usize) {
        let mut end = 0;
        let mut k = 0;
        for (_, rec) in records(&self.bytes).take(n) {
            end += rec.len();
            k += 1;
        }
        self.bytes.drain(..end);
        self.n -= k;
    }
}

/// The records of `own` that `stored` does not hold, as [`Event`]s compare
/// (a zero value equals a negative zero). Both are in time order.
fn unstored(own: &Log, stored: &Log) -> Log {
    let mut out = Log::default();
    // Bytes of `stored` older than the own event at hand.
    let mut older = 0;
    for (ev, rec) in records(&own.bytes) {
        let mut held = false;
        for (s, r) in records(stored.bytes.get(older..).unwrap_or_default()) {
            if s.at < ev.at {
                older += r.len();
            } else {
                held = s == ev;
                if held || s.at > ev.at {
                    break;
                }
            }
        }
        if !held {
            out.push(rec);
        }
    }
    out
}

/// The clock's features at `now_ms` (`tz_offset_minutes`: the local
/// time's offset, as `Date#getTimezoneOffset`), the first lines of
/// [`Behavior::features_into`] (text and values cleared first), and all
/// that the first-decision module derives: it holds no events. Returns the
/// whole minute the features are for.
pub(crate) fn clock_features(
    now_ms: f64,
    tz_offset_minutes: f64,
    text: &mut Vec<u8>,
    values: &mut Vec<f64>,
) -> Result<f64> {
    check_now(now_ms)?;
    if !(-1440.0..=1440.0).contains(&tz_offset_minutes) {
        return Err(Error::option(
            "tzOffset",
            text!(
                "should be minutes in [-1440, 1440], but is {}",
                crate::error::Num(tz_offset_minutes)
            ),
        ));
    }
    text.clear();
    values.clear();
    let mut out = Lines { text, values };
    let t = math::floor(now_ms / MINUTE_MS) * MINUTE_MS;
    let local = t - tz_offset_minutes * MINUTE_MS;
    let hour = ((math::modulo(local, DAY_MS) / 3_600_000.0) as u8).min(23);
    let digits = [b'0' + hour / 10, b'0' + hour % 10];
    let hour = digits.get(usize::from(hour < 10)..).unwrap_or_default();
    out.line(&[b"hour"], hour, 0.0);
    // 1970-01-01 was a Thursday.
    let day = (math::modulo(math::floor(local / DAY_MS) + 4.0, 7.0) as usize).min(6);
    let weekday = WEEKDAYS.get(3 * day..3 * day + 3).unwrap_or_default();
    out.line(&[b"weekday"], weekday, 0.0);
    Ok(t)
}

/// The features being written, as the boundary hands them over.
struct Lines<'o> {
    text: &'o mut Vec<u8>,
    values: &'o mut Vec<f64>,
}

impl Lines<'_> {
    /// A feature named by the concatenation of `name`, with its category
    /// (empty for a numeric one) and value.
    fn line(&mut self, name: &[&[u8]], cat: &[u8], x: f64) {
        for part in name {
            self.text.extend_from_slice(part);
        }
        self.text.push(b'\t');
        self.text.extend_from_slice(cat);
        self.text.push(b'\n');
        self.values.push(x);
    }

    /// A numeric feature, left out when 0.
    fn num(&mut self, name: &[&[u8]], x: f64) {
        if x != 0.0 {
            self.line(name, b"", x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: f64 = MINUTE_MS;
    // A whole minute, as `features` rounds `now` down to one.
    const T0: f64 = 1_700_000_040_000.0;

    fn store() -> Behavior {
        Behavior::new(BehaviorConfig::default())
    }

    fn num(f: &[(String, Value)], name: &str) -> Option<f64> {
        f.iter().find(|(n, _)| n == name).map(|(_, v)| match v {
            Value::Num(x) => *x,
            Value::Cat(_) => f64::NAN,
        })
    }

    /// The counts, latest times and sessions of `b`'s events, counted
    /// naively from its events as `Event`s, to check the scan.
    fn naive(b: &Behavior) -> (Vec<(u8, String, u32, f64)>, usize) {
        let events: Vec<Event> = b.events().collect();
        let mut stats: Vec<(u8, String, u32, f64)> = Vec::new();
        let mut add = |kind: u8, name: &str, at: f64| match stats
            .iter_mut()
            .find(|s| s.0 == kind && s.1 == name)
        {
            Some(s) => {
                s.2 += 1;
                s.3 = s.3.max(at);
            }
            None => stats.push((kind, name.to_owned(), 1, at)),
        };
        for e in &events {
            add(TYPE, &e.kind, e.at);
            if let Some(c) = &e.category {
                add(CATEGORY, c, e.at);
            }
            for t in &e.tags {
                add(TAG, t, e.at);
            }
        }
        stats.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let gap = b.cfg.gap_ms();
        let sessions = (0..events.len())
            .filter(|&i| i == 0 || events[i].at - events[i - 1].at > gap)
            .count();
        (stats, sessions)
    }

    /// The bytes an event takes in the section.
    fn stored_len(e: &Event) -> usize {
        let s = |x: &Option<String>| x.as_ref().map_or(0, |x| 2 + x.len());
        8 + 2
            + e.kind.len()
            + 1
            + s(&e.item)
            + s(&e.category)
            + 1
            + e.tags.iter().map(|t| 2 + t.len()).sum::<usize>()
            + e.value.map_or(0, |_| 8)
    }

    #[test]
    fn ln_1p_of_a_count_is_ln_of_one_more() {
        for n in 0..1 << 20 {
            assert_eq!(
                ln_1p_count(n).to_bits(),
                math::ln_1p(n as f64).to_bits(),
                "{n}"
            );
        }
    }

    #[test]
    fn sessions_depth_and_counts() {
        let mut b = store();
        for (i, dt) in [0.0, 5.0, 10.0, 100.0, 101.0].iter().enumerate() {
            let ev = format!(r#"{{"type":"view","category":"c{}","tags":["x"]}}"#, i % 2);
            b.track(&ev, T0 + dt * MIN).unwrap();
        }
        let f = b.features(T0 + 102.0 * MIN, 0.0).unwrap();
        assert_eq!(num(&f, "sessions"), Some(math::ln_1p(2.0)));
        assert_eq!(num(&f, "sessionDepth"), Some(math::ln_1p(2.0)));
        assert_eq!(num(&f, "type:view"), Some(math::ln_1p(5.0)));
        assert_eq!(num(&f, "cat:c0"), Some(math::ln_1p(3.0)));
        assert_eq!(num(&f, "tag:x"), Some(math::ln_1p(5.0)));
        // Last seen 1 minute before `now`: 2^(-1/1440).
        assert!((num(&f, "tag:x:recent").unwrap() - 2f64.powf(-1.0 / 1440.0)).abs() < 1e-12);
        // After the session gap the depth is gone.
        let f = b.features(T0 + 140.0 * MIN, 0.0).unwrap();
        assert_eq!(num(&f, "sessionDepth"), None);
        assert_eq!(b.counts(), vec![("view".to_owned(), 5)]);
    }

    #[test]
    fn local_time_features() {
        let mut b = store();
        // 2024-01-07 23:30 UTC was a Sunday; at UTC-5 (offset +300) it is
        // Sunday 18:30, at UTC+1 (offset -60) Monday 00:30.
        let t = 1_704_670_200_000.0;
        let f = b.features(t, 300.0).unwrap();
        assert_eq!(f[0].1, Value::Cat("18"));
        assert_eq!(f[1].1, Value::Cat("sun"));
        let f = b.features(t, -60.0).unwrap();
        assert_eq!(f[0].1, Value::Cat("0"));
        assert_eq!(f[1].1, Value::Cat("mon"));
        assert_eq!(b.features(t, 2000.0).unwrap_err().code(), "INVALID_OPTION");
        assert_eq!(
            b.features(f64::NAN, 0.0).unwrap_err().code(),
            "INVALID_OPTION"
        );
    }

    #[test]
    fn retention_by_age_count_and_bytes() {
        let cfg = BehaviorConfig::parse(r#"{"maxAgeDays": 1, "maxEvents": 10, "maxBytes": 400}"#)
            .unwrap();
        let mut b = Behavior::new(cfg);
        for i in 0..30 {
            b.track(
                r#"{"type":"click","category":"shoes"}"#,
                T0 + i as f64 * MIN,
            )
            .unwrap();
        }
        assert_eq!(b.events().count(), 10);
        assert_eq!(b.counts(), vec![("click".to_owned(), 10)]);
        // 10 events of 8+2+5+1+2+5+1 = 24 bytes; a long one pushes out others.
        assert_eq!(b.stored_bytes(), 240);
        let long = format!(
            r#"{{"type":"view","item":"{}","tags":["a","b"]}}"#,
            "i".repeat(64)
        );
        b.track(&long, T0 + 31.0 * MIN).unwrap();
        assert!(b.stored_bytes() <= 400);
        // A day later everything has aged out.
        let f = b.features(T0 + 31.0 * MIN + DAY_MS + MIN, 0.0).unwrap();
        assert_eq!(b.events().count(), 0);
        assert_eq!(f.len(), 2, "only hour and weekday remain: {f:?}");
        let scan = b.scan();
        assert!(scan.stats.is_empty());
        assert_eq!((scan.sessions, scan.depth), (0, 0));
    }

    #[test]
    fn the_scan_equals_a_naive_count() {
        let cfg = BehaviorConfig::parse(
            r#"{"maxEvents": 40, "maxBytes": 1200, "sessionGapMinutes": 5, "types": ["cart"]}"#,
        )
        .unwrap();
        let mut b = Behavior::new(cfg);
        let mut rng = crate::Rng::new(11);
        let mut now = T0;
        for i in 0..3000 {
            now += (rng.next_f64() * 12.0).floor() * MIN;
            let kind = ["view", "click", "convert", "cart"][(rng.next_u64() % 4) as usize];
            let ev = format!(
                r#"{{"type":"{kind}","category":"c{}","tags":["t{}","t{}"]}}"#,
                rng.next_u64() % 5,
                rng.next_u64() % 7,
                rng.next_u64() % 7
            );
            // Some events arrive late, as from another tab's clock.
            let at = if i % 9 == 0 { now - 20.0 * MIN } else { now };
            b.track(&ev, at).unwrap();
            let scan = b.scan();
            let mut stats: Vec<(u8, String, u32, f64)> = (scan.stats.iter())
                .map(|s| {
                    (
                        s.kind,
                        String::from_utf8(s.name.to_vec()).unwrap(),
                        s.count,
                        s.last,
                    )
                })
                .collect();
            stats.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            assert_eq!((stats, scan.sessions), naive(&b), "after event {i}");
            let bytes: usize = b.events().map(|e| stored_len(&e)).sum();
            assert_eq!(b.stored_bytes(), bytes);
            assert_eq!(b.log.n, b.events().count());
            assert!(b
                .events()
                .zip(b.events().skip(1))
                .all(|(a, c)| a.at <= c.at));
        }
    }

    #[test]
    fn top_keeps_the_most_frequent() {
        let mut b = store();
        for i in 0..20u32 {
            for _ in 0..=i {
                b.track(&format!(r#"{{"type":"view","category":"c{i}"}}"#), T0)
                    .unwrap();
            }
        }
        let f = b.features(T0, 0.0).unwrap();
        let cats: Vec<&str> = f
            .iter()
            .filter(|(n, _)| n.starts_with("cat:") && !n.ends_with(":recent"))
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(
            cats,
            [
                "cat:c19", "cat:c18", "cat:c17", "cat:c16", "cat:c15", "cat:c14", "cat:c13",
                "cat:c12"
            ]
        );
    }

    #[test]
    fn bad_events_are_refused_and_not_stored() {
        let mut b = Behavior::new(BehaviorConfig::parse(r#"{"types": ["cart"]}"#).unwrap());
        let long = "x".repeat(65);
        let cases = [
            ("{}", "INVALID_EVENT"),
            (r#"{"type": 3}"#, "INVALID_EVENT"),
            (r#"{"type": "hover"}"#, "UNKNOWN_EVENT_TYPE"),
            (r#"{"type": "view", "item": ""}"#, "INVALID_EVENT"),
            (
                &format!(r#"{{"type": "view", "category": "{long}"}}"#),
                "INVALID_EVENT",
            ),
            (r#"{"type": "view", "tags": "a"}"#, "INVALID_EVENT"),
            (r#"{"type": "view", "tags": [1]}"#, "INVALID_EVENT"),
            (
                r#"{"type": "view", "tags": ["1","2","3","4","5","6","7","8","9"]}"#,
                "INVALID_EVENT",
            ),
            (r#"{"type": "view", "value": null}"#, "INVALID_EVENT"),
            (r#"{"type": "view", "value": "3"}"#, "INVALID_EVENT"),
            (r#"{"type": "view", "value": 1e400}"#, "INVALID_EVENT"),
            (r#"{"type": "view", "when": 3}"#, "INVALID_EVENT"),
            (r#"[]"#, "INVALID_EVENT"),
            (r#"{"type": "view""#, "INVALID_EVENT"),
        ];
        for (ev, code) in cases {
            let e = b.track(ev, T0).unwrap_err();
            assert_eq!(e.code(), code, "{ev}: {e}");
        }
        assert_eq!(
            b.track(r#"{"type": "view"}"#, f64::INFINITY)
                .unwrap_err()
                .code(),
            "INVALID_OPTION"
        );
        assert_eq!(b.events().count(), 0);
        assert!(
            !b.journal.overflowed()
                && b.journal.entries().bytes.is_empty()
                && b.journal.entries().n == 0
        );
        // Repeated tags count once; a declared type is accepted.
        b.track(r#"{"type": "cart", "tags": ["a", "a"], "value": 2.5}"#, T0)
            .unwrap();
        assert_eq!(b.events().next().unwrap().tags, ["a"]);
    }

    #[test]
    fn the_journal_counts_and_drops_whole_records() {
        let rec = |at: f64, kind: &[u8]| {
            let mut w = Vec::new();
            EventRef {
                at,
                kind,
                item: None,
                category: None,
                tags: &[],
                ntags: 0,
                value: None,
            }
            .write(&mut w);
            w
        };
        let mut log = Log::default();
        for (i, kind) in [&b"view"[..], b"click", b"convert"].into_iter().enumerate() {
            log.add(rec(T0 + i as f64, kind));
        }
        assert_eq!(log.count(), 3);
        assert_eq!(log.shift_in(rec(T0 + 3.0, b"view")), Some(rec(T0, b"view")));
        log.drop_first(2);
        assert_eq!((log.count(), &log.bytes), (1, &rec(T0 + 3.0, b"view")));
        log.drop_first(5);
        assert_eq!((log.count(), log.bytes.len()), (0, 0));
        assert_eq!(log.shift_in(rec(T0, b"view")), None);
        assert_eq!(log.count(), 1);
    }

    #[test]
    fn bad_options_name_the_field() {
        for (text, field) in [
            (r#"{"maxAgeDays": 0}"#, "maxAgeDays"),
            (r#"{"maxEvents": 0}"#, "maxEvents"),
            (r#"{"maxBytes": 10}"#, "maxBytes"),
            (r#"{"sessionGapMinutes": 0.5}"#, "sessionGapMinutes"),
            (r#"{"types": ["view"]}"#, "types[0]"),
            (r#"{"types": ["a b"]}"#, "types[0]"),
            (r#"{"retain": 3}"#, "retain"),
        ] {
            let e = BehaviorConfig::parse(text).unwrap_err();
            assert_eq!(e.code(), "INVALID_OPTION");
            assert!(e.to_string().contains(field), "{e}");
        }
    }
}
