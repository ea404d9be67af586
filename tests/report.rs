//! A slot's reports (issue #22, part 1): the statistics of a period, merged
//! across tabs by addition, closed into one measurement once the period is
//! over, and the ledger that makes a period reported at most once.

use insitu::report::{
    decode, encode, ledger, period_of, Bounds, Group, Outcome, Owner, ReportTask, Spec, Stats,
    Tally,
};
use insitu::{Engine, EngineConfig, RankOptions, Snapshot, DEFAULT_MAX_SNAPSHOT_BYTES as MAX};

const DAY: f64 = 86_400_000.0;
const SLOT: &str = "hero";
const TASK: &str = "shop-hero";
/// A feature space no slot of these tests has (the site changed its features).
const OTHER_SPACE: &str = "f1-00000000";

/// An engine without reports, its features in `2^bits` slots.
fn plain(entropy: u64, bits: u8) -> Engine {
    let text = format!(
        r#"{{"variants": ["a", "b", "c"], "seed": 11,
            "features": {{"bits": {bits}, "allow": ["page", "user"]}}}}"#
    );
    Engine::new(EngineConfig::parse(&text, entropy).unwrap())
}

/// An engine with daily reports and the learner's statistics.
fn engine(entropy: u64, bits: u8) -> Engine {
    let mut e = plain(entropy, bits);
    e.enable_reports(1, true).unwrap();
    e
}

fn bounds() -> Bounds {
    Bounds {
        decisions: 1000,
        exposures: 1000,
        rewards: 1000.0,
        xy: 1000.0,
        xx: 1000.0,
    }
}

fn spec_of(e: &mut Engine, b: Bounds) -> Spec {
    let (k, d) = e.reports().unwrap().shape();
    Spec::new(k, d, 1 << 12, b, None).unwrap()
}

fn context(t: usize) -> String {
    let sections = ["news", "sports", "tech", "travel"];
    format!(
        r#"{{"context": {{"page": {{"section": "{}", "scroll": {}}}, "user": {{"visits": {}}}}}, "defer": {}}}"#,
        sections[t % 4],
        (t % 7) as f64 / 7.0,
        t % 3,
        t % 5 == 0
    )
}

/// Rank, activate the deferred ones but every tenth, and reward most of
/// them; `expect` gets what the engine learned from, computed from its
/// decisions and features, not from its tally.
fn step(e: &mut Engine, t: usize, now: f64, expect: &mut Stats) {
    let d = e
        .rank(&RankOptions::parse(&context(t)).unwrap(), now)
        .unwrap();
    let k = d.index;
    let (idx, val) = e.last_features(k);
    let (idx, val) = (idx.to_vec(), val.to_vec());
    let id = d.decision_id.unwrap();
    expect.decisions[k] += 1;
    let deferred = t % 5 == 0;
    if deferred && t % 10 == 0 {
        return; // never shown: a decision, no exposure, no reward
    }
    if deferred {
        e.activate(&id, now).unwrap();
        // A second activation counts once.
        e.activate(&id, now).unwrap();
    }
    expect.exposures[k] += 1;
    if t % 3 == 2 {
        return; // shown, not rewarded
    }
    let r = if (t + k) % 4 == 0 { 1.0 } else { 0.25 };
    e.reward(&id, r, now).unwrap();
    expect.rewards[k] += r;
    let dim = expect.xy.len() / 3;
    for (i, x) in idx.iter().zip(val) {
        expect.xy[k * dim + *i as usize] += r * x;
        expect.xx[k * dim + *i as usize] += x * x;
    }
}

/// The task of the tests' slot, over feature space `space`, allowed to close a period.
fn task<'a>(spec: &'a Spec, space: &'a str) -> ReportTask<'a> {
    ReportTask {
        slot: SLOT,
        owner: Owner::Slot,
        task: TASK,
        spec,
        space,
        close: true,
    }
}

/// Sync the tally (and the learner, as the page does) onto `stored` at
/// `now`, commit, and return the bytes written.
fn sync(e: &mut Engine, stored: Option<&[u8]>, now: f64, spec: &Spec) -> Vec<u8> {
    let bytes = e.sync(stored, SLOT, now, MAX).unwrap().bytes;
    assert!(e.commit());
    let version = e.feature_space();
    let t = e.reports().unwrap();
    let r = t
        .sync(Some(&bytes), now, MAX, task(spec, &version))
        .unwrap();
    assert!(!r.corrupt);
    assert!(t.commit());
    r.bytes
}

fn as_i64(m: &[u64]) -> Vec<i64> {
    m.iter().map(|x| *x as i64).collect()
}

/// The decoded sums equal `expect` up to the fixed point's resolution
/// (half a unit per entry, rounded to nearest).
fn assert_decodes_to(spec: &Spec, m: &[u64], expect: &Stats) {
    let d = decode(spec, &as_i64(m)).unwrap();
    assert_eq!(d.reports, 1.0);
    let unit = 1.0 / spec.scale() as f64;
    for k in 0..spec.variants() {
        assert_eq!(d.decisions[k], expect.decisions[k] as f64, "decisions[{k}]");
        assert_eq!(d.exposures[k], expect.exposures[k] as f64, "exposures[{k}]");
        assert!(
            (d.rewards[k] - expect.rewards[k]).abs() <= unit / 2.0,
            "rewards[{k}]"
        );
    }
    for i in 0..expect.xy.len() {
        assert!(
            (d.xy[i] - expect.xy[i]).abs() <= unit / 2.0 + 1e-12,
            "xy[{i}]: {} vs {}",
            d.xy[i],
            expect.xy[i]
        );
        assert!(
            (d.xx[i] - expect.xx[i]).abs() <= unit / 2.0 + 1e-12,
            "xx[{i}]"
        );
    }
}

#[test]
fn a_closed_period_is_the_encoding_of_what_the_learner_learned() {
    let mut e = engine(1, 4);
    let spec = spec_of(&mut e, bounds());
    let mut expect = Stats::zeros(&spec);
    let day = 20_000.0 * DAY;
    let mut stored: Option<Vec<u8>> = None;
    for t in 0..60 {
        step(&mut e, t, day + t as f64 * 60_000.0, &mut expect);
        if t % 13 == 0 || t == 59 {
            stored = Some(sync(
                &mut e,
                stored.as_deref(),
                day + t as f64 * 60_000.0,
                &spec,
            ));
            // Nothing closes within the period.
            assert!(e.reports().unwrap().take().is_none());
        }
    }
    // What is not stored when the period ends counts in the period that
    // stores it: this decision is the next period's.
    let mut next_period = Stats::zeros(&spec);
    step(&mut e, 60, day + DAY - 1.0, &mut next_period);
    assert!(expect.xy.iter().any(|x| *x != 0.0) && expect.exposures.iter().sum::<u32>() < 60);
    // The next day: the first sync closes the period.
    let next = day + DAY + 5.0;
    let bytes = sync(&mut e, stored.as_deref(), next, &spec);
    let c = e.reports().unwrap().take().expect("the period closed");
    assert_eq!(c.period, period_of(day, 1));
    assert!(c.clipped.is_empty());
    assert_eq!(c.measurement, encode(&spec, &expect).unwrap().entries);
    assert_decodes_to(&spec, &c.measurement, &expect);
    assert!(e.reports().unwrap().take().is_none(), "handed over once");
    // The ledger lists it, with the exact payload.
    let snap = Snapshot::decode(&bytes, MAX).unwrap();
    let (entries, payload) = ledger(&snap, SLOT, Owner::Slot).unwrap().unwrap();
    assert_eq!(entries.len(), 1);
    let l = &entries[0];
    assert_eq!(
        (l.period, l.task.as_str(), l.outcome),
        (c.period, TASK, Outcome::Reported)
    );
    assert_eq!(
        (l.length as usize, l.bits as usize, l.scale),
        (spec.len(), spec.bits(), spec.scale())
    );
    assert_eq!(payload, c.measurement);
    // The learner's section is still there, beside the report's.
    assert!(snap.section("learner:hero").is_some() && snap.section("report:hero").is_some());
    // A later sync in the new period closes nothing more.
    let bytes = sync(&mut e, Some(&bytes), next + 1000.0, &spec);
    assert!(e.reports().unwrap().take().is_none());
    let snap = Snapshot::decode(&bytes, MAX).unwrap();
    assert_eq!(
        ledger(&snap, SLOT, Owner::Slot).unwrap().unwrap().0.len(),
        1
    );
    // The period after holds the decision stored at its start.
    sync(&mut e, Some(&bytes), next + DAY, &spec);
    let c = e.reports().unwrap().take().unwrap();
    assert_eq!(c.period, period_of(next, 1));
    assert_decodes_to(&spec, &c.measurement, &next_period);
}

#[test]
fn two_tabs_add_up_and_the_period_is_reported_once() {
    let (mut a, mut b) = (engine(1, 4), engine(2, 4));
    let spec = spec_of(&mut a, bounds());
    let mut expect = Stats::zeros(&spec);
    let day = 20_100.0 * DAY;
    let mut stored: Option<Vec<u8>> = None;
    for round in 0..6 {
        for t in 0..7 {
            let at = day + (round * 10 + t) as f64 * 1000.0;
            step(&mut a, round * 100 + t, at, &mut expect);
            step(&mut b, round * 100 + 50 + t, at, &mut expect);
        }
        // Each tab merges onto what the other stored.
        let at = day + round as f64 * 60_000.0;
        stored = Some(sync(&mut a, stored.as_deref(), at, &spec));
        stored = Some(sync(&mut b, stored.as_deref(), at, &spec));
    }
    // Tab b closes the period; tab a, syncing afterwards, closes nothing.
    let next = day + DAY;
    let bytes = sync(&mut b, stored.as_deref(), next, &spec);
    let bytes = sync(&mut a, Some(&bytes), next + 1.0, &spec);
    let c = b.reports().unwrap().take().expect("b closed the period");
    assert!(a.reports().unwrap().take().is_none());
    assert_decodes_to(&spec, &c.measurement, &expect);
    let snap = Snapshot::decode(&bytes, MAX).unwrap();
    assert_eq!(
        ledger(&snap, SLOT, Owner::Slot).unwrap().unwrap().0.len(),
        1
    );
}

#[test]
fn a_sync_not_committed_loses_and_doubles_nothing() {
    let mut e = engine(1, 4);
    let spec = spec_of(&mut e, bounds());
    let mut expect = Stats::zeros(&spec);
    let day = 20_200.0 * DAY;
    let version = e.feature_space();
    for t in 0..5 {
        step(&mut e, t, day, &mut expect);
    }
    // A sync whose write failed (no commit), then an update, then a sync that is written.
    let _ = e
        .reports()
        .unwrap()
        .sync(None, day, MAX, task(&spec, &version))
        .unwrap();
    step(&mut e, 5, day, &mut expect);
    let written = e
        .reports()
        .unwrap()
        .sync(None, day, MAX, task(&spec, &version))
        .unwrap();
    // An update between the sync and its commit stays for the next sync.
    step(&mut e, 6, day, &mut expect);
    assert!(e.reports().unwrap().commit());
    assert!(!e.reports().unwrap().commit(), "one commit per sync");
    let bytes = e
        .reports()
        .unwrap()
        .sync(Some(&written.bytes), day, MAX, task(&spec, &version))
        .unwrap()
        .bytes;
    assert!(e.reports().unwrap().commit());
    let _ = e
        .reports()
        .unwrap()
        .sync(Some(&bytes), day + DAY, MAX, task(&spec, &version))
        .unwrap();
    assert!(e.reports().unwrap().commit());
    let c = e.reports().unwrap().take().unwrap();
    assert_decodes_to(&spec, &c.measurement, &expect);
}

#[test]
fn bounds_clip_and_the_ledger_says_which_groups() {
    let mut e = engine(1, 4);
    let tight = Bounds {
        decisions: 5,
        exposures: 50,
        rewards: 2.0,
        xy: 1000.0,
        xx: 1000.0,
    };
    let spec = spec_of(&mut e, tight);
    let mut expect = Stats::zeros(&spec);
    let day = 20_300.0 * DAY;
    for t in 0..40 {
        step(&mut e, t, day, &mut expect);
    }
    let bytes = sync(&mut e, None, day, &spec);
    let bytes = sync(&mut e, Some(&bytes), day + DAY, &spec);
    let c = e.reports().unwrap().take().unwrap();
    assert_eq!(c.clipped, vec![Group::Decisions, Group::Rewards]);
    let d = decode(&spec, &as_i64(&c.measurement)).unwrap();
    assert!(d.decisions.iter().sum::<f64>() <= 5.0);
    assert!(d.rewards.iter().sum::<f64>() <= 2.0);
    assert!(c.measurement.iter().all(|x| *x < 1 << spec.bits()));
    let snap = Snapshot::decode(&bytes, MAX).unwrap();
    let l = &ledger(&snap, SLOT, Owner::Slot).unwrap().unwrap().0[0];
    assert_eq!(
        l.clipped,
        1 << Group::Decisions as u8 | 1 << Group::Rewards as u8
    );
    assert_eq!(l.bounds, tight);
}

#[test]
fn a_period_the_ledger_lists_is_refused_not_reported_twice() {
    let mut e = engine(1, 4);
    let spec = spec_of(&mut e, bounds());
    let mut expect = Stats::zeros(&spec);
    let day = 20_700.0 * DAY;
    step(&mut e, 1, day, &mut expect);
    let bytes = sync(&mut e, None, day, &spec);
    let bytes = sync(&mut e, Some(&bytes), day + DAY, &spec);
    assert!(e.reports().unwrap().take().is_some());
    step(&mut e, 2, day + DAY, &mut expect);
    let bytes = sync(&mut e, Some(&bytes), day + DAY, &spec);
    // A snapshot whose ledger lists the stored period as reported already
    // (stored data put back from a copy): its ledger entry's period is set
    // to the stored period's.
    let forged = forge_ledger_period(&bytes, period_of(day + DAY, 1));
    let version = e.feature_space();
    let t = e.reports().unwrap();
    let r = t
        .sync(Some(&forged), day + 2.0 * DAY, MAX, task(&spec, &version))
        .unwrap();
    assert_eq!(r.entries.len(), 1);
    assert_eq!(r.entries[0].outcome, Outcome::Duplicate);
    assert_eq!(r.refused.as_ref().map(|e| e.code()), Some("REPORT_REFUSED"));
    assert!(t.commit());
    assert!(t.take().is_none(), "nothing is handed over");
    let snap = Snapshot::decode(&r.bytes, MAX).unwrap();
    let (entries, payload) = ledger(&snap, SLOT, Owner::Slot).unwrap().unwrap();
    let outcomes: Vec<Outcome> = entries.iter().map(|l| l.outcome).collect();
    assert_eq!(outcomes, [Outcome::Reported, Outcome::Duplicate]);
    // The payload is still the reported one's.
    assert_eq!(payload.len(), spec.len());
}

/// `bytes` with the period of the report section's first ledger entry set
/// to `period` (the entry follows the statistics; found by its task).
fn forge_ledger_period(bytes: &[u8], period: u32) -> Vec<u8> {
    let mut snap = Snapshot::decode(bytes, MAX).unwrap();
    let mut body = snap.section("report:hero").unwrap().to_vec();
    let mut needle = (TASK.len() as u16).to_le_bytes().to_vec();
    needle.extend_from_slice(TASK.as_bytes());
    let at = body
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .unwrap();
    body[at - 4..at].copy_from_slice(&period.to_le_bytes());
    snap.set_section("report:hero", body);
    snap.encode(MAX).unwrap()
}

#[test]
fn statistics_of_another_feature_space_are_dropped_and_listed_once() {
    let mut e = engine(1, 4);
    let spec = spec_of(&mut e, bounds());
    let mut expect = Stats::zeros(&spec);
    let day = 20_400.0 * DAY;
    step(&mut e, 1, day, &mut expect);
    let t = e.reports().unwrap();
    let mut stored = t
        .sync(None, day, MAX, task(&spec, OTHER_SPACE))
        .unwrap()
        .bytes;
    assert!(t.commit());
    // An engine over this feature space finds the other's statistics: dropped, listed once
    // however often the two write in turn.
    let mut f = engine(2, 4);
    let mut mine = Stats::zeros(&spec);
    step(&mut f, 2, day, &mut mine);
    let space = f.feature_space();
    for round in 0..3 {
        step(&mut e, 10 + round, day, &mut expect);
        let other = e.reports().unwrap();
        stored = other
            .sync(Some(&stored), day, MAX, task(&spec, OTHER_SPACE))
            .unwrap()
            .bytes;
        assert!(other.commit());
        let t = f.reports().unwrap();
        let r = t
            .sync(Some(&stored), day, MAX, task(&spec, &space))
            .unwrap();
        let expected: &[Outcome] = if round == 0 {
            &[Outcome::SpaceChanged]
        } else {
            &[]
        };
        assert_eq!(
            r.entries.iter().map(|l| l.outcome).collect::<Vec<_>>(),
            expected
        );
        assert!(r.refused.is_none());
        assert!(t.commit());
        stored = r.bytes;
    }
    let snap = Snapshot::decode(&stored, MAX).unwrap();
    assert_eq!(
        ledger(&snap, SLOT, Owner::Slot).unwrap().unwrap().0.len(),
        1
    );
}

#[test]
fn a_new_prior_over_the_same_features_keeps_the_period() {
    // Another prior variance: another model version, the same feature space.
    let text = r#"{"variants": ["a", "b", "c"], "seed": 11, "priorVariance": 0.5,
        "features": {"bits": 4, "allow": ["page", "user"]}}"#;
    let mut new = Engine::new(EngineConfig::parse(text, 3).unwrap());
    new.enable_reports(1, true).unwrap();
    let mut old = engine(1, 4);
    assert_ne!(new.model_version(), old.model_version());
    assert_eq!(new.feature_space(), old.feature_space());
    // Other bits or other variants: another space.
    assert_ne!(plain(1, 5).feature_space(), old.feature_space());
    let two = Engine::new(EngineConfig::parse(r#"{"variants": ["a", "b"]}"#, 1).unwrap());
    let three = Engine::new(EngineConfig::parse(r#"{"variants": ["a", "b", "c"]}"#, 1).unwrap());
    assert_ne!(two.feature_space(), three.feature_space());

    let spec = spec_of(&mut old, bounds());
    let mut expect = Stats::zeros(&spec);
    let day = 20_450.0 * DAY;
    step(&mut old, 1, day, &mut expect);
    let bytes = sync(&mut old, None, day, &spec);
    step(&mut new, 2, day, &mut expect);
    let bytes = sync(&mut new, Some(&bytes), day, &spec);
    sync(&mut new, Some(&bytes), day + DAY, &spec);
    assert_decodes_to(
        &spec,
        &new.reports().unwrap().take().unwrap().measurement,
        &expect,
    );
}

#[test]
fn only_a_sync_allowed_to_close_closes_and_the_others_add_to_the_ended_period() {
    let (mut a, mut b) = (engine(1, 4), engine(2, 4));
    let spec = spec_of(&mut a, bounds());
    let mut expect = Stats::zeros(&spec);
    let day = 20_470.0 * DAY;
    step(&mut a, 1, day, &mut expect);
    let stored = sync(&mut a, None, day, &spec);
    // The next day, tab b writes without the lock (its page is being left):
    // the ended period stays open, with b's additions in it.
    step(&mut b, 2, day + DAY, &mut expect);
    let space = b.feature_space();
    let t = b.reports().unwrap();
    let mut held = task(&spec, &space);
    held.close = false;
    let r = t.sync(Some(&stored), day + DAY, MAX, held).unwrap();
    assert!(r.held && r.entries.is_empty());
    assert!(t.commit());
    assert!(t.take().is_none(), "nothing closed");
    // A write that may close closes the period once, with both tabs' statistics.
    let mut later = Stats::zeros(&spec);
    step(&mut a, 3, day + DAY, &mut later);
    let bytes = sync(&mut a, Some(&r.bytes), day + DAY, &spec);
    assert_decodes_to(
        &spec,
        &a.reports().unwrap().take().unwrap().measurement,
        &expect,
    );
    sync(&mut a, Some(&bytes), day + 2.0 * DAY, &spec);
    assert_decodes_to(
        &spec,
        &a.reports().unwrap().take().unwrap().measurement,
        &later,
    );
}

#[test]
fn a_period_one_period_ahead_is_kept_and_one_further_is_taken_as_the_current_one() {
    // Another tab's clock is an hour ahead, past midnight: its period is kept.
    let (mut a, mut b) = (engine(1, 4), engine(2, 4));
    let spec = spec_of(&mut a, bounds());
    let mut ahead = Stats::zeros(&spec);
    let midnight = 20_479.0 * DAY;
    step(&mut a, 1, midnight + 1000.0, &mut ahead);
    let stored = sync(&mut a, None, midnight + 1000.0, &spec);
    step(&mut b, 2, midnight - 1000.0, &mut ahead);
    let bytes = sync(&mut b, Some(&stored), midnight - 1000.0, &spec);
    sync(&mut b, Some(&bytes), midnight + DAY, &spec);
    let c = b.reports().unwrap().take().unwrap();
    assert_eq!(c.period, period_of(midnight, 1));
    assert_decodes_to(&spec, &c.measurement, &ahead);

    let (mut a, mut b) = (engine(1, 4), engine(2, 4));
    let mut expect = Stats::zeros(&spec);
    let day = 20_480.0 * DAY;
    // Tab a's clock is 40 days ahead.
    step(&mut a, 1, day + 40.0 * DAY, &mut expect);
    let stored = sync(&mut a, None, day + 40.0 * DAY, &spec);
    step(&mut b, 2, day, &mut expect);
    let bytes = sync(&mut b, Some(&stored), day, &spec);
    assert!(b.reports().unwrap().take().is_none());
    // The stored period is b's day now, and closes the day after, with both tabs' statistics.
    sync(&mut b, Some(&bytes), day + DAY, &spec);
    let c = b
        .reports()
        .unwrap()
        .take()
        .expect("closed the day after, not 40 days later");
    assert_eq!(c.period, period_of(day, 1));
    assert_decodes_to(&spec, &c.measurement, &expect);
}

#[test]
fn a_corrupt_report_section_starts_again_and_keeps_the_learning() {
    let mut e = engine(1, 4);
    let spec = spec_of(&mut e, bounds());
    let mut expect = Stats::zeros(&spec);
    let day = 20_500.0 * DAY;
    step(&mut e, 1, day, &mut expect);
    let bytes = sync(&mut e, None, day, &spec);
    let mut snap = Snapshot::decode(&bytes, MAX).unwrap();
    let learner = snap.section("learner:hero").unwrap().to_vec();
    let mut body = snap.section("report:hero").unwrap().to_vec();
    body.truncate(body.len() - 3);
    snap.set_section("report:hero", body);
    let bad = snap.encode(MAX).unwrap();
    let version = e.feature_space();
    let t = e.reports().unwrap();
    let r = t.sync(Some(&bad), day, MAX, task(&spec, &version)).unwrap();
    assert!(r.corrupt);
    let snap = Snapshot::decode(&r.bytes, MAX).unwrap();
    assert_eq!(snap.section("learner:hero").unwrap(), learner.as_slice());
    assert_eq!(
        ledger(&snap, SLOT, Owner::Slot).unwrap(),
        Some((vec![], vec![]))
    );
    // A newer build's section is not overwritten: the snapshot is a newer format.
    let mut snap = Snapshot::decode(&bytes, MAX).unwrap();
    let mut body = snap.section("report:hero").unwrap().to_vec();
    body[0] = 2;
    snap.set_section("report:hero", body);
    let newer = snap.encode(MAX).unwrap();
    let err = t
        .sync(Some(&newer), day, MAX, task(&spec, &version))
        .unwrap_err();
    assert_eq!(err.code(), "SNAPSHOT_VERSION");
}

#[test]
fn reports_refuse_what_cannot_be_made_and_change_nothing() {
    let mut e = engine(1, 4);
    let spec = spec_of(&mut e, bounds());
    let space = e.feature_space();
    let mut expect = Stats::zeros(&spec);
    let day = 20_490.0 * DAY;
    step(&mut e, 1, day, &mut expect);
    let stored = sync(&mut e, None, day, &spec);
    step(&mut e, 4, day, &mut expect);
    let long = "t".repeat(257);
    let wrong = Spec::new(2, 16, 1 << 12, bounds(), None).unwrap();
    let cases = [
        // A specification of another shape.
        (SLOT, TASK, &wrong, day, "REPORT_REFUSED"),
        // Bad task ids, slot names and times.
        (SLOT, "", &spec, day, "INVALID_OPTION"),
        (SLOT, long.as_str(), &spec, day, "INVALID_OPTION"),
        ("", TASK, &spec, day, "INVALID_OPTION"),
        ("a b", TASK, &spec, day, "INVALID_OPTION"),
        (SLOT, TASK, &spec, f64::NAN, "INVALID_OPTION"),
        (SLOT, TASK, &spec, f64::INFINITY, "INVALID_OPTION"),
    ];
    for (slot, task_id, spec, now, code) in cases {
        let t = e.reports().unwrap();
        let bad = ReportTask {
            slot,
            owner: Owner::Slot,
            task: task_id,
            spec,
            space: &space,
            close: true,
        };
        let err = t.sync(Some(&stored), now + DAY, MAX, bad).unwrap_err();
        assert_eq!(err.code(), code, "{slot:?} {task_id:?} {now}");
        assert!(!t.commit(), "a refused sync stages nothing");
        assert!(t.take().is_none());
    }
    // Shapes and periods the tally refuses.
    assert_eq!(
        e.enable_reports(0, true).unwrap_err().code(),
        "INVALID_OPTION"
    );
    assert_eq!(
        e.enable_reports(367, true).unwrap_err().code(),
        "INVALID_OPTION"
    );
    let mut wide = plain(1, 12);
    assert_eq!(
        wide.enable_reports(1, true).unwrap_err().code(),
        "INVALID_OPTION"
    );
    assert!(wide.enable_reports(1, false).is_ok());
    assert_eq!(wide.reports().unwrap().shape(), (3, 0));
    // The refusals lost nothing: stored within the period, it closes with every decision in it.
    let stored = sync(&mut e, Some(&stored), day, &spec);
    sync(&mut e, Some(&stored), day + DAY, &spec);
    assert_decodes_to(
        &spec,
        &e.reports().unwrap().take().unwrap().measurement,
        &expect,
    );
}

#[test]
fn reset_and_disable_drop_what_was_not_stored() {
    let mut e = engine(1, 4);
    let spec = spec_of(&mut e, bounds());
    let mut expect = Stats::zeros(&spec);
    let day = 20_600.0 * DAY;
    step(&mut e, 1, day, &mut expect);
    e.reset(77);
    let mut fresh = Stats::zeros(&spec);
    step(&mut e, 2, day, &mut fresh);
    let bytes = sync(&mut e, None, day, &spec);
    sync(&mut e, Some(&bytes), day + DAY, &spec);
    assert_decodes_to(
        &spec,
        &e.reports().unwrap().take().unwrap().measurement,
        &fresh,
    );
    e.disable_reports();
    assert!(e.reports().is_none());
    // Learning goes on without them.
    step(&mut e, 3, day, &mut fresh);
    assert_eq!(e.updates().iter().sum::<u64>(), 1);
}

#[test]
fn an_experiment_keeps_its_counts_beside_a_slot_of_the_same_name() {
    let mut e = engine(1, 4);
    let spec = spec_of(&mut e, bounds());
    let mut expect = Stats::zeros(&spec);
    let day = 20_520.0 * DAY;
    step(&mut e, 1, day, &mut expect);
    let slot_bytes = sync(&mut e, None, day, &spec);
    // Experiment `hero`: counts only, two variants.
    let mut t = Tally::new(2, 0, 1).unwrap();
    let ab = Spec::new(2, 0, 256, bounds(), None).unwrap();
    for _ in 0..3 {
        t.decision(1, false);
    }
    t.exposure(1);
    t.reward(1, 1.0);
    let task = |close| ReportTask {
        slot: SLOT,
        owner: Owner::Experiment,
        task: "ab-hero",
        spec: &ab,
        space: "ab-2",
        close,
    };
    let bytes = t
        .sync(Some(&slot_bytes), day, MAX, task(true))
        .unwrap()
        .bytes;
    assert!(t.commit());
    let snap = Snapshot::decode(&bytes, MAX).unwrap();
    assert!(snap.section("report:hero").is_some() && snap.section("report-ab:hero").is_some());
    let bytes = t
        .sync(Some(&bytes), day + DAY, MAX, task(true))
        .unwrap()
        .bytes;
    assert!(t.commit());
    let c = t.take().unwrap();
    assert_eq!(c.measurement, vec![1, 0, 3, 0, 1, 0, 256]);
    let snap = Snapshot::decode(&bytes, MAX).unwrap();
    assert_eq!(
        ledger(&snap, SLOT, Owner::Experiment)
            .unwrap()
            .unwrap()
            .0
            .len(),
        1
    );
    // The slot's ledger is its own: nothing closed there yet.
    assert_eq!(
        ledger(&snap, SLOT, Owner::Slot).unwrap().unwrap().0.len(),
        0
    );
}

#[test]
fn huge_feature_values_are_refused_or_dropped_never_stored_broken() {
    // Raw (not normalized) features, values near the largest floats: the
    // learner refuses an update it cannot take (NUMERICAL_ERROR), and sums
    // that still overflow are dropped with a ledger entry.
    let text = r#"{"variants": ["a", "b"], "seed": 1,
        "features": {"bits": 4, "allow": ["page"], "normalize": false}}"#;
    let mut e = Engine::new(EngineConfig::parse(text, 1).unwrap());
    e.enable_reports(1, true).unwrap();
    let spec = spec_of(&mut e, bounds());
    let space = e.feature_space();
    let day = 20_530.0 * DAY;
    let mut refused_updates = 0;
    for (i, x) in [1e150, 1e154, 1e160, 1e300, 1.0].iter().enumerate() {
        let ctx = format!(r#"{{"context": {{"page": {{"depth": {x:e}}}}}}}"#);
        let Ok(d) = e.rank(&RankOptions::parse(&ctx).unwrap(), day + i as f64) else {
            refused_updates += 1;
            continue;
        };
        if let Err(err) = e.reward(d.decision_id.as_deref().unwrap(), 1.0, day + i as f64) {
            assert_eq!(err.code(), "NUMERICAL_ERROR", "{err}");
            refused_updates += 1;
        }
    }
    let t = e.reports().unwrap();
    let stored = t.sync(None, day, MAX, task(&spec, &space)).unwrap();
    assert!(t.commit());
    let r = t
        .sync(Some(&stored.bytes), day + DAY, MAX, task(&spec, &space))
        .unwrap();
    assert!(t.commit());
    let outcomes: Vec<Outcome> = stored
        .entries
        .iter()
        .chain(&r.entries)
        .map(|l| l.outcome)
        .collect();
    match t.take() {
        // Reported: every entry below 2^bits, whatever the values.
        Some(c) => {
            assert!(c.measurement.iter().all(|x| *x < 1 << spec.bits()));
            assert!(outcomes.contains(&Outcome::Reported));
        }
        None => assert!(outcomes.contains(&Outcome::NonFinite), "{outcomes:?}"),
    }
    // What was written reads back.
    let snap = Snapshot::decode(&r.bytes, MAX).unwrap();
    assert!(ledger(&snap, SLOT, Owner::Slot).unwrap().is_some());
    println!("huge features: {refused_updates} updates refused, outcomes {outcomes:?}");
}
