// Whether a targeting condition holds for `run`'s attributes: the Rust
// core's `Condition::holds`, on JS values instead of their JSON.
//
// The attributes used to cross as JSON, so a value is read as JSON.stringify
// would have written it: only own enumerable properties are followed; NaN,
// ±Infinity, null, undefined, functions, symbols and BigInts count as
// missing. Comparisons are strict (`"3"` is not `3`); a missing attribute
// fails every test but `exists: false`. It never throws: a getter or Proxy
// trap that throws makes the attribute missing.

import type { ConditionSpec } from "../spec.js";
import { isObject, wellFormed } from "./read.js";

const MISSING = Symbol("missing");
const enumerable = Object.prototype.propertyIsEnumerable;

/** The own enumerable property `key` of an object, as JSON would hold it. */
function step(v: unknown, key: string): unknown {
  try {
    if (!isObject(v) || !enumerable.call(v, key)) return MISSING;
    return present((v as Record<string, unknown>)[key]);
  } catch {
    return MISSING;
  }
}

/** `v`, or MISSING for what JSON would hold as null or leave out. */
function present(v: unknown): unknown {
  switch (typeof v) {
    case "number":
      return Number.isFinite(v) ? v : MISSING;
    case "string":
    case "boolean":
      return v;
    case "object":
      return v === null ? MISSING : v;
    default:
      return MISSING;
  }
}

const same = (want: string | number | boolean, v: unknown): boolean =>
  typeof v === "string" ? typeof want === "string" && wellFormed(v) === want : v === want;

/** Whether condition `c` holds for `attributes` (any value; a non-object has no attributes). */
export function holds(c: ConditionSpec, attributes: unknown): boolean {
  let v: unknown = attributes;
  for (const key of c.path) {
    v = step(v, key);
    if (v === MISSING) break;
  }
  const { test } = c;
  if ("exists" in test) return (v !== MISSING) === test.exists;
  if (v === MISSING) return false;
  if ("equals" in test) return same(test.equals, v);
  if ("in" in test) return test.in.some((want) => same(want, v));
  const [min, max] = test.range;
  return typeof v === "number" && (min === null || v >= min) && (max === null || v < max);
}
