// Shared by the JS test files (not a test file itself). Every test runs the
// built package (pkg/index.js) with the two .wasm modules read from pkg/.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import zlib from "node:zlib";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";
import * as insitu from "../../pkg/index.js";

export { insitu };
export const { load, open, Insitu, InsituError, CODES, Context } = insitu;
export const init = insitu.default;

const PKG = new URL("../../pkg/", import.meta.url);
/** The first-decision module and the full engine, as bytes. */
export const WASM = readFileSync(new URL("insitu_bg.wasm", PKG));
export const WASM_FULL = readFileSync(new URL("insitu_full.wasm", PKG));
export const PKG_URL = PKG;

// The full engine, instantiated once for `open()` and `new Insitu()`.
await init(WASM_FULL);

/** `load()` with both modules as bytes. */
export const loadSite = (options = {}) => load({ wasm: WASM, wasmFull: WASM_FULL, ...options });

/** `load()`, then wait for the full engine to take over. */
export async function loadReady(options = {}) {
  const site = await loadSite(options);
  await site.ready;
  return site;
}

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
  assert.ok(caught instanceof InsituError, `an InsituError, not ${caught.name}: ${caught.message}`);
  assert.equal(caught.name, "InsituError");
  assert.equal(caught.code, code, caught.message);
  return caught;
}

/** Assert a decision is the configured fallback with an InsituError of `code` (any code when omitted). */
export function isFallback(d, variant, code) {
  assert.equal(d.fallback, true, `expected the fallback, got ${JSON.stringify(d)}`);
  if (variant !== undefined) assert.equal(d.variant, variant);
  assert.equal(d.probability, 1);
  assert.equal(d.decisionId, null);
  assert.ok(d.error instanceof InsituError, "error is an InsituError");
  assert.ok(CODES.includes(d.error.code), d.error.code);
  if (code !== undefined) assert.equal(d.error.code, code, d.error.message);
}

/** The path of `insitu-aggregate`'s debug binary, built (or found up to date) by cargo on first use. */
let aggregator = null;
export function aggregatorBinary() {
  const root = fileURLToPath(new URL("../../", import.meta.url));
  aggregator ??= (execFileSync("cargo", ["build", "--quiet", "-p", "insitu-aggregate"], { cwd: root, stdio: "inherit" }),
    fileURLToPath(new URL("../../target/debug/insitu-aggregate", import.meta.url)));
  return aggregator;
}

/** The audit manifest's JSON schema, compiled. */
export const validateAudit = new Ajv2020({ allErrors: true, strict: true }).compile(
  JSON.parse(readFileSync(new URL("../../schema/audit.schema.json", import.meta.url))),
);

/** `site.audit()`, checked against its schema. */
export function checkAudit(site) {
  const a = site.audit();
  assert.ok(validateAudit(a), JSON.stringify(validateAudit.errors));
  return a;
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

/** A Storage whose every method and property throws SecurityError (storage blocked by the browser). */
export function blockedStorage() {
  const deny = () => {
    throw new DOMException("The operation is insecure.", "SecurityError");
  };
  return { getItem: deny, setItem: deny, removeItem: deny, key: deny, get length() { return deny(); } };
}

/** Rewards a slot has counted, over all its variants. */
export const updates = (slot) => slot.stats().variants.reduce((n, v) => n + v.updates, 0);

/** A decision without its id's epoch (fresh entropy per slot), for comparing twins. */
export const sameDecision = (a, b, message) => {
  const strip = (d) => ({ ...d, decisionId: d.decisionId === null ? null : d.decisionId.split("-")[1] });
  assert.deepEqual(strip(a), strip(b), message);
};

/** Small seeded generator (mulberry32), so failures reproduce. */
export function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Run `body` with `globalThis[name]` replaced by `value` (a property descriptor's value or getter), then restore it. */
export async function withGlobal(name, descriptor, body) {
  const had = Object.getOwnPropertyDescriptor(globalThis, name);
  Object.defineProperty(globalThis, name, { configurable: true, ...descriptor });
  try {
    return await body();
  } finally {
    if (had === undefined) delete globalThis[name];
    else Object.defineProperty(globalThis, name, had);
  }
}

/** A copy of every key and value of a MemoryStorage. */
export const snapshotOf = (storage) => new Map(storage.map);

/** A string of 200,000 characters. */
export const HUGE = "h".repeat(200_000);

/** A generator of hostile values from the seeded `r`: wrong types, NaN, huge strings, `__proto__` keys,
 * getters that throw, Proxies and revoked Proxies, BigInt, Symbols, deep and cyclic values. */
export function hostiles(r) {
  const boom = () => {
    throw new Error("boom");
  };
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const trapOps = ["get", "ownKeys", "getPrototypeOf", "getOwnPropertyDescriptor", "has", "set", "defineProperty"];
  const proxy = (target = {}) => new Proxy(target, { [pick(trapOps)]: boom, ...(r() < 0.5 ? { ownKeys: boom } : {}) });
  const revoked = () => {
    const p = Proxy.revocable({}, {});
    p.revoke();
    return p.proxy;
  };
  const getter = (key) => Object.defineProperty({}, key, { get: boom, enumerable: true });
  const deep = (n) => {
    let d = 1;
    for (let i = 0; i < n; i++) d = r() < 0.5 ? [d] : { a: d };
    return d;
  };
  const cyclic = () => {
    const c = { page: {} };
    c.page.self = c;
    c.self = c;
    return c;
  };
  const list = [
    () => undefined, () => null, () => NaN, () => Infinity, () => -Infinity, () => -0, () => 0, () => -1, () => 1.5,
    () => 2 ** 53, () => Number.MAX_VALUE, () => "", () => "x", () => HUGE, () => "\ud800", () => "k\udc00\ud800",
    () => "__proto__", () => "constructor", () => "toString", () => true, () => false, () => 10n, () => -(2n ** 70n),
    () => Symbol("s"), () => ({}), () => [], () => [1, "a", null], () => Object.create(null),
    () => JSON.parse('{"__proto__": {"polluted": 1}, "a": 1}'), () => new Date(NaN), () => new Map([["a", 1]]),
    () => () => 1, () => getter(pick(["context", "decisionId", "variants", "type", "key", "page", "reward", "slot"])),
    () => proxy(), () => proxy([]), () => revoked(), () => deep(3000), () => cyclic(), () => new Array(2 ** 32 - 1),
    () => ({ toString: boom, valueOf: boom, [Symbol.toPrimitive]: boom }), () => new Uint8Array(3), () => Promise.resolve(1),
    () => Object.freeze({ context: { page: { x: 1 } } }), () => ({ length: 2 ** 40 }),
  ];
  return () => pick(list)();
}

/**
 * The stored value `raw` (a framed snapshot) with section `name`'s body cut
 * short by three bytes, the container's and the frame's checksums made
 * right again: a section that fails its own reader inside a snapshot that
 * opens.
 */
export function corruptSection(raw, name) {
  const [tag, , savedAt, generation, payload] = raw.split(";");
  const snap = Buffer.from(payload, "base64");
  const out = [snap.subarray(0, 16)];
  let at = 16;
  const count = snap.readUInt16LE(at);
  const table = [snap.subarray(at, at + 2)];
  at += 2;
  let found = false;
  for (let i = 0; i < count; i++) {
    const n = snap[at];
    const sectionName = snap.subarray(at + 1, at + 1 + n).toString("utf8");
    const len = snap.readUInt32LE(at + 1 + n);
    let body = snap.subarray(at + 5 + n, at + 5 + n + len);
    if (sectionName === name) {
      body = body.subarray(0, body.length - 3);
      found = true;
    }
    const head = Buffer.alloc(5 + n);
    snap.copy(head, 0, at, at + 1 + n);
    head.writeUInt32LE(body.length, 1 + n);
    table.push(head, body);
    at += 5 + n + len;
  }
  assert.ok(found, `no section ${name}`);
  const body = Buffer.concat(table);
  const header = Buffer.from(out[0]);
  header.writeUInt32LE(body.length, 8);
  header.writeUInt32LE(zlib.crc32(body), 12);
  const framed = `${savedAt};${generation};${Buffer.concat([header, body]).toString("base64")}`;
  return `${tag};${zlib.crc32(Buffer.from(framed, "utf16le")).toString(16).padStart(8, "0")};${framed}`;
}

/**
 * `open()` on `storage` under consent `personalization`, with a manual clock starting at `t0`
 * (writes wait a minute, so a test flushes them), collecting what `onError` and `onReport` hear.
 */
export function manualSite(storage, t0, extra = {}) {
  const clock = { t: t0 };
  const reports = [];
  const errors = [];
  const s = open({
    storage,
    consent: "personalization",
    now: () => clock.t,
    flushDelayMs: 60_000,
    onError: (e) => errors.push(e),
    onReport: (r) => reports.push(r),
    ...extra,
  });
  return { s, clock, reports, errors };
}
