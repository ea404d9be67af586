// The boundary, from this side: loading a .wasm and calling its exports
// (src/wasm/ on the Rust side). The module imports nothing and exchanges
// numbers, two buffers in its memory (`io`, f64s; `bytes`) and handles.
// An export returns `>= 0` on success and `-(code index) - 1` on error; the
// error's code is the index into CODES (one list, schema/errors.json).
//
// Two modules are built from the same crate: the first-decision module
// (`insitu_bg.wasm`: scorers, the behaviour features, the A/B allocator,
// reading storage) and the full engine (`insitu_full.wasm`: everything,
// including learning, merging and writing storage, and `explain`).
//
// A trap (a panic in the core: a bug) leaves the instance in an unknown
// state: this marks it poisoned and every later call fails with POISONED.

import { plane } from "./engine.js";
import { CODES, fail, type InsituError } from "./errors.js";
import type { BehaviorSpec, ExperimentSpec, PolicySpec, SlotSpec } from "./spec.js";

/** The exports every build has; the rest are looked up by name. */
interface Exports {
  memory: WebAssembly.Memory;
  io(n: number): number;
  bytes(n: number): number;
  io_at(): number;
  bytes_at(): number;
  err_text(): number;
  [name: string]: unknown;
}

const utf8 = new TextEncoder();
const decoder = new TextDecoder();

/** A wasm error's code with a message the caller words (the .wasm carries none). */
export type Wording = (code: string) => string;

/** One instantiated module. */
export class Core {
  /** Set once the instance trapped: every call then fails with it. */
  poisoned: InsituError | null = null;
  private readonly x: Exports;
  /** Views on the memory, renewed when it grows (a new buffer): a view per call would cost more than the call's copy. */
  #f = new Float64Array(0);
  #u = new Uint8Array(0);

  constructor(
    instance: WebAssembly.Instance,
    /** Whether this is the full engine (else the first-decision module). */
    readonly full: boolean,
  ) {
    this.x = instance.exports as unknown as Exports;
  }

  /** Call export `name`; a negative result throws its error, worded by `words`. */
  call(name: string, args: number[], words?: Wording): number {
    if (this.poisoned) throw this.poisoned;
    let r: number;
    try {
      r = (this.x[name] as (...a: number[]) => number)(...args);
    } catch (e) {
      this.poisoned = fail("POISONED", "insitu hit an internal error (a bug, please report it); reload the page to continue", e);
      throw this.poisoned;
    }
    if (r >= 0) return r;
    const code = CODES[-r - 1] ?? "POISONED";
    // Builds with `std` (tests) carry the core's own text; the shipped .wasm carries none.
    const detail = this.string(this.x.err_text());
    throw fail(code, (words?.(code) ?? wording(code)) + (detail === "" ? "" : ` (${detail})`));
  }

  /** The memory as f64s (after any call that may grow it). */
  #f64(): Float64Array {
    const b = this.x.memory.buffer;
    return this.#f.buffer === b ? this.#f : (this.#f = new Float64Array(b));
  }

  /** The memory as bytes (after any call that may grow it). */
  #u8(): Uint8Array {
    const b = this.x.memory.buffer;
    return this.#u.buffer === b ? this.#u : (this.#u = new Uint8Array(b));
  }

  /** Write numbers into `io`. */
  nums(values: ArrayLike<number>): void {
    const at = this.x.io(values.length) / 8;
    this.#f64().set(values, at);
  }

  /** The first `n` numbers of `io`, copied. */
  read(n: number): Float64Array {
    const at = this.x.io_at() / 8;
    const f = this.#f64();
    // A loop: `slice` looks up the species constructor, which costs more than a short copy.
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = f[at + i]!;
    return out;
  }

  /** Write bytes into `bytes`; their length. */
  put(b: Uint8Array): number {
    const at = this.x.bytes(b.length);
    this.#u8().set(b, at);
    return b.length;
  }

  /** Write a string (UTF-8) into `bytes`; its length in bytes. */
  text(s: string): number {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const at = this.x.bytes(3 * s.length);
    const { written } = utf8.encodeInto(s, this.#u8().subarray(at, at + 3 * s.length));
    this.x.bytes(written);
    return written;
  }

  /** The first `n` bytes of `bytes`, copied. */
  bytes(n: number): Uint8Array {
    const at = this.x.bytes_at();
    return this.#u8().slice(at, at + n);
  }

  /** The first `n` bytes of `bytes` as UTF-8 text. */
  string(n: number): string {
    const at = this.x.bytes_at();
    return decoder.decode(this.#u8().subarray(at, at + n));
  }

  has(name: string): boolean {
    return typeof this.x[name] === "function";
  }
}

/**
 * What code `code` says when the caller adds nothing. The storage codes
 * come only from the full engine (the first-decision module reads no
 * storage format): full.ts words them.
 */
const wording = (code: string): string =>
  code === "NUMERICAL_ERROR" ? "numerical error: the update would have corrupted the learner; nothing changed"
  : plane?.words(code) ?? `the core refused the call (${code})`;

/** Instantiate a .wasm from bytes, a `Response` (streaming compilation) or a compiled module. */
export async function instantiate(source: BufferSource | Response | WebAssembly.Module): Promise<WebAssembly.Instance> {
  if (source instanceof WebAssembly.Module) return WebAssembly.instantiate(source, {});
  if (typeof Response === "function" && source instanceof Response) {
    if (!source.ok) throw new Error(`fetching the .wasm failed: HTTP ${source.status}`);
    if (typeof WebAssembly.instantiateStreaming === "function" && source.headers.get("Content-Type") === "application/wasm") {
      return (await WebAssembly.instantiateStreaming(source, {})).instance;
    }
    return (await WebAssembly.instantiate(await source.arrayBuffer(), {})).instance;
  }
  return (await WebAssembly.instantiate(source as BufferSource, {})).instance;
}

/** A .wasm source as `load()` takes it: a URL or `Request` is fetched. */
export async function fetchModule(source: unknown): Promise<BufferSource | Response | WebAssembly.Module> {
  const s = await source;
  if (typeof s === "string" || s instanceof URL || (typeof Request === "function" && s instanceof Request)) {
    // `credentials: same-origin`, as a `<link rel=preload as=fetch crossorigin>` of the .wasm asks, so the preload is used.
    return fetch(s as RequestInfo, { credentials: "same-origin" });
  }
  return s as BufferSource | Response | WebAssembly.Module;
}

// --- layouts: what each export reads (mirrored in src/wasm/) -----------------

const POLICIES: Record<PolicySpec["type"], number> = { thompson: 0, linucb: 1, egreedy: 2, greedy: 3 };

/** A variant's own features, hashed: (namespace index, hash, value) triples. */
export interface Own {
  triples: number[];
}

/**
 * A slot's configuration for `slot_new` / `score_new` (src/wasm/slot.rs
 * `config`): the checked spec, its namespaces' seeds, each variant's own
 * features hashed, the seed of the decision stream and the decision-id epoch.
 */
export function slotLayout(spec: SlotSpec, seeds: number[], own: Own[], seed: number, epoch: number): number[] {
  const f = spec.features;
  const p = spec.policy;
  const out: number[] = [2, f.hashVersion, f.bits, seeds.length, ...seeds, f.interactions.length];
  for (const [a, b] of f.interactions) out.push(a, b);
  out.push((f.normalize ? 1 : 0) | (f.slotsPerFeature === 2 ? 2 : 0) | (spec.catalogue === null ? 0 : 4));
  if (spec.catalogue !== null) out.push(spec.catalogue.bits);
  const param = p.type === "thompson" ? p.scale : p.type === "linucb" ? p.alpha : p.type === "egreedy" ? p.epsilon : 0;
  const hex = spec.modelVersion.slice(3);
  out.push(
    spec.noise, POLICIES[p.type], param, p.type === "thompson" ? p.samples : 0, p.minProbability,
    spec.fallback, seed, epoch, spec.rewardTtlMs, spec.maxPending,
    parseInt(hex.slice(0, 8), 16), parseInt(hex.slice(8), 16),
    spec.variants.length,
  );
  spec.variants.forEach((v, i) => {
    const t = own[i]?.triples ?? [];
    out.push(t.length / 3, ...t);
    if (v.mean === null) out.push(0);
    else {
      // Sparse when mostly zeros: a bits-18 model would be 2 MB dense.
      const nz: number[] = [];
      v.mean.forEach((w, j) => {
        if (w !== 0) nz.push(j, w);
      });
      if (nz.length < v.mean.length) out.push(2, nz.length / 2, ...nz);
      else out.push(1, ...v.mean);
    }
    if (typeof v.variance === "number") out.push(0, v.variance);
    else out.push(1, ...v.variance);
  });
  return out;
}

/** Bytes written little-endian, for the layouts that hold strings. */
export class Writer {
  private b = new Uint8Array(256);
  private v = new DataView(this.b.buffer);
  at = 0;

  private room(n: number): void {
    if (this.at + n <= this.b.length) return;
    const grown = new Uint8Array(Math.max(2 * this.b.length, this.at + n));
    grown.set(this.b);
    this.b = grown;
    this.v = new DataView(grown.buffer);
  }

  u8(x: number): this {
    this.room(1);
    this.b[this.at++] = x;
    return this;
  }

  f64(x: number): this {
    this.room(8);
    this.v.setFloat64(this.at, x, true);
    this.at += 8;
    return this;
  }

  /** A string: its UTF-8 length (u16), then its bytes. */
  str(s: string): this {
    const b = utf8.encode(s);
    this.room(2 + b.length);
    this.v.setUint16(this.at, b.length, true);
    this.b.set(b, this.at + 2);
    this.at += 2 + b.length;
    return this;
  }

  done(): Uint8Array {
    return this.b.subarray(0, this.at);
  }
}

const HASHES = { "insitu/1": 0, "growthbook/1": 1, "growthbook/2": 2 } as const;

/** The experiments for `ab_new` / `ab_set` (src/wasm/experiments.rs), with whether each is targeted. */
export function experimentsLayout(list: readonly ExperimentSpec[]): Uint8Array {
  const w = new Writer().u8(list.length);
  for (const e of list) {
    w.str(e.key).u8(e.variants.length);
    e.variants.forEach((v) => w.str(v));
    e.weights.forEach((x) => w.f64(x));
    w.f64(e.coverage);
    if (e.holdout) w.u8(1).str(e.holdout.key).f64(e.holdout.fraction);
    else w.u8(0);
    if (e.namespace) w.u8(1).str(e.namespace.name).f64(e.namespace.range[0]).f64(e.namespace.range[1]);
    else w.u8(0);
    w.u8(e.targeting.length > 0 ? 1 : 0).u8(e.fallback).u8(HASHES[e.hash]).str(e.seed);
    const a = e.allocation;
    if (a.type === "weights") w.u8(0);
    else {
      w.u8(1);
      a.prior.forEach(([s, f]) => w.f64(s).f64(f));
      w.f64(a.minProbability).f64(a.samples).f64(a.rewardWindowMs);
    }
  }
  return w.done();
}

/** The behaviour store's numbers (`io`) and custom types (`bytes`) for `beh_new`. */
export function behaviorLayout(b: BehaviorSpec): [number[], Uint8Array] {
  const w = new Writer().u8(b.types.length);
  b.types.forEach((t) => w.str(t));
  return [[b.maxAgeDays, b.maxEvents, b.maxBytes, b.sessionGapMinutes], w.done()];
}
