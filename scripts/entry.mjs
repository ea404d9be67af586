// Give a built package its one entry point, `index.js`: everything the
// wasm-bindgen module exports, plus `open()` (the store, src/wasm/store.mjs)
// bound to its classes. Also ships the store, its types and the audit schema,
// and points package.json at the entry.
// Usage: node scripts/entry.mjs <package dir> <bundler|web>
import fs from "node:fs";
import path from "node:path";

const [dir, target] = process.argv.slice(2);
if (!dir || !["bundler", "web"].includes(target)) {
  console.error("usage: node scripts/entry.mjs <package dir> <bundler|web>");
  process.exit(2);
}
const src = path.join(path.dirname(new URL(import.meta.url).pathname), "..");
const web = target === "web";

fs.copyFileSync(path.join(src, "src/wasm/store.mjs"), path.join(dir, "store.js"));
fs.copyFileSync(path.join(src, "schema/audit.schema.json"), path.join(dir, "audit.schema.json"));
fs.writeFileSync(
  path.join(dir, "index.js"),
  `import * as wasm from "./insitu.js";
import { createOpen } from "./store.js";
export * from "./insitu.js";
${web ? 'export { default } from "./insitu.js";\n' : ""}export const open = createOpen(wasm);
`,
);
const types = fs.readFileSync(path.join(src, "src/wasm/store.d.ts"), "utf8")
  .replace(/^\/\/.*\n/, "");
fs.writeFileSync(
  path.join(dir, "index.d.ts"),
  `export * from "./insitu.js";\n${web ? 'export { default } from "./insitu.js";\n' : ""}${types}`,
);

const pj = path.join(dir, "package.json");
const pkg = JSON.parse(fs.readFileSync(pj, "utf8"));
pkg.files = [...new Set([...pkg.files, "index.js", "index.d.ts", "store.js", "audit.schema.json"])];
pkg.main = "index.js";
if (pkg.module) pkg.module = "index.js";
pkg.types = "index.d.ts";
fs.writeFileSync(pj, `${JSON.stringify(pkg, null, 2)}\n`);
