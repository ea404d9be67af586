// Writes tests/fixtures/growthbook.json: golden cases of GrowthBook's
// published assignment algorithm (FNV-1a 32-bit over UTF-16 code units;
// hash versions 1 and 2; contiguous bucket ranges scaled by coverage;
// namespaces placed by the version-1 hash of "__" + name), which the Rust
// tests (tests/allocation.rs) and the JS tests (tests/js/experiments.test.mjs)
// both check insitu against.
//
// The expected values are computed here from the published algorithm, and
// every case is also run through GrowthBook's own SDK (the devDependency
// @growthbook/growthbook): the script fails if the two ever disagree.
// Usage: node scripts/fixtures-growthbook.mjs [--check]
//   --check: fail if the file on disk differs from what would be written.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { GrowthBook } = require("@growthbook/growthbook");
const root = path.join(path.dirname(new URL(import.meta.url).pathname), "..");
const out = path.join(root, "tests/fixtures/growthbook.json");

function fnv32a(str) {
  let h = 0x811c9dc5;
  for (let i = 0; i < str.length; i++) {
    h ^= str.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function hash(seed, value, version) {
  if (version === 2) return (fnv32a(String(fnv32a(seed + value))) % 10000) / 10000;
  if (version === 1) return (fnv32a(value + seed) % 1000) / 1000;
  return null;
}

function assign({ key, seed, weights, coverage, namespace, hashVersion }, unit) {
  if (namespace) {
    const n = hash(`__${namespace[0]}`, unit, 1);
    if (!(n >= namespace[1] && n < namespace[2])) return { inExperiment: false, variant: 0, bucket: null };
  }
  const n = hash(seed ?? key, unit, hashVersion);
  let cumulative = 0;
  for (let i = 0; i < weights.length; i++) {
    const start = cumulative;
    cumulative += weights[i];
    if (n >= start && n < start + coverage * weights[i]) return { inExperiment: true, variant: i, bucket: n };
  }
  return { inExperiment: false, variant: 0, bucket: n };
}

// A fixed pseudo-random sequence (mulberry32), so the file is reproducible.
let state = 0x5eed;
function rand() {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

const UNITS = [
  "", "0", "1", "user-1", "user-2", "4294967295", "a".repeat(200), "é", "naïve-ünit", "日本語",
  "😀", "\u0000x", "d:3f9a0c51e2b84d7f9c1a2b3c4d5e6f70", "Alice@example.com",
];
for (let i = 0; i < 40; i++) UNITS.push(`u${Math.floor(rand() * 1e9)}`);

const hashes = [];
for (const version of [1, 2]) {
  for (const seed of ["", "exp", "hero-test", "__homepage", "séed"]) {
    for (const value of UNITS.slice(0, 20)) hashes.push({ seed, value, version, n: hash(seed, value, version) });
  }
}

const WEIGHTS = [[0.5, 0.5], [0.1, 0.9], [0.2, 0.3, 0.5], [0.25, 0.25, 0.25, 0.25], [0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]];
const experiments = [];
for (let c = 0; c < 60; c++) {
  const weights = pick(WEIGHTS);
  const exp = {
    key: `exp-${c}`,
    weights,
    coverage: pick([1, 1, 0.5, 0.8, 0.05]),
    hashVersion: pick([1, 2, 2]),
  };
  if (rand() < 0.3) exp.seed = pick(["s1", "shared-seed", "séed"]);
  if (rand() < 0.3) {
    const start = pick([0, 0.25, 0.5]);
    exp.namespace = [pick(["homepage", "checkout"]), start, start + pick([0.25, 0.5])];
  }
  const cases = UNITS.filter(() => rand() < 0.5).map((unit) => ({ unit, ...assign(exp, unit) }));
  experiments.push({ ...exp, cases });
}

// Cross-check every case with GrowthBook's SDK.
let checked = 0;
for (const exp of experiments) {
  const variations = exp.weights.map((_, i) => `v${i}`);
  for (const c of exp.cases) {
    if (c.unit === "") continue; // GrowthBook skips an empty hash attribute before hashing
    const gb = new GrowthBook({ attributes: { id: c.unit } });
    const r = gb.run({
      key: exp.key, variations, weights: exp.weights, coverage: exp.coverage, hashVersion: exp.hashVersion,
      ...(exp.seed === undefined ? {} : { seed: exp.seed }),
      ...(exp.namespace === undefined ? {} : { namespace: exp.namespace }),
    });
    gb.destroy();
    if (r.inExperiment !== c.inExperiment || r.variationId !== c.variant) {
      throw new Error(`GrowthBook disagrees on ${exp.key} unit ${JSON.stringify(c.unit)}: ${JSON.stringify(r)} vs ${JSON.stringify(c)}`);
    }
    checked++;
  }
}

const text = `${JSON.stringify({
  about: "Golden cases of GrowthBook's published hashing and bucketing; written by scripts/fixtures-growthbook.mjs, cross-checked against @growthbook/growthbook.",
  hashes,
  experiments,
}, null, 1)}\n`;
if (process.argv.includes("--check")) {
  if (fs.readFileSync(out, "utf8") !== text) {
    console.error(`${out} is stale: run node scripts/fixtures-growthbook.mjs`);
    process.exit(1);
  }
  console.log(`${out} is current (${checked} cases agree with GrowthBook's SDK)`);
} else {
  fs.writeFileSync(out, text);
  console.log(`wrote ${out}: ${hashes.length} hashes, ${experiments.length} experiments; ${checked} cases agree with GrowthBook's SDK`);
}
