// The options of each call on a slot, but for its features: the Rust core's
// `SettleOptions` (reward, activate), `RankOptions`, `LearnOptions` and
// `ExplainOptions`, with the same fields and messages. A call's `context`
// and `actions` items are handed on as given: the context walk validates
// them (and reads only the namespaces the slot allows).

import { describe, fail } from "../errors.js";
import { invalid as CONTEXT, isPlain } from "../features.js";
import type { ActivateSpec, ExplainShape, FeatureCall, LearnShape, RankShape, RewardSpec } from "../spec.js";
import { MAX_VARIANTS } from "./model.js";
import { guard, isArray, items, Obj, OPTION } from "./read.js";
import { MAX_SEED } from "./slot.js";

/** Most contributions `explain` lists. */
const MAX_TOP = 64;
/** Most variants one `rank({ k })` slate holds (the core's `MAX_SLATE`). */
export const MAX_SLATE = 64;


/** Read the options of one call: `undefined` and null read as `{}`. */
const read = <T>(options: unknown, known: readonly string[], body: (o: Obj) => T): T =>
  guard(OPTION, "options", () => body(Obj.of(options ?? {}, "", OPTION, known, "options")));

const required = <T>(o: Obj, key: string, x: T | undefined): T => {
  if (x === undefined) throw o.err(key, "is required");
  return x;
};

/** The injected clock: absent, or a finite number (null, what NaN used to become, is an error). */
const now = (o: Obj): number | null => o.finite("now", "a finite time in ms") ?? null;

/** A reward: a finite number in [0, 1], else `INVALID_REWARD`. */
export function rewardValue(x: unknown): number {
  if (typeof x !== "number" || !(x >= 0 && x <= 1)) throw fail("INVALID_REWARD", `reward must be a finite number in [0, 1], but is ${describe(x)}`);
  return x === 0 ? 0 : x;
}

/** `reward`: required; a value that is not a finite number in [0, 1] is `INVALID_REWARD`, checked after the other fields (as the core did). */
function reward(o: Obj): () => number {
  const x = o.raw("reward");
  if (x === undefined) throw o.err("reward", "is required");
  if (x !== null && typeof x !== "number") throw o.err("reward", `should be a number, but is ${describe(x)}`);
  return () => rewardValue(x);
}

/** `context` as given, and a copy of `actions` (one entry per variant; `k` when known). */
function features(o: Obj, k?: number): FeatureCall {
  const context = o.get("context");
  const raw = o.get("actions");
  if (raw === undefined) return { context, actions: null };
  if (!isArray(raw)) throw o.err("actions", `should be an array, but is ${describe(raw)}`);
  const lists = (n: number) => `should list ${k ?? `at most ${MAX_VARIANTS}`} variants, but lists ${n}`;
  const actions = items(raw, "actions", CONTEXT, k ?? MAX_VARIANTS, lists);
  if (k !== undefined && actions.length !== k) throw CONTEXT("actions", lists(actions.length));
  return { context, actions };
}

/** `reward({ decisionId, reward, now? })`. */
export function checkReward(options: unknown): RewardSpec {
  return read(options, ["decisionId", "reward", "now"], (o) => {
    const decisionId = required(o, "decisionId", o.str("decisionId"));
    const value = reward(o);
    return { decisionId, now: now(o), reward: value() };
  });
}

/** `activate({ decisionId, now? })`. */
export function checkActivate(options: unknown): ActivateSpec {
  return read(options, ["decisionId", "now"], (o) => ({
    decisionId: required(o, "decisionId", o.str("decisionId")),
    now: now(o),
  }));
}

// The shapes below are written out field by field, not spread (`{ ...features(o, k), seed }`): V8 takes a slow
// path for a spread followed by more properties, which cost more than the rest of a `rank` check.

/** `rank({ context?, actions?, seed?, defer?, now? })`; `k`, when given, is the number of variants `actions` must list. */
export function checkRankShape(options: unknown, k?: number): RankShape {
  return read(options, ["context", "actions", "seed", "defer", "now", "k"], (o) => {
    const { context, actions } = features(o, k);
    const size = o.int("k", 1, Math.min(k ?? MAX_SLATE, MAX_SLATE)) ?? null;
    return { context, actions, seed: o.int("seed", 0, MAX_SEED) ?? null, defer: o.bool("defer") ?? false, now: now(o), k: size };
  });
}

/** `learn({ context?, actions?, variant, reward, probability? })`: `probability` in [1e-6, 1], -1 when absent. */
export function checkLearn(options: unknown, k?: number): LearnShape {
  return read(options, ["context", "actions", "variant", "reward", "probability"], (o) => {
    const { context, actions } = features(o, k);
    const variant = required(o, "variant", o.str("variant"));
    const p = o.num("probability");
    // Below 1e-6 a weight 1/p would swamp every estimate (src/eval/ MIN_PROBABILITY).
    if (p !== undefined && !(p >= 1e-6 && p <= 1)) throw OPTION("probability", `should be in [0.000001, 1], but is ${describe(p)}`);
    return { context, actions, variant, reward: reward(o)(), probability: p ?? -1 };
  });
}

/** `explain({ context?, actions?, variant?, top? })`: `top` 1 to 64, default 5. */
export function checkExplainShape(options: unknown, k?: number): ExplainShape {
  return read(options, ["context", "actions", "variant", "top"], (o) => {
    const { context, actions } = features(o, k);
    return { context, actions, variant: o.str("variant") ?? null, top: o.int("top", 1, MAX_TOP) ?? 5 };
  });
}

/** `site.run(key, { attributes? })`: a copy of the attributes (an object), if any. */
export function checkRun(options: unknown): object | undefined {
  return read(options, ["attributes"], (o) => {
    const a = o.raw("attributes");
    if (a === undefined) return a;
    if (!isPlain(a)) throw fail("INVALID_CONTEXT", `option \`attributes\` should be an object, but is ${describe(a)}`);
    return { ...a };
  });
}
