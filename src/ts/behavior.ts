// The behaviour store of a site: tracked events kept on the device under
// its retention, and the features derived from them (the `behavior`
// namespace the slots see). Events are checked here and kept by the core,
// which derives the features; they are hashed here, once a minute at most
// or after a `track`, and reused by every slot that allows them.
//
// The first-decision module derives features from what is stored; events
// tracked before the full engine arrives are queued and handed to it
// (full.ts `behaviorOnto`); the full engine's calls (`keep`, restoring) are
// in full.ts.

import { behaviorLayout, type Core } from "./core.js";
import { plane } from "./engine.js";
import type { Encoded, Hasher } from "./features.js";
import type { BehaviorSpec, EventSpec } from "./spec.js";
import { checkEvent } from "./validate/behavior.js";

/** One tracked event, as the site passes it. Strings are 1 to 64 bytes; the time comes from the clock. */
export interface BehaviorEvent {
  /** `"view"`, `"click"`, `"convert"` or a type declared in `types`. */
  type: string;
  item?: string;
  category?: string;
  /** At most 8 tags. */
  tags?: string[];
  /** A finite number, e.g. an order total. */
  value?: number;
}

const MINUTE_MS = 60_000;

/** The behaviour store on a core. */
export class Behavior {
  core: Core;
  h: number;
  /** @internal */
  cache: { minute: number; tracked: number; enc: Encoded; named: Record<string, number | string> } | null = null;
  #tracked = 0;
  /** @internal Events tracked while on the first-decision module, for the full engine. */
  queued: Array<{ e: EventSpec; at: number }> = [];

  constructor(
    core: Core,
    readonly spec: BehaviorSpec,
    private readonly hasher: Hasher,
  ) {
    this.core = core;
    this.h = this.make(core);
  }

  /** @internal A new store on `core`; its handle. */
  make(core: Core): number {
    const [nums, types] = behaviorLayout(this.spec);
    core.nums(nums);
    return core.call("beh_new", [core.put(types)]);
  }

  /** Record an event at `now`. Throws `INVALID_EVENT` or `UNKNOWN_EVENT_TYPE`; nothing is stored then. */
  track(event: unknown, now: number): void {
    const e = checkEvent(event, this.spec);
    if (this.core.full) plane!.keep(this, e, now);
    else this.queued.push({ e, at: now });
    this.#tracked++;
  }

  /** The features at `now`, hashed, and by name; recomputed once a minute or after a `track`. */
  #derive(now: number): { enc: Encoded; named: Record<string, number | string> } {
    const minute = Math.floor(now / MINUTE_MS);
    const c = this.cache;
    if (c !== null && c.minute === minute && c.tracked === this.#tracked) return c;
    const n = this.core.call("beh_features", [this.h, now, new Date(now).getTimezoneOffset()]);
    const values = this.core.read(n);
    const lines = n === 0 ? [] : this.core.string(this.core.call("bytes_len", [])).split("\n");
    const pairs: number[] = [];
    const names: Array<string | null> = [];
    const entries: Array<[string, number | string]> = [];
    for (let i = 0; i < n; i++) {
      const line = lines[i] ?? "";
      const tab = line.indexOf("\t");
      const name = line.slice(0, tab);
      const cat = line.slice(tab + 1);
      const e = this.hasher.entry("behavior", name);
      if (cat === "") pairs.push(e.h, values[i]!);
      else pairs.push(this.hasher.value(e, cat), 1);
      names.push(name, cat === "" ? null : cat);
      entries.push([name, cat === "" ? values[i]! : cat]);
    }
    // Made at once: an object given ~35 properties one by one is a dictionary to V8, which copies it
    // (`features()`) a hundred times slower.
    const named = Object.fromEntries(entries);
    this.cache = { minute, tracked: this.#tracked, enc: { pairs, names }, named };
    return this.cache;
  }

  /** The `behavior` namespace, hashed, for the slots. */
  encoded(now: number): Encoded {
    return this.#derive(now).enc;
  }

  /** The `behavior` namespace by name, as the slots see it (the cached object: read it, never change it). */
  named(now: number): Record<string, number | string> {
    return this.#derive(now).named;
  }

  /** Retained events by type. */
  counts(): Record<string, number> {
    // The first-decision module holds no events: only the queued ones count.
    const n = this.core.full ? this.core.call("beh_counts", [this.h]) : 0;
    const counts = this.core.read(n);
    const types = n === 0 ? [] : this.core.string(this.core.call("bytes_len", [])).split("\n");
    // Own properties, whatever the type's name (`__proto__` too).
    const out: Record<string, number> = Object.fromEntries(Array.from({ length: n }, (_, i) => [types[i]!, counts[i]!]));
    for (const { e } of this.queued) out[e.type] = (out[e.type] ?? 0) + 1;
    return out;
  }

  /** Forget every event, here and queued. */
  clear(): void {
    if (this.core.full) this.core.call("beh_clear", [this.h]);
    this.queued = [];
    this.cache = null;
    this.#tracked++;
  }
}
