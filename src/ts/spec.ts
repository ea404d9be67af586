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
  /** The variant's own features as given (a context object, copied), or null. Validated. */
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
}
