// A/B experiments of a site (site.experiments / run), against the built
// package (pkg/index.js): GrowthBook compatibility against the shared golden
// fixtures and GrowthBook's own SDK, stickiness across a reload, exposure
// logging and the callback, consent, bad configurations and damaged stored
// state. Sites are opened with open() on the full engine, and with load()
// (the first-decision module, then the full engine) where that matters.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import { loadSite, MemoryStorage, open, throwsCode } from "./helpers.mjs";

const require = createRequire(import.meta.url);
const { GrowthBook } = require("@growthbook/growthbook");
const fixtures = JSON.parse(readFileSync(new URL("../fixtures/growthbook.json", import.meta.url)));
const schema = JSON.parse(readFileSync(new URL("../../schema/audit.schema.json", import.meta.url)));
const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);

const T0 = 1_700_000_040_000;
const HERO = { key: "hero", variants: ["control", "bold", "minimal"], weights: [0.5, 0.25, 0.25] };

function site(storage, extra = {}) {
  const clock = { t: T0 };
  const exposures = [];
  const s = open({
    storage, now: () => clock.t, flushDelayMs: 60_000, onExposure: (e) => exposures.push(e), ...extra,
  });
  return { s, clock, exposures };
}

test("GrowthBook hash modes match the golden fixtures and GrowthBook's SDK", () => {
  let checked = 0;
  for (const exp of fixtures.experiments) {
    const config = {
      key: exp.key, variants: exp.weights.map((_, i) => `v${i}`), weights: exp.weights, coverage: exp.coverage,
      hash: `growthbook/${exp.hashVersion}`,
    };
    if (exp.seed !== undefined) config.seed = exp.seed;
    if (exp.namespace !== undefined) config.namespace = { name: exp.namespace[0], range: exp.namespace.slice(1) };
    for (const c of exp.cases) {
      if (c.unit === "") continue;
      const { s } = site(null, { unit: c.unit });
      s.experiments([config]);
      const r = s.run(exp.key);
      assert.equal(r.inExperiment, c.inExperiment, `${exp.key} ${JSON.stringify(c.unit)}`);
      assert.equal(r.index, c.variant);
      if (c.bucket !== null) assert.equal(r.bucket, c.bucket);
      // And GrowthBook itself, today, on the same case: the fixture is not stale.
      const gb = new GrowthBook({ attributes: { id: c.unit } });
      const g = gb.run({
        key: exp.key, variations: config.variants, weights: exp.weights, coverage: exp.coverage,
        hashVersion: exp.hashVersion, ...(exp.seed === undefined ? {} : { seed: exp.seed }),
        ...(exp.namespace === undefined ? {} : { namespace: exp.namespace }),
      });
      gb.destroy();
      assert.equal(g.variationId, r.index);
      s.close();
      checked++;
    }
  }
  assert.ok(checked > 1000, `${checked} cases`);
});

test("an assignment is sticky across a reload through the stored device seed", async () => {
  const storage = new MemoryStorage();
  const first = site(storage);
  first.s.experiments([HERO]);
  const a = first.s.run("hero");
  assert.equal(a.unit, "device");
  assert.equal(a.inExperiment, true);
  assert.equal(first.exposures.length, 1);
  assert.equal(first.exposures[0].unitId, undefined, "the device seed never leaves");
  assert.equal(first.s.run("hero").variant, a.variant);
  assert.equal(first.exposures.length, 1, "one exposure per unit, experiment and variant");
  const r = await first.s.flush();
  assert.equal(r.written, false, "functional consent: no learner snapshot");
  assert.equal(r.experiments.written, true, "but the experiments state is stored");
  first.s.close();
  const stored = [...storage.map.keys()];
  assert.deepEqual(stored.sort(), ["insitu.ab", "insitu.unit"]);

  // 200 fresh pages on the same storage all show the same variant and log
  // no new exposure; pages on fresh storage spread over the variants.
  const seen = new Set();
  for (let i = 0; i < 200; i++) {
    const again = site(storage);
    again.s.experiments([HERO]);
    assert.equal(again.s.run("hero").variant, a.variant);
    assert.equal(again.exposures.length, 0);
    again.s.close();
    const other = site(new MemoryStorage());
    other.s.experiments([HERO]);
    seen.add(other.s.run("hero").variant);
    other.s.close();
  }
  assert.equal(seen.size, 3);

  // The same through load(), before and after the full engine takes over.
  for (let i = 0; i < 5; i++) {
    const page = await loadSite({ storage, now: () => T0, flushDelayMs: 60_000 });
    page.experiments([HERO]);
    assert.equal(page.run("hero").variant, a.variant, "first-decision module");
    await page.ready;
    assert.equal(page.run("hero").variant, a.variant, "full engine");
    page.close();
  }
});

test("the audit lists experiments, the unit source and exposures, and forget() clears them", async () => {
  const storage = new MemoryStorage();
  const { s } = site(storage, { consent: "personalization" });
  s.experiments([HERO, { key: "cta", variants: ["a", "b"], allocation: { type: "thompson" } }]);
  s.run("hero");
  s.run("cta");
  s.rewardExperiment("cta", 1);
  await s.flush();
  const audit = s.audit();
  assert.ok(validate(audit), JSON.stringify(validate.errors));
  assert.equal(audit.experiments.unit, "device");
  assert.deepEqual(audit.experiments.list.map((e) => e.key), ["hero", "cta"]);
  assert.equal(audit.experiments.list[1].counts.reduce((n, c) => n + c.successes, 0), 1);
  assert.equal(audit.experiments.exposures.length, 2);
  assert.ok(audit.storage.keys.some((k) => k.key === "insitu.ab" && k.holds === "experiments"));
  const after = s.forget();
  assert.ok(validate(after));
  assert.deepEqual(after.storage.keys, []);
  assert.deepEqual(after.experiments.exposures, []);
  assert.equal(storage.map.size, 0);
  s.close();
});

test("consent none: no device seed, the fallback, nothing stored; a site id still works", async () => {
  const storage = new MemoryStorage();
  const { s, exposures } = site(storage, { consent: "none" });
  s.experiments([{ ...HERO, fallback: "minimal" }]);
  const r = s.run("hero");
  assert.deepEqual([r.variant, r.inExperiment, r.reason, r.unit], ["minimal", false, "no-unit", "none"]);
  assert.equal(exposures.length, 0);
  await s.flush();
  assert.equal(storage.map.size, 0);
  s.setUnit("user-7");
  const withId = s.run("hero");
  assert.equal(withId.unit, "site");
  assert.equal(exposures[0].unitId, "user-7", "the site's own id goes back to the site");
  s.close();

  // Lowering consent to none deletes the stored state and the seed.
  const second = site(storage);
  second.s.experiments([HERO]);
  second.s.run("hero");
  await second.s.flush();
  assert.ok(storage.map.has("insitu.ab"));
  second.s.setConsent("none");
  assert.equal(storage.map.has("insitu.ab"), false);
  assert.equal(second.s.run("hero").reason, "no-unit");
  second.s.close();
});

test("bandit counts are stored only with personalization", async () => {
  const storage = new MemoryStorage();
  const bandit = { key: "cta", variants: ["a", "b"], allocation: { type: "thompson" } };
  const { s } = site(storage, { consent: "personalization" });
  s.experiments([bandit]);
  s.run("cta");
  s.rewardExperiment("cta");
  throwsCode(() => s.rewardExperiment("cta"), "DUPLICATE_REWARD");
  await s.flush();
  const counted = (site) => site.audit().experiments.list[0].counts.reduce((n, c) => n + c.successes + c.failures, 0);
  assert.equal(counted(s), 1);
  const withCounts = storage.getItem("insitu.ab");
  // Another page view with personalization reads the counts back.
  const peek = open({ storage, consent: "personalization", now: () => T0 });
  peek.experiments([bandit]);
  assert.equal(counted(peek), 1, "stored with personalization");
  peek.close();
  s.setConsent("functional");
  await s.flush();
  assert.notEqual(storage.getItem("insitu.ab"), withCounts, "lowering consent rewrote the state");
  s.close();
  const unit = payload(storage.getItem("insitu.unit"));
  assert.match(unit, /^d:[0-9a-f]{32}$/);
  // The device seed's own key aside, the experiments state still holds it.
  storage.removeItem("insitu.unit");
  const reader = open({ storage, consent: "personalization", now: () => T0 });
  reader.experiments([bandit]);
  const audit = reader.audit();
  assert.deepEqual(audit.experiments.list[0].counts, [{ successes: 0, failures: 0 }, { successes: 0, failures: 0 }],
    "functional consent rewrote the state without the counts");
  assert.equal(audit.experiments.unit, "device", "but kept the seed");
  assert.equal(payload(storage.getItem("insitu.unit")), unit, "the same seed, written back under its key");
  reader.close();
});

/** The payload of a framed stored value: `insitu1;<crc>;<saved at>;<generation>;<payload>`. */
const payload = (raw) => raw.split(";").slice(4).join(";");

test("bad configurations and calls are refused with codes, changing nothing", () => {
  const { s } = site(new MemoryStorage());
  s.experiments([HERO]);
  const e = throwsCode(() => s.experiments([{ ...HERO, weights: [0.5, 0.5, 0.5] }]), "INVALID_EXPERIMENT");
  assert.match(e.message, /experiments\[0\]\.weights/);
  throwsCode(() => s.experiments([{ ...HERO, weights: [1.2, -0.1, -0.1] }]), "INVALID_EXPERIMENT");
  throwsCode(() => s.experiments([{ ...HERO, colour: "red" }]), "INVALID_EXPERIMENT");
  throwsCode(() => s.experiments([HERO, HERO]), "INVALID_EXPERIMENT");
  throwsCode(() => s.experiments("hero"), "INVALID_EXPERIMENT");
  throwsCode(() => s.experiments([{ ...HERO, coverage: NaN }]), "INVALID_EXPERIMENT");
  assert.equal(s.run("hero").key, "hero", "the earlier set is still in force");
  throwsCode(() => s.run("nope"), "UNKNOWN_EXPERIMENT");
  throwsCode(() => s.rewardExperiment("hero"), "UNKNOWN_DECISION");
  throwsCode(() => s.setUnit(""), "INVALID_OPTION");
  throwsCode(() => open({ unit: 5 }), "INVALID_OPTION");
  s.experiments([{ ...HERO, targeting: [{ attribute: "country", equals: "DE" }] }]);
  throwsCode(() => s.run("hero", { attributes: 5 }), "INVALID_CONTEXT");
  // Attributes stay in JS: a value of another type simply fails a strict comparison.
  assert.equal(s.run("hero", { attributes: { country: 1n } }).reason, "targeting");
  throwsCode(() => s.run("hero", { attribute: {} }), "INVALID_OPTION");
  throwsCode(() => s.run("hero", "DE"), "INVALID_OPTION");
  assert.equal(s.run("hero", { attributes: { country: "FR" } }).reason, "targeting");
  assert.equal(s.run("hero", { attributes: { country: "DE" } }).reason, "assigned");
  s.close();
});

test("targeting sees the behaviour store's features", () => {
  const { s, clock } = site(new MemoryStorage());
  // Behaviour counts are features as ln(1 + n): three views are ln 4 = 1.386, two ln 3 = 1.099.
  s.experiments([{ ...HERO, targeting: [{ attribute: "behavior.type:view", range: [1.3, null] }] }]);
  assert.equal(s.run("hero").reason, "targeting");
  for (let i = 0; i < 3; i++) {
    s.track({ type: "view" });
    clock.t += 1000;
    assert.equal(s.run("hero").reason, i < 2 ? "targeting" : "assigned", `after ${i + 1} views`);
  }
  s.close();
});

test("damaged stored experiments state is quarantined, and the page still assigns", async () => {
  const storage = new MemoryStorage();
  const { s } = site(storage);
  s.experiments([HERO]);
  s.run("hero");
  await s.flush();
  s.close();
  const raw = storage.getItem("insitu.ab");
  storage.setItem("insitu.ab", raw.slice(0, -6));
  const errors = [];
  const next = site(storage, { onError: (e) => errors.push(e) });
  next.s.experiments([HERO]);
  const r = next.s.run("hero");
  assert.equal(r.inExperiment, true, "a new seed, a working page");
  assert.equal(errors[0]?.code, "SNAPSHOT_CORRUPT");
  const q = [...storage.map.keys()].filter((k) => k.startsWith("insitu.quarantine."));
  assert.equal(q.length, 1, "the damaged value is kept aside, not deleted");
  assert.ok(storage.getItem(q[0]).includes(raw.slice(0, 40)));
  next.s.close();
});
