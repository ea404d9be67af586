// Consent: the visitor's tier, where it came from, and what it lets this
// module keep. Every tier can decide and learn within the page view.
//
// | tier            | may store                                                    |
// |-----------------|--------------------------------------------------------------|
// | none            | nothing                                                      |
// | functional      | the audit history, the experiments' device seed and state    |
// | personalization | also the snapshot (learning, events) and quarantined values  |
//
// Global Privacy Control (navigator.globalPrivacyControl) lowers
// personalization to functional unless the site opts out (`gpc: "ignore"`).

import { describe, option } from "./errors.js";
import type { Tier } from "./spec.js";

/** Consent tiers, lowest first. */
export const TIERS: readonly Tier[] = ["none", "functional", "personalization"];

/** What each tier lets the module keep in storage (for the audit). */
export const PERSISTS: Record<Tier, string[]> = {
  none: [],
  functional: ["audit-history", "experiments", "device-unit"],
  personalization: ["audit-history", "experiments", "device-unit", "snapshot", "quarantine"],
};

/** The consent state and where it came from. */
export interface ConsentState {
  tier: Tier;
  /** `default` (the site has not said), `site` (`consent`/`setConsent`), or `gpc` (Global Privacy Control lowered it). */
  source: "default" | "site" | "gpc";
  /** `navigator.globalPrivacyControl`. */
  gpc: boolean;
}

/** The browser's Global Privacy Control signal. */
export function gpcSignal(): boolean {
  try {
    return (globalThis.navigator as { globalPrivacyControl?: unknown } | undefined)?.globalPrivacyControl === true;
  } catch {
    return false;
  }
}

/** `v` as a tier; else `INVALID_OPTION` naming `field`. */
export function checkTier(v: unknown, field = "consent"): Tier {
  if (!(TIERS as readonly unknown[]).includes(v)) throw option(field, `should be one of ${TIERS.join(", ")}, but is ${describe(v)}`);
  return v as Tier;
}

/** A tier's rank: 0 none, 1 functional, 2 personalization. */
export const rank = (t: Tier): number => TIERS.indexOf(t);

/** The consent of one site: the site's tier (null until it says), its default, and GPC. */
export class Consent {
  effective: Tier;

  constructor(
    public site: Tier | null,
    readonly fallback: Tier,
    readonly honorGpc: boolean,
  ) {
    this.effective = this.compute();
  }

  #lowered(): boolean {
    return this.honorGpc && gpcSignal() && (this.site ?? this.fallback) === "personalization";
  }

  /** The tier in force now. */
  compute(): Tier {
    return this.#lowered() ? "functional" : (this.site ?? this.fallback);
  }

  get state(): ConsentState {
    return {
      tier: this.effective,
      source: this.#lowered() ? "gpc" : this.site === null ? "default" : "site",
      gpc: gpcSignal(),
    };
  }

  /** Set the site's tier; the tier in force before. */
  set(t: Tier): Tier {
    const before = this.effective;
    this.site = t;
    this.effective = this.compute();
    return before;
  }

  /** The tier in force is at least `t`. */
  allows(t: Tier): boolean {
    return rank(this.effective) >= rank(t);
  }
}
