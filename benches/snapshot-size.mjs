// Snapshot size with default settings after 10,000 behaviour events and
// 10,000 rewards (issue #4's measure; target <= 64 KB). Deterministic: a
// fixed seed and clock. Run: node benches/snapshot-size.mjs (after the build)
import { createRequire } from "node:module";
import { createOpen } from "../src/wasm/store.mjs";

const open = createOpen(createRequire(import.meta.url)("../pkg-node/insitu.js"));

const map = new Map();
const storage = {
  get length() { return map.size; },
  key: (i) => [...map.keys()][i] ?? null,
  getItem: (k) => map.get(k) ?? null,
  setItem: (k, v) => map.set(k, String(v)),
  removeItem: (k) => map.delete(k),
};
let t = 1_700_000_000_000;
const site = open({ storage, consent: "personalization", now: () => t, flushDelayMs: 60_000 });
const SECTIONS = ["news", "sports", "tech", "travel", "food", "style"];
const hero = site.slot("hero", {
  variants: ["a", "b", "c", "d", "e"],
  features: { allow: ["page", "behavior"] },
  seed: 1,
});
for (let i = 0; i < 10_000; i++) {
  t += 30_000;
  site.track({
    type: ["view", "click", "convert"][i % 3],
    item: `sku-${i % 400}`,
    category: SECTIONS[i % 6],
    tags: [`t${i % 10}`, `t${(i * 7) % 10}`],
  });
  const d = hero.rank({ context: { page: { section: SECTIONS[(i * 5) % 6], device: i % 2 ? "mobile" : "desktop" } } });
  hero.reward({ decisionId: d.decisionId, reward: d.variant === "b" ? 1 : 0 });
  if (i % 500 === 499) await site.flush();
}
await site.flush();
const raw = storage.getItem("insitu");
const audit = site.audit();
const snap = audit.storage.keys.find((k) => k.holds === "snapshot");
console.log(`snapshot after 10,000 events + 10,000 rewards (defaults, K=5, 64 slots):`);
console.log(`  events kept: ${audit.events.total} (retention: ${JSON.stringify(audit.retention)})`);
console.log(`  snapshot bytes: ${Math.round(((raw.split(";")[4].length) * 3) / 4)} binary; stored value ${raw.length} chars (${snap.bytes} bytes of UTF-16 quota)`);
site.close();
