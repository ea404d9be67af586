// The split of issue 20: with nothing stored (a first visit), load() decides
// on the first-decision module (insitu_bg.wasm) and the full engine
// (insitu_full.wasm) takes over after the first paint; with stored state it
// opens on the full engine at once. What happened before it arrived (decisions, rewards,
// activations, learn, track, experiments) is handed over and counted exactly
// once; a page whose full engine cannot load keeps deciding and loses nothing
// stored. Against the built package (pkg/index.js).
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import { InsituError, isFallback, load, loadReady, loadSite, MemoryStorage, open, throwsCode, updates, WASM, WASM_FULL } from "./helpers.mjs";

const schema = JSON.parse(readFileSync(new URL("../../schema/audit.schema.json", import.meta.url)));
const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);

const T0 = 1_700_000_040_000;
const SLOT = { variants: ["a", "b", "c"], features: { allow: ["page", "behavior"] }, seed: 11 };
const BANDIT = { key: "tb", variants: ["p", "q"], allocation: { type: "thompson" } };
const HERO = { key: "hero", variants: ["x", "y", "z"] };

const per = (slot) => slot.stats().variants.map((v) => v.updates);
/** What a site counted: each slot's stats, the events, the bandit's counts and the exposures. */
const counted = (site, slots) => {
  const a = site.audit();
  return {
    slots: slots.map((s) => s.stats()),
    events: a.events,
    // Bandit trials draw from each site's own generator: the variants may differ, the totals may not.
    bandit: a.experiments.list.find((e) => e.key === "tb")?.counts.reduce((n, c) => [n[0] + c.successes, n[1] + c.failures], [0, 0]),
    exposures: a.experiments.exposures.filter((e) => e.experiment !== "tb").map(({ experiment, variant }) => `${experiment}=${variant}`).sort(),
    trials: a.experiments.exposures.filter((e) => e.experiment === "tb").length,
    unit: a.experiments.unit,
  };
};

/** A stored page view (its learning, a decision left waiting, experiment state), on `storage`. */
async function earlier(storage) {
  const site = open({ storage, consent: "personalization", unit: "user-7", now: () => T0, flushDelayMs: 60_000 });
  const hero = site.slot("hero", SLOT);
  for (let i = 0; i < 10; i++) {
    const d = hero.rank({ context: { page: { n: i % 3 } } });
    hero.reward({ decisionId: d.decisionId, reward: i % 2 });
  }
  const waiting = hero.rank({ context: { page: { n: 1 } } });
  site.track({ type: "view", category: "shoes" });
  site.experiments([HERO, BANDIT]);
  site.run("hero");
  assert.equal((await site.flush()).written, true);
  site.close();
  return waiting;
}

/**
 * One page view's calls, made on `site` (before its full engine arrives, for
 * a site from load()). Returns the slots and what is left to do after.
 */
function pageView(site, waiting = null) {
  const hero = site.slot("hero", SLOT);
  const side = site.slot("side", { variants: ["l", "r"], features: { allow: ["page"] }, seed: 3 });
  const decisions = [];
  for (let i = 0; i < 30; i++) {
    const d = hero.rank({ context: { page: { n: i % 4 } }, defer: i % 5 === 0 });
    assert.equal(d.fallback, false, d.error?.message);
    decisions.push(d);
  }
  decisions.forEach((d, i) => {
    if (i % 5 === 0) hero.activate({ decisionId: d.decisionId });
    if (i % 2 === 0) hero.reward({ decisionId: d.decisionId, reward: i % 3 === 0 ? 1 : 0 });
  });
  // A deferred decision never activated: its reward is refused, before and after the handover alike.
  const shy = hero.rank({ context: { page: { n: 9 } }, defer: true });
  throwsCode(() => hero.reward({ decisionId: shy.decisionId, reward: 1 }), "NOT_ACTIVATED");
  if (waiting !== null) hero.reward({ decisionId: waiting.decisionId, reward: 1 }); // the earlier page view's decision
  hero.learn({ context: { page: { n: 2 } }, variant: "c", reward: 1 });
  hero.learn({ variant: "a", reward: 0 });
  const s = side.rank({ context: site.context({ page: { n: 1 } }) });
  side.reward({ decisionId: s.decisionId, reward: 1 });
  site.track({ type: "view", category: "shoes" });
  site.track({ type: "click", category: "bags" });
  site.experiments([HERO, BANDIT]);
  const assigned = [site.run("hero").variant, site.run("tb").inExperiment];
  site.rewardExperiment("tb", 1);
  // Left for after the handover: rewards of decisions made before it.
  const later = decisions.filter((_, i) => i % 2 === 1 && i % 5 !== 0);
  return { slots: [hero, side], decisions, later, assigned };
}

/** A full engine held back until `release()`: the page stays on the first-decision module meanwhile. */
function heldBack() {
  let release;
  const bytes = new Promise((r) => {
    release = () => r(WASM_FULL);
  });
  return { bytes, release };
}

test("what happens before the full engine arrives is counted exactly once after the handover, and stored once", async () => {
  const [a, b] = [new MemoryStorage(), new MemoryStorage()];
  const options = (storage, errors) => ({ storage, consent: "personalization", unit: "user-7", now: () => T0 + 1000, flushDelayMs: 60_000, onError: (e) => errors.push(e) });
  const [errorsA, errorsB] = [[], []];
  // A first visit, through load(); its twin on the full engine from the start, through open().
  const site = await loadSite(options(a, errorsA));
  const twin = open(options(b, errorsB));
  const mine = pageView(site);
  const theirs = pageView(twin);
  assert.deepEqual(mine.decisions.map((d) => [d.variant, d.pmf]), theirs.decisions.map((d) => [d.variant, d.pmf]), "the same decisions");
  assert.deepEqual(mine.assigned, theirs.assigned);
  // Before the handover: the prior; rewards wait, and the explanation needs the full engine.
  assert.deepEqual(updates(mine.slots[0]), 0, "rewards are queued until the full engine arrives");
  assert.equal(mine.slots[0].explain(), null);
  assert.deepEqual(site.audit().events.byType, twin.audit().events.byType, "tracked events are counted at once");

  await site.ready;
  assert.deepEqual(counted(site, mine.slots), counted(twin, theirs.slots), "after the handover, as if the full engine had been there");
  assert.equal(updates(mine.slots[0]), 15 + 2, "rewarded here, learned");
  assert.equal(updates(mine.slots[1]), 1);
  assert.notEqual(mine.slots[0].explain(), null);
  // Rewarded before: not again.
  for (const d of mine.decisions.filter((_, i) => i % 2 === 0)) {
    throwsCode(() => mine.slots[0].reward({ decisionId: d.decisionId, reward: 1 }), "DUPLICATE_REWARD");
  }
  throwsCode(() => site.rewardExperiment("tb", 1), "DUPLICATE_REWARD");
  // Decided before, rewarded after: counted.
  for (const [slot, list] of [[mine.slots[0], mine.later], [theirs.slots[0], theirs.later]]) {
    for (const d of list) slot.reward({ decisionId: d.decisionId, reward: 1 });
  }
  assert.deepEqual(per(mine.slots[0]), per(theirs.slots[0]));
  assert.equal(updates(mine.slots[0]), 17 + mine.later.length);
  assert.deepEqual(errorsA, [], "the handover refused nothing");

  const [ra, rb] = [await site.flush(), await twin.flush()];
  assert.equal(ra.written, true);
  assert.equal(ra.experiments.written, true);
  assert.equal(rb.written, true);
  site.close();
  twin.close();
  // The next page views (stored state: on the full engine at once) read back the same, counted once.
  const [na, nb] = [await loadSite(options(a, errorsA)), await loadReady(options(b, errorsB))];
  const slotsOf = (s) => [s.slot("hero", SLOT), s.slot("side", { variants: ["l", "r"], features: { allow: ["page"] }, seed: 3 })];
  na.experiments([HERO, BANDIT]);
  nb.experiments([HERO, BANDIT]);
  const [sa, sb] = [slotsOf(na), slotsOf(nb)];
  assert.notEqual(sa[0].explain(), null, "a repeat visit decides on the full engine from the start");
  assert.deepEqual(counted(na, sa), counted(nb, sb));
  assert.equal(updates(sa[0]), 17 + mine.later.length);
  assert.deepEqual(na.audit().events.byType, { click: 1, view: 1 });
  assert.deepEqual(na.audit().experiments.list.find((e) => e.key === "tb").counts.reduce((n, c) => n + c.successes, 0), 1);
  assert.ok(validate(na.audit()), JSON.stringify(validate.errors));
  assert.deepEqual(errorsA, []);
  na.close();
  nb.close();
});

test("what another tab stores while a page is on the first-decision module is restored at the handover, under what happened meanwhile", async () => {
  const storage = new MemoryStorage();
  const errors = [];
  const full = heldBack();
  const site = await load({ wasm: WASM, wasmFull: full.bytes, storage, consent: "personalization", unit: "user-7", now: () => T0 + 1000, flushDelayMs: 60_000, onError: (e) => errors.push(e) });
  const hero = site.slot("hero", SLOT);
  const mine = [];
  for (let i = 0; i < 6; i++) mine.push(hero.rank({ context: { page: { n: i % 3 } } }));
  hero.reward({ decisionId: mine[0].decisionId, reward: 1 });
  // Another tab stores ten rewards, a decision left waiting and experiment state.
  const waiting = await earlier(storage);
  assert.equal(updates(hero), 0, "the first-decision module reads nothing stored");
  full.release();
  await site.ready;
  assert.equal(updates(hero), 10 + 1, "the other tab's learning, then this page's reward on it");
  hero.reward({ decisionId: mine[1].decisionId, reward: 0 });
  hero.reward({ decisionId: waiting.decisionId, reward: 1 });
  throwsCode(() => hero.reward({ decisionId: mine[0].decisionId, reward: 1 }), "DUPLICATE_REWARD");
  assert.equal(updates(hero), 13);
  assert.equal((await site.flush()).written, true);
  site.close();
  const next = await loadSite({ storage, consent: "personalization", unit: "user-7", now: () => T0 + 2000 });
  assert.equal(updates(next.slot("hero", SLOT)), 13, "stored once");
  assert.deepEqual(errors, []);
  next.close();
});

test("before the handover, rewards of this page's own decisions are checked at once; others' are checked at the handover", async () => {
  const errors = [];
  const site = await loadSite({ storage: null, flushDelayMs: 60_000, onError: (e) => errors.push(e) });
  const slot = site.slot("hero", { variants: ["a", "b"], rewardTtlMs: 1000 });
  const d = slot.rank({ now: T0 });
  const [epoch, counter] = d.decisionId.split("-");
  throwsCode(() => slot.reward({ decisionId: `${epoch}-${Number(counter) + 5}`, reward: 1, now: T0 }), "UNKNOWN_DECISION");
  throwsCode(() => slot.reward({ decisionId: "not-an-id", reward: 1, now: T0 }), "UNKNOWN_DECISION");
  throwsCode(() => slot.reward({ decisionId: d.decisionId, reward: 1, now: T0 + 5000 }), "DECISION_EXPIRED");
  throwsCode(() => slot.reward({ decisionId: d.decisionId, reward: 2, now: T0 }), "INVALID_REWARD");
  const deferred = slot.rank({ now: T0, defer: true });
  throwsCode(() => slot.reward({ decisionId: deferred.decisionId, reward: 1, now: T0 }), "NOT_ACTIVATED");
  throwsCode(() => slot.activate({ decisionId: `${epoch}-999`, now: T0 }), "UNKNOWN_DECISION");
  slot.reward({ decisionId: d.decisionId, reward: 1, now: T0 + 10 });
  throwsCode(() => slot.reward({ decisionId: d.decisionId, reward: 1, now: T0 + 11 }), "DUPLICATE_REWARD");
  // Another page view's decision (not stored here): accepted for now, refused when the full engine takes over.
  slot.reward({ decisionId: "00000000beef-3", reward: 1, now: T0 + 10 });
  assert.deepEqual(errors, []);
  await site.ready;
  assert.deepEqual(errors.map((e) => e.code), ["UNKNOWN_DECISION"], "reported once, at the handover");
  assert.ok(errors[0] instanceof InsituError);
  assert.equal(updates(slot), 1, "only the valid reward counted");
  assert.equal(slot.stats().pending, 1, "the deferred decision still waits");
  slot.activate({ decisionId: deferred.decisionId, now: T0 + 20 });
  slot.reward({ decisionId: deferred.decisionId, reward: 1, now: T0 + 20 });
  assert.equal(updates(slot), 2);
  site.close();
});

test("flush() before the handover waits for it, then stores what happened before", async () => {
  const storage = new MemoryStorage();
  const site = await loadSite({ storage, consent: "personalization", flushDelayMs: 60_000 });
  const slot = site.slot("hero", { variants: ["a", "b"] });
  slot.reward({ decisionId: slot.rank().decisionId, reward: 1 });
  site.track({ type: "view" });
  const r = await site.flush(); // called on the first-decision module
  assert.equal(r.written, true);
  site.close();
  const next = await loadReady({ storage, consent: "personalization" });
  assert.equal(updates(next.slot("hero", { variants: ["a", "b"] })), 1);
  assert.equal(next.audit().events.total, 1);
  next.close();
});

/** A page view whose full engine cannot be loaded (its bytes are not wasm), on `storage`. */
async function withoutFullEngine(storage, errors, extra = {}) {
  return load({
    wasm: WASM, wasmFull: new Uint8Array([0x3c, 0x68, 0x74, 0x6d, 0x6c, 0x3e]), // "<html>": a server's error page
    storage, consent: "personalization", unit: "user-7", now: () => T0 + 2000, flushDelayMs: 0, onError: (e) => errors.push(e), ...extra,
  });
}

/** Everything such a page does: decide, reward, learn, track, experiments, flush. */
async function busyPage(site) {
  const hero = site.slot("hero", SLOT);
  const side = site.slot("side", { variants: ["l", "r"] });
  const before = [];
  for (let i = 0; i < 20; i++) {
    const d = hero.rank({ context: site.context({ page: { n: i } }) });
    before.push(d);
    if (i % 2 === 0) hero.reward({ decisionId: d.decisionId, reward: 1 });
  }
  hero.learn({ variant: "a", reward: 1 });
  site.track({ type: "click" });
  site.experiments([HERO, BANDIT]);
  const assigned = site.run("hero").variant;
  site.run("tb");
  site.rewardExperiment("tb", 1);
  await site.ready; // resolves although the full engine failed
  // It keeps deciding, and still checks its own decisions' rewards.
  for (let i = 0; i < 20; i++) {
    const d = hero.rank({ context: { page: { n: i } } });
    assert.equal(d.fallback, false, d.error?.message);
    hero.reward({ decisionId: d.decisionId, reward: 0 });
  }
  assert.equal(side.rank().fallback, false);
  throwsCode(() => hero.reward({ decisionId: before[0].decisionId, reward: 1 }), "DUPLICATE_REWARD");
  hero.reward({ decisionId: before[1].decisionId, reward: 1 });
  assert.equal(site.run("hero").variant, assigned, "the same assignment");
  assert.equal(hero.explain(), null, "no explanation without the full engine");
  const r = await site.flush();
  return { hero, r };
}

test("a page whose full engine fails to load keeps deciding, site.ready resolves, flush() resolves without writing, onError hears it", async () => {
  const storage = new MemoryStorage();
  await earlier(storage);
  const stored = { snapshot: storage.getItem("insitu"), ab: storage.getItem("insitu.ab"), unit: storage.getItem("insitu.unit") };
  const errors = [];
  const site = await withoutFullEngine(storage, errors);
  assert.equal(site.fallback, null, "the first-decision module runs");
  const { hero, r } = await busyPage(site);
  assert.equal(r.written, false);
  assert.equal(r.reason, "learning-unavailable");
  assert.ok(r.error instanceof InsituError);
  assert.equal(r.error.code, "WASM_UNAVAILABLE");
  assert.deepEqual(errors.map((e) => e.code), ["WASM_UNAVAILABLE"], "reported once");
  assert.match(errors[0].message, /full engine/);
  assert.ok(errors[0].cause instanceof WebAssembly.CompileError || errors[0].cause?.cause instanceof WebAssembly.CompileError, "the cause is kept");
  assert.equal(updates(hero), 0, "without the full engine it decides from the priors; what is stored waits");
  const a = site.audit();
  assert.ok(a.history.some((h) => h.event === "handover-failed" && h.code === "WASM_UNAVAILABLE"));
  assert.ok(validate(a), JSON.stringify(validate.errors));
  site.close();
  await new Promise((ok) => setTimeout(ok, 20)); // any flush scheduled by an update has run
  // Loses nothing stored: every value earlier page views stored is byte-identical.
  assert.deepEqual({ snapshot: storage.getItem("insitu"), ab: storage.getItem("insitu.ab"), unit: storage.getItem("insitu.unit") }, stored);
  // And the next page view with a working full engine has it all.
  const next = await loadReady({ storage, consent: "personalization", unit: "user-7", now: () => T0 + 3000 });
  assert.equal(updates(next.slot("hero", SLOT)), 10);
  next.close();
});

test("a page whose full engine fails to load changes nothing stored (byte-identical storage)", async () => {
  const storage = new MemoryStorage();
  await earlier(storage);
  const before = new Map(storage.map);
  const errors = [];
  const site = await withoutFullEngine(storage, errors);
  await busyPage(site);
  site.close();
  await new Promise((ok) => setTimeout(ok, 20));
  const changed = [...new Set([...before.keys(), ...storage.map.keys()])].filter((k) => before.get(k) !== storage.map.get(k));
  assert.deepEqual(changed, [], `keys written: ${changed.map((k) => `${k} = ${storage.map.get(k)?.slice(0, 160)}`).join("; ")}`);
});

test("a first-decision module that cannot load is a fallback site; one whose full engine cannot load is not", async () => {
  const errors = [];
  const site = await load({ wasm: new Uint8Array(8), wasmFull: new Uint8Array(8), storage: null, onFallback: (e) => errors.push(e) });
  assert.equal(site.fallback?.code, "WASM_UNAVAILABLE");
  isFallback(site.slot("hero", { variants: ["a", "b"] }).rank(), "a", "WASM_UNAVAILABLE");
  const other = await withoutFullEngine(null, [], { consent: undefined });
  assert.equal(other.fallback, null);
  await other.ready;
  assert.equal(other.slot("hero", { variants: ["a", "b"] }).rank().fallback, false);
  other.close();
});
