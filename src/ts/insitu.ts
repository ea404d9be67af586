// `new Insitu(options)`: one slot and its learner, with no site around it,
// for sites that keep state themselves. Runs on the full engine, which
// `await init()` loads with its control plane (full.js), which defines the
// methods. `restore`, `sync` and `commit` are the persistence protocol the
// site's store uses: read what is stored, merge onto it, write the bytes,
// then commit.

import { theEngine } from "./engine.js";
import { option } from "./errors.js";
import { Hasher } from "./features.js";
import { type Decision, type Evaluation, type Explanation, Learner, Prepared, type Stats } from "./slot.js";
import type { ActivateOptions, EvaluateOptions, ExplainOptions, InsituOptions, LearnOptions, RankOptions, RewardOptions } from "./types.js";

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
  /** Pending decisions dropped, earliest-expiring first, to keep the snapshot under `maxBytes` (rewards for them get `UNKNOWN_DECISION`). */
  trimmed: number;
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
  /** @internal */
  readonly l: Learner;

  /** Check the options and start at the prior. Throws `InsituError` (`INVALID_OPTION`, `INVALID_MODEL`, ...). */
  constructor(options: InsituOptions) {
    const p = new Prepared(options, new Hasher());
    if (p.spec.reports !== undefined) throw option("reports", "belongs to a site's slot: open it with `site.slot(name, options)`");
    this.l = new Learner(theEngine(), p, Date.now);
  }
}

/**
 * The methods of `Insitu`, defined on its prototype by full.js (`methods`
 * there), the full engine's control plane: `init()` loads it before any
 * `Insitu` can be made, so the entry carries none of them.
 */
export interface Insitu {
  /** Choose a variant. Never throws: on bad input, the fallback variant with `fallback: true` and the `error`. */
  rank(options?: RankOptions): Decision;
  /** Settle a decision: `{ decisionId, reward, now? }`, reward in [0, 1]. */
  reward(options: RewardOptions): void;
  /** Mark a decision ranked with `defer: true` as shown, so its reward counts. */
  activate(options: ActivateOptions): void;
  /** Learn from a logged observation: `{ context?, actions?, variant, reward }`. */
  learn(options: LearnOptions): void;
  /** Why a variant: its mean score split into what each feature adds. Changes nothing. */
  explain(options?: ExplainOptions): Explanation | null;
  /** What other policies would have earned on this slot's logged decisions (IPS, SNIPS, DR with intervals). Throws `NO_DATA` before any settled decision. */
  evaluate(options?: EvaluateOptions): Evaluation | null;
  stats(): Stats;
  readonly variants: string[];
  readonly modelVersion: string;
  readonly policy: string;
  /** Load this slot's learning from the stored snapshot (writes nothing). */
  restore(stored: Uint8Array, options: SyncOptions): RestoreResult;
  /** Merge this slot's learning onto the stored snapshot (null: nothing stored); store `bytes`, then `commit()`. */
  sync(stored: Uint8Array | null, options: SyncOptions): SyncResult;
  /** Apply the last `sync()` once its bytes are stored; false when there was none. */
  commit(): boolean;
  /** Free the slot's memory in the engine; the object is unusable after. */
  close(): void;
}
