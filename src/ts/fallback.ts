// The fallback site: what `load()` resolves to when WebAssembly cannot run
// (a Content-Security-Policy without 'wasm-unsafe-eval', a blocked or failed
// download, server-side rendering) or the options are refused. The same
// API in plain JS, serving every slot's and experiment's configured
// fallback.
//
// It never writes storage: what earlier page views learned stays exactly as
// it was for the next page view that has WebAssembly. It still deletes on
// request, because consent does not wait for the wasm: `forget()` erases
// every key, and lowering consent deletes what the new tier does not allow.

import { type Audit, manifestBase } from "./audit.js";
import { Consent, type ConsentState, rank, TIERS } from "./consent.js";
import { describe, fail, type InsituError } from "./errors.js";
import type { Assignment, ExperimentInfo } from "./experiments.js";
import type { FlushResult, Slot } from "./site.js";
import type { Decision } from "./slot.js";
import type { Tier } from "./spec.js";
import { defaultStorage, savedAtOf, type Sink, Store } from "./storage.js";
import { checkExperiments } from "./validate/experiments.js";
import { KEY_RE } from "./validate/open.js";
import { checkSlot } from "./validate/slot.js";
import type { ConsentTier, ContextObject, ExperimentConfig, InsituOptions } from "./types.js";

const RETENTION = { maxAgeDays: 30, maxEvents: 500, maxBytes: 16384, sessionGapMinutes: 30 };

/** Each value of `o` that `check` accepts, else `otherwise`: the fallback site takes what it can from options that may have been refused. */
function pick<T>(o: Record<string, unknown>, k: string, check: (v: unknown) => boolean, otherwise: T): T {
  try {
    const v = o[k];
    return v !== undefined && check(v) ? (v as T) : otherwise;
  } catch {
    return otherwise;
  }
}

const tier = (v: unknown): boolean => (TIERS as readonly unknown[]).includes(v);

/** A site without WebAssembly: the site's API serving fallbacks. */
export class FallbackSite implements Sink {
  readonly ready: Promise<void> = Promise.resolve();
  readonly key: string;
  private readonly store: Store;
  private readonly consentState: Consent;
  private readonly clock: () => number;
  private readonly retention: Audit["retention"];
  private list = new Map<string, ExperimentInfo & { index: number }>();
  private readonly at: number;

  constructor(options: unknown, readonly fallback: InsituError) {
    const o = (options !== null && typeof options === "object" ? options : {}) as Record<string, unknown>;
    this.key = pick(o, "key", (k) => typeof k === "string" && KEY_RE.test(k), "insitu");
    const s = pick<unknown>(o, "storage", () => true, undefined);
    const d = s === undefined ? defaultStorage() : s;
    const storage = d instanceof Error || d === null || typeof (d as { getItem?: unknown }).getItem !== "function" ? null : (d as Store["storage"]);
    this.clock = pick(o, "now", (f) => typeof f === "function", Date.now);
    this.store = new Store(storage, this.key, this, () => this.now());
    this.consentState = new Consent(
      pick<Tier | null>(o, "consent", tier, null),
      pick<Tier>(o, "defaultConsent", tier, "functional"),
      pick<unknown>(o, "gpc", () => true, "honor") !== "ignore",
    );
    const b = pick<Record<string, unknown>>(o, "behavior", (x) => x !== null && typeof x === "object", {});
    this.retention = {
      maxAgeDays: pick(b, "maxAgeDays", (x) => typeof x === "number" && x > 0, RETENTION.maxAgeDays),
      maxEvents: pick(b, "maxEvents", (x) => typeof x === "number" && x > 0, RETENTION.maxEvents),
      maxBytes: pick(b, "maxBytes", (x) => typeof x === "number" && x > 0, RETENTION.maxBytes),
      sessionGapMinutes: pick(b, "sessionGapMinutes", (x) => typeof x === "number" && x > 0, RETENTION.sessionGapMinutes),
      types: [...pick<string[]>(b, "types", (t) => Array.isArray(t) && t.every((x) => typeof x === "string"), [])],
    };
    this.at = this.now();
  }

  private now(): number {
    try {
      const t = this.clock();
      return typeof t === "number" && Number.isFinite(t) ? t : Date.now();
    } catch {
      return Date.now();
    }
  }

  report(): void {
    // Nothing is stored here, so there is nothing to report about storage.
  }

  record(): void {
    // The history is not written without the wasm (it is never written here).
  }

  get consent(): ConsentState {
    return this.consentState.state;
  }

  /** A slot serving its fallback; bad options are refused as the real site refuses them. */
  slot(name: string, options: InsituOptions): Slot {
    if (typeof name !== "string" || !/^[A-Za-z0-9._-]{1,48}$/.test(name)) {
      throw fail("INVALID_OPTION", `option \`slot\` should be 1 to 48 letters, digits, \`-\`, \`_\` or \`.\`, but is ${describe(name)}`);
    }
    const spec = checkSlot(options);
    const ids = spec.variants.map((v) => v.id);
    const i = spec.fallback;
    const decision = (): Decision => ({
      variant: ids[i]!,
      index: i,
      probability: 1,
      pmf: ids.map((_, j) => (j === i ? 1 : 0)),
      scores: [],
      decisionId: null,
      seed: null,
      modelVersion: "fallback",
      policy: "fallback",
      fallback: true,
      error: this.fallback,
    });
    const none = (): void => {};
    return {
      name,
      rank: decision,
      // Nothing was learned or scored: there is nothing to explain.
      explain: () => null,
      reward: none,
      activate: none,
      learn: none,
      stats: () => ({ variants: ids.map((id) => ({ id, updates: 0 })), pending: 0, policy: "fallback", modelVersion: "fallback" }),
      variants: [...ids],
      modelVersion: "fallback",
      policy: "fallback",
    };
  }

  context(context: ContextObject): ContextObject {
    return context;
  }

  experiments(configs: ExperimentConfig[]): ExperimentInfo[] {
    const specs = checkExperiments(configs);
    const list = specs.map((e) => ({
      key: e.key,
      variants: [...e.variants],
      weights: [...e.weights],
      coverage: e.coverage,
      fallback: e.variants[e.fallback]!,
      hash: e.hash,
      targeted: e.targeting.length > 0,
      allocation: e.allocation.type,
      index: e.fallback,
    }));
    this.list = new Map(list.map((e) => [e.key, e]));
    return list.map(({ index: _, ...e }) => e);
  }

  run(key: string, _options?: { attributes?: Record<string, unknown> }): Assignment {
    const e = typeof key === "string" ? this.list.get(key) : undefined;
    if (e === undefined) throw fail("UNKNOWN_EXPERIMENT", `no experiment ${describe(key)} is configured; pass it to experiments() first`);
    return {
      key: e.key, variant: e.fallback, index: e.index, inExperiment: false, reason: "unavailable", probability: 1,
      hash: e.hash, allocation: e.allocation, unit: "none",
    };
  }

  rewardExperiment(): void {}

  setUnit(): void {}

  track(): void {}

  features(): null {
    return null;
  }

  setConsent(t: ConsentTier): ConsentState {
    if (!tier(t)) throw fail("INVALID_OPTION", `option \`consent\` should be one of ${TIERS.join(", ")}, but is ${describe(t)}`);
    this.consentState.set(t as Tier);
    const r = rank(this.consentState.effective);
    for (const k of this.store.ownKeys()) if (r < this.store.tierOf(k)) this.store.remove(k);
    this.announce({ type: "consent", tier: t });
    return this.consent;
  }

  /** Tell the page's other tabs, which may run the wasm. */
  private announce(message: object): void {
    try {
      const channel = new BroadcastChannel(`insitu:${this.key}`);
      channel.postMessage(message);
      channel.close();
    } catch {
      // No BroadcastChannel: other tabs see the storage change on their next read.
    }
  }

  flush(): Promise<FlushResult> {
    return Promise.resolve({ written: false, reason: "fallback", error: this.fallback });
  }

  audit(): Audit {
    return {
      ...manifestBase(this.store, this.consentState, "ok", savedAtOf, this.retention.maxAgeDays, this.now()),
      retention: { ...this.retention, types: [...this.retention.types] },
      events: { total: 0, byType: {} },
      models: [],
      experiments: {
        unit: "none",
        list: [...this.list.values()].map((e) => ({ key: e.key, variants: [...e.variants], hash: e.hash, allocation: e.allocation })),
        exposures: [],
      },
      history: [{ at: this.at, event: "fallback", code: this.fallback.code, detail: this.fallback.message }],
    };
  }

  forget(): Audit {
    for (const k of this.store.ownKeys()) this.store.remove(k);
    this.announce({ type: "forget" });
    return this.audit();
  }

  close(): void {}
}
