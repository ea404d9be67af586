// A seeded fuzz of the optional entry points (`insitu/openfeature`,
// `insitu/growthbook`) with the hostile values of tests/js/fuzz.test.mjs:
// a provider's resolve methods, track and context changes never throw and
// always give the caller's default with an error code when they cannot
// resolve; the migration never throws for any payload; featureValue throws
// only InsituErrors with a code from CODES.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { InsituProvider } from "../../pkg/openfeature.js";
import { experimentsFromGrowthBook, featureValue, unitFor } from "../../pkg/growthbook.js";
import { CODES, hostiles, open, rng, WASM, WASM_FULL } from "./helpers.mjs";

const CALLS = 4_000;
const LOGGER = { error() {}, warn() {}, info() {}, debug() {} };
const PAYLOAD = {
  features: {
    hero: { defaultValue: "a", rules: [{ key: "hero", variations: ["a", "b"], hashVersion: 2, condition: { country: "US" } }] },
    cta: { defaultValue: false, rules: [{ variations: [false, true], coverage: 0.5 }] },
  },
};

test(`seeded fuzz: ${CALLS} calls of the OpenFeature provider and the GrowthBook migration with hostile values`, async () => {
  const r = rng(20_261_207);
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const hostile = hostiles(r);
  const violations = [];
  const errors = [];
  const provider = new InsituProvider({
    flags: {
      hero: { slot: { variants: ["a", "b", "c"], features: { allow: ["page", "context"] }, seed: 3 }, values: { a: 1, b: 2, c: 3 } },
      exp: { experiment: "exp" },
      typed: { slot: { variants: ["on", "off"] }, values: { on: true, off: false }, events: ["buy"] },
    },
    experiments: [{ key: "exp", variants: ["x", "y"] }],
    unit: "targetingKey",
    load: { wasm: WASM, wasmFull: WASM_FULL, storage: null, consent: "personalization", onError: (e) => errors.push(e) },
  });
  await provider.initialize();
  const migration = experimentsFromGrowthBook(PAYLOAD);
  const site = open({ storage: null, consent: "functional" });
  site.experiments(migration.experiments);
  const resolvers = ["resolveBooleanEvaluation", "resolveStringEvaluation", "resolveNumberEvaluation", "resolveObjectEvaluation"];
  const keys = ["hero", "exp", "typed", "nope"];
  // A context: sometimes well formed, sometimes hostile, sometimes well formed around a hostile value.
  const context = () => {
    const x = r();
    if (x < 0.3) return { targetingKey: `u${Math.floor(r() * 5)}`, page: { section: pick(["a", "b"]) }, country: "US" };
    if (x < 0.6) return hostile();
    return { targetingKey: pick([hostile(), "k"]), page: hostile(), [pick(["context", "x", "__proto__"])]: hostile() };
  };
  for (let i = 0; i < CALLS; i++) {
    const op = Math.floor(r() * 6);
    const label = `call ${i}, op ${op}`;
    try {
      if (op <= 1) {
        const key = r() < 0.9 ? pick(keys) : hostile();
        const dflt = pick([true, "d", 7, { o: 1 }]);
        const res = provider[pick(resolvers)](key, dflt, context(), LOGGER);
        if (res === null || typeof res !== "object") violations.push(`${label}: resolved to ${typeof res}`);
        else if (res.errorCode !== undefined && (res.reason !== "ERROR" || res.value !== dflt)) {
          violations.push(`${label}: ${res.errorCode} without reason ERROR and the default`);
        }
      } else if (op === 2) {
        provider.track(pick(["hero", "buy", "exp", hostile()]), context(), pick([{ value: 1 }, { value: hostile() }, hostile()]));
      } else if (op === 3) {
        provider.onContextChange(context(), context());
      } else if (op === 4) {
        const m = experimentsFromGrowthBook(pick([hostile(), { features: hostile() }, { features: { f: { rules: [hostile()] } } },
          { features: { f: { rules: [{ variations: [1, 2], condition: hostile(), weights: hostile(), namespace: hostile(), meta: hostile() }] } } }]));
        if (!Array.isArray(m.experiments) || !Array.isArray(m.skipped)) violations.push(`${label}: migration shape`);
        unitFor(m, hostile());
      } else {
        try {
          featureValue(site, migration, pick(["hero", "cta", hostile()]), pick([{ id: "u", country: "US" }, hostile(), { id: hostile() }]));
        } catch (e) {
          if (!(e instanceof Error) || e.name !== "InsituError" || !CODES.includes(e.code)) violations.push(`${label}: featureValue threw ${e?.name} ${e?.code}`);
        }
      }
    } catch (e) {
      violations.push(`${label}: threw ${e?.name}: ${String(e?.message).slice(0, 120)}`);
    }
  }
  await provider.onClose();
  site.close();
  assert.deepEqual(violations.slice(0, 20), [], `${violations.length} violations`);
  assert.ok(errors.every((e) => e instanceof Error && CODES.includes(e.code)), "onError hears only coded errors");
});
