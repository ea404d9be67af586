// The validated shapes the control plane hands to the core: what the
// validators (src/ts/validate/) make of the caller's options. Nothing
// downstream of a validator checks its output again, and nothing here refers
// to the caller's objects (no getter or Proxy of theirs can run later).

/** How features are hashed, checked. */
export interface FeatureSpec {
  hashVersion: 1;
  /** Features land in `2^bits` slots, 4 to 18. */
  bits: number;
  /** Allowlisted namespaces, sorted by their UTF-8 bytes (as the Rust core sorts them) and deduplicated. */
  allow: string[];
  /** Crossed namespace pairs as indices into `allow`, `a <= b`, unique, in the order given. */
  interactions: Array<[number, number]>;
  /** Each folded vector is scaled to unit length. */
  normalize: boolean;
  /** Slots each feature folds into (interactions and the constant take one): 2 splits its value ±1/√2 between two. */
  slotsPerFeature: 1 | 2;
}

/** The exploration policy, checked; defaults filled in. */
export type PolicySpec =
  | { type: "linucb"; alpha: number; minProbability: number }
  | { type: "thompson"; scale: number; samples: number; minProbability: number }
  | { type: "egreedy"; epsilon: number; minProbability: number }
  | { type: "greedy"; minProbability: number };

/** One variant, checked. */
export interface VariantSpec {
  id: string;
  /**
   * The variant's own features, or null: its allowlisted namespaces, validated
   * and copied as JSON would hold them (the namespaces the allowlist drops
   * count only for the model version).
   */
  features: Record<string, Record<string, unknown>> | null;
  /** Prior weight means, `2^bits` of them; null for all zeros. */
  mean: Float64Array | null;
  /** Prior weight variances: one for every slot, or `2^bits` of them. */
  variance: number | Float64Array;
}

/** A slot (`new Insitu(options)` / `site.slot(name, options)`), checked. */
export interface SlotSpec {
  variants: VariantSpec[];
  features: FeatureSpec;
  /** Observation noise variance, > 0. */
  noise: number;
  policy: PolicySpec;
  /** Index of the fallback variant. */
  fallback: number;
  /** Seed of the decision-seed stream, an integer in [0, 2^53), or null for fresh entropy. */
  seed: number | null;
  rewardTtlMs: number;
  maxPending: number;
  /** The model version: `m1-` and the content hash (16 hex digits), as the Rust core computes it. */
  modelVersion: string;
  /**
   * Apprentice mode (`policy: { type: "apprentice" }`): the baseline the slot serves, a variant's
   * index or the site's function of the context (the one caller object a spec keeps: it is called
   * on every decision); `policy` is then the learner's, kept in the shadow. Null otherwise.
   */
  apprentice: { baseline: number | ((context: unknown) => unknown) } | null;
  /**
   * The `reports` option as given, copied (`structuredClone`), or the error
   * copying it threw; undefined when absent. Checked by the full engine
   * (full.js), which alone makes reports.
   */
  reports: unknown;
  /**
   * A catalogue (`catalogue: true | { bits }`): one learner shared by every variant through its
   * own features, which take `2^bits` slots; null for a learner per variant.
   */
  catalogue: { bits: number } | null;
}

/** Retention of the behaviour store, checked; defaults filled in. */
export interface BehaviorSpec {
  maxAgeDays: number;
  maxEvents: number;
  maxBytes: number;
  sessionGapMinutes: number;
  /** Custom event types, sorted, deduplicated. */
  types: string[];
}

/** One tracked event, checked (the time comes from the clock). */
export interface EventSpec {
  type: string;
  item: string | null;
  category: string | null;
  tags: string[];
  value: number | null;
}

/** A targeting condition, checked. */
export interface ConditionSpec {
  attribute: string;
  /** The dotted path split. */
  path: string[];
  test:
    | { equals: string | number | boolean }
    | { in: Array<string | number | boolean> }
    | { range: [number | null, number | null] }
    | { exists: boolean };
}

/** One experiment, checked. */
export interface ExperimentSpec {
  key: string;
  variants: string[];
  /** Summing to 1. */
  weights: number[];
  coverage: number;
  holdout: { key: string; fraction: number } | null;
  namespace: { name: string; range: [number, number] } | null;
  targeting: ConditionSpec[];
  /** Index of the fallback variant. */
  fallback: number;
  hash: "insitu/1" | "growthbook/1" | "growthbook/2";
  /** The hash seed (default: the key). */
  seed: string;
  allocation:
    | { type: "weights" }
    | {
        type: "thompson";
        /** [successes, failures] per variant, in variant order. */
        prior: Array<[number, number]>;
        minProbability: number;
        samples: number;
        rewardWindowMs: number;
      };
  /** The `reports` option as given, copied (see `SlotSpec.reports`). */
  reports: unknown;
}

/** `reward` options, checked (`reward` a finite number in [0, 1]). */
export interface RewardSpec {
  decisionId: string;
  reward: number;
  /** The injected clock in ms, or null for `Date.now()`. */
  now: number | null;
}

/** `activate` options, checked. */
export interface ActivateSpec {
  decisionId: string;
  now: number | null;
}

/**
 * The options of a call that takes features (`rank`, `learn`, `explain`),
 * with everything but the features checked. `context` and the items of
 * `actions` are the caller's own values, handed on for the context walk to
 * validate (`undefined` / null when absent).
 */
export interface FeatureCall {
  context: unknown;
  /** A copy of the `actions` array (one feature object per variant), or null. */
  actions: unknown[] | null;
}

/** `rank` options, checked but for the features. */
export interface RankShape extends FeatureCall {
  /** Replays a decision: an integer in [0, 2^53), or null for the next seed. */
  seed: number | null;
  defer: boolean;
  now: number | null;
  /** The slate's size (`k`), or null for one decision. */
  k: number | null;
}

/** `learn` options, checked but for the features (`reward` in [0, 1]). */
export interface LearnShape extends FeatureCall {
  variant: string;
  reward: number;
  /** What the log served `variant` with, in (0, 1] (it then counts in `evaluate`); -1 for none. */
  probability: number;
}

/** `explain` options, checked but for the features. */
export interface ExplainShape extends FeatureCall {
  /** The variant to explain, or null for the best one. */
  variant: string | null;
  /** Contributions to list, 1 to 64. */
  top: number;
}

/** A consent tier, lowest first. */
export type Tier = "none" | "functional" | "personalization";

/** What `load()` may instantiate the wasm from: a URL, `Request`, `Response`, bytes, a compiled module, or a promise of one. */
export type WasmSource = string | URL | Request | Response | BufferSource | WebAssembly.Module | Promise<unknown>;

/** The part of `Storage` the store uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
  key(index: number): string | null;
  readonly length: number;
}

/**
 * `open()` / `load()` options, checked; defaults filled in. The callbacks,
 * `storage` and the wasm sources are the caller's own objects, kept as given.
 */
export interface OpenSpec {
  /** Storage key and prefix of every key written, 1 to 32 letters, digits, `_` or `-`. */
  key: string;
  /** The visitor's tier from the site, or null until known. */
  consent: Tier | null;
  defaultConsent: Tier;
  gpc: "honor" | "ignore";
  behavior: BehaviorSpec;
  /** The site's storage, null for memory only, or `"default"` for `localStorage` (looked up by the store, not here). */
  storage: StorageLike | null | "default";
  /** The clock, ms since the epoch (default `Date.now`). */
  now: () => number;
  /** Snapshot cap in bytes, 64 to 16 MiB. */
  maxBytes: number;
  flushDelayMs: number;
  onError: ((error: Error) => void) | null;
  /** The site's own id for this visitor, 1 to 256 characters, or null. */
  unit: string | null;
  onExposure: ((exposure: object) => void) | null;
  onReport: ((report: object) => void) | null;
  /** Where `load()` gets the .wasm, or null for the default next to the package. */
  wasm: WasmSource | null;
  /** The same for the full build, or null. */
  wasmFull: WasmSource | null;
  onFallback: ((error: Error) => void) | null;
}
