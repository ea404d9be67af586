// A TypeScript consumer of the built package (pkg/). tests/js/types.test.mjs
// type-checks it with tsc --strict: every valid use below must compile, and
// every line marked @ts-expect-error must be a type error (if a type were too
// loose, the marker itself would be reported as unused).
import {
  Insitu,
  type ActivateOptions,
  type Decision,
  type ErrorCode,
  type Explanation,
  type InsituOptions,
  type Model,
  type RankOptions,
  type RewardOptions,
  type Stats,
} from "../../../pkg/insitu.js";
import {
  load, open, type Audit, type ConsentTier, type InsituError, type LoadOptions, type Site,
} from "../../../pkg/index.js";

const model: Model = {
  format: 1,
  features: { bits: 4, allow: ["page"], interactions: [["page", "page"]] },
  variants: [
    { id: "a", variance: 0.5 },
    { id: "b", weights: { "3": 0.2 }, variance: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1] },
  ],
};
const options: InsituOptions = {
  variants: ["a", { id: "b", features: { variant: { tone: "urgent" } } }],
  features: { bits: 6, allow: ["page", "visitor"] },
  policy: { type: "thompson", scale: 0.5, samples: 64, minProbability: 0.02 },
  fallback: "a",
  seed: 7,
  rewardTtlMs: 60_000,
  maxPending: 100,
};
const slot = new Insitu(options);
const withModel = new Insitu({ model, policy: { alpha: 1 } });

const rank: RankOptions = { context: { page: { section: "sports", price: 12.5, dark: true, tags: ["a", "b"] } }, now: Date.now() };
const d: Decision = slot.rank(rank);
const variant: string = d.variant;
const p: number = d.probability;
const pmf: number[] = d.pmf;
if (d.decisionId !== null) {
  const reward: RewardOptions = { decisionId: d.decisionId, reward: 1 };
  slot.reward(reward);
  const activate: ActivateOptions = { decisionId: d.decisionId };
  slot.activate(activate);
}
if (d.error) {
  const code: ErrorCode = d.error.code;
  const message: string = d.error.message;
  void code;
  void message;
}
slot.learn({ context: { page: { section: "news" } }, variant: "b", reward: 0 });
const stats: Stats = slot.stats();
const updates: number = stats.variants[0].updates;
const version: string = withModel.modelVersion;
slot.rank(undefined);

// @ts-expect-error: an unknown option
new Insitu({ variants: ["a", "b"], polcy: {} });
// @ts-expect-error: a policy parameter of another policy
new Insitu({ variants: ["a", "b"], policy: { type: "greedy", alpha: 1 } });
// @ts-expect-error: a feature value that is an object
slot.rank({ context: { page: { nested: { no: 1 } } } });
// @ts-expect-error: reward needs a decision id
slot.reward({ reward: 1 });
// @ts-expect-error: decisionId may be null for a fallback
slot.reward({ decisionId: d.decisionId, reward: 1 });
// @ts-expect-error: not an error code
const wrong: ErrorCode = "NOT_A_CODE";

// The store, through the package's entry point.
const site: Site = open({ consent: "personalization", behavior: { maxAgeDays: 7 }, onError: (e) => e.code });
const hero = site.slot("hero", { variants: ["a", "b"] });
site.track({ type: "view", category: "shoes", tags: ["sale"], value: 3 });
const shown: string = hero.rank({ context: { page: { section: "news" } } }).variant;
const why: Explanation | null = hero.explain({ context: { page: { section: "news" } }, variant: shown, top: 3 });
const top: string | undefined = why?.contributions[0]?.feature;
const direct: Explanation = slot.explain({ variant: "a" });
const sds: number[] = direct.sd;
// @ts-expect-error: top is a count
slot.explain({ top: "all" });
const tier: ConsentTier = site.setConsent("functional").tier;
const audit: Audit = site.audit();
const network: "none" = audit.network;
void site.flush().then((r) => r.written);
// @ts-expect-error: not a consent tier
site.setConsent("everything");
// @ts-expect-error: an event needs a type
site.track({ item: "sku-1" });

// The entry point: load() resolves to a Site, a fallback one when WebAssembly cannot run.
const loadOptions: LoadOptions = {
  consent: "functional",
  wasm: new URL("https://cdn.example/insitu_bg.wasm"),
  onFallback: (e: InsituError) => void e.code,
};
void load(loadOptions).then((s: Site) => {
  const why: InsituError | null = s.fallback;
  const fromFallback: boolean = s.slot("cta", { variants: ["a"] }).rank().fallback;
  void [why, fromFallback];
});
// @ts-expect-error: onFallback takes an error, not a string
void load({ onFallback: (e: string) => e });

void [variant, p, pmf, updates, version, wrong, shown, tier, network, top, sds];
