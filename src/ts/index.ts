// insitu: on-device personalization. The one entry point of the package.
//
//   const site = await load({ consent });     // the page's site
//   const d = site.slot("hero", { variants: ["a", "b"] }).rank({ context });
//
// `load()` opens the page's site on one of two modules. With nothing stored
// (a first visit, or consent that keeps nothing) it instantiates the small
// first-decision module (insitu_bg.wasm), which decides from the slots'
// priors and reads no storage format, and resolves; the full engine
// (insitu_full.wasm: restoring, learning, merging and writing storage,
// `explain`) loads after the first paint with its control plane (full.js)
// and takes over what happened meanwhile (`site.ready` resolves then).
// With stored state (a repeat visit) the site opens on the full engine at
// once: the previous page view loaded it after its first paint, so the
// browser holds it in its HTTP cache, and its first decisions use what was
// learned. If WebAssembly cannot run, `load()` resolves to a fallback site
// that serves every configured fallback; it needs nothing but this file.
// Importing this module touches no browser global and fetches nothing
// (safe in Node and server-side rendering).

import { Core, fetchModule, instantiate, Writer } from "./core.js";
import { plane, setEngine, setPlane, theEngine } from "./engine.js";
import { Consent } from "./consent.js";
import { coded, describe, fail, type InsituError, option } from "./errors.js";
import { FallbackSite } from "./fallback.js";
import type * as Full from "./full.js";
import { CONSTANT, fnv1a32 } from "./hash.js";
import { Insitu } from "./insitu.js";
import { Site, warm } from "./site.js";
import { callNums, encode } from "./slot.js";
import type { OpenSpec } from "./spec.js";
import { defaultStorage } from "./storage.js";
import type { LoadOptions, OpenOptions, WasmSource } from "./types.js";
import { checkExplainShape } from "./validate/calls.js";
import { checkOpen } from "./validate/open.js";
import { guard, Obj } from "./validate/read.js";

export { CODES, type ErrorCode, InsituError } from "./errors.js";
export { Context } from "./features.js";
export { Insitu };
export type { RestoreResult, SyncResult, SyncOptions } from "./insitu.js";
export type { Site, Slot, FlushResult } from "./site.js";
export type { FallbackSite } from "./fallback.js";
export type { Decision, SlateItem, Explanation, Contribution, Stats, Evaluation, PolicyEstimate, Interval } from "./slot.js";
export type { Assignment, ExposureEvent, ExperimentInfo } from "./experiments.js";
export type { Audit, AuditEntry } from "./audit.js";
export type { ConsentState } from "./consent.js";
export type { BehaviorEvent } from "./behavior.js";
export type * from "./types.js";

/** Where the modules are: next to this file, which webpack 5 and Vite emit as assets. */
const FIRST = (): URL => new URL("./insitu_bg.wasm", import.meta.url);
const FULL = (): URL => new URL("./insitu_full.wasm", import.meta.url);

let full: Promise<Core> | null = null;
let control: Promise<typeof Full> | null = null;

/**
 * The full engine from `source` (default: `insitu_full.wasm` next to the
 * package, once per page) and its control plane (full.js, imported once).
 */
function fullEngine(source: unknown): Promise<Core> {
  control ??= import("./full.js").then(
    (m) => {
      m.attach({ fail, coded, describe, guard, constant: CONSTANT, Writer, checkExplainShape, encode, callNums, Insitu, option, Obj, fnv: fnv1a32 });
      setPlane(m);
      return m;
    },
    (e: unknown) => {
      control = null; // a later init() tries again
      throw e;
    },
  );
  const core = (s: unknown) => fetchModule(s).then(instantiate).then((i) => new Core(i, true));
  const engine = source !== null && source !== undefined ? core(source) : (full ??= core(FULL()));
  return Promise.all([engine, control]).then(([c]) => c);
}

/**
 * Instantiate the full engine, for `open()` and `new Insitu()` (`load()`
 * needs no `init()`). `source`: a URL, `Request`, `Response`, bytes or
 * `WebAssembly.Module` of `insitu_full.wasm`.
 */
export default async function init(source?: WasmSource | { module_or_path: WasmSource }): Promise<void> {
  const arg = source !== null && typeof source === "object" && "module_or_path" in source ? (source as { module_or_path: unknown }).module_or_path : source;
  setEngine(await fullEngine(arg));
}

/** Open the page's site on the full engine (`await init()` first). Throws `INVALID_OPTION` naming the bad option. */
export function open(options?: OpenOptions): Site {
  return new Site(theEngine(), checkOpen(options), null);
}

/** A User Timing mark for the page's own monitoring (where the first-decision module was ready). */
function mark(name: string): void {
  try {
    globalThis.performance?.mark?.(name);
  } catch {
    // No User Timing: nothing to record.
  }
}

/** Run `f` after the next paint (or soon, where there is no painting). */
function afterPaint(f: () => void): void {
  const raf = (globalThis as { requestAnimationFrame?: (cb: () => void) => number }).requestAnimationFrame;
  if (typeof raf === "function" && globalThis.document?.visibilityState !== "hidden") raf(() => setTimeout(f, 0));
  else setTimeout(f, 0);
}

/**
 * The entry point: instantiate the first-decision module and open the
 * page's site; the full engine follows after the first paint. Never
 * rejects: if WebAssembly cannot run or the options are refused, it
 * resolves to a fallback site (`site.fallback` says why, and `onFallback`
 * hears it once) whose slots and experiments serve their fallbacks.
 */
export async function load(options?: LoadOptions): Promise<Site | FallbackSite> {
  let reason: InsituError;
  let spec;
  try {
    spec = checkOpen(options, true);
  } catch (e) {
    return fallback(options, coded(e, "INVALID_OPTION"), null);
  }
  let warmed = null;
  let lost: InsituError | null = null;
  try {
    if (storedState(spec)) {
      // A repeat visit: the full engine (in the HTTP cache since the last
      // page view) decides from the start, with what was learned. If it
      // cannot be loaded, the first-decision module decides from the
      // priors and nothing stored is touched.
      const engine = fullEngine(spec.wasmFull);
      warmed = warm(spec);
      try {
        const site = new Site(await engine, spec, warmed);
        mark("insitu:instantiated");
        return site;
      } catch (e) {
        if (e instanceof Error && e.name === "InsituError") throw e;
        lost = fail("WASM_UNAVAILABLE", `the full engine could not be loaded (${errorText(e)})`, e);
      }
    }
    // The download and compilation start, then the browser's first-use work runs while they go on.
    const first = fetchModule(spec.wasm ?? FIRST()).then(instantiate);
    warmed ??= warm(spec);
    const core = new Core(await first, false);
    mark("insitu:instantiated");
    const site = new Site(core, spec, warmed);
    if (lost !== null) site.lostLearning(lost);
    else {
      afterPaint(() => {
        fullEngine(spec.wasmFull).then(
          (f) => plane!.upgrade(site, f),
          (e) => site.lostLearning(fail("WASM_UNAVAILABLE", `the full engine could not be loaded (${errorText(e)})`, e)),
        );
      });
    }
    return site;
  } catch (e) {
    warmed?.close();
    reason = e instanceof Error && e.name === "InsituError"
      ? coded(e, "POISONED")
      : fail("WASM_UNAVAILABLE", `WebAssembly could not be loaded (${errorText(e)}); every slot serves its fallback`, e);
  }
  return fallback(options, reason, spec.onFallback);
}

/**
 * Whether the site has stored state its first decisions should use: the
 * snapshot (consent personalization) or the experiments' state (consent
 * functional and up). The device seed alone is read by the
 * first-decision module's page too. A storage that cannot be read counts
 * as empty (the site reports it).
 */
function storedState(spec: OpenSpec): boolean {
  try {
    const consent = new Consent(spec.consent, spec.defaultConsent, spec.gpc === "honor");
    const s = spec.storage === "default" ? defaultStorage() : spec.storage;
    if (s === null || s instanceof Error || !consent.allows("functional")) return false;
    return (consent.allows("personalization") && s.getItem(spec.key) !== null) || s.getItem(`${spec.key}.ab`) !== null;
  } catch {
    return false;
  }
}

function errorText(e: unknown): string {
  try {
    return e instanceof Error ? e.message : String(e);
  } catch {
    return "unknown error";
  }
}

function fallback(options: unknown, reason: InsituError, onFallback: ((e: Error) => void) | null): FallbackSite {
  let hear = onFallback;
  if (hear === null) {
    try {
      const f = (options as { onFallback?: unknown } | null)?.onFallback;
      if (typeof f === "function") hear = f as (e: Error) => void;
    } catch {
      // A hostile options object: nobody to tell.
    }
  }
  if (hear !== null) {
    try {
      hear(reason);
    } catch {
      // A throwing callback must not break the page.
    }
  } else {
    console.warn("insitu: serving fallback variants:", reason);
  }
  return new FallbackSite(options, reason);
}
