// A/B experiments of a site: configurations checked here, assignment and
// the state they keep on the device in the core's allocator (the unit key,
// the exposure log, bandit counts and trials), targeting evaluated here on
// the attributes the page passes.
//
// The device seed (the unit key when the site has no id of its own) is
// written under `<key>.unit` the moment it is drawn, not with the next
// write: a visitor who leaves at once still gets the same variant on the
// next visit. Its copy in the allocator's stored state is only a fallback
// for data written by earlier builds.
//
// On the first-decision module every call that may change the allocator is
// also logged, and replayed on the full engine when it arrives (full.ts
// `experimentsOnto`; assignment is deterministic given the stored state and
// the allocator's seed, which both share). Like a slot's, the log is capped:
// past it, the full engine gets the configuration and the units only.

import { type Core, experimentsLayout } from "./core.js";
import { describe, fail, type InsituError } from "./errors.js";
import type { ExperimentSpec } from "./spec.js";
import { checkExperiments } from "./validate/experiments.js";
import { holds } from "./validate/targeting.js";
import { entropy } from "./slot.js";

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

/** A checked experiment, as `experiments()` returns it. */
export interface ExperimentInfo {
  key: string;
  variants: string[];
  weights: number[];
  coverage: number;
  fallback: string;
  hash: Assignment["hash"];
  targeted: boolean;
  allocation: Assignment["allocation"];
  namespace?: { name: string; range: [number, number] };
  holdout?: { key: string; fraction: number };
}

/** Most calls logged before the full engine arrives (as a slot's, slot.ts). */
const MAX_LOGGED = 65_536;

const utf8 = new TextEncoder();

const REASONS = ["assigned", "no-unit", "targeting", "namespace", "holdout", "coverage"] as const;

/** A call on the allocator, for the full engine to replay. */
export type Logged = [name: string, args: number[], bytes: Uint8Array | null];

/** The experiments and the allocator of a site. */
export class Experiments {
  core: Core;
  /** The allocator's handle, once experiments are configured. */
  h = 0;
  specs: ExperimentSpec[] = [];
  /**
   * @internal What the reports of experiments with `reports` count, in
   * order, until full.js hands it to their tallies: [key, kind (0 a
   * decision, 1 a first exposure, 2 a reward), variant index, reward].
   */
  reported: Array<[string, number, number, number]> = [];
  /** @internal The variant of each experiment's last assignment in it on this page view (what a reward counts for). */
  readonly shown = new Map<string, number>();
  #byKey = new Map<string, number>();
  readonly #seed = entropy(53);
  /** The site's id as the allocator has it (`siteUnit`), for a handover without the log. */
  #site: Uint8Array | null = null;
  /**
   * @internal The calls that changed the allocator, for the full engine to
   * replay, while on the first-decision module (null on the full engine, or
   * past `MAX_LOGGED`).
   */
  log: Logged[] | null;
  constructor(
    core: Core,
    /** Hears, once, that the log went past `MAX_LOGGED`. */
    private readonly capped: () => void = () => {},
  ) {
    this.core = core;
    this.log = core.full ? null : [];
  }

  /**
   * Call the allocator, and log the call while on the first-decision
   * module. With `bytes`, their length goes in as the second argument.
   */
  #call(name: string, args: number[], bytes: Uint8Array | null = null, words?: (code: string) => string): number {
    const r = this.#run(name, args, bytes, words);
    this.#log([name, args, bytes]);
    return r;
  }

  #run(name: string, args: number[], bytes: Uint8Array | null, words?: (code: string) => string): number {
    return this.core.call(name, bytes === null ? args : [args[0]!, this.core.put(bytes), ...args.slice(1)], words);
  }

  /** Log a call for the full engine (on the first-decision module): past `MAX_LOGGED`, the log goes (reported once). */
  #log(call: Logged): void {
    if (this.log !== null && this.log.push(call) > MAX_LOGGED) {
      this.log = null;
      this.capped();
    }
  }

  /**
   * @internal What the full engine replays to take over (called on the
   * first-decision module): the log, or past its cap the allocator rebuilt
   * from its configuration and units (its exposures, trials and rewards are
   * not handed over).
   */
  handover(): Logged[] {
    if (this.log !== null || this.h === 0) return this.log ?? [];
    const device = this.deviceUnit();
    const out: Logged[] = [["ab_new", [this.#seed], experimentsLayout(this.specs)]];
    if (this.#site !== null) out.push(["ab_site_unit", [0], this.#site]);
    if (device !== "") out.push(["ab_device_unit", [0, 1], utf8.encode(device)]);
    return out;
  }

  /** Configure (replacing any earlier set; device state is kept). Throws `INVALID_EXPERIMENT`, changing nothing. */
  configure(configs: unknown): ExperimentInfo[] {
    const specs = checkExperiments(configs);
    const layout = experimentsLayout(specs);
    if (this.h === 0) {
      this.h = this.#call("ab_new", [this.#seed], layout);
    } else {
      this.#call("ab_set", [this.h], layout);
    }
    this.specs = specs;
    this.#byKey = new Map(specs.map((e, i) => [e.key, i]));
    return specs.map(info);
  }

  /** The index of experiment `key`; `UNKNOWN_EXPERIMENT`. */
  index(key: unknown): number {
    const i = typeof key === "string" ? this.#byKey.get(key) : undefined;
    if (i === undefined) throw unknownExperiment(key);
    return i;
  }

  /** The site's id as the unit key (null: the device seed). */
  siteUnit(unit: string | null): void {
    if (this.h === 0) return;
    this.#site = unit === null ? null : utf8.encode(unit);
    if (this.#site === null) this.#call("ab_site_unit", [this.h, -1]);
    else this.#call("ab_site_unit", [this.h], this.#site);
  }

  /** The device seed held (empty: none). */
  deviceUnit(): string {
    if (this.h === 0) return "";
    return this.core.string(this.core.call("ab_device", [this.h]));
  }

  /** Use `unit` as the device seed; with `force` replacing any other. Whether it was set. */
  useDevice(unit: string, force: boolean): boolean {
    return this.#call("ab_device_unit", [this.h, force ? 1 : 0], utf8.encode(unit)) === 1;
  }

  /**
   * Assign experiment `key`: targeting evaluated on `attributes`, or for a
   * condition on `behavior.*` on what `behavior()` gives (an object whose
   * `behavior` is the behaviour namespace), the allocator decides. Returns
   * the assignment and whether the exposure is new.
   */
  assign(key: string, attributes: unknown, behavior: () => object, now: number, unit: Assignment["unit"]): [Assignment, boolean] {
    const i = this.index(key);
    const e = this.specs[i]!;
    const targeted = e.targeting.every((c) => holds(c, c.path[0] === "behavior" ? behavior() : attributes));
    const args = [this.h, i, targeted ? 1 : 0, now];
    const code = this.#run("ab_assign", args, null);
    // Logged when it may have changed the allocator: a new exposure, or a bandit's trial (any other assignment
    // only reads what was logged before, so a page that runs an experiment often logs it once).
    if ((code & 512) !== 0 || e.allocation.type === "thompson") this.#log(["ab_assign", args, null]);
    const [probability, bucket, seed] = this.core.read(3);
    const index = code & 63;
    const reason = REASONS[(code >> 6) & 7]!;
    const a: Assignment = {
      key,
      variant: e.variants[index]!,
      index,
      inExperiment: reason === "assigned",
      reason,
      probability: probability!,
      hash: e.hash,
      allocation: e.allocation.type,
      unit,
    };
    if (e.hash !== "insitu/1" && reason !== "no-unit" && !Number.isNaN(bucket)) a.bucket = bucket!;
    if (e.allocation.type === "thompson" && reason === "assigned" && seed! >= 0) a.seed = seed!;
    return [a, (code & 512) !== 0];
  }

  /** Reward the running trial of bandit experiment `key` (reward in [0, 1]). */
  reward(key: string, reward: number, now: number): void {
    const i = this.index(key);
    this.#call("ab_reward", [this.h, i, reward, now], null, (code) =>
      code === "UNKNOWN_DECISION" ? `experiment \`${key}\` has no running trial to reward (not a bandit, or not assigned)`
      : code === "DECISION_EXPIRED" ? `the trial of experiment \`${key}\` has expired; its reward window is over`
      : code === "DUPLICATE_REWARD" ? `the trial of experiment \`${key}\` was already rewarded`
      : `reward must be a finite number in [0, 1], but is ${describe(reward)}`);
  }

  /** Bandit `index`'s (successes, failures) per variant. */
  counts(index: number): Array<{ successes: number; failures: number }> {
    const n = this.core.call("ab_counts", [this.h, index]);
    const r = this.core.read(2 * n);
    return Array.from({ length: n }, (_, j) => ({ successes: r[2 * j]!, failures: r[2 * j + 1]! }));
  }

  /** The exposure log. */
  exposures(): Array<{ experiment: string; variant: string; at: number }> {
    if (this.h === 0) return [];
    const n = this.core.call("ab_exposures", [this.h]);
    const at = this.core.read(n);
    const lines = n === 0 ? [] : this.core.string(this.core.call("bytes_len", [])).split("\n");
    return Array.from({ length: n }, (_, j) => {
      const [experiment = "", variant = ""] = (lines[j] ?? "").split("\t");
      return { experiment, variant, at: at[j]! };
    });
  }

  /** Forget the device seed and its exposures (consent moved to `none`). */
  dropDevice(): void {
    if (this.h !== 0) this.#call("ab_drop_device", [this.h]);
  }

  /** Forget everything (`forget()`). */
  reset(): void {
    if (this.h !== 0) this.#call("ab_reset", [this.h]);
  }
}

export const unknownExperiment = (key: unknown): InsituError =>
  fail("UNKNOWN_EXPERIMENT", `no experiment ${describe(key)} is configured; pass it to experiments() first`);

/** What `experiments()` says of a checked experiment. */
export function info(e: ExperimentSpec): ExperimentInfo {
  const out: ExperimentInfo = {
    key: e.key,
    variants: [...e.variants],
    weights: [...e.weights],
    coverage: e.coverage,
    fallback: e.variants[e.fallback]!,
    hash: e.hash,
    targeted: e.targeting.length > 0,
    allocation: e.allocation.type,
  };
  if (e.namespace) out.namespace = { name: e.namespace.name, range: [...e.namespace.range] };
  if (e.holdout) out.holdout = { ...e.holdout };
  return out;
}
