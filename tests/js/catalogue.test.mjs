// Catalogues (`catalogue: true`: one learner shared by the variants through
// their features) and slates (`rank({ k })`), through the built package on
// both modules (issue #24, part 4).
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { Insitu, MemoryStorage, isFallback, loadSite, rng, throwsCode } from "./helpers.mjs";

const T0 = 1_700_000_050_000;
const CATS = ["shoes", "bags", "hats", "coats", "belts"];
/** `n` products, each described by its category and a price band. */
const products = (n) =>
  Array.from({ length: n }, (_, i) => ({ id: `p${i}`, features: { item: { cat: CATS[i % 5], band: `b${i % 3}` } } }));
const CATALOGUE = (n, extra = {}) => ({
  variants: products(n),
  features: { allow: ["item", "page"] },
  catalogue: true,
  seed: 9,
  ...extra,
});
const ctx = (t) => ({ page: { section: CATS[t % 5] } });

async function site(storage = new MemoryStorage(), extra = {}) {
  let t = 0;
  return loadSite({ storage, consent: "personalization", now: () => T0 + t++, ...extra });
}

/** Check a slate: `k` distinct variants, ids one apart, probabilities in (0, 1]. */
function checkSlate(d, k) {
  assert.equal(d.fallback, false, d.error?.message);
  assert.equal(d.slate.length, k);
  assert.equal(new Set(d.slate.map((x) => x.index)).size, k, "distinct variants");
  assert.equal(d.slate[0].index, d.index);
  assert.equal(d.slate[0].decisionId, d.decisionId);
  assert.equal(d.slate[0].probability, d.probability);
  const [epoch, first] = d.decisionId.split("-");
  d.slate.forEach((x, j) => {
    assert.equal(x.decisionId, `${epoch}-${Number(first) + j}`);
    assert.equal(x.variant, `p${x.index}`);
    assert.ok(x.probability > 0 && x.probability <= 1, `${x.probability}`);
  });
}

test("a catalogue of 1,000 products ranks slates on both modules, settles each position, learns and is stored", async () => {
  const storage = new MemoryStorage();
  const s = await site(storage);
  const row = s.slot("row", CATALOGUE(1000));
  // Per-call actions are refused before anything is logged for the full engine.
  isFallback(row.rank({ actions: [] }), "p0", "INVALID_CONTEXT");
  throwsCode(() => row.learn({ actions: products(1000).map((p) => p.features), variant: "p1", reward: 1 }), "INVALID_CONTEXT");
  // The first-decision module: the prior, a slate of 4.
  const d0 = row.rank({ context: ctx(0), k: 4 });
  checkSlate(d0, 4);
  assert.equal(d0.pmf.length, 1000);
  // The default floor is 0.1 shared by the 1,000 (0.0001 each), not 0.001 each (a uniform pmf).
  // At the prior the shared learner ties every product: each position is uniform over what is left.
  d0.slate.forEach((x, j) => assert.ok(Math.abs(x.probability - 1 / (1000 - j)) < 1e-9, `position ${j}: ${x.probability}`));
  row.reward({ decisionId: d0.slate[2].decisionId, reward: 1 });
  throwsCode(() => row.reward({ decisionId: d0.slate[2].decisionId, reward: 1 }), "DUPLICATE_REWARD");
  await s.ready;
  // Handed over: the other positions settle on the full engine, once.
  for (const j of [0, 1, 3]) row.reward({ decisionId: d0.slate[j].decisionId, reward: 0 });
  throwsCode(() => row.reward({ decisionId: d0.slate[1].decisionId, reward: 0 }), "DUPLICATE_REWARD");
  assert.equal(row.stats().variants.reduce((n, v) => n + v.updates, 0), 4);
  // Section s likes category s: a product of the page's category pays.
  const r = rng(4);
  let early = 0;
  let late = 0;
  for (let t = 1; t <= 1500; t++) {
    const d = row.rank({ context: ctx(t), k: 3 });
    checkSlate(d, 3);
    for (const x of d.slate) {
      const pays = CATS[x.index % 5] === ctx(t).page.section;
      const reward = r() < (pays ? 0.5 : 0.05) ? 1 : 0;
      row.reward({ decisionId: x.decisionId, reward });
      if (t <= 200) early += reward / 600;
      if (t > 1000) late += reward / 1500;
    }
  }
  // Uniform pays 0.2 × 0.5 + 0.8 × 0.05 = 0.14 a position; the best slate 0.5. Over 1,500 positions the
  // sd is at most 0.013, so 0.3 is 12 sd above uniform.
  assert.ok(late > 0.3, `late ${late}, early ${early}`);
  // Its evaluation is not kept, it has no reports and no explanation.
  throwsCode(() => row.evaluate(), "NO_DATA");
  for (const variant of [undefined, "p0", "p7"]) {
    const e = throwsCode(() => row.explain({ context: ctx(1), variant }), "INVALID_OPTION");
    assert.match(e.message, /catalogue/);
  }
  // The next page view decides on the stored learning, as this one would.
  await s.flush();
  const probe = { context: ctx(2), k: 3, seed: 77 };
  const here = row.rank(probe);
  const again = await site(storage);
  const row2 = again.slot("row", CATALOGUE(1000));
  await again.ready;
  const there = row2.rank(probe);
  assert.deepEqual(there.slate.map((x) => [x.index, x.probability]), here.slate.map((x) => [x.index, x.probability]));
  // What is stored is the weights the stream touched (6 context slots, the bias and 5 sections, times
  // 8 product slots, 5 categories and 3 bands: 48 of 4,096), not a learner per product.
  const stored = [...storage.map].reduce((n, [k, v]) => n + k.length + v.length, 0);
  assert.ok(stored < 4000, `${stored} characters stored`);
});

test("catalogue options are checked: features required, no model, bits, 4,096 variants; nothing is created", async () => {
  const s = await site();
  const bad = (options, field) => {
    const e = throwsCode(() => s.slot("row", options), "INVALID_OPTION");
    assert.ok(e.message.includes(field), `${e.message} should name ${field}`);
  };
  bad({ ...CATALOGUE(3), variants: [...products(2), "plain"] }, "variants[2].features");
  bad({ ...CATALOGUE(3), variants: [...products(2), { id: "z", features: { item: { price: 0 } } }] }, "variants[2].features");
  bad({ ...CATALOGUE(3), catalogue: { bits: 11 } }, "catalogue.bits");
  bad({ ...CATALOGUE(3), catalogue: { bits: 9 }, features: { allow: ["item"], bits: 8 } }, "catalogue.bits");
  bad({ ...CATALOGUE(3), catalogue: { width: 2 } }, "catalogue.width");
  bad({ ...CATALOGUE(3), catalogue: "yes" }, "catalogue");
  bad({ ...CATALOGUE(4097) }, "variants");
  bad({ variants: products(65).map((v) => v.id) }, "variants");
  bad({ model: { format: 1, features: {}, variants: [{ id: "a" }, { id: "b" }] }, catalogue: true }, "catalogue");
  bad({ ...CATALOGUE(3), reports: { task: "t" } }, "reports");
  // The catalogue's version is its weights' space: the same after products come and go.
  const v = (n) => s.slot(`v${n}`, CATALOGUE(n)).modelVersion;
  assert.equal(v(50), v(70));
  assert.notEqual(v(60), s.slot("v60b", CATALOGUE(60, { priorVariance: 0.5 })).modelVersion);
  // 4,096 is fine, and so is a plain slot of 64.
  assert.equal(s.slot("big", CATALOGUE(4096)).variants.length, 4096);
  assert.equal(s.slot("plain", { variants: products(64).map((v) => v.id) }).variants.length, 64);
});

test("slates: k is checked, apprentice mode serves one, a fallback serves the fallback then the rest in order", async () => {
  const s = await site();
  const hero = s.slot("hero", { variants: ["a", "b", "c"], seed: 2 });
  const d = hero.rank({ k: 3 });
  checkSlateIds(d, 3);
  assert.equal(hero.rank().slate, undefined, "no slate unless asked");
  for (const k of [0, 4, 1.5, "2"]) {
    const f = hero.rank({ k });
    isFallback(f, "a", "INVALID_OPTION");
    assert.ok(f.error.message.includes("k"), f.error.message);
  }
  // A fallback still fills the row the call asked for, when k was a number it could read.
  const f = hero.rank({ k: 2, context: 7 });
  isFallback(f, "a", "INVALID_CONTEXT");
  assert.deepEqual(f.slate, [
    { variant: "a", index: 0, probability: 1, decisionId: null },
    { variant: "b", index: 1, probability: 1, decisionId: null },
  ]);
  const c = s.slot("c", { variants: ["a", "b", "c"], fallback: "c" });
  assert.deepEqual(c.rank({ k: 3, seed: -1 }).slate.map((x) => x.variant), ["c", "a", "b"]);
  const app = s.slot("app", { variants: ["a", "b", "c"], policy: { type: "apprentice", baseline: "b" } });
  isFallback(app.rank({ k: 2 }), "b", "INVALID_OPTION");
  assert.deepEqual(app.rank({ k: 1 }).slate.map((x) => [x.variant, x.probability]), [["b", 1]]);
  await s.ready;
  isFallback(app.rank({ k: 2 }), "b", "INVALID_OPTION");
  checkSlateIds(hero.rank({ k: 2 }), 2);
  // `new Insitu` (the full engine): the same slate for the same seed.
  const one = new Insitu({ variants: ["a", "b", "c", "d"], seed: 3 });
  const x = one.rank({ k: 4, seed: 11 });
  const y = one.rank({ k: 4, seed: 11 });
  assert.deepEqual(x.slate.map((e) => [e.index, e.probability]), y.slate.map((e) => [e.index, e.probability]));
  assert.deepEqual([...x.slate.map((e) => e.index)].sort(), [0, 1, 2, 3]);
  one.close();
});

/** A slate's shape, without the catalogue's id pattern. */
function checkSlateIds(d, k) {
  assert.equal(d.fallback, false, d.error?.message);
  assert.equal(d.slate.length, k);
  assert.equal(new Set(d.slate.map((x) => x.variant)).size, k);
  const [epoch, first] = d.decisionId.split("-");
  d.slate.forEach((x, j) => assert.equal(x.decisionId, `${epoch}-${Number(first) + j}`));
}

test("a catalogue's slate probabilities are the ones it draws with (χ² over seeded slates)", async () => {
  // A pmf that is not uniform: ε-greedy on the full engine after a few rewards for one product.
  const s = await site();
  const row = s.slot("row", CATALOGUE(6, { policy: { type: "egreedy", epsilon: 0.6, minProbability: 0 } }));
  await s.ready;
  for (let i = 0; i < 4; i++) row.learn({ variant: "p1", reward: 1 });
  const n = 6000;
  const counts = new Map();
  let pmf;
  for (let seed = 0; seed < n; seed++) {
    const d = row.rank({ k: 2, seed });
    pmf = d.pmf;
    const [a, b] = d.slate;
    assert.ok(Math.abs(b.probability - pmf[b.index] / (1 - pmf[a.index])) < 1e-12);
    const key = `${a.index},${b.index}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let chi2 = 0;
  let cells = 0;
  for (let a = 0; a < 6; a++) {
    for (let b = 0; b < 6; b++) {
      if (a === b) continue;
      const expected = n * pmf[a] * (pmf[b] / (1 - pmf[a]));
      chi2 += ((counts.get(`${a},${b}`) ?? 0) - expected) ** 2 / expected;
      cells++;
    }
  }
  // The χ² critical value at α = 0.001 (Wilson–Hilferty, z = 3.09).
  const df = cells - 1;
  const t = 2 / (9 * df);
  const critical = df * (1 - t + 3.09 * Math.sqrt(t)) ** 3;
  // ε-greedy, ε = 0.6 over 6: 0.5 for the learned best, 0.1 for each other.
  assert.ok(Math.abs(pmf[1] - 0.5) < 1e-12, `p1 learned: ${pmf[1]}`);
  assert.ok(chi2 < critical, `χ² ${chi2.toFixed(1)} over ${cells} cells, critical ${critical.toFixed(1)}`);
});

test("a slate made before the full engine arrives keeps the seed stream in step: the next decisions are a twin's", async () => {
  const options = CATALOGUE(300, { seed: 41 });
  // A: a slate of 5 on the first-decision module, handed over.
  const a = await site();
  const rowA = a.slot("row", options);
  const first = rowA.rank({ context: ctx(1), k: 5 });
  await a.ready;
  // B: the same slate on the full engine from the start.
  const b = await site();
  await b.ready;
  const rowB = b.slot("row", options);
  const twin = rowB.rank({ context: ctx(1), k: 5 });
  assert.deepEqual(first.slate.map((x) => [x.index, x.probability]), twin.slate.map((x) => [x.index, x.probability]));
  assert.equal(first.seed, twin.seed);
  for (let t = 2; t < 6; t++) {
    const [x, y] = [rowA.rank({ context: ctx(t), k: 3 }), rowB.rank({ context: ctx(t), k: 3 })];
    assert.equal(x.seed, y.seed, `decision ${t}: the seed streams are in step`);
    assert.deepEqual(x.slate.map((e) => e.index), y.slate.map((e) => e.index));
    assert.equal(x.decisionId.split("-")[1], y.decisionId.split("-")[1], "the same counters");
  }
});
