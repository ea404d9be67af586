//! The golden measurement cases (`tests/fixtures/measurements.json`),
//! worked by hand: the contract the device side must meet too.

use insitu_aggregate::{encode, Stats, TaskFile};
use serde_json::Value;

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(), // "NaN", "Infinity", "-Infinity"
        v => v.as_f64().unwrap(),
    }
}

fn sparse(v: &Value, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n];
    for (k, x) in v.as_object().unwrap() {
        out[k.parse::<usize>().unwrap()] = num(x);
    }
    out
}

#[test]
fn golden_measurements() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/measurements.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let task = TaskFile::parse(&doc["spec"].to_string())
        .unwrap()
        .check()
        .unwrap();
    let spec = &task.spec;
    let p = &doc["prio3SumVec"];
    assert_eq!(p["bits"].as_u64(), Some(spec.bits() as u64));
    assert_eq!(p["length"].as_u64(), Some(spec.len() as u64));
    assert_eq!(p["chunkLength"].as_u64(), Some(spec.chunk_length() as u64));
    let kd = spec.variants() * spec.slots();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 7);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let s = &case["stats"];
        let counts = |v: &Value| -> Vec<u32> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        };
        let stats = Stats {
            decisions: counts(&s["decisions"]),
            exposures: counts(&s["exposures"]),
            rewards: s["rewards"].as_array().unwrap().iter().map(num).collect(),
            xy: sparse(&s["xy"], kd),
            xx: sparse(&s["xx"], kd),
        };
        let got = encode(spec, &stats);
        if let Some(code) = case["error"].as_str() {
            assert_eq!(got.unwrap_err().code(), code, "{name}");
            continue;
        }
        let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut want = vec![0u64; spec.len()];
        for (k, x) in case["nonzero"].as_object().unwrap() {
            want[k.parse::<usize>().unwrap()] = x.as_u64().unwrap();
        }
        assert_eq!(got.entries, want, "{name}");
        let clipped: Vec<&str> = got.clipped.iter().map(|g| g.name()).collect();
        let want: Vec<&str> = case["clipped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert_eq!(clipped, want, "{name}");
    }
}
