//! `aggregate`: Prio3 shards verified and summed equal the plain sum,
//! tampered shares are refused and counted, hostile lines get their code
//! and the run continues.

mod common;

use common::*;
use insitu_aggregate::prio::{shard, vdaf};
use insitu_aggregate::{Aggregator, Task};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn run(t: &Task, input: &str) -> (Vec<Vec<u64>>, insitu_aggregate::Summary) {
    let mut a = Aggregator::new(t.clone(), [7; 16], None).unwrap();
    a.read(input.as_bytes()).unwrap();
    let (_, sums, summary) = a.finish().unwrap();
    (sums, summary)
}

fn add(into: &mut [u64], m: &[u64]) {
    for (a, b) in into.iter_mut().zip(m) {
        *a += b;
    }
}

#[test]
fn prio_shares_verified_and_summed_equal_the_plain_sum() {
    let t = task();
    let mut rng = StdRng::seed_from_u64(11);
    let mut want = vec![vec![0u64; t.spec.len()]; 2];
    let mut input = String::new();
    for i in 0..120 {
        let m = measurement(&mut rng, &t);
        let seg = i % 3 % 2; // more desktop than mobile
        add(&mut want[seg], &m);
        let label = ["desktop", "mobile"][seg];
        // Every fourth report is plain; both kinds add to the same sums.
        input.push_str(&line_of(&mut rng, &t, &m, label, i % 4 == 0));
    }
    let (sums, summary) = run(&t, &input);
    assert_eq!((summary.plain, summary.prio), (30, 90));
    assert!(summary.refused.is_empty(), "{:?}", summary.examples);
    assert_eq!(sums, want);
}

#[test]
fn tampered_shares_are_refused_counted_and_never_summed() {
    let t = task();
    let mut rng = StdRng::seed_from_u64(12);
    let v = vdaf(&t.spec).unwrap();
    let mut want = vec![0u64; t.spec.len()];
    let mut input = String::new();
    let mut tampered = 0;
    for i in 0..40 {
        let m = measurement(&mut rng, &t);
        let nonce: [u8; 16] = rng.gen();
        let (p, [mut l, mut h]) = shard(&v, &m, &nonce).unwrap();
        let mut n = nonce;
        match i % 5 {
            // The lowest byte of a field element of the leader's
            // measurement share: still a field element, a different
            // measurement, which the proof no longer matches.
            1 => l[16 * rng.gen_range(0..t.spec.len())] ^= 1,
            // The helper's seed: a different share altogether.
            2 => h[0] ^= 0x80,
            // The report id binds the joint randomness.
            3 => n[5] ^= 1,
            _ => {
                add(&mut want, &m);
            }
        }
        if matches!(i % 5, 1..=3) {
            tampered += 1;
        }
        let line = prio_line_of("desktop", &n, &p, &l, &h);
        input.push_str(&line);
        input.push('\n');
    }
    let (sums, summary) = run(&t, &input);
    assert_eq!(
        summary.refused.get("VERIFY_FAILED"),
        Some(&tampered),
        "{:?}",
        summary.examples
    );
    assert_eq!(summary.prio, 40 - tampered);
    assert_eq!(sums[0], want);
    assert_eq!(sums[1], vec![0; t.spec.len()]);
}

#[test]
fn a_measurement_out_of_range_cannot_be_proven() {
    // A client that shards an entry of 2^bits is refused by prio itself;
    // one that forges a share is caught above. Plain lines are checked
    // against the group bounds, which are tighter than 2^bits.
    let t = task();
    let mut m = vec![0u64; t.spec.len()];
    m[0] = 1;
    m[1] = 1 << t.spec.bits();
    assert!(shard(&vdaf(&t.spec).unwrap(), &m, &[0; 16]).is_err());
}

#[test]
fn hostile_lines_get_their_code_and_the_run_continues() {
    let t = task();
    let mut rng = StdRng::seed_from_u64(13);
    let good = measurement(&mut rng, &t);
    let ok = plain_line(&good, "mobile");
    let prio = prio_line(&mut rng, &t, &good, "mobile");
    let len = t.spec.len();
    let mut over = good.clone();
    over[1] = 9; // decisions over their bound of 8
    let mut wide = good.clone();
    wide[len - 1] = 1 << 40;
    let cases: Vec<(String, &str)> = vec![
        (ok[..ok.len() / 2].to_owned(), "MALFORMED_JSON"),
        (prio[..prio.len() - 30].to_owned(), "MALFORMED_JSON"),
        ("{\"v\":1,".to_owned(), "MALFORMED_JSON"),
        ("not json".to_owned(), "MALFORMED_JSON"),
        (ok.replace("\"v\":1", "\"v\":2"), "UNSUPPORTED_VERSION"),
        (r#"{"v":2,"report":{}}"#.to_owned(), "UNSUPPORTED_VERSION"),
        (ok.replace("\"v\":1", "\"v\":\"1\""), "UNSUPPORTED_VERSION"),
        (
            format!("{{\"pad\":\"{}\"}}", "x".repeat(400_000)),
            "LINE_TOO_LONG",
        ),
        (ok.replace("[1,", "[1,NaN,"), "MALFORMED_JSON"),
        (ok.replace("[1,", "[1,1e400,"), "MALFORMED_JSON"),
        (ok.replace("[1,", "[1,0.5,"), "INVALID_FIELD"),
        (ok.replace("[1,", "[1,-1,"), "INVALID_FIELD"),
        (ok.replace("[1,", "[1,0,"), "WRONG_LENGTH"),
        (plain_line(&good[..len - 1], "mobile"), "WRONG_LENGTH"),
        (plain_line(&over, "mobile"), "OUT_OF_RANGE"),
        (plain_line(&wide, "mobile"), "OUT_OF_RANGE"),
        (ok.replace("[1,", "[2,"), "OUT_OF_RANGE"),
        (
            ok.replace("\"key\":\"hero\"", "\"key\":\"hero\",\"user\":\"u1\""),
            "INVALID_FIELD",
        ),
        (
            ok.replace(",\"measurement\"", ",\"nonce\":\"AAAA\",\"measurement\""),
            "INVALID_FIELD",
        ),
        (ok.replace("shop-hero", "other"), "TASK_MISMATCH"),
        (ok.replace("2026-12-06", "2026-12-07"), "TASK_MISMATCH"),
        (ok.replace("mobile", "tablet"), "UNKNOWN_SEGMENT"),
        (ok.replace(",\"segment\":\"mobile\"", ""), "UNKNOWN_SEGMENT"),
        (
            prio.replace("\"nonce\":\"", "\"nonce\":\"*"),
            "BAD_ENCODING",
        ),
        (
            prio.replace("\"nonce\":\"", "\"nonce\":\"AAAA"),
            "BAD_ENCODING",
        ),
        (
            prio.replace("\"publicShare\":\"", "\"publicShare\":\"AAAA"),
            "BAD_ENCODING",
        ),
        (
            prio.replace("\"helperShare\":\"", "\"helperShare\":\"AAAA"),
            "BAD_ENCODING",
        ),
    ];
    let mut input = Vec::new();
    let mut valid = 0u64;
    for (line, _) in &cases {
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
        input.extend_from_slice(ok.as_bytes());
        input.extend_from_slice(b"\r\n\n");
        valid += 1;
    }
    input.extend_from_slice(b"{\"v\":1,\"task\":\"\xff\xfe\"}\n");
    input.extend_from_slice(prio.as_bytes()); // the last line has no newline
    let mut a = Aggregator::new(t.clone(), [7; 16], None).unwrap();
    for (line, code) in &cases {
        if *code != "LINE_TOO_LONG" {
            let e = a.line(line.as_bytes()).unwrap_err();
            assert_eq!(e.code(), *code, "{}: {e}", &line[..line.len().min(120)]);
        }
    }
    let mut a = Aggregator::new(t.clone(), [7; 16], None).unwrap();
    a.read(&input[..]).unwrap();
    let (_, sums, summary) = a.finish().unwrap();
    let mut want = std::collections::BTreeMap::new();
    for (_, code) in &cases {
        *want.entry(*code).or_insert(0u64) += 1;
    }
    want.insert("INVALID_UTF8", 1);
    assert_eq!(summary.refused, want);
    assert_eq!((summary.plain, summary.prio), (valid, 1));
    assert_eq!(summary.lines, 2 * cases.len() as u64 + 2);
    assert_eq!(
        summary.examples.len(),
        insitu_aggregate::aggregate::MAX_EXAMPLES
    );
    let want: Vec<u64> = good.iter().map(|x| x * (valid + 1)).collect();
    assert_eq!(sums[1], want);
}

#[test]
fn the_line_limit_follows_the_spec() {
    let t = task();
    let a = Aggregator::new(t.clone(), [0; 16], None).unwrap();
    let mut rng = StdRng::seed_from_u64(14);
    let m = measurement(&mut rng, &t);
    let prio = prio_line(&mut rng, &t, &m, "mobile");
    assert!(prio.len() < a.max_line() && a.max_line() < prio.len() + 8192);
    let b = Aggregator::new(t, [0; 16], Some(100)).unwrap();
    assert_eq!(b.max_line(), 100);
}
