//! Criterion benchmarks of the Rust core: what one decision (`rank`) and one
//! learning step (`reward`) cost, per policy, for K variants and d = 2^bits
//! hash slots, with a realistic context of 32 active features.
//!
//! Run everything:        cargo bench --bench engine
//! A quick pass:          cargo bench --bench engine -- --quick
//! A subset:              cargo bench --bench engine -- 'decide/thompson'
//!
//! Groups: `decide/<policy>/K<k>-d<d>` and `update/<policy>/K<k>-d<d>`;
//! `parse/*`, the JSON reading the wasm boundary adds to each call; and
//! `context/*`, one rank with and without its 32 features.
//!
//! Criterion prints its own estimate per benchmark; at the end this binary
//! prints a table of the medians measured in this run, with each policy's
//! ratio to `greedy` (the policy with no exploration maths, the baseline) at
//! the same K and d, and the with/without ratios of `parse` and `context`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion};
use insitu::{Decision, Engine, EngineConfig, RankOptions};
use serde_json::{json, Value};

const POLICIES: [(&str, &str); 4] = [
    ("thompson", r#"{"type":"thompson"}"#),
    ("linucb", r#"{"type":"linucb","alpha":1}"#),
    ("egreedy", r#"{"type":"egreedy","epsilon":0.1}"#),
    ("greedy", r#"{"type":"greedy"}"#),
];
const KS: [usize; 3] = [2, 5, 10];
const BITS: [u8; 3] = [4, 5, 6];

/// A fixed clock: with the default 24 h reward TTL nothing ever expires, so
/// the pending store only turns over through its `maxPending` bound.
const NOW: f64 = 1.7e12;
/// Distinct contexts cycled through, so hashing and scoring do not see the
/// same input every call (branch predictors and caches would flatter them).
const CONTEXTS: usize = 64;
/// Rewards folded in before measuring: a fresh posterior has a diagonal
/// covariance, which makes the first updates cheaper than the steady state.
const WARM_UP_REWARDS: usize = 500;

/// Context `i` of the rotating set: 32 active features in three allowlisted
/// namespaces, mixing numbers, booleans, categories and a list of tags.
fn context(i: usize) -> Value {
    let pick = |xs: &[&'static str], j: usize| xs[j % xs.len()];
    let tags: Vec<&str> = (0..8)
        .map(|t| {
            pick(
                &[
                    "sport", "news", "tech", "travel", "food", "music", "film", "games", "cars",
                    "home", "garden", "books", "style", "health", "money", "kids",
                ],
                i * 3 + t * 5,
            )
        })
        .collect();
    json!({
        "page": {
            "section": pick(&["home", "sports", "news", "shop", "blog", "help", "deals"], i),
            "category": pick(&["shoes", "bags", "hats", "coats", "socks", "belts"], i * 7),
            "price": 5.0 + (i * 7 % 50) as f64 * 0.5,
            "scroll": (i % 10) as f64 / 10.0,
            "hour": (i % 24) as f64,
            "weekday": pick(&["mon", "tue", "wed", "thu", "fri", "sat", "sun"], i),
            "device": pick(&["mobile", "desktop", "tablet"], i),
            "referrer": pick(&["search", "social", "direct", "email"], i),
            "lang": pick(&["en", "de", "fr"], i / 2),
            "darkMode": i % 2 == 0,
            "viewportW": (360 + (i % 5) * 240) as f64,
            "viewportH": (640 + (i % 3) * 120) as f64,
        },
        "user": {
            "tags": tags,
            "visits": (i % 30) as f64,
            "daysSinceLast": (i * 13 % 90) as f64,
            "cartValue": (i * 17 % 200) as f64 * 0.75,
            "segment": pick(&["new", "casual", "loyal", "lapsed", "vip"], i),
            "country": pick(&["de", "fr", "us", "gb", "es", "it"], i / 3),
            "loggedIn": i % 3 == 0,
        },
        "session": {
            "pages": (1 + i % 12) as f64,
            "durationS": (10 * (i % 40)) as f64,
            "clicks": (i % 9) as f64,
            "source": pick(&["organic", "cpc", "newsletter", "partner"], i),
            "campaign": pick(&["none", "spring-sale", "black-friday"], i),
            "bounceRisk": (i % 100) as f64 / 100.0,
        },
    })
}

/// Features the engine hashes from a context: one per scalar, one per list item.
fn active_features(ctx: &Value) -> usize {
    ctx.as_object()
        .into_iter()
        .flat_map(|namespaces| namespaces.values())
        .filter_map(Value::as_object)
        .flat_map(|features| features.values())
        .map(|v| v.as_array().map_or(1, Vec::len))
        .sum()
}

/// The rank options JSON text of context `i`, as the wasm boundary receives it.
fn rank_options_text(i: usize) -> String {
    json!({ "context": context(i) }).to_string()
}

fn rank_options() -> Vec<RankOptions<'static>> {
    (0..CONTEXTS)
        .map(|i| {
            assert_eq!(active_features(&context(i)), 32, "context {i}");
            RankOptions::parse(&rank_options_text(i))
                .expect("valid rank options")
                .into_owned()
        })
        .collect()
}

fn engine(k: usize, bits: u8, policy: &str) -> Engine {
    let variants: Vec<String> = (0..k).map(|i| format!("variant-{i}")).collect();
    let cfg = format!(
        r#"{{"variants":{},"features":{{"bits":{bits},"allow":["page","session","user"]}},"policy":{policy},"seed":1,"maxPending":10000}}"#,
        json!(variants)
    );
    Engine::new(EngineConfig::parse(&cfg, 0).expect("valid engine options"))
}

/// A reward in [0, 1] that depends on the context and the variant, so the
/// learner sees a signal rather than constant noise.
fn reward_for(ctx: usize, variant: usize) -> f64 {
    if (ctx + variant) % 3 == 0 {
        1.0
    } else {
        0.0
    }
}

/// An engine past its first rewards, plus a cursor over the rotating contexts.
struct Fixture {
    engine: Engine,
    opts: Vec<RankOptions<'static>>,
    next: usize,
}

impl Fixture {
    fn new(k: usize, bits: u8, policy: &str, opts: &[RankOptions<'static>]) -> Fixture {
        let mut f = Fixture {
            engine: engine(k, bits, policy),
            opts: opts.to_vec(),
            next: 0,
        };
        for _ in 0..WARM_UP_REWARDS {
            let (id, r) = f.rank();
            f.engine.reward(&id, r, NOW).expect("reward");
        }
        f
    }

    fn next_context(&mut self) -> usize {
        let i = self.next;
        self.next = (i + 1) % self.opts.len();
        i
    }

    /// Rank the next context; returns its position and the decision.
    fn rank_next(&mut self) -> (usize, Decision) {
        let i = self.next_context();
        (i, self.engine.rank(&self.opts[i], NOW).expect("rank"))
    }

    /// Rank the next context; returns the decision id and the reward it will get.
    fn rank(&mut self) -> (String, f64) {
        let (i, d) = self.rank_next();
        (
            d.decision_id.expect("not a fallback"),
            reward_for(i, d.index),
        )
    }
}

fn param(k: usize, bits: u8) -> String {
    format!("K{k}-d{}", 1u32 << bits)
}

/// The JSON parsing the wasm boundary adds to every call, for comparison with
/// the engine work itself.
fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    let texts: Vec<String> = (0..CONTEXTS).map(rank_options_text).collect();
    let mut i = 0;
    g.bench_function("rank-options-32-features", |b| {
        b.iter(|| {
            i = (i + 1) % texts.len();
            RankOptions::parse(black_box(&texts[i])).expect("valid")
        })
    });
    g.bench_function("rank-options-empty", |b| {
        b.iter(|| RankOptions::parse(black_box("{}")).expect("valid"))
    });
    g.finish();
}

/// What the 32 features cost inside `rank` (thompson, K = 5, d = 32): the same
/// engine deciding with no context at all (only the constant feature) is the
/// baseline.
fn bench_context(c: &mut Criterion) {
    let opts = rank_options();
    let mut g = c.benchmark_group("context");
    let mut f = Fixture::new(5, 5, POLICIES[0].1, &opts);
    let none = RankOptions::default();
    g.bench_function("no-context", |b| {
        b.iter(|| f.engine.rank(black_box(&none), NOW).expect("rank"))
    });
    g.bench_function("32-features", |b| b.iter(|| black_box(f.rank_next())));
    g.finish();
}

fn bench_decide(c: &mut Criterion) {
    let opts = rank_options();
    let mut g = c.benchmark_group("decide");
    for (policy, policy_json) in POLICIES {
        for k in KS {
            for bits in BITS {
                let mut f = Fixture::new(k, bits, policy_json, &opts);
                g.bench_function(BenchmarkId::new(policy, param(k, bits)), |b| {
                    b.iter(|| black_box(f.rank_next()))
                });
            }
        }
    }
    g.finish();
}

fn bench_update(c: &mut Criterion) {
    let opts = rank_options();
    let mut g = c.benchmark_group("update");
    // Every timed reward also pays an untimed rank, so keep these short.
    g.warm_up_time(Duration::from_millis(250))
        .measurement_time(Duration::from_millis(600));
    // Each reward settles a fresh decision, so every timed reward comes right
    // after its own untimed rank: a reward for what was just shown, the
    // common case. (Rewarding a large pre-ranked batch would also measure the
    // lookup in a long pending store, which is a different question.)
    // `timer-floor` is the same loop with nothing between the two clock
    // reads: the part of every `update` figure that is measurement overhead.
    let mut f = Fixture::new(5, 5, POLICIES[0].1, &opts);
    g.bench_function("timer-floor", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (id, r) = f.rank();
                let t = Instant::now();
                black_box((&id, r));
                total += t.elapsed();
            }
            total
        })
    });
    for (policy, policy_json) in POLICIES {
        for k in KS {
            for bits in BITS {
                let mut f = Fixture::new(k, bits, policy_json, &opts);
                g.bench_function(BenchmarkId::new(policy, param(k, bits)), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let (id, r) = f.rank();
                            let t = Instant::now();
                            f.engine.reward(black_box(&id), r, NOW).expect("reward");
                            total += t.elapsed();
                        }
                        total
                    })
                });
            }
        }
    }
    g.finish();
}

/// Where criterion keeps its results, found the way criterion finds it for a
/// plain `cargo bench` (a target dir set only in a cargo config is missed,
/// and then the summary is skipped).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// Median ns of a benchmark, if it ran in this process (written after `since`).
fn median_ns(dir: &std::path::Path, id: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(id).join("new").join("estimates.json");
    let written = std::fs::metadata(&path).ok()?.modified().ok()?;
    if written < since {
        return None;
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn print_summary(since: SystemTime) {
    let dir = criterion_dir();
    let get = |id: &str| median_ns(&dir, id, since);
    let mut rows = BTreeMap::new();
    for (pi, (policy, _)) in POLICIES.iter().enumerate() {
        for k in KS {
            for bits in BITS {
                let p = param(k, bits);
                let decide = get(&format!("decide/{policy}/{p}"));
                let update = get(&format!("update/{policy}/{p}"));
                let base = get(&format!("decide/greedy/{p}"));
                if decide.is_some() || update.is_some() {
                    rows.insert((pi, k, bits), (decide, update, base));
                }
            }
        }
    }
    let parse = get("parse/rank-options-32-features");
    let parse_empty = get("parse/rank-options-empty");
    let no_context = get("context/no-context");
    let with_context = get("context/32-features");
    let floor = get("update/timer-floor");
    if rows.is_empty() && parse.is_none() && no_context.is_none() {
        return;
    }
    let ns = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.0}"));
    println!("\nMedians of this run (ns per call; 32 active features, maxPending 10000):");
    println!(
        "{:<9} {:>3} {:>3} {:>10} {:>10} {:>16}",
        "policy", "K", "d", "decide", "update", "decide/greedy"
    );
    for ((pi, k, bits), (decide, update, base)) in rows {
        let ratio = match (decide, base) {
            (Some(d), Some(b)) => format!("{:.2}x", d / b),
            _ => "-".to_owned(),
        };
        println!(
            "{:<9} {:>3} {:>3} {:>10} {:>10} {:>16}",
            POLICIES[pi].0,
            k,
            1u32 << bits,
            ns(decide),
            ns(update),
            ratio
        );
    }
    let times = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!(" ({:.1}x)", a / b),
        _ => String::new(),
    };
    println!(
        "parse rank options: {} ns with 32 features, {} ns for {{}}{}",
        ns(parse),
        ns(parse_empty),
        times(parse, parse_empty)
    );
    println!(
        "thompson K5 d32 rank: {} ns with 32 features, {} ns with no context{}",
        ns(with_context),
        ns(no_context),
        times(with_context, no_context)
    );
    println!(
        "update timer floor: {} ns (included in every update figure)",
        ns(floor)
    );
}

fn main() {
    let started = SystemTime::now();
    // Short runs: 77 benchmarks must finish in a few minutes on 2 cores.
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    bench_parse(&mut c);
    bench_context(&mut c);
    bench_decide(&mut c);
    bench_update(&mut c);
    c.final_summary();
    print_summary(started);
}
