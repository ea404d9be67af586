// The boundary's fast path (src/wasm/fast.js: options walked in JS, hashes
// cached, features written straight into wasm memory) must decide exactly as
// the JSON path does. Passing `actions` of all nulls forces the JSON path
// without changing the features, so two twin instances can be compared call
// by call, through learning.
//
// Cases found in review (throwing getters, memory growth inside a getter,
// lone surrogates, arrays with toJSON, polluted prototypes, 17-digit numbers)
// each have a test below.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Insitu } = require("../../pkg-node/insitu.js");

const K = 4;
const OPTS = {
  variants: ["a", "b", "c", "d"],
  features: { bits: 7, allow: ["page", "user", "ünï"], interactions: [["page", "user"], ["user", "user"]] },
  policy: { type: "linucb" },
  seed: 5,
};
const JSON_PATH = { actions: new Array(K).fill(null) };

/**
 * Two decisions of twin instances are the same decision: every field equal,
 * and the decision ids equal up to their first part, the engine's epoch,
 * which is fresh entropy per instance (so twins never accept each other's ids).
 */
function sameDecision(a, b, message) {
  const counter = (d) => ({ ...d, decisionId: d.decisionId === null ? null : d.decisionId.split("-")[1] });
  assert.match(String(a.decisionId), /^([0-9a-f]{12}-[0-9]+|null)$/);
  assert.deepEqual(counter(a), counter(b), message);
}

/** Small seeded generator (mulberry32), so failures reproduce. */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRINGS = ["", "x", "news", "é", "ünïcödé", "😀 emoji", "a".repeat(255), "tab\tand\"quote", "日本語"];

function value(r) {
  switch (Math.floor(r() * 9)) {
    case 0: return (r() - 0.5) * 1e6; // 17 significant digits, as often as not
    case 1: return r() < 0.5 ? -0 : 0;
    case 2: return r() < 0.5;
    case 3: return STRINGS[Math.floor(r() * STRINGS.length)];
    case 4: return Array.from({ length: Math.floor(r() * 4) }, () => STRINGS[Math.floor(r() * STRINGS.length)]);
    case 5: return undefined; // dropped, as JSON.stringify drops it
    case 6: return r() * 1e-300;
    default: return Math.round(r() * 100) / 10;
  }
}

function context(r) {
  const ctx = {};
  for (const ns of ["page", "user", "ünï", "secret"]) {
    if (r() < 0.2) continue;
    const feats = {};
    const n = Math.floor(r() * 7);
    for (let i = 0; i < n; i++) feats[`f${Math.floor(r() * 6)}${STRINGS[Math.floor(r() * 4)]}`] = value(r);
    // Not allowlisted: never read, so even a NaN there is fine on both paths.
    if (ns === "secret") feats.email = NaN;
    ctx[ns] = feats;
  }
  return ctx;
}

test("the fast path and the JSON path give identical decisions, through learning", () => {
  const fast = new Insitu(OPTS);
  const slow = new Insitu(OPTS);
  const r = rng(7);
  for (let t = 0; t < 600; t++) {
    const ctx = context(r);
    const a = fast.rank({ context: ctx, now: t });
    const b = slow.rank({ context: ctx, now: t, ...JSON_PATH });
    assert.equal(a.fallback, false, a.error && a.error.message);
    sameDecision(a, b, `step ${t}: ${JSON.stringify(ctx)}`);
    if (t % 3 === 0) {
      const reward = r() < 0.5 ? 1 : 0;
      fast.reward({ decisionId: a.decisionId, reward, now: t });
      slow.reward({ decisionId: b.decisionId, reward, now: t, extra: undefined });
    }
  }
  assert.deepEqual(fast.stats(), slow.stats());
});

test("values JSON would rewrite take the JSON path and decide the same", () => {
  const date = new Date(Date.UTC(2026, 10, 22));
  const cases = [
    [{ page: { when: date } }, { page: { when: date.toISOString() } }],
    [{ page: { n: new Number(3) } }, { page: { n: 3 } }],
    [{ page: Object.assign(Object.create(null), { a: 1 }) }, { page: { a: 1 } }],
  ];
  for (const [odd, plain] of cases) {
    const a = new Insitu(OPTS).rank({ context: odd, now: 0 });
    const b = new Insitu(OPTS).rank({ context: plain, now: 0 });
    assert.equal(a.fallback, false, a.error && a.error.message);
    sameDecision(a, b);
  }
});

test("the buffer view survives wasm memory growth", () => {
  const a = new Insitu(OPTS);
  const b = new Insitu(OPTS);
  const ctx = { page: { section: "news", price: 3 } };
  sameDecision(a.rank({ context: ctx, now: 0 }), b.rank({ context: ctx, now: 0, ...JSON_PATH }));
  // A wide learner allocates megabytes, which grows (and detaches) wasm memory.
  const big = Array.from({ length: 4 }, () => new Insitu({ variants: ["x", "y", "z"], features: { bits: 18 } }));
  const d = a.rank({ context: ctx, now: 1 });
  sameDecision(d, b.rank({ context: ctx, now: 1, ...JSON_PATH }));
  a.reward({ decisionId: d.decisionId, reward: 1, now: 2 });
  assert.equal(a.stats().variants[d.index].updates, 1);
  for (const s of big) s.free();
});

test("settling by id: another engine's ids and non-canonical ids are unknown", () => {
  const a = new Insitu({ ...OPTS, seed: 1 });
  const b = new Insitu({ ...OPTS, seed: 2 });
  const da = a.rank({ now: 0 });
  assert.match(da.decisionId, /^[0-9a-f]{12}-[1-9][0-9]*$/);
  const [prefix, counter] = da.decisionId.split("-");
  for (const id of [b.rank({ now: 0 }).decisionId, `${prefix}-0${counter}`, `${prefix}-${counter}.0`, `${prefix.toUpperCase()}-${counter}`]) {
    let code;
    try {
      a.reward({ decisionId: id, reward: 1, now: 1 });
    } catch (e) {
      code = e.code;
    }
    assert.equal(code, "UNKNOWN_DECISION", id);
  }
  a.reward({ decisionId: da.decisionId, reward: 1, now: 1 });
  assert.equal(a.stats().variants[da.index].updates, 1);
});

const slotPair = (opts = OPTS) => [new Insitu(opts), new Insitu(opts)];
const viaJson = (o) => ({ ...o, ...JSON_PATH });

test("a throwing getter or Proxy gets the fallback and leaves the instance working", () => {
  const slot = new Insitu(OPTS);
  const bad = [
    { get context() { throw new Error("boom"); } },
    { context: { page: { get x() { throw new Error("boom"); } } } },
    new Proxy({}, { ownKeys() { throw new Error("boom"); } }),
  ];
  for (const o of bad) {
    const d = slot.rank(o);
    assert.equal(d.fallback, true);
    assert.equal(d.error.code, "INVALID_OPTION");
  }
  const d = slot.rank({ context: { page: { x: 1 } }, now: 0 });
  assert.equal(d.fallback, false);
  assert.throws(() => slot.reward({ get decisionId() { throw new Error("boom"); }, reward: 1 }), { code: "INVALID_OPTION" });
  slot.reward({ decisionId: d.decisionId, reward: 1, now: 1 });
  assert.equal(slot.stats().variants[d.index].updates, 1);
});

test("wasm memory growing inside a getter does not reuse stale features", () => {
  const [a, b] = slotPair();
  let grown = [];
  const ctx = () => ({
    page: {
      a: 1,
      get b() {
        grown.push(new Insitu({ variants: ["x", "y"], features: { bits: 18 } }));
        return 2;
      },
    },
  });
  a.rank({ context: { page: { a: 5 } }, now: 0 });
  b.rank(viaJson({ context: { page: { a: 5 } }, now: 0 }));
  sameDecision(a.rank({ context: ctx(), now: 1 }), b.rank(viaJson({ context: ctx(), now: 1 })));
  for (const s of grown) s.free();
});

test("namespaces outside the allowlist are never serialised, on either path", () => {
  const cyclic = { x: 1 };
  cyclic.self = cyclic;
  const odd = [cyclic, { big: 10n }, { toJSON() { throw new Error("boom"); } }];
  let deep = {};
  for (let i = 0; i < 40; i++) deep = { deep };
  odd.push(deep);
  for (const secret of odd) {
    const [a, b] = slotPair();
    const da = a.rank({ context: { page: { x: 1 }, secret }, now: 0 });
    const db = b.rank(viaJson({ context: { page: { x: 1 }, secret }, now: 0 }));
    assert.equal(da.fallback, false, da.error && da.error.message);
    sameDecision(da, db);
  }
});

test("lone surrogates, arrays with toJSON and 17-digit numbers hash and read alike", () => {
  const tagged = ["a", "b"];
  tagged.toJSON = () => ["c"];
  const contexts = [
    { page: { "k\ud800": "v\udc00", s: "\ud800\ud800", t: "\ud800\u0001", e: "😀" } },
    { page: { tags: tagged } },
    { page: { x: 0.1 + 0.2, y: Math.PI * 1e-200, z: 1.2345678901234567e150, w: 5e-324 } },
  ];
  for (const context of contexts) {
    const [a, b] = slotPair();
    // Train on the context first, so a hashing difference would show in the scores.
    for (let t = 0; t < 5; t++) {
      const da = a.rank({ context, now: t, seed: t });
      const db = b.rank(viaJson({ context, now: t, seed: t }));
      sameDecision(da, db, JSON.stringify(context));
      a.reward({ decisionId: da.decisionId, reward: 1, now: t });
      b.reward({ decisionId: db.decisionId, reward: 1, now: t });
    }
  }
  // The largest double reads back exactly too (ranked only: its square overflows an update).
  const [x, y] = slotPair();
  const huge = { page: { z: 1.7976931348623157e308 } };
  sameDecision(x.rank({ context: huge, now: 0 }), y.rank(viaJson({ context: huge, now: 0 })));
  const opts = { ...OPTS, features: { allow: ["\ud800"] } };
  const [a, b] = slotPair(opts);
  const context = { "\ud800": { x: 2 } };
  sameDecision(a.rank({ context, now: 0 }), b.rank(viaJson({ context, now: 0 })));
});

test("only own properties are read, as JSON.stringify reads them", () => {
  const [a, b] = slotPair();
  try {
    Object.prototype.seed = 7;
    Object.prototype.polluted = 1;
    const da = a.rank({ context: { page: { x: 1 } }, now: 0 });
    const db = b.rank(viaJson({ context: { page: { x: 1 } }, now: 0 }));
    assert.notEqual(da.seed, 7);
    sameDecision(da, db);
  } finally {
    delete Object.prototype.seed;
    delete Object.prototype.polluted;
  }
});

test("seeded fuzz: random option objects decide or fail alike on both paths, and rank never throws", () => {
  const r = rng(2026);
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const strings = [...STRINGS, "x".repeat(300), "\ud800", "é".repeat(130), "", "page", "user"];
  const leaf = () =>
    pick([
      () => (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20),
      () => pick([NaN, Infinity, -Infinity, -0, 0, Number.MAX_VALUE, Number.MIN_VALUE, 2 ** 53, 2 ** 60]),
      () => pick(strings),
      () => r() < 0.5,
      () => null,
      () => undefined,
      () => Array.from({ length: Math.floor(r() * 4) }, () => (r() < 0.8 ? pick(strings) : leaf())),
      () => new Date(Math.floor(r() * 2e12)),
      () => ({ nested: r() }),
      () => () => 1,
      () => [1, 2],
    ])();
  const features = () => {
    const out = {};
    const n = Math.floor(r() * 6);
    for (let i = 0; i < n; i++) out[pick(["a", "b", "c", "", "k\ud800", "x".repeat(300)]) + (r() < 0.5 ? i : "")] = leaf();
    return out;
  };
  const context = () => {
    if (r() < 0.1) return leaf();
    const out = {};
    for (const ns of ["page", "user", "ünï", "other"]) {
      if (r() < 0.3) continue;
      out[ns] = r() < 0.9 ? features() : leaf();
    }
    return out;
  };
  const options = () => {
    if (r() < 0.05) return leaf();
    const o = {};
    if (r() < 0.9) o.context = context();
    if (r() < 0.2) o.seed = pick([0, 1, 2 ** 53 - 1, 2 ** 53, -1, 1.5, "1", NaN, 7]);
    if (r() < 0.2) o.now = pick([0, 1e12, NaN, -5, "1", Infinity]);
    if (r() < 0.1) o.defer = pick([true, false, 1, "yes"]);
    if (r() < 0.05) o[pick(["contxt", "extra", "Seed"])] = 1;
    return o;
  };
  const [fast, slow] = slotPair();
  let decided = 0;
  for (let t = 0; t < 1500; t++) {
    const o = options();
    const forced = o !== null && typeof o === "object" && !Array.isArray(o) && !(o instanceof Date) ? viaJson(o) : o;
    const a = fast.rank(o);
    const b = forced === o ? slow.rank(o) : slow.rank(forced);
    sameDecision(a, b, `case ${t}: ${String(JSON.stringify(o))}`);
    if (!a.fallback) {
      decided++;
      const now = o && typeof o.now === "number" && Number.isFinite(o.now) ? o.now : Date.now();
      if (o && o.defer === true) {
        fast.activate({ decisionId: a.decisionId, now });
        slow.activate({ decisionId: b.decisionId, now });
      }
      // Extreme values can make an update overflow: it is then refused
      // (NUMERICAL_ERROR) and changes nothing, the same way on both sides.
      const settle = (slot, id) => {
        try {
          slot.reward({ decisionId: id, reward: t % 2, now });
          return "ok";
        } catch (e) {
          return e.code;
        }
      };
      assert.equal(settle(fast, a.decisionId), settle(slow, b.decisionId), `case ${t}`);
    }
  }
  assert.ok(decided >= 150 && decided <= 1350, `a useful mix of valid and invalid cases (${decided} decided)`);
  assert.deepEqual(fast.stats(), slow.stats());
});

test("the hash cache is bounded: high-cardinality values evict it and decisions stay the same", () => {
  // More distinct values than the cache holds (16,384), so it is dropped and refilled.
  const [a, b] = slotPair();
  for (let i = 0; i < 20000; i++) {
    const context = { page: { user: `u${i}`, [`k${i % 50}`]: 1 } };
    const x = a.rank({ context, now: i, seed: i });
    const y = b.rank(viaJson({ context, now: i, seed: i }));
    if (x.variant !== y.variant || x.probability !== y.probability || x.scores.join() !== y.scores.join()) {
      sameDecision(x, y, `value ${i}`);
    }
  }
});
