// The benchmark workload shared by the Node benchmark (benches/node-bench.mjs)
// and the browser one (benches/browser/page.mjs): the same contexts, the
// same GrowthBook experiment, the same insitu configuration and the same
// paired measurement. No Node or browser APIs, so both can import it.

/** Variants per decision. */
export const K = 5;
/** Namespaces insitu may read. */
export const ALLOW = ["page", "session", "user"];

export const pick = (xs, i) => xs[i % xs.length];
export const TAGS = ["sport", "news", "tech", "travel", "food", "music", "film", "games",
  "cars", "home", "garden", "books", "style", "health", "money", "kids"];

/**
 * Context `i` of a rotating set: 32 active features (12 page, 14 user with 8
 * tags, 6 session), numbers, booleans, categories and a list. The same shape
 * as the Rust benchmark's contexts.
 */
export function context(i) {
  return {
    page: {
      section: pick(["home", "sports", "news", "shop", "blog", "help", "deals"], i),
      category: pick(["shoes", "bags", "hats", "coats", "socks", "belts"], i * 7),
      price: 5 + ((i * 7) % 50) * 0.5,
      scroll: (i % 10) / 10,
      hour: i % 24,
      weekday: pick(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], i),
      device: pick(["mobile", "desktop", "tablet"], i),
      referrer: pick(["search", "social", "direct", "email"], i),
      lang: pick(["en", "de", "fr"], Math.floor(i / 2)),
      darkMode: i % 2 === 0,
      viewportW: 360 + (i % 5) * 240,
      viewportH: 640 + (i % 3) * 120,
    },
    user: {
      tags: Array.from({ length: 8 }, (_, t) => pick(TAGS, i * 3 + t * 5)),
      visits: i % 30,
      daysSinceLast: (i * 13) % 90,
      cartValue: ((i * 17) % 200) * 0.75,
      segment: pick(["new", "casual", "loyal", "lapsed", "vip"], i),
      country: pick(["de", "fr", "us", "gb", "es", "it"], Math.floor(i / 3)),
      loggedIn: i % 3 === 0,
    },
    session: {
      pages: 1 + (i % 12),
      durationS: 10 * (i % 40),
      clicks: i % 9,
      source: pick(["organic", "cpc", "newsletter", "partner"], i),
      campaign: pick(["none", "spring-sale", "black-friday"], i),
      bounceRisk: (i % 100) / 100,
    },
  };
}

export const countFeatures = (ctx) =>
  Object.values(ctx).reduce(
    (n, ns) => n + Object.values(ns).reduce((m, v) => m + (Array.isArray(v) ? v.length : 1), 0),
    0,
  );

/** The shipped defaults (policy, hash width) unless a row changes one. */
export const insituConfig = (policy = undefined, bits = undefined) => ({
  variants: Array.from({ length: K }, (_, i) => `variant-${i}`),
  features: { bits, allow: ALLOW },
  policy,
  seed: 1,
});

// GrowthBook: one feature whose rule is a 5-variant experiment on the user id.
export const FEATURE_KEY = "hero-layout";
export const VARIATIONS = ["control", "v1", "v2", "v3", "v4"];
export const features = {
  [FEATURE_KEY]: {
    defaultValue: "control",
    rules: [
      {
        key: "hero-layout-exp",
        variations: VARIATIONS,
        weights: [0.2, 0.2, 0.2, 0.2, 0.2],
        coverage: 1,
        hashAttribute: "id",
        hashVersion: 2,
      },
    ],
  },
};
/** Attributes of a new user per call; ids are made up front so building them is not timed. */
export function userAttributes(count) {
  const ids = Array.from({ length: count }, (_, i) => `user-${i.toString(36)}-${i * 7919}`);
  let next = 0;
  return (i) => ({
    id: ids[next++ % ids.length],
    country: pick(["de", "fr", "us", "gb", "es", "it"], i),
    deviceType: pick(["mobile", "desktop", "tablet"], i),
    loggedIn: i % 3 === 0,
  });
}

export const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/**
 * The headline ratio, measured in pairs: one batch of `a`, then one of `b`,
 * alternating, and the median of the per-pair ratios. The machines this runs
 * on drift by tens of percent within a minute; rows measured one after the
 * other inherit that drift, pairs taken milliseconds apart mostly do not.
 * `now()` returns a time in any unit; `pause()` lets pending work run.
 */
export async function pairedRatio(a, b, { batches, warmup, calls, now, pause }) {
  const ratios = [];
  const perCall = { a: [], b: [] };
  for (let k = 0; k < warmup + batches; k++) {
    const t0 = now();
    for (let i = 0; i < calls; i++) a(k * calls + i);
    const t1 = now();
    for (let i = 0; i < calls; i++) b(k * calls + i);
    const t2 = now();
    if (k >= warmup) {
      ratios.push(Number(t1 - t0) / Number(t2 - t1));
      perCall.a.push(Number(t1 - t0) / calls);
      perCall.b.push(Number(t2 - t1) / calls);
    }
    await pause();
  }
  const sorted = (xs) => [...xs].sort((x, y) => x - y);
  const r = sorted(ratios);
  return {
    median: quantile(r, 0.5),
    p10: quantile(r, 0.1),
    p90: quantile(r, 0.9),
    aMedian: quantile(sorted(perCall.a), 0.5),
    bMedian: quantile(sorted(perCall.b), 0.5),
    batches,
  };
}
