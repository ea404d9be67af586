// Issue #22 end to end, as the README tells a site to run it: devices with
// `reports` on a slot that ships a model hand their reports to the site;
// `insitu-aggregate aggregate` sums them (without noise, and at ε = 1);
// `readout` shows which variant wins; `model` turns the sums into the next
// prior, which a slot loads as its model. Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { aggregatorBinary as aggregator, MemoryStorage, open, rng } from "./helpers.mjs";

/** Run `insitu-aggregate args…` on `input`; its parsed stdout. */
function cli(args, input) {
  const r = spawnSync(aggregator(), args, { input, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** The prior the site ships: flat, three variants over a page's section. */
const BASE = {
  format: 1,
  features: { bits: 4, allow: ["page"], normalize: true },
  noise: 0.25,
  variants: [{ id: "a" }, { id: "b" }, { id: "c" }],
};

/** Chance of a reward: `b` wins on sports, `a` elsewhere. */
const chance = (variant, section) => (section === "sports" ? { a: 0.2, b: 0.8, c: 0.3 } : { a: 0.7, b: 0.2, c: 0.3 })[variant];

/** `n` devices that each make 15 decisions on the shipped model on 2026-12-06 and report the next day. */
async function devices(n, model, seed) {
  const random = rng(seed);
  const reports = [];
  const day = Date.UTC(2026, 11, 6);
  for (let i = 0; i < n; i++) {
    let now = day + 3_600_000;
    const site = open({
      storage: new MemoryStorage(), consent: "personalization", now: () => now, flushDelayMs: 60_000,
      onReport: (r) => reports.push(r), onError: (e) => assert.fail(e.message),
    });
    const slot = site.slot("hero", { model, policy: { type: "egreedy", epsilon: 0.5 }, reports: { task: "shop-hero" } });
    for (let t = 0; t < 15; t++) {
      now += 1000;
      const section = random() < 0.5 ? "sports" : "news";
      const d = slot.rank({ context: { page: { section } } });
      slot.reward({ decisionId: d.decisionId, reward: random() < chance(d.variant, section) ? 1 : 0 });
    }
    await site.flush();
    now += 86_400_000;
    await site.flush();
    site.close();
  }
  return reports;
}

test("reports → aggregate → readout shows the winner → model → the next prior is live", { timeout: 300_000 }, async () => {
  const reports = await devices(150, BASE, 5);
  assert.equal(reports.length, 150);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "insitu-flow-"));
  try {
    const spec = path.join(dir, "task.json");
    fs.writeFileSync(spec, JSON.stringify(reports[0].taskFile));
    const base = path.join(dir, "model.json");
    fs.writeFileSync(base, JSON.stringify(BASE));
    const lines = reports.map((r) => r.line).join("\n") + "\n";

    // Without noise: the readout is the plain sums'.
    const exact = cli(["aggregate", "--spec", spec, "--no-noise"], lines);
    const readout = cli(["readout", "--min-reports", "1"], JSON.stringify(exact));
    const total = readout.total;
    assert.equal(total.reports, 150);
    const rates = total.variants.map((v) => v.rewardRate);
    assert.ok(rates.every((r) => r && r.low <= r.estimate && r.estimate <= r.high), JSON.stringify(rates));
    // a and b each win in one context (0.7 and 0.8), c in none: c's interval is below both.
    assert.ok(rates[2].high < Math.min(rates[0].low, rates[1].low), JSON.stringify(rates));
    // Every device's decisions are in the readout (the default bounds, 20, hold 15).
    const decisions = total.variants.reduce((n, v) => n + v.decisions, 0);
    assert.equal(decisions, 150 * 15);

    // The next prior: a model insitu loads, with a new version, that prefers b on sports and a elsewhere.
    const next = cli(["model", "--base", base], JSON.stringify(exact));
    assert.match(next.version, /^m1-[0-9a-f]{16}$/);
    const s = open({ storage: null, consent: "personalization" });
    const old = s.slot("old", { model: BASE });
    const live = s.slot("live", { model: next, policy: { type: "greedy", minProbability: 0 }, reports: { task: "shop-hero" } });
    assert.notEqual(live.modelVersion, old.modelVersion);
    assert.equal(live.modelVersion, next.version);
    assert.equal(live.rank({ context: { page: { section: "sports" } } }).variant, "b");
    assert.equal(live.rank({ context: { page: { section: "news" } } }).variant, "a");
    s.close();

    // At ε = 1 the release is noisy: the readout's intervals are wider and the model is still one insitu loads.
    const noisy = cli(["aggregate", "--spec", spec, "--epsilon", "1", "--seed", "7"], lines);
    assert.equal(noisy.noise.mechanism, "discrete-laplace");
    const privateReadout = cli(["readout", "--min-reports", "1"], JSON.stringify(noisy));
    const se = (r) => r.total.variants.map((v) => v.rewardRate?.se ?? Infinity);
    se(privateReadout).forEach((x, i) => assert.ok(x >= se(readout)[i], `variant ${i}: ${x} < ${se(readout)[i]}`));
    const privateModel = cli(["model", "--base", base], JSON.stringify(noisy));
    const t = open({ storage: null });
    assert.equal(t.slot("hero", { model: privateModel }).modelVersion, privateModel.version);
    t.close();
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test("an A/B test's reports → aggregate → readout: the variant that converts more wins", { timeout: 120_000 }, async () => {
  const random = rng(9);
  const reports = [];
  const day = Date.UTC(2026, 11, 6);
  for (let i = 0; i < 200; i++) {
    let now = day + 3_600_000;
    // A unit of each device's own, so the assignment is as fixed as the conversions' draws (a device
    // seed from fresh entropy made the outcome, and this test, vary from run to run).
    const site = open({
      storage: new MemoryStorage(), consent: "personalization", now: () => now, flushDelayMs: 60_000, unit: `device-${i}`,
      onReport: (r) => reports.push(r), onError: (e) => assert.fail(e.message),
    });
    site.experiments([{ key: "cta", variants: ["buy", "try"], reports: { task: "ab-cta" } }]);
    const a = site.run("cta");
    if (random() < (a.variant === "try" ? 0.6 : 0.3)) site.rewardExperiment("cta", 1);
    await site.flush();
    now += 86_400_000;
    await site.flush();
    site.close();
  }
  assert.equal(reports.length, 200);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "insitu-ab-"));
  try {
    const spec = path.join(dir, "task.json");
    fs.writeFileSync(spec, JSON.stringify(reports[0].taskFile));
    const sums = cli(["aggregate", "--spec", spec, "--no-noise"], reports.map((r) => r.line).join("\n") + "\n");
    const { total } = cli(["readout", "--min-reports", "1"], JSON.stringify(sums));
    assert.equal(total.reports, 200);
    assert.equal(total.variants.reduce((n, v) => n + v.exposures, 0), 200, "one first exposure per unit");
    const [buy, tryIt] = total.variants.map((v) => v.rewardRate);
    assert.ok(tryIt.low > buy.high, JSON.stringify([buy, tryIt]));
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
