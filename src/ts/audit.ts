// The audit: what this module keeps on the device and why, as a
// machine-readable manifest (schema/audit.schema.json), and the history of
// storage events behind it. The history itself is stored (consent
// functional and up) under `<key>.audit`, at most 50 entries, each dropped
// `maxAgeDays` after it happened; it is read only when first needed, so a
// page load that only restores neither reads nor writes it.

import { PERSISTS, type Consent, type ConsentState } from "./consent.js";
import type { ErrorCode } from "./errors.js";
import type { Tier } from "./spec.js";
import { type Event, type Holds, savedAtOf, type Store } from "./storage.js";

/** Audit history entries kept. */
const MAX_HISTORY = 50;
/** Events kept in memory only. */
const UNSTORED: readonly Event[] = ["restored", "fallback", "handover-failed"];
const DAY_MS = 86_400_000;

/** One entry of the audit history. */
export interface AuditEntry {
  at: number;
  event: Event;
  code?: ErrorCode;
  key?: string;
  detail?: string;
}

/** Retention of the behaviour store, as the audit shows it. */
export interface Retention {
  maxAgeDays: number;
  maxEvents: number;
  maxBytes: number;
  sessionGapMinutes: number;
  types: string[];
}

/** The manifest `audit()` returns; its JSON schema is `audit.schema.json` in the package. */
export interface Audit {
  schema: "insitu-audit/1";
  generatedAt: number;
  /** The module never makes a request. */
  network: "none";
  consent: ConsentState & {
    default: Tier;
    honorsGpc: boolean;
    /** What the current tier lets this module keep in storage. */
    persists: string[];
  };
  storage: {
    backend: "localStorage";
    status: "ok" | "unavailable" | "quota-exceeded";
    /** Every key this module holds: UTF-16 bytes of key and value, and when it expires unless rewritten. */
    keys: Array<{ key: string; holds: Holds; bytes: number; expiresAt: number | null }>;
  };
  retention: Retention;
  events: { total: number; byType: Record<string, number> };
  models: Array<{ slot: string; modelVersion: string; hashVersion: 1; policy: string; updates: number }>;
  experiments: {
    unit: "device" | "site" | "none";
    list: Array<{
      key: string;
      variants: string[];
      hash: "insitu/1" | "growthbook/1" | "growthbook/2";
      allocation: "weights" | "thompson";
      counts?: Array<{ successes: number; failures: number }>;
    }>;
    exposures: Array<{ experiment: string; variant: string; at: number }>;
  };
  /**
   * Each slot and experiment with `reports` (once the full engine has checked them): its
   * settings, the ledger of the periods it closed (what was reported, refused or dropped) and
   * the exact payload of its last report. Nothing in it was sent by this module.
   */
  reports: Array<{
    /** The slot's name or the experiment's key. */
    key: string;
    owner: "slot" | "experiment";
    task: string;
    periodDays: number;
    learning: boolean;
    segment: string | null;
    scale: number;
    bounds: { decisions: number; exposures: number; rewards: number; xy: number; xx: number };
    ledger: Array<{
      period: string;
      task: string;
      outcome: "reported" | "refused-duplicate" | "refused-non-finite" | "dropped-features-changed";
      clipped: Array<"reports" | "decisions" | "exposures" | "rewards" | "xy" | "xx">;
      length: number;
      bits: number;
      scale: number;
      bounds: { decisions: number; exposures: number; rewards: number; xy: number; xx: number };
    }>;
    last: { period: string; task: string; measurement: number[] } | null;
  }>;
  history: AuditEntry[];
}

/** The audit history of one site. */
export class History {
  #entries: AuditEntry[] | null = null;

  constructor(
    private readonly store: Store,
    private readonly consentState: Consent,
    private readonly clock: () => number,
    private readonly maxAgeMs: () => number,
  ) {}

  /** The entries, read from storage the first time they are needed. */
  list(): AuditEntry[] {
    if (this.#entries === null) {
      this.#entries = [];
      this.#load();
    }
    return this.#entries;
  }

  /**
   * Record a storage event; stored unless it is one of `UNSTORED` (a restore,
   * once per page load, would push the rest out; a page view whose full
   * engine failed to load writes nothing).
   */
  record(event: Event, extra: { code?: ErrorCode; key?: string; detail?: string } = {}): void {
    const list = this.list();
    const e: AuditEntry = { at: this.clock(), event };
    if (extra.code !== undefined) e.code = extra.code;
    if (extra.key !== undefined) e.key = extra.key;
    if (extra.detail !== undefined) e.detail = extra.detail;
    list.push(e);
    if (list.length > MAX_HISTORY) list.splice(0, list.length - MAX_HISTORY);
    if (UNSTORED.includes(event) || !this.consentState.allows("functional")) return;
    const kept = list.filter((h) => !UNSTORED.includes(h.event));
    // A failed write stays in memory; a full or blocked store is reported elsewhere.
    this.store.put(`${this.store.key}.audit`, this.clock(), 0, JSON.stringify(kept));
  }

  /** Forget every entry (after `forget()` erased the stored ones). */
  clear(): void {
    this.#entries = [];
  }

  #load(): void {
    if (!this.consentState.allows("functional")) return;
    const k = `${this.store.key}.audit`;
    const raw = this.store.get(k);
    if (raw === null) return;
    let list: unknown = null;
    // The frame's CRC is checked by the .wasm for snapshots; the history is
    // JSON, and any damage shows as a parse failure or a bad shape.
    const cut = nthIndex(raw, ";", 4);
    if (raw.startsWith("insitu1;") && cut > 0) {
      try {
        list = JSON.parse(raw.slice(cut + 1));
      } catch {
        list = null;
      }
    }
    if (!Array.isArray(list)) {
      this.store.quarantine(k, raw, "SNAPSHOT_CORRUPT", "the audit history is unreadable");
      return;
    }
    const oldest = this.clock() - this.maxAgeMs();
    this.#entries = list
      .filter((h): h is AuditEntry => h !== null && typeof h === "object" && typeof h.at === "number" && h.at >= oldest && typeof h.event === "string")
      .slice(-MAX_HISTORY);
  }
}

/** The index of the `n`th `c` in `s`, or -1. */
export function nthIndex(s: string, c: string, n: number): number {
  let at = -1;
  for (let i = 0; i < n; i++) {
    at = s.indexOf(c, at + 1);
    if (at < 0) return -1;
  }
  return at;
}

/** The manifest's keys and consent, the parts every site shares (`maxAgeDays`: the retention). */
export function manifestBase(
  store: Store,
  consent: Consent,
  maxAgeDays: number,
  now: number,
): Pick<Audit, "schema" | "generatedAt" | "network" | "consent" | "storage"> {
  const keys = store.ownKeys().map((key) => {
    const v = store.get(key) ?? "";
    const at = savedAtOf(v);
    return { key, holds: store.holds(key), bytes: 2 * (key.length + v.length), expiresAt: at === null ? null : at + maxAgeDays * DAY_MS };
  });
  return {
    schema: "insitu-audit/1",
    generatedAt: now,
    network: "none",
    consent: {
      ...consent.state,
      default: consent.fallback,
      honorsGpc: consent.honorGpc,
      persists: PERSISTS[consent.effective],
    },
    storage: { backend: "localStorage", status: store.storage === null ? "unavailable" : store.status, keys },
  };
}
