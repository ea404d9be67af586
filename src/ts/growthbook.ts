// Migration from GrowthBook (`insitu/growthbook`): the experiment rules of a
// GrowthBook SDK payload as insitu experiment configs that hash as GrowthBook
// does (`growthbook/1` or `growthbook/2`, the same seeds, coverage,
// contiguous weight ranges and namespaces), so every unit keeps its
// variation. A rule that cannot be served exactly so is listed with the
// reason, never dropped in silence. Its own file of the package; it imports
// the entry only for InsituError.

import { InsituError } from "./index.js";
import { boundedJson } from "./bounded.js";
import type { Assignment } from "./experiments.js";
import type { ExperimentConfig, TargetingCondition } from "./types.js";

/** A GrowthBook feature rule, as the SDK payload holds it (only what the migration reads). */
export interface GrowthBookRule {
  id?: string;
  condition?: Record<string, unknown>;
  parentConditions?: unknown[];
  force?: unknown;
  variations?: unknown[];
  weights?: number[];
  key?: string;
  hashAttribute?: string;
  fallbackAttribute?: string;
  hashVersion?: number;
  range?: unknown;
  ranges?: unknown[];
  coverage?: number;
  namespace?: [string, number, number];
  meta?: Array<{ key?: string; name?: string; passthrough?: boolean }>;
  filters?: unknown[];
  seed?: string;
  contextualBanditRef?: string;
  disableStickyBucketing?: boolean;
  bucketVersion?: number;
  minBucketVersion?: number;
  [other: string]: unknown;
}

/** A GrowthBook SDK payload (`{ features }`, as its API or `getPayload()` gives it). */
export interface GrowthBookPayload {
  features?: Record<string, { defaultValue?: unknown; rules?: GrowthBookRule[] }>;
  [other: string]: unknown;
}

/** A feature served by a migrated experiment: its value is `values[variant]` in the experiment, else `defaultValue`. */
export interface MigratedFeature {
  experiment: string;
  defaultValue: unknown;
  values: Record<string, unknown>;
}

export interface Migration {
  /** For `site.experiments()`. */
  experiments: ExperimentConfig[];
  /** Each migrated feature and how its value follows the assignment. */
  features: Record<string, MigratedFeature>;
  /**
   * The attribute every migrated experiment hashes by (GrowthBook's `hashAttribute`, default `id`):
   * pass its value to `site.setUnit(String(value))` (or `open({ unit })`) so units land where GrowthBook put them.
   */
  unit: string | null;
  /** Rules left out, each with why. */
  skipped: Array<{ feature: string; rule: number; reason: string }>;
  /** Mapped rules whose behaviour differs in a way the site should know of. */
  notes: Array<{ feature: string; rule: number; note: string }>;
}

/** Keys, variant ids and targeting attribute paths insitu takes (src/ts/validate/experiments.ts `NAME`). */
const ID = /^[A-Za-z0-9_\-.:/]{1,64}$/;
/** insitu's limits on an experiment (src/ts/validate/experiments.ts): tests and `in` values, bytes of a seed or string value. */
const MAX_CONDITIONS = 32;
const MAX_TEXT = 256;
const MAX_EXPERIMENTS = 256;
/** Most values a payload may hold (a large GrowthBook payload has tens of thousands). */
const MAX_PAYLOAD_VALUES = 2_000_000;
const bytes = (s: string): number => new TextEncoder().encode(s).length;

/**
 * The experiment rules of a GrowthBook payload as insitu experiments. Each feature's first rule
 * is migrated when it is an experiment rule (a later rule runs in GrowthBook only for units the
 * rules before it left out, which independent insitu experiments cannot reproduce); force and
 * rollout rules are feature overrides, not experiments. Never throws for a payload of any shape.
 */
export function experimentsFromGrowthBook(payload: GrowthBookPayload): Migration {
  const out: Migration = { experiments: [], features: {}, unit: null, skipped: [], notes: [] };
  // A payload is JSON: read it once as JSON, so getters, Proxies or later changes cannot reach the mapping.
  const text = boundedJson(payload ?? null, MAX_PAYLOAD_VALUES, 64);
  if (text === null) {
    out.skipped.push({ feature: "", rule: -1, reason: `the payload cannot be read as JSON (a cycle, a BigInt, a getter that throws, or over ${MAX_PAYLOAD_VALUES} values)` });
    return out;
  }
  const data: unknown = JSON.parse(text);
  const features = isRecord(data) && isRecord(data.features) ? data.features : {};
  if (isRecord(data) && data.encryptedFeatures !== undefined && !isRecord(data.features)) {
    out.skipped.push({ feature: "", rule: -1, reason: "the features are encrypted (encryptedFeatures): decrypt the payload first" });
  }
  const byKey = new Map<string, string>();
  for (const [feature, def] of Object.entries(features)) {
    const rules = isRecord(def) && Array.isArray(def.rules) ? def.rules : [];
    rules.forEach((rule, i) => {
      const skip = (reason: string) => out.skipped.push({ feature, rule: i, reason });
      if (!isRecord(rule)) return skip("is not an object");
      if (!Array.isArray(rule.variations)) {
        return skip("is a force or rollout rule (a feature override), not an experiment");
      }
      if (i > 0) {
        return skip(`follows rule ${i - 1}, which GrowthBook evaluates first; insitu runs each experiment on its own`);
      }
      const r = mapRule(feature, rule as GrowthBookRule);
      if (typeof r === "string") return skip(r);
      const { config, values, hashAttribute, notes } = r;
      if (out.unit !== null && hashAttribute !== out.unit) {
        return skip(`hashes by \`${hashAttribute}\`, the others by \`${out.unit}\`: a site has one unit`);
      }
      const same = byKey.get(config.key);
      if (same !== undefined && same !== JSON.stringify(config)) {
        return skip(`experiment \`${config.key}\` is configured differently by another feature`);
      }
      const ns = config.namespace;
      const clash = ns && out.experiments.find((e) => e.key !== config.key && e.namespace?.name === ns.name
        && e.namespace.range[0] < ns.range[1] && ns.range[0] < e.namespace.range[1]);
      if (clash) return skip(`overlaps experiment \`${clash.key}\` in namespace \`${ns!.name}\`, which insitu refuses`);
      if (same === undefined && out.experiments.length >= MAX_EXPERIMENTS) {
        return skip(`would be experiment ${MAX_EXPERIMENTS + 1}; a site takes at most ${MAX_EXPERIMENTS}`);
      }
      out.unit = hashAttribute;
      if (same === undefined) {
        byKey.set(config.key, JSON.stringify(config));
        out.experiments.push(config);
      }
      out.features[feature] = { experiment: config.key, defaultValue: isRecord(def) ? def.defaultValue : undefined, values };
      for (const note of notes) out.notes.push({ feature, rule: i, note });
      if (rules.length > 1) out.notes.push({ feature, rule: i, note: "units outside the experiment get `defaultValue`; the feature's later rules are not migrated" });
    });
  }
  return out;
}

/** The site calls this needs: `setUnit` and `run` (a site of `load()` or `open()`). */
export interface MigratedSite {
  setUnit(unit: string | null): void;
  run(key: string, options?: { attributes?: Record<string, unknown> }): Assignment;
}

/**
 * The unit GrowthBook would hash `attributes` by: the hash attribute's value as text, or null when
 * it is missing, empty, 0 or false (GrowthBook leaves such a user out of every experiment).
 */
export function unitFor(migration: Migration, attributes: Record<string, unknown>): string | null {
  try {
    const v = typeof migration?.unit !== "string" ? undefined : attributes?.[migration.unit];
    return v === undefined || v === null || v === "" || v === 0 || v === false || (typeof v === "number" && Number.isNaN(v)) ? null : String(v);
  } catch {
    return null; // an attribute that cannot be read or written as text: no unit, as for a missing one
  }
}

/**
 * A migrated feature's value for a user, as GrowthBook's `getFeatureValue` gives it: the site's unit
 * set from the hash attribute, the experiment run with the attributes, its variation's value in
 * the experiment, `defaultValue` outside it (and for a user GrowthBook leaves out, without running
 * it). Throws what `run` throws, and `UNKNOWN_EXPERIMENT` for a feature the migration does not hold.
 */
export function featureValue(site: MigratedSite, migration: Migration, feature: string, attributes: Record<string, unknown>): { value: unknown; assignment: Assignment | null } {
  const f = typeof feature === "string" && Object.hasOwn(migration.features, feature) ? migration.features[feature] : undefined;
  if (f === undefined) throw new InsituError("UNKNOWN_EXPERIMENT", `feature ${typeof feature === "string" ? `\`${feature.slice(0, 64)}\`` : `(a ${typeof feature})`} has no migrated experiment`);
  const unit = unitFor(migration, attributes);
  if (unit === null) return { value: f.defaultValue, assignment: null };
  site.setUnit(unit);
  const a = site.run(f.experiment, { attributes });
  return { value: a.inExperiment ? f.values[a.variant] : f.defaultValue, assignment: a };
}

/** One experiment rule as a config, or why it cannot be. */
function mapRule(feature: string, r: GrowthBookRule): string | { config: ExperimentConfig; values: Record<string, unknown>; hashAttribute: string; notes: string[] } {
  const variations = r.variations!;
  const n = variations.length;
  if (n < 2 || n > 32) return `has ${n} variations; insitu experiments have 2 to 32`;
  for (const [field, why] of [
    ["parentConditions", "prerequisite features"],
    ["filters", "filters"],
    ["ranges", "explicit bucket ranges"],
    ["fallbackAttribute", "a fallback hash attribute"],
    ["contextualBanditRef", "a contextual bandit"],
  ] as const) {
    if (r[field] !== undefined && !(Array.isArray(r[field]) && (r[field] as unknown[]).length === 0)) return `uses ${why} (\`${field}\`), which insitu cannot reproduce`;
  }
  const key = r.key ?? feature;
  if (typeof key !== "string" || !ID.test(key)) return `experiment key ${JSON.stringify(key)} is not 1 to 64 letters, digits, _ - . : /`;
  const hashVersion = r.hashVersion ?? 1;
  if (hashVersion !== 1 && hashVersion !== 2) return `hash version ${String(hashVersion)} puts no unit in the experiment in GrowthBook`;
  const seed = r.seed ?? key;
  if (typeof seed !== "string" || seed === "" || bytes(seed) > MAX_TEXT || seed.includes("\0")) return `its seed is not 1 to ${MAX_TEXT} bytes without NUL`;
  const hashAttribute = r.hashAttribute ?? "id";
  if (typeof hashAttribute !== "string" || hashAttribute === "") return "its hash attribute is not a name";

  // Variant ids: the variations' meta keys when they are ids and unique, else their indices.
  const metaKeys = Array.isArray(r.meta) ? r.meta.map((m) => (isRecord(m) ? m.key : undefined)) : [];
  const variants = metaKeys.length === n && metaKeys.every((k) => typeof k === "string" && ID.test(k)) && new Set(metaKeys).size === n
    ? (metaKeys as string[])
    : variations.map((_, j) => String(j));

  // Weights as GrowthBook reads them: equal unless there are n of them summing to 1 within 0.01.
  let weights = Array.isArray(r.weights) && r.weights.length === n && r.weights.every((w) => typeof w === "number" && Number.isFinite(w)) ? r.weights : null;
  const total = weights?.reduce((a, b) => a + b, 0) ?? 1;
  if (weights === null || total < 0.99 || total > 1.01) weights = variations.map(() => 1 / n);
  else if (Math.abs(total - 1) > 1e-6) return `its weights sum to ${total}: GrowthBook uses them as given, insitu needs a sum of 1`;
  else if (weights.some((w) => w < 0)) return "it has a negative weight";

  if (Array.isArray(r.meta) && r.meta.some((m) => isRecord(m) && m.passthrough === true)) {
    return "has a passthrough variation (its users count as outside the experiment in GrowthBook)";
  }
  if (r.coverage !== undefined && (typeof r.coverage !== "number" || !Number.isFinite(r.coverage))) return "its coverage is not a number";
  const coverage = Math.min(1, Math.max(0, r.coverage ?? 1));
  const config: ExperimentConfig = { key, variants, weights, coverage, hash: hashVersion === 2 ? "growthbook/2" : "growthbook/1", seed, fallback: variants[0]! };
  if (r.namespace !== undefined) {
    const [name, start, end] = Array.isArray(r.namespace) ? r.namespace : [];
    if (typeof name !== "string" || !ID.test(name) || typeof start !== "number" || typeof end !== "number" || !(0 <= start && start < end && end <= 1)) {
      return "its namespace is not [name, start, end] with 0 <= start < end <= 1";
    }
    config.namespace = { name, range: [start, end] };
  }
  const notes: string[] = [];
  if (r.condition !== undefined) {
    const t = targeting(r.condition, "");
    if (typeof t === "string") return `its condition ${t}`;
    if (t.length > MAX_CONDITIONS) return `its condition makes ${t.length} tests; insitu takes at most ${MAX_CONDITIONS}`;
    const long = t.find((c) => ("in" in c && c.in.length > MAX_CONDITIONS) || [..."equals" in c ? [c.equals] : [], ..."in" in c ? c.in : []].some((x) => typeof x === "string" && bytes(x) > MAX_TEXT));
    if (long) return `its condition on \`${long.attribute}\` lists over ${MAX_CONDITIONS} values or a value over ${MAX_TEXT} bytes`;
    if (t.length > 0) {
      config.targeting = t;
      const named = t.filter((c) => !("exists" in c)).map((c) => `\`${c.attribute}\``);
      if (named.length > 0) {
        notes.push(`GrowthBook coerces types and reads a missing attribute as null (so \`$lt: 5\` and \`== 0\` match a user without it); insitu compares strictly and a missing attribute fails: pass ${named.join(", ")} to \`run\` on every user, with the condition's types`);
      }
      const lists = t.filter((c) => "in" in c).map((c) => `\`${c.attribute}\``);
      if (lists.length > 0) {
        notes.push(`${lists.join(", ")} must be a single value: GrowthBook's \`$in\` also matches a list holding one of the values, insitu's does not`);
      }
    }
  }
  if (r.bucketVersion !== undefined || r.minBucketVersion !== undefined || r.disableStickyBucketing !== undefined) {
    notes.push("GrowthBook's sticky bucketing is not migrated: a unit is placed by the hash, as in GrowthBook without a sticky bucket service");
  }
  const values: Record<string, unknown> = {};
  variants.forEach((v, j) => (values[v] = variations[j]));
  return { config, values, hashAttribute, notes };
}

/** A GrowthBook condition as insitu targeting conditions, or what cannot be mapped. */
function targeting(cond: unknown, at: string): TargetingCondition[] | string {
  if (!isRecord(cond)) return `${at}is not an object`;
  const out: TargetingCondition[] = [];
  for (const [k, v] of Object.entries(cond)) {
    if (k === "$and" && Array.isArray(v)) {
      for (const part of v) {
        const t = targeting(part, at);
        if (typeof t === "string") return t;
        out.push(...t);
      }
      continue;
    }
    if (k.startsWith("$")) return `uses \`${k}\`, which insitu targeting has no equivalent of`;
    const t = attribute(k, v);
    if (typeof t === "string") return t;
    out.push(...t);
  }
  return out;
}

const primitive = (v: unknown): v is string | number | boolean => typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v));

function attribute(name: string, v: unknown): TargetingCondition[] | string {
  if (!ID.test(name)) return `names attribute ${JSON.stringify(name)}, which insitu targeting cannot (1 to 64 letters, digits, _ . : / -)`;
  if (name === "behavior" || name.startsWith("behavior.")) return `names \`${name}\`, which insitu reads from its behaviour store, not from the attributes`;
  if (primitive(v)) return [{ attribute: name, equals: v }];
  if (!isRecord(v) || Object.keys(v).length === 0 || !Object.keys(v).every((op) => op.startsWith("$"))) {
    return `compares \`${name}\` with ${JSON.stringify(v)} as JSON, which insitu targeting cannot`;
  }
  const out: TargetingCondition[] = [];
  const { $gte, $lt, ...rest } = v;
  if ($gte !== undefined || $lt !== undefined) {
    if (($gte !== undefined && typeof $gte !== "number") || ($lt !== undefined && typeof $lt !== "number")) {
      return `compares \`${name}\` with a range of non-numbers`;
    }
    if (typeof $gte === "number" && typeof $lt === "number" && !($gte < $lt)) return `compares \`${name}\` with an empty range`;
    if (![$gte, $lt].every((x) => x === undefined || Number.isFinite(x))) return `compares \`${name}\` with a range that is not finite`;
    out.push({ attribute: name, range: [($gte as number | undefined) ?? null, ($lt as number | undefined) ?? null] });
  }
  for (const [op, x] of Object.entries(rest)) {
    if (op === "$eq" && primitive(x)) out.push({ attribute: name, equals: x });
    else if (op === "$in" && Array.isArray(x) && x.length > 0 && x.every(primitive)) out.push({ attribute: name, in: x });
    else if (op === "$exists" && typeof x === "boolean") out.push({ attribute: name, exists: x });
    else return `uses \`${op}\` on \`${name}\`, which insitu targeting has no equivalent of`;
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
