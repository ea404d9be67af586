// The OpenFeature provider (pkg/openfeature.js, `insitu/openfeature`) as a
// consumer of @openfeature/web-sdk sees it: resolution details, defaults,
// errors, context changes, events, hooks and tracking. Each test runs in its
// own OpenFeature domain, so the SDK's global state does not leak between them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { OpenFeature, ProviderEvents } from "@openfeature/web-sdk";
import { InsituProvider } from "../../pkg/openfeature.js";
import { WASM, WASM_FULL } from "./helpers.mjs";

const HERO = { variants: ["a", "b", "c"], features: { allow: ["page"] }, seed: 7, fallback: "b" };
const EXPERIMENT = { key: "checkout", variants: ["control", "green"], weights: [0.5, 0.5] };
const BASE = { wasm: WASM, wasmFull: WASM_FULL, storage: null, consent: "personalization" };
let domains = 0;

/** A provider set in a fresh domain, and that domain's client. */
async function setup(options, context = {}) {
  const domain = `of-${++domains}`;
  const provider = new InsituProvider({ load: BASE, ...options });
  await OpenFeature.setContext(domain, context);
  await OpenFeature.setProviderAndWait(domain, provider);
  return { provider, client: OpenFeature.getClient(domain), domain };
}

test("a slot flag resolves to a decided variant with insitu's probability, decision id and model version", async () => {
  const { client, provider } = await setup({ flags: { hero: { slot: HERO } } }, { page: { section: "sports" } });
  const d = client.getStringDetails("hero", "fallback-default");
  assert.ok(HERO.variants.includes(d.value), d.value);
  assert.equal(d.variant, d.value, "a string flag without values serves the variant id");
  assert.equal(d.reason, "TARGETING_MATCH");
  assert.equal(d.errorCode, undefined);
  assert.ok(d.flagMetadata.probability > 0 && d.flagMetadata.probability <= 1);
  assert.match(d.flagMetadata.decisionId, /./);
  assert.match(d.flagMetadata.modelVersion, /^m1-[0-9a-f]{16}$/);
  assert.equal(typeof d.flagMetadata.seed, "number");
  // Evaluated again under the same context (a re-render): the same decision, not a new one.
  const again = client.getStringDetails("hero", "fallback-default");
  assert.equal(again.flagMetadata.decisionId, d.flagMetadata.decisionId);
  assert.equal(again.value, d.value);
  assert.equal(provider.slot("hero").stats().pending, 1, "one decision waits for its reward, not two");
  assert.equal(provider.slot("nope"), null);
});

test("a context change decides again; the decision context keeps only the slot's allowlisted namespaces", async () => {
  const { client, domain } = await setup({ flags: { hero: { slot: HERO } } }, { page: { section: "news" } });
  const first = client.getStringDetails("hero", "x").flagMetadata.decisionId;
  await OpenFeature.setContext(domain, { page: { section: "tech" }, email: "someone@example.com" });
  const second = client.getStringDetails("hero", "x");
  assert.notEqual(second.flagMetadata.decisionId, first);
  assert.equal(second.reason, "TARGETING_MATCH", "a top-level attribute outside the allowlist is dropped, not refused");
  // The same context again, as a new object: no new decision.
  await OpenFeature.setContext(domain, { email: "someone@example.com", page: { section: "tech" } });
  assert.equal(client.getStringDetails("hero", "x").flagMetadata.decisionId, second.flagMetadata.decisionId);
});

test("typed flags map variants to values; a variant without a value of the asked type is TYPE_MISMATCH with the default", async () => {
  const flags = {
    banner: { slot: { variants: ["on", "off"], seed: 3 }, values: { on: true, off: false } },
    price: { slot: { variants: ["low", "high"], seed: 3 }, values: { low: 9.5, high: 12 } },
    layout: { slot: { variants: ["grid", "list"], seed: 3 }, values: { grid: { columns: 3 }, list: { columns: 1 } } },
  };
  const { client } = await setup({ flags });
  const b = client.getBooleanDetails("banner", true);
  assert.equal(b.value, b.variant === "on");
  assert.equal(b.reason, "TARGETING_MATCH");
  const n = client.getNumberDetails("price", 0);
  assert.equal(n.value, n.variant === "low" ? 9.5 : 12);
  const o = client.getObjectDetails("layout", {});
  assert.deepEqual(o.value, { columns: o.variant === "grid" ? 3 : 1 });
  // A number asked of a boolean flag.
  const wrong = client.getNumberDetails("banner", 42);
  assert.equal(wrong.value, 42);
  assert.equal(wrong.reason, "ERROR");
  assert.equal(wrong.errorCode, "TYPE_MISMATCH");
});

test("unknown flags, refused slot options and a fallback site give the caller's default with reason ERROR", async () => {
  const { client } = await setup({ flags: { bad: { slot: { variants: ["a"] } } } });
  const missing = client.getStringDetails("nope", "dflt");
  assert.deepEqual([missing.value, missing.reason, missing.errorCode], ["dflt", "ERROR", "FLAG_NOT_FOUND"]);
  const bad = client.getStringDetails("bad", "dflt");
  assert.deepEqual([bad.value, bad.reason, bad.errorCode], ["dflt", "ERROR", "GENERAL"]);
  assert.equal(bad.flagMetadata.insitu, "INVALID_OPTION");

  // WebAssembly cannot run: load() gives the fallback site; the provider still initializes and serves defaults.
  const fallbacks = [];
  const { client: c2, provider } = await setup({
    flags: { hero: { slot: HERO } },
    load: { ...BASE, wasm: new Uint8Array(4), onFallback: (e) => fallbacks.push(e.code) },
  });
  assert.notEqual(provider.site.fallback, null);
  const d = c2.getStringDetails("hero", "dflt");
  assert.deepEqual([d.value, d.reason, d.errorCode], ["dflt", "ERROR", "GENERAL"]);
  assert.equal(d.flagMetadata.insituError, "WASM_UNAVAILABLE");
  assert.deepEqual(fallbacks, ["WASM_UNAVAILABLE"]);
});

test("an experiment flag: SPLIT inside, DEFAULT outside, and hooks see its exposure once", async () => {
  const exposures = [];
  const { client } = await setup({
    flags: { checkout: { experiment: "checkout" }, closed: { experiment: "closed" } },
    experiments: [EXPERIMENT, { key: "closed", variants: ["off", "on"], coverage: 0 }],
    load: { ...BASE, onExposure: (e) => exposures.push(e.experiment) },
  });
  const seen = [];
  client.addHooks({ after: (_ctx, details) => seen.push([details.flagKey, details.flagMetadata.exposure]) });
  const d = client.getStringDetails("checkout", "control");
  assert.ok(EXPERIMENT.variants.includes(d.value));
  assert.equal(d.reason, "SPLIT");
  assert.equal(d.flagMetadata.experiment, "checkout");
  assert.equal(d.flagMetadata.inExperiment, true);
  assert.equal(d.flagMetadata.probability, 0.5);
  client.getStringDetails("checkout", "control");
  assert.deepEqual(seen, [["checkout", true], ["checkout", false]], "the exposure reaches the hooks of the evaluation that made it, once");
  assert.deepEqual(exposures, ["checkout"], "and the site's own onExposure still hears it");
  const closed = client.getStringDetails("closed", "x");
  assert.deepEqual([closed.value, closed.reason, closed.flagMetadata.why], ["off", "DEFAULT", "coverage"]);
});

test("track rewards the latest decision of the flags it names; a refused reward goes to onError, never throws", async () => {
  const errors = [];
  const { client, provider } = await setup({
    flags: { hero: { slot: HERO, events: ["purchase"] }, other: { slot: { variants: ["x", "y"], seed: 1 } } },
    load: { ...BASE, onError: (e) => errors.push(e.code) },
  });
  client.getStringValue("hero", "a");
  client.getStringValue("other", "x");
  client.track("purchase", { value: 1 });
  await provider.site.ready; // the learning happens on the full engine, which follows the first paint
  const slot = provider.slot("hero");
  assert.equal(slot.stats().variants.reduce((n, v) => n + v.updates, 0), 1);
  assert.equal(slot.stats().pending, 0);
  // `other` listens to its own key only.
  const other = provider.slot("other");
  assert.equal(other.stats().pending, 1);
  client.track("other", { value: 7 });
  assert.deepEqual(errors, ["INVALID_REWARD"]);
  assert.equal(other.stats().pending, 1, "nothing changed");
  // A second purchase finds hero's decision settled: nothing to reward, no DUPLICATE_REWARD.
  client.track("purchase", { value: 1 });
  assert.deepEqual(errors, ["INVALID_REWARD"]);
});

test("resolution never throws: a refused experiment list, an unconfigured experiment, a poisoned or closed provider", async () => {
  const errors = [];
  const { client, provider } = await setup({
    flags: { checkout: { experiment: "checkout" }, ghost: { experiment: "ghost" } },
    experiments: [EXPERIMENT, { key: "checkout", variants: ["x", "y"] }], // a duplicate key: the list is refused
    load: { ...BASE, onError: (e) => errors.push(e.code) },
  });
  assert.deepEqual(errors, ["INVALID_EXPERIMENT"]);
  for (const key of ["checkout", "ghost"]) {
    const d = client.getStringDetails(key, "dflt");
    assert.deepEqual([d.value, d.reason, d.errorCode, d.flagMetadata.insitu], ["dflt", "ERROR", "FLAG_NOT_FOUND", "UNKNOWN_EXPERIMENT"]);
  }
  assert.equal(provider.domainScoped, true, "decisions and their rewards belong to one domain");
  await provider.onClose();
  const logger = { error() {}, warn() {}, info() {}, debug() {} };
  const closed = provider.resolveStringEvaluation("checkout", "dflt", {}, logger);
  assert.deepEqual([closed.value, closed.errorCode], ["dflt", "PROVIDER_NOT_READY"]);
});

test("unit: targetingKey buckets by the context's key, never keeps a previous visitor's, and survives a re-initialize", async () => {
  const errors = [];
  const { provider } = await setup({
    flags: { checkout: { experiment: "checkout" } },
    experiments: [EXPERIMENT],
    unit: "targetingKey",
    load: { ...BASE, onError: (e) => errors.push(e.code) },
  });
  const logger = { error() {}, warn() {}, info() {}, debug() {} };
  const resolve = (context) => provider.resolveStringEvaluation("checkout", "dflt", context, logger);
  const u1 = resolve({ targetingKey: "u1" });
  assert.equal(u1.flagMetadata.unit, "site");
  // The same key always gets the same variant (a pure function of the key): check it against a second key's site.
  const long = resolve({ targetingKey: "x".repeat(300) });
  assert.equal(long.flagMetadata.unit, "device", "a refused key falls back to the device seed, not to u1");
  assert.equal(errors.length, 1);
  await provider.onClose();
  await provider.initialize();
  const again = resolve({ targetingKey: "u1" });
  assert.equal(again.flagMetadata.unit, "site", "the new site gets the key too");
  assert.equal(again.value, u1.value);
});

test("setConsent lowers the tier, decides again and emits PROVIDER_CONFIGURATION_CHANGED", async () => {
  const { client, provider } = await setup({ flags: { hero: { slot: HERO } } });
  const changed = [];
  client.addHandler(ProviderEvents.ConfigurationChanged, (e) => changed.push(e.flagsChanged));
  const first = client.getStringDetails("hero", "x").flagMetadata.decisionId;
  provider.setConsent("functional");
  assert.equal(provider.site.consent.tier, "functional");
  assert.deepEqual(changed, [["hero"]]);
  assert.notEqual(client.getStringDetails("hero", "x").flagMetadata.decisionId, first);
});

test("the provider refuses options without flags", () => {
  assert.throws(() => new InsituProvider({}), TypeError);
  assert.throws(() => new InsituProvider(), TypeError);
});
