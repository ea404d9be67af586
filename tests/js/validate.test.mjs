// The TypeScript validators (src/ts/validate/): defaults, every bad field
// named with the Rust readers' codes and wording (their unit tests' cases,
// ported), model versions against golden values from the Rust core, and a
// seeded hostile fuzz: every validator returns a spec or throws an
// InsituError with a listed code, never changes its input, and returns
// nothing that refers to the caller's objects.
//
// Imports the compiled TypeScript: run `npx tsc -p tsconfig.json` first.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { types } from "node:util";

const load = async (path) => {
  try {
    return await import(new URL(`../../target/ts/${path}`, import.meta.url));
  } catch (e) {
    throw new Error(`cannot import target/ts/${path}: build the TypeScript first (npx tsc -p tsconfig.json)`, { cause: e });
  }
};
const { CODES, InsituError } = await load("errors.js");
const { checkSlot, checkPolicy, checkFeatures } = await load("validate/slot.js");
const { checkModel } = await load("validate/model.js");
const { checkReward, checkActivate, checkLearn, checkRankShape, checkExplainShape } = await load("validate/calls.js");
const { checkBehavior, checkEvent } = await load("validate/behavior.js");
const { checkExperiments } = await load("validate/experiments.js");
const { holds } = await load("validate/targeting.js");
const { checkOpen } = await load("validate/open.js");

/** The InsituError `fn` throws; asserts its code and that the message contains each of `parts`. */
function throws(fn, code, ...parts) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof InsituError, `expected an InsituError ${code}, got ${caught}`);
  assert.equal(caught.name, "InsituError");
  assert.equal(caught.code, code, caught.message);
  for (const p of parts) assert.ok(caught.message.includes(p), `${JSON.stringify(caught.message)} should contain ${JSON.stringify(p)}`);
  return caught;
}

/** `fn` throws a message naming field `f` in backticks, with `code`. */
const names = (fn, code, f) => throws(fn, code, `\`${f}\``);

const DAY = 86_400_000;
const VERSION = /^m1-[0-9a-f]{16}$/;
const plainVariants = (s) => s.variants.map((v) => ({ ...v }));

// --- defaults ---------------------------------------------------------------

test("a slot's defaults", () => {
  const s = checkSlot({ variants: ["a", "b"] });
  assert.match(s.modelVersion, VERSION);
  assert.deepEqual({ ...s, variants: plainVariants(s) }, {
    variants: [
      { id: "a", features: null, mean: null, variance: 1 },
      { id: "b", features: null, mean: null, variance: 1 },
    ],
    features: { hashVersion: 1, bits: 7, allow: [], interactions: [], normalize: true, slotsPerFeature: 1 },
    noise: 0.25,
    policy: { type: "linucb", alpha: 0.5, minProbability: 0.001 },
    fallback: 0,
    seed: null,
    rewardTtlMs: DAY,
    maxPending: 256,
    modelVersion: s.modelVersion,
    apprentice: null,
    reports: undefined,
    catalogue: null,
  });
  // Past 32 variants the features default to 64 slots (covariances under 1.1 MB, reports with learning in range).
  const ids = (n) => Array.from({ length: n }, (_, i) => `v${i}`);
  assert.equal(checkSlot({ variants: ids(32) }).features.bits, 7);
  assert.equal(checkSlot({ variants: ids(33) }).features.bits, 6);
  assert.equal(checkSlot({ variants: ids(33) }).modelVersion, checkSlot({ variants: ids(33), features: { bits: 6 } }).modelVersion);
  // A catalogue's learner is diagonal past 128 weights whatever the width: its features default to 64 slots.
  const products = ["p", "q"].map((id) => ({ id, features: { item: { id } } }));
  assert.equal(checkSlot({ variants: products, features: { allow: ["item"] }, catalogue: true }).features.bits, 6);
  assert.equal(checkSlot({ variants: products, features: { allow: ["item"], bits: 7 }, catalogue: true }).features.bits, 7);
  // Options left out read as {}: the variants are then missing.
  names(() => checkSlot(undefined), "INVALID_OPTION", "variants");
  names(() => checkSlot(null), "INVALID_OPTION", "variants");
  const full = checkSlot({
    variants: ["a", { id: "b" }], features: { bits: 4 }, fallback: "b", seed: 2 ** 53 - 1, noise: 0.5,
    priorVariance: 3, rewardTtlMs: 10, maxPending: 10_000,
  });
  assert.deepEqual([full.fallback, full.seed, full.noise, full.variants[1].variance, full.rewardTtlMs, full.maxPending],
    [1, 2 ** 53 - 1, 0.5, 3, 10, 10_000]);
});

test("each policy's defaults, and the floor at most 1/K", () => {
  assert.deepEqual(checkPolicy(undefined, 5), { type: "linucb", alpha: 0.5, minProbability: 0.001 });
  assert.deepEqual(checkPolicy({ type: "thompson" }, 2), { type: "thompson", scale: 0.25, samples: 32, minProbability: 0.001 });
  assert.deepEqual(checkPolicy({ type: "egreedy" }, 2), { type: "egreedy", epsilon: 0.1, minProbability: 0.001 });
  assert.deepEqual(checkPolicy({ type: "greedy", minProbability: 0 }, 2), { type: "greedy", minProbability: 0 });
  assert.deepEqual(checkPolicy({ type: "linucb", alpha: 2 }, 2), { type: "linucb", alpha: 2, minProbability: 0.001 });
  assert.equal(checkPolicy({ minProbability: 0.25 }, 4).minProbability, 0.25);
  throws(() => checkPolicy({ minProbability: 0.26 }, 4), "INVALID_OPTION", "`policy.minProbability` should be at most 1/4 for 4 variants, but is 0.26");
});

test("feature settings: defaults, allow sorted by UTF-8 bytes and deduplicated, interactions as index pairs", () => {
  assert.deepEqual(checkFeatures(undefined), { hashVersion: 1, bits: 7, allow: [], interactions: [], normalize: true, slotsPerFeature: 1 });
  // A model's defaults are those of before normalization, so an older model keeps its meaning.
  assert.deepEqual(checkFeatures({}, "features", undefined, { bits: 5, normalize: false, slotsPerFeature: 1 }),
    { hashVersion: 1, bits: 5, allow: [], interactions: [], normalize: false, slotsPerFeature: 1 });
  assert.equal(checkFeatures({ normalize: false }).normalize, false);
  assert.equal(checkFeatures({ normalize: false, slotsPerFeature: 2 }).slotsPerFeature, 2);
  assert.equal(checkFeatures({ slotsPerFeature: 2 }).slotsPerFeature, 2);
  for (const bad of [0, 3, 1.5, "2", true]) names(() => checkFeatures({ slotsPerFeature: bad }), "INVALID_OPTION", "features.slotsPerFeature");
  names(() => checkFeatures({ normalize: "yes" }), "INVALID_OPTION", "features.normalize");
  names(() => checkFeatures({ normalize: 1 }), "INVALID_OPTION", "features.normalize");
  const f = checkFeatures({
    allow: ["zeta", "alpha", "alpha", "～", "😀", "Z", "é"],
    interactions: [["zeta", "alpha"], ["alpha", "zeta"], ["alpha", "alpha"], ["😀", "～"]],
  });
  // Code point (UTF-8 byte) order: "～" (U+FF5E) before "😀" (U+1F600); UTF-16 order says the opposite.
  assert.deepEqual(f.allow, ["Z", "alpha", "zeta", "é", "～", "😀"]);
  assert.deepEqual(f.allow, [...f.allow].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  assert.deepEqual(f.interactions, [[1, 2], [1, 1], [4, 5]]);
  assert.equal(checkFeatures({ bits: 18 }).bits, 18);
});

test("a model's defaults and its weights and variances", () => {
  const m = checkModel({ format: 1, features: { bits: 4 }, variants: [{ id: "a" }, { id: "b", weights: { 3: 0.5, "+2": -1, "007": 2 }, variance: 0.5 }] });
  assert.equal(m.noise, 0.25);
  assert.equal(m.variants[0].mean, null);
  assert.equal(m.variants[0].variance, 1);
  assert.ok(m.variants[1].mean instanceof Float64Array);
  assert.deepEqual([...m.variants[1].mean].slice(0, 8), [0, 0, -1, 0.5, 0, 0, 0, 2]);
  assert.equal(m.variants[1].variance, 0.5);
  const dense = Array.from({ length: 16 }, (_, i) => (i === 3 ? 0.5 : 0));
  const d = checkModel({ format: 1, features: { bits: 4 }, variants: [{ id: "a", weights: dense, variance: Array(16).fill(2) }, { id: "b", weights: new Float64Array(16) }] });
  assert.deepEqual([...d.variants[0].mean], dense);
  assert.deepEqual([...d.variants[0].variance], Array(16).fill(2));
  assert.equal(d.variants[1].mean, null, "all-zero weights are no weights");
});

test("behaviour retention and events: defaults", () => {
  assert.deepEqual(checkBehavior(undefined), { maxAgeDays: 30, maxEvents: 500, maxBytes: 16384, sessionGapMinutes: 30, types: [] });
  const b = checkBehavior({ maxAgeDays: 400, maxEvents: 5000, maxBytes: 256, sessionGapMinutes: 1, types: ["signup", "cart", "signup", "__proto__"] });
  assert.deepEqual(b, { maxAgeDays: 400, maxEvents: 5000, maxBytes: 256, sessionGapMinutes: 1, types: ["__proto__", "cart", "signup"] });
  assert.deepEqual(checkEvent({ type: "view" }, b), { type: "view", item: null, category: null, tags: [], value: null });
  assert.deepEqual(checkEvent({ type: "cart", item: "i", category: "c", tags: ["a", "a", "b"], value: 2.5 }, b),
    { type: "cart", item: "i", category: "c", tags: ["a", "b"], value: 2.5 });
});

test("experiments: defaults", () => {
  const [e, t] = checkExperiments([
    { key: "k", variants: ["a", "b", "c", "d"] },
    { key: "t", variants: ["x", "y"], allocation: { type: "thompson" } },
  ]);
  assert.deepEqual(e, {
    key: "k", variants: ["a", "b", "c", "d"], weights: [0.25, 0.25, 0.25, 0.25], coverage: 1, holdout: null, namespace: null,
    targeting: [], fallback: 0, hash: "insitu/1", seed: "k", allocation: { type: "weights" }, reports: undefined,
  });
  assert.deepEqual(t.allocation, { type: "thompson", prior: [[0, 0], [0, 0]], minProbability: 0.05, samples: 512, rewardWindowMs: DAY });
  const many = Array.from({ length: 32 }, (_, i) => `v${i}`);
  const [wide] = checkExperiments([{ key: "w", variants: many, allocation: { type: "thompson", prior: { v3: [1, 2] } } }]);
  assert.equal(wide.allocation.minProbability, 1 / 32);
  assert.deepEqual(wide.allocation.prior[3], [1, 2]);
  const [c] = checkExperiments([{
    key: "c", variants: ["a", "b"], weights: [0.1, 0.9], coverage: 0.5, fallback: "b", hash: "growthbook/2", seed: "s",
    holdout: { key: "h", fraction: 0.1 }, namespace: { name: "n", range: [0, 0.5] },
    targeting: [{ attribute: "behavior.sessions", range: [3, null] }, { attribute: "country", in: ["DE", 3, true] }],
  }]);
  assert.deepEqual(c.targeting, [
    { attribute: "behavior.sessions", path: ["behavior", "sessions"], test: { range: [3, null] } },
    { attribute: "country", path: ["country"], test: { in: ["DE", 3, true] } },
  ]);
  assert.deepEqual([c.fallback, c.hash, c.seed, c.holdout, c.namespace], [1, "growthbook/2", "s", { key: "h", fraction: 0.1 }, { name: "n", range: [0, 0.5] }]);
});

test("the calls' options: defaults", () => {
  assert.deepEqual(checkReward({ decisionId: "d", reward: 1 }), { decisionId: "d", reward: 1, now: null });
  assert.deepEqual(checkReward({ decisionId: "d", reward: -0, now: 5 }), { decisionId: "d", reward: 0, now: 5 });
  assert.deepEqual(checkActivate({ decisionId: "d" }), { decisionId: "d", now: null });
  assert.deepEqual(checkRankShape(undefined), { context: undefined, actions: null, seed: null, defer: false, now: null, k: null });
  const context = { page: { x: 1 } };
  const actions = [{ v: {} }, null];
  const r = checkRankShape({ context, actions, seed: 2 ** 53 - 1, defer: true, now: -5, k: 2 }, 2);
  assert.equal(r.context, context, "the context is handed on for the walk");
  assert.notEqual(r.actions, actions, "actions is a copy");
  assert.deepEqual(r, { context, actions, seed: 2 ** 53 - 1, defer: true, now: -5, k: 2 });
  // A slate holds 1 to min(variants, 64).
  for (const k of [0, 3, 1.5, "2", -1]) names(() => checkRankShape({ k }, 2), "INVALID_OPTION", "k");
  names(() => checkRankShape({ k: 65 }), "INVALID_OPTION", "k");
  assert.deepEqual(checkExplainShape({}), { context: undefined, actions: null, variant: null, top: 5 });
  assert.deepEqual(checkLearn({ variant: "a", reward: 0.5 }), { context: undefined, actions: null, variant: "a", reward: 0.5, probability: -1 });
  assert.equal(checkLearn({ variant: "a", reward: 0.5, probability: 0.25 }).probability, 0.25);
});

test("open() and load() options: defaults", () => {
  const o = checkOpen(undefined);
  assert.deepEqual(o, {
    key: "insitu", consent: null, defaultConsent: "functional", gpc: "honor",
    behavior: { maxAgeDays: 30, maxEvents: 500, maxBytes: 16384, sessionGapMinutes: 30, types: [] },
    storage: "default", now: Date.now, maxBytes: 262144, flushDelayMs: 1000, onError: null, unit: null, onExposure: null, onReport: null,
    wasm: null, wasmFull: null, onFallback: null,
  });
  const storage = { getItem: () => null };
  const now = () => 5;
  const p = checkOpen({ key: "k_1-", consent: "none", storage, now, unit: "u", maxBytes: 64, flushDelayMs: 0, behavior: { maxEvents: 3 }, wasm: new Uint8Array(4), wasmFull: "x.wasm", onFallback: () => {} }, true);
  assert.deepEqual([p.key, p.consent, p.storage, p.now, p.unit, p.maxBytes, p.flushDelayMs, p.behavior.maxEvents], ["k_1-", "none", storage, now, "u", 64, 0, 3]);
  assert.equal(typeof p.onFallback, "function");
  assert.equal(checkOpen({ storage: null }).storage, null);
  names(() => checkOpen({ wasm: "x" }), "INVALID_OPTION", "wasm"); // load() options only
});

// --- every bad field named --------------------------------------------------

const S = (o) => () => checkSlot({ variants: ["a", "b"], ...o });
/** Rust's model test fixture (src/model/mod.rs GOOD). */
const GOOD = () => ({
  format: 1,
  features: { bits: 4, allow: ["page", "variant"], interactions: [["page", "variant"]] },
  variants: [{ id: "a", weights: { 3: 0.5 } }, { id: "b", features: { variant: { tone: "urgent" } }, variance: 0.5 }],
});
const M = (edit) => () => {
  const m = GOOD();
  edit(m);
  return checkModel(m);
};

test("slot options: every bad field is named (src/engine, src/bandit, src/features, the JS API tests)", () => {
  const cases = [
    [() => checkSlot({ variants: ["a", "b"], polcy: {} }), "polcy"],
    [S({ unknownThing: 1 }), "unknownThing"],
    [S({ policy: { type: "nope" } }), "policy.type"],
    [S({ policy: { type: "egreedy", epsilon: 1.5 } }), "policy.epsilon"],
    [S({ policy: { type: "greedy", alpha: 1 } }), "policy.alpha"],
    [S({ policy: { samples: 0 } }), "policy.samples"], // linucb takes no samples
    [S({ policy: { type: "thompson", samples: 0 } }), "policy.samples"],
    [S({ policy: { type: "thompson", scale: -1 } }), "policy.scale"],
    [S({ policy: { scale: -1 } }), "policy.scale"],
    [() => checkSlot({ variants: ["a", "b", "c", "d"], policy: { minProbability: 0.3 } }), "policy.minProbability"],
    [S({ policy: { typo: 1 } }), "policy.typo"],
    [S({ policy: 5 }), "policy"],
    [S({ features: { bits: 30 } }), "features.bits"],
    [S({ features: { bits: 40 } }), "features.bits"],
    [S({ features: { bitz: 5 } }), "features.bitz"],
    [S({ features: { hashVersion: 2 } }), "features.hashVersion"],
    [S({ features: { allow: ["a"], interactions: [["a", "zz"]] } }), "features.interactions[0]"],
    [S({ features: { bits: 5, allow: ["a"], interactions: [["a"]] } }), "features.interactions[0]"],
    [S({ features: { allow: [""] } }), "features.allow[0]"],
    [S({ features: { allow: ["x".repeat(257)] } }), "features.allow[0]"],
    [S({ features: { allow: [3] } }), "features.allow[0]"],
    [() => checkSlot({ variants: ["a"] }), "variants"],
    [() => checkSlot({ variants: [] }), "variants"],
    [() => checkSlot({ variants: ["a", "a"] }), "variants[1].id"],
    [() => checkSlot({ variants: ["", "b"] }), "variants[0].id"],
    [() => checkSlot({ variants: ["a", 1] }), "variants[1]"],
    [() => checkSlot({ variants: ["a", { features: {} }] }), "variants[1].id"],
    [() => checkSlot({ variants: ["a", { id: "b", colour: 1 }] }), "variants[1].colour"],
    [() => checkSlot({ variants: Array.from({ length: 65 }, (_, i) => `v${i}`) }), "variants"],
    [() => checkSlot({}), "variants"],
    [S({ fallback: "z" }), "fallback"],
    [S({ seed: -1 }), "seed"],
    [S({ seed: 1.5 }), "seed"],
    [S({ seed: 2 ** 53 }), "seed"],
    [S({ seed: 10n }), "seed"],
    [S({ seed: NaN }), "seed"],
    [S({ noise: 0 }), "noise"],
    [S({ noise: NaN }), "noise"],
    [S({ priorVariance: -1 }), "priorVariance"],
    [S({ rewardTtlMs: Infinity }), "rewardTtlMs"],
    [S({ maxPending: 0 }), "maxPending"],
    [S({ maxPending: 10_001 }), "maxPending"],
    [() => checkSlot({ model: GOOD(), features: { bits: 5 } }), "features"],
    [() => checkSlot({ model: GOOD(), noise: 1 }), "features"],
    [() => checkSlot({ model: GOOD(), variants: ["a", "c"] }), "variants"],
    [() => checkSlot(5), "options"],
    [() => checkSlot([]), "options"],
  ];
  for (const [fn, field] of cases) names(fn, "INVALID_OPTION", field);
  // The README's example message, word for word.
  throws(S({ policy: { type: "ucb" } }), "INVALID_OPTION");
  assert.equal(throws(S({ policy: { type: "ucb" } }), "INVALID_OPTION").message,
    "option `policy.type` should be one of thompson, linucb, egreedy, greedy, but is `ucb`");
  assert.equal(throws(S({ policy: { type: "greedy", alpha: 1 } }), "INVALID_OPTION").message,
    "option `policy.alpha` does not apply to policy `greedy`");
  assert.equal(throws(() => checkSlot({ variants: ["a", "a"] }), "INVALID_OPTION").message, "option `variants[1].id` `a` is a duplicate");
  throws(S({ seed: 10n }), "INVALID_OPTION", "10n (a BigInt)");
  throws(S({ features: { bits: 30 } }), "INVALID_OPTION", "30");
  throws(S({ features: { allow: ["a"], interactions: [["a", "zz"]] } }), "INVALID_OPTION", "zz");
});

test("a variant's own features are checked as a context is, through interactions", () => {
  const V = (features, f = { allow: ["p", "q"] }) => () => checkSlot({ variants: [{ id: "a", features }, "b"], features: f });
  const field = "`variants[0].features`";
  // src/features bad_values_are_rejected_with_codes, as the slot reports them.
  throws(V({ p: { x: null } }), "INVALID_OPTION", field, "`action.p.x` must be a finite number");
  throws(V({ p: { x: NaN } }), "INVALID_OPTION", field, "`action.p.x` must be a finite number");
  throws(V({ p: { x: "z".repeat(300) } }), "INVALID_OPTION", field, "300 bytes long");
  throws(V({ p: { x: Array(300).fill("q") } }), "INVALID_OPTION", field, "more than 256 features");
  for (const bad of [{ p: { x: {} } }, { p: { x: [1] } }, { p: 3 }, [1], { p: { "": 1 } }, "x"]) {
    throws(V(bad), "INVALID_OPTION", field, "feature `action");
  }
  // Namespaces the allowlist drops are not validated (they only count for the version).
  assert.match(checkSlot({ variants: [{ id: "a", features: { pii: { bad: null, o: {} }, p: { x: 1 } } }, "b"], features: { allow: ["p"] } }).modelVersion, VERSION);
  // The expansion: 1 + 91 + 91 * 90 / 2 = 4187 terms with the constant, over 4096.
  const many = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, 1]));
  const cross = { allow: ["p"], interactions: [["p", "p"]] };
  throws(V({ p: many(91) }, cross), "INVALID_OPTION", field, "context has more than 4096 features (stopped at 4096)");
  assert.equal(checkSlot({ variants: [{ id: "a", features: { p: many(90) } }, "b"], features: cross }).variants[0].features.p.f89, 1);
  throws(V({ p: many(64), q: many(64) }, { allow: ["p", "q"], interactions: [["p", "q"]] }), "INVALID_OPTION", "stopped at 4096");
  throws(V({ p: { x: 1e200, y: 1e200 } }, cross), "INVALID_OPTION", field, "`interaction product` must be a finite number");
  // In a model the same checks are INVALID_MODEL.
  throws(M((m) => { m.variants[1].features = { variant: { tone: NaN } }; }), "INVALID_MODEL", "`variants[1].features`", "`action.variant.tone`");
  // Values JSON cannot hold, cycles and depth.
  throws(V({ p: { x: 1n } }), "INVALID_OPTION", field, "BigInt");
  const cyclic = { p: {} };
  cyclic.p.self = cyclic;
  throws(V(cyclic, { allow: ["q"] }), "INVALID_OPTION", field, "nested more than 32 levels");
  // What the spec keeps: the allowlisted namespaces, copied.
  const given = { p: { tone: "x", n: -0, tags: ["a"] }, other: { deep: [1, { k: null }] } };
  const s = checkSlot({ variants: [{ id: "a", features: given }, "b"], features: { allow: ["p"] } });
  assert.deepEqual(JSON.parse(JSON.stringify(s.variants[0].features)), { p: { tone: "x", n: 0, tags: ["a"] } });
  assert.notEqual(s.variants[0].features.p, given.p);
});

test("models: every bad field is named (src/model)", () => {
  const cases = [
    [M((m) => { m.format = 2; }), "format"],
    [M((m) => { delete m.format; }), "format"],
    [M((m) => { m.features.bits = 40; }), "features.bits"],
    [M((m) => { delete m.features; }), "features"],
    [M((m) => { m.variants[0].weights = { 99: 0.5 }; }), "variants[0].weights"],
    [M((m) => { m.variants[0].weights = [1, 2]; }), "variants[0].weights"],
    [M((m) => { m.variants[0].weights = { 3: "x" }; }), "variants[0].weights.3"],
    [M((m) => { m.variants[0].weights = Array(16).fill(NaN); }), "variants[0].weights[0]"],
    [M((m) => { m.variants[0].weights = 3; }), "variants[0].weights"],
    [M((m) => { m.variants[1].variance = -1; }), "variants[1].variance"],
    [M((m) => { m.variants[1].variance = Array(16).fill(1).fill(0, 5); }), "variants[1].variance[5]"],
    [M((m) => { m.variants[1].variance = "1"; }), "variants[1].variance"],
    [M((m) => { m.variants[1].id = "a"; }), "variants[1].id"],
    [M((m) => { delete m.variants[1].id; }), "variants[1].id"],
    [M((m) => { m.features.interactions = [["page", "nope"]]; }), "features.interactions[0]"],
    [M((m) => { m.noise = 0; }), "noise"],
    [M((m) => { m.variants.pop(); }), "variants"],
    [M((m) => { delete m.variants; }), "variants"],
    [M((m) => { m.extra = 1; }), "extra"],
    [M((m) => { m.variants[0].colour = 1; }), "variants[0].colour"],
    [M((m) => { m.version = "m1-0000000000000000"; }), "version"],
    [() => checkModel(5), "model"],
  ];
  for (const [fn, field] of cases) names(fn, "INVALID_MODEL", field);
  throws(M((m) => { m.variants.pop(); }), "INVALID_MODEL", "at least 2");
  throws(M((m) => { m.extra = 1; }), "INVALID_MODEL", "`extra` is not a known option");
  throws(M((m) => { m.variants[0].weights = { 99: 0.5 }; }), "INVALID_MODEL", "key `99` is not a slot in [0, 16)");
  throws(() => checkSlot({ model: { ...GOOD(), version: "m1-0000000000000000" } }), "INVALID_MODEL", "version");
  throws(() => checkSlot({ model: { ...GOOD(), variants: [{ id: "a" }, { id: "b", weights: [1, 2] }] } }), "INVALID_MODEL", "variants[1].weights");
});

test("models: the version hashes content, not form; a stated version must match", () => {
  const v = checkModel(GOOD()).version;
  assert.match(v, VERSION);
  assert.equal(checkModel({ ...GOOD(), version: v }).version, v);
  const changed = GOOD();
  changed.variants[0].weights[3] = 0.25;
  assert.notEqual(checkModel(changed).version, v);
  // Sparse and dense weights, one variance and a full array of it: the same content.
  const dense = GOOD();
  dense.variants[0].weights = Array.from({ length: 16 }, (_, i) => (i === 3 ? 0.5 : 0));
  dense.variants[1].variance = Array(16).fill(0.5);
  assert.equal(checkModel(dense).version, v);
  // A slot without a model has a version too, and the policy is not part of it.
  const a = checkSlot({ variants: ["a", "b"] }).modelVersion;
  assert.equal(checkSlot({ variants: ["a", "b"], policy: { type: "greedy" }, seed: 3 }).modelVersion, a);
  assert.notEqual(checkSlot({ variants: ["a", "c"] }).modelVersion, a);
  assert.notEqual(checkSlot({ variants: ["a", "b"], priorVariance: 2 }).modelVersion, a);
  // Lone surrogates read as U+FFFD, as they crossed into the core: these ids are one id.
  assert.equal(checkSlot({ variants: ["a\ud800", "b"] }).variants[0].id, "a\ufffd");
  throws(() => checkSlot({ variants: ["a\ud800", "a\udbff"] }), "INVALID_OPTION", "duplicate");
});

test("model versions equal the Rust core's (tests/fixtures/model-versions.json)", () => {
  const url = new URL("../fixtures/model-versions.json", import.meta.url);
  assert.ok(existsSync(url),
    "tests/fixtures/model-versions.json is missing: it holds model versions computed by the Rust core " +
    "(CompactModel::content_hash) for slot options; without it the TypeScript model version is unchecked");
  const { cases } = JSON.parse(readFileSync(url, "utf8"));
  assert.ok(Array.isArray(cases) && cases.length >= 8, "the fixture should list at least 8 cases");
  for (const c of cases) {
    assert.match(String(c.version), VERSION, `${c.name}: the fixture has no version`);
    assert.equal(checkSlot(c.options).modelVersion, c.version, c.name);
    if (c.options.model) assert.equal(checkSlot({ model: { ...c.options.model, version: c.version } }).modelVersion, c.version);
  }
  // Different settings, different versions (a namespace named "normalize" is not the flag).
  assert.equal(new Set(cases.map((c) => c.version)).size, cases.length, "two cases share a model version");
});

test("behaviour: bad options and events are refused naming the field (src/behavior)", () => {
  for (const [o, field] of [
    [{ maxAgeDays: 0 }, "maxAgeDays"],
    [{ maxAgeDays: 401 }, "maxAgeDays"],
    [{ maxEvents: 0 }, "maxEvents"],
    [{ maxBytes: 10 }, "maxBytes"],
    [{ sessionGapMinutes: 0.5 }, "sessionGapMinutes"],
    [{ types: ["view"] }, "types[0]"],
    [{ types: ["a b"] }, "types[0]"],
    [{ types: [3] }, "types[0]"],
    [{ types: Array.from({ length: 17 }, (_, i) => `t${i}`) }, "types"],
    [{ retain: 3 }, "retain"],
  ]) names(() => checkBehavior(o), "INVALID_OPTION", field);
  names(() => checkOpen({ behavior: { maxEvents: 0 } }), "INVALID_OPTION", "behavior.maxEvents");
  const spec = checkBehavior({ types: ["cart"] });
  const ev = (e) => () => checkEvent(e, spec);
  for (const [e, field] of [
    [{}, "type"],
    [{ type: 3 }, "type"],
    [{ type: "view", item: "" }, "item"],
    [{ type: "view", category: "x".repeat(65) }, "category"],
    [{ type: "view", category: 1n }, "category"],
    [{ type: "view", tags: "a" }, "tags"],
    [{ type: "view", tags: [1] }, "tags[0]"],
    [{ type: "view", tags: ["1", "2", "3", "4", "5", "6", "7", "8", "9"] }, "tags"],
    [{ type: "view", value: null }, "value"],
    [{ type: "view", value: NaN }, "value"],
    [{ type: "view", value: "3" }, "value"],
    [{ type: "view", value: Infinity }, "value"],
    [{ type: "view", when: 3 }, "when"],
    [[], "event"],
    [null, "type"],
  ]) names(ev(e), "INVALID_EVENT", field);
  throws(ev({ type: "hover" }), "UNKNOWN_EVENT_TYPE", "event type `hover` is not view, click, convert or a type declared in `types`");
  throws(ev({ type: "view", item: "x".repeat(65) }), "INVALID_EVENT", "should be 1 to 64 bytes, but is 65 bytes");
  // Repeated tags count once; a declared type is accepted.
  assert.deepEqual(checkEvent({ type: "cart", tags: ["a", "a", "a", "a", "a", "a", "a", "a", "a", "b"] }, spec).tags, ["a", "b"]);
});

const OK = () => ({ key: "k", variants: ["a", "b"] });
const E = (edit) => () => {
  const e = OK();
  edit(e);
  return checkExperiments([e]);
};

test("experiments: bad configurations are refused naming the field (tests/allocation.rs)", () => {
  const cases = [
    [() => checkExperiments({}), "experiments"],
    [() => checkExperiments("hero"), "experiments"],
    [() => checkExperiments([7]), "experiments[0]"],
    [() => checkExperiments(Array(257).fill(OK())), "experiments"],
    [E((e) => { e.weights = [0.6, 0.6]; }), "experiments[0].weights"],
    [E((e) => { e.weights = [0.5, 0.4]; }), "experiments[0].weights"],
    [E((e) => { e.weights = [1.5, -0.5]; }), "experiments[0].weights[1]"],
    [E((e) => { e.weights = [0.5, null]; }), "experiments[0].weights[1]"],
    [E((e) => { e.weights = [0.5, NaN]; }), "experiments[0].weights[1]"],
    [E((e) => { e.weights = [1]; }), "experiments[0].weights"],
    [E((e) => { e.colour = "red"; }), "experiments[0].colour"],
    [() => checkExperiments([OK(), OK()]), "experiments[1].key"],
    [E((e) => { delete e.key; }), "experiments[0].key"],
    [E((e) => { e.key = "a b"; }), "experiments[0].key"],
    [E((e) => { e.variants = ["a", "a"]; }), "experiments[0].variants[1]"],
    [E((e) => { e.variants = ["a"]; }), "experiments[0].variants"],
    [E((e) => { delete e.variants; }), "experiments[0].variants"],
    [E((e) => { e.variants = Array.from({ length: 33 }, (_, i) => `v${i}`); }), "experiments[0].variants"],
    [E((e) => { e.variants = ["a", "b c"]; }), "experiments[0].variants[1]"],
    [E((e) => { e.variants = ["a", 3]; }), "experiments[0].variants[1]"],
    [E((e) => { e.coverage = 1.5; }), "experiments[0].coverage"],
    [E((e) => { e.coverage = NaN; }), "experiments[0].coverage"],
    [E((e) => { e.coverage = null; }), "experiments[0].coverage"],
    [E((e) => { e.fallback = "z"; }), "experiments[0].fallback"],
    [E((e) => { e.hash = "md5"; }), "experiments[0].hash"],
    [E((e) => { e.seed = ""; }), "experiments[0].seed"],
    [E((e) => { e.seed = "a\0b"; }), "experiments[0].seed"],
    [E((e) => { e.holdout = { key: "h", fraction: 1 }; }), "experiments[0].holdout.fraction"],
    [E((e) => { e.holdout = { key: "h" }; }), "experiments[0].holdout.fraction"],
    [E((e) => { e.holdout = { fraction: 0.1 }; }), "experiments[0].holdout.key"],
    [E((e) => { e.holdout = { key: "h", fraction: 0.1, x: 1 }; }), "experiments[0].holdout.x"],
    [E((e) => { e.namespace = { name: "n", range: [0.5, 0.5] }; }), "experiments[0].namespace.range"],
    [E((e) => { e.namespace = { name: "n", range: [0.5] }; }), "experiments[0].namespace.range"],
    [E((e) => { e.namespace = { name: "n" }; }), "experiments[0].namespace.range"],
    [E((e) => { e.namespace = { range: [0, 1] }; }), "experiments[0].namespace.name"],
    [E((e) => { e.targeting = [{ attribute: "a" }]; }), "experiments[0].targeting[0]"],
    [E((e) => { e.targeting = [{ attribute: "a", equals: 1, exists: true }]; }), "experiments[0].targeting[0]"],
    [E((e) => { e.targeting = [{ attribute: "a", in: [] }]; }), "experiments[0].targeting[0].in"],
    [E((e) => { e.targeting = [{ attribute: "a", range: [5, 1] }]; }), "experiments[0].targeting[0].range"],
    [E((e) => { e.targeting = [{ attribute: "a", range: [null, null] }]; }), "experiments[0].targeting[0].range"],
    [E((e) => { e.targeting = [{ attribute: "a", equals: { x: 1 } }]; }), "experiments[0].targeting[0].equals"],
    [E((e) => { e.targeting = [{ attribute: "a", equals: "x".repeat(257) }]; }), "experiments[0].targeting[0].equals"],
    [E((e) => { e.targeting = [{ attribute: "a", in: [1, {}] }]; }), "experiments[0].targeting[0].in[1]"],
    [E((e) => { e.targeting = [{ equals: 1 }]; }), "experiments[0].targeting[0].attribute"],
    [E((e) => { e.targeting = Array(33).fill({ attribute: "a", exists: true }); }), "experiments[0].targeting"],
    [E((e) => { e.allocation = { type: "ucb" }; }), "experiments[0].allocation.type"],
    [E((e) => { e.allocation = {}; }), "experiments[0].allocation.type"],
    [E((e) => { e.allocation = { type: "weights", samples: 3 }; }), "experiments[0].allocation.samples"],
    [E((e) => { e.allocation = { type: "thompson", minProbability: 0.6 }; }), "experiments[0].allocation.minProbability"],
    [E((e) => { e.allocation = { type: "thompson", prior: { a: [-1, 3] } }; }), "experiments[0].allocation.prior.a"],
    [E((e) => { e.allocation = { type: "thompson", prior: { zz: [1, 3] } }; }), "experiments[0].allocation.prior.zz"],
    [E((e) => { e.allocation = { type: "thompson", samples: 0 }; }), "experiments[0].allocation.samples"],
    [E((e) => { e.allocation = { type: "thompson", rewardWindowMs: 0 }; }), "experiments[0].allocation.rewardWindowMs"],
    // Weights with a thompson allocation are a contradiction, not ignored.
    [E((e) => { e.weights = [0.5, 0.5]; e.allocation = { type: "thompson" }; }), "experiments[0].allocation.type"],
  ];
  for (const [fn, field] of cases) names(fn, "INVALID_EXPERIMENT", field);
  throws(E((e) => { e.weights = [0.5, 0.5, 0.5]; }), "INVALID_EXPERIMENT", "experiments[0].weights");
  throws(E((e) => { e.weights = [0.6, 0.6]; }), "INVALID_EXPERIMENT", "should sum to 1, but sum to 1.2");
  throws(E((e) => { e.allocation = { type: "thompson", minProbability: 0.6 }; }), "INVALID_EXPERIMENT", "should be in [0, 0.5], but is 0.6");
  throws(() => checkExperiments([{ ...OK(), variants: ["a", "b", "c"], allocation: { type: "thompson", minProbability: 0.4 } }]),
    "INVALID_EXPERIMENT", "[0, 0.333333]");
  // Overlapping ranges in one namespace name both experiments.
  throws(() => checkExperiments([
    { key: "one", variants: ["a", "b"], namespace: { name: "n", range: [0, 0.6] } },
    { key: "two", variants: ["a", "b"], namespace: { name: "n", range: [0.5, 1] } },
  ]), "INVALID_EXPERIMENT", "`experiments[1].namespace.range`", "`one`", "[0.5, 1) overlaps [0, 0.6)");
  // Disjoint ranges, and other namespaces, are fine; so are weights within rounding of 1.
  checkExperiments([
    { key: "one", variants: ["a", "b"], namespace: { name: "n", range: [0, 0.5] } },
    { key: "two", variants: ["a", "b"], namespace: { name: "n", range: [0.5, 1] } },
    { key: "three", variants: ["a", "b"], namespace: { name: "m", range: [0, 1] } },
    { key: "k", variants: ["a", "b", "c"], weights: [0.1, 0.2, 0.7] },
  ]);
});

test("targeting reads attributes strictly (tests/allocation.rs)", () => {
  const conditions = checkExperiments([{ key: "t", variants: ["a", "b"], targeting: [
    { attribute: "country", in: ["DE", "AT"] },
    { attribute: "behavior.sessions", range: [3, null] },
    { attribute: "plan", exists: false },
    { attribute: "beta", equals: true },
  ] }])[0].targeting;
  const all = (attrs) => conditions.every((c) => holds(c, attrs));
  const base = () => ({ country: "DE", behavior: { sessions: 3 }, beta: true });
  assert.ok(all(base()), "the minimum of a range is inside it");
  for (const [k, v] of [
    ["country", "FR"], ["country", null], ["country", ["DE"]], ["behavior", { sessions: 2.999 }],
    ["behavior", { sessions: "3" }], ["behavior", 3], ["plan", "pro"], ["beta", "true"], ["beta", 1],
    ["country", undefined], ["behavior", { sessions: NaN }], ["behavior", { sessions: Infinity }],
  ]) assert.ok(!all({ ...base(), [k]: v }), `${k} = ${String(v)} should not be targeted`);
  assert.ok(all({ ...base(), plan: null }), "`plan: null` is absent, so `exists: false` holds");
  assert.ok(all({ ...base(), plan: NaN }), "NaN read as null: absent");
  assert.ok(all({ ...base(), plan: () => 1 }), "a function is left out of JSON: absent");
  assert.ok(!all(undefined), "no attributes: every test but `exists: false` fails");
  const [range] = checkExperiments([{ key: "r", variants: ["a", "b"], targeting: [{ attribute: "n", range: [null, 10] }] }])[0].targeting;
  assert.ok(holds(range, { n: -1e300 }));
  assert.ok(!holds(range, { n: 10 }), "a range's maximum is outside it");
  // Only own enumerable data; getters and Proxy traps that throw make it missing, never an exception.
  const [exists] = checkExperiments([{ key: "e", variants: ["a", "b"], targeting: [{ attribute: "a.b", exists: true }] }])[0].targeting;
  const boom = () => { throw new Error("boom"); };
  assert.ok(holds(exists, { a: { b: 0 } }));
  assert.ok(!holds(exists, { a: Object.create({ b: 1 }) }), "inherited");
  assert.ok(!holds(exists, { a: Object.defineProperty({}, "b", { value: 1, enumerable: false }) }), "not enumerable");
  assert.ok(!holds(exists, { a: Object.defineProperty({}, "b", { get: boom, enumerable: true }) }));
  assert.ok(!holds(exists, { a: new Proxy({}, { getOwnPropertyDescriptor: boom, get: boom }) }));
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  assert.ok(!holds(exists, { a: revoked.proxy }));
  assert.ok(!holds(exists, new Proxy({}, { getOwnPropertyDescriptor: boom })));
  assert.ok(!holds(exists, { a: [{ b: 1 }] }), "arrays are not followed");
  assert.ok(holds(exists, { a: new Proxy({ b: 1 }, {}) }), "a transparent Proxy is read");
  const [proto] = checkExperiments([{ key: "p", variants: ["a", "b"], targeting: [{ attribute: "x.__proto__", exists: true }] }])[0].targeting;
  assert.ok(!holds(proto, { x: {} }), "__proto__ is not an own key");
  assert.ok(holds(proto, { x: JSON.parse('{"__proto__": 1}') }));
});

test("the calls' options: every bad field is named (src/engine, src/engine/explain.rs, the JS API tests)", () => {
  for (const r of [1.5, -0.1, NaN, Infinity, null]) {
    throws(() => checkReward({ decisionId: "d", reward: r, now: 1 }), "INVALID_REWARD", "reward must be a finite number in [0, 1], but is ");
  }
  for (const [fn, field] of [
    [() => checkReward({ decisionId: "d", reward: "1" }), "reward"],
    [() => checkReward({ reward: 1 }), "decisionId"],
    [() => checkReward({ decisionId: "d" }), "reward"],
    [() => checkReward({ decisionId: 3, reward: 1 }), "decisionId"],
    [() => checkReward({ decisionId: "d", reward: 1, extra: 1 }), "extra"],
    [() => checkReward({ decisionId: "d", reward: 1, now: NaN }), "now"],
    [() => checkReward({ decisionId: "d", reward: 1, now: null }), "now"],
    [() => checkActivate({}), "decisionId"],
    [() => checkActivate({ decisionId: "d", reward: 1 }), "reward"],
    [() => checkActivate({ decisionId: "d", now: NaN }), "now"],
    [() => checkActivate({ decisionId: "d", now: "1" }), "now"],
    [() => checkLearn({ variant: "a" }), "reward"],
    [() => checkLearn({ reward: 1 }), "variant"],
    [() => checkLearn({ variant: "a", reward: 1, now: 1 }), "now"],
    [() => checkLearn({ variant: "a", reward: 1, actions: {} }), "actions"],
    [() => checkRankShape({ seed: -1 }), "seed"],
    [() => checkRankShape({ seed: 2 ** 53 }), "seed"],
    [() => checkRankShape({ seed: 1.5 }), "seed"],
    [() => checkRankShape({ seed: "1" }), "seed"],
    [() => checkRankShape({ defer: 1 }), "defer"],
    [() => checkRankShape({ now: Infinity }), "now"],
    [() => checkRankShape({ actions: "x" }), "actions"],
    [() => checkRankShape({ contxt: {} }), "contxt"],
    [() => checkExplainShape({ top: 0 }), "top"],
    [() => checkExplainShape({ top: 65 }), "top"],
    [() => checkExplainShape({ top: 1.5 }), "top"],
    [() => checkExplainShape({ seed: 1 }), "seed"],
    [() => checkExplainShape({ variant: 3 }), "variant"],
    [() => checkExplainShape({ vairant: "a" }), "vairant"],
    [() => checkRankShape(5), "options"],
  ]) names(fn, "INVALID_OPTION", field);
  throws(() => checkLearn({ variant: "a", reward: 2 }), "INVALID_REWARD");
  throws(() => checkLearn({ variant: "a", reward: NaN }), "INVALID_REWARD");
  throws(() => checkRankShape({ seed: 2 ** 53 }), "INVALID_OPTION", "should be an integer in [0, 9007199254740991], but is 9007199254740992");
  // Per-call actions: one per variant when the count is known.
  throws(() => checkLearn({ variant: "a", reward: 1, actions: [{}] }, 2), "INVALID_CONTEXT", "`actions` should list 2 variants, but lists 1");
  throws(() => checkExplainShape({ actions: [{}] }, 2), "INVALID_CONTEXT");
  const huge = [];
  huge.length = 2 ** 32 - 1;
  throws(() => checkRankShape({ actions: huge }), "INVALID_CONTEXT", "should list at most 64 variants");
  // The context is not walked here.
  assert.equal(checkRankShape({ context: 5 }).context, 5);
});

test("open() options: every bad field is named, with the store's messages", () => {
  const cases = [
    [{ consent: "all" }, "consent"],
    [{ consent: null }, "consent"],
    [{ storag: null }, "storag"],
    [{ key: "a b" }, "key"],
    [{ key: "x".repeat(33) }, "key"],
    [{ key: 5 }, "key"],
    [{ defaultConsent: "everything" }, "defaultConsent"],
    [{ gpc: "sometimes" }, "gpc"],
    [{ behavior: { maxEvents: 0 } }, "behavior.maxEvents"],
    [{ behavior: 5 }, "behavior"],
    [{ storage: {} }, "storage"],
    [{ storage: "local" }, "storage"],
    [{ now: 5 }, "now"],
    [{ now: null }, "now"],
    [{ onError: "x" }, "onError"],
    [{ onExposure: {} }, "onExposure"],
    [{ unit: 5 }, "unit"],
    [{ unit: "" }, "unit"],
    [{ unit: "x".repeat(257) }, "unit"],
    [{ maxBytes: 63 }, "maxBytes"],
    [{ maxBytes: 1.5 }, "maxBytes"],
    [{ maxBytes: null }, "maxBytes"],
    [{ flushDelayMs: -1 }, "flushDelayMs"],
    [{ flushDelayMs: 60_001 }, "flushDelayMs"],
    [{ flushDelayMs: "5" }, "flushDelayMs"],
    [{ onFallback: () => {} }, "onFallback"], // load() only
  ];
  for (const [o, field] of cases) names(() => checkOpen(o), "INVALID_OPTION", field);
  names(() => checkOpen(null), "INVALID_OPTION", "options");
  names(() => checkOpen({ wasm: 5 }, true), "INVALID_OPTION", "wasm");
  names(() => checkOpen({ wasmFull: {} }, true), "INVALID_OPTION", "wasmFull");
  names(() => checkOpen({ onFallback: 1 }, true), "INVALID_OPTION", "onFallback");
  assert.equal(throws(() => checkOpen({ key: "a b" }), "INVALID_OPTION").message,
    "option `key` should be 1 to 32 letters, digits, `_` or `-`, but is `a b`");
  throws(() => checkOpen({ consent: "all" }), "INVALID_OPTION", "should be one of none, functional, personalization, but is `all`");
  for (const wasm of ["insitu_bg.wasm", new URL("https://cdn.example/x.wasm"), new Uint8Array(8), new ArrayBuffer(8), new Response(""), Promise.resolve(1)]) {
    assert.equal(checkOpen({ wasm }, true).wasm, wasm);
  }
  // null counts as absent where the store used `??`.
  assert.deepEqual([checkOpen({ key: null }).key, checkOpen({ gpc: null }).gpc, checkOpen({ unit: null }).unit], ["insitu", "honor", null]);
});

test("a throwing getter or Proxy trap is an error of the layer's code naming the field", () => {
  const boom = () => { throw new Error("boom"); };
  const getter = (o, key) => Object.defineProperty(o, key, { get: boom, enumerable: true });
  const e = throws(() => checkSlot(getter({ variants: ["a", "b"] }, "policy")), "INVALID_OPTION");
  assert.equal(e.message, "option `policy` could not be read: Error: boom");
  names(() => checkSlot({ variants: ["a", "b"], policy: getter({}, "type") }), "INVALID_OPTION", "policy.type");
  names(() => checkSlot({ variants: new Proxy(["a", "b"], { get: boom }) }), "INVALID_OPTION", "variants");
  names(() => checkSlot(new Proxy({}, { ownKeys: boom })), "INVALID_OPTION", "options");
  names(() => checkModel({ ...GOOD(), variants: [getter({}, "id"), { id: "b" }] }), "INVALID_MODEL", "variants[0].id");
  names(() => checkExperiments([getter(OK(), "weights")]), "INVALID_EXPERIMENT", "experiments[0].weights");
  names(() => checkEvent(getter({ type: "view" }, "tags"), checkBehavior()), "INVALID_EVENT", "tags");
  names(() => checkOpen({ storage: getter({}, "getItem") }), "INVALID_OPTION", "storage");
  names(() => checkSlot({ variants: [{ id: "a", features: { p: getter({}, "x") } }, "b"], features: { allow: ["p"] } }), "INVALID_OPTION", "variants[0].features");
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  names(() => checkSlot({ variants: ["a", "b"], policy: revoked.proxy }), "INVALID_OPTION", "policy");
  // `__proto__` and `constructor` are unknown keys like any other.
  names(() => checkSlot(JSON.parse('{"variants": ["a", "b"], "__proto__": {"seed": 1}}')), "INVALID_OPTION", "__proto__");
  names(() => checkSlot({ variants: ["a", "b"], constructor: 1 }), "INVALID_OPTION", "constructor");
  names(() => checkSlot({ variants: ["a", "b"], policy: { type: "__proto__" } }), "INVALID_OPTION", "policy.type");
  // Messages stay short whatever the caller's keys and values.
  const long = "k".repeat(1 << 20);
  for (const fn of [
    () => checkSlot({ variants: ["a", "b"], [long]: 1 }),
    () => checkSlot({ variants: [long, "b"] }),
    () => checkSlot({ variants: [{ id: "a", features: { p: { [long]: 1 } } }, "b"], features: { allow: ["p"] } }),
    () => checkModel({ ...GOOD(), variants: [{ id: "a", weights: { [`${"0".repeat(1 << 20)}3`]: "x" } }, { id: "b" }] }),
    () => checkEvent({ type: long }, checkBehavior()),
    () => checkExperiments([{ key: long, variants: ["a", "b"] }]),
  ]) {
    let e;
    try {
      fn();
    } catch (caught) {
      e = caught;
    }
    assert.ok(e instanceof InsituError && e.message.length < 300, `${e?.code}: ${e?.message.length} characters`);
  }
  // Inherited keys are not options.
  assert.equal(checkSlot(Object.create({ seed: 5 }, { variants: { value: ["a", "b"], enumerable: true } })).seed, null);
});

// --- seeded hostile fuzz ----------------------------------------------------

/** mulberry32: a small deterministic PRNG, floats in [0, 1). */
function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Proxies made here, and their targets (walked by the snapshot without running a trap). */
const targets = new WeakMap();
const proxy = (target, handler) => {
  const p = new Proxy(target, handler);
  targets.set(p, target);
  return p;
};
const thrown = [new Error("boom"), "a string", Symbol("thrown"), Object.defineProperty(new Error("x"), "name", { get() { throw new Error("inner"); } })];
const boomWith = (i) => () => { throw thrown[i % thrown.length]; };
const TRAPS = ["ownKeys", "getOwnPropertyDescriptor", "get", "has", "getPrototypeOf"];

function hostiles(r) {
  const HUGE = "x".repeat(1 << 20);
  const HUGE_SPARSE = [];
  HUGE_SPARSE.length = 2 ** 32 - 1;
  let DEEP = [];
  for (let i = 0; i < 10_000; i++) DEEP = [DEEP];
  const revocable = Proxy.revocable({}, {});
  revocable.revoke();
  const shared = [
    undefined, null, true, false, 0, -0, 1, -1, 0.5, 1.5, 2, 5, 2 ** 53, 2 ** 53 - 1, -(2 ** 31), 1e308, 5e-324, NaN, Infinity, -Infinity,
    "", "a", "b", "view", "cart", "thompson", "page", "v", "insitu/1", "\ud800", "é☕𝄞", " ", HUGE, "x".repeat(300), 10n, Symbol("s"),
    HUGE_SPARSE, DEEP, revocable.proxy, Promise.resolve(1), new Date(0), new Map([[1, 2]]), /re/, new Number(3), new String("x"),
    new Error("e"), { toJSON() { throw new Error("toJSON"); } },
  ];
  const fresh = [
    () => function f() {}, () => [], () => ["a", "b"], () => [, , "a"], () => ({}), () => Object.create(null), () => JSON.parse('{"__proto__": 1}'),
    () => ({ constructor: 1 }), () => Object.freeze({ a: [1] }), () => new Float64Array(4),
    () => Object.defineProperty({}, "a", { get: boomWith(Math.floor(r() * 4)), enumerable: true }),
    () => proxy(r() < 0.5 ? {} : [], { [TRAPS[Math.floor(r() * TRAPS.length)]]: boomWith(Math.floor(r() * 4)) }),
    () => proxy({ a: 1 }, {}),
  ];
  for (const v of shared) if (v !== null && typeof v === "object") pooled.add(v);
  return () => (r() < 0.6 ? shared[Math.floor(r() * shared.length)] : fresh[Math.floor(r() * fresh.length)]());
}

/** The shared hostile values: never mutated themselves. */
const pooled = new WeakSet();

/** A data property's value, without running a getter (undefined for an accessor). */
const valueOf = (o, k) => Object.getOwnPropertyDescriptor(o, k)?.value;

/** Every property reachable in a template through data properties (not into proxies): [parent, key] pairs. */
function slots(holder) {
  const out = [];
  const walk = (v, depth) => {
    if (depth > 8 || v === null || typeof v !== "object" || types.isProxy(v) || ArrayBuffer.isView(v) || pooled.has(v)) return;
    for (const k of Object.keys(v)) {
      out.push([v, k]);
      walk(valueOf(v, k), depth + 1);
    }
  };
  walk(holder, 0);
  return out;
}

const deepFreeze = (v, depth = 0) => {
  if (v !== null && typeof v === "object" && depth < 8 && !types.isProxy(v) && !ArrayBuffer.isView(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze(valueOf(v, k), depth + 1);
  }
  return v;
};

/** A key of 1 MB: messages name it clipped. */
const HUGE_KEY = "k".repeat(1 << 20);

/** Set `o[key]` as an own data property, whatever was there (an accessor, `__proto__`). */
const put = (o, key, value) => Object.defineProperty(o, key, { value, enumerable: true, configurable: true, writable: true });

/** A template with one to three hostile mutations anywhere in it. */
function mutate(template, r, hostile) {
  const holder = { root: template };
  for (let n = 1 + Math.floor(r() * 3); n > 0; n--) {
    const all = slots(holder);
    if (all.length === 0) break;
    const [parent, key] = all[Math.floor(r() * all.length)];
    if (Object.isFrozen(parent) || !Object.getOwnPropertyDescriptor(parent, key)?.configurable) continue;
    let v = valueOf(parent, key);
    if (pooled.has(v)) v = undefined; // replaced, not changed
    const op = r();
    if (op < 0.4) put(parent, key, hostile());
    else if (op < 0.5) delete parent[key];
    else if (op < 0.58 && v !== null && typeof v === "object" && !types.isProxy(v) && Object.isExtensible(v)) {
      const extra = ["extra", "__proto__", "constructor", "toString", "", HUGE_KEY][Math.floor(r() * 6)];
      put(v, extra, hostile());
    } else if (parent === holder && op < 0.72) {
      put(parent, key, hostile()); // the root itself is replaced, never made an accessor of the holder
    } else if (op < 0.66) {
      Object.defineProperty(parent, key, { get: boomWith(Math.floor(r() * 4)), enumerable: true, configurable: true });
    } else if (op < 0.72) {
      const x = hostile();
      Object.defineProperty(parent, key, { get: () => x, enumerable: true, configurable: true });
    } else if (op < 0.82 && v !== null && typeof v === "object") {
      const traps = Object.fromEntries(TRAPS.filter(() => r() < 0.3).map((t) => [t, boomWith(Math.floor(r() * 4))]));
      put(parent, key, proxy(v, traps));
    } else if (op < 0.88 && v !== null && typeof v === "object") {
      deepFreeze(v);
    } else if (op < 0.94 && v !== null && typeof v === "object" && !Array.isArray(v) && !types.isProxy(v)) {
      put(parent, key, Object.defineProperties(Object.create(null), Object.getOwnPropertyDescriptors(v)));
    } else if (Array.isArray(v) && !types.isProxy(v) && !Object.isFrozen(v)) {
      v.length = r() < 0.5 ? Math.min(v.length + 3, 2 ** 32 - 1) : 2 ** 32 - 1;
    } else put(parent, key, hostile());
  }
  return holder.root;
}

const ids = new WeakMap();
const symbolIds = new Map();
let nextId = 0;
const idOf = (v) => {
  const m = typeof v === "symbol" ? symbolIds : ids;
  if (!m.has(v)) m.set(v, ++nextId);
  return m.get(v);
};

/**
 * A structural snapshot of `v` that runs none of its code (no getter, no
 * trap): identities, prototypes, frozen state, own keys and descriptors,
 * primitives (-0 and NaN included). Bounded in depth. Also collects every
 * object met into `objects`.
 */
function snapshot(v, objects = new Set(), depth = 0, seen = new Set()) {
  switch (typeof v) {
    case "number":
      return ["n", Object.is(v, -0) ? "-0" : String(v)];
    case "string":
      return ["s", v];
    case "bigint":
      return ["b", String(v)];
    case "symbol":
      return ["y", idOf(v)];
    case "undefined":
    case "boolean":
      return [typeof v, String(v)];
  }
  if (v === null) return ["null"];
  objects.add(v);
  const id = idOf(v);
  if (seen.has(v) || depth > 40) return ["ref", id];
  seen.add(v);
  if (types.isProxy(v)) {
    const t = targets.get(v);
    return ["proxy", id, t === undefined ? null : snapshot(t, objects, depth + 1, seen)];
  }
  const keys = Reflect.ownKeys(v).map((k) => {
    const d = Object.getOwnPropertyDescriptor(v, k);
    const name = typeof k === "symbol" ? ["y", idOf(k)] : k;
    if ("value" in d) return [name, d.enumerable, d.writable, snapshot(d.value, objects, depth + 1, seen)];
    for (const f of [d.get, d.set]) if (f) objects.add(f);
    return [name, d.enumerable, "accessor", d.get && idOf(d.get), d.set && idOf(d.set)];
  });
  const proto = Object.getPrototypeOf(v);
  return ["o", id, proto === null ? null : idOf(proto), Object.isExtensible(v), Object.isFrozen(v), keys];
}

/** Assert nothing reachable from `out` is one of the caller's objects, but at paths `exempt` allows. */
function noReferences(out, objects, exempt, path = [], depth = 0) {
  if (out === null || (typeof out !== "object" && typeof out !== "function") || depth > 60) return;
  if (exempt(path)) return;
  assert.ok(!objects.has(out), `the result refers to an input object at ${path.join(".")}`);
  if (ArrayBuffer.isView(out)) return;
  for (const k of Object.keys(out)) noReferences(out[k], objects, exempt, [...path, k], depth + 1);
}

const never = () => false;
const HANDLES = ["now", "onError", "onExposure", "onFallback", "storage", "wasm", "wasmFull"];
const passedOn = (path) => path[0] === "context" || (path[0] === "actions" && path.length === 2);

test("seeded hostile fuzz: a spec or an InsituError, the input unchanged, no reference kept", (t) => {
  const r = prng(20261206);
  const hostile = hostiles(r);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const policy = () => pick([{ type: "thompson", scale: 0.5, samples: 10 }, { type: "linucb", alpha: 1 }, { type: "egreedy", epsilon: 0.2 }, { type: "greedy", minProbability: 0.1 }]);
  const model = () => ({
    format: 1, noise: 0.3,
    features: { bits: 4, allow: ["page", "variant"], interactions: [["page", "variant"]] },
    variants: [{ id: "a", weights: { 3: 0.5, 7: -1 } }, { id: "b", features: { variant: { tone: "urgent", n: 2 }, other: { x: [1, { y: null }] } }, variance: Array(16).fill(0.5), weights: Array(16).fill(0.1) }],
  });
  const behavior = checkBehavior({ types: ["cart"] });
  const conditions = checkExperiments([{ key: "t", variants: ["a", "b"], targeting: [
    { attribute: "country", in: ["DE", "AT", 3] }, { attribute: "behavior.sessions", range: [3, null] }, { attribute: "plan", exists: false },
    { attribute: "beta", equals: true }, { attribute: "a.b.c", range: [null, 10] }, { attribute: "s", equals: "x" }, { attribute: "plan", exists: true },
  ] }])[0].targeting;
  const targets = [
    ["slot", () => ({ variants: ["a", { id: "b", features: { v: { tone: "x", n: 2, tags: ["p"] }, pii: { e: "x" } } }], features: { bits: 5, allow: ["v", "page"], interactions: [["page", "v"]] }, policy: policy(), fallback: "b", seed: 3, noise: 0.5, priorVariance: 2, rewardTtlMs: 1000, maxPending: 5 }), checkSlot, never],
    ["slot with a model", () => ({ model: model(), policy: policy(), variants: ["a", "b"] }), checkSlot, never],
    ["model", model, (m) => checkModel(m), never],
    ["policy", policy, (p) => checkPolicy(p, 3), never],
    ["features", () => ({ bits: 7, allow: ["b", "a", "a"], interactions: [["a", "b"], ["b", "b"]], hashVersion: 1 }), (f) => checkFeatures(f), never],
    ["reward", () => ({ decisionId: "0123456789ab-1", reward: 0.5, now: 5 }), checkReward, never],
    ["activate", () => ({ decisionId: "0123456789ab-1", now: 5 }), checkActivate, never],
    ["rank", () => ({ context: { page: { x: 1 } }, actions: [{ v: {} }, {}], seed: 5, defer: true, now: 4 }), (o) => checkRankShape(o, 2), passedOn],
    ["learn", () => ({ context: { page: { x: 1 } }, actions: [{}, {}], variant: "a", reward: 1 }), (o) => checkLearn(o), passedOn],
    ["explain", () => ({ context: {}, variant: "a", top: 3 }), (o) => checkExplainShape(o), passedOn],
    ["behavior", () => ({ maxAgeDays: 10, maxEvents: 50, maxBytes: 1000, sessionGapMinutes: 5, types: ["cart", "signup"] }), (b) => checkBehavior(b), never],
    ["event", () => ({ type: "cart", item: "i1", category: "c", tags: ["a", "b", "a"], value: 2.5 }), (e) => checkEvent(e, behavior), never],
    ["experiments", () => [
      { key: "k", variants: ["a", "b", "c"], weights: [0.5, 0.25, 0.25], coverage: 0.8, fallback: "b", hash: "growthbook/2", seed: "s", holdout: { key: "h", fraction: 0.1 }, namespace: { name: "n", range: [0, 0.5] }, targeting: [{ attribute: "country", in: ["DE", "AT"] }, { attribute: "n", range: [3, null] }, { attribute: "plan", exists: false }, { attribute: "beta", equals: true }] },
      { key: "t", variants: ["x", "y"], allocation: { type: "thompson", minProbability: 0.1, samples: 100, rewardWindowMs: 5000, prior: { x: [1, 2] } }, namespace: { name: "n", range: [0.5, 1] } },
    ], checkExperiments, never],
    ["open", () => ({ key: "k", consent: "functional", defaultConsent: "none", gpc: "ignore", behavior: { maxEvents: 5 }, storage: { getItem() { return null; } }, now: () => 1, maxBytes: 1024, flushDelayMs: 5, onError() {}, unit: "u", onExposure() {} }), (o) => checkOpen(o), (p) => HANDLES.includes(p[0])],
    ["load", () => ({ key: "k", wasm: new Uint8Array(8), wasmFull: "full.wasm", onFallback() {}, storage: null }), (o) => checkOpen(o, true), (p) => HANDLES.includes(p[0])],
  ];
  const PER_TARGET = 1500;
  let cases = 0;
  let specs = 0;
  const codes = new Set();
  for (const [name, template, check, exempt] of targets) {
    // The valid template passes as it is.
    assert.doesNotThrow(() => check(template()), name);
    for (let i = 0; i < PER_TARGET; i++) {
      const input = r() < 0.05 ? hostile() : mutate(template(), r, hostile);
      const objects = new Set();
      const before = snapshot(input, objects);
      let out;
      try {
        out = check(input);
        specs++;
      } catch (e) {
        assert.ok(e instanceof InsituError, `${name}: threw ${e} (case ${i})`);
        assert.ok(CODES.includes(e.code), `${name}: code ${e.code}`);
        assert.equal(typeof e.message, "string");
        assert.ok(e.message.length < 1000, `${name}: a message of ${e.message.length} characters: ${e.message.slice(0, 200)}`);
        codes.add(e.code);
      }
      if (out !== undefined) noReferences(out, objects, exempt);
      assert.deepStrictEqual(snapshot(input), before, `${name}: the input changed (case ${i})`);
      cases++;
    }
  }
  // holds() never throws, whatever the attributes.
  const attrs = () => ({ country: "DE", behavior: { sessions: 3 }, beta: true, a: { b: { c: 5 } }, s: "x" });
  for (let i = 0; i < 3000; i++) {
    const input = r() < 0.05 ? hostile() : mutate(attrs(), r, hostile);
    const before = snapshot(input);
    for (const c of conditions) assert.equal(typeof holds(c, input), "boolean");
    assert.deepStrictEqual(snapshot(input), before, "holds changed its input");
    cases++;
  }
  assert.ok(cases >= 20_000, `${cases} cases`);
  assert.ok(specs > 1_000, `only ${specs} inputs were accepted: the mutations are too harsh to test the paths past the first check`);
  // Every code a validator may throw: the options', the model's, the calls', the events' and the experiments'.
  assert.deepEqual([...codes].sort(), ["INVALID_CONTEXT", "INVALID_EVENT", "INVALID_EXPERIMENT", "INVALID_MODEL", "INVALID_OPTION", "INVALID_REWARD", "UNKNOWN_EVENT_TYPE"]);
  t.diagnostic(`${cases} cases, ${specs} accepted`);
});
