//! The local behaviour store: events the page tracks, kept on the device
//! under a retention policy, and the features derived from them.
//!
//! The page records events (`{type, item?, category?, tags?, value?}`); the
//! time comes from the injected clock. Retention keeps at most `maxEvents`
//! events, none older than `maxAgeDays`, and at most `maxBytes` of them as
//! stored; the oldest go first.
//!
//! Derived features (the `behavior` namespace; a slot only uses them when its
//! allowlist names that namespace) are kept incrementally: per event type,
//! category and tag a count and the time last seen, and the session count,
//! are updated as events arrive and leave, so a decision never rescans the
//! history. See [`Behavior::features`] for the exact list.
//!
//! Persistence follows the learner's protocol (`engine/persist.rs`): section
//! [`SECTION`] of the shared [`Snapshot`]; each store keeps the events it
//! tracked since its last commit (its journal) and adds them to what other
//! tabs stored, so no tab's events are lost to a last-writer-wins overwrite.
//!
//! Section layout 1 (integers little-endian): u8 layout; u32 event count;
//! per event, oldest first: time f64 (ms since the epoch); type (u16 length,
//! UTF-8); u8 flags (1 item, 2 category, 4 value); the item and category
//! strings when flagged; u8 tag count and the tags; the value f64 when
//! flagged.

use crate::prelude::*;

#[cfg(not(feature = "std"))]
use crate::prim::math::Float;

use crate::prim::math;

use alloc::collections::VecDeque;

use crate::error::{Error, Num, Result};

#[cfg(feature = "json")]
mod json;
use crate::store::{corrupt, put_f64, put_str, put_u32, Reader, Snapshot};

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
const MAX_TAGS: usize = 8;
/// Most custom event types.
const MAX_TYPES: usize = 16;
/// Categories (and, separately, tags) that become features: the most frequent.
pub(crate) const TOP: usize = 8;
const MINUTE_MS: f64 = 60_000.0;
pub(crate) const DAY_MS: f64 = 86_400_000.0;
/// Half-life of the `:recent` features.
const HALF_LIFE_MS: f64 = DAY_MS;
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

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
    /// Custom event types besides [`BUILTIN_TYPES`], sorted.
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
    /// Check the settings (the ranges of the JS options, with the
    /// TypeScript side's messages) and sort and deduplicate the custom
    /// types: 1 to 32 letters, digits, `_` or `-`, not a built-in type, at
    /// most 16.
    pub fn check(mut self) -> Result<BehaviorConfig> {
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
        crate::prim::sort::sort_strings(&mut self.types);
        self.types.dedup();
        Ok(self)
    }

    fn known_type(&self, t: &str) -> bool {
        BUILTIN_TYPES.contains(&t) || self.types.binary_search_by(|x| x.as_str().cmp(t)).is_ok()
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

impl Event {
    /// Bytes it takes in the section.
    fn stored_len(&self) -> usize {
        let s = |x: &Option<String>| x.as_ref().map_or(0, |x| 2 + x.len());
        8 + 2
            + self.kind.len()
            + 1
            + s(&self.item)
            + s(&self.category)
            + 1
            + self.tags.iter().map(|t| 2 + t.len()).sum::<usize>()
            + self.value.map_or(0, |_| 8)
    }
}

pub(crate) fn event_err(field: crate::error::Text, reason: crate::error::Text) -> Error {
    Error::InvalidEvent { field, reason }
}

/// A 1 to [`MAX_NAME`] byte name.
fn name(s: &str, field: &str) -> Result<()> {
    if s.is_empty() || s.len() > MAX_NAME {
        return Err(event_err(
            field.into(),
            text!("should be 1 to {MAX_NAME} bytes, but is {} bytes", s.len()),
        ));
    }
    Ok(())
}

/// A custom event type: 1 to 32 letters, digits, `_` or `-`, not built in.
pub(crate) fn is_type_name(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= MAX_TYPE
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        && !BUILTIN_TYPES.contains(&t)
}

impl Event {
    /// Check an event against `cfg` (its type known; item, category and
    /// tags 1 to 64 bytes; at most 8 tags, without repeats; a finite value).
    fn check(&self, cfg: &BehaviorConfig) -> Result<()> {
        if !cfg.known_type(&self.kind) {
            return Err(Error::UnknownEventType {
                kind: self.kind.chars().take(MAX_NAME).collect(),
            });
        }
        if let Some(i) = &self.item {
            name(i, "item")?;
        }
        if let Some(c) = &self.category {
            name(c, "category")?;
        }
        if self.tags.len() > MAX_TAGS {
            return Err(event_err(
                "tags".into(),
                text!("should hold at most {MAX_TAGS} tags"),
            ));
        }
        for (i, t) in self.tags.iter().enumerate() {
            name(t, "tags")?;
            if self.tags[..i].contains(t) {
                return Err(event_err("tags".into(), text!("repeat a tag")));
            }
        }
        if self.value.is_some_and(|v| !v.is_finite()) {
            return Err(event_err(
                "value".into(),
                text!("should be a finite number"),
            ));
        }
        Ok(())
    }
}

/// A derived feature's value: numeric, or categorical (hashed with its name).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Num(f64),
    /// A category, e.g. the weekday.
    Cat(&'static str),
}

/// Per event type, category or tag: how many retained events have it and
/// when the latest was.
#[derive(Debug, Clone, PartialEq)]
struct Stat {
    kind: u8,
    name: String,
    count: u32,
    last: f64,
}

const TYPE: u8 = 0;
const CATEGORY: u8 = 1;
const TAG: u8 = 2;

#[derive(Debug, Clone)]
struct Entry {
    ev: Event,
    /// It is the first event of a session (the gap before it exceeds the
    /// session gap, or it is the oldest retained).
    starts: bool,
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
    events: VecDeque<Entry>,
    /// Stored size of `events`.
    bytes: usize,
    /// Sorted by (kind, name).
    stats: Vec<Stat>,
    sessions: usize,
    /// Time of the newest session's first event.
    session_start: f64,
    /// Events tracked since the last commit; `None` once it outgrew
    /// `max_events` (the next merge then deduplicates instead).
    journal: Option<Vec<Event>>,
    /// The merged store of the last sync and the journal length then.
    staged: Option<(Box<Behavior>, usize)>,
}

impl Behavior {
    /// An empty store.
    pub fn new(cfg: BehaviorConfig) -> Behavior {
        Behavior {
            cfg,
            events: VecDeque::new(),
            bytes: 0,
            stats: Vec::new(),
            sessions: 0,
            session_start: 0.0,
            journal: Some(Vec::new()),
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
    pub fn track_event(&mut self, mut ev: Event, now_ms: f64) -> Result<()> {
        crate::prim::clock::check_now(now_ms)?;
        ev.check(&self.cfg)?;
        ev.at = now_ms;
        if let Some(j) = &mut self.journal {
            if j.len() >= self.cfg.max_events {
                self.journal = None;
            } else {
                j.push(ev.clone());
            }
        }
        self.insert(ev);
        self.retain(now_ms);
        Ok(())
    }

    /// Retained events, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().map(|e| &e.ev)
    }

    /// Retained events by type, in type order.
    pub fn counts(&self) -> Vec<(String, usize)> {
        self.stats
            .iter()
            .filter(|s| s.kind == TYPE)
            .map(|s| (s.name.clone(), s.count as usize))
            .collect()
    }

    /// Bytes the retained events take in the snapshot.
    pub fn stored_bytes(&self) -> usize {
        self.bytes
    }

    /// Drop every event and start empty (the page's `forget()`).
    pub fn clear(&mut self) {
        *self = Behavior::new(self.cfg.clone());
    }

    fn stat(&self, kind: u8, name: &str) -> core::result::Result<usize, usize> {
        self.stats
            .binary_search_by(|s| (s.kind, s.name.as_str()).cmp(&(kind, name)))
    }

    fn count(&mut self, kind: u8, name: &str, at: f64, add: bool) {
        match (self.stat(kind, name), add) {
            (Ok(i), true) => {
                let s = &mut self.stats[i];
                s.count += 1;
                s.last = s.last.max(at);
            }
            (Err(i), true) => self.stats.insert(
                i,
                Stat {
                    kind,
                    name: name.to_owned(),
                    count: 1,
                    last: at,
                },
            ),
            (Ok(i), false) => {
                // Events leave oldest first, so while any remain the newest
                // (`last`) is among them.
                self.stats[i].count -= 1;
                if self.stats[i].count == 0 {
                    self.stats.remove(i);
                }
            }
            (Err(_), false) => debug_assert!(false, "an event left that was never counted"),
        }
    }

    fn count_event(&mut self, ev: &Event, add: bool) {
        self.count(TYPE, &ev.kind, ev.at, add);
        if let Some(c) = &ev.category {
            self.count(CATEGORY, c, ev.at, add);
        }
        for t in &ev.tags {
            self.count(TAG, t, ev.at, add);
        }
    }

    fn starts_at(&self, i: usize) -> bool {
        i == 0 || self.events[i].ev.at - self.events[i - 1].ev.at > self.cfg.gap_ms()
    }

    /// Re-derive the session flag of entry `i`.
    fn flag(&mut self, i: usize) {
        if i < self.events.len() {
            let starts = self.starts_at(i);
            let e = &mut self.events[i];
            if e.starts != starts {
                e.starts = starts;
                if starts {
                    self.sessions += 1;
                } else {
                    self.sessions -= 1;
                }
            }
        }
    }

    /// Insert in time order (after events of the same time).
    fn insert(&mut self, ev: Event) {
        self.count_event(&ev, true);
        self.bytes += ev.stored_len();
        let i = self.events.partition_point(|e| e.ev.at <= ev.at);
        let appended = i == self.events.len();
        self.events.insert(i, Entry { ev, starts: false });
        self.flag(i);
        self.flag(i + 1);
        if appended {
            if self.events[i].starts {
                self.session_start = self.events[i].ev.at;
            }
        } else {
            // Out of order (another tab's clock): find the newest session's start.
            let last = (0..self.events.len())
                .rev()
                .find(|&j| self.events[j].starts);
            self.session_start = last.map_or(0.0, |j| self.events[j].ev.at);
        }
    }

    /// Apply retention at `now_ms`: too old, too many or too large, oldest first.
    fn retain(&mut self, now_ms: f64) {
        let oldest = now_ms - self.cfg.max_age_days * DAY_MS;
        while let Some(front) = self.events.front() {
            let over = front.ev.at < oldest
                || self.events.len() > self.cfg.max_events
                || self.bytes > self.cfg.max_bytes;
            if !over {
                break;
            }
            let Some(e) = self.events.pop_front() else {
                break;
            };
            self.count_event(&e.ev, false);
            self.bytes -= e.ev.stored_len();
            // The oldest retained event always starts a session.
            self.sessions -= 1;
            self.flag(0);
        }
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
        crate::prim::clock::check_now(now_ms)?;
        if !(-1440.0..=1440.0).contains(&tz_offset_minutes) {
            return Err(Error::option(
                "tzOffset",
                text!(
                    "should be minutes in [-1440, 1440], but is {}",
                    Num(tz_offset_minutes)
                ),
            ));
        }
        self.retain(now_ms);
        let t = (now_ms / MINUTE_MS).floor() * MINUTE_MS;
        let local = t - tz_offset_minutes * MINUTE_MS;
        let hour = (math::modulo(local, DAY_MS) / 3_600_000.0) as usize;
        // 1970-01-01 was a Thursday.
        let day = math::modulo(math::floor(local / DAY_MS) + 4.0, 7.0) as usize;
        const HOURS: [&str; 24] = [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
            "16", "17", "18", "19", "20", "21", "22", "23",
        ];
        let mut out = vec![
            ("hour".to_owned(), Value::Cat(HOURS[hour.min(23)])),
            ("weekday".to_owned(), Value::Cat(WEEKDAYS[day.min(6)])),
        ];
        let (Some(first), Some(last)) = (self.events.front(), self.events.back()) else {
            return Ok(out);
        };
        let mut num = |name: String, x: f64| {
            if x != 0.0 {
                out.push((name, Value::Num(x)));
            }
        };
        num("sessions".into(), math::ln_1p(self.sessions as f64));
        if t - last.ev.at <= self.cfg.gap_ms() {
            let start = self.session_start;
            let depth = self.events.len() - self.events.partition_point(|e| e.ev.at < start);
            num("sessionDepth".into(), math::ln_1p(depth as f64));
        }
        num(
            "daysSinceFirst".into(),
            ((t - first.ev.at) / DAY_MS).max(0.0),
        );
        for s in self.stats.iter().filter(|s| s.kind == TYPE) {
            num(["type:", &s.name].concat(), math::ln_1p(s.count as f64));
        }
        for (kind, prefix) in [(CATEGORY, "cat:"), (TAG, "tag:")] {
            for s in top(self.stats.iter().filter(|s| s.kind == kind)) {
                num([prefix, &s.name].concat(), math::ln_1p(s.count as f64));
                let age = ((t - s.last) / HALF_LIFE_MS).max(0.0);
                num([prefix, &s.name, ":recent"].concat(), math::exp2(-age));
            }
        }
        Ok(out)
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
        self.staged = None;
        crate::prim::clock::check_now(now_ms)?;
        let mut snap = match stored {
            Some(b) => Snapshot::decode(b, max_bytes)?,
            None => Snapshot::new(),
        };
        let stored = self.stored_events(&snap)?;
        let mut report = BehaviorSync {
            dropped: stored.as_ref().map_or(0, |s| s.1),
            ..BehaviorSync::default()
        };
        let mut merged = self.with_own(stored.map(|s| s.0));
        merged.retain(now_ms);
        snap.set_section(SECTION, merged.write_section());
        report.bytes = snap.encode(max_bytes)?;
        report.events = merged.events.len();
        let journaled = self.journal.as_ref().map_or(0, Vec::len);
        self.staged = Some((Box::new(merged), journaled));
        Ok(report)
    }

    /// Load the stored events on page load (or when consent allows storage
    /// again), keeping this store's own events not yet stored; they stay
    /// journaled for the next [`sync`](Behavior::sync), and nothing is
    /// encoded. Cancels a sync not yet committed. Errors as for `sync`; on
    /// error nothing changes. Returns the stored events dropped because
    /// their type is no longer declared.
    pub fn restore(&mut self, stored: &[u8], now_ms: f64, max_bytes: usize) -> Result<usize> {
        crate::prim::clock::check_now(now_ms)?;
        self.restore_snapshot(&Snapshot::decode(stored, max_bytes)?, now_ms)
    }

    /// [`restore`](Behavior::restore) from a snapshot already decoded, as a
    /// page load does once for all its parts.
    pub fn restore_snapshot(&mut self, snap: &Snapshot, now_ms: f64) -> Result<usize> {
        crate::prim::clock::check_now(now_ms)?;
        let Some((st, dropped)) = self.stored_events(snap)? else {
            self.staged = None;
            return Ok(0);
        };
        let mut merged = self.with_own(Some(st));
        merged.retain(now_ms);
        merged.journal = self.journal.take();
        *self = merged;
        Ok(dropped)
    }

    /// The events of the snapshot's behaviour section (none if it has none)
    /// whose type this store knows, and how many it did not.
    fn stored_events(&self, snap: &Snapshot) -> Result<Option<(Vec<Event>, usize)>> {
        snap.read(SECTION, |body| self.read_section(body))
    }

    /// A new store of the `stored` events plus this store's own: those not
    /// yet stored (the journal; when it overflowed, each own event `stored`
    /// does not already hold), or all of them when nothing is stored.
    fn with_own(&self, stored: Option<Vec<Event>>) -> Behavior {
        let something_stored = stored.is_some();
        let mut stored = stored.unwrap_or_default();
        // What was stored is in time order (the reader checks it), as is
        // `self.events()`: appended in one pass. Own events added to what
        // was stored are inserted where they fall (another tab's clock).
        let sorted = if something_stored {
            stored.len()
        } else {
            self.events.len()
        };
        match &self.journal {
            Some(j) if something_stored => stored.extend(j.iter().cloned()),
            _ => {
                let own: Vec<Event> = self
                    .events()
                    .filter(|e| !stored.contains(e))
                    .cloned()
                    .collect();
                stored.extend(own);
            }
        }
        let mut merged = Behavior::new(self.cfg.clone());
        let rest = stored.split_off(sorted);
        merged.append_sorted(stored);
        for e in rest {
            merged.insert(e);
        }
        merged
    }

    /// Append `events`, in time order and none older than the newest held,
    /// as [`insert`](Behavior::insert) would one by one, without its search
    /// (a page load restores up to `maxEvents` of them).
    fn append_sorted(&mut self, events: Vec<Event>) {
        debug_assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
        self.events.reserve(events.len());
        let gap = self.cfg.gap_ms();
        for ev in events {
            self.count_event(&ev, true);
            self.bytes += ev.stored_len();
            let starts = self.events.back().map_or(true, |p| ev.at - p.ev.at > gap);
            if starts {
                self.sessions += 1;
                self.session_start = ev.at;
            }
            self.events.push_back(Entry { ev, starts });
        }
    }

    /// Apply the last [`sync`](Behavior::sync) once its bytes were written;
    /// events tracked in between are kept. Returns false, changing nothing,
    /// when there is nothing to commit.
    pub fn commit(&mut self) -> bool {
        let Some((merged, since)) = self.staged.take() else {
            return false;
        };
        let mut next = *merged;
        let later: Option<Vec<Event>> =
            (self.journal.take()).map(|j| j.into_iter().skip(since).collect());
        // Events tracked since the sync: the journal's tail, or, if it
        // overflowed meanwhile, each own event the merge does not hold.
        let extra: Vec<Event> = match &later {
            Some(l) => l.clone(),
            None => self
                .events()
                .filter(|e| !next.events().any(|m| m == *e))
                .cloned()
                .collect(),
        };
        for e in extra {
            next.insert(e);
        }
        // Retention as of the newest event: commit has no clock of its own.
        let now = next.events.back().map_or(0.0, |e| e.ev.at);
        next.retain(now);
        next.journal = later;
        *self = next;
        true
    }

    fn write_section(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(5 + self.bytes);
        w.push(LAYOUT);
        put_u32(&mut w, self.events.len() as u32);
        for Entry { ev, .. } in &self.events {
            put_f64(&mut w, ev.at);
            put_str(&mut w, &ev.kind);
            let flags = u8::from(ev.item.is_some())
                | u8::from(ev.category.is_some()) << 1
                | u8::from(ev.value.is_some()) << 2;
            w.push(flags);
            for s in ev.item.iter().chain(&ev.category) {
                put_str(&mut w, s);
            }
            w.push(ev.tags.len() as u8);
            for t in &ev.tags {
                put_str(&mut w, t);
            }
            if let Some(v) = ev.value {
                put_f64(&mut w, v);
            }
        }
        w
    }

    /// Read a section: the events (oldest first) whose type this store
    /// knows, and how many it did not.
    fn read_section(&self, body: &[u8]) -> Result<(Vec<Event>, usize)> {
        let mut r = Reader::new(body, "behavior section");
        let layout = r.u8()?;
        if layout != LAYOUT {
            return Err(Error::SnapshotVersion {
                found: (layout as u32).into(),
                supported: (LAYOUT as u32).into(),
            });
        }
        // The smallest event: time, a 1-byte type, flags, tag count.
        let n = r.count(8 + 3 + 2)?;
        let mut out = Vec::with_capacity(n);
        let mut dropped = 0;
        let mut prev = f64::NEG_INFINITY;
        let stored = |r: &mut Reader<'_>, max: usize| -> Result<String> {
            let s = r.str()?;
            if s.is_empty() || s.len() > max {
                return Err(corrupt(text!(
                    "a name of {} bytes (1 to {max} allowed)",
                    s.len()
                )));
            }
            Ok(s.to_owned())
        };
        for _ in 0..n {
            let at = r.f64()?;
            if at < prev {
                return Err(corrupt("events are out of time order".into()));
            }
            prev = at;
            let kind = stored(&mut r, MAX_TYPE)?;
            let flags = r.u8()?;
            if flags > 7 {
                return Err(corrupt(text!("unknown event flags {flags:#x}")));
            }
            let item = if flags & 1 != 0 {
                Some(stored(&mut r, MAX_NAME)?)
            } else {
                None
            };
            let category = if flags & 2 != 0 {
                Some(stored(&mut r, MAX_NAME)?)
            } else {
                None
            };
            let k = r.u8()? as usize;
            if k > MAX_TAGS {
                return Err(corrupt(text!(
                    "an event with {k} tags (at most {MAX_TAGS})"
                )));
            }
            let mut tags = Vec::with_capacity(k);
            for _ in 0..k {
                let t = stored(&mut r, MAX_NAME)?;
                if tags.contains(&t) {
                    return Err(corrupt(text!("an event repeats the tag `{t}`")));
                }
                tags.push(t);
            }
            let value = if flags & 4 != 0 { Some(r.f64()?) } else { None };
            if self.cfg.known_type(&kind) {
                out.push(Event {
                    at,
                    kind,
                    item,
                    category,
                    tags,
                    value,
                });
            } else {
                dropped += 1;
            }
        }
        r.finish()?;
        Ok((out, dropped))
    }
}

/// The [`TOP`] most frequent, ties to the most recent, then by name.
fn top<'a>(stats: impl Iterator<Item = &'a Stat>) -> Vec<&'a Stat> {
    let better = |a: &Stat, b: &Stat| {
        (a.count, a.last) > (b.count, b.last)
            || ((a.count, a.last) == (b.count, b.last) && a.name < b.name)
    };
    let mut best: Vec<&Stat> = Vec::with_capacity(TOP + 1);
    for s in stats {
        let i = best.iter().position(|b| better(s, b)).unwrap_or(best.len());
        if i < TOP {
            best.insert(i, s);
            best.truncate(TOP);
        }
    }
    best
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

    /// Recompute the aggregates from scratch, to check the incremental ones.
    fn rescan(b: &Behavior) -> (Vec<Stat>, usize) {
        let mut fresh = Behavior::new(b.cfg.clone());
        for e in b.events() {
            fresh.events.push_back(Entry {
                ev: e.clone(),
                starts: false,
            });
        }
        let mut sessions = 0;
        for i in 0..fresh.events.len() {
            if fresh.starts_at(i) {
                sessions += 1;
            }
            let ev = fresh.events[i].ev.clone();
            fresh.count_event(&ev, true);
        }
        (fresh.stats, sessions)
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
        assert!((num(&f, "tag:x:recent").unwrap() - math::exp2(-1.0f64 / 1440.0)).abs() < 1e-12);
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
        assert!(b.stats.is_empty());
        assert_eq!(b.sessions, 0);
    }

    #[test]
    fn incremental_state_equals_a_rescan() {
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
            let (stats, sessions) = rescan(&b);
            assert_eq!(b.stats, stats, "after event {i}");
            assert_eq!(b.sessions, sessions, "after event {i}");
            let bytes: usize = b.events().map(Event::stored_len).sum();
            assert_eq!(b.bytes, bytes);
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
        assert!(b.journal.as_ref().is_some_and(Vec::is_empty));
        // Repeated tags count once; a declared type is accepted.
        b.track(r#"{"type": "cart", "tags": ["a", "a"], "value": 2.5}"#, T0)
            .unwrap();
        assert_eq!(b.events().next().unwrap().tags, ["a"]);
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
