// Packaging check: what a real user does with the published package.
//   1. `npm pack` pkg/ (bundler target) and pkg-web/ (web target).
//   2. Install the bundler tarball into a scratch project, build it with
//      webpack (Node API, asyncWebAssembly) and load it in Chromium.
//   3. Install the web tarball into another scratch project and load it from
//      a plain <script type="module"> page, no bundler.
// Both pages must show a model version computed in wasm, log no errors or
// warnings, and send nothing beyond 127.0.0.1.
//
// Usage: node tests/browser/pack-check.mjs   (needs pkg/ and pkg-web/ built)

import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

const t = createRunner("pack-check", { timeoutMs: 120_000 });
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

/** A scratch project that has nothing installed but the tarball (it has no dependencies). */
async function scratchProject(dir, tarball) {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "package.json"),
    JSON.stringify({ name: "scratch", version: "0.0.0", private: true }),
  );
  // --offline: a lone tarball needs no registry, and this keeps it that way.
  await run(
    "npm",
    ["install", tarball, "--no-audit", "--no-fund", "--no-save", "--no-package-lock", "--offline"],
    { cwd: dir },
  );
}

/**
 * The code both pages run once `Insitu` is available: rank once, write the
 * decision into #result and mark it. Kept as text because it runs inside
 * the scratch projects, not here.
 */
const PROBE = `
const out = document.getElementById("result");
try {
  const slot = new Insitu({ variants: ${JSON.stringify(VARIANTS)}, features: { allow: ["page"] }, seed: 42 });
  const d = slot.rank({ context: { page: { section: "sports" } } });
  let errorShape = null;
  try {
    new Insitu({ variants: [] });
  } catch (e) {
    errorShape = { isError: e instanceof Error, name: e.name, code: e.code };
  }
  out.textContent = JSON.stringify({
    variant: d.variant,
    modelVersion: d.modelVersion,
    slotModelVersion: slot.modelVersion,
    errorShape,
  });
  out.dataset.status = "ok";
} catch (e) {
  out.textContent = String(e && e.stack || e);
  out.dataset.status = "error";
}
`;

// Catches failures before the probe runs (wasm fetch, instantiation, a bad
// import) so the test reports them instead of waiting for a timeout.
const ON_LOAD_ERROR = `
<script>
  const fail = (e) => {
    const out = document.getElementById("result");
    out.textContent = String(e && (e.stack || e.message) || e);
    out.dataset.status = "error";
  };
  addEventListener("error", (ev) => fail(ev.error || ev.message));
  addEventListener("unhandledrejection", (ev) => fail(ev.reason));
</script>`;

async function writeBundlerApp(app) {
  await mkdir(join(app, "src"), { recursive: true });
  await writeFile(join(app, "src", "index.js"), `import { Insitu } from "insitu";\n${PROBE}`);
}

/** Build the scratch bundler project with the repo's webpack; returns dist/. */
async function buildWithWebpack(app) {
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
    experiments: { asyncWebAssembly: true },
    resolve: { modules },
    resolveLoader: { modules },
    plugins: [
      new HtmlWebpackPlugin({
        templateContent: `<!doctype html><html><head><meta charset="utf-8"><title>insitu bundler</title></head>
<body><div id="result"></div>${ON_LOAD_ERROR}</body></html>`,
      }),
    ],
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
  assert(wasmModule, "no insitu_bg.wasm module in the webpack build");
  assert(
    wasmModule.name.includes("node_modules/insitu/"),
    `wasm came from ${wasmModule.name}, not from the installed package`,
  );
  return dist;
}

async function writeWebApp(app) {
  await writeFile(
    join(app, "index.html"),
    `<!doctype html><html><head><meta charset="utf-8"><title>insitu web</title></head>
<body><div id="result"></div>${ON_LOAD_ERROR}
<script type="module">
import init, { Insitu } from "./node_modules/insitu/insitu.js";
await init();
${PROBE}
</script></body></html>`,
  );
}

/**
 * Load `url` in a new page of `context` and check #result. Console errors and
 * warnings count as failures: wasm-bindgen warns, for example, when the
 * server's .wasm MIME type forces its slow fallback path.
 */
async function checkPage(context, guard, url, shot) {
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  const leaksBefore = guard.leaks.length;
  try {
    await page.goto(url, { waitUntil: "load", timeout: 15_000 });
    const result = page.locator("#result[data-status]");
    await result.waitFor({ timeout: 15_000 }).catch(() => {
      throw new Error(`#result never got a status; page problems: ${problems.join(" | ") || "none"}`);
    });
    const status = await result.getAttribute("data-status");
    const text = await result.textContent();
    assert(status === "ok", `#result says ${status}: ${text}`);
    const r = JSON.parse(text);
    assert(MODEL_VERSION.test(r.modelVersion), `modelVersion ${JSON.stringify(r.modelVersion)} does not match ${MODEL_VERSION}`);
    assert(r.slotModelVersion === r.modelVersion, `slot.modelVersion ${r.slotModelVersion} != decision's ${r.modelVersion}`);
    assert(VARIANTS.includes(r.variant), `variant ${JSON.stringify(r.variant)} is not one of ${VARIANTS}`);
    const e = r.errorShape;
    assert(
      e && e.isError && e.name === "InsituError" && typeof e.code === "string",
      `bad options did not throw an InsituError with a code: ${JSON.stringify(e)}`,
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

const scratch = await mkdtemp(join(tmpdir(), "insitu-pack-"));
let context;
const servers = [];
try {
  t.log(`scratch dir ${scratch}`);

  t.log("npm pack pkg/ and pkg-web/");
  const bundlerPkg = await t.check("npm pack pkg/ ships glue, wasm and types", async () => {
    const p = await pack(join(REPO, "pkg"), join(scratch, "tgz-bundler"));
    for (const f of ["package.json", "insitu.js", "insitu_bg.js", "insitu_bg.wasm", "insitu.d.ts"]) {
      assert(p.files.includes(f), `pkg tarball lacks ${f}; has ${p.files.join(", ")}`);
    }
    return p;
  });
  const webPkg = await t.check("npm pack pkg-web/ ships glue, wasm and types", async () => {
    const p = await pack(join(REPO, "pkg-web"), join(scratch, "tgz-web"));
    for (const f of ["package.json", "insitu.js", "insitu_bg.wasm", "insitu.d.ts"]) {
      assert(p.files.includes(f), `pkg-web tarball lacks ${f}; has ${p.files.join(", ")}`);
    }
    return p;
  });

  const bundlerApp = join(scratch, "bundler-app");
  const webApp = join(scratch, "web-app");
  let dist;
  if (bundlerPkg) {
    t.log("install the bundler tarball and build with webpack");
    dist = await t.check("webpack builds a project that imports the tarball", async () => {
      await scratchProject(bundlerApp, bundlerPkg.tarball);
      await writeBundlerApp(bundlerApp);
      return buildWithWebpack(bundlerApp);
    });
  }
  let webReady;
  if (webPkg) {
    t.log("install the web tarball into a plain-HTML project");
    webReady = await t.check("npm installs the web tarball into a plain project", async () => {
      await scratchProject(webApp, webPkg.tarball);
      await writeWebApp(webApp);
      return true;
    });
  }

  t.log("launch Chromium");
  context = await launchBrowser();
  const guard = await guardNetwork(context);

  if (dist) {
    const server = await serveStatic(dist);
    servers.push(server);
    t.log(`load the webpack build from ${server.url}`);
    await t.check("webpack build shows a wasm model version in Chromium", () =>
      checkPage(context, guard, server.url, "pack-bundler.png"),
    );
  }
  if (webReady) {
    const server = await serveStatic(webApp);
    servers.push(server);
    t.log(`load the <script type="module"> page from ${server.url}`);
    await t.check("plain module page shows a wasm model version in Chromium", () =>
      checkPage(context, guard, server.url, "pack-web.png"),
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
