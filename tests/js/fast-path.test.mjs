// The boundary's fast path (src/wasm/fast.js: options walked in JS, hashes
// cached, features written straight into wasm memory) must decide exactly as
// the JSON path does. Passing `actions` of all nulls forces the JSON path
// without changing the features, so two twin instances can be compared call
// by call, through learning.
//
// Numbers here have at most 15 significant digits and moderate exponents:
// the JSON path's number parser is exact only there (src/json.rs documents
// its few-ulp rounding beyond), while the fast path passes every f64 exactly.
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
    case 0: return Math.round((r() - 0.5) * 1e12) / 1e6;
    case 1: return r() < 0.5 ? -0 : 0;
    case 2: return r() < 0.5;
    case 3: return STRINGS[Math.floor(r() * STRINGS.length)];
    case 4: return Array.from({ length: Math.floor(r() * 4) }, () => STRINGS[Math.floor(r() * STRINGS.length)]);
    case 5: return undefined; // dropped, as JSON.stringify drops it
    case 6: return Math.round(r() * 1e6) / 1e15;
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
    assert.deepEqual(a, b, `step ${t}: ${JSON.stringify(ctx)}`);
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
    assert.deepEqual(a, b);
  }
});

test("the buffer view survives wasm memory growth", () => {
  const a = new Insitu(OPTS);
  const b = new Insitu(OPTS);
  const ctx = { page: { section: "news", price: 3 } };
  assert.deepEqual(a.rank({ context: ctx, now: 0 }), b.rank({ context: ctx, now: 0, ...JSON_PATH }));
  // A wide learner allocates megabytes, which grows (and detaches) wasm memory.
  const big = Array.from({ length: 4 }, () => new Insitu({ variants: ["x", "y", "z"], features: { bits: 18 } }));
  const d = a.rank({ context: ctx, now: 1 });
  assert.deepEqual(d, b.rank({ context: ctx, now: 1, ...JSON_PATH }));
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
