// JS API tests of `new Insitu(options)` against the built package (pkg/index.js
// on the full engine, pkg/insitu_full.wasm), and of the plain-data results.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { CODES, Insitu, InsituError, open, throwsCode, updates } from "./helpers.mjs";

const fixture = JSON.parse(readFileSync(new URL("../fixtures/determinism.json", import.meta.url)));

const OPTS = { variants: ["a", "b", "c"], features: { allow: ["page"] }, seed: 42 };

test("a decision has every documented field", () => {
  const slot = new Insitu(OPTS);
  const d = slot.rank({ context: { page: { section: "news", scroll: 0.5 } } });
  assert.ok(["a", "b", "c"].includes(d.variant));
  assert.equal(d.variant, ["a", "b", "c"][d.index]);
  assert.ok(d.probability > 0 && d.probability <= 1);
  assert.equal(d.pmf.length, 3);
  assert.ok(Math.abs(d.pmf.reduce((x, y) => x + y, 0) - 1) < 1e-12);
  assert.equal(d.probability, d.pmf[d.index]);
  assert.equal(d.scores.length, 3);
  assert.equal(typeof d.decisionId, "string");
  assert.match(d.decisionId, /^[0-9a-f]{12}-[1-9][0-9]*$/);
  assert.ok(Number.isSafeInteger(d.seed));
  assert.match(d.modelVersion, /^m1-[0-9a-f]{16}$/);
  assert.equal(d.modelVersion, slot.modelVersion);
  assert.equal(d.policy, "linucb");
  assert.equal(slot.policy, "linucb");
  assert.deepEqual(slot.variants, ["a", "b", "c"]);
  assert.equal(d.fallback, false);
  assert.equal("error" in d, false);
  slot.close();
});

test("errors are InsituError objects with a stable code from CODES", () => {
  const errors = JSON.parse(readFileSync(new URL("../../schema/errors.json", import.meta.url)));
  assert.deepEqual([...CODES], errors.codes.map((c) => c.code), "CODES is the list of schema/errors.json, in order");
  let e = throwsCode(() => new Insitu({ variants: ["a", "b"], policy: { type: "ucb" } }), "INVALID_OPTION");
  assert.match(e.message, /policy\.type/);
  assert.ok(e instanceof InsituError && e instanceof Error);
  e = throwsCode(() => new Insitu({ variants: ["a", "b"], polcy: {} }), "INVALID_OPTION");
  assert.match(e.message, /polcy/);
  throwsCode(() => new Insitu({ variants: ["a"] }), "INVALID_OPTION");
  throwsCode(() => new Insitu({ variants: ["a", "a"] }), "INVALID_OPTION");
  throwsCode(() => new Insitu({ variants: ["a", "b"], features: { bits: 40 } }), "INVALID_OPTION");
  throwsCode(() => new Insitu({ variants: ["a", "b"], seed: -1 }), "INVALID_OPTION");
  throwsCode(() => new Insitu(), "INVALID_OPTION");
  throwsCode(() => new Insitu("a,b"), "INVALID_OPTION");
  const cyclic = { variants: ["a", "b"] };
  cyclic.self = cyclic;
  throwsCode(() => new Insitu(cyclic), "INVALID_OPTION");
  throwsCode(() => new Insitu({ variants: ["a", "b"], seed: 10n }), "INVALID_OPTION");
  throwsCode(() => new Insitu({ variants: ["a", "b"], seed: Symbol("s") }), "INVALID_OPTION");
  // What no JSON could hold is refused with a code, not a TypeError.
  for (const bad of [() => 1, Symbol("s"), 10n, null, [["a", "b"]]]) throwsCode(() => new Insitu(bad), "INVALID_OPTION");
  throwsCode(() => new Insitu({ variants: ["a", "b"], features: { allow: [Symbol("ns")] } }), "INVALID_OPTION");
});

test("reward: bad, unknown, duplicate and expired ids get codes and change nothing", () => {
  const slot = new Insitu({ ...OPTS, rewardTtlMs: 1000 });
  const d = slot.rank({ context: { page: { section: "news" } }, now: 0 });
  for (const r of [1.5, -0.1, NaN, Infinity, "1", null]) {
    throwsCode(() => slot.reward({ decisionId: d.decisionId, reward: r, now: 1 }), r === "1" ? "INVALID_OPTION" : "INVALID_REWARD");
  }
  throwsCode(() => slot.reward({ decisionId: "nope", reward: 1, now: 1 }), "UNKNOWN_DECISION");
  throwsCode(() => slot.reward({ reward: 1 }), "INVALID_OPTION");
  throwsCode(() => slot.reward({ decisionId: d.decisionId, reward: 1, extra: 1 }), "INVALID_OPTION");
  throwsCode(() => slot.reward(), "INVALID_OPTION");
  assert.equal(updates(slot), 0);
  assert.equal(slot.stats().pending, 1);
  slot.reward({ decisionId: d.decisionId, reward: 1, now: 10 });
  assert.equal(updates(slot), 1);
  assert.equal(slot.stats().pending, 0);
  throwsCode(() => slot.reward({ decisionId: d.decisionId, reward: 1, now: 11 }), "DUPLICATE_REWARD");
  const late = slot.rank({ now: 0 });
  throwsCode(() => slot.reward({ decisionId: late.decisionId, reward: 1, now: 5000 }), "DECISION_EXPIRED");
  assert.equal(updates(slot), 1);
});

test("settling by id: another slot's ids and non-canonical ids are unknown", () => {
  // The epoch is fresh entropy; (5/8)^12 = 0.36% of epochs are all digits, which
  // capitals leave unchanged, so take an engine whose epoch shows a letter.
  let a, da;
  for (let i = 0; i < 64 && !/[a-f]/.test(da?.decisionId ?? ""); i++) {
    a?.close();
    a = new Insitu({ ...OPTS, seed: 1 });
    da = a.rank({ now: 0 });
  }
  const b = new Insitu({ ...OPTS, seed: 1 });
  const [prefix, counter] = da.decisionId.split("-");
  assert.match(prefix, /[a-f]/);
  for (const id of [b.rank({ now: 0 }).decisionId, `${prefix}-0${counter}`, `${prefix}-${counter}.0`, `${prefix.toUpperCase()}-${counter}`, `0${prefix}-${counter}`, ` ${da.decisionId}`]) {
    throwsCode(() => a.reward({ decisionId: id, reward: 1, now: 1 }), "UNKNOWN_DECISION");
  }
  a.reward({ decisionId: da.decisionId, reward: 1, now: 1 });
  assert.equal(a.stats().variants[da.index].updates, 1);
});

test("deferred decisions must be activated before the reward counts", () => {
  const slot = new Insitu(OPTS);
  const d = slot.rank({ defer: true, now: 0 });
  throwsCode(() => slot.reward({ decisionId: d.decisionId, reward: 1, now: 1 }), "NOT_ACTIVATED");
  assert.equal(updates(slot), 0);
  slot.activate({ decisionId: d.decisionId, now: 2 });
  slot.reward({ decisionId: d.decisionId, reward: 1, now: 3 });
  assert.equal(updates(slot), 1);
  throwsCode(() => slot.activate({ decisionId: "missing" }), "UNKNOWN_DECISION");
});

test("rank never throws: bad input returns the fallback variant and the error", () => {
  const slot = new Insitu({ ...OPTS, fallback: "c" });
  for (const bad of [
    { context: { page: { price: NaN } } },
    { context: { page: { title: "x".repeat(1000) } } },
    { context: { page: { nested: { no: 1 } } } },
    { context: { page: { price: 1 } }, unknown: true },
    { context: [] },
    { actions: [{}, {}] },
    { seed: 2 ** 60 },
    { now: NaN },
    "context",
    42,
  ]) {
    const d = slot.rank(bad);
    assert.equal(d.variant, "c");
    assert.equal(d.index, 2);
    assert.equal(d.fallback, true);
    assert.equal(d.probability, 1);
    assert.deepEqual(d.pmf, [0, 0, 1]);
    assert.deepEqual(d.scores, []);
    assert.equal(d.decisionId, null);
    assert.equal(d.seed, null);
    assert.ok(d.error instanceof InsituError, "error is an InsituError");
    assert.ok(CODES.includes(d.error.code), d.error.code);
  }
  assert.equal(slot.rank({ context: { page: { price: NaN } } }).error.code, "NON_FINITE_FEATURE");
  assert.equal(slot.rank({ context: { page: { t: "x".repeat(1000) } } }).error.code, "STRING_TOO_LONG");
  assert.equal(slot.rank({ context: { page: { nested: { no: 1 } } } }).error.code, "INVALID_CONTEXT");
  assert.equal(slot.rank({ seed: 2 ** 60 }).error.code, "INVALID_OPTION");
  const many = {};
  for (let i = 0; i < 300; i++) many[`f${i}`] = i;
  assert.equal(slot.rank({ context: { page: many } }).error.code, "TOO_MANY_FEATURES");
  assert.equal(slot.stats().pending, 0, "failed ranks leave nothing pending");
  // Non-allowlisted namespaces are dropped before they are read: no error.
  assert.equal(slot.rank({ context: { secret: { email: NaN } } }).fallback, false);
});

test("the same seed gives the same decisions as the native core (shared fixture)", () => {
  const slot = new Insitu(fixture.options);
  assert.ok(fixture.steps.length > 10);
  for (const step of fixture.steps) {
    const d = slot.rank(step.rank);
    assert.equal(d.variant, step.variant);
    assert.equal(d.probability, step.probability);
    assert.equal(d.seed, step.seed);
    slot.reward({ decisionId: d.decisionId, reward: step.reward, now: step.now });
  }
});

test("normalized features: one reward moves the score by the same amount whatever the context's scale", () => {
  // Prior N(0, I), noise 0.25, one reward of 1 on x: the posterior mean score of x is
  // |x|² / (0.25 + |x|²). Normalized, |x| = 1 for every context (0.8); raw, the bias and
  // a value n give |x|² = 1 + n².
  const score = (normalize, n) => {
    const s = new Insitu({ variants: ["a", "b"], features: { allow: ["page"], bits: 18, normalize }, seed: 1 });
    const context = { page: { n } };
    s.learn({ context, variant: "a", reward: 1 });
    return s.explain({ context, variant: "a" }).scores[0];
  };
  for (const n of [0.5, 3, 30]) {
    assert.ok(Math.abs(score(true, n) - 0.8) < 1e-12, `normalized, n = ${n}: ${score(true, n)}`);
    const raw = 1 + n * n;
    assert.ok(Math.abs(score(false, n) - raw / (0.25 + raw)) < 1e-12, `raw, n = ${n}: ${score(false, n)}`);
  }
  // explain: every term listed (no collision at 18 bits), so nothing is left over, and each
  // weight is the slot's mean times 1/|x|: here the posterior mean is 0.8·x/|x|, so the weight
  // of a term of value v is 0.8·v/|x|² and its contribution 0.8·v²/|x|².
  for (const normalize of [true, false]) {
    const s = new Insitu({ variants: ["a", "b"], features: { allow: ["page"], bits: 18, normalize }, seed: 1 });
    const context = { page: { n: 3, m: -2 } };
    s.learn({ context, variant: "a", reward: 1 });
    const x = s.explain({ context, variant: "a", top: 64 });
    const n2 = 1 + 9 + 4;
    assert.ok(Math.abs(x.other) < 1e-12, `normalize ${normalize}: other ${x.other}`);
    const score = normalize ? 0.8 : n2 / (0.25 + n2);
    assert.ok(Math.abs(x.score - score) < 1e-12);
    assert.ok(Math.abs(x.bias - score / n2) < 1e-12, `normalize ${normalize}: bias ${x.bias}`);
    const n = x.contributions.find((c) => c.feature === "page.n");
    assert.equal(n.value, 3, "the page's value, not the scaled one");
    assert.ok(Math.abs(n.contribution - (score * 9) / n2) < 1e-12, `normalize ${normalize}: ${JSON.stringify(n)}`);
    assert.ok(Math.abs(n.weight * n.value - n.contribution) < 1e-15);
  }
  // The default normalizes.
  const d = new Insitu({ variants: ["a", "b"], features: { allow: ["page"] }, seed: 1 });
  d.learn({ context: { page: { n: 30 } }, variant: "a", reward: 1 });
  assert.ok(Math.abs(d.explain({ context: { page: { n: 30 } }, variant: "a" }).scores[0] - 0.8) < 1e-12);
});

test("a decision replays from its seed", () => {
  const a = new Insitu(OPTS);
  const b = new Insitu(OPTS);
  const ctx = { context: { page: { section: "tech" } }, now: 0 };
  const first = a.rank(ctx);
  const replay = b.rank({ ...ctx, seed: first.seed });
  assert.deepEqual(
    { v: replay.variant, p: replay.pmf, s: replay.seed },
    { v: first.variant, p: first.pmf, s: first.seed },
  );
});

test("learn() takes logged data, including variants the engine did not pick", () => {
  const slot = new Insitu({ ...OPTS, policy: { type: "greedy", minProbability: 0 } });
  for (let i = 0; i < 50; i++) slot.learn({ context: { page: { section: "x" } }, variant: "c", reward: 1 });
  assert.equal(slot.rank({ context: { page: { section: "x" } } }).variant, "c");
  const before = JSON.stringify(slot.stats());
  throwsCode(() => slot.learn({ variant: "zzz", reward: 1 }), "UNKNOWN_VARIANT");
  throwsCode(() => slot.learn({ variant: "a", reward: 2 }), "INVALID_REWARD");
  throwsCode(() => slot.learn({ variant: "a", reward: NaN }), "INVALID_REWARD");
  throwsCode(() => slot.learn({ variant: "a" }), "INVALID_OPTION");
  throwsCode(() => slot.learn({ variant: "a", reward: 1, context: { page: { x: Infinity } } }), "NON_FINITE_FEATURE");
  throwsCode(() => slot.learn({ variant: "a", reward: 1, actions: [{}] }), "INVALID_CONTEXT");
  assert.equal(JSON.stringify(slot.stats()), before, "failed learn() calls changed nothing");
});

test("activate: bad input gets a code and leaves the decision deferred", () => {
  const slot = new Insitu(OPTS);
  const d = slot.rank({ defer: true, now: 0 });
  throwsCode(() => slot.activate({}), "INVALID_OPTION");
  throwsCode(() => slot.activate({ decisionId: d.decisionId, reward: 1 }), "INVALID_OPTION");
  throwsCode(() => slot.activate({ decisionId: d.decisionId + "0" }), "UNKNOWN_DECISION");
  throwsCode(() => slot.activate({ decisionId: d.decisionId, now: NaN }), "INVALID_OPTION");
  throwsCode(() => slot.reward({ decisionId: d.decisionId, reward: 1, now: 1 }), "NOT_ACTIVATED");
  assert.equal(slot.stats().pending, 1);
});

test("a shipped model: its version is a content hash, its prior decides, bad fields are named", () => {
  const model = {
    format: 1,
    features: { bits: 4, allow: ["page"] },
    variants: [
      { id: "a", variance: 0.01 },
      { id: "b", weights: new Array(16).fill(0.3), variance: 0.01 },
    ],
  };
  const slot = new Insitu({ model, seed: 9 });
  assert.deepEqual(slot.variants, ["a", "b"]);
  assert.match(slot.modelVersion, /^m1-[0-9a-f]{16}$/);
  const d = slot.rank({ context: { page: { section: "x" } } });
  assert.equal(d.variant, "b");
  assert.ok(d.pmf[1] >= 0.97);
  // The same content stated with its version loads; a different stated version is refused.
  assert.equal(new Insitu({ model: { ...model, version: slot.modelVersion } }).modelVersion, slot.modelVersion);
  let e = throwsCode(() => new Insitu({ model: { ...model, version: "m1-0000000000000000" } }), "INVALID_MODEL");
  assert.match(e.message, /version/);
  e = throwsCode(
    () => new Insitu({ model: { ...model, variants: [{ id: "a" }, { id: "b", weights: [1, 2] }] } }),
    "INVALID_MODEL",
  );
  assert.match(e.message, /variants\[1\]\.weights/);
  throwsCode(() => new Insitu({ model, features: { bits: 5 } }), "INVALID_OPTION");
});

for (const slotsPerFeature of [1, 2]) test(`explain (${slotsPerFeature} slot(s) per feature): the learned feature tops the list, and the terms add up to the decision's score`, () => {
  const slot = new Insitu({ variants: ["a", "b"], features: { allow: ["page"], slotsPerFeature }, seed: 3 });
  for (let i = 0; i < 100; i++) {
    const section = i % 2 ? "news" : "sports";
    slot.learn({ context: { page: { section } }, variant: "b", reward: section === "sports" ? 1 : 0 });
    slot.learn({ context: { page: { section } }, variant: "a", reward: 0.5 });
  }
  // Not allowlisted: dropped before it reaches the core, as for rank.
  const context = { page: { section: "sports", price: 12.5 }, pii: { email: "a@b.c" } };
  const d = slot.rank({ context });
  const x = slot.explain({ context, variant: d.variant, top: 64 });
  assert.equal(x.variant, d.variant);
  assert.deepEqual(x.scores, d.scores);
  assert.equal(x.best, "b");
  assert.equal(x.updates, 100);
  assert.deepEqual(x.contributions.map((c) => c.feature).sort(), ["page.price", "page.section=sports"]);
  const top = x.contributions[0];
  assert.equal(top.feature, "page.section=sports");
  assert.equal(top.contribution, top.value * top.weight);
  const sum = x.bias + x.contributions.reduce((s, c) => s + c.contribution, 0) + x.other;
  assert.ok(Math.abs(sum - x.score) < 1e-12, `${sum} vs ${x.score}`);
  assert.equal(x.sd.length, 2);
  // Explaining draws no seed and records no decision.
  const before = slot.stats().pending;
  slot.explain({ context });
  assert.equal(slot.stats().pending, before);
  slot.close();
});

test("explain changes nothing: a slot that explains between decisions decides as its twin that does not", () => {
  const opts = { variants: ["a", "b", "c"], features: { allow: ["page"] }, seed: 9, policy: { type: "thompson" } };
  const [plain, explained] = [new Insitu(opts), new Insitu(opts)];
  const seen = (d) => [d.variant, d.probability, d.seed, d.decisionId.split("-")[1], d.pmf];
  for (let t = 0; t < 40; t++) {
    const context = { page: { section: ["news", "sports", "tech"][t % 3], scroll: (t % 5) / 5 } };
    explained.explain({ context });
    explained.explain({ context, variant: "c", top: 1 });
    const [a, b] = [plain.rank({ context, now: t }), explained.rank({ context, now: t })];
    assert.deepEqual(seen(b), seen(a), `decision ${t}`);
    const reward = a.variant === "b" ? 1 : 0;
    plain.reward({ decisionId: a.decisionId, reward, now: t + 0.5 });
    explained.reward({ decisionId: b.decisionId, reward, now: t + 0.5 });
  }
  assert.deepEqual(explained.stats(), plain.stats());
  plain.close();
  explained.close();
});

test("explain: bad options throw Errors with codes", () => {
  const slot = new Insitu(OPTS);
  throwsCode(() => slot.explain({ variant: "zz" }), "UNKNOWN_VARIANT");
  throwsCode(() => slot.explain({ top: 0 }), "INVALID_OPTION");
  throwsCode(() => slot.explain({ top: 65 }), "INVALID_OPTION");
  throwsCode(() => slot.explain({ vairant: "a" }), "INVALID_OPTION");
  throwsCode(() => slot.explain({ context: { page: { x: NaN } } }), "NON_FINITE_FEATURE");
  throwsCode(() => slot.explain({ context: { page: { x: {} } } }), "INVALID_CONTEXT");
  throwsCode(() => slot.explain({ actions: [{}] }), "INVALID_CONTEXT");
  // No options: the best variant, from the bias alone.
  const x = slot.explain();
  assert.deepEqual(x.contributions, []);
  assert.equal(x.score, x.bias);
  slot.close();
});

test("close() frees the slot: later calls fail with a code and rank serves the fallback", () => {
  const slot = new Insitu({ ...OPTS, fallback: "b" });
  const d = slot.rank({ now: 0 });
  slot.close();
  const after = slot.rank({ now: 1 });
  assert.equal(after.fallback, true);
  assert.equal(after.variant, "b");
  assert.ok(after.error instanceof InsituError);
  for (const call of [
    () => slot.reward({ decisionId: d.decisionId, reward: 1, now: 1 }),
    () => slot.stats(),
    () => slot.close(),
  ]) {
    assert.throws(call, (e) => e instanceof InsituError && CODES.includes(e.code));
  }
  // Other slots on the same engine are unaffected.
  const other = new Insitu(OPTS);
  assert.equal(other.rank({ now: 0 }).fallback, false);
});

test("plain-data results: every kind of field, non-ASCII keys and strings, and `__proto__` as an own key", () => {
  const t0 = Date.UTC(2026, 10, 22, 9, 30);
  const clock = { t: t0 };
  const site = open({ storage: null, now: () => clock.t, behavior: { types: ["__proto__", "signup"] } });
  site.track({ type: "__proto__", category: "chaussures-é" });
  site.track({ type: "signup", category: "__proto__" });
  site.track({ type: "view", category: "🎉 party" });
  const counts = site.audit().events.byType;
  assert.equal(Object.getPrototypeOf(counts), Object.prototype);
  assert.deepEqual(Object.entries(counts).sort(), [["__proto__", 1], ["signup", 1], ["view", 1]]);
  assert.equal(Object.prototype.hasOwnProperty.call(counts, "__proto__"), true);
  clock.t = t0 + 60_000;
  const f = site.features();
  const local = new Date(clock.t);
  assert.deepEqual(f, {
    hour: String(local.getHours()),
    weekday: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"][local.getDay()],
    sessions: Math.log1p(1),
    sessionDepth: Math.log1p(3),
    daysSinceFirst: 60_000 / 86_400_000,
    "type:__proto__": Math.log1p(1),
    "type:signup": Math.log1p(1),
    "type:view": Math.log1p(1),
    "cat:__proto__": Math.log1p(1),
    "cat:__proto__:recent": f["cat:__proto__:recent"],
    "cat:chaussures-é": Math.log1p(1),
    "cat:chaussures-é:recent": f["cat:chaussures-é:recent"],
    "cat:🎉 party": Math.log1p(1),
    "cat:🎉 party:recent": f["cat:🎉 party:recent"],
  });
  assert.ok(f["cat:🎉 party:recent"] > 0.99 && f["cat:🎉 party:recent"] < 1);
  // Numbers, strings and an array.
  assert.deepEqual(site.audit().retention, {
    maxAgeDays: 30, maxEvents: 500, maxBytes: 16384, sessionGapMinutes: 30, types: ["__proto__", "signup"],
  });
  site.close();
  // Booleans, nested objects and arrays of objects.
  const slot = new Insitu({ variants: ["ä", "b"], features: { allow: ["page"] }, seed: 7 });
  const x = slot.explain({ context: { page: { "ß": 1 } }, variant: "ä" });
  assert.equal(x.variant, "ä");
  assert.equal(typeof x.other, "number");
  assert.equal(typeof x.best, "string");
  assert.ok(x.contributions.every((c) => typeof c.shared === "boolean" && typeof c.feature === "string"));
  assert.ok(x.contributions.some((c) => c.feature === "page.ß"), x.contributions.map((c) => c.feature).join());
  assert.deepEqual(slot.stats().variants, [{ id: "ä", updates: 0 }, { id: "b", updates: 0 }]);
  // A byte array: the snapshot sync() returns, read back by restore().
  const r = slot.sync(null, { slot: "hero", now: t0 });
  assert.ok(r.bytes instanceof Uint8Array);
  assert.equal(slot.commit(), true);
  const again = new Insitu({ variants: ["ä", "b"], features: { allow: ["page"] }, seed: 7 });
  assert.deepEqual(again.restore(r.bytes, { slot: "hero", now: t0 }), {
    modelChanged: false, merged: true, replayed: 0, duplicates: 0, rejected: 0, adopted: 0,
  });
});
