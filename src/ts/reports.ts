// Reports (issue #22): a slot's or an experiment's `reports` option
// checked, its statistics turned on and off with consent, synced into the
// snapshot with the rest of the site, and each closed period handed to the
// site's `onReport` once the snapshot that records it in the ledger is
// written. A slot's statistics are counted by its engine; an experiment's
// by a tally of its own, fed with what `run` and `rewardExperiment`
// counted (`Experiments.reported`). Only the full
// engine makes reports, so this ships in full.js; like full.ts it imports
// no value from the entry's modules (what it needs comes in `attachReports`).
//
// Nothing here sends anything: a report is a plain object passed to the
// site's callback, as exposures are.

import type { Audit } from "./audit.js";
import type { Core } from "./core.js";
import type * as Errors from "./errors.js";
import type { InsituError } from "./errors.js";
import type { Site } from "./site.js";
import type { Learner } from "./slot.js";
import type { Report, ReportGroup } from "./types.js";
import type * as Read from "./validate/read.js";

/** A slot's `reports`, checked. */
export interface ReportSpec {
  task: string;
  periodDays: number;
  learning: boolean;
  scale: number;
  bounds: { decisions: number; exposures: number; rewards: number; xy: number; xx: number };
  segment: string | null;
  /** Variants and hashed slots of a report (slots 0 without `learning`). */
  variants: number;
  slots: number;
  /** An experiment's (counts only), not a slot's. */
  experiment: boolean;
}

/** What this file uses of the entry's. */
export interface ReportKit {
  fail: typeof Errors.fail;
  coded: typeof Errors.coded;
  option: typeof Errors.option;
  describe: typeof Errors.describe;
  Obj: typeof Read.Obj;
  /** FNV-1a of a string (hash.ts). */
  fnv: (s: string) => number;
}

let k: ReportKit;

/** Called once by full.ts's `attach`. */
export function attachReports(kit: ReportKit): void {
  k = kit;
}

const KEYS = ["task", "periodDays", "learning", "scale", "bounds", "segment"] as const;
const BOUND_KEYS = ["decisions", "exposures", "rewards", "xy", "xx"] as const;
/** The defaults: a report of up to 20 decisions; with normalized features (the default) each update adds 1 to X'X. */
const DEFAULT_BOUNDS = { decisions: 20, exposures: 20, rewards: 20, xy: 40, xx: 20 };
const TASK = /^[A-Za-z0-9._~:-]{1,256}$/;
const SEGMENT = /^[A-Za-z0-9._-]{1,64}$/;
/** The core's limits (src/report): variants × slots, bits per entry, the scale. */
const MAX_ENTRIES = 4096;
const MAX_BITS = 32;
const MAX_SCALE = 2 ** 20;
/** The groups in the measurement's order (bit i of a clipped mask is GROUPS[i]). */
const GROUPS: readonly ReportGroup[] = ["reports", "decisions", "exposures", "rewards", "xy", "xx"];
const OUTCOMES = ["", "reported", "refused-duplicate", "refused-non-finite", "dropped-features-changed"] as const;
const DAY_MS = 86_400_000;

/**
 * Check a slot's `reports` (as copied by the entry) for `variants` variants
 * and `2^bits` hashed slots. Throws `INVALID_OPTION` naming the field.
 */
export function checkReports(raw: unknown, variants: number, bits: number, experiment = false): ReportSpec {
  if (raw instanceof Error) throw raw;
  const o = k.Obj.of(raw, "reports", k.option, KEYS);
  if (experiment && o.bool("learning")) throw o.err("learning", "does not apply to an experiment, whose reports hold counts only");
  const task = o.str("task");
  if (task === undefined || !TASK.test(task)) {
    throw o.err("task", `should be 1 to 256 letters, digits, \`.\`, \`_\`, \`~\`, \`:\` or \`-\`, but is ${k.describe(task)}`);
  }
  const periodDays = o.int("periodDays", 1, 366) ?? 1;
  const learning = !experiment && (o.bool("learning") ?? true);
  const scale = o.int("scale", 1, MAX_SCALE) ?? 256;
  const b = o.obj("bounds", BOUND_KEYS);
  const bounds = { ...DEFAULT_BOUNDS };
  for (const key of BOUND_KEYS) {
    const x = key === "decisions" || key === "exposures" ? b?.int(key, 1, 2 ** 32 - 1) : b?.finite(key);
    if (x === undefined) continue;
    if (!(x * scale >= 1)) throw k.option(`reports.bounds.${key}`, `should be at least 1/scale = ${1 / scale}, but is ${k.describe(x)}`);
    bounds[key] = x;
  }
  const segment = o.str("segment") ?? null;
  if (segment !== null && !SEGMENT.test(segment)) {
    throw o.err("segment", `should be 1 to 64 letters, digits, \`.\`, \`_\` or \`-\` (a coarse label, never an identifier), but is ${k.describe(segment)}`);
  }
  const slots = learning ? 2 ** bits : 0;
  if (variants * slots > MAX_ENTRIES) {
    throw k.option("reports.learning", `needs variants × 2^bits at most ${MAX_ENTRIES}, but has ${variants} × ${slots}: use fewer \`features.bits\`, or \`learning: false\``);
  }
  const spec: ReportSpec = { task, periodDays, learning, scale, bounds, segment, variants, slots, experiment };
  // Every cap must fit the core's 32 bits (an infinite one would print as "Infinity", 8 characters).
  if (!(Math.max(...caps(spec)) < 2 ** MAX_BITS)) {
    throw k.option("reports.bounds", `times the scale should stay below 2^${MAX_BITS} per group, but the largest is ${Math.max(...caps(spec))}`);
  }
  return spec;
}

/** Caps of each group in encoded units (the core's `Spec::cap`). */
const caps = (s: ReportSpec): number[] => {
  const real = (b: number): number => Math.floor(b * s.scale);
  const c = [1, s.bounds.decisions, s.bounds.exposures, real(s.bounds.rewards)];
  return s.slots > 0 ? [...c, real(s.bounds.xy), real(s.bounds.xx)] : c;
};

/** Bits per entry: the fewest that hold the largest cap (the core's `Spec::bits`). */
const bitsOf = (s: ReportSpec): number => Math.max(...caps(s)).toString(2).length;

/** The UTC date of a period's first day. */
const dateOf = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10);

/** Each slot's checked `reports` (null: none, or refused), by learner. */
const specs = new WeakMap<Learner, ReportSpec | null>();
/** An experiment's tally: its handle on the full engine, its checked `reports`, feature space (its variants) and what both were made from. */
interface AbTally {
  h: number;
  spec: ReportSpec;
  space: string;
  made: string;
}
/** Each site's experiment tallies by key (`h` 0: `reports` refused). */
const abTallies = new WeakMap<Site, Map<string, AbTally>>();

/** What a sync found, for the commit: whose it was, and the refusal to report. */
interface Synced {
  name: string;
  /** The slot's learner, or the experiment's tally. */
  of: Learner | AbTally;
  refused: InsituError | null;
  notes: Array<{ outcome: number; period: number }>;
}
const synced = new WeakMap<Site, Synced[]>();

/** The slot's checked `reports`, checked once; a refused one goes to `onError`, and the slot makes no reports. */
function specOf(site: Site, name: string, l: Learner): ReportSpec | null {
  let s = specs.get(l);
  if (s !== undefined) return s;
  s = null;
  if (l.p.spec.reports !== undefined) {
    try {
      s = claim(site, `slot \`${name}\``, checkReports(l.p.spec.reports, l.p.k, l.p.spec.features.bits));
    } catch (e) {
      const err = k.coded(e, "INVALID_OPTION");
      site.report(err.code, `slot \`${name}\` makes no reports: ${err.message}`, e);
    }
  }
  specs.set(l, s);
  return s;
}

/** Each site's task ids and whose they are: one task, one owner (a device sends one report per task and period). */
const tasks = new WeakMap<Site, Map<string, string>>();

/** `s`, its task now `who`'s; `INVALID_OPTION` when another slot or experiment of the site reports to it. */
function claim(site: Site, who: string, s: ReportSpec): ReportSpec {
  let owners = tasks.get(site);
  if (owners === undefined) tasks.set(site, (owners = new Map()));
  const had = owners.get(s.task);
  if (had !== undefined && had !== who) {
    throw k.option("reports.task", `${k.describe(s.task)} is already ${had}'s: each slot and experiment needs a task of its own (a device sends one report per task and period)`);
  }
  owners.set(s.task, who);
  return s;
}

/** Turn slot `name`'s reports on when it has them and consent allows `personalization` (the full engine only). */
export function reportsOn(site: Site, name: string): void {
  const l = site.slots.get(name);
  if (l === undefined || !l.core.full || !site.consentState.allows("personalization")) return;
  const s = specOf(site, name, l);
  if (s === null) return;
  try {
    l.core.call("report_on", [l.h, s.periodDays, s.learning ? 1 : 0]);
  } catch (e) {
    const err = k.coded(e, "INVALID_OPTION");
    site.report(err.code, `slot \`${name}\` makes no reports: ${err.message}`, e);
    specs.set(l, null);
  }
}

/** Turn every slot's reports off, dropping what they had not stored (consent below `personalization`). */
export function reportsOff(site: Site): void {
  synced.delete(site);
  for (const t of abTallies.get(site)?.values() ?? []) drop(site.core, t.h);
  abTallies.delete(site);
  for (const l of site.slots.values()) {
    if (!l.core.full || !specs.get(l)) continue;
    try {
      l.core.call("report_off", [l.h]);
    } catch {
      // A poisoned core keeps nothing to report.
    }
  }
}

/**
 * Merge slot `name`'s report statistics onto the snapshot `bytes` (the
 * slot's own section already merged) at `now`; the snapshot to write.
 * `close`: this write holds the site's lock and read the newest data, so
 * it may close an ended period (no other write does: two tabs must never
 * both close one). A failure goes to `onError` and leaves `bytes` as they
 * were: the slot's statistics wait for the next write, and nothing else
 * of the snapshot is held back.
 */
export function syncReport(site: Site, name: string, l: Learner, bytes: Uint8Array, now: number, close: boolean): Uint8Array {
  // On, if consent came back (from another tab) since they were turned off.
  reportsOn(site, name);
  const s = specs.get(l);
  if (!s || !site.consentState.allows("personalization")) return bytes;
  // The variants' ids belong to the statistics' space too (the core knows variants by index only).
  const ids = `/${k.fnv(l.p.ids.join("\n")).toString(16)}`;
  return merge(site, "slot", name, l, s, bytes, [name, s.task, ids], (lens) =>
    site.core.call("report_sync", [l.h, lens[0]!, lens[1]!, lens[2]!, bytes.length, now, site.spec.maxBytes, close ? 1 : 0]));
}

/**
 * Merge every experiment's report statistics onto `bytes`, as `syncReport`
 * does a slot's: their tallies made or remade as the experiments' `reports`
 * say, then given what `run` and `rewardExperiment` counted.
 */
export function syncExperimentReports(site: Site, bytes: Uint8Array, now: number, close: boolean): Uint8Array {
  for (const [key, t] of experimentTallies(site)) {
    if (t.h === 0) continue;
    bytes = merge(site, "experiment", key, t, t.spec, bytes, [key, t.spec.task, t.space], (lens) =>
      site.core.call("tally_sync", [t.h, lens[0]!, lens[1]!, lens[2]!, bytes.length, now, site.spec.maxBytes, close ? 1 : 0]));
  }
  return bytes;
}

/**
 * Each experiment's tally, made (or remade, when its variants changed) as
 * its `reports` say, under consent `personalization` on the full engine;
 * then what `run` and `rewardExperiment` counted goes into them.
 */
function experimentTallies(site: Site): Map<string, AbTally> {
  const c = site.core;
  if (!c.full || !site.consentState.allows("personalization")) return new Map();
  let tallies = abTallies.get(site);
  if (tallies === undefined) abTallies.set(site, (tallies = new Map()));
  const live = new Set<string>();
  for (const e of site.ab.specs) {
    if (e.reports === undefined) continue;
    live.add(e.key);
    const space = `ab1-${e.variants.length}-${k.fnv(e.variants.join("\n")).toString(16)}`;
    // Made again when the variants or the options change (a refused option is tried again then).
    const made = `${space}\n${JSON.stringify(e.reports)}`;
    const had = tallies.get(e.key);
    if (had?.made === made) continue;
    if (had) drop(c, had.h);
    try {
      const spec = claim(site, `experiment \`${e.key}\``, checkReports(e.reports, e.variants.length, 0, true));
      tallies.set(e.key, { h: c.call("tally_new", [e.variants.length, spec.periodDays]), spec, space, made });
    } catch (err) {
      const x = k.coded(err, "INVALID_OPTION");
      site.report(x.code, `experiment \`${e.key}\` makes no reports: ${x.message}`, err);
      tallies.set(e.key, { h: 0, spec: null!, space, made });
    }
  }
  for (const [key, t] of tallies) {
    if (live.has(key)) continue;
    drop(c, t.h);
    tallies.delete(key);
  }
  for (const [key, kind, arm, value] of site.ab.reported) {
    const t = tallies.get(key);
    if (!t?.h) continue;
    try {
      c.call("tally_add", [t.h, kind, arm, value]);
    } catch {
      // A variant the experiment no longer has (it was reconfigured): not counted.
    }
  }
  site.ab.reported = [];
  return tallies;
}

/** Free an experiment's tally (0: none). */
function drop(c: Core, h: number): void {
  if (h === 0) return;
  try {
    c.call("tally_drop", [h]);
  } catch {
    // A poisoned core: nothing to free.
  }
}

/**
 * One report sync of `kind` `name` (`of`: a slot's learner or an
 * experiment's tally) onto `bytes`: `texts` and the bytes go into the
 * core's buffer, the specification into `io`, then `call` (given the
 * texts' lengths) runs the sync. What it found is kept for the commit; the
 * snapshot to write is returned. A failure goes to `onError` and leaves
 * `bytes` as they were.
 */
function merge(
  site: Site,
  kind: "slot" | "experiment",
  name: string,
  of: Learner | AbTally,
  s: ReportSpec,
  bytes: Uint8Array,
  texts: string[],
  call: (lens: number[]) => number,
): Uint8Array {
  const c = site.core;
  try {
    const enc = new TextEncoder();
    const parts = texts.map((t) => enc.encode(t));
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, bytes.length));
    let at = 0;
    for (const p of [...parts, bytes]) {
      all.set(p, at);
      at += p.length;
    }
    c.put(all);
    const b = s.bounds;
    c.nums([s.scale, b.decisions, b.exposures, b.rewards, b.xy, b.xx]);
    const out = c.bytes(call(parts.map((p) => p.length)));
    const n = c.read(4)[3]!;
    const io = c.read(4 + 2 * n);
    const notes = Array.from({ length: n }, (_, i) => ({ outcome: io[4 + 2 * i]!, period: io[5 + 2 * i]! }));
    const refused = io[1]! === 0 ? null : k.fail("REPORT_REFUSED", refusal(io[1]!, `${kind} \`${name}\``, s.task, notes));
    if (io[0] === 1) site.report("SNAPSHOT_CORRUPT", `the stored report statistics of ${kind} \`${name}\` could not be read and start again (nothing else is lost)`);
    const list = synced.get(site) ?? [];
    synced.set(site, [...list.filter((x) => x.of !== of), { name, of, refused, notes }]);
    return out;
  } catch (e) {
    // Nothing of this sync may be committed.
    synced.set(site, (synced.get(site) ?? []).filter((x) => x.of !== of));
    const err = k.coded(e, "REPORT_REFUSED");
    site.report(err.code, `${kind} \`${name}\`: its report statistics were not stored this time: ${err.message}`, e);
    return bytes;
  }
}

/** A write starts: what an earlier write synced and never committed (its bytes were not written) is forgotten. */
export function startReports(site: Site): void {
  synced.delete(site);
}

/** The message of a refusal of kind `kind` (1 + the core's `Refusal`). */
function refusal(kind: number, who: string, task: string, notes: Array<{ period: number }>): string {
  const period = notes.length > 0 ? dateOf(notes[notes.length - 1]!.period) : "?";
  return kind === 4
    ? `${who}: the ledger lists the period of ${period} of task \`${task}\` as reported already; it is not reported again`
    : kind === 3
    ? `${who}: a statistic of the period of ${period} is not finite; the period is dropped, not reported`
    : `${who}: the report does not fit its specification`;
}

/**
 * The snapshot written: commit every slot's report sync, record each
 * ledger entry in the audit history, hand each closed period to
 * `onReport`, and report refusals to `onError`.
 */
export function commitReports(site: Site): void {
  const list = synced.get(site);
  synced.delete(site);
  const c = site.core;
  for (const { name, of, refused, notes } of list ?? []) {
    const slot = !("space" in of);
    const s = slot ? specs.get(of) : of.spec;
    try {
      if (c.call(slot ? "report_commit" : "tally_commit", [of.h]) === 0 || !s) continue;
      for (const { outcome, period } of notes) {
        // Dropped statistics (the features changed) are not a refusal: no code.
        site.record(outcome === 1 ? "report" : "report-refused", {
          key: name,
          ...(outcome === 2 || outcome === 3 ? { code: "REPORT_REFUSED" as const } : {}),
          detail: `${OUTCOMES[outcome]}: task ${s.task}, period ${dateOf(period)}`,
        });
      }
      if (refused !== null) site.report(refused.code, refused.message);
      const len = c.call(slot ? "report_take" : "tally_take", [of.h]);
      if (len > 0) handOver(site, name, s, c, len);
    } catch (e) {
      const err = k.coded(e, "NUMERICAL_ERROR");
      site.report(err.code, `${slot ? "slot" : "experiment"} \`${name}\`: ${err.message}`, e);
    }
  }
}

/** Build the report of the period just closed (`len` entries in `io`) and pass it to `onReport`. */
function handOver(site: Site, name: string, s: ReportSpec, c: Core, len: number): void {
  const io = c.read(2 + len);
  const period = dateOf(io[0]!);
  const measurement = Array.from(io.subarray(2));
  const mask = io[1]!;
  const bits = bitsOf(s);
  const base = { v: 1 as const, task: s.task, period, key: name, ...(s.segment === null ? {} : { segment: s.segment }) };
  const report: Report = {
    ...base,
    owner: s.experiment ? "experiment" : "slot",
    measurement,
    vdaf: { type: "Prio3SumVec", bits, length: len, chunkLength: Math.max(1, Math.round(Math.sqrt(bits * len))) },
    clipped: GROUPS.filter((_, i) => (mask >> i) & 1),
    taskFile: {
      format: 1, task: s.task, period, key: name, variants: s.variants, slots: s.slots, scale: s.scale,
      bounds: { ...s.bounds },
    },
    line: JSON.stringify({ ...base, measurement }),
  };
  try {
    site.spec.onReport?.(report);
  } catch {
    // A throwing callback must not break the page.
  }
}

/** What `audit()` shows of reports: each slot's and experiment's settings, ledger and the exact payload of its last report. */
export function reportsAudit(site: Site, snap: number): Audit["reports"] {
  const owners: Array<[string, "slot" | "experiment", ReportSpec]> = [];
  for (const [name, l] of site.slots) {
    const s = specs.get(l);
    if (s) owners.push([name, "slot", s]);
  }
  for (const [key, t] of abTallies.get(site) ?? []) {
    if (t.h !== 0) owners.push([key, "experiment", t.spec]);
  }
  return owners.map(([key, owner, s]) => {
    const c = site.core;
    let ledger: Audit["reports"][number]["ledger"] = [];
    let last: Audit["reports"][number]["last"] = null;
    if (snap !== 0) {
      try {
        const n = c.call("report_ledger", [snap, c.text(key), owner === "slot" ? 0 : 1]);
        const io = c.read(12 * n);
        let at = 0;
        const tasks = c.bytes(io.reduce((sum, x, i) => (i % 12 === 11 ? sum + x : sum), 0));
        const dec = new TextDecoder();
        ledger = Array.from({ length: n }, (_, i) => {
          const e = io.subarray(12 * i, 12 * i + 12);
          const task = dec.decode(tasks.subarray(at, (at += e[11]!)));
          return {
            period: dateOf(e[0]!),
            task,
            outcome: OUTCOMES[e[1]!]! as Exclude<(typeof OUTCOMES)[number], "">,
            clipped: GROUPS.filter((_, g) => (e[2]! >> g) & 1),
            length: e[3]!,
            bits: e[4]!,
            scale: e[5]!,
            bounds: { decisions: e[6]!, exposures: e[7]!, rewards: e[8]!, xy: e[9]!, xx: e[10]! },
          };
        });
        const reported = ledger.filter((e) => e.outcome === "reported").pop();
        if (reported) {
          const all = c.read(12 * n + reported.length);
          last = { period: reported.period, task: reported.task, measurement: Array.from(all.subarray(12 * n)) };
        }
      } catch {
        // Unreadable stored data: the sync sets it aside and says so.
      }
    }
    return {
      key,
      owner,
      task: s.task,
      periodDays: s.periodDays,
      learning: s.learning,
      segment: s.segment,
      scale: s.scale,
      bounds: { ...s.bounds },
      ledger,
      last,
    };
  });
}
