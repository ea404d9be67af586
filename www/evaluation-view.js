// The evaluation panel beside each slot's charts: from the decisions the slot
// settled, what insitu earned (the served mean) against always showing the
// control (the slot's fallback, the page's default copy), as doubly robust
// estimates with intervals (`slot.evaluate()`), then greedy and uniform.
// The markup is in index.html; here we fill it.

import { el } from "./dom.js";

/**
 * A slot's evaluation now: `{ state: "ready", evaluation }`, or a state with
 * nothing to show yet: "waiting" (`evaluate()` is null until the full engine
 * has arrived), "empty" (`NO_DATA`: nothing settled yet), "unavailable" (the
 * slot has no learner) or "error".
 */
export function readEvaluation(engine) {
  if (!engine) return { state: "unavailable" };
  try {
    const evaluation = engine.evaluate();
    return evaluation === null ? { state: "waiting" } : { state: "ready", evaluation };
  } catch (error) {
    if (error.code === "NO_DATA") return { state: "empty" };
    console.warn(`insitu: evaluate failed (${error.code ?? "error"}):`, error);
    return { state: "error", error };
  }
}

/** Below this effective sample size an estimate leans on the model more than on what visitors did. */
const FEW = 30;

const NOTES = {
  waiting: "Waiting for the full engine: the evaluation arrives with it.",
  empty: "No settled decisions yet: run the simulation, or click a slot.",
  unavailable: "This slot has no learner, so there is nothing to evaluate.",
};

/** A reward rate as a percentage: 0.4125 -> "41.3%", -0.02 -> "−2.0%". */
const pct = (x) => `${x < 0 ? "\u2212" : ""}${Math.abs(x * 100).toFixed(1)}%`;

/** A difference of rates in percentage points, always signed: 0.37 -> "+37.0". */
const points = (x) => `${x < 0 ? "\u2212" : "+"}${Math.abs(x * 100).toFixed(1)}`;

/** An interval's bounds as text; null bounds (no variance yet) say so. */
function bounds({ low, high }, fmt) {
  return low === null || high === null ? "no interval yet" : `${fmt(low)} to ${fmt(high)}`;
}

/** The raw numbers as data attributes, for tests and the curious (the text is rounded). */
function numbers({ value, low, high }) {
  return { "data-value": String(value), "data-low": String(low ?? ""), "data-high": String(high ?? "") };
}

/** Set `numbers(interval)` on an element that already exists. */
function setNumbers(node, interval) {
  for (const [k, v] of Object.entries(numbers(interval))) node.setAttribute(k, v);
}

/** One table row: a policy, its DR estimate, its interval and its ESS. */
function row(role, label, estimate) {
  return el("tr", { "data-role": role, ...numbers(estimate.dr), "data-ess": String(estimate.ess) }, [
    el("th", { scope: "row" }, label),
    el("td", { class: "num" }, pct(estimate.dr.value)),
    el("td", {}, bounds(estimate.dr, pct)),
    el("td", { class: "num" }, String(Math.round(estimate.ess))),
  ]);
}

/**
 * What insitu served minus the control, paired visit by visit. The API's
 * `lift` of the control is control − served on the same visits, so its
 * negation (bounds swapped) is the paired difference we want.
 */
function servedOverControl({ value, low, high }) {
  return { value: -value, low: high === null ? null : -high, high: low === null ? null : -low };
}

/** Where a difference's interval lies against 0, in words; nothing when it cannot be read. */
function side({ low, high }, ess) {
  // With little evidence for the control the interval is too unreliable to read a side from.
  if (low === null || high === null || ess < FEW) return "";
  return low > 0 ? "; the interval lies above 0" : high < 0 ? "; the interval lies below 0" : "; the interval includes 0";
}

/** A secondary policy in a few words: "greedy 52.0% (48.0% to 56.0%)". */
const brief = (label, estimate) => `${label} ${pct(estimate.dr.value)} (${bounds(estimate.dr, pct)})`;

/**
 * Show `reading` (from `readEvaluation`) in `root`, the element with
 * data-role="evaluation"; `control` is the id of the variant compared with.
 */
export function renderEvaluation(root, reading, control) {
  const $ = (role) => root.querySelector(`[data-role="${role}"]`);
  root.dataset.state = reading.state;
  const body = $("eval-body");
  const note = $("eval-note");
  if (reading.state !== "ready") {
    root.dataset.decisions = "0";
    $("eval-count").textContent = "";
    body.hidden = true;
    note.hidden = false;
    note.classList.toggle("error", reading.state === "error");
    note.textContent = reading.state === "error"
      ? `Could not evaluate (${reading.error.code ?? "error"}).`
      : NOTES[reading.state];
    return;
  }
  const e = reading.evaluation;
  const find = (policy, variant) => e.estimates.find((x) => x.policy === policy && (variant === undefined || x.variant === variant));
  const served = find("served");
  const ctrl = find("variant", control);
  root.dataset.decisions = String(e.decisions);
  $("eval-count").textContent = `${e.decisions} settled decision${e.decisions === 1 ? "" : "s"}`;
  const level = `${Math.round(e.level * 100)}% interval`;
  $("eval-level").textContent = level;
  $("eval-rows").replaceChildren(
    row("eval-served", "insitu, as served", served),
    row("eval-control", `control: always ${control} (the default copy)`, ctrl),
  );
  const lift = servedOverControl(ctrl.lift);
  const range = lift.low === null || lift.high === null ? bounds(lift, points) : `${level} ${bounds(lift, points)}`;
  $("eval-lift").textContent = `insitu minus the control, on the same visits: ${points(lift.value)} points (${range})${side(lift, ctrl.ess)}.`;
  setNumbers($("eval-lift"), lift);
  $("eval-few").hidden = ctrl.ess >= FEW;
  $("eval-few").textContent = Math.round(ctrl.ess) === 0
    ? `ESS 0: no visit showed ${control} yet, so its estimate is the model's alone.`
    : `ESS ${Math.round(ctrl.ess)}: few visits showed ${control}, so its estimate leans on the model and its interval is less reliable.`;
  $("eval-others").textContent = `Also: ${brief("greedy (top score)", find("greedy"))} · ${brief("uniform random", find("uniform"))}.`;
  note.hidden = true;
  body.hidden = false;
}
