// The packed form in which the boundary hands options to the core
// (src/wasm/fast.js `pack`; src/json.rs `Json::unpack` reads it). The golden
// encodings in tests/fixtures/packed-json.json are read by this test (the
// shipped encoder must still write them) and by the Rust test
// `json::tests::golden_packed_fixtures` (they must decode to the same JSON).
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createRequire } from "node:module";

const root = fileURLToPath(new URL("../../", import.meta.url));
const snippets = `${root}pkg-node/snippets/`;
// The minified copy that ships, not the source.
const shipped = `${snippets}${readdirSync(snippets)[0]}/src/wasm/fast.js`;
const { pack } = await import(pathToFileURL(shipped));
const { Insitu } = createRequire(import.meta.url)("../../pkg-node/insitu.js");
const { fixtures } = JSON.parse(readFileSync(`${root}tests/fixtures/packed-json.json`, "utf8"));
const hex = (bytes) => Buffer.from(bytes).toString("hex");

test("the shipped encoder writes the golden encodings", () => {
  assert.ok(fixtures.length >= 15);
  for (const { json, packed } of fixtures) assert.equal(hex(pack(json)), packed, JSON.stringify(json));
});

test("packing sees the value as JSON.stringify does", () => {
  const date = new Date(0);
  const cases = [
    [{ a: NaN, b: Infinity, c: undefined, d: () => 1 }, { a: null, b: null }],
    [[undefined, NaN, -0], [null, null, 0]],
    [{ when: date, n: Object(2), s: Object("x") }, { when: date.toJSON(), n: 2, s: "x" }],
    [{ toJSON: () => ({ swapped: true }) }, { swapped: true }],
    [new Map([["k", 1]]), {}],
    ["\ud800", "\ufffd"], // a lone surrogate, as TextEncoder writes it
  ];
  for (const [value, asJson] of cases) assert.equal(hex(pack(value)), hex(pack(asJson)), String(value));
});

test("what JSON cannot hold throws, and the API reports it as INVALID_OPTION", () => {
  const cyclic = {};
  cyclic.self = cyclic;
  for (const bad of [cyclic, 1n, { seed: 2n }, () => 1, Symbol("s")]) {
    assert.throws(() => pack(bad));
  }
  for (const bad of [() => 1, Symbol("s")]) {
    assert.throws(() => new Insitu(bad), (e) => e.code === "INVALID_OPTION" && /cannot be converted to JSON/.test(e.message));
  }
});

test("deep nesting is refused by the core with a code, not by a crash", () => {
  let deep = 1;
  for (let i = 0; i < 40; i++) deep = [deep];
  const slot = new Insitu({ variants: ["a", "b"], features: { allow: ["page"] }, seed: 1 });
  assert.throws(() => slot.learn({ variant: "a", reward: 1, context: { page: { x: deep } } }),
    (e) => e.code === "INVALID_OPTION" && /too deep/.test(e.message));
  assert.throws(() => new Insitu({ variants: ["a", "b"], nested: deep }),
    (e) => e.code === "INVALID_OPTION" && /too deep/.test(e.message));
  // Nothing was learned from the refused call.
  assert.deepEqual(slot.stats().variants.map((v) => v.updates), [0, 0]);
});

test("the direct walk of plain values packs what the JSON.stringify round trip packs (seeded)", () => {
  // An object with toJSON is not plain, so pack() takes the round trip for it.
  const viaStringify = (v) => pack({ toJSON: () => v });
  let s = 12345;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const leaves = [0, -0, 1.5, -1e-300, 1e308, NaN, Infinity, -Infinity, 2 ** 53, "", "a", "é☕𝄞", "\ud800",
    true, false, null, undefined, () => 1, Symbol("x")];
  const gen = (depth) => {
    const r = rand();
    if (depth > 4 || r < 0.5) return leaves[Math.floor(rand() * leaves.length)];
    const n = Math.floor(rand() * 5);
    if (r < 0.75) return Array.from({ length: n }, () => gen(depth + 1));
    const o = rand() < 0.2 ? Object.create(null) : {};
    for (let i = 0; i < n; i++) o[["k", "ключ", "__proto__", "", String(i)][Math.floor(rand() * 5)] + i] = gen(depth + 1);
    return o;
  };
  let compared = 0;
  for (let i = 0; i < 2000; i++) {
    const v = gen(0);
    if (JSON.stringify(v) === undefined) continue; // nothing to compare: both throw
    assert.equal(hex(pack(v)), hex(viaStringify(v)), `case ${i}`);
    compared++;
  }
  assert.ok(compared > 1000);
});

test("values that change while packed, or only look plain, are packed as JSON.stringify sees them", () => {
  const viaStringify = (v) => pack({ toJSON: () => v });
  // A getter that shortens its array: the length is read once, as JSON.stringify reads it.
  const shrinking = () => {
    const a = [1, 2];
    Object.defineProperty(a, 0, { get() { a.length = 0; return 1; }, configurable: true });
    return { x: a, y: 5 };
  };
  assert.equal(hex(pack(shrinking())), hex(viaStringify(shrinking())));
  assert.equal(hex(pack(shrinking())), hex(pack({ x: [1, null], y: 5 })));
  // Boxed primitives with their prototype swapped are still boxed primitives.
  // JSON.stringify unboxes a Boolean directly, and converts a Number with
  // ToNumber, which throws without a valueOf to call.
  const bool = Object.setPrototypeOf(new Boolean(true), null);
  assert.equal(hex(pack({ b: bool })), hex(pack({ b: true })));
  const num = Object.setPrototypeOf(new Number(2), null);
  assert.throws(() => JSON.stringify({ n: num }), TypeError);
  assert.throws(() => pack({ n: num }), TypeError);
});
