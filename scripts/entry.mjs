// Give the built package (the web target) its one entry point, `index.js`:
// everything the wasm-bindgen module exports, `open()` (the store,
// src/wasm/store.mjs) bound to its classes, and `load()` (src/wasm/load.mjs),
// which instantiates the wasm and falls back to plain JS when it cannot.
// Also ships the store's types and the audit schema, and points package.json
// at the entry.
// Usage: node scripts/entry.mjs <package dir>
import fs from "node:fs";
import path from "node:path";

const [dir] = process.argv.slice(2);
if (!dir) {
  console.error("usage: node scripts/entry.mjs <package dir>");
  process.exit(2);
}
const src = path.join(path.dirname(new URL(import.meta.url).pathname), "..");
const copy = (from, to) =>
  fs.writeFileSync(
    path.join(dir, to),
    fs.readFileSync(path.join(src, from), "utf8").replaceAll('"./store.mjs"', '"./store.js"'),
  );

copy("src/wasm/store.mjs", "store.js");
copy("src/wasm/load.mjs", "load.js");
copy("schema/audit.schema.json", "audit.schema.json");
// insitu.js has no side effect at import beyond defining functions: nothing
// touches window or fetches before init() or load() runs (tests/js/ssr.test.mjs).
fs.writeFileSync(
  path.join(dir, "index.js"),
  `import init, * as wasm from "./insitu.js";
import { createOpen } from "./store.js";
import { createLoad } from "./load.js";
export * from "./insitu.js";
export { default } from "./insitu.js";
export const open = createOpen(wasm);
export const load = createLoad(init, open);
`,
);
const types = fs.readFileSync(path.join(src, "src/wasm/store.d.ts"), "utf8").replace(/^\/\/.*\n/, "");
fs.writeFileSync(
  path.join(dir, "index.d.ts"),
  `export * from "./insitu.js";\nexport { default } from "./insitu.js";\n${types}`,
);

const pj = path.join(dir, "package.json");
const pkg = JSON.parse(fs.readFileSync(pj, "utf8"));
const shipped = ["index.js", "index.d.ts", "store.js", "load.js", "audit.schema.json"];
pkg.files = [...new Set([...pkg.files, ...shipped])];
pkg.main = "index.js";
pkg.module = "index.js";
pkg.types = "index.d.ts";
fs.writeFileSync(pj, `${JSON.stringify(pkg, null, 2)}\n`);
