// insitu against GrowthBook in headless Chromium, for the place the library
// really runs: `rank` of one slot (`new Insitu(...)` after `await init()`,
// K=5, 32 active features, the default policy) against GrowthBook's
// setAttributes + getFeatureValue of a 5-variant experiment, with the
// workload and paired measurement of benches/workload.mjs (the Node
// benchmark's first workload; benches/node-bench.mjs now measures whole page
// views, benches/pageview.mjs). Measures pkg/ (npm run build first).
//
//   node benches/browser-bench.mjs [--quick]
//
// No request leaves 127.0.0.1 (the browser tests' network guard).
import { guardNetwork, launchBrowser, REPO, serveStatic } from "../tests/browser/lib.mjs";

const QUICK = process.argv.includes("--quick");
const options = QUICK ? { batches: 6, warmup: 2, calls: 400 } : { batches: 30, warmup: 5, calls: 2000 };

const server = await serveStatic(REPO);
const context = await launchBrowser();
try {
  const { leaks } = await guardNetwork(context);
  const page = await context.newPage();
  // A page that cannot import the package says why instead of timing out.
  const broken = new Promise((_, fail) => {
    page.on("pageerror", (e) => fail(new Error(`benchmark page: ${e.message}`)));
    page.on("console", (m) => m.type() === "error" && fail(new Error(`benchmark page: ${m.text()} (${m.location().url})`)));
  });
  broken.catch(() => undefined);
  await page.goto(`${server.url}benches/browser/index.html`);
  await Promise.race([page.waitForFunction(() => document.querySelector("#status").textContent === "ready"), broken]);
  const r = await page.evaluate((o) => window.bench(o), options);
  const fmt = (ns) => (ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${Math.round(ns)} ns`);
  console.log(`insitu browser benchmark — ${r.userAgent}`);
  console.log(`${r.batches} paired batches × ${options.calls} calls after ${options.warmup} warm-up pairs`);
  console.log(`insitu rank (K=5, 32 features, ${r.policy})        ${fmt(r.aMedian)}`);
  console.log(`GrowthBook setAttributes + getFeatureValue        ${fmt(r.bMedian)}`);
  console.log(`rank / GrowthBook, paired: ${r.median.toFixed(2)}× (p10–p90 ${r.p10.toFixed(2)}–${r.p90.toFixed(2)}×), target ≤ 0.5×`);
  if (leaks.length > 0) throw new Error(`requests left 127.0.0.1: ${leaks.join(", ")}`);
} finally {
  await context.close();
  await server.close();
}
