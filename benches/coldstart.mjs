// Cold start in headless Chromium: time from navigation start to the first
// decision, for three pages served brotli-compressed from 127.0.0.1:
//
//   none.html        no SDK; the "decision" is a constant set by an inline module
//   growthbook.html  GrowthBook 1.8's ESM bundle, initSync with an inline payload,
//                    getFeatureValue of an experiment feature with 5 variations
//   insitu.html      the recommended insitu setup: modulepreload + wasm preload,
//                    await load(), site.slot(…).rank(…)
//
// Three scenarios, the pages alternating (none, growthbook, insitu, none, …):
//   first     first visit, a fresh browser context per load, unthrottled
//   repeat    repeat visit: a fresh context loads the page once to warm the HTTP
//             cache, then the next load of the same page, in a new tab, is measured
//   same-tab  (only when asked for) as repeat, but the measured load is in the
//             same tab, whose renderer also keeps V8's in-memory code caches
//   throttled first visit under Lighthouse-like mobile throttling (CDP: 150 ms
//             latency, 200 KiB/s down, 4× CPU slowdown)
//
//   node benches/coldstart.mjs [--quick] [--loads N] [--pkg DIR]
//        [--scenarios first,repeat,throttled,same-tab] [--idle-timeout MS] [--out FILE]
//
// --pkg is the directory served at /pkg/ (default pkg/, from `npm run build`);
// the page imports /pkg/index.js and preloads /pkg/insitu_bg.wasm. Bytes count
// as "critical" when their request started before the decision; anything the
// page fetches afterwards (a lazily loaded second .wasm, say) only counts in
// the total. Raw samples go to .artifacts/coldstart.json.
//
// Measured loads run WITHOUT Playwright request routing, because routing turns
// off the HTTP cache and puts a round trip to this process in front of every
// request. Instead: the browser resolves every host except 127.0.0.1 to
// nothing (launchBrowser's flags); every request the page makes is checked from
// the DevTools protocol, and the run fails if one is not aimed at 127.0.0.1; and
// each page is first loaded once in a context under guardNetwork(), whose
// detector is itself checked with a deliberate request to example.com.
import { readFileSync } from "node:fs";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { dirname, extname, join, relative, resolve, sep } from "node:path";
import { parseArgs } from "node:util";
import { brotliCompressSync, constants as zlib } from "node:zlib";
import { ARTIFACTS, guardNetwork, launchBrowser, REPO } from "../tests/browser/lib.mjs";

const { values: argv } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    loads: { type: "string" },
    pkg: { type: "string", default: join(REPO, "pkg") },
    scenarios: { type: "string", default: "first,repeat,throttled" },
    "idle-timeout": { type: "string", default: "5000" },
    out: { type: "string", default: join(ARTIFACTS, "coldstart.json") },
  },
});

const LOADS = Number(argv.loads ?? (argv.quick ? 3 : 15));
const PKG = resolve(argv.pkg);
const IDLE_TIMEOUT_MS = Number(argv["idle-timeout"]);
const PAGES = ["none", "growthbook", "insitu"];
const SCENARIOS = {
  first: { title: "first visit, unthrottled (fresh context per load)", warm: 0, throttle: false },
  repeat: {
    title: "repeat visit, unthrottled (a context's second load, in a new tab: HTTP cache warm)",
    warm: 1,
    throttle: false,
  },
  // Not run by default: the next page view in the same tab, where the renderer
  // also keeps V8's in-memory caches (compiled scripts and the wasm module).
  "same-tab": {
    title: "repeat visit in the same tab, unthrottled (HTTP cache and in-memory code caches warm)",
    warm: 1,
    throttle: false,
    sameTab: true,
  },
  throttled: {
    title: "first visit, mobile throttling (150 ms RTT, 200 KiB/s, CPU 4x)",
    warm: 0,
    throttle: true,
  },
};
const SCENARIO_LIST = argv.scenarios.split(",").filter(Boolean);
for (const s of SCENARIO_LIST) if (!SCENARIOS[s]) throw new Error(`unknown scenario ${s}`);
if (!(Number.isInteger(LOADS) && LOADS > 0)) throw new Error(`--loads should be a positive integer`);
// Lighthouse's simulated mobile profile, applied through CDP before navigation.
const NETWORK_THROTTLE = { offline: false, latency: 150, downloadThroughput: 204800, uploadThroughput: 96000 };
const CPU_THROTTLE = { rate: 4 };
const VARIANTS = ["a", "b", "c", "d", "e"];
// The issue's bars: on a throttled first visit insitu may add at most 2× the
// time GrowthBook adds over a page without SDK; on a repeat visit its time to
// decision may be at most 1.25× GrowthBook's.
const BARS = { throttled: { added: 2 }, repeat: { total: 1.25 } };

// ---------------------------------------------------------------- the server

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
};

async function filesUnder(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (TYPES[extname(entry.name)]) out.push(path);
  }
  return out;
}

/** Every servable file, compressed once: URL path -> { body, type, cache, raw }. */
async function buildAssets() {
  const mounts = [
    { prefix: "/", dir: join(REPO, "benches/coldstart"), html: true },
    { prefix: "/pkg/", dir: PKG },
    { prefix: "/growthbook/", dir: join(REPO, "node_modules/@growthbook/growthbook/dist/bundles"), only: ["esm.min.js"] },
  ];
  const assets = new Map();
  for (const { prefix, dir, only } of mounts) {
    for (const file of await filesUnder(dir)) {
      const rel = relative(dir, file).split(sep).join("/");
      if (only && !only.includes(rel)) continue;
      const raw = await readFile(file);
      const body = brotliCompressSync(raw, {
        params: {
          [zlib.BROTLI_PARAM_QUALITY]: 11,
          [zlib.BROTLI_PARAM_SIZE_HINT]: raw.length,
          [zlib.BROTLI_PARAM_MODE]: extname(file) === ".wasm" ? zlib.BROTLI_MODE_GENERIC : zlib.BROTLI_MODE_TEXT,
        },
      });
      const isHtml = extname(file) === ".html";
      assets.set(prefix + rel, {
        body,
        raw: raw.length,
        type: TYPES[extname(file)],
        // The HTML is revalidated on every visit; everything else is cached for
        // a year, so a repeat visit takes it from the HTTP cache.
        cache: isHtml ? "no-cache" : "public, max-age=31536000",
      });
    }
  }
  return assets;
}

async function startServer(assets) {
  const stats = { requests: 0, withoutBr: [] };
  const server = createServer((req, res) => {
    stats.requests++;
    const path = new URL(req.url, "http://x").pathname;
    const asset = assets.get(path);
    if (!asset) {
      res.writeHead(404, { "content-type": "text/plain", "cache-control": "no-store" });
      res.end("not found");
      return;
    }
    if (!/\bbr\b/.test(req.headers["accept-encoding"] ?? "")) stats.withoutBr.push(path);
    res.writeHead(200, {
      "content-type": asset.type,
      "content-encoding": "br",
      "content-length": asset.body.length,
      "cache-control": asset.cache,
      vary: "accept-encoding",
    });
    res.end(req.method === "HEAD" ? undefined : asset.body);
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", ok);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    stats,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

// ------------------------------------------------------- waiting for idle CPU

function cpuTicks() {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = fields[3] + (fields[4] ?? 0); // idle + iowait
  return { idle, total: fields.reduce((a, b) => a + b, 0) };
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/**
 * Wait until two consecutive 100 ms windows show under 10% CPU busy over all
 * cores (Chromium starts an extra renderer for every new context that can burn
 * hundreds of ms of CPU). Gives up after IDLE_TIMEOUT_MS; says how long it took.
 */
async function waitForIdle() {
  const started = performance.now();
  let calm = 0;
  let prev = cpuTicks();
  const busyPct = [];
  while (performance.now() - started < IDLE_TIMEOUT_MS) {
    await sleep(100);
    const now = cpuTicks();
    const total = now.total - prev.total;
    const busy = total > 0 ? 1 - (now.idle - prev.idle) / total : 0;
    prev = now;
    busyPct.push(Math.round(busy * 100));
    calm = busy < 0.1 ? calm + 1 : 0;
    if (calm >= 2) return { waitedMs: Math.round(performance.now() - started), timedOut: false };
  }
  return { waitedMs: Math.round(performance.now() - started), timedOut: true, busyPct: busyPct.slice(-20) };
}

// ------------------------------------------------------------ one page load

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);
function isRemote(url) {
  try {
    const { host, hostname } = new URL(url);
    return host !== "" && !LOOPBACK.has(hostname);
  } catch {
    return true;
  }
}

/**
 * Attach what a measured load needs to `page`: a CDP session recording every
 * network request (and failing the run on any not aimed at 127.0.0.1), the
 * throttling, and a listener for the page's `coldstart:` console line.
 */
async function instrument(page, { throttle }) {
  const cdp = await page.context().newCDPSession(page);
  const state = { cdp, requests: new Map(), leaks: [], console: [], signal: null };
  cdp.on("Network.requestWillBeSent", (e) => {
    if (isRemote(e.request.url)) state.leaks.push(e.request.url);
    state.requests.set(e.requestId, {
      url: e.request.url,
      type: e.type,
      initiator: e.initiator?.type,
      done: false,
    });
  });
  const update = (id, fields) => {
    const r = state.requests.get(id);
    if (r) Object.assign(r, fields);
  };
  cdp.on("Network.requestServedFromCache", (e) => update(e.requestId, { servedFromCache: true }));
  cdp.on("Network.responseReceived", (e) =>
    update(e.requestId, {
      status: e.response.status,
      fromDiskCache: e.response.fromDiskCache,
      fromPrefetchCache: e.response.fromPrefetchCache,
      contentEncoding: e.response.headers["content-encoding"] ?? e.response.headers["Content-Encoding"],
    }),
  );
  cdp.on("Network.loadingFinished", (e) => update(e.requestId, { done: true, encodedDataLength: e.encodedDataLength }));
  cdp.on("Network.loadingFailed", (e) => update(e.requestId, { done: true, failed: e.errorText }));
  await cdp.send("Network.enable");
  if (throttle) await cdp.send("Network.emulateNetworkConditions", NETWORK_THROTTLE);
  page.on("console", (msg) => {
    const text = msg.text();
    if (text.startsWith("coldstart:")) state.signal?.(JSON.parse(text.slice("coldstart:".length)));
    else state.console.push(`${msg.type()}: ${text}`);
  });
  page.on("pageerror", (err) => state.console.push(`pageerror: ${err.message}`));
  return state;
}

/** Resolve once no request has been in flight for `quietMs` (or give up at `maxMs`). */
async function networkQuiet(state, { quietMs, maxMs }) {
  const started = performance.now();
  let quietSince = null;
  while (performance.now() - started < maxMs) {
    const busy = [...state.requests.values()].some((r) => !r.done);
    if (busy) quietSince = null;
    else if (quietSince === null) quietSince = performance.now();
    else if (performance.now() - quietSince >= quietMs) return true;
    await sleep(25);
  }
  return false;
}

/** Navigate `page` to `url` and collect the decision and the bytes. */
async function measureLoad(page, state, url, { throttle }) {
  state.requests.clear();
  state.console.length = 0;
  const idle = await waitForIdle();
  // Chromium's CPU throttling keeps a thread busy (about 40% of one of the two
  // cores here) for as long as it is on, so it is switched on only now, after
  // the wait for an idle machine, and off again after the load.
  if (throttle) await state.cdp.send("Emulation.setCPUThrottlingRate", CPU_THROTTLE);
  const timeoutMs = throttle ? 60_000 : 20_000;
  const result = new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no decision from ${url} within ${timeoutMs} ms`)), timeoutMs);
    state.signal = (r) => {
      clearTimeout(timer);
      ok(r);
    };
  });
  result.catch(() => {}); // awaited below; this only keeps a failed goto from leaving it unhandled
  // Nothing else touches the page until it reports its decision: Playwright's
  // own waiting helpers would inject scripts into the page while it loads.
  await page.goto(url, { waitUntil: "commit", timeout: timeoutMs });
  let decision;
  try {
    decision = await result;
  } catch (error) {
    error.message += `; console: ${JSON.stringify(state.console)}`;
    throw error;
  }
  if (decision.error || decision.fallback) {
    throw new Error(`${url}: ${decision.error ?? "fallback"}; console: ${JSON.stringify(state.console)}`);
  }
  if (!VARIANTS.includes(decision.variant)) throw new Error(`${url}: unexpected variant ${decision.variant}`);
  // Let anything the page fetches after its decision (a lazy second .wasm) finish.
  await page.waitForLoadState("load", { timeout: timeoutMs });
  const quiet = await networkQuiet(state, { quietMs: throttle ? 1000 : 500, maxMs: timeoutMs });
  const timing = await page.evaluate(() => ({
    navigation: performance.getEntriesByType("navigation")[0].toJSON(),
    resources: performance.getEntriesByType("resource").map((e) => e.toJSON()),
  }));
  if (throttle) await state.cdp.send("Emulation.setCPUThrottlingRate", { rate: 1 });
  const entry = (e) => ({
    path: new URL(e.name).pathname,
    initiatorType: e.initiatorType ?? "navigation",
    startTime: round(e.startTime),
    responseEnd: round(e.responseEnd),
    encodedBodySize: e.encodedBodySize,
    decodedBodySize: e.decodedBodySize,
    transferSize: e.transferSize,
    deliveryType: e.deliveryType,
  });
  const entries = [entry(timing.navigation), ...timing.resources.map(entry)];
  const critical = entries.filter((e) => e.startTime < decision.t);
  const sum = (list, key) => list.reduce((a, e) => a + (e[key] ?? 0), 0);
  // Requests that went to the network (not memory/disk cache), per URL: more
  // than one for the same URL means a preload was not reused.
  const network = [...state.requests.values()].filter(
    (r) => !r.servedFromCache && !r.fromDiskCache && !r.fromPrefetchCache && !r.url.startsWith("data:"),
  );
  const perUrl = new Map();
  for (const r of network) {
    const path = new URL(r.url).pathname;
    perUrl.set(path, (perUrl.get(path) ?? 0) + 1);
  }
  const duplicates = [...perUrl].filter(([, n]) => n > 1).map(([path, n]) => `${path} ×${n}`);
  const notBr = [...state.requests.values()]
    .filter((r) => r.status === 200 && !r.servedFromCache && r.contentEncoding !== "br" && !r.url.startsWith("data:"))
    .map((r) => new URL(r.url).pathname);
  return {
    t: round(decision.t),
    variant: decision.variant,
    criticalBytes: sum(critical, "encodedBodySize"),
    criticalTransfer: sum(critical, "transferSize"),
    totalBytes: sum(entries, "encodedBodySize"),
    totalTransfer: sum(entries, "transferSize"),
    criticalFiles: critical.map((e) => e.path),
    lateFiles: entries.filter((e) => e.startTime >= decision.t).map((e) => e.path),
    entries,
    cdpRequests: [...state.requests.values()].map((r) => ({
      path: r.url.startsWith("data:") ? "data:" : new URL(r.url).pathname,
      type: r.type,
      initiator: r.initiator,
      servedFromCache: !!r.servedFromCache,
      fromDiskCache: !!r.fromDiskCache,
      encodedDataLength: r.encodedDataLength,
      failed: r.failed,
    })),
    duplicates,
    notBr,
    console: [...state.console],
    networkQuiet: quiet,
    idle,
  };
}

const round = (x) => Math.round(x * 100) / 100;

// ----------------------------------------------------------------- statistics

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => quantile(sorted(xs), 0.5);
const ms = (x) => `${x.toFixed(1)} ms`;
const signedMs = (x) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(1)} ms`;
const bytes = (b) => `${Math.round(b).toLocaleString("en-US")} B`;

// ----------------------------------------------------------------------- main

async function checkPackage() {
  for (const file of ["index.js", "insitu_bg.wasm"]) {
    try {
      await stat(join(PKG, file));
    } catch {
      throw new Error(`${join(PKG, file)} is missing: build the package first (npm run build) or pass --pkg DIR`);
    }
  }
}

/** Each page once under guardNetwork(), plus a deliberate leak both detectors must catch. */
async function validate(browser, server) {
  const context = await browser.newContext();
  try {
    const { leaks } = await guardNetwork(context);
    const page = await context.newPage();
    const state = await instrument(page, { throttle: false });
    for (const name of PAGES) {
      const sample = await measureLoad(page, state, `${server.url}${name}.html`, { throttle: false });
      if (sample.duplicates.length > 0) console.log(`note: ${name}: fetched more than once: ${sample.duplicates.join(", ")}`);
    }
    if (leaks.length > 0 || state.leaks.length > 0) {
      throw new Error(`requests left 127.0.0.1: ${[...leaks, ...state.leaks].join(", ")}`);
    }
    await page.evaluate(() => fetch("https://example.com/leak").catch(() => {}));
    await sleep(200);
    if (!leaks.includes("https://example.com/leak")) throw new Error("guardNetwork missed a deliberate leak");
    if (!state.leaks.includes("https://example.com/leak")) throw new Error("the CDP request monitor missed a deliberate leak");
  } finally {
    await context.close();
  }
}

async function runScenario(browser, server, key) {
  const scenario = SCENARIOS[key];
  const samples = [];
  for (let i = 0; i < LOADS; i++) {
    for (const name of PAGES) {
      const url = `${server.url}${name}.html`;
      const context = await browser.newContext();
      try {
        let page = await context.newPage();
        let state = await instrument(page, scenario);
        const leaks = [];
        const warm = [];
        for (let w = 0; w < scenario.warm; w++) {
          const first = await measureLoad(page, state, url, scenario);
          warm.push({ t: first.t, criticalTransfer: first.criticalTransfer });
          leaks.push(...state.leaks);
          if (scenario.sameTab) {
            // Leave the page, so the measured load is a new navigation, not a reload.
            await page.goto("about:blank");
          } else {
            // A returning visitor: a new tab, so a new renderer process without
            // the in-memory code caches of the first; the HTTP cache is warm.
            await page.close();
            page = await context.newPage();
            state = await instrument(page, scenario);
          }
        }
        const sample = await measureLoad(page, state, url, scenario);
        leaks.push(...state.leaks);
        if (leaks.length > 0) throw new Error(`requests left 127.0.0.1: ${leaks.join(", ")}`);
        samples.push({ scenario: key, round: i, page: name, ...sample, warm });
        process.stdout.write(".");
      } finally {
        await context.close();
      }
    }
  }
  process.stdout.write("\n");
  return samples;
}

function summarize(key, samples) {
  const lines = [`${SCENARIOS[key].title}, ${LOADS} loads per page`];
  const byPage = Object.fromEntries(PAGES.map((p) => [p, samples.filter((s) => s.page === p)]));
  const stats = {};
  for (const p of PAGES) {
    const t = sorted(byPage[p].map((s) => s.t));
    stats[p] = {
      median: quantile(t, 0.5),
      p25: quantile(t, 0.25),
      p75: quantile(t, 0.75),
      criticalBytes: median(byPage[p].map((s) => s.criticalBytes)),
      criticalTransfer: median(byPage[p].map((s) => s.criticalTransfer)),
      totalBytes: median(byPage[p].map((s) => s.totalBytes)),
    };
    const s = stats[p];
    const size =
      `critical ${bytes(s.criticalBytes).padStart(9)} br` +
      (SCENARIOS[key].warm > 0 ? ` (${bytes(s.criticalTransfer)} over the network)` : "") +
      (s.totalBytes !== s.criticalBytes ? `, total ${bytes(s.totalBytes)}` : "");
    lines.push(`  ${p.padEnd(11)} ${ms(s.median).padStart(10)}  (p25–p75 ${ms(s.p25)}–${ms(s.p75)})  ${size}`);
  }
  // Paired by round: the three pages of a round ran back to back.
  const added = (p) =>
    median(
      byPage[p].map((s) => s.t - byPage.none.find((n) => n.round === s.round).t),
    );
  const gbAdded = added("growthbook");
  const inAdded = added("insitu");
  const addedRatio = inAdded / gbAdded;
  const totalRatio = stats.insitu.median / stats.growthbook.median;
  lines.push(
    `  added over no SDK (median of paired differences): GrowthBook ${signedMs(gbAdded)}, insitu ${signedMs(inAdded)};` +
      ` insitu/GrowthBook ${gbAdded > 0 ? `${addedRatio.toFixed(2)}×` : "n/a (GrowthBook adds nothing measurable)"}`,
  );
  const bar = BARS[key];
  const verdict = (value, limit) => `(bar ≤ ${limit}×: ${value <= limit ? "meets" : "misses"})`;
  if (bar?.added && gbAdded > 0) lines[lines.length - 1] += ` ${verdict(addedRatio, bar.added)}`;
  lines.push(
    `  total time to decision, insitu/GrowthBook (ratio of medians): ${totalRatio.toFixed(2)}×` +
      (bar?.total ? ` ${verdict(totalRatio, bar.total)}` : ""),
  );
  return { lines, stats, gbAdded, inAdded, addedRatio, totalRatio };
}

async function main() {
  await checkPackage();
  const assets = await buildAssets();
  const server = await startServer(assets);
  const context = await launchBrowser();
  const browser = context.browser();
  const started = Date.now();
  const results = {};
  const samples = [];
  try {
    const pkgFiles = [...assets].filter(([path]) => path.startsWith("/pkg/"));
    console.log(`coldstart: Chromium ${browser.version()}, package ${relative(process.cwd(), PKG) || "."}/ ` +
      `(${pkgFiles.length} files served, ${bytes(pkgFiles.reduce((a, [, f]) => a + f.body.length, 0))} brotli-11)` +
      `, ${LOADS} loads per page per scenario${argv.quick ? " (--quick)" : ""}`);
    await validate(browser, server);
    for (const key of SCENARIO_LIST) {
      process.stdout.write(`${key}: `);
      const list = await runScenario(browser, server, key);
      samples.push(...list);
      results[key] = summarize(key, list);
    }
  } finally {
    await context.close();
    await server.close();
  }

  console.log("");
  for (const key of SCENARIO_LIST) console.log(results[key].lines.join("\n"));

  // Where insitu's bytes went, in the first load of the first scenario.
  const first = samples.find((s) => s.page === "insitu");
  if (first) {
    const files = first.entries.map(
      (e) => `${e.path} ${bytes(e.encodedBodySize)}${e.startTime >= first.t ? " (after the decision)" : ""}`,
    );
    console.log(`\ninsitu's requests (${first.scenario}, first load): ${files.join(", ")}`);
  }

  if (results.throttled || results.repeat) console.log("\nbars (the issue's targets):");
  if (results.throttled) {
    const r = results.throttled;
    const ok = r.gbAdded > 0 && r.addedRatio <= BARS.throttled.added;
    console.log(
      `  throttled first visit: insitu's added time ≤ ${BARS.throttled.added}× GrowthBook's: ` +
        `${r.gbAdded > 0 ? `${r.addedRatio.toFixed(2)}×` : "n/a"} → ${ok ? "meets" : "misses"}`,
    );
  }
  if (results.repeat) {
    const r = results.repeat;
    console.log(
      `  repeat visit: insitu's time to decision ≤ ${BARS.repeat.total}× GrowthBook's: ` +
        `${r.totalRatio.toFixed(2)}× → ${r.totalRatio <= BARS.repeat.total ? "meets" : "misses"}`,
    );
  }

  // Anything odd: a preload fetched twice, responses not brotli, timeouts.
  const notes = new Set();
  for (const s of samples) {
    for (const d of s.duplicates) notes.add(`${s.page} (${s.scenario}): fetched more than once from the network: ${d}`);
    for (const p of s.notBr) notes.add(`${s.page} (${s.scenario}): ${p} did not arrive brotli-encoded`);
    for (const c of s.console) notes.add(`${s.page} (${s.scenario}) console ${c}`);
    if (!s.networkQuiet) notes.add(`${s.page} (${s.scenario}): the network never went quiet after the decision`);
    if (SCENARIOS[s.scenario].warm > 0) {
      for (const e of s.entries) {
        if (!e.path.endsWith(".html") && e.transferSize > 0) {
          notes.add(`${s.page} (${s.scenario}): ${e.path} came over the network, not from the HTTP cache`);
        }
      }
    }
  }
  const idleTimeouts = samples.filter((s) => s.idle.timedOut).length;
  if (idleTimeouts > 0) {
    notes.add(
      `${idleTimeouts} of ${samples.length} loads started without an idle machine (gave up after ${IDLE_TIMEOUT_MS} ms;` +
        ` something else was using the CPU, so these figures are less reliable)`,
    );
  }
  if (server.stats.withoutBr.length > 0) notes.add(`requests without br in Accept-Encoding: ${server.stats.withoutBr.join(", ")}`);
  if (notes.size > 0) console.log(`\nnotes:\n  ${[...notes].join("\n  ")}`);

  await mkdir(dirname(argv.out), { recursive: true });
  await writeFile(
    argv.out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        chromium: browser.version(),
        pkg: PKG,
        loads: LOADS,
        quick: argv.quick,
        throttle: { network: NETWORK_THROTTLE, cpu: CPU_THROTTLE },
        assets: Object.fromEntries([...assets].map(([path, a]) => [path, { raw: a.raw, br: a.body.length }])),
        summary: Object.fromEntries(Object.entries(results).map(([k, r]) => [k, { ...r, lines: undefined }])),
        samples,
      },
      null,
      1,
    ),
  );
  console.log(`\nraw samples: ${relative(process.cwd(), argv.out)} (${samples.length} loads in ${Math.round((Date.now() - started) / 1000)} s)`);
}

await main();
