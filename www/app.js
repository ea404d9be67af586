// The demo's state: the insitu store (`open()`: consent, durable learning,
// the behaviour store, the audit), one slot per page slot, the decision each
// slot currently shows, and the real visitor's clicks. Panels (www/panels/)
// read and drive it; they never touch the DOM of the slots themselves.

import { EXPERIMENT_COPY, EXPERIMENTS } from "./experiments.js";
import { renderCopy, renderDecision, renderUnavailable, renderWhy } from "./slot-view.js";

/** Feature settings shared by every slot; `allow` is the privacy allowlist. */
export const FEATURES = {
  bits: 5,
  allow: ["page", "visitor", "variant", "behavior"],
  interactions: [["visitor", "variant"]],
};

/** A local hour as a part of the day: a category, so the learner can give
 * evenings their own weight instead of fitting a line through 0 to 23. */
export function daypart(hour) {
  return hour < 6 ? "night" : hour < 12 ? "morning" : hour < 18 ? "afternoon" : "evening";
}

/** The real visitor's context: coarse, computed here, never sent anywhere. */
export function visitorContext() {
  const coarse = window.matchMedia("(pointer: coarse)").matches;
  const device = !coarse ? "desktop" : window.innerWidth < 768 ? "mobile" : "tablet";
  return { page: { section: "home" }, visitor: { device, daypart: daypart(new Date().getHours()) } };
}

/** Where this site keeps the visitor's consent choice (the site's own record, not insitu's). */
const CONSENT_KEY = "ridgeline.consent";

function storedConsent() {
  try {
    const v = localStorage.getItem(CONSENT_KEY);
    return ["none", "functional", "personalization"].includes(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The demo's clock: the real one, moved on by whole days when the audit
 * panel closes a report period (a site passes nothing: `Date.now`).
 */
export const demoClock = { days: 0, now: () => Date.now() + demoClock.days * 86_400_000 };

/** The reports `onReport` received on this page view: a real site would send them on (to a DAP client); the demo keeps them. */
export const received = [];

/** The store's options (`load()`/`open()`). Nothing is kept across visits
 * until the visitor opts in: the default tier is functional. */
export function storeOptions() {
  return {
    defaultConsent: "functional",
    consent: storedConsent(),
    now: demoClock.now,
    // Also in the audit panel's storage events.
    onError: (e) => console.warn(`insitu storage (${e.code}):`, e.message),
    onReport: (report) => received.push(report),
  };
}

export class App extends EventTarget {
  /**
   * @param {import("insitu").Site} site the page's store, from `load(storeOptions())`
   * @param {object} defs slot definitions (www/slots.json)
   * @param {{ seed: number }} options base seed; slot i uses seed + i
   */
  constructor(site, defs, { seed }) {
    super();
    this.seed = seed;
    this.site = site;
    /** This visitor's assignment per A/B test (`site.run()`), since the last reset. */
    this.assignments = new Map();
    /** The latest `site.audit()`, read by `refresh()` for the panels. */
    this.audit = null;
    site.experiments(EXPERIMENTS);
    this.features = FEATURES;
    /** @type {Map<string, Slot>} */
    this.slots = new Map();
    Object.entries(defs).forEach(([id, def], i) => {
      const el = document.querySelector(`[data-slot="${id}"]`);
      const card = document.querySelector(`[data-decision="${id}"]`);
      const slot = { id, def, el, card, seed: seed + i, engine: null, shown: null };
      slot.engine = this.#createEngine(slot);
      this.slots.set(id, slot);
    });
    this.#wireClicks();
  }

  #createEngine(slot) {
    try {
      return this.site.slot(slot.id, {
        variants: slot.def.variants.map(({ id, features }) => ({ id, features })),
        features: this.features,
        policy: slot.def.policy,
        fallback: slot.def.fallback,
        seed: slot.seed,
        // One report per day of what this slot did here, handed to `onReport` (consent personalization only).
        reports: { task: `ridgeline-${slot.id}`, segment: visitorContext().visitor.device },
      });
    } catch (err) {
      console.error(`insitu: slot "${slot.id}" could not start (${err.code ?? "error"}):`, err);
      renderUnavailable(slot.card, slot.def.fallback, `fallback (${err.code ?? "error"})`);
      return null;
    }
  }

  /** Rank every slot for the real visitor and show the results. */
  decideForVisitor() {
    const context = visitorContext();
    for (const slot of this.slots.values()) {
      if (!slot.engine) continue;
      const decision = slot.engine.rank({ context });
      if (decision.fallback) console.warn(`insitu: slot "${slot.id}" fell back:`, decision.error);
      this.show(slot.id, decision, { source: "visitor", context });
    }
  }

  /** Assign this visitor in every A/B test (on this device) and show the promo strip. */
  runExperiments() {
    const { device } = visitorContext().visitor;
    for (const c of EXPERIMENTS) this.assignments.set(c.key, this.site.run(c.key, { attributes: { device } }));
    const promo = this.assignments.get("promo-strip");
    const strip = document.querySelector('[data-experiment="promo-strip"]');
    strip.dataset.variant = promo.variant;
    strip.querySelector('[data-role="promo-text"]').textContent = EXPERIMENT_COPY["promo-strip"].variants[promo.variant];
  }

  /** Read the audit once and hand it to every panel (the "audit" event):
   * after each change here, and once a second from index.js. */
  refresh() {
    this.audit = this.site.audit();
    this.dispatchEvent(new Event("audit"));
  }

  /**
   * Show a decision in its slot, with why (the context it was ranked with).
   * `source` is "visitor" for the real visitor's own decision (clicks on it
   * are rewarded) or "sim" for a simulated visit.
   */
  show(slotId, decision, { source, context }) {
    const slot = this.slots.get(slotId);
    const variant = slot.def.variants.find((v) => v.id === decision.variant);
    if (slot.el.dataset.variant !== decision.variant || !slot.shown) renderCopy(slot.el, variant.id, variant.copy);
    renderDecision(slot.card, decision, source === "sim" ? "simulated visit" : "");
    renderWhy(slot.card, this.#explain(slot, decision, context));
    slot.shown = { decision, source, rewarded: false };
  }

  /** The top three reasons for a decision, as the learner sees them now. */
  #explain(slot, decision, context) {
    if (decision.fallback) return null;
    try {
      return slot.engine.explain({ context, variant: decision.variant, top: 3 });
    } catch (err) {
      console.warn(`insitu: slot "${slot.id}" could not explain (${err.code ?? "error"}):`, err);
      return null;
    }
  }

  /** Forget everything learned and tracked, here and in storage (every tab). */
  reset() {
    this.site.forget();
    for (const slot of this.slots.values()) slot.shown = null;
    // No new visitor id is drawn until the next page view runs a test.
    this.assignments.clear();
    this.dispatchEvent(new Event("reset"));
    this.decideForVisitor();
    this.refresh();
  }

  /** Record the visitor's consent choice and apply it (lowering it deletes what it no longer allows). */
  setConsent(tier) {
    const state = this.site.setConsent(tier);
    try {
      localStorage.setItem(CONSENT_KEY, tier);
    } catch {
      // Storage blocked: the choice holds for this page view.
    }
    // The A/B assignment follows: no visitor id under None, one from Functional on.
    this.runExperiments();
    this.refresh();
    // Store what was learned so far right away, rather than at the next
    // update, and show the panels what was stored.
    if (state.tier === "personalization") this.site.flush().then(() => this.refresh());
    return state;
  }

  // A click on a slot's call to action is the reward signal. Only the real
  // visitor's own decision is rewarded: simulated decisions were settled by
  // the simulator already.
  #wireClicks() {
    const onClick = (slot, event) => {
      event.preventDefault();
      const shown = slot.shown;
      if (!slot.engine || !shown || shown.decision.fallback) return;
      if (shown.source !== "visitor") {
        this.toast("That was a simulated visitor's view. Stop the simulation to click as yourself.");
        return;
      }
      if (shown.rewarded) {
        this.toast(`Already counted: "${shown.decision.variant}" got its reward.`);
        return;
      }
      try {
        slot.engine.reward({ decisionId: shown.decision.decisionId, reward: 1 });
        this.site.track({ type: "click", category: slot.id, item: shown.decision.variant });
        shown.rewarded = true;
        this.toast(`Thanks. Your click taught the ${slot.def.label.toLowerCase()} that "${shown.decision.variant}" works, on this device only.`);
      } catch (err) {
        console.error("insitu: reward failed", err);
      }
    };
    for (const slot of this.slots.values()) {
      slot.el.querySelectorAll("[data-reward]").forEach((el) => el.addEventListener("click", (e) => onClick(slot, e)));
      slot.el.querySelectorAll("[data-reward-form]").forEach((el) => el.addEventListener("submit", (e) => onClick(slot, e)));
    }
  }

  /** A short, polite status message at the bottom of the screen. */
  toast(message) {
    const el = document.querySelector('[data-role="toast"]');
    el.textContent = message;
    el.classList.add("show");
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => el.classList.remove("show"), 3200);
  }
}

/** The page without learners (the wasm did not load): fallback copy, honest cards. */
export function showUnavailable(defs, reason) {
  for (const [id, def] of Object.entries(defs)) {
    const card = document.querySelector(`[data-decision="${id}"]`);
    if (card) renderUnavailable(card, def.fallback, reason);
  }
}
