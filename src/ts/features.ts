// From page signals to hashed features: the allowlisted namespaces of a
// context are read, validated and hashed here (once per page view for a
// `Context`), and the core receives (namespace index, hash, value) triples.
//
// A context is `{ namespace: { name: value } }`; a value is a finite number,
// a boolean (1 or 0), a string (a categorical, hashed with its name) or an
// array of strings. Only own enumerable keys are read, as JSON.stringify
// reads them; namespaces a slot does not allow are never read at all.

import { describe, fail, InsituError } from "./errors.js";
import { categorical, murmurStr, namespaceSeed, utf8Length } from "./hash.js";
import { guard } from "./validate/read.js";

/** Longest namespace, feature name or categorical value, in UTF-8 bytes. */
export const MAX_STRING_BYTES = 256;
/** Most raw features (list items count one each) in one context plus one action. */
export const MAX_FEATURES = 256;
/** Most features after interactions are expanded. */
export const MAX_EXPANDED = 4096;
/** Cached name and value hashes per page before the caches are dropped and refilled. */
const MAX_CACHED = 16384;

/** One namespace's features, hashed. */
export interface Encoded {
  /** Hash, value, hash, value, ... */
  readonly pairs: number[];
  /** Each feature's name and categorical value (null for a number), for explanations: labels are made only when `explain` asks. */
  readonly names: Array<string | null>;
}

interface NameEntry {
  h: number;
  values: Record<string, number> | null;
}

/**
 * The page's hash caches: per namespace, its seed and the hashes of the
 * names and categorical values seen. Bounded: past `MAX_CACHED` entries
 * every cache is dropped, so high-cardinality values (ids) cannot grow it.
 */
export class Hasher {
  private seeds = new Map<string, number>();
  private names = new Map<string, Record<string, NameEntry>>();
  private cached = 0;

  seed(ns: string): number {
    let s = this.seeds.get(ns);
    if (s === undefined) {
      s = namespaceSeed(ns);
      this.seeds.set(ns, s);
    }
    return s;
  }

  private count(): void {
    if (++this.cached > MAX_CACHED) {
      this.names.clear();
      this.cached = 1;
    }
  }

  /** The cache entry of feature `name` in namespace `ns`. */
  entry(ns: string, name: string): NameEntry {
    let names = this.names.get(ns);
    if (names === undefined) {
      names = Object.create(null) as Record<string, NameEntry>;
      this.names.set(ns, names);
    }
    let e = names[name];
    if (e === undefined) {
      this.count();
      e = { h: murmurStr(name, this.seed(ns)), values: null };
      (this.names.get(ns) ?? names)[name] = e;
    }
    return e;
  }

  /** Hash of `name=value` for the entry of `name`. */
  value(e: NameEntry, value: string): number {
    const values = (e.values ??= Object.create(null) as Record<string, number>);
    let h = values[value];
    if (h === undefined) {
      this.count();
      h = categorical(e.h, value);
      values[value] = h;
    }
    return h;
  }
}

/** Own enumerable string keys, as JSON.stringify reads them. */
const keys = Object.keys;

/** A plain object (or a null-prototype one): not an array, Date, Map, boxed value, ... */
export function isPlain(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function checkLength(s: string, field: () => string): void {
  // Most strings are short: skip the byte count below 86 units (3 bytes each at most).
  if (s.length > 85 && utf8Length(s) > MAX_STRING_BYTES) {
    throw fail("STRING_TOO_LONG", `\`${field()}\` is ${utf8Length(s)} bytes long; the limit is ${MAX_STRING_BYTES}`);
  }
}

/** `INVALID_CONTEXT` naming the feature: "feature `field` why". */
export const invalid = (field: string, why: string): InsituError => fail("INVALID_CONTEXT", `feature \`${field}\` ${why}`);

/** Counts features across the namespaces of one context (and one action). */
export class Budget {
  n = 0;
  /** Count `k` more features (one by default). */
  take(k = 1): void {
    if ((this.n += k) > MAX_FEATURES) {
      this.n = MAX_FEATURES + 1;
      throw fail("TOO_MANY_FEATURES", `context has more than ${MAX_FEATURES} features (stopped at ${this.n})`);
    }
  }
}

/**
 * Validate and hash one namespace's features `feats` (the value under
 * `ns` in a context whose path in the caller's options is `origin`).
 * Calls `each(hash, value, label)` per feature, in key order. Throws
 * `InsituError` naming the field (`INVALID_CONTEXT`, `NON_FINITE_FEATURE`,
 * `STRING_TOO_LONG`, `TOO_MANY_FEATURES`); what the caller's getters or
 * Proxy traps throw propagates as it is.
 */
export function walkNamespace(
  hasher: Hasher,
  ns: string,
  feats: unknown,
  origin: string,
  budget: Budget,
  each: (h: number, x: number, name: string, value: string | null) => void,
): void {
  if (!isPlain(feats)) {
    throw invalid(`${origin}.${ns}`, `should be an object of features, but is ${describe(feats)}`);
  }
  for (const name of keys(feats)) {
    const v = feats[name];
    if (v === undefined) continue;
    // A name too long to be valid is clipped in messages, which stay short.
    const field = () => `${origin}.${ns}.${name.length > MAX_STRING_BYTES ? `${name.slice(0, 64)}…` : name}`;
    if (name.length === 0) throw invalid(field(), "must not be empty");
    checkLength(name, field);
    const e = hasher.entry(ns, name);
    if (typeof v === "number" || v === null) {
      // null is what JSON.stringify makes of NaN and ±Infinity.
      if (!Number.isFinite(v)) {
        throw fail("NON_FINITE_FEATURE", `feature \`${field()}\` must be a finite number, not NaN or Infinity`);
      }
      budget.take();
      each(e.h, v === 0 ? 0 : v!, name, null);
    } else if (typeof v === "boolean") {
      budget.take();
      each(e.h, v ? 1 : 0, name, null);
    } else if (typeof v === "string") {
      checkLength(v, field);
      budget.take();
      each(hasher.value(e, v), 1, name, v);
    } else if (Array.isArray(v)) {
      const n = v.length;
      for (let i = 0; i < n; i++) {
        const item: unknown = v[i];
        if (typeof item !== "string") throw invalid(field(), `should list only strings, but item ${i} is ${describe(item)}`);
        checkLength(item, field);
        budget.take();
        each(hasher.value(e, item), 1, name, item);
      }
    } else {
      throw invalid(field(), `should be a number, a boolean, a string or an array of strings, but is ${describe(v)}`);
    }
  }
}

/** Encode one namespace into an `Encoded`. */
export function encodeNamespace(hasher: Hasher, ns: string, feats: unknown, origin: string): Encoded {
  const pairs: number[] = [];
  const names: Array<string | null> = [];
  walkNamespace(hasher, ns, feats, origin, new Budget(), (h, x, name, value) => {
    pairs.push(h, x);
    names.push(name, value);
  });
  return { pairs, names };
}

/**
 * A page context, encoded once and shared by every slot that ranks on it
 * (`site.context({...})`). Each namespace is validated and hashed the first
 * time a slot that allows it reads it; a slot that does not allow a
 * namespace never reads it. The context object's namespaces are taken
 * when it is made; each namespace's features are read when a slot first
 * needs them, and that encoding is then kept for the page view.
 */
export class Context {
  /** Namespaces in the order given, and each one's features. */
  readonly order: readonly string[];
  private raw: Record<string, unknown>;
  private encoded = new Map<string, Encoded | InsituError>();

  readonly #hasher: Hasher;

  constructor(hasher: Hasher, raw: unknown) {
    this.#hasher = hasher;
    // Take each namespace's value now: a namespace added to or removed from
    // the caller's object later does not change this context.
    const copy: Record<string, unknown> = Object.create(null);
    const order: string[] = [];
    guard(invalid, "context", () => {
      const o = raw ?? {};
      if (!isPlain(o)) throw invalid("context", `should be an object of namespaces, but is ${describe(o)}`);
      for (const ns of keys(o)) {
        const v = o[ns];
        if (v === undefined) continue;
        copy[ns] = v;
        order.push(ns);
      }
    });
    this.raw = copy;
    this.order = order;
  }

  /** The encoding of namespace `ns` (validated on first use). Throws its validation error. */
  get(ns: string): Encoded | undefined {
    let e = this.encoded.get(ns);
    if (e === undefined) {
      if (!(ns in this.raw)) return undefined;
      try {
        e = encodeNamespace(this.#hasher, ns, this.raw[ns], "context");
      } catch (err) {
        e = err instanceof InsituError ? err : fail("INVALID_CONTEXT", `feature \`context.${ns}\` could not be read`, err);
      }
      this.encoded.set(ns, e);
    }
    if (e instanceof InsituError) throw e;
    return e;
  }
}
