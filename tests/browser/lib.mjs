// Shared helpers for the browser tests: a sandboxed Chromium, a network guard
// that proves nothing leaves the machine, a static file server and a tiny
// test runner whose last line is always `<name>: N passed, M failed`.

import { mkdtemp, mkdir, readFile, rm, stat } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

/** Repository root (tests/browser/ is two levels down). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Screenshots and other debugging output; gitignored. */
export const ARTIFACTS = join(REPO, ".artifacts");

const CHROMIUM = "/usr/bin/chromium";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
  // Every name resolves to nothing except 127.0.0.1. This also stops requests
  // the browser makes on its own, which page-level routing never sees.
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
];

/**
 * Start Chromium with a fresh profile. Returns the (persistent) browser
 * context; its `close()` also deletes the temporary profile directory.
 * Playwright refuses `--user-data-dir` in `args`, hence launchPersistentContext.
 */
export async function launchBrowser() {
  const profile = await mkdtemp(join(tmpdir(), "insitu-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30_000,
  });
  const closeContext = context.close.bind(context);
  context.close = async () => {
    try {
      await closeContext();
    } finally {
      await rm(profile, { recursive: true, force: true });
    }
  };
  return context;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** True for URLs that leave the machine. Schemes without a host (data:, blob:, about:) stay local. */
function isRemote(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return true; // unparseable: count it rather than let it slip through
  }
  if (!parsed.host) return false;
  return !LOOPBACK.has(parsed.hostname);
}

/**
 * Record and abort every request of `context` that is not aimed at loopback.
 * Returns `{ leaks }`, an array of URLs that keeps filling while the context
 * lives. Routing sees requests from pages, workers and service workers of the
 * context; the resolver flag in launchBrowser() covers the browser itself.
 */
export async function guardNetwork(context) {
  const leaks = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (isRemote(url)) {
      leaks.push(url);
      return route.abort("blockedbyclient");
    }
    return route.continue();
  });
  // WebSockets are not HTTP requests and bypass context.route().
  await context.routeWebSocket(/.*/, (ws) => {
    if (isRemote(ws.url())) {
      leaks.push(ws.url());
      return ws.close();
    }
    ws.connectToServer();
  });
  return { leaks };
}

/**
 * Collect console errors and uncaught page errors of `page` into an array of
 * strings, so a test can assert it stays empty.
 */
export function collectPageErrors(page) {
  const errors = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console.error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  return errors;
}

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/**
 * Serve `root` on 127.0.0.1 at a free port. Resolves to `{ url, close }`;
 * `url` ends with a slash. Directories serve their index.html. `headers` are
 * added to every file served (the CSP check).
 */
export async function serveStatic(root, { headers = {} } = {}) {
  const base = resolve(root);
  const server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
      let file = resolve(join(base, path));
      if (file !== base && !file.startsWith(base + sep)) throw new Error("outside root");
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      const body = await readFile(file);
      res.writeHead(200, {
        "content-type": MIME[extname(file)] ?? "application/octet-stream",
        "cache-control": "no-store",
        ...headers,
      });
      res.end(body);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
    }
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", ok);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections(); // keep-alive sockets would delay close()
        server.close(() => ok());
      }),
  };
}

/** Full path for a screenshot in .artifacts/, creating the folder. */
export async function artifactPath(file) {
  await mkdir(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, file);
}

/** Throw with `message` unless `cond` holds. */
export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/**
 * A minimal runner. `check(title, fn)` runs one async check, records the
 * outcome and returns fn's value (undefined when it failed), so later checks
 * can build on earlier ones. `finish()` prints the summary as the last line
 * and sets the exit code. A watchdog ends a hung run with a clear message.
 */
export function createRunner(name, { timeoutMs = 120_000 } = {}) {
  let passed = 0;
  const failures = [];

  const summary = () => `${name}: ${passed} passed, ${failures.length} failed`;

  const report = () => {
    for (const { title, error } of failures) {
      console.log(`\nFAIL ${title}\n  ${String(error?.stack ?? error).replace(/\n/g, "\n  ")}`);
    }
    console.log(summary());
  };

  // Deliberately not unref()'d: even a promise that never settles with no I/O
  // behind it ends here, with a summary, instead of a silent exit.
  const watchdog = setTimeout(() => {
    failures.push({
      title: "watchdog",
      error: new Error(`${name} did not finish within ${timeoutMs / 1000} s; killed`),
    });
    report();
    process.exit(1);
  }, timeoutMs);

  return {
    log(line) {
      console.log(`${name}: ${line}`);
    },
    async check(title, fn) {
      const started = Date.now();
      try {
        const value = await fn();
        passed++;
        console.log(`ok   ${title} (${Date.now() - started} ms)`);
        return value;
      } catch (error) {
        failures.push({ title, error });
        console.log(`FAIL ${title} (${Date.now() - started} ms)`);
        return undefined;
      }
    },
    /** Record a failure that happened outside any check (e.g. in setup). */
    fail(title, error) {
      failures.push({ title, error });
      console.log(`FAIL ${title}`);
    },
    get failed() {
      return failures.length;
    },
    finish() {
      clearTimeout(watchdog);
      report();
      process.exitCode = failures.length === 0 && passed > 0 ? 0 : 1;
      // Safety net: everything has been closed by now; if some stray handle
      // still keeps the loop alive, do not hang after the verdict.
      setTimeout(() => process.exit(), 5_000).unref();
    },
  };
}
