// Benchmark of the built wasm API (pkg-node/) against GrowthBook, in one run.
//
//   node benches/node-bench.mjs           print the tables
//   node benches/node-bench.mjs --json    also write .artifacts/bench.json
//   node benches/node-bench.mjs --quick   fewer, shorter batches (a smoke run)
//
// Every figure is ns per call: the median (and p90) over batches of the mean
// time per call within a batch, after warm-up batches that are thrown away.
// Ratios compare two medians of this same run, never a remembered number.
// The second table breaks insitu's own cost down (boundary, JSON, hashing,
// sampling) so a slow headline figure points at its cause.
//
// It measures whatever pkg-node/ holds; build that first (npm run build).

import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = new Set(process.argv.slice(2));
const QUICK = args.has("--quick");
const BATCHES = QUICK ? 6 : 30;
const WARMUP_BATCHES = QUICK ? 2 : 5;
const CALLS = QUICK ? 400 : 2000; // a multiple of REWARD_GROUP

// Targets the project set for a decision; printed next to the results.
const TARGET_DECIDE_NS = 2000;
const TARGET_RATIO_TO_GROWTHBOOK = 0.5;


// ---------------------------------------------------------------- loading

/**
 * pkg-node/ may be mid-rewrite by a rebuild (about a minute), and a build
 * writes the .wasm twice (wasm-bindgen, then wasm-opt): wait until it has
 * been still for a few seconds, so what is measured is a finished build.
 */
async function loadInsitu() {
  const dir = path.join(root, "pkg-node");
  const files = ["insitu.js", "insitu_bg.wasm"].map((f) => path.join(dir, f));
  const STILL_MS = 10_000;
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      if (!files.every((f) => fs.existsSync(f))) throw new Error("pkg-node/ is incomplete");
      const age = Date.now() - Math.max(...files.map((f) => fs.statSync(f).mtimeMs));
      if (age < STILL_MS && Date.now() < deadline) throw new Error("pkg-node/ was just written");
      const mod = require(files[0]);
      const wasm = fs.readFileSync(files[1]);
      const id = crypto.createHash("sha256").update(wasm).digest("hex").slice(0, 12);
      return { Insitu: mod.Insitu, mod, build: { wasmBytes: wasm.length, wasmSha256: id } };
    } catch (err) {
      if (Date.now() > deadline) throw err;
      delete require.cache[files[0]];
      console.error(`waiting for pkg-node/ (${err.message})`);
      await new Promise((r) => setTimeout(r, 3000));
    }
  }
}

import {
  ALLOW, K, FEATURE_KEY, VARIATIONS, context, countFeatures, features, insituConfig, pairedRatio, quantile,
  userAttributes,
} from "./workload.mjs";

const { Insitu, mod: insituModule, build } = await loadInsitu();
const { createOpen } = await import("../src/wasm/store.mjs");
const { GrowthBook, GrowthBookClient } = require("@growthbook/growthbook");

// ---------------------------------------------------------------- inputs

/** The first `n` features of context `i`, in namespace order (n <= 32). */
function contextOf(i, n) {
  const out = {};
  let left = n;
  for (const [ns, feats] of Object.entries(context(i))) {
    for (const [name, v] of Object.entries(feats)) {
      if (left === 0) break;
      const value = Array.isArray(v) ? v.slice(0, left) : v;
      left -= Array.isArray(value) ? value.length : 1;
      (out[ns] ??= {})[name] = value;
    }
  }
  return out;
}

/** 64 features: the 32 of context `i` plus a copy under other names. */
function context64(i) {
  const base = context(i);
  const out = {};
  for (const [ns, feats] of Object.entries(base)) {
    out[ns] = { ...feats };
    for (const [name, v] of Object.entries(feats)) out[ns][`${name}2`] = v;
  }
  return out;
}

// Rotating sets, built once: a real page builds its context once per view.
const ROTATION = 64;
const rankOptions = (make) => Array.from({ length: ROTATION }, (_, i) => ({ context: make(i) }));
const OPTS32 = rankOptions(context);
for (const o of OPTS32) {
  if (countFeatures(o.context) !== 32) throw new Error("expected 32 active features");
}


// New users for GrowthBook (four GrowthBook runs draw from them).
const TOTAL_CALLS = (BATCHES + WARMUP_BATCHES) * CALLS;
const newUserAttributes = userAttributes(TOTAL_CALLS * 4);

// ---------------------------------------------------------------- harness

const now = () => process.hrtime.bigint();
// Let pending promise jobs (GrowthBook's tracking calls) and timers run between batches.
const yieldToLoop = () => new Promise((r) => setImmediate(r));

/**
 * Time `calls` runs of `body(i)` per batch. `body` may return a number of ns
 * it measured itself (for calls that need untimed preparation); otherwise the
 * whole batch is timed.
 */
async function measure(name, body, { batches = BATCHES, calls = CALLS, timed = false } = {}) {
  const perCall = [];
  for (let b = 0; b < WARMUP_BATCHES + batches; b++) {
    let ns;
    if (timed) {
      let total = 0;
      for (let i = 0; i < calls; i++) total += body(b * calls + i);
      ns = total;
    } else {
      const t0 = now();
      for (let i = 0; i < calls; i++) body(b * calls + i);
      ns = Number(now() - t0);
    }
    if (b >= WARMUP_BATCHES) perCall.push(ns / calls);
    await yieldToLoop();
  }
  perCall.sort((a, b) => a - b);
  return { name, median: quantile(perCall, 0.5), p90: quantile(perCall, 0.9), batches, calls };
}


// ---------------------------------------------------------------- insitu

function rankBench(slot, opts) {
  let sink = 0;
  return (i) => {
    const d = slot.rank(opts[i % opts.length]);
    sink ^= d.index; // use the result so the call cannot be dropped
    return sink;
  };
}

/**
 * `reward` settles a fresh decision per call. Decisions are ranked in
 * untimed groups of 8, then rewarded newest first (a click on what was just
 * shown); the 8 rewards share one pair of clock reads, so the timer's own
 * cost is small next to theirs.
 */
const REWARD_GROUP = 8;
function rewardBench(slot) {
  const ids = new Array(REWARD_GROUP);
  let call = 0;
  return () => {
    // The first call of each group does the group's work and returns its time.
    if (call++ % REWARD_GROUP !== 0) return 0;
    for (let g = 0; g < REWARD_GROUP; g++) ids[g] = slot.rank(OPTS32[(call + g) % ROTATION]).decisionId;
    const t0 = now();
    for (let g = REWARD_GROUP - 1; g >= 0; g--) {
      slot.reward({ decisionId: ids[g], reward: (call + g) % 3 === 0 ? 1 : 0 });
    }
    return Number(now() - t0);
  };
}

// ---------------------------------------------------------------- GrowthBook

let tracked = 0;
// Every real deployment has a tracking callback (exposures are how GrowthBook
// learns anything), and it runs on each new user: keep it, doing nothing.
const trackingCallback = () => {
  tracked++;
};

// The browser SDK holds one user per instance. A page view is one user, so
// the per-call path for "a new user" on a long-lived instance is
// setAttributes + evaluation; constructing an instance per call would also
// charge GrowthBook's constructor, which insitu's rank does not pay (one
// Insitu serves every call). setAttributes is async only for sticky
// bucketing and remote evaluation, both off here: its work runs before it
// returns, so the promise is not awaited.
function growthbookFeatureBench() {
  const gb = new GrowthBook({ trackingCallback });
  gb.initSync({ payload: { features } });
  let sink = 0;
  return (i) => {
    gb.setAttributes(newUserAttributes(i));
    sink ^= gb.getFeatureValue(FEATURE_KEY, "control").length;
    return sink;
  };
}

function growthbookRunBench() {
  const gb = new GrowthBook({ trackingCallback });
  let sink = 0;
  return (i) => {
    gb.setAttributes(newUserAttributes(i));
    sink ^= gb.run({ key: "hero-inline", variations: VARIATIONS }).variationId;
    return sink;
  };
}

// The multi-user path of GrowthBook 1.x (GrowthBookClient, one per process,
// a user context per evaluation): no per-user instance state at all.
function growthbookClientBench() {
  const client = new GrowthBookClient({ trackingCallback });
  client.initSync({ payload: { features } });
  let sink = 0;
  return (i) => {
    sink ^= client.getFeatureValue(FEATURE_KEY, "control", { attributes: newUserAttributes(i) }).length;
    return sink;
  };
}

// ---------------------------------------------------------------- A/B assignment

// One experiment, configured identically for both: three variants, unequal
// weights, 80% coverage, a namespace range, GrowthBook hash version 2. Each
// call is a new visitor (a site-supplied id), both with a tracking callback.
const AB = {
  key: "hero-ab", variations: ["control", "bold", "minimal"], weights: [0.5, 0.25, 0.25], coverage: 0.8,
  hashVersion: 2, namespace: ["homepage", 0, 0.6],
};
const AB_INSITU = {
  key: AB.key, variants: AB.variations, weights: AB.weights, coverage: AB.coverage, hash: "growthbook/2",
  namespace: { name: AB.namespace[0], range: AB.namespace.slice(1) },
};
let abExposed = 0;

function insituRunBench() {
  const site = createOpen(insituModule)({ storage: null, onExposure: () => abExposed++ });
  site.experiments([AB_INSITU]);
  let sink = 0;
  return (i) => {
    site.setUnit(newUserAttributes(i).id);
    sink ^= site.run(AB.key).index;
    return sink;
  };
}

function growthbookAbBench() {
  const gb = new GrowthBook({ trackingCallback });
  let sink = 0;
  return (i) => {
    gb.setAttributes(newUserAttributes(i));
    sink ^= gb.run(AB).variationId;
    return sink;
  };
}

/** Both must assign every one of `n` users identically, or the rows compare different work. */
function checkSameAssignments(n) {
  const site = createOpen(insituModule)({ storage: null });
  site.experiments([AB_INSITU]);
  let inExperiment = 0;
  for (let i = 0; i < n; i++) {
    const id = `check-${i}`;
    site.setUnit(id);
    const r = site.run(AB.key);
    const gb = new GrowthBook({ attributes: { id } });
    const g = gb.run(AB);
    gb.destroy();
    if (r.index !== g.variationId || r.inExperiment !== g.inExperiment) {
      throw new Error(`A/B rows disagree for ${id}: insitu ${r.variant}, GrowthBook ${g.value}`);
    }
    inExperiment += r.inExperiment;
  }
  site.close();
  return inExperiment;
}

// ---------------------------------------------------------------- run

const loadavg = os.loadavg()[0];
console.log(`insitu node benchmark — node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"} ×${os.cpus().length}`);
console.log(`pkg-node: insitu_bg.wasm ${build.wasmBytes} bytes, sha256 ${build.wasmSha256}`);
console.log(`${BATCHES} batches × ${CALLS} calls after ${WARMUP_BATCHES} warm-up batches; load average ${loadavg.toFixed(2)}`);
if (loadavg > os.cpus().length / 2) console.log("warning: the machine is busy; figures will be noisy");

const main = {};
const defaults = new Insitu(insituConfig());
const headline = `K=5, 32 features, ${defaults.policy}, d=64`;
main.rank = await measure(`insitu rank (${headline})`, rankBench(defaults, OPTS32));
main.reward = await measure(`insitu reward (${headline})`, rewardBench(new Insitu(insituConfig())), { timed: true });
/** A GrowthBook row counts only if its experiment really ran (and tracked) on every call. */
async function measureGrowthBook(name, body) {
  const before = tracked;
  const row = await measure(name, body);
  const expected = (WARMUP_BATCHES + BATCHES) * CALLS;
  if (tracked - before !== expected) {
    throw new Error(`${name}: ${tracked - before} exposures tracked, expected ${expected}`);
  }
  return row;
}
main.gbFeature = await measureGrowthBook("GrowthBook setAttributes + getFeatureValue", growthbookFeatureBench());
const trackedBeforePaired = tracked;
const paired = await pairedRatio(rankBench(defaults, OPTS32), growthbookFeatureBench(), {
  batches: BATCHES, warmup: WARMUP_BATCHES, calls: CALLS, now, pause: yieldToLoop,
});
if (tracked - trackedBeforePaired !== (WARMUP_BATCHES + BATCHES) * CALLS) {
  throw new Error("paired GrowthBook batches did not track every exposure");
}
main.gbRun = await measureGrowthBook("GrowthBook setAttributes + run", growthbookRunBench());
main.gbClient = await measureGrowthBook("GrowthBookClient getFeatureValue(userContext)", growthbookClientBench());
const abAgree = checkSameAssignments(2000);
console.log(`A/B: insitu and GrowthBook assign 2000 of 2000 users identically (${abAgree} in the experiment)`);
main.abRun = await measure("insitu setUnit + run (A/B, growthbook/2)", insituRunBench());
main.gbAbRun = await measure("GrowthBook setAttributes + run (same experiment)", growthbookAbBench());
const abPaired = await pairedRatio(insituRunBench(), growthbookAbBench(), {
  batches: BATCHES, warmup: WARMUP_BATCHES, calls: CALLS, now, pause: yieldToLoop,
});

// Where insitu's time goes: each row changes one thing from the headline call.
const slot = new Insitu(insituConfig());
const greedy = new Insitu(insituConfig({ type: "greedy" }));
const sub = { batches: QUICK ? 4 : 15 };
const parts = {};
// `actions` of all nulls adds no features but is outside the fast path
// (src/wasm/fast.js), so the options are packed whole (fast.js `pack`) and
// read by the core's general reader (src/json.rs, Json::unpack).
const viaJson = (opts) => opts.map((o) => ({ ...o, actions: new Array(K).fill(null) }));
parts.getter = await measure("slot.policy getter (one wasm call, one string back)", (i) => slot.policy.length ^ i, sub);
parts.rankUndefined = await measure("rank(undefined): constant feature only", (i) => slot.rank(undefined).index ^ i, sub);
parts.rankUndefinedGreedy = await measure("rank(undefined), greedy", (i) => greedy.rank(undefined).index ^ i, sub);
for (const n of [8, 16]) {
  const opts = rankOptions((i) => contextOf(i, n));
  parts[`rank${n}`] = await measure(`rank, ${n} features`, rankBench(slot, opts), sub);
}
parts.rank32 = await measure("rank, 32 features", rankBench(slot, OPTS32), sub);
const opts64 = rankOptions(context64);
parts.rank64 = await measure("rank, 64 features", rankBench(slot, opts64), sub);
parts.rank32Json = await measure("rank, 32 features, JSON path (pack + unpack)", rankBench(slot, viaJson(OPTS32)), sub);
parts.rank32Greedy = await measure("rank, 32 features, greedy (no score variances)", rankBench(greedy, OPTS32), sub);
parts.rank32Thompson = await measure(
  "rank, 32 features, thompson (32 draws of 5 normals)",
  rankBench(new Insitu(insituConfig({ type: "thompson" })), OPTS32),
  sub,
);
parts.rank32Samples1 = await measure(
  "rank, 32 features, thompson samples=1",
  rankBench(new Insitu(insituConfig({ type: "thompson", samples: 1 })), OPTS32),
  sub,
);
parts.rank32Bits5 = await measure("rank, 32 features, d=32", rankBench(new Insitu(insituConfig(undefined, 5)), OPTS32), sub);
parts.rank32Now = await measure(
  "rank, 32 features, now injected (no Date.now call)",
  rankBench(slot, OPTS32.map((o) => ({ ...o, now: 1.7e12 }))),
  sub,
);
let jsonSink = 0;
parts.stringify32 = await measure("JSON.stringify of the 32-feature options (JS only)", (i) => {
  jsonSink ^= JSON.stringify(OPTS32[i % ROTATION]).length;
}, sub);
parts.construct = await measure("new Insitu(options) + free()", (i) => {
  const s = new Insitu(insituConfig());
  jsonSink ^= i;
  s.free();
}, { ...sub, calls: Math.min(CALLS, 500) });
for (const bits of [4, 7]) {
  parts[`reward${bits}`] = await measure(`reward, d=${1 << bits}`, rewardBench(new Insitu(insituConfig(undefined, bits))), {
    ...sub,
    timed: true,
  });
}

// ---------------------------------------------------------------- report

const fmt = (ns) => (ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${Math.round(ns)} ns`);
const ratio = (a, b) => a.median / b.median;
const pad = (s, n) => String(s).padEnd(n);
const padL = (s, n) => String(s).padStart(n);

function table(title, rows) {
  console.log(`\n${title}`);
  console.log(`${pad("", 56)} ${padL("median", 10)} ${padL("p90", 10)}`);
  for (const r of rows) console.log(`${pad(r.name, 56)} ${padL(fmt(r.median), 10)} ${padL(fmt(r.p90), 10)}`);
}

table("Per call (ns; median and p90 of the batch means):", Object.values(main));

const checks = [
  ["insitu rank", fmt(main.rank.median), `≤ ${fmt(TARGET_DECIDE_NS)}`, main.rank.median <= TARGET_DECIDE_NS],
  ["rank / GrowthBook getFeatureValue, paired", `${paired.median.toFixed(2)}×`, `≤ ${TARGET_RATIO_TO_GROWTHBOOK}×`,
    paired.median <= TARGET_RATIO_TO_GROWTHBOOK],
  ["  (p10–p90 of the paired batch ratios)", `${paired.p10.toFixed(2)}–${paired.p90.toFixed(2)}×`, "", null],
  ["rank / GrowthBook getFeatureValue, rows", `${ratio(main.rank, main.gbFeature).toFixed(2)}×`, "", null],
  ["rank / GrowthBook run", `${ratio(main.rank, main.gbRun).toFixed(2)}×`, "", null],
  ["rank / GrowthBookClient getFeatureValue", `${ratio(main.rank, main.gbClient).toFixed(2)}×`, "", null],
  ["reward / GrowthBook getFeatureValue", `${ratio(main.reward, main.gbFeature).toFixed(2)}×`, "", null],
  ["A/B run / GrowthBook run, paired", `${abPaired.median.toFixed(2)}×`, "< 1×", abPaired.median < 1],
  ["  (p10–p90 of the paired batch ratios)", `${abPaired.p10.toFixed(2)}–${abPaired.p90.toFixed(2)}×`, "", null],
];
console.log("\nAgainst the targets:");
for (const [what, value, target, ok] of checks) {
  const verdict = ok === null ? "" : ok ? "meets" : "MISSES";
  console.log(`${pad(what, 46)} ${padL(value, 10)}   ${pad(target, 10)} ${verdict}`);
}

table("Where insitu's time goes (ns per call):", Object.values(parts));
const perFeature = (parts.rank64.median - parts.rank32.median) / 32;
const draws = parts.rank32Thompson.median - parts.rank32Samples1.median;
console.log(`\nDerived: ${fmt(perFeature)} per extra feature (64 vs 32 features);`,
  `the fast path saves ${fmt(parts.rank32Json.median - parts.rank32.median)} over JSON;`,
  `${K} score variances cost ${fmt(parts.rank32.median - parts.rank32Greedy.median)};`,
  `Thompson's 31 more draws of ${K} normals ≈ ${fmt(draws)} (${fmt(draws / (31 * K))} per normal).`);
if (jsonSink === 0.5) console.log(); // keeps the JS-only loops observable

if (args.has("--json")) {
  const out = path.join(root, ".artifacts", "bench.json");
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const report = {
    node: process.version,
    cpu: os.cpus()[0]?.model,
    loadavg,
    build,
    batches: BATCHES,
    calls: CALLS,
    unit: "ns per call",
    targets: { decideNs: TARGET_DECIDE_NS, ratioToGrowthBookGetFeatureValue: TARGET_RATIO_TO_GROWTHBOOK },
    main,
    ratios: {
      rankToGrowthBookGetFeatureValuePaired: paired,
      rankToGrowthBookGetFeatureValue: ratio(main.rank, main.gbFeature),
      rankToGrowthBookRun: ratio(main.rank, main.gbRun),
      rankToGrowthBookClient: ratio(main.rank, main.gbClient),
      abRunToGrowthBookRunPaired: abPaired,
    },
    breakdown: parts,
  };
  fs.writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(root, out)}`);
}
