// Shared by the JS test files (not a test file itself).
import assert from "node:assert/strict";

/** Assert `fn` throws a real Error (not a string) with the given code; returns it. */
export function throwsCode(fn, code) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected an error with code ${code}`);
  assert.equal(typeof caught, "object", "thrown value is an object, not a string");
  assert.ok(caught instanceof Error, "thrown value is an Error");
  assert.equal(caught.name, "InsituError");
  assert.equal(caught.code, code, caught.message);
  return caught;
}

/** A Storage with a byte quota (UTF-16, as browsers count) that can be made to fail. */
export class MemoryStorage {
  constructor(quota = Infinity) {
    this.map = new Map();
    this.quota = quota;
    this.blocked = false;
  }
  check() {
    if (this.blocked) throw new DOMException("access denied", "SecurityError");
  }
  get length() {
    this.check();
    return this.map.size;
  }
  key(i) {
    this.check();
    return [...this.map.keys()][i] ?? null;
  }
  getItem(k) {
    this.check();
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    this.check();
    let used = 2 * (k.length + String(v).length);
    for (const [key, val] of this.map) if (key !== k) used += 2 * (key.length + val.length);
    if (used > this.quota) throw new DOMException("quota", "QuotaExceededError");
    this.map.set(k, String(v));
  }
  removeItem(k) {
    this.check();
    this.map.delete(k);
  }
}

/** Rewards a slot has counted, over all its variants. */
export const updates = (slot) => slot.stats().variants.reduce((n, v) => n + v.updates, 0);
