#!/usr/bin/env node
// Size report of the shipped package: raw, gzip -9 and brotli (quality 11)
// bytes of the .wasm and the JS glue of each build target, and their totals.
// Usage: node scripts/size.mjs [--json]
import { readFileSync, existsSync, readdirSync } from "node:fs";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import { fileURLToPath } from "node:url";
import { join, dirname } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const targets = [
  { name: "package (pkg/)", dir: "pkg", files: ["insitu_bg.wasm", "insitu.js", "index.js", "store.js", "load.js"] },
];

function measure(buf) {
  return {
    raw: buf.length,
    gzip: gzipSync(buf, { level: 9 }).length,
    brotli: brotliCompressSync(buf, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: buf.length },
    }).length,
  };
}

/** Files of wasm-bindgen's inline JS snippets (shipped with the glue), relative to `dir`. */
function snippets(dir) {
  const base = join(root, dir, "snippets");
  if (!existsSync(base)) return [];
  return readdirSync(base, { recursive: true })
    .filter((f) => f.endsWith(".js"))
    .map((f) => join("snippets", f))
    .sort();
}

const report = [];
for (const t of targets) {
  t.files = [...t.files, ...snippets(t.dir)];
  const rows = [];
  for (const f of t.files) {
    const p = join(root, t.dir, f);
    if (!existsSync(p)) {
      console.error(`size: ${p} is missing; run scripts/build.sh first`);
      process.exit(1);
    }
    rows.push({ file: f, ...measure(readFileSync(p)) });
  }
  const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
  report.push({ target: t.name, rows, total: { raw: sum("raw"), gzip: sum("gzip"), brotli: sum("brotli") } });
}

if (process.argv.includes("--json")) {
  console.log(JSON.stringify(report, null, 2));
} else {
  const pad = (s, n) => String(s).padStart(n);
  for (const t of report) {
    const w = Math.max(...t.rows.map((r) => r.file.length)) + 2;
    console.log(`size: ${t.target}`);
    console.log(`  ${"file".padEnd(w)}${pad("raw", 10)}${pad("gzip -9", 10)}${pad("brotli", 10)}`);
    for (const r of t.rows) console.log(`  ${r.file.padEnd(w)}${pad(r.raw, 10)}${pad(r.gzip, 10)}${pad(r.brotli, 10)}`);
    console.log(`  ${"total".padEnd(w)}${pad(t.total.raw, 10)}${pad(t.total.gzip, 10)}${pad(t.total.brotli, 10)}`);
  }
}
