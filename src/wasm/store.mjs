// The page-level store: consent, durable state, the behaviour store, the
// slots, and the audit. Plain JS in the boundary directory: it does only
// storage I/O and bookkeeping; every byte of learning and behaviour is
// encoded, checked and merged by the Rust core (Insitu#sync, Behavior#sync).
//
// Storage is localStorage: it is synchronous, so the learner and behaviour
// are restored before the first decision without waiting (no flicker), and
// the snapshot (tens of KB) is far below its quota. Writes are merged under
// a Web Lock so two tabs never lose each other's updates. Every value this
// module writes is framed as
//     insitu1;<CRC-32 of what follows this field, hex>;<saved at, ms>;<generation>;<payload>
// so its age and integrity are checked before the payload is read. The
// frame (and base64) is read and written in wasm (src/frame.rs): JS runs
// cold in the interpreter on a page's first load, where checking the frame
// took about 2 ms; compiled wasm does it in tens of microseconds.
//
// localStorage is not linearizable across tabs: Chromium gives each renderer
// process a cached copy that other tabs' writes reach asynchronously, so a
// tab holding the lock can read a value one write old and merge onto it,
// losing the write it missed (the two-page browser test lost 12% of updates
// this way). So each snapshot write carries a generation one above the one
// it merged onto, and its writer holds a Web Lock named after that
// generation until it writes again. The lock manager is consistent, so the
// next writer learns the newest generation from navigator.locks.query() and
// waits until its copy of localStorage shows it before merging.

export const TIERS = ["none", "functional", "personalization"];
const DAY_MS = 86_400_000;
/** What each consent tier lets this module keep in storage. */
const PERSISTS = {
  none: [],
  functional: ["audit-history", "experiments"],
  personalization: ["audit-history", "experiments", "snapshot", "quarantine"],
};
/** Audit history entries kept. */
const MAX_HISTORY = 50;
/** Quarantine keys: `<key>.quarantine.1` to `.3`. */
const MAX_QUARANTINE = 3;
const utf8 = new TextEncoder();
export const KEY_RE = /^[A-Za-z0-9_-]{1,32}$/;
const OPTIONS = [
  "key", "consent", "defaultConsent", "gpc", "behavior", "storage", "now",
  "maxBytes", "flushDelayMs", "onError", "unit", "onExposure",
];
/** Reasons of `Experiments#assign`, by code (src/allocation/assign.rs). */
const REASONS = ["assigned", "no-unit", "targeting", "namespace", "holdout", "coverage"];

export function fail(code, message) {
  const e = new Error(message);
  e.name = "InsituError";
  e.code = code;
  return e;
}

export const option = (field, why) => fail("INVALID_OPTION", `option \`${field}\` ${why}`);

/** A site-supplied unit id: a string of 1 to 256 characters, or null. */
function checkUnit(unit) {
  if (unit !== null && (typeof unit !== "string" || unit.length === 0 || unit.length > 256)) {
    throw option("unit", `should be a string of 1 to 256 characters or null, but is ${String(unit)}`);
  }
  return unit;
}

const isQuota = (e) =>
  e != null && (e.name === "QuotaExceededError" || e.name === "NS_ERROR_DOM_QUOTA_REACHED" ||
    e.code === 22 || e.code === 1014);

/** The page's localStorage, or null where reading it throws (blocked by policy). */
export function defaultStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

/** One decision slot of the store: `Insitu`'s methods, with the behaviour
 * features added to every context and each update scheduled for storage. */
class Slot {
  constructor(site, name, inner) {
    this.site = site;
    this.name = name;
    this.inner = inner;
  }

  rank(options) {
    return this.inner.rank(this.withBehavior(options));
  }

  explain(options) {
    return this.inner.explain(this.withBehavior(options));
  }

  /** `options` with the behaviour features added to its context. */
  withBehavior(options) {
    const behavior = this.site.features();
    if (behavior === null) return options;
    const o = options == null || typeof options !== "object" ? {} : options;
    const context = o.context != null && typeof o.context === "object" ? o.context : {};
    return { ...o, context: { ...context, behavior } };
  }

  reward(options) {
    this.inner.reward(options);
    this.site.changed();
  }

  activate(options) {
    this.inner.activate(options);
    this.site.changed();
  }

  learn(options) {
    this.inner.learn(options);
    this.site.changed();
  }

  stats() {
    return this.inner.stats();
  }

  get variants() {
    return this.inner.variants;
  }

  get modelVersion() {
    return this.inner.modelVersion;
  }

  get policy() {
    return this.inner.policy;
  }
}

/** What the page and the fallback site (load.mjs) share: the consent tier
 * and where it came from, and the keys this module holds. Needs `key`,
 * `storage`, `siteTier`, `defaultTier`, `honorGpc` and `effective`. */
export class Consent {
  gpc() {
    return globalThis.navigator?.globalPrivacyControl === true;
  }

  consentSource() {
    if (this.honorGpc && this.gpc() && TIERS.indexOf(this.siteTier ?? this.defaultTier) > 1) return "gpc";
    return this.siteTier === null ? "default" : "site";
  }

  computeTier() {
    const t = this.siteTier ?? this.defaultTier;
    // GPC asks that nothing about the visitor be kept for profiling: at most functional.
    return this.honorGpc && this.gpc() && t === "personalization" ? "functional" : t;
  }

  get consent() {
    return { tier: this.effective, source: this.consentSource(), gpc: this.gpc() };
  }

  /** Every key this module wrote: `key` and `key.*`. */
  ownKeys() {
    const s = this.storage;
    if (s === null) return [];
    try {
      const keys = [];
      for (let i = 0; i < s.length; i++) {
        const k = s.key(i);
        if (k === this.key || (k !== null && k.startsWith(`${this.key}.`))) keys.push(k);
      }
      return keys;
    } catch {
      return [];
    }
  }

  /** What a stored key holds, for the audit. */
  holds(k) {
    return k === this.key ? "snapshot"
      : k === `${this.key}.audit` ? "audit-history"
      : k === `${this.key}.ab` ? "experiments" : "quarantine";
  }

  /** The audit manifest (schema: audit.schema.json). The parts both sites
   * share are built here: every stored key (read with `get`, its save time
   * from `savedAt(value)`, null when unknown) and the consent state; `parts`
   * are the site's own retention, events, models, experiments and history. */
  manifest(status, savedAt, parts) {
    const keys = this.ownKeys().map((key) => {
      const v = this.get(key) ?? "";
      const at = savedAt(v);
      const expiresAt = at === null ? null : at + parts.retention.maxAgeDays * DAY_MS;
      return { key, holds: this.holds(key), bytes: 2 * (key.length + v.length), expiresAt };
    });
    return {
      schema: "insitu-audit/1",
      generatedAt: this.now(),
      network: "none",
      consent: {
        ...this.consent,
        default: this.defaultTier,
        honorsGpc: this.honorGpc,
        persists: PERSISTS[this.effective],
      },
      storage: { backend: "localStorage", status: this.storage === null ? "unavailable" : status, keys },
      ...parts,
    };
  }
}

class Site extends Consent {
  constructor(wasm, o, warmed) {
    super();
    if (o == null || typeof o !== "object") throw option("options", "should be an object");
    for (const k of Object.keys(o)) {
      if (!OPTIONS.includes(k)) throw option(k, "is not a known option");
    }
    const key = o.key ?? "insitu";
    if (typeof key !== "string" || !KEY_RE.test(key)) {
      throw option("key", `should be 1 to 32 letters, digits, \`_\` or \`-\`, but is ${String(key)}`);
    }
    const tier = (field, v) => {
      if (!TIERS.includes(v)) throw option(field, `should be one of ${TIERS.join(", ")}, but is ${String(v)}`);
      return v;
    };
    this.defaultTier = tier("defaultConsent", o.defaultConsent ?? "functional");
    this.siteTier = o.consent === undefined ? null : tier("consent", o.consent);
    const gpc = o.gpc ?? "honor";
    if (gpc !== "honor" && gpc !== "ignore") throw option("gpc", `should be "honor" or "ignore", but is ${String(gpc)}`);
    this.honorGpc = gpc === "honor";
    for (const f of ["now", "onError", "onExposure"]) {
      if (o[f] !== undefined && typeof o[f] !== "function") throw option(f, "should be a function");
    }
    this.now = o.now ?? Date.now;
    this.onError = o.onError ?? null;
    this.onExposure = o.onExposure ?? null;
    this.unit = checkUnit(o.unit ?? null);
    const delay = o.flushDelayMs ?? 1000;
    if (!Number.isFinite(delay) || delay < 0 || delay > 60_000) {
      throw option("flushDelayMs", `should be in [0, 60000], but is ${String(delay)}`);
    }
    this.flushDelayMs = delay;
    if (o.maxBytes !== undefined && !(Number.isInteger(o.maxBytes) && o.maxBytes >= 64 && o.maxBytes <= 16 << 20)) {
      throw option("maxBytes", `should be an integer in [64, 16777216], but is ${String(o.maxBytes)}`);
    }
    this.maxBytes = o.maxBytes ?? 256 << 10;
    if (o.storage !== undefined && o.storage !== null &&
        (typeof o.storage !== "object" || typeof o.storage.getItem !== "function")) {
      throw option("storage", "should be a Storage (getItem, setItem, removeItem, key, length) or null");
    }

    this.Insitu = wasm.Insitu;
    this.wasm = wasm;
    this.fallback = null; // see load.mjs
    this.key = key;
    this.behavior = new wasm.Behavior(o.behavior);
    this.maxAgeMs = this.behavior.maxAgeDays * DAY_MS;
    this.slots = new Map();
    this.history = null; // read from storage on first use: see entries()
    this.timer = null;
    this.failures = 0;
    this.cache = null; // behaviour features of the current minute
    this.tracked = 0;
    this.stored = null; // the snapshot read at open, for slots created later
    this.decoded = null; // `stored` decoded in wasm, once a part restored from it (see setStored())
    this.ab = null; // the Experiments, once the site configures some
    this.abKey = `${key}.ab`;
    this.abInfo = null; // per experiment key: { index, variants, hash, targeted, allocation }
    this.abPending = false; // the experiments state changed since it was stored
    this.abNewer = false; // a newer build's experiments state is stored
    this.releases = new Map(); // per key, the release of the generation lock held
    this.newer = false; // a newer build's data is stored: do not overwrite it
    this.status = "ok";
    this.storage = o.storage === undefined ? defaultStorage() : o.storage;
    if (this.storage === null) this.status = "unavailable";
    this.effective = this.computeTier();
    if (this.consentSource() !== "default") this.enforce();
    if (this.effective === "personalization") this.restoreAll();
    this.listen(warmed);
  }

  // --- consent -------------------------------------------------------------

  /** Set the consent tier the visitor gave (from the site's consent manager). */
  setConsent(tier) {
    if (!TIERS.includes(tier)) throw option("consent", `should be one of ${TIERS.join(", ")}, but is ${String(tier)}`);
    this.siteTier = tier;
    const before = this.effective;
    this.effective = this.computeTier();
    if (before !== this.effective) this.record("consent-changed", { detail: `${before} -> ${this.effective}` });
    this.enforce();
    if (this.effective === "personalization" && before !== "personalization") this.restoreAll();
    if (TIERS.indexOf(before) < 1 && TIERS.indexOf(this.effective) >= 1 && this.ab !== null) this.restoreAb();
    this.broadcast({ type: "consent", tier });
    return this.consent;
  }

  /** Delete what the current tier does not allow. */
  enforce() {
    const rank = TIERS.indexOf(this.effective);
    const removed = [];
    for (const k of this.ownKeys()) {
      const needs = k === this.key || k.startsWith(`${this.key}.quarantine.`) ? 2 : 1;
      if (rank < needs && this.remove(k)) removed.push(k);
    }
    // What was read from storage goes too, with its decoded copy in wasm.
    if (rank < 2) this.setStored(null);
    if (rank < 1) {
      clearTimeout(this.timer);
      this.timer = null;
      this.ab?.dropDeviceUnit();
    } else if (rank < 2 && this.ab !== null) {
      // The stored experiments state may hold bandit counts: rewrite it without.
      this.abChanged();
    }
    if (removed.length > 0) this.record("deleted", { detail: `consent ${this.effective}: ${removed.join(", ")}` });
  }

  // --- storage -------------------------------------------------------------

  /** A stored value's frame `{savedAt, generation, payload?}` (payload
   * `"none"`, `"text"` or `"bytes"`), or `{code, why}` for what is wrong. */
  unframe(raw, payload = "none") {
    try {
      return this.wasm.__openFrame(utf8.encode(raw), payload);
    } catch (e) {
      return { code: e?.code ?? "SNAPSHOT_CORRUPT", why: String(e?.message ?? e) };
    }
  }

  /** Frame `payload` (text, or bytes written as base64) saved now; null,
   * reported, when the site's clock gives no finite time. */
  frame(payload, generation = 0) {
    try {
      return this.wasm.__sealFrame(this.now(), generation, payload);
    } catch (e) {
      this.report(e?.code ?? "INVALID_OPTION", String(e?.message ?? e));
      return null;
    }
  }

  get(k) {
    try {
      return this.storage === null ? null : this.storage.getItem(k);
    } catch (e) {
      this.unavailable(e);
      return null;
    }
  }

  /** Write; on failure report it and return false. */
  set(k, v) {
    if (this.storage === null || v === null) return false;
    try {
      this.storage.setItem(k, v);
      return true;
    } catch (e) {
      if (isQuota(e)) {
        this.status = "quota-exceeded";
        this.report("STORAGE_QUOTA", `storage is full: ${k} (${v.length * 2} bytes) was not written; kept in memory, retrying`, "quota-exceeded", k);
      } else {
        this.unavailable(e);
      }
      return false;
    }
  }

  remove(k) {
    try {
      this.storage?.removeItem(k);
      return true;
    } catch (e) {
      this.unavailable(e);
      return false;
    }
  }

  unavailable(e) {
    if (this.status !== "unavailable") {
      this.status = "unavailable";
      this.report("STORAGE_UNAVAILABLE", `storage is unavailable (${e?.name ?? e}); working in memory only`, "storage-unavailable");
    }
  }

  /** Keep an unreadable value aside (never silently deleted), then clear the key. */
  quarantine(k, raw, code, why) {
    let slot = null;
    let oldest = null;
    for (let i = 1; i <= MAX_QUARANTINE; i++) {
      const q = `${this.key}.quarantine.${i}`;
      const v = this.get(q);
      if (v === null) {
        slot = q;
        break;
      }
      const t = this.unframe(v).savedAt ?? -Infinity;
      if (oldest === null || t < oldest.t) oldest = { q, t };
    }
    if (slot === null) {
      slot = oldest.q;
      this.record("quarantine-dropped", { key: slot, detail: "the oldest quarantined value made room" });
    }
    const entry = JSON.stringify({ key: k, code, reason: why, value: raw });
    if (!this.set(slot, this.frame(entry))) {
      // Not kept aside, so not deleted either: leave it and stay in memory.
      this.record("quarantine-failed", { key: k, code });
      return false;
    }
    this.remove(k);
    this.record("quarantined", { key: k, code, detail: `${why}; kept as ${slot}` });
    this.report(code, `stored data under ${k} was unreadable (${why}); kept as ${slot}, starting from the prior`);
    return true;
  }

  /** One read of the stored snapshot: the `raw` value (null when there is
   * none), its `bytes` (null when there are none or they were set aside) and
   * its `generation` (0 when it has none). */
  readSnapshot(k = this.key) {
    const raw = this.get(k);
    if (raw === null) return { raw, bytes: null, generation: 0 };
    // Base64 of the cap, plus the frame's fields: anything longer is refused
    // before it is copied into wasm and decoded.
    if (raw.length > Math.ceil(this.maxBytes / 3) * 4 + 64) {
      const too = `${raw.length} characters, over the ${this.maxBytes}-byte cap`;
      this.quarantine(k, raw, "SNAPSHOT_TOO_LARGE", too);
      return { raw, bytes: null, generation: 0 };
    }
    const f = this.unframe(raw, "bytes");
    const stored = { raw, bytes: null, generation: f.generation ?? 0 };
    let { code, why } = f;
    if (code === "SNAPSHOT_VERSION") {
      this.newerFormat(k);
      return stored;
    }
    if (code === undefined && f.savedAt + this.maxAgeMs < this.now()) {
      this.remove(k);
      this.record("expired", { key: k, detail: `saved ${new Date(f.savedAt).toISOString()}` });
      return stored;
    }
    if (code === undefined) {
      if (f.payload.length <= this.maxBytes) {
        stored.bytes = f.payload;
        return stored;
      }
      code = "SNAPSHOT_TOO_LARGE";
      why = `${f.payload.length} bytes, over the ${this.maxBytes}-byte cap`;
    }
    this.quarantine(k, raw, code, why);
    return stored;
  }

  /** A newer build's data under `k` is left untouched; this page keeps it in memory only. */
  newerFormat(k = this.key) {
    const flag = k === this.key ? "newer" : "abNewer";
    if (!this[flag]) {
      this[flag] = true;
      this.record("newer-format", { key: k, detail: "written by a newer insitu; left untouched, kept in memory only" });
    }
  }

  /** What a sync error about the stored value `raw` means: a newer build's
   * data is left alone (`newer-format`); unreadable data is set aside
   * (`quarantined`, or `quarantine-failed` when it could not be). Null for
   * errors that are not about stored data. */
  setAside(e, raw, k = this.key) {
    if (e?.code === "SNAPSHOT_VERSION") {
      this.newerFormat(k);
      return "newer-format";
    }
    if (e?.code !== "SNAPSHOT_CORRUPT" && e?.code !== "SNAPSHOT_FOREIGN") return null;
    if (raw === null || this.quarantine(k, raw, e.code, e.message)) return "quarantined";
    return "quarantine-failed";
  }

  // --- restore and flush ---------------------------------------------------

  syncOptions(name) {
    const o = { now: this.now(), maxBytes: this.maxBytes };
    if (name !== undefined) o.slot = name;
    return o;
  }

  /** Load stored state into a part (the behaviour store or the slot
   * `name`), from the snapshot decoded once for all parts. */
  restore(part, name) {
    if (this.stored === null) return;
    try {
      const snapshot = (this.decoded ??= this.wasm.__decodeSnapshot(this.stored, this.maxBytes));
      const now = this.now();
      // As the options object's `now` was, before this took plain numbers.
      if (typeof now !== "number") throw option("now", `should return a number, but returned ${typeof now}`);
      if (name === undefined) part.__restoreSnapshot(snapshot, now);
      else part.__restoreSnapshot(snapshot, name, now);
    } catch (e) {
      const outcome = this.setAside(e, this.get(this.key));
      if (outcome === null) this.report(e?.code ?? "SNAPSHOT_CORRUPT", String(e?.message ?? e));
      else if (outcome !== "newer-format") this.setStored(null);
    }
  }

  /** Free the decoded snapshot (wasm memory). */
  dropDecoded() {
    this.decoded?.free();
    this.decoded = null;
  }

  /** Keep `bytes` as the stored snapshot for slots opened later; a decoded
   * copy of other bytes is freed. */
  setStored(bytes) {
    if (bytes !== this.stored) this.dropDecoded();
    this.stored = bytes;
  }

  restoreAll() {
    this.setStored(this.readSnapshot().bytes);
    if (this.stored === null) return;
    this.restore(this.behavior);
    for (const [name, s] of this.slots) this.restore(s.inner, name);
    if (this.stored !== null) this.record("restored", { key: this.key, detail: `${this.stored.length} bytes` });
  }

  /** A slot: `new Insitu(options)`, restored from storage, its updates stored. */
  slot(name, options) {
    if (typeof name !== "string" || !/^[A-Za-z0-9._-]{1,48}$/.test(name)) {
      throw option("slot", `should be 1 to 48 letters, digits, \`-\`, \`_\` or \`.\`, but is ${String(name)}`);
    }
    if (this.slots.has(name)) throw option("slot", `\`${name}\` is already open`);
    const s = new Slot(this, name, new this.Insitu(options));
    this.slots.set(name, s);
    if (this.effective === "personalization") this.restore(s.inner, name);
    return s;
  }

  /** Record a behaviour event (see `BehaviorEvent`). Throws `INVALID_EVENT` or `UNKNOWN_EVENT_TYPE`. */
  track(event) {
    this.behavior.track(event, this.now());
    this.tracked++;
    this.changed();
  }

  /** The `behavior` namespace for a context, recomputed at most once a minute or after a `track`. */
  features() {
    const now = this.now();
    const minute = Math.floor(now / 60_000);
    const c = this.cache;
    if (c !== null && c.minute === minute && c.tracked === this.tracked) return c.features;
    try {
      const features = this.behavior.features(now);
      this.cache = { minute, tracked: this.tracked, features };
      return features;
    } catch (e) {
      this.report(e?.code ?? "INVALID_OPTION", String(e?.message ?? e));
      return null;
    }
  }

  changed() {
    if (this.timer !== null) return;
    const rank = TIERS.indexOf(this.effective);
    if (rank === 2 || (rank === 1 && this.abPending)) this.schedule(this.flushDelayMs);
  }

  schedule(ms) {
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, ms);
    this.timer?.unref?.();
  }

  /** Store what changed now, merging with other tabs under a Web Lock. */
  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    const locks = globalThis.navigator?.locks;
    if (typeof locks?.request === "function") {
      return locks.request(`${this.key}.lock`, async () => {
        await this.awaitNewest(locks, this.key);
        const r = this.flushLocked();
        if (r.written) await this.holdGeneration(locks, this.key, r.generation);
        if (this.abDirty()) {
          await this.awaitNewest(locks, this.abKey);
          r.experiments = this.flushAbLocked();
          if (r.experiments.written) await this.holdGeneration(locks, this.abKey, r.experiments.generation);
        }
        return r;
      });
    }
    const r = this.flushLocked();
    if (this.abDirty()) r.experiments = this.flushAbLocked();
    return Promise.resolve(r);
  }

  /** The generation of the value under `k` as this tab sees it (0: none). */
  seenGeneration(k) {
    const raw = this.get(k);
    return raw === null ? 0 : (this.unframe(raw).generation ?? 0);
  }

  /** Wait (at most 2 s) until this tab's localStorage shows the newest
   * generation of `k` any living tab wrote; see the header. */
  async awaitNewest(locks, k) {
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
    if (seen < newest) {
      this.record("stale-read", { key: k, detail: `generation ${newest} written elsewhere is not visible here after 2 s` });
    }
  }

  /** Hold the lock that announces generation `g` of `k` (and let go of the last one). */
  async holdGeneration(locks, k, g) {
    const previous = this.releases.get(k);
    await new Promise((granted) => {
      locks.request(`${k}.generation.${g}`, () => {
        granted();
        return new Promise((r) => {
          this.releases.set(k, r);
        });
      });
    });
    previous?.();
  }

  releaseAll() {
    for (const r of this.releases.values()) r();
    this.releases.clear();
  }

  flushLocked() {
    if (this.effective !== "personalization") return { written: false, reason: "consent" };
    if (this.storage === null || this.newer) {
      return { written: false, reason: this.newer ? "newer-format" : "unavailable" };
    }
    const parts = [[this.behavior, undefined], ...[...this.slots].map(([n, s]) => [s.inner, n])];
    const stored = this.readSnapshot();
    const generation = stored.generation + 1;
    if (this.newer) return { written: false, reason: "newer-format" };
    let bytes = stored.bytes;
    let retried = false;
    for (;;) {
      try {
        let b = bytes;
        for (const [p, name] of parts) b = p.sync(b, this.syncOptions(name)).bytes;
        bytes = b;
        break;
      } catch (e) {
        // Unreadable stored data is set aside once, then merged from nothing.
        const outcome = e?.code === "SNAPSHOT_VERSION" || (!retried && bytes !== null)
          ? this.setAside(e, stored.raw)
          : null;
        if (outcome === "quarantined") {
          retried = true;
          bytes = null;
          continue;
        }
        if (outcome !== null) return { written: false, reason: outcome };
        this.report(e?.code ?? "NUMERICAL_ERROR", String(e?.message ?? e));
        return { written: false, reason: "error", error: e };
      }
    }
    const framed = this.frame(bytes, generation);
    if (framed === null) return { written: false, reason: "error" };
    if (!this.set(this.key, framed)) {
      this.failures++;
      this.schedule(Math.min(60_000, 1000 * 2 ** this.failures));
      return { written: false, reason: this.status };
    }
    for (const [p] of parts) p.commit();
    if (this.failures > 0 || this.status !== "ok") {
      this.record("recovered", { key: this.key, detail: `stored after ${this.failures} failed attempts` });
    }
    this.failures = 0;
    this.status = "ok";
    this.setStored(bytes);
    return { written: true, bytes: bytes.length, generation };
  }

  // --- experiments ---------------------------------------------------------

  /** Configure the A/B experiments (replacing any earlier set; device
   * state is kept). Throws `INVALID_EXPERIMENT` naming the bad field, and
   * then changes nothing. Returns the checked configurations. */
  experiments(configs) {
    if (this.ab === null) {
      const ab = new this.wasm.Experiments(configs);
      if (this.unit !== null) ab.setUnit(this.unit);
      this.ab = ab;
      this.restoreAb();
    } else {
      this.ab.setExperiments(configs);
    }
    const list = this.ab.describe();
    this.abInfo = new Map(list.map((e, index) => [e.key, { ...e, index }]));
    return list;
  }

  /** Use an id the site supplies as the unit key (null: the device seed). */
  setUnit(unit) {
    this.unit = checkUnit(unit);
    this.ab?.setUnit(unit ?? undefined);
  }

  /** Assign this visitor to a variant of experiment `key` (see `Assignment`).
   * Throws `UNKNOWN_EXPERIMENT`, or `INVALID_CONTEXT` for attributes JSON cannot hold. */
  run(key, options) {
    const info = this.experiment(key);
    if (this.unit === null && TIERS.indexOf(this.effective) >= 1 && !this.ab.hasDeviceUnit) this.deviceUnit();
    let attributes;
    if (info.targeted) {
      const a = options?.attributes;
      if (a !== undefined && (a === null || typeof a !== "object")) {
        throw fail("INVALID_CONTEXT", "option `attributes` should be an object");
      }
      attributes = { ...a, behavior: this.features() ?? {} };
    }
    const code = this.ab.assign(info.index, attributes, this.now());
    const index = code & 63;
    const reason = REASONS[(code >> 6) & 7];
    const result = {
      key,
      variant: info.variants[index],
      index,
      inExperiment: reason === "assigned",
      reason,
      probability: this.ab.probability,
      hash: info.hash,
      allocation: info.allocation,
      unit: this.unitSource(),
    };
    // Each getter is a call into wasm: read only what this result needs.
    if (info.hash !== "insitu/1" && reason !== "no-unit") {
      const bucket = this.ab.bucket;
      if (!Number.isNaN(bucket)) result.bucket = bucket;
    }
    if (info.allocation === "thompson" && reason === "assigned") result.seed = this.ab.seed;
    const first = (code & 512) !== 0;
    if (first || info.allocation === "thompson") this.abChanged();
    if (first) this.expose(result);
    return result;
  }

  /** Reward this visitor's running trial of bandit experiment `key` (1: converted). */
  rewardExperiment(key, reward = 1) {
    this.ab.reward(this.experiment(key).index, reward, this.now());
    this.abChanged();
  }

  /** The checked configuration of experiment `key`; throws `UNKNOWN_EXPERIMENT`. */
  experiment(key) {
    const info = this.abInfo?.get(key);
    if (info === undefined) {
      throw fail("UNKNOWN_EXPERIMENT", `no experiment \`${String(key)}\` is configured; pass it to experiments() first`);
    }
    return info;
  }

  /** Where the unit key comes from: the site's id, the device seed, or none. */
  unitSource() {
    if (this.unit !== null) return "site";
    return this.ab?.hasDeviceUnit ? "device" : "none";
  }

  /** The experiments state changed: store it (from consent functional on). */
  abChanged() {
    this.abPending = true;
    this.changed();
  }

  /** Hand a first exposure to the site's callback: the only way an
   * assignment leaves the device, and only if the site sends it on. */
  expose(r) {
    if (this.onExposure === null) return;
    const e = {
      experiment: r.key, variant: r.variant, index: r.index, probability: r.probability,
      hash: r.hash, allocation: r.allocation, unit: r.unit,
    };
    // A site-supplied id is the site's own; the device seed never leaves.
    if (r.unit === "site") e.unitId = this.unit;
    try {
      this.onExposure(e);
    } catch {
      // A throwing callback must not break the page.
    }
  }

  /** A random device seed, 128 bits from the platform's CSPRNG. */
  deviceUnit() {
    const bytes = new Uint8Array(16);
    if (typeof globalThis.crypto?.getRandomValues === "function") globalThis.crypto.getRandomValues(bytes);
    else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    let hex = "d:";
    for (const b of bytes) hex += b.toString(16).padStart(2, "0");
    if (this.ab.setDeviceUnit(hex)) this.abChanged();
  }

  restoreAb() {
    if (TIERS.indexOf(this.effective) < 1) return;
    const k = this.abKey;
    const stored = this.readSnapshot(k);
    if (stored.bytes === null) return;
    try {
      this.ab.restore(stored.bytes, this.now(), this.maxBytes);
    } catch (e) {
      if (this.setAside(e, stored.raw, k) === null) this.report(e?.code ?? "SNAPSHOT_CORRUPT", String(e?.message ?? e));
    }
  }

  abDirty() {
    return this.ab !== null && (this.abPending || this.ab.pending > 0);
  }

  /** Store the experiments state (consent functional and up; bandit
   * counts only with personalization), merged with other tabs'. */
  flushAbLocked() {
    const rank = TIERS.indexOf(this.effective);
    if (rank < 1) return { written: false, reason: "consent" };
    if (this.storage === null || this.abNewer) {
      return { written: false, reason: this.abNewer ? "newer-format" : "unavailable" };
    }
    const k = this.abKey;
    const stored = this.readSnapshot(k);
    if (this.abNewer) return { written: false, reason: "newer-format" };
    const options = {
      now: this.now(), maxBytes: this.maxBytes, maxAgeMs: this.maxAgeMs, learning: rank === 2,
    };
    let bytes;
    try {
      bytes = this.ab.sync(stored.bytes, options);
    } catch (e) {
      const outcome = this.setAside(e, stored.raw, k);
      if (outcome !== "quarantined") {
        if (outcome === null) this.report(e?.code ?? "NUMERICAL_ERROR", String(e?.message ?? e));
        return { written: false, reason: outcome ?? "error" };
      }
      bytes = this.ab.sync(null, options);
    }
    const framed = this.frame(bytes, stored.generation + 1);
    if (framed === null || !this.set(k, framed)) {
      this.failures++;
      this.schedule(Math.min(60_000, 1000 * 2 ** this.failures));
      return { written: false, reason: this.status };
    }
    this.ab.commit();
    this.abPending = false;
    return { written: true, bytes: bytes.length, generation: stored.generation + 1 };
  }

  // --- audit and forget ----------------------------------------------------

  report(code, message, event, key) {
    if (event !== undefined) this.record(event, { code, key });
    if (this.onError !== null) {
      try {
        this.onError(fail(code, message));
      } catch {
        // A throwing callback must not break storage.
      }
    }
  }

  /** The audit history, read from storage the first time it is needed (a
   * page load that only restores never reads or writes it). */
  entries() {
    if (this.history === null) {
      this.history = [];
      this.loadHistory();
    }
    return this.history;
  }

  record(event, extra) {
    const history = this.entries();
    history.push({ at: this.now(), event, ...extra });
    if (history.length > MAX_HISTORY) history.splice(0, history.length - MAX_HISTORY);
    // A restore happens on every page load: it is shown for this page but not
    // stored, or it would push quarantine and recovery entries out.
    if (event === "restored") return;
    const kept = history.filter((h) => h.event !== "restored");
    const framed = TIERS.indexOf(this.effective) >= 1 && this.storage !== null
      ? this.frame(JSON.stringify(kept))
      : null;
    if (framed !== null) {
      try {
        this.storage.setItem(`${this.key}.audit`, framed);
      } catch {
        // The history stays in memory; a full store is reported elsewhere.
      }
    }
  }

  loadHistory() {
    if (TIERS.indexOf(this.effective) < 1) return;
    const k = `${this.key}.audit`;
    const raw = this.get(k);
    if (raw === null) return;
    const f = this.unframe(raw, "text");
    let list = null;
    if (f.code === undefined) {
      try {
        list = JSON.parse(f.payload);
      } catch {
        list = null;
      }
    }
    if (!Array.isArray(list)) {
      this.quarantine(k, raw, f.code ?? "SNAPSHOT_CORRUPT", "the audit history is unreadable");
      return;
    }
    const oldest = this.now() - this.maxAgeMs;
    this.history = list.filter((h) => h !== null && typeof h === "object" && h.at >= oldest).slice(-MAX_HISTORY);
  }

  /** A machine-readable manifest of what is stored and why (schema: audit.schema.json). */
  audit() {
    const byType = this.behavior.counts();
    return this.manifest(this.status, (v) => this.unframe(v).savedAt ?? null, {
      retention: this.behavior.retention(),
      events: { total: Object.values(byType).reduce((a, b) => a + b, 0), byType },
      models: [...this.slots].map(([slot, s]) => ({
        slot,
        modelVersion: s.inner.modelVersion,
        hashVersion: 1,
        policy: s.inner.policy,
        updates: s.inner.stats().variants.reduce((a, v) => a + v.updates, 0),
      })),
      experiments: this.auditExperiments(),
      history: this.entries().map((h) => ({ ...h })),
    });
  }

  auditExperiments() {
    const list = [...(this.abInfo?.values() ?? [])].map((e) => {
      const out = { key: e.key, variants: e.variants, hash: e.hash, allocation: e.allocation };
      if (e.allocation === "thompson") out.counts = this.ab.banditCounts(e.index);
      return out;
    });
    return { unit: this.unitSource(), list, exposures: this.ab?.exposures() ?? [] };
  }

  /** Erase every key this module wrote (quarantine and history too) and
   * everything learned and tracked in memory; other tabs do the same. */
  forget() {
    this.forgetHere();
    this.broadcast({ type: "forget" });
    return this.audit();
  }

  forgetHere() {
    clearTimeout(this.timer);
    this.timer = null;
    this.releaseAll();
    for (const k of this.ownKeys()) this.remove(k);
    this.behavior.clear();
    for (const s of this.slots.values()) s.inner.reset();
    this.ab?.reset();
    this.abPending = false;
    this.history = [];
    this.cache = null;
    this.setStored(null);
    this.failures = 0;
  }

  // --- other tabs ----------------------------------------------------------

  /** Hear `forget()` and consent changes from the site's other tabs, on
   * the channel `warmed` opened for this key if there is one. */
  listen(warmed) {
    const name = `insitu:${this.key}`;
    if (warmed?.channel?.name === name) {
      this.channel = warmed.channel;
      warmed.channel = null;
    } else {
      warmed?.close();
      if (typeof globalThis.BroadcastChannel !== "function") return;
      this.channel = new globalThis.BroadcastChannel(name);
    }
    this.channel.onmessage = (m) => {
      const d = m.data;
      if (d?.type === "forget") this.forgetHere();
      else if (d?.type === "consent" && TIERS.includes(d.tier)) {
        this.siteTier = d.tier;
        const before = this.effective;
        this.effective = this.computeTier();
        if (TIERS.indexOf(this.effective) < TIERS.indexOf(before)) this.enforce();
      }
    };
    this.channel.unref?.();
  }

  broadcast(message) {
    try {
      this.channel?.postMessage(message);
    } catch {
      // A closed channel: the other tabs learn it on their next read.
    }
  }

  /** Stop timers and listeners (tests, single-page apps tearing down). */
  close() {
    clearTimeout(this.timer);
    this.timer = null;
    this.releaseAll();
    this.channel?.close();
    this.channel = undefined;
    this.dropDecoded();
  }
}

/** What `warm()` started, for the `open()` that follows. */
class Warm {
  constructor(channel, gpc) {
    this.channel = channel;
    // Kept only so that a minifier cannot drop the read as unused (terser
    // did): open() reads the signal again itself.
    this.gpc = gpc;
  }

  /** Release what `open()` did not take (it refused its options). */
  close() {
    this.channel?.close();
    this.channel = null;
  }
}

/**
 * Do the browser's own first-use work that `open()` needs, so `load()` can
 * run it while the wasm compiles rather than after: in Chromium the first
 * touch of `localStorage` (the browser loads the origin's storage area),
 * the first read of `navigator.globalPrivacyControl`, the first
 * `crypto.getRandomValues` and creating a BroadcastChannel took 0.6, 0.2,
 * 0.07 and 0.26 ms of the page's first decision.
 * It reads no stored key and writes nothing: what is read and kept still
 * waits for `open()`'s consent check. The channel, `insitu:<key>`, is handed
 * to `open()`; messages other tabs send before then are not replayed, as
 * their effect on storage is what `open()` reads, and the site's own
 * `consent` option is at least as new as any tier they announce.
 */
export function warm(options) {
  const o = options !== null && typeof options === "object" ? options : {};
  let gpc;
  try {
    if (o.storage === undefined) defaultStorage();
    gpc = globalThis.navigator?.globalPrivacyControl;
    // Each slot draws its decision-id epoch and default seed from here.
    globalThis.crypto?.getRandomValues?.(new Uint32Array(2));
    const key = o.key ?? "insitu";
    if (typeof key === "string" && KEY_RE.test(key) && typeof globalThis.BroadcastChannel === "function") {
      const channel = new globalThis.BroadcastChannel(`insitu:${key}`);
      channel.unref?.();
      return new Warm(channel, gpc);
    }
  } catch {
    // A browser that refuses any of it: open() meets the same and copes.
  }
  return new Warm(null, gpc);
}

/** `open(options)` bound to the wasm module's exports (`Insitu`,
 * `Behavior`, the frame functions `__openFrame` and `__sealFrame`, and
 * `__decodeSnapshot`).
 * `load()` passes a second argument, what `warm(options)` started. */
export function createOpen(wasm) {
  return (options = {}, warmed = undefined) =>
    new Site(wasm, options, warmed instanceof Warm ? warmed : null);
}
