//! `readout` and `model` from noisy sums, and the command line end to end.

mod common;

use common::*;
use insitu_aggregate::model::{insitu_version, next_model};
use insitu_aggregate::readout::{readout, Options};
use insitu_aggregate::{encode, release, Mechanism, Stats, SumsFile, Task};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;

const BASE: &str = r#"{"format":1,"features":{"bits":4,"allow":["page"]},"noise":0.25,
  "variants":[{"id":"a","weights":{"1":0.2}},{"id":"b","features":{"variant":{"tone":"calm"}},"variance":0.5}]}"#;

/// 500 reports per segment: variant 0 seen with slot 1 (x = 1, reward 0.5
/// twice: xy 1, xx 2), 4 decisions, 3 exposures, rewards 1.5; variant 1
/// with 2 decisions, 1 exposure, reward 0.
fn exact(t: &Task) -> Vec<Vec<u64>> {
    let mut st = Stats::zeros(&t.spec);
    st.decisions = vec![4, 2];
    st.exposures = vec![3, 1];
    st.rewards = vec![1.5, 0.0];
    st.xy[1] = 1.0;
    st.xx[1] = 2.0;
    let e = encode(&t.spec, &st).unwrap();
    assert!(e.clipped.is_empty());
    let one: Vec<u64> = e.entries.iter().map(|x| x * 500).collect();
    vec![one.clone(), one]
}

fn sums_text(t: &Task, mech: Mechanism, seed: u64) -> String {
    let r = release(t, &exact(t), mech, &mut StdRng::seed_from_u64(seed)).unwrap();
    serde_json::to_string(&r).unwrap()
}

#[test]
fn readout_without_noise_is_exact_and_suppresses_small_segments() {
    let t = task();
    let text = sums_text(&t, Mechanism::None, 0);
    let opts = Options {
        min_reports: 500.0,
        confidence: 0.95,
    };
    let r = readout(&text, &opts).unwrap();
    let v = &r.total.variants;
    assert_eq!(
        (r.total.reports, v[0].decisions, v[0].exposures),
        (Some(1000.0), 4000.0, 3000.0)
    );
    let e = v[0].exposure_rate.unwrap();
    assert_eq!(e.estimate, 0.75);
    // Sampling only: sqrt(p(1-p)/B).
    assert!((e.se - (0.75f64 * 0.25 / 4000.0).sqrt()).abs() < 1e-12);
    assert_eq!(v[0].reward_rate.unwrap().estimate, 0.5);
    assert_eq!(v[1].reward_rate.unwrap().estimate, 0.0);
    assert_eq!(r.segments.len(), 2);
    assert!(r
        .segments
        .iter()
        .all(|s| !s.suppressed && s.reports == Some(500.0)));
    let r = readout(
        &text,
        &Options {
            min_reports: 501.0,
            ..opts
        },
    )
    .unwrap();
    assert!(r
        .segments
        .iter()
        .all(|s| s.suppressed && s.reports.is_none() && s.variants.is_empty()));
    // The total is still there: post-processing of the release.
    assert_eq!(r.total.reports, Some(1000.0));
    let e = readout(
        &text,
        &Options {
            confidence: 0.97,
            ..opts
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT");
}

#[test]
fn readout_intervals_cover_the_noise() {
    // The exact rates are fixed here, so the interval (sampling + noise)
    // should cover them at least as often as its confidence says.
    let t = task();
    let opts = Options {
        min_reports: 0.0,
        confidence: 0.9,
    };
    let mech = Mechanism::DiscreteLaplace { epsilon: 0.5 };
    let (mut covered, mut n, mut widths) = (0, 0, 0.0);
    for seed in 0..400 {
        let r = readout(&sums_text(&t, mech, seed), &opts).unwrap();
        // No rate (noisy exposures below 1) counts as not covered.
        if let Some(rate) = r.total.variants[0].reward_rate {
            covered += (rate.low <= 0.5 && 0.5 <= rate.high) as u32;
            widths += rate.high - rate.low;
        }
        n += 1;
    }
    assert!(covered as f64 / n as f64 >= 0.9, "{covered} of {n}");
    // And it is wider than sampling alone (the noise counts).
    let sampling = 2.0 * 1.645 * (0.25f64 / 3000.0).sqrt();
    assert!(widths / n as f64 > 1.5 * sampling, "{}", widths / n as f64);
}

fn model_of(text: &str) -> Value {
    next_model(BASE, text, 1e-4).unwrap()
}

#[test]
fn the_model_follows_the_documented_rule_without_noise() {
    let t = task();
    let m = model_of(&sums_text(&t, Mechanism::None, 0));
    // Variant a, slot 1: m0 0.2, v0 1; xy 1000, xx 2000 over both segments.
    let prec = 1.0 + 2000.0 / 0.25;
    let w = &m["variants"][0]["weights"];
    assert!((w[1].as_f64().unwrap() - (0.2 + 1000.0 / 0.25) / prec).abs() < 1e-12);
    assert!((m["variants"][0]["variance"][1].as_f64().unwrap() - 1.0 / prec).abs() < 1e-12);
    // Slots with no data keep the base prior.
    assert_eq!(w[0].as_f64(), Some(0.0));
    assert_eq!(m["variants"][1]["variance"][2].as_f64(), Some(0.5));
    assert_eq!(
        m["variants"][1]["features"],
        serde_json::json!({"variant": {"tone": "calm"}})
    );
    let version = m["version"].as_str().unwrap();
    assert!(version.starts_with("m1-"));
    let base: Value = serde_json::from_str(BASE).unwrap();
    assert_ne!(version, insitu_version(&base).unwrap());
}

#[test]
fn models_from_noisy_sums_are_always_valid() {
    let t = task();
    for (epsilon, seeds) in [(1.0, 20), (0.01, 20)] {
        for seed in 0..seeds {
            let mech = Mechanism::DiscreteLaplace { epsilon };
            let m = model_of(&sums_text(&t, mech, seed));
            // Loaded by insitu's own reader, stated version and all.
            assert_eq!(insitu_version(&m).unwrap(), m["version"].as_str().unwrap());
            for (k, v0) in [(0, 1.0), (1, 0.5)] {
                let var = m["variants"][k]["variance"].as_array().unwrap();
                let w = m["variants"][k]["weights"].as_array().unwrap();
                assert_eq!((var.len(), w.len()), (16, 16));
                for (x, y) in var.iter().zip(w) {
                    let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                    assert!(
                        x > 0.0 && x <= v0 && y.is_finite(),
                        "ε {epsilon} seed {seed}: {x} {y}"
                    );
                }
            }
        }
    }
}

/// Where the noise dwarfs the evidence (ε = 0.001: every sum is noise),
/// the next model keeps the base's means: a slot's evidence counts only
/// where its noisy X'X stands two noise standard deviations above 0, which
/// noise alone does with a chance near 0.03 per slot (the upper tail of a
/// Laplace variable at 2·√2 of its scale; the sum of two segments' noise has
/// a thinner tail). So of 20 releases × 32 slots (mean about 19), more than
/// 64 moved slots is over 10 standard deviations out. The first rule took
/// each noisy X'y at face value and moved nearly every slot.
#[test]
fn a_release_that_is_all_noise_leaves_the_base_prior() {
    let t = task();
    let base: Value = serde_json::from_str(BASE).unwrap();
    let (mut moved, mut slots) = (0, 0);
    for seed in 0..20 {
        let m = model_of(&sums_text(
            &t,
            Mechanism::DiscreteLaplace { epsilon: 0.001 },
            seed,
        ));
        for k in 0..2 {
            let w = m["variants"][k]["weights"].as_array().unwrap();
            for (i, x) in w.iter().enumerate() {
                let m0 = base["variants"][k]["weights"][i.to_string()]
                    .as_f64()
                    .unwrap_or(0.0);
                moved += usize::from((x.as_f64().unwrap() - m0).abs() > 1e-12);
                slots += 1;
            }
        }
    }
    assert_eq!(slots, 640);
    assert!(moved <= 64, "{moved} of {slots} slots moved from the base");
}

#[test]
fn a_base_that_does_not_fit_is_refused() {
    let t = task();
    let text = sums_text(&t, Mechanism::None, 0);
    let e = next_model(&BASE.replace("\"bits\":4", "\"bits\":5"), &text, 1e-4).unwrap_err();
    assert_eq!(e.code(), "INVALID_MODEL");
    let e = next_model(&BASE.replace("\"format\":1", "\"format\":2"), &text, 1e-4).unwrap_err();
    assert_eq!(
        (e.code(), e.message.contains("format")),
        ("INVALID_MODEL", true)
    );
    let e = next_model(BASE, "{}", 1e-4).unwrap_err();
    assert_eq!(e.code(), "INVALID_SUMS");
    let mut f: SumsFile = serde_json::from_str(&text).unwrap();
    f.segments[0].sums.pop();
    let e = next_model(BASE, &serde_json::to_string(&f).unwrap(), 1e-4).unwrap_err();
    assert_eq!(e.code(), "INVALID_SUMS");
}

mod cli {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Output, Stdio};

    fn run(args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_insitu-aggregate"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A usage error exits before reading: a broken pipe is expected then.
        let _ = child.stdin.take().unwrap().write_all(stdin);
        child.wait_with_output().unwrap()
    }

    #[test]
    fn aggregate_readout_and_model_end_to_end() {
        let dir = std::env::temp_dir().join(format!("insitu-aggregate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = dir.join("task.json");
        std::fs::write(&spec, TASK).unwrap();
        let base = dir.join("base.json");
        std::fs::write(&base, BASE).unwrap();
        let (spec, base) = (spec.to_str().unwrap(), base.to_str().unwrap());
        let t = task();
        let mut rng = StdRng::seed_from_u64(41);
        let mut input = String::new();
        for i in 0..30 {
            let m = measurement(&mut rng, &t);
            let seg = ["desktop", "mobile"][i % 2];
            input.push_str(&line_of(&mut rng, &t, &m, seg, i % 3 == 0));
        }
        input.push_str("{\"v\":9}\n{truncated\n");
        let args = ["aggregate", "--spec", spec, "--epsilon", "1", "--seed", "7"];
        let out = run(&args, input.as_bytes());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(
            (summary["plain"].as_u64(), summary["prio"].as_u64()),
            (Some(10), Some(20))
        );
        assert_eq!(summary["refused"]["UNSUPPORTED_VERSION"].as_u64(), Some(1));
        assert_eq!(summary["refused"]["MALFORMED_JSON"].as_u64(), Some(1));
        // The seed reproduces the release.
        assert_eq!(run(&args, input.as_bytes()).stdout, out.stdout);
        let sums = out.stdout;
        let r = run(&["readout", "--min-reports", "5"], &sums);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let r: Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(r["segments"].as_array().unwrap().len(), 2);
        let m = run(&["model", "--base", base], &sums);
        assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
        // insitu's own reader takes the text as printed, stated version and all.
        let text = String::from_utf8(m.stdout).unwrap();
        let cfg = insitu::EngineConfig::parse(&format!("{{\"model\": {text}}}"), 0).unwrap();
        let m: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            insitu::Engine::new(cfg).model_version(),
            m["version"].as_str().unwrap()
        );
        assert_eq!(insitu_version(&m).unwrap(), m["version"].as_str().unwrap());

        // `noise` releases a DAP collector's exact sums the same way.
        let collected =
            r#"{"segments":[{"segment":"desktop","sums":SUMS},{"segment":"mobile","sums":SUMS}]}"#;
        let one = format!("{:?}", exact(&t)[0]);
        let collected = collected.replace("SUMS", &one);
        let args = ["noise", "--spec", spec, "--no-noise"];
        let n = run(&args, collected.as_bytes());
        assert!(n.status.success(), "{}", String::from_utf8_lossy(&n.stderr));
        let f: SumsFile = serde_json::from_slice(&n.stdout).unwrap();
        assert_eq!(format!("{:?}", f.segments[1].sums), one);
        let n = run(&args, collected.replace("mobile", "tablet").as_bytes());
        assert_eq!(n.status.code(), Some(1));

        // Usage errors exit 2, run errors 1, each with its code.
        for (args, code, status) in [
            (vec!["aggregate", "--spec", spec], "INVALID_ARGUMENT", 2),
            (
                vec!["aggregate", "--spec", spec, "--epsilon", "-1"],
                "INVALID_ARGUMENT",
                2,
            ),
            (
                vec!["aggregate", "--spec", "/nonexistent", "--no-noise"],
                "INVALID_SPEC",
                2,
            ),
            (vec!["frobnicate"], "INVALID_ARGUMENT", 2),
            (vec!["model", "--base", spec], "INVALID_MODEL", 1),
            (vec!["readout"], "INVALID_SUMS", 1),
        ] {
            let out = run(&args, b"not sums");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(status), "{args:?}: {err}");
            assert!(
                err.starts_with(&format!("insitu-aggregate: {code}: ")),
                "{args:?}: {err}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn an_ab_experiment_reads_out_without_learner_statistics() {
    let text = TASK
        .replace("\"slots\": 16", "\"slots\": 0")
        .replace(",\n  \"segments\": [\"desktop\", \"mobile\"]", "");
    let t = insitu_aggregate::TaskFile::parse(&text)
        .unwrap()
        .check()
        .unwrap();
    assert_eq!(t.spec.len(), 7);
    let mut st = Stats::zeros(&t.spec);
    st.decisions = vec![2, 2];
    st.exposures = vec![2, 1];
    st.rewards = vec![1.0, 1.0];
    let m = encode(&t.spec, &st).unwrap().entries;
    let exact = vec![m.iter().map(|x| x * 1_000).collect::<Vec<u64>>()];
    let r = release(&t, &exact, Mechanism::None, &mut StdRng::seed_from_u64(0)).unwrap();
    let opts = Options {
        min_reports: 100.0,
        confidence: 0.95,
    };
    let out = readout(&serde_json::to_string(&r).unwrap(), &opts).unwrap();
    assert!(out.segments.is_empty());
    let v = &out.total.variants;
    assert_eq!(v[0].reward_rate.unwrap().estimate, 0.5);
    assert_eq!(v[1].reward_rate.unwrap().estimate, 1.0);
    assert_eq!(v[1].exposure_rate.unwrap().estimate, 0.5);
    // No learner statistics, so no model.
    let e = next_model(BASE, &serde_json::to_string(&r).unwrap(), 1e-4).unwrap_err();
    assert_eq!(e.code(), "INVALID_MODEL");
}
