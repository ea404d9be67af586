// `open()` and `load()` options, checked into an `OpenSpec`, with the
// messages of the store's constructor (src/wasm/store.mjs) and `load()`.
// The callbacks, `storage` and the wasm sources are the caller's objects and
// are kept as given; everything else is copied.

import { checkTier } from "../consent.js";
import { describe } from "../errors.js";
import type { OpenSpec, StorageLike, WasmSource } from "../spec.js";
import { checkBehavior } from "./behavior.js";
import { guard, Obj, OPTION, unreadable, wellFormed } from "./read.js";

/** A storage key: 1 to 32 letters, digits, `_` or `-`. */
export const KEY_RE = /^[A-Za-z0-9_-]{1,32}$/;
const OPEN_KEYS = [
  "key", "consent", "defaultConsent", "gpc", "behavior", "storage", "now", "maxBytes", "flushDelayMs", "onError", "unit",
  "onExposure", "onReport",
] as const;
/** What `load()` takes besides `open()`'s options. */
const LOAD_KEYS = [...OPEN_KEYS, "wasm", "wasmFull", "onFallback"] as const;

type Callback = (value: never) => unknown;

/**
 * Check `open()` options, or with `load` set, `load()` options (which add
 * `wasm`, `wasmFull` and `onFallback`). `undefined` reads as `{}`; errors
 * are `INVALID_OPTION` naming the option.
 */
export function checkOpen(options: unknown, load = false): OpenSpec {
  return guard(OPTION, "options", () => {
    const o = Obj.of(options === undefined ? {} : options, "", OPTION, load ? LOAD_KEYS : OPEN_KEYS, "options");
    const key = o.get("key") ?? "insitu";
    if (typeof key !== "string" || !KEY_RE.test(key)) {
      throw OPTION("key", `should be 1 to 32 letters, digits, \`_\` or \`-\`, but is ${describe(key)}`);
    }
    const defaultConsent = checkTier(o.get("defaultConsent") ?? "functional", "defaultConsent");
    // An explicit null consent is an error, as in the store: omit it until it is known.
    const consent = o.raw("consent") === undefined ? null : checkTier(o.raw("consent"));
    const gpc = o.get("gpc") ?? "honor";
    if (gpc !== "honor" && gpc !== "ignore") throw OPTION("gpc", `should be "honor" or "ignore", but is ${describe(gpc)}`);
    const fn = <T extends Callback>(field: string): T | null => {
      const f = o.raw(field);
      if (f === undefined) return null;
      if (typeof f !== "function") throw OPTION(field, `should be a function, but is ${describe(f)}`);
      return f as T;
    };
    const now = fn<() => number>("now") ?? Date.now;
    const onError = fn<(error: Error) => void>("onError");
    const onExposure = fn<(exposure: object) => void>("onExposure");
    const onReport = fn<(report: object) => void>("onReport");
    const unit = checkUnit(o.raw("unit") ?? null);
    const flushDelayMs = o.get("flushDelayMs") ?? 1000;
    if (typeof flushDelayMs !== "number" || !(flushDelayMs >= 0 && flushDelayMs <= 60_000)) {
      throw OPTION("flushDelayMs", `should be in [0, 60000], but is ${describe(flushDelayMs)}`);
    }
    // As in the store, an explicit null is an error here.
    const maxBytes = o.raw("maxBytes") === undefined ? 256 << 10 : o.raw("maxBytes");
    if (typeof maxBytes !== "number" || !(Number.isInteger(maxBytes) && maxBytes >= 64 && maxBytes <= 16 << 20)) {
      throw OPTION("maxBytes", `should be an integer in [64, 16777216], but is ${describe(maxBytes)}`);
    }
    return {
      key,
      consent,
      defaultConsent,
      gpc,
      behavior: checkBehavior(o.get("behavior"), "behavior"),
      storage: storage(o),
      now,
      maxBytes,
      flushDelayMs: flushDelayMs === 0 ? 0 : flushDelayMs,
      onError,
      unit: unit === null ? null : wellFormed(unit),
      onExposure,
      onReport,
      wasm: wasm(o, "wasm"),
      wasmFull: wasm(o, "wasmFull"),
      onFallback: load ? fn<(error: Error) => void>("onFallback") : null,
    };
  });
}

/** The site's own id for its visitor (`unit`): 1 to 256 characters, or null. */
export function checkUnit(unit: unknown): string | null {
  if (unit !== null && (typeof unit !== "string" || unit.length === 0 || unit.length > 256)) {
    throw OPTION("unit", `should be a string of 1 to 256 characters or null, but is ${describe(unit)}`);
  }
  return unit;
}

/** `storage`: a `Storage` (an object with `getItem`), null for memory only, or absent for `localStorage`. */
function storage(o: Obj): StorageLike | null | "default" {
  const s = o.raw("storage");
  if (s === undefined) return "default";
  if (s === null) return null;
  let getItem: unknown;
  try {
    getItem = typeof s === "object" ? (s as { getItem?: unknown }).getItem : undefined;
  } catch (e) {
    throw unreadable(OPTION, "storage", e);
  }
  if (typeof getItem !== "function") {
    throw OPTION("storage", `should be a Storage (getItem, setItem, removeItem, key, length) or null, but is ${describe(s)}`);
  }
  return s as StorageLike;
}

/** The platform's classes a wasm source may be an instance of (those it has: not every runtime has `Request`). */
const sources = (): unknown[] => {
  const g = globalThis as { URL?: unknown; Request?: unknown; Response?: unknown; WebAssembly?: { Module?: unknown } };
  return [g.URL, g.Request, g.Response, ArrayBuffer, Promise, g.WebAssembly?.Module];
};

/** A `wasm` or `wasmFull` source: a URL (string or `URL`), `Request`, `Response`, bytes, module, or a promise of one. */
function wasm(o: Obj, field: string): WasmSource | null {
  const w = o.get(field);
  if (w === undefined) return null;
  let ok: boolean;
  try {
    ok = typeof w === "string" ||
      (typeof w === "object" && w !== null &&
        (ArrayBuffer.isView(w) || sources().some((C) => typeof C === "function" && w instanceof C)));
  } catch (e) {
    throw unreadable(OPTION, field, e);
  }
  if (!ok) throw OPTION(field, `should be a URL, Request, Response, bytes or a WebAssembly.Module, but is ${describe(w)}`);
  return w as WasmSource;
}
