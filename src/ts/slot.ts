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
// `learn` until the full engine arrives and takes them over (`handOver`),
// so a decision made before then is rewarded exactly once after.

import { type Core, type Own, slotLayout } from "./core.js";
import { coded, describe, fail, type InsituError } from "./errors.js";
import { Budget, Context, type Encoded, type Hasher, isPlain, MAX_EXPANDED, walkNamespace } from "./features.js";
import { CONSTANT, interaction } from "./hash.js";
import type { SlotSpec } from "./spec.js";
import { checkActivate, checkExplainShape, checkLearn, checkRankShape, checkReward } from "./validate/calls.js";
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

/** The result of `stats()`. */
export interface Stats {
  variants: Array<{ id: string; updates: number }>;
  pending: number;
  policy: string;
  modelVersion: string;
}

/** 48 random bits: a decision-id epoch; or 53, a seed. */
export function entropy(bits: 48 | 53): number {
  const w = new Uint32Array(2);
  try {
    globalThis.crypto.getRandomValues(w);
  } catch {
    w[0] = Math.random() * 2 ** 32;
    w[1] = Math.random() * 2 ** 32;
  }
  return (w[0]! % 2 ** (bits - 32)) * 2 ** 32 + w[1]!;
}

/** A decision id: the epoch in 12 hex digits, a dash, the counter in decimal. */
export const decisionId = (epoch: number, counter: number): string => `${epoch.toString(16).padStart(12, "0")}-${counter}`;

/** A decision id's epoch and counter, or null when it is not canonical (so one decision has one id). */
export function parseId(id: string): [number, number] | null {
  const m = /^([0-9a-f]{12})-(0|[1-9][0-9]{0,15})$/.exec(id);
  if (m === null) return null;
  const counter = Number(m[2]);
  return Number.isSafeInteger(counter) ? [parseInt(m[1]!, 16), counter] : null;
}

/** A slot's options checked and prepared for a core, once. */
export class Prepared {
  readonly spec: SlotSpec;
  readonly ids: string[];
  /** Allowlisted namespace → its index (the order of the sorted allowlist). */
  readonly allow = new Map<string, number>();
  /** Each variant's own features, hashed, and their labels. */
  readonly own: Own[] = [];
  readonly ownNames: string[][] = [];
  readonly epoch: number;
  readonly seed: number;

  constructor(options: unknown, readonly hasher: Hasher) {
    this.spec = checkSlot(options);
    this.ids = this.spec.variants.map((v) => v.id);
    this.spec.features.allow.forEach((ns, i) => this.allow.set(ns, i));
    for (const v of this.spec.variants) {
      const names: string[] = [];
      const own: Own = { triples: [], labels: [] };
      for (const [ns, feats] of Object.entries(v.features ?? {})) {
        const i = this.allow.get(ns);
        if (i === undefined) continue;
        walkNamespace(hasher, ns, feats, "action", new Budget(), (h, x, name, value) => {
          own.triples.push(i, h, x);
          names.push(label(ns, name, value));
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

/** A feature's label: `ns.name`, or `ns.name=value` for a categorical. */
const label = (ns: string, name: string, value: string | null): string => (value === null ? `${ns}.${name}` : `${ns}.${name}=${value}`);

/** The features of one call, as the core reads them. */
export interface Features {
  /** The context's (namespace index, hash, value) triples. */
  shared: number[];
  /** Each variant's own triples for this call (`actions`), or null for the model's. */
  actions: number[][] | null;
  /** Labels of the shared features, then of each action's (only when asked for). */
  names: string[] | null;
  actionNames: string[][] | null;
}

/**
 * Read, check and hash a call's features for slot `p`: the allowlisted
 * namespaces of `context` (a plain object or a `Context`), the behaviour
 * namespace `behavior` when the slot allows it, and each of `actions`.
 */
export function encode(
  p: Prepared,
  context: unknown,
  actions: unknown[] | null,
  behavior: Encoded | null,
  withNames: boolean,
): Features {
  const names: string[] | null = withNames ? [] : null;
  const shared: number[] = [];
  const budget = new Budget();
  const push = (i: number, ns: string) => (h: number, x: number, name: string, value: string | null) => {
    shared.push(i, h, x);
    names?.push(label(ns, name, value));
  };
  if (context instanceof Context) {
    for (const ns of context.order) {
      const i = p.allow.get(ns);
      if (i === undefined || (behavior !== null && ns === "behavior")) continue;
      const e = context.get(ns)!;
      for (let j = 0; j < e.n; j++) {
        budget.take();
        shared.push(i, e.pairs[2 * j]!, e.pairs[2 * j + 1]!);
        names?.push(`${ns}.${e.labels[j]}`);
      }
    }
  } else if (context !== undefined && context !== null) {
    if (!isPlain(context)) {
      throw fail("INVALID_CONTEXT", `feature \`context\` should be an object of namespaces, but is ${describe(context)}`);
    }
    for (const ns of Object.keys(context)) {
      const i = p.allow.get(ns);
      // Not allowlisted: never read. The store's own behaviour features replace the caller's.
      if (i === undefined || (behavior !== null && ns === "behavior")) continue;
      const feats = context[ns];
      if (feats === undefined) continue;
      walkNamespace(p.hasher, ns, feats, "context", budget, push(i, ns));
    }
  }
  const bi = behavior === null ? undefined : p.allow.get("behavior");
  if (behavior !== null && bi !== undefined) {
    for (let j = 0; j < behavior.n; j++) {
      budget.take();
      shared.push(bi, behavior.pairs[2 * j]!, behavior.pairs[2 * j + 1]!);
      names?.push(`behavior.${behavior.labels[j]}`);
    }
  }
  let own: number[][] | null = null;
  let actionNames: string[][] | null = null;
  if (actions !== null) {
    own = [];
    actionNames = withNames ? [] : null;
    actions.forEach((a, k) => {
      const t: number[] = [];
      const n: string[] = [];
      if (a !== undefined && a !== null) {
        if (!isPlain(a)) {
          throw fail("INVALID_CONTEXT", `feature \`actions[${k}]\` should be an object of namespaces, but is ${describe(a)}`);
        }
        const b = new Budget();
        b.n = budget.n;
        for (const ns of Object.keys(a)) {
          const i = p.allow.get(ns);
          if (i === undefined || a[ns] === undefined) continue;
          walkNamespace(p.hasher, ns, a[ns], `actions[${k}]`, b, (h, x, name, value) => {
            t.push(i, h, x);
            if (withNames) n.push(label(ns, name, value));
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
function callNums(f: Features): number[] {
  if (f.actions === null) return f.shared;
  const out = f.shared.slice();
  for (const a of f.actions) out.push(a.length / 3);
  for (const a of f.actions) out.push(...a);
  return out;
}

/** What a wasm error of a call about decision `id` says. */
const about = (id: string) => (code: string): string =>
  code === "UNKNOWN_DECISION" ? `no pending decision has id \`${id}\``
  : code === "DECISION_EXPIRED" ? `decision \`${id}\` has expired; its reward window is over`
  : code === "DUPLICATE_REWARD" ? `decision \`${id}\` was already rewarded`
  : code === "NOT_ACTIVATED" ? `decision \`${id}\` was deferred and has not been activated`
  : `decision \`${id}\`: refused (${code})`;

/** One term of a feature vector: its hashed slot and value, and the features it is made of (`i` < 0: the bias; `j` < 0: one feature). */
interface Term {
  slot: number;
  value: number;
  i: number;
  j: number;
}

/**
 * The terms of a feature vector as the core expands it (src/features/mod.rs
 * `expand_each`): the bias, each feature, then each configured interaction
 * product (within one namespace, each unordered pair once).
 */
function expand(feats: number[], pairs: ReadonlyArray<readonly [number, number]>, mask: number): Term[] {
  const n = feats.length / 3;
  const out: Term[] = [{ slot: CONSTANT & mask, value: 1, i: -1, j: -1 }];
  for (let i = 0; i < n; i++) out.push({ slot: feats[3 * i + 1]! & mask, value: feats[3 * i + 2]!, i, j: -1 });
  for (const [a, b] of pairs) {
    for (let i = 0; i < n; i++) {
      if (feats[3 * i] !== a) continue;
      for (let j = a === b ? i + 1 : 0; j < n; j++) {
        if (feats[3 * j] !== b) continue;
        if (out.length >= MAX_EXPANDED) throw fail("TOO_MANY_FEATURES", `context has more than ${MAX_EXPANDED} features (stopped at ${out.length})`);
        const value = feats[3 * i + 2]! * feats[3 * j + 2]!;
        out.push({ slot: interaction(feats[3 * i + 1]!, feats[3 * j + 1]!) & mask, value, i, j });
      }
    }
  }
  return out;
}

/** A decision this side tracks until the full engine takes it over. */
interface Tracked {
  counter: number;
  expires: number;
  activated: boolean;
  rewarded: boolean;
}

/** What happened on the first-decision module, in order, for the full engine to take over. */
type Logged =
  | { op: "decide"; nums: number[]; n: number; actions: boolean; arm: number; drew: boolean; defer: boolean; now: number }
  | { op: "reward"; id: string; epoch: number; counter: number; reward: number; now: number }
  | { op: "activate"; id: string; epoch: number; counter: number; now: number }
  | { op: "learn"; nums: number[]; n: number; actions: boolean; arm: number; reward: number };

/** Most calls logged before the full engine arrives; past that, learning waits for the next page view. */
const MAX_LOGGED = 65_536;

/**
 * One slot's learner on a core. The caller supplies the clock; `behavior`
 * gives the behaviour namespace (the site's), `changed` hears every update.
 */
export class Learner {
  core: Core;
  h: number;
  /** The log for the full engine, while on the first-decision module (null after, or when full). */
  private log: Logged[] | null;
  private own: Tracked[] = [];

  constructor(
    core: Core,
    readonly p: Prepared,
    private readonly clock: () => number,
    private readonly behavior: () => Encoded | null = () => null,
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
    return this.p.spec.policy.type;
  }

  /** The fallback decision, with the error that made it one. */
  fallbackDecision(error: InsituError): Decision {
    const i = this.p.spec.fallback;
    return {
      variant: this.p.ids[i]!,
      index: i,
      probability: 1,
      pmf: this.p.ids.map((_, j) => (j === i ? 1 : 0)),
      scores: [],
      decisionId: null,
      seed: null,
      modelVersion: this.modelVersion,
      policy: this.policy,
      fallback: true,
      error,
    };
  }

  /** Choose a variant. Never throws: on any failure, the fallback with the error. */
  rank(options?: unknown): Decision {
    try {
      const o = checkRankShape(options, this.p.k);
      const f = encode(this.p, o.context, o.actions, this.behavior(), false);
      const now = o.now ?? this.clock();
      if (!Number.isFinite(now)) throw fail("INVALID_OPTION", `option \`now\` should be a finite time in ms, but the clock gave ${describe(now)}`);
      const nums = callNums(f);
      const c = this.core;
      c.nums(nums);
      const actions = f.actions === null ? 0 : 1;
      const index = c.full
        ? c.call("rank", [this.h, f.shared.length / 3, actions, o.seed ?? -1, now, o.defer ? 1 : 0])
        : c.call("decide", [this.h, f.shared.length / 3, actions, o.seed ?? -1, now]);
      const k = this.p.k;
      const r = c.read(3 + 2 * k);
      const counter = r[2]!;
      if (this.log !== null) this.recordDecision(nums, f.shared.length / 3, actions === 1, index, o.seed === null, o.defer, now, counter);
      return {
        variant: this.p.ids[index]!,
        index,
        probability: r[0]!,
        pmf: Array.from(r.subarray(3, 3 + k)),
        scores: Array.from(r.subarray(3 + k)),
        decisionId: decisionId(this.p.epoch, counter),
        seed: r[1]!,
        modelVersion: this.modelVersion,
        policy: this.policy,
        fallback: false,
      };
    } catch (e) {
      return this.fallbackDecision(coded(e, "INVALID_OPTION"));
    }
  }

  private recordDecision(nums: number[], n: number, actions: boolean, arm: number, drew: boolean, defer: boolean, now: number, counter: number): void {
    this.push({ op: "decide", nums, n, actions, arm, drew, defer, now });
    // maxPending counts the decisions still waiting: evict the oldest waiting one past it.
    const waiting = this.own.filter((t) => !t.rewarded && now <= t.expires);
    if (waiting.length >= this.p.spec.maxPending) this.own.splice(this.own.indexOf(waiting[0]!), 1);
    this.own.push({ counter, expires: now + this.p.spec.rewardTtlMs, activated: !defer, rewarded: false });
  }

  private push(entry: Logged): void {
    if (this.log === null) return;
    this.log.push(entry);
    if (this.log.length > MAX_LOGGED) this.log = null;
  }

  /** Settle a decision with a reward in [0, 1]. Throws `InsituError`; nothing changes then. */
  reward(options: unknown): void {
    const o = checkReward(options);
    const now = o.now ?? this.clock();
    const [epoch, counter] = this.id(o.decisionId);
    if (this.core.full) {
      this.core.call("reward", [this.h, epoch, counter, o.reward, now], about(o.decisionId));
    } else {
      const t = this.tracked(o.decisionId, epoch, counter, now);
      if (t !== null && !t.activated) throw fail("NOT_ACTIVATED", about(o.decisionId)("NOT_ACTIVATED"));
      if (t !== null) t.rewarded = true;
      this.push({ op: "reward", id: o.decisionId, epoch, counter, reward: o.reward, now });
    }
    this.changed();
  }

  /** Mark a decision ranked with `defer: true` as shown. */
  activate(options: unknown): void {
    const o = checkActivate(options);
    const now = o.now ?? this.clock();
    const [epoch, counter] = this.id(o.decisionId);
    if (this.core.full) {
      this.core.call("activate", [this.h, epoch, counter, now], about(o.decisionId));
    } else {
      const t = this.tracked(o.decisionId, epoch, counter, now);
      if (t !== null) t.activated = true;
      this.push({ op: "activate", id: o.decisionId, epoch, counter, now });
    }
    this.changed();
  }

  /** A decision id's parts; `UNKNOWN_DECISION` when it is not one. */
  private id(id: string): [number, number] {
    const parts = parseId(id);
    if (parts === null) throw fail("UNKNOWN_DECISION", about(id)("UNKNOWN_DECISION"));
    return parts;
  }

  /**
   * Before the full engine arrives: this slot's own decision `counter`,
   * checked as the engine would; null for a decision of another page view,
   * which the engine checks when it takes over (a refusal then goes to
   * `onError`).
   */
  private tracked(id: string, epoch: number, counter: number, now: number): Tracked | null {
    if (epoch !== this.p.epoch) return null;
    const t = this.own.find((x) => x.counter === counter);
    if (t === undefined) throw fail("UNKNOWN_DECISION", about(id)("UNKNOWN_DECISION"));
    if (t.rewarded) throw fail("DUPLICATE_REWARD", about(id)("DUPLICATE_REWARD"));
    if (now > t.expires) throw fail("DECISION_EXPIRED", about(id)("DECISION_EXPIRED"));
    return t;
  }

  /** Learn from a logged observation, for any variant. */
  learn(options: unknown): void {
    const o = checkLearn(options, this.p.k);
    const arm = this.p.ids.indexOf(o.variant);
    if (arm < 0) throw fail("UNKNOWN_VARIANT", `no variant ${describe(o.variant)}`);
    const f = encode(this.p, o.context, o.actions, this.behavior(), false);
    const nums = callNums(f);
    const actions = f.actions !== null;
    if (this.core.full) {
      this.core.nums(nums);
      this.core.call("learn", [this.h, arm, f.shared.length / 3, actions ? 1 : 0, o.reward]);
    } else {
      this.push({ op: "learn", nums, n: f.shared.length / 3, actions, arm, reward: o.reward });
    }
    this.changed();
  }

  /**
   * Why a variant: its mean score split into what each feature adds. Null
   * before the full engine has arrived (`await site.ready`) and on a
   * fallback site. Every policy scores a variant with a linear model, so
   * its posterior mean score is exactly the bias plus, for each term of its
   * feature vector (each feature, each interaction product), the term's
   * value times what the variant learned for the term's hashed slot: the
   * core gives the scores and the learned weights, and this names the terms
   * (hashing is one way: names come from the context passed in).
   */
  explain(options?: unknown): Explanation | null {
    if (!this.core.full) return null;
    const o = checkExplainShape(options, this.p.k);
    const k = this.p.k;
    const wanted = o.variant === null ? -1 : this.p.ids.indexOf(o.variant);
    if (wanted < 0 && o.variant !== null) throw fail("UNKNOWN_VARIANT", `no variant ${describe(o.variant)}`);
    const f = encode(this.p, o.context, o.actions, this.behavior(), true);
    const c = this.core;
    c.nums(callNums(f));
    c.call("scores", [this.h, f.shared.length / 3, f.actions === null ? 0 : 1]);
    const r = c.read(2 * k);
    const scores = Array.from(r.subarray(0, k));
    const best = scores.reduce((b, x, i) => (x > scores[b]! ? i : b), 0);
    const index = wanted < 0 ? best : wanted;
    const feats = [...f.shared, ...(f.actions?.[index] ?? this.p.own[index]!.triples)];
    const names = [...f.names!, ...(f.actionNames?.[index] ?? this.p.ownNames[index]!)];
    const d = c.call("arm_mean", [this.h, index]);
    const w = c.read(d + 1);
    const terms = expand(feats, this.p.spec.features.interactions, d - 1);
    const weight = (t: Term) => w[t.slot]!;
    const bias = terms.filter((t) => t.i < 0).reduce((a, t) => a + t.value * weight(t), 0);
    const label = (t: Term) => (t.i < 0 ? "" : t.j < 0 ? names[t.i]! : `${names[t.i]} × ${names[t.j]}`);
    const all = terms;
    let rest = terms.filter((t) => t.i >= 0);
    const contributions: Contribution[] = [];
    let listed = 0;
    // The `top` largest, a term listed twice (a list naming a value twice) merged into one.
    while (contributions.length < o.top && rest.length > 0) {
      const size = (t: Term) => Math.abs(t.value * weight(t));
      const first = rest.reduce((b, t) => (size(t) > size(b) ? t : b), rest[0]!);
      const name = label(first);
      let value = 0;
      rest = rest.filter((t) => {
        const same = t.slot === first.slot && label(t) === name;
        if (same) value += t.value;
        return !same;
      });
      const contribution = value * weight(first);
      listed += contribution;
      contributions.push({
        feature: name,
        value,
        weight: weight(first),
        contribution,
        shared: all.some((t) => t.slot === first.slot && label(t) !== name),
      });
    }
    const score = scores[index]!;
    return {
      variant: this.p.ids[index]!,
      score,
      bias,
      contributions,
      other: score - bias - listed,
      best: this.p.ids[best]!,
      scores,
      sd: Array.from(r.subarray(k, 2 * k)),
      updates: w[d]!,
    };
  }

  stats(): Stats {
    const k = this.core.call(this.core.full ? "stats" : "score_stats", [this.h]);
    const r = this.core.read(k + 1);
    const pending = this.core.full ? r[k]! : this.own.filter((t) => !t.rewarded && this.clock() <= t.expires).length;
    return {
      variants: this.p.ids.map((id, i) => ({ id, updates: r[i]! })),
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

  /** Restore slot `name` from the decoded snapshot `snap` (a handle on this core). */
  restore(snap: number, name: string): void {
    const c = this.core;
    const len = c.text(name);
    if (c.full) c.call("slot_restore", [this.h, snap, len, this.clock()]);
    else c.call("score_restore", [this.h, snap, len]);
  }

  /**
   * Move to the full engine `full`: a new engine with this slot's
   * configuration (same seed and epoch), restored from `snap` (a handle on
   * `full`, or 0), then every decision, reward, activation and `learn`
   * made meanwhile, in order. Refusals of what could not be checked before
   * (a reward for a decision of another page view) go to `refused`.
   */
  handOver(full: Core, snap: number, name: string | null, refused: (e: InsituError) => void): void {
    const log = this.log;
    full.nums(this.p.layout());
    const h = full.call("slot_new", []);
    const old = { core: this.core, h: this.h };
    this.core = full;
    this.h = h;
    this.log = null;
    this.own = [];
    if (name !== null && snap !== 0) this.restore(snap, name);
    for (const e of log ?? []) {
      try {
        if (e.op === "decide") {
          full.nums(e.nums);
          full.call("slot_take_over", [h, e.n, e.actions ? 1 : 0, e.arm, e.drew ? 1 : 0, e.defer ? 1 : 0, e.now]);
        } else if (e.op === "reward") {
          full.call("reward", [h, e.epoch, e.counter, e.reward, e.now], about(e.id));
        } else if (e.op === "activate") {
          full.call("activate", [h, e.epoch, e.counter, e.now], about(e.id));
        } else {
          full.nums(e.nums);
          full.call("learn", [h, e.arm, e.n, e.actions ? 1 : 0, e.reward]);
        }
      } catch (err) {
        refused(coded(err, "NUMERICAL_ERROR"));
      }
    }
    try {
      old.core.call("score_drop", [old.h]);
    } catch {
      // The first-decision module is dropped anyway.
    }
  }
}
