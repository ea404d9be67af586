// A slot: one decision point and its learner, on a core (src/ts/core.ts).
//
// `Learner` is what `new Insitu(options)` and every slot of a site share:
// the options checked once, the variants' own features hashed once, and
// each call's context read, checked and hashed here (or taken from a
// `Context` encoded once per page) before the core scores it. The core
// receives (namespace index, hash, value) triples and numbers only.
//
// On the first-decision module a slot has a scorer only: it decides, and
// this side records each decision and queues rewards, activations and
// `learn` until the full engine arrives and takes them over (full.ts
// `slotOnto`), so a decision made before then is rewarded exactly once after.

import { type Core, type Own, slotLayout, type Wording } from "./core.js";
import { plane } from "./engine.js";
import { coded, describe, type ErrorCode, fail, type InsituError } from "./errors.js";
import { Budget, Context, type Encoded, type Hasher, invalid, isPlain, walkNamespace } from "./features.js";
import type { SlotSpec } from "./spec.js";
import { checkActivate, checkLearn, checkRankShape, checkReward, MAX_SLATE } from "./validate/calls.js";
import { guard, wellFormed } from "./validate/read.js";
import { checkSlot } from "./validate/slot.js";

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
  /**
   * With `rank({ k })`: `k` distinct variants for a row, the first this decision's. Each position is
   * a decision of its own, rewarded (and activated) by its own id; its probability is the one it was
   * drawn with given the positions before it. A fallback's slate is the fallback, then the other
   * variants in order, each with probability 1 and no id.
   */
  slate?: SlateItem[];
}

/** One position of a slate (`rank({ k })`). */
export interface SlateItem {
  variant: string;
  index: number;
  /** The probability it was drawn with, given the positions before it (the first: the decision's). */
  probability: number;
  /** For `reward` and `activate`; null for a fallback. */
  decisionId: string | null;
}

/** One term of a variant's score. */
export interface Contribution {
  /** `namespace.name` (a number or flag), `namespace.name=value` (a categorical) or `a × b` (an interaction). */
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
  /** The variant with the highest mean score. When a decision chose another, the policy explored (see `sd`). */
  best: string;
  /** Every variant's posterior mean score, in variant order (as `rank`). */
  scores: number[];
  /** Every variant's posterior standard deviation of the score. */
  sd: number[];
  /** Rewards this variant has learned from. */
  updates: number;
}

/** An estimate with its interval; `low` and `high` are null when the data give no variance yet. */
export interface Interval {
  value: number;
  low: number | null;
  high: number | null;
}

/** What one candidate policy would have earned on the decisions the slot logged. */
export interface PolicyEstimate {
  /**
   * `served`: what the slot served (its mean reward). `policy`: the slot's exploration policy as it
   * stood at each decision (the same as `served` unless the slot is an apprentice). `greedy`: the
   * variant with the highest mean score at each decision. `uniform`: every variant with
   * probability 1/K. `variant`: always `variant` (a control).
   */
  policy: "served" | "policy" | "greedy" | "uniform" | "variant";
  /** For `policy: "variant"`, which one. */
  variant?: string;
  /** Inverse propensity scoring: unbiased. */
  ips: Interval;
  /** Self-normalised IPS: lower variance, slightly biased; null when no decision carried weight. */
  snips: Interval | null;
  /** Doubly robust: the model's scores as a control variate; unbiased, usually the tightest. */
  dr: Interval;
  /** `dr` minus the served mean reward, paired decision by decision: what switching to this policy would change. */
  lift: Interval;
  /** Effective sample size, (Σw)² / Σw²: how many decisions the estimate is worth. */
  ess: number;
}

/** The result of `slot.evaluate()`. */
export interface Evaluation {
  /** Settled decisions that logged their probability, since the slot's learning began (this model version). */
  decisions: number;
  /** Share of them where the learner's greedy choice was the variant served (an apprentice's match rate). */
  matchRate: number;
  /** Two-sided level of every interval. */
  level: number;
  /** How the intervals are made: a normal approximation from additive sums. */
  method: "normal";
  modelVersion: string;
  estimates: PolicyEstimate[];
}

/** The result of `stats()`. */
export interface Stats {
  variants: Array<{ id: string; updates: number }>;
  pending: number;
  policy: string;
  modelVersion: string;
}

/** 48 random bits: a decision-id epoch; or 53, a seed. */
export function entropy(bits: 48 | 53): number {
  const w = new Uint32Array(random(8).buffer);
  return (w[0]! % 2 ** (bits - 32)) * 2 ** 32 + w[1]!;
}

/** `n` random bytes: the CSPRNG's, or where it is refused, `Math.random`'s. */
export function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  try {
    globalThis.crypto.getRandomValues(b);
  } catch {
    for (let i = 0; i < n; i++) b[i] = Math.random() * 256;
  }
  return b;
}

/** A decision id's epoch and counter, or null when it is not canonical (so one decision has one id). */
export function parseId(id: string): [number, number] | null {
  const m = /^([0-9a-f]{12})-(0|[1-9][0-9]{0,15})$/.exec(id);
  if (m === null) return null;
  const counter = Number(m[2]);
  return Number.isSafeInteger(counter) ? [parseInt(m[1]!, 16), counter] : null;
}

/**
 * The fallback decision of a slot with variants `ids`: variant `i`, with the error that made it one;
 * with a slate of `k` (the fallback, then the other variants in order) when the call asked for one.
 */
export const fallbackDecision = (ids: string[], i: number, modelVersion: string, policy: string, error: InsituError, k: number | null = null): Decision => {
  const d: Decision = {
    variant: ids[i]!,
    index: i,
    probability: 1,
    pmf: ids.map((_, j) => (j === i ? 1 : 0)),
    scores: [],
    decisionId: null,
    seed: null,
    modelVersion,
    policy,
    fallback: true,
    error,
  };
  if (k !== null) {
    const order = [i];
    for (let j = 0; j < ids.length && order.length < k; j++) if (j !== i) order.push(j);
    d.slate = order.map((j) => ({ variant: ids[j]!, index: j, probability: 1, decisionId: null }));
  }
  return d;
};

/** Per-call `actions` on a catalogue (the core's refusal, before anything is logged for it). */
const catalogueActions = (): InsituError =>
  fail("INVALID_CONTEXT", "feature `actions` cannot be given to a catalogue: its variants' features are the slot's");

/** The slate size a call asked for, read without throwing (a fallback still serves a row): 1 to 64, or null. */
export function askedSlate(options: unknown): number | null {
  try {
    const k = (options as { k?: unknown } | null | undefined)?.k;
    return typeof k === "number" && Number.isInteger(k) && k >= 1 ? Math.min(k, MAX_SLATE) : null;
  } catch {
    return null;
  }
}

/** A slot's options checked and prepared for a core, once. */
export class Prepared {
  readonly spec: SlotSpec;
  readonly ids: string[];
  /** Allowlisted namespace → its index (the order of the sorted allowlist). */
  readonly allow = new Map<string, number>();
  /** Each variant's own features, hashed. */
  readonly own: Own[] = [];
  /** Each variant's own features as namespace, name and categorical value (or null), for `explain`'s labels. */
  readonly ownNames: Array<Array<string | null>> = [];
  readonly epoch: number;
  readonly seed: number;

  constructor(options: unknown, readonly hasher: Hasher) {
    this.spec = checkSlot(options);
    this.ids = this.spec.variants.map((v) => v.id);
    this.spec.features.allow.forEach((ns, i) => this.allow.set(ns, i));
    for (const v of this.spec.variants) {
      const names: Array<string | null> = [];
      const own: Own = { triples: [] };
      for (const [ns, feats] of Object.entries(v.features ?? {})) {
        const i = this.allow.get(ns);
        if (i === undefined) continue;
        walkNamespace(hasher, ns, feats, "action", new Budget(), (h, x, name, value) => {
          own.triples.push(i, h, x);
          names.push(ns, name, value);
        });
      }
      this.own.push(own);
      this.ownNames.push(names);
    }
    this.epoch = entropy(48);
    this.seed = this.spec.seed ?? entropy(53);
  }

  get k(): number {
    return this.ids.length;
  }

  /** The configuration for `slot_new` / `score_new`, with decision-id epoch `epoch`. */
  layout(epoch = this.epoch): number[] {
    const seeds = this.spec.features.allow.map((ns) => this.hasher.seed(ns));
    return slotLayout(this.spec, seeds, this.own, this.seed, epoch);
  }
}

/** The features of one call, as the core reads them. */
export interface Features {
  /** The context's (namespace index, hash, value) triples. */
  shared: number[];
  /** Each variant's own triples for this call (`actions`), or null for the model's. */
  actions: number[][] | null;
  /**
   * Only when asked for (`explain`): the shared features' namespace, name
   * and categorical value (or null), three entries each; then each action's.
   */
  names: Array<string | null> | null;
  actionNames: Array<Array<string | null>> | null;
}

/**
 * Read, check and hash a call's features for slot `p`: the allowlisted
 * namespaces of `context` (a plain object or a `Context`), the behaviour
 * namespace `behavior` when the slot allows it, and each of `actions`.
 */
export const encode = (p: Prepared, context: unknown, actions: unknown[] | null, behavior: Encoded | null, withNames = false): Features =>
  // What the caller's getters and Proxy traps throw is an error naming the context.
  guard(invalid, "context", () => walk(p, context, actions, behavior, withNames));

function walk(
  p: Prepared,
  context: unknown,
  actions: unknown[] | null,
  behavior: Encoded | null,
  withNames: boolean,
): Features {
  const names: Array<string | null> | null = withNames ? [] : null;
  const shared: number[] = [];
  // A namespace's name is read as its features' are: lone surrogates as U+FFFD.
  const at = (ns: string): number | undefined => p.allow.get(wellFormed(ns));
  const budget = new Budget();
  /** An encoded namespace `ns` at index `i`: its pairs as triples, counted at once. */
  const add = (i: number, ns: string, e: Encoded): void => {
    const pairs = e.pairs;
    budget.take(pairs.length / 2);
    for (let j = 0; j < pairs.length; j += 2) {
      shared.push(i, pairs[j]!, pairs[j + 1]!);
      names?.push(ns, e.names[j]!, e.names[j + 1] ?? null);
    }
  };
  if (context instanceof Context) {
    for (const ns of context.order) {
      const i = at(ns);
      if (i !== undefined && (behavior === null || ns !== "behavior")) add(i, ns, context.get(ns)!);
    }
  } else if (context !== undefined && context !== null) {
    if (!isPlain(context)) {
      throw fail("INVALID_CONTEXT", `feature \`context\` should be an object of namespaces, but is ${describe(context)}`);
    }
    for (const ns of Object.keys(context)) {
      const i = at(ns);
      // Not allowlisted: never read. The store's own behaviour features replace the caller's.
      if (i === undefined || (behavior !== null && ns === "behavior")) continue;
      const feats = context[ns];
      if (feats === undefined) continue;
      walkNamespace(p.hasher, ns, feats, "context", budget, (h, x, name, value) => {
        shared.push(i, h, x);
        names?.push(ns, name, value);
      });
    }
  }
  const bi = behavior === null ? undefined : p.allow.get("behavior");
  if (bi !== undefined) add(bi, "behavior", behavior!);
  let own: number[][] | null = null;
  let actionNames: Array<Array<string | null>> | null = null;
  if (actions !== null) {
    own = [];
    actionNames = withNames ? [] : null;
    actions.forEach((a, k) => {
      const t: number[] = [];
      const n: Array<string | null> = [];
      if (a !== undefined && a !== null) {
        if (!isPlain(a)) {
          throw fail("INVALID_CONTEXT", `feature \`actions[${k}]\` should be an object of namespaces, but is ${describe(a)}`);
        }
        const b = new Budget();
        b.n = budget.n;
        for (const ns of Object.keys(a)) {
          const i = at(ns);
          if (i === undefined || a[ns] === undefined) continue;
          walkNamespace(p.hasher, ns, a[ns], `actions[${k}]`, b, (h, x, name, value) => {
            t.push(i, h, x);
            if (withNames) n.push(ns, name, value);
          });
        }
      }
      own!.push(t);
      actionNames?.push(n);
    });
  }
  return { shared, actions: own, names, actionNames };
}

/** `f.shared`, then with actions a count per variant and each variant's triples: what the core reads from `io`. */
export function callNums(f: Features): number[] {
  if (f.actions === null) return f.shared;
  const out = f.shared.slice();
  for (const a of f.actions) out.push(a.length / 3);
  for (const a of f.actions) out.push(...a);
  return out;
}

/** What a wasm error of a call about decision `id` says. */
const about = (raw: string): Wording => {
  // An id may be any string: clipped in messages, which stay short.
  const id = raw.length > 64 ? `${raw.slice(0, 64)}…` : raw;
  return (code) =>
    code === "UNKNOWN_DECISION" ? `no pending decision has id \`${id}\``
    : code === "DECISION_EXPIRED" ? `decision \`${id}\` has expired; its reward window is over`
    : code === "DUPLICATE_REWARD" ? `decision \`${id}\` was already rewarded`
    : code === "NOT_ACTIVATED" ? `decision \`${id}\` was deferred and has not been activated`
    : `decision \`${id}\`: refused (${code})`;
};

/** A decision this side tracks until the full engine takes it over. */
export interface Tracked {
  counter: number;
  expires: number;
  activated: boolean;
  rewarded: boolean;
}

/**
 * A call of the full engine's slot made on the first-decision module, for
 * the full engine to replay in order: its export, its arguments after the
 * slot's handle, the numbers it reads from `io` (or null), and the wording
 * of its errors.
 */
export type Logged = [name: string, args: number[], nums: number[] | null, words: Wording | undefined];

/** Most calls logged before the full engine arrives; past that, learning waits for the next page view. */
const MAX_LOGGED = 65_536;

/**
 * One slot's learner on a core. The caller supplies the clock; `behavior`
 * gives the behaviour namespace (the site's), `changed` hears every update.
 */
export class Learner {
  core: Core;
  h: number;
  /** @internal The log for the full engine, while on the first-decision module (null after, or when full). */
  log: Logged[] | null;
  /** @internal This slot's own decisions, checked before the full engine arrives. */
  own: Tracked[] = [];
  /** The epoch `#prefix` is for (-1: none yet) and the decision ids' first part, `<epoch in hex>-`. */
  #epoch = -1;
  #prefix = "";

  constructor(
    core: Core,
    readonly p: Prepared,
    private readonly clock: () => number,
    /** @internal The behaviour namespace (the site's). */
    readonly behavior: () => Encoded | null = () => null,
    /** Hears every update. */
    private readonly changed: () => void = () => {},
  ) {
    this.core = core;
    core.nums(p.layout());
    this.h = core.call(core.full ? "slot_new" : "score_new", []);
    this.log = core.full ? null : [];
  }

  get variants(): string[] {
    return [...this.p.ids];
  }

  get modelVersion(): string {
    return this.p.spec.modelVersion;
  }

  get policy(): string {
    return this.p.spec.apprentice === null ? this.p.spec.policy.type : "apprentice";
  }

  /**
   * The baseline an apprentice serves for `context` (-1: not an apprentice). A baseline function
   * that throws is `INVALID_OPTION`, one returning no variant id `UNKNOWN_VARIANT`.
   */
  #baseline(context: unknown): number {
    const a = this.p.spec.apprentice;
    if (a === null) return -1;
    if (typeof a.baseline === "number") return a.baseline;
    let id: unknown;
    try {
      id = a.baseline(context);
    } catch (e) {
      throw fail("INVALID_OPTION", `option \`policy.baseline\` threw: ${e instanceof Error ? e.message : describe(e)}`);
    }
    const i = typeof id === "string" ? this.p.ids.indexOf(id) : -1;
    if (i < 0) throw fail("UNKNOWN_VARIANT", `option \`policy.baseline\` returned ${describe(id)}, which is not one of the variants`);
    return i;
  }

  /** The fallback decision, with the error that made it one (and a slate of `k` when asked for). */
  fallbackDecision(error: InsituError, k: number | null = null): Decision {
    return fallbackDecision(this.p.ids, this.p.spec.fallback, this.modelVersion, this.policy, error, k);
  }

  /** Choose a variant. Never throws: on any failure, the fallback with the error. */
  rank(options?: unknown): Decision {
    try {
      const p = this.p;
      const k = p.k;
      const o = checkRankShape(options, k);
      if (o.actions !== null && p.spec.catalogue !== null) throw catalogueActions();
      const f = encode(p, o.context, o.actions, this.behavior());
      const now = o.now ?? this.clock();
      if (!Number.isFinite(now)) throw fail("INVALID_OPTION", `option \`now\` should be a finite time in ms, but the clock gave ${describe(now)}`);
      const nums = callNums(f);
      const c = this.core;
      const n = f.shared.length / 3;
      const actions = f.actions === null ? 0 : 1;
      const seed = o.seed ?? -1;
      const size = o.k ?? 1;
      // Before anything changes: a baseline that fails leaves the slot as it was.
      const b = this.#baseline(o.context);
      if (b >= 0 && size > 1) throw fail("INVALID_OPTION", "option `k` should be 1 in apprentice mode, which serves the baseline alone");
      c.nums(nums);
      let index = c.full ? c.call("rank", [this.h, n, actions, seed, now, o.defer ? 1 : 0, b, size]) : c.call("decide", [this.h, n, actions, seed, now, size]);
      const r = c.read(3 + 2 * k + 2 * size);
      const slate = r.subarray(3 + 2 * k);
      const counter = r[2]!;
      // What the first-decision module saw, for the full engine's evaluation log: its probability, pmf and scores.
      const seen = this.log === null ? null : [r[0]!, ...r.subarray(3)];
      if (b >= 0 && !c.full) {
        // The first-decision module drew as the policy would (its seed stream stays in step); an apprentice serves the baseline.
        index = b;
        r.fill(0, 3, 3 + k);
        r[0] = r[3 + b] = 1;
      }
      if (this.log !== null) {
        const seenNums = [...nums, ...seen!.slice(1, 1 + 2 * k)];
        for (let j = 0; j < size; j++) {
          // A slate's later positions: the decision's own seed (nothing drawn from the stream), and no
          // probability for the evaluation (theirs are conditional).
          const first = j === 0;
          const args = [n, actions, first ? index : slate[2 * j]!, first ? seed : r[1]!, o.defer ? 1 : 0, now, b >= 0 ? 1 : 0, first ? seen![0]! : -1];
          this.#push(["slot_take_over", args, seenNums, undefined]);
          // maxPending counts the decisions still waiting: evict the oldest waiting one past it.
          const waiting = this.own.filter((t) => !t.rewarded && now <= t.expires);
          if (waiting.length >= p.spec.maxPending) this.own.splice(this.own.indexOf(waiting[0]!), 1);
          this.own.push({ counter: counter + j, expires: now + p.spec.rewardTtlMs, activated: !o.defer, rewarded: false });
        }
      }
      // A decision id is the epoch in 12 hex digits, a dash, the counter in decimal: the first part is kept.
      if (this.#epoch !== p.epoch) this.#prefix = `${(this.#epoch = p.epoch).toString(16).padStart(12, "0")}-`;
      const d: Decision = {
        variant: p.ids[index]!,
        index,
        probability: r[0]!,
        pmf: Array.from(r.subarray(3, 3 + k)),
        scores: Array.from(r.subarray(3 + k, 3 + 2 * k)),
        decisionId: this.#prefix + counter,
        seed: r[1]!,
        modelVersion: p.spec.modelVersion,
        policy: this.policy,
        fallback: false,
      };
      if (o.k !== null) {
        d.slate = [];
        for (let j = 0; j < size; j++) {
          const at = slate[2 * j]!;
          d.slate.push({ variant: p.ids[at]!, index: at, probability: slate[2 * j + 1]!, decisionId: this.#prefix + (counter + j) });
        }
        // An apprentice's one position is the baseline it served.
        if (b >= 0) d.slate[0] = { ...d.slate[0]!, variant: p.ids[index]!, index, probability: 1 };
      }
      return d;
    } catch (e) {
      return this.fallbackDecision(coded(e, "INVALID_OPTION"), askedSlate(options));
    }
  }

  #push(entry: Logged): void {
    this.log?.push(entry);
    if (this.log && this.log.length > MAX_LOGGED) this.log = null;
  }

  /** Call the full engine's `name` (after `nums`), or log the call for it while on the first-decision module; then `changed`. */
  #send(name: string, args: number[], nums: number[] | null, words?: Wording): void {
    if (this.core.full) {
      if (nums !== null) this.core.nums(nums);
      this.core.call(name, [this.h, ...args], words);
    } else this.#push([name, args, nums, words]);
    this.changed();
  }

  /** Settle a decision with a reward in [0, 1]. Throws `InsituError`; nothing changes then. */
  reward(options: unknown): void {
    const o = checkReward(options);
    this.#settle(o.decisionId, o.now, o.reward);
  }

  /** Mark a decision ranked with `defer: true` as shown. */
  activate(options: unknown): void {
    const o = checkActivate(options);
    this.#settle(o.decisionId, o.now, null);
  }

  /**
   * Reward decision `id` (`reward` null: activate it). Before the full
   * engine arrives, this slot's own decisions are checked as the engine
   * would; a decision of another page view is checked when it takes over (a
   * refusal then goes to `onError`).
   */
  #settle(id: string, at: number | null, reward: number | null): void {
    const now = at ?? this.clock();
    const words = about(id);
    const refuse = (code: ErrorCode) => fail(code, words(code));
    const parts = parseId(id);
    if (parts === null) throw refuse("UNKNOWN_DECISION");
    const [epoch, counter] = parts;
    if (!this.core.full && epoch === this.p.epoch) {
      const t = this.own.find((x) => x.counter === counter);
      if (t === undefined) throw refuse("UNKNOWN_DECISION");
      if (t.rewarded) throw refuse("DUPLICATE_REWARD");
      if (now > t.expires) throw refuse("DECISION_EXPIRED");
      if (reward === null) t.activated = true;
      else if (!t.activated) throw refuse("NOT_ACTIVATED");
      else t.rewarded = true;
    }
    this.#send(reward === null ? "activate" : "reward", reward === null ? [epoch, counter, now] : [epoch, counter, reward, now], null, words);
  }

  /** Learn from a logged observation, for any variant. */
  learn(options: unknown): void {
    const o = checkLearn(options, this.p.k);
    if (o.actions !== null && this.p.spec.catalogue !== null) throw catalogueActions();
    const arm = this.p.ids.indexOf(o.variant);
    if (arm < 0) throw fail("UNKNOWN_VARIANT", `no variant ${describe(o.variant)}`);
    const f = encode(this.p, o.context, o.actions, this.behavior());
    this.#send("learn", [arm, f.shared.length / 3, f.actions === null ? 0 : 1, o.reward, o.probability], callNums(f));
  }

  /**
   * The offline evaluation (full.ts `evaluate`): what the served, learner, greedy, uniform and
   * each variant's policies earned on the decisions this slot logged. Null before the full engine
   * has arrived (`await site.ready`). Throws `NO_DATA` when no logged decision was settled yet.
   */
  evaluate(options?: unknown): Evaluation | null {
    return this.core.full && plane !== null ? plane.evaluate(this, options) : null;
  }

  /**
   * Why a variant: its mean score split into what each feature adds (full.ts
   * `explain`). Null before the full engine has arrived (`await site.ready`).
   */
  explain(options?: unknown): Explanation | null {
    return this.core.full && plane !== null ? plane.explain(this, options) : null;
  }

  stats(): Stats {
    // The first-decision module decides at the prior: nothing learned yet.
    const k = this.core.full ? this.core.call("stats", [this.h]) : -1;
    const r = this.core.read(k + 1);
    const pending = this.core.full ? r[k]! : this.own.filter((t) => !t.rewarded && this.clock() <= t.expires).length;
    return {
      variants: this.p.ids.map((id, i) => ({ id, updates: r[i] ?? 0 })),
      pending,
      policy: this.policy,
      modelVersion: this.modelVersion,
    };
  }

  /** Rewards learned, over every variant. */
  updates(): number {
    return this.stats().variants.reduce((n, v) => n + v.updates, 0);
  }

  /** Back to the prior, as new, with a new decision-id epoch (`forget()`). */
  reset(): void {
    const epoch = entropy(48);
    (this.p as { epoch: number }).epoch = epoch;
    if (this.core.full) this.core.call("slot_reset", [this.h, epoch]);
    else {
      this.core.call("score_drop", [this.h]);
      this.core.nums(this.p.layout(epoch));
      this.h = this.core.call("score_new", []);
      this.log = [];
      this.own = [];
    }
  }
}
