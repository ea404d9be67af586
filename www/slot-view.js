// Renders a variant's copy into a slot, and a decision into its card.
// The markup comes from index.html (rendered at build time with the fallback
// variant); here we only fill the same data-field elements, so the page and
// the runtime can never disagree about structure.

import { el } from "./dom.js";

const POLICY_NAMES = {
  thompson: "Thompson sampling",
  linucb: "LinUCB",
  egreedy: "ε-greedy",
  greedy: "Greedy",
};

/** Human name of a policy type. */
export function policyName(type) {
  return POLICY_NAMES[type] ?? type;
}

/** A probability as a plain decimal string: 0.4040625 -> "0.404063", 1 -> "1". */
export function formatProbability(p) {
  return String(Math.round(p * 1e6) / 1e6);
}

/** A probability as a percentage with one decimal: 0.4040625 -> "40.4%". */
export function formatPercent(p) {
  return `${(p * 100).toFixed(1)}%`;
}

/** Fill `root`'s data-field elements from a variant's `copy`. */
export function renderCopy(root, variantId, copy) {
  root.dataset.variant = variantId;
  if (copy.theme) root.dataset.theme = copy.theme;
  for (const [key, value] of Object.entries(copy)) {
    if (typeof value !== "string") continue;
    for (const el of root.querySelectorAll(`[data-field="${key}"]`)) {
      if (!el.closest("[data-item]")) el.textContent = value;
    }
  }
  if (Array.isArray(copy.items)) {
    root.querySelectorAll("[data-item]").forEach((itemEl, i) => {
      const item = copy.items[i];
      itemEl.hidden = !item;
      if (!item) return;
      for (const [key, value] of Object.entries(item)) {
        const el = itemEl.querySelector(`[data-field="${key}"]`);
        if (el) el.textContent = value;
      }
      const art = itemEl.querySelector("[data-tone]");
      if (art) art.dataset.tone = item.tone;
      const icon = itemEl.querySelector("use");
      if (icon) icon.setAttribute("href", `#i-${item.icon}`);
    });
  }
}

/**
 * Show a decision (the object `rank()` returns) in a slot's decision card.
 * `note` is an optional status line, e.g. "simulated visit".
 */
export function renderDecision(card, decision, note = "") {
  const set = (role, text) => {
    const el = card.querySelector(`[data-role="${role}"]`);
    if (el) el.textContent = text;
  };
  set("variant", decision.variant);
  set("percent", formatPercent(decision.probability));
  set("probability", formatProbability(decision.probability));
  set("policy", policyName(decision.policy));
  set("model-version", decision.modelVersion);
  card.querySelector('[data-role="probability"]')?.setAttribute("data-value", String(decision.probability));
  card.querySelector('[data-role="policy"]')?.setAttribute("title", decision.policy);

  let status = note;
  if (decision.fallback) {
    status = `fallback${decision.error?.code ? ` (${decision.error.code})` : ""}`;
  }
  const statusEl = card.querySelector('[data-role="status"]');
  statusEl.textContent = status;
  statusEl.hidden = !status;
}

/** A signed score contribution: 0.1234 -> "+0.12", -0.5 -> "−0.50". */
function formatContribution(c) {
  const text = Math.abs(c).toFixed(2);
  return c < 0 ? `\u2212${text}` : `+${text}`;
}

/**
 * Show an explanation (the object `explain()` returns) in a decision card:
 * the largest feature contributions to the shown variant's score, and when
 * another variant has a higher mean score, that the policy explored.
 * `null` hides the line (a fallback: nothing to explain).
 */
export function renderWhy(card, explanation) {
  const why = card.querySelector('[data-role="why"]');
  if (!why) return;
  why.hidden = !explanation;
  if (!explanation) return;
  const { bias, other, score, scores, best } = explanation;
  const top = Math.max(...scores);
  Object.assign(why.dataset, { score: String(score), bias: String(bias), other: String(other), top: String(top) });
  // A term that adds nothing (nothing learned for it yet) is no reason.
  const contributions = explanation.contributions.filter((c) => c.contribution !== 0);
  const terms = contributions.map((c) =>
    el("span", {
      class: "why-term",
      "data-feature": c.feature,
      "data-contribution": String(c.contribution),
      title: `value ${c.value} × learned weight ${c.weight.toFixed(3)}` +
        (c.shared ? "; shares its hashed slot with another feature, so the weight is learned from both" : ""),
    }, [
      el("code", {}, c.shared ? `${c.feature} \u2248` : c.feature),
      el("span", { class: c.contribution < 0 ? "down" : "up" }, ` ${formatContribution(c.contribution)}`),
    ]));
  const note = (role, text) => el("span", { class: "why-note", "data-role": role }, text);
  if (terms.length === 0) {
    terms.push(note("unlearned", score === 0 && top === 0 ? "nothing learned yet: every variant scores 0" : "no feature of this visit adds to the score"));
  }
  if (top > score) terms.push(note("explored", `exploring: "${best}" scores higher`));
  why.querySelector('[data-role="why-list"]').replaceChildren(...terms);
}

/** The card when no learner is available (the wasm did not load). */
export function renderUnavailable(card, fallbackId, reason) {
  card.querySelector('[data-role="variant"]').textContent = fallbackId;
  // Without a learner there is no probability, policy or model to show.
  card.querySelectorAll(".decision-item").forEach((item, i) => (item.hidden = i > 0));
  const statusEl = card.querySelector('[data-role="status"]');
  statusEl.textContent = reason;
  statusEl.hidden = false;
}
