// Offline evaluation (`slot.evaluate()`), apprentice mode and the evaluation
// CLI (scripts/evaluate.mjs), through the built package (issue #24).
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Insitu, MemoryStorage, loadSite, throwsCode } from "./helpers.mjs";
import { main } from "../../scripts/evaluate.mjs";

const T0 = 1_700_000_050_000;
const SLOT = { variants: ["a", "b", "c"], features: { allow: ["page"] }, seed: 5, policy: { type: "egreedy", epsilon: 0.3 } };
const ctx = (t) => ({ page: { section: ["news", "sports", "tech"][t % 3] } });

/** A site on fresh storage, its clock at T0 + t ms. */
async function site(storage = new MemoryStorage()) {
  let t = 0;
  const s = await loadSite({ storage, consent: "personalization", now: () => T0 + t++ });
  return s;
}

test("evaluate: null before the full engine, NO_DATA before a settled decision, then every candidate with intervals", async () => {
  const storage = new MemoryStorage();
  const s = await site(storage);
  const hero = s.slot("hero", SLOT);
  const first = hero.rank({ context: ctx(0) });
  assert.equal(hero.evaluate(), null, "the first-decision module has no evaluation");
  await s.ready;
  throwsCode(() => hero.evaluate(), "NO_DATA");
  let sum = 0;
  hero.reward({ decisionId: first.decisionId, reward: first.variant === "b" ? 1 : 0 });
  sum += first.variant === "b" ? 1 : 0;
  for (let t = 1; t < 150; t++) {
    const d = hero.rank({ context: ctx(t) });
    const r = d.variant === "b" ? 1 : 0;
    sum += r;
    hero.reward({ decisionId: d.decisionId, reward: r });
  }
  hero.rank({ context: ctx(0) }); // not settled: not counted
  const e = hero.evaluate();
  assert.equal(e.decisions, 150);
  assert.equal(e.level, 0.95);
  assert.equal(e.method, "normal");
  assert.deepEqual(e.estimates.map((x) => x.variant ?? x.policy), ["served", "policy", "greedy", "uniform", "a", "b", "c"]);
  const [served, policy] = e.estimates;
  assert.ok(Math.abs(served.ips.value - sum / 150) < 1e-12);
  assert.deepEqual(served.ips, policy.ips, "the slot serves its policy");
  for (const x of e.estimates) {
    assert.ok(x.ess > 0 && x.ess <= 150 + 1e-9);
    for (const k of ["ips", "dr", "lift"]) {
      // An interval needs an effective sample size of 10 (src/eval/ MIN_ESS); below it, null bounds.
      if (x.ess >= 10) assert.ok(x[k].low <= x[k].value && x[k].value <= x[k].high, `${x.policy} ${k}`);
      else assert.deepEqual([x[k].low, x[k].high], [null, null], `${x.policy} ${k}`);
    }
  }
  // `b` always pays and `a` never: their estimates say so.
  const b = e.estimates.find((x) => x.variant === "b");
  const a = e.estimates.find((x) => x.variant === "a");
  assert.equal(b.snips.value, 1);
  assert.equal(a.snips.value, 0);
  assert.ok(e.matchRate >= 0 && e.matchRate <= 1);
  // A wider level, a wider interval; bad options change nothing.
  const wide = hero.evaluate({ level: 0.99 }).estimates[0].dr;
  assert.ok(wide.high - wide.low > served.dr.high - served.dr.low);
  for (const bad of [{ level: 2 }, { level: "0.9" }, { lvl: 0.9 }, 7]) throwsCode(() => hero.evaluate(bad), "INVALID_OPTION");
  assert.deepEqual(hero.evaluate(), e);
  // Stored with the learning: the next page view evaluates the same decisions.
  await s.flush();
  const again = await site(storage);
  const h2 = again.slot("hero", SLOT);
  await again.ready;
  assert.deepEqual(h2.evaluate().estimates, e.estimates);
});

test("apprentice mode serves only the baseline, with probability 1, before and after the full engine, and learns in the shadow", async () => {
  const s = await site();
  const options = { ...SLOT, policy: { type: "apprentice", baseline: "c", learner: { type: "egreedy", epsilon: 0.3 } } };
  const hero = s.slot("hero", options);
  assert.equal(hero.policy, "apprentice");
  const early = hero.rank({ context: ctx(0) });
  assert.deepEqual([early.variant, early.probability, early.pmf, early.policy, early.fallback], ["c", 1, [0, 0, 1], "apprentice", false]);
  await s.ready;
  hero.reward({ decisionId: early.decisionId, reward: 0 });
  for (let t = 1; t < 300; t++) {
    const d = hero.rank({ context: ctx(t) });
    assert.deepEqual([d.variant, d.probability, d.pmf], ["c", 1, [0, 0, 1]]);
    hero.reward({ decisionId: d.decisionId, reward: t % 3 === 1 ? 1 : 0 });
  }
  const e = hero.evaluate();
  assert.equal(e.decisions, 300);
  const served = e.estimates[0];
  const c = e.estimates.find((x) => x.variant === "c");
  assert.deepEqual(served.ips, c.ips, "what it served is the baseline");
  const policy = e.estimates[1];
  assert.ok(policy.lift.low <= policy.lift.value && policy.lift.value <= policy.lift.high);
  assert.ok(hero.stats().variants.find((v) => v.id === "c").updates === 300, "the shadow learner learned every reward");
});

test("a baseline function picks per context; one that throws or names no variant gets the fallback and changes nothing", async () => {
  const s = await site();
  let mode = "ok";
  const baseline = (context) => {
    if (mode === "throw") throw new Error("boom");
    if (mode === "unknown") return "zzz";
    return context.page.section === "sports" ? "b" : "a";
  };
  const hero = s.slot("hero", { ...SLOT, fallback: "c", policy: { type: "apprentice", baseline } });
  await s.ready;
  assert.equal(hero.rank({ context: ctx(1) }).variant, "b");
  assert.equal(hero.rank({ context: ctx(0) }).variant, "a");
  const pending = hero.stats().pending;
  for (const [m, code] of [["throw", "INVALID_OPTION"], ["unknown", "UNKNOWN_VARIANT"]]) {
    mode = m;
    const d = hero.rank({ context: ctx(0) });
    assert.equal(d.fallback, true);
    assert.equal(d.variant, "c");
    assert.equal(d.error.code, code);
    assert.match(d.error.message, /policy\.baseline/);
    assert.equal(hero.stats().pending, pending, "no decision was made");
  }
});

test("an apprentice with a fixed baseline falls back to it: it never serves anything else", async () => {
  const s = await site();
  const hero = s.slot("hero", { ...SLOT, policy: { type: "apprentice", baseline: "b" } });
  await s.ready;
  const d = hero.rank({ context: "not an object" });
  assert.deepEqual([d.fallback, d.variant, d.error.code], [true, "b", "INVALID_CONTEXT"]);
  // A fallback the site names wins.
  const named = s.slot("named", { ...SLOT, fallback: "a", policy: { type: "apprentice", baseline: "b" } });
  assert.equal(named.rank({ context: 7 }).variant, "a");
});

test("apprentice options are checked", async () => {
  const s = await site();
  const bad = [
    { type: "apprentice" },
    { type: "apprentice", baseline: "nope" },
    { type: "apprentice", baseline: 1 },
    { type: "apprentice", baseline: "a", learner: { type: "apprentice", baseline: "a" } },
    { type: "apprentice", baseline: "a", alpha: 1 },
    { type: "apprentice", baseline: "a", learner: { type: "linucb", epsilon: 1 } },
  ];
  bad.forEach((policy, i) => {
    const e = throwsCode(() => s.slot(`s${i}`, { ...SLOT, policy }), "INVALID_OPTION");
    assert.match(e.message, /policy/);
  });
});

test("learn with the log's probability counts in the evaluation; a bad probability changes nothing", () => {
  const slot = new Insitu(SLOT);
  slot.learn({ context: ctx(0), variant: "a", reward: 1 });
  throwsCode(() => slot.evaluate(), "NO_DATA");
  slot.learn({ context: ctx(0), variant: "a", reward: 1, probability: 0.5 });
  assert.equal(slot.evaluate().decisions, 1);
  const updates = slot.stats().variants[0].updates;
  for (const p of [0, 1.5, -1, "0.5", Number.NaN]) {
    throwsCode(() => slot.learn({ context: ctx(0), variant: "a", reward: 1, probability: p }), "INVALID_OPTION");
  }
  assert.equal(slot.evaluate().decisions, 1);
  assert.equal(slot.stats().variants[0].updates, updates);
  slot.close();
});

test("the CLI evaluates exported logs, skips bad lines with their number and code, and says NO_DATA", async () => {
  const dir = mkdtempSync(join(tmpdir(), "insitu-eval-"));
  try {
    // A uniform logging policy on three actions; the action matching the context pays 0.8, others 0.2.
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const lines = [];
    for (let t = 0; t < 3000; t++) {
      const c = Math.floor(rnd() * 3);
      const a = Math.floor(rnd() * 3);
      const r = rnd() < (a === c ? 0.8 : 0.2) ? 1 : 0;
      lines.push(JSON.stringify({ shared: { [`c${c}`]: 1 }, action: a, probability: 1 / 3, reward: r }));
    }
    lines.splice(10, 0, "not json", JSON.stringify({ shared: {}, action: 9, probability: 0.5, reward: 1 }), JSON.stringify({ shared: {}, action: 0, reward: 1 }));
    const file = join(dir, "log.jsonl");
    writeFileSync(file, lines.join("\n"));
    const out = [];
    const err = [];
    const io = { out: (s) => out.push(s), err: (s) => err.push(s) };
    assert.equal(await main(["--actions", "3", "--json", file], io), 0);
    const e = JSON.parse(out[0]);
    assert.equal(e.decisions, 3000);
    assert.equal(e.skipped, 3);
    assert.deepEqual(err.map((x) => x.match(/^line (\d+): skipped \((\w+)\)/).slice(1)), [["11", "BAD_JSON"], ["12", "BAD_LINE"], ["13", "BAD_LINE"]]);
    // Served is the uniform log (0.4); the learner replayed on it finds the matching action (0.8).
    const [served, , greedy] = e.estimates;
    assert.ok(Math.abs(served.ips.value - 0.4) < 0.03, `${served.ips.value}`);
    assert.ok(greedy.dr.low > served.dr.high, "the learner's greedy policy beats the log, with intervals apart");
    assert.ok(greedy.dr.value > 0.7 && greedy.dr.value < 0.85, `${greedy.dr.value}`);
    // The table form names every candidate.
    out.length = 0;
    assert.equal(await main(["--actions", "3", file], { out: (s) => out.push(s), err: () => {} }), 0);
    for (const name of ["served", "policy", "greedy", "uniform", "variant 0", "variant 2"]) assert.match(out[0], new RegExp(name));
    // Nothing to evaluate, and bad arguments.
    const empty = join(dir, "empty.jsonl");
    writeFileSync(empty, "");
    err.length = 0;
    assert.equal(await main(["--actions", "3", empty], io), 2);
    assert.match(err.at(-1), /NO_DATA/);
    const bad = [[], ["--actions", "0"], ["--actions", "3", "--slot", file], ["--bogus"], ["--actions", "3", "--level", "2", file], ["--actions", "3", join(dir, "missing.jsonl")]];
    for (const args of bad) assert.equal(await main(args, io), 1, args.join(" "));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
