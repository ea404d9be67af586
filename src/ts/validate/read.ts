// Reading the caller's option objects safely: the helpers every validator
// shares.
//
// Only own enumerable string keys are read (`Object.keys`, as JSON.stringify
// reads them), each value at most once, so a getter runs once and a later
// change to the caller's object changes nothing. Unknown keys are errors.
// `undefined` and `null` count as absent, as they did when options crossed
// into wasm as JSON. Whatever the caller's getters or Proxy traps throw
// becomes an error of the layer's code naming the field ("option `policy`
// could not be read: Error: boom"), never another exception. Messages
// describe bad values only with `describe()`, which runs no caller code.

import { describe, fail, InsituError, option, type ErrorCode } from "../errors.js";

/** Makes a layer's error naming a field: "option `policy.type` should be ...". */
export type Kind = (field: string, why: string) => InsituError;

const kind =
  (code: ErrorCode, noun: string): Kind =>
  (field, why) =>
    fail(code, `${noun} \`${field}\` ${why}`);

/** `INVALID_OPTION`: "option `field` why". */
export const OPTION: Kind = option;
/** `INVALID_MODEL`: "model field `field` why". */
export const MODEL = kind("INVALID_MODEL", "model field");
/** `INVALID_EXPERIMENT`: "experiment field `field` why". */
export const EXPERIMENT = kind("INVALID_EXPERIMENT", "experiment field");
/** `INVALID_EVENT`: "event field `field` why". */
export const EVENT = kind("INVALID_EVENT", "event field");

/** What a caller's getter or trap threw, for a message: `name: message`, clipped. */
function threw(e: unknown): string {
  let s: string;
  try {
    s = e instanceof Error ? `${e.name}: ${e.message}` : describe(e);
  } catch {
    s = describe(e);
  }
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

/** The layer's error for a value whose reading threw `e`. */
export const unreadable = (k: Kind, field: string, e: unknown): InsituError =>
  k(field, `could not be read: ${threw(e)}`);

/** `x` copied (`structuredClone`), so no getter or Proxy of the caller's runs later; or the error copying threw, about `field`. */
export function copied(x: unknown, field: string): unknown {
  try {
    return x === undefined ? x : structuredClone(x);
  } catch (e) {
    return unreadable(OPTION, field, e);
  }
}

/**
 * Run a validator: our own errors pass, anything else thrown on the way (a
 * revoked Proxy met where no read expected one) becomes `k(field, ...)`.
 */
export function guard<T>(k: Kind, field: string, body: () => T): T {
  try {
    return body();
  } catch (e) {
    if (ours(e)) throw e;
    throw unreadable(k, field, e);
  }
}

function ours(e: unknown): boolean {
  try {
    return e instanceof InsituError;
  } catch {
    return false;
  }
}

/** `v` is an array (a Proxy of one too); throws what a revoked Proxy throws. */
export const isArray = Array.isArray;

/** A non-null object that is not an array or a function. */
export const isObject = (v: unknown): v is object => typeof v === "object" && v !== null && !isArray(v);

const SURROGATE = /[\ud800-\udfff]/;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * `s` with each lone surrogate replaced by U+FFFD, as the Rust core saw
 * strings (they crossed as UTF-8, which is what this does), so ids
 * compare, hash and sort alike.
 */
export const wellFormed = (s: string): string => (SURROGATE.test(s) ? decoder.decode(encoder.encode(s)) : s);

/** Order of two well-formed strings by their UTF-8 bytes (code points), as Rust orders `String`s. */
export function byBytes(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    // UTF-16 order differs from code point order only for surrogates
    // against U+E000..U+FFFF: move the surrogates above them.
    if (x !== y) return lift(x) - lift(y);
  }
  return a.length - b.length;
}

const lift = (c: number): number => (c >= 0xe000 ? c - 0x800 : c >= 0xd800 ? c + 0x2000 : c);

/** A string (made well-formed), or the layer's error. */
export function text(v: unknown, field: string, k: Kind): string {
  if (typeof v !== "string") throw k(field, `should be a string, but is ${describe(v)}`);
  return wellFormed(v);
}

/** A number in `[lo, hi]` (`(lo, hi]` with `loOpen`): "should be in [lo, hi], but is x". */
export function within(x: number, lo: number, hi: number, field: string, k: Kind, loOpen = false): number {
  if (!((loOpen ? x > lo : x >= lo) && x <= hi)) {
    throw k(field, `should be in ${loOpen ? "(" : "["}${lo}, ${hi}], but is ${describe(x)}`);
  }
  return x;
}

/** A positive finite number (noise, variances, TTLs). */
export function positive(x: number, field: string, k: Kind): number {
  if (!(Number.isFinite(x) && x > 0)) throw k(field, `should be positive and finite, but is ${describe(x)}`);
  return x;
}

/**
 * A copy of the array `v`, at most `max` items long (checked before any
 * item is read, so a sparse array of length 2^32 - 1 costs nothing).
 */
export function items(v: unknown, field: string, k: Kind, max: number, tooMany?: (n: number) => string): unknown[] {
  if (!isArray(v)) throw k(field, `should be an array, but is ${describe(v)}`);
  let n: unknown;
  try {
    n = v.length;
  } catch (e) {
    throw unreadable(k, field, e);
  }
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw k(field, "could not be read: a bad length");
  if (n > max) throw k(field, tooMany ? tooMany(n) : `should list at most ${max} items, but lists ${n}`);
  const out: unknown[] = [];
  let i = 0;
  try {
    for (; i < n; i++) out.push(v[i]);
  } catch (e) {
    throw unreadable(k, `${field}[${i}]`, e);
  }
  return out;
}

/** Own enumerable string keys of `v`, as JSON.stringify reads them. */
export function keysOf(v: object, field: string, k: Kind): string[] {
  try {
    return Object.keys(v);
  } catch (e) {
    throw unreadable(k, field, e);
  }
}

/**
 * One options object of the caller's, read as a set of known options.
 * Values are read on first use, once, and kept aside (never assigned
 * into a plain object, so `__proto__` is just an unknown key).
 */
export class Obj {
  /** The keys read so far and their values (a few: arrays cost less than a Map here). */
  readonly #read: string[] = [];
  readonly #values: unknown[] = [];

  private constructor(
    private readonly v: object,
    /** Path of this object in the caller's options, `""` at the top. */
    readonly path: string,
    readonly kind: Kind,
    /** Its own enumerable keys. */
    readonly keys: readonly string[],
  ) {}

  /**
   * `value` as an options object at `path` (errors about the value itself
   * name `name`); with `known`, any other key is an error.
   */
  static of(value: unknown, path: string, k: Kind, known?: readonly string[], name = path): Obj {
    let ok: boolean;
    try {
      ok = isObject(value);
    } catch (e) {
      throw unreadable(k, name, e);
    }
    if (!ok) throw k(name, `should be an object, but is ${describe(value)}`);
    const o = new Obj(value as object, path, k, keysOf(value as object, name, k));
    if (known) o.only(known);
    return o;
  }

  /** The path of `key` in the caller's options. */
  field(key: string): string {
    return this.path === "" ? key : `${this.path}.${key}`;
  }

  /** The layer's error about `key`. */
  err(key: string, why: string): InsituError {
    return this.kind(this.field(key), why);
  }

  /** Refuse keys not in `known`, naming the first one (clipped: any string may be a key). */
  only(known: readonly string[]): void {
    for (const key of this.keys) {
      if (!known.includes(key)) throw this.err(key.length > 64 ? `${key.slice(0, 64)}…` : key, "is not a known option");
    }
  }

  /** The value at `key` as given (`undefined` when not an own enumerable key). */
  raw(key: string): unknown {
    const i = this.#read.indexOf(key);
    if (i >= 0) return this.#values[i];
    let x: unknown;
    if (this.keys.includes(key)) {
      try {
        x = (this.v as Record<string, unknown>)[key];
      } catch (e) {
        throw unreadable(this.kind, this.field(key), e);
      }
    }
    this.#read.push(key);
    this.#values.push(x);
    return x;
  }

  /** The value at `key`; `null` counts as absent (`undefined`). */
  get(key: string): unknown {
    const x = this.raw(key);
    return x === null ? undefined : x;
  }

  #typed<T>(key: string, type: string, what: string): T | undefined {
    const x = this.get(key);
    if (x !== undefined && typeof x !== type) throw this.err(key, `should be ${what}, but is ${describe(x)}`);
    return x as T | undefined;
  }

  num(key: string): number | undefined {
    return this.#typed<number>(key, "number", "a number");
  }

  /**
   * A finite number at `key`, if present: `null` (what NaN and ±Infinity
   * used to become) is an error, "should be <finite>".
   */
  finite(key: string, finite = "a finite number"): number | undefined {
    const x = this.raw(key);
    if (x !== undefined && x !== null && typeof x !== "number") throw this.err(key, `should be a number, but is ${describe(x)}`);
    if (x === null || (x !== undefined && !Number.isFinite(x))) throw this.err(key, `should be ${finite}, but is ${describe(x)}`);
    return x;
  }

  /** An integer in `[lo, hi]`. */
  int(key: string, lo: number, hi: number): number | undefined {
    const x = this.num(key);
    if (x !== undefined && !(Number.isInteger(x) && x >= lo && x <= hi)) {
      throw this.err(key, `should be an integer in [${lo}, ${hi}], but is ${describe(x)}`);
    }
    return x === 0 ? 0 : x;
  }

  bool(key: string): boolean | undefined {
    return this.#typed<boolean>(key, "boolean", "a boolean");
  }

  /** A string, made well-formed. */
  str(key: string): string | undefined {
    const x = this.#typed<string>(key, "string", "a string");
    return x === undefined ? x : wellFormed(x);
  }

  /** A copy of the array at `key`, at most `max` items long. */
  list(key: string, max: number, tooMany?: (n: number) => string): unknown[] | undefined {
    const x = this.get(key);
    return x === undefined ? x : items(x, this.field(key), this.kind, max, tooMany);
  }

  /** The nested options object at `key`. */
  obj(key: string, known?: readonly string[]): Obj | undefined {
    const x = this.get(key);
    return x === undefined ? x : Obj.of(x, this.field(key), this.kind, known);
  }
}
