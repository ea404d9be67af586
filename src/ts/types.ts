// The option types of the public API. Everything a site passes is checked
// at run time too (src/ts/validate/): these types are for the editor.

import type { InsituError } from "./errors.js";
import type { ExposureEvent } from "./experiments.js";

/** Namespaced features: `{ page: { section: "sports", price: 12.5, tags: ["a", "b"] } }`.
 * Values are numbers, booleans, strings (categorical) or arrays of strings. Only
 * namespaces listed in `features.allow` are read; the rest never reach the module. */
export type ContextObject = Record<string, Record<string, number | boolean | string | string[] | undefined>>;

/** How features are hashed. Part of a model; for slots without a model. */
export interface FeatureOptions {
  /** Features land in `2^bits` slots, 4 to 18. Default 7 (128 slots) for a slot of up to 32 variants; 6 past 32 variants, for a catalogue and for a model. */
  bits?: number;
  /** Namespaces that may become features. Everything else is dropped. Default `[]`. */
  allow?: string[];
  /** Namespace pairs whose features are crossed, e.g. `[["visitor", "variant"]]`. */
  interactions?: Array<[string, string]>;
  /**
   * Scale each context's feature vector (with its bias and crosses) to length 1, so one prior
   * variance suits a context of 3 features and one of 60. Default `true` for a slot's own features;
   * a model's features are normalized only when the model says so.
   */
  normalize?: boolean;
  /**
   * Slots each feature folds into (crosses and the bias take one): 2 puts ±1/√2 of its value in
   * each of two, so two features almost never share all their weights, at about twice the stored
   * learning. Default 1.
   */
  slotsPerFeature?: 1 | 2;
  /** Feature hash version; only 1 exists. */
  hashVersion?: 1;
}

/** The exploration policy. Every policy takes `minProbability` (default 0.001, at most 1/K). */
export type Policy =
  | { type?: "linucb"; /** Confidence bonus width, default 0.5. */ alpha?: number; minProbability?: number }
  | { type: "thompson"; /** Posterior sd multiplier, default 0.25. */ scale?: number; /** Draws for the pmf, default 32. */ samples?: number; minProbability?: number }
  | { type: "egreedy"; /** Exploration rate, default 0.1. */ epsilon?: number; minProbability?: number }
  | { type: "greedy"; minProbability?: number }
  | {
      /** Apprentice mode: serve the site's baseline with probability 1 and learn in the shadow; `slot.evaluate()` says what switching would change. */
      type: "apprentice";
      /** The variant served: an id, or a function of the call's context returning one. */
      baseline: string | ((context: ContextArg | undefined) => string);
      /** The policy learning in the shadow (and served once the site switches to it). Default LinUCB. */
      learner?: Exclude<Policy, { type: "apprentice" }>;
    };

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
    features?: ContextObject;
    /** Prior weight means: `2^bits` numbers, or sparse `{ slot: weight }`. */
    weights?: number[] | Record<string, number>;
    /** Prior weight variances: one number, or `2^bits` numbers. */
    variance?: number | number[];
  }>;
}

/** Options of a slot (`site.slot(name, options)`, `new Insitu(options)`). Unknown keys are `INVALID_OPTION`. */
export interface InsituOptions {
  /** Variant ids, or `{ id, features }`. Required unless `model` is given. */
  variants?: Array<string | { id: string; features?: ContextObject }>;
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
  /** Decisions kept waiting for delayed rewards, oldest evicted. Default 256. */
  maxPending?: number;
  /**
   * Private reports of this slot (a site's slots only): one report per period, handed to the
   * site's `onReport`, never sent by this module. Checked when the full engine arrives; a
   * mistake (or a task another slot or experiment reports to) goes to `onError`
   * (`INVALID_OPTION`) and the slot makes no reports.
   */
  reports?: ReportOptions;
  /**
   * A catalogue: one learner shared by every variant through the variants' own `features` (each
   * variant needs some), so a slot holds up to 4,096 variants and its state grows with the feature
   * space, not with the variants. `bits`: the variant features' hash width, 1 to 10 (default 6);
   * with `features.bits` at most 16. Not with a `model`; no `reports` or `explain`, and its
   * `evaluate()` is `NO_DATA` (no decision is logged for it). Default: a learner per variant, at
   * most 64 variants.
   */
  catalogue?: boolean | { bits?: number };
}

/**
 * What a slot reports, and the contribution bounds of one report. The aggregator's task file
 * must say the same (each `Report` carries it as `taskFile`).
 */
export interface ReportOptions {
  /** The task id (a DAP task id in production): 1 to 256 letters, digits, `.`, `_`, `~`, `:` or `-`. */
  task: string;
  /** Days per period, 1 to 366. Periods start on whole multiples of it since 1970-01-01 UTC. Default 1. */
  periodDays?: number;
  /** Include the learner's X'y and X'X diagonal (for the next prior). Default true; needs variants × 2^bits ≤ 4096. */
  learning?: boolean;
  /** Fixed-point units per 1.0 of reward sums, X'y and X'X: an integer in [1, 2^20]. Default 256. */
  scale?: number;
  /** Per-report L1 bounds; larger values are clipped and the ledger says so. Defaults 20, 20, 20, 40, 20. */
  bounds?: { decisions?: number; exposures?: number; rewards?: number; xy?: number; xx?: number };
  /** A coarse label sent in the clear with the report (a device class, a region; never an identifier): 1 to 64 letters, digits, `.`, `_` or `-`. */
  segment?: string;
}

/** A group of a report's statistics. */
export type ReportGroup = "reports" | "decisions" | "exposures" | "rewards" | "xy" | "xx";

/**
 * One closed period of one slot or experiment, as `onReport` receives it: the measurement of
 * a Prio3 `SumVec` (`vdaf`), for `@divviup/dap`'s `sendMeasurement`, or the plain line
 * (`line`) for a site that aggregates on a server it trusts (not private against that server).
 * `onReport` is called once per report and its result is not awaited: retry a failed upload
 * from the callback itself (the audit keeps the last payload: `audit().reports[i].last`).
 */
export interface Report {
  v: 1;
  task: string;
  /** The period's first day, `YYYY-MM-DD` (UTC). */
  period: string;
  /** The slot's name or the experiment's key. */
  key: string;
  owner: "slot" | "experiment";
  segment?: string;
  /** `1 + 3K + 3Kd` integers in `[0, 2^bits)` (`1 + 3K` for an experiment, or a slot without `learning`). */
  measurement: number[];
  vdaf: { type: "Prio3SumVec"; bits: number; length: number; chunkLength: number };
  /** Groups clipped to their bounds. */
  clipped: ReportGroup[];
  /** The task file `insitu-aggregate` reads (`--spec`). */
  taskFile: {
    format: 1; task: string; period: string; key: string; variants: number; slots: number; scale: number;
    bounds: { decisions: number; exposures: number; rewards: number; xy: number; xx: number };
  };
  /** The plain report line `insitu-aggregate aggregate` reads (JSON). */
  line: string;
}

/** A context: the object, or one encoded once per page by `site.context()`. */
export type ContextArg = ContextObject | import("./features.js").Context;

/** Options of `rank`. */
export interface RankOptions {
  context?: ContextArg;
  /** One feature object per variant for this call, replacing the configured ones. */
  actions?: Array<ContextObject | null>;
  /** Replays a decision: the same seed on the same state gives the same decision. */
  seed?: number;
  /** The reward only counts after `activate` (deferred activation). */
  defer?: boolean;
  /** The injected clock, ms since the epoch. Default: the site's clock. */
  now?: number;
  /**
   * A slate: `k` distinct variants for a row of content, 1 to min(variants, 64), drawn without
   * replacement from the policy's pmf (`decision.slate`). Each position has its own decision id;
   * reward each one shown. Not in apprentice mode (which serves the baseline alone).
   */
  k?: number;
}

/** Options of `explain`: the rank options the decision was made with. */
export interface ExplainOptions {
  context?: ContextArg;
  actions?: Array<ContextObject | null>;
  /** The variant to explain. Default: the one with the highest mean score. */
  variant?: string;
  /** How many contributions to list, 1 to 64. Default 5. */
  top?: number;
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

/** Options of `slot.evaluate()`. */
export interface EvaluateOptions {
  /** Two-sided level of the intervals, in [0.5, 0.999]. Default 0.95. */
  level?: number;
}

/** Options of `learn`: a logged observation, for any variant. */
export interface LearnOptions {
  context?: ContextArg;
  actions?: Array<ContextObject | null>;
  variant: string;
  /** In [0, 1]. */
  reward: number;
  /** The probability the log served `variant` with, in [0.000001, 1]: the observation then counts in `evaluate()`. */
  probability?: number;
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

/** One targeting condition: the attribute (a dotted path such as `behavior.sessions`) and exactly one test.
 * Comparisons are strict: `"3"` is not `3`; a missing or null attribute fails every test but `exists: false`. */
export type TargetingCondition = { attribute: string } & (
  | { equals: string | number | boolean }
  | { in: Array<string | number | boolean> }
  /** `[min, max)`; null leaves a side open. Numbers only. */
  | { range: [number | null, number | null] }
  | { exists: boolean }
);

/** An experiment, as the site configures it. Errors are `INVALID_EXPERIMENT` naming the field. */
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
  /**
   * Private reports of this experiment, as a slot's (see `ReportOptions`), counts only: per
   * variant, the assignments, the unit's first exposure and the rewards passed to
   * `rewardExperiment` on a page view that ran it. `learning` does not apply.
   */
  reports?: Omit<ReportOptions, "learning">;
}

/** What the visitor allows. `none`: nothing is stored, no identifier. `functional`: the audit history and the
 * experiments' device seed and state. `personalization`: learning and behaviour events too. Nothing leaves the device. */
export type ConsentTier = "none" | "functional" | "personalization";

/** Where a `.wasm` comes from: a URL, `Request`, `Response`, its bytes or a compiled module. */
export type WasmSource = string | URL | Request | Response | BufferSource | (WebAssembly.Module & object);

/** Options of `open()`. Every field is optional. */
export interface OpenOptions {
  /** Storage key, and prefix of every other key this module writes: 1 to 32 letters, digits, `_`, `-`. Default `"insitu"`. */
  key?: string;
  /** The tier the visitor chose, from the site's consent manager. Omit it until known. */
  consent?: ConsentTier;
  /** The tier while the visitor has not chosen. Default `"functional"`. A default never deletes stored data. */
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
  /** Called once per first exposure of this unit to a variant: the only way an assignment leaves the device. */
  onExposure?: (exposure: ExposureEvent) => void;
  /** Called once per closed period of a slot or experiment with `reports` (consent `personalization` only): the only way a report leaves the device. Not awaited. */
  onReport?: (report: Report) => void | Promise<void>;
}

/** Options of `load()`: those of `open()`, plus where the modules come from and who hears about a fallback. */
export interface LoadOptions extends OpenOptions {
  /** The first-decision module (default: `insitu_bg.wasm` next to the package's `index.js`). */
  wasm?: WasmSource;
  /** The full engine, loaded after the first paint (default: `insitu_full.wasm` next to the package). */
  wasmFull?: WasmSource;
  /** Called once, with an `InsituError`, when `load()` resolves to a fallback site. */
  onFallback?: (error: InsituError) => void;
}
