// An OpenFeature web provider over insitu (`insitu/openfeature`): a flag key
// is a slot or an experiment of one site, which the provider opens with
// load() when the SDK initializes it. It is its own file of the package:
// the entry (index.js) is imported, never bundled into it, so a page that
// does not import this file pays nothing for it, and one that does pays
// only this file.
//
// Resolution is synchronous once initialize() has resolved. A flag's
// decision is made once per evaluation context and kept until the context
// changes (or the consent does), so a component evaluated on every render
// neither re-decides nor floods the slot's pending decisions.

import type {
  EvaluationContext,
  EvaluationContextValue,
  FlagMetadata,
  FlagValue,
  JsonValue,
  Logger,
  Provider,
  ProviderEventEmitter,
  ProviderMetadata,
  ResolutionDetails,
  TrackingEventDetails,
} from "@openfeature/web-sdk";
import { InsituError, load } from "./index.js";
import { boundedJson, keyOf } from "./bounded.js";
import type { FallbackSite } from "./fallback.js";
import type { Site, Slot } from "./site.js";
import type { ExposureEvent } from "./experiments.js";
import type { ConsentTier, ContextObject, ExperimentConfig, InsituOptions, LoadOptions } from "./types.js";

/** A flag served by a decision slot of the site (the slot is named after the flag). */
export interface SlotFlag {
  slot: InsituOptions;
  /** The flag's value for each variant; a string flag without one serves the variant id. */
  values?: Record<string, JsonValue>;
  /** Tracking event names whose `value` (default 1) rewards this flag's latest decision. Default: the flag key. */
  events?: string[];
}

/** A flag served by an experiment of the site (`experiments` configures it). */
export interface ExperimentFlag {
  experiment: string;
  /** The flag's value for each variant; a string flag without one serves the variant id. */
  values?: Record<string, JsonValue>;
  /** Tracking event names whose `value` (default 1) rewards the experiment. Default: the flag key. */
  events?: string[];
}

export type FlagConfig = SlotFlag | ExperimentFlag;

export interface ProviderOptions {
  /** Flag keys and what serves them. */
  flags: Record<string, FlagConfig>;
  /** The site's experiments (as for `site.experiments()`). */
  experiments?: ExperimentConfig[];
  /** Options of `load()`; `onExposure` and `onError` are still called. */
  load?: LoadOptions;
  /**
   * The unit experiments bucket by: `"device"` (default: the device seed, no identifier) or
   * `"targetingKey"` (the context's `targetingKey`, passed to `site.setUnit`; it leaves the device
   * only in an exposure the site passes on).
   */
  unit?: "device" | "targetingKey";
}

type EventName = Parameters<ProviderEventEmitter<never>["emit"]>[0];
type Handler = Parameters<ProviderEventEmitter<never>["addHandler"]>[1];

/** The events a provider emits, as the SDK subscribes to them (no dependency on the SDK's runtime). */
class Emitter {
  #handlers = new Map<string, Handler[]>();
  #logger: Logger | undefined;

  emit(event: EventName, context?: Record<string, unknown>): void {
    for (const h of this.getHandlers(event)) {
      try {
        void h(context as never);
      } catch (e) {
        this.#logger?.error(`insitu: an OpenFeature event handler threw`, e);
      }
    }
  }
  addHandler(event: EventName, handler: Handler): void {
    this.#handlers.set(event, [...this.getHandlers(event), handler]);
  }
  removeHandler(event: EventName, handler: Handler): void {
    this.#handlers.set(event, this.getHandlers(event).filter((h) => h !== handler));
  }
  removeAllHandlers(event?: EventName): void {
    if (event === undefined) this.#handlers.clear();
    else this.#handlers.delete(event);
  }
  getHandlers(event: EventName): Handler[] {
    return this.#handlers.get(event) ?? [];
  }
  setLogger(logger: Logger): this {
    this.#logger = logger;
    return this;
  }
}

type Kind = "boolean" | "string" | "number" | "object";

/** One flag's decision under the current context. */
interface Made {
  variant: string;
  reason: "TARGETING_MATCH" | "SPLIT" | "DEFAULT" | "ERROR";
  metadata: FlagMetadata;
  decisionId: string | null;
  /** When it was made (ms). */
  at: number;
  /** The OpenFeature error code of an ERROR decision (default GENERAL). */
  code?: string;
  error?: string;
}

/**
 * An OpenFeature web provider: `OpenFeature.setProviderAndWait(new InsituProvider({ flags }))`.
 * Resolution details carry the variant, the reason (`TARGETING_MATCH` for a slot's decision,
 * `SPLIT` for an experiment's assignment, `DEFAULT` outside an experiment, `ERROR` with the
 * OpenFeature error code) and, in `flagMetadata`, insitu's probability, decision id, model version
 * and seed.
 */
export class InsituProvider implements Provider {
  readonly metadata: ProviderMetadata = { name: "insitu" };
  readonly runsOn = "client" as const;
  /** Its decisions, and the rewards they wait for, belong to one domain's context. */
  readonly domainScoped = true;
  readonly events = new Emitter();
  #options: ProviderOptions;
  #site: Site | FallbackSite | null = null;
  /** Decisions by flag key and context (its sorted JSON), kept until the context or consent changes. */
  #made = new Map<string, Made>();
  /** Each slot flag's slot, opened at its first evaluation, or why its options were refused. */
  #slots = new Map<string, Slot | Error>();
  /** Each slot flag's latest decision id waiting for its reward, which `track` settles. */
  #latest = new Map<string, string>();
  /** Which initialize() is current: a close, or a newer initialize, turns an older one's site away. */
  #generation = 0;
  /** The unit last passed to `site.setUnit` (`unit: "targetingKey"`). */
  #unit: string | null | undefined = undefined;
  /** The exposure the experiment being evaluated just made (onExposure is called inside run()). */
  #exposed = false;

  constructor(options: ProviderOptions) {
    if (options === null || typeof options !== "object" || options.flags === null || typeof options.flags !== "object") {
      throw new TypeError("InsituProvider: options.flags is required: { [flagKey]: { slot } | { experiment } }");
    }
    this.#options = options;
  }

  /** The site behind the provider (null before `initialize`): for consent, audit, forget. */
  get site(): Site | FallbackSite | null {
    return this.#site;
  }

  /** The slot serving flag `key` (opened at its first evaluation), or null. */
  slot(key: string): Slot | null {
    const s = this.#slots.get(key);
    return s === undefined || s instanceof Error ? null : s;
  }

  async initialize(): Promise<void> {
    const o = this.#options;
    const given = o.load ?? {};
    const onExposure = given.onExposure;
    const generation = ++this.#generation;
    this.#forget();
    const site = await load({
      ...given,
      onExposure: (e: ExposureEvent) => {
        this.#exposed = true;
        onExposure?.(e);
      },
    });
    if (generation !== this.#generation) {
      site.close(); // closed (or initialized again) while this one loaded
      return;
    }
    this.#site = site;
    // A refused list configures no experiment (experiments() is all or nothing): it goes to
    // onError, and each experiment flag then resolves with ERROR.
    if (o.experiments !== undefined) {
      try {
        site.experiments(o.experiments);
      } catch (e) {
        given.onError?.(e as never);
      }
    }
  }

  /** A new static context: every flag decides again under it (an equal one changes nothing). */
  onContextChange(old: EvaluationContext, next: EvaluationContext): void {
    if (keyOf(old) === keyOf(next)) return;
    this.#made.clear();
    this.#latest.clear();
  }

  async onClose(): Promise<void> {
    this.#generation++;
    this.#site?.close();
    this.#site = null;
    this.#forget();
  }

  /** Everything kept of the site: decisions, slots, the unit passed on. */
  #forget(): void {
    this.#made.clear();
    this.#latest.clear();
    this.#slots.clear();
    this.#unit = undefined;
  }

  /** Change the visitor's consent tier; every flag decides again under it. */
  setConsent(tier: ConsentTier): void {
    this.#site?.setConsent(tier);
    this.#made.clear();
    this.#latest.clear();
    this.events.emit("PROVIDER_CONFIGURATION_CHANGED" as EventName, { flagsChanged: Object.keys(this.#options.flags) });
  }

  resolveBooleanEvaluation(key: string, value: boolean, context: EvaluationContext, logger: Logger): ResolutionDetails<boolean> {
    return this.#resolve(key, value, "boolean", context, logger);
  }
  resolveStringEvaluation(key: string, value: string, context: EvaluationContext, logger: Logger): ResolutionDetails<string> {
    return this.#resolve(key, value, "string", context, logger);
  }
  resolveNumberEvaluation(key: string, value: number, context: EvaluationContext, logger: Logger): ResolutionDetails<number> {
    return this.#resolve(key, value, "number", context, logger);
  }
  resolveObjectEvaluation<T extends JsonValue>(key: string, value: T, context: EvaluationContext, logger: Logger): ResolutionDetails<T> {
    return this.#resolve(key, value, "object", context, logger);
  }

  /**
   * A tracking event rewards the flags that list it (by default, the flag of the same key): a
   * slot's latest decision under the current context, or the experiment. `value` is the reward
   * (default 1, in [0, 1] for a slot). Never throws: a refused reward goes to `load.onError`.
   */
  track(name: string, _context: EvaluationContext, details: TrackingEventDetails): void {
    const site = this.#site;
    if (site === null) return;
    let reward: unknown;
    try {
      reward = details?.value ?? 1;
    } catch (e) {
      this.#options.load?.onError?.(new InsituError("INVALID_REWARD", "the tracking details could not be read", e) as never);
      return;
    }
    for (const [key, flag] of Object.entries(this.#options.flags)) {
      if (!(flag.events ?? [key]).includes(name)) continue;
      try {
        if ("experiment" in flag) site.rewardExperiment(flag.experiment, reward as number);
        else {
          const id = this.#latest.get(key);
          if (id !== undefined) {
            this.slot(key)?.reward({ decisionId: id, reward: reward as number });
            this.#latest.delete(key); // settled: a second event finds nothing to reward
          }
        }
      } catch (e) {
        this.#options.load?.onError?.(e as never);
      }
    }
  }

  #resolve<T extends FlagValue>(key: string, value: T, kind: Kind, context: EvaluationContext, logger: Logger): ResolutionDetails<T> {
    if (typeof key !== "string") return fault(value, "FLAG_NOT_FOUND", `a flag key is a string, not a ${typeof key}`);
    const flag = Object.hasOwn(this.#options.flags, key) ? this.#options.flags[key] : undefined;
    if (flag === undefined) return fault(value, "FLAG_NOT_FOUND", `no flag \`${key.slice(0, 64)}\` is configured for insitu`);
    const site = this.#site;
    if (site === null) return fault(value, "PROVIDER_NOT_READY", "the provider has not been initialized");
    if (site.fallback !== null) return fault(value, "GENERAL", site.fallback.message, { insituError: site.fallback.code });
    const at = `${key}\u0000${keyOf(context)}`;
    let made = this.#made.get(at);
    const now = Date.now();
    // A decision older than its reward window can no longer learn: decide again.
    if (made !== undefined && now - made.at > ("slot" in flag ? flag.slot.rewardTtlMs ?? DAY_MS : Infinity)) made = undefined;
    if (made === undefined) {
      made = this.#decide(site, key, flag, context);
      made.at = now;
      if (this.#made.size >= MAX_DECISIONS) this.#made.clear();
      this.#made.set(at, made);
      if (made.decisionId !== null) this.#latest.set(key, made.decisionId);
    }
    // `exposure` only on the first evaluation of the decision that made it, whatever it resolves to: hooks forward it once.
    const metadata = made.metadata;
    if (metadata["exposure"] === true) made.metadata = { ...metadata, exposure: false };
    if (made.reason === "ERROR") return fault(value, made.code ?? "GENERAL", made.error ?? "insitu served its fallback", metadata);
    const own = flag.values !== undefined && Object.hasOwn(flag.values, made.variant) ? flag.values[made.variant] : undefined;
    const served = own !== undefined ? own : kind === "string" ? made.variant : undefined;
    if (!matches(served, kind)) {
      logger.warn(`insitu: flag \`${key}\` has no ${kind} value for variant \`${made.variant}\``);
      return fault(value, "TYPE_MISMATCH", `variant \`${made.variant}\` of flag \`${key}\` has no ${kind} value`, metadata);
    }
    return { value: served as T, variant: made.variant, reason: made.reason, flagMetadata: metadata };
  }

  /** A flag's decision; never throws (what the site refuses becomes an ERROR decision). */
  #decide(site: Site | FallbackSite, key: string, flag: FlagConfig, context: EvaluationContext): Made {
    try {
      return this.#make(site, key, flag, context);
    } catch (e) {
      const err = e as Error & { code?: string };
      const code = typeof err?.code === "string" ? err.code : "ERROR";
      return {
        variant: "", reason: "ERROR", metadata: { insitu: code }, decisionId: null, at: 0,
        code: code === "UNKNOWN_EXPERIMENT" ? "FLAG_NOT_FOUND" : "GENERAL", error: String(err?.message ?? e),
      };
    }
  }

  #make(site: Site | FallbackSite, key: string, flag: FlagConfig, context: EvaluationContext): Made {
    if ("experiment" in flag) {
      if (this.#options.unit === "targetingKey") {
        const tk = typeof context.targetingKey === "string" && context.targetingKey !== "" ? context.targetingKey : null;
        if (tk !== this.#unit) {
          try {
            site.setUnit(tk);
            this.#unit = tk;
          } catch (e) {
            // A key the site refuses (say, over 256 characters): no unit, never the previous visitor's.
            this.#options.load?.onError?.(e as never);
            site.setUnit(null);
            this.#unit = null;
          }
        }
      }
      this.#exposed = false;
      const a = site.run(flag.experiment, { attributes: attributes(context) });
      const metadata: FlagMetadata = {
        experiment: a.key, probability: a.probability, inExperiment: a.inExperiment, why: a.reason, unit: a.unit, exposure: this.#exposed,
      };
      if (a.seed !== undefined) metadata["seed"] = a.seed;
      this.#exposed = false;
      if (a.reason === "unavailable") return { variant: a.variant, reason: "ERROR", metadata, decisionId: null, at: 0, error: "insitu could not run the experiment" };
      return { variant: a.variant, reason: a.inExperiment ? "SPLIT" : "DEFAULT", metadata, decisionId: null, at: 0 };
    }
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      try {
        slot = site.slot(key, flag.slot);
      } catch (e) {
        slot = e instanceof Error ? e : new Error(String(e));
      }
      this.#slots.set(key, slot);
    }
    if (slot instanceof Error) {
      // The slot's options were refused: every evaluation reports it (rank() itself never throws).
      const code = (slot as Error & { code?: string }).code ?? "ERROR";
      return { variant: "", reason: "ERROR", metadata: { insitu: code }, decisionId: null, at: 0, error: slot.message };
    }
    const d = slot.rank({ context: namespaces(context) });
    const metadata: FlagMetadata = { probability: d.probability, modelVersion: d.modelVersion, policy: d.policy };
    if (d.decisionId !== null) metadata["decisionId"] = d.decisionId;
    if (d.seed !== null) metadata["seed"] = d.seed;
    if (d.fallback) {
      metadata["insitu"] = d.error?.code ?? "ERROR";
      return { variant: d.variant, reason: "ERROR", metadata, decisionId: null, at: 0, error: d.error?.message ?? "insitu served its fallback" };
    }
    return { variant: d.variant, reason: "TARGETING_MATCH", metadata, decisionId: d.decisionId, at: 0 };
  }
}

/** An error resolution: the caller's default, reason ERROR and the OpenFeature error code. */
function fault<T>(value: T, code: string, message: string, metadata?: FlagMetadata): ResolutionDetails<T> {
  const out = { value, reason: "ERROR", errorCode: code, errorMessage: message } as ResolutionDetails<T>;
  if (metadata !== undefined) out.flagMetadata = metadata;
  return out;
}

function matches(v: unknown, kind: Kind): boolean {
  if (kind === "object") return v !== null && typeof v === "object";
  return typeof v === kind;
}

/** A flat context value as insitu takes it: numbers, booleans, strings, lists of strings; a date as its ISO text. */
function plain(v: EvaluationContextValue): number | boolean | string | string[] | undefined {
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "string") return v;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.toISOString();
  if (Array.isArray(v) && v.length <= MAX_LIST && v.every((x) => typeof x === "string")) return v as string[];
  return undefined;
}

/**
 * The decision context of an evaluation context: each object-valued attribute is a namespace of
 * its plain values, and the top-level plain values (not `targetingKey`) are the namespace
 * `context`. The slot's allowlist then keeps only the namespaces it names.
 */
function namespaces(context: EvaluationContext): ContextObject {
  const out: ContextObject = {};
  if (context === null || typeof context !== "object" || Array.isArray(context)) return out;
  for (const [k, v] of Object.entries(context)) {
    if (k === "targetingKey" || v === undefined || v === null) continue;
    const p = plain(v);
    if (p !== undefined) (out["context"] ??= {})[k] = p;
    else if (typeof v === "object" && !Array.isArray(v) && !(v instanceof Date)) {
      const ns: Record<string, number | boolean | string | string[]> = {};
      for (const [n, x] of Object.entries(v)) {
        const q = x === undefined || x === null ? undefined : plain(x);
        if (q !== undefined) ns[n] = q;
      }
      out[k] = ns;
    }
  }
  return out;
}

/**
 * The targeting attributes of an evaluation context: the context as JSON (dates as ISO text),
 * `targetingKey` left out; none when it cannot be read as JSON within bounds.
 */
function attributes(context: EvaluationContext): Record<string, unknown> {
  const text = boundedJson(context, 10_000, 32);
  const out = text === null ? null : (JSON.parse(text) as unknown);
  if (out === null || typeof out !== "object" || Array.isArray(out)) return {};
  delete (out as Record<string, unknown>)["targetingKey"];
  return out as Record<string, unknown>;
}

/** A slot's reward window when its options do not set one (as in src/ts/validate/slot.ts). */
const DAY_MS = 86_400_000;
/** Most strings a list value may hold (insitu's limit of features per context is 256). */
const MAX_LIST = 256;
/** Decisions kept at most (flags × contexts); past it they are all made again. */
const MAX_DECISIONS = 256;

