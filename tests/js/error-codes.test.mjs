// The error codes have one source, schema/errors.json. The README's table
// ("### Error codes") is its rendering for users: the same codes, in the
// same order, each with the same "when" text. The Rust core (src/error.rs)
// and the control plane (src/ts/errors.ts) keep the list as an array whose
// index is what the .wasm returns, so their order must match too (api.test.mjs
// checks the built package's CODES; this checks the sources, and needs no build).
// Run: node --test tests/js/error-codes.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const read = (path) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");
const schema = JSON.parse(read("schema/errors.json")).codes;
const codes = schema.map((c) => c.code);

/** The rows of the README's error-code table: [code, when], in order. */
function readmeTable() {
  const lines = read("README.md").split("\n");
  const start = lines.findIndex((l) => /^#{2,4} Error codes\s*$/.test(l));
  assert.notEqual(start, -1, "README.md has no `### Error codes` section");
  const rows = [];
  let inTable = false;
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,4} /.test(line)) break;
    if (!line.startsWith("|")) {
      if (inTable) break; // the table has ended
      continue;
    }
    inTable = true;
    const cells = line.slice(1, line.endsWith("|") ? -1 : undefined).split("|").map((c) => c.trim());
    if (cells[0] === "code" || /^-+$/.test(cells[0])) continue; // header and separator
    const m = /^`([A-Z_]+)`$/.exec(cells[0]);
    assert.ok(m, `README error table: the first cell of \`${line}\` is not a code in backticks`);
    rows.push([m[1], cells.slice(1).join("|")]);
  }
  assert.ok(rows.length > 0, "README.md's `### Error codes` section has no table");
  return rows;
}

/** The string literals of the array that follows `marker` in a source file, up to its closing `]`. */
function arrayIn(path, marker) {
  const text = read(path);
  const at = text.indexOf(marker);
  assert.notEqual(at, -1, `${path} has no \`${marker}\``);
  const open = text.indexOf("[", text.indexOf("=", at));
  const body = text.slice(open + 1, text.indexOf("]", open));
  return [...body.matchAll(/"([A-Z_]+)"/g)].map((m) => m[1]);
}

test("schema/errors.json lists each code once", () => {
  assert.ok(codes.length > 0);
  const repeated = codes.filter((c, i) => codes.indexOf(c) !== i);
  assert.deepEqual(repeated, [], `codes listed twice in schema/errors.json: ${repeated.join(", ")}`);
  for (const c of schema) assert.ok(typeof c.when === "string" && c.when.length > 0, `${c.code} has no "when"`);
});

test("the README's error-code table is schema/errors.json: same codes, same order, same text", () => {
  const rows = readmeTable();
  const inReadme = rows.map(([code]) => code);
  const missing = codes.filter((c) => !inReadme.includes(c));
  const unknown = inReadme.filter((c) => !codes.includes(c));
  assert.deepEqual(missing, [], `codes in schema/errors.json but not in the README's table: ${missing.join(", ")}`);
  assert.deepEqual(unknown, [], `codes in the README's table but not in schema/errors.json: ${unknown.join(", ")}`);
  assert.deepEqual(inReadme, codes, "the README's table lists the codes in another order than schema/errors.json");
  for (const [code, when] of rows) {
    const expected = schema.find((c) => c.code === code).when;
    assert.equal(when, expected, `README's "when" of ${code} differs from schema/errors.json`);
  }
});

test("the Rust core's and the control plane's CODES are schema/errors.json, in order", () => {
  assert.deepEqual(arrayIn("src/error.rs", "pub const CODES"), codes, "src/error.rs CODES");
  assert.deepEqual(arrayIn("src/ts/errors.ts", "export const CODES"), codes, "src/ts/errors.ts CODES");
});
