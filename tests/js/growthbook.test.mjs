// Migration from GrowthBook (pkg/growthbook.js, `insitu/growthbook`): the
// experiment rules of a GrowthBook SDK payload become insitu experiments
// that put 2,000 users where GrowthBook's own SDK (the devDependency
// @growthbook/growthbook, evalFeature) puts them, and every rule that
// cannot be served exactly so is listed with its reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { experimentsFromGrowthBook, featureValue, unitFor } from "../../pkg/growthbook.js";
import { open } from "./helpers.mjs";

const require = createRequire(import.meta.url);
const { GrowthBook } = require("@growthbook/growthbook");

const PAYLOAD = {
  features: {
    // Hash version 2, uneven weights, coverage, a seed, variation keys from meta.
    hero: {
      defaultValue: "plain",
      rules: [{ key: "hero-exp", variations: ["plain", "bold", "short"], weights: [0.5, 0.25, 0.25], coverage: 0.8, hashVersion: 2,
        seed: "s-1", meta: [{ key: "control" }, { key: "bold" }, { key: "short" }] }],
    },
    // Version 1 (the default), a namespace, and a condition: equality and a numeric range.
    cta: {
      defaultValue: false,
      rules: [{ variations: [false, true], namespace: ["ns1", 0, 0.5], condition: { country: "US", age: { $gte: 18, $lt: 65 } } }],
    },
    // The other half of the namespace; $and, $in and $exists.
    banner: {
      defaultValue: { show: false },
      rules: [{ key: "banner", variations: [{ show: false }, { show: true }], namespace: ["ns1", 0.5, 1],
        condition: { $and: [{ browser: { $in: ["chrome", "firefox"] } }, { beta: { $exists: true } }] } }],
    },
    // Weights that do not sum to 1 within 0.01: GrowthBook splits equally.
    equal: { defaultValue: 0, rules: [{ variations: [0, 1, 2], weights: [1, 1, 1], hashVersion: 2 }] },
    // What cannot be migrated.
    price: { defaultValue: 10, rules: [{ force: 8, condition: { country: "DE" } }, { variations: [10, 12] }] },
    either: { defaultValue: 0, rules: [{ variations: [0, 1], condition: { $or: [{ a: 1 }, { b: 2 }] } }] },
    device: { defaultValue: 0, rules: [{ variations: [0, 1], hashAttribute: "deviceId" }] },
    older: { defaultValue: 0, rules: [{ variations: [0, 1], condition: { age: { $gt: 30 } } }] },
    uneven: { defaultValue: 0, rules: [{ variations: [0, 1, 2], weights: [0.3, 0.3, 0.395] }] },
    through: { defaultValue: 0, rules: [{ variations: [0, 1], meta: [{ key: "a" }, { key: "b", passthrough: true }] }] },
    spaced: { defaultValue: 0, rules: [{ variations: [0, 1], condition: { "country code": "US" } }] },
    empty: { defaultValue: 0, rules: [{ variations: [0, 1], condition: { age: { $gte: 65, $lt: 18 } } }] },
    blank: { defaultValue: 0, rules: [{ variations: [0, 1], condition: { a: {} } }] },
    gated: { defaultValue: 0, rules: [{ variations: [0, 1], parentConditions: [{ id: "hero", condition: { value: "bold" } }] }] },
    badkey: { defaultValue: 0, rules: [{ key: "has space", variations: [0, 1] }] },
    v3: { defaultValue: 0, rules: [{ variations: [0, 1], hashVersion: 3 }] },
  },
};

test("experimentsFromGrowthBook: the rules it can serve exactly, and each one it cannot with the reason", () => {
  const m = experimentsFromGrowthBook(PAYLOAD);
  assert.deepEqual(m.experiments.map((e) => e.key), ["hero-exp", "cta", "banner", "equal"]);
  assert.equal(m.unit, "id");
  assert.deepEqual(m.experiments[0], {
    key: "hero-exp", variants: ["control", "bold", "short"], weights: [0.5, 0.25, 0.25], coverage: 0.8, hash: "growthbook/2", seed: "s-1", fallback: "control",
  });
  assert.deepEqual(m.experiments[1].targeting, [{ attribute: "country", equals: "US" }, { attribute: "age", range: [18, 65] }]);
  assert.deepEqual(m.experiments[1].namespace, { name: "ns1", range: [0, 0.5] });
  assert.deepEqual(m.experiments[3].weights, [1 / 3, 1 / 3, 1 / 3]);
  assert.deepEqual(m.features.cta, { experiment: "cta", defaultValue: false, values: { 0: false, 1: true } });
  const skipped = Object.fromEntries(m.skipped.map((s) => [`${s.feature}/${s.rule}`, s.reason]));
  assert.deepEqual(Object.keys(skipped).sort(), [
    "badkey/0", "blank/0", "device/0", "either/0", "empty/0", "gated/0", "older/0", "price/0", "price/1", "spaced/0", "through/0", "uneven/0", "v3/0",
  ]);
  assert.match(skipped["through/0"], /passthrough/);
  assert.match(skipped["spaced/0"], /country code/);
  assert.match(skipped["empty/0"], /empty range/);
  assert.match(skipped["blank/0"], /as JSON/);
  assert.match(skipped["price/0"], /force/);
  assert.match(skipped["price/1"], /follows rule 0/);
  assert.match(skipped["either/0"], /\$or/);
  assert.match(skipped["device/0"], /deviceId/);
  assert.match(skipped["older/0"], /\$gt/);
  assert.match(skipped["uneven/0"], /sum to 0\.995/);
  assert.match(skipped["gated/0"], /prerequisite/);
  assert.match(skipped["badkey/0"], /has space/);
  assert.match(skipped["v3/0"], /hash version 3/);
  assert.ok(m.notes.some((n) => n.feature === "cta" && /strictly/.test(n.note)));
  assert.ok(m.notes.some((n) => n.feature === "banner" && /single value/.test(n.note)));
  // Whatever the payload, no exception: an empty migration.
  for (const bad of [null, undefined, 3, "x", [], { features: 5 }, { features: { f: null } }, { features: { f: { rules: [null, 7] } } }]) {
    const e = experimentsFromGrowthBook(bad);
    assert.deepEqual(e.experiments, []);
  }
  // A getter that throws, a cycle, a BigInt: not JSON, so nothing is read, and it says so.
  const cyclic = { features: {} };
  cyclic.features.self = cyclic;
  for (const bad of [{ get features() { throw new Error("boom"); } }, cyclic, { features: { f: { defaultValue: 1n } } }]) {
    const e = experimentsFromGrowthBook(bad);
    assert.deepEqual(e.experiments, []);
    assert.equal(e.skipped.length, 1);
    assert.match(e.skipped[0].reason, /cannot be read as JSON/);
  }
  // The mapping copies: changing the payload afterwards changes nothing migrated.
  const copy = JSON.parse(JSON.stringify(PAYLOAD));
  const m2 = experimentsFromGrowthBook(copy);
  copy.features.layoutless = 1;
  copy.features.cta.rules[0].variations[1] = "changed";
  assert.deepEqual(m2.features.cta.values, { 0: false, 1: true });
});

test("2,000 users land in the same variation, in or out of each experiment, as GrowthBook's own evalFeature", () => {
  const m = experimentsFromGrowthBook(PAYLOAD);
  const site = open({ storage: null, consent: "functional" });
  site.experiments(m.experiments);
  const browsers = ["chrome", "safari", "firefox"];
  const counts = Object.fromEntries(Object.keys(m.features).map((f) => [f, { in: 0, out: 0 }]));
  for (let i = 0; i < 2000; i++) {
    // Users GrowthBook leaves out (no id, an empty one, 0), some without an age; attributes typed as the conditions.
    const attributes = { country: i % 3 === 0 ? "DE" : "US", browser: browsers[i % 3] };
    if (i % 50 !== 7) attributes.id = i % 50 === 9 ? "" : i % 50 === 11 ? 0 : `user-${i}`;
    if (i % 10 !== 3) attributes.age = (i * 7) % 90;
    if (i % 4 === 0) attributes.beta = true;
    const gb = new GrowthBook({ attributes, features: PAYLOAD.features });
    for (const feature of Object.keys(m.features)) {
      const want = gb.evalFeature(feature);
      const { value, assignment } = featureValue(site, m, feature, attributes);
      const gbIn = want.source === "experiment" && want.experimentResult?.inExperiment === true;
      assert.equal(assignment?.inExperiment ?? false, gbIn, `${feature}, user ${i}: in experiment`);
      assert.deepEqual(value, want.value, `${feature}, user ${i}: value`);
      if (gbIn) assert.equal(assignment.index, want.experimentResult.variationId, `${feature}, user ${i}: variation`);
      counts[feature][gbIn ? "in" : "out"]++;
    }
    gb.destroy();
  }
  // Every experiment both includes and leaves out users (coverage, namespaces, targeting, users without a unit).
  for (const [feature, c] of Object.entries(counts)) assert.ok(c.in > 100 && c.out > 20, `${feature}: ${JSON.stringify(c)}`);
  assert.equal(unitFor(m, { id: 0 }), null);
  assert.equal(unitFor(m, { id: 12 }), "12");
  assert.throws(() => featureValue(site, m, "nope", { id: "u" }), (e) => e.name === "InsituError" && e.code === "UNKNOWN_EXPERIMENT");
  site.close();
});
