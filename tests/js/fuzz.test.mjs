// A seeded fuzz of the whole public surface of the built package (issues 20
// and 23): every method of a site from load() (before and after the full
// engine takes over), of a fallback site, of their slots and experiments, and
// of `new Insitu()`, called more than 20,000 times with valid and hostile
// values (wrong types, NaN, huge strings, `__proto__` keys, getters that
// throw, Proxies and revoked Proxies, BigInt, Symbols, deep and cyclic
// values). Checked on every call:
//   - every exception is an InsituError whose code is in CODES, with a short message;
//   - rank() never throws; run() of a configured experiment throws only for bad options;
//   - a refused call changes nothing (stats(), audit() and storage compared before and after);
//   - no promise rejects (flush(), load(), ready), handled or not.
// Violations are collected and listed together, so one run shows every kind.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CODES, Context, hostiles, Insitu, InsituError, load, loadSite, MemoryStorage, open, rng, WASM, WASM_FULL,
} from "./helpers.mjs";

const T0 = 1_700_000_040_000;
const CALLS = 21_000;
const BEFORE_READY = 6_000;
const SLOT = { variants: ["a", "b", "c"], features: { allow: ["page", "behavior"] }, seed: 5 };
const EXPERIMENTS = [
  { key: "hero", variants: ["x", "y", "z"], weights: [0.5, 0.25, 0.25] },
  { key: "tb", variants: ["p", "q"], allocation: { type: "thompson" } },
  { key: "geo", variants: ["u", "v"], targeting: [{ attribute: "country", in: ["DE", "FR"] }], hash: "growthbook/2" },
];

/** A description of any value that runs none of its code (for violation reports). */
function show(v) {
  try {
    switch (typeof v) {
      case "string": return v.length > 40 ? `"${v.slice(0, 40)}…"(${v.length})` : JSON.stringify(v);
      case "bigint": return `${v}n`;
      case "symbol": return "Symbol()";
      case "function": return "function";
      case "object":
        if (v === null) return "null";
        if (Array.isArray(v)) return `array(${v.length})`;
        return "object";
      default: return String(v);
    }
  } catch {
    return "(revoked proxy)";
  }
}

test(`seeded fuzz: ${CALLS} calls of the whole public surface with hostile values`, async () => {
  const r = rng(20_261_206);
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const hostile = hostiles(r);
  const unhandled = [];
  const hear = (e) => unhandled.push(e);
  process.on("unhandledRejection", hear);

  const clock = { t: T0 };
  const storage = new MemoryStorage();
  const errorsHeard = [];
  const site = await loadSite({
    storage, consent: "personalization", now: () => clock.t, flushDelayMs: 60_000, onError: (e) => errorsHeard.push(e),
  });
  assert.equal(site.fallback, null);
  const fallbackSite = await load({ wasm: new Uint8Array(4), storage: new MemoryStorage(), now: () => clock.t, onFallback() {} });
  assert.ok(fallbackSite.fallback instanceof InsituError);
  site.experiments(EXPERIMENTS);
  fallbackSite.experiments(EXPERIMENTS);
  const slots = [site.slot("hero", SLOT), site.slot("side", { variants: ["l", "r"], features: { allow: ["page"] }, maxPending: 20 })];
  const fallbackSlots = [fallbackSite.slot("hero", SLOT)];
  const insitu = new Insitu({ ...SLOT, features: { allow: ["page"] } });
  const ids = [];
  const snapshots = [];
  let configured = new Set(EXPERIMENTS.map((e) => e.key));

  const validContext = () => {
    const c = {};
    if (r() < 0.8) c.page = { section: pick(["news", "sports", "tech"]), n: Math.floor(r() * 10) };
    if (r() < 0.3) c.user = { tags: ["a", "b"] };
    return c;
  };
  const valid = {
    rank: () => {
      const o = {};
      if (r() < 0.8) o.context = r() < 0.3 ? site.context(validContext()) : validContext();
      if (r() < 0.1) o.seed = Math.floor(r() * 1000);
      if (r() < 0.1) o.defer = true;
      return o;
    },
    reward: () => ({ decisionId: ids.length > 0 && r() < 0.9 ? pick(ids) : "000000000000-1", reward: pick([0, 1, 0.5]) }),
    activate: () => ({ decisionId: ids.length > 0 ? pick(ids) : "x" }),
    learn: () => ({ variant: pick(["a", "b", "c", "l", "r"]), reward: pick([0, 1]), ...(r() < 0.5 ? { context: validContext() } : {}) }),
    explain: () => (r() < 0.5 ? { context: validContext(), top: 3 } : {}),
    track: () => ({ type: pick(["view", "click", "convert", "hover"]), ...(r() < 0.5 ? { category: pick(["shoes", "bags"]) } : {}), ...(r() < 0.2 ? { tags: ["sale"], value: 3 } : {}) }),
    experiments: () => (r() < 0.9 ? EXPERIMENTS : [EXPERIMENTS[0]]).map((e) => ({ ...e })),
    slot: () => ({ variants: ["a", "b"] }),
    syncOptions: () => ({ slot: "hero", now: clock.t }),
  };

  /** A valid options object for `kind`, or a hostile variation of it, or a hostile value. */
  const options = (kind) => {
    const v = valid[kind]();
    const roll = r();
    if (roll < 0.35) return v;
    if (roll < 0.5) return hostile();
    if (v === null || typeof v !== "object" || Array.isArray(v)) return hostile();
    const keys = Object.keys(v);
    if (roll < 0.65 && keys.length > 0) {
      v[pick(keys)] = hostile();
      return v;
    }
    if (roll < 0.72) {
      Object.defineProperty(v, pick(["__proto__", "extra", "constructor", ...keys]), { value: hostile(), enumerable: true, configurable: true });
      return v;
    }
    if (roll < 0.8 && keys.length > 0) {
      Object.defineProperty(v, pick(keys), { get() { throw new Error("boom"); }, enumerable: true });
      return v;
    }
    if (roll < 0.88) {
      const op = pick(["get", "ownKeys", "getOwnPropertyDescriptor", "getPrototypeOf"]);
      return new Proxy(v, { [op]() { throw new Error("boom"); } });
    }
    if (v.context && typeof v.context === "object" && !(v.context instanceof Context)) {
      v.context.page = { ...(v.context.page ?? {}), x: hostile() };
      return v;
    }
    return hostile();
  };
  const arg = (validValue) => (r() < 0.5 ? validValue : hostile());

  // What a call may change: each slot's stats, the audit (but its clock), and storage.
  const state = () => {
    const audit = site.audit();
    audit.generatedAt = 0;
    const fa = fallbackSite.audit();
    fa.generatedAt = 0;
    const stats = (s) => {
      try {
        return s.stats();
      } catch (e) {
        return `throws ${e.code}`;
      }
    };
    return JSON.stringify([audit, fa, slots.map(stats), fallbackSlots.map(stats), stats(insitu), [...storage.map]]);
  };

  // Violations by kind (the call and the first words of why), with the first two examples of each.
  const kinds = new Map();
  const violate = (i, what, why) => {
    const key = `${what}: ${why.split(":")[0]}`;
    const k = kinds.get(key) ?? { n: 0, examples: [] };
    k.n++;
    if (k.examples.length < 2) k.examples.push(`call ${i}: ${why}`);
    kinds.set(key, k);
  };
  let refused = 0;
  let decided = 0;

  /** The calls, each a name, the call, and what it may throw (null: anything coded). */
  const calls = () => {
    const s = pick(slots);
    const fs = pick(fallbackSlots);
    const key = r() < 0.8 ? pick(EXPERIMENTS).key : hostile();
    return pick([
      ["slot.rank", () => s.rank(options("rank")), "never"],
      ["slot.rank", () => s.rank(options("rank")), "never"],
      ["slot.reward", () => s.reward(options("reward"))],
      ["slot.activate", () => s.activate(options("activate"))],
      ["slot.learn", () => s.learn(options("learn"))],
      ["slot.explain", () => s.explain(options("explain"))],
      ["slot.stats", () => s.stats(), "never"],
      ["fallback slot.rank", () => fs.rank(options("rank")), "never"],
      ["fallback slot.reward", () => fs.reward(options("reward"))],
      ["fallback slot.learn", () => fs.learn(options("learn"))],
      ["site.slot", () => site.slot(r() < 0.5 ? pick(["hero", "side", `s${Math.floor(r() * 4)}`]) : hostile(), options("slot"))],
      ["site.context", () => site.context(r() < 0.5 ? validContext() : hostile())],
      ["site.track", () => site.track(options("track"))],
      ["site.features", () => site.features(), "never"],
      ["site.experiments", () => site.experiments(r() < 0.4 ? valid.experiments() : r() < 0.5 ? [options("slot")] : hostile())],
      ["site.setUnit", () => site.setUnit(arg(pick(["user-1", null, "x".repeat(257)])))],
      ["site.run", () => site.run(key, r() < 0.5 ? (r() < 0.5 ? { attributes: { country: pick(["DE", "US"]) } } : undefined) : hostile()), configured.has(key) ? "options" : null],
      ["site.rewardExperiment", () => site.rewardExperiment(key, arg(pick([0, 1, 0.3])))],
      ["site.setConsent", () => site.setConsent(r() < 0.97 ? hostile() : pick(["functional", "personalization"]))],
      ["site.audit", () => site.audit(), "never"],
      ["fallbackSite.run", () => fallbackSite.run(key, hostile())],
      ["fallbackSite.setConsent", () => fallbackSite.setConsent(hostile())],
      ["fallbackSite.slot", () => fallbackSite.slot(arg("hero2"), options("slot"))],
      ["fallbackSite.experiments", () => fallbackSite.experiments(r() < 0.5 ? [options("slot")] : hostile())],
      ["Insitu.rank", () => insitu.rank(options("rank")), "never"],
      ["Insitu.reward", () => insitu.reward(options("reward"))],
      ["Insitu.learn", () => insitu.learn(options("learn"))],
      ["Insitu.explain", () => insitu.explain(options("explain"))],
      ["Insitu.sync", () => insitu.sync(r() < 0.5 && snapshots.length > 0 ? pick(snapshots) : hostile(), options("syncOptions"))],
      ["Insitu.restore", () => insitu.restore(r() < 0.5 && snapshots.length > 0 ? pick(snapshots) : hostile(), options("syncOptions"))],
      ["new Insitu", () => new Insitu(r() < 0.3 ? { variants: [hostile(), "b"] } : options("slot"))],
      ["open", () => open(r() < 0.5 ? { storage: null, consent: hostile() } : hostile())],
    ]);
  };

  const one = (i) => {
    const [what, call, rule] = calls();
    const before = state();
    let result;
    try {
      result = call();
    } catch (e) {
      refused++;
      if (!(e instanceof InsituError)) return violate(i, what, `threw ${e?.name}: ${String(e?.message).slice(0, 80)}`);
      if (!CODES.includes(e.code)) return violate(i, what, `code ${e.code} not in CODES`);
      if (typeof e.message !== "string" || e.message.length > 1000) violate(i, what, `message of ${e.message?.length} characters`);
      if (rule === "never") violate(i, what, `threw ${e.code}: ${e.message.slice(0, 80)}`);
      if (rule === "options" && !["INVALID_OPTION", "INVALID_CONTEXT"].includes(e.code)) violate(i, what, `threw ${e.code} for a configured experiment`);
      const after = state();
      if (after !== before) violate(i, what, `refused (${e.code}) but changed state`);
      return;
    }
    if (what.endsWith(".rank")) {
      if (result.fallback) {
        if (!(result.error instanceof InsituError) || !CODES.includes(result.error.code)) violate(i, what, "a fallback without a coded error");
      } else {
        decided++;
        if (ids.length < 400) ids.push(result.decisionId);
        else ids[Math.floor(r() * ids.length)] = result.decisionId;
      }
    }
    if (what === "site.experiments") configured = new Set(result.map((e) => e.key));
    if (what === "Insitu.sync" && result?.bytes instanceof Uint8Array) {
      if (snapshots.length < 8) snapshots.push(result.bytes);
      if (r() < 0.5) insitu.commit();
    }
  };

  // The comparison sees a change: a valid call that counts something changes the state.
  const probe = state();
  site.track({ type: "view" });
  assert.notEqual(state(), probe, "state() sees what a call changes");

  // Before the full engine arrives: all synchronous, on the first-decision module.
  for (let i = 0; i < BEFORE_READY; i++) one(i);
  await site.ready;
  for (let i = BEFORE_READY; i < CALLS; i++) {
    one(i);
    if (i % 500 === 0) {
      clock.t += 60_000;
      if (i % 5000 === 0) {
        const gone = site.forget();
        assert.deepEqual(gone.storage.keys, []);
      }
      const flushed = await Promise.race([site.flush(), fallbackSite.flush()]);
      assert.equal(typeof flushed.written, "boolean");
      // Without onFallback, the reason goes to console.warn: kept out of the test's output.
      const warn = console.warn;
      console.warn = () => {};
      let loaded;
      try {
        loaded = await load(r() < 0.5 ? hostile() : { wasm: WASM, wasmFull: WASM_FULL, storage: null, consent: hostile(), onFallback() {} });
      } finally {
        console.warn = warn;
      }
      assert.ok(loaded.fallback === null || loaded.fallback instanceof InsituError, "load() resolves to a site or a coded fallback");
      loaded.close();
    }
  }
  await site.flush();
  await new Promise((ok) => setTimeout(ok, 20));
  process.off("unhandledRejection", hear);
  site.close();

  const total = [...kinds.values()].reduce((n, k) => n + k.n, 0);
  const summary = [...kinds].sort((a, b) => b[1].n - a[1].n).map(([key, k]) => `${k.n} × ${key}\n      e.g. ${k.examples.join("\n      e.g. ")}`);
  assert.deepEqual(unhandled, [], "no unhandled rejection");
  assert.ok(refused > 5000, `a useful share of refused calls (${refused})`);
  assert.ok(decided > 500, `and of decisions (${decided})`);
  assert.equal(total, 0, `${total} violations in ${CALLS} calls (${refused} refused, ${decided} decided):\n${summary.join("\n")}`);
  assert.ok(errorsHeard.every((e) => e instanceof InsituError && CODES.includes(e.code)), "onError hears only coded errors");
});
