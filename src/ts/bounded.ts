// JSON text of a caller's value within a budget: at most `maxValues` values
// and `maxDepth` levels, object keys sorted when asked. A value over the
// budget, a cycle, or one that throws while read (a getter, a Proxy) gives
// null instead of hanging or throwing: `JSON.stringify` walks a sparse
// array of 2^32 - 1 holes one by one. Used by the optional entries to key
// decisions by context and to copy a payload.

/** `value` as JSON text (toJSON applied, undefined, functions and symbols left out as JSON does), or null. */
export function boundedJson(value: unknown, maxValues: number, maxDepth: number, sortKeys = false): string | null {
  let left = maxValues;
  const seen = new Set<object>();
  const walk = (v: unknown, key: string, depth: number): string | undefined => {
    if (--left < 0 || depth > maxDepth) throw OVER;
    if (v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
      v = (v as { toJSON: (k: string) => unknown }).toJSON(key);
    }
    switch (typeof v) {
      case "string":
        return JSON.stringify(v);
      case "number":
        return Number.isFinite(v) ? String(v) : "null";
      case "boolean":
        return v ? "true" : "false";
      case "bigint":
        throw OVER;
      case "object":
        break;
      default:
        return undefined;
    }
    if (v === null) return "null";
    if (seen.has(v)) throw OVER;
    seen.add(v);
    let out: string;
    if (Array.isArray(v)) {
      const n = v.length;
      if (!Number.isSafeInteger(n) || n > left) throw OVER;
      const items: string[] = [];
      for (let i = 0; i < n; i++) items.push(walk(v[i], String(i), depth + 1) ?? "null");
      out = `[${items.join(",")}]`;
    } else {
      const keys = Object.keys(v);
      if (keys.length > left) throw OVER;
      if (sortKeys) keys.sort();
      const items: string[] = [];
      for (const k of keys) {
        const x = walk((v as Record<string, unknown>)[k], k, depth + 1);
        if (x !== undefined) items.push(`${JSON.stringify(k)}:${x}`);
      }
      out = `{${items.join(",")}}`;
    }
    seen.delete(v);
    return out;
  };
  try {
    return walk(value, "", 0) ?? null;
  } catch {
    return null;
  }
}

const OVER = new Error("over budget");

/**
 * A key for caching what was decided for `v` (a context): its values with keys sorted, so equal
 * contexts built anew share a key; one of its own for a value JSON cannot hold within bounds.
 */
export function keyOf(v: unknown): string {
  return boundedJson(v ?? null, 10_000, 32, true) ?? String(Math.random());
}
