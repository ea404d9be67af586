//! `npm run bench:federated` (issue #22, part 4): does a prior learned from
//! the private reports of many devices help a fresh device, and how much of
//! that help survives the noise? The simulation is
//! `insitu_aggregate::simulate` (its docs say what is simulated); this
//! prints, per `N`, the average reward of fresh devices from the flat, the
//! non-private and the private (ε = 1) prior, and the line
//! `federated: N=<n> epsilon=1 lift(private)/lift(non-private) = <ratio>`
//! (lift: average reward above the flat prior's; the ± is the standard
//! error of the ratio over the paired evaluation devices).
//!
//! Usage: `cargo run --release -p insitu-aggregate --example federated -- [--quick] [--n N,N,...] [--noise-seed S]`
//! (`--quick`: N = 10^3 and 10^4 with fewer evaluation devices, seconds).

use std::time::Instant;

use insitu_aggregate::simulate::{
    base_model, evaluate, mean, period, prior, ratio, Context, World, BITS, PERIOD,
};
use insitu_aggregate::Mechanism;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The privacy budget per device and period.
const EPSILON: f64 = 1.0;

fn main() -> insitu_aggregate::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let ns: Vec<usize> = match args.iter().position(|a| a == "--n") {
        Some(i) => {
            let list = args.get(i + 1).map(|s| {
                s.split(',')
                    .map(|x| x.parse::<usize>().ok().filter(|n| *n > 0))
                    .collect::<Option<Vec<usize>>>()
            });
            match list.flatten() {
                Some(ns) => ns,
                None => {
                    eprintln!(
                        "usage: federated [--quick] [--n N,N,...] (N: device counts, at least 1)"
                    );
                    std::process::exit(2);
                }
            }
        }
        None if quick => vec![1_000, 10_000],
        None => vec![10_000, 100_000, 1_000_000],
    };
    let eval_devices = if quick { 2_000 } else { 20_000 };
    // The noise draw (seed of the release's RNG).
    let noise_seed = match args.iter().position(|a| a == "--noise-seed") {
        Some(i) => match args.get(i + 1).and_then(|s| s.parse::<u64>().ok()) {
            Some(s) => s,
            None => {
                eprintln!("usage: federated [--quick] [--n N,N,...] [--noise-seed S]");
                std::process::exit(2);
            }
        },
        None => 13,
    };
    let world = World::new(&mut StdRng::seed_from_u64(7));
    // The best a device could do knowing the world, for scale.
    let mut rng = StdRng::seed_from_u64(8);
    let (mut best, mut avg) = (0.0, 0.0);
    for _ in 0..100_000 {
        let c = Context::draw(&mut rng);
        let ps: Vec<f64> = (0..4).map(|k| world.p(&c, k)).collect();
        best += ps.iter().cloned().fold(0.0, f64::max);
        avg += mean(&ps);
    }
    println!(
        "federated: K=4, 2^{BITS} slots, {PERIOD} decisions per device and period; \
         oracle reward {:.4}, uniform {:.4}; {eval_devices} fresh devices per prior",
        best / 1e5,
        avg / 1e5
    );
    let base = base_model();
    for n in ns {
        let start = Instant::now();
        let (sums, clipped) = period(n, &world, 11)?;
        let plain = prior(&sums, Mechanism::None, 12)?;
        let private = prior(
            &sums,
            Mechanism::DiscreteLaplace { epsilon: EPSILON },
            noise_seed,
        )?;
        let r = evaluate(&[&base, &plain, &private], eval_devices, &world, 14)?;
        let (lb, lc, q, se) = ratio(&r[0], &r[1], &r[2]);
        println!(
            "  N={n}: average reward flat {:.4}, non-private prior {:.4} (lift {lb:+.4}), \
             private {:.4} (lift {lc:+.4}); ratio {q:.3} ± {se:.3} (s.e.); \
             {clipped} reports clipped; {:.1} s",
            mean(&r[0]),
            mean(&r[1]),
            mean(&r[2]),
            start.elapsed().as_secs_f64()
        );
        println!("federated: N={n} epsilon={EPSILON} lift(private)/lift(non-private) = {q:.3}");
    }
    Ok(())
}
