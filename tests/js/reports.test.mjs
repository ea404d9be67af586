// Reports (issue #22, part 1) through the built package: a slot with
// `reports` keeps its period's statistics in the snapshot, the first flush
// of a later period hands one report to `onReport` and lists it in the
// ledger, which `audit()` shows with the exact payload; consent, forget(),
// two tabs, bad options and damaged stored data. Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkAudit, corruptSection, Insitu, loadSite, manualSite, MemoryStorage, open, throwsCode, validateAudit as validate, withGlobal } from "./helpers.mjs";


const DAY = 86_400_000;
/** 2026-12-06T09:00Z. */
const T0 = Date.UTC(2026, 11, 6, 9);
const BOUNDS = { decisions: 1000, exposures: 1000, rewards: 1000, xy: 1000, xx: 1000 };
const SLOT = { variants: ["a", "b", "c"], features: { allow: ["page"], bits: 4 }, seed: 7 };
const REPORTS = { task: "shop-hero", bounds: BOUNDS, segment: "mobile" };

/** A site on `storage` with a manual clock, collecting reports and errors. */
const site = (storage, extra = {}) => manualSite(storage, T0, extra);

/** `n` decisions on `slot`, every third one deferred and never shown, the rest rewarded 1 on `b`; the counts the test expects. */
function decide(slot, n, clock, seen = { decisions: [0, 0, 0], exposures: [0, 0, 0], rewards: [0, 0, 0] }) {
  for (let i = 0; i < n; i++) {
    clock.t += 1000;
    const defer = i % 3 === 2;
    const d = slot.rank({ context: { page: { section: ["news", "sports"][i % 2] } }, defer });
    assert.equal(d.fallback, false, String(d.error));
    seen.decisions[d.index]++;
    if (defer) continue;
    seen.exposures[d.index]++;
    const r = d.variant === "b" ? 1 : 0;
    slot.reward({ decisionId: d.decisionId, reward: r });
    seen.rewards[d.index] += r;
  }
  return seen;
}

test("a closed period reaches onReport once, as the ledger and the audit show it", async () => {
  const storage = new MemoryStorage();
  const { s, clock, reports, errors } = site(storage);
  const slot = s.slot("hero", { ...SLOT, reports: REPORTS });
  const seen = decide(slot, 30, clock);
  assert.equal((await s.flush()).written, true);
  assert.equal(reports.length, 0, "nothing within the period");
  assert.deepEqual(checkAudit(s).reports[0].ledger, []);

  clock.t += DAY;
  assert.equal((await s.flush()).written, true);
  assert.deepEqual(errors, []);
  assert.equal(reports.length, 1);
  const r = reports[0];
  const K = 3;
  const d = 16;
  assert.deepEqual(
    { v: r.v, task: r.task, period: r.period, key: r.key, owner: r.owner, segment: r.segment, clipped: r.clipped },
    { v: 1, task: "shop-hero", period: "2026-12-06", key: "hero", owner: "slot", segment: "mobile", clipped: [] },
  );
  assert.equal(r.measurement.length, 1 + 3 * K + 3 * K * d);
  assert.deepEqual(r.vdaf, { type: "Prio3SumVec", bits: r.vdaf.bits, length: 1 + 3 * K + 3 * K * d, chunkLength: Math.round(Math.sqrt(r.vdaf.bits * (1 + 3 * K + 3 * K * d))) });
  // 1000 · 256 needs 18 bits.
  assert.equal(r.vdaf.bits, 18);
  assert.ok(r.measurement.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** r.vdaf.bits));
  // The counts are the test's own, in the measurement's order.
  assert.equal(r.measurement[0], 1);
  assert.deepEqual(r.measurement.slice(1, 1 + K), seen.decisions);
  assert.deepEqual(r.measurement.slice(1 + K, 1 + 2 * K), seen.exposures);
  assert.deepEqual(r.measurement.slice(1 + 2 * K, 1 + 3 * K), seen.rewards.map((x) => x * 256));
  assert.ok(r.measurement.slice(1 + 3 * K).some((x) => x > 0), "the learner's statistics are there");
  assert.deepEqual(r.taskFile, {
    format: 1, task: "shop-hero", period: "2026-12-06", key: "hero", variants: K, slots: d, scale: 256, bounds: BOUNDS,
  });
  assert.deepEqual(JSON.parse(r.line), { v: 1, task: "shop-hero", period: "2026-12-06", key: "hero", segment: "mobile", measurement: r.measurement });

  const a = checkAudit(s);
  assert.equal(a.network, "none");
  const entry = a.reports[0];
  assert.deepEqual([entry.key, entry.owner], ["hero", "slot"]);
  assert.deepEqual(entry.ledger, [{
    period: "2026-12-06", task: "shop-hero", outcome: "reported", clipped: [], length: r.measurement.length,
    bits: 18, scale: 256, bounds: BOUNDS,
  }]);
  assert.deepEqual(entry.last, { period: "2026-12-06", task: "shop-hero", measurement: r.measurement }, "the exact payload");
  assert.ok(a.history.some((h) => h.event === "report" && h.key === "hero"));

  // More flushes in the new period report nothing more.
  decide(slot, 3, clock);
  await s.flush();
  clock.t += 1000;
  await s.flush();
  assert.equal(reports.length, 1);
  s.close();

  // A reload in a later period reports the period after, once.
  const next = site(storage);
  next.clock.t = T0 + 2 * DAY;
  next.s.slot("hero", { ...SLOT, reports: REPORTS });
  await next.s.flush();
  assert.equal(next.reports.length, 1);
  assert.equal(next.reports[0].period, "2026-12-07");
  assert.deepEqual(next.reports[0].measurement.slice(1, 1 + K).reduce((x, y) => x + y), 3);
  assert.equal(checkAudit(next.s).reports[0].ledger.length, 2);
  next.s.close();
});

test("the bounds clip a report and the ledger names the groups", async () => {
  const { s, clock, reports } = site(new MemoryStorage());
  const slot = s.slot("hero", { ...SLOT, reports: { task: "t", bounds: { decisions: 4, rewards: 2 } } });
  decide(slot, 30, clock);
  await s.flush();
  clock.t += DAY;
  await s.flush();
  const r = reports[0];
  assert.deepEqual(r.clipped, ["decisions", "rewards"].concat(r.clipped.filter((g) => g !== "decisions" && g !== "rewards")));
  assert.ok(r.measurement.slice(1, 4).reduce((x, y) => x + y) <= 4);
  assert.ok(r.measurement.slice(7, 10).reduce((x, y) => x + y) <= 2 * 256);
  assert.deepEqual(checkAudit(s).reports[0].ledger[0].clipped, r.clipped);
  s.close();
});

test("two tabs add up, and only one of them reports the period", async () => {
  const storage = new MemoryStorage();
  const a = site(storage);
  const b = site(storage);
  const sa = a.s.slot("hero", { ...SLOT, reports: REPORTS });
  const sb = b.s.slot("hero", { ...SLOT, reports: REPORTS });
  const seen = decide(sa, 10, a.clock);
  decide(sb, 14, b.clock, seen);
  await a.s.flush();
  await b.s.flush();
  decide(sa, 5, a.clock, seen);
  await a.s.flush();
  a.clock.t += DAY;
  b.clock.t += DAY;
  await b.s.flush();
  await a.s.flush();
  assert.equal(a.reports.length + b.reports.length, 1, "one report for the device");
  const [r] = [...a.reports, ...b.reports];
  assert.deepEqual(r.measurement.slice(1, 4), seen.decisions);
  assert.deepEqual(r.measurement.slice(4, 7), seen.exposures);
  a.s.close();
  b.s.close();
});

test("consent: nothing under none or functional, lowering it drops the period, forget() leaves no ledger", async () => {
  for (const tier of ["none", "functional"]) {
    const storage = new MemoryStorage();
    const { s, clock, reports } = site(storage, { consent: tier });
    decide(s.slot("hero", { ...SLOT, reports: REPORTS }), 10, clock);
    await s.flush();
    clock.t += DAY;
    await s.flush();
    assert.deepEqual(reports, [], tier);
    assert.equal(storage.getItem("insitu"), null, tier);
    assert.deepEqual(checkAudit(s).reports.flatMap((x) => x.ledger), [], tier);
    s.close();
  }
  // Lowered during the period: what was counted goes, stored or not.
  const storage = new MemoryStorage();
  const { s, clock, reports } = site(storage);
  const slot = s.slot("hero", { ...SLOT, reports: REPORTS });
  decide(slot, 10, clock);
  await s.flush();
  decide(slot, 4, clock);
  s.setConsent("functional");
  s.setConsent("personalization");
  const after = decide(slot, 2, clock);
  await s.flush();
  clock.t += DAY;
  await s.flush();
  assert.equal(reports.length, 1);
  assert.deepEqual(reports[0].measurement.slice(1, 4), after.decisions, "only what was counted since consent came back");
  // forget(): no ledger, nothing stored, and what was counted but not stored is gone too.
  decide(slot, 6, clock);
  const audit = s.forget();
  assert.ok(validate(audit), JSON.stringify(validate.errors));
  assert.deepEqual(audit.reports[0].ledger, []);
  assert.equal(audit.reports[0].last, null);
  assert.equal(storage.map.size, 0);
  for (let day = 0; day < 2; day++) {
    clock.t += DAY;
    await s.flush();
  }
  assert.equal(reports.length, 1, "nothing to report after forget()");
  s.close();
});

test("Global Privacy Control lowers the tier: no reports", async () => {
  const had = Object.getOwnPropertyDescriptor(globalThis, "navigator");
  Object.defineProperty(globalThis, "navigator", { value: { globalPrivacyControl: true }, configurable: true });
  try {
    const { s, clock, reports } = site(new MemoryStorage());
    decide(s.slot("hero", { ...SLOT, reports: REPORTS }), 10, clock);
    await s.flush();
    clock.t += DAY;
    await s.flush();
    assert.deepEqual(reports, []);
    s.close();
  } finally {
    if (had) Object.defineProperty(globalThis, "navigator", had);
    else delete globalThis.navigator;
  }
});

test("bad reports options go to onError with INVALID_OPTION and the slot makes no reports", async () => {
  const bad = [
    [5, "reports"],
    [{}, "reports.task"],
    [{ task: "" }, "reports.task"],
    [{ task: "a b" }, "reports.task"],
    [{ task: "t".repeat(257) }, "reports.task"],
    [{ task: "t", periodDays: 0 }, "reports.periodDays"],
    [{ task: "t", periodDays: 1.5 }, "reports.periodDays"],
    [{ task: "t", scale: 0 }, "reports.scale"],
    [{ task: "t", scale: 2 ** 21 }, "reports.scale"],
    [{ task: "t", bounds: { xy: -1 } }, "reports.bounds.xy"],
    [{ task: "t", bounds: { xy: NaN } }, "reports.bounds.xy"],
    [{ task: "t", bounds: { decisions: 0 } }, "reports.bounds.decisions"],
    [{ task: "t", bounds: { rewards: 0.001 } }, "reports.bounds.rewards"],
    [{ task: "t", bounds: { xx: 1e9 }, scale: 2 ** 20 }, "reports.bounds"],
    [{ task: "t", bounds: { xy: 1e308 }, scale: 2 }, "reports.bounds"],
    [{ task: "t", bounds: { nope: 1 } }, "reports.bounds.nope"],
    [{ task: "t", segment: "user-12345@example.com" }, "reports.segment"],
    [{ task: "t", learning: "yes" }, "reports.learning"],
    [{ task: "t", extra: 1 }, "reports.extra"],
    [new Proxy({}, { ownKeys() { throw new Error("trap"); } }), "reports"],
  ];
  for (const [options, field] of bad) {
    const { s, clock, reports, errors } = site(new MemoryStorage());
    const slot = s.slot("hero", { ...SLOT, reports: options });
    decide(slot, 4, clock);
    await s.flush();
    clock.t += DAY;
    await s.flush();
    assert.deepEqual(reports, [], field);
    assert.equal(errors.length, 1, `${field}: ${errors.map((e) => e.message)}`);
    assert.equal(errors[0].code, "INVALID_OPTION", errors[0].message);
    assert.ok(errors[0].message.includes(`\`${field}\``), `${field}: ${errors[0].message}`);
    assert.deepEqual(checkAudit(s).reports, []);
    s.close();
  }
  // A slot with too many learner entries: the learning statistics are refused, counts alone are not.
  const { s, errors } = site(new MemoryStorage());
  s.slot("wide", { ...SLOT, features: { allow: ["page"], bits: 12 }, reports: { task: "t" } });
  assert.equal(errors[0]?.code, "INVALID_OPTION");
  assert.ok(errors[0].message.includes("learning: false"), errors[0].message);
  s.slot("narrow", { ...SLOT, features: { allow: ["page"], bits: 12 }, reports: { task: "t", learning: false } });
  assert.equal(errors.length, 1);
  s.close();
  // The other entry points.
  throwsCode(() => new Insitu({ ...SLOT, reports: REPORTS }), "INVALID_OPTION");
  throwsCode(() => open({ onReport: 5 }), "INVALID_OPTION");
});

test("a throwing onReport breaks nothing, and the period stays reported", async () => {
  const storage = new MemoryStorage();
  let calls = 0;
  const { s, clock } = site(storage, { onReport: () => { calls++; throw new Error("boom"); } });
  const slot = s.slot("hero", { ...SLOT, reports: REPORTS });
  decide(slot, 5, clock);
  await s.flush();
  clock.t += DAY;
  assert.equal((await s.flush()).written, true);
  assert.equal(calls, 1);
  assert.equal(checkAudit(s).reports[0].ledger[0].outcome, "reported");
  assert.equal(slot.rank({ context: { page: { section: "news" } } }).fallback, false);
  s.close();
});

test("damaged report statistics start again; the learning and the other slots are kept", async () => {
  const storage = new MemoryStorage();
  const first = site(storage);
  const hero = first.s.slot("hero", { ...SLOT, reports: REPORTS });
  decide(hero, 12, first.clock);
  await first.s.flush();
  const updates = hero.stats().variants.reduce((n, v) => n + v.updates, 0);
  first.s.close();
  // Cut the report section short, then make the container's and the frame's checksums right again.
  storage.setItem("insitu", corruptSection(storage.getItem("insitu"), "report:hero"));
  const next = site(storage);
  const again = next.s.slot("hero", { ...SLOT, reports: REPORTS });
  assert.equal(again.stats().variants.reduce((n, v) => n + v.updates, 0), updates, "the learning is restored");
  decide(again, 2, next.clock);
  await next.s.flush();
  assert.ok(next.errors.some((e) => e.code === "SNAPSHOT_CORRUPT" && e.message.includes("report")), next.errors.map((e) => e.message).join("; "));
  next.clock.t += DAY;
  await next.s.flush();
  assert.equal(next.reports.length, 1);
  next.s.close();
});

/**
 * Web Locks played in memory, shared by the sites of one test: each name is
 * granted to one callback at a time, and `query` lists the names held.
 */
function lockManager() {
  const tails = new Map();
  const held = new Set();
  return {
    request(name, cb) {
      const run = async () => {
        held.add(name);
        try {
          return await cb({ name });
        } finally {
          held.delete(name);
        }
      };
      const p = (tails.get(name) ?? Promise.resolve()).then(run, run);
      tails.set(name, p.catch(() => {}));
      return p;
    },
    async query() {
      return { held: [...held].map((name) => ({ name })) };
    },
  };
}

test("a period closes only in a write that holds the lock; a write without it adds to the ended period", async () => {
  const locks = lockManager();
  const denied = { request: () => { throw new DOMException("denied", "SecurityError"); }, query: locks.query };
  const storage = new MemoryStorage();
  const { s, clock, reports, errors } = site(storage);
  const slot = s.slot("hero", { ...SLOT, reports: REPORTS });
  const seen = decide(slot, 9, clock);
  await withGlobal("navigator", { value: { locks } }, () => s.flush());
  clock.t += DAY;
  decide(slot, 4, clock, seen);
  // Locks refused (a sandboxed iframe): the write goes ahead, the ended period stays open and takes these decisions.
  const r = await withGlobal("navigator", { value: { locks: denied } }, () => s.flush());
  assert.equal(r.written, true);
  assert.deepEqual(reports, []);
  assert.ok(errors.some((e) => e.code === "STORAGE_UNAVAILABLE"), "the refused locks are reported");
  assert.deepEqual(checkAudit(s).reports[0].ledger, []);
  // With the lock, the period closes once; what was decided after it counts in the next one.
  const later = decide(slot, 2, clock);
  await withGlobal("navigator", { value: { locks } }, () => s.flush());
  assert.equal(reports.length, 1);
  assert.deepEqual(reports[0].measurement.slice(1, 4), seen.decisions);
  clock.t += DAY;
  await withGlobal("navigator", { value: { locks } }, () => s.flush());
  assert.equal(reports.length, 2);
  assert.deepEqual(reports[1].measurement.slice(1, 4), later.decisions);
  s.close();
});

test("a changed variant list drops the period's statistics and says so; a returning unit's exposure counts once", async () => {
  const storage = new MemoryStorage();
  const first = site(storage);
  decide(first.s.slot("hero", { ...SLOT, reports: REPORTS }), 5, first.clock);
  await first.s.flush();
  first.s.close();
  const next = site(storage);
  const renamed = next.s.slot("hero", { ...SLOT, variants: ["a", "b", "d"], reports: REPORTS });
  const mine = decide(renamed, 3, next.clock);
  await next.s.flush();
  next.clock.t += DAY;
  await next.s.flush();
  assert.deepEqual(next.reports.map((r) => r.measurement.slice(1, 4)), [mine.decisions], "only the new list's decisions");
  assert.deepEqual(checkAudit(next.s).reports[0].ledger.map((e) => e.outcome), ["dropped-features-changed", "reported"]);
  next.s.close();

  // A unit exposed on a first visit that was left before the full engine stored anything: on its
  // next visit (the first-decision module again) the exposure is not counted a second time.
  const units = new MemoryStorage();
  let now = T0;
  const left = await loadSite({ storage: units, consent: "personalization", now: () => now });
  left.experiments([{ key: "cta", variants: ["a", "b"], reports: { task: "t" } }]);
  left.run("cta");
  left.close();
  const reports = [];
  const again = await loadSite({ storage: units, consent: "personalization", now: () => now, onReport: (r) => reports.push(r) });
  again.experiments([{ key: "cta", variants: ["a", "b"], reports: { task: "t" } }]);
  const a = again.run("cta");
  await again.ready;
  await again.flush();
  now += DAY;
  await again.flush();
  assert.deepEqual(reports[0].measurement.slice(1, 5), [...[0, 1].map((i) => (i === a.index ? 1 : 0)), 0, 0]);
  again.close();
});

test("an onReport that reads the audit sees its report in the ledger", async () => {
  let ledger = null;
  const { s, clock } = site(new MemoryStorage(), { onReport: () => (ledger = s.audit().reports[0].ledger) });
  decide(s.slot("hero", { ...SLOT, reports: REPORTS }), 3, clock);
  await s.flush();
  clock.t += DAY;
  await s.flush();
  assert.equal(ledger?.length, 1);
  assert.equal(ledger[0].outcome, "reported");
  s.close();
});

test("an A/B experiment with reports: its assignments, first exposure and rewards, once per period", async () => {
  const storage = new MemoryStorage();
  const { s, clock, reports, errors } = site(storage);
  s.experiments([{ key: "cta", variants: ["a", "b"], reports: { task: "ab-cta", segment: "mobile" } }]);
  // Without run() on this page view there is no variant to reward.
  throwsCode(() => s.rewardExperiment("cta", 1), "UNKNOWN_DECISION");
  const a = s.run("cta");
  assert.equal(a.inExperiment, true);
  s.run("cta");
  s.run("cta");
  s.rewardExperiment("cta", 1);
  s.rewardExperiment("cta", 0.5);
  await s.flush();
  clock.t += DAY;
  await s.flush();
  assert.deepEqual(errors, []);
  assert.equal(reports.length, 1);
  const r = reports[0];
  const counts = (k) => [0, 1].map((i) => (i === a.index ? k : 0));
  // reports, decisions[2], exposures[2], rewards[2] (fixed point, 256 to 1.0).
  assert.deepEqual(r.measurement, [1, ...counts(3), ...counts(1), ...counts(1.5 * 256)]);
  assert.deepEqual([r.key, r.task, r.segment, r.taskFile.slots, r.taskFile.variants], ["cta", "ab-cta", "mobile", 0, 2]);
  const audit = checkAudit(s);
  const entry = audit.reports.find((x) => x.owner === "experiment");
  assert.deepEqual([entry.key, entry.learning, entry.ledger.length, entry.last.measurement], ["cta", false, 1, r.measurement]);
  // The next page view: the unit's exposure is not first any more; its assignments still count.
  s.close();
  const next = site(storage);
  next.clock.t = T0 + DAY + 1000;
  next.s.experiments([{ key: "cta", variants: ["a", "b"], reports: { task: "ab-cta", segment: "mobile" } }]);
  next.s.run("cta");
  await next.s.flush();
  next.clock.t += DAY;
  await next.s.flush();
  assert.deepEqual(next.reports[0].measurement.slice(1, 5), [...counts(1), 0, 0]);
  next.s.close();
});

test("experiments: rewards of a fixed-weights test without reports still need a bandit; bad options and consent", async () => {
  const { s, clock, reports, errors } = site(new MemoryStorage());
  s.experiments([
    { key: "plain", variants: ["a", "b"] },
    { key: "bad", variants: ["a", "b"], reports: { task: "t", learning: true } },
  ]);
  s.run("plain");
  throwsCode(() => s.rewardExperiment("plain", 1), "UNKNOWN_DECISION");
  s.run("bad");
  await s.flush();
  clock.t += DAY;
  await s.flush();
  assert.deepEqual(reports, []);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, "INVALID_OPTION");
  assert.ok(errors[0].message.includes("`reports.learning`"), errors[0].message);
  s.close();
  // Under functional consent an experiment runs, and reports nothing.
  const f = site(new MemoryStorage(), { consent: "functional" });
  f.s.experiments([{ key: "cta", variants: ["a", "b"], reports: { task: "t" } }]);
  f.s.run("cta");
  f.s.rewardExperiment("cta", 1);
  await f.s.flush();
  f.clock.t += DAY;
  await f.s.flush();
  assert.deepEqual(f.reports, []);
  f.s.close();
});

test("assignments made before the full engine arrives count in the experiment's report", async () => {
  const storage = new MemoryStorage();
  let now = T0;
  const reports = [];
  const s = await loadSite({ storage, consent: "personalization", now: () => now, flushDelayMs: 60_000, onReport: (r) => reports.push(r) });
  s.experiments([{ key: "cta", variants: ["a", "b"], reports: { task: "t" } }]);
  const a = s.run("cta");
  s.rewardExperiment("cta", 1);
  await s.ready;
  await s.flush();
  now += DAY;
  await s.flush();
  assert.equal(reports.length, 1);
  const at = (k) => [0, 1].map((i) => (i === a.index ? k : 0));
  assert.deepEqual(reports[0].measurement, [1, ...at(1), ...at(1), ...at(256)]);
  s.close();
});

test("a task has one owner: a second slot or experiment reporting to it is refused", async () => {
  const { s, clock, reports, errors } = site(new MemoryStorage());
  decide(s.slot("hero", { ...SLOT, reports: { task: "shared" } }), 3, clock);
  s.experiments([{ key: "cta", variants: ["a", "b"], reports: { task: "shared" } }]);
  s.run("cta");
  await s.flush();
  clock.t += DAY;
  await s.flush();
  assert.deepEqual(reports.map((r) => [r.key, r.owner]), [["hero", "slot"]]);
  assert.equal(errors.length, 1, errors.map((e) => e.message).join("; "));
  assert.equal(errors[0].code, "INVALID_OPTION");
  assert.ok(errors[0].message.includes("`reports.task`") && errors[0].message.includes("slot `hero`"), errors[0].message);
  s.close();
});
