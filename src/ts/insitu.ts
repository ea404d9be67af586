// `new Insitu(options)`: one slot and its learner, with no site around it,
// for sites that keep state themselves. Runs on the full engine, which
// `await init()` loads. `restore`, `sync` and `commit` are the persistence
// protocol the site's store uses: read what is stored, merge onto it,
// write the bytes, then commit.

import type { Core } from "./core.js";
import { describe, fail } from "./errors.js";
import { Hasher } from "./features.js";
import { type Decision, type Explanation, Learner, Prepared, type Stats } from "./slot.js";
import type { ActivateOptions, ExplainOptions, InsituOptions, LearnOptions, RankOptions, RewardOptions } from "./types.js";

/** What `restore()` found. */
export interface RestoreResult {
  /** The stored section came from another model; its learning was set aside. */
  modelChanged: boolean;
  /** Another tab or page view had stored since this slot last did: the stored state became its base. */
  merged: boolean;
  /** This slot's own updates not yet stored, replayed onto the stored state. */
  replayed: number;
  /** Own rewards not replayed because another tab had counted the same decision. */
  duplicates: number;
  /** Own updates the stored state refused numerically. */
  rejected: number;
  /** Pending decisions of other page views now settleable here. */
  adopted: number;
}

/** What `sync()` returns: the snapshot to store, and what the merge found. */
export interface SyncResult extends RestoreResult {
  /** The snapshot to store; call `commit()` once it is stored. */
  bytes: Uint8Array;
  /** Storage had failed for so long that this slot's state overwrote other tabs' updates. */
  overwrote: boolean;
}

/** Options of `restore()` and `sync()`. */
export interface SyncOptions {
  /** This slot's section name: 1 to 48 letters, digits, `-`, `_` or `.`. */
  slot: string;
  /** Current time in ms (default `Date.now()`). */
  now?: number;
  /** Cap on the snapshot in bytes, 64 to 16 MiB (default 256 KiB). */
  maxBytes?: number;
}

let engine: Core | null = null;

/** The full engine `init()` loaded (set by the entry). */
export function setEngine(core: Core): void {
  engine = core;
}

/** The full engine, or `WASM_UNAVAILABLE` before `await init()`. */
export function theEngine(): Core {
  if (engine === null) throw fail("WASM_UNAVAILABLE", "insitu is not initialized: `await init()` (or use `load()`) first");
  return engine;
}

function syncOptions(o: unknown): { slot: string; now: number; max: number } {
  if (o === null || typeof o !== "object") throw fail("INVALID_OPTION", `option \`options\` should be an object, but is ${describe(o)}`);
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r)) if (k !== "slot" && k !== "now" && k !== "maxBytes") throw fail("INVALID_OPTION", `option \`${k}\` is not a known option`);
  const slot = r.slot;
  if (typeof slot !== "string" || !/^[A-Za-z0-9._-]{1,48}$/.test(slot)) {
    throw fail("INVALID_OPTION", `option \`slot\` should be 1 to 48 letters, digits, \`-\`, \`_\` or \`.\`, but is ${describe(slot)}`);
  }
  const now = r.now ?? Date.now();
  if (typeof now !== "number" || !Number.isFinite(now)) throw fail("INVALID_OPTION", `option \`now\` should be a finite time in ms, but is ${describe(now)}`);
  const max = r.maxBytes ?? 256 << 10;
  if (typeof max !== "number" || !Number.isInteger(max) || max < 64 || max > 16 << 20) {
    throw fail("INVALID_OPTION", `option \`maxBytes\` should be an integer in [64, 16777216], but is ${describe(max)}`);
  }
  return { slot, now, max };
}

function bytesOf(stored: unknown, required: boolean, max: number): Uint8Array | null {
  if ((stored === null || stored === undefined) && !required) return null;
  if (!(stored instanceof Uint8Array)) {
    throw fail("INVALID_OPTION", `option \`stored\` should be ${required ? "the stored snapshot, a Uint8Array" : "a Uint8Array, or null when nothing is stored"}, but is ${describe(stored)}`);
  }
  if (stored.length > max) throw fail("SNAPSHOT_TOO_LARGE", `snapshot is ${stored.length} bytes; the cap is ${max}`);
  return stored;
}

const report = (r: Float64Array): RestoreResult => ({
  modelChanged: r[0] === 1,
  merged: r[1] === 1,
  replayed: r[2]!,
  duplicates: r[3]!,
  rejected: r[4]!,
  adopted: r[5]!,
});

/**
 * One decision point (a page slot) with its variants and learner.
 *
 * ```js
 * await init();
 * const slot = new Insitu({ variants: ["a", "b"], features: { allow: ["page"] } });
 * const d = slot.rank({ context: { page: { section: "sports" } } });
 * slot.reward({ decisionId: d.decisionId, reward: 1 });
 * ```
 */
export class Insitu {
  private readonly l: Learner;

  /** Check the options and start at the prior. Throws `InsituError` (`INVALID_OPTION`, `INVALID_MODEL`, ...). */
  constructor(options: InsituOptions) {
    this.l = new Learner(theEngine(), new Prepared(options, new Hasher()), Date.now);
  }

  /** Choose a variant. Never throws: on bad input, the fallback variant with `fallback: true` and the `error`. */
  rank(options?: RankOptions): Decision {
    return this.l.rank(options);
  }

  /** Settle a decision: `{ decisionId, reward, now? }`, reward in [0, 1]. */
  reward(options: RewardOptions): void {
    this.l.reward(options);
  }

  /** Mark a decision ranked with `defer: true` as shown, so its reward counts. */
  activate(options: ActivateOptions): void {
    this.l.activate(options);
  }

  /** Learn from a logged observation: `{ context?, actions?, variant, reward }`. */
  learn(options: LearnOptions): void {
    this.l.learn(options);
  }

  /** Why a variant: its mean score split into what each feature adds. Changes nothing. */
  explain(options?: ExplainOptions): Explanation | null {
    return this.l.explain(options);
  }

  stats(): Stats {
    return this.l.stats();
  }

  get variants(): string[] {
    return this.l.variants;
  }

  get modelVersion(): string {
    return this.l.modelVersion;
  }

  get policy(): string {
    return this.l.policy;
  }

  /** Load this slot's learning from the stored snapshot (writes nothing). */
  restore(stored: Uint8Array, options: SyncOptions): RestoreResult {
    const o = syncOptions(options);
    const b = bytesOf(stored, true, o.max)!;
    const c = this.l.core;
    const snap = c.call("snap_decode", [c.put(b), o.max]);
    try {
      c.call("slot_restore", [this.l.h, snap, c.text(o.slot), o.now]);
      return report(c.read(6));
    } finally {
      c.call("snap_drop", [snap]);
    }
  }

  /** Merge this slot's learning onto the stored snapshot (null: nothing stored); store `bytes`, then `commit()`. */
  sync(stored: Uint8Array | null, options: SyncOptions): SyncResult {
    const o = syncOptions(options);
    const b = bytesOf(stored, false, o.max);
    const c = this.l.core;
    const name = new TextEncoder().encode(o.slot);
    const all = new Uint8Array(name.length + (b?.length ?? 0));
    all.set(name);
    if (b !== null) all.set(b, name.length);
    c.put(all);
    const n = c.call("slot_sync", [this.l.h, name.length, b === null ? -1 : b.length, o.now, o.max]);
    const bytes = c.bytes(n);
    const r = c.read(7);
    return { ...report(r), bytes, overwrote: r[6] === 1 };
  }

  /** Apply the last `sync()` once its bytes are stored; false when there was none. */
  commit(): boolean {
    return this.l.core.call("slot_commit", [this.l.h]) === 1;
  }

  /** Free the slot's memory in the engine; the object is unusable after. */
  close(): void {
    this.l.core.call("slot_drop", [this.l.h]);
  }
}
