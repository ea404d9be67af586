//! Persistence of the behaviour store: reload, two tabs tracking at once, the
//! learner's section kept alongside, and bad stored data.

use insitu::{
    Behavior, BehaviorConfig, BehaviorValue, Engine, EngineConfig, Event, Rng, Snapshot,
    BEHAVIOR_SECTION, DEFAULT_MAX_SNAPSHOT_BYTES as MAX,
};

const T0: f64 = 1_700_000_040_000.0;
const MIN: f64 = 60_000.0;

fn behavior(options: &str) -> Behavior {
    Behavior::new(BehaviorConfig::parse(options).unwrap())
}

fn event(i: usize) -> String {
    format!(
        r#"{{"type": "{}", "item": "sku-{i}", "category": "c{}", "tags": ["t{}"], "value": {}}}"#,
        ["view", "click", "convert"][i % 3],
        i % 5,
        i % 4,
        i as f64 / 4.0
    )
}

/// What a tab does under the storage lock: read, sync, write, commit.
fn save(b: &mut Behavior, store: &mut Option<Vec<u8>>, now: f64) -> insitu::BehaviorSync {
    let r = b.sync(store.as_deref(), now, MAX).unwrap();
    *store = Some(r.bytes.clone());
    assert!(b.commit());
    r
}

fn events(b: &Behavior) -> Vec<Event> {
    b.events().collect()
}

#[test]
fn reload_restores_events_and_features() {
    let mut a = behavior("{}");
    for i in 0..50 {
        a.track(&event(i), T0 + i as f64 * MIN).unwrap();
    }
    let mut store = None;
    let r = save(&mut a, &mut store, T0 + 50.0 * MIN);
    assert_eq!(r.events, 50);
    let mut b = behavior("{}");
    save(&mut b, &mut store, T0 + 51.0 * MIN);
    assert_eq!(events(&b), events(&a));
    let now = T0 + 52.0 * MIN;
    assert_eq!(
        b.features(now, 60.0).unwrap(),
        a.features(now, 60.0).unwrap()
    );
    assert_eq!(b.counts(), a.counts());
}

#[test]
fn two_tabs_lose_no_event() {
    let options = r#"{"maxEvents": 5000, "maxBytes": 262144}"#;
    let (mut a, mut b) = (behavior(options), behavior(options));
    let mut store = None;
    for i in 0..1000 {
        let t = T0 + i as f64 * 1000.0;
        a.track(&event(2 * i), t).unwrap();
        b.track(&event(2 * i + 1), t + 500.0).unwrap();
        // Each tab saves at its own pace.
        if i % 7 == 0 {
            save(&mut a, &mut store, t);
        }
        if i % 11 == 0 {
            save(&mut b, &mut store, t + 500.0);
        }
    }
    let end = T0 + 1000.0 * 1000.0;
    save(&mut a, &mut store, end);
    save(&mut b, &mut store, end);
    save(&mut a, &mut store, end);
    assert_eq!(events(&a).len(), 2000);
    assert_eq!(events(&a), events(&b));
    let total: usize = a.counts().iter().map(|c| c.1).sum();
    assert_eq!(total, 2000);
    // Every item once, in time order.
    let mut items: Vec<usize> = events(&a)
        .iter()
        .map(|e| e.item.as_ref().unwrap()[4..].parse().unwrap())
        .collect();
    assert_eq!(items, (0..2000).collect::<Vec<_>>());
    items.dedup();
    assert_eq!(items.len(), 2000);
}

#[test]
fn nothing_changes_until_commit_and_later_events_are_kept_once() {
    let mut a = behavior("{}");
    a.track(&event(0), T0).unwrap();
    let r = a.sync(None, T0, MAX).unwrap();
    // Tracked while the write is in flight.
    a.track(&event(1), T0 + MIN).unwrap();
    assert!(a.commit());
    assert!(!a.commit(), "one sync commits once");
    assert_eq!(events(&a).len(), 2);
    // The stored bytes hold the first; the next save adds the second once.
    let mut store = Some(r.bytes);
    let r = save(&mut a, &mut store, T0 + 2.0 * MIN);
    assert_eq!(r.events, 2);
    let r = save(&mut a, &mut store, T0 + 3.0 * MIN);
    assert_eq!(r.events, 2);
    // A failed sync leaves nothing to commit.
    assert!(a.sync(Some(b"junk"), T0, MAX).is_err());
    assert!(!a.commit());
}

#[test]
fn an_overflowed_journal_merges_without_duplicates() {
    let options = r#"{"maxEvents": 200, "maxBytes": 262144}"#;
    let (mut a, mut b) = (behavior(options), behavior(options));
    let mut store = None;
    for i in 0..50 {
        a.track(&event(i), T0 + i as f64).unwrap();
    }
    save(&mut a, &mut store, T0 + 50.0);
    b.track(&event(10_000), T0 + 10_000.0).unwrap();
    save(&mut b, &mut store, T0 + 10_000.0);
    // a tracks past its journal (200 events) without saving, with its clock
    // set back: the events it saved stay among its newest 200, and must not
    // be stored twice.
    for i in 50..300 {
        a.track(&event(i), T0 - 1000.0 + i as f64).unwrap();
    }
    let r = save(&mut a, &mut store, T0 + 10_000.0);
    assert_eq!(r.events, 200);
    let mut items: Vec<String> = events(&a).into_iter().filter_map(|e| e.item).collect();
    assert!(
        items.contains(&"sku-10000".to_owned()),
        "b's event was lost"
    );
    items.sort();
    items.dedup();
    assert_eq!(items.len(), 200, "an event was stored twice");
}

#[test]
fn events_tracked_past_the_journal_during_a_write_are_kept() {
    let mut a = behavior(r#"{"maxEvents": 200, "maxBytes": 262144}"#);
    a.track(&event(0), T0).unwrap();
    let r = a.sync(None, T0, MAX).unwrap();
    for i in 1..251 {
        a.track(&event(i), T0 + i as f64).unwrap();
    }
    let newest = events(&a);
    assert!(a.commit());
    assert_eq!(events(&a), newest);
    let mut store = Some(r.bytes);
    assert_eq!(save(&mut a, &mut store, T0 + 300.0).events, 200);
    assert_eq!(events(&a), newest);
}

#[test]
fn retention_applies_on_merge_and_removed_types_are_dropped() {
    let mut a = behavior(r#"{"types": ["cart"], "maxAgeDays": 1}"#);
    a.track(r#"{"type": "cart"}"#, T0).unwrap();
    a.track(r#"{"type": "view"}"#, T0 + MIN).unwrap();
    let mut store = None;
    save(&mut a, &mut store, T0 + MIN);
    // The site no longer declares `cart`.
    let mut b = behavior(r#"{"maxAgeDays": 1}"#);
    let r = save(&mut b, &mut store, T0 + 2.0 * MIN);
    assert_eq!((r.events, r.dropped), (1, 1));
    // Two days later nothing is kept.
    let r = save(&mut b, &mut store, T0 + 2.0 * 86_400_000.0);
    assert_eq!(r.events, 0);
}

#[test]
fn the_learner_section_is_carried_over() {
    let mut e = Engine::new(EngineConfig::parse(r#"{"variants": ["a", "b"]}"#, 1).unwrap());
    let r = e.sync(None, "hero", 0.0, MAX).unwrap();
    assert!(e.commit());
    let mut b = behavior("{}");
    b.track(&event(0), T0).unwrap();
    let r = b.sync(Some(&r.bytes), T0, MAX).unwrap();
    let snap = Snapshot::decode(&r.bytes, MAX).unwrap();
    let names: Vec<&str> = snap.sections().map(|s| s.0).collect();
    assert_eq!(names, ["behavior", "learner:hero"]);
    // And the learner keeps the behaviour section.
    let r = e.sync(Some(&r.bytes), "hero", 0.0, MAX).unwrap();
    let snap = Snapshot::decode(&r.bytes, MAX).unwrap();
    assert!(snap.section(BEHAVIOR_SECTION).is_some());
}

fn with_section(body: &[u8]) -> Vec<u8> {
    let mut s = Snapshot::new();
    s.set_section(BEHAVIOR_SECTION, body.to_vec());
    s.encode(MAX).unwrap()
}

#[test]
fn bad_stored_data_is_refused_and_changes_nothing() {
    let mut a = behavior("{}");
    for i in 0..20 {
        a.track(&event(i), T0 + i as f64).unwrap();
    }
    let good = a.sync(None, T0 + 20.0, MAX).unwrap().bytes;
    let body = Snapshot::decode(&good, MAX)
        .unwrap()
        .section(BEHAVIOR_SECTION)
        .unwrap()
        .to_vec();
    let before = events(&a);
    let check = |b: &mut Behavior, bytes: &[u8]| -> Option<&'static str> {
        match b.sync(Some(bytes), T0 + 20.0, MAX) {
            Ok(_) => None,
            Err(e) => {
                assert!(!b.commit());
                Some(e.code())
            }
        }
    };
    // Every truncation of the section.
    for n in 0..body.len() {
        let code = check(&mut a, &with_section(&body[..n]));
        assert_eq!(code, Some("SNAPSHOT_CORRUPT"), "truncated to {n}");
    }
    // A hostile count is refused before anything is reserved.
    let mut huge = vec![1u8];
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        check(&mut a, &with_section(&huge)),
        Some("SNAPSHOT_CORRUPT")
    );
    // A newer section layout.
    let mut newer = body.clone();
    newer[0] = 2;
    assert_eq!(
        check(&mut a, &with_section(&newer)),
        Some("SNAPSHOT_VERSION")
    );
    // Events out of time order, a NaN time, 9 tags, an empty name.
    let mut swapped = body.clone();
    swapped[5..13].copy_from_slice(&(T0 + 1e9).to_le_bytes());
    assert_eq!(
        check(&mut a, &with_section(&swapped)),
        Some("SNAPSHOT_CORRUPT")
    );
    let mut nan = body.clone();
    nan[5..13].copy_from_slice(&f64::NAN.to_le_bytes());
    assert_eq!(check(&mut a, &with_section(&nan)), Some("SNAPSHOT_CORRUPT"));
    // Seeded mutations: each is refused or merges into bytes that read back.
    let mut rng = insitu::Rng::new(5);
    let mut refused = 0;
    for _ in 0..3000 {
        let mut m = body.clone();
        for _ in 0..1 + rng.next_u64() % 3 {
            let i = (rng.next_u64() as usize) % m.len();
            m[i] ^= 1 << (rng.next_u64() % 8);
        }
        let mut b = behavior("{}");
        match b.sync(Some(&with_section(&m)), T0 + 20.0, MAX) {
            Err(_) => refused += 1,
            Ok(r) => {
                let mut c = behavior("{}");
                c.sync(Some(&r.bytes), T0 + 20.0, MAX).unwrap();
            }
        }
    }
    assert!(refused > 1000, "only {refused} of 3000 mutations refused");
    assert_eq!(events(&a), before);
}

#[test]
fn restore_loads_stored_events_and_keeps_own_unstored_ones_once() {
    let mut a = behavior("{}");
    for i in 0..40 {
        a.track(&event(i), T0 + i as f64 * MIN).unwrap();
    }
    let mut store = None;
    save(&mut a, &mut store, T0 + 40.0 * MIN);
    // B tracked before it could read storage (consent came later).
    let mut b = behavior("{}");
    for i in 40..50 {
        b.track(&event(i), T0 + i as f64 * MIN).unwrap();
    }
    let stored = store.clone().unwrap();
    let now = T0 + 50.0 * MIN;
    assert_eq!(b.restore(&stored, now, MAX).unwrap(), 0);
    assert_eq!(b.events().count(), 50);
    // A second restore (the same bytes) adds nothing.
    b.restore(&stored, now, MAX).unwrap();
    assert_eq!(b.events().count(), 50);
    // Its features are those of one store that saw all 50.
    let mut all = behavior("{}");
    for i in 0..50 {
        all.track(&event(i), T0 + i as f64 * MIN).unwrap();
    }
    assert_eq!(
        b.features(now, 0.0).unwrap(),
        all.features(now, 0.0).unwrap()
    );
    // Its own 10 reach storage with the next sync, once.
    save(&mut b, &mut store, now);
    let mut c = behavior("{}");
    c.restore(store.as_deref().unwrap(), now, MAX).unwrap();
    assert_eq!(events(&c), events(&all));
}

#[test]
fn restore_refuses_bad_data_and_changes_nothing() {
    let mut a = behavior("{}");
    a.track(&event(0), T0).unwrap();
    let mut store = None;
    save(&mut a, &mut store, T0);
    let good = store.unwrap();
    let mut b = behavior("{}");
    b.track(&event(1), T0 + MIN).unwrap();
    let before = events(&b);
    for (bad, code) in [
        (&b"nope"[..], "SNAPSHOT_FOREIGN"),
        (&good[..good.len() - 2], "SNAPSHOT_CORRUPT"),
    ] {
        assert_eq!(b.restore(bad, T0, MAX).unwrap_err().code(), code);
        assert_eq!(events(&b), before);
    }
    assert_eq!(
        b.restore(&good, f64::INFINITY, MAX).unwrap_err().code(),
        "INVALID_OPTION"
    );
    assert_eq!(
        b.restore(&good, T0, 64).unwrap_err().code(),
        "SNAPSHOT_TOO_LARGE"
    );
    assert_eq!(events(&b), before);
}

/// Restore builds the store in one pass; sessions (gaps over 30 minutes),
/// events at the same instant, and own events older than the stored ones
/// must come out as in a store that tracked every event itself.
#[test]
fn restore_in_one_pass_matches_tracking_every_event() {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut step = || rng.next_u64() % 100;
    let mut at = T0;
    let mut times = Vec::new();
    for _ in 0..300 {
        // Same instant, minutes apart, exactly the gap (still the same
        // session), or a new session (over 30 minutes).
        at += match step() {
            0..=19 => 0.0,
            20..=79 => (1 + step() % 20) as f64 * MIN,
            80..=84 => 30.0 * MIN,
            _ => (31 + step()) as f64 * MIN,
        };
        times.push(at);
    }
    let now = at + MIN;
    let options = r#"{"maxEvents": 1000, "maxBytes": 262144}"#;
    let mut a = behavior(options);
    for (i, t) in times.iter().enumerate().take(280) {
        a.track(&event(i), *t).unwrap();
    }
    let mut store = None;
    save(&mut a, &mut store, now);
    // B tracked the last 20 itself, plus one event older than all stored
    // ones (a clock behind the other tab's) before it read storage.
    let mut b = behavior(options);
    for (i, t) in times.iter().enumerate().skip(280) {
        b.track(&event(i), *t).unwrap();
    }
    b.track(&event(999), T0 - 90.0 * MIN).unwrap();
    b.restore(store.as_deref().unwrap(), now, MAX).unwrap();
    let mut all = behavior(options);
    all.track(&event(999), T0 - 90.0 * MIN).unwrap();
    for (i, t) in times.iter().enumerate() {
        all.track(&event(i), *t).unwrap();
    }
    assert_eq!(events(&b), events(&all));
    let (fb, fa) = (
        b.features(now, 0.0).unwrap(),
        all.features(now, 0.0).unwrap(),
    );
    assert_eq!(fb, fa);
    // The sequence has many sessions, so the session flags were exercised.
    let sessions = fa.iter().find(|(n, _)| n == "sessions").map(|(_, v)| v);
    assert!(
        matches!(sessions, Some(BehaviorValue::Num(s)) if *s > 20f64.ln_1p()),
        "{sessions:?}"
    );
    // A reload of that store alone (nothing own) gives the same again.
    let mut c = behavior(options);
    save(&mut b, &mut store, now);
    c.restore(store.as_deref().unwrap(), now, MAX).unwrap();
    assert_eq!(c.features(now, 0.0).unwrap(), fa);
}
