//! `insitu-aggregate`: the command line. See `docs/aggregate.md`.
//!
//! Exit codes: 0 success (refused lines are counted in the summary on
//! stderr, not failures); 1 a run failed (`IO`, `INVALID_SUMS`,
//! `INVALID_MODEL`, …); 2 a usage error (`INVALID_ARGUMENT`,
//! `INVALID_SPEC`). Errors print as `insitu-aggregate: CODE: message`.

use std::io::{BufRead, Read, Write};

use insitu_aggregate::{release, Aggregator, Code, Error, Mechanism, Result, TaskFile};
use rand::rngs::{OsRng, StdRng};
use rand::{RngCore, SeedableRng};

const USAGE: &str = "usage:
  insitu-aggregate aggregate --spec TASK.json (--epsilon E | --no-noise) [--seed N] [--max-line-bytes N] < reports.jsonl > sums.json
  insitu-aggregate noise --spec TASK.json (--epsilon E | --no-noise) [--seed N] < collected.json > sums.json
  insitu-aggregate readout [--min-reports N] [--confidence C] < sums.json > readout.json
  insitu-aggregate model --base MODEL.json [--min-variance V] < sums.json > model.json";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdin = std::io::stdin();
    let result = run(&args, stdin.lock(), &mut std::io::stdout().lock());
    if let Err(e) = result {
        eprintln!("insitu-aggregate: {e}");
        if matches!(e.code, Code::InvalidArgument | Code::InvalidSpec) {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
        std::process::exit(1);
    }
}

/// Flags as `--name value` pairs, and the boolean `--no-noise`.
struct Flags(Vec<(String, Option<String>)>);

impl Flags {
    fn parse(args: &[String], known: &[&str], switches: &[&str]) -> Result<Flags> {
        let mut out = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let name = a.strip_prefix("--").unwrap_or("");
            if switches.contains(&name) {
                out.push((name.to_owned(), None));
            } else if known.contains(&name) {
                let v = it
                    .next()
                    .ok_or_else(|| arg_err(format!("--{name} needs a value")))?;
                out.push((name.to_owned(), Some(v.clone())));
            } else {
                return Err(arg_err(format!("unknown argument `{a}`")));
            }
        }
        Ok(Flags(out))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    fn num<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>> {
        self.get(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| arg_err(format!("--{name} `{v}` is not a valid number")))
            })
            .transpose()
    }
}

fn arg_err(m: String) -> Error {
    Error::new(Code::InvalidArgument, m)
}

fn read_file(path: &str, code: Code) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::new(code, format!("reading {path}: {e}")))
}

fn read_all<R: Read>(mut input: R) -> Result<String> {
    let mut s = String::new();
    input
        .read_to_string(&mut s)
        .map_err(|e| Error::new(Code::Io, format!("reading stdin: {e}")))?;
    Ok(s)
}

fn write_json<W: Write, T: serde::Serialize>(out: &mut W, value: &T) -> Result<()> {
    let io = |e: std::io::Error| Error::new(Code::Io, format!("writing: {e}"));
    serde_json::to_writer_pretty(&mut *out, value)
        .map_err(|e| Error::new(Code::Io, format!("writing: {e}")))?;
    out.write_all(b"\n").map_err(io)?;
    out.flush().map_err(io)
}

fn run<R: BufRead, W: Write>(args: &[String], input: R, out: &mut W) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("aggregate") => aggregate(&args[1..], input, out),
        Some("noise") => noise(&args[1..], input, out),
        Some("readout") => readout(&args[1..], input, out),
        Some("model") => model(&args[1..], input, out),
        Some("--help") | Some("-h") | Some("help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(arg_err(format!("unknown command `{other}`"))),
        None => Err(arg_err("a command is required".into())),
    }
}

/// The task, the mechanism and the noise RNG from `--spec`, `--epsilon`
/// or `--no-noise`, and `--seed`.
fn setup(flags: &Flags) -> Result<(insitu_aggregate::Task, Mechanism, StdRng)> {
    let path = flags
        .get("spec")
        .ok_or_else(|| arg_err("--spec is required".into()))?;
    let task = TaskFile::parse(&read_file(path, Code::InvalidSpec)?)?.check()?;
    let mech = match (flags.num::<f64>("epsilon")?, flags.has("no-noise")) {
        (Some(e), false) if e.is_finite() && e > 0.0 => Mechanism::DiscreteLaplace { epsilon: e },
        (Some(e), false) => {
            return Err(arg_err(format!(
                "--epsilon should be positive and finite, but is {e}"
            )))
        }
        (None, true) => Mechanism::None,
        _ => {
            return Err(arg_err(
                "give exactly one of --epsilon and --no-noise".into(),
            ))
        }
    };
    // The seed only reproduces the noise (for tests); whoever knows it can
    // take the noise off again, so by default it comes from the OS.
    let rng = match flags.num::<u64>("seed")? {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_rng(OsRng)
            .map_err(|e| Error::new(Code::Io, format!("OS randomness: {e}")))?,
    };
    Ok((task, mech, rng))
}

fn aggregate<R: BufRead, W: Write>(args: &[String], input: R, out: &mut W) -> Result<()> {
    let flags = Flags::parse(
        args,
        &["spec", "epsilon", "seed", "max-line-bytes"],
        &["no-noise"],
    )?;
    let (task, mech, mut rng) = setup(&flags)?;
    let max_line = flags.num::<usize>("max-line-bytes")?;
    // The verify key always comes from the OS: a client that knew it
    // could forge proofs.
    let mut key = [0u8; 16];
    OsRng.fill_bytes(&mut key);
    let mut agg = Aggregator::new(task, key, max_line)?;
    agg.read(input)?;
    let (task, exact, summary) = agg.finish()?;
    let sums = release(&task, &exact, mech, &mut rng)?;
    write_json(out, &sums)?;
    let text = serde_json::to_string(&summary).map_err(|e| Error::new(Code::Io, e.to_string()))?;
    eprintln!("{text}");
    Ok(())
}

fn noise<R: BufRead, W: Write>(args: &[String], input: R, out: &mut W) -> Result<()> {
    let flags = Flags::parse(args, &["spec", "epsilon", "seed"], &["no-noise"])?;
    let (task, mech, mut rng) = setup(&flags)?;
    let exact = insitu_aggregate::aggregate::collected(&task, &read_all(input)?)?;
    write_json(out, &release(&task, &exact, mech, &mut rng)?)
}

fn readout<R: BufRead, W: Write>(args: &[String], input: R, out: &mut W) -> Result<()> {
    let flags = Flags::parse(args, &["min-reports", "confidence"], &[])?;
    let opts = insitu_aggregate::readout::Options {
        min_reports: flags
            .num("min-reports")?
            .unwrap_or(insitu_aggregate::readout::DEFAULT_MIN_REPORTS),
        confidence: flags.num("confidence")?.unwrap_or(0.95),
    };
    let text = read_all(input)?;
    let r = insitu_aggregate::readout::readout(&text, &opts)?;
    write_json(out, &r)
}

fn model<R: BufRead, W: Write>(args: &[String], input: R, out: &mut W) -> Result<()> {
    let flags = Flags::parse(args, &["base", "min-variance"], &[])?;
    let path = flags
        .get("base")
        .ok_or_else(|| arg_err("--base is required".into()))?;
    let base = read_file(path, Code::InvalidModel)?;
    let min_variance = flags
        .num("min-variance")?
        .unwrap_or(insitu_aggregate::model::DEFAULT_MIN_VARIANCE);
    let text = read_all(input)?;
    let m = insitu_aggregate::model::next_model(&base, &text, min_variance)?;
    write_json(out, &m)
}
