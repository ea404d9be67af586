// The versioned hashes the control plane computes, bit for bit as the Rust
// core does (src/prim/hash.rs, src/features/hash.rs, src/allocation/hash.rs;
// golden values are checked from both sides in tests/fixtures/hashes.json).
//
// Feature hash version 1 is MurmurHash3 x86-32 over UTF-8 bytes with a
// per-namespace seed, the hash Vowpal Wabbit uses. Strings are hashed
// without building a byte array when they are ASCII, which nearly every
// feature name and value is.

/** The feature hash version this build writes. */
export const HASH_VERSION = 1;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mixK(k: number): number {
  k = Math.imul(k, C1);
  return Math.imul((k << 15) | (k >>> 17), C2);
}

function mixH(h: number, k: number): number {
  h ^= mixK(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number, tail: number, tailLen: number, n: number): number {
  if (tailLen > 0) h ^= mixK(tail);
  h ^= n;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const encoder = new TextEncoder();

/** MurmurHash3 x86-32 of `bytes`. */
export function murmur3(bytes: Uint8Array, seed: number): number {
  const n = bytes.length;
  const end = n & ~3;
  let h = seed | 0;
  for (let i = 0; i < end; i += 4) {
    h = mixH(h, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  }
  let tail = 0;
  for (let i = n - 1; i >= end; i--) tail = (tail << 8) | bytes[i]!;
  return finish(h, tail, n & 3, n);
}

/** MurmurHash3 x86-32 of the UTF-8 bytes of `s` (lone surrogates as U+FFFD, as TextEncoder writes them). */
export function murmurStr(s: string, seed: number): number {
  const n = s.length;
  let h = seed | 0;
  let k = 0;
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 127) return murmur3(encoder.encode(s), seed);
    k |= c << (8 * (i & 3));
    if ((i & 3) === 3) {
      h = mixH(h, k);
      k = 0;
    }
  }
  return finish(h, k, n & 3, n);
}

/** Length of `s` in UTF-8 bytes (lone surrogates as U+FFFD, 3 bytes, as TextEncoder writes them). */
export const utf8Length = (s: string): number => encoder.encode(s).length;

/** Seed of a feature namespace: its name hashed with seed 0. */
export const namespaceSeed = (ns: string): number => murmurStr(ns, 0);

/** Hash of the categorical feature `name=value`, given the hash of `name`. */
export const categorical = (nameHash: number, value: string): number => murmurStr(value, nameHash);

/** Hash of the product of two hashed features (VW's quadratic rule). */
export const interaction = (a: number, b: number): number => (Math.imul(a, 0x01000193) ^ b) >>> 0;

/** The slot hash of the constant (bias) feature. */
export const CONSTANT = murmurStr("insitu:constant", 0);

/** FNV-1a 32-bit over UTF-16 code units continuing from `h` (GrowthBook's hashFnv32a). */
export function fnv1a32(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * FNV-1a 64 over bytes, in two 32-bit halves (the model version's content
 * hash). The prime is 2^40 + 0x1b3: `h * prime = (h << 40) + h * 0x1b3`.
 */
export class Fnv64 {
  hi = 0xcbf29ce4;
  lo = 0x84222325;

  byte(b: number): void {
    B1[0] = b;
    this.bytes(B1);
  }

  bytes(b: Uint8Array): void {
    // The halves in locals and integer-only steps (16-bit partial
    // products): several times faster than a double multiply per byte,
    // which matters for a model's 2 x 2^bits numbers per variant.
    let hi = this.hi | 0;
    let lo = this.lo | 0;
    for (let i = 0; i < b.length; i++) {
      lo ^= b[i]!;
      const p0 = (lo & 0xffff) * 0x1b3;
      const p1 = (lo >>> 16) * 0x1b3 + (p0 >>> 16);
      // hi' = hi * 0x1b3 + carry + (lo << 8): the 2^40 part lands in hi shifted by 8.
      hi = (Math.imul(hi, 0x1b3) + (p1 >>> 16) + (lo << 8)) | 0;
      lo = (p1 << 16) | (p0 & 0xffff);
    }
    this.hi = hi >>> 0;
    this.lo = lo >>> 0;
  }

  u32(x: number): void {
    for (let i = 0; i < 4; i++) this.byte((x >>> (8 * i)) & 255);
  }

  f64(x: number): void {
    F64[0] = x === 0 ? 0 : x; // JSON has no -0
    this.bytes(F64_BYTES);
  }

  /** A string: its UTF-8 length (u32), then its bytes. */
  str(s: string): void {
    const b = encoder.encode(s);
    this.u32(b.length);
    this.bytes(b);
  }

  /** The hash as 16 lowercase hex digits. */
  hex(): string {
    return this.hi.toString(16).padStart(8, "0") + this.lo.toString(16).padStart(8, "0");
  }
}

const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const B1 = new Uint8Array(1);
