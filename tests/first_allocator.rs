//! The first-decision module's allocator ([`Allocator::first_visit`], what
//! insitu_bg.wasm runs: nothing stored, never synced) computes exactly what
//! the full engine's computes on fresh state: every assignment (variant,
//! reason, probability, bucket, trial seed, new exposure), every reward's
//! outcome, the bandit counts and pending settlements bit for bit, the
//! exposure log and the device unit, through random scripts over every hash
//! version, coverage, holdouts, namespaces, bandits with priors, expiring
//! trials, a journal past its cap, new configurations, unit changes and
//! resets. A first visit's decisions are then the full engine's, and the
//! handover replays them as such.

use insitu::{Allocator, Experiments, Rng};
use serde_json::{json, Value};

/// A random configuration: fixed-weight experiments of every hash version
/// (coverage, holdouts, namespaces, a fallback) and bandits (priors, a
/// minimum probability, few samples, short reward windows).
fn config(rng: &mut Rng) -> Value {
    let hashes = ["insitu/1", "growthbook/1", "growthbook/2"];
    let mut list = Vec::new();
    for k in 0..5 + rng.next_u64() % 4 {
        let n = 2 + (rng.next_u64() % 3) as usize;
        let ids: Vec<String> = (0..n).map(|v| format!("v{v}")).collect();
        let mut e = json!({"key": format!("e{k}"), "variants": ids});
        if rng.next_u64() % 3 == 0 {
            let min_p = [0.0, 0.05, 0.2][(rng.next_u64() % 3) as usize];
            let mut prior = serde_json::Map::new();
            for id in &ids {
                if rng.next_u64() % 2 == 0 {
                    let a = (rng.next_u64() % 5) as f64;
                    let b = (rng.next_u64() % 500) as f64 / 100.0;
                    prior.insert(id.clone(), json!([a, b]));
                }
            }
            e["allocation"] = json!({
                "type": "thompson",
                "prior": prior,
                "minProbability": min_p,
                "samples": 1 + rng.next_u64() % 48,
                "rewardWindowMs": 1 + rng.next_u64() % 200,
            });
        } else {
            let w: Vec<f64> = (0..n).map(|_| 1.0 + (rng.next_u64() % 9) as f64).collect();
            let sum: f64 = w.iter().sum();
            let mut w: Vec<f64> = w
                .iter()
                .map(|x| (x / sum * 1000.0).round() / 1000.0)
                .collect();
            let rest: f64 = w[1..].iter().sum();
            w[0] = ((1.0 - rest) * 1000.0).round() / 1000.0;
            e["weights"] = json!(w);
            e["hash"] = json!(hashes[(rng.next_u64() % 3) as usize]);
        }
        if rng.next_u64() % 2 == 0 {
            e["coverage"] = json!((rng.next_u64() % 101) as f64 / 100.0);
        }
        if rng.next_u64() % 3 == 0 {
            e["holdout"] = json!({"key": "h", "fraction": 0.1});
        }
        if rng.next_u64() % 3 == 0 {
            let a = (rng.next_u64() % 50) as f64 / 100.0;
            e["namespace"] = json!({"name": format!("ns{k}"), "range": [a, a + 0.5]});
        }
        if rng.next_u64() % 4 == 0 {
            e["fallback"] = json!(format!("v{}", n - 1));
        }
        if rng.next_u64() % 4 == 0 {
            e["seed"] = json!(format!("s\u{e9}ed-{k}-\u{1f600}"));
        }
        list.push(e);
    }
    Value::Array(list)
}

fn experiments(v: &Value) -> Experiments {
    Experiments::parse(&v.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// Everything observable of an allocator, bit for bit.
fn observed(a: &Allocator) -> String {
    let mut s = format!(
        "{:?} {:?} pending {} |",
        a.unit(),
        a.device_unit(),
        a.pending()
    );
    for i in 0..a.experiments().list().len() {
        for (x, y) in a.bandit_counts(i).unwrap() {
            s += &format!(" {:x}/{:x}", x.to_bits(), y.to_bits());
        }
        s += ";";
    }
    s + &format!(" {:?}", a.exposures())
}

#[test]
fn a_first_visit_allocates_as_the_full_engine_on_fresh_state() {
    let mut rng = Rng::new(0xf1257);
    let (mut assigned, mut rewarded, mut refused, mut banditry) = (0, 0, 0, 0);
    for script in 0..24 {
        let mut cfg = config(&mut rng);
        let seed = rng.next_u64() >> 12;
        let mut full = Allocator::new(experiments(&cfg), seed);
        let mut first = Allocator::first_visit(experiments(&cfg), seed);
        let mut now = 1_700_000_000_000.0;
        // The bandit assigned last: rewards mostly go to it.
        let mut last = 0;
        for step in 0..2000 {
            let what = format!("script {script}, step {step}");
            now += (rng.next_u64() % 30) as f64;
            let n = cfg.as_array().unwrap().len();
            let mut i = (rng.next_u64() % (n as u64 + 1)) as usize;
            match rng.next_u64() % 100 {
                0..=44 => {
                    let targeted = rng.next_u64() % 8 != 0;
                    let (a, b) = (
                        full.assign(i, targeted, now),
                        first.assign(i, targeted, now),
                    );
                    match (a, b) {
                        (Ok(a), Ok(b)) => {
                            assert_eq!(a.probability.to_bits(), b.probability.to_bits(), "{what}");
                            assert_eq!(a, b, "{what}");
                            assigned += 1;
                            if a.seed.is_some() {
                                banditry += 1;
                                last = i;
                            }
                        }
                        (a, b) => {
                            assert_eq!(a.unwrap_err().code(), b.unwrap_err().code(), "{what}")
                        }
                    }
                }
                45..=84 => {
                    if rng.next_u64() % 4 != 0 {
                        i = last;
                    }
                    let r =
                        [0.0, 1.0, 0.5, 0.25, -0.0, 1.5, f64::NAN][(rng.next_u64() % 7) as usize];
                    let at = now + (rng.next_u64() % 8) as f64;
                    match (full.reward(i, r, at), first.reward(i, r, at)) {
                        (Ok(()), Ok(())) => rewarded += 1,
                        (a, b) => {
                            assert_eq!(a.unwrap_err().code(), b.unwrap_err().code(), "{what}");
                            refused += 1;
                        }
                    }
                }
                85..=89 => {
                    let unit = format!("u{}-\u{fc}", rng.next_u64() % 40);
                    let unit = (rng.next_u64() % 4 != 0).then_some(unit.as_str());
                    full.set_site_unit(unit).unwrap();
                    first.set_site_unit(unit).unwrap();
                }
                90..=93 => {
                    let unit = format!("d:{}", rng.next_u64() % 10);
                    if rng.next_u64() % 2 == 0 {
                        assert_eq!(
                            full.set_device_unit(&unit).unwrap(),
                            first.set_device_unit(&unit).unwrap()
                        );
                    } else {
                        full.use_device_unit(&unit).unwrap();
                        first.use_device_unit(&unit).unwrap();
                    }
                }
                94..=95 => {
                    full.drop_device_unit();
                    first.drop_device_unit();
                }
                96..=98 => {
                    // A new configuration: some experiments kept, some new.
                    let mut next = config(&mut rng);
                    let (old, new) = (cfg.as_array().unwrap(), next.as_array_mut().unwrap());
                    for (k, e) in new.iter_mut().enumerate() {
                        if k < old.len() && rng.next_u64() % 2 == 0 {
                            *e = old[k].clone();
                        }
                    }
                    cfg = next;
                    full.set_experiments(experiments(&cfg));
                    first.set_experiments(experiments(&cfg));
                }
                _ => {
                    if rng.next_u64() % 4 == 0 {
                        full.reset();
                        first.reset();
                    }
                }
            }
            assert_eq!(observed(&full), observed(&first), "{what}");
        }
    }
    assert!(assigned > 10_000 && banditry > 1000 && rewarded > 1000 && refused > 1000);
}

#[test]
fn a_first_visit_counts_past_the_journal_cap_as_the_full_engine() {
    let cfg = json!([{"key": "b", "variants": ["x", "y", "z"],
        "allocation": {"type": "thompson", "prior": {"y": [2, 0.5]}, "minProbability": 0.05,
                       "samples": 8, "rewardWindowMs": 2}}]);
    let mut full = Allocator::new(experiments(&cfg), 9);
    let mut first = Allocator::first_visit(experiments(&cfg), 9);
    for a in [&mut full, &mut first] {
        a.set_device_unit("d:x").unwrap();
    }
    for t in 0..3000 {
        let now = 3.0 * t as f64;
        let (a, b) = (
            full.assign(0, true, now).unwrap(),
            first.assign(0, true, now).unwrap(),
        );
        assert_eq!(a, b, "trial {t}");
        // Some trials expire unrewarded: settled as failures at the next.
        if t % 5 != 0 {
            let r = (t % 7) as f64 / 6.0;
            full.reward(0, r, now + 1.0).unwrap();
            first.reward(0, r, now + 1.0).unwrap();
        }
        assert_eq!(observed(&full), observed(&first), "trial {t}");
    }
    assert_eq!(first.pending(), 1024);
}
