//! Golden record of the behaviour store: what it writes (section `behavior`,
//! layout 1), the features and counts it derives, how it merges with other
//! tabs, and which code each damaged section gets. The fixture
//! (`tests/fixtures/behavior-golden.txt`) was written by the store as it was
//! before its rewrite for size; any change to these bytes, values or codes
//! is a change of format or behaviour. `INSITU_BLESS=1 cargo test --test
//! behavior_golden` rewrites it (only for a deliberate change).

use std::fmt::Write as _;

use insitu::{
    Behavior, BehaviorConfig, BehaviorValue, Event, Rng, Snapshot, BEHAVIOR_SECTION,
    DEFAULT_MAX_SNAPSHOT_BYTES as MAX,
};

const FIXTURE: &str = "tests/fixtures/behavior-golden.txt";
const T0: f64 = 1_700_000_040_000.0;
const MIN: f64 = 60_000.0;
const OPTIONS: &str = r#"{"maxEvents": 60, "maxBytes": 3000, "sessionGapMinutes": 20, "maxAgeDays": 2, "types": ["wish", "cart"]}"#;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// A seeded event: built-in and custom types, optional item, category and
/// value (zero of both signs among them), non-ASCII names, up to 8 tags.
fn event(rng: &mut Rng, at: f64) -> Event {
    let mut below = |n: u64| rng.next_u64() % n;
    const CATS: [&str; 7] = ["shoes", "hats", "çà", "bags", "socks", "belts", "z"];
    let mut tags = Vec::new();
    for _ in 0..below(9) {
        let t = format!("t{}", below(12));
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    Event {
        at,
        kind: ["view", "click", "convert", "cart", "wish"][below(5) as usize].to_owned(),
        item: (below(2) == 0).then(|| format!("sku-{}", below(40))),
        category: (below(4) != 0).then(|| CATS[below(7) as usize].to_owned()),
        tags,
        value: match below(6) {
            0 => Some(0.0),
            1 => Some(-0.0),
            2 => Some(below(1000) as f64 / 8.0 - 20.0),
            _ => None,
        },
    }
}

fn features(out: &mut String, b: &mut Behavior, now: f64, tz: f64) {
    write!(out, "features {now} {tz}:").unwrap();
    for (name, v) in b.features(now, tz).unwrap() {
        match v {
            BehaviorValue::Num(x) => write!(out, " {name}={:016x}", x.to_bits()),
            BehaviorValue::Cat(c) => write!(out, " {name}={c}"),
        }
        .unwrap();
    }
    write!(out, "\ncounts:").unwrap();
    for (t, n) in b.counts() {
        write!(out, " {t}={n}").unwrap();
    }
    writeln!(
        out,
        "\nstored {} events, {} bytes",
        b.events().count(),
        b.stored_bytes()
    )
    .unwrap();
}

fn section(bytes: &[u8]) -> Vec<u8> {
    Snapshot::decode(bytes, MAX)
        .unwrap()
        .section(BEHAVIOR_SECTION)
        .unwrap()
        .to_vec()
}

/// Three tabs tracking at their own pace (one with its clock behind, one
/// past its journal), saving under the lock, a reload, and retention.
fn record() -> (String, Vec<u8>) {
    let cfg = BehaviorConfig::parse(OPTIONS).unwrap();
    let mut tabs: Vec<Behavior> = (0..3).map(|_| Behavior::new(cfg.clone())).collect();
    let mut rng = Rng::new(0x0060_1de2);
    let mut out = String::new();
    let mut store: Option<Vec<u8>> = None;
    let mut now = T0;
    for i in 0..900 {
        // The same instant, just over or exactly the session gap, a long
        // absence, or seconds.
        now += match rng.next_u64() % 50 {
            0..=4 => 0.0,
            5..=9 => 21.0 * MIN,
            10..=12 => 20.0 * MIN,
            13 => (rng.next_u64() % 3000) as f64 * MIN,
            _ => (1 + rng.next_u64() % 5) as f64 * 1000.0,
        };
        let tab = (rng.next_u64() % 3) as usize;
        // Tab 2's clock is 25 minutes behind.
        let at = if tab == 2 { now - 25.0 * MIN } else { now };
        let ev = event(&mut rng, at);
        if i % 5 == 0 {
            // The same event as JSON text.
            let mut o = serde_json::json!({"type": ev.kind, "tags": ev.tags});
            if let Some(x) = &ev.item {
                o["item"] = x.clone().into();
            }
            if let Some(x) = &ev.category {
                o["category"] = x.clone().into();
            }
            if let Some(v) = ev.value {
                o["value"] = v.into();
            }
            tabs[tab].track(&o.to_string(), at).unwrap();
        } else {
            tabs[tab].track_event(ev, at).unwrap();
        }
        // Tab 1 saves rarely, so its journal overflows.
        let saves = match tab {
            1 => i % 250 == 0,
            _ => i % 7 == 0,
        };
        if saves {
            let r = tabs[tab].sync(store.as_deref(), at, MAX).unwrap();
            writeln!(
                out,
                "sync {i} tab {tab}: {} events, {} dropped, crc {:08x}",
                r.events,
                r.dropped,
                insitu::crc32(&r.bytes)
            )
            .unwrap();
            // Sometimes an event arrives while the write is in flight.
            if i % 3 == 0 {
                let ev = event(&mut rng, at);
                tabs[tab].track_event(ev, at).unwrap();
            }
            store = Some(r.bytes);
            assert!(tabs[tab].commit());
        }
        if i % 31 == 0 {
            let tz = [-60.0, 0.0, 300.0, 570.0, -840.0][i % 5];
            write!(out, "tab {tab} ").unwrap();
            features(&mut out, &mut tabs[tab], at + (i % 4) as f64 * 7_000.0, tz);
        }
    }
    // A tab that tracked before it could read storage.
    let mut late = Behavior::new(cfg.clone());
    for k in 0..5 {
        let ev = event(&mut rng, now - k as f64 * 9.0 * MIN);
        late.track_event(ev, now - k as f64 * 9.0 * MIN).unwrap();
    }
    let dropped = late.restore(store.as_deref().unwrap(), now, MAX).unwrap();
    write!(out, "late, {dropped} dropped: ").unwrap();
    features(&mut out, &mut late, now, -120.0);
    tabs.push(late);
    for (t, b) in tabs.iter_mut().enumerate() {
        let r = b.sync(store.as_deref(), now, MAX).unwrap();
        writeln!(
            out,
            "final sync tab {t}: {} events, {} dropped",
            r.events, r.dropped
        )
        .unwrap();
        store = Some(r.bytes);
        assert!(b.commit());
    }
    let last = section(store.as_deref().unwrap());
    // A reload, a declared type removed, and two days later.
    let mut reload = Behavior::new(BehaviorConfig::parse(OPTIONS).unwrap());
    reload.restore(store.as_deref().unwrap(), now, MAX).unwrap();
    write!(out, "reload ").unwrap();
    features(&mut out, &mut reload, now + MIN, 60.0);
    let fewer = r#"{"maxEvents": 60, "maxBytes": 3000, "sessionGapMinutes": 20, "maxAgeDays": 2, "types": ["cart"]}"#;
    let mut b = Behavior::new(BehaviorConfig::parse(fewer).unwrap());
    let dropped = b.restore(store.as_deref().unwrap(), now, MAX).unwrap();
    writeln!(out, "without wish: {dropped} dropped").unwrap();
    write!(out, "without wish ").unwrap();
    features(&mut out, &mut b, now + MIN, 0.0);
    write!(out, "later ").unwrap();
    features(&mut out, &mut b, now + 2.0 * 86_400_000.0 - 30.0 * MIN, 0.0);
    (out, last)
}

fn with_section(body: &[u8]) -> Vec<u8> {
    let mut s = Snapshot::new();
    s.set_section(BEHAVIOR_SECTION, body.to_vec());
    s.encode(MAX).unwrap()
}

/// What a store makes of damaged copies of `body`: one line per copy, its
/// error code, or the events it kept and dropped and what it writes back.
fn damaged(body: &[u8]) -> String {
    let mut rng = Rng::new(0xbad_5ec7);
    let mut out = String::new();
    let cfg = BehaviorConfig::parse(r#"{"types": ["cart"], "maxBytes": 262144}"#).unwrap();
    for i in 0..1500 {
        let mut m = body.to_vec();
        match i % 4 {
            // Truncated.
            0 => m.truncate((rng.next_u64() as usize) % m.len()),
            // A run of bytes overwritten.
            1 => {
                let at = (rng.next_u64() as usize) % m.len();
                for x in m.iter_mut().skip(at).take(1 + i % 5) {
                    *x = rng.next_u64() as u8;
                }
            }
            // Bits flipped.
            _ => {
                for _ in 0..1 + rng.next_u64() % 3 {
                    let j = (rng.next_u64() as usize) % m.len();
                    m[j] ^= 1 << (rng.next_u64() % 8);
                }
            }
        }
        let mut b = Behavior::new(cfg.clone());
        match b.sync(Some(&with_section(&m)), T0 + 3.0 * 86_400_000.0, MAX) {
            Err(e) => writeln!(out, "{i} {}", e.code()),
            Ok(r) => writeln!(
                out,
                "{i} ok {} {} {:08x}",
                r.events,
                r.dropped,
                insitu::crc32(&section(&r.bytes))
            ),
        }
        .unwrap();
    }
    out
}

#[test]
fn the_store_writes_derives_and_refuses_as_recorded() {
    let (mut report, last) = record();
    writeln!(report, "section {}", hex(&last)).unwrap();
    report.push_str(&damaged(&last));
    if std::env::var_os("INSITU_BLESS").is_some() {
        std::fs::write(FIXTURE, &report).unwrap();
    }
    let want = std::fs::read_to_string(FIXTURE).unwrap();
    for (i, (got, want)) in report.lines().zip(want.lines()).enumerate() {
        assert_eq!(got, want, "line {}", i + 1);
    }
    assert_eq!(report.lines().count(), want.lines().count());
}

/// The recorded section reads back as recorded, and a store holding its
/// events writes it again byte for byte.
#[test]
fn the_recorded_section_reads_and_writes_back() {
    let want = std::fs::read_to_string(FIXTURE).unwrap();
    let line = want.lines().find(|l| l.starts_with("section ")).unwrap();
    let body = unhex(&line["section ".len()..]);
    let cfg = BehaviorConfig::parse(OPTIONS).unwrap();
    let mut b = Behavior::new(cfg.clone());
    // Every event is later than T0: a restore as of T0 keeps them all.
    assert_eq!(b.restore(&with_section(&body), T0, MAX).unwrap(), 0);
    let r = b.sync(None, T0, MAX).unwrap();
    assert_eq!(hex(&section(&r.bytes)), hex(&body));
    let reload = want
        .lines()
        .skip_while(|l| !l.starts_with("reload "))
        .take(3);
    let mut c = Behavior::new(cfg);
    c.restore(&with_section(&body), T0, MAX).unwrap();
    let mut out = String::new();
    let now: f64 = want
        .lines()
        .find(|l| l.starts_with("reload "))
        .unwrap()
        .split(' ')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    out.push_str("reload ");
    features(&mut out, &mut c, now, 60.0);
    for (got, want) in out.lines().zip(reload) {
        assert_eq!(got, want);
    }
}
