//! TypeScript declarations of the plain-data options and results, appended to
//! the generated `.d.ts`. The class's methods name these types through
//! `unchecked_param_type` / `unchecked_return_type`; `tests/js/types.test.mjs`
//! type-checks a consumer against the built package with `tsc`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Namespaced features: `{ page: { section: "sports", price: 12.5, tags: ["a", "b"] } }`.
 * Values are numbers, booleans, strings (categorical) or arrays of strings. Only
 * namespaces listed in `features.allow` are read; the rest never reach the module. */
export type Context = Record<string, Record<string, number | boolean | string | string[] | undefined>>;

/** How features are hashed. Part of a model; for `new Insitu` without a model. */
export interface FeatureOptions {
  /** Features land in `2^bits` slots, 4 to 18. Default 6. */
  bits?: number;
  /** Namespaces that may become features. Everything else is dropped. Default `[]`. */
  allow?: string[];
  /** Namespace pairs whose features are crossed, e.g. `[["visitor", "variant"]]`. */
  interactions?: Array<[string, string]>;
  /** Feature hash version; only 1 exists. */
  hashVersion?: 1;
}

/** The exploration policy. Every policy takes `minProbability` (default 0.01, at most 1/K). */
export type Policy =
  | { type?: "linucb"; /** Confidence bonus width, default 0.5. */ alpha?: number; minProbability?: number }
  | { type: "thompson"; /** Posterior sd multiplier, default 0.25. */ scale?: number; /** Draws for the pmf, default 32. */ samples?: number; minProbability?: number }
  | { type: "egreedy"; /** Exploration rate, default 0.1. */ epsilon?: number; minProbability?: number }
  | { type: "greedy"; minProbability?: number };

/** A shipped prior model, format 1 (see the README, Models). */
export interface Model {
  format: 1;
  /** The content hash; when given it must match the content. */
  version?: string;
  features: FeatureOptions;
  /** Observation noise variance of rewards. Default 0.25. */
  noise?: number;
  variants: Array<{
    id: string;
    /** The variant's own features, namespaced like a context. */
    features?: Context;
    /** Prior weight means: `2^bits` numbers, or sparse `{ slot: weight }`. */
    weights?: number[] | Record<string, number>;
    /** Prior weight variances: one number, or `2^bits` numbers. */
    variance?: number | number[];
  }>;
}

/** Options of `new Insitu(options)`. Unknown keys are `INVALID_OPTION`. */
export interface InsituOptions {
  /** Variant ids, or `{ id, features }`. Required unless `model` is given. */
  variants?: Array<string | { id: string; features?: Context }>;
  /** A shipped prior model; carries the variants and feature settings. */
  model?: Model;
  features?: FeatureOptions;
  /** Default `{ type: "linucb", alpha: 0.5 }`. */
  policy?: Policy;
  /** Variant served whenever a decision cannot be made. Default: the first. */
  fallback?: string;
  /** Seed of the decision-seed stream, an integer in [0, 2^53). Default: fresh entropy. */
  seed?: number;
  /** Observation noise variance (no model only). Default 0.25. */
  noise?: number;
  /** Prior variance of every weight (no model only). Default 1. */
  priorVariance?: number;
  /** How long a decision accepts its reward, in ms. Default 24 h. */
  rewardTtlMs?: number;
  /** Decisions kept for delayed rewards, oldest evicted. Default 256. */
  maxPending?: number;
}

/** Options of `rank`. */
export interface RankOptions {
  context?: Context;
  /** One feature object per variant for this call, replacing the configured ones. */
  actions?: Array<Context | null>;
  /** Replays a decision: the same seed on the same state gives the same decision. */
  seed?: number;
  /** The reward only counts after `activate` (deferred activation). */
  defer?: boolean;
  /** The injected clock, ms since the epoch. Default `Date.now()`. */
  now?: number;
}

/** The result of `rank`. */
export interface Decision {
  variant: string;
  index: number;
  /** The probability that the policy chose this variant. */
  probability: number;
  /** Every variant's probability, in variant order. */
  pmf: number[];
  /** Posterior mean scores, in variant order (empty for a fallback). */
  scores: number[];
  /** For `reward` and `activate`; `null` for a fallback. */
  decisionId: string | null;
  /** Replays this decision; `null` for a fallback. */
  seed: number | null;
  modelVersion: string;
  policy: string;
  /** True when the configured fallback was served because something failed. */
  fallback: boolean;
  /** Why the fallback was served. */
  error?: InsituError;
}

/** Options of `explain`: the rank options the decision was made with. */
export interface ExplainOptions {
  context?: Context;
  actions?: Array<Context | null>;
  /** The variant to explain. Default: the one with the highest mean score. */
  variant?: string;
  /** How many contributions to list, 1 to 64. Default 5. */
  top?: number;
}

/** One term of a variant's score. */
export interface Contribution {
  /** `namespace.name` (a number or flag), `namespace.name=value` (a
   * categorical) or `a × b` (an interaction). */
  feature: string;
  /** The feature's value (1 for a categorical; summed if listed twice). */
  value: number;
  /** What this variant has learned for it: the posterior mean weight. */
  weight: number;
  /** `value × weight`, what it adds to the score. */
  contribution: number;
  /** Another term hashes to the same slot, so the weight is shared. */
  shared: boolean;
}

/** The result of `explain`: why a variant scores what it does. */
export interface Explanation {
  variant: string;
  /** Its posterior mean score: `bias + Σ contribution + other`. */
  score: number;
  /** What the variant scores with no features at all. */
  bias: number;
  /** The largest terms, largest first by size. */
  contributions: Contribution[];
  /** What the terms not listed add together. */
  other: number;
  /** The variant with the highest mean score. When a decision chose another,
   * the policy explored (see `sd`). */
  best: string;
  /** Every variant's posterior mean score, in variant order (as `rank`). */
  scores: number[];
  /** Every variant's posterior standard deviation of the score: how unsure
   * the learner still is, which Thompson sampling and LinUCB act on. */
  sd: number[];
  /** Rewards this variant has learned from. */
  updates: number;
}

/** Options of `reward`. */
export interface RewardOptions {
  decisionId: string;
  /** In [0, 1]. */
  reward: number;
  now?: number;
}

/** Options of `activate`. */
export interface ActivateOptions {
  decisionId: string;
  now?: number;
}

/** Options of `learn`: a logged observation, for any variant. */
export interface LearnOptions {
  context?: Context;
  actions?: Array<Context | null>;
  variant: string;
  /** In [0, 1]. */
  reward: number;
}

/** The result of `stats()`. */
export interface Stats {
  variants: Array<{ id: string; updates: number }>;
  pending: number;
  policy: string;
  modelVersion: string;
}

/** Options of `sync()`. */
export interface SyncOptions {
  /** This slot's section name: 1 to 48 letters, digits, `-`, `_` or `.`. */
  slot: string;
  /** Current time in ms (default `Date.now()`); pending decisions past their expiry are not stored. */
  now?: number;
  /** Cap on the snapshot in bytes, 64 to 16 MiB (default 256 KiB). */
  maxBytes?: number;
}

/** The result of `restore()`: what loading the stored state found. */
export interface RestoreResult {
  /** The stored section came from another model; its learning was set aside. */
  modelChanged: boolean;
  /** Another tab or page view had stored since this slot last did (or this slot never had): the stored state became its base. */
  merged: boolean;
  /** This slot's own updates not yet stored, replayed onto the stored state. */
  replayed: number;
  /** Own rewards not replayed because another tab had counted the same decision. */
  duplicates: number;
  /** Own updates the stored state refused numerically. */
  rejected: number;
  /** Pending decisions of other page views now settleable here. */
  adopted: number;
}

/** The result of `sync()`: the snapshot to store, and what the merge found. */
export interface SyncResult extends RestoreResult {
  /** The snapshot to store; call `commit()` once it is stored. */
  bytes: Uint8Array;
  /** Storage had failed for so long that this slot's state overwrote other tabs' updates. */
  overwrote: boolean;
}

/** Retention of the behaviour store; every field is optional. */
export interface BehaviorOptions {
  /** Events older than this many days are deleted, (0, 400]. Default 30. */
  maxAgeDays?: number;
  /** At most this many events are kept, 1 to 5000. Default 500. */
  maxEvents?: number;
  /** The stored events take at most this many bytes, 256 to 262144. Default 16384. */
  maxBytes?: number;
  /** A gap longer than this many minutes starts a new session, 1 to 1440. Default 30. */
  sessionGapMinutes?: number;
  /** Custom event types besides view, click and convert: at most 16 names of letters, digits, `_`, `-`. */
  types?: string[];
}

/** One tracked event. Strings are 1 to 64 bytes; the time comes from the clock. */
export interface BehaviorEvent {
  /** `"view"`, `"click"`, `"convert"` or a type declared in `types`. */
  type: string;
  /** The item it concerns, e.g. a product id. */
  item?: string;
  /** The item's category. */
  category?: string;
  /** At most 8 tags. */
  tags?: string[];
  /** A finite number, e.g. an order total. */
  value?: number;
}

/** The result of `Behavior#sync()`. */
export interface BehaviorSyncResult {
  /** The snapshot to store; call `commit()` once it is stored. */
  bytes: Uint8Array;
  /** Events kept after the merge and retention. */
  events: number;
  /** Stored events of a type this store does not declare, not kept. */
  dropped: number;
}

/** One targeting condition: the attribute (a dotted path such as
 * `behavior.sessions`) and exactly one test. Comparisons are strict: `"3"` is
 * not `3`; a missing or null attribute fails every test but `exists: false`. */
export type TargetingCondition = { attribute: string } & (
  | { equals: string | number | boolean }
  | { in: Array<string | number | boolean> }
  /** `[min, max)`; null leaves a side open. Numbers only. */
  | { range: [number | null, number | null] }
  | { exists: boolean }
);

/** An experiment, as the site configures it. Checked on load: errors are
 * `INVALID_EXPERIMENT` naming the field, e.g. `experiments[1].weights`. */
export interface ExperimentConfig {
  /** Unique key: 1 to 64 letters, digits, `_ - . : /`. */
  key: string;
  /** 2 to 32 unique variant ids (same characters as keys). */
  variants: string[];
  /** Non-negative weights summing to 1, one per variant. Default: equal. */
  weights?: number[];
  /** Fraction of eligible units in the test, [0, 1]. Default 1. */
  coverage?: number;
  /** Units held out of every experiment naming the same holdout key. */
  holdout?: { key: string; fraction: number };
  /** Experiments in one namespace with disjoint ranges never share a unit. */
  namespace?: { name: string; range: [number, number] };
  /** All must hold, else the unit gets the fallback (reason `targeting`). */
  targeting?: TargetingCondition[];
  /** Variant served outside the experiment. Default: the first. */
  fallback?: string;
  /** `insitu/1` (default), or `growthbook/1` / `growthbook/2` to match GrowthBook's bucketing exactly. */
  hash?: "insitu/1" | "growthbook/1" | "growthbook/2";
  /** Hash seed. Default: the key. */
  seed?: string;
  /** Fixed weights (default), or a Thompson bandit over rewards seen on this device. */
  allocation?:
    | { type: "weights" }
    | {
        type: "thompson";
        /** Prior [successes, failures] per variant id, added to Beta(1, 1). */
        prior?: Record<string, [number, number]>;
        /** Least probability of any variant, at most 1/K. Default min(0.05, 1/K). */
        minProbability?: number;
        /** Posterior draws per trial, 1 to 8192. Default 512. */
        samples?: number;
        /** How long a trial waits for its reward before counting as a failure. Default one day. */
        rewardWindowMs?: number;
      };
}

/** A checked experiment, as `Experiments#describe()` returns it. */
export interface ExperimentInfo {
  key: string;
  variants: string[];
  weights: number[];
  coverage: number;
  fallback: string;
  hash: "insitu/1" | "growthbook/1" | "growthbook/2";
  targeted: boolean;
  allocation: "weights" | "thompson";
  namespace?: { name: string; range: [number, number] };
  holdout?: { key: string; fraction: number };
}

/** Stable error codes (see the README, Error codes). */
export type ErrorCode =
  | "INVALID_OPTION" | "INVALID_MODEL" | "INVALID_CONTEXT" | "NON_FINITE_FEATURE"
  | "STRING_TOO_LONG" | "TOO_MANY_FEATURES" | "INVALID_REWARD" | "UNKNOWN_DECISION"
  | "DECISION_EXPIRED" | "DUPLICATE_REWARD" | "NOT_ACTIVATED" | "UNKNOWN_VARIANT"
  | "NUMERICAL_ERROR" | "SNAPSHOT_FOREIGN" | "SNAPSHOT_CORRUPT" | "SNAPSHOT_VERSION"
  | "SNAPSHOT_TOO_LARGE" | "INVALID_EVENT" | "UNKNOWN_EVENT_TYPE"
  | "INVALID_EXPERIMENT" | "UNKNOWN_EXPERIMENT"
  | "STORAGE_UNAVAILABLE" | "STORAGE_QUOTA" | "POISONED" | "WASM_UNAVAILABLE";

/** Every error insitu throws or reports: an `Error` with a stable `code`. */
export interface InsituError extends Error {
  name: "InsituError";
  code: ErrorCode;
}
"#;
