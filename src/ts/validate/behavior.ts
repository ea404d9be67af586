// The behaviour store's retention options and each tracked event: the Rust
// core's `BehaviorConfig::from_json` and `read_event`, with the same fields,
// defaults and messages.

import { describe, fail } from "../errors.js";
import { utf8Length } from "../hash.js";
import type { BehaviorSpec, EventSpec } from "../spec.js";
import { byBytes, EVENT, guard, Obj, OPTION, text, within } from "./read.js";

/** Event types every store accepts; sites declare more in `types`. */
export const BUILTIN_TYPES: readonly string[] = ["view", "click", "convert"];
/** Longest item, category or tag, in bytes. */
const MAX_NAME = 64;
const MAX_TAGS = 8;
const MAX_TYPES = 16;
/** Tags read before the count is checked (repeats count once, so a few more than 8 may be fine). */
const MAX_TAG_ITEMS = 1024;
/** A custom type: 1 to 32 letters, digits, `_` or `-`. */
const TYPE = /^[A-Za-z0-9_-]{1,32}$/;

const BEHAVIOR_KEYS = ["maxAgeDays", "maxEvents", "maxBytes", "sessionGapMinutes", "types"] as const;

/**
 * Check retention options (`{ maxAgeDays?, maxEvents?, maxBytes?,
 * sessionGapMinutes?, types? }`); `path` prefixes field names in errors
 * (`behavior` inside `open()`'s options). `undefined` reads as `{}`.
 */
export function checkBehavior(options: unknown, path = ""): BehaviorSpec {
  return guard(OPTION, path || "options", () => {
    const o = Obj.of(options ?? {}, path, OPTION, BEHAVIOR_KEYS, path || "options");
    const maxAgeDays = o.num("maxAgeDays");
    const maxEvents = o.int("maxEvents", 1, 5000) ?? 500;
    const maxBytes = o.int("maxBytes", 256, 256 << 10) ?? 16 << 10;
    const gap = o.num("sessionGapMinutes");
    const many = (n: number) => `should hold at most ${MAX_TYPES} types, but holds ${n}`;
    const types = (o.list("types", MAX_TYPES, many) ?? []).map((t, i) => text(t, o.field(`types[${i}]`), OPTION));
    types.forEach((s, i) => {
      if (!TYPE.test(s) || BUILTIN_TYPES.includes(s)) {
        throw o.err(`types[${i}]`, `should be 1 to 32 letters, digits, \`_\` or \`-\`, and not a built-in type, but is ${describe(s)}`);
      }
    });
    return {
      maxAgeDays: maxAgeDays === undefined ? 30 : within(maxAgeDays, 0, 400, o.field("maxAgeDays"), OPTION, true),
      maxEvents,
      maxBytes,
      sessionGapMinutes: gap === undefined ? 30 : within(gap, 1, 1440, o.field("sessionGapMinutes"), OPTION),
      types: [...new Set(types)].sort(byBytes),
    };
  });
}

const EVENT_KEYS = ["type", "item", "category", "tags", "value"] as const;

/** A 1 to 64 byte name. */
function name(s: string, field: string): string {
  const n = utf8Length(s);
  if (n === 0 || n > MAX_NAME) throw EVENT(field, `should be 1 to ${MAX_NAME} bytes, but is ${n} bytes`);
  return s;
}

/**
 * Check one tracked event (`{ type, item?, category?, tags?, value? }`)
 * against the store's declared types: `INVALID_EVENT` naming the field, or
 * `UNKNOWN_EVENT_TYPE`. Repeated tags count once.
 */
export function checkEvent(event: unknown, spec: BehaviorSpec): EventSpec {
  return guard(EVENT, "event", () => {
    const o = Obj.of(event ?? {}, "", EVENT, EVENT_KEYS, "event");
    const type = o.str("type");
    if (type === undefined) throw o.err("type", "is required");
    if (!BUILTIN_TYPES.includes(type) && !spec.types.includes(type)) {
      throw fail("UNKNOWN_EVENT_TYPE", `event type ${describe(type)} is not view, click, convert or a type declared in \`types\``);
    }
    const named = (key: string) => {
      const s = o.str(key);
      return s === undefined ? null : name(s, key);
    };
    const item = named("item");
    const category = named("category");
    const tags: string[] = [];
    const many = (n: number) => `should hold at most ${MAX_TAGS} tags, but holds ${n}`;
    (o.list("tags", MAX_TAG_ITEMS, many) ?? []).forEach((t, i) => {
      const tag = name(text(t, `tags[${i}]`, EVENT), `tags[${i}]`);
      if (!tags.includes(tag)) tags.push(tag);
    });
    if (tags.length > MAX_TAGS) throw o.err("tags", many(tags.length));
    // `null` is what NaN and ±Infinity used to become: not a missing value.
    const value = o.finite("value");
    return {
      type,
      item,
      category,
      tags,
      value: value === undefined ? null : value === 0 ? 0 : value,
    };
  });
}
