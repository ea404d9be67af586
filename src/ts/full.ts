// The control plane of the full engine, shipped as its own file (full.js):
// what runs only once insitu_full.wasm is there. `load()` imports it after
// the first paint, together with the full engine, and `init()` with it; the
// entry (index.js) holds everything a page needs until then, so no page
// fetches this before its first decisions. Here: the move onto the full
// engine (the handover of what happened meanwhile), the write protocol
// (merging under a Web Lock, generations, quarantine on a failed merge),
// `explain`'s terms, and the persistence calls of `new Insitu()`.
//
// It imports no value from the entry's modules, only types: esbuild would
// put whatever both files use into a third file, which the entry would
// import before its first decision (scripts/package.mjs refuses such a
// build). What it needs of theirs comes in `attach()`.

import type { Core, Writer } from "./core.js";
import type * as Errors from "./errors.js";
import type { InsituError } from "./errors.js";
import type { Insitu, RestoreResult, SyncOptions, SyncResult } from "./insitu.js";
import type { FlushResult, Site } from "./site.js";
import type { Behavior } from "./behavior.js";
import type * as Slot from "./slot.js";
import type { Contribution, Decision, Evaluation, Explanation, Learner, PolicyEstimate, Stats } from "./slot.js";
import type { EventSpec } from "./spec.js";
import type * as Calls from "./validate/calls.js";
import type * as Read from "./validate/read.js";
import { attachReports, commitReports, reportsAudit, reportsOff, reportsOn, startReports, syncExperimentReports, syncReport } from "./reports.js";

export { reportsOff };

/** What this file uses of the entry's. */
export interface Kit {
  fail: typeof Errors.fail;
  coded: typeof Errors.coded;
  describe: typeof Errors.describe;
  guard: typeof Read.guard;
  /** The slot hash of the bias feature. */
  constant: number;
  Writer: typeof Writer;
  checkExplainShape: typeof Calls.checkExplainShape;
  encode: typeof Slot.encode;
  callNums: typeof Slot.callNums;
  Insitu: typeof Insitu;
  option: typeof Errors.option;
  Obj: typeof Read.Obj;
  fnv: (s: string) => number;
}

let fail: Kit["fail"];
let coded: Kit["coded"];
let describe: Kit["describe"];
let guard: Kit["guard"];
let constant = 0;
let Bytes: Kit["Writer"];
let checkExplainShape: Kit["checkExplainShape"];
let encode: Kit["encode"];
let callNums: Kit["callNums"];
let Obj: Kit["Obj"];

/** Called once by the entry, before anything else here: `Insitu`'s methods are defined on its prototype. */
export function attach(kit: Kit): void {
  ({ fail, coded, describe, guard, constant, Writer: Bytes, checkExplainShape, encode, callNums, Obj } = kit);
  attachReports(kit);
  const methods = Object.getOwnPropertyDescriptors(Methods.prototype);
  delete (methods as { constructor?: unknown }).constructor;
  Object.defineProperties(kit.Insitu.prototype, methods);
}

const DAY_MS = 86_400_000;

/** What a storage code from the full engine says when the caller adds nothing (core.ts words the rest). */
export const words = (code: string): string | undefined =>
  code === "SNAPSHOT_CORRUPT" ? "stored data is corrupt: truncated, failing its checksum, or holding values no engine writes"
  : code === "SNAPSHOT_FOREIGN" ? "stored data is not an insitu snapshot"
  : code === "SNAPSHOT_VERSION" ? "stored data was written by a newer insitu"
  : code === "SNAPSHOT_TOO_LARGE" ? "the snapshot is over its size cap (maxBytes)"
  : undefined;

/** Most terms a feature vector expands to (features.ts `MAX_EXPANDED`). */
const MAX_EXPANDED = 4096;

// --- the move onto the full engine ----------------------------------------------

/**
 * Move every part of `site` onto the full engine `full` (loaded after the
 * first decisions): each is rebuilt there from what is stored, and what
 * happened meanwhile is handed over, so nothing is lost or counted twice.
 */
export function upgrade(site: Site, full: Core): void {
  if (site.core.full || site.closed) return;
  const first = site.core;
  const refused = (e: InsituError): void =>
    site.report(e.code, `a call made before the full engine arrived was refused when it took over: ${e.message}`, e);
  try {
    // The first-decision module read nothing stored (a first visit, as far
    // as the page could tell): what another tab stored meanwhile is read
    // now, on the full engine, and each part is rebuilt on it.
    site.core = full;
    if (site.consentState.allows("personalization")) setStored(site, readStored(site, site.key).bytes);
    behaviorOnto(site, full);
    for (const [name, l] of site.slots) slotOnto(site, l, name, refused);
    experimentsOnto(site, full, refused);
  } catch (e) {
    site.core = first;
    site.lostLearning(coded(e, "POISONED"));
    return;
  }
  site.markReady();
  if (site.timer === null) site.changed();
}

/** Free `h` on the first-decision module (which is dropped anyway). */
function drop(core: Core, name: string, h: number): void {
  try {
    core.call(name, [h]);
  } catch {
    // A poisoned module: nothing to free.
  }
}

/** The behaviour store: a new one on `full`, restored from what is stored, then the events tracked meanwhile. */
function behaviorOnto(site: Site, full: Core): void {
  const b = site.behavior;
  const old = b.core;
  const h = b.h;
  b.core = full;
  b.h = b.make(full);
  restorePart(site, null);
  for (const { e, at } of b.queued) keep(b, e, at);
  b.queued = [];
  b.cache = null;
  drop(old, "beh_drop", h);
}

/**
 * A slot: a new engine on `full` with its configuration (same seed and
 * epoch), restored from what is stored, then every decision, reward, activation
 * and `learn` made meanwhile, in order. Refusals of what could not be
 * checked before (a reward for a decision of another page view) go to
 * `refused`.
 */
function slotOnto(site: Site, l: Learner, name: string, refused: (e: InsituError) => void): void {
  const full = site.core;
  const log = l.log ?? [];
  const old = l.core;
  const oldH = l.h;
  full.nums(l.p.layout());
  const h = full.call("slot_new", []);
  l.core = full;
  l.h = h;
  l.log = null;
  l.own = [];
  restorePart(site, name);
  for (const [call, args, nums, words] of log) {
    try {
      if (nums !== null) full.nums(nums);
      full.call(call, [h, ...args], words);
    } catch (err) {
      refused(coded(err, "NUMERICAL_ERROR"));
    }
  }
  drop(old, "score_drop", oldH);
}

/**
 * The experiments: a new allocator on `full` with what is stored, then
 * every allocator call made on the first-decision module that changed it,
 * replayed (past the log's cap, only its configuration and units).
 */
function experimentsOnto(site: Site, full: Core, refused: (e: InsituError) => void): void {
  const x = site.ab;
  const log = x.handover();
  const old = x.core;
  const oldH = x.h;
  x.core = full;
  x.log = null;
  if (oldH === 0) return;
  for (const [name, args, bytes] of log) {
    try {
      // The first argument is the allocator's handle, except `ab_new`'s (the seed).
      const first = name === "ab_new" ? args[0]! : x.h;
      const r = full.call(name, bytes === null ? [first, ...args.slice(1)] : [first, full.put(bytes), ...args.slice(1)]);
      if (name === "ab_new") {
        x.h = r;
        // Stored state first, as if the full engine had been there from the start.
        if (site.consentState.allows("functional")) restoreAbState(site);
      }
    } catch (e) {
      refused(coded(e, "NUMERICAL_ERROR"));
    }
  }
  drop(old, "ab_drop", oldH);
}

/** Hand the checked event `e` at `at` to the full engine's store. */
export function keep(b: Behavior, e: EventSpec, at: number): void {
  const w = new Bytes().str(e.type);
  for (const s of [e.item, e.category]) {
    if (s === null) w.u8(0);
    else w.u8(1).str(s);
  }
  w.u8(e.tags.length);
  e.tags.forEach((t) => w.str(t));
  // The event's layout for `beh_track` (src/wasm/behavior.rs).
  b.core.call("beh_track", [b.h, b.core.put((e.value === null ? w.u8(0) : w.u8(1).f64(e.value)).done()), at]);
}

// --- reading storage ------------------------------------------------------------

/** Keep `bytes` as the stored snapshot; its decoded copy on the core goes when they change. */
export function setStored(site: Site, bytes: Uint8Array | null): void {
  if (bytes !== site.stored) dropSnap(site);
  site.stored = bytes;
}

/**
 * Free every object `site` made (`close()`): its slots, behaviour store, allocator and report tallies, on whichever
 * module each is (the first-decision module's are small; its memory goes with it). Handles become 0, never a handle,
 * so a later call is refused rather than sent to another site's object.
 */
export function free(site: Site): void {
  reportsOff(site);
  for (const l of site.slots.values()) {
    drop(l.core, l.core.full ? "slot_drop" : "score_drop", l.h);
    l.h = 0;
  }
  const b = site.behavior;
  drop(b.core, "beh_drop", b.h);
  b.h = 0;
  const x = site.ab;
  if (x.h !== 0) drop(x.core, "ab_drop", x.h);
  x.h = 0;
}

/** Free the stored snapshot's decoded copy on the core. */
export function dropSnap(site: Site): void {
  if (site.snap !== 0) {
    try {
      site.core.call("snap_drop", [site.snap]);
    } catch {
      // A poisoned core: nothing to free.
    }
  }
  site.snap = 0;
}

/**
 * Open the frame of the value `raw` stored under `k` (its payload decoded
 * from base64): the payload's length in the core's bytes, or null when it
 * cannot be read (then quarantined, or, a newer build's, left alone and
 * this page keeps its own in memory only).
 */
function open(site: Site, k: string, raw: string): number | null {
  try {
    return site.core.call("frame_open", [site.core.text(raw), 2]);
  } catch (e) {
    const err = coded(e, "SNAPSHOT_CORRUPT");
    if (err.code === "SNAPSHOT_VERSION") site.newerFormat(k);
    else if (err.code !== "POISONED") site.store.quarantine(k, raw, err.code, err.message);
    return null;
  }
}

/**
 * Read and open the stored value `k` (its payload decoded from base64),
 * setting aside what cannot be read (see `open`); an expired one is deleted.
 */
export function readStored(site: Site, k: string): { bytes: Uint8Array | null; generation: number } {
  const raw = site.store.get(k);
  const out = { bytes: null as Uint8Array | null, generation: 0 };
  const max = site.spec.maxBytes;
  const big = (size: string) => site.store.quarantine(k, raw!, "SNAPSHOT_TOO_LARGE", `${size}, over the ${max}-byte cap`);
  if (raw === null) return out;
  // Base64 of the cap, plus the frame's fields: anything longer is refused before it is decoded.
  if (raw.length > Math.ceil(max / 3) * 4 + 64) {
    big(`${raw.length} characters`);
    return out;
  }
  const n = open(site, k, raw);
  if (n === null) return out;
  const [savedAt, generation] = site.core.read(2) as unknown as [number, number];
  out.generation = generation;
  if (savedAt + site.spec.behavior.maxAgeDays * DAY_MS < site.clock()) {
    site.store.remove(k);
    site.record("expired", { key: k, detail: `saved ${new Date(savedAt).toISOString()}` });
  } else if (n > max) big(`${n} bytes`);
  else out.bytes = site.core.bytes(n);
  return out;
}

/**
 * What a core error about the stored value under `k` means: a newer
 * build's data is left alone, unreadable data is set aside. Null for
 * errors that are not about stored data.
 */
function setAside(site: Site, e: InsituError, k: string): "newer-format" | "quarantined" | "quarantine-failed" | null {
  if (e.code === "SNAPSHOT_VERSION") {
    site.newerFormat(k);
    return "newer-format";
  }
  if (e.code !== "SNAPSHOT_CORRUPT" && e.code !== "SNAPSHOT_FOREIGN") return null;
  const raw = site.store.get(k);
  return raw === null || site.store.quarantine(k, raw, e.code, e.message) ? "quarantined" : "quarantine-failed";
}

/** The stored snapshot decoded on the core, once for every part (0: none, or it cannot be: set aside). */
function decoded(site: Site): number {
  if (site.stored === null) return 0;
  try {
    site.snap ||= site.core.call("snap_decode", [site.core.put(site.stored), site.spec.maxBytes]);
  } catch (e) {
    unusable(site, e);
  }
  return site.snap;
}

/** The stored snapshot cannot be used: set it aside (or report a core that failed). */
function unusable(site: Site, e: unknown): void {
  const err = coded(e, "SNAPSHOT_CORRUPT");
  const outcome = setAside(site, err, site.key);
  if (outcome === null) site.report(err.code, err.message, e);
  else if (outcome !== "newer-format") setStored(site, null);
}

/** Load stored state into a part (the behaviour store, or the slot `name`, whose reports it turns on), from the snapshot decoded once for every part. */
export function restorePart(site: Site, name: string | null): void {
  // A slot's reports count from the moment it runs on the full engine (reportsOn checks consent).
  if (name !== null) reportsOn(site, name);
  const snap = decoded(site);
  if (snap === 0) return;
  try {
    const c = site.core;
    if (name === null) {
      c.call("beh_restore", [site.behavior.h, snap, site.clock()]);
      site.behavior.cache = null;
    } else c.call("slot_restore", [site.slots.get(name)!.h, snap, c.text(name), site.clock()]);
  } catch (e) {
    unusable(site, e);
  }
}

/** What `audit()` shows of reports (full.ts decodes the stored snapshot once for it). */
export const reportsAuditOf = (site: Site): ReturnType<typeof reportsAudit> => reportsAudit(site, decoded(site));

/** Load what is stored into every part (the site opens on the full engine, or consent now allows it). */
export function restoreAll(site: Site): void {
  setStored(site, readStored(site, site.key).bytes);
  restorePart(site, null);
  for (const name of site.slots.keys()) restorePart(site, name);
  if (site.stored !== null) site.record("restored", { key: site.key, detail: `${site.stored.length} bytes` });
}

/** Load the experiments' stored state (`<key>.ab`) into the allocator. */
export function restoreAbState(site: Site): void {
  const k = `${site.key}.ab`;
  const { bytes } = readStored(site, k);
  if (bytes === null) return;
  try {
    site.core.call("ab_restore", [site.ab.h, site.core.put(bytes), site.clock(), site.spec.maxBytes]);
  } catch (e) {
    const err = coded(e, "SNAPSHOT_CORRUPT");
    if (setAside(site, err, k) === null) site.report(err.code, err.message, e);
  }
}

// --- writing storage ------------------------------------------------------------

/**
 * Store now, merged with other tabs under a Web Lock (`site.flush()` once
 * the full engine is there). Never rejects.
 *
 * localStorage is not linearizable across tabs (Chromium gives each
 * renderer a cached copy that other tabs' writes reach asynchronously), so
 * each write carries a generation one above the one it merged onto, its
 * writer holds a Web Lock named after that generation until it writes
 * again, and the next writer waits until its copy shows the newest
 * generation before merging. Where the browser refuses locks (a sandboxed
 * iframe) it writes without them and says so.
 */
export async function flush(site: Site): Promise<FlushResult> {
  try {
    const locks = globalThis.navigator?.locks;
    if (typeof locks?.request === "function") {
      try {
        const forgets = site.forgets;
        // A forget() heard while this waited (from this tab or another)
        // erased everything: what this flush would write is gone too.
        const forgotten = (): FlushResult | null => (site.forgets === forgets ? null : { written: false, reason: "forgotten" });
        return await locks.request(`${site.key}.lock`, async () => {
          // Only a write that holds the lock and sees the newest data may close a report period.
          const fresh = await awaitNewest(site, locks, site.key);
          const r = forgotten() ?? flushSnapshot(site, fresh);
          if (r.written) await holdGeneration(site, locks, site.key, r.generation!);
          if (abDirty(site)) {
            const k = `${site.key}.ab`;
            await awaitNewest(site, locks, k);
            r.experiments = forgotten() ?? flushAb(site);
            if (r.experiments.written) await holdGeneration(site, locks, k, r.experiments.generation!);
          }
          return r;
        });
      } catch (e) {
        // Locks refused (an opaque-origin iframe): write without them, and say so once.
        if (!lockless.has(site)) {
          lockless.add(site);
          site.report("STORAGE_UNAVAILABLE", "the browser refuses Web Locks here (a sandboxed iframe?); writing without them, so two tabs may overwrite each other", e);
        }
      }
    }
    // No Web Locks at all (an older browser, Node): one writer is all the protocol assumes, and it may close periods.
    return flushNow(site, true, typeof globalThis.navigator?.locks?.request !== "function");
  } catch (e) {
    return failed(site, e, true);
  }
}

/** A write that failed with `e`: reported (`report`), and the result that says so. */
function failed(site: Site, e: unknown, report: boolean): FlushResult {
  const err = coded(e, "NUMERICAL_ERROR");
  if (report) site.report(err.code, err.message, e);
  return { written: false, reason: "error", error: err };
}

/**
 * Write now, without the locks: when they are refused, and when the page
 * is being left (`pagehide`: no time for them). Merges onto what this tab
 * sees.
 */
export function flushNow(site: Site, fromFlush: boolean, close = false): FlushResult {
  if (site.closed) return { written: false, reason: "learning-unavailable" };
  try {
    const r = site.consentState.allows("personalization") ? flushSnapshot(site, close) : { written: false, reason: "consent" };
    if (abDirty(site)) r.experiments = flushAb(site);
    return r;
  } catch (e) {
    return failed(site, e, fromFlush);
  }
}

/** Sites whose browser refused Web Locks (reported once). */
const lockless = new WeakSet<Site>();

/** The experiments' state changed, or settlements are not yet stored. */
const abDirty = (site: Site): boolean => site.ab.h !== 0 && (site.abChanged || site.core.call("ab_pending", [site.ab.h]) > 0);

/** The generation of the value under `k` as this tab sees it (0: none). */
function seenGeneration(site: Site, k: string): number {
  const fields = site.store.get(k)?.split(";", 5);
  const g = Number(fields?.[3]);
  return fields?.length === 5 && Number.isSafeInteger(g) ? g : 0;
}

/** Wait (at most 2 s) until this tab's localStorage shows the newest generation of `k` any living tab wrote; whether it does. */
async function awaitNewest(site: Site, locks: LockManager, k: string): Promise<boolean> {
  if (typeof locks.query !== "function") return true;
  const prefix = `${k}.generation.`;
  let newest = 0;
  for (const l of (await locks.query()).held ?? []) {
    if (l.name?.startsWith(prefix)) newest = Math.max(newest, Number(l.name.slice(prefix.length)) || 0);
  }
  let seen = seenGeneration(site, k);
  for (let i = 0; i < 400 && seen < newest; i++) {
    await new Promise((r) => setTimeout(r, 5));
    seen = seenGeneration(site, k);
  }
  if (seen < newest) site.record("stale-read", { key: k, detail: `generation ${newest} written elsewhere is not visible here after 2 s` });
  return seen >= newest;
}

/** Hold the lock that announces generation `g` of `k` (and let go of the last one). */
async function holdGeneration(site: Site, locks: LockManager, k: string, g: number): Promise<void> {
  const previous = site.releases.get(k);
  await new Promise<void>((granted) => {
    try {
      locks.request(`${k}.generation.${g}`, () => {
        granted();
        return new Promise<void>((r) => {
          site.releases.set(k, r);
        });
      }).catch(() => granted());
    } catch {
      granted();
    }
  });
  previous?.();
}

/** Merge the snapshot (the behaviour store and every slot) with what is stored, and write it; `close`: report periods may close (see `syncReport`). */
function flushSnapshot(site: Site, close: boolean): FlushResult {
  if (!site.consentState.allows("personalization")) return { written: false, reason: "consent" };
  if (site.store.storage === null || site.newer) return { written: false, reason: site.newer ? "newer-format" : "unavailable" };
  const stored = readStored(site, site.key);
  if (site.newer) return { written: false, reason: "newer-format" };
  const generation = stored.generation + 1;
  let bytes = stored.bytes;
  let retried = false;
  const now = site.clock();
  const c = site.core;
  for (;;) {
    try {
      bytes = syncParts(site, bytes, now, close);
      break;
    } catch (e) {
      const err = coded(e, "NUMERICAL_ERROR");
      // Unreadable stored data is set aside once, then merged from nothing.
      const outcome = err.code === "SNAPSHOT_VERSION" || (!retried && bytes !== null) ? setAside(site, err, site.key) : null;
      if (outcome === "quarantined") {
        retried = true;
        bytes = null;
        continue;
      }
      if (outcome !== null) return { written: false, reason: outcome };
      return failed(site, e, true);
    }
  }
  if (!write(site, site.key, now, generation, bytes)) return { written: false, reason: site.store.status };
  c.call("beh_commit", [site.behavior.h]);
  for (const l of site.slots.values()) c.call("slot_commit", [l.h]);
  if (site.failures > 0) site.record("recovered", { key: site.key, detail: `stored after ${site.failures} failed attempts` });
  site.failures = 0;
  setStored(site, bytes);
  // After `setStored`: an `onReport` that calls `audit()` sees the ledger that lists its report.
  commitReports(site);
  return { written: true, bytes: bytes.length, generation };
}

/** Merge every part onto `stored` in turn; the snapshot to write. */
function syncParts(site: Site, stored: Uint8Array | null, now: number, close: boolean): Uint8Array {
  const c = site.core;
  startReports(site);
  const max = site.spec.maxBytes;
  let bytes = c.bytes(c.call("beh_sync", [site.behavior.h, stored === null ? -1 : c.put(stored), now, max]));
  for (const [name, l] of site.slots) {
    const nameLen = c.text(name);
    const all = new Uint8Array(nameLen + bytes.length);
    all.set(c.bytes(nameLen));
    all.set(bytes, nameLen);
    c.put(all);
    bytes = c.bytes(c.call("slot_sync", [l.h, nameLen, bytes.length, now, max]));
    const trimmed = c.read(8)[7]!;
    if (trimmed > 0) {
      site.record("pending-trimmed", { key: name, detail: `${trimmed} pending decisions dropped, earliest-expiring first, to keep the snapshot under maxBytes` });
    }
    bytes = syncReport(site, name, l, bytes, now, close);
  }
  return syncExperimentReports(site, bytes, now, close);
}

/** Store the experiments' state (consent functional and up; bandit counts only with personalization), merged with other tabs'. */
function flushAb(site: Site): FlushResult {
  const consent = site.consentState;
  if (!consent.allows("functional")) return { written: false, reason: "consent" };
  if (site.store.storage === null || site.abNewer) return { written: false, reason: site.abNewer ? "newer-format" : "unavailable" };
  const k = `${site.key}.ab`;
  const stored = readStored(site, k);
  if (site.abNewer) return { written: false, reason: "newer-format" };
  const c = site.core;
  const now = site.clock();
  const sync = (b: Uint8Array | null): number => c.call("ab_sync", [
    site.ab.h, b === null ? -1 : c.put(b), now, site.spec.maxBytes, site.spec.behavior.maxAgeDays * DAY_MS,
    consent.allows("personalization") ? 1 : 0,
  ]);
  let n: number;
  try {
    n = sync(stored.bytes);
  } catch (e) {
    const err = coded(e, "NUMERICAL_ERROR");
    const outcome = setAside(site, err, k);
    if (outcome !== "quarantined") {
      if (outcome === null) site.report(err.code, err.message, e);
      return { written: false, reason: outcome ?? "error" };
    }
    n = sync(null);
  }
  const bytes = c.bytes(n);
  const generation = stored.generation + 1;
  if (!write(site, k, now, generation, bytes)) return { written: false, reason: site.store.status };
  c.call("ab_commit", [site.ab.h]);
  site.abChanged = false;
  return { written: true, bytes: bytes.length, generation };
}

/** Write `bytes` under `k`; when storage refuses, try again later (backing off to a minute). */
function write(site: Site, k: string, now: number, generation: number, bytes: Uint8Array): boolean {
  if (site.store.put(k, now, generation, toBase64(bytes))) return true;
  site.failures++;
  site.cancelTimer();
  if (!site.closed) site.schedule(Math.min(60_000, 1000 * 2 ** site.failures));
  return false;
}

/** Standard base64 of bytes, as `btoa` writes it. */
function toBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

// --- evaluate -----------------------------------------------------------------------

const KINDS = ["served", "policy", "greedy", "uniform"] as const;

/**
 * `evaluate({ level? })` of `l`: the core's sums (src/eval/) as estimates with intervals at
 * `level` (default 0.95). Throws `INVALID_OPTION` for bad options, `NO_DATA` before any settled
 * decision logged its probability; changes nothing.
 */
export function evaluate(l: Learner, options: unknown): Evaluation {
  const o = Obj.of(options ?? {}, "", option, ["level"], "options");
  const level = o.num("level") ?? 0.95;
  if (!(level >= 0.5 && level <= 0.999)) throw o.err("level", `should be in [0.5, 0.999], but is ${describe(level)}`);
  const c = l.core;
  const m = c.call("slot_evaluate", [l.h, level], (code) =>
    code === "NO_DATA" ? "nothing to evaluate yet: no decision that logged its probability has been settled" : `evaluate: refused (${code})`);
  const r = c.read(2 + 13 * m);
  const at = (i: number) => {
    const v = r[i]!;
    const low = r[i + 1]!;
    const high = r[i + 2]!;
    return Number.isNaN(low) ? { value: v, low: null, high: null } : { value: v, low, high };
  };
  const estimates: PolicyEstimate[] = [];
  for (let j = 0; j < m; j++) {
    const b = 2 + 13 * j;
    const snips = at(b + 3);
    estimates.push({
      policy: j < 4 ? KINDS[j]! : "variant",
      ...(j < 4 ? {} : { variant: l.p.ids[j - 4]! }),
      ips: at(b),
      snips: Number.isNaN(snips.value) ? null : snips,
      dr: at(b + 6),
      lift: at(b + 9),
      ess: r[b + 12]!,
    });
  }
  return { decisions: r[0]!, matchRate: r[1]! / r[0]!, level, method: "normal", modelVersion: l.modelVersion, estimates };
}

// --- explain ------------------------------------------------------------------------

/** One term of a feature vector: its hashed slot and value, and the features it is made of (`i` < 0: the bias; `j` < 0: one feature). */
/** A term of a folded vector: its slot (and a feature's second slot with `slotsPerFeature: 2`, else -1), each slot's signed share of the value, the page's value, and the features it is made of. */
interface Term {
  slot: number;
  slot2: number;
  c1: number;
  c2: number;
  value: number;
  i: number;
  j: number;
}

const rotl = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0;

/** A feature's two slots and signed shares (src/features/mod.rs `two_slots`). */
function twoSlots(h: number, mask: number): [number, number, number, number] {
  const h2 = rotl(Math.imul(h, 0x9e3779b1) >>> 0, 13);
  const a = h & mask;
  let b = h2 & mask;
  if (b === a) b = (b + 1) & mask;
  const s = Math.SQRT1_2;
  return [a, b, (h & 0x8000_0000) !== 0 ? -s : s, (h2 & 0x4000_0000) !== 0 ? -s : s];
}

/** Hash of the product of two hashed features (VW's quadratic rule; hash.ts `interaction`). */
const interaction = (a: number, b: number): number => (Math.imul(a, 0x01000193) ^ b) >>> 0;

/**
 * The terms of a feature vector as the core expands it (src/features/mod.rs
 * `expand_each`): the bias, each feature, then each configured interaction
 * product (within one namespace, each unordered pair once).
 */
function expand(feats: number[], pairs: ReadonlyArray<readonly [number, number]>, mask: number, two: boolean): Term[] {
  const n = feats.length / 3;
  const one = (slot: number, value: number, i: number, j: number): Term => ({ slot, slot2: -1, c1: 1, c2: 0, value, i, j });
  const out: Term[] = [one(constant & mask, 1, -1, -1)];
  for (let i = 0; i < n; i++) {
    const h = feats[3 * i + 1]!;
    const value = feats[3 * i + 2]!;
    if (two) {
      const [slot, slot2, c1, c2] = twoSlots(h, mask);
      out.push({ slot, slot2, c1, c2, value, i, j: -1 });
    } else out.push(one(h & mask, value, i, -1));
  }
  for (const [a, b] of pairs) {
    for (let i = 0; i < n; i++) {
      if (feats[3 * i] !== a) continue;
      for (let j = a === b ? i + 1 : 0; j < n; j++) {
        if (feats[3 * j] !== b) continue;
        if (out.length >= MAX_EXPANDED) throw fail("TOO_MANY_FEATURES", `context has more than ${MAX_EXPANDED} features (stopped at ${out.length})`);
        const value = feats[3 * i + 2]! * feats[3 * j + 2]!;
        out.push(one(interaction(feats[3 * i + 1]!, feats[3 * j + 1]!) & mask, value, i, j));
      }
    }
  }
  return out;
}

/**
 * `explain(options)` of `l`: why a variant (`variant`, or the best): its
 * mean score split into what each of the `top` largest terms of the call's
 * features adds. Every policy scores a variant with a linear model, so its
 * posterior mean score is exactly the bias plus, for each term of its
 * feature vector (each feature, each interaction product), the term's
 * value times what the variant learned for the term's hashed slot: the
 * core gives the scores and the learned weights, and this names the terms
 * (hashing is one way: names come from the context passed in).
 */
export function explain(l: Learner, options: unknown): Explanation {
  if (l.p.spec.catalogue !== null) throw fail("INVALID_OPTION", "option `explain` is not available for a catalogue slot (its variants share one learner)");
  const k = l.p.k;
  const o = checkExplainShape(options, k);
  const wanted = o.variant === null ? -1 : l.p.ids.indexOf(o.variant);
  if (wanted < 0 && o.variant !== null) throw fail("UNKNOWN_VARIANT", `no variant ${describe(o.variant)}`);
  const f = encode(l.p, o.context, o.actions, l.behavior(), true);
  const top = o.top;
  const c = l.core;
  c.nums(callNums(f));
  c.call("scores", [l.h, f.shared.length / 3, f.actions === null ? 0 : 1]);
  const r = c.read(2 * k);
  const scores = Array.from(r.subarray(0, k));
  const best = scores.reduce((b, x, i) => (x > scores[b]! ? i : b), 0);
  const index = wanted < 0 ? best : wanted;
  const feats = [...f.shared, ...(f.actions?.[index] ?? l.p.own[index]!.triples)];
  // Each feature's label: `ns.name`, or `ns.name=value` for a categorical.
  const raw = [...f.names!, ...(f.actionNames?.[index] ?? l.p.ownNames[index]!)];
  const names: string[] = [];
  for (let i = 0; i < raw.length; i += 3) names.push(raw[i + 2] === null ? `${raw[i]}.${raw[i + 1]}` : `${raw[i]}.${raw[i + 1]}=${raw[i + 2]}`);
  const d = c.call("arm_mean", [l.h, index]);
  const w = c.read(d + 1);
  const terms = expand(feats, l.p.spec.features.interactions, d - 1, l.p.spec.features.slotsPerFeature === 2);
  // With normalized features the weights act on the vector scaled to length 1 (the core's fold):
  // each term keeps the page's value and its weight carries the factor, so value × weight is still
  // what it adds to the score.
  let scale = 1;
  if (l.p.spec.features.normalize) {
    const at = new Map<number, number>();
    for (const t of terms) {
      at.set(t.slot, (at.get(t.slot) ?? 0) + t.c1 * t.value);
      if (t.slot2 >= 0) at.set(t.slot2, (at.get(t.slot2) ?? 0) + t.c2 * t.value);
    }
    let n2 = 0;
    for (const v of at.values()) n2 += v * v;
    if (n2 > 0 && Number.isFinite(n2)) scale = 1 / Math.sqrt(n2);
  }
  // A feature in two slots weighs what its two slots do, each times its signed share.
  const weight = (t: Term): number => (t.c1 * w[t.slot]! + (t.slot2 >= 0 ? t.c2 * w[t.slot2]! : 0)) * scale;
  const meets = (t: Term, u: Term): boolean => t.slot === u.slot || t.slot === u.slot2 || (t.slot2 >= 0 && (t.slot2 === u.slot || t.slot2 === u.slot2));
  const size = (t: Term): number => Math.abs(t.value * weight(t));
  const label = (t: Term): string => (t.i < 0 ? "" : t.j < 0 ? names[t.i]! : `${names[t.i]} × ${names[t.j]}`);
  const bias = terms.filter((t) => t.i < 0).reduce((a, t) => a + t.value * weight(t), 0);
  let rest = terms.filter((t) => t.i >= 0);
  const contributions: Contribution[] = [];
  let listed = 0;
  // The `top` largest, a term listed twice (a list naming a value twice) merged into one.
  while (contributions.length < top && rest.length > 0) {
    const first = rest.reduce((b, t) => (size(t) > size(b) ? t : b), rest[0]!);
    const name = label(first);
    let value = 0;
    rest = rest.filter((t) => {
      const same = t.slot === first.slot && label(t) === name;
      if (same) value += t.value;
      return !same;
    });
    const contribution = value * weight(first);
    listed += contribution;
    contributions.push({
      feature: name,
      value,
      weight: weight(first),
      contribution,
      shared: terms.some((t) => meets(t, first) && label(t) !== name),
    });
  }
  const score = scores[index]!;
  return {
    variant: l.p.ids[index]!,
    score,
    bias,
    contributions,
    other: score - bias - listed,
    best: l.p.ids[best]!,
    scores,
    sd: Array.from(r.subarray(k, 2 * k)),
    updates: w[d]!,
  };
}

// --- new Insitu() -------------------------------------------------------

const option = (k: string, why: string): InsituError => fail("INVALID_OPTION", `option \`${k}\` ${why}`);

/**
 * The arguments of `restore()` and `sync()`, checked: the stored bytes
 * (`required`, or null for nothing stored) and the options. What the
 * caller's getters or Proxy traps throw is `INVALID_OPTION` too.
 */
const args = (stored: unknown, options: unknown, required: boolean): { b: Uint8Array | null; slot: string; now: number; max: number } =>
  guard(option, "options", () => {
    if (options === null || typeof options !== "object") throw option("options", `should be an object, but is ${describe(options)}`);
    const r = options as Record<string, unknown>;
    for (const k of Object.keys(r)) if (k !== "slot" && k !== "now" && k !== "maxBytes") throw option(k.length > 64 ? `${k.slice(0, 64)}…` : k, "is not a known option");
    const slot = r.slot;
    if (typeof slot !== "string" || !/^[A-Za-z0-9._-]{1,48}$/.test(slot)) {
      throw option("slot", `should be 1 to 48 letters, digits, \`-\`, \`_\` or \`.\`, but is ${describe(slot)}`);
    }
    const now = r.now ?? Date.now();
    if (typeof now !== "number" || !Number.isFinite(now)) throw option("now", `should be a finite time in ms, but is ${describe(now)}`);
    const max = r.maxBytes ?? 256 << 10;
    if (typeof max !== "number" || !Number.isInteger(max) || max < 64 || max > 16 << 20) {
      throw option("maxBytes", `should be an integer in [64, 16777216], but is ${describe(max)}`);
    }
    if ((stored === null || stored === undefined) && !required) return { b: null, slot, now, max };
    if (!(stored instanceof Uint8Array)) {
      throw option("stored", `should be ${required ? "the stored snapshot, a Uint8Array" : "a Uint8Array, or null when nothing is stored"}, but is ${describe(stored)}`);
    }
    if (stored.length > max) throw fail("SNAPSHOT_TOO_LARGE", `snapshot is ${stored.length} bytes; the cap is ${max}`);
    return { b: stored, slot, now, max };
  });

const report = (r: Float64Array): RestoreResult => ({
  modelChanged: r[0] === 1,
  merged: r[1] === 1,
  replayed: r[2]!,
  duplicates: r[3]!,
  rejected: r[4]!,
  adopted: r[5]!,
});

/** What `Insitu` does (src/ts/insitu.ts declares it): one slot on the full engine, with no site around it. */
class Methods {
  declare readonly l: Learner;

  rank(options?: unknown): Decision {
    return this.l.rank(options);
  }

  reward(options: unknown): void {
    this.l.reward(options);
  }

  activate(options: unknown): void {
    this.l.activate(options);
  }

  learn(options: unknown): void {
    this.l.learn(options);
  }

  explain(options?: unknown): Explanation | null {
    return this.l.explain(options);
  }

  evaluate(options?: unknown): Evaluation | null {
    return this.l.evaluate(options);
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
  restore(stored: unknown, options: SyncOptions): RestoreResult {
    const o = args(stored, options, true);
    const c = this.l.core;
    const snap = c.call("snap_decode", [c.put(o.b!), o.max]);
    try {
      c.call("slot_restore", [this.l.h, snap, c.text(o.slot), o.now]);
      return report(c.read(6));
    } finally {
      c.call("snap_drop", [snap]);
    }
  }

  /** Merge this slot's learning onto the stored snapshot (null: nothing stored). */
  sync(stored: unknown, options: SyncOptions): SyncResult {
    const o = args(stored, options, false);
    const b = o.b;
    const c = this.l.core;
    const name = new TextEncoder().encode(o.slot);
    const all = new Uint8Array(name.length + (b?.length ?? 0));
    all.set(name);
    if (b !== null) all.set(b, name.length);
    c.put(all);
    const n = c.call("slot_sync", [this.l.h, name.length, b === null ? -1 : b.length, o.now, o.max]);
    const bytes = c.bytes(n);
    const r = c.read(8);
    return { ...report(r), bytes, overwrote: r[6] === 1, trimmed: r[7]! };
  }

  /** Apply the last `sync()` once its bytes are stored; false when there was none. */
  commit(): boolean {
    return this.l.core.call("slot_commit", [this.l.h]) === 1;
  }

  /** Free the slot's memory in the engine. */
  close(): void {
    this.l.core.call("slot_drop", [this.l.h]);
  }
}
