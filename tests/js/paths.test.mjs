// The common paths made cheap give what the general ones gave: `run()`
// reads the behaviour namespace only for a targeting condition on
// `behavior.*` (and then the store's cached copy), `rank` takes a context as
// a plain object, a `site.context()` or one reused across calls alike, and
// `explain` labels the features it was given. Also the cap on the
// experiments' log kept for the handover (as a slot's). Against the built
// package (pkg/index.js), with the validators from the compiled TypeScript
// (target/ts/: `npx tsc -p tsconfig.json`) as the reference for targeting.
import { test } from "node:test";
import assert from "node:assert/strict";
import { load, loadReady, MemoryStorage, open, WASM, WASM_FULL } from "./helpers.mjs";

const { holds } = await import(new URL("../../target/ts/validate/targeting.js", import.meta.url).href);
const { checkExperiments } = await import(new URL("../../target/ts/validate/experiments.js", import.meta.url).href);

const T0 = 1_700_000_060_000;

/** A small seeded generator (xorshift32), so the cases are the same on every run. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

test("run(): targeting on behavior.* and on the attributes gives what it gave on `{ ...attributes, behavior: site.features() }`", async () => {
  const errors = [];
  const site = await loadReady({ storage: null, unit: "u-1", now: () => T0, onError: (e) => errors.push(e) });
  for (let i = 0; i < 12; i++) site.track({ type: i % 3 === 0 ? "click" : "view", category: `c${i % 4}`, tags: [`t${i % 5}`] });
  const features = site.features();
  assert.ok(Object.keys(features).length > 10, "a behaviour namespace to target");
  const random = rng(7);
  const pick = (xs) => xs[Math.floor(random() * xs.length)];
  const names = [...Object.keys(features), "missing", "hour", "type:view"];
  const condition = () => {
    const what = random();
    if (what < 0.35) return { attribute: `behavior.${pick(names)}`, exists: random() < 0.7 };
    if (what < 0.5) return { attribute: "behavior.hour", equals: pick([features.hour, "3", 3]) };
    if (what < 0.65) return { attribute: `behavior.${pick(names)}`, range: [pick([null, 0, 0.5]), pick([1, 2, 100])] };
    if (what < 0.7) return { attribute: "behavior", exists: random() < 0.5 };
    if (what < 0.85) return { attribute: "country", in: ["de", "fr"] };
    return { attribute: pick(["behavior.own", "device"]), exists: random() < 0.5 };
  };
  for (let round = 0; round < 40; round++) {
    const configs = Array.from({ length: 6 }, (_, i) => ({
      key: `e${i}`,
      variants: ["a", "b"],
      targeting: Array.from({ length: 1 + Math.floor(random() * 3) }, condition),
    }));
    site.experiments(configs);
    const specs = checkExperiments(configs);
    for (let j = 0; j < 4; j++) {
      const attributes = { country: pick(["de", "us"]), ...(random() < 0.5 ? { device: "mobile" } : {}) };
      // The caller's own `behavior` is hidden by the store's namespace.
      if (random() < 0.4) attributes.behavior = { own: 1, sessions: 99 };
      const before = { ...attributes, behavior: site.features() ?? {} };
      specs.forEach((spec, i) => {
        const targeted = spec.targeting.every((c) => holds(c, before));
        const a = site.run(`e${i}`, { attributes });
        assert.equal(a.reason === "targeting", !targeted, `${JSON.stringify(configs[i].targeting)} on ${JSON.stringify(attributes)}`);
      });
    }
  }
  assert.deepEqual(errors, []);
  site.close();
});

test("run(): without a condition on behavior.*, the behaviour namespace is not derived; with one it is, once", async () => {
  let clockReads = 0;
  const site = await loadReady({ storage: null, unit: "u-1", now: () => (clockReads++, T0) });
  site.track({ type: "view", category: "shoes" });
  site.experiments([
    { key: "plain", variants: ["a", "b"], targeting: [{ attribute: "country", equals: "de" }] },
    { key: "twice", variants: ["a", "b"], targeting: [{ attribute: "behavior.cat:shoes", exists: true }, { attribute: "behavior.sessions", exists: true }] },
  ]);
  clockReads = 0;
  assert.equal(site.run("plain", { attributes: { country: "de" } }).inExperiment, true);
  assert.equal(clockReads, 1, "the assignment's clock only");
  clockReads = 0;
  assert.equal(site.run("twice").inExperiment, true);
  assert.equal(clockReads, 2, "the assignment's clock and one derivation for both conditions");
  site.close();
});

test("site.features() is a copy: changing it changes neither what the slots see nor what run() targets", async () => {
  const site = await loadReady({ storage: null, unit: "u-1", now: () => T0 });
  site.track({ type: "view", category: "shoes" });
  site.experiments([{ key: "e", variants: ["a", "b"], targeting: [{ attribute: "behavior.cat:shoes", exists: true }] }]);
  const f = site.features();
  assert.equal(Object.getPrototypeOf(f), Object.prototype);
  delete f["cat:shoes"];
  f.extra = 1;
  assert.equal(site.features()["cat:shoes"] > 0, true);
  assert.equal(site.features().extra, undefined);
  assert.equal(site.run("e").inExperiment, true);
  site.close();
});

test("rank and explain: a context as a plain object, a site.context() and a reused site.context() give the same", async () => {
  for (const early of [false, true]) {
    const site = early
      ? await load({ wasm: WASM, wasmFull: new Promise(() => {}), storage: null, now: () => T0 })
      : await loadReady({ storage: null, now: () => T0 });
    site.track({ type: "view", category: "shoes", tags: ["sale"] });
    const slot = site.slot("hero", {
      variants: ["a", { id: "b", features: { offer: { free: true } } }, "c"],
      features: { allow: ["page", "visitor", "behavior", "offer"], interactions: [["page", "offer"]] },
      seed: 4,
    });
    const random = rng(11);
    const contexts = Array.from({ length: 20 }, (_, i) => ({
      page: { section: ["home", "shoes"][i % 2], price: Math.round(random() * 100) / 10, tags: ["x", `t${i % 3}`], sale: i % 3 === 0 },
      visitor: { device: ["mobile", "desktop"][i % 2] },
      ignored: { never: "read" },
      // The store's behaviour namespace replaces the caller's.
      behavior: { fake: 1 },
    }));
    const reused = contexts.map((c) => site.context(c));
    for (let i = 0; i < contexts.length; i++) {
      const seed = 1000 + i;
      const shape = (d) => [d.fallback, d.variant, d.index, d.probability, d.pmf, d.scores, d.seed, d.modelVersion, d.policy, d.error?.message];
      const plain = shape(slot.rank({ context: contexts[i], seed }));
      assert.equal(plain[0], false, plain[9]);
      assert.deepEqual(shape(slot.rank({ context: site.context(contexts[i]), seed })), plain, "a fresh site.context()");
      assert.deepEqual(shape(slot.rank({ context: reused[i], seed })), plain, "a site.context() encoded before");
      assert.deepEqual(shape(slot.rank({ context: reused[i], seed })), plain, "the same one again");
    }
    if (!early) {
      for (const variant of ["a", "b", "c"]) {
        const e = slot.explain({ context: contexts[3], variant, top: 64 });
        assert.deepEqual(slot.explain({ context: site.context(contexts[3]), variant, top: 64 }), e);
        assert.deepEqual(slot.explain({ context: reused[3], variant, top: 64 }), e);
        const labels = e.contributions.map((c) => c.feature);
        assert.ok(labels.includes("page.section=home") || labels.includes("page.section=shoes"), labels.join(", "));
        assert.ok(labels.includes("page.tags=x") && labels.some((l) => l.startsWith("behavior.cat:shoes")), labels.join(", "));
        if (variant === "b") assert.ok(labels.includes("offer.free") && labels.some((l) => /^offer\.free × page\.|× offer\.free$/.test(l)), labels.join(", "));
        assert.ok(!labels.some((l) => l.startsWith("ignored.") || l === "behavior.fake"), labels.join(", "));
      }
    }
    // The same errors, too.
    const bad = { page: { price: NaN } };
    const codes = [slot.rank({ context: bad }), slot.rank({ context: site.context(bad) })].map((d) => [d.fallback, d.error?.code, d.error?.message]);
    assert.deepEqual(codes[0], codes[1]);
    assert.deepEqual(codes[0].slice(0, 2), [true, "NON_FINITE_FEATURE"]);
    const many = { page: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${i}`, 1])) };
    const over = [slot.rank({ context: many }), slot.rank({ context: site.context(many) })].map((d) => [d.error?.code, d.error?.message]);
    assert.deepEqual(over[0], over[1]);
    assert.equal(over[0][0], "TOO_MANY_FEATURES");
    site.close();
  }
});

test("rank: options and decision ids as before (every option, each error, a fresh id per decision)", () => {
  const site = open({ storage: null, now: () => T0 });
  const slot = site.slot("hero", { variants: ["a", "b"], seed: 1 });
  const d = [slot.rank(), slot.rank(null), slot.rank({}), slot.rank({ now: T0 + 1, defer: false, seed: 7, context: null })];
  assert.ok(d.every((x) => x.fallback === false));
  const ids = d.map((x) => x.decisionId);
  assert.ok(ids.every((id) => /^[0-9a-f]{12}-[0-9]+$/.test(id)), ids.join());
  assert.equal(new Set(ids.map((id) => id.split("-")[0])).size, 1, "one epoch");
  assert.equal(new Set(ids).size, ids.length);
  const err = (o) => slot.rank(o).error;
  assert.match(err({ seed: -1 }).message, /option `seed` should be an integer in \[0, 9007199254740991\], but is -1/);
  assert.match(err({ defer: 1 }).message, /option `defer` should be a boolean, but is 1/);
  assert.match(err({ now: NaN }).message, /option `now` should be a finite time in ms, but is NaN/);
  assert.match(err({ actions: [] }).message, /feature `actions` should list 2 variants, but lists 0/);
  assert.match(err({ other: 1 }).message, /option `other` is not a known option/);
  assert.equal(err("x").code, "INVALID_OPTION");
  site.close();
});

test("the experiments' log on the first-decision module is capped as a slot's: past 65,536 changes it is dropped, said once, and assignments go on", async () => {
  let release;
  const held = new Promise((r) => {
    release = () => r(WASM_FULL);
  });
  const errors = [];
  const storage = new MemoryStorage();
  let t = T0;
  const site = await load({
    wasm: WASM, wasmFull: held, storage, consent: "personalization", unit: "u-9", now: () => t, flushDelayMs: 60_000,
    onError: (e) => errors.push(e),
  });
  // A trial per 2 ms: each round below starts one and rewards it.
  site.experiments([
    { key: "fixed", variants: ["a", "b", "c"] },
    { key: "tb", variants: ["p", "q"], allocation: { type: "thompson", rewardWindowMs: 2 } },
  ]);
  const fixed = site.run("fixed").variant;
  // A fixed-weight experiment's repeated assignments change nothing: they are not logged.
  for (let i = 0; i < 70_000; i++) site.run("fixed");
  assert.deepEqual(errors, []);
  // A bandit's trials and rewards are: two log entries per round.
  for (let i = 0; i < 32_768; i++) {
    t += 2;
    site.run("tb");
    site.rewardExperiment("tb", i % 2);
  }
  assert.equal(errors.length, 1, "said once");
  assert.equal(errors[0].code, "WASM_UNAVAILABLE");
  assert.match(errors[0].message, /65536/);
  for (let i = 0; i < 10; i++) {
    t += 2;
    assert.equal(site.run("tb").inExperiment, true, "assignments go on");
    site.rewardExperiment("tb", 1);
  }
  assert.equal(errors.length, 1);
  release();
  await site.ready;
  assert.equal(site.run("fixed").variant, fixed, "the same unit after the handover");
  t += 2;
  assert.equal(site.run("tb").inExperiment, true);
  site.rewardExperiment("tb", 1);
  const counts = site.audit().experiments.list.find((e) => e.key === "tb").counts;
  assert.equal(counts.reduce((n, c) => n + c.successes + c.failures, 0), 1, "only what came after the handover is learned");
  const r = await site.flush();
  assert.equal(r.experiments.written, true);
  assert.deepEqual(errors.map((e) => e.code), ["WASM_UNAVAILABLE"]);
  site.close();
});
