//! Seeded fuzzing of everything that reads bytes from outside: the snapshot
//! container, the learner and behaviour sections (through `restore` and
//! `sync`), a slot's report section (its ledger and its sync), the A/B
//! allocator's stored state, the storage frame and its
//! base64, and the event API in both its text and packed (JS boundary) forms.
//!
//! cargo fuzz needs a nightly toolchain and libFuzzer, which these offline
//! machines cannot install; this is the seeded property test the issue
//! allows instead. Inputs are valid seeds mutated by bit flips, random and
//! boundary bytes, huge length fields, truncation, duplication, insertion and
//! splicing, plus wholly random bytes. Half of the mutated snapshots and
//! frames get their checksums repaired, so the inputs reach the section and
//! field parsers instead of stopping at the CRC.
//!
//! Properties, for every input: no panic; every error carries one of the
//! codes that input may produce; a refused input changes nothing; an
//! accepted snapshot merges into bytes that read back.
//!
//! `INSITU_FUZZ_INPUTS` sets the inputs per target (default 2,000, which
//! keeps `cargo test` quick); `npm test` runs a release build with 300,000
//! per target and prints the counts (`INSITU_FUZZ_INPUTS=300000 cargo test
//! --release --test fuzz -- --nocapture`).

use insitu::report::{ledger, Bounds, Owner, ReportTask, Spec};
use insitu::{
    crc32, from_base64, open_frame, seal_frame, Allocator, Behavior, BehaviorConfig, Engine,
    EngineConfig, Experiments, RankOptions, Rng, Snapshot,
};

const MAX: usize = 1 << 16;
const SLOT: &str = "hero";
const T0: f64 = 1_700_000_000_000.0;

fn inputs_per_target() -> usize {
    std::env::var("INSITU_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn engine(entropy: u64) -> Engine {
    let cfg = r#"{"variants": ["a", "b", "c"], "seed": 3, "features": {"bits": 5, "allow": ["page", "behavior"]}}"#;
    Engine::new(EngineConfig::parse(cfg, entropy).unwrap())
}

fn behavior() -> Behavior {
    Behavior::new(BehaviorConfig::parse(r#"{"types": ["add_to_cart"]}"#).unwrap())
}

/// A snapshot with a learner section (updates and open decisions, of this
/// model and of another version) and a behaviour section (events with every
/// optional field).
fn seed_snapshot() -> Vec<u8> {
    let mut e = engine(1);
    for t in 0..40 {
        let ctx = format!(
            r#"{{"context": {{"page": {{"section": "s{}", "depth": {}}}}}}}"#,
            t % 5,
            t % 3
        );
        let d = e.rank(&RankOptions::parse(&ctx).unwrap(), T0).unwrap();
        if t % 4 != 0 {
            e.reward(d.decision_id.as_deref().unwrap(), (t % 2) as f64, T0)
                .unwrap();
        }
    }
    let mut b = behavior();
    for (i, ev) in seed_events().iter().enumerate() {
        b.track(ev, T0 + i as f64 * 60_000.0).unwrap();
    }
    // The previous release's model (another hash width) learned first.
    let old = r#"{"variants": ["a", "b"], "features": {"bits": 4, "allow": ["page"]}}"#;
    let mut o = Engine::new(EngineConfig::parse(old, 2).unwrap());
    let d = o
        .rank(
            &RankOptions::parse(r#"{"context": {"page": {"a": 1}}}"#).unwrap(),
            T0,
        )
        .unwrap();
    o.reward(d.decision_id.as_deref().unwrap(), 1.0, T0)
        .unwrap();
    let bytes = o.sync(None, SLOT, T0, MAX).unwrap().bytes;
    let bytes = e.sync(Some(&bytes), SLOT, T0, MAX).unwrap().bytes;
    b.sync(Some(&bytes), T0 + 1e6, MAX).unwrap().bytes
}

/// An allocator with a plain A/B test and a Thompson bandit.
fn allocator(seed: u64) -> Allocator {
    let cfg = r#"[{"key": "hero", "variants": ["a", "b"]},
        {"key": "cta", "variants": ["x", "y", "z"],
         "allocation": {"type": "thompson", "rewardWindowMs": 100000000}}]"#;
    Allocator::new(Experiments::parse(cfg).unwrap(), seed)
}

/// The allocator's section (device unit, exposures, bandit counts and a
/// settled trial) stored beside the other sections of `base`.
fn seed_allocator(base: &[u8]) -> Vec<u8> {
    let mut a = allocator(1);
    a.set_device_unit("d:fuzz-seed").unwrap();
    for t in 0..6 {
        a.assign_attributes(t % 2, None, T0 + t as f64).unwrap();
        if t == 1 {
            a.reward(1, 1.0, T0 + 1.5).unwrap();
        }
    }
    a.sync(Some(base), T0 + 10.0, MAX, 1e10, true).unwrap()
}

fn seed_events() -> Vec<String> {
    vec![
        r#"{"type": "view", "item": "sku-1", "category": "shoes", "tags": ["sale", "new"], "value": 1.5}"#.into(),
        r#"{"type": "click", "category": "hats"}"#.into(),
        r#"{"type": "add_to_cart", "item": "sku-2", "tags": []}"#.into(),
        r#"{"type": "convert", "value": 0}"#.into(),
    ]
}

/// A mutated copy of `seed` (or, one time in eight, random bytes).
fn mutate(rng: &mut Rng, seed: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let below = |rng: &mut Rng, n: usize| (rng.next_u64() % n.max(1) as u64) as usize;
    if rng.next_u64() % 8 == 0 {
        let n = below(rng, 512);
        return (0..n).map(|_| rng.next_u64() as u8).collect();
    }
    let mut b = seed.to_vec();
    let rounds = if rng.next_u64() % 2 == 0 {
        1
    } else {
        1 + below(rng, 6)
    };
    for _ in 0..rounds {
        let at = below(rng, b.len());
        match rng.next_u64() % 9 {
            0 if !b.is_empty() => b[at] ^= 1 << (rng.next_u64() % 8),
            1 if !b.is_empty() => b[at] = rng.next_u64() as u8,
            2 if !b.is_empty() => b[at] = [0, 0x7f, 0x80, 0xff][below(rng, 4)],
            3 if b.len() >= at + 4 => {
                // A huge or boundary length or count.
                let v: u32 = [u32::MAX, 1 << 31, 1 << 24, 0xffff, 0][below(rng, 5)];
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            4 => b.truncate(at),
            5 if !b.is_empty() => {
                let len = 1 + below(rng, 16.min(b.len() - at));
                let chunk = b[at..at + len].to_vec();
                b.splice(at..at, chunk);
            }
            6 => {
                let n = 1 + below(rng, 8);
                let junk: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                b.splice(at..at, junk);
            }
            7 if !others.is_empty() => {
                let o = &others[below(rng, others.len())];
                let from = below(rng, o.len());
                b.truncate(at);
                b.extend_from_slice(&o[from..]);
            }
            _ => {
                // Remove a range.
                let len = below(rng, 24.min(b.len() - at) + 1);
                b.drain(at..at + len);
            }
        }
    }
    b
}

/// Repair the container's length and CRC so the mutation reaches the sections.
fn reseal(mut b: Vec<u8>) -> Vec<u8> {
    if b.len() >= 16 && &b[..4] == b"INSU" {
        let len = (b.len() - 16) as u32;
        b[8..12].copy_from_slice(&len.to_le_bytes());
        let crc = crc32(&b[16..]);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    b
}

fn check_code(what: &str, input: &[u8], code: &str, allowed: &[&str]) {
    assert!(
        allowed.contains(&code),
        "{what}: code {code} not in {allowed:?} for input {input:02x?}"
    );
}

const SNAPSHOT_CODES: &[&str] = &[
    "SNAPSHOT_FOREIGN",
    "SNAPSHOT_CORRUPT",
    "SNAPSHOT_VERSION",
    "SNAPSHOT_TOO_LARGE",
];

#[test]
fn fuzz_snapshot_decoding_restore_and_sync() {
    let n = inputs_per_target();
    let seed = seed_snapshot();
    let seeds = vec![seed.clone(), Snapshot::new().encode(MAX).unwrap()];
    let mut rng = Rng::new(0x5eed_0001);
    let (mut accepted, mut refused) = (0usize, 0usize);
    // Engines that already learned and hold decisions, so a refused input
    // has something to leave unchanged.
    let mut learned = engine(7);
    learned.restore(&seed, SLOT, T0, MAX).unwrap();
    let mut tracked = behavior();
    tracked.track(&seed_events()[0], T0).unwrap();
    for i in 0..n {
        let mut input = mutate(&mut rng, &seeds[i % seeds.len()], &seeds);
        if i % 2 == 0 {
            input = reseal(input);
        }
        match Snapshot::decode(&input, MAX) {
            Ok(_) => accepted += 1,
            Err(e) => {
                refused += 1;
                check_code("decode", &input, e.code(), SNAPSHOT_CODES);
            }
        }

        let mut e = learned.clone();
        let before = (e.updates(), e.pending_count());
        match e.restore(&input, SLOT, T0 + 1.0, MAX) {
            Ok(_) => {}
            Err(err) => {
                check_code("Engine::restore", &input, err.code(), SNAPSHOT_CODES);
                assert_eq!(
                    (e.updates(), e.pending_count()),
                    before,
                    "a refused restore changed the engine"
                );
            }
        }
        let mut e = learned.clone();
        match e.sync(Some(&input), SLOT, T0 + 1.0, MAX) {
            // What an accepted merge writes reads back. (Only its own
            // sections: others are carried over as they were, and each part
            // checks its own.) The evaluation's sums read back as this
            // engine holds them once committed, unless the stored section
            // was a newer layout, which is left as it was: the section's own
            // (its first byte) or its sums' (the byte after the model
            // version), each read as newer (SNAPSHOT_VERSION) and kept.
            Ok(r) => {
                let mut back = engine(9);
                back.restore(&r.bytes, SLOT, T0 + 2.0, MAX)
                    .unwrap_or_else(|err| {
                        panic!("merged bytes unreadable ({err}) from {input:02x?}")
                    });
                assert!(e.commit());
                let written = Snapshot::decode(&r.bytes, MAX).unwrap();
                let newer = written.section(&format!("eval:{SLOT}")).is_some_and(|b| {
                    let sums = b
                        .get(1..3)
                        .map_or(0, |v| 3 + usize::from(u16::from_le_bytes([v[0], v[1]])));
                    b.first().is_some_and(|&l| l > 1) || b.get(sums).is_some_and(|&l| l > 1)
                });
                if !newer {
                    assert_eq!(
                        back.evaluation(),
                        e.evaluation(),
                        "the evaluation written does not read back, from {input:02x?}"
                    );
                }
            }
            Err(err) => check_code(
                "Engine::sync",
                &input,
                err.code(),
                &[SNAPSHOT_CODES, &["NUMERICAL_ERROR"]].concat(),
            ),
        }

        let mut b = tracked.clone();
        let events: Vec<_> = b.events().collect();
        match b.restore(&input, T0 + 1.0, MAX) {
            Ok(_) => {}
            Err(err) => {
                check_code("Behavior::restore", &input, err.code(), SNAPSHOT_CODES);
                assert!(
                    b.events().eq(events.iter().cloned()),
                    "a refused restore changed the store"
                );
            }
        }
        let mut b = tracked.clone();
        if let Ok(r) = b.sync(Some(&input), T0 + 1.0, MAX) {
            behavior()
                .restore(&r.bytes, T0 + 2.0, MAX)
                .unwrap_or_else(|err| panic!("merged bytes unreadable ({err}) from {input:02x?}"));
        }
    }
    println!(
        "fuzz: snapshot decode, Engine restore/sync, Behavior restore/sync: {n} inputs ({accepted} decoded, {refused} refused), 0 panics"
    );
    assert!(
        accepted > 0 && refused > n / 4,
        "{accepted} accepted, {refused} refused"
    );
}

/// A snapshot holding a slot's report section: statistics of a period, a
/// ledger with one report, and its payload.
fn seed_report() -> (Vec<u8>, Spec) {
    let mut e = engine(3);
    e.enable_reports(1, true).unwrap();
    let (k, d) = e.reports().unwrap().shape();
    let b = Bounds {
        decisions: 20,
        exposures: 20,
        rewards: 20.0,
        xy: 40.0,
        xx: 20.0,
    };
    let spec = Spec::new(k, d, 256, b, None).unwrap();
    let version = e.feature_space();
    let mut bytes: Option<Vec<u8>> = None;
    for day in 0..2 {
        let now = T0 + day as f64 * 86_400_000.0;
        for t in 0..12 {
            let ctx = format!(r#"{{"context": {{"page": {{"section": "s{}"}}}}}}"#, t % 3);
            let d = e.rank(&RankOptions::parse(&ctx).unwrap(), now).unwrap();
            e.reward(d.decision_id.as_deref().unwrap(), (t % 2) as f64, now)
                .unwrap();
        }
        let task = ReportTask {
            slot: SLOT,
            owner: Owner::Slot,
            task: "t",
            spec: &spec,
            space: &version,
            close: true,
        };
        let t = e.reports().unwrap();
        bytes = Some(t.sync(bytes.as_deref(), now, MAX, task).unwrap().bytes);
        assert!(t.commit());
    }
    (bytes.unwrap(), spec)
}

#[test]
fn fuzz_report_sections() {
    let n = inputs_per_target();
    let (seed, spec) = seed_report();
    let seeds = vec![seed.clone()];
    let mut rng = Rng::new(0x5eed_0004);
    let mut e = engine(5);
    e.enable_reports(1, true).unwrap();
    let version = e.feature_space();
    let (mut merged, mut started_again, mut refused) = (0usize, 0usize, 0usize);
    for i in 0..n {
        let mut input = mutate(&mut rng, &seeds[i % seeds.len()], &seeds);
        if i % 4 != 0 {
            input = reseal(input);
        }
        if let Ok(snap) = Snapshot::decode(&input, MAX) {
            if let Err(err) = ledger(&snap, SLOT, Owner::Slot) {
                check_code("report::ledger", &input, err.code(), SNAPSHOT_CODES);
            }
        }
        let task = ReportTask {
            slot: SLOT,
            owner: Owner::Slot,
            task: "t",
            spec: &spec,
            space: &version,
            close: i % 3 != 0,
        };
        let mut t = e.reports().unwrap().clone();
        match t.sync(Some(&input), T0 + 3.0 * 86_400_000.0, MAX, task) {
            Ok(r) => {
                merged += 1;
                started_again += usize::from(r.corrupt);
                // What a sync writes, its own reader reads back.
                let snap = Snapshot::decode(&r.bytes, MAX).unwrap();
                ledger(&snap, SLOT, Owner::Slot).unwrap_or_else(|err| {
                    panic!("written section unreadable ({err}) from {input:02x?}")
                });
                assert!(t.commit());
                let closed = t.take();
                // A sync that may not close closes nothing.
                assert!(!(r.held && closed.is_some()));
                if let Some(c) = closed {
                    assert_eq!(c.measurement.len(), spec.len());
                    assert!(c.measurement.iter().all(|x| *x < 1 << spec.bits()));
                }
            }
            Err(err) => {
                refused += 1;
                check_code("Tally::sync", &input, err.code(), SNAPSHOT_CODES);
                assert!(!t.commit(), "a refused sync staged nothing");
            }
        }
    }
    println!(
        "fuzz: report sections (ledger, Tally sync): {n} inputs ({merged} merged, {started_again} of them from an unreadable section; {refused} refused), 0 panics"
    );
    assert!(
        merged > n / 10 && started_again > n / 20,
        "{merged} merged, {started_again} started again"
    );
}

/// What a refused input must leave as it was.
fn allocator_state(a: &Allocator) -> impl PartialEq + std::fmt::Debug {
    (
        a.unit().0.map(str::to_owned),
        a.exposures().to_vec(),
        a.pending(),
        a.bandit_counts(1).unwrap(),
    )
}

#[test]
fn fuzz_allocator_state() {
    let n = inputs_per_target();
    let base = seed_snapshot();
    let seeds = vec![seed_allocator(&base), base];
    let mut rng = Rng::new(0x5eed_0004);
    // A page that already assigned, logged an exposure and holds a reward.
    let mut page = allocator(5);
    page.set_device_unit("d:page").unwrap();
    page.assign_attributes(0, None, T0).unwrap();
    page.assign_attributes(1, None, T0).unwrap();
    page.reward(1, 0.0, T0 + 1.0).unwrap();
    let (mut restored, mut refused) = (0usize, 0usize);
    for i in 0..n {
        let mut input = mutate(&mut rng, &seeds[i % seeds.len()], &seeds);
        if i % 2 == 0 {
            input = reseal(input);
        }
        let mut a = page.clone();
        let before = allocator_state(&a);
        match a.restore(&input, T0 + 2.0, MAX) {
            Ok(()) => restored += 1,
            Err(err) => {
                refused += 1;
                check_code("Allocator::restore", &input, err.code(), SNAPSHOT_CODES);
                assert_eq!(
                    allocator_state(&a),
                    before,
                    "a refused restore changed the state"
                );
            }
        }
        let mut a = page.clone();
        match a.sync(Some(&input), T0 + 2.0, MAX, 1e10, i % 3 != 0) {
            // What an accepted merge writes reads back.
            Ok(bytes) => allocator(9)
                .restore(&bytes, T0 + 3.0, MAX)
                .unwrap_or_else(|err| panic!("merged bytes unreadable ({err}) from {input:02x?}")),
            Err(err) => {
                check_code("Allocator::sync", &input, err.code(), SNAPSHOT_CODES);
                assert!(!a.commit(), "a refused sync left something to commit");
            }
        }
    }
    println!(
        "fuzz: allocator state restore/sync: {n} inputs ({restored} restored, {refused} refused), 0 panics"
    );
    assert!(
        restored > n / 20 && refused > n / 4,
        "{restored} restored, {refused} refused"
    );
}

#[test]
fn fuzz_storage_frames_and_base64() {
    let n = inputs_per_target();
    let payload = insitu::to_base64(&seed_snapshot());
    let seeds: Vec<Vec<u8>> = vec![
        seal_frame(T0, 12, &payload).unwrap().into_bytes(),
        seal_frame(T0, 0, r#"[{"at":1,"event":"quarantined"}]"#)
            .unwrap()
            .into_bytes(),
    ];
    let mut rng = Rng::new(0x5eed_0002);
    let mut opened = 0usize;
    for i in 0..n {
        let input = mutate(&mut rng, &seeds[i % seeds.len()], &seeds);
        let mut text = String::from_utf8_lossy(&input).into_owned();
        if i % 2 == 0 {
            // Repair the checksum so the fields are parsed.
            if let Some(rest) = text.strip_prefix("insitu1;").and_then(|r| r.get(9..)) {
                let fields: Vec<&str> = rest.splitn(3, ';').collect();
                if fields.len() == 3 {
                    if let (Ok(t), Ok(g)) = (fields[0].parse::<f64>(), fields[1].parse::<u64>()) {
                        if let Ok(s) = seal_frame(t, g, fields[2]) {
                            text = s;
                        }
                    }
                }
            }
        }
        match open_frame(&text) {
            Ok(f) => {
                opened += 1;
                assert!(f.saved_at >= 0.0 && f.saved_at.fract() == 0.0);
                // The payload as the store reads a snapshot.
                if let Err(e) = from_base64(f.payload) {
                    check_code("from_base64", &input, e.code(), &["SNAPSHOT_CORRUPT"]);
                }
            }
            Err(e) => check_code("open_frame", &input, e.code(), &SNAPSHOT_CODES[..3]),
        }
        if let Err(e) = from_base64(&text) {
            check_code("from_base64", &input, e.code(), &["SNAPSHOT_CORRUPT"]);
        }
    }
    println!("fuzz: storage frames and base64: {n} inputs ({opened} opened), 0 panics");
    assert!(opened > n / 10, "{opened} frames opened");
}

#[test]
fn fuzz_event_api_text_and_typed() {
    let n = inputs_per_target();
    let text: Vec<Vec<u8>> = seed_events().into_iter().map(String::into_bytes).collect();
    let mut rng = Rng::new(0x5eed_0003);
    let (mut stored, mut refused) = (0usize, 0usize);
    let mut b = behavior();
    let codes = ["INVALID_EVENT", "UNKNOWN_EVENT_TYPE"];
    for i in 0..n {
        let now = T0 + i as f64;
        let before = b.events().count();
        let r = if i % 2 == 0 {
            let input = mutate(&mut rng, &text[i / 2 % text.len()], &text);
            let event = String::from_utf8_lossy(&input).into_owned();
            (b.track(&event, now), input)
        } else {
            let ev = random_event(&mut rng, now);
            let shown = format!("{ev:?}").into_bytes();
            (b.track_event(ev, now), shown)
        };
        match r {
            (Ok(()), _) => stored += 1,
            (Err(e), input) => {
                refused += 1;
                check_code("track", &input, e.code(), &codes);
                assert_eq!(b.events().count(), before, "a refused event was stored");
            }
        }
        if i % 512 == 511 {
            // Keep the store small and its derived features consistent.
            b.features(now, 0.0).unwrap();
            b = behavior();
        }
    }
    println!("fuzz: event API (text and typed): {n} inputs ({stored} stored, {refused} refused), 0 panics");
    assert!(
        stored > 0 && refused > n / 4,
        "{stored} stored, {refused} refused"
    );
}

/// A typed event as the boundary could hand it over after hostile bytes:
/// known and unknown types, empty, long and non-ASCII strings, repeated
/// tags, too many tags, and values that are not finite.
fn random_event(rng: &mut Rng, now: f64) -> insitu::Event {
    let below = |rng: &mut Rng, n: u64| rng.next_u64() % n;
    let text = |rng: &mut Rng| -> String {
        match below(rng, 6) {
            0 => String::new(),
            1 => "x".repeat(1 + below(rng, 90) as usize),
            2 => "é".repeat(1 + below(rng, 40) as usize),
            3 => "sale".into(),
            _ => format!("t{}", below(rng, 5)),
        }
    };
    let kinds = ["view", "click", "convert", "add_to_cart", "hover", ""];
    let kind = kinds[below(rng, kinds.len() as u64) as usize].to_string();
    let item = (below(rng, 2) == 0).then(|| text(rng));
    let category = (below(rng, 2) == 0).then(|| text(rng));
    let tags = (0..below(rng, 11)).map(|_| text(rng)).collect();
    let values = [1.5, 0.0, -3.0, f64::NAN, f64::INFINITY, 1e308];
    let value = (below(rng, 2) == 0).then(|| values[below(rng, values.len() as u64) as usize]);
    insitu::Event {
        at: now,
        kind,
        item,
        category,
        tags,
        value,
    }
}
