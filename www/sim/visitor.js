// The simulated visitor: a seeded random source, random contexts and hidden
// click preferences. Knowing the true click rates lets the charts draw the
// exact expected reward of a uniform random choice and of the best choice.

import { daypart } from "../app.js";

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SECTIONS = ["camping", "running", "climbing", "travel"];
const DEVICES = [
  ["mobile", 0.55],
  ["desktop", 0.35],
  ["tablet", 0.1],
];

function pickWeighted(random, pairs) {
  let u = random();
  for (const [value, weight] of pairs) {
    if ((u -= weight) < 0) return value;
  }
  return pairs[pairs.length - 1][0];
}

/** A visit's context, in the same shape the real visitor's context has. */
export function randomContext(random) {
  return {
    page: { section: SECTIONS[Math.floor(random() * SECTIONS.length)] },
    visitor: { device: pickWeighted(random, DEVICES), daypart: daypart(Math.floor(random() * 24)) },
  };
}

/**
 * What the simulated visitor likes: per slot one favourite variant, clicked
 * with probability `high`; every other variant is clicked with `low`.
 * `clickRate` takes the context so context-dependent tastes can be added.
 */
export class HiddenPreferences {
  constructor(defs, { favourites, high = 0.6, low = 0.1 }) {
    this.variants = Object.fromEntries(Object.entries(defs).map(([id, def]) => [id, def.variants.map((v) => v.id)]));
    this.favourites = { ...favourites };
    this.high = high;
    this.low = low;
  }

  // eslint-disable-next-line no-unused-vars
  clickRate(slotId, variantId, _context) {
    return variantId === this.favourites[slotId] ? this.high : this.low;
  }

  /** Expected click rate when every variant is equally likely. */
  uniformRate(slotId) {
    const k = this.variants[slotId].length;
    return (this.high + (k - 1) * this.low) / k;
  }

  /** Expected click rate of always showing the favourite. */
  bestRate() {
    return Math.max(this.high, this.low);
  }

  describe() {
    const pct = (x) => `${Math.round(x * 100)}%`;
    return Object.entries(this.favourites)
      .map(([slot, v]) => `${slot}: ${v}`)
      .concat(`favourite ${pct(this.high)}, others ${pct(this.low)}`)
      .join(" · ");
  }
}
