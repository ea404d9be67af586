// The JS half of the boundary's hot path (rank, reward, activate), and
// `obj`, which makes each object the wasm side returns in one call.
//
// Passing an options object to wasm as JSON (stringify, encode, decode) cost
// far more than the decision itself. Instead this walks the options in
// JS, hashes feature names and values with the same versioned hash as the
// Rust core (MurmurHash3 x86-32, namespace-seeded; src/features/hash.rs),
// caches the hashes, and writes (namespace, hash, value) triples straight
// into a buffer in wasm memory. Anything it is not sure about (a NaN, an
// unknown key, a Date, per-call action features, an over-long string, ...)
// returns -1 and the caller takes the full JSON path, which is the one source
// of validation errors. So this file decides nothing and reports nothing: it
// only makes the common, valid case fast, and a test checks that both paths
// give identical decisions.
//
// User code can run during a walk (getters, Proxies): any exception makes
// the walk give up (-1) rather than unwind through wasm, and a walk during
// which wasm memory grew (its view detached) gives up too. JSON.stringify
// reads own keys only, for-in inherited ones too: while Object.prototype
// has an enumerable property (a polluted prototype) every walk gives up.

/** Buffer layout, in f64 slots: a header, then the pmf and scores (K each), then features. */
const HEADER = 8;
/** Most raw features in one context (src/features/mod.rs MAX_FEATURES). */
const MAX_FEATURES = 256;
/** Longest name or value in UTF-8 bytes (MAX_STRING_BYTES). */
const MAX_BYTES = 256;
/** Cached hashes per instance before the cache is dropped and refilled. */
const MAX_CACHED = 16384;

const encoder = new TextEncoder();
const OBJECT = Object.prototype;

/** MurmurHash3 x86 32-bit of `bytes` (hash version 1). */
function murmur3(bytes, seed) {
  const n = bytes.length;
  const end = n & ~3;
  let h = seed | 0;
  let k;
  for (let i = 0; i < end; i += 4) {
    k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = n & 3;
  if (tail !== 0) {
    k = bytes[end];
    if (tail > 1) k |= bytes[end + 1] << 8;
    if (tail > 2) k |= bytes[end + 2] << 16;
    k = Math.imul(k, 0xcc9e2d51);
    h ^= Math.imul((k << 15) | (k >>> 17), 0x1b873593);
  }
  h ^= n;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A plain object, serialised by JSON.stringify exactly as for-in walks it. */
function plain(o) {
  if (typeof o !== "object" || o === null) return false;
  const proto = Object.getPrototypeOf(o);
  return (proto === OBJECT || proto === null) && typeof o.toJSON !== "function";
}

/** Per-instance state: the buffer view, the allowlist and the hash cache. */
export function walker(memory, ptr, len, namespaces, seeds, variants, modelVersion, policy, prefix) {
  const allow = new Map();
  namespaces.forEach((name, i) => allow.set(name, i));
  return {
    memory, ptr, len,
    buf: new Float64Array(memory.buffer, ptr, len),
    allow,
    seeds: Array.from(seeds),
    names: namespaces.map(() => Object.create(null)),
    cached: 0,
    variants, modelVersion, policy,
    prefix, // of decision ids: `<engine epoch>-`, then the decimal counter
  };
}

/** The buffer view; growing wasm memory detaches the old one. */
function view(w) {
  if (w.buf.length === 0) w.buf = new Float64Array(w.memory.buffer, w.ptr, w.len);
  return w.buf;
}

/**
 * The cache entry of feature `name` in a namespace: its hash and its values'
 * hashes. The caches are null-prototype objects rather than Maps: V8 reads
 * their string keys about 15% faster, and any key is an own property.
 */
function entry(w, ns, name) {
  const names = w.names[ns];
  let e = names[name];
  if (e !== undefined) return e;
  const bytes = encoder.encode(name);
  if (bytes.length === 0 || bytes.length > MAX_BYTES) return null;
  cacheOne(w);
  e = { h: murmur3(bytes, w.seeds[ns]), values: null };
  w.names[ns][name] = e;
  return e;
}

/**
 * Count one more cached hash. Past the bound every cache is dropped, so
 * high-cardinality names or values (ids) cannot grow it without limit.
 * Returns whether it was dropped.
 */
function cacheOne(w) {
  if (++w.cached <= MAX_CACHED) return false;
  w.names = w.names.map(() => Object.create(null));
  w.cached = 1;
  return true;
}

/** Hash of the categorical `name=value`, or -1 when the value is too long. */
function categorical(w, e, value) {
  if (e.values === null) e.values = Object.create(null);
  let h = e.values[value];
  if (h !== undefined) return h;
  const bytes = encoder.encode(value);
  if (bytes.length > MAX_BYTES) return -1;
  if (cacheOne(w)) e.values = Object.create(null);
  h = murmur3(bytes, e.h);
  e.values[value] = h;
  return h;
}

const EMPTY = {};

/** Whether Object.prototype has enumerable properties, which for-in would visit. */
function polluted() {
  for (const _ in EMPTY) return true;
  return false;
}

/** Any surrogate: such a key may match an allowlisted name only after UTF-8 conversion. */
const SURROGATE = /[\ud800-\udfff]/;

/**
 * Read rank options `{ context?, seed?, defer?, now? }` for `k` variants into
 * the buffer: header [seed or -1, now, defer], then features from slot
 * HEADER + 2k. Returns the feature count, or -1 for the JSON path.
 */
export function prepRank(w, o, k) {
  return guarded(walkRank, w, o, k);
}

/**
 * Run `walk(w, o, arg, buf)`, giving up (-1) when it throws (user code ran:
 * a getter, a Proxy) or when wasm memory grew meanwhile (the view it wrote
 * to is detached).
 */
function guarded(walk, w, o, arg) {
  try {
    const buf = view(w);
    const r = walk(w, o, arg, buf);
    return buf.length === 0 ? -1 : r;
  } catch {
    return -1;
  }
}

// One function with the writes inline, on purpose: splitting out the
// namespace loop and a write helper made the walk of 32 features 2.7-3.6 us
// against 1.9-2.5 us (benchmarked in Node, alternating runs).
function walkRank(w, o, k, buf) {
  let context;
  let seed = -1;
  let now;
  let defer = 0;
  if (polluted()) return -1;
  if (o !== undefined && o !== null) {
    if (!plain(o)) return -1;
    for (const key in o) {
      const v = o[key];
      if (v === undefined) continue;
      if (key === "context") context = v;
      else if (key === "seed" && Number.isSafeInteger(v) && v >= 0) seed = v;
      else if (key === "now" && typeof v === "number" && Number.isFinite(v)) now = v;
      else if (key === "defer" && typeof v === "boolean") defer = v ? 1 : 0;
      else return -1;
    }
  }
  buf[0] = seed;
  buf[1] = now === undefined ? Date.now() : now;
  buf[2] = defer;
  if (context === undefined || context === null) return 0;
  if (!plain(context)) return -1;
  let n = 0;
  let at = HEADER + 2 * k;
  for (const nsName in context) {
    const ns = w.allow.get(nsName);
    if (ns === undefined) {
      if (SURROGATE.test(nsName)) return -1;
      continue; // not allowlisted: never read
    }
    const feats = context[nsName];
    if (feats === undefined) continue;
    if (!plain(feats)) return -1;
    for (const name in feats) {
      const v = feats[name];
      if (v === undefined) continue;
      const e = entry(w, ns, name);
      if (e === null) return -1;
      let h = e.h;
      let x = 1;
      if (typeof v === "number") {
        if (!Number.isFinite(v)) return -1;
        x = v === 0 ? 0 : v; // JSON has no -0
      } else if (typeof v === "boolean") {
        x = v ? 1 : 0;
      } else if (typeof v === "string") {
        h = categorical(w, e, v);
        if (h < 0) return -1;
      } else if (Array.isArray(v)) {
        if (typeof v.toJSON === "function") return -1;
        for (let i = 0; i < v.length; i++) {
          const item = v[i];
          if (typeof item !== "string" || n >= MAX_FEATURES) return -1;
          const hi = categorical(w, e, item);
          if (hi < 0) return -1;
          buf[at] = ns;
          buf[at + 1] = hi;
          buf[at + 2] = 1;
          at += 3;
          n++;
        }
        continue;
      } else {
        return -1;
      }
      if (n >= MAX_FEATURES) return -1;
      buf[at] = ns;
      buf[at + 1] = h;
      buf[at + 2] = x;
      at += 3;
      n++;
    }
  }
  return n;
}

/** `features` (namespace -> features) without the namespaces the allowlist drops. */
function allowed(w, features) {
  if (!plain(features)) return features;
  const out = {};
  for (const ns of Object.keys(features)) {
    if (w.allow.has(ns) || SURROGATE.test(ns)) out[ns] = features[ns];
  }
  return out;
}

/**
 * The JSON path's input for rank and learn options, packed (see `pack`),
 * with the context and per-call action features cut to allowlisted
 * namespaces, so data the site did not allow never crosses into wasm, and
 * the JSON path ignores it exactly as the fast path does. Throws what
 * JSON.stringify throws.
 */
export function packFor(w, o) {
  let v = o;
  if (plain(o)) {
    v = { ...o };
    if (v.context !== undefined) v.context = allowed(w, v.context);
    if (Array.isArray(v.actions)) v.actions = v.actions.map((a) => allowed(w, a));
  }
  return pack(v);
}

/**
 * A value as JSON.stringify sees it (toJSON applied, NaN and functions as
 * null, ...), in the packed form the Rust core reads instead of JSON text
 * (src/json.rs, `Json::unpack`): so the .wasm carries no text parser and no
 * decimal conversion. Tags: 0 null, 1 false, 2 true, 3 number (f64), 4
 * string, 5 array, 6 object; lengths and counts are u32, all little-endian.
 * Throws what JSON.stringify throws, and a TypeError when it returns
 * nothing (a function, a symbol).
 */
export function pack(value) {
  const p = { bytes: new Uint8Array(1024), at: 0 };
  if (putPlain(p, value, 0)) return p.bytes.subarray(0, p.at);
  // Anything else (a Date, toJSON, a boxed number, a BigInt, a cycle, ...):
  // let JSON.stringify decide what it is, then pack the parsed result.
  // Getters met before the walk gave up run a second time.
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError("not representable as JSON");
  p.at = 0;
  put(p, JSON.parse(text));
  return p.bytes.subarray(0, p.at);
}

/** Values JSON.stringify leaves out of objects and writes as null in arrays. */
const skipped = (x) => x === undefined || typeof x === "function" || typeof x === "symbol";

/**
 * Write `v` as JSON.stringify would, when it is made only of primitives,
 * plain objects and plain arrays (the common case, without the round trip
 * through JSON text). Returns false, having decided nothing, on anything else.
 */
function putPlain(p, v, depth) {
  if (typeof v === "number") {
    put(p, !Number.isFinite(v) ? null : v === 0 ? 0 : v); // JSON has no NaN, Infinity or -0
    return true;
  }
  if (typeof v === "string" || typeof v === "boolean" || v === null) {
    put(p, v);
    return true;
  }
  if (typeof v !== "object" || depth > MAX_DEPTH) return false; // the core refuses deeper anyway
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype || typeof v.toJSON === "function") return false;
    const n = v.length; // read once, as JSON.stringify does, though getters may change it
    if (n > MAX_ITEMS) return false;
    const at = open(p, 5);
    for (let i = 0; i < n; i++) {
      const x = v[i];
      if (skipped(x)) put(p, null);
      else if (!putPlain(p, x, depth + 1)) return false;
    }
    return patchLen(p, at, n);
  }
  // Not a boxed primitive (whatever its prototype), nor JSON.rawJSON text.
  if (!plain(v) || TO_STRING.call(v) !== "[object Object]" || JSON.isRawJSON?.(v)) return false;
  const at = open(p, 6);
  let n = 0;
  for (const k of Object.keys(v)) {
    const x = v[k];
    if (skipped(x)) continue;
    putStr(p, k);
    if (!putPlain(p, x, depth + 1)) return false;
    n++;
  }
  return patchLen(p, at, n);
}

/** Deeper than the core reads (src/json.rs MAX_DEPTH). */
const MAX_DEPTH = 32;
/** Longer arrays take the JSON.stringify round trip. */
const MAX_ITEMS = 1 << 24;
const TO_STRING = Object.prototype.toString;

/** Write the tag of an array or object whose count is not known yet; returns where the count goes. */
function open(p, tag) {
  room(p, 5);
  p.bytes[p.at] = tag;
  const at = p.at + 1;
  p.at += 5;
  return at;
}

/** Write the count `n` of the array or object whose count is at `at`. */
function patchLen(p, at, n) {
  const end = p.at;
  p.at = at;
  putLen(p, n);
  p.at = end;
  return true;
}

/** f64 to little-endian bytes (typed arrays use the platform's order, little-endian everywhere wasm runs). */
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);

/** Make room for `n` more bytes. */
function room(p, n) {
  if (p.at + n <= p.bytes.length) return;
  let size = 2 * p.bytes.length;
  while (size < p.at + n) size *= 2;
  const bytes = new Uint8Array(size);
  bytes.set(p.bytes.subarray(0, p.at));
  p.bytes = bytes;
}

function putLen(p, n) {
  const b = p.bytes;
  b[p.at] = n;
  b[p.at + 1] = n >>> 8;
  b[p.at + 2] = n >>> 16;
  b[p.at + 3] = n >>> 24;
  p.at += 4;
}

function putStr(p, s) {
  const n = s.length;
  room(p, 4 + 3 * n); // UTF-8 takes at most 3 bytes per UTF-16 unit
  const bytes = p.bytes;
  const at = p.at + 4;
  let i = 0;
  // ASCII byte by byte: encodeInto costs more than that for short strings.
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 127) break;
    bytes[at + i] = c;
  }
  const written = i === n ? n : i + encoder.encodeInto(s.slice(i), bytes.subarray(at + i)).written;
  putLen(p, written);
  p.at += written;
}

/** Write `v`, a value JSON.parse made (null, boolean, number, string, array, object). */
function put(p, v) {
  room(p, 9);
  const b = p.bytes;
  if (typeof v === "string") {
    b[p.at++] = 4;
    putStr(p, v);
  } else if (typeof v === "number") {
    b[p.at] = 3;
    F64[0] = v;
    b.set(F64_BYTES, p.at + 1);
    p.at += 9;
  } else if (v === null || typeof v === "boolean") {
    b[p.at++] = v === null ? 0 : v ? 2 : 1;
  } else if (Array.isArray(v)) {
    b[p.at++] = 5;
    putLen(p, v.length);
    for (let i = 0; i < v.length; i++) put(p, v[i]);
  } else {
    b[p.at++] = 6;
    const keys = Object.keys(v);
    putLen(p, keys.length);
    for (let i = 0; i < keys.length; i++) {
      putStr(p, keys[i]);
      put(p, v[keys[i]]);
    }
  }
}

/** The canonical decimal in s from `a` (below 2^53), else -1 (the JSON path decides). */
function decimal(s, a) {
  const len = s.length - a;
  if (len < 1 || len > 15 || (len > 1 && s.charCodeAt(a) === 48)) return -1;
  let v = 0;
  for (let i = a; i < s.length; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * Read `{ decisionId, reward?, now? }` into the header: [unused, counter,
 * reward (NaN for activate), now]. Returns 1, or -1 for the JSON path
 * (which also owns every error, e.g. for an id of another engine).
 */
export function prepSettle(w, o, withReward) {
  return guarded(walkSettle, w, o, withReward);
}

function walkSettle(w, o, withReward, buf) {
  if (polluted() || !plain(o)) return -1;
  let id;
  let reward = NaN;
  let hasReward = false;
  let now;
  for (const key in o) {
    const v = o[key];
    if (v === undefined) continue;
    if (key === "decisionId" && typeof v === "string") id = v;
    else if (key === "reward" && withReward && typeof v === "number") {
      reward = v;
      hasReward = true;
    } else if (key === "now" && typeof v === "number" && Number.isFinite(v)) now = v;
    else return -1;
  }
  if (id === undefined || withReward !== hasReward) return -1;
  if (!id.startsWith(w.prefix)) return -1;
  const counter = decimal(id, w.prefix.length);
  if (counter < 0) return -1;
  buf[1] = counter;
  buf[2] = reward;
  buf[3] = now === undefined ? Date.now() : now;
  return 1;
}

/**
 * The decision object, from numbers and the pmf and scores the engine wrote
 * after the header: one crossing, no strings decoded.
 */
export function decision(w, index, probability, seed, counter, k, nScores) {
  const buf = view(w);
  const pmf = new Array(k);
  for (let i = 0; i < k; i++) pmf[i] = buf[HEADER + i];
  const scores = new Array(nScores);
  for (let i = 0; i < nScores; i++) scores[i] = buf[HEADER + k + i];
  const fallback = seed < 0;
  return {
    variant: w.variants[index],
    index,
    probability,
    pmf,
    scores,
    decisionId: fallback ? null : w.prefix + counter,
    seed: fallback ? null : seed,
    modelVersion: w.modelVersion,
    policy: w.policy,
    fallback,
  };
}

/**
 * A plain object from the fields `JsObj` (src/wasm/mod.rs) collected: per
 * field, `layout` holds its kind (0 number, 1 boolean, 2 string, 3 other
 * value), its key's length and its string's length; keys and strings are
 * back to back in `text`, numbers and booleans in `nums`, other values in
 * `vals`. A `__proto__` key becomes an own property, not the prototype.
 */
export function obj(text, layout, nums, vals) {
  const o = {};
  let at = 0;
  let n = 0;
  let v = 0;
  for (let i = 0; i < layout.length; i += 3) {
    const key = text.slice(at, (at += layout[i + 1]));
    const kind = layout[i];
    const value = kind === 0 ? nums[n++]
      : kind === 1 ? nums[n++] !== 0
      : kind === 2 ? text.slice(at, (at += layout[i + 2]))
      : vals[v++];
    if (key === "__proto__") {
      Object.defineProperty(o, key, { value, writable: true, enumerable: true, configurable: true });
    } else {
      o[key] = value;
    }
  }
  return o;
}
