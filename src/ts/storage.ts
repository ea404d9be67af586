// Storage access: the keys this module holds, reads and writes that never
// throw (a blocked or full storage is reported with a code, and the page
// works in memory), the text frame around every stored value, and the
// quarantine that keeps unreadable data aside instead of deleting it.
//
// Every value is framed as
//     insitu1;<CRC-32 of what follows this field, 8 hex>;<saved at, ms>;<generation>;<payload>
// (the CRC over the UTF-16 code units, low byte first). Frames are sealed
// here, and small ones (the device seed) opened here too; the full engine's
// .wasm opens the snapshots (its CRC and base64 decoding run compiled,
// where a cold interpreter took milliseconds on a large value).

import { describe, fail, type ErrorCode, type InsituError } from "./errors.js";
import type { StorageLike } from "./spec.js";

const TAG = "insitu1";
/** Quarantine keys: `<key>.quarantine.1` to `.3`. */
const MAX_QUARANTINE = 3;

let table: Uint32Array | null = null;

/** CRC-32 (IEEE) of a string's UTF-16 code units, low byte first. */
export function crc16le(s: string): number {
  const t = (table ??= makeTable());
  let c = ~0;
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    c = t[(c ^ u) & 255]! ^ (c >>> 8);
    c = t[(c ^ (u >>> 8)) & 255]! ^ (c >>> 8);
  }
  return ~c >>> 0;
}

function makeTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
}

/** Frame `payload` saved at `savedAt` (whole ms) with `generation`. */
export function seal(savedAt: number, generation: number, payload: string): string {
  const body = `${Math.floor(savedAt)};${generation};${payload}`;
  return `${TAG};${crc16le(body).toString(16).padStart(8, "0")};${body}`;
}

/**
 * Open a small framed value (as the full engine's `frame_open` does):
 * its saved time, generation and text payload. Throws `SNAPSHOT_FOREIGN`
 * (not a frame of ours), `SNAPSHOT_VERSION` (a newer frame layout) or
 * `SNAPSHOT_CORRUPT` (a checksum or field that fails).
 */
export function openFrame(raw: string): { savedAt: number; generation: number; payload: string } {
  const f = raw.split(";", 4);
  const tag = f[0]!;
  if (tag !== TAG) {
    const v = /^insitu([0-9]{1,9})$/.exec(tag);
    if (v !== null && Number(v[1]) > 1) throw fail("SNAPSHOT_VERSION", `stored data is framed as ${tag}, newer than this build reads`);
    throw fail("SNAPSHOT_FOREIGN", `stored data does not start with \`${TAG};\``);
  }
  const body = f.length === 4 ? raw.slice(tag.length + f[1]!.length + 2) : "";
  const savedAt = Number(f[2]);
  const generation = Number(f[3]);
  const bad = (why: string) => fail("SNAPSHOT_CORRUPT", `the storage frame ${why}`);
  const cut = body.indexOf(";", body.indexOf(";") + 1);
  if (f.length < 4 || cut < 0) throw bad("is truncated");
  if (!/^[0-9a-f]{8}$/.test(f[1]!) || parseInt(f[1]!, 16) !== crc16le(body)) throw bad("fails its checksum");
  if (!/^[0-9]+$/.test(f[2]!) || !Number.isSafeInteger(savedAt)) throw bad("has no valid saved time");
  if (!/^[0-9]+$/.test(f[3]!) || !Number.isSafeInteger(generation)) throw bad("has no valid generation");
  return { savedAt, generation, payload: body.slice(cut + 1) };
}

/** The saved time of a framed value, read without checking it (the audit of a site without wasm). */
export function savedAtOf(v: string): number | null {
  const at = Number(v.split(";", 3)[2]);
  return v.startsWith(`${TAG};`) && Number.isFinite(at) ? at : null;
}

/** What a stored key holds, for the audit. */
export type Holds = "snapshot" | "audit-history" | "experiments" | "device-unit" | "quarantine";

/** Storage events the audit history records. */
export type Event =
  | "restored" | "quarantined" | "quarantine-dropped" | "quarantine-failed" | "recovered" | "quota-exceeded"
  | "storage-unavailable" | "consent-changed" | "deleted" | "expired" | "newer-format" | "stale-read" | "fallback"
  | "handover-failed" | "pending-trimmed" | "report" | "report-refused";

/** Where storage problems and history entries go (the site). */
export interface Sink {
  report(code: ErrorCode, message: string, cause?: unknown): void;
  record(event: Event, extra?: { code?: ErrorCode; key?: string; detail?: string }): void;
}

const isQuota = (e: unknown): boolean => {
  const x = e as { name?: unknown; code?: unknown } | null;
  return x != null && (x.name === "QuotaExceededError" || x.name === "NS_ERROR_DOM_QUOTA_REACHED" || x.code === 22 || x.code === 1014);
};

/** The page's localStorage, or null where even reading the property throws (blocked by policy). */
export function defaultStorage(): StorageLike | null | Error {
  try {
    return globalThis.localStorage ?? null;
  } catch (e) {
    return e instanceof Error ? e : new Error(describe(e));
  }
}

/** The keys of one site (`key` and `key.*`) in a `Storage`. */
export class Store {
  /** What the storage did last (a site without storage shows as `unavailable` in the audit). */
  status: "ok" | "unavailable" | "quota-exceeded" = "ok";

  readonly #sink: Sink;
  readonly #clock: () => number;

  constructor(
    readonly storage: StorageLike | null,
    readonly key: string,
    sink: Sink,
    clock: () => number,
  ) {
    this.#sink = sink;
    this.#clock = clock;
  }

  /** A stored value, or null (none, or storage blocked: reported once). */
  get(k: string): string | null {
    if (this.storage === null) return null;
    try {
      return this.storage.getItem(k);
    } catch (e) {
      this.unavailable(e);
      return null;
    }
  }

  /** Write `payload` framed (saved at `savedAt`, with `generation`); false (reported) when storage refuses. */
  put(k: string, savedAt: number, generation: number, payload: string): boolean {
    return this.set(k, seal(savedAt, generation, payload));
  }

  /** Write; false (reported) when storage refuses. */
  set(k: string, v: string): boolean {
    if (this.storage === null) return false;
    try {
      this.storage.setItem(k, v);
      if (this.status === "quota-exceeded") this.status = "ok";
      return true;
    } catch (e) {
      if (isQuota(e)) {
        // The history's own write may succeed: the status says what refused.
        this.#sink.record("quota-exceeded", { code: "STORAGE_QUOTA", key: k });
        this.#sink.report("STORAGE_QUOTA", `storage is full: ${k} (${v.length * 2} bytes) was not written; kept in memory, retrying`, e);
        this.status = "quota-exceeded";
      } else {
        this.unavailable(e);
      }
      return false;
    }
  }

  remove(k: string): boolean {
    try {
      this.storage?.removeItem(k);
      return true;
    } catch (e) {
      this.unavailable(e);
      return false;
    }
  }

  /** Storage threw: work in memory only, reported once. */
  unavailable(e: unknown): void {
    if (this.status === "unavailable") return;
    this.status = "unavailable";
    let name = "an error";
    try {
      name = String((e as { name?: unknown })?.name ?? describe(e));
    } catch {
      // A hostile error object.
    }
    this.#sink.record("storage-unavailable", { code: "STORAGE_UNAVAILABLE" });
    this.#sink.report("STORAGE_UNAVAILABLE", `storage is unavailable (${name}); working in memory only`, e);
  }

  /** Every key this module wrote: `key` and `key.*`. */
  ownKeys(): string[] {
    const s = this.storage;
    if (s === null) return [];
    const keys: string[] = [];
    try {
      for (let i = 0; i < s.length; i++) {
        const k = s.key(i);
        if (k === this.key || (k !== null && k.startsWith(`${this.key}.`))) keys.push(k);
      }
    } catch (e) {
      this.unavailable(e);
    }
    return keys;
  }

  /** What key `k` holds. */
  holds(k: string): Holds {
    const rest = k.slice(this.key.length);
    return rest === "" ? "snapshot" : rest === ".audit" ? "audit-history" : rest === ".ab" ? "experiments"
      : rest === ".unit" ? "device-unit" : "quarantine";
  }

  /** The lowest consent tier (0 none, 1 functional, 2 personalization) that may keep key `k`. */
  tierOf(k: string): number {
    const h = this.holds(k);
    return h === "snapshot" || h === "quarantine" ? 2 : 1;
  }

  /**
   * Keep an unreadable value aside (never silently deleted) under
   * `<key>.quarantine.N`, then clear its key. False when it could not be
   * kept aside: then it stays where it is and the page works in memory.
   */
  quarantine(k: string, raw: string, code: ErrorCode, why: string): boolean {
    let slot: string | null = null;
    let oldest: { q: string; t: number } | null = null;
    for (let i = 1; i <= MAX_QUARANTINE; i++) {
      const q = `${this.key}.quarantine.${i}`;
      const v = this.get(q);
      if (v === null) {
        slot = q;
        break;
      }
      const t = savedAtOf(v) ?? -Infinity;
      if (oldest === null || t < oldest.t) oldest = { q, t };
    }
    if (slot === null && oldest !== null) {
      slot = oldest.q;
      this.#sink.record("quarantine-dropped", { key: slot, detail: "the oldest quarantined value made room" });
    }
    const entry = JSON.stringify({ key: k, code, reason: why, value: raw });
    if (slot === null || !this.put(slot, this.#clock(), 0, entry)) {
      this.#sink.record("quarantine-failed", { key: k, code });
      return false;
    }
    this.remove(k);
    this.#sink.record("quarantined", { key: k, code, detail: `${why}; kept as ${slot}` });
    this.#sink.report(code, `stored data under ${k} was unreadable (${why}); kept as ${slot}, starting from the prior`);
    return true;
  }
}

/** A stored value read and checked: its raw text, payload bytes (null when none or unusable) and frame fields. */
export interface Read {
  raw: string | null;
  bytes: Uint8Array | null;
  generation: number;
  /** The error that made the bytes unusable (then quarantined, or left alone when newer). */
  error: InsituError | null;
}

/** `fail` for a stored value, naming the key. */
export const storedError = (code: ErrorCode, k: string, why: string): InsituError =>
  fail(code, `stored data under ${k}: ${why}`);
