// The model (format 1) reader, the feature settings it shares with a slot's
// options, each variant's own features, and the model version: everything
// the Rust core's `CompactModel::from_json`, `FeatureOptions::read`/`check`,
// `hash_variant` and `content_hash` did, with the same fields and messages.
//
// The version is FNV-1a 64 over the same canonical bytes as the core's
// `content_hash`, so a model keeps its version across the move to
// TypeScript (golden values: tests/fixtures/model-versions.json).

import { describe, fail, InsituError } from "../errors.js";
import { Budget, Hasher, MAX_EXPANDED, MAX_STRING_BYTES, walkNamespace } from "../features.js";
import { Fnv64, utf8Length } from "../hash.js";
import type { FeatureSpec, VariantSpec } from "../spec.js";
import {
  byBytes, guard, isArray, isObject, items, type Kind, keysOf, MODEL, Obj, OPTION, positive, text, unreadable, wellFormed, within,
} from "./read.js";

/** The only model format so far. */
const FORMAT = 1;
/** Most variants of one slot or model. */
export const MAX_VARIANTS = 64;
/** Most variants a catalogue (`catalogue`) holds. */
export const MAX_CATALOGUE = 4096;
/** A catalogue's variant-feature bits: range and default (the core's `CATALOGUE_BITS`). */
export const CATALOGUE_BITS = [1, 10, 6] as const;
/** Most bits of a catalogue's weights, `features.bits` plus its own. */
export const MAX_CATALOGUE_DIM_BITS = 16;
/** Default observation noise variance: the largest variance of a reward in [0, 1]. */
export const DEFAULT_NOISE = 0.25;
/** Default prior variance of every weight. */
export const DEFAULT_PRIOR_VARIANCE = 1;
/**
 * Feature defaults of a slot without a model, of up to 32 variants: 128 slots (the widest with a full covariance), one per feature, and
 * normalized vectors, chosen on real data (scripts/eval-real.py) and generated problems (scripts/eval-quality.mjs),
 * where 128 slots beat 64 on every dense context (docs/performance.md).
 */
export const SLOT_FEATURES = { bits: 7, normalize: true, slotsPerFeature: 1 } as const;
/**
 * Feature defaults of a catalogue, and of a slot of more than {@link WIDE_MAX_VARIANTS} variants: 64 slots. A
 * catalogue's weights are diagonal past 128 whatever the width, so the full covariance that makes 128 the default of a
 * slot's own learners does not apply; a slot of 33 to 64 variants keeps its covariances under 1.1 MB and its private
 * reports with `learning` within 4,096 entries per group (src/features/mod.rs).
 */
export const NARROW_FEATURES = { bits: 6, normalize: true, slotsPerFeature: 1 } as const;
/** Most variants of a slot (without a catalogue) whose features default to {@link SLOT_FEATURES}' 128 slots. */
export const WIDE_MAX_VARIANTS = 32;
/** The feature defaults of a slot without a model, of `variants` variants. */
export const slotFeatures = (variants: number, catalogue: boolean): typeof SLOT_FEATURES | typeof NARROW_FEATURES =>
  catalogue || variants > WIDE_MAX_VARIANTS ? NARROW_FEATURES : SLOT_FEATURES;
/** Feature defaults of a model: as before normalization existed, so an older model keeps its meaning. */
export const MODEL_FEATURES = { bits: 6, normalize: false, slotsPerFeature: 1 } as const;
/** Most allowlisted namespaces and interaction pairs (the core had no limit; these bound the work). */
const MAX_NAMESPACES = 256;
const MAX_INTERACTIONS = 1024;
/** Bounds on a variant's `features` value, which is copied whole for the version. */
const MAX_DEPTH = 32;
const MAX_VALUES = 100_000;

/** A value as JSON.stringify writes it, in objects and arrays of our own. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const FEATURE_KEYS = ["hashVersion", "bits", "allow", "interactions", "normalize", "slotsPerFeature"] as const;
const MODEL_KEYS = ["format", "features", "noise", "version", "variants"] as const;
const VARIANT_KEYS = ["id", "weights", "variance", "features"] as const;

/**
 * Feature settings (`features: { bits?, allow?, interactions?, normalize?, hashVersion? }`)
 * at `path`, errors of kind `k` (`INVALID_OPTION` in a slot's options,
 * `INVALID_MODEL` in a model). `allow` comes back sorted by UTF-8 bytes and
 * deduplicated, `interactions` as index pairs into it. `bits` and `normalize`
 * default to `defaults`: a slot's own ({@link SLOT_FEATURES}) or a model's
 * ({@link MODEL_FEATURES}).
 */
export function checkFeatures(
  value: unknown,
  path = "features",
  k: Kind = OPTION,
  defaults: { bits: number; normalize: boolean; slotsPerFeature: 1 | 2 } = SLOT_FEATURES,
): FeatureSpec {
  return guard(k, path, () => {
    const o = Obj.of(value ?? {}, path, k, FEATURE_KEYS);
    const hashVersion = o.int("hashVersion", 0, 2 ** 32 - 1) ?? 1;
    const bits = o.int("bits", 0, 64) ?? defaults.bits;
    const normalize = o.bool("normalize") ?? defaults.normalize;
    const spf = (o.int("slotsPerFeature", 1, 2) ?? defaults.slotsPerFeature) as 1 | 2;
    const allowed = (o.list("allow", MAX_NAMESPACES, (n) => `should list at most ${MAX_NAMESPACES} namespaces, but lists ${n}`) ?? [])
      .map((ns, i) => text(ns, `${path}.allow[${i}]`, k));
    const pair = (p: unknown, field: string): [string, string] => {
      const why = "should be a pair of namespace names";
      const two = isArray(p) ? items(p, field, k, 2, () => why) : [];
      const [a, b] = two;
      if (two.length !== 2 || typeof a !== "string" || typeof b !== "string") throw k(field, why);
      return [wellFormed(a), wellFormed(b)];
    };
    const pairs = (o.list("interactions", MAX_INTERACTIONS, (n) => `should list at most ${MAX_INTERACTIONS} pairs, but lists ${n}`) ?? [])
      .map((p, i) => pair(p, `${path}.interactions[${i}]`));

    if (hashVersion !== 1) throw o.err("hashVersion", `should be 1, but is ${hashVersion}`);
    within(bits, 4, 18, o.field("bits"), k);
    allowed.forEach((ns, i) => {
      const n = utf8Length(ns);
      if (n === 0) throw k(`${path}.allow[${i}]`, "must not be empty");
      if (n > MAX_STRING_BYTES) throw k(`${path}.allow[${i}]`, `is ${n} bytes long; the limit is ${MAX_STRING_BYTES}`);
    });
    const allow = [...new Set(allowed)].sort(byBytes);
    const index = new Map(allow.map((ns, i) => [ns, i]));
    const interactions: Array<[number, number]> = [];
    const seen = new Set<number>();
    pairs.forEach((p, i) => {
      const [x, y] = p.map((ns) => {
        const at = index.get(ns);
        if (at === undefined) throw k(`${path}.interactions[${i}]`, `names namespace ${describe(ns)}, which is not in \`allow\``);
        return at;
      }) as [number, number];
      const [a, b] = x <= y ? [x, y] : [y, x];
      if (!seen.has(a * MAX_NAMESPACES + b)) interactions.push([a, b]);
      seen.add(a * MAX_NAMESPACES + b);
    });
    return { hashVersion: 1, bits, allow, interactions, normalize, slotsPerFeature: spf };
  });
}

/**
 * `value` as JSON.stringify would see it (toJSON applied, NaN and ±Infinity
 * as null, undefined, functions and symbols left out), copied; `undefined`
 * when it would be left out altogether. Bounded in depth and size.
 */
function toJson(value: unknown, field: string, k: Kind): Json | undefined {
  let left = MAX_VALUES;
  const walk = (v: unknown, key: string, depth: number): Json | undefined => {
    if (--left < 0) throw k(field, `holds more than ${MAX_VALUES} values`);
    if (depth > MAX_DEPTH) throw k(field, `is nested more than ${MAX_DEPTH} levels deep`);
    if (typeof v === "object" && v !== null) {
      const toJSON = (v as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === "function") v = toJSON.call(v, key);
      if (v instanceof Number || v instanceof String || v instanceof Boolean) v = v.valueOf();
    }
    switch (typeof v) {
      case "string":
        return wellFormed(v);
      case "boolean":
        return v;
      case "number":
        return Number.isFinite(v) ? (v === 0 ? 0 : v) : null; // JSON has no NaN, ±Infinity or -0
      case "bigint":
        throw k(field, "cannot be converted to JSON: it holds a BigInt");
      case "object":
        break;
      default:
        return undefined; // undefined, a function, a symbol
    }
    if (v === null) return null;
    if (isArray(v)) {
      const n = v.length;
      if (!Number.isSafeInteger(n) || n > left) throw k(field, `holds more than ${MAX_VALUES} values`);
      const out: Json[] = [];
      for (let i = 0; i < n; i++) out.push(walk(v[i], String(i), depth + 1) ?? null);
      return out;
    }
    const out: Record<string, Json> = Object.create(null);
    for (const name of Object.keys(v)) {
      const x = walk((v as Record<string, unknown>)[name], name, depth + 1);
      if (x !== undefined) out[wellFormed(name)] = x;
    }
    return out;
  };
  return guard(k, field, () => walk(value, "", 0));
}

/** A variant's own features, checked: the JSON copy (for the version) and the allowlisted namespaces. */
interface Own {
  json: Json;
  features: Record<string, Record<string, unknown>>;
  /** Each allowlisted feature's hash and value, in order (what a catalogue folds: `folds`). */
  terms: number[];
}

/**
 * A catalogue variant's features fold into `2^bits` slots (the core's `fold_variant`) with some
 * slot other than 0 and none overflowing: what its `features` must do.
 */
export function folds(terms: readonly number[], bits: number): boolean {
  const mask = 2 ** bits - 1;
  const slots = new Map<number, number>();
  for (let i = 0; i < terms.length; i += 2) {
    const slot = terms[i]! & mask;
    slots.set(slot, (slots.get(slot) ?? 0) + terms[i + 1]!);
  }
  const sums = [...slots.values()];
  return sums.some((x) => x !== 0) && sums.every(Number.isFinite);
}

/**
 * Check a variant's `features` as a decision would (in Rust, `hash_variant`):
 * the allowlisted namespaces walked as a context's, then the terms they
 * expand to through `interactions`. The walk's errors (`INVALID_CONTEXT`,
 * `NON_FINITE_FEATURE`, ...) become `k(field, their message)`.
 */
export function variantFeatures(raw: unknown, fs: FeatureSpec, hasher: Hasher, field: string, k: Kind): Own | null {
  const json = toJson(raw, field, k);
  if (json === undefined || json === null) return null;
  const features: Record<string, Record<string, unknown>> = Object.create(null);
  const terms: number[] = [];
  try {
    if (!isObject(json)) {
      throw fail("INVALID_CONTEXT", `feature \`action\` should be an object of namespaces, but is ${describe(json)}`);
    }
    const namespaces = json as Record<string, Json>;
    const ns: number[] = [];
    const xs: number[] = [];
    const budget = new Budget();
    for (const name of Object.keys(namespaces)) {
      const at = fs.allow.indexOf(name);
      if (at < 0) continue;
      walkNamespace(hasher, name, namespaces[name], "action", budget, (h, x) => {
        ns.push(at);
        xs.push(x);
        terms.push(h, x);
      });
      features[name] = namespaces[name] as Record<string, unknown>;
    }
    expand(fs.interactions, ns, xs);
  } catch (e) {
    if (!(e instanceof InsituError)) throw e;
    throw k(field, e.message);
  }
  return { json, features, terms };
}

/** Refuse features whose expansion (constant, features, interaction products) is too large or not finite. */
function expand(pairs: ReadonlyArray<readonly [number, number]>, ns: number[], xs: number[]): void {
  let count = 1 + ns.length;
  for (const [a, b] of pairs) {
    for (let i = 0; i < ns.length; i++) {
      if (ns[i] !== a) continue;
      // Within one namespace, each unordered pair once.
      for (let j = a === b ? i + 1 : 0; j < ns.length; j++) {
        if (ns[j] !== b) continue;
        if (count >= MAX_EXPANDED) {
          throw fail("TOO_MANY_FEATURES", `context has more than ${MAX_EXPANDED} features (stopped at ${count})`);
        }
        if (!Number.isFinite(xs[i]! * xs[j]!)) {
          throw fail("NON_FINITE_FEATURE", "feature `interaction product` must be a finite number, not NaN or Infinity");
        }
        count++;
      }
    }
  }
}

/** Refuse fewer than 2 or more than `max` variants (64; a catalogue's 4,096), ids outside 1 to 256 bytes, and repeated ids. */
export function checkIds(ids: readonly string[], path: string, k: Kind, max = MAX_VARIANTS): void {
  if (ids.length < 2) throw k(path, `needs at least 2 variants, but has ${ids.length}`);
  if (ids.length > max) throw k(path, `allows at most ${max} variants, but has ${ids.length}`);
  const seen = new Set<string>();
  ids.forEach((id, i) => {
    const n = utf8Length(id);
    if (n === 0 || n > MAX_STRING_BYTES) throw k(`${path}[${i}].id`, `must be 1 to 256 bytes long, but is ${describe(id)}`);
    if (seen.has(id)) throw k(`${path}[${i}].id`, `${describe(id)} is a duplicate`);
    seen.add(id);
  });
}

/** A variant as the version hashes it. */
export interface Hashed extends VariantSpec {
  json: Json | null;
}

/**
 * The model version: `m1-` and FNV-1a 64 over the core's canonical bytes
 * (format, hash version, bits, namespaces, interactions, noise, then per
 * variant its id, features, means and variances, every slot written out).
 */
export function contentHash(f: FeatureSpec, noise: number, variants: readonly Hashed[], catalogue: number | null = null): string {
  const h = new Fnv64();
  const d = 2 ** f.bits;
  h.u32(FORMAT);
  h.u32(f.hashVersion);
  h.u32(f.bits);
  for (const ns of f.allow) h.str(ns);
  for (const [a, b] of f.interactions) {
    h.u32(a);
    h.u32(b);
  }
  // Only when set, so the versions of models without it stay as they were; a length no namespace
  // has, so no allowlist can read the same.
  if (f.normalize) h.u32(0xffff_ffff);
  if (f.slotsPerFeature === 2) h.u32(0xffff_fffe);
  // A catalogue's bits and its one prior variance; its variants have no priors of their own.
  if (catalogue !== null) {
    h.u32(0xffff_fffd);
    h.u32(catalogue);
    h.f64(typeof variants[0]?.variance === "number" ? variants[0].variance : 0);
  }
  h.f64(noise);
  // A catalogue's version is its weights' space alone: its variants may come and go without setting
  // its learning aside.
  if (catalogue !== null) return `m1-${h.hex()}`;
  // Means and variances go in as their f64 bytes, one block each (-0 is
  // already 0 in both; typed arrays are little-endian wherever wasm runs).
  const block = new Float64Array(d);
  const bytes = new Uint8Array(block.buffer);
  for (const v of variants) {
    h.str(v.id);
    if (v.json !== null) json(h, v.json);
    if (v.mean === null) block.fill(0);
    else block.set(v.mean);
    h.bytes(bytes);
    if (typeof v.variance === "number") block.fill(v.variance);
    else block.set(v.variance);
    h.bytes(bytes);
  }
  return `m1-${h.hex()}`;
}

/** The tag bytes of the canonical JSON encoding: `n t f # s [ {`. */
const [NULL, TRUE, FALSE, NUM, STR, ARR, OBJ] = [..."ntf#s[{"].map((c) => c.charCodeAt(0)) as [number, number, number, number, number, number, number];

/** The canonical bytes of a JSON value (the core's `Fnv::json`). */
function json(h: Fnv64, v: Json): void {
  if (v === null) h.byte(NULL);
  else if (typeof v === "boolean") h.byte(v ? TRUE : FALSE);
  else if (typeof v === "number") {
    h.byte(NUM);
    h.f64(v);
  } else if (typeof v === "string") {
    h.byte(STR);
    h.str(v);
  } else if (isArray(v)) {
    h.byte(ARR);
    h.u32(v.length);
    for (const x of v) json(h, x);
  } else {
    const names = Object.keys(v);
    h.byte(OBJ);
    h.u32(names.length);
    for (const name of names) {
      h.str(name);
      json(h, v[name]!);
    }
  }
}

/** A model, checked: its feature settings, noise, variants and version. */
export interface ModelSpec {
  features: FeatureSpec;
  noise: number;
  variants: VariantSpec[];
  version: string;
}

/**
 * Read and check a model (format 1). Errors are `INVALID_MODEL` naming the
 * field (`variants[1].weights`); a stated `version` must equal the content
 * hash. `hasher` hashes the variants' own features while they are checked.
 */
export function checkModel(value: unknown, hasher = new Hasher()): ModelSpec {
  return guard(MODEL, "model", () => {
    const o = Obj.of(value, "", MODEL, MODEL_KEYS, "model");
    const format = o.num("format");
    if (format === undefined) throw o.err("format", "is required");
    if (format !== FORMAT) throw o.err("format", `should be ${FORMAT}, but is ${describe(format)}`);
    const fv = o.get("features");
    if (fv === undefined) throw o.err("features", "is required");
    const features = checkFeatures(fv, "features", MODEL, MODEL_FEATURES);
    const d = 2 ** features.bits;
    const noise = positive(o.num("noise") ?? DEFAULT_NOISE, "noise", MODEL);
    const stated = o.str("version");
    const specs = o.list("variants", MAX_VARIANTS, (n) => `allows at most ${MAX_VARIANTS} variants, but has ${n}`);
    if (specs === undefined) throw o.err("variants", "is required");
    const variants = specs.map((spec, i): Hashed => {
      const v = Obj.of(spec, `variants[${i}]`, MODEL, VARIANT_KEYS);
      const id = v.str("id");
      if (id === undefined) throw v.err("id", "is required");
      const mean = weights(v, d);
      const variance = variances(v, d);
      const own = variantFeatures(v.get("features"), features, hasher, v.field("features"), MODEL);
      return { id, features: own?.features ?? null, mean, variance, json: own?.json ?? null };
    });
    checkIds(variants.map((v) => v.id), "variants", MODEL);
    const version = contentHash(features, noise, variants);
    if (stated !== undefined && stated !== version) {
      throw o.err("version", `is ${describe(stated)}, but the content hashes to \`${version}\``);
    }
    return { features, noise, variants: variants.map(({ json: _, ...v }) => v), version };
  });
}

/** A typed array of numbers (not a DataView). */
const isNumbers = (v: unknown): v is ArrayLike<unknown> => ArrayBuffer.isView(v) && !(v instanceof DataView);

/** The `2^bits` numbers of a dense `weights` or `variance` array (or typed array). */
function dense(v: Obj, key: string, x: unknown, d: number): unknown[] {
  const field = v.field(key);
  const wrong = (n: number) => `should have 2^bits = ${d} entries, but has ${n}`;
  let list: unknown[];
  if (isNumbers(x)) {
    let n = 0;
    try {
      n = x.length;
      list = n === d ? Array.from(x) : [];
    } catch (e) {
      throw unreadable(MODEL, field, e);
    }
    if (n !== d) throw v.err(key, wrong(n));
  } else list = items(x, field, MODEL, d, wrong);
  if (list.length !== d) throw v.err(key, wrong(list.length));
  return list;
}

const finite = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);

/** What Rust's `usize` parse accepts: ASCII digits, an optional `+`. */
const SLOT = /^\+?[0-9]+$/;

/** Prior means: a dense array of `2^bits` or a sparse `{ slot: weight }`; null when absent or all zero. */
function weights(v: Obj, d: number): Float64Array | null {
  const x = v.get("weights");
  if (x === undefined) return null;
  const field = v.field("weights");
  const mean = new Float64Array(d);
  // Field names are built only for an error: a model may hold 2^18 weights.
  const set = (slot: number, w: unknown, at: () => string) => {
    if (!finite(w)) throw MODEL(at(), `must be a finite number, but is ${describe(w)}`);
    mean[slot] = w === 0 ? 0 : w;
  };
  if (isArray(x) || isNumbers(x)) {
    dense(v, "weights", x, d).forEach((w, j) => set(j, w, () => `${field}[${j}]`));
  } else if (isObject(x)) {
    for (const key of keysOf(x, field, MODEL)) {
      const slot = SLOT.test(key) ? Number(key) : NaN;
      if (!(slot < d)) throw v.err("weights", `key ${describe(key)} is not a slot in [0, ${d})`);
      // A key may be any number of zeros long: clipped in messages.
      const at = () => `${field}.${key.length > 64 ? `${key.slice(0, 64)}…` : key}`;
      let w: unknown;
      try {
        w = (x as Record<string, unknown>)[key];
      } catch (e) {
        throw unreadable(MODEL, at(), e);
      }
      set(slot, w, at);
    }
  } else throw v.err("weights", `should be an array or an object, but is ${describe(x)}`);
  return mean.some((w) => w !== 0) ? mean : null;
}

/** Prior variances: one number for every slot, or `2^bits` of them. */
function variances(v: Obj, d: number): number | Float64Array {
  const x = v.get("variance");
  if (x === undefined) return DEFAULT_PRIOR_VARIANCE;
  if (typeof x === "number") return positive(x, v.field("variance"), MODEL);
  if (!isArray(x) && !isNumbers(x)) throw v.err("variance", `should be a number or an array, but is ${describe(x)}`);
  const out = new Float64Array(d);
  dense(v, "variance", x, d).forEach((s, j) => {
    if (!(typeof s === "number" && Number.isFinite(s) && s > 0)) {
      throw MODEL(`${v.field("variance")}[${j}]`, `should be positive and finite, but is ${describe(s)}`);
    }
    out[j] = s;
  });
  return out;
}
