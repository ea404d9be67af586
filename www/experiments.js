// The demo's A/B tests, allocated on the device by `site.run()`. The
// configurations are exactly what a site passes to `site.experiments()`;
// the copy the page shows for each variant lives next to them.

export const EXPERIMENTS = [
  {
    key: "promo-strip",
    variants: ["returns", "price-match"],
    weights: [0.5, 0.5],
    fallback: "returns",
    // Counts per variant, one report a day: an A/B readout without sending who saw what.
    reports: { task: "ridgeline-promo" },
  },
  {
    // GrowthBook's hashing, so the same visitor id lands in the same variant
    // as in a GrowthBook SDK; only touch devices are in it.
    key: "mobile-nav",
    variants: ["tabs", "drawer"],
    hash: "growthbook/2",
    targeting: [{ attribute: "device", in: ["mobile", "tablet"] }],
    fallback: "tabs",
  },
];

/** What each variant of a test changes, for the A/B panel and the page. */
export const EXPERIMENT_COPY = {
  "promo-strip": {
    label: "Promo strip under the header",
    variants: {
      returns: "Free 60-day returns on everything, no questions asked.",
      "price-match": "Found it cheaper elsewhere? We match the price.",
    },
  },
  "mobile-nav": {
    label: "Navigation on touch devices (not on this page)",
    variants: { tabs: "bottom tab bar", drawer: "slide-out drawer" },
  },
};
