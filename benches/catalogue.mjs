// `npm run bench:catalogue`: what a catalogue costs (issue #24, part 4).
//
// A catalogue (`catalogue: true`) is one learner shared by every variant
// through the variants' own features, so a slot can hold up to 4,096
// products. Measured here for catalogues of 100 and 1,000 products, against
// the baseline measured in the same run: a slot of 64 products with the same
// features and a learner per variant (no `catalogue`; 64 is its limit).
//
// 1. Learning and state: the same stream of 2,000 rewarded decisions on each
//    slot (`rank({ context })`, then `reward`), then the stored snapshot's
//    bytes as `flush()` reports them (also every 500 decisions, through the
//    site's own write path into an in-memory localStorage). A catalogue
//    stores the weights its stream touched, which the feature space bounds
//    (2^(6+6) here), not the number of products.
// 2. Rank time on the learned slots: `rank({ context, k: 1 })` and
//    `rank({ context, k: 10 })` (a slate of 10 distinct products), each call
//    timed on its own; median and p90 in µs over 3,000 calls each, after a
//    warm-up, in rounds that interleave the slots and both k so the
//    machine's drift hits all of them; and each catalogue's median over the
//    64-product slot's. The timed calls reward nothing: each slot keeps
//    `maxPending` (256) decisions waiting and from then on evicts the
//    oldest, the steady state of a visitor who does not click.
// 3. Slot creation: `site.slot(name, options)` on a fresh site (median of 7,
//    the slots interleaved; opening the site and building the options are
//    not timed).
//
// Products: a category (6), a brand (24) and a price (in hundreds, so one
// number does not outweigh the categoricals once the vector is normalized).
// Contexts: `{ page: { section, device } }`, the section one of the
// categories; a product of the page's category pays with probability 0.5,
// another 0.05. Deterministic streams: a seeded generator for contexts and
// rewards, fixed slot seeds and an injected clock (30 s per learning step,
// 1 s per timed call). Full engine (`await init()` then `open()`), default
// settings otherwise (LinUCB, 64 context slots, `catalogue.bits` 6).
//
//   node benches/catalogue.mjs [--json]   (--json: .artifacts/catalogue-bench.json)

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { quantile } from "./pageview.mjs";
import { describeBuild, loadPkg, MemoryStorage, root } from "./pkg.mjs";

for (const a of process.argv.slice(2)) {
  if (a !== "--json") {
    console.error(`unknown option ${a}; use --json`);
    process.exit(2);
  }
}

const { insitu, WASM_FULL, build } = await loadPkg();
await insitu.default(WASM_FULL);

const T0 = 1_700_000_000_000;
const CATS = ["shoes", "bags", "hats", "coats", "belts", "watches"];
const DEVICES = ["mobile", "desktop", "tablet"];
const BRANDS = 24;
const STEPS = 2_000; // rewarded decisions of the learning stream
const LATE = 500; // its last decisions, whose mean reward is printed
const KS = [1, 10];
const WARMUP = 300; // calls per slot and k, not recorded
const ROUNDS = 6;
const CALLS = 500; // timed calls per slot, k and round
const CREATIONS = 7;
const CASES = [
  { key: "perVariant64", name: "64, a learner per variant", n: 64, catalogue: false },
  { key: "catalogue100", name: "100, catalogue", n: 100, catalogue: true },
  { key: "catalogue1000", name: "1,000, catalogue", n: 1000, catalogue: true },
];

/** Seeded generator (mulberry32), so every run sees the same streams. */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = (r, xs) => xs[Math.floor(r() * xs.length)];

/** `n` products; product `i` is the same in every slot. */
const products = (n) =>
  Array.from({ length: n }, (_, i) => ({
    id: `p${i}`,
    features: { item: { cat: CATS[i % CATS.length], brand: `b${(i * 7) % BRANDS}`, price: ((i * 37) % 100) / 100 + 0.05 } },
  }));
const options = (c) => ({
  variants: products(c.n),
  features: { allow: ["item", "page"] },
  seed: 11,
  ...(c.catalogue ? { catalogue: true } : {}),
});
const contexts = (seed, n) => {
  const r = rng(seed);
  return Array.from({ length: n }, () => ({ page: { section: pick(r, CATS), device: pick(r, DEVICES) } }));
};

const errors = [];
/** A site on fresh storage with an injected clock; `step(ms)` moves it on. */
function newSite() {
  const storage = new MemoryStorage();
  let t = T0;
  const site = insitu.open({
    storage, consent: "personalization", now: () => t, flushDelayMs: 60_000, onError: (e) => errors.push(e.code),
  });
  let written = null;
  const flush = async () => {
    const r = await site.flush();
    if (r.written) written = r.bytes;
    else if (r.reason !== undefined) throw new Error(`flush wrote nothing: ${r.reason}${r.error ? ` (${r.error.message})` : ""}`);
  };
  return { site, storage, step: (ms) => (t += ms), flush, bytes: () => written };
}

// ---------------------------------------------------------------- 1. learning and state

const learnContexts = contexts(1, STEPS);
const slots = {};
for (const c of CASES) {
  const s = newSite();
  const slot = s.site.slot("row", options(c));
  const r = rng(2);
  let paid = 0;
  for (let i = 0; i < STEPS; i++) {
    s.step(30_000);
    const context = learnContexts[i];
    const d = slot.rank({ context });
    if (d.fallback) throw new Error(`${c.name}: a fallback (${d.error?.code}: ${d.error?.message})`);
    const pays = CATS[d.index % CATS.length] === context.page.section;
    const reward = r() < (pays ? 0.5 : 0.05) ? 1 : 0;
    slot.reward({ decisionId: d.decisionId, reward });
    if (i >= STEPS - LATE) paid += reward;
    if (i % 500 === 499) await s.flush();
  }
  await s.flush();
  const stats = slot.stats();
  c.state = {
    bytes: s.bytes(),
    chars: s.storage.getItem(s.site.key)?.length ?? 0,
    updates: stats.variants.reduce((n, v) => n + v.updates, 0),
    pending: stats.pending,
    lateReward: paid / LATE,
  };
  slots[c.key] = { s, slot };
}

// ---------------------------------------------------------------- 2. rank time

const timedContexts = contexts(3, 512);
let sink = 0;
/** `calls` calls of `rank({ context, k })`, each timed; µs. */
function timeRank({ s, slot }, k, calls, from) {
  const out = new Array(calls);
  for (let i = 0; i < calls; i++) {
    s.step(1000);
    const context = timedContexts[(from + i) % timedContexts.length];
    const t0 = performance.now();
    const d = slot.rank({ context, k });
    out[i] = (performance.now() - t0) * 1000;
    sink += d.index;
  }
  return out;
}

const rows = CASES.flatMap((c) => KS.map((k) => ({ c, k, samples: [] })));
for (const row of rows) timeRank(slots[row.c.key], row.k, WARMUP, 0);
for (let round = 0; round < ROUNDS; round++) {
  // Rotate the order each round, so no slot always runs first.
  for (let j = 0; j < rows.length; j++) {
    const row = rows[(j + round) % rows.length];
    row.samples.push(...timeRank(slots[row.c.key], row.k, CALLS, round * CALLS));
  }
}
for (const c of CASES) {
  const { s, slot } = slots[c.key];
  const d = slot.rank({ context: timedContexts[0], k: 10 });
  if (d.fallback || d.slate.length !== 10 || new Set(d.slate.map((x) => x.index)).size !== 10) {
    throw new Error(`${c.name}: not a slate of 10 distinct products`);
  }
  c.pendingAfterTiming = slot.stats().pending;
  s.site.close();
}
const summary = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), calls: xs.length };
};
const rank = {};
for (const row of rows) (rank[row.c.key] ??= {})[`k${row.k}`] = summary(row.samples);
for (const c of CASES) {
  for (const k of KS) rank[c.key][`k${k}`].ratio = rank[c.key][`k${k}`].median / rank.perVariant64[`k${k}`].median;
}

// ---------------------------------------------------------------- 3. slot creation

const creation = Object.fromEntries(CASES.map((c) => [c.key, []]));
for (let j = 0; j < CREATIONS; j++) {
  for (const c of CASES) {
    const s = newSite();
    const o = options(c);
    const t0 = performance.now();
    const slot = s.site.slot("row", o);
    creation[c.key].push(performance.now() - t0);
    if (slot.variants.length !== c.n) throw new Error(`${c.name}: ${slot.variants.length} variants`);
    s.site.close();
  }
}
const created = Object.fromEntries(
  Object.entries(creation).map(([key, ms]) => {
    const sorted = [...ms].sort((a, b) => a - b);
    return [key, { median: quantile(sorted, 0.5), min: sorted[0], max: sorted.at(-1), samples: ms }];
  }),
);

// ---------------------------------------------------------------- report

const cpus = os.cpus();
const loadavg = os.loadavg()[0];
const pad = (s, n) => String(s).padEnd(n);
const padL = (s, n) => String(s).padStart(n);
const us = (x) => (x < 100 ? x.toFixed(1) : x.toFixed(0));
const x2 = (r) => `${r.toFixed(2)}×`;
console.log(`catalogue benchmark — node ${process.version}, ${cpus[0]?.model ?? "unknown CPU"} ×${cpus.length}, load average ${loadavg.toFixed(2)}`);
console.log(describeBuild(build));
if (loadavg > cpus.length / 2) console.log("warning: the machine is busy; figures will be noisy");
console.log("products: category (6), brand (24), price; contexts { page: { section, device } }; LinUCB, features.bits 6, catalogue.bits 6\n");

const w = Math.max(...CASES.map((c) => c.name.length));
console.log(`rank on the learned slots, µs per call (${ROUNDS} interleaved rounds × ${CALLS} calls after ${WARMUP} warm-up; unrewarded, pending at maxPending):`);
console.log(`  ${pad("products", w)} ${padL("k=1 median", 11)} ${padL("p90", 8)} ${padL("÷ 64", 7)}   ${padL("k=10 median", 11)} ${padL("p90", 8)} ${padL("÷ 64", 7)}`);
for (const c of CASES) {
  const [a, b] = KS.map((k) => rank[c.key][`k${k}`]);
  console.log(`  ${pad(c.name, w)} ${padL(us(a.median), 11)} ${padL(us(a.p90), 8)} ${padL(x2(a.ratio), 7)}   ${padL(us(b.median), 11)} ${padL(us(b.p90), 8)} ${padL(x2(b.ratio), 7)}`);
}

console.log(`\nstate after the same ${STEPS.toLocaleString("en")} rewarded decisions (k=1), and slot creation (median of ${CREATIONS}):`);
console.log(`  ${pad("products", w)} ${padL("snapshot B", 11)} ${padL("stored chars", 13)} ${padL("updates", 8)} ${padL(`reward, last ${LATE}`, 17)} ${padL("site.slot() ms", 15)}`);
for (const c of CASES) {
  const st = c.state;
  console.log(`  ${pad(c.name, w)} ${padL(st.bytes, 11)} ${padL(st.chars, 13)} ${padL(st.updates, 8)} ${padL(st.lateReward.toFixed(3), 17)} ${padL(created[c.key].median.toFixed(2), 15)}`);
}
const [b64, b100, b1000] = CASES.map((c) => c.state.bytes);
console.log(`\ncatalogue of 1,000 / catalogue of 100, stored bytes: ${(b1000 / b100).toFixed(2)}× (per-variant slot of 64: ${b64} B)`);
console.log("(uniform serving pays 1/6 × 0.5 + 5/6 × 0.05 = 0.125 a decision; the best, 0.5)");
if (errors.length > 0) console.log(`the sites reported ${errors.length} errors: ${[...new Set(errors)].join(", ")}`);
if (sink === -1) console.log(); // keeps the decisions observable

if (process.argv.includes("--json")) {
  const out = path.join(root, ".artifacts", "catalogue-bench.json");
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const report = {
    machine: { node: process.version, cpu: cpus[0]?.model, cores: cpus.length, loadavg },
    package: build,
    settings: { steps: STEPS, ks: KS, warmup: WARMUP, rounds: ROUNDS, calls: CALLS, creations: CREATIONS, brands: BRANDS, categories: CATS.length },
    units: { rank: "µs per call", creation: "ms" },
    results: Object.fromEntries(
      CASES.map((c) => [c.key, { name: c.name, variants: c.n, catalogue: c.catalogue, rank: rank[c.key], state: c.state, pendingAfterTiming: c.pendingAfterTiming, creation: created[c.key] }]),
    ),
    errors,
  };
  fs.writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(root, out)}`);
}
