// The fallback site: what `load()` resolves to when WebAssembly cannot run
// (a Content-Security-Policy without 'wasm-unsafe-eval', a blocked or failed
// download, server-side rendering) or the options are refused. The same
// API in plain JS, serving every slot's and experiment's configured
// fallback; it needs nothing but the entry (never full.js).
//
// It never writes storage: what earlier page views learned stays exactly as
// it was for the next page view that has WebAssembly. It still deletes on
// request, because consent does not wait for the wasm: `forget()` erases
// every key, and lowering consent deletes what the new tier does not allow.

import { type Audit, manifestBase } from "./audit.js";
import { checkTier, Consent, type ConsentState, rank, TIERS } from "./consent.js";
import type { InsituError } from "./errors.js";
import { type Assignment, type ExperimentInfo, info, unknownExperiment } from "./experiments.js";
import type { FlushResult, Slot } from "./site.js";
import { askedSlate, fallbackDecision } from "./slot.js";
import type { ExperimentSpec, StorageLike, Tier } from "./spec.js";
import { defaultStorage, type Sink, Store } from "./storage.js";
import { checkBehavior } from "./validate/behavior.js";
import { checkExperiments } from "./validate/experiments.js";
import { KEY_RE } from "./validate/open.js";
import { checkName, checkSlot } from "./validate/slot.js";
import type { ConsentTier, ContextObject, ExperimentConfig, InsituOptions } from "./types.js";

const FALLBACK = "fallback";
const none = (): void => {};

/** Value `k` of `o` when `check` accepts it, else `otherwise`: the fallback site takes what it can from options that may have been refused. */
function pick<T>(o: unknown, k: string, check: (v: unknown) => boolean, otherwise: T): T {
  try {
    const v = (o as Record<string, unknown>)[k];
    return v !== undefined && check(v) ? (v as T) : otherwise;
  } catch {
    return otherwise;
  }
}

const isTier = (v: unknown): boolean => (TIERS as readonly unknown[]).includes(v);

/** `f()`, or `otherwise()` when it throws. */
function safe<T>(f: () => T, otherwise: () => T): T {
  try {
    return f();
  } catch {
    return otherwise();
  }
}

/** A site without WebAssembly: the site's API serving fallbacks. */
export class FallbackSite implements Sink {
  readonly ready: Promise<void> = Promise.resolve();
  readonly key: string;
  readonly #store: Store;
  readonly #now: () => number;
  readonly #consentState: Consent;
  readonly #retention: Audit["retention"];
  #specs = new Map<string, ExperimentSpec>();
  readonly #at: number;

  constructor(
    options: unknown,
    readonly fallback: InsituError,
  ) {
    const o = options !== null && typeof options === "object" ? options : {};
    this.key = pick(o, "key", (k) => typeof k === "string" && KEY_RE.test(k), "insitu");
    const clock = pick(o, "now", (f) => typeof f === "function", Date.now);
    this.#now = () => {
      try {
        const t = clock();
        return typeof t === "number" && Number.isFinite(t) ? t : Date.now();
      } catch {
        return Date.now();
      }
    };
    let s = pick<unknown>(o, "storage", () => true, undefined);
    if (s === undefined) s = defaultStorage();
    const storage = pick(s, "getItem", (f) => typeof f === "function", null) === null ? null : (s as StorageLike);
    this.#store = new Store(storage, this.key, this, this.#now);
    this.#consentState = new Consent(
      pick<Tier | null>(o, "consent", isTier, null),
      pick<Tier>(o, "defaultConsent", isTier, "functional"),
      pick<unknown>(o, "gpc", () => true, "honor") !== "ignore",
    );
    // Retention as the real site reads it; the defaults when it would refuse it.
    const b = pick<unknown>(o, "behavior", () => true, undefined);
    this.#retention = safe(() => checkBehavior(b, "behavior"), () => checkBehavior(undefined));
    this.#at = this.#now();
  }

  /** Nothing is stored here, so there is nothing to report or record about storage. */
  report(): void {}

  record(): void {}

  get consent(): ConsentState {
    return this.#consentState.state;
  }

  /** A slot serving its fallback; bad options are refused as the real site refuses them. */
  slot(name: string, options: InsituOptions): Slot {
    checkName(name);
    const spec = checkSlot(options);
    const ids = spec.variants.map((v) => v.id);
    return {
      name,
      rank: (o) => fallbackDecision(ids, spec.fallback, FALLBACK, FALLBACK, this.fallback, askedSlate(o)),
      // Nothing was learned or scored: there is nothing to explain.
      explain: () => null,
      evaluate: () => null,
      reward: none,
      activate: none,
      learn: none,
      stats: () => ({ variants: ids.map((id) => ({ id, updates: 0 })), pending: 0, policy: FALLBACK, modelVersion: FALLBACK }),
      variants: [...ids],
      modelVersion: FALLBACK,
      policy: FALLBACK,
    };
  }

  context(context: ContextObject): ContextObject {
    return context;
  }

  experiments(configs: ExperimentConfig[]): ExperimentInfo[] {
    const specs = checkExperiments(configs);
    this.#specs = new Map(specs.map((e) => [e.key, e]));
    return specs.map(info);
  }

  run(key: string, _options?: { attributes?: Record<string, unknown> }): Assignment {
    const e = typeof key === "string" ? this.#specs.get(key) : undefined;
    if (e === undefined) throw unknownExperiment(key);
    return {
      key: e.key, variant: e.variants[e.fallback]!, index: e.fallback, inExperiment: false, reason: "unavailable", probability: 1,
      hash: e.hash, allocation: e.allocation.type, unit: "none",
    };
  }

  rewardExperiment(): void {}

  setUnit(): void {}

  track(): void {}

  features(): null {
    return null;
  }

  /**
   * Set the visitor's tier; lowering it deletes what the new tier does not
   * allow, and below personalization the experiments' state too (its bandit
   * counts cannot be taken out without the wasm).
   */
  setConsent(t: ConsentTier): ConsentState {
    this.#consentState.set(checkTier(t));
    const r = rank(this.#consentState.effective);
    for (const k of this.#store.ownKeys()) {
      if (r < this.#store.tierOf(k) || (r < 2 && this.#store.holds(k) === "experiments")) this.#store.remove(k);
    }
    this.#announce({ type: "consent", tier: t });
    return this.consent;
  }

  /** Tell the page's other tabs, which may run the wasm. */
  #announce(message: object): void {
    try {
      const channel = new BroadcastChannel(`insitu:${this.key}`);
      channel.postMessage(message);
      channel.close();
    } catch {
      // No BroadcastChannel: other tabs see the storage change on their next read.
    }
  }

  flush(): Promise<FlushResult> {
    return Promise.resolve({ written: false, reason: FALLBACK, error: this.fallback });
  }

  audit(): Audit {
    return {
      ...manifestBase(this.#store, this.#consentState, this.#retention.maxAgeDays, this.#now()),
      retention: { ...this.#retention, types: [...this.#retention.types] },
      events: { total: 0, byType: {} },
      models: [],
      experiments: {
        unit: "none",
        list: [...this.#specs.values()].map((e) => ({ key: e.key, variants: [...e.variants], hash: e.hash, allocation: e.allocation.type })),
        exposures: [],
      },
      reports: [],
      history: [{ at: this.#at, event: FALLBACK, code: this.fallback.code, detail: this.fallback.message }],
    };
  }

  forget(): Audit {
    for (const k of this.#store.ownKeys()) this.#store.remove(k);
    this.#announce({ type: "forget" });
    return this.audit();
  }

  close(): void {}
}
