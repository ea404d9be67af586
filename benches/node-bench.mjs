// `npm run bench`: the built package (pkg/) against GrowthBook 1.8 in Node,
// on the work of a page view, in one run (issue #20).
//
//   node benches/node-bench.mjs           print the figures
//   node benches/node-bench.mjs --quick   a smoke run (seconds); its figures are rough
//   node benches/node-bench.mjs --json    also write .artifacts/bench.json
//
// What is compared (benches/pageview.mjs holds the workload):
//
// 1. A page view, after load. insitu: `site.context(page)` once, `rank` of
//    three slots on it (hero K=5 LinUCB on page+visitor+behavior, shelf K=4
//    ε-greedy on page+visitor, banner K=3 LinUCB on visitor), one
//    `site.run` of a fixed-weight experiment targeted on country.
//    GrowthBook: `setAttributes(page)` (its counterpart of encoding the
//    context), three `getFeatureValue` of features with a targeted force
//    rule then an experiment or a percentage rollout, one `run` of an inline
//    experiment (the same one: both use GrowthBook's hash v2 and assign the
//    same variant, which is checked). Both are set up once before timing:
//    the site loaded and `site.ready` (the full engine), the GrowthBook
//    instance created with its payload. Pages rotate through 64 made up
//    front; the visitor is the same throughout, so after the first page
//    view neither side reports an exposure again (both dedupe them).
// 2. The second slot: `rank` of one slot on a context `site.context()`
//    already encoded (what a second or third slot adds to a page view)
//    against one `getFeatureValue` (on a GrowthBook instance whose page
//    attributes are set).
// 3. A breakdown, for when the headline is slow: the context alone, each
//    slot on an encoded context, a plain-object context, no context, the
//    first-decision module before the full engine arrives, `run` on each
//    side, GrowthBook's parts, a reward.
//
// Pending decisions: the timed page views reward nothing. A page view makes
// three decisions, and each slot keeps at most `maxPending` (256) waiting
// for a reward: the warm-up fills that, and from then on every `rank`
// evicts the oldest, the steady state of a visitor who does not click (the
// counts are printed). Rewards are timed on their own row. Storage is an
// in-memory localStorage with consent `personalization`; the write it
// schedules (`flushDelayMs`, default 1 s) runs between batches, untimed, as
// it runs outside the page's decisions. The site has 24 tracked events
// behind it (about 35 behaviour features, which hero reads and `run`'s
// targeting may); the namespace is derived at most once a minute, so that
// derivation is spread over the batches.
//
// Figures are ns per call (per page view for the headline): the median and
// p90 over batches of the mean time per call in the batch, after warm-up
// batches that are thrown away. The two sides of a comparison run as pairs
// of batches, alternately insitu first and GrowthBook first, so the
// machine's drift hits both; the ratio is the median of the per-pair ratios.
// GrowthBook is its production bundle (dist/bundles/esm.min.js, what a
// bundler's production build or a CDN serves): its ESM/CJS builds read
// `process.env.NODE_ENV` on every evaluation in Node, which a browser build
// does not.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  EXPERIMENT, FEATURES, GROWTHBOOK_EXPERIMENT, GROWTHBOOK_FEATURES, ROTATION, SLOTS, VISITOR, pages, quantile,
} from "./pageview.mjs";
import { describeBuild, loadPkg, MemoryStorage, root } from "./pkg.mjs";

const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (!["--quick", "--json"].includes(a)) {
    console.error(`unknown option ${a}; use --quick and/or --json`);
    process.exit(2);
  }
}
const QUICK = args.has("--quick");

/**
 * Batches and calls: the headline pairs (page views), the second-slot
 * pairs, the breakdown rows, and the first-decision module's rows, which
 * stay under the 65,536 calls a slot logs for the handover to the full
 * engine (past that it stops logging, and would be measuring less work).
 */
const SIZE = QUICK
  ? {
    pairs: { batches: 8, warmup: 4, calls: 150 },
    slot: { batches: 8, warmup: 4, calls: 500 },
    row: { batches: 4, warmup: 2, calls: 300 },
    first: { batches: 4, warmup: 2, calls: 300 },
  }
  : {
    pairs: { batches: 60, warmup: 8, calls: 400 },
    slot: { batches: 40, warmup: 8, calls: 2000 },
    row: { batches: 20, warmup: 4, calls: 2000 },
    first: { batches: 16, warmup: 4, calls: 1000 },
  };

/** The bars of issue #20. */
const BAR_PAGE_VIEW = 1.0;
const BAR_SECOND_SLOT = 1.0;

// ---------------------------------------------------------------- loading

const { insitu, WASM, WASM_FULL, build } = await loadPkg();

const GB_DIR = path.join(root, "node_modules", "@growthbook", "growthbook");
const GB_BUNDLE = path.join(GB_DIR, "dist", "bundles", "esm.min.js");
if (!fs.existsSync(GB_BUNDLE)) {
  console.error(`GrowthBook is not installed (${path.relative(root, GB_BUNDLE)}): run npm ci`);
  process.exit(1);
}
const gbVersion = JSON.parse(fs.readFileSync(path.join(GB_DIR, "package.json"), "utf8")).version;
// The bundle is an ES module in a package without "type": "module"; a data: URL imports it as one.
const { GrowthBook } = await import(`data:text/javascript;base64,${fs.readFileSync(GB_BUNDLE).toString("base64")}`);

// ---------------------------------------------------------------- set-up

const PAGES = pages();
let exposures = 0;
const storageErrors = [];

/** A site as a page has it, with the bench's three slots and experiment; `wasmFull` may be a promise to hold the full engine back. */
async function openSite(key, wasmFull) {
  const site = await insitu.load({
    key,
    wasm: WASM,
    wasmFull,
    storage: new MemoryStorage(),
    consent: "personalization",
    unit: VISITOR,
    onExposure: () => exposures++,
    onError: (e) => storageErrors.push(e),
    onFallback: () => {},
  });
  if (site.fallback !== null) {
    console.error(`load() resolved to the fallback site: ${site.fallback.code}: ${site.fallback.message}`);
    process.exit(1);
  }
  const slots = Object.fromEntries(Object.entries(SLOTS).map(([name, o]) => [name, site.slot(name, o)]));
  site.experiments([EXPERIMENT]);
  // Some history, so the behaviour namespace is not empty.
  for (let i = 0; i < 24; i++) site.track({ type: i % 5 === 0 ? "click" : "view", category: PAGES[i].p.section, tags: PAGES[i].p.tags });
  return { site, slots };
}

// The first-decision module: a site whose full engine is held back until its rows are measured.
let release;
const gate = new Promise((r) => {
  release = r;
});
const early = await openSite("bench-first", gate);
const { site, slots } = await openSite("bench", WASM_FULL);
await site.ready;
const { hero, shelf, banner } = slots;
if (hero.explain({ context: PAGES[0].context }) === null) throw new Error("site.ready resolved, but the full engine is not running");
// For one breakdown row; a fourth slot on the site (its pending decisions are stored too).
const heroThompson = site.slot("hero-thompson", { ...SLOTS.hero, policy: { type: "thompson" } });

let tracked = 0;
const trackingCallback = () => {
  tracked++;
};
const newGrowthBook = (attributes) => {
  const gb = new GrowthBook({ attributes, trackingCallback });
  gb.initSync({ payload: { features: GROWTHBOOK_FEATURES } });
  return gb;
};
const gb = newGrowthBook(PAGES[0].attributes);
/** One instance per page, its attributes set: the counterpart of an encoded context. */
const gbPages = PAGES.map((pv) => newGrowthBook(pv.attributes));

// Contexts encoded once, as a page does for its first slot (hero reads both namespaces).
const encoded = PAGES.map((pv) => site.context(pv.context));
const encodedEarly = PAGES.map((pv) => early.site.context(pv.context));
for (let i = 0; i < ROTATION; i++) {
  for (const [s, ctx] of [[hero, encoded[i]], [early.slots.hero, encodedEarly[i]]]) {
    const d = s.rank({ context: ctx });
    if (d.fallback) throw new Error(`hero.rank served its fallback: ${d.error?.code}: ${d.error?.message}`);
  }
}

// Check that both sides do the work they claim before timing it.
let inTest = 0;
for (const pv of PAGES) {
  for (const [name, s] of Object.entries(slots)) {
    const d = s.rank({ context: site.context(pv.context) });
    if (d.fallback) throw new Error(`${name}.rank served its fallback: ${d.error?.code}: ${d.error?.message}`);
  }
  const a = site.run(EXPERIMENT.key, pv.run);
  gb.setAttributes(pv.attributes);
  const r = gb.run(GROWTHBOOK_EXPERIMENT);
  if (a.index !== r.variationId || a.inExperiment !== r.inExperiment) {
    throw new Error(`the experiments disagree on page ${JSON.stringify(pv.p)}: insitu ${a.variant} (${a.reason}), GrowthBook ${r.value}`);
  }
  inTest += a.inExperiment;
  for (const [slot, key] of Object.entries(FEATURES)) {
    const v = gb.getFeatureValue(key, "unset");
    if (!SLOTS[slot].variants.includes(v)) throw new Error(`GrowthBook feature ${key} gave ${v}`);
  }
}
const gbValues = Object.fromEntries(
  Object.entries(FEATURES).map(([slot, key]) => [key, new Set(gbPages.map((g) => g.getFeatureValue(key, "unset"))).size]),
);

// ---------------------------------------------------------------- harness

const hr = () => process.hrtime.bigint();
// Between batches: let timers (the site's scheduled write) and promise jobs run.
const pause = () => new Promise((r) => setImmediate(r));
let sink = 0;

function batch(f, k, calls) {
  const t0 = hr();
  for (let i = 0; i < calls; i++) f(k * calls + i);
  return Number(hr() - t0);
}

const summary = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), p10: quantile(s, 0.1), p90: quantile(s, 0.9) };
};

/** Pairs of batches of `a` and `b`, alternately a first and b first; per-call figures of each and the per-pair ratio a/b. */
async function paired(a, b, { batches, warmup, calls }) {
  const ta = [];
  const tb = [];
  const ratios = [];
  for (let k = 0; k < warmup + batches; k++) {
    let da;
    let db;
    if (k % 2 === 0) {
      da = batch(a, k, calls);
      db = batch(b, k, calls);
    } else {
      db = batch(b, k, calls);
      da = batch(a, k, calls);
    }
    if (k >= warmup) {
      ta.push(da / calls);
      tb.push(db / calls);
      ratios.push(da / db);
    }
    await pause();
  }
  return { a: summary(ta), b: summary(tb), ratio: summary(ratios), batches, calls };
}

/**
 * One row: `body(i)` per call, the batch timed whole; or, with `timed`,
 * `body` returns the ns it measured itself (work that needs untimed
 * preparation) and the batch is the sum.
 */
async function row(name, body, { batches, warmup, calls } = SIZE.row, timed = false) {
  const per = [];
  for (let k = 0; k < warmup + batches; k++) {
    let ns;
    if (timed) {
      ns = 0;
      for (let i = 0; i < calls; i++) ns += body(k * calls + i);
    } else ns = batch(body, k, calls);
    if (k >= warmup) per.push(ns / calls);
    await pause();
  }
  return { name, ...summary(per) };
}

// ---------------------------------------------------------------- the work

const at = (i) => PAGES[i % ROTATION];

/** insitu's page view. */
function insituPageView(i) {
  const pv = at(i);
  const context = site.context(pv.context);
  const h = hero.rank({ context });
  const s = shelf.rank({ context });
  const b = banner.rank({ context });
  const a = site.run(EXPERIMENT.key, pv.run);
  sink ^= h.index + s.index + b.index + a.index;
}

/** GrowthBook's page view. `setAttributes` is async only for sticky bucketing and remote evaluation (both off): its work is done when it returns. */
function growthbookPageView(i) {
  const pv = at(i);
  gb.setAttributes(pv.attributes);
  const h = gb.getFeatureValue(FEATURES.hero, "summer-sale");
  const s = gb.getFeatureValue(FEATURES.shelf, "bestsellers");
  const b = gb.getFeatureValue(FEATURES.banner, "none");
  const r = gb.run(GROWTHBOOK_EXPERIMENT);
  sink ^= h.length + s.length + b.length + r.variationId;
}

const rankOn = (slot, contexts) => (i) => {
  sink ^= slot.rank({ context: contexts[i % ROTATION] }).index;
};
const rankPlain = (slot) => (i) => {
  sink ^= slot.rank({ context: at(i).context }).index;
};
const feature = (key) => (i) => {
  sink ^= gbPages[i % ROTATION].getFeatureValue(key, "").length;
};

/** A click: `reward` of a fresh decision. Decisions are ranked untimed in groups of 8, then rewarded newest first, the 8 timed together. */
function rewardBody(slot) {
  const GROUP = 8;
  const ids = new Array(GROUP);
  let call = 0;
  return () => {
    if (call++ % GROUP !== 0) return 0;
    for (let g = 0; g < GROUP; g++) ids[g] = slot.rank({ context: encoded[(call + g) % ROTATION] }).decisionId;
    const t0 = hr();
    for (let g = GROUP - 1; g >= 0; g--) slot.reward({ decisionId: ids[g], reward: (call + g) % 3 === 0 ? 1 : 0 });
    return Number(hr() - t0);
  };
}

// ---------------------------------------------------------------- run

const cpus = os.cpus();
const loadavg = os.loadavg()[0];
console.log(`insitu node benchmark — node ${process.version}, ${cpus[0]?.model ?? "unknown CPU"} ×${cpus.length}, load average ${loadavg.toFixed(2)}`);
console.log(describeBuild(build));
console.log(`GrowthBook ${gbVersion} (dist/bundles/esm.min.js, the production build)`);
if (QUICK) console.log("--quick: a smoke run; the figures are rough");
if (loadavg > cpus.length / 2) console.log("warning: the machine is busy; figures will be noisy");
console.log(`checked: on ${ROTATION} pages both assign the same variant of ${EXPERIMENT.key} (${inTest} in the test); every rank decided; GrowthBook's features take ${Object.values(gbValues).join("/")} distinct values`);

const trackedBefore = tracked;
const exposedBefore = exposures;
const pageView = await paired(insituPageView, growthbookPageView, SIZE.pairs);
const pairExposures = { insitu: exposures - exposedBefore, growthbook: tracked - trackedBefore };
const pending = Object.fromEntries(Object.entries(slots).map(([n, s]) => [n, s.stats().pending]));
const secondSlot = await paired(rankOn(shelf, encoded), feature(FEATURES.shelf), SIZE.slot);

// The first-decision module, before its full engine is let in.
const parts = {};
const firstVsFull = await paired(rankOn(early.slots.hero, encodedEarly), rankOn(hero, encoded), SIZE.first);
parts.firstRankEncoded = { name: "first module: hero.rank, encoded context (paired)", ...firstVsFull.a };
parts.fullRankEncoded = { name: "full engine: hero.rank, encoded context (paired)", ...firstVsFull.b };
parts.firstRankPlain = await row("first module: hero.rank, plain-object context", rankPlain(early.slots.hero), SIZE.first);
// Its behaviour namespace is smaller: events tracked before the full engine arrives wait for it.
parts.firstRun = await row(`first module: site.run (${Object.keys(early.site.features()).length} behaviour features)`, (i) => {
  sink ^= early.site.run(EXPERIMENT.key, at(i).run).index;
}, SIZE.first);
release(WASM_FULL);
await early.site.ready;
early.site.close();

parts.context = await row("site.context(page) alone (encoding is lazy)", (i) => {
  sink ^= site.context(at(i).context).order.length;
});
parts.heroFresh = await row("hero.rank, fresh site.context (encodes page+visitor)", (i) => {
  sink ^= hero.rank({ context: site.context(at(i).context) }).index;
});
parts.heroEncoded = await row("hero.rank, encoded context (K=5, linucb)", rankOn(hero, encoded));
parts.shelfEncoded = await row("shelf.rank, encoded context (K=4, egreedy)", rankOn(shelf, encoded));
parts.bannerEncoded = await row("banner.rank, encoded context (K=3, linucb)", rankOn(banner, encoded));
parts.heroPlain = await row("hero.rank, plain-object context", rankPlain(hero));
parts.heroNone = await row("hero.rank(), no context (behavior only)", () => {
  sink ^= hero.rank().index;
});
parts.heroThompson = await row("hero.rank, encoded, thompson (32 draws)", rankOn(heroThompson, encoded));
parts.run = await row("site.run(key, { attributes })", (i) => {
  sink ^= site.run(EXPERIMENT.key, at(i).run).index;
});
parts.features = await row(`site.features() (${Object.keys(site.features()).length} behaviour features; run reads it)`, () => {
  sink ^= site.features() === null ? 1 : 0;
});
parts.reward = await row("hero.reward (a click), full engine", rewardBody(hero), SIZE.row, true);
parts.gbSetAttributes = await row("GrowthBook setAttributes(page)", (i) => {
  void gb.setAttributes(at(i).attributes);
});
parts.gbHero = await row(`GrowthBook getFeatureValue(${FEATURES.hero})`, feature(FEATURES.hero));
parts.gbShelf = await row(`GrowthBook getFeatureValue(${FEATURES.shelf})`, feature(FEATURES.shelf));
parts.gbBanner = await row(`GrowthBook getFeatureValue(${FEATURES.banner})`, feature(FEATURES.banner));
parts.gbRun = await row("GrowthBook run(inline experiment)", (i) => {
  sink ^= gbPages[i % ROTATION].run(GROWTHBOOK_EXPERIMENT).variationId;
});

// ---------------------------------------------------------------- report

const fmt = (ns) => (ns >= 1000 ? `${(ns / 1000).toFixed(ns >= 100_000 ? 0 : 2)} µs` : `${Math.round(ns)} ns`);
const x = (r) => `${r.toFixed(2)}×`;
const pad = (s, n) => String(s).padEnd(n);
const padL = (s, n) => String(s).padStart(n);
const verdict = (r, bar) => (r <= bar ? "meets" : "MISSES");
const side = (who, what, r) => console.log(`  ${pad(who, 11)} ${pad(what, 42)} ${padL(fmt(r.median), 10)}  (p90 ${fmt(r.p90)})`);

console.log(`\nPage view (paired, ${pageView.batches} pairs × ${pageView.calls} page views, median and p90 per page view):`);
side("insitu", "site.context + 3 × rank + site.run", pageView.a);
side("GrowthBook", "setAttributes + 3 × getFeatureValue + run", pageView.b);
console.log(`  insitu / GrowthBook: ${x(pageView.ratio.median)} (p10–p90 ${x(pageView.ratio.p10)}–${x(pageView.ratio.p90)}), bar ≤ ${BAR_PAGE_VIEW.toFixed(1)}×: ${verdict(pageView.ratio.median, BAR_PAGE_VIEW)}`);
console.log(`  pending decisions, not rewarded (maxPending caps them): ${Object.entries(pending).map(([n, p]) => `${n} ${p}`).join(", ")}`);
console.log(`  exposures reported during the pairs: insitu ${pairExposures.insitu}, GrowthBook ${pairExposures.growthbook} (one visitor: both dedupe)`);

console.log(`\nSecond slot (paired, ${secondSlot.batches} pairs × ${secondSlot.calls} calls):`);
side("insitu", "shelf.rank on an encoded context", secondSlot.a);
side("GrowthBook", `getFeatureValue(${FEATURES.shelf})`, secondSlot.b);
console.log(`  insitu / GrowthBook: ${x(secondSlot.ratio.median)} (p10–p90 ${x(secondSlot.ratio.p10)}–${x(secondSlot.ratio.p90)}), bar ≤ ${BAR_SECOND_SLOT.toFixed(1)}×: ${verdict(secondSlot.ratio.median, BAR_SECOND_SLOT)}`);

console.log(`\nBreakdown (rows one after another, ${SIZE.row.batches} batches × ${SIZE.row.calls} calls; ns per call):`);
const w = Math.max(...Object.values(parts).map((r) => r.name.length));
console.log(`  ${pad("", w)} ${padL("median", 10)} ${padL("p90", 10)}`);
for (const r of Object.values(parts)) console.log(`  ${pad(r.name, w)} ${padL(fmt(r.median), 10)} ${padL(fmt(r.p90), 10)}`);
const m = (k) => parts[k].median;
const encodeCost = m("heroFresh") - m("heroEncoded") - m("context");
console.log(`\n  first module / full engine, hero.rank on an encoded context (paired): ${x(firstVsFull.ratio.median)} (p10–p90 ${x(firstVsFull.ratio.p10)}–${x(firstVsFull.ratio.p90)})`);
console.log(`  encoding page+visitor once: ≈ ${fmt(encodeCost)} (fresh-context rank − encoded rank − context)`);
console.log(`  sum of insitu's rows for a page view: ${fmt(m("heroFresh") + m("shelfEncoded") + m("bannerEncoded") + m("run"))};`,
  `GrowthBook's: ${fmt(m("gbSetAttributes") + m("gbHero") + m("gbShelf") + m("gbBanner") + m("gbRun"))}`);
console.log(`  run: insitu / GrowthBook ${x(m("run") / m("gbRun"))} (rows); site.run less its copy of the behaviour namespace (site.features()): ≈ ${fmt(m("run") - m("features"))}`);
if (storageErrors.length > 0) {
  const codes = [...new Set(storageErrors.map((e) => e.code))].join(", ");
  console.log(`  storage (untimed writes) reported ${storageErrors.length} errors (${codes}); the first: ${storageErrors[0].message}`);
  if (codes.includes("SNAPSHOT_TOO_LARGE")) {
    console.log("    the site's slots hold maxPending unrewarded decisions each, over the snapshot's maxBytes: see npm run bench:snapshot");
  }
}
if (sink === 0.5) console.log(); // keeps the results observable

site.close();

if (args.has("--json")) {
  const out = path.join(root, ".artifacts", "bench.json");
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const report = {
    machine: { node: process.version, cpu: cpus[0]?.model, cores: cpus.length, loadavg },
    package: build,
    growthbook: { version: gbVersion, build: "dist/bundles/esm.min.js" },
    quick: QUICK,
    unit: "ns per call (per page view for pageView)",
    bars: { pageView: BAR_PAGE_VIEW, secondSlot: BAR_SECOND_SLOT },
    pending: { rewarded: false, maxPending: 256, afterPairs: pending },
    exposuresDuringPairs: pairExposures,
    storageErrors: storageErrors.map((e) => e.code),
    pageView,
    secondSlot,
    firstVsFull,
    breakdown: parts,
  };
  fs.writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(root, out)}`);
}
