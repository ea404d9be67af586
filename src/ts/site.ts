// The page's site: consent, storage, the behaviour store, the slots and the
// experiments, composed. Each concern lives in its own module (storage.ts,
// consent.ts, audit.ts, behavior.ts, experiments.ts, slot.ts); this one
// wires them together and holds the one write path (`flush`) and the move
// from the first-decision module to the full engine (`upgrade`).
//
// Storage is localStorage: it is synchronous, so what earlier page views
// learned is restored before the first decision, with no flicker. Writes
// merge under a Web Lock, so two tabs never lose each other's updates.
// localStorage is not linearizable across tabs (Chromium gives each renderer
// a cached copy that other tabs' writes reach asynchronously), so each write
// carries a generation one above the one it merged onto, its writer holds a
// Web Lock named after that generation until it writes again, and the next
// writer waits until its copy shows the newest generation before merging.
// Where the browser refuses locks (a sandboxed iframe) it writes without
// them and says so, never rejecting.

import { History, manifestBase, nthIndex, type Audit } from "./audit.js";
import { Behavior, type BehaviorEvent } from "./behavior.js";
import { Consent, type ConsentState, rank, TIERS } from "./consent.js";
import type { Core } from "./core.js";
import { coded, describe, type ErrorCode, fail, type InsituError } from "./errors.js";
import { type Assignment, type ExperimentInfo, Experiments, type ExposureEvent } from "./experiments.js";
import { Context, Hasher, isPlain } from "./features.js";
import { type Decision, type Explanation, Learner, Prepared, type Stats } from "./slot.js";
import type { OpenSpec, StorageLike, Tier } from "./spec.js";
import type {
  ActivateOptions, ConsentTier, ContextObject, ExperimentConfig, ExplainOptions, InsituOptions, LearnOptions, RankOptions,
  RewardOptions,
} from "./types.js";
import { defaultStorage, type Event, savedAtOf, seal, type Sink, Store, toBase64 } from "./storage.js";

const DAY_MS = 86_400_000;
/** A slot's name: 1 to 48 letters, digits, `-`, `_` or `.`. */
const SLOT_RE = /^[A-Za-z0-9._-]{1,48}$/;

/** The result of `flush()`. */
export interface FlushResult {
  written: boolean;
  /** Snapshot size when written. */
  bytes?: number;
  /** The stored snapshot's generation when written (one above the one it merged onto). */
  generation?: number;
  /** Why nothing was written: `consent`, `unavailable`, `quota-exceeded`, `newer-format`, `quarantine-failed`, `error`,
   * `learning-unavailable` (the full engine could not be loaded), or `fallback` (no WebAssembly). */
  reason?: string;
  error?: InsituError;
  /** The experiments' state, written under `<key>.ab`. */
  experiments?: FlushResult;
}

/** A decision slot of a site. */
export interface Slot {
  readonly name: string;
  /** Never throws: on bad input returns the fallback variant with `fallback: true` and the `error`. */
  rank(options?: RankOptions): Decision;
  /** Why a variant; `null` before the full engine has arrived (`await site.ready`) and on a fallback site. */
  explain(options?: ExplainOptions): Explanation | null;
  /** Settle a decision with a reward in [0, 1]. Throws `InsituError`; nothing changes then. */
  reward(options: RewardOptions): void;
  /** Mark a decision ranked with `defer: true` as shown, so its reward counts. */
  activate(options: ActivateOptions): void;
  /** Learn from a logged observation, for any variant. */
  learn(options: LearnOptions): void;
  stats(): Stats;
  readonly variants: string[];
  readonly modelVersion: string;
  readonly policy: string;
}

/** What `warm()` started while the wasm compiled, for the site that follows. */
export class Warm {
  constructor(
    public channel: BroadcastChannel | null,
    /** Kept only so a minifier cannot drop the read as unused. */
    readonly gpc: unknown,
  ) {}

  close(): void {
    this.channel?.close();
    this.channel = null;
  }
}

/**
 * The browser's first-use work the site needs, started while the wasm
 * downloads and compiles: the first touch of localStorage (the browser
 * loads the origin's storage area), the GPC signal, the CSPRNG and the
 * BroadcastChannel. It reads and writes no key: what is read, kept or
 * deleted waits for the site's consent check.
 */
export function warm(spec: { key: string; storage: unknown }): Warm {
  let gpc: unknown;
  try {
    if (spec.storage === "default") defaultStorage();
    gpc = (globalThis.navigator as { globalPrivacyControl?: unknown } | undefined)?.globalPrivacyControl;
    globalThis.crypto?.getRandomValues?.(new Uint32Array(2));
    if (typeof globalThis.BroadcastChannel === "function") {
      const channel = new BroadcastChannel(`insitu:${spec.key}`);
      (channel as { unref?: () => void }).unref?.();
      return new Warm(channel, gpc);
    }
  } catch {
    // A browser that refuses any of it: the site meets the same and copes.
  }
  return new Warm(null, gpc);
}

/** The page's site. */
export class Site implements Sink {
  /** Null: this site runs the wasm (see the fallback site of `load()`). */
  readonly fallback: InsituError | null = null;
  /** Resolves once the full engine has taken over (or failed to load: then this page view decides but does not learn or store). */
  readonly ready: Promise<void>;
  private markReady: () => void = () => {};
  private core: Core;
  readonly key: string;
  private readonly spec: OpenSpec;
  private readonly clock: () => number;
  private readonly store: Store;
  private readonly consentState: Consent;
  private readonly history: History;
  private readonly hasher = new Hasher();
  private readonly behavior: Behavior;
  private ab: Experiments;
  private readonly slots = new Map<string, Learner>();
  private unit: string | null;
  /** The stored snapshot read at open (bytes), for slots opened later and for the full engine. */
  private stored: Uint8Array | null = null;
  /** `stored` decoded on the current core (0: not yet). */
  private snap = 0;
  private newer = false;
  private abNewer = false;
  private abChanged = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private channel: BroadcastChannel | null = null;
  private releases = new Map<string, () => void>();
  private learningLost: InsituError | null = null;
  private closed = false;
  private readonly onHide = (): void => {
    if (globalThis.document?.visibilityState === "hidden") void this.flush();
  };
  private readonly onPageHide = (): void => {
    this.flushNow(false);
  };

  constructor(core: Core, spec: OpenSpec, warmed: Warm | null) {
    this.core = core;
    this.spec = spec;
    this.key = spec.key;
    this.clock = () => {
      const t = spec.now();
      if (typeof t !== "number" || !Number.isFinite(t)) throw fail("INVALID_OPTION", `option \`now\` should return a finite time in ms, but returned ${describe(t)}`);
      return t;
    };
    this.ready = new Promise((r) => {
      this.markReady = r;
    });
    if (core.full) this.markReady();
    this.consentState = new Consent(spec.consent, spec.defaultConsent, spec.gpc === "honor");
    let storage: StorageLike | null;
    let blocked: Error | null = null;
    if (spec.storage === "default") {
      const s = defaultStorage();
      storage = s instanceof Error ? null : s;
      if (s instanceof Error) blocked = s;
    } else {
      storage = spec.storage;
    }
    this.store = new Store(storage, this.key, this, this.clock);
    this.history = new History(this.store, this.consentState, this.clock, () => spec.behavior.maxAgeDays * DAY_MS);
    if (blocked !== null) this.store.unavailable(blocked);
    this.behavior = new Behavior(core, spec.behavior, this.hasher);
    this.ab = new Experiments(core);
    this.unit = spec.unit;
    if (this.consentState.state.source !== "default") this.enforce();
    if (this.consentState.effective === "personalization") this.restoreAll();
    this.listen(warmed);
    this.watchExit();
  }

  // --- reporting ------------------------------------------------------------

  report(code: ErrorCode, message: string, cause?: unknown): void {
    const f = this.spec.onError;
    if (f === null) return;
    try {
      f(fail(code, message, cause));
    } catch {
      // A throwing callback must not break the page.
    }
  }

  record(event: Event, extra?: { code?: ErrorCode; key?: string; detail?: string }): void {
    this.history.record(event, extra);
  }

  // --- consent ----------------------------------------------------------------

  get consent(): ConsentState {
    return this.consentState.state;
  }

  /** Set the visitor's tier (from the site's consent manager); lowering it deletes what the new tier does not allow, in every tab. */
  setConsent(tier: ConsentTier): ConsentState {
    if (!(TIERS as readonly unknown[]).includes(tier)) {
      throw fail("INVALID_OPTION", `option \`consent\` should be one of ${TIERS.join(", ")}, but is ${describe(tier)}`);
    }
    const before = this.consentState.set(tier as Tier);
    const after = this.consentState.effective;
    if (before !== after) this.record("consent-changed", { detail: `${before} -> ${after}` });
    this.enforce();
    if (after === "personalization" && before !== "personalization") this.restoreAll();
    if (rank(before) < 1 && rank(after) >= 1 && this.ab.h !== 0) this.restoreAb();
    this.broadcast({ type: "consent", tier });
    return this.consent;
  }

  /** Delete what the tier in force does not allow. */
  private enforce(): void {
    const r = rank(this.consentState.effective);
    const removed: string[] = [];
    for (const k of this.store.ownKeys()) {
      if (r < this.store.tierOf(k) && this.store.remove(k)) removed.push(k);
    }
    if (r < 2) this.setStored(null);
    if (r < 1) {
      this.cancelTimer();
      this.ab.dropDevice();
    } else if (r < 2 && this.ab.h !== 0) {
      // The stored experiments state may hold bandit counts: rewrite it without.
      this.abChanged = true;
      this.changed();
    }
    if (removed.length > 0) this.record("deleted", { detail: `consent ${this.consentState.effective}: ${removed.join(", ")}` });
  }

  // --- reading storage ----------------------------------------------------------

  /**
   * Read and open the stored value `k` (its payload decoded from base64),
   * setting aside what cannot be read: an unreadable value is quarantined,
   * a newer build's is left alone (and this page keeps it in memory only),
   * an expired one is deleted.
   */
  private readStored(k: string): { raw: string | null; bytes: Uint8Array | null; generation: number } {
    const raw = this.store.get(k);
    const out = { raw, bytes: null as Uint8Array | null, generation: 0 };
    if (raw === null) return out;
    const max = this.spec.maxBytes;
    // Base64 of the cap, plus the frame's fields: anything longer is refused before it is decoded.
    if (raw.length > Math.ceil(max / 3) * 4 + 64) {
      this.store.quarantine(k, raw, "SNAPSHOT_TOO_LARGE", `${raw.length} characters, over the ${max}-byte cap`);
      return out;
    }
    const c = this.core;
    let n: number;
    try {
      n = c.call("frame_open", [c.text(raw), 2]);
    } catch (e) {
      const err = coded(e, "SNAPSHOT_CORRUPT");
      if (err.code === "SNAPSHOT_VERSION") this.newerFormat(k);
      else if (err.code !== "POISONED") this.store.quarantine(k, raw, err.code, err.message);
      return out;
    }
    const [savedAt, generation] = c.read(2);
    out.generation = generation!;
    if (savedAt! + this.spec.behavior.maxAgeDays * DAY_MS < this.clock()) {
      this.store.remove(k);
      this.record("expired", { key: k, detail: `saved ${new Date(savedAt!).toISOString()}` });
      return out;
    }
    if (n > max) {
      this.store.quarantine(k, raw, "SNAPSHOT_TOO_LARGE", `${n} bytes, over the ${max}-byte cap`);
      return out;
    }
    out.bytes = c.bytes(n);
    return out;
  }

  /** A newer build's data under `k` is left untouched; this page keeps it in memory only. */
  private newerFormat(k: string): void {
    const snapshot = k === this.key;
    if (snapshot ? this.newer : this.abNewer) return;
    if (snapshot) this.newer = true;
    else this.abNewer = true;
    this.record("newer-format", { key: k, detail: "written by a newer insitu; left untouched, kept in memory only" });
  }

  /**
   * What a core error about the stored value under `k` means: a newer
   * build's data is left alone, unreadable data is set aside. Null for
   * errors that are not about stored data.
   */
  private setAside(e: InsituError, k: string): "newer-format" | "quarantined" | "quarantine-failed" | null {
    if (e.code === "SNAPSHOT_VERSION") {
      this.newerFormat(k);
      return "newer-format";
    }
    if (e.code !== "SNAPSHOT_CORRUPT" && e.code !== "SNAPSHOT_FOREIGN") return null;
    const raw = this.store.get(k);
    if (raw === null || this.store.quarantine(k, raw, e.code, e.message)) return "quarantined";
    return "quarantine-failed";
  }

  /** Keep `bytes` as the stored snapshot; its decoded copy on the core goes when they change. */
  private setStored(bytes: Uint8Array | null): void {
    if (bytes !== this.stored) this.dropSnap();
    this.stored = bytes;
  }

  private dropSnap(): void {
    if (this.snap !== 0) {
      try {
        this.core.call("snap_drop", [this.snap]);
      } catch {
        // A poisoned core: nothing to free.
      }
    }
    this.snap = 0;
  }

  /** The stored snapshot decoded on the current core, once for every part (0: none, or unreadable). */
  private decoded(): number {
    if (this.stored === null) return 0;
    if (this.snap === 0) {
      try {
        this.snap = this.core.call("snap_decode", [this.core.put(this.stored), this.spec.maxBytes]);
      } catch (e) {
        this.unreadable(coded(e, "SNAPSHOT_CORRUPT"));
        return 0;
      }
    }
    return this.snap;
  }

  /** The stored snapshot cannot be used: set it aside (or report a core that failed). */
  private unreadable(e: InsituError): void {
    const outcome = this.setAside(e, this.key);
    if (outcome === null) this.report(e.code, e.message, e);
    else if (outcome !== "newer-format") this.setStored(null);
  }

  /** Load stored state into a part (the behaviour store, or the slot `name`). */
  private restorePart(name: string | null): void {
    const snap = this.decoded();
    if (snap === 0) return;
    try {
      if (name === null) this.behavior.restore(snap, this.clock());
      else this.slots.get(name)!.restore(snap, name);
    } catch (e) {
      this.unreadable(coded(e, "SNAPSHOT_CORRUPT"));
    }
  }

  private restoreAll(): void {
    this.setStored(this.readStored(this.key).bytes);
    if (this.stored === null) return;
    this.restorePart(null);
    for (const name of this.slots.keys()) this.restorePart(name);
    if (this.stored !== null) this.record("restored", { key: this.key, detail: `${this.stored.length} bytes` });
  }

  // --- slots ------------------------------------------------------------------

  /** Open a slot: `new Insitu(options)`, restored from storage when consent allows; its updates are stored. */
  slot(name: string, options: InsituOptions): Slot {
    if (typeof name !== "string" || !SLOT_RE.test(name)) {
      throw fail("INVALID_OPTION", `option \`slot\` should be 1 to 48 letters, digits, \`-\`, \`_\` or \`.\`, but is ${describe(name)}`);
    }
    if (this.slots.has(name)) throw fail("INVALID_OPTION", `option \`slot\` \`${name}\` is already open`);
    const p = new Prepared(options, this.hasher);
    const allowsBehavior = p.allow.has("behavior");
    const learner = new Learner(
      this.core,
      p,
      this.clock,
      () => (allowsBehavior ? this.behaviorEncoded() : null),
      () => this.changed(),
    );
    this.slots.set(name, learner);
    if (this.consentState.effective === "personalization") this.restorePart(name);
    return siteSlot(name, learner);
  }

  /** The behaviour namespace as the slots read it; null when it cannot be derived (reported). */
  private behaviorEncoded(): ReturnType<Behavior["encoded"]> | null {
    try {
      return this.behavior.encoded(this.clock());
    } catch (e) {
      const err = coded(e, "INVALID_OPTION");
      this.report(err.code, err.message, e);
      return null;
    }
  }

  /** A page context, encoded once and shared by every slot that ranks on it: pass it as `rank({ context })`. */
  context(context: ContextObject): Context {
    return new Context(this.hasher, context);
  }

  // --- behaviour ----------------------------------------------------------------

  /** Record a behaviour event. Throws `INVALID_EVENT` or `UNKNOWN_EVENT_TYPE`; nothing is stored then. */
  track(event: BehaviorEvent): void {
    this.behavior.track(event, this.clock());
    this.changed();
  }

  /** The `behavior` namespace the slots add to each context. */
  features(): Record<string, number | string> | null {
    try {
      return this.behavior.features(this.clock());
    } catch (e) {
      const err = coded(e, "INVALID_OPTION");
      this.report(err.code, err.message, e);
      return null;
    }
  }

  // --- experiments ----------------------------------------------------------------

  /** Configure the A/B experiments (replacing earlier ones; device state is kept). Throws `INVALID_EXPERIMENT`, changing nothing. */
  experiments(configs: ExperimentConfig[]): ExperimentInfo[] {
    const first = this.ab.h === 0;
    const info = this.ab.configure(configs);
    if (first) {
      if (this.unit !== null) this.ab.siteUnit(this.unit);
      this.restoreAb();
    }
    return info;
  }

  /** Use the site's own id as the unit key from now on (null: the device seed). */
  setUnit(unit: string | null): void {
    if (unit !== null && (typeof unit !== "string" || unit.length === 0 || unit.length > 256)) {
      throw fail("INVALID_OPTION", `option \`unit\` should be a string of 1 to 256 characters or null, but is ${describe(unit)}`);
    }
    this.unit = unit;
    this.ab.siteUnit(unit);
  }

  /** Where the unit key comes from. */
  private unitSource(): Assignment["unit"] {
    if (this.unit !== null) return "site";
    return this.ab.deviceUnit() !== "" ? "device" : "none";
  }

  /** This visitor's variant of experiment `key`; a first exposure is logged and passed to `onExposure`. */
  run(key: string, options?: { attributes?: Record<string, unknown> }): Assignment {
    this.ab.index(key);
    let attributes: unknown;
    if (options !== undefined && options !== null) {
      if (!isPlain(options)) throw fail("INVALID_OPTION", `option \`options\` should be an object, but is ${describe(options)}`);
      const keys = Object.keys(options);
      const bad = keys.find((k) => k !== "attributes");
      if (bad !== undefined) throw fail("INVALID_OPTION", `option \`${bad}\` is not a known option`);
      attributes = options.attributes;
      if (attributes !== undefined && !isPlain(attributes)) {
        throw fail("INVALID_CONTEXT", `option \`attributes\` should be an object, but is ${describe(attributes)}`);
      }
    }
    if (this.unit === null && this.consentState.allows("functional") && this.ab.deviceUnit() === "") this.drawDeviceUnit();
    const attrs = { ...(attributes as object | undefined), behavior: this.features() ?? {} };
    const [a, first] = this.ab.assign(key as string, attrs, this.clock(), this.unitSource());
    if (first || a.allocation === "thompson") {
      this.abChanged = true;
      this.changed();
    }
    if (first) this.expose(a);
    return a;
  }

  /**
   * A device seed for this visitor: the one another tab stored meanwhile,
   * else 128 fresh bits, stored under `<key>.unit` at once (a visitor who
   * leaves right away keeps the assignment).
   */
  private drawDeviceUnit(): void {
    const stored = this.readUnit();
    if (stored !== null) {
      this.ab.useDevice(stored, true);
      return;
    }
    const b = new Uint8Array(16);
    try {
      globalThis.crypto.getRandomValues(b);
    } catch {
      for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    }
    let hex = "d:";
    for (const x of b) hex += x.toString(16).padStart(2, "0");
    this.ab.useDevice(hex, true);
    this.writeUnit(hex);
  }

  /** The device seed stored under `<key>.unit`, or null. */
  private readUnit(): string | null {
    if (!this.consentState.allows("functional")) return null;
    const k = `${this.key}.unit`;
    const raw = this.store.get(k);
    if (raw === null) return null;
    const c = this.core;
    try {
      const n = c.call("frame_open", [c.text(raw), 1]);
      const unit = c.string(n);
      if (/^d:[0-9a-f]{32}$/.test(unit)) return unit;
      this.store.quarantine(k, raw, "SNAPSHOT_CORRUPT", "the device seed is not one this module draws");
    } catch (e) {
      const err = coded(e, "SNAPSHOT_CORRUPT");
      if (err.code === "SNAPSHOT_VERSION") this.newerFormat(k);
      else if (err.code !== "POISONED") this.store.quarantine(k, raw, err.code, err.message);
    }
    return null;
  }

  private writeUnit(unit: string): void {
    if (this.consentState.allows("functional")) this.store.set(`${this.key}.unit`, seal(this.clock(), 0, unit));
  }

  /** Reward this visitor's running trial of bandit experiment `key` (reward in [0, 1], default 1). */
  rewardExperiment(key: string, reward: number = 1): void {
    this.ab.index(key);
    if (typeof reward !== "number" || !(reward >= 0 && reward <= 1)) {
      throw fail("INVALID_REWARD", `reward must be a finite number in [0, 1], but is ${describe(reward)}`);
    }
    this.ab.reward(key as string, reward, this.clock());
    this.abChanged = true;
    this.changed();
  }

  /** Hand a first exposure to `onExposure`: the only way an assignment leaves the device, and only if the site sends it on. */
  private expose(a: Assignment): void {
    const f = this.spec.onExposure;
    if (f === null || a.unit === "none") return;
    const e: ExposureEvent = {
      experiment: a.key, variant: a.variant, index: a.index, probability: a.probability, hash: a.hash,
      allocation: a.allocation, unit: a.unit,
    };
    if (a.unit === "site" && this.unit !== null) e.unitId = this.unit;
    try {
      f(e);
    } catch {
      // A throwing callback must not break the page.
    }
  }

  /** Load the experiments' stored state and the device seed (consent functional and up). */
  private restoreAb(): void {
    if (!this.consentState.allows("functional") || this.ab.h === 0) return;
    const k = `${this.key}.ab`;
    const s = this.readStored(k);
    if (s.bytes !== null) {
      try {
        this.ab.restore(s.bytes, this.clock(), this.spec.maxBytes);
      } catch (e) {
        const err = coded(e, "SNAPSHOT_CORRUPT");
        if (this.setAside(err, k) === null) this.report(err.code, err.message, e);
      }
    }
    const unit = this.readUnit();
    if (unit !== null) this.ab.useDevice(unit, true);
    else if (this.ab.deviceUnit() !== "") this.writeUnit(this.ab.deviceUnit());
  }

  // --- writing storage ------------------------------------------------------------

  /** Something changed: store it `flushDelayMs` from now (when consent allows). */
  private changed(): void {
    if (this.timer !== null || this.closed) return;
    const r = rank(this.consentState.effective);
    if (r === 2 || (r === 1 && this.abChanged)) this.schedule(this.spec.flushDelayMs);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, ms);
    (this.timer as { unref?: () => void }).unref?.();
  }

  private cancelTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Store now (otherwise `flushDelayMs` after an update), merged with other tabs under a Web Lock. Never rejects. */
  async flush(): Promise<FlushResult> {
    this.cancelTimer();
    try {
      if (!this.core.full) await this.ready;
      if (!this.core.full) {
        return { written: false, reason: "learning-unavailable", error: this.learningLost ?? fail("WASM_UNAVAILABLE", "the full engine is not loaded") };
      }
      const locks = globalThis.navigator?.locks;
      if (typeof locks?.request === "function") {
        try {
          return await locks.request(`${this.key}.lock`, async () => {
            await this.awaitNewest(locks, this.key);
            const r = this.flushSnapshot();
            if (r.written) await this.holdGeneration(locks, this.key, r.generation!);
            if (this.abDirty()) {
              const k = `${this.key}.ab`;
              await this.awaitNewest(locks, k);
              r.experiments = this.flushAb();
              if (r.experiments.written) await this.holdGeneration(locks, k, r.experiments.generation!);
            }
            return r;
          });
        } catch (e) {
          // Locks refused (an opaque-origin iframe): write without them, and say so once.
          this.store.unavailableLocks(e);
        }
      }
      return this.flushNow(true);
    } catch (e) {
      const err = coded(e, "NUMERICAL_ERROR");
      this.report(err.code, err.message, e);
      return { written: false, reason: "error", error: err };
    }
  }

  /**
   * Write now, without the locks: when they are refused, and when the page
   * is being left (`pagehide`: no time for them). Merges onto what this tab
   * sees. On the first-decision module there is nothing to merge with yet.
   */
  private flushNow(fromFlush: boolean): FlushResult {
    if (!this.core.full || this.closed) return { written: false, reason: "learning-unavailable" };
    try {
      const r = this.consentState.effective === "personalization" ? this.flushSnapshot() : { written: false, reason: "consent" };
      if (this.abDirty()) r.experiments = this.flushAb();
      return r;
    } catch (e) {
      const err = coded(e, "NUMERICAL_ERROR");
      if (fromFlush) this.report(err.code, err.message, e);
      return { written: false, reason: "error", error: err };
    }
  }

  private abDirty(): boolean {
    return this.ab.h !== 0 && (this.abChanged || this.ab.pending() > 0);
  }

  /** The generation of the value under `k` as this tab sees it (0: none). */
  private seenGeneration(k: string): number {
    const raw = this.store.get(k);
    if (raw === null) return 0;
    const a = nthIndex(raw, ";", 3);
    const b = nthIndex(raw, ";", 4);
    const g = Number(raw.slice(a + 1, b));
    return a > 0 && b > a && Number.isSafeInteger(g) ? g : 0;
  }

  /** Wait (at most 2 s) until this tab's localStorage shows the newest generation of `k` any living tab wrote. */
  private async awaitNewest(locks: LockManager, k: string): Promise<void> {
    if (typeof locks.query !== "function") return;
    const prefix = `${k}.generation.`;
    let newest = 0;
    for (const l of (await locks.query()).held ?? []) {
      if (l.name?.startsWith(prefix)) newest = Math.max(newest, Number(l.name.slice(prefix.length)) || 0);
    }
    let seen = this.seenGeneration(k);
    for (let i = 0; i < 400 && seen < newest; i++) {
      await new Promise((r) => setTimeout(r, 5));
      seen = this.seenGeneration(k);
    }
    if (seen < newest) this.record("stale-read", { key: k, detail: `generation ${newest} written elsewhere is not visible here after 2 s` });
  }

  /** Hold the lock that announces generation `g` of `k` (and let go of the last one). */
  private async holdGeneration(locks: LockManager, k: string, g: number): Promise<void> {
    const previous = this.releases.get(k);
    await new Promise<void>((granted) => {
      try {
        locks.request(`${k}.generation.${g}`, () => {
          granted();
          return new Promise<void>((r) => {
            this.releases.set(k, r);
          });
        }).catch(() => granted());
      } catch {
        granted();
      }
    });
    previous?.();
  }

  private releaseAll(): void {
    for (const r of this.releases.values()) r();
    this.releases.clear();
  }

  /** Merge the snapshot (the behaviour store and every slot) with what is stored, and write it. */
  private flushSnapshot(): FlushResult {
    if (this.consentState.effective !== "personalization") return { written: false, reason: "consent" };
    if (this.store.storage === null || this.newer) return { written: false, reason: this.newer ? "newer-format" : "unavailable" };
    const stored = this.readStored(this.key);
    if (this.newer) return { written: false, reason: "newer-format" };
    const generation = stored.generation + 1;
    let bytes = stored.bytes;
    let retried = false;
    const now = this.clock();
    const c = this.core;
    for (;;) {
      try {
        bytes = this.syncParts(bytes, now);
        break;
      } catch (e) {
        const err = coded(e, "NUMERICAL_ERROR");
        // Unreadable stored data is set aside once, then merged from nothing.
        const outcome = err.code === "SNAPSHOT_VERSION" || (!retried && bytes !== null) ? this.setAside(err, this.key) : null;
        if (outcome === "quarantined") {
          retried = true;
          bytes = null;
          continue;
        }
        if (outcome !== null) return { written: false, reason: outcome };
        this.report(err.code, err.message, e);
        return { written: false, reason: "error", error: err };
      }
    }
    if (!this.store.set(this.key, seal(now, generation, toBase64(bytes)))) {
      this.retryLater();
      return { written: false, reason: this.store.status };
    }
    c.call("beh_commit", [this.behavior.h]);
    for (const l of this.slots.values()) c.call("slot_commit", [l.h]);
    this.recovered(this.key);
    this.setStored(bytes);
    return { written: true, bytes: bytes.length, generation };
  }

  /** Merge every part onto `stored` in turn; the snapshot to write. */
  private syncParts(stored: Uint8Array | null, now: number): Uint8Array {
    const c = this.core;
    const max = this.spec.maxBytes;
    let bytes = stored;
    let n = c.call("beh_sync", [this.behavior.h, bytes === null ? -1 : c.put(bytes), now, max]);
    bytes = c.bytes(n);
    for (const [name, l] of this.slots) {
      const nameLen = c.text(name);
      const nameBytes = c.bytes(nameLen);
      const all = new Uint8Array(nameLen + bytes.length);
      all.set(nameBytes);
      all.set(bytes, nameLen);
      c.put(all);
      n = c.call("slot_sync", [l.h, nameLen, bytes.length, now, max]);
      bytes = c.bytes(n);
    }
    return bytes;
  }

  /** Store the experiments' state (consent functional and up; bandit counts only with personalization), merged with other tabs'. */
  private flushAb(): FlushResult {
    const r = rank(this.consentState.effective);
    if (r < 1) return { written: false, reason: "consent" };
    if (this.store.storage === null || this.abNewer) return { written: false, reason: this.abNewer ? "newer-format" : "unavailable" };
    const k = `${this.key}.ab`;
    const stored = this.readStored(k);
    if (this.abNewer) return { written: false, reason: "newer-format" };
    const c = this.core;
    const now = this.clock();
    const args = (b: Uint8Array | null) => [this.ab.h, b === null ? -1 : c.put(b), now, this.spec.maxBytes, this.spec.behavior.maxAgeDays * DAY_MS, r === 2 ? 1 : 0];
    let n: number;
    try {
      n = c.call("ab_sync", args(stored.bytes));
    } catch (e) {
      const err = coded(e, "NUMERICAL_ERROR");
      const outcome = this.setAside(err, k);
      if (outcome !== "quarantined") {
        if (outcome === null) this.report(err.code, err.message, e);
        return { written: false, reason: outcome ?? "error" };
      }
      n = c.call("ab_sync", args(null));
    }
    const bytes = c.bytes(n);
    if (!this.store.set(k, seal(now, stored.generation + 1, toBase64(bytes)))) {
      this.retryLater();
      return { written: false, reason: this.store.status };
    }
    c.call("ab_commit", [this.ab.h]);
    this.abChanged = false;
    return { written: true, bytes: bytes.length, generation: stored.generation + 1 };
  }

  private retryLater(): void {
    this.failures++;
    this.cancelTimer();
    if (!this.closed) this.schedule(Math.min(60_000, 1000 * 2 ** this.failures));
  }

  private recovered(k: string): void {
    if (this.failures > 0) this.record("recovered", { key: k, detail: `stored after ${this.failures} failed attempts` });
    this.failures = 0;
  }

  // --- the full engine ----------------------------------------------------------------

  /**
   * Move every part onto the full engine `full` (loaded after the first
   * decisions): each is rebuilt there from what is stored, and what
   * happened meanwhile is handed over, so nothing is lost or counted twice.
   */
  upgrade(full: Core): void {
    if (this.core.full || this.closed) return;
    const refused = (e: InsituError) => this.report(e.code, `a call made before the full engine arrived was refused when it took over: ${e.message}`, e);
    try {
      let snap = 0;
      if (this.stored !== null) {
        try {
          snap = full.call("snap_decode", [full.put(this.stored), this.spec.maxBytes]);
        } catch {
          snap = 0;
        }
      }
      const now = this.clock();
      this.behavior.handOver(full, snap, now);
      for (const [name, l] of this.slots) l.handOver(full, snap, name, refused);
      this.ab.handOver(full, refused);
      this.dropSnap();
      this.core = full;
      this.snap = snap;
    } catch (e) {
      this.lostLearning(coded(e, "POISONED"));
      return;
    }
    this.markReady();
    if (this.timer === null) this.changed();
  }

  /** The full engine could not be loaded: this page view decides, but learns and stores nothing more. */
  lostLearning(e: InsituError): void {
    this.learningLost = e;
    this.record("handover-failed", { code: e.code, detail: e.message });
    this.report(e.code, `the full engine could not be loaded (${e.message}); this page view decides but does not learn or store`, e);
    this.markReady();
  }

  // --- audit and forget ----------------------------------------------------------------

  /** A machine-readable manifest of what is stored and why (schema: audit.schema.json). */
  audit(): Audit {
    const now = this.clock();
    const b = this.spec.behavior;
    let byType: Record<string, number> = {};
    try {
      byType = this.behavior.counts();
    } catch {
      // A poisoned core: nothing to count.
    }
    const savedAt = (v: string): number | null => savedAtOf(v);
    return {
      ...manifestBase(this.store, this.consentState, this.store.status, savedAt, b.maxAgeDays, now),
      retention: { ...b, types: [...b.types] },
      events: { total: Object.values(byType).reduce((a, x) => a + x, 0), byType },
      models: [...this.slots].map(([slot, l]) => ({
        slot,
        modelVersion: l.modelVersion,
        hashVersion: 1 as const,
        policy: l.policy,
        updates: safe(() => l.updates(), 0),
      })),
      experiments: {
        unit: safe(() => this.unitSource(), "none"),
        list: this.ab.specs.map((e, i) => {
          const out: Audit["experiments"]["list"][number] = { key: e.key, variants: [...e.variants], hash: e.hash, allocation: e.allocation.type };
          if (e.allocation.type === "thompson") out.counts = safe(() => this.ab.counts(i), []);
          return out;
        }),
        exposures: safe(() => this.ab.exposures(), []),
      },
      history: this.history.list().map((h) => ({ ...h })),
    };
  }

  /** Erase every key this module wrote (quarantine and history too) and everything in memory, in every tab. Returns the audit. */
  forget(): Audit {
    this.forgetHere();
    this.broadcast({ type: "forget" });
    return this.audit();
  }

  private forgetHere(): void {
    this.cancelTimer();
    this.releaseAll();
    for (const k of this.store.ownKeys()) this.store.remove(k);
    safe(() => this.behavior.clear(), undefined);
    for (const l of this.slots.values()) safe(() => l.reset(), undefined);
    safe(() => this.ab.reset(), undefined);
    this.abChanged = false;
    this.history.clear();
    this.setStored(null);
    this.failures = 0;
  }

  // --- other tabs and the page's life ----------------------------------------------------

  /** Hear `forget()` and consent changes from the site's other tabs. */
  private listen(warmed: Warm | null): void {
    const name = `insitu:${this.key}`;
    try {
      if (warmed?.channel?.name === name) {
        this.channel = warmed.channel;
        warmed.channel = null;
      } else {
        warmed?.close();
        if (typeof globalThis.BroadcastChannel !== "function") return;
        this.channel = new BroadcastChannel(name);
      }
      this.channel.onmessage = (m: MessageEvent) => {
        const d = m.data as { type?: unknown; tier?: unknown } | null;
        if (d?.type === "forget") this.forgetHere();
        else if (d?.type === "consent" && (TIERS as readonly unknown[]).includes(d.tier)) {
          const before = this.consentState.set(d.tier as Tier);
          if (rank(this.consentState.effective) < rank(before)) this.enforce();
        }
      };
      (this.channel as { unref?: () => void }).unref?.();
    } catch {
      // No channel: other tabs see the storage change on their next read.
    }
  }

  private broadcast(message: object): void {
    try {
      this.channel?.postMessage(message);
    } catch {
      // A closed channel: the other tabs learn it on their next read.
    }
  }

  /** Store what is pending when the page is hidden or left, within the consent rules. */
  private watchExit(): void {
    try {
      globalThis.document?.addEventListener?.("visibilitychange", this.onHide);
      globalThis.addEventListener?.("pagehide", this.onPageHide);
    } catch {
      // No page events (a worker, Node).
    }
  }

  /** Stop timers, listeners and the cross-tab channel (tests, single-page apps tearing down). */
  close(): void {
    this.closed = true;
    this.cancelTimer();
    this.releaseAll();
    try {
      this.channel?.close();
      globalThis.document?.removeEventListener?.("visibilitychange", this.onHide);
      globalThis.removeEventListener?.("pagehide", this.onPageHide);
    } catch {
      // Nothing to stop.
    }
    this.channel = null;
    this.dropSnap();
  }
}

function safe<T>(f: () => T, otherwise: T): T {
  try {
    return f();
  } catch {
    return otherwise;
  }
}

/** The public face of a site's slot. */
function siteSlot(name: string, l: Learner): Slot {
  return {
    name,
    rank: (o) => l.rank(o),
    explain: (o) => l.explain(o),
    reward: (o) => l.reward(o),
    activate: (o) => l.activate(o),
    learn: (o) => l.learn(o),
    stats: () => l.stats(),
    get variants() {
      return l.variants;
    },
    get modelVersion() {
      return l.modelVersion;
    },
    get policy() {
      return l.policy;
    },
  };
}
