// The page's site: consent, storage, the behaviour store, the slots and the
// experiments, composed. Each concern lives in its own module (storage.ts,
// consent.ts, audit.ts, behavior.ts, experiments.ts, slot.ts); this one
// wires them together until the full engine arrives. Its write path
// (`flush`: merging under a Web Lock, with generations) and the move onto
// the full engine (`upgrade`) are in full.ts, which a page loads with the
// full engine after its first paint; the members marked internal are theirs.
//
// Storage is localStorage: it is synchronous, so what earlier page views
// learned is restored before the first decision, with no flicker. A page
// view with nothing stored (a first visit) decides on the first-decision
// module, which reads no storage format; one with stored state decides on
// the full engine from the start (`load()`), which restores it (full.ts).

import { History, manifestBase, type Audit } from "./audit.js";
import { Behavior, type BehaviorEvent } from "./behavior.js";
import { checkTier, Consent, type ConsentState, rank, TIERS } from "./consent.js";
import type { Core } from "./core.js";
import { plane } from "./engine.js";
import { coded, describe, type ErrorCode, fail, type InsituError, option } from "./errors.js";
import { type Assignment, type ExperimentInfo, Experiments, type ExposureEvent } from "./experiments.js";
import { Context, Hasher } from "./features.js";
import { type Decision, type Evaluation, type Explanation, Learner, Prepared, random, type Stats } from "./slot.js";
import type { ExperimentSpec, OpenSpec, Tier } from "./spec.js";
import type {
  ActivateOptions, ConsentTier, ContextObject, ExperimentConfig, EvaluateOptions, ExplainOptions, InsituOptions, LearnOptions, RankOptions,
  RewardOptions,
} from "./types.js";
import { defaultStorage, type Event, openFrame, type Sink, Store } from "./storage.js";
import { fnv1a32 } from "./hash.js";
import { checkRun, rewardValue } from "./validate/calls.js";
import { checkUnit } from "./validate/open.js";
import { checkName } from "./validate/slot.js";

const DAY_MS = 86_400_000;

/** The result of `flush()`. */
export interface FlushResult {
  written: boolean;
  /** Snapshot size when written. */
  bytes?: number;
  /** The stored snapshot's generation when written (one above the one it merged onto). */
  generation?: number;
  /** Why nothing was written: `consent`, `unavailable`, `quota-exceeded`, `newer-format`, `quarantine-failed`, `error`,
   * `forgotten` (`forget()`, in this tab or another, erased everything while the write waited for its lock),
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
  /**
   * What other policies would have earned on the decisions this slot logged and settled (the current
   * policy, greedy, uniform, each variant as a control): IPS, SNIPS and doubly robust estimates with
   * intervals. `null` before the full engine has arrived (`await site.ready`) and on a fallback site;
   * throws `NO_DATA` before any settled decision.
   */
  evaluate(options?: EvaluateOptions): Evaluation | null;
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
  /** @internal */
  markReady!: () => void;
  /** Resolves once the full engine has taken over (or failed to load: then this page view decides but does not learn or store). */
  readonly ready = new Promise<void>((r) => {
    this.markReady = r;
  });
  readonly key: string;
  /** @internal The module the site runs on: the first-decision module, then the full engine. */
  core: Core;
  /** @internal */
  readonly clock: () => number;
  /** @internal */
  readonly store: Store;
  /** @internal */
  readonly consentState: Consent;
  readonly #history: History;
  readonly #hasher = new Hasher();
  /** @internal */
  readonly behavior: Behavior;
  /** @internal */
  readonly ab: Experiments;
  /** @internal */
  readonly slots = new Map<string, Learner>();
  #unit: string | null;
  /**
   * First exposures of the device unit reported on the first-decision
   * module, as hashes of experiment and variant (at most 64, the oldest
   * dropped): stored with the device seed the moment they are reported, so a
   * visitor who leaves before the full engine stores its exposure log
   * (`<key>.ab`) is not reported again on the next visit.
   */
  #exposed: string[] = [];
  /** @internal The stored snapshot read at open (bytes), for slots opened later and for the full engine. */
  stored: Uint8Array | null = null;
  /** @internal `stored` decoded on the current core (0: not yet). */
  snap = 0;
  /** @internal The stored snapshot is a newer build's: kept in memory only. */
  newer = false;
  /** @internal The same for the experiments' state (or the device seed). */
  abNewer = false;
  /** @internal */
  abChanged = false;
  /** @internal */
  timer: ReturnType<typeof setTimeout> | null = null;
  /** @internal How many times this site forgot everything (a flush in progress then writes nothing). */
  forgets = 0;
  /** @internal Writes refused in a row (full.ts backs off). */
  failures = 0;
  #channel: BroadcastChannel | null = null;
  /** @internal The generation locks this tab holds, by key (full.ts). */
  readonly releases = new Map<string, () => void>();
  #learningLost: InsituError | null = null;
  /** @internal */
  closed = false;
  readonly #onHide = (): void => {
    if (globalThis.document?.visibilityState === "hidden") void this.flush();
  };
  readonly #onPageHide = (): void => {
    // Leaving the page: no time for the locks.
    if (this.core.full) plane?.flushNow(this, false);
  };

  /** @internal The checked options. */
  readonly spec: OpenSpec;

  constructor(core: Core, spec: OpenSpec, warmed: Warm | null) {
    this.core = core;
    this.spec = spec;
    this.key = spec.key;
    this.clock = () => {
      const t = spec.now();
      if (typeof t !== "number" || !Number.isFinite(t)) throw option("now", `should return a finite time in ms, but returned ${describe(t)}`);
      return t;
    };
    if (core.full) this.markReady();
    this.consentState = new Consent(spec.consent, spec.defaultConsent, spec.gpc === "honor");
    const storage = spec.storage === "default" ? defaultStorage() : spec.storage;
    this.store = new Store(storage instanceof Error ? null : storage, this.key, this, this.clock);
    this.#history = new History(this.store, this.consentState, this.clock, () => spec.behavior.maxAgeDays * DAY_MS);
    if (storage instanceof Error) this.store.unavailable(storage);
    this.behavior = new Behavior(core, spec.behavior, this.#hasher);
    this.ab = new Experiments(core, () =>
      this.report(
        "WASM_UNAVAILABLE",
        "the full engine had not arrived after 65536 changes to the experiments' state: what they learned on this page view is not handed over to it (exposures may be reported again); assignments go on",
      ));
    this.#unit = spec.unit;
    if (this.consentState.state.source !== "default") this.#enforce();
    if (core.full && this.consentState.allows("personalization")) plane!.restoreAll(this);
    this.#listen(warmed);
    try {
      // Store what is pending when the page is hidden or left.
      globalThis.document?.addEventListener?.("visibilitychange", this.#onHide);
      globalThis.addEventListener?.("pagehide", this.#onPageHide);
    } catch {
      // No page events (a worker, Node).
    }
  }

  // --- reporting ------------------------------------------------------------

  report(code: ErrorCode, message: string, cause?: unknown): void {
    call(this.spec.onError, fail(code, message, cause));
  }

  record(event: Event, extra?: { code?: ErrorCode; key?: string; detail?: string }): void {
    this.#history.record(event, extra);
  }

  /** Report what `e` says (any thrown value, worded as `code`); its InsituError. */
  #failed(e: unknown, code: ErrorCode): InsituError {
    const err = coded(e, code);
    this.report(err.code, err.message, e);
    return err;
  }

  // --- consent ----------------------------------------------------------------

  get consent(): ConsentState {
    return this.consentState.state;
  }

  /** Set the visitor's tier (from the site's consent manager); lowering it deletes what the new tier does not allow, in every tab. */
  setConsent(tier: ConsentTier): ConsentState {
    const before = this.consentState.set(checkTier(tier));
    const after = this.consentState.effective;
    if (before !== after) this.record("consent-changed", { detail: `${before} -> ${after}` });
    this.#enforce();
    if (after === "personalization" && before !== after && this.core.full) plane!.restoreAll(this);
    if (before === "none" && after !== before && this.ab.h !== 0) this.restoreAb();
    this.#broadcast({ type: "consent", tier });
    return this.consent;
  }

  /** Delete what the tier in force does not allow. */
  #enforce(): void {
    const r = rank(this.consentState.effective);
    const removed = this.store.ownKeys().filter((k) => r < this.store.tierOf(k) && this.store.remove(k));
    if (r < 2) {
      plane?.setStored(this, null);
      plane?.reportsOff(this);
      this.ab.reported = [];
    }
    if (r < 1) {
      this.cancelTimer();
      this.ab.dropDevice();
      this.#exposed = [];
    } else if (r < 2 && this.ab.h !== 0) {
      // The stored experiments state may hold bandit counts: rewrite it without.
      this.abChanged = true;
      this.changed();
    }
    if (removed.length > 0) this.record("deleted", { detail: `consent ${this.consentState.effective}: ${removed.join(", ")}` });
  }

  // --- slots ------------------------------------------------------------------

  /** Open a slot: `new Insitu(options)`, restored from storage when consent allows; its updates are stored. */
  slot(name: string, options: InsituOptions): Slot {
    if (this.slots.has(checkName(name))) throw option("slot", `\`${name}\` is already open`);
    const p = new Prepared(options, this.#hasher);
    const behavior = p.allow.has("behavior");
    const l = new Learner(this.core, p, this.clock, () => (behavior ? this.#derived((now) => this.behavior.encoded(now)) : null), () => this.changed());
    this.slots.set(name, l);
    if (this.core.full && this.consentState.allows("personalization")) plane!.restorePart(this, name);
    return {
      name,
      rank: (o) => l.rank(o),
      explain: (o) => l.explain(o),
      evaluate: (o) => l.evaluate(o),
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

  /** What the behaviour store derives now (`get`); null when it cannot (reported). */
  #derived<T>(get: (now: number) => T): T | null {
    try {
      return get(this.clock());
    } catch (e) {
      this.#failed(e, "INVALID_OPTION");
      return null;
    }
  }

  /** A page context, encoded once and shared by every slot that ranks on it: pass it as `rank({ context })`. */
  context(context: ContextObject): Context {
    return new Context(this.#hasher, context);
  }

  // --- behaviour ----------------------------------------------------------------

  /** Record a behaviour event. Throws `INVALID_EVENT` or `UNKNOWN_EVENT_TYPE`; nothing is stored then. */
  track(event: BehaviorEvent): void {
    this.behavior.track(event, this.clock());
    this.changed();
  }

  /** The `behavior` namespace the slots add to each context. */
  features(): Record<string, number | string> | null {
    const named = this.#derived((now) => this.behavior.named(now));
    return named && { ...named };
  }

  // --- experiments ----------------------------------------------------------------

  /** Configure the A/B experiments (replacing earlier ones; device state is kept). Throws `INVALID_EXPERIMENT`, changing nothing. */
  experiments(configs: ExperimentConfig[]): ExperimentInfo[] {
    const first = this.ab.h === 0;
    const info = this.ab.configure(configs);
    if (first) {
      if (this.#unit !== null) this.ab.siteUnit(this.#unit);
      this.restoreAb();
    }
    return info;
  }

  /** Use the site's own id as the unit key from now on (null: the device seed). */
  setUnit(unit: string | null): void {
    this.ab.siteUnit((this.#unit = checkUnit(unit)));
  }

  /** Where the unit key comes from. */
  #unitSource(): Assignment["unit"] {
    return this.#unit !== null ? "site" : this.ab.deviceUnit() !== "" ? "device" : "none";
  }

  /** This visitor's variant of experiment `key`; a first exposure is logged and passed to `onExposure`. */
  run(key: string, options?: { attributes?: Record<string, unknown> }): Assignment {
    const config = this.ab.specs[this.ab.index(key)]!;
    const attributes = checkRun(options);
    if (this.#unit === null && this.consentState.allows("functional") && this.ab.deviceUnit() === "") this.#drawDeviceUnit();
    // Targeting sees the attributes and, under `behavior`, the behaviour namespace (the caller's own `behavior`
    // hidden): derived only for a condition that reads it, and read from the store's cache, not copied.
    let seen: object | undefined;
    const behavior = () => (seen ??= { behavior: this.#derived((now) => this.behavior.named(now)) ?? {} });
    const [a, first] = this.ab.assign(key, attributes, behavior, this.clock(), this.#unitSource());
    if (first || a.allocation === "thompson") {
      this.abChanged = true;
      this.changed();
    }
    const f = this.spec.onExposure;
    // Before the full engine has read the stored exposure log every exposure looks first: the device's own
    // log of those reported (`#newExposure`) keeps a returning unit's from counting again.
    const fresh = first && (f !== null || config.reports !== undefined) && a.unit !== "none" && (a.unit !== "device" || this.core.full || this.#newExposure(a));
    if (a.inExperiment) {
      this.ab.shown.set(key, a.index);
      this.#count(config, 0, a.index, 0);
      if (fresh) this.#count(config, 1, a.index, 0);
    }
    // A first exposure goes to `onExposure`: the only way an assignment leaves the device, and only if the site sends it on.
    if (fresh && f !== null) {
      const e: ExposureEvent = {
        experiment: a.key, variant: a.variant, index: a.index, probability: a.probability, hash: a.hash,
        allocation: a.allocation, unit: a.unit as ExposureEvent["unit"],
      };
      if (a.unit === "site") e.unitId = this.#unit!;
      call(f, e);
    }
    return a;
  }

  /**
   * A device seed for this visitor: the one another tab stored meanwhile,
   * else 128 fresh bits, stored under `<key>.unit` at once (a visitor who
   * leaves right away keeps the assignment).
   */
  #drawDeviceUnit(): void {
    let unit = this.#readUnit();
    if (unit === null) {
      unit = "d:";
      for (const x of random(16)) unit += x.toString(16).padStart(2, "0");
      this.#writeUnit(unit);
    }
    this.ab.useDevice(unit, true);
  }

  /** Whether this first exposure on the first-decision module is new to the device seed's record (then it is added, and stored at once). */
  #newExposure(a: Assignment): boolean {
    const h = fnv1a32(`${a.key}\u0000${a.variant}`).toString(16).padStart(8, "0");
    if (this.#exposed.includes(h)) return false;
    if (this.#exposed.push(h) > 64) this.#exposed.shift();
    this.#writeUnit(this.ab.deviceUnit());
    return true;
  }

  /** The device seed stored under `<key>.unit`, or null (what cannot be read is set aside). */
  #readUnit(): string | null {
    const k = `${this.key}.unit`;
    const raw = this.consentState.allows("functional") ? this.store.get(k) : null;
    if (raw === null) return null;
    let unit: string;
    try {
      unit = openFrame(raw).payload;
    } catch (e) {
      const err = coded(e, "SNAPSHOT_CORRUPT");
      if (err.code === "SNAPSHOT_VERSION") this.newerFormat(k);
      else this.store.quarantine(k, raw, err.code, err.message);
      return null;
    }
    // `d:` and 32 hex digits, then the exposures reported before the full engine arrived (`/` and hashes).
    const m = /^(d:[0-9a-f]{32})(?:\/([0-9a-f]{8}(?:,[0-9a-f]{8}){0,63}))?$/.exec(unit);
    if (m !== null) {
      this.#exposed = m[2]?.split(",") ?? [];
      return m[1]!;
    }
    this.store.quarantine(k, raw, "SNAPSHOT_CORRUPT", "the device seed is not one this module draws");
    return null;
  }

  /** @internal A newer build's data under `k` is left untouched; this page keeps it in memory only. */
  newerFormat(k: string): void {
    const snapshot = k === this.key;
    if (snapshot ? this.newer : this.abNewer) return;
    if (snapshot) this.newer = true;
    else this.abNewer = true;
    this.record("newer-format", { key: k, detail: "written by a newer insitu; left untouched, kept in memory only" });
  }

  #writeUnit(unit: string): void {
    const exposed = this.#exposed.length > 0 ? `/${this.#exposed.join(",")}` : "";
    if (this.consentState.allows("functional")) this.store.put(`${this.key}.unit`, this.clock(), 0, unit + exposed);
  }

  /** Reward experiment `key` (reward in [0, 1], default 1): a bandit's running trial, and with `reports` the variant `run` showed on this page view. */
  rewardExperiment(key: string, reward: number = 1): void {
    const e = this.ab.specs[this.ab.index(key)]!;
    const r = rewardValue(reward);
    const shown = this.ab.shown.get(key);
    // A fixed-weights experiment with reports takes rewards too: they count for the variant shown on this page view.
    if (e.reports === undefined || e.allocation.type === "thompson") this.ab.reward(key, r, this.clock());
    else if (shown === undefined) {
      throw fail("UNKNOWN_DECISION", `experiment \`${key}\` showed this unit no variant on this page view: run(key) was not called, or did not put the unit in the test`);
    }
    if (shown !== undefined) this.#count(e, 2, shown, r);
    this.abChanged = true;
    this.changed();
  }

  /** Count an event for an experiment's reports (consent `personalization` only; at most 4096 wait for full.js). */
  #count(e: ExperimentSpec, kind: number, arm: number, value: number): void {
    if (e.reports !== undefined && this.consentState.allows("personalization") && this.ab.reported.length < 4096) {
      this.ab.reported.push([e.key, kind, arm, value]);
      this.changed();
    }
  }

  /**
   * Load the experiments' stored state (on the full engine: full.ts) and
   * the device seed (consent functional and up).
   *
   * @internal
   */
  restoreAb(): void {
    if (!this.consentState.allows("functional") || this.ab.h === 0) return;
    if (this.core.full) plane!.restoreAbState(this);
    const unit = this.#readUnit();
    if (unit !== null) this.ab.useDevice(unit, true);
    else if (this.ab.deviceUnit() !== "") this.#writeUnit(this.ab.deviceUnit());
  }

  // --- writing storage ------------------------------------------------------------

  /** @internal Something changed: store it `flushDelayMs` from now (when consent allows). */
  changed(): void {
    if (this.timer !== null || this.closed) return;
    const r = rank(this.consentState.effective);
    if (r === 2 || (r === 1 && this.abChanged)) this.schedule(this.spec.flushDelayMs);
  }

  /** @internal */
  schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, ms);
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** @internal */
  cancelTimer(): void {
    clearTimeout(this.timer ?? undefined);
    this.timer = null;
  }

  /** Store now (otherwise `flushDelayMs` after an update), merged with other tabs under a Web Lock (full.ts). Never rejects. */
  async flush(): Promise<FlushResult> {
    this.cancelTimer();
    if (!this.core.full) await this.ready;
    if (this.core.full && plane !== null) return plane.flush(this);
    return { written: false, reason: "learning-unavailable", error: this.#learningLost ?? fail("WASM_UNAVAILABLE", "the full engine is not loaded") };
  }

  /** @internal The full engine could not be loaded: this page view decides, but learns and stores nothing more. */
  lostLearning(e: InsituError): void {
    this.#learningLost = e;
    this.record("handover-failed", { code: e.code, detail: e.message });
    this.report(e.code, `the full engine could not be loaded (${e.message}); this page view decides but does not learn or store`, e);
    this.markReady();
  }

  // --- audit and forget ----------------------------------------------------------------

  /** A machine-readable manifest of what is stored and why (schema: audit.schema.json). */
  audit(): Audit {
    const b = this.spec.behavior;
    const byType = safe(() => this.behavior.counts(), {});
    return {
      ...manifestBase(this.store, this.consentState, b.maxAgeDays, this.clock()),
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
        unit: safe(() => this.#unitSource(), "none"),
        list: this.ab.specs.map((e, i) => ({
          key: e.key,
          variants: [...e.variants],
          hash: e.hash,
          allocation: e.allocation.type,
          ...(e.allocation.type === "thompson" ? { counts: safe(() => this.ab.counts(i), []) } : {}),
        })),
        exposures: safe(() => this.ab.exposures(), []),
      },
      reports: safe(() => plane?.reportsAuditOf(this) ?? [], []),
      history: this.#history.list().map((h) => ({ ...h })),
    };
  }

  /** Erase every key this module wrote (quarantine and history too) and everything in memory, in every tab. Returns the audit. */
  forget(): Audit {
    this.#forgetHere();
    this.#broadcast({ type: "forget" });
    return this.audit();
  }

  #forgetHere(): void {
    this.forgets++;
    this.cancelTimer();
    this.#releaseAll();
    for (const k of this.store.ownKeys()) this.store.remove(k);
    safe(() => this.behavior.clear(), undefined);
    for (const l of this.slots.values()) safe(() => l.reset(), undefined);
    safe(() => this.ab.reset(), undefined);
    this.ab.reported = [];
    this.ab.shown.clear();
    plane?.reportsOff(this);
    this.#exposed = [];
    this.abChanged = false;
    this.#history.clear();
    plane?.setStored(this, null);
    this.failures = 0;
  }

  #releaseAll(): void {
    for (const r of this.releases.values()) r();
    this.releases.clear();
  }

  // --- other tabs and the page's life ----------------------------------------------------

  /** Hear `forget()` and consent changes from the site's other tabs. */
  #listen(warmed: Warm | null): void {
    const name = `insitu:${this.key}`;
    try {
      if (warmed?.channel?.name === name) {
        this.#channel = warmed.channel;
        warmed.channel = null;
      } else {
        warmed?.close();
        if (typeof globalThis.BroadcastChannel !== "function") return;
        this.#channel = new BroadcastChannel(name);
      }
      this.#channel.onmessage = (m: MessageEvent) => {
        const d = m.data as { type?: unknown; tier?: unknown } | null;
        if (d?.type === "forget") this.#forgetHere();
        else if (d?.type === "consent" && (TIERS as readonly unknown[]).includes(d.tier)) {
          const before = this.consentState.set(d.tier as Tier);
          if (rank(this.consentState.effective) < rank(before)) this.#enforce();
        }
      };
      (this.#channel as { unref?: () => void }).unref?.();
    } catch {
      // No channel: other tabs see the storage change on their next read.
    }
  }

  #broadcast(message: object): void {
    safe(() => this.#channel?.postMessage(message), undefined);
  }

  /**
   * Stop timers, listeners and the cross-tab channel, and free what the site made in the full engine (tests,
   * single-page apps tearing down): the module's memory is never returned to the browser, but what a closed site freed
   * is reused by the next. Unstored learning is not written; `flush()` first to keep it. A slot used after this gets
   * its fallback.
   */
  close(): void {
    if (!this.closed) plane?.free(this);
    this.closed = true;
    this.cancelTimer();
    this.#releaseAll();
    try {
      this.#channel?.close();
      globalThis.document?.removeEventListener?.("visibilitychange", this.#onHide);
      globalThis.removeEventListener?.("pagehide", this.#onPageHide);
    } catch {
      // Nothing to stop.
    }
    this.#channel = null;
    plane?.dropSnap(this);
  }
}

/** `f()`, or `otherwise` when it throws (a poisoned core, a closed channel). */
function safe<T>(f: () => T, otherwise: T): T {
  try {
    return f();
  } catch {
    return otherwise;
  }
}

/** Call the site's callback `f` with `x`: a throwing callback must not break the page. */
function call<T>(f: ((x: T) => void) | null, x: T): void {
  try {
    f?.(x);
  } catch {
    // Nothing to do.
  }
}
