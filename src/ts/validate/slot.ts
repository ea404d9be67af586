// A slot's options (`new Insitu(options)`, `site.slot(name, options)`)
// into a `SlotSpec`: the Rust core's `EngineConfig::from_json` and
// `PolicyOptions::read`/`check`, with the same fields, defaults and messages.

import { describe } from "../errors.js";
import { Hasher } from "../features.js";
import type { PolicySpec, SlotSpec, VariantSpec } from "../spec.js";
import {
  CATALOGUE_BITS, checkFeatures, checkIds, checkModel, contentHash, DEFAULT_NOISE, DEFAULT_PRIOR_VARIANCE, folds,
  type Hashed, MAX_CATALOGUE, MAX_CATALOGUE_DIM_BITS, MAX_VARIANTS, slotFeatures, variantFeatures,
} from "./model.js";
import { copied, guard, Obj, OPTION, positive, wellFormed, within } from "./read.js";

export { checkFeatures } from "./model.js";

/** Largest seed that survives a round trip through a JS number. */
export const MAX_SEED = 2 ** 53 - 1;
/** Default time a decision waits for its reward: 24 h. */
const DEFAULT_REWARD_TTL_MS = 86_400_000;
const DEFAULT_MAX_PENDING = 256;
const MAX_PENDING = 10_000;

/** A slot's name (`site.slot(name)`): 1 to 48 letters, digits, `-`, `_` or `.`; else `INVALID_OPTION`. */
export function checkName(name: unknown): string {
  if (typeof name !== "string" || !/^[A-Za-z0-9._-]{1,48}$/.test(name)) {
    throw OPTION("slot", `should be 1 to 48 letters, digits, \`-\`, \`_\` or \`.\`, but is ${describe(name)}`);
  }
  return name;
}

const SLOT_KEYS = [
  "variants", "model", "features", "policy", "fallback", "seed", "noise", "priorVariance", "rewardTtlMs", "maxPending",
  "reports", "catalogue",
] as const;

/**
 * Check a slot's options (`InsituOptions`): `variants` or `model`,
 * `features`, `policy`, `fallback`, `seed`, `noise`, `priorVariance`,
 * `rewardTtlMs`, `maxPending`. Errors are `INVALID_OPTION` naming the field,
 * or `INVALID_MODEL` for the model's own fields. `undefined` reads as `{}`.
 */
export function checkSlot(options: unknown): SlotSpec {
  return guard(OPTION, "options", () => {
    const o = Obj.of(options ?? {}, "", OPTION, SLOT_KEYS, "options");
    const model = o.get("model");
    const catalogue = checkCatalogue(o.get("catalogue"));
    const max = catalogue === null ? MAX_VARIANTS : MAX_CATALOGUE;
    const list = o.list("variants", max, (n) => `allows at most ${max} variants, but has ${n}`);
    const features = o.get("features");
    const noise = o.num("noise");
    const priorVariance = o.num("priorVariance");
    const policy = o.get("policy");
    const fallback = o.str("fallback");
    const seed = o.int("seed", 0, MAX_SEED);
    const rewardTtlMs = o.num("rewardTtlMs");
    const maxPending = o.int("maxPending", 1, MAX_PENDING);
    // Each variant is an id, or `{ id, features }`.
    const given = list?.map((x, i): { id: string; features?: unknown } => {
      if (typeof x === "string") return { id: wellFormed(x) };
      const v = Obj.of(x, `variants[${i}]`, OPTION, ["id", "features"]);
      const id = v.str("id");
      if (id === undefined) throw v.err("id", "is required");
      return { id, features: v.get("features") };
    });

    let variants: VariantSpec[];
    let spec: Pick<SlotSpec, "features" | "noise" | "modelVersion">;
    const hasher = new Hasher();
    if (model !== undefined) {
      if (catalogue !== null) throw OPTION("catalogue", "cannot be used with a model: a catalogue learns from the prior of `priorVariance`");
      if (features !== undefined || noise !== undefined || priorVariance !== undefined) {
        throw OPTION("features", "features, noise and priorVariance come from the model when one is given");
      }
      const m = checkModel(model, hasher);
      if (given && (given.length !== m.variants.length || given.some((g, i) => g.id !== m.variants[i]!.id))) {
        throw OPTION("variants", "must match the model's variant ids, or be left out");
      }
      variants = m.variants;
      spec = { features: m.features, noise: m.noise, modelVersion: m.version };
    } else if (given) {
      const fs = checkFeatures(features, "features", OPTION, slotFeatures(given.length, catalogue !== null));
      const n = positive(noise ?? DEFAULT_NOISE, "noise", OPTION);
      const variance = positive(priorVariance ?? DEFAULT_PRIOR_VARIANCE, "priorVariance", OPTION);
      if (catalogue !== null && fs.bits + catalogue.bits > MAX_CATALOGUE_DIM_BITS) {
        throw OPTION("catalogue.bits", `should be in [${CATALOGUE_BITS[0]}, ${CATALOGUE_BITS[1]}] and at most ${MAX_CATALOGUE_DIM_BITS} with features.bits, but is ${catalogue.bits}`);
      }
      const hashed = given.map(({ id, features }, i): Hashed => {
        const field = `variants[${i}].features`;
        const own = variantFeatures(features, fs, hasher, field, OPTION);
        if (catalogue !== null && !(own !== null && folds(own.terms, catalogue.bits))) {
          throw OPTION(field, "are required in a catalogue, and cannot all be 0");
        }
        return { id, features: own?.features ?? null, mean: null, variance, json: own?.json ?? null };
      });
      checkIds(hashed.map((v) => v.id), "variants", OPTION, max);
      variants = hashed.map(({ json: _, ...v }) => v);
      spec = { features: fs, noise: n, modelVersion: contentHash(fs, n, hashed, catalogue?.bits ?? null) };
    } else {
      throw OPTION("variants", "is required when no model is given");
    }

    const { learner, apprentice } = checkApprentice(policy, variants.map((v) => v.id));
    // An apprentice with a fixed baseline falls back to it: it never serves anything else.
    const at = fallback !== undefined ? variants.findIndex((v) => v.id === fallback) : typeof apprentice?.baseline === "number" ? apprentice.baseline : 0;
    if (at < 0) throw OPTION("fallback", `${describe(fallback)} is not one of the variants`);
    const out: SlotSpec = {
      variants,
      features: spec.features,
      noise: spec.noise,
      policy: checkPolicy(learner, variants.length),
      apprentice,
      fallback: at,
      seed: seed ?? null,
      rewardTtlMs: positive(rewardTtlMs ?? DEFAULT_REWARD_TTL_MS, "rewardTtlMs", OPTION),
      maxPending: maxPending ?? DEFAULT_MAX_PENDING,
      modelVersion: spec.modelVersion,
      reports: copied(o.get("reports"), "reports"),
      catalogue,
    };
    // A catalogue keeps no reports (the core's `enable_reports` refuses them too).
    if (catalogue !== null && out.reports !== undefined) throw OPTION("reports", "are not kept for a catalogue slot");
    return out;
  });
}

/** `catalogue: true | { bits? }` (`bits` 1 to 10, default 6), or null when absent or false. */
function checkCatalogue(value: unknown): SlotSpec["catalogue"] {
  if (value === undefined || value === false) return null;
  if (value === true) return { bits: CATALOGUE_BITS[2] };
  const o = Obj.of(value, "catalogue", OPTION, ["bits"]);
  return { bits: o.int("bits", CATALOGUE_BITS[0], CATALOGUE_BITS[1]) ?? CATALOGUE_BITS[2] };
}

/**
 * Apprentice mode, `policy: { type: "apprentice", baseline, learner? }`: the baseline is a variant id
 * or a function of the context; `learner` the policy learning in the shadow (default LinUCB). Any
 * other policy is the learner itself.
 */
function checkApprentice(value: unknown, ids: string[]): { learner: unknown; apprentice: SlotSpec["apprentice"] } {
  let type: unknown;
  try {
    type = value !== null && typeof value === "object" ? (value as { type?: unknown }).type : undefined;
  } catch {
    // checkPolicy reads it again, and names the field.
  }
  if (type !== "apprentice") return { learner: value, apprentice: null };
  return guard(OPTION, "policy", () => {
    const o = Obj.of(value, "policy", OPTION, ["type", "baseline", "learner"]);
    const b = o.raw("baseline");
    const learner = o.get("learner");
    if (learner !== undefined && learner !== null && typeof learner === "object" && (learner as { type?: unknown }).type === "apprentice") {
      throw OPTION("policy.learner.type", "cannot be apprentice");
    }
    if (typeof b === "function") return { learner, apprentice: { baseline: b as (context: unknown) => unknown } };
    const i = typeof b === "string" ? ids.indexOf(b) : -1;
    if (i < 0) throw OPTION("policy.baseline", `should be a variant id or a function of the context, but is ${describe(b)}`);
    return { learner, apprentice: { baseline: i } };
  });
}

/**
 * The default exploration floor per variant. 0.01 spread 9% of the decisions of a 10-variant slot
 * over variants the learner knew to be worse; 0.001 earned more on every real dataset and on the
 * generated problems, in the last rounds too (docs/performance.md).
 */
export const DEFAULT_MIN_PROBABILITY = 0.001;
/** Past 100 variants the default floor is this budget shared by them (a catalogue of 1,000: 0.0001 each). */
const DEFAULT_FLOOR_BUDGET = 0.1;
const POLICY_KEYS = ["type", "scale", "samples", "alpha", "epsilon", "minProbability"] as const;
/** Each policy type and the parameters it takes, in the order they are checked. */
const PARAMS = new Map<string, readonly Param[]>([
  ["thompson", ["samples", "scale"]],
  ["linucb", ["alpha"]],
  ["egreedy", ["epsilon"]],
  ["greedy", []],
]);
type Param = "scale" | "samples" | "alpha" | "epsilon";
/** The parameters' defaults. */
const DEFAULTS: Record<Param, number> = { scale: 0.25, samples: 32, alpha: 0.5, epsilon: 0.1 };
/** Most posterior draws Thompson sampling may take per decision. */
const MAX_SAMPLES = 4096;

/**
 * Check `policy` (`{ type?, alpha?, scale?, samples?, epsilon?, minProbability? }`)
 * for `k` variants; defaults: LinUCB with alpha 0.5, a 0.001 floor (at most 1/k).
 */
export function checkPolicy(value: unknown, k: number): PolicySpec {
  return guard(OPTION, "policy", () => {
    const o = Obj.of(value ?? {}, "policy", OPTION, POLICY_KEYS);
    const type = o.str("type") ?? "linucb";
    const given: Record<Param, number | undefined> = {
      scale: o.num("scale"),
      samples: o.int("samples", 0, 2 ** 32 - 1),
      alpha: o.num("alpha"),
      epsilon: o.num("epsilon"),
    };
    const mp = o.num("minProbability");
    const params = PARAMS.get(type);
    if (params === undefined) {
      throw OPTION("policy.type", `should be one of thompson, linucb, egreedy, greedy, but is ${describe(type)}`);
    }
    for (const [name, x] of Object.entries(given)) {
      if (x !== undefined && !params.includes(name as Param)) throw OPTION(`policy.${name}`, `does not apply to policy ${describe(type)}`);
    }
    const out: Record<string, unknown> = { type };
    for (const name of params) {
      const x = given[name] ?? DEFAULTS[name];
      const field = `policy.${name}`;
      if (name === "samples") out[name] = within(x, 1, MAX_SAMPLES, field, OPTION);
      else if (name === "epsilon") out[name] = within(x, 0, 1, field, OPTION);
      else if (!(Number.isFinite(x) && x >= 0)) throw OPTION(field, `should be non-negative and finite, but is ${describe(x)}`);
      else out[name] = x;
    }
    const floor = within(mp ?? Math.min(DEFAULT_MIN_PROBABILITY, DEFAULT_FLOOR_BUDGET / k), 0, 1, "policy.minProbability", OPTION);
    if (floor * k > 1) throw OPTION("policy.minProbability", `should be at most 1/${k} for ${k} variants, but is ${describe(floor)}`);
    out.minProbability = floor;
    return out as PolicySpec;
  });
}
