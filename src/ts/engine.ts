// What the entry loads after the first paint: the full engine
// (insitu_full.wasm) and its control plane (full.ts, shipped as full.js).
// They arrive together, so code that finds a core with `full` set finds
// `plane` set too.

import type { Core } from "./core.js";
import { fail } from "./errors.js";
import type * as Full from "./full.js";

/** The full engine's control plane, once loaded. */
export let plane: typeof Full | null = null;

export function setPlane(p: typeof Full): void {
  plane = p;
}

let engine: Core | null = null;

/** The full engine `init()` loaded, for `open()` and `new Insitu()`. */
export function setEngine(core: Core): void {
  engine = core;
}

/** The full engine, or `WASM_UNAVAILABLE` before `await init()`. */
export function theEngine(): Core {
  if (engine === null) throw fail("WASM_UNAVAILABLE", "insitu is not initialized: `await init()` (or use `load()`) first");
  return engine;
}
