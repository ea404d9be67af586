// The boundary between the caller's objects and the core: contexts are read,
// checked and hashed in TypeScript (src/ts/features.ts), from a plain object
// per call or from a `Context` encoded once per page (`site.context()`), and
// the core receives (namespace, hash, value) triples. These carry over what
// the old fast-path and packed-JSON tests checked that still applies: both
// forms decide alike through learning, only allowlisted namespaces and own
// enumerable keys are read, lone surrogates and long strings behave as
// documented, hostile options get the fallback, and the hash caches are bounded.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CODES, Context, Insitu, InsituError, isFallback, loadSite, open, rng, sameDecision, throwsCode, updates,
} from "./helpers.mjs";

const OPTS = {
  variants: ["a", "b", "c", "d"],
  features: { bits: 7, allow: ["page", "user", "ünï"], interactions: [["page", "user"], ["user", "user"]] },
  policy: { type: "linucb" },
  seed: 5,
};

const STRINGS = ["", "x", "news", "é", "ünïcödé", "😀 emoji", "a".repeat(255), "tab\tand\"quote", "日本語", "k\ud800", "\udc00v"];

/** A random feature value: valid most of the time, sometimes one the walk refuses. */
function value(r) {
  switch (Math.floor(r() * 11)) {
    case 0: return (r() - 0.5) * 1e6;
    case 1: return r() < 0.5 ? -0 : 0;
    case 2: return r() < 0.5;
    case 3: return STRINGS[Math.floor(r() * STRINGS.length)];
    case 4: return Array.from({ length: Math.floor(r() * 4) }, () => STRINGS[Math.floor(r() * STRINGS.length)]);
    case 5: return undefined; // skipped, as JSON.stringify skips it
    case 6: return r() * 1e-300;
    case 7: return r() < 0.97 ? 1.5 : NaN; // now and then a refused value
    case 8: return r() < 0.97 ? "ok" : "x".repeat(300);
    default: return Math.round(r() * 100) / 10;
  }
}

/** A random context: the allowlisted namespaces, and one that is not, holding what would be refused if read. */
function context(r) {
  const ctx = {};
  for (const ns of ["page", "user", "ünï", "secret"]) {
    if (r() < 0.2) continue;
    const feats = r() < 0.1 ? Object.create(null) : {};
    const n = Math.floor(r() * 7);
    for (let i = 0; i < n; i++) feats[`f${Math.floor(r() * 6)}${STRINGS[Math.floor(r() * 4)]}`] = value(r);
    // Not allowlisted: never read, so even a NaN there is fine on both paths.
    if (ns === "secret") feats.email = NaN;
    ctx[ns] = feats;
  }
  return ctx;
}

/** Two decisions are the same: every field, the error's code and message, and the id's counter. */
function same(a, b, message) {
  const strip = ({ error, ...d }) => ({ ...d, error: error === undefined ? undefined : [error.code, error.message] });
  sameDecision(strip(a), strip(b), message);
}

test("a plain-object context and a site.context() Context give identical decisions, through learning", () => {
  const site = open({ storage: null, flushDelayMs: 60_000 });
  const plain = site.slot("plain", OPTS);
  const encoded = site.slot("encoded", OPTS);
  const alone = new Insitu(OPTS); // its own hash caches
  const r = rng(7);
  let decided = 0;
  for (let t = 0; t < 600; t++) {
    const ctx = context(r);
    const c = site.context(ctx);
    assert.ok(c instanceof Context);
    const a = plain.rank({ context: ctx, now: t });
    const b = encoded.rank({ context: c, now: t });
    const z = alone.rank({ context: ctx, now: t });
    same(a, b, `step ${t}: ${JSON.stringify(ctx)}`);
    same(a, z, `step ${t}, new Insitu`);
    if (a.fallback) continue;
    decided++;
    if (t % 3 === 0) {
      const reward = r() < 0.5 ? 1 : 0;
      plain.reward({ decisionId: a.decisionId, reward, now: t });
      encoded.reward({ decisionId: b.decisionId, reward, now: t });
      alone.reward({ decisionId: z.decisionId, reward, now: t });
    }
    if (t % 7 === 0) {
      const variant = OPTS.variants[t % 4];
      plain.learn({ context: ctx, variant, reward: 1 });
      encoded.learn({ context: c, variant, reward: 1 });
      alone.learn({ context: ctx, variant, reward: 1 });
    }
  }
  assert.ok(decided > 300 && decided < 600, `a useful mix of valid and refused contexts (${decided} decided)`);
  assert.ok(updates(plain) > 150);
  assert.deepEqual(plain.stats(), encoded.stats());
  // explain() reads both forms alike too, names included.
  const ctx = { page: { section: "news", "k\ud800": 2 }, user: { tags: ["a", "b"] } };
  assert.deepEqual(plain.explain({ context: ctx, top: 64 }), encoded.explain({ context: site.context(ctx), top: 64 }));
  site.close();
});

test("one Context serves slots with different allowlists, each as its plain-object twin", async () => {
  const site = await loadSite({ storage: null, flushDelayMs: 60_000 });
  const specs = [
    { variants: ["a", "b"], features: { allow: ["page"] }, seed: 1 },
    { variants: ["a", "b", "c"], features: { allow: ["user", "page"], interactions: [["page", "user"]] }, seed: 2 },
    { variants: ["a", "b"], features: { allow: [] }, seed: 3 },
  ];
  const pairs = specs.map((s, i) => [site.slot(`p${i}`, s), site.slot(`e${i}`, s)]);
  const r = rng(11);
  const round = (t) => {
    const ctx = context(r);
    const c = site.context(ctx);
    for (const [p, e] of pairs) {
      const a = p.rank({ context: ctx, now: t });
      const b = e.rank({ context: c, now: t });
      same(a, b, `step ${t}`);
      if (!a.fallback && t % 2 === 0) {
        p.reward({ decisionId: a.decisionId, reward: 1, now: t });
        e.reward({ decisionId: b.decisionId, reward: 1, now: t });
      }
    }
  };
  // Before the full engine arrives (the first-decision module) and after.
  for (let t = 0; t < 100; t++) round(t);
  await site.ready;
  for (let t = 100; t < 200; t++) round(t);
  // Namespaces are taken when the Context is made: replacing one in the caller's object later changes nothing.
  const obj = { page: { section: "news" } };
  const c = site.context(obj);
  obj.page = { section: "sports" };
  obj.user = { tags: ["new"] };
  const [p, e] = pairs[1];
  same(p.rank({ context: { page: { section: "news" } }, seed: 9, now: 300 }), e.rank({ context: c, seed: 9, now: 300 }));
  site.close();
});

test("namespaces outside the allowlist are never read: no getter, no Proxy trap runs", () => {
  const site = open({ storage: null, flushDelayMs: 60_000 });
  const slot = site.slot("hero", { variants: ["a", "b"], features: { allow: ["page"] }, seed: 1 });
  const alone = new Insitu({ variants: ["a", "b"], features: { allow: ["page"] }, seed: 1 });
  const ran = [];
  const spy = () =>
    new Proxy({ email: "a@b.c" }, {
      get(t, k, rcv) { ran.push(`get ${String(k)}`); throw new Error("read"); },
      ownKeys() { ran.push("ownKeys"); throw new Error("read"); },
      getPrototypeOf() { ran.push("getPrototypeOf"); throw new Error("read"); },
      getOwnPropertyDescriptor() { ran.push("getOwnPropertyDescriptor"); throw new Error("read"); },
      has() { ran.push("has"); throw new Error("read"); },
    });
  const withGetter = () => Object.defineProperty({ page: { x: 1 } }, "secret", {
    enumerable: true,
    get() { ran.push("secret getter"); throw new Error("read"); },
  });
  for (const s of [slot, alone]) {
    for (const ctx of [withGetter(), { page: { x: 1 }, secret: spy() }, { page: { x: 1 }, secret: { get y() { ran.push("feature getter"); return 1; } } }]) {
      const d = s.rank({ context: ctx });
      assert.equal(d.fallback, false, d.error?.message);
      s.learn({ context: ctx, variant: "a", reward: 1 });
      s.explain({ context: ctx });
      const deferred = s.rank({ context: ctx, defer: true });
      s.activate({ decisionId: deferred.decisionId });
    }
  }
  assert.deepEqual(ran, []);
  // Values no JSON holds, or that would take long to walk, in a namespace the slot does not allow: never looked at.
  let deep = {};
  for (let i = 0; i < 5000; i++) deep = { deep };
  const cyclic = { x: 1 };
  cyclic.self = cyclic;
  for (const secret of [cyclic, { big: 10n }, { toJSON() { throw new Error("read"); } }, deep, Symbol("s"), 10n, [NaN]]) {
    for (const s of [slot, alone]) {
      const d = s.rank({ context: { page: { x: 1 }, secret } });
      assert.equal(d.fallback, false, d.error?.message);
    }
    assert.equal(slot.rank({ context: site.context({ page: { x: 1 }, secret }) }).fallback, false);
  }
  // A Context takes each namespace's value when it is made (the slots that will read it are not known yet),
  // but reads the features of none until a slot that allows it needs them.
  const c = site.context({ page: { x: 1 }, secret: spy(), other: { get y() { ran.push("feature getter"); return 1; } } });
  assert.equal(slot.rank({ context: c }).fallback, false);
  slot.learn({ context: c, variant: "b", reward: 0 });
  assert.deepEqual(ran, []);
  site.close();
});

test("only own enumerable properties are read, as JSON.stringify reads them", () => {
  const opts = { variants: ["a", "b", "c"], features: { allow: ["page"] }, seed: 3 };
  const site = open({ storage: null, flushDelayMs: 60_000 });
  let n = 0;
  // Twins: a fresh pair for every comparison (the decision-seed stream advances with each decision).
  const pairs = () => [[new Insitu(opts), new Insitu(opts)], [site.slot(`a${n}`, opts), site.slot(`b${n++}`, opts)]];
  const polluted = ["seed", "context", "now", "defer", "page", "polluted", "variants", "reward", "decisionId", "x"];
  const forms = () => [
    { context: Object.defineProperty({ page: Object.defineProperty({ x: 1 }, "y", { value: 9, enumerable: false }) }, "seed", { value: 7, enumerable: false }), now: 0 },
    Object.assign(Object.create({ seed: 7, now: -5, defer: true }), { context: { page: { x: 1 } }, now: 0 }),
    { context: { page: { x: 1, [Symbol("y")]: 9 } }, [Symbol("seed")]: 7, now: 0 },
    { context: { page: Object.assign(Object.create(null), { x: 1 }) }, now: 0 },
  ];
  let compared = 0;
  try {
    for (const k of polluted) Object.prototype[k] = k === "seed" ? 7 : k === "defer" ? true : k === "now" ? -1 : 1;
    for (const o of forms()) {
      for (const [x, y] of pairs()) {
        const d = x.rank({ context: { page: { x: 1 } }, now: 0 });
        assert.equal(d.fallback, false, d.error?.message);
        assert.notEqual(d.seed, 7);
        same(d, y.rank(o));
        x.reward({ decisionId: d.decisionId, reward: 1, now: 1 });
        assert.equal(updates(x), 1, "not deferred by an inherited `defer`");
        throwsCode(() => x.reward({ reward: 1 }), "INVALID_OPTION"); // decisionId inherited: still missing
        compared++;
      }
    }
  } finally {
    for (const k of polluted) delete Object.prototype[k];
  }
  assert.equal(compared, 8);
  // A feature object with another prototype is not a plain object.
  const [[a]] = pairs();
  assert.equal(a.rank({ context: { page: Object.create({ x: 1 }) } }).error.code, "INVALID_CONTEXT");
  assert.equal(a.rank({ context: { page: new Map([["x", 1]]) } }).error.code, "INVALID_CONTEXT");
  assert.equal(a.rank({ context: { page: { when: new Date(0) } } }).error.code, "INVALID_CONTEXT");
  assert.equal(a.rank({ context: { page: { n: new Number(3) } } }).error.code, "INVALID_CONTEXT");
  site.close();
});

test("lone surrogates in feature names and values hash as U+FFFD, through learning", () => {
  const opts = { variants: ["a", "b"], features: { allow: ["page"] }, seed: 1 };
  const [x, y] = [new Insitu(opts), new Insitu(opts)];
  const site = open({ storage: null, flushDelayMs: 60_000 });
  const z = site.slot("z", opts);
  const lone = { page: { "k\ud800": "v\udc00", s: "\ud800\ud800", t: "\ud800\u0001", e: "😀", l: ["\udfff"] } };
  const fixed = { page: { "k\ufffd": "v\ufffd", s: "\ufffd\ufffd", t: "\ufffd\u0001", e: "😀", l: ["\ufffd"] } };
  // Train on the context, so a hashing difference would show in the scores.
  for (let t = 0; t < 8; t++) {
    const a = x.rank({ context: lone, now: t, seed: t });
    const b = y.rank({ context: fixed, now: t, seed: t });
    const c = z.rank({ context: site.context(lone), now: t, seed: t });
    same(a, b, `step ${t}`);
    same(a, c, `step ${t}, Context`);
    for (const [s, d] of [[x, a], [y, b], [z, c]]) s.reward({ decisionId: d.decisionId, reward: t % 2, now: t });
  }
  assert.notDeepEqual(x.rank({ context: lone }).scores, [0, 0], "the features were learned");
  // Ids are made well-formed too: two ids that differ only in lone surrogates are the same id.
  assert.deepEqual(new Insitu({ variants: ["a\ud800", "b"] }).variants, ["a\ufffd", "b"]);
  throwsCode(() => new Insitu({ variants: ["a\ud800", "a\udc00"] }), "INVALID_OPTION");
  site.close();
});

test("a namespace whose name holds a lone surrogate is read when the allowlist names it", () => {
  const learned = (allow, ns) => {
    const s = new Insitu({ variants: ["a", "b"], features: { allow: [allow] }, seed: 1 });
    return s.explain({ context: { [ns]: { x: 2 } }, variant: "a", top: 64 }).contributions.length;
  };
  assert.equal(learned("page", "page"), 1);
  assert.equal(learned("p\ud800", "p\ufffd"), 1);
  // As its features' names and values are, the namespace's name is read as U+FFFD, so these match too.
  assert.equal(learned("p\ud800", "p\ud800"), 1, "allow: [\"p\\ud800\"], context { \"p\\ud800\": ... }: the namespace is dropped");
  assert.equal(learned("p\ufffd", "p\ud800"), 1, "allow: [\"p\\ufffd\"], context { \"p\\ud800\": ... }: the namespace is dropped");
});

test("strings are limited to 256 UTF-8 bytes (lone surrogates count 3, as U+FFFD); longer ones are STRING_TOO_LONG", () => {
  const opts = { variants: ["a", "b"], features: { allow: ["page"] }, seed: 1 };
  const x = new Insitu(opts);
  const site = open({ storage: null, flushDelayMs: 60_000 });
  const z = site.slot("z", opts);
  // 256 bytes of UTF-8 are allowed, one more is STRING_TOO_LONG: ASCII, 2-byte, 4-byte, and lone surrogates.
  const ok = ["n".repeat(256), "é".repeat(128), "😀".repeat(64), "\ud800".repeat(85) + "a"];
  const over = ["n".repeat(257), "é".repeat(128) + "a", "😀".repeat(64) + "a", "\ud800".repeat(86)];
  for (const s of ok) {
    for (const ctx of [{ page: { [s]: 1 } }, { page: { x: s } }, { page: { x: ["a", s] } }]) {
      assert.equal(x.rank({ context: ctx }).fallback, false, `${s.length} units`);
      assert.equal(z.rank({ context: site.context(ctx) }).fallback, false);
    }
  }
  for (const s of over) {
    for (const ctx of [{ page: { [s]: 1 } }, { page: { x: s } }, { page: { x: ["a", s] } }]) {
      isFallback(x.rank({ context: ctx }), "a", "STRING_TOO_LONG");
      isFallback(z.rank({ context: site.context(ctx) }), "a", "STRING_TOO_LONG");
      throwsCode(() => x.learn({ context: ctx, variant: "a", reward: 1 }), "STRING_TOO_LONG");
    }
  }
  assert.equal(x.stats().pending, ok.length * 3);
  // A huge string is refused quickly, and the message stays short.
  const huge = "b".repeat(10_000_000);
  for (const ctx of [{ page: { x: huge } }, { page: { [huge]: 1 } }]) {
    const d = x.rank({ context: ctx });
    isFallback(d, "a", "STRING_TOO_LONG");
    assert.ok(d.error.message.length < 400, `${d.error.message.length} characters`);
  }
  throwsCode(() => new Insitu({ variants: ["a", "b"], features: { allow: ["n".repeat(257)] } }), "INVALID_OPTION");
  site.close();
});

test("numbers reach the core exactly: 17 significant digits, subnormals and the largest double", () => {
  const slot = new Insitu({ variants: ["a", "b"], features: { allow: ["page"], bits: 10 }, seed: 1 });
  const page = { x: 0.1 + 0.2, y: Math.PI * 1e-200, z: 1.2345678901234567e150, w: 5e-324, v: -1.2345678901234567e-7, u: -0 };
  const x = slot.explain({ context: { page }, variant: "a", top: 64 });
  const values = Object.fromEntries(x.contributions.map((c) => [c.feature, c.value]));
  for (const [k, v] of Object.entries(page)) {
    if (v !== 0) assert.equal(values[`page.${k}`], v, k);
  }
  assert.equal(slot.rank({ context: { page }, now: 0 }).fallback, false);
  // The largest double reads exactly too, where the scores overflow: refused with a code, on both forms alike.
  const site = open({ storage: null, flushDelayMs: 60_000 });
  const twin = site.slot("twin", { variants: ["a", "b"], features: { allow: ["page"], bits: 10 }, seed: 1 });
  const huge = { page: { m: -1.7976931348623157e308 } };
  const d = slot.rank({ context: huge, now: 1 });
  same(d, twin.rank({ context: site.context(huge), now: 1 }));
  if (d.fallback) isFallback(d, "a", "NUMERICAL_ERROR");
  site.close();
});

test("wasm memory that grows between calls, or inside a caller's getter, never makes a slot read stale features", () => {
  const opts = { variants: ["a", "b", "c"], features: { allow: ["page"] }, seed: 8 };
  const [a, b] = [new Insitu(opts), new Insitu(opts)];
  const site = open({ storage: null, flushDelayMs: 60_000 });
  const c = site.slot("hero", opts);
  const ctx = { page: { section: "news", price: 3 } };
  const first = a.rank({ context: ctx, now: 0 });
  same(first, b.rank({ context: ctx, now: 0 }));
  same(first, c.rank({ context: ctx, now: 0 }));
  // Wide learners allocate megabytes, which grows (and detaches) wasm memory.
  const big = [];
  const growing = () => ({
    page: {
      section: "news",
      get price() {
        big.push(new Insitu({ variants: ["x", "y", "z"], features: { bits: 18 } }));
        return 3;
      },
    },
  });
  big.push(new Insitu({ variants: ["x", "y", "z"], features: { bits: 18 } }));
  let decidedB = 0;
  for (let t = 1; t < 4; t++) {
    const d = a.rank({ context: ctx, now: t });
    if (d.variant === "b") decidedB++;
    const e = b.rank({ context: growing(), now: t });
    const f = c.rank({ context: site.context(growing()), now: t });
    same(d, e, `step ${t}`);
    same(d, f, `step ${t}, Context`);
    for (const [s, x] of [[a, d], [b, e], [c, f]]) s.reward({ decisionId: x.decisionId, reward: 1, now: t });
    a.learn({ context: ctx, variant: "b", reward: 1 });
    b.learn({ context: growing(), variant: "b", reward: 1 });
    c.learn({ context: growing(), variant: "b", reward: 1 });
  }
  assert.ok(big.length >= 10);
  assert.deepEqual(b.explain({ context: ctx, top: 64 }).scores, c.explain({ context: ctx, top: 64 }).scores);
  // Three learn() calls on b, and the rewarded decisions that chose b: each counted once.
  assert.equal(b.stats().variants[1].updates, 3 + decidedB);
  for (const s of big) s.close();
  site.close();
});

/** Options objects that throw or trap when read, and values no JSON holds. */
function hostileOptions() {
  const boom = () => {
    throw new Error("boom");
  };
  const traps = { get: boom, ownKeys: boom, getPrototypeOf: boom, getOwnPropertyDescriptor: boom, has: boom };
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const getter = (key) => Object.defineProperty({}, key, { get: boom, enumerable: true });
  const cyclic = { page: {} };
  cyclic.page.self = cyclic;
  return [
    getter("context"),
    getter("seed"),
    getter("now"),
    { context: getter("page") },
    { context: { page: getter("x") } },
    { context: { page: { x: { toString: boom, valueOf: boom } } } },
    { context: { page: { x: [getter("0")] } } },
    { context: { page: new Proxy({}, traps) } },
    { context: new Proxy({}, traps) },
    { context: revoked.proxy },
    { context: { page: revoked.proxy } },
    { actions: new Proxy([], traps) },
    { actions: [getter("page"), {}] },
    new Proxy({}, traps),
    new Proxy({ context: {} }, { ownKeys: () => ["context", "context"] }),
    revoked.proxy,
    { seed: 10n },
    { seed: { [Symbol.toPrimitive]: boom } },
    { seed: Symbol("s") },
    { now: Symbol("now") },
    { context: cyclic },
    JSON.parse('{"__proto__": {"seed": 7}, "context": {"page": {"x": 1}}}'),
    { context: { page: JSON.parse('{"__proto__": 1}') } }, // a feature named __proto__ is a feature
    Symbol("options"),
    10n,
    () => ({}),
  ];
}

test("rank never throws on hostile options: the fallback with an InsituError, and the slot keeps working", async () => {
  const opts = { variants: ["a", "b"], features: { allow: ["page"] }, fallback: "b", seed: 1 };
  const early = await loadSite({ storage: null, flushDelayMs: 60_000 });
  const site = open({ storage: null, flushDelayMs: 60_000 });
  const slots = [["Insitu", new Insitu(opts)], ["site slot", site.slot("hero", opts)], ["first-decision slot", early.slot("hero", opts)]];
  for (const [name, slot] of slots) {
    for (const [i, o] of hostileOptions().entries()) {
      let d;
      assert.doesNotThrow(() => (d = slot.rank(o)), `${name}, case ${i}`);
      if (d.fallback) {
        isFallback(d, "b");
      } else {
        // Only the __proto__ cases are valid options: an own `__proto__` key is an unknown option or a feature.
        assert.ok(i === 22, `${name}, case ${i} decided`);
      }
    }
    assert.equal(slot.rank(hostileOptions()[21]).error?.code, "INVALID_OPTION", "an own __proto__ key is an unknown option");
    assert.equal(slot.stats().pending, 1, `${name}: only the valid call left a decision`);
    const d = slot.rank({ context: { page: { x: 1 } } });
    assert.equal(d.fallback, false);
    throwsCode(() => slot.reward({ get decisionId() { throw new Error("boom"); }, reward: 1 }), "INVALID_OPTION");
    slot.reward({ decisionId: d.decisionId, reward: 1 });
  }
  await early.ready;
  assert.equal(updates(slots[2][1]), 1, "the first-decision slot's reward was handed over");
  for (const [, slot] of slots) assert.ok(CODES.includes(slot.rank(revokedOptions()).error.code));
  site.close();
  early.close();
});

/** Contexts that throw or trap when read. */
function hostileContexts() {
  const boom = () => {
    throw new Error("boom");
  };
  const traps = { get: boom, ownKeys: boom, getPrototypeOf: boom, getOwnPropertyDescriptor: boom, has: boom };
  const getter = (key) => Object.defineProperty({}, key, { get: boom, enumerable: true });
  return [
    getter("page"),
    { page: getter("x") },
    { page: { x: [getter("0")] } },
    { page: new Proxy({}, traps) },
    new Proxy({}, traps),
    revokedOptions(),
    { page: revokedOptions() },
  ];
}

const revokedOptions = () => {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
};

test("the hash caches are bounded, and high-cardinality values do not change decisions", async () => {
  // White box: the page's cache holds at most 16,384 names and values, however many it is shown.
  const { Hasher } = await import(new URL("../../target/ts/features.js", import.meta.url).href);
  const h = new Hasher();
  const reference = new Hasher();
  for (let i = 0; i < 50_000; i++) {
    const e = h.entry("page", `user-${i}`);
    assert.equal(e.h, reference.entry("page", `user-${i}`).h);
    h.value(e, `v${i}`);
    assert.ok(h.cached <= 16_384, `${h.cached} cached at ${i}`);
  }
  let held = 0;
  for (const names of h.names.values()) for (const e of Object.values(names)) held += 1 + Object.keys(e.values ?? {}).length;
  assert.ok(held <= 16_384, `${held} entries held`);

  // Black box: twins on two sites, one of whose caches is also flooded by another slot, decide alike through 20,000 distinct values.
  const opts = { variants: ["a", "b", "c"], features: { allow: ["page"], bits: 10 }, seed: 4 };
  const quiet = open({ storage: null, flushDelayMs: 60_000 });
  const busy = open({ storage: null, flushDelayMs: 60_000 });
  const [a, b] = [quiet.slot("hero", opts), busy.slot("hero", opts)];
  const noise = busy.slot("noise", { variants: ["x", "y"], features: { allow: ["page"] } });
  const alone = new Insitu(opts);
  let compared = 0;
  for (let i = 0; i < 20_000; i++) {
    const ctx = { page: { user: `u${i}`, [`k${i % 50}`]: 1, seg: `s${i % 7}` } };
    noise.rank({ context: { page: { [`n${i}`]: `m${i}` } } });
    const x = a.rank({ context: ctx, now: i, seed: i });
    const y = b.rank({ context: busy.context(ctx), now: i, seed: i });
    const z = alone.rank({ context: ctx, now: i, seed: i });
    if (x.variant !== y.variant || x.probability !== y.probability || x.scores.join() !== y.scores.join() || x.scores.join() !== z.scores.join()) {
      same(x, y, `value ${i}`);
      same(x, z, `value ${i}`);
    }
    if (i % 4 === 0) {
      for (const [s, d] of [[a, x], [b, y], [alone, z]]) s.reward({ decisionId: d.decisionId, reward: i % 8 === 0 ? 1 : 0, now: i });
    }
    compared++;
  }
  assert.equal(compared, 20_000);
  assert.deepEqual(a.stats(), b.stats());
  assert.equal(updates(a), 5000);
  quiet.close();
  busy.close();
});

test("calls that throw on hostile options throw only InsituErrors with a code (reward, activate, learn, explain)", () => {
  const slot = new Insitu({ variants: ["a", "b"], features: { allow: ["page"] }, seed: 1 });
  const escaped = [];
  for (const [i, o] of hostileOptions().entries()) {
    const calls = {
      reward: () => slot.reward(o),
      activate: () => slot.activate(o),
      explain: () => slot.explain(o),
    };
    for (const [name, call] of Object.entries(calls)) {
      try {
        call();
      } catch (e) {
        if (!(e instanceof InsituError) || !CODES.includes(e.code)) escaped.push(`${name}, case ${i}: ${e?.name}: ${e?.message}`);
      }
    }
  }
  // The same hostile values where learn() reads its features.
  for (const [i, context] of hostileContexts().entries()) {
    try {
      slot.learn({ variant: "a", reward: 1, context });
    } catch (e) {
      if (!(e instanceof InsituError) || !CODES.includes(e.code)) escaped.push(`learn, context ${i}: ${e?.name}: ${e?.message}`);
    }
  }
  assert.deepEqual(escaped, [], `uncoded exceptions:\n${escaped.join("\n")}`);
  assert.equal(updates(slot), 0, "nothing was learned from a refused call");
});
