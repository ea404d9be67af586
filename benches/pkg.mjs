// The built package (pkg/) for the Node benchmarks: waits out a build in
// progress, says clearly when pkg/ is missing, and describes what it
// measured (version, file sizes and hashes). Also a localStorage in memory.

import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PKG = path.join(root, "pkg");
const FILES = ["index.js", "full.js", "insitu_bg.wasm", "insitu_full.wasm", "package.json"];

/**
 * pkg/ as scripts/build.sh leaves it. A build in progress rewrites it over
 * about a minute: wait until its files have been still for 10 s (at most
 * 3 minutes), so what is measured is one finished build. Exits with a
 * message when pkg/ is missing or cannot be imported.
 */
export async function loadPkg() {
  const missing = FILES.filter((f) => !fs.existsSync(path.join(PKG, f)));
  if (missing.length > 0) {
    console.error(`pkg/ is missing or incomplete (no ${missing.map((f) => `pkg/${f}`).join(", ")}).`);
    console.error("Build the package first: npm run build (bash scripts/build.sh).");
    process.exit(1);
  }
  const newest = () => Math.max(...FILES.map((f) => fs.statSync(path.join(PKG, f)).mtimeMs));
  const deadline = Date.now() + 180_000;
  for (let age = Date.now() - newest(); age < 10_000 && Date.now() < deadline; age = Date.now() - newest()) {
    console.error(`pkg/ was written ${Math.round(age / 1000)} s ago (a build in progress?): waiting until it is still`);
    await new Promise((r) => setTimeout(r, 3000));
  }
  const read = (f) => fs.readFileSync(path.join(PKG, f));
  const sha = (b) => createHash("sha256").update(b).digest("hex").slice(0, 12);
  const build = {
    version: JSON.parse(read("package.json")).version,
    builtAt: new Date(newest()).toISOString(),
    files: Object.fromEntries(FILES.slice(0, 4).map((f) => [f, { bytes: read(f).length, sha256: sha(read(f)) }])),
  };
  let insitu;
  try {
    insitu = await import(pathToFileURL(path.join(PKG, "index.js")).href);
  } catch (e) {
    console.error(`pkg/index.js could not be imported: ${e.stack ?? e}`);
    console.error("If a build is running, wait for it to finish; otherwise rebuild with npm run build.");
    process.exit(1);
  }
  return { insitu, WASM: read("insitu_bg.wasm"), WASM_FULL: read("insitu_full.wasm"), build };
}

/** One line naming what is measured. */
export function describeBuild(build) {
  const f = build.files;
  return `insitu ${build.version} (pkg/, built ${build.builtAt}): insitu_bg.wasm ${f["insitu_bg.wasm"].bytes} B ${f["insitu_bg.wasm"].sha256}, ` +
    `insitu_full.wasm ${f["insitu_full.wasm"].bytes} B ${f["insitu_full.wasm"].sha256}, index.js ${f["index.js"].sha256}`;
}

/** localStorage in memory. */
export class MemoryStorage {
  map = new Map();
  get length() {
    return this.map.size;
  }
  key(i) {
    return [...this.map.keys()][i] ?? null;
  }
  getItem(k) {
    return this.map.get(k) ?? null;
  }
  setItem(k, v) {
    this.map.set(k, String(v));
  }
  removeItem(k) {
    this.map.delete(k);
  }
}
