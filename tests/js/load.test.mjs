// load(), the package's entry point, and its fallback site (src/wasm/load.mjs):
// when WebAssembly cannot run or the options are refused, the page still gets
// every slot's and experiment's fallback, the reason is reported once, and
// stored learning is left exactly as it was. Also the built package itself
// (pkg/, the web target) in Node: importing it touches no browser global,
// load() with the .wasm bytes runs the wasm, and load() without them falls back.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import { createOpen } from "../../src/wasm/store.mjs";
import { createLoad } from "../../src/wasm/load.mjs";
import { MemoryStorage, throwsCode, updates } from "./helpers.mjs";

const require = createRequire(import.meta.url);
const wasm = require("../../pkg-node/insitu.js");
const open = createOpen(wasm);
const schema = JSON.parse(readFileSync(new URL("../../schema/audit.schema.json", import.meta.url)));
const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
const PKG = new URL("../../pkg/", import.meta.url);

const T0 = 1_700_000_040_000;
const SLOT = { variants: ["a", "b", "c"], features: { allow: ["page"] }, seed: 7, fallback: "b" };
const EXPERIMENT = { key: "cta", variants: ["buy", "try", "get"], fallback: "try" };

const working = createLoad(async () => {}, open);
const blocked = createLoad(async () => {
  throw new WebAssembly.CompileError("Refused to compile or instantiate WebAssembly module because 'wasm-unsafe-eval' is not allowed");
}, open);

/** Options for a page view on `storage` with a fixed clock; fallbacks go to `reported`. */
function options(storage, reported, extra = {}) {
  return { storage, consent: "personalization", now: () => T0, flushDelayMs: 60_000, onFallback: (e) => reported.push(e), ...extra };
}

/** Store learning (40 rewards), experiment state and audit history as a real page view would. */
async function storedPageView(storage) {
  const site = await working(options(storage, []));
  site.experiments([EXPERIMENT]);
  site.run("cta");
  site.setConsent("functional");
  site.setConsent("personalization"); // two consent changes: the audit history is written
  const slot = site.slot("hero", SLOT);
  for (let i = 0; i < 40; i++) {
    const d = slot.rank({ context: { page: { section: "news" } } });
    slot.reward({ decisionId: d.decisionId, reward: 1 });
  }
  assert.equal((await site.flush()).written, true);
  site.close();
  return new Map(storage.map);
}

test("load() with WebAssembly resolves to the real site, and reports nothing", async () => {
  const reported = [];
  const site = await working(options(new MemoryStorage(), reported));
  assert.equal(site.fallback, null);
  const d = site.slot("hero", SLOT).rank({ context: { page: { section: "news" } } });
  assert.equal(d.fallback, false);
  assert.match(d.modelVersion, /^m1-[0-9a-f]{16}$/);
  assert.deepEqual(reported, []);
  site.close();
});

test("load() falls back when WebAssembly is blocked: fallback variants, one WASM_UNAVAILABLE report", async () => {
  const reported = [];
  const site = await blocked(options(new MemoryStorage(), reported));
  assert.equal(reported.length, 1);
  const e = reported[0];
  assert.ok(e instanceof Error);
  assert.equal(e.name, "InsituError");
  assert.equal(e.code, "WASM_UNAVAILABLE");
  assert.ok(e.cause instanceof WebAssembly.CompileError, "the cause is kept");
  assert.equal(site.fallback, e);

  const slot = site.slot("hero", SLOT);
  for (let i = 0; i < 3; i++) {
    const d = slot.rank({ context: { page: { section: "news" } } });
    assert.equal(d.variant, "b");
    assert.equal(d.index, 1);
    assert.equal(d.probability, 1);
    assert.deepEqual(d.pmf, [0, 1, 0]);
    assert.equal(d.fallback, true);
    assert.equal(d.decisionId, null);
    assert.equal(d.error, e);
  }
  assert.equal(site.slot("cta", { variants: ["x", "y"] }).rank().variant, "x", "no fallback given: the first variant");
  assert.deepEqual(slot.variants, ["a", "b", "c"]);
  assert.deepEqual(slot.stats().variants.map((v) => v.updates), [0, 0, 0]);
  assert.equal(slot.explain({ variant: "b" }), null, "nothing learned, nothing to explain");

  const info = site.experiments([EXPERIMENT, { key: "tb", variants: ["p", "q"], allocation: { type: "thompson" } }]);
  assert.deepEqual(info.map((i) => [i.key, i.fallback, i.allocation]), [["cta", "try", "weights"], ["tb", "p", "thompson"]]);
  const r = site.run("cta", { attributes: { country: "NZ" } });
  assert.deepEqual(
    [r.variant, r.index, r.inExperiment, r.reason, r.probability, r.unit],
    ["try", 1, false, "unavailable", 1, "none"],
  );
  // What the page would call next must not throw either.
  slot.reward({ decisionId: "x", reward: 1 });
  slot.activate({ decisionId: "x" });
  slot.learn({ variant: "a", reward: 1 });
  site.track({ type: "view" });
  site.rewardExperiment("cta", 1);
  site.setUnit("user-1");
  assert.equal(site.features(), null);
  assert.deepEqual(await site.flush(), { written: false, reason: "fallback", error: e });
  assert.equal(reported.length, 1, "reported once");
});

test("the fallback site never changes stored learning, and the next page view with WebAssembly restores it", async () => {
  const storage = new MemoryStorage();
  const before = await storedPageView(storage);
  assert.deepEqual([...before.keys()].sort(), ["insitu", "insitu.ab", "insitu.audit"]);

  const site = await blocked(options(storage, []));
  const slot = site.slot("hero", SLOT);
  const d = slot.rank();
  slot.reward({ decisionId: d.decisionId, reward: 1 });
  site.track({ type: "click", category: "x" });
  site.experiments([EXPERIMENT]);
  site.run("cta");
  await site.flush();
  site.audit();
  site.close();
  assert.deepEqual(storage.map, before, "not one byte of storage changed");

  const next = await working(options(storage, []));
  assert.equal(updates(next.slot("hero", SLOT)), 40);
  next.close();
});

test("the fallback site still deletes: lowering consent and forget(), with a valid audit throughout", async () => {
  const storage = new MemoryStorage();
  await storedPageView(storage);
  storage.setItem("insitu.quarantine.1", "garbage");
  storage.setItem("other-site", "kept");
  const site = await blocked(options(storage, []));

  const check = () => {
    const a = site.audit();
    assert.ok(validate(a), JSON.stringify(validate.errors));
    assert.equal(a.network, "none");
    assert.deepEqual(a.models, []);
    assert.equal(a.history.at(-1).event, "fallback");
    assert.equal(a.history.at(-1).code, "WASM_UNAVAILABLE");
    return a;
  };
  const a = check();
  assert.deepEqual(a.storage.keys.map((k) => [k.key, k.holds]).sort(), [
    ["insitu", "snapshot"], ["insitu.ab", "experiments"], ["insitu.audit", "audit-history"],
    ["insitu.quarantine.1", "quarantine"],
  ]);
  const snapshot = a.storage.keys.find((k) => k.key === "insitu");
  assert.equal(snapshot.expiresAt, T0 + 30 * 86_400_000, "expiry read from the frame");
  assert.equal(snapshot.bytes, 2 * ("insitu".length + storage.getItem("insitu").length));
  assert.equal(a.storage.keys.find((k) => k.holds === "quarantine").expiresAt, null);

  assert.deepEqual(site.setConsent("functional"), { tier: "functional", source: "site", gpc: false });
  assert.deepEqual([...storage.map.keys()].sort(), ["insitu.audit", "other-site"],
    "snapshot, quarantine and the experiments state (its bandit counts cannot be taken out without wasm) are deleted");
  assert.deepEqual(check().consent.persists, ["audit-history", "experiments"]);
  site.setConsent("none");
  assert.deepEqual([...storage.map.keys()], ["other-site"]);
  check();

  await storedPageView(storage);
  // Other tabs hear it, as from a real site (store.mjs forgets on this message).
  const heard = [];
  const other = new BroadcastChannel("insitu:insitu");
  other.onmessage = (m) => heard.push(m.data);
  const gone = site.forget();
  await new Promise((ok) => setTimeout(ok, 50));
  other.close();
  assert.deepEqual(heard, [{ type: "forget" }]);
  assert.ok(validate(gone), JSON.stringify(validate.errors));
  assert.deepEqual(gone.storage.keys, []);
  assert.deepEqual([...storage.map.keys()], ["other-site"]);
  throwsCode(() => site.setConsent("everything"), "INVALID_OPTION");
});

test("the fallback site refuses what the real one refuses, with the same codes", async () => {
  const site = await blocked(options(new MemoryStorage(), []));
  throwsCode(() => site.slot("x", { variants: [] }), "INVALID_OPTION");
  throwsCode(() => site.slot("x", { variants: ["a", 1] }), "INVALID_OPTION");
  throwsCode(() => site.slot("x", { variants: ["a"], fallback: "z" }), "INVALID_OPTION");
  throwsCode(() => site.slot("x"), "INVALID_OPTION");
  throwsCode(() => site.experiments({}), "INVALID_EXPERIMENT");
  throwsCode(() => site.experiments([{ variants: ["a"] }]), "INVALID_EXPERIMENT");
  throwsCode(() => site.experiments([{ key: "k", variants: ["a"], fallback: "z" }]), "INVALID_EXPERIMENT");
  throwsCode(() => site.run("nope"), "UNKNOWN_EXPERIMENT");
});

test("options open() refuses make a fallback site too, reported with their code; load() never rejects", async () => {
  const cases = [
    [{ key: "not a key!" }, "INVALID_OPTION"],
    [{ consent: "all" }, "INVALID_OPTION"],
    [{ flushDelayMs: -1 }, "INVALID_OPTION"],
  ];
  for (const [bad, code] of cases) {
    const reported = [];
    const site = await working(options(new MemoryStorage(), reported, bad));
    assert.equal(site.fallback?.code, code, JSON.stringify(bad));
    assert.deepEqual(reported.map((e) => e.code), [code]);
    assert.equal(site.slot("hero", SLOT).rank().variant, "b");
    if (bad.consent) assert.equal(site.consent.tier, "functional", "an unknown tier is not trusted");
  }

  const warned = [];
  const warn = console.warn;
  console.warn = (...args) => warned.push(args);
  try {
    const notObject = await working("personalization");
    assert.equal(notObject.fallback.code, "INVALID_OPTION");
    const badCallback = await working({ storage: null, onFallback: "report" });
    assert.equal(badCallback.fallback.code, "INVALID_OPTION");
    const silent = await blocked({ storage: null });
    assert.equal(silent.fallback.code, "WASM_UNAVAILABLE");
  } finally {
    console.warn = warn;
  }
  assert.equal(warned.length, 3, "without onFallback the reason is logged");
  assert.ok(warned.every(([, e]) => e instanceof Error && typeof e.code === "string"));

  const throwing = await blocked({ storage: null, onFallback: () => { throw new Error("site bug"); } });
  assert.equal(throwing.fallback.code, "WASM_UNAVAILABLE", "a throwing callback does not break load()");

  const panicking = await createLoad(async () => {}, () => { throw new TypeError("boom"); })({ storage: null, onFallback() {} });
  assert.equal(panicking.fallback.code, "POISONED", "a non-InsituError from open() is wrapped");
});

test("load() hands the wasm option to init unchanged, and nothing when it is absent", async () => {
  const seen = [];
  const spy = createLoad(async (arg) => void seen.push(arg), open);
  const bytes = new Uint8Array([0, 97, 115, 109]);
  (await spy({ storage: null, wasm: bytes })).close();
  (await spy({ storage: null })).close();
  assert.deepEqual(seen, [{ module_or_path: bytes }, undefined]);
});

test("load() does open()'s browser first-use work while the wasm compiles, and hands its channel to the site", async () => {
  const log = [];
  const Real = globalThis.BroadcastChannel;
  const channels = [];
  globalThis.BroadcastChannel = class extends Real {
    constructor(name) {
      super(name);
      log.push(`channel ${name}`);
      channels.push(this);
    }
    close() {
      log.push(`close ${this.name}`);
      super.close();
    }
  };
  const touched = [];
  const had = Object.getOwnPropertyDescriptor(globalThis, "localStorage");
  Object.defineProperty(globalThis, "localStorage", {
    configurable: true,
    get() {
      touched.push("localStorage");
      return null;
    },
  });
  let release;
  const slowInit = createLoad(() => {
    log.push("init called");
    return new Promise((ok) => (release = ok)).then(() => log.push("instantiated"));
  }, open);
  try {
    const pending = slowInit({ key: "warm", consent: "personalization", flushDelayMs: 60_000 });
    await new Promise((ok) => setTimeout(ok, 5));
    assert.deepEqual(log, ["init called", "channel insitu:warm"], "the channel is opened after init starts, before it ends");
    assert.deepEqual(touched, ["localStorage"], "localStorage is touched while init runs");
    release();
    const site = await pending;
    assert.equal(site.fallback, null);
    assert.equal(site.channel, channels[0], "the site listens on the channel load() opened");
    assert.deepEqual(log, ["init called", "channel insitu:warm", "instantiated"], "no second channel");
    assert.ok(performance.getEntriesByName("insitu:instantiated", "mark").length > 0, "the mark");
    // Another tab's forget() reaches the site on that channel.
    const slot = site.slot("hero", SLOT);
    slot.reward({ decisionId: slot.rank({ context: { page: { section: "news" } } }).decisionId, reward: 1 });
    assert.equal(updates(slot), 1);
    const other = new Real("insitu:warm");
    other.postMessage({ type: "forget" });
    for (let i = 0; i < 50 && updates(slot) > 0; i++) await new Promise((ok) => setTimeout(ok, 10));
    other.close();
    assert.equal(updates(slot), 0, "forget() from another tab was heard");
    site.close();

    // Refused options: the channel opened for them is closed, and a site's
    // own storage is never the page's localStorage, so that is left alone.
    log.length = 0;
    touched.length = 0;
    const refused = await working({ key: "warm2", storage: new MemoryStorage(), flushDelayMs: -1, onFallback() {} });
    assert.equal(refused.fallback.code, "INVALID_OPTION");
    assert.deepEqual(log, ["channel insitu:warm2", "close insitu:warm2"]);
    assert.deepEqual(touched, [], "a site-supplied storage: localStorage untouched");
    // A key open() refuses opens no channel at all.
    log.length = 0;
    await working({ key: "not a key!", storage: null, onFallback() {} });
    assert.deepEqual(log, []);
  } finally {
    globalThis.BroadcastChannel = Real;
    if (had === undefined) delete globalThis.localStorage;
    else Object.defineProperty(globalThis, "localStorage", had);
  }
});

test("the built package's warm-up still reads the GPC signal (the minifier once dropped that read)", async () => {
  const { warm } = await import(new URL("store.js", PKG).href);
  const reads = [];
  const had = Object.getOwnPropertyDescriptor(globalThis, "navigator");
  Object.defineProperty(globalThis, "navigator", {
    configurable: true,
    get: () => ({
      get globalPrivacyControl() {
        reads.push("globalPrivacyControl");
        return false;
      },
    }),
  });
  try {
    warm({ storage: null, key: "not a key!" }).close();
  } finally {
    if (had === undefined) delete globalThis.navigator;
    else Object.defineProperty(globalThis, "navigator", had);
  }
  assert.deepEqual(reads, ["globalPrivacyControl"]);
});

test("the built package: importing it touches no browser global (SSR), and load() works or falls back in Node", () => {
  // A child process, so the traps cannot leak into other tests.
  const script = `
    const touched = [];
    for (const name of ["window", "document", "self", "localStorage", "sessionStorage", "location", "navigator", "fetch"]) {
      const had = Object.getOwnPropertyDescriptor(globalThis, name);
      Object.defineProperty(globalThis, name, {
        configurable: true,
        get() { touched.push(name); return had?.get ? had.get.call(globalThis) : had?.value; },
      });
    }
    const pkg = await import(${JSON.stringify(new URL("index.js", PKG).href)});
    const atImport = [...touched];
    // No .wasm reachable (Node's fetch refuses file: URLs): the fallback. A
    // failed init leaves the module uninitialised, so the bytes work after.
    const reported = [];
    const none = await pkg.load({ storage: null, onFallback: (e) => reported.push(e.code) });
    const f = none.slot("hero", { variants: ["a", "b"], fallback: "b" }).rank();
    const { readFileSync } = await import("node:fs");
    const real = await pkg.load({ storage: null, wasm: readFileSync(new URL("insitu_bg.wasm", ${JSON.stringify(PKG.href)})) });
    const d = real.slot("hero", { variants: ["a", "b"], fallback: "b" }).rank();
    console.log(JSON.stringify({
      atImport, exports: Object.keys(pkg).sort(),
      real: [real.fallback, d.fallback, d.modelVersion], fallback: [none.fallback?.code, f.variant, f.fallback], reported,
    }));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }));
  assert.deepEqual(out.atImport, [], "import touched no browser global");
  for (const name of ["load", "open", "Insitu", "Experiments", "default"]) assert.ok(out.exports.includes(name), name);
  assert.equal(out.real[0], null);
  assert.equal(out.real[1], false);
  assert.match(out.real[2], /^m1-[0-9a-f]{16}$/);
  assert.deepEqual(out.fallback, ["WASM_UNAVAILABLE", "b", true], "no .wasm reachable: the fallback");
  assert.deepEqual(out.reported, ["WASM_UNAVAILABLE"]);
});
