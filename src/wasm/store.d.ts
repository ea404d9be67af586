// Types of the store (src/wasm/store.mjs), shipped as part of index.d.ts.
import type {
  ActivateOptions, BehaviorEvent, BehaviorOptions, Decision, ErrorCode, ExplainOptions, Explanation,
  InsituError, InsituOptions,
  LearnOptions, RankOptions, RewardOptions, Stats, ExperimentConfig, ExperimentInfo,
} from "./insitu.js";

/** What the visitor allows. `none`: nothing is stored, no identifier, learning
 * lasts for the page view. `functional`: only the audit history is stored.
 * `personalization`: the learner, behaviour events and pending decisions are
 * stored too. Nothing leaves the device in any tier. */
export type ConsentTier = "none" | "functional" | "personalization";

/** Options of `open()`. Every field is optional. */
export interface OpenOptions {
  /** Storage key, and prefix of every other key this module writes: 1 to 32 letters, digits, `_`, `-`. Default `"insitu"`. */
  key?: string;
  /** The tier the visitor chose, from the site's consent manager. Omit it until known. */
  consent?: ConsentTier;
  /** The tier while the visitor has not chosen (`consent` omitted). Default `"functional"`. A default never deletes stored data; an explicit `consent` or GPC does. */
  defaultConsent?: ConsentTier;
  /** `"honor"` (default): with Global Privacy Control on, `personalization` becomes `functional`. */
  gpc?: "honor" | "ignore";
  /** Retention of the behaviour store. */
  behavior?: BehaviorOptions;
  /** Where to store: a `Storage` such as `localStorage` (the default), or null for memory only. */
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem" | "key" | "length"> | null;
  /** The clock, in ms since the epoch. Default `Date.now`. */
  now?: () => number;
  /** Snapshot size cap in bytes, 64 to 16 MiB. Default 262144. */
  maxBytes?: number;
  /** Delay between an update and its write, 0 to 60000 ms. Default 1000. */
  flushDelayMs?: number;
  /** Storage problems (`STORAGE_QUOTA`, `STORAGE_UNAVAILABLE`, `SNAPSHOT_*` on quarantine) are reported here; the page keeps working. */
  onError?: (error: InsituError) => void;
  /** An id the site already has for this visitor, used as the experiments' unit key instead of the device seed. */
  unit?: string;
  /** Called once per first exposure of this unit to a variant. The only way
   * an assignment leaves the device, and only if the site sends it on. */
  onExposure?: (exposure: ExposureEvent) => void;
}

/** What `run()` returns. */
export interface Assignment {
  key: string;
  /** The variant to show: the assigned one, or the fallback when not in the experiment. */
  variant: string;
  index: number;
  inExperiment: boolean;
  /** `assigned`, or why not: `no-unit`, `targeting`, `namespace`, `holdout`, `coverage`,
   * or `unavailable` (WebAssembly could not run: the site from `load()` is a fallback). */
  reason: "assigned" | "no-unit" | "targeting" | "namespace" | "holdout" | "coverage" | "unavailable";
  /** The probability this variant was assigned with: its weight, or the bandit trial's probability (1 for a fallback). */
  probability: number;
  hash: "insitu/1" | "growthbook/1" | "growthbook/2";
  allocation: "weights" | "thompson";
  /** Where the unit key came from. */
  unit: "device" | "site" | "none";
  /** The unit's GrowthBook hash position (GrowthBook hash versions). */
  bucket?: number;
  /** The bandit trial's seed, which replays its draw. */
  seed?: number;
}

/** What `onExposure` receives. */
export interface ExposureEvent {
  experiment: string;
  variant: string;
  index: number;
  probability: number;
  hash: Assignment["hash"];
  allocation: Assignment["allocation"];
  unit: "device" | "site";
  /** The site's own id, when the unit is the site's (the device seed is never passed on). */
  unitId?: string;
}

/** A decision slot opened through the store: `Insitu`'s API, with the
 * `behavior` namespace added to each context and updates stored. */
export interface Slot {
  readonly name: string;
  /** Never throws: on bad input returns the fallback variant with `fallback: true`. */
  rank(options?: RankOptions): Decision;
  /**
   * Why a variant: its mean score split into what each feature of the
   * context (behaviour features included) adds. Pass the options the
   * decision was ranked with and its `variant`. Changes nothing; throws
   * `InsituError` on bad input. `null` on the fallback site (nothing learned).
   */
  explain(options?: ExplainOptions): Explanation | null;
  reward(options: RewardOptions): void;
  activate(options: ActivateOptions): void;
  learn(options: LearnOptions): void;
  stats(): Stats;
  readonly variants: string[];
  readonly modelVersion: string;
  readonly policy: string;
}

/** The consent state and where it came from. */
export interface ConsentState {
  tier: ConsentTier;
  /** `default` (the site has not said), `site` (`consent`/`setConsent`), or `gpc` (Global Privacy Control lowered it). */
  source: "default" | "site" | "gpc";
  /** `navigator.globalPrivacyControl`. */
  gpc: boolean;
}

/** The result of `flush()`. */
export interface FlushResult {
  written: boolean;
  /** Snapshot size when written. */
  bytes?: number;
  /** The stored snapshot's generation when written (one above the one it merged onto). */
  generation?: number;
  /** Why nothing was written: `consent`, `unavailable`, `quota-exceeded`, `newer-format`, `quarantine-failed`, `error`, or `fallback` (no WebAssembly: a fallback site never writes). */
  reason?: string;
  error?: InsituError;
}

/** One entry of the audit history. */
export interface AuditEntry {
  at: number;
  event:
    | "restored" | "quarantined" | "quarantine-dropped" | "quarantine-failed" | "recovered"
    | "quota-exceeded" | "storage-unavailable" | "consent-changed" | "deleted" | "expired"
    | "newer-format" | "stale-read"
    /** This page view runs without WebAssembly (`load()` fell back); never stored. */
    | "fallback";
  code?: ErrorCode;
  key?: string;
  detail?: string;
}

/** The manifest `audit()` returns; its JSON schema is `audit.schema.json` in the package. */
export interface Audit {
  schema: "insitu-audit/1";
  generatedAt: number;
  /** The module never makes a request. */
  network: "none";
  consent: ConsentState & {
    default: ConsentTier;
    honorsGpc: boolean;
    /** What the current tier lets this module keep in storage. */
    persists: Array<"audit-history" | "experiments" | "snapshot" | "quarantine">;
  };
  storage: {
    backend: "localStorage";
    status: "ok" | "unavailable" | "quota-exceeded";
    /** Every key this module holds: UTF-16 bytes of key and value, and when it expires unless rewritten. */
    keys: Array<{ key: string; holds: "snapshot" | "audit-history" | "experiments" | "quarantine"; bytes: number; expiresAt: number | null }>;
  };
  retention: Required<BehaviorOptions>;
  events: { total: number; byType: Record<string, number> };
  models: Array<{ slot: string; modelVersion: string; hashVersion: 1; policy: string; updates: number }>;
  experiments: {
    unit: "device" | "site" | "none";
    list: Array<{
      key: string; variants: string[]; hash: Assignment["hash"]; allocation: Assignment["allocation"];
      counts?: Array<{ successes: number; failures: number }>;
    }>;
    exposures: Array<{ experiment: string; variant: string; at: number }>;
  };
  history: AuditEntry[];
}

/** The page's store: consent, storage, the behaviour store and the slots. */
export interface Site {
  /** Null when the wasm runs. From `load()`, the error that made this a
   * fallback site: every slot's `rank()` and every `run()` then return the
   * configured fallback, nothing is learned or stored, and stored learning
   * is left untouched (only `forget()` and lowering consent delete). */
  readonly fallback: InsituError | null;
  /** Open a slot (`new Insitu(options)`), restored from storage when consent allows. */
  slot(name: string, options: InsituOptions): Slot;
  /** Configure the A/B experiments (replacing earlier ones; device state is kept).
   * Throws `INVALID_EXPERIMENT` naming the bad field, changing nothing. */
  experiments(configs: ExperimentConfig[]): ExperimentInfo[];
  /** This visitor's variant of experiment `key`; a first exposure is logged and
   * passed to `onExposure`. Throws `UNKNOWN_EXPERIMENT`. */
  run(key: string, options?: { attributes?: Record<string, unknown> }): Assignment;
  /** Reward the running trial of bandit experiment `key` (reward in [0, 1], default 1). */
  rewardExperiment(key: string, reward?: number): void;
  /** Use the site's own id as the unit key from now on (null: the device seed). */
  setUnit(unit: string | null): void;
  /** Record a behaviour event. Throws `INVALID_EVENT` or `UNKNOWN_EVENT_TYPE`; nothing is stored then. */
  track(event: BehaviorEvent): void;
  /** The `behavior` namespace the slots add to each context. */
  features(): Record<string, number | string> | null;
  readonly consent: ConsentState;
  /** Set the visitor's tier; lowering it deletes what the new tier does not allow. */
  setConsent(tier: ConsentTier): ConsentState;
  /** Store now (otherwise `flushDelayMs` after an update), merged with other tabs under a Web Lock. */
  flush(): Promise<FlushResult>;
  audit(): Audit;
  /** Erase every key this module wrote, quarantine and history included, and everything in memory, in every tab. Returns the audit. */
  forget(): Audit;
  /** Stop timers and the cross-tab channel. */
  close(): void;
}

/** Open the page's store. Throws `INVALID_OPTION` naming the bad field. */
export declare function open(options?: OpenOptions): Site;

/** Options of `load()`: those of `open()`, plus where the wasm comes from and
 * who hears about a fallback. */
export interface LoadOptions extends OpenOptions {
  /** The .wasm to instantiate: a URL (default: `insitu_bg.wasm` next to the
   * package's `insitu.js`, which webpack 5 and Vite emit as an asset), a
   * `Response`, its bytes, or a compiled `WebAssembly.Module`. */
  wasm?: string | URL | Request | Response | BufferSource | WebAssembly.Module;
  /** Called once, with an `InsituError`, when `load()` resolves to a fallback
   * site: `WASM_UNAVAILABLE` (the `cause` says why: a CSP without
   * `'wasm-unsafe-eval'`, a failed download, no WebAssembly), or the code of
   * the options `open()` refused. Without it, the error is logged with
   * `console.warn`. */
  onFallback?: (error: InsituError) => void;
}

/**
 * The entry point: instantiate the wasm (once per page) and open the page's
 * store. Never rejects: if WebAssembly cannot run or the options are refused
 * it resolves to a fallback site (`site.fallback` says why) whose slots and
 * experiments serve their configured fallbacks, so the page renders either way.
 *
 * ```js
 * const site = await load({ consent: "functional", onFallback: report });
 * const d = site.slot("hero", { variants: ["a", "b"], fallback: "a" }).rank();
 * ```
 */
export declare function load(options?: LoadOptions): Promise<Site>;
