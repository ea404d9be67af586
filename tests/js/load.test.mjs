// load(), the package's entry point, and its fallback site: when WebAssembly
// cannot run or the options are refused, the page still gets every slot's and
// experiment's fallback, the reason is reported once, and stored learning is
// left exactly as it was. Also the built package itself in Node: importing it
// touches no browser global, load() with the .wasm bytes runs the wasm, and
// load() without them falls back.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import {
  CODES, init, Insitu, InsituError, load, loadReady, loadSite, MemoryStorage, PKG_URL, throwsCode, updates, WASM, WASM_FULL,
  withGlobal,
} from "./helpers.mjs";

const schema = JSON.parse(readFileSync(new URL("../../schema/audit.schema.json", import.meta.url)));
const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);

const T0 = 1_700_000_040_000;
const SLOT = { variants: ["a", "b", "c"], features: { allow: ["page"] }, seed: 7, fallback: "b" };
const EXPERIMENT = { key: "cta", variants: ["buy", "try", "get"], fallback: "try" };
const BANDIT = { key: "tb", variants: ["p", "q"], allocation: { type: "thompson" } };
const CSP = "Refused to compile or instantiate WebAssembly module because 'wasm-unsafe-eval' is not allowed";

/** load() in a page whose Content-Security-Policy refuses WebAssembly: every instantiation throws. */
async function blocked(options) {
  const real = WebAssembly.instantiate;
  WebAssembly.instantiate = () => Promise.reject(new WebAssembly.CompileError(CSP));
  try {
    return await load({ wasm: WASM, wasmFull: WASM_FULL, ...options });
  } finally {
    WebAssembly.instantiate = real;
  }
}

/** Options for a page view on `storage` with a fixed clock; fallbacks go to `reported`. */
function options(storage, reported, extra = {}) {
  return { storage, consent: "personalization", now: () => T0, flushDelayMs: 60_000, onFallback: (e) => reported.push(e), ...extra };
}

/** Store learning (40 rewards), experiment state and audit history as a real page view would. */
async function storedPageView(storage) {
  const site = await loadReady(options(storage, []));
  site.experiments([EXPERIMENT, BANDIT]);
  site.run("cta");
  site.run("tb");
  site.rewardExperiment("tb", 1); // bandit counts in <key>.ab: personalization data
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

test("load() with WebAssembly resolves to the real site at once, the full engine follows, and nothing is reported", async () => {
  const reported = [];
  const errors = [];
  const site = await loadSite(options(new MemoryStorage(), reported, { onError: (e) => errors.push(e) }));
  assert.equal(site.fallback, null);
  const slot = site.slot("hero", SLOT);
  const d = slot.rank({ context: { page: { section: "news" } } });
  assert.equal(d.fallback, false);
  assert.match(d.modelVersion, /^m1-[0-9a-f]{16}$/);
  assert.equal(slot.explain({ variant: d.variant }), null, "no explanation before the full engine");
  assert.ok(site.ready instanceof Promise);
  await site.ready;
  const x = slot.explain({ context: { page: { section: "news" } }, variant: d.variant });
  assert.equal(x.variant, d.variant);
  assert.deepEqual(x.scores, d.scores);
  slot.reward({ decisionId: d.decisionId, reward: 1 });
  assert.equal(updates(slot), 1);
  assert.ok(performance.getEntriesByName("insitu:instantiated", "mark").length > 0, "the User Timing mark");
  assert.deepEqual(reported, []);
  assert.deepEqual(errors, []);
  site.close();
});

test("load() falls back when WebAssembly is blocked: fallback variants, one WASM_UNAVAILABLE report", async () => {
  const reported = [];
  const site = await blocked(options(new MemoryStorage(), reported));
  assert.equal(reported.length, 1);
  const e = reported[0];
  assert.ok(e instanceof InsituError);
  assert.equal(e.name, "InsituError");
  assert.equal(e.code, "WASM_UNAVAILABLE");
  assert.ok(e.cause instanceof WebAssembly.CompileError, "the cause is kept");
  assert.equal(site.fallback, e);
  await site.ready;

  const slot = site.slot("hero", SLOT);
  for (let i = 0; i < 3; i++) {
    const d = slot.rank({ context: { page: { section: "news" } } });
    assert.equal(d.variant, "b");
    assert.equal(d.index, 1);
    assert.equal(d.probability, 1);
    assert.deepEqual(d.pmf, [0, 1, 0]);
    assert.equal(d.fallback, true);
    assert.equal(d.decisionId, null);
    assert.equal(d.modelVersion, "fallback");
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

test("a .wasm that is not one, or cannot be fetched, is a fallback site too", async () => {
  for (const [source, cause] of [
    [() => new Uint8Array([1, 2, 3, 4]), WebAssembly.CompileError],
    [() => new Response("not found", { status: 404 }), Error],
    [() => new URL("insitu_bg.wasm", PKG_URL).href, Error], // Node's fetch refuses file: URLs
    [() => Promise.reject(new Error("network down")), Error],
  ]) {
    const reported = [];
    const wasm = source();
    const site = await load({ storage: null, wasm, onFallback: (x) => reported.push(x) });
    assert.equal(site.fallback?.code, "WASM_UNAVAILABLE", String(wasm));
    assert.deepEqual(reported, [site.fallback]);
    assert.ok(site.fallback.cause instanceof cause, `${String(wasm)}: ${site.fallback.cause}`);
    assert.equal(site.slot("hero", SLOT).rank().variant, "b");
  }
});

test("load() takes the modules as bytes, ArrayBuffer, WebAssembly.Module, Response or a promise of one", async () => {
  const first = new WebAssembly.Module(WASM);
  const full = new WebAssembly.Module(WASM_FULL);
  const asResponse = (b, type) => new Response(b, { headers: { "Content-Type": type } });
  const cases = [
    [WASM, WASM_FULL],
    [WASM.buffer.slice(WASM.byteOffset, WASM.byteOffset + WASM.byteLength), new Uint8Array(WASM_FULL)],
    [first, full],
    [asResponse(WASM, "application/wasm"), asResponse(WASM_FULL, "application/octet-stream")],
    [Promise.resolve(WASM), Promise.resolve(full)],
  ];
  for (const [wasm, wasmFull] of cases) {
    const errors = [];
    const site = await load({ storage: null, wasm, wasmFull, onError: (e) => errors.push(e), onFallback: (e) => errors.push(e) });
    assert.equal(site.fallback, null, String(wasm));
    const slot = site.slot("hero", SLOT);
    assert.equal(slot.rank().fallback, false);
    await site.ready;
    assert.notEqual(slot.explain(), null, "the full engine took over");
    assert.deepEqual(errors, []);
    site.close();
  }
  for (const bad of [42, "", {}, [1, 2], Symbol("wasm")]) {
    const reported = [];
    const site = await load({ storage: null, wasm: bad, onFallback: (e) => reported.push(e) });
    assert.equal(site.fallback?.code, bad === "" ? "WASM_UNAVAILABLE" : "INVALID_OPTION", String(typeof bad));
    assert.equal(reported.length, 1);
  }
  // init() takes the same sources, and the `{ module_or_path }` form.
  await init({ module_or_path: full });
  assert.equal(new Insitu(SLOT).rank().fallback, false);
  await init(WASM_FULL);
});

test("the fallback site never changes stored learning, and the next page view with WebAssembly restores it", async () => {
  const storage = new MemoryStorage();
  const before = await storedPageView(storage);
  assert.deepEqual([...before.keys()].sort(), ["insitu", "insitu.ab", "insitu.audit", "insitu.unit"]);

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

  const next = await loadSite(options(storage, []));
  const hero = next.slot("hero", SLOT);
  assert.equal(updates(hero), 40, "restored by the first-decision module");
  await next.ready;
  assert.equal(updates(hero), 40, "and by the full engine");
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
    ["insitu.quarantine.1", "quarantine"], ["insitu.unit", "device-unit"],
  ]);
  const snapshot = a.storage.keys.find((k) => k.key === "insitu");
  assert.equal(snapshot.expiresAt, T0 + 30 * 86_400_000, "expiry read from the frame");
  assert.equal(snapshot.bytes, 2 * ("insitu".length + storage.getItem("insitu").length));
  assert.equal(a.storage.keys.find((k) => k.holds === "quarantine").expiresAt, null);

  assert.deepEqual(site.setConsent("functional"), { tier: "functional", source: "site", gpc: false });
  assert.deepEqual([...storage.map.keys()].sort(), ["insitu.audit", "insitu.unit", "other-site"],
    "snapshot, quarantine and the experiments state (its bandit counts cannot be taken out without wasm) are deleted; the device seed stays");
  assert.deepEqual(check().consent.persists, ["audit-history", "experiments", "device-unit"]);
  site.setConsent("none");
  assert.deepEqual([...storage.map.keys()], ["other-site"]);
  check();

  await storedPageView(storage);
  // Other tabs hear it, as from a real site (which forgets on this message).
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
  const real = await loadSite(options(new MemoryStorage(), []));
  for (const s of [site, real]) {
    throwsCode(() => s.slot("x", { variants: [] }), "INVALID_OPTION");
    throwsCode(() => s.slot("x", { variants: ["a", 1] }), "INVALID_OPTION");
    throwsCode(() => s.slot("x", { variants: ["a"], fallback: "z" }), "INVALID_OPTION");
    throwsCode(() => s.slot("x"), "INVALID_OPTION");
    throwsCode(() => s.slot("no spaces", { variants: ["a", "b"] }), "INVALID_OPTION");
    throwsCode(() => s.experiments({}), "INVALID_EXPERIMENT");
    throwsCode(() => s.experiments([{ variants: ["a"] }]), "INVALID_EXPERIMENT");
    throwsCode(() => s.experiments([{ key: "k", variants: ["a"], fallback: "z" }]), "INVALID_EXPERIMENT");
    throwsCode(() => s.run("nope"), "UNKNOWN_EXPERIMENT");
    throwsCode(() => s.setConsent("everything"), "INVALID_OPTION");
  }
  real.close();
});

test("options load() refuses make a fallback site too, reported with their code; load() never rejects", async () => {
  const cases = [
    [{ key: "not a key!" }, "INVALID_OPTION"],
    [{ consent: "all" }, "INVALID_OPTION"],
    [{ flushDelayMs: -1 }, "INVALID_OPTION"],
    [{ wasm: 5 }, "INVALID_OPTION"],
    [{ storag: null }, "INVALID_OPTION"],
  ];
  for (const [bad, code] of cases) {
    const reported = [];
    const site = await loadSite(options(new MemoryStorage(), reported, bad));
    assert.equal(site.fallback?.code, code, JSON.stringify(bad));
    assert.deepEqual(reported.map((e) => e.code), [code]);
    assert.equal(site.slot("hero", SLOT).rank().variant, "b");
    if (bad.consent) assert.equal(site.consent.tier, "functional", "an unknown tier is not trusted");
  }

  const warned = [];
  const warn = console.warn;
  console.warn = (...args) => warned.push(args);
  try {
    const notObject = await loadSite("personalization");
    assert.equal(notObject.fallback.code, "INVALID_OPTION");
    const badCallback = await loadSite({ storage: null, onFallback: "report" });
    assert.equal(badCallback.fallback.code, "INVALID_OPTION");
    const silent = await blocked({ storage: null });
    assert.equal(silent.fallback.code, "WASM_UNAVAILABLE");
  } finally {
    console.warn = warn;
  }
  assert.equal(warned.length, 3, "without onFallback the reason is logged");
  assert.ok(warned.every(([, e]) => e instanceof InsituError && CODES.includes(e.code)));

  const throwing = await blocked({ storage: null, onFallback: () => { throw new Error("site bug"); } });
  assert.equal(throwing.fallback.code, "WASM_UNAVAILABLE", "a throwing callback does not break load()");

  // A site that cannot open for another reason (a clock that throws while the stored snapshot is read) is a fallback too.
  const storage = new MemoryStorage();
  await storedPageView(storage);
  const before = new Map(storage.map);
  const broken = await loadSite({ storage, consent: "personalization", now: () => { throw new TypeError("no clock"); }, onFallback() {} });
  assert.ok(broken.fallback instanceof InsituError, "resolves to a fallback site with a coded reason");
  assert.ok(CODES.includes(broken.fallback.code));
  assert.deepEqual(storage.map, before, "and leaves storage alone");
});

test("load() does the browser's first-use work while the wasm compiles, and hands its channel to the site", async () => {
  const log = [];
  const Real = globalThis.BroadcastChannel;
  globalThis.BroadcastChannel = class extends Real {
    constructor(name) {
      super(name);
      log.push(`channel ${name}`);
    }
    close() {
      log.push(`close ${this.name}`);
      super.close();
    }
  };
  const touched = [];
  let release;
  try {
    await withGlobal("localStorage", { get() { touched.push("localStorage"); return null; } }, () =>
      withGlobal("navigator", {
        get: () => ({
          get globalPrivacyControl() {
            touched.push("globalPrivacyControl");
            return false;
          },
        }),
      }, async () => {
        // The .wasm arrives when the test says: what load() does meanwhile is what it does while it compiles.
        const pending = load({
          key: "warm", consent: "personalization", flushDelayMs: 60_000, wasm: new Promise((ok) => (release = ok)), wasmFull: WASM_FULL,
        });
        await new Promise((ok) => setTimeout(ok, 5));
        assert.deepEqual(log, ["channel insitu:warm"], "the channel is opened before the wasm is ready");
        assert.ok(touched.includes("localStorage"), "localStorage is touched while the wasm compiles");
        assert.ok(touched.includes("globalPrivacyControl"), "the GPC signal is read while the wasm compiles (the minifier must keep the read)");
        release(WASM);
        const site = await pending;
        assert.equal(site.fallback, null);
        assert.deepEqual(log, ["channel insitu:warm"], "no second channel");
        await site.ready;
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
        assert.deepEqual(log, ["channel insitu:warm", "close insitu:warm"]);

        // A .wasm that fails after the warm-up: the channel opened for it is closed.
        log.length = 0;
        const failed = await load({ key: "warm2", storage: null, wasm: Promise.reject(new Error("offline")), onFallback() {} });
        assert.equal(failed.fallback.code, "WASM_UNAVAILABLE");
        assert.deepEqual(log, ["channel insitu:warm2", "close insitu:warm2"]);
        // Refused options open no channel, and a site's own storage leaves localStorage alone.
        log.length = 0;
        touched.length = 0;
        const refused = await loadSite({ key: "warm3", storage: new MemoryStorage(), flushDelayMs: -1, onFallback() {} });
        assert.equal(refused.fallback.code, "INVALID_OPTION");
        const own = await loadSite({ key: "warm4", storage: new MemoryStorage(), flushDelayMs: 60_000 });
        await own.ready;
        own.close();
        assert.deepEqual(log, ["channel insitu:warm4", "close insitu:warm4"]);
        assert.ok(!touched.includes("localStorage"), "a site-supplied storage: localStorage untouched");
      }));
  } finally {
    globalThis.BroadcastChannel = Real;
  }
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
    const pkg = await import(${JSON.stringify(new URL("index.js", PKG_URL).href)});
    const atImport = [...touched];
    const codeOf = (f) => { try { f(); return "none"; } catch (e) { return e.code; } };
    // Before init(), open() and new Insitu() say so.
    const early = [codeOf(() => pkg.open({ storage: null })), codeOf(() => new pkg.Insitu({ variants: ["a", "b"] }))];
    // No .wasm reachable (Node's fetch refuses file: URLs): the fallback.
    const reported = [];
    const none = await pkg.load({ storage: null, onFallback: (e) => reported.push(e.code) });
    const f = none.slot("hero", { variants: ["a", "b"], fallback: "b" }).rank();
    const { readFileSync } = await import("node:fs");
    const errors = [];
    const real = await pkg.load({ storage: null, wasm: readFileSync(new URL("insitu_bg.wasm", ${JSON.stringify(PKG_URL.href)})), onError: (e) => errors.push(e.code) });
    const d = real.slot("hero", { variants: ["a", "b"], fallback: "b" }).rank();
    // Its full engine is not reachable either: the page keeps deciding, and says why.
    await real.ready;
    const after = real.slot("side", { variants: ["a", "b"] }).rank();
    console.log(JSON.stringify({
      atImport, early, exports: Object.keys(pkg).sort(),
      real: [real.fallback, d.fallback, d.modelVersion, after.fallback], fallback: [none.fallback?.code, f.variant, f.fallback], reported, errors,
    }));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }));
  assert.deepEqual(out.atImport, [], "import touched no browser global");
  assert.deepEqual(out.exports, ["CODES", "Context", "Insitu", "InsituError", "default", "load", "open"]);
  assert.deepEqual(out.early, ["WASM_UNAVAILABLE", "WASM_UNAVAILABLE"]);
  assert.equal(out.real[0], null);
  assert.equal(out.real[1], false);
  assert.match(out.real[2], /^m1-[0-9a-f]{16}$/);
  assert.equal(out.real[3], false);
  assert.deepEqual(out.fallback, ["WASM_UNAVAILABLE", "b", true], "no .wasm reachable: the fallback");
  assert.deepEqual(out.reported, ["WASM_UNAVAILABLE"]);
  assert.deepEqual(out.errors, ["WASM_UNAVAILABLE"], "the full engine's failure is reported once");
});
