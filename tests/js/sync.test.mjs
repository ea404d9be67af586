// Persistence through the JS API: restore() / sync() / commit() of
// `new Insitu()` against the built package (pkg/index.js on the full engine),
// with an in-memory store standing in for localStorage.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { Insitu, throwsCode, updates } from "./helpers.mjs";

const OPTS = { variants: ["a", "b", "c"], features: { allow: ["page"] }, seed: 42 };
const ctx = (t) => ({ context: { page: { section: ["news", "sports", "tech"][t % 3] } }, now: t });

/** What a tab does under the storage lock: read, sync, write, commit. */
function save(slot, store) {
  const r = slot.sync(store.bytes ?? null, { slot: "hero", now: 1e6 });
  assert.ok(r.bytes instanceof Uint8Array);
  store.bytes = r.bytes;
  assert.equal(slot.commit(), true);
  return r;
}

test("a reloaded slot has the learning and the pending decision of the last page view", () => {
  const store = {};
  const first = new Insitu(OPTS);
  for (let t = 0; t < 30; t++) {
    const d = first.rank(ctx(t));
    first.reward({ decisionId: d.decisionId, reward: d.variant === "b" ? 1 : 0, now: t });
  }
  const open = first.rank(ctx(30));
  const r1 = save(first, store);
  assert.deepEqual(
    [r1.merged, r1.modelChanged, r1.replayed, r1.adopted, r1.duplicates, r1.overwrote, r1.rejected],
    [false, false, 0, 0, 0, false, 0],
  );

  const second = new Insitu(OPTS);
  const r2 = save(second, store);
  assert.equal(r2.merged, true);
  assert.equal(r2.adopted, 1);
  assert.equal(updates(second), 30);
  const probe = (s) => s.rank({ ...ctx(1), seed: 5, now: 31 }).pmf;
  assert.deepEqual(probe(second), probe(first));
  second.reward({ decisionId: open.decisionId, reward: 1, now: 40 });
  assert.equal(updates(second), 31);
});

test("two tabs that sync in turns count every reward", () => {
  const store = {};
  const tabs = [new Insitu(OPTS), new Insitu(OPTS)];
  tabs.forEach((t) => save(t, store));
  for (let i = 0; i < 200; i++) {
    tabs.forEach((tab, k) => {
      const d = tab.rank(ctx(i + k));
      tab.reward({ decisionId: d.decisionId, reward: (i + k) % 2, now: i });
      if ((i + 2 * k) % 9 === 0) save(tab, store);
    });
  }
  tabs.forEach((t) => save(t, store));
  const reader = new Insitu(OPTS);
  save(reader, store);
  assert.equal(updates(reader), 400);
});

test("bad stored data and bad options throw coded errors and change nothing", () => {
  const store = {};
  const good = new Insitu(OPTS);
  const d = good.rank(ctx(1));
  good.reward({ decisionId: d.decisionId, reward: 1, now: 2 });
  save(good, store);

  const slot = new Insitu(OPTS);
  const before = JSON.stringify(slot.stats());
  const bytes = store.bytes;
  throwsCode(() => slot.sync(new TextEncoder().encode('{"theirs":1}'), { slot: "hero" }), "SNAPSHOT_FOREIGN");
  throwsCode(() => slot.sync(bytes.slice(0, 40), { slot: "hero" }), "SNAPSHOT_CORRUPT");
  const flipped = bytes.slice();
  flipped[flipped.length - 3] ^= 0x10;
  throwsCode(() => slot.sync(flipped, { slot: "hero" }), "SNAPSHOT_CORRUPT");
  const newer = bytes.slice();
  newer[4] = 9;
  throwsCode(() => slot.sync(newer, { slot: "hero" }), "SNAPSHOT_VERSION");
  throwsCode(() => slot.sync(bytes, { slot: "hero", maxBytes: 64 }), "SNAPSHOT_TOO_LARGE");
  throwsCode(() => slot.sync("base64?", { slot: "hero" }), "INVALID_OPTION");
  throwsCode(() => slot.sync(bytes, {}), "INVALID_OPTION");
  throwsCode(() => slot.sync(bytes, { slot: "no spaces" }), "INVALID_OPTION");
  throwsCode(() => slot.sync(bytes, { slot: "hero", maxBytes: 1.5 }), "INVALID_OPTION");
  throwsCode(() => slot.sync(bytes, { slot: "hero", color: "red" }), "INVALID_OPTION");
  throwsCode(() => slot.sync(bytes, null), "INVALID_OPTION");
  throwsCode(() => slot.sync(bytes, { slot: "hero", now: NaN }), "INVALID_OPTION");
  throwsCode(() => slot.sync([...bytes], { slot: "hero" }), "INVALID_OPTION");
  throwsCode(() => slot.restore(null, { slot: "hero" }), "INVALID_OPTION");
  throwsCode(() => slot.restore(bytes.slice(0, 40), { slot: "hero" }), "SNAPSHOT_CORRUPT");
  throwsCode(() => slot.restore(newer, { slot: "hero" }), "SNAPSHOT_VERSION");
  slot.sync(null, { slot: "hero" });
  throwsCode(() => slot.sync(newer, { slot: "hero" }), "SNAPSHOT_VERSION");
  assert.equal(slot.commit(), false, "a failed sync discards the one before it");
  assert.equal(JSON.stringify(slot.stats()), before);
  // The stored bytes were never modified by the attempts.
  assert.deepEqual(store.bytes, bytes);
  // And the slot still syncs normally afterwards.
  save(slot, store);
  assert.equal(updates(slot), 1);
});

test("restore() loads the stored learning and pending decisions without writing, and its report says what it found", () => {
  const store = {};
  const first = new Insitu(OPTS);
  for (let t = 0; t < 12; t++) {
    const d = first.rank(ctx(t));
    first.reward({ decisionId: d.decisionId, reward: 1, now: t });
  }
  const open = first.rank(ctx(12));
  save(first, store);
  const bytes = store.bytes.slice();

  const second = new Insitu(OPTS);
  const d = second.rank(ctx(13));
  second.reward({ decisionId: d.decisionId, reward: 0, now: 13 });
  const r = second.restore(store.bytes, { slot: "hero", now: 14 });
  assert.deepEqual(r, { modelChanged: false, merged: true, replayed: 1, duplicates: 0, rejected: 0, adopted: 1 });
  assert.equal(updates(second), 13, "the stored 12 and its own 1");
  assert.deepEqual(store.bytes, bytes, "restore() wrote nothing");
  assert.equal(second.commit(), false, "restore() needs no commit");
  second.reward({ decisionId: open.decisionId, reward: 1, now: 15 });
  assert.equal(updates(second), 14);
  // Its own updates reach storage exactly once, at its next sync.
  save(second, store);
  const reader = new Insitu(OPTS);
  reader.restore(store.bytes, { slot: "hero", now: 16 });
  assert.equal(updates(reader), 14);
  // Another model's section: its learning is set aside.
  const other = new Insitu({ ...OPTS, variants: ["x", "y"] });
  assert.equal(other.restore(store.bytes, { slot: "hero", now: 16 }).modelChanged, true);
  assert.equal(updates(other), 0);
});

test("sync() under a small maxBytes drops the earliest-expiring pending decisions and says how many (trimmed)", async () => {
  const slot = new Insitu(OPTS);
  const ids = [];
  for (let t = 0; t < 400; t++) ids.push(slot.rank(ctx(t)).decisionId);
  const roomy = slot.sync(null, { slot: "hero", now: 1e6 });
  assert.equal(roomy.trimmed, 0);
  const r = slot.sync(null, { slot: "hero", now: 1e6, maxBytes: 4096 });
  assert.ok(r.trimmed > 0 && r.trimmed < 400, `trimmed ${r.trimmed}`);
  assert.ok(r.bytes.length <= 4096, `${r.bytes.length} bytes`);
  // A slot restored from those bytes can settle the latest decision, not the earliest.
  const other = new Insitu(OPTS);
  other.restore(r.bytes, { slot: "hero", now: 1e6 });
  other.reward({ decisionId: ids[399], reward: 1, now: 1e6 });
  throwsCode(() => other.reward({ decisionId: ids[0], reward: 1, now: 1e6 }), "UNKNOWN_DECISION");
});

test("a site whose snapshot cannot hold every pending decision records pending-trimmed in its audit history", async () => {
  const { loadReady, MemoryStorage } = await import("./helpers.mjs");
  const site = await loadReady({ storage: new MemoryStorage(), consent: "personalization", maxBytes: 4096, flushDelayMs: 60_000 });
  const hero = site.slot("hero", OPTS);
  // The site's own clock: decisions pending now, not expired.
  for (let t = 0; t < 400; t++) hero.rank({ context: ctx(t).context });
  const f = await site.flush();
  assert.equal(f.written, true);
  const h = site.audit().history.find((x) => x.event === "pending-trimmed");
  assert.ok(h, JSON.stringify(site.audit().history));
  assert.equal(h.key, "hero");
  assert.match(h.detail, /^\d+ pending decisions dropped/);
  site.close();
});
