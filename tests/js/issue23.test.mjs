// Regression tests of issue 23 ("six defects found by hostile testing"), in
// Node against the built package (pkg/index.js). Each test states the
// defect's old behaviour, which it fails on, and checks the fix: on sites
// from load() (before and after the full engine takes over) and open().
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  blockedStorage, CODES, Insitu, InsituError, isFallback, load, loadReady, loadSite, MemoryStorage, open, throwsCode,
  updates, WASM, WASM_FULL, withGlobal,
} from "./helpers.mjs";

const T0 = 1_700_000_040_000;
const HERO = { key: "hero", variants: ["a", "b", "c", "d", "e"] };

/** The three kinds of site: load() before and after the full engine arrives, and open() on the full engine. */
async function sites(options = {}) {
  const early = await loadSite({ storage: null, flushDelayMs: 60_000, ...options });
  const late = await loadReady({ storage: null, flushDelayMs: 60_000, ...options });
  const direct = open({ storage: null, flushDelayMs: 60_000, ...options });
  return [["load(), first-decision module", early], ["load(), full engine", late], ["open()", direct]];
}

/** A payload of a framed stored value: `insitu1;<crc>;<saved at>;<generation>;<payload>`. */
const payload = (raw) => raw.split(";").slice(4).join(";");

// --- 0: stickiness on a quick exit --------------------------------------------------

test("23.0: the A/B assignment is sticky when the visitor leaves at once: the device seed is stored when drawn", async () => {
  // Old behaviour: the seed was written only by the flushDelayMs timer, so a page closed within a second stored nothing.
  const storage = new MemoryStorage();
  const variants = [];
  let seed = null;
  for (let visit = 0; visit < 5; visit++) {
    const site = await loadSite({ storage, flushDelayMs: 60_000 });
    site.experiments([HERO]);
    const a = site.run("hero");
    assert.equal(a.inExperiment, true);
    assert.equal(a.unit, "device");
    // Written synchronously by run(), before any timer or await.
    const stored = storage.getItem("insitu.unit");
    assert.notEqual(stored, null, `visit ${visit}: <key>.unit is written at once`);
    assert.match(payload(stored), /^d:[0-9a-f]{32}$/);
    seed ??= stored;
    assert.equal(stored, seed, "the same seed on every visit");
    variants.push(a.variant);
    site.close(); // the visitor leaves: no flush, the full engine never arrives
  }
  assert.deepEqual(new Set(variants).size, 1, `one variant in 5 quick visits: ${variants}`);
  assert.deepEqual([...storage.map.keys()], ["insitu.unit"], "only the seed was stored");

  // The same through open(), and after the full engine arrived.
  const direct = open({ storage, flushDelayMs: 60_000 });
  direct.experiments([HERO]);
  assert.equal(direct.run("hero").variant, variants[0]);
  direct.close();
  const late = await loadReady({ storage, flushDelayMs: 60_000 });
  late.experiments([HERO]);
  assert.equal(late.run("hero").variant, variants[0]);
  late.close();

  // The control: fresh visitors are spread over the variants, so agreeing 5 times is not luck.
  const seen = new Set();
  for (let i = 0; i < 40; i++) {
    const other = open({ storage: new MemoryStorage(), flushDelayMs: 60_000 });
    other.experiments([HERO]);
    seen.add(other.run("hero").variant);
    other.close();
  }
  assert.ok(seen.size >= 4, `fresh visitors saw ${[...seen]}`);

  // Within the consent rules: with consent none nothing is drawn or written.
  const none = new MemoryStorage();
  const site = await loadSite({ storage: none, consent: "none" });
  site.experiments([HERO]);
  assert.equal(site.run("hero").reason, "no-unit");
  site.close();
  assert.equal(none.map.size, 0);
});

test("23.0: a first exposure is reported once over visits left before the full engine arrives; the record is checked, capped and forgotten", async () => {
  // Old behaviour: the exposure log is in <key>.ab, which only the full engine writes: each quick visit reported again.
  const storage = new MemoryStorage();
  const counts = [];
  for (let visit = 0; visit < 4; visit++) {
    const exposures = [];
    const site = await loadSite({ storage, flushDelayMs: 60_000, onExposure: (e) => exposures.push(e) });
    site.experiments([HERO]);
    site.run("hero");
    site.run("hero");
    counts.push(exposures.length);
    site.close();
  }
  assert.deepEqual(counts, [1, 0, 0, 0]);
  assert.match(payload(storage.getItem("insitu.unit")), /^d:[0-9a-f]{32}\/[0-9a-f]{8}$/);

  // 70 experiments: the record keeps the 64 latest.
  const many = Array.from({ length: 70 }, (_, i) => ({ key: `e${i}`, variants: ["a", "b"] }));
  let site = await loadSite({ storage, flushDelayMs: 60_000, onExposure() {} });
  site.experiments(many);
  for (const e of many) site.run(e.key);
  site.close();
  const hashes = payload(storage.getItem("insitu.unit")).split("/")[1].split(",");
  assert.equal(hashes.length, 64);
  assert.equal(new Set(hashes).size, 64);

  // A record that is not one this module writes is set aside, never read as a seed.
  const seed = payload(storage.getItem("insitu.unit")).split("/")[0];
  const bad = storage.getItem("insitu.unit").replace(/\/[^;]*$/, "/zz");
  storage.setItem("insitu.unit", bad);
  const errors = [];
  site = await loadSite({ storage, flushDelayMs: 60_000, onError: (e) => errors.push(e.code) });
  site.experiments([HERO]);
  site.run("hero");
  assert.ok([...storage.map.keys()].some((k) => k.startsWith("insitu.quarantine.")), "the bad record is kept aside");
  assert.notEqual(payload(storage.getItem("insitu.unit")).split("/")[0], seed, "a new seed is drawn");

  // forget() clears the record with the seed: the next first exposure is reported.
  site.forget();
  assert.equal(storage.getItem("insitu.unit"), null);
  const exposures = [];
  site.close();
  site = await loadSite({ storage, flushDelayMs: 60_000, onExposure: (e) => exposures.push(e) });
  site.experiments([HERO]);
  site.run("hero");
  assert.equal(exposures.length, 1);
  site.close();
});

test("23.0: what is pending is stored when the page is hidden or left (visibilitychange, pagehide)", async () => {
  const listeners = { document: new Map(), window: new Map() };
  const target = (map) => ({
    addEventListener: (type, f) => map.set(type, f),
    removeEventListener: (type, f) => map.get(type) === f && map.delete(type),
  });
  const doc = { visibilityState: "visible", ...target(listeners.document) };
  const win = target(listeners.window);
  await withGlobal("document", { value: doc }, () =>
    withGlobal("addEventListener", { value: win.addEventListener }, () =>
      withGlobal("removeEventListener", { value: win.removeEventListener }, async () => {
        const storage = new MemoryStorage();
        const site = await loadReady({ storage, consent: "personalization", flushDelayMs: 60_000 });
        const slot = site.slot("hero", { variants: ["a", "b"] });
        const d = slot.rank();
        slot.reward({ decisionId: d.decisionId, reward: 1 });
        site.track({ type: "view" });
        assert.equal(storage.getItem("insitu"), null, "nothing stored yet: the timer is a minute away");
        // The tab is left: pagehide writes at once.
        assert.equal(typeof listeners.window.get("pagehide"), "function", "the site listens for pagehide");
        listeners.window.get("pagehide")();
        assert.notEqual(storage.getItem("insitu"), null, "stored synchronously on pagehide");
        // Hidden: the next update is stored too.
        const e = slot.rank();
        slot.reward({ decisionId: e.decisionId, reward: 1 });
        const before = storage.getItem("insitu");
        doc.visibilityState = "hidden";
        listeners.document.get("visibilitychange")();
        for (let i = 0; i < 100 && storage.getItem("insitu") === before; i++) await new Promise((ok) => setTimeout(ok, 5));
        assert.notEqual(storage.getItem("insitu"), before, "stored when the page was hidden");
        site.close();
        assert.equal(listeners.window.has("pagehide"), false, "close() stops listening");
        const next = await loadReady({ storage, consent: "personalization" });
        assert.equal(updates(next.slot("hero", { variants: ["a", "b"] })), 2);
        assert.equal(next.audit().events.total, 1);
        next.close();
      })));
});

// --- 1: rank() of a site's slot never throws --------------------------------------------------

test("23.1: a site slot's rank() with options whose getter or Proxy trap throws returns the fallback, never throws", async () => {
  // Old behaviour: the store's wrapper that adds behaviour features read the options first, and `Error: boom` escaped.
  const throwing = () => Object.defineProperty({}, "context", { get() { throw new Error("boom"); }, enumerable: true });
  const proxy = () => new Proxy({}, { ownKeys() { throw new Error("boom"); }, get() { throw new Error("boom"); } });
  for (const [name, site] of await sites()) {
    for (const options of [{ variants: ["a", "b"] }, { variants: ["a", "b"], features: { allow: ["behavior", "page"] }, fallback: "b" }]) {
      const slot = site.slot(`h${options.fallback ?? ""}`, options);
      const reads = options.features !== undefined;
      for (const [bad, refused] of [
        [throwing(), true],
        [proxy(), true],
        [{ context: { page: proxy() } }, reads], // read only where the slot allows `page`
        [{ context: { behavior: throwing() } }, false], // the site's own behaviour features replace the caller's: never read
      ]) {
        let d;
        assert.doesNotThrow(() => (d = slot.rank(bad)), name);
        if (refused) isFallback(d, options.fallback ?? "a");
        else assert.equal(d.fallback, false, `${name}: ${d.error?.message}`);
      }
      assert.equal(slot.rank({}).fallback, false, `${name}: still deciding`);
    }
    site.close();
  }
  // new Insitu() behaves the same, as it did before.
  isFallback(new Insitu({ variants: ["a", "b"] }).rank(throwing()), "a", "INVALID_OPTION");
});

// --- 2: every refusal is an InsituError with a code ------------------------------------------

test("23.2: bad values that String() cannot describe are refused with an InsituError and a code, changing nothing", async () => {
  // Old behaviour: messages built with String(value) threw TypeError for null-prototype objects and Symbols.
  const bare = () => Object.create(null);
  for (const [name, site] of await sites()) {
    site.experiments([{ key: "e1", variants: ["x", "y"], allocation: { type: "thompson" } }]);
    site.run("e1");
    const before = JSON.stringify({ ...site.audit(), generatedAt: 0 });
    const calls = [
      ["setConsent(Object.create(null))", () => site.setConsent(bare()), "INVALID_OPTION"],
      ["setConsent([Symbol()])", () => site.setConsent([Symbol()]), "INVALID_OPTION"],
      ["setConsent(Symbol())", () => site.setConsent(Symbol("tier")), "INVALID_OPTION"],
      ["setUnit(Object.create(null))", () => site.setUnit(bare()), "INVALID_OPTION"],
      ["setUnit(Symbol())", () => site.setUnit(Symbol("unit")), "INVALID_OPTION"],
      ["slot(Object.create(null), ...)", () => site.slot(bare(), { variants: ["a", "b"] }), "INVALID_OPTION"],
      ["slot(Symbol(), ...)", () => site.slot(Symbol("slot"), { variants: ["a", "b"] }), "INVALID_OPTION"],
      ["slot(name, Object.create(null))", () => site.slot("x", bare()), "INVALID_OPTION"],
      ["run(Object.create(null))", () => site.run(bare()), "UNKNOWN_EXPERIMENT"],
      ["run(Symbol())", () => site.run(Symbol("key")), "UNKNOWN_EXPERIMENT"],
      ["run('e1', { attributes: 5n })", () => site.run("e1", { attributes: 5n }), "INVALID_CONTEXT"],
      ["rewardExperiment('e1', 10n)", () => site.rewardExperiment("e1", 10n), "INVALID_REWARD"],
      ["rewardExperiment('e1', Symbol())", () => site.rewardExperiment("e1", Symbol("r")), "INVALID_REWARD"],
      ["rewardExperiment(Object.create(null))", () => site.rewardExperiment(bare()), "UNKNOWN_EXPERIMENT"],
      ["track(Object.create(null))", () => site.track(bare()), "INVALID_EVENT"],
      ["track({ type: Symbol() })", () => site.track({ type: Symbol("t") }), "INVALID_EVENT"],
      ["experiments([Object.create(null)])", () => site.experiments([bare()]), "INVALID_EXPERIMENT"],
      ["context(Symbol())", () => site.context(Symbol("c")), "INVALID_CONTEXT"],
    ];
    for (const [what, call, code] of calls) {
      const e = throwsCode(call, code);
      assert.ok(e.message.length > 0 && e.message.length < 300, `${name}, ${what}: ${e.message}`);
    }
    assert.equal(JSON.stringify({ ...site.audit(), generatedAt: 0 }), before, `${name}: a refused call changed nothing`);
    site.close();
  }
  // open() throws; load() resolves to a fallback site with the code.
  throwsCode(() => open({ consent: bare() }), "INVALID_OPTION");
  throwsCode(() => open({ consent: Symbol("c") }), "INVALID_OPTION");
  throwsCode(() => open({ key: bare() }), "INVALID_OPTION");
  for (const options of [{ consent: bare() }, { unit: bare() }, { key: Symbol("k") }, { behavior: bare(), consent: [Symbol("c")] }]) {
    const reported = [];
    const site = await load({ wasm: WASM, wasmFull: WASM_FULL, storage: null, ...options, onFallback: (e) => reported.push(e) });
    assert.ok(site.fallback instanceof InsituError);
    assert.equal(site.fallback.code, "INVALID_OPTION");
    assert.deepEqual(reported, [site.fallback]);
  }
  // A null-prototype options object is a plain options object.
  const plain = await load(Object.assign(Object.create(null), { wasm: WASM, storage: null }));
  assert.equal(plain.fallback, null);
  plain.close();
});

test("23.2: arrays (and objects) nested thousands deep in options are refused with a code, not a stack overflow", async () => {
  let deep = 1;
  for (let i = 0; i < 5000; i++) deep = [deep];
  let nested = 1;
  for (let i = 0; i < 5000; i++) nested = { a: nested };
  for (const d of [deep, nested]) {
    for (const [name, site] of await sites()) {
      const slot = site.slot("hero", { variants: ["a", "b"], features: { allow: ["page"] } });
      const refusals = [
        () => site.slot("v", { variants: [{ id: "a", features: { page: { x: d } } }, "b"], features: { allow: ["page"] } }),
        () => site.slot("w", { variants: [{ id: "a", features: { other: d } }, "b"] }),
        () => site.slot("m", { model: { format: 1, features: {}, variants: [{ id: "a", features: d }, { id: "b" }] } }),
        () => site.slot("p", { variants: ["a", "b"], policy: d }),
        () => site.experiments([{ key: "e", variants: ["x", "y"], targeting: [{ attribute: "a", in: [d] }] }]),
        () => site.experiments(d),
        () => site.track({ type: "view", tags: [d] }),
        () => slot.learn({ variant: "a", reward: 1, context: { page: { x: d } } }),
        () => slot.reward({ decisionId: d, reward: 1 }),
        () => site.setConsent(d),
        () => new Insitu({ variants: [{ id: "a", features: d }, "b"] }),
      ];
      for (const [i, call] of refusals.entries()) {
        let caught;
        try {
          call();
        } catch (e) {
          caught = e;
        }
        assert.ok(caught instanceof InsituError, `${name}, case ${i}: ${caught?.name}: ${caught?.message}`);
        assert.ok(CODES.includes(caught.code));
      }
      isFallback(slot.rank({ context: { page: { x: d } } }), "a", "INVALID_CONTEXT");
      isFallback(slot.rank({ actions: [{ page: d }, { page: d }] }), "a", "INVALID_CONTEXT");
      site.close();
    }
    const reported = [];
    const site = await load({ wasm: WASM, storage: null, behavior: { types: [d] }, onFallback: (e) => reported.push(e) });
    assert.equal(site.fallback?.code, "INVALID_OPTION");
  }
});

// --- 3: maxPending counts decisions still waiting ---------------------------------------

test("23.3: maxPending counts decisions waiting: the issue's repro, and interleaved with a third unrewarded", async () => {
  // Old behaviour: a decision was evicted after 256 later rank() calls, rewarded or not.
  const repro = (slot) => {
    const d0 = slot.rank();
    for (let i = 0; i < 300; i++) {
      const d = slot.rank();
      slot.reward({ decisionId: d.decisionId, reward: 1 });
    }
    assert.equal(slot.stats().pending, 1, "one decision waiting");
    slot.reward({ decisionId: d0.decisionId, reward: 1 });
  };
  const s = new Insitu({ variants: ["a", "b"] });
  repro(s);
  assert.equal(updates(s), 301);
  for (const [name, site] of await sites()) {
    const slot = site.slot("hero", { variants: ["a", "b"] });
    repro(slot);
    await site.ready;
    assert.equal(updates(slot), 301, name);
    site.close();
  }

  // A third unrewarded: 600 decisions, 200 of them still waiting with d0, all under the cap of 256.
  for (const make of [() => new Insitu({ variants: ["a", "b"] }), async () => (await loadSite({ storage: null })).slot("hero", { variants: ["a", "b"] })]) {
    const slot = await make();
    const d0 = slot.rank();
    const waiting = [];
    for (let i = 0; i < 600; i++) {
      const d = slot.rank();
      if (i % 3 === 2) waiting.push(d);
      else slot.reward({ decisionId: d.decisionId, reward: 0 });
    }
    assert.equal(slot.stats().pending, 201);
    slot.reward({ decisionId: d0.decisionId, reward: 1 });
    for (const d of waiting) slot.reward({ decisionId: d.decisionId, reward: 1 });
    assert.equal(slot.stats().pending, 0);
  }

  // The cap itself: past maxPending waiting decisions (the one just ranked included), the oldest waiting ones go,
  // alike on the full engine, on the first-decision module, and after the handover.
  const kept = [];
  for (const mode of ["new Insitu()", "first-decision module", "handed over"]) {
    const errors = [];
    const site = mode === "new Insitu()" ? null : await loadSite({ storage: null, onError: (e) => errors.push(e) });
    const options = { variants: ["a", "b"], maxPending: 10 };
    const slot = site === null ? new Insitu(options) : site.slot("hero", options);
    const waiting = [];
    for (let i = 0; i < 45; i++) {
      const d = slot.rank();
      if (i % 3 === 0) waiting.push(d); // 15 left waiting, each followed by two rewarded ones
      else slot.reward({ decisionId: d.decisionId, reward: 0 });
    }
    if (mode === "handed over") await site.ready;
    const pending = slot.stats().pending;
    assert.ok(pending >= 9 && pending <= 10, `${mode}: ${pending} waiting`);
    const outcome = waiting.map((d) => {
      try {
        slot.reward({ decisionId: d.decisionId, reward: 1 });
        return "1";
      } catch (e) {
        assert.equal(e.code, "UNKNOWN_DECISION");
        return "U";
      }
    }).join("");
    assert.match(outcome, /^U+1+$/, `${mode}: the oldest went first`);
    assert.equal(outcome.split("1").length - 1, pending);
    assert.deepEqual(errors, [], `${mode}: the handover refused nothing`);
    kept.push(outcome);
  }
  assert.equal(new Set(kept).size, 1, `every engine keeps the same decisions: ${kept}`);
});

test("23.3: maxPending across a reload: an earlier page view's decision is rewarded after a busy page view", async () => {
  for (const mode of ["load", "open"]) {
    const storage = new MemoryStorage();
    const errors = [];
    const page = async () => {
      const o = { storage, consent: "personalization", now: () => T0, flushDelayMs: 60_000, onError: (e) => errors.push(e) };
      return mode === "load" ? loadSite(o) : open(o);
    };
    const first = await page();
    const a = first.slot("hero", { variants: ["a", "b"] });
    const d0 = a.rank();
    for (let i = 0; i < 300; i++) {
      const d = a.rank();
      a.reward({ decisionId: d.decisionId, reward: 1 });
    }
    await first.ready;
    assert.equal((await first.flush()).written, true);
    first.close();

    const second = await page();
    const b = second.slot("hero", { variants: ["a", "b"] });
    // This page view is busy too before the click on the first one's decision arrives.
    for (let i = 0; i < 300; i++) {
      const d = b.rank();
      b.reward({ decisionId: d.decisionId, reward: 0 });
    }
    b.reward({ decisionId: d0.decisionId, reward: 1 });
    await second.ready;
    assert.equal(updates(b), 601, `${mode}: 300 + 300 + the earlier page view's decision`);
    throwsCode(() => b.reward({ decisionId: d0.decisionId, reward: 1 }), "DUPLICATE_REWARD");
    assert.equal((await second.flush()).written, true);
    second.close();
    assert.deepEqual(errors, [], `${mode}: nothing refused at the handover, nothing reported`);

    const third = await page();
    const c = third.slot("hero", { variants: ["a", "b"] });
    await third.ready;
    assert.equal(updates(c), 601, `${mode}: counted once, stored`);
    // Settled in an earlier page view: refused (DUPLICATE_REWARD while its tombstone is kept, UNKNOWN_DECISION once the
    // tombstone cap let it go), never counted twice.
    assert.throws(() => c.reward({ decisionId: d0.decisionId, reward: 1 }), (e) => e instanceof InsituError && ["DUPLICATE_REWARD", "UNKNOWN_DECISION"].includes(e.code));
    assert.equal(updates(c), 601);
    third.close();
  }
});

test("23.3: maxPending across two sites sharing one storage (two tabs): a decision made in one is rewarded in the other once", async () => {
  const storage = new MemoryStorage();
  const tab = () => open({ storage, consent: "personalization", now: () => T0, flushDelayMs: 60_000 });
  const [t1, t2] = [tab(), tab()];
  const [s1, s2] = [t1.slot("hero", { variants: ["a", "b"] }), t2.slot("hero", { variants: ["a", "b"] })];
  const d0 = s1.rank();
  await t1.flush();
  await t2.flush();
  for (let i = 0; i < 300; i++) {
    const d = s2.rank();
    s2.reward({ decisionId: d.decisionId, reward: 1 });
    if (i % 50 === 0) {
      await t2.flush();
      await t1.flush();
    }
  }
  await t2.flush();
  await t1.flush();
  s2.reward({ decisionId: d0.decisionId, reward: 1 }); // the click arrives in the other tab
  await t2.flush();
  await t1.flush();
  throwsCode(() => s1.reward({ decisionId: d0.decisionId, reward: 1 }), "DUPLICATE_REWARD");
  const reader = await loadReady({ storage, consent: "personalization", now: () => T0 });
  assert.equal(updates(reader.slot("hero", { variants: ["a", "b"] })), 301);
  for (const s of [t1, t2, reader]) s.close();
});

// --- 4: blocked storage is reported ----------------------------------------------------

/** Check a site that works in memory on blocked storage, and that `errors` heard it once. */
async function worksInMemory(site, errors) {
  const slot = site.slot("hero", { variants: ["a", "b"] });
  for (let i = 0; i < 5; i++) {
    const d = slot.rank();
    assert.equal(d.fallback, false);
    slot.reward({ decisionId: d.decisionId, reward: 1 });
  }
  site.track({ type: "view" });
  site.experiments([HERO]);
  assert.equal(site.run("hero").inExperiment, true);
  await site.ready;
  assert.equal(updates(slot), 5, "learning in memory");
  const r = await site.flush();
  assert.equal(r.written, false);
  assert.equal(r.reason, "unavailable");
  const a = site.audit();
  assert.equal(a.storage.status, "unavailable");
  assert.deepEqual(a.storage.keys, []);
  assert.deepEqual(errors.map((e) => e.code), ["STORAGE_UNAVAILABLE"], "reported to onError once");
  assert.ok(errors[0] instanceof InsituError);
  site.close();
}

test("23.4: a storage whose every method throws SecurityError is reported once as STORAGE_UNAVAILABLE; the site works in memory", async () => {
  for (const make of [(o) => loadSite(o), async (o) => open(o)]) {
    const errors = [];
    const site = await make({ storage: blockedStorage(), consent: "personalization", flushDelayMs: 60_000, onError: (e) => errors.push(e) });
    await worksInMemory(site, errors);
  }
});

test("23.4: a localStorage that throws SecurityError when touched is reported once as STORAGE_UNAVAILABLE; the site works in memory", async () => {
  // Old behaviour: the site worked in memory and the audit said `unavailable`, but onError never heard it.
  const failed = [];
  for (const [what, descriptor] of [
    ["every method of localStorage throws", { value: blockedStorage() }],
    ["the localStorage getter throws", { get() { throw new DOMException("The operation is insecure.", "SecurityError"); } }],
  ]) {
    for (const [how, make] of [["load()", (o) => loadSite(o)], ["open()", async (o) => open(o)]]) {
      await withGlobal("localStorage", descriptor, async () => {
        const errors = [];
        const site = await make({ consent: "personalization", flushDelayMs: 60_000, onError: (e) => errors.push(e) });
        try {
          await worksInMemory(site, errors);
        } catch (e) {
          failed.push(`${what}, ${how}: ${e.message.split("\n")[0]} (onError heard ${JSON.stringify(errors.map((x) => x.code))})`);
        }
      });
    }
  }
  assert.deepEqual(failed, []);
});

// --- 5: flush() never rejects where Web Locks are refused -----------------------------

test("23.5: where navigator.locks.request throws SecurityError, flush() resolves, onError hears it, nothing rejects unhandled", async () => {
  const unhandled = [];
  const hear = (e) => unhandled.push(e);
  process.on("unhandledRejection", hear);
  const deny = () => {
    throw new DOMException("The operation is insecure.", "SecurityError");
  };
  const rejecting = () => Promise.reject(new DOMException("The operation is insecure.", "SecurityError"));
  try {
    for (const locks of [{ request: deny, query: deny }, { request: rejecting, query: rejecting }, { request: deny }]) {
      await withGlobal("navigator", { value: { locks } }, async () => {
        const storage = new MemoryStorage();
        const errors = [];
        // flushDelayMs 0: the flush scheduled after each update runs too, with nobody awaiting it.
        const site = await loadSite({ storage, consent: "personalization", flushDelayMs: 0, onError: (e) => errors.push(e) });
        const slot = site.slot("hero", { variants: ["a", "b"] });
        const d = slot.rank();
        slot.reward({ decisionId: d.decisionId, reward: 1 });
        site.experiments([HERO]);
        site.run("hero");
        await site.ready;
        await new Promise((ok) => setTimeout(ok, 30));
        const r = await site.flush();
        assert.equal(typeof r.written, "boolean");
        const again = await site.flush();
        assert.equal(typeof again.written, "boolean");
        // Without locks it degrades to writing as this tab sees storage, and says so once.
        assert.deepEqual(errors.map((e) => e.code), ["STORAGE_UNAVAILABLE"]);
        assert.ok(errors[0] instanceof InsituError);
        const next = open({ storage, consent: "personalization" });
        assert.equal(updates(next.slot("hero", { variants: ["a", "b"] })), 1, "the reward was stored");
        next.close();
        site.close();
      });
    }
    // Storage and locks both refused, with updates scheduling flushes: still no rejection anywhere.
    await withGlobal("navigator", { value: { locks: { request: deny, query: deny } } }, () =>
      withGlobal("localStorage", { get() { throw new DOMException("no", "SecurityError"); } }, async () => {
        const site = await loadSite({ consent: "personalization", flushDelayMs: 0 });
        const slot = site.slot("hero", { variants: ["a", "b"] });
        for (let i = 0; i < 5; i++) slot.reward({ decisionId: slot.rank().decisionId, reward: 1 });
        site.experiments([HERO]);
        site.run("hero");
        site.setConsent("functional");
        site.forget();
        await site.ready;
        await new Promise((ok) => setTimeout(ok, 30));
        assert.equal((await site.flush()).written, false);
        site.close();
      }));
    await new Promise((ok) => setTimeout(ok, 20));
  } finally {
    process.off("unhandledRejection", hear);
  }
  assert.deepEqual(unhandled, [], "no unhandled rejection");
});
