// A/B experiment configurations (`site.experiments(configs)`), checked into
// `ExperimentSpec`s: the Rust core's `Experiments::from_json` and its
// `read_experiment`, `read_weights`, `read_range`, `read_condition` and
// `read_allocation`, with every rule and message. Errors are
// `INVALID_EXPERIMENT` naming the field, e.g. `experiments[1].weights`.

import { describe } from "../errors.js";
import { utf8Length } from "../hash.js";
import type { ConditionSpec, ExperimentSpec } from "../spec.js";
import { copied, EXPERIMENT, guard, items, Obj, wellFormed } from "./read.js";

const MAX_EXPERIMENTS = 256;
const MAX_VARIANTS = 32;
/** Most targeting conditions of one experiment, and values of one `in` list. */
const MAX_CONDITIONS = 32;
/** Longest seed or string condition value, in bytes. */
const MAX_TEXT = 256;
/** How far weights may sum from 1: enough for 0.1 + 0.2 + 0.7, too little to hide a mistake. */
const TOLERANCE = 1e-6;
const DAY_MS = 86_400_000;
const MAX_SAMPLES = 8192;
/** A key, variant id, namespace or attribute path: 1 to 64 letters, digits, `_`, `-`, `.`, `:` or `/`. */
const NAME = /^[A-Za-z0-9_.:/-]{1,64}$/;
const HASHES = ["insitu/1", "growthbook/1", "growthbook/2"] as const;

const EXPERIMENT_KEYS = [
  "key", "variants", "weights", "coverage", "fallback", "hash", "seed", "holdout", "namespace", "targeting", "allocation",
  "reports",
] as const;
const THOMPSON_KEYS = ["type", "minProbability", "samples", "rewardWindowMs", "prior"] as const;

/** A bound for a message: up to 6 significant digits (1/3 as 0.333333). */
const bound = (x: number): string => String(+x.toPrecision(6));

/**
 * Check experiment configurations: keys unique, ranges in one namespace
 * disjoint, and each experiment's own rules (below).
 */
export function checkExperiments(configs: unknown): ExperimentSpec[] {
  return guard(EXPERIMENT, "experiments", () => {
    const list = items(configs, "experiments", EXPERIMENT, MAX_EXPERIMENTS, (n) => `has ${n} items; the limit is ${MAX_EXPERIMENTS}`)
      .map((v, i) => experiment(v, `experiments[${i}]`));
    list.forEach((e, i) => {
      list.slice(0, i).forEach((other, j) => {
        if (other.key === e.key) throw EXPERIMENT(`experiments[${i}].key`, `\`${e.key}\` is also the key of experiments[${j}]`);
        const [a, b] = [e.namespace, other.namespace];
        if (a && b && a.name === b.name && a.range[0] < b.range[1] && b.range[0] < a.range[1]) {
          const r = ([s, t]: [number, number]) => `[${describe(s)}, ${describe(t)})`;
          throw EXPERIMENT(
            `experiments[${i}].namespace.range`,
            `${r(a.range)} overlaps ${r(b.range)} of experiments[${j}] (\`${other.key}\`) in namespace \`${a.name}\``,
          );
        }
      });
    });
    return list;
  });
}

/** The name at `key` (1 to 64 letters, digits, `_`, `-`, `.`, `:` or `/`), if present. */
function name(o: Obj, key: string, s: string | undefined = o.str(key)): string | undefined {
  if (s !== undefined && !NAME.test(s)) {
    throw o.err(key, `should be 1 to 64 letters, digits, \`_\`, \`-\`, \`.\`, \`:\` or \`/\`, but is ${describe(s)}`);
  }
  return s;
}

function required<T>(o: Obj, key: string, x: T | undefined, why = "is required"): T {
  if (x === undefined) throw o.err(key, why);
  return x;
}

/** A number in `[lo, hi]` (or `[lo, hi)`), if present; null (what NaN used to become) is an error. */
function fraction(o: Obj, key: string, lo: number, hi: number, hiOpen = false): number | undefined {
  const x = o.finite(key);
  if (x === undefined) return undefined;
  if (x < lo || x > hi || (hiOpen && x === hi)) {
    throw o.err(key, `should be in [${bound(lo)}, ${bound(hi)}${hiOpen ? ")" : "]"}, but is ${describe(x)}`);
  }
  return x;
}

function experiment(v: unknown, path: string): ExperimentSpec {
  const o = Obj.of(v, path, EXPERIMENT, EXPERIMENT_KEYS);
  const key = required(o, "key", name(o, "key"));
  const lists = (n: number) => `should list 2 to ${MAX_VARIANTS} variant ids, but lists ${n}`;
  const given = required(o, "variants", o.list("variants", MAX_VARIANTS, lists), "is required: a list of 2 or more variant ids");
  if (given.length < 2) throw o.err("variants", lists(given.length));
  const variants: string[] = [];
  given.forEach((id, i) => {
    const field = `variants[${i}]`;
    if (typeof id !== "string") throw o.err(field, `should be a string, but is ${describe(id)}`);
    const s = name(o, field, id)!;
    const j = variants.indexOf(s);
    if (j >= 0) throw o.err(field, `\`${s}\` repeats variants[${j}]`);
    variants.push(s);
  });
  const k = variants.length;
  const weights = o.get("weights") === undefined ? variants.map(() => 1 / k) : readWeights(o, k);
  const coverage = fraction(o, "coverage", 0, 1) ?? 1;
  const fallbackId = o.str("fallback");
  const fallback = fallbackId === undefined ? 0 : variants.indexOf(fallbackId);
  if (fallback < 0) throw o.err("fallback", `${describe(fallbackId)} is not one of the variants`);
  const hash = o.str("hash") ?? "insitu/1";
  if (!(HASHES as readonly string[]).includes(hash)) {
    throw o.err("hash", `should be "insitu/1", "growthbook/1" or "growthbook/2", but is ${describe(hash)}`);
  }
  const seed = o.str("seed") ?? key;
  if (seed === "" || utf8Length(seed) > MAX_TEXT || seed.includes("\0")) {
    throw o.err("seed", `should be 1 to ${MAX_TEXT} bytes without NUL, but is ${describe(seed)}`);
  }
  const h = o.obj("holdout", ["key", "fraction"]);
  const holdout = h
    ? { key: required(h, "key", name(h, "key")), fraction: required(h, "fraction", fraction(h, "fraction", 0, 1, true)) }
    : null;
  const n = o.obj("namespace", ["name", "range"]);
  const namespace = n ? { name: required(n, "name", name(n, "name")), range: readRange(n) } : null;
  const many = (c: number) => `has ${c} conditions; the limit is ${MAX_CONDITIONS}`;
  const targeting = (o.list("targeting", MAX_CONDITIONS, many) ?? []).map((c, i) => condition(c, o.field(`targeting[${i}]`)));
  const a = o.obj("allocation");
  return {
    key,
    variants,
    weights,
    coverage,
    holdout,
    namespace,
    targeting,
    fallback,
    hash: hash as ExperimentSpec["hash"],
    seed,
    allocation: a === undefined ? { type: "weights" } : allocation(a, variants, o.get("weights") !== undefined),
    reports: copied(o.get("reports"), `${path}.reports`),
  };
}

/** `weights`: one non-negative number per variant, summing to 1. */
function readWeights(o: Obj, k: number): number[] {
  const field = o.field("weights");
  const has = (n: number) => `has ${n} weights for ${k} variants`;
  const ws = items(o.get("weights"), field, EXPERIMENT, k, has);
  if (ws.length !== k) throw o.err("weights", has(ws.length));
  const weights = ws.map((w, i) => {
    const at = `weights[${i}]`;
    if (w === null || w === undefined || (typeof w === "number" && !Number.isFinite(w))) {
      throw o.err(at, `should be a finite number, but is ${describe(w)}`);
    }
    if (typeof w !== "number") throw o.err(at, `should be a number, but is ${describe(w)}`);
    if (w < 0) throw o.err(at, `should be at least 0, but is ${describe(w)}`);
    return w === 0 ? 0 : w;
  });
  const sum = weights.reduce((s, w) => s + w, 0);
  if (Math.abs(sum - 1) > TOLERANCE) throw o.err("weights", `should sum to 1, but sum to ${describe(sum)}`);
  return weights;
}

/** `range: [start, end]` with `0 <= start < end <= 1`. */
function readRange(n: Obj): [number, number] {
  const two = "should be [start, end], two numbers";
  const r = required(n, "range", n.list("range", 2, () => two), "is required: [start, end] within [0, 1]");
  const [a, b] = r;
  if (r.length !== 2 || typeof a !== "number" || typeof b !== "number") throw n.err("range", two);
  if (!(0 <= a && a < b && b <= 1)) {
    throw n.err("range", `should satisfy 0 <= start < end <= 1, but is [${describe(a)}, ${describe(b)}]`);
  }
  return [a, b];
}

/** A value a condition compares with: a string of at most 256 bytes, a finite number or a boolean. */
function scalar(x: unknown, field: string): string | number | boolean {
  if (typeof x === "string") {
    const n = utf8Length(x);
    if (n > MAX_TEXT) throw EXPERIMENT(field, `is ${n} bytes; the limit is ${MAX_TEXT}`);
    return wellFormed(x);
  }
  if (typeof x === "boolean" || (typeof x === "number" && Number.isFinite(x))) return x;
  throw EXPERIMENT(field, `should be a string, number or boolean, but is ${describe(x)}`);
}

function condition(v: unknown, path: string): ConditionSpec {
  const o = Obj.of(v, path, EXPERIMENT, ["attribute", "equals", "in", "range", "exists"]);
  const attribute = required(o, "attribute", name(o, "attribute"));
  const tests: Array<ConditionSpec["test"]> = [];
  const equals = o.get("equals");
  if (equals !== undefined) tests.push({ equals: scalar(equals, o.field("equals")) });
  const lists = (n: number) => `should list 1 to ${MAX_CONDITIONS} values, but lists ${n}`;
  const values = o.list("in", MAX_CONDITIONS, lists);
  if (values !== undefined) {
    if (values.length === 0) throw o.err("in", lists(0));
    tests.push({ in: values.map((x, i) => scalar(x, o.field(`in[${i}]`))) });
  }
  const shape = "should be [min, max]: numbers, or null for no bound";
  const r = o.list("range", 2, () => shape);
  if (r !== undefined) {
    const [min, max] = [0, 1].map((i) => {
      const x = r[i];
      if (x === null || x === undefined) return null;
      if (typeof x !== "number" || !Number.isFinite(x)) throw o.err("range", shape);
      return x;
    }) as [number | null, number | null];
    if (r.length !== 2) throw o.err("range", shape);
    if (min !== null && max !== null && min >= max) {
      throw o.err("range", `should have min < max, but is [${describe(min)}, ${describe(max)}]`);
    }
    if (min === null && max === null) throw o.err("range", "should bound at least one side");
    tests.push({ range: [min, max] });
  }
  const exists = o.bool("exists");
  if (exists !== undefined) tests.push({ exists });
  const [test] = tests;
  if (tests.length !== 1 || test === undefined) {
    throw EXPERIMENT(path, `should have exactly one of equals, in, range or exists, but has ${tests.length}`);
  }
  return { attribute, path: attribute.split("."), test };
}

function allocation(a: Obj, variants: readonly string[], hasWeights: boolean): ExperimentSpec["allocation"] {
  const type = a.str("type");
  if (type === "weights") {
    a.only(["type"]);
    return { type };
  }
  if (type === undefined) throw a.err("type", 'is required: "weights" or "thompson"');
  if (type !== "thompson") throw a.err("type", `should be "weights" or "thompson", but is ${describe(type)}`);
  if (hasWeights) throw a.err("type", "is thompson, which allocates by reward: remove `weights`");
  a.only(THOMPSON_KEYS);
  const k = variants.length;
  const minProbability = fraction(a, "minProbability", 0, 1 / k) ?? Math.min(0.05, 1 / k);
  const samples = a.int("samples", 1, MAX_SAMPLES) ?? 512;
  const window = a.num("rewardWindowMs") ?? DAY_MS;
  if (!(window >= 1 && window <= 365 * DAY_MS)) {
    throw a.err("rewardWindowMs", `should be in [1, 31536000000] (one year), but is ${describe(window)}`);
  }
  const p = a.obj("prior", variants);
  const prior = variants.map((v): [number, number] => {
    const x = p?.get(v);
    if (p === undefined || x === undefined) return [0, 0];
    const pair = "should be [successes, failures]: two numbers of at least 0, summing to at most 1e9";
    const [s, f, ...rest] = items(x, p.field(v), a.kind, 2, () => pair);
    if (rest.length > 0 || typeof s !== "number" || typeof f !== "number" || !(s >= 0 && f >= 0 && s + f <= 1e9)) {
      throw p.err(v, pair);
    }
    return [s, f];
  });
  return { type, prior, minProbability, samples, rewardWindowMs: window };
}
