// Packaging check: what a real user does with the published package.
//   1. `npm pack` pkg/, the one package: the entry index.js with load(), the
//      full engine's control plane full.js (imported by index.js after the
//      first paint), the two .wasm modules, the types and the schemas.
//   2. Install the tarball into three scratch projects: one built with
//      webpack 5 (no experiments flag), one built with Vite, and a plain
//      <script type="module"> page with no bundler.
//   3. Load each in Chromium: it must render a decision computed in wasm,
//      log no errors or warnings, and send nothing beyond 127.0.0.1.
//   4. Load each again under a Content-Security-Policy without
//      'wasm-unsafe-eval': load() must resolve to the fallback site, the page
//      must render the configured fallback variant, and onFallback must
//      receive WASM_UNAVAILABLE. Step 3 is the negative control: the same
//      files without the header run the wasm.
//
// Usage: node tests/browser/pack-check.mjs   (needs pkg/ built)

import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import {
  REPO,
  artifactPath,
  assert,
  createRunner,
  guardNetwork,
  launchBrowser,
  serveStatic,
} from "./lib.mjs";

const MODEL_VERSION = /^m1-[0-9a-f]{16}$/;
const VARIANTS = ["a", "b", "c"];
const FALLBACK = "b";

const t = createRunner("pack-check", { timeoutMs: 300_000 });
/** The OpenFeature web SDK at the versions the repo pins (package.json devDependencies). */
const devDeps = JSON.parse(await readFile(join(REPO, "package.json"), "utf8")).devDependencies;
const OPENFEATURE_SDK = ["@openfeature/web-sdk", "@openfeature/core"].map((n) => `${n}@${devDeps[n]}`);
/** GrowthBook's own variation for the probe's user-1 in experiment gb-exp (hash version 2). */
const GB_VARIANT = (() => {
  const { GrowthBook } = createRequire(join(REPO, "package.json"))("@growthbook/growthbook");
  const gb = new GrowthBook({ attributes: { id: "user-1" } });
  const r = gb.run({ key: "gb-exp", variations: ["x", "y"], hashVersion: 2 });
  gb.destroy();
  return String(r.variationId);
})();
const run = promisify(execFile);

/** `npm pack <dir>` into its own folder; returns the tarball path and its file list. */
async function pack(dir, dest) {
  await mkdir(dest, { recursive: true });
  const { stdout } = await run("npm", ["pack", dir, "--pack-destination", dest, "--json"], {
    cwd: REPO,
  });
  const [info] = JSON.parse(stdout);
  return { tarball: join(dest, info.filename), files: info.files.map((f) => f.path).sort() };
}

/**
 * A scratch project with the tarball installed, and the OpenFeature web SDK
 * the provider is used with (from npm's cache, which the repo's install filled).
 */
async function scratchProject(dir, tarball) {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "package.json"),
    JSON.stringify({ name: "scratch", version: "0.0.0", private: true }),
  );
  // --offline: a lone tarball needs no registry, and this keeps it that way.
  await run(
    "npm",
    ["install", tarball, ...OPENFEATURE_SDK, "--no-audit", "--no-fund", "--no-save", "--no-package-lock", "--offline"],
    { cwd: dir },
  );
}

/**
 * The code every consumer runs once `load` is imported: load, rank once,
 * write the result into #result and mark it. Kept as text because it runs
 * inside the scratch projects, not here. load() never rejects, so the
 * catch only sees bugs.
 */
const PROBE = `
const out = document.getElementById("result");
try {
  const reported = [];
  const site = await load({
    onFallback: (e) => reported.push({ code: e.code, isError: e instanceof Error, cause: String(e.cause?.message ?? "") }),
  });
  const slot = site.slot("hero", { variants: ${JSON.stringify(VARIANTS)}, features: { allow: ["page"] }, seed: 42, fallback: "${FALLBACK}" });
  const d = slot.rank({ context: { page: { section: "sports" } } });
  let errorShape = null;
  try {
    site.slot("bad", { variants: [] });
  } catch (e) {
    errorShape = { isError: e instanceof Error, name: e.name, code: e.code };
  }
  const more = {};
  const m = experimentsFromGrowthBook({ features: { f: { defaultValue: "x", rules: [{ key: "gb-exp", variations: ["x", "y"], hashVersion: 2 }] } } });
  site.experiments(m.experiments);
  site.setUnit("user-1");
  const a = site.run("gb-exp");
  more.growthbook = { keys: m.experiments.map((e) => e.key), variant: a.variant, inExperiment: a.inExperiment };
  /*MORE*/
  out.textContent = JSON.stringify({
    ...more,
    variant: d.variant,
    fallback: d.fallback,
    modelVersion: d.modelVersion,
    slotModelVersion: slot.modelVersion,
    siteFallback: site.fallback?.code ?? null,
    reported,
    errorShape,
  });
  out.dataset.status = "ok";
} catch (e) {
  out.textContent = String(e && e.stack || e);
  out.dataset.status = "error";
}
`;

const PAGE = (title, script) => `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head>
<body><div id="result"></div>${script}</body></html>`;

/**
 * The OpenFeature part of the probe (bundled projects): the provider from
 * `insitu/openfeature` on its own site (key "of"), set in the SDK, and one
 * flag resolved through an OpenFeature client.
 */
const OPENFEATURE_IMPORTS = `import { OpenFeature } from "@openfeature/web-sdk";\nimport { InsituProvider } from "insitu/openfeature";\n`;
const OPENFEATURE_PROBE = `
  const provider = new InsituProvider({
    flags: { hero: { slot: { variants: ${JSON.stringify(VARIANTS)}, features: { allow: ["page"] }, seed: 42, fallback: "${FALLBACK}" } } },
    load: { key: "of", onFallback() {} },
  });
  await OpenFeature.setProviderAndWait(provider);
  await OpenFeature.setContext({ page: { section: "sports" } });
  const of = OpenFeature.getClient().getStringDetails("hero", "of-default");
  more.openfeature = { value: of.value, reason: of.reason, errorCode: of.errorCode ?? null, decisionId: of.flagMetadata.decisionId ?? null };
`;

/** The scratch project's entry module, as a developer would write it (with the OpenFeature provider when `openfeature`). */
async function writeEntry(app, specifier, file = join(app, "src", "index.js"), openfeature = false) {
  await mkdir(dirname(file), { recursive: true });
  const probe = openfeature ? PROBE.replace("/*MORE*/", OPENFEATURE_PROBE) : PROBE;
  const growthbook = specifier === "insitu" ? "insitu/growthbook" : specifier.replace(/index\.js$/, "growthbook.js");
  await writeFile(file, `${openfeature ? OPENFEATURE_IMPORTS : ""}import { load } from "${specifier}";\nimport { experimentsFromGrowthBook } from "${growthbook}";\n${probe}`);
}

/** Build the webpack project with the repo's webpack; returns dist/. */
async function buildWithWebpack(app) {
  await writeEntry(app, "insitu", undefined, true);
  // The scratch project has no webpack of its own: borrow the repo's.
  const requireFromRepo = createRequire(join(REPO, "package.json"));
  const webpack = requireFromRepo("webpack");
  const HtmlWebpackPlugin = requireFromRepo("html-webpack-plugin");
  const modules = [join(app, "node_modules"), join(REPO, "node_modules")];
  const dist = join(app, "dist");
  const compiler = webpack({
    mode: "production",
    context: app,
    entry: "./src/index.js",
    output: { path: dist, clean: true },
    resolve: { modules },
    resolveLoader: { modules },
    plugins: [new HtmlWebpackPlugin({ templateContent: PAGE("insitu webpack", "") })],
    performance: { hints: false },
    infrastructureLogging: { level: "error" },
  });
  const stats = await new Promise((ok, fail) =>
    compiler.run((err, s) => compiler.close(() => (err ? fail(err) : ok(s)))),
  );
  const info = stats.toJson({ all: false, errors: true, warnings: true, modules: true });
  assert(!stats.hasErrors(), `webpack errors:\n${info.errors.map((e) => e.message).join("\n")}`);
  assert(
    !stats.hasWarnings(),
    `webpack warnings:\n${info.warnings.map((w) => w.message).join("\n")}`,
  );
  // Prove the build used the installed tarball, not pkg/ or some alias.
  const wasmModule = info.modules.find((m) => /insitu_bg\.wasm$/.test(m.name ?? ""));
  assert(wasmModule, "no insitu_bg.wasm asset in the webpack build");
  assert(
    wasmModule.name.includes("node_modules/insitu/"),
    `wasm came from ${wasmModule.name}, not from the installed package`,
  );
  return dist;
}

/** Build the Vite project with the repo's Vite; returns dist/. */
async function buildWithVite(app) {
  await writeEntry(app, "insitu", undefined, true);
  await writeFile(join(app, "index.html"), PAGE("insitu vite", '<script type="module" src="/src/index.js"></script>'));
  const { build, createLogger } = await import("vite");
  const problems = [];
  const logger = createLogger("warn");
  logger.warn = (m) => problems.push(`warning: ${m}`);
  logger.warnOnce = logger.warn;
  logger.error = (m) => problems.push(`error: ${m}`);
  const dist = join(app, "dist");
  const result = await build({
    root: app,
    configFile: false,
    logLevel: "warn",
    customLogger: logger,
    build: { outDir: dist, emptyOutDir: true },
  });
  assert(problems.length === 0, `vite reported:\n${problems.join("\n")}`);
  const outputs = [result].flat().flatMap((r) => r.output ?? []);
  const wasm = outputs.find((o) => o.type === "asset" && /\.wasm$/.test(o.fileName));
  assert(wasm, `vite emitted no .wasm asset; emitted ${outputs.map((o) => o.fileName).join(", ")}`);
  const entry = outputs.find((o) => o.type === "chunk" && o.isEntry);
  assert(
    Object.keys(entry?.modules ?? {}).some((m) => m.includes("node_modules/insitu/")),
    "vite's entry chunk has no module from node_modules/insitu/",
  );
  return dist;
}

/** The plain project: an HTML page and a module script, no bundler. */
async function writePlainApp(app) {
  await writeEntry(app, "./node_modules/insitu/index.js", join(app, "app.js"));
  await writeFile(join(app, "index.html"), PAGE("insitu plain", '<script type="module" src="./app.js"></script>'));
  return app;
}

/** A CSP that allows the page's own scripts and requests but not WebAssembly. */
const NO_WASM_CSP = "default-src 'self'; script-src 'self'; style-src 'self'";
/** What Chromium logs when that CSP refuses to compile the module. */
const CSP_REFUSAL = /wasm-unsafe-eval|WebAssembly/;

/**
 * Load `url` in a new page of `context` and check #result. Console errors and
 * warnings count as failures (wasm-bindgen warns, for example, when the
 * server's .wasm MIME type forces its slow fallback path), except, under the
 * CSP, Chromium's own report that it refused the wasm.
 */
/**
 * Open `url` in a new page of `context` and wait for #result to get a status. Console errors and
 * warnings (but those `ignored`) and page errors are collected in `problems`.
 */
async function visit(context, url, ignored = () => false) {
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    if ((m.type() === "error" || m.type() === "warning") && !ignored(m.text())) problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  try {
    await page.goto(url, { waitUntil: "load", timeout: 15_000 });
    const result = page.locator("#result[data-status]");
    await result.waitFor({ timeout: 15_000 }).catch(() => {
      throw new Error(`#result never got a status; page problems: ${problems.join(" | ") || "none"}`);
    });
    return { page, problems, status: await result.getAttribute("data-status"), text: await result.textContent() };
  } catch (e) {
    await page.close();
    throw e;
  }
}

async function checkPage(context, guard, url, shot, { csp = false, openfeature = false } = {}) {
  const leaksBefore = guard.leaks.length;
  const { page, problems, status, text } = await visit(context, url, (m) => csp && CSP_REFUSAL.test(m));
  try {
    assert(status === "ok", `#result says ${status}: ${text}`);
    const r = JSON.parse(text);
    // insitu/growthbook: the migrated experiment puts user-1 where GrowthBook's own SDK does (in Node, below).
    const gb = r.growthbook;
    assert(gb && gb.keys.join() === "gb-exp", `GrowthBook migration: ${text}`);
    if (csp) assert(gb.inExperiment === false && gb.variant === "0", `GrowthBook experiment on the fallback site: ${JSON.stringify(gb)}`);
    else assert(gb.inExperiment === true && gb.variant === GB_VARIANT, `GrowthBook experiment: ${JSON.stringify(gb)}, GrowthBook says ${GB_VARIANT}`);
    const of = r.openfeature;
    assert((of !== undefined) === openfeature, `OpenFeature probe ${openfeature ? "missing" : "unexpected"}: ${text}`);
    if (of !== undefined) {
      // The OpenFeature client of the bundled projects: a decision, or on the fallback site the caller's default.
      if (csp) assert(of.value === "of-default" && of.reason === "ERROR" && of.errorCode === "GENERAL", `OpenFeature under the CSP: ${JSON.stringify(of)}`);
      else assert(VARIANTS.includes(of.value) && of.reason === "TARGETING_MATCH" && typeof of.decisionId === "string", `OpenFeature: ${JSON.stringify(of)}`);
    }
    if (csp) {
      assert(r.variant === FALLBACK && r.fallback === true, `under the CSP the page showed ${r.variant} (fallback ${r.fallback}), not the fallback ${FALLBACK}`);
      assert(r.modelVersion === "fallback" && r.siteFallback === "WASM_UNAVAILABLE", `fallback site not reported: ${text}`);
      assert(
        r.reported.length === 1 && r.reported[0].code === "WASM_UNAVAILABLE" && r.reported[0].isError,
        `onFallback should get one WASM_UNAVAILABLE Error, got ${JSON.stringify(r.reported)}`,
      );
    } else {
      assert(MODEL_VERSION.test(r.modelVersion), `modelVersion ${JSON.stringify(r.modelVersion)} does not match ${MODEL_VERSION}`);
      assert(r.slotModelVersion === r.modelVersion, `slot.modelVersion ${r.slotModelVersion} != decision's ${r.modelVersion}`);
      assert(VARIANTS.includes(r.variant) && r.fallback === false, `variant ${JSON.stringify(r.variant)} (fallback ${r.fallback})`);
      assert(r.siteFallback === null && r.reported.length === 0, `the wasm ran, yet load() fell back: ${text}`);
    }
    const e = r.errorShape;
    assert(
      e && e.isError && e.name === "InsituError" && e.code === "INVALID_OPTION",
      `bad slot options did not throw an InsituError INVALID_OPTION: ${JSON.stringify(e)}`,
    );
    assert(problems.length === 0, `console/page problems:\n${problems.join("\n")}`);
    const leaks = guard.leaks.slice(leaksBefore);
    assert(leaks.length === 0, `requests left 127.0.0.1: ${leaks.join(", ")}`);
    await page.screenshot({ path: await artifactPath(shot) });
    return r;
  } finally {
    await page.close();
  }
}

// --- insitu/react: a Vite project per React major, a client-rendered page and a server-rendered one.

/** The component both pages render, and the code of each page (text: they run in the scratch projects). */
const REACT_APP = `
import { createElement as h } from "react";
import { InsituSite, useDecision, useExperiment } from "insitu/react";
export const HERO = { variants: ${JSON.stringify(VARIANTS)}, features: { allow: ["page"] }, seed: 42, fallback: "${FALLBACK}" };
export const EXPERIMENTS = [{ key: "cta", variants: ["buy", "try"] }];
export function App() {
  const d = useDecision("hero", HERO, { page: { section: "sports" } });
  const e = useExperiment("cta");
  return h("div", { id: "app", "data-ready": String(d.ready && e.ready) }, h("span", { id: "hero" }, d.variant), h("span", { id: "cta" }, e.variant ?? ""));
}
/** What a server renders and a client hydrates: the site (its experiments known on the server too) around the app. */
export function Root() {
  return h(InsituSite, { options: { consent: "functional" }, experiments: EXPERIMENTS }, h(App));
}
`;
const REACT_RESULT = `
function done(r) {
  const out = document.getElementById("result");
  const app = document.getElementById("app");
  out.textContent = JSON.stringify({ ...r, ready: app?.dataset.ready, hero: document.getElementById("hero")?.textContent, cta: document.getElementById("cta")?.textContent, exposures });
  out.dataset.status = "ok";
}
function whenReady(f) {
  const ready = () => document.getElementById("app")?.dataset.ready === "true";
  if (ready()) return f();
  const t0 = performance.now();
  const tick = () => (ready() || performance.now() - t0 > 5000 ? f() : requestAnimationFrame(tick));
  requestAnimationFrame(tick);
}
`;
/** Client rendering: await preload(), then render in strict mode; the first content React commits is recorded. */
const REACT_CSR = `
import { createElement as h, StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { preload } from "insitu/react";
import { App, EXPERIMENTS } from "./app.js";
const exposures = [];
${REACT_RESULT}
const root = document.getElementById("root");
let first = null;
new MutationObserver(() => { if (first === null && root.firstChild) first = root.innerHTML; }).observe(root, { childList: true, subtree: true, characterData: true, attributes: true });
await preload({ consent: "functional", onExposure: (e) => exposures.push(e.experiment) }, EXPERIMENTS);
createRoot(root).render(h(StrictMode, null, h(App)));
whenReady(() => done({ first }));
`;
/** Server rendering then hydration once the site is ready: the server's markup (the fallbacks) is kept to compare. */
const REACT_SSR = `
import { createElement as h } from "react";
import { hydrateRoot } from "react-dom/client";
import { preload } from "insitu/react";
import { Root, EXPERIMENTS } from "./app.js";
const exposures = [];
${REACT_RESULT}
const root = document.getElementById("root");
const server = root.innerHTML;
// Awaited: the site is ready before hydration, the case where deciding while hydrating would mismatch.
await preload({ consent: "functional", onExposure: (e) => exposures.push(e.experiment) }, EXPERIMENTS);
hydrateRoot(root, h(Root));
whenReady(() => done({ server }));
`;

/** A Vite project on React `major`: index.html (client rendering) and ssr.html (the markup renderToString gives, hydrated). */
async function buildReactApp(app, major) {
  await mkdir(join(app, "src"), { recursive: true });
  await writeFile(join(app, "src", "app.js"), REACT_APP);
  await writeFile(join(app, "src", "csr.js"), REACT_CSR);
  await writeFile(join(app, "src", "ssr.js"), REACT_SSR);
  // Server rendering, in Node, with the project's own React and the installed package.
  const req = createRequire(join(app, "package.json"));
  const { renderToString } = await import(req.resolve("react-dom/server"));
  const react = await import(req.resolve("react"));
  const { Root } = await import(join(app, "src", "app.js"));
  const version = react.version ?? react.default?.version;
  assert(String(version).startsWith(`${major}.`), `the ${major} project renders with React ${version}`);
  const markup = renderToString((react.createElement ?? react.default.createElement)(Root));
  const page = (title, script, body = "") => `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head>
<body><div id="root">${body}</div><div id="result"></div><script type="module" src="${script}"></script></body></html>`;
  await writeFile(join(app, "index.html"), page("insitu react csr", "/src/csr.js"));
  await writeFile(join(app, "ssr.html"), page("insitu react ssr", "/src/ssr.js", markup));
  const { build } = await import("vite");
  const dist = join(app, "dist");
  // A development build: React's strict mode renders twice and its hydration checks warn in full.
  await build({
    root: app, configFile: false, logLevel: "error", mode: "development",
    build: { outDir: dist, emptyOutDir: true, rollupOptions: { input: { index: join(app, "index.html"), ssr: join(app, "ssr.html") } } },
  });
  return { dist, markup, version };
}

/** Load a React page and return its result; console errors or warnings (a hydration mismatch is one) fail it. */
async function checkReactPage(context, guard, url, shot) {
  const leaksBefore = guard.leaks.length;
  const { page, problems, status, text } = await visit(context, url);
  try {
    assert(status === "ok", `#result says ${status}: ${text}`);
    const r = JSON.parse(text);
    assert(problems.length === 0, `console/page problems:\n${problems.join("\n")}`);
    assert(guard.leaks.length === leaksBefore, `requests left 127.0.0.1: ${guard.leaks.slice(leaksBefore).join(", ")}`);
    await page.screenshot({ path: await artifactPath(shot) });
    return r;
  } finally {
    await page.close();
  }
}

const scratch = await mkdtemp(join(tmpdir(), "insitu-pack-"));
let context;
const servers = [];
try {
  t.log(`scratch dir ${scratch}`);

  t.log("npm pack pkg/");
  const pkg = await t.check("npm pack pkg/ ships the entry, the lazy control plane, wasm, types and schema", async () => {
    const p = await pack(join(REPO, "pkg"), join(scratch, "tgz"));
    const want = [
      "package.json", "index.js", "full.js", "openfeature.js", "growthbook.js", "index.d.ts", "types/index.d.ts",
      "types/openfeature.d.ts", "types/growthbook.d.ts", "react.js", "types/react.d.ts",
      "insitu_bg.wasm", "insitu_full.wasm", "audit.schema.json", "errors.json",
    ];
    for (const f of want) assert(p.files.includes(f), `tarball lacks ${f}; has ${p.files.join(", ")}`);
    return p;
  });

  const consumers = [
    { name: "webpack 5", dir: "webpack-app", build: buildWithWebpack, openfeature: true },
    { name: "Vite", dir: "vite-app", build: buildWithVite, openfeature: true },
    { name: "plain <script type=\"module\">", dir: "plain-app", build: writePlainApp, openfeature: false },
  ];
  const built = [];
  for (const c of consumers) {
    if (!pkg) break;
    t.log(`install the tarball into a ${c.name} project`);
    const root = await t.check(`${c.name}: a project that installs the tarball builds`, async () => {
      const app = join(scratch, c.dir);
      await scratchProject(app, pkg.tarball);
      return c.build(app);
    });
    if (root) built.push({ ...c, root });
  }

  // React 19 from the repo's own install (npm's cache); React 18 from the registry if the cache lacks it.
  const reacts = [];
  for (const major of ["19", "18"]) {
    if (!pkg) break;
    const versions = major === "19" ? [`react@${devDeps.react}`, `react-dom@${devDeps["react-dom"]}`] : ["react@18.3.1", "react-dom@18.3.1"];
    t.log(`install the tarball and ${versions.join(", ")} into a Vite project`);
    const built = await t.check(`React ${major}: a Vite project with insitu/react builds, its server rendering included`, async () => {
      const app = join(scratch, `react${major}-app`);
      await mkdir(app, { recursive: true });
      await writeFile(join(app, "package.json"), JSON.stringify({ name: "scratch", version: "0.0.0", private: true, type: "module" }));
      await run("npm", ["install", pkg.tarball, ...versions, "--no-audit", "--no-fund", "--no-save", "--no-package-lock", major === "19" ? "--offline" : "--prefer-offline"], { cwd: app });
      return buildReactApp(app, major);
    });
    if (built) reacts.push({ major, ...built });
  }

  t.log("launch Chromium");
  context = await launchBrowser();
  const guard = await guardNetwork(context);

  for (const r of reacts) {
    const server = await serveStatic(r.dist);
    servers.push(server);
    t.log(`load the React ${r.major} (${r.version}) pages from ${server.url}`);
    await t.check(`React ${r.major}: the first paint shows the decided variant, one exposure per first assignment (strict mode)`, async () => {
      const p = await checkReactPage(context, guard, server.url, `pack-react${r.major}.png`);
      assert(p.ready === "true" && VARIANTS.includes(p.hero) && ["buy", "try"].includes(p.cta), `rendered ${JSON.stringify(p)}`);
      assert(typeof p.first === "string" && p.first.includes('data-ready="true"') && p.first.includes(`<span id="hero">${p.hero}</span>`),
        `React's first commit was not the decision: ${p.first}`);
      assert(JSON.stringify(p.exposures) === '["cta"]', `exposures ${JSON.stringify(p.exposures)}`);
    });
    await t.check(`React ${r.major}: server rendering gives the fallbacks, and hydration decides without a mismatch warning`, async () => {
      assert(r.markup.includes(`<span id="hero">${FALLBACK}</span>`) && r.markup.includes('<span id="cta">buy</span>') && r.markup.includes('data-ready="false"'),
        `server markup ${r.markup}`);
      // Its own origin: a new visitor, whose first assignment is an exposure again.
      const other = await serveStatic(r.dist);
      servers.push(other);
      const p = await checkReactPage(context, guard, `${other.url}ssr.html`, `pack-react${r.major}-ssr.png`);
      assert(p.server.includes(`<span id="hero">${FALLBACK}</span>`), `the page did not hold the server's markup: ${p.server}`);
      assert(p.ready === "true" && VARIANTS.includes(p.hero) && ["buy", "try"].includes(p.cta), `after hydration ${JSON.stringify(p)}`);
      assert(JSON.stringify(p.exposures) === '["cta"]', `exposures ${JSON.stringify(p.exposures)}`);
    });
  }

  for (const c of built) {
    const plain = await serveStatic(c.root);
    const strict = await serveStatic(c.root, { headers: { "content-security-policy": NO_WASM_CSP } });
    servers.push(plain, strict);
    t.log(`load the ${c.name} build from ${plain.url}, then under the CSP from ${strict.url}`);
    const of = c.openfeature ? " (and through the OpenFeature provider)" : "";
    await t.check(`${c.name}: renders a decision computed in wasm in Chromium${of}`, () =>
      checkPage(context, guard, plain.url, `pack-${c.dir}.png`, { openfeature: c.openfeature }),
    );
    await t.check(`${c.name}: with WebAssembly blocked by CSP, renders the fallback and reports it${of}`, () =>
      checkPage(context, guard, strict.url, `pack-${c.dir}-csp.png`, { csp: true, openfeature: c.openfeature }),
    );
  }

  await t.check("no request left 127.0.0.1", () => {
    assert(guard.leaks.length === 0, `leaked: ${guard.leaks.join(", ")}`);
  });
} catch (error) {
  t.fail("setup", error);
} finally {
  await context?.close().catch(() => {});
  await Promise.all(servers.map((s) => s.close()));
  await rm(scratch, { recursive: true, force: true });
  t.finish();
}
