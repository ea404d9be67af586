//! The end-to-end simulation of issue #22 (part 4), run by
//! `npm run bench:federated` (`examples/federated.rs`): devices learn with
//! insitu's own learner and report, the reports are encoded, summed and
//! noised as the aggregator does, and fresh devices start from the prior
//! built from them.
//!
//! One simulated site: K = 4 variants, a context of a device class (3), a
//! page section (6), the hour (numeric) and whether the visitor returns, and
//! a linear model of the expected reward over them (each variant's differs
//! by context, so no one variant wins everywhere; rewards are 0/1).
//!
//! 1. **A period** ([`period`]). `n` devices each run the core's `Engine`
//!    (its default policy, LinUCB, and the default 64 hashed slots, from
//!    the flat default prior) for [`PERIOD`] decisions, rewarding each.
//!    Each device adds what the learner updated on
//!    ([`insitu::Engine::last_features`]) to its report's statistics and
//!    encodes them with the reference encoder ([`crate::encode`], clipping
//!    included); the encoded reports are summed exactly, as the two DAP
//!    aggregators' shares add up.
//! 2. **The release** ([`prior`]): no noise (the non-private baseline) or
//!    discrete Laplace noise at a given ε per device and period
//!    ([`crate::release`]), then [`crate::model::next_model`].
//! 3. **Fresh devices** ([`evaluate`]): each makes [`PERIOD`] decisions from
//!    a given prior, learning as it goes; every prior sees the same contexts
//!    and reward draws (common random numbers), so the differences between
//!    priors are the priors'.

use insitu::{hash, Engine, EngineConfig, Hashed};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Code, Error, Result};
use crate::model::next_model;
use crate::{encode, release, Mechanism, Task, TaskFile};

/// The variants.
pub const VARIANTS: [&str; 4] = ["a", "b", "c", "d"];
const DEVICES: [&str; 3] = ["mobile", "desktop", "tablet"];
const SECTIONS: [&str; 6] = ["home", "shoes", "bags", "outdoor", "deals", "journal"];
/// Decisions per device in a period (and per fresh device evaluated).
pub const PERIOD: usize = 8;
/// The model's hashed slots: insitu's default (`bits` 6).
pub const BITS: u32 = 6;
/// Decision seeds are below 2^53 (JavaScript's safe integers).
const SEED_MASK: u64 = (1 << 53) - 1;

/// The flat base prior every device of the period starts from.
pub fn base_model() -> String {
    let variants: Vec<String> = VARIANTS
        .iter()
        .map(|v| format!(r#"{{"id":"{v}"}}"#))
        .collect();
    format!(
        r#"{{"format":1,"features":{{"bits":{BITS},"allow":["ctx"]}},"noise":0.25,"variants":[{}]}}"#,
        variants.join(",")
    )
}

/// The report task. Each decision's features have an L1 norm of at most 5
/// (the constant, two categoricals and two numerics in [0, 1]), so X'y
/// stays within 5 per decision; the diagonal of X'X does too unless two
/// features share a slot (a collision squares their sum), so its bound
/// has room for that, and the rare report over it is clipped by the
/// encoder (counted and printed).
pub fn task() -> Result<Task> {
    let p = PERIOD as f64;
    let text = format!(
        r#"{{"format":1,"task":"sim-hero","period":"sim","key":"hero","variants":{},"slots":{},
            "scale":256,"bounds":{{"decisions":{PERIOD},"exposures":{PERIOD},"rewards":{p},
            "xy":{},"xx":{}}},"segments":[]}}"#,
        VARIANTS.len(),
        1usize << BITS,
        5.0 * p,
        10.0 * p
    );
    TaskFile::parse(&text)?.check()
}

/// What a page knows: device class, section, hour in [0, 1], returning.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// Index into the device classes.
    pub device: usize,
    /// Index into the sections.
    pub section: usize,
    /// The hour, in [0, 1].
    pub hour: f64,
    /// A returning visitor.
    pub returning: bool,
}

impl Context {
    /// A page view's context.
    pub fn draw(rng: &mut StdRng) -> Context {
        Context {
            device: rng.gen_range(0..DEVICES.len()),
            section: rng.gen_range(0..SECTIONS.len()),
            hour: rng.gen_range(0..24) as f64 / 23.0,
            returning: rng.gen_bool(0.4),
        }
    }

    /// The context as the TypeScript side hands it to the core: namespace
    /// `ctx` (index 0 of the allowlist), hashed with insitu's hash.
    pub fn hashed(&self) -> Vec<Hashed> {
        let ns = hash::namespace_seed("ctx");
        vec![
            Hashed::new(
                0,
                hash::categorical(ns, "device", DEVICES[self.device]),
                1.0,
            ),
            Hashed::new(
                0,
                hash::categorical(ns, "section", SECTIONS[self.section]),
                1.0,
            ),
            Hashed::new(0, hash::numeric(ns, "hour"), self.hour),
            Hashed::new(
                0,
                hash::numeric(ns, "returning"),
                f64::from(u8::from(self.returning)),
            ),
        ]
    }
}

/// The site's true expected rewards: per variant, a base rate plus effects
/// of the device class, the section, the hour and returning visitors.
#[derive(Debug, Clone)]
pub struct World {
    base: [f64; 4],
    device: [[f64; 3]; 4],
    section: [[f64; 6]; 4],
    hour: [f64; 4],
    returning: [f64; 4],
}

impl World {
    /// A world drawn from `rng`.
    pub fn new(rng: &mut StdRng) -> World {
        let mut effect = |s: f64| rng.gen_range(-s..s);
        let mut w = World {
            base: [0.0; 4],
            device: [[0.0; 3]; 4],
            section: [[0.0; 6]; 4],
            hour: [0.0; 4],
            returning: [0.0; 4],
        };
        for k in 0..4 {
            w.base[k] = 0.3 + effect(0.03);
            w.device[k] = [effect(0.1), effect(0.1), effect(0.1)];
            for s in &mut w.section[k] {
                *s = effect(0.15);
            }
            w.hour[k] = effect(0.1);
            w.returning[k] = effect(0.1);
        }
        w
    }

    /// The expected reward of variant `k` in context `c`.
    pub fn p(&self, c: &Context, k: usize) -> f64 {
        let r = f64::from(u8::from(c.returning));
        (self.base[k]
            + self.device[k][c.device]
            + self.section[k][c.section]
            + self.hour[k] * c.hour
            + self.returning[k] * r)
            .clamp(0.02, 0.98)
    }
}

/// A refusal of insitu's core (a bug of the simulation, or a model it
/// does not load).
fn core(e: insitu::Error) -> Error {
    Error::new(Code::InvalidModel, format!("insitu: {e}"))
}

/// A device's learner: insitu's engine with the model `model` (JSON).
fn learner(model: &str, seed: u64) -> Result<Engine> {
    let options = format!(r#"{{"model":{model},"seed":{seed}}}"#);
    Ok(Engine::new(
        EngineConfig::parse(&options, seed).map_err(core)?,
    ))
}

/// One device: `PERIOD` decisions from `engine` (reset to its prior), each
/// rewarded with a draw from the world; with reports on (`Engine::enable_reports`)
/// the engine's own tally counts them, as on a device. Returns the sum of
/// rewards. The contexts, the reward draws and each
/// decision's seed come from `rng`, so two calls with the same `rng` state
/// see the same ones (`reset` restarts the engine's own seed stream, which
/// would give every device the same draws).
fn device(engine: &mut Engine, epoch: u64, world: &World, rng: &mut StdRng) -> Result<f64> {
    engine.reset(epoch);
    let mut total = 0.0;
    for t in 0..PERIOD {
        let c = Context::draw(rng);
        let u: f64 = rng.gen();
        let seed = rng.gen::<u64>() & SEED_MASK;
        let choice = engine
            .rank_hashed(&c.hashed(), None, Some(seed), false, t as f64)
            .map_err(core)?;
        let k = choice.index;
        let reward = f64::from(u8::from(u < world.p(&c, k)));
        engine
            .reward_id(choice.epoch, choice.counter, reward, t as f64 + 0.5)
            .map_err(core)?;
        total += reward;
    }
    Ok(total)
}

/// The exact sums of `n` devices' encoded reports, and how many reports
/// the encoder clipped.
pub fn period(n: usize, world: &World, seed: u64) -> Result<(Vec<u64>, usize)> {
    let t = task()?;
    let mut engine = learner(&base_model(), seed)?;
    // The device's own statistics: what its learner updated on, counted by
    // the core's tally (src/report/tally.rs), as a slot with `reports` does.
    engine.enable_reports(1, true).map_err(core)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sums = vec![0u64; t.spec.len()];
    let mut clipped = 0usize;
    for i in 0..n {
        device(&mut engine, i as u64, world, &mut rng)?;
        let st = engine.reports().map(|r| r.counted()).unwrap_or_default();
        let m = encode(&t.spec, &st)?;
        clipped += usize::from(!m.clipped.is_empty());
        for (s, x) in sums.iter_mut().zip(&m.entries) {
            *s += x;
        }
    }
    Ok((sums, clipped))
}

/// The next prior (model JSON) from `sums` with `mech`'s noise, drawn
/// from `seed`.
pub fn prior(sums: &[u64], mech: Mechanism, seed: u64) -> Result<String> {
    let t = task()?;
    let mut rng = StdRng::seed_from_u64(seed);
    let file = release(&t, &[sums.to_vec()], mech, &mut rng)?;
    let text = serde_json::to_string(&file)
        .map_err(|e| Error::new(Code::InvalidSums, format!("sums file: {e}")))?;
    Ok(next_model(&base_model(), &text, crate::model::DEFAULT_MIN_VARIANCE)?.to_string())
}

/// Per model, each of `devices` fresh devices' average reward (paired:
/// device `i` sees the same contexts and reward draws under every model).
pub fn evaluate(
    models: &[&str],
    devices: usize,
    world: &World,
    seed: u64,
) -> Result<Vec<Vec<f64>>> {
    let mut engines = models
        .iter()
        .map(|m| learner(m, seed))
        .collect::<Result<Vec<Engine>>>()?;
    let mut out = vec![Vec::with_capacity(devices); models.len()];
    for i in 0..devices {
        for (e, o) in engines.iter_mut().zip(&mut out) {
            // The same contexts and reward draws for every model.
            let mut rng =
                StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            o.push(device(e, i as u64, world, &mut rng)? / PERIOD as f64);
        }
    }
    Ok(out)
}

/// The paired lift of `b` over `a` (device by device) and the standard
/// error of its mean.
pub fn paired_lift(a: &[f64], b: &[f64]) -> (f64, f64) {
    let d: Vec<f64> = b.iter().zip(a).map(|(b, a)| b - a).collect();
    let m = mean(&d);
    let var = d.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (d.len() as f64 - 1.0);
    (m, (var / d.len() as f64).sqrt())
}

/// The mean of `x`.
pub fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Lifts over `a` of `b` and `c`, the ratio of the mean lifts
/// `mean(c - a) / mean(b - a)`, and its standard error by the delta method
/// over the paired devices (the evaluation's sampling error only).
pub fn ratio(a: &[f64], b: &[f64], c: &[f64]) -> (f64, f64, f64, f64) {
    let (mb, mc) = (paired_lift(a, b).0, paired_lift(a, c).0);
    let r = mc / mb;
    // The s.e. of mean((c − a) − r·(b − a)), over |mb|: c paired with a + r·(b − a).
    let scaled: Vec<f64> = a.iter().zip(b).map(|(a, b)| a + r * (b - a)).collect();
    (mb, mc, r, paired_lift(&scaled, c).1 / mb.abs())
}
