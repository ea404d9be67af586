// End-to-end test of the demo: serve www/ with webpack-dev-server (the repo's
// webpack.config.js, development mode), open it in Chromium and check that the
// page shows values computed in wasm, logs no errors and sends nothing beyond
// 127.0.0.1. A deliberate leak at the end proves the network guard works.
//
// Usage: node tests/browser/demo.e2e.mjs   (needs pkg/ built)
// DEMO_WEBPACK_CONFIG=/path/to/webpack.config.js points it at another config;
// that is only for testing this harness.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import {
  REPO,
  artifactPath,
  assert,
  collectPageErrors,
  createRunner,
  guardNetwork,
  launchBrowser,
} from "./lib.mjs";

const MODEL_VERSION = /^m1-[0-9a-f]{16}$/;
const LEAK_URL = "https://example.com/leak";
// The demo's own controls used for interaction (see www/index.html).
const HERO_CTA = '[data-slot="hero"] [data-reward]';
const SIM_START = '[data-testid="sim-start"]';
const SIM_STOP = '[data-testid="sim-stop"]';
const SIM_VISITS = '[data-testid="visits"]';
const SIM_VISITS_NEEDED = 900; // more than three windows of 250 past the learning phase
const SLOTS = JSON.parse(readFileSync(join(REPO, "www/slots.json"), "utf8"));
// The demo's allowlist (www/app.js FEATURES.allow): every reason a card
// gives must name these namespaces and nothing else.
const FEATURE_NAMESPACES = ["page", "visitor", "variant", "behavior"];
const CONFIG = resolve(process.env.DEMO_WEBPACK_CONFIG ?? join(REPO, "webpack.config.js"));

const t = createRunner("e2e", { timeoutMs: 120_000 });
// webpack and the dev server come from the repo's node_modules, like `npm start`.
const requireFromRepo = createRequire(join(REPO, "package.json"));

/**
 * Compile the demo and serve it on 127.0.0.1 at a free port. Resolves once
 * the first compilation is done, to `{ url, stats, stop }`.
 */
async function startDevServer() {
  const webpack = requireFromRepo("webpack");
  const WebpackDevServer = requireFromRepo("webpack-dev-server");
  const exported = requireFromRepo(CONFIG);
  const argv = { mode: "development", env: { WEBPACK_SERVE: true } };
  const config = {
    ...(typeof exported === "function" ? await exported(argv.env, argv) : exported),
    mode: "development",
    infrastructureLogging: { level: "warn" },
  };
  const compiler = webpack(config);
  const firstBuild = new Promise((ok) => compiler.hooks.done.tap("demo-e2e", ok));
  // The constructor ignores config.devServer (only the CLI reads it), so pass
  // it on, overriding whatever would add requests or sockets of its own.
  const server = new WebpackDevServer(
    {
      ...config.devServer,
      host: "127.0.0.1",
      port: 0, // the OS picks a free port; read it back below
      hot: false,
      liveReload: false,
      client: false,
      webSocketServer: false,
      open: false,
      setupExitSignals: false,
      // Errors and warnings are reported by the checks below; no stats dump.
      devMiddleware: { ...config.devServer?.devMiddleware, stats: "errors-warnings" },
    },
    compiler,
  );
  const stop = async () => {
    await server.stop();
    await new Promise((ok) => compiler.close(() => ok()));
  };
  try {
    await server.start();
    const stats = await firstBuild;
    const { port } = server.server.address();
    return { url: `http://127.0.0.1:${port}/`, stats, stop };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}

/** Text of each `[data-testid]` element the test reads (null when absent). */
function readTestIds(page) {
  return page.evaluate(() => {
    const text = (id) => document.querySelector(`[data-testid="${id}"]`)?.textContent.trim() ?? null;
    return {
      modelVersion: text("model-version"),
      heroVariant: text("hero-variant"),
      heroProbability: text("hero-probability"),
    };
  });
}

let dev;
let context;
try {
  t.log(`webpack-dev-server with ${CONFIG}`);
  dev = await startDevServer();
  t.log(`serving on ${dev.url}`);

  await t.check("demo compiles without webpack errors", () => {
    const info = dev.stats.toJson({ all: false, errors: true, warnings: true });
    for (const w of info.warnings) t.log(`webpack warning: ${w.message.split("\n")[0]}`);
    assert(!dev.stats.hasErrors(), info.errors.map((e) => e.message).join("\n"));
  });

  t.log("launch Chromium");
  context = await launchBrowser();
  const guard = await guardNetwork(context);
  const page = await context.newPage();
  const pageErrors = collectPageErrors(page);

  await t.check("page loads", () => page.goto(dev.url, { waitUntil: "load", timeout: 30_000 }));

  await t.check("page shows values computed in wasm", async () => {
    // The page may first render a build-time fallback; the model version only
    // appears once wasm has run, so wait for that.
    await page
      .waitForFunction(
        (source) => {
          const el = document.querySelector('[data-testid="model-version"]');
          return el && new RegExp(source).test(el.textContent.trim());
        },
        MODEL_VERSION.source,
        { timeout: 15_000 },
      )
      .catch(async () => {
        throw new Error(
          `model-version did not match ${MODEL_VERSION} within 15 s; page shows ` +
            `${JSON.stringify(await readTestIds(page))}; ` +
            `errors: ${pageErrors.join(" | ") || "none"}`,
        );
      });
    const shown = await readTestIds(page);
    assert(MODEL_VERSION.test(shown.modelVersion), `model-version is ${JSON.stringify(shown.modelVersion)}`);
    assert(shown.heroVariant, `hero-variant is ${JSON.stringify(shown.heroVariant)}`);
    const p = Number(shown.heroProbability);
    assert(p > 0 && p <= 1, `hero-probability ${JSON.stringify(shown.heroProbability)} is not a number in (0, 1]`);
    t.log(`shown: ${JSON.stringify(shown)}`);
  });

  await t.check("the A/B panel shows this visitor's assignment, logs one exposure per test, and a reload keeps both", async () => {
    const read = () =>
      page.evaluate(() => ({
        strip: document.querySelector('[data-experiment="promo-strip"]').dataset.variant,
        promo: document.querySelector('[data-testid="ab-promo-strip"]')?.dataset,
        nav: document.querySelector('[data-testid="ab-mobile-nav"]')?.dataset,
        unit: document.querySelector('[data-testid="ab-unit"]').dataset.unit,
        exposures: window.insituDemo.site.audit().experiments.exposures,
        stored: localStorage.getItem("insitu.ab") !== null,
      }));
    await page.waitForFunction(() => document.querySelector('[data-testid="ab-promo-strip"]')?.dataset.variant, null, { timeout: 5_000 });
    const before = await read();
    assert(["returns", "price-match"].includes(before.promo.variant), `promo-strip: ${JSON.stringify(before.promo)}`);
    assert(before.promo.reason === "assigned", `promo-strip reason ${before.promo.reason}`);
    assert(before.strip === before.promo.variant, `the page shows ${before.strip}, the panel ${before.promo.variant}`);
    // Chromium's default viewport is a desktop: the touch-only test does not target it.
    assert(before.nav.reason === "targeting" && before.nav.variant === "tabs", `mobile-nav: ${JSON.stringify(before.nav)}`);
    assert(before.unit === "device", `unit ${before.unit}`);
    assert(
      before.exposures.length === 1 && before.exposures[0].experiment === "promo-strip" &&
        before.exposures[0].variant === before.promo.variant,
      `exposures ${JSON.stringify(before.exposures)}`,
    );
    const text = await page.locator('[data-testid="ab-exposures"]').textContent();
    assert(text.includes("promo-strip") && text.includes(before.promo.variant), `exposure log shows ${text}`);
    // The experiments state is written a second after the first exposure.
    await page.waitForFunction(() => localStorage.getItem("insitu.ab") !== null, null, { timeout: 5_000 });
    await page.reload({ waitUntil: "load" });
    await page.waitForFunction(() => document.querySelector('[data-testid="ab-promo-strip"]')?.dataset.variant, null, { timeout: 15_000 });
    const after = await read();
    assert(after.promo.variant === before.promo.variant, `a reload moved the visitor from ${before.promo.variant} to ${after.promo.variant}`);
    assert(after.exposures.length === 1, `a reload logged a second exposure: ${JSON.stringify(after.exposures)}`);
    await page.locator('[data-panel="ab"]').screenshot({ path: await artifactPath("demo-ab.png") });
  });

  // Each decision card's "why": the largest feature contributions to the
  // shown variant's learned score, which must add up to that score.
  const readWhy = () =>
    page.evaluate((ids) =>
      ids.map((id) => {
        const why = document.querySelector(`[data-testid="${id}-why"]`);
        const card = why?.closest("[data-decision]");
        return {
          id,
          hidden: !why || why.hidden,
          variant: card?.querySelector('[data-role="variant"]')?.textContent,
          ...why?.dataset,
          explored: Boolean(why?.querySelector('[data-role="explored"]')),
          unlearned: Boolean(why?.querySelector('[data-role="unlearned"]')),
          terms: [...(why?.querySelectorAll(".why-term") ?? [])].map((el) => ({
            feature: el.dataset.feature,
            contribution: Number(el.dataset.contribution),
          })),
        };
      }), Object.keys(SLOTS));
  const checkWhy = async (when) => {
    const allowed = new RegExp(`^(${FEATURE_NAMESPACES.join("|")})\\.[^ ]+( × (${FEATURE_NAMESPACES.join("|")})\\.[^ ]+)?$`);
    const cards = await readWhy();
    for (const w of cards) {
      assert(!w.hidden, `${when}: ${w.id} shows no "why"`);
      assert(w.terms.length <= 3, `${when}: ${w.id} lists ${w.terms.length} reasons`);
      assert(w.unlearned === (w.terms.length === 0), `${when}: ${w.id} lists ${w.terms.length} reasons, "nothing learned" note ${w.unlearned}`);
      assert(w.terms.every((x) => x.contribution !== 0), `${when}: ${w.id} lists a reason that adds nothing`);
      for (const term of w.terms) assert(allowed.test(term.feature), `${when}: ${w.id} names ${JSON.stringify(term.feature)}`);
      const sizes = w.terms.map((x) => Math.abs(x.contribution));
      assert(sizes.every((x, i) => i === 0 || sizes[i - 1] >= x), `${when}: ${w.id} reasons are not largest first: ${sizes}`);
      const sum = Number(w.bias) + w.terms.reduce((a, x) => a + x.contribution, 0) + Number(w.other);
      assert(Math.abs(sum - Number(w.score)) < 1e-9, `${when}: ${w.id} reasons add to ${sum}, not the score ${w.score}`);
      assert(w.explored === Number(w.top) > Number(w.score), `${when}: ${w.id} scores ${w.score}, top ${w.top}, explored note ${w.explored}`);
    }
    t.log(`${when}: ` + cards.map((w) => `${w.id} ${w.variant}: ${w.terms.map((x) => `${x.feature} ${x.contribution.toFixed(3)}`).join(", ") || "nothing learned"}${w.explored ? " (exploring)" : ""}`).join("; "));
    return cards;
  };

  await t.check("each decision card says why: its largest feature contributions, adding up to the score", async () => {
    const cards = await checkWhy("on load");
    // A first visit: nothing learned, so no reasons, and no variant is ahead.
    for (const w of cards) assert(w.unlearned && !w.explored, `on load: ${w.id} ${JSON.stringify(w)}`);
  });

  await t.check("clicking the hero and running the simulator keep it working", async () => {
    // The real visitor's reward path: the hero's call to action.
    await page.locator(HERO_CTA).first().click({ timeout: 5_000 });
    // Many rank/reward rounds in wasm: run the simulated visitor for a while.
    await page.locator('[data-control="speed"]').selectOption("60");
    await page.locator(SIM_START).click({ timeout: 5_000 });
    await page
      .waitForFunction(([sel, n]) => Number(document.querySelector(sel)?.textContent) >= n, [SIM_VISITS, SIM_VISITS_NEEDED], {
        timeout: 30_000,
      })
      .catch(async () => {
        throw new Error(
          `simulator did not reach ${SIM_VISITS_NEEDED} visits in 30 s (at ${await page.locator(SIM_VISITS).textContent()}); ` +
            `errors: ${pageErrors.join(" | ") || "none"}`,
        );
      });
    await page.locator(SIM_STOP).click({ timeout: 5_000 });
    const shown = await readTestIds(page);
    assert(MODEL_VERSION.test(shown.modelVersion), `afterwards model-version is ${JSON.stringify(shown.modelVersion)}`);
    const p = Number(shown.heroProbability);
    assert(p > 0 && p <= 1, `afterwards hero-probability is ${JSON.stringify(shown.heroProbability)}`);
    t.log(`after ${await page.locator(SIM_VISITS).textContent()} simulated visits: ${JSON.stringify(shown)}`);
    const cards = await checkWhy("after the simulator");
    // After 900 visits every shown variant has learned weights to show.
    for (const w of cards) assert(w.terms.length > 0, `after the simulator: ${w.id} gives no reason`);
    await page.locator('[data-slot="hero"]').screenshot({ path: await artifactPath("demo-why.png") });
  });

  await t.check("the simulated visitor's favourite wins more than chance allows, within each policy's exploration floor", async () => {
    const z = 3.09; // one-sided, p = 0.001
    const lines = [];
    for (const [id, def] of Object.entries(SLOTS)) {
      const el = page.locator(`[data-testid="summary-${id}"]`);
      const share = Number(await el.getAttribute("data-fav-share"));
      const n = Number(await el.getAttribute("data-window"));
      const k = def.variants.length;
      // A learner that learns nothing shows each variant 1/K of the time: the
      // favourite's share of n visits must beat that at p = 0.001.
      const chance = 1 / k;
      const above = chance + z * Math.sqrt((chance * (1 - chance)) / n);
      // The policy caps any one variant: epsilon-greedy explores epsilon of
      // the time uniformly; the others keep every variant at minProbability
      // (default 0.001). A share beyond the cap (by more than z sd) would mean
      // exploration had stopped.
      const p = def.policy;
      const cap = p.type === "egreedy"
        ? 1 - (p.epsilon ?? 0.1) * (k - 1) / k
        : 1 - (k - 1) * (p.minProbability ?? 0.001);
      const below = Math.min(1, cap + z * Math.sqrt((cap * (1 - cap)) / n));
      lines.push(`${id} (${p.type}, K=${k}): favourite ${share.toFixed(3)} of ${n}, needs > ${above.toFixed(3)} and <= ${below.toFixed(3)}`);
      assert(n >= 250, `${id}: window of ${n} visits`);
      assert(share > above, `${id}: favourite's share ${share} is not above chance (${above.toFixed(3)})`);
      assert(share <= below, `${id}: favourite's share ${share} exceeds the policy's cap ${below.toFixed(3)}`);
    }
    t.log(lines.join("; "));
    await page.locator('[data-panel="simulator"]').screenshot({ path: await artifactPath("demo-simulator.png") });
  });

  // The evaluation beside each slot's charts (slot.evaluate()): the settled
  // decisions, and what insitu served against the slot's default copy.
  await t.check("each slot's evaluation shows its settled decisions and click rates with intervals", async () => {
    // The panel follows the audit once a second; the full engine may arrive just before.
    await page
      .waitForFunction(
        (ids) => ids.every((id) => document.querySelector(`[data-testid="evaluation-${id}"]`)?.dataset.state === "ready"),
        Object.keys(SLOTS),
        { timeout: 5_000 },
      )
      .catch(async () => {
        const states = await page.evaluate(() => [...document.querySelectorAll('[data-role="evaluation"]')].map((e) => `${e.dataset.testid} ${e.dataset.state}`));
        throw new Error(`evaluation panels not ready in 5 s: ${states.join(", ")}`);
      });
    const visits = Number(await page.locator(SIM_VISITS).textContent());
    const panels = await page.evaluate((ids) =>
      ids.map((id) => {
        const root = document.querySelector(`[data-testid="evaluation-${id}"]`);
        const row = (role) => {
          const tr = root.querySelector(`[data-role="${role}"]`);
          return { ...tr?.dataset, text: [...(tr?.cells ?? [])].map((c) => c.textContent).join(" ") };
        };
        return { id, decisions: Number(root.dataset.decisions), served: row("eval-served"), control: row("eval-control"), lift: root.querySelector('[data-role="eval-lift"]').textContent };
      }), Object.keys(SLOTS));
    const number = (x) => x !== "" && Number.isFinite(Number(x));
    const withInterval = (r) => number(r.value) && number(r.low) && number(r.high) && Number(r.low) <= Number(r.value) && Number(r.value) <= Number(r.high);
    for (const p of panels) {
      // Every simulated visit settled one decision per slot; the hero also has the visitor's click.
      assert(p.decisions > 0 && p.decisions <= visits + 1, `${p.id}: ${p.decisions} decisions evaluated after ${visits} visits`);
      assert(withInterval(p.served), `${p.id}: served ${JSON.stringify(p.served)}`);
      assert(/\d+\.\d% to \d+\.\d%/.test(p.served.text), `${p.id}: served row reads ${JSON.stringify(p.served.text)}`);
      assert(number(p.control.value) && Number(p.control.ess) >= 0, `${p.id}: control ${JSON.stringify(p.control)}`);
    }
    assert(panels.some((p) => withInterval(p.control)), `no control has an interval: ${JSON.stringify(panels.map((p) => p.control))}`);
    t.log(panels.map((p) => `${p.id} (${p.decisions} decisions): ${p.served.text}; ${p.control.text}; ${p.lift}`).join(" | "));
    await page.locator('[data-testid="evaluation-hero"]').screenshot({ path: await artifactPath("demo-evaluation.png") });
  });

  // The privacy panel: the live audit, the consent switch, Forget.
  const insituKeys = () =>
    page.evaluate(() => Object.keys(localStorage).filter((k) => k === "insitu" || k.startsWith("insitu.")).sort());
  const heroUpdates = () =>
    page.evaluate(() => window.insituDemo.site.audit().models.find((m) => m.slot === "hero").updates);
  const panelText = (id) => page.locator(`[data-testid="${id}"]`).textContent();

  await t.check("the audit panel shows the default consent, no network and nothing learned stored", async () => {
    assert((await panelText("network")).trim() === "none", "network is not none");
    assert(/default \(functional\)/.test(await panelText("consent-source")), await panelText("consent-source"));
    assert(await page.locator('[data-testid="consent-functional"]').isChecked(), "functional is not selected");
    const keys = await insituKeys();
    assert(!keys.includes("insitu"), `learning was stored without consent: ${keys}`);
  });

  let learned = 0;
  await t.check("choosing Personalization stores learning on the device, and a reload restores it", async () => {
    await page.locator('[data-testid="consent-personalization"]').check();
    learned = await page.evaluate(async () => {
      await window.insituDemo.site.flush();
      return window.insituDemo.site.audit().models.find((m) => m.slot === "hero").updates;
    });
    assert(learned > 100, `only ${learned} hero updates after the simulation`);
    await page.waitForFunction(() => document.querySelector('[data-testid="audit-keys"]')?.textContent.includes("insitu"), null, { timeout: 5_000 });
    assert((await insituKeys()).includes("insitu"), "no snapshot key after consenting");
    await page.reload({ waitUntil: "load" });
    await page.waitForFunction(() => window.insituDemo?.site, null, { timeout: 15_000 });
    const after = await heroUpdates();
    assert(after === learned, `a reload restored ${after} hero updates, not ${learned}`);
    assert(await page.locator('[data-testid="consent-personalization"]').isChecked(), "the consent choice was not kept");
    assert(/your choice/.test(await panelText("consent-source")), await panelText("consent-source"));
    await page.locator('[data-panel="audit"]').screenshot({ path: await artifactPath("demo-audit.png") });
  });

  await t.check("ending the period hands the hero's report to the site and lists it in the audit", async () => {
    await page.locator('[data-testid="close-period"]').click();
    await page.waitForFunction(
      () => /hero[^\n]*1 closed[^\n]*reported/.test(document.querySelector('[data-testid="audit-reports"]')?.innerText ?? ""),
      null,
      { timeout: 5_000 },
    );
    const ledger = await page.evaluate(() => window.insituDemo.site.audit().reports.find((r) => r.key === "hero").ledger);
    assert(ledger.length === 1 && ledger[0].outcome === "reported", JSON.stringify(ledger));
  });

  await t.check("Forget me empties storage and the learners", async () => {
    await page.locator('[data-testid="forget"]').click();
    const keys = await insituKeys();
    assert(keys.length === 0, `left after Forget: ${keys}`);
    assert((await heroUpdates()) === 0, "the hero learner kept its updates");
    await page.waitForFunction(() => document.querySelector('[data-testid="audit-keys"]')?.dataset.count === "0", null, { timeout: 3_000 });
  });

  await t.check("lowering consent to None deletes what was stored", async () => {
    await page.locator(HERO_CTA).first().click({ timeout: 5_000 });
    await page.evaluate(() => window.insituDemo.site.flush());
    assert((await insituKeys()).includes("insitu"), "the click was not stored under Personalization");
    await page.locator('[data-testid="consent-none"]').check();
    const keys = await insituKeys();
    assert(keys.length === 0, `left after consent none: ${keys}`);
    await page.reload({ waitUntil: "load" });
    await page.waitForFunction(() => window.insituDemo?.site, null, { timeout: 15_000 });
    assert((await heroUpdates()) === 0, "a page with consent none restored learning");
    assert(await page.locator('[data-testid="consent-none"]').isChecked(), "the consent choice was not kept");
  });

  await page.screenshot({ path: await artifactPath("demo.png"), fullPage: true });

  await t.check("no console errors or page errors", () => {
    assert(pageErrors.length === 0, pageErrors.join("\n"));
  });

  await t.check("no request left 127.0.0.1 during load and interaction", () => {
    assert(guard.leaks.length === 0, `leaked: ${guard.leaks.join(", ")}`);
  });

  // Negative control, after the zero-leak assertion: a deliberate request to
  // the internet must be caught, or "zero leaks" above would prove nothing.
  await t.check("network guard catches a deliberate leak", async () => {
    const before = guard.leaks.length;
    const outcome = await page.evaluate((url) => fetch(url).then(() => "sent", () => "blocked"), LEAK_URL);
    assert(outcome === "blocked", `fetch(${LEAK_URL}) was ${outcome}`);
    const caught = guard.leaks.slice(before);
    assert(
      caught.length === 1 && caught[0] === LEAK_URL,
      `guard recorded ${JSON.stringify(caught)}, expected exactly ["${LEAK_URL}"]`,
    );
  });
} catch (error) {
  t.fail("setup", error);
} finally {
  await context?.close().catch((e) => t.log(`closing Chromium: ${e.message}`));
  await dev?.stop().catch((e) => t.log(`stopping the dev server: ${e.message}`));
  t.finish();
}
