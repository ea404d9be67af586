// The page-view workload of `npm run bench` (benches/node-bench.mjs): one
// page context, three slots and one experiment for insitu, and GrowthBook
// doing the same work (three features with targeted rules, one inline
// experiment). Plain data and small functions, no Node or browser API, so
// a browser benchmark can import it too.
//
// Both sides see the same page views: page `i` of a rotating set gives
// insitu its context and GrowthBook its attributes, made from one record.

export const pick = (xs, i) => xs[i % xs.length];

/** Pages in the rotation: built once, as a page builds its context once per view. */
export const ROTATION = 64;

/** The visitor: one per run, known to the site (so both sides hash the same unit). */
export const VISITOR = "visitor-7f3a9c";

const SECTIONS = ["home", "shoes", "bags", "outdoor", "deals", "journal"];
const PAGE_TYPES = ["home", "category", "product", "product", "category", "cart"];
const DEVICES = ["mobile", "mobile", "desktop", "tablet"];
const COUNTRIES = ["de", "fr", "gb", "us", "es", "nl", "it"];
const REFERRERS = ["search", "social", "direct", "email", "ads"];
const DAYPARTS = ["night", "morning", "afternoon", "evening"];
const TAGS = ["waterproof", "vegan", "sale", "new", "bestseller", "limited", "kids", "trail"];

/** What the page knows at load: one record per page view, both sides read it. */
export function page(i) {
  const hour = (i * 5) % 24;
  const type = pick(PAGE_TYPES, i);
  return {
    section: pick(SECTIONS, i),
    type,
    price: type === "product" ? 19 + ((i * 13) % 180) : null,
    tags: type === "product" ? [pick(TAGS, i), pick(TAGS, i * 3 + 1)] : [],
    lang: pick(["en", "de", "fr"], Math.floor(i / 3)),
    device: pick(DEVICES, i * 3),
    country: pick(COUNTRIES, Math.floor(i / 2)),
    referrer: pick(REFERRERS, i * 7),
    hour,
    daypart: DAYPARTS[Math.floor(hour / 6)],
    returning: i % 3 !== 0,
    loggedIn: i % 4 === 0,
    visits: 1 + ((i * 11) % 40),
    cartValue: i % 4 === 0 ? (i * 17) % 120 : 0,
  };
}

/** insitu's context of a page: namespaced, categorical and numeric features (11 to 14 of them). */
export function insituContext(p) {
  const pageNs = { section: p.section, type: p.type, lang: p.lang };
  if (p.price !== null) pageNs.price = Math.log1p(p.price);
  if (p.tags.length > 0) pageNs.tags = p.tags;
  return {
    page: pageNs,
    visitor: {
      device: p.device,
      country: p.country,
      referrer: p.referrer,
      daypart: p.daypart,
      hour: p.hour / 23,
      returning: p.returning,
      loggedIn: p.loggedIn,
      visits: Math.log1p(p.visits),
    },
  };
}

/** GrowthBook's attributes of a page: the same facts, flat, plus the id it hashes. */
export function growthbookAttributes(p) {
  return {
    id: VISITOR,
    section: p.section,
    pageType: p.type,
    price: p.price ?? 0,
    lang: p.lang,
    device: p.device,
    country: p.country,
    referrer: p.referrer,
    hour: p.hour,
    returning: p.returning,
    loggedIn: p.loggedIn,
    cartValue: p.cartValue,
  };
}

// ------------------------------------------------------------------- insitu

/** The three slots of the page: names and options as a site would write them. */
export const SLOTS = {
  hero: {
    variants: ["summer-sale", "ultralight", "free-shipping", "new-arrivals", "trail-week"],
    features: { allow: ["page", "visitor", "behavior"] },
    policy: { type: "linucb", alpha: 0.5 },
    fallback: "summer-sale",
    seed: 1,
  },
  shelf: {
    variants: ["bestsellers", "recently-viewed", "new-in", "picked-for-you"],
    features: { allow: ["page", "visitor"] },
    policy: { type: "egreedy", epsilon: 0.05 },
    fallback: "bestsellers",
    seed: 2,
  },
  banner: {
    variants: ["none", "free-shipping", "newsletter"],
    features: { allow: ["visitor"] },
    policy: { type: "linucb", alpha: 1, minProbability: 0.05 },
    fallback: "none",
    seed: 3,
  },
};

/** The experiment: fixed weights, GrowthBook's hashing (so both sides assign the same variant), targeted on country. */
export const EXPERIMENT = {
  key: "checkout-cta",
  variants: ["blue", "green", "orange"],
  weights: [0.5, 0.25, 0.25],
  hash: "growthbook/2",
  targeting: [{ attribute: "country", in: ["de", "fr", "gb", "us", "nl"] }],
};

/** `site.run`'s options for a page: the attributes its targeting reads. */
export const runOptions = (p) => ({ attributes: { country: p.country, device: p.device } });

// ---------------------------------------------------------------- GrowthBook

/** The feature keys, one per insitu slot. */
export const FEATURES = { hero: "hero-variant", shelf: "product-shelf", banner: "promo-banner" };

/** Three features, each with a targeted force rule and then an experiment or a percentage rollout. */
export const GROWTHBOOK_FEATURES = {
  [FEATURES.hero]: {
    defaultValue: "summer-sale",
    rules: [
      { id: "fr-hero-deals", condition: { section: "deals", device: "mobile" }, force: "free-shipping" },
      {
        id: "fr-hero-test",
        key: "hero-test",
        condition: { country: { $in: ["de", "fr", "gb", "us"] }, returning: true },
        variations: SLOTS.hero.variants,
        weights: [0.2, 0.2, 0.2, 0.2, 0.2],
        coverage: 1,
        hashAttribute: "id",
        hashVersion: 2,
      },
    ],
  },
  [FEATURES.shelf]: {
    defaultValue: "bestsellers",
    rules: [
      { id: "fr-shelf-cart", condition: { loggedIn: true, cartValue: { $gt: 50 } }, force: "picked-for-you" },
      {
        id: "fr-shelf-rollout",
        condition: { pageType: { $in: ["product", "category"] } },
        force: "recently-viewed",
        coverage: 0.5,
        hashAttribute: "id",
        hashVersion: 2,
      },
    ],
  },
  [FEATURES.banner]: {
    defaultValue: "none",
    rules: [
      { id: "fr-banner-evening", condition: { hour: { $gte: 18 }, device: { $ne: "tablet" } }, force: "free-shipping" },
      {
        id: "fr-banner-test",
        key: "banner-test",
        condition: { referrer: { $in: ["email", "social"] } },
        variations: SLOTS.banner.variants,
        weights: [0.34, 0.33, 0.33],
        hashAttribute: "id",
        hashVersion: 2,
      },
    ],
  },
};

/** The inline experiment of GrowthBook's `run`: the insitu experiment, in GrowthBook's terms. */
export const GROWTHBOOK_EXPERIMENT = {
  key: EXPERIMENT.key,
  variations: EXPERIMENT.variants,
  weights: EXPERIMENT.weights,
  hashAttribute: "id",
  hashVersion: 2,
  condition: { country: { $in: EXPERIMENT.targeting[0].in } },
};

/** The rotation's pages, each with what either side needs of it. */
export function pages() {
  return Array.from({ length: ROTATION }, (_, i) => {
    const p = page(i);
    return { p, context: insituContext(p), run: runOptions(p), attributes: growthbookAttributes(p) };
  });
}

export const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
