// The site's store: durable state, quarantine, quota, blocked storage,
// consent tiers, GPC, forget() and the audit, against the built package
// (pkg/index.js; sites opened with open() on the full engine) with an
// in-memory Storage standing in for localStorage.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkAudit, init, manualSite, MemoryStorage, open, throwsCode, updates, validateAudit as validate, WASM_FULL } from "./helpers.mjs";

const T0 = 1_700_000_040_000;
const SLOT = { variants: ["a", "b", "c"], features: { allow: ["page", "behavior"] }, seed: 7 };

/** A site on `storage` with a manual clock; errors reported go to `errors`. */
const site = (storage, extra = {}) => manualSite(storage, T0, extra);

function learn(slot, n, clock) {
  for (let i = 0; i < n; i++) {
    clock.t += 1000;
    const d = slot.rank({ context: { page: { section: ["news", "sports"][i % 2] } } });
    assert.equal(d.fallback, false, String(d.error));
    slot.reward({ decisionId: d.decisionId, reward: d.variant === "b" ? 1 : 0 });
  }
}

/** A page view on `storage` that learns `n` rewards and stores them; the stored value. */
async function storeLearning(storage, n) {
  const { s, clock } = site(storage);
  learn(s.slot("hero", SLOT), n, clock);
  assert.equal((await s.flush()).written, true);
  s.close();
  return storage.getItem("insitu");
}

/** Retained behaviour events by type, as the audit reports them. */
const counts = (s) => s.audit().events.byType;

test("a reload restores the learner and the behaviour store", async () => {
  const storage = new MemoryStorage();
  const { s, clock } = site(storage);
  const hero = s.slot("hero", SLOT);
  learn(hero, 50, clock);
  s.track({ type: "view", category: "shoes", tags: ["sale"] });
  s.track({ type: "click", category: "shoes" });
  const r = await s.flush();
  assert.equal(r.written, true);
  s.close();

  const b = site(storage);
  const again = b.s.slot("hero", SLOT);
  assert.equal(updates(again), 50);
  assert.deepEqual(counts(b.s), { click: 1, view: 1 });
  const f = b.s.features();
  assert.equal(f["cat:shoes"], Math.log1p(2));
  const a = checkAudit(b.s);
  assert.ok(a.history.some((h) => h.event === "restored"));
  assert.deepEqual(a.events, { total: 2, byType: { click: 1, view: 1 } });
  // A restore is shown for this page but not stored: a clean load writes nothing.
  assert.deepEqual(a.storage.keys.map((k) => k.key).sort(), ["insitu"]);
  b.s.close();
});

/**
 * Run `body` on a full engine whose calls of the exports `names` are counted
 * (the instance's exports wrapped as `init()` instantiates them), then go
 * back to the plain engine.
 */
async function countingEngine(names, body) {
  const counts = Object.fromEntries(names.map((n) => [n, 0]));
  const real = WebAssembly.instantiate;
  WebAssembly.instantiate = async (...args) => {
    const r = await real.apply(WebAssembly, args);
    const exports = { ...r.instance.exports };
    for (const n of names) {
      const f = exports[n];
      assert.equal(typeof f, "function", `the full engine exports ${n}`);
      exports[n] = (...a) => (counts[n]++, f(...a));
    }
    return { module: r.module, instance: { exports } };
  };
  try {
    await init(WASM_FULL);
  } finally {
    WebAssembly.instantiate = real;
  }
  try {
    return await body(counts);
  } finally {
    await init(WASM_FULL);
  }
}

test("page load decodes the stored snapshot once for the behaviour store and every slot, and frees it when the bytes go", async () => {
  const storage = new MemoryStorage();
  const first = site(storage);
  first.s.track({ type: "view", category: "shoes" });
  learn(first.s.slot("hero", SLOT), 4, first.clock);
  learn(first.s.slot("side", SLOT), 2, first.clock);
  learn(first.s.slot("late", SLOT), 3, first.clock);
  assert.equal((await first.s.flush()).written, true);
  first.s.close();

  await countingEngine(["snap_decode", "snap_drop"], async (n) => {
    const clock = { t: T0 + 60_000 };
    const options = { storage, consent: "personalization", now: () => clock.t, flushDelayMs: 60_000 };
    const s = open(options);
    const hero = s.slot("hero", SLOT);
    const side = s.slot("side", SLOT);
    assert.equal(n.snap_decode, 1, "one decode for the behaviour store and both slots");
    assert.deepEqual([updates(hero), updates(side), counts(s).view], [4, 2, 1]);
    // A flush stores new bytes and frees the old decode; a slot opened after
    // it restores from the new bytes.
    learn(hero, 1, clock);
    assert.equal((await s.flush()).written, true);
    assert.equal(n.snap_drop, 1, "the flush freed the first decode");
    assert.equal(updates(s.slot("late", SLOT)), 3);
    assert.equal(n.snap_decode, 2);
    // Lowering consent below personalization deletes the stored learning and
    // lets go of the copy read from it.
    s.setConsent("functional");
    assert.equal(storage.getItem("insitu"), null);
    assert.equal(n.snap_drop, 2, "a consent change freed the second decode");
    s.close();

    // forget() frees what it holds too.
    await storeLearning(storage, 2);
    const other = open(options);
    other.slot("hero", SLOT);
    assert.equal(n.snap_decode, 3);
    other.forget();
    assert.equal(n.snap_drop, 3, "forget() freed its decode");
    other.close();
    assert.equal(n.snap_drop, 3, "nothing left to free at close()");
  });

  // A clock that returns no number is an option error, and the stored data
  // is neither quarantined nor dropped.
  const kept = await storeLearning(storage, 2);
  const errors = [];
  const e = throwsCode(
    () => open({ storage, consent: "personalization", now: () => String(T0), onError: (x) => errors.push(x) }),
    "INVALID_OPTION",
  );
  assert.match(e.message, /now/);
  assert.equal(storage.getItem("insitu"), kept);
  assert.equal(storage.getItem("insitu.quarantine.1"), null);
  assert.deepEqual(errors, []);
});

test("consent given after learning in memory: stored and own learning both kept, once", async () => {
  const storage = new MemoryStorage();
  const first = site(storage);
  learn(first.s.slot("hero", SLOT), 40, first.clock);
  first.s.track({ type: "view", category: "shoes" });
  assert.equal((await first.s.flush()).written, true);
  first.s.close();

  // A later page view learns before the visitor consents (a default tier
  // deletes nothing, so the snapshot is still there).
  const later = site(storage, { consent: undefined, defaultConsent: "functional" });
  const hero = later.s.slot("hero", SLOT);
  assert.equal(updates(hero), 0, "functional consent reads no snapshot");
  learn(hero, 25, later.clock);
  const open = hero.rank({ context: { page: { section: "news" } } });
  later.s.track({ type: "click", category: "shoes" });
  later.s.setConsent("personalization");
  assert.equal(updates(hero), 65, "the stored 40 and the 25 learned here");
  assert.deepEqual(counts(later.s), { click: 1, view: 1 });
  // The decision made before consent still settles, once.
  hero.reward({ decisionId: open.decisionId, reward: 1 });
  assert.equal((await later.s.flush()).written, true);
  later.s.close();

  const next = site(storage);
  assert.equal(updates(next.s.slot("hero", SLOT)), 66);
  assert.deepEqual(counts(next.s), { click: 1, view: 1 });
  assert.deepEqual(next.errors, []);
  next.s.close();
});

test("two tabs rewarding concurrently lose no update", async () => {
  const storage = new MemoryStorage();
  const tabs = [site(storage), site(storage)];
  const slots = tabs.map((t) => t.s.slot("hero", SLOT));
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 2; i++) {
      learn(slots[i], 50, tabs[i].clock);
      tabs[i].s.track({ type: i === 0 ? "view" : "click" });
      assert.equal((await tabs[i].s.flush()).written, true);
    }
  }
  const fresh = site(storage);
  assert.equal(updates(fresh.s.slot("hero", SLOT)), 2000);
  assert.deepEqual(counts(fresh.s), { click: 20, view: 20 });
  for (const t of [...tabs, fresh]) t.s.close();
});

test("corrupt, truncated and foreign data is quarantined, and the page starts from the prior", async () => {
  const valid = await storeLearning(new MemoryStorage(), 5);
  const [tag, , at, generation, payload] = valid.split(";");
  const flip = (text, i) => text.slice(0, i) + (text[i] === "A" ? "B" : "A") + text.slice(i + 1);
  // Bytes with a valid frame but a damaged snapshot inside.
  const inner = Buffer.from(payload, "base64");
  inner[inner.length - 1] ^= 1;
  // A well-framed value (right checksum) around another payload.
  const reframed = (p) => `${tag};${crcOf(`${at};${generation};${p}`)};${at};${generation};${p}`;
  assert.equal(reframed(payload), valid, "the test frames values as the module does");
  const cases = [
    ["foreign", "{\"some\":\"other library\"}", "SNAPSHOT_FOREIGN"],
    ["truncated", valid.slice(0, valid.length - 7), "SNAPSHOT_CORRUPT"],
    ["bit flip", flip(valid, valid.length - 3), "SNAPSHOT_CORRUPT"],
    ["not base64", reframed("%%%"), "SNAPSHOT_CORRUPT"],
    ["damaged snapshot", reframed(inner.toString("base64")), "SNAPSHOT_CORRUPT"],
    ["foreign bytes", reframed(Buffer.from("hello world").toString("base64")), "SNAPSHOT_FOREIGN"],
  ];
  for (const [name, raw, code] of cases) {
    const storage = new MemoryStorage();
    storage.setItem("insitu", raw);
    const { s, clock, errors } = site(storage);
    const hero = s.slot("hero", SLOT);
    assert.equal(updates(hero), 0, name);
    assert.equal(storage.getItem("insitu"), null, `${name}: the bad value left the main key`);
    const q = storage.getItem("insitu.quarantine.1");
    assert.ok(q !== null, `${name}: quarantined`);
    assert.ok(q.includes(JSON.stringify(raw).slice(1, -1)), `${name}: the quarantine keeps the original`);
    assert.deepEqual(errors.map((e) => e.code), [code], name);
    assert.ok(errors[0] instanceof Error);
    const a = checkAudit(s);
    assert.ok(a.history.some((h) => h.event === "quarantined" && h.code === code), name);
    // It keeps working and storing.
    learn(hero, 3, clock);
    assert.equal((await s.flush()).written, true, name);
    assert.ok(storage.getItem("insitu.quarantine.1") !== null, `${name}: the quarantine is kept`);
    s.close();
  }
});

test("a stored value over the size cap is quarantined as SNAPSHOT_TOO_LARGE, before decoding when far over", async () => {
  const valid = await storeLearning(new MemoryStorage(), 5);
  const bytes = Buffer.from(valid.split(";")[4], "base64").length;
  for (const [name, raw, maxBytes] of [
    ["decoded over the cap", valid, bytes - 1],
    ["far over the cap", valid + "A".repeat(400_000), bytes + 100],
  ]) {
    const storage = new MemoryStorage();
    storage.setItem("insitu", raw);
    const { s, errors } = site(storage, { maxBytes });
    assert.equal(updates(s.slot("hero", SLOT)), 0, name);
    assert.deepEqual(errors.map((e) => e.code), ["SNAPSHOT_TOO_LARGE"], name);
    assert.equal(storage.getItem("insitu"), null, name);
    assert.ok(storage.getItem("insitu.quarantine.1").includes(raw.slice(0, 200)), `${name}: kept aside`);
    assert.ok(checkAudit(s).history.some((h) => h.event === "quarantined" && h.code === "SNAPSHOT_TOO_LARGE"), name);
    s.close();
  }
});

// The module's CRC-32 (IEEE) over UTF-16 code units, low byte first.
function crcOf(text) {
  let c = -1;
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    for (const byte of [u & 0xff, u >>> 8]) {
      c ^= byte;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
  }
  return ((c ^ -1) >>> 0).toString(16).padStart(8, "0");
}

test("a full storage keeps learning in memory, reports it, and stores it later", async () => {
  const storage = new MemoryStorage(600);
  const { s, clock, errors } = site(storage);
  const hero = s.slot("hero", SLOT);
  learn(hero, 20, clock);
  const r = await s.flush();
  assert.equal(r.written, false);
  assert.equal(r.reason, "quota-exceeded");
  assert.ok(errors.some((e) => e.code === "STORAGE_QUOTA"));
  assert.equal(updates(hero), 20);
  let a = checkAudit(s);
  assert.equal(a.storage.status, "quota-exceeded");
  assert.ok(a.history.some((h) => h.event === "quota-exceeded"));
  // The quota grows (the site freed space): the retry stores everything.
  storage.quota = Infinity;
  learn(hero, 5, clock);
  assert.equal((await s.flush()).written, true);
  a = checkAudit(s);
  assert.equal(a.storage.status, "ok");
  assert.ok(a.history.some((h) => h.event === "recovered"));
  s.close();
  const again = site(storage);
  assert.equal(updates(again.s.slot("hero", SLOT)), 25);
  again.s.close();
});

test("blocked or missing storage: memory only, reported, and nothing breaks", async () => {
  const storage = new MemoryStorage();
  storage.blocked = true;
  for (const backend of [storage, null]) {
    const { s, clock, errors } = site(backend);
    const hero = s.slot("hero", SLOT);
    learn(hero, 10, clock);
    s.track({ type: "view" });
    assert.equal(updates(hero), 10);
    const r = await s.flush();
    assert.equal(r.written, false);
    assert.equal(r.reason, "unavailable");
    const a = checkAudit(s);
    assert.equal(a.storage.status, "unavailable");
    assert.deepEqual(a.storage.keys, []);
    if (backend !== null) {
      assert.deepEqual(errors.map((e) => e.code), ["STORAGE_UNAVAILABLE"], "reported once");
      assert.ok(errors[0] instanceof Error && errors[0].name === "InsituError");
      assert.ok(a.history.some((h) => h.event === "storage-unavailable" && h.code === "STORAGE_UNAVAILABLE"));
    }
    s.close();
  }
});

test("consent tiers: none stores nothing, functional only the audit history", async () => {
  for (const tier of ["none", "functional"]) {
    const storage = new MemoryStorage();
    storage.setItem("insitu", "not ours anyway");
    const { s, clock } = site(storage, { consent: tier });
    learn(s.slot("hero", SLOT), 10, clock);
    s.track({ type: "view" });
    assert.equal((await s.flush()).reason, "consent");
    const keys = [...storage.map.keys()];
    // The explicit tier deleted what it does not allow, unread.
    assert.deepEqual(keys, tier === "none" ? [] : ["insitu.audit"], tier);
    const a = checkAudit(s);
    assert.equal(a.consent.tier, tier);
    assert.equal(a.consent.source, "site");
    s.close();
  }
});

test("a default tier never deletes; lowering consent deletes what the lower tier forbids", async () => {
  const storage = new MemoryStorage();
  await storeLearning(storage, 10);
  storage.setItem("insitu.quarantine.1", "kept aside earlier");
  storage.setItem("unrelated", "someone else's");

  // The consent manager has not answered yet: default tier, storage untouched and unread.
  const d = site(storage, { consent: undefined });
  assert.equal(d.s.consent.source, "default");
  const hero = d.s.slot("hero", SLOT);
  assert.equal(updates(hero), 0);
  assert.ok(storage.getItem("insitu") !== null);
  // The visitor grants personalization: the stored learning is restored.
  d.s.setConsent("personalization");
  assert.equal(updates(hero), 10);
  // Down to functional: the snapshot and the quarantine go, the history stays.
  d.s.setConsent("functional");
  assert.deepEqual([...storage.map.keys()].sort(), ["insitu.audit", "unrelated"]);
  const a = checkAudit(d.s);
  assert.ok(a.history.some((h) => h.event === "deleted"));
  assert.deepEqual(a.consent.persists, ["audit-history", "experiments", "device-unit"]);
  // Down to none: everything of ours goes.
  d.s.setConsent("none");
  assert.deepEqual([...storage.map.keys()], ["unrelated"]);
  throwsCode(() => d.s.setConsent("everything"), "INVALID_OPTION");
  d.s.close();
});

test("Global Privacy Control lowers personalization to functional unless the site opts out", async () => {
  const had = Object.getOwnPropertyDescriptor(globalThis, "navigator");
  Object.defineProperty(globalThis, "navigator", { value: { globalPrivacyControl: true }, configurable: true });
  try {
    const storage = new MemoryStorage();
    const ignoring = site(storage, { gpc: "ignore" });
    learn(ignoring.s.slot("hero", SLOT), 4, ignoring.clock);
    assert.equal((await ignoring.s.flush()).written, true);
    ignoring.s.close();

    const honoring = site(storage);
    assert.deepEqual(honoring.s.consent, { tier: "functional", source: "gpc", gpc: true });
    assert.equal(updates(honoring.s.slot("hero", SLOT)), 0);
    assert.equal(storage.getItem("insitu"), null, "GPC deletes the stored learning");
    checkAudit(honoring.s);
    honoring.s.close();
  } finally {
    if (had) Object.defineProperty(globalThis, "navigator", had);
    else delete globalThis.navigator;
  }
});

test("forget() erases every key the module wrote and everything in memory", async () => {
  const storage = new MemoryStorage();
  storage.setItem("insitu", "garbage to quarantine");
  storage.setItem("insitu.v0-leftover", "from an older build");
  storage.setItem("other", "not ours");
  const { s, clock } = site(storage);
  const hero = s.slot("hero", SLOT);
  learn(hero, 10, clock);
  s.track({ type: "view", category: "shoes" });
  await s.flush();
  assert.ok(storage.getItem("insitu.quarantine.1") !== null);
  const a = s.forget();
  assert.ok(validate(a), JSON.stringify(validate.errors));
  assert.deepEqual(a.storage.keys, []);
  assert.deepEqual(a.events, { total: 0, byType: {} });
  assert.deepEqual(a.history, []);
  assert.deepEqual([...storage.map.keys()], ["other"]);
  assert.equal(updates(hero), 0);
  assert.equal(s.features()["cat:shoes"], undefined);
  s.close();
});

test("an expired snapshot is deleted, and a newer build's is left untouched", async () => {
  const storage = new MemoryStorage();
  const first = site(storage, { behavior: { maxAgeDays: 1 } });
  learn(first.s.slot("hero", SLOT), 3, first.clock);
  await first.s.flush();
  first.s.close();
  const late = open({ storage, consent: "personalization", now: () => T0 + 2 * 86_400_000, behavior: { maxAgeDays: 1 } });
  assert.equal(updates(late.slot("hero", SLOT)), 0);
  assert.equal(storage.getItem("insitu"), null);
  assert.ok(late.audit().history.some((h) => h.event === "expired"));
  // The audit's retention is a copy: changing it changes nothing here.
  assert.equal(late.audit().retention.maxAgeDays, 1);
  late.audit().retention.maxAgeDays = 99;
  assert.equal(late.audit().retention.maxAgeDays, 1);
  late.close();

  const newer = "insitu2;00000000;1;whatever a newer build writes";
  storage.setItem("insitu", newer);
  const { s, clock } = site(storage);
  learn(s.slot("hero", SLOT), 3, clock);
  assert.equal((await s.flush()).reason, "newer-format");
  assert.equal(storage.getItem("insitu"), newer);
  assert.equal(storage.getItem("insitu.quarantine.1"), null);
  s.close();
});

test("bad events and options get codes and store nothing", async () => {
  const storage = new MemoryStorage();
  const { s } = site(storage, { behavior: { types: ["add_to_cart"] } });
  throwsCode(() => s.track({ type: "hover" }), "UNKNOWN_EVENT_TYPE");
  throwsCode(() => s.track({ type: "view", tags: "a" }), "INVALID_EVENT");
  throwsCode(() => s.track({ type: "view", value: NaN }), "INVALID_EVENT");
  throwsCode(() => s.track({ type: "view", item: "" }), "INVALID_EVENT");
  throwsCode(() => s.track({ type: "view", extra: 1 }), "INVALID_EVENT");
  throwsCode(() => s.track(null), "INVALID_EVENT");
  throwsCode(() => s.track({ type: "view", category: 1n }), "INVALID_EVENT");
  assert.deepEqual(counts(s), {}, "refused events stored nothing");
  s.track({ type: "add_to_cart", value: 3 });
  assert.deepEqual(counts(s), { add_to_cart: 1 });
  await s.flush();
  s.close();
  const e = throwsCode(() => open({ consent: "all" }), "INVALID_OPTION");
  assert.match(e.message, /consent/);
  assert.match(throwsCode(() => open({ storag: null }), "INVALID_OPTION").message, /storag/);
  assert.match(throwsCode(() => open({ key: "a b" }), "INVALID_OPTION").message, /key/);
  assert.match(throwsCode(() => open({ behavior: { maxEvents: 0 } }), "INVALID_OPTION").message, /maxEvents/);
  assert.match(throwsCode(() => open({ storage: null }).slot("no spaces", SLOT), "INVALID_OPTION").message, /slot/);
});

test("behaviour features reach decisions of slots that allow them", () => {
  const { s, clock } = site(new MemoryStorage());
  const hero = s.slot("hero", SLOT);
  for (let i = 0; i < 5; i++) s.track({ type: "view", category: "shoes" });
  clock.t += 60_000;
  const f = s.features();
  assert.equal(f["type:view"], Math.log1p(5));
  assert.equal(typeof f.hour, "string");
  const d = hero.rank({ context: { page: { section: "news" } } });
  assert.equal(d.fallback, false);
  // explain() sees the same behaviour features as rank().
  const x = hero.explain({ context: { page: { section: "news" } }, variant: d.variant, top: 64 });
  assert.deepEqual(x.scores, d.scores);
  const names = x.contributions.map((c) => c.feature);
  assert.ok(names.includes("behavior.type:view"), names.join());
  assert.ok(names.includes(`behavior.hour=${f.hour}`), names.join());
  // The same within the minute (a copy: changing it changes nothing), recomputed after a track.
  const copy = { ...f };
  f.hour = "changed";
  assert.deepEqual(s.features(), copy);
  s.track({ type: "view" });
  assert.equal(s.features()["type:view"], Math.log1p(6));
  s.close();
});

test("close() frees what the site made in the engine: 200 open/close cycles leave the module's memory flat", async () => {
  const hero = { variants: ["a", "b", "c"], features: { allow: ["page", "behavior"] } };
  const cycle = () => {
    const site = open({ storage: new MemoryStorage(), consent: "personalization", flushDelayMs: 60_000 });
    const slot = site.slot("hero", hero);
    const d = slot.rank({ context: { page: { section: "news" } } });
    slot.reward({ decisionId: d.decisionId, reward: 1 });
    site.track({ type: "view", category: "c" });
    site.experiments([{ key: "t", variants: ["x", "y"] }]);
    site.run("t");
    site.close();
    return { site, slot };
  };
  const { site, slot } = cycle();
  const memory = site.core.x.memory; // the full engine's, shared by every site
  for (let i = 0; i < 20; i++) cycle();
  const before = memory.buffer.byteLength;
  for (let i = 0; i < 200; i++) cycle();
  // Each slot at 128 slots holds 3 covariances of 128 KiB blocks: kept, 200 cycles would grow the memory by
  // over 75 MiB. Freed, the next cycle reuses the blocks.
  const grown = memory.buffer.byteLength - before;
  assert.ok(grown <= 1 << 20, `the memory grew by ${grown} B over 200 cycles`);
  // A closed site's slot gives its fallback, never another site's decision.
  const after = slot.rank({ context: { page: { section: "news" } } });
  assert.equal(after.variant, "a");
  assert.equal(after.decisionId, null);
  assert.equal(after.error?.code, "INVALID_OPTION");
});
