// The simulated-visitor panel: an auto-clicker with hidden preferences drives
// every slot's learner; two charts per slot show how well it learns, and an
// evaluation beside them compares it with the slot's default copy.

import { drawAllocation, drawLearningCurve } from "../charts.js";
import { readEvaluation, renderEvaluation } from "../evaluation-view.js";
import { SlotMetrics } from "../sim/metrics.js";
import { HiddenPreferences, randomContext, seededRandom } from "../sim/visitor.js";
import { policyName } from "../slot-view.js";

const DRAW_EVERY_MS = 100;
const SHOW_EVERY_MS = 600; // how often the page itself follows the simulation

/** Mount the panel found at `root` (the element with data-panel="simulator"). */
export function mountSimulator(root, app) {
  const $ = (sel) => root.querySelector(sel);
  const startBtn = $('[data-testid="sim-start"]');
  const stopBtn = $('[data-testid="sim-stop"]');
  const visitsEl = $('[data-testid="visits"]');
  const speedSel = $('[data-control="speed"]');
  const highSel = $('[data-control="high"]');
  const lowSel = $('[data-control="low"]');
  const resetBtn = $('[data-control="reset"]');
  const note = $('[data-role="sim-note"]');

  const defs = Object.fromEntries([...app.slots].map(([id, slot]) => [id, slot.def]));
  // The visitor's favourite starts as the last variant: never the fallback,
  // so a learner that learns nothing is easy to see.
  const favourites = Object.fromEntries(
    Object.entries(defs).map(([id, def]) => [id, def.variants[def.variants.length - 1].id]),
  );
  const prefs = new HiddenPreferences(defs, {
    favourites,
    high: Number(highSel.value),
    low: Number(lowSel.value),
  });
  root.querySelectorAll('[data-control="prefer"]').forEach((sel) => {
    sel.value = prefs.favourites[sel.dataset.slotId];
  });

  const charts = new Map();
  for (const [id, slot] of app.slots) {
    const card = $(`[data-chart="${id}"]`);
    card.querySelector('[data-role="policy"]').textContent = policyName(slot.def.policy.type);
    charts.set(id, {
      metrics: new SlotMetrics(slot.def.variants.length),
      curve: card.querySelector('[data-role="curve"]'),
      allocation: card.querySelector('[data-role="allocation"]'),
      summary: card.querySelector('[data-role="summary"]'),
      evaluation: card.querySelector('[data-role="evaluation"]'),
    });
  }

  let running = false;
  let raf = 0;
  let visits = 0;
  let random = seededRandom(app.seed);
  let events = [];
  let latest = new Map();
  let lastDrawn = 0;
  let lastShown = 0;

  // One simulated visit: rank every slot for a fresh context, click (or not)
  // according to the hidden preferences, and settle each decision.
  function visit() {
    const context = randomContext(random);
    visits += 1;
    for (const [id, slot] of app.slots) {
      if (!slot.engine) continue;
      const d = slot.engine.rank({ context });
      if (d.fallback) throw d.error ?? new Error(`slot "${id}" fell back`);
      const reward = random() < prefs.clickRate(id, d.variant, context) ? 1 : 0;
      slot.engine.reward({ decisionId: d.decisionId, reward });
      charts.get(id).metrics.record(d.index, reward, prefs.uniformRate(id), prefs.bestRate());
      latest.set(id, { d, context });
    }
  }

  function draw() {
    visitsEl.textContent = String(visits);
    const xMax = Math.max(visits, 50);
    for (const [id, slot] of app.slots) {
      const { metrics, curve, allocation, summary } = charts.get(id);
      drawLearningCurve(curve, { points: metrics.points, xMax, events });
      drawAllocation(allocation, { points: metrics.points, xMax, variantCount: slot.def.variants.length, events });
      if (metrics.count) {
        const favIndex = slot.def.variants.findIndex((v) => v.id === prefs.favourites[id]);
        const n = Math.min(metrics.count, metrics.window);
        const favShare = metrics.windowCounts[favIndex] / n;
        // For the end-to-end test: the favourite's share of the moving window.
        summary.dataset.favourite = prefs.favourites[id];
        summary.dataset.favShare = String(favShare);
        summary.dataset.window = String(n);
        summary.innerHTML =
          `<strong>${pct(metrics.rate)}</strong> clicks vs ${pct(prefs.uniformRate(id))} random` +
          ` · favourite shown <strong>${pct(favShare)}</strong>`;
      } else {
        summary.textContent = "Waiting for visits";
      }
    }
    drawEvaluations();
  }

  // The control is the slot's fallback: the copy the page shows without insitu.
  function drawEvaluations() {
    for (const [id, slot] of app.slots) renderEvaluation(charts.get(id).evaluation, readEvaluation(slot.engine), slot.def.fallback);
  }

  function showLatest() {
    for (const [id, { d, context }] of latest) app.show(id, d, { source: "sim", context });
    latest = new Map();
  }

  function tick(now) {
    if (!running) return;
    const speed = Number(speedSel.value);
    try {
      for (let i = 0; i < speed; i++) visit();
    } catch (err) {
      console.error("insitu: simulation stopped", err);
      note.textContent = `Simulation stopped: ${err.message}${err.code ? ` (${err.code})` : ""}`;
      note.classList.add("error");
      stop();
      return;
    }
    visitsEl.textContent = String(visits);
    if (now - lastDrawn >= DRAW_EVERY_MS) {
      draw();
      lastDrawn = now;
    }
    if (now - lastShown >= SHOW_EVERY_MS) {
      showLatest();
      lastShown = now;
    }
    raf = requestAnimationFrame(tick);
  }

  function start() {
    if (running) return;
    running = true;
    startBtn.disabled = true;
    stopBtn.disabled = false;
    startBtn.textContent = "Running…";
    lastShown = performance.now();
    raf = requestAnimationFrame(tick);
  }

  function stop() {
    if (!running) return;
    running = false;
    cancelAnimationFrame(raf);
    startBtn.disabled = false;
    stopBtn.disabled = true;
    startBtn.textContent = "Resume";
    draw();
    // Back to the real visitor: the page now shows what the learners chose
    // for you, with everything the simulation taught them.
    app.decideForVisitor();
    latest = new Map();
  }

  function preferencesChanged() {
    if (visits > 0) events.push(visits);
    draw();
  }

  startBtn.addEventListener("click", start);
  stopBtn.addEventListener("click", stop);
  root.querySelectorAll('[data-control="prefer"]').forEach((sel) =>
    sel.addEventListener("change", () => {
      prefs.favourites[sel.dataset.slotId] = sel.value;
      preferencesChanged();
    }),
  );
  highSel.addEventListener("change", () => {
    prefs.high = Number(highSel.value);
    preferencesChanged();
  });
  lowSel.addEventListener("change", () => {
    prefs.low = Number(lowSel.value);
    preferencesChanged();
  });
  resetBtn.addEventListener("click", () => {
    stop();
    app.reset();
  });

  // The real visitor's clicks, and the full engine's arrival (until then
  // `evaluate()` is null), show with the audit, once a second.
  app.addEventListener("audit", () => {
    if (!running) drawEvaluations();
  });

  // Whoever resets the learners (this panel, later the privacy panel's
  // Forget button), the simulation starts over with them.
  app.addEventListener("reset", () => {
    visits = 0;
    random = seededRandom(app.seed);
    events = [];
    latest = new Map();
    for (const c of charts.values()) c.metrics.clear();
    startBtn.textContent = "Start";
    note.classList.remove("error");
    draw();
  });

  draw();
  return { start, stop, get running() { return running; }, get visits() { return visits; } };
}

/** The panel when there is no learner: explain instead of pretending. */
export function disableSimulator(root, reason) {
  root.querySelectorAll("button, select").forEach((el) => (el.disabled = true));
  const note = root.querySelector('[data-role="sim-note"]');
  note.textContent = reason;
  note.classList.add("error");
}

const pct = (x) => `${Math.round(x * 100)}%`;
