// `load()`, the package's entry: instantiate the wasm, then open the store.
// If WebAssembly cannot run (a Content-Security-Policy without
// 'wasm-unsafe-eval', a blocked or failed download, a browser without
// WebAssembly, server-side rendering) or `open()` refuses its options, it
// resolves to a fallback site instead of rejecting: the same API, in plain
// JS, serving every slot's and experiment's configured fallback. The reason
// goes to `onFallback` once.
//
// The fallback site never writes storage: what earlier page views learned
// stays exactly as it was for the next load that has WebAssembly. It still
// deletes on request, because consent does not wait for the wasm: `forget()`
// erases every key, and lowering consent deletes what the new tier does not
// allow (the experiments key too under `functional`, as its bandit counts
// cannot be taken out without the wasm).

import { Consent, KEY_RE, TIERS, defaultStorage, fail, option, warm } from "./store.mjs";

const HASHES = ["insitu/1", "growthbook/1", "growthbook/2"];
const RETENTION = { maxAgeDays: 30, maxEvents: 500, maxBytes: 16384, sessionGapMinutes: 30 };

/** `load(options)` for a wasm-bindgen `init` and the `open` bound to its module. */
export function createLoad(init, open) {
  return async function load(options = {}) {
    const o = options !== null && typeof options === "object" ? options : {};
    const { wasm, onFallback, ...rest } = o;
    let reason = null;
    if (o !== options) reason = option("options", "should be an object");
    else if (onFallback !== undefined && typeof onFallback !== "function") {
      reason = option("onFallback", "should be a function");
    }
    let warmed = null;
    if (reason === null) {
      try {
        // init() starts the download and compilation, then waits for them:
        // the browser work open() needs runs meanwhile (see warm()).
        const instantiated = init(wasm === undefined ? undefined : { module_or_path: wasm });
        warmed = warm(rest);
        await instantiated;
        mark("insitu:instantiated");
      } catch (e) {
        reason = fail(
          "WASM_UNAVAILABLE",
          `WebAssembly could not be loaded (${e?.message ?? e}); every slot serves its fallback`,
        );
        reason.cause = e;
      }
    }
    if (reason === null) {
      try {
        return open(rest, warmed);
      } catch (e) {
        reason = e?.name === "InsituError" ? e : fail("POISONED", String(e?.message ?? e));
      }
    }
    warmed?.close();
    if (typeof onFallback === "function") {
      try {
        onFallback(reason);
      } catch {
        // A throwing callback must not break the page.
      }
    } else {
      console.warn("insitu: serving fallback variants:", reason);
    }
    return new FallbackSite(rest, reason);
  };
}

/** A User Timing mark, for the page's own performance monitoring: where
 * the instantiation ended (the site is ready when `load()` resolves). */
function mark(name) {
  try {
    globalThis.performance?.mark?.(name);
  } catch {
    // No User Timing (an old or stripped-down runtime): nothing to record.
  }
}

/** Each value of `o` that `check` accepts, else `otherwise`: the fallback
 * site takes what it can from options `open()` may have refused. */
const pick = (v, check, otherwise) => (v !== undefined && check(v) ? v : otherwise);
const tier = (v) => TIERS.includes(v);
/** A slot's or experiment's variants and its fallback's index, checked as `open()` would. */
const variantsOf = (where, o) => {
  const code = where === "slot" ? "INVALID_OPTION" : "INVALID_EXPERIMENT";
  const variants = o?.variants;
  if (!Array.isArray(variants) || variants.length === 0 || !variants.every((v) => typeof v === "string")) {
    throw fail(code, `${where} \`variants\` should be a non-empty array of strings`);
  }
  const i = o.fallback === undefined ? 0 : variants.indexOf(o.fallback);
  if (i < 0) throw fail(code, `${where} \`fallback\` is not one of its variants`);
  return { variants, index: i };
};

/** A site without WebAssembly: the `Site` API serving fallbacks. */
export class FallbackSite extends Consent {
  constructor(o, reason) {
    super();
    this.fallback = reason;
    this.key = pick(o.key, (k) => typeof k === "string" && KEY_RE.test(k), "insitu");
    this.storage = o.storage === undefined ? defaultStorage()
      : pick(o.storage, (s) => typeof s?.getItem === "function", null);
    this.now = pick(o.now, (f) => typeof f === "function", Date.now);
    this.siteTier = pick(o.consent, tier, null);
    this.defaultTier = pick(o.defaultConsent, tier, "functional");
    this.honorGpc = o.gpc !== "ignore";
    this.effective = this.computeTier();
    const b = o.behavior ?? {};
    this.retention = { types: pick(b.types, (t) => Array.isArray(t) && t.every((x) => typeof x === "string"), []) };
    for (const [k, v] of Object.entries(RETENTION)) {
      this.retention[k] = pick(b[k], (x) => Number.isFinite(x) && x > 0, v);
    }
    this.experimentsByKey = new Map();
    this.at = this.now();
  }

  slot(name, options) {
    const { variants, index } = variantsOf("slot", options);
    const decision = {
      variant: variants[index],
      index,
      probability: 1,
      pmf: variants.map((_, i) => (i === index ? 1 : 0)),
      scores: [],
      decisionId: null,
      seed: null,
      modelVersion: "fallback",
      policy: "fallback",
      fallback: true,
      error: this.fallback,
    };
    const none = () => {};
    return {
      name,
      rank: () => ({ ...decision, pmf: [...decision.pmf], scores: [] }),
      // Nothing was learned or scored: there is nothing to explain.
      explain: () => null,
      reward: none,
      activate: none,
      learn: none,
      stats: () => ({ variants: variants.map((id) => ({ id, updates: 0 })), pending: 0, policy: "fallback", modelVersion: "fallback" }),
      variants: [...variants],
      modelVersion: "fallback",
      policy: "fallback",
    };
  }

  experiments(configs) {
    if (!Array.isArray(configs)) throw fail("INVALID_EXPERIMENT", "experiments should be an array");
    const list = configs.map((c) => {
      if (typeof c?.key !== "string") throw fail("INVALID_EXPERIMENT", "experiment `key` should be a string");
      const { variants, index } = variantsOf("experiment", c);
      return {
        key: c.key,
        variants: [...variants],
        weights: variants.map(() => 1 / variants.length),
        coverage: 1,
        fallback: variants[index],
        hash: pick(c.hash, (h) => HASHES.includes(h), "insitu/1"),
        targeted: c.targeting !== undefined,
        allocation: c.allocation?.type === "thompson" ? "thompson" : "weights",
        index,
      };
    });
    this.experimentsByKey = new Map(list.map((e) => [e.key, e]));
    return list.map(({ index, ...e }) => e);
  }

  run(key) {
    const e = this.experimentsByKey.get(key);
    if (e === undefined) throw fail("UNKNOWN_EXPERIMENT", `no experiment \`${String(key)}\` is configured; pass it to experiments() first`);
    return {
      key,
      variant: e.fallback,
      index: e.index,
      inExperiment: false,
      reason: "unavailable",
      probability: 1,
      hash: e.hash,
      allocation: e.allocation,
      unit: "none",
    };
  }

  rewardExperiment() {}
  setUnit() {}
  track() {}
  features() {
    return null;
  }

  setConsent(t) {
    if (!tier(t)) throw option("consent", `should be one of ${TIERS.join(", ")}, but is ${String(t)}`);
    this.siteTier = t;
    this.effective = this.computeTier();
    const rank = TIERS.indexOf(this.effective);
    for (const k of this.ownKeys()) {
      if (rank < (this.holds(k) === "audit-history" ? 1 : 2)) this.remove(k);
    }
    this.announce({ type: "consent", tier: t });
    return this.consent;
  }

  /** Tell the page's other tabs, which may run the wasm (store.mjs listens). */
  announce(message) {
    try {
      const channel = new globalThis.BroadcastChannel(`insitu:${this.key}`);
      channel.postMessage(message);
      channel.close();
    } catch {
      // No BroadcastChannel: other tabs see the storage change on their next read.
    }
  }

  flush() {
    return Promise.resolve({ written: false, reason: "fallback", error: this.fallback });
  }

  remove(k) {
    try {
      this.storage.removeItem(k);
    } catch {
      // Blocked storage: there is nothing this module can delete.
    }
  }

  /** A stored value, or null where storage is blocked. */
  get(k) {
    try {
      return this.storage?.getItem(k) ?? null;
    } catch {
      return null;
    }
  }

  audit() {
    // The frame's third field is when it was saved (store.mjs); read without the wasm.
    const savedAt = (v) => {
      const at = Number(v.split(";", 3)[2]);
      return v.startsWith("insitu1;") && Number.isFinite(at) ? at : null;
    };
    return this.manifest("ok", savedAt, {
      retention: { ...this.retention, types: [...this.retention.types] },
      events: { total: 0, byType: {} },
      models: [],
      experiments: {
        unit: "none",
        list: [...this.experimentsByKey.values()].map((e) => ({ key: e.key, variants: e.variants, hash: e.hash, allocation: e.allocation })),
        exposures: [],
      },
      history: [{ at: this.at, event: "fallback", code: this.fallback.code, detail: String(this.fallback.message) }],
    });
  }

  forget() {
    for (const k of this.ownKeys()) this.remove(k);
    this.announce({ type: "forget" });
    return this.audit();
  }

  close() {}
}
