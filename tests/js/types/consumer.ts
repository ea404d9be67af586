// A TypeScript consumer of the built package (pkg/index.d.ts, generated from
// src/ts/). tests/js/types.test.mjs type-checks it with tsc --strict: every
// valid use below must compile, and every line marked @ts-expect-error must be
// a type error (if a type were too loose, the marker itself would be reported
// as unused).
import init, {
  CODES,
  Context,
  Insitu,
  InsituError,
  load,
  open,
  type ActivateOptions,
  type Assignment,
  type Audit,
  type AuditEntry,
  type BehaviorEvent,
  type ConsentState,
  type ConsentTier,
  type Contribution,
  type Decision,
  type ErrorCode,
  type ExperimentConfig,
  type ExperimentInfo,
  type Explanation,
  type ExposureEvent,
  type Report,
  type ReportGroup,
  type ReportOptions,
  type FallbackSite,
  type FlushResult,
  type InsituOptions,
  type LearnOptions,
  type LoadOptions,
  type Model,
  type OpenOptions,
  type RankOptions,
  type RestoreResult,
  type RewardOptions,
  type Site,
  type Slot,
  type Stats,
  type SyncResult,
} from "../../../pkg/index.js";

// --- init() and new Insitu() -------------------------------------------------

await init();
await init(new URL("https://cdn.example/insitu_full.wasm"));
await init(new Uint8Array([0, 97, 115, 109]));
await init({ module_or_path: "/insitu_full.wasm" });

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
  features: { bits: 6, allow: ["page", "visitor"], slotsPerFeature: 1 },
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
const seed: number | null = d.seed;
if (d.decisionId !== null) {
  const reward: RewardOptions = { decisionId: d.decisionId, reward: 1 };
  slot.reward(reward);
  const activate: ActivateOptions = { decisionId: d.decisionId };
  slot.activate(activate);
}
if (d.error) {
  const code: ErrorCode = d.error.code;
  const message: string = d.error.message;
  const isError: InsituError = d.error;
  void [code, message, isError];
}
const learn: LearnOptions = { context: { page: { section: "news" } }, variant: "b", reward: 0 };
slot.learn(learn);
const stats: Stats = slot.stats();
const updates: number = stats.variants[0]!.updates;
const pending: number = stats.pending;
const version: string = withModel.modelVersion;
slot.rank(undefined);
slot.rank();
const direct: Explanation | null = slot.explain({ variant: "a" });
const sds: number[] | undefined = direct?.sd;
const term: Contribution | undefined = direct?.contributions[0];
const synced: SyncResult = slot.sync(null, { slot: "hero", now: 1 });
const bytes: Uint8Array = synced.bytes;
const committed: boolean = slot.commit();
const restored: RestoreResult = withModel.restore(bytes, { slot: "hero" });
const adopted: number = restored.adopted;
slot.close();

// @ts-expect-error: an unknown option
new Insitu({ variants: ["a", "b"], polcy: {} });
// @ts-expect-error: a policy parameter of another policy
new Insitu({ variants: ["a", "b"], policy: { type: "greedy", alpha: 1 } });
// @ts-expect-error: options are required
new Insitu();
// @ts-expect-error: a feature value that is an object
slot.rank({ context: { page: { nested: { no: 1 } } } });
// @ts-expect-error: reward needs a decision id
slot.reward({ reward: 1 });
// @ts-expect-error: decisionId may be null for a fallback
slot.reward({ decisionId: d.decisionId, reward: 1 });
// @ts-expect-error: learn needs the variant
slot.learn({ reward: 1 });
// @ts-expect-error: top is a count
slot.explain({ top: "all" });
// @ts-expect-error: sync's stored bytes are a Uint8Array, not base64
slot.sync("base64", { slot: "hero" });
// @ts-expect-error: not an error code
const wrong: ErrorCode = "NOT_A_CODE";
const codes: readonly ErrorCode[] = CODES;

// --- open(): a site on the full engine ------------------------------------------------

const openOptions: OpenOptions = { consent: "personalization", behavior: { maxAgeDays: 7 }, onError: (e) => void e.code };
const site: Site = open(openOptions);
const hero: Slot = site.slot("hero", { variants: ["a", "b"], features: { allow: ["page", "behavior"] } });
const event: BehaviorEvent = { type: "view", category: "shoes", tags: ["sale"], value: 3 };
site.track(event);
// A context encoded once per page view, shared by every slot.
const context: Context = site.context({ page: { section: "news" } });
const shown: string = hero.rank({ context }).variant;
const alsoPlain: Decision = hero.rank({ context: { page: { section: "news" } } });
const why: Explanation | null = hero.explain({ context, variant: shown, top: 3 });
const top: string | undefined = why?.contributions[0]?.feature;
const features: Record<string, number | string> | null = site.features();
const state: ConsentState = site.setConsent("functional");
const tier: ConsentTier = state.tier;
const audit: Audit = site.audit();
const network: "none" = audit.network;
const history: AuditEntry[] = audit.history;
const ready: Promise<void> = site.ready;
void site.flush().then((r: FlushResult) => r.written && r.generation);
const experiments: ExperimentConfig[] = [
  { key: "cta", variants: ["buy", "try"], weights: [0.5, 0.5], hash: "growthbook/2", targeting: [{ attribute: "behavior.sessions", range: [1, null] }] },
  { key: "tb", variants: ["a", "b"], allocation: { type: "thompson", prior: { a: [1, 1] } } },
];
const info: ExperimentInfo[] = site.experiments(experiments);
const assigned: Assignment = site.run("cta", { attributes: { country: "NZ" } });
const reason: Assignment["reason"] = assigned.reason;
site.rewardExperiment("tb", 1);
site.setUnit("user-7");
site.setUnit(null);
const forgotten: Audit = site.forget();
site.close();
// @ts-expect-error: not a consent tier
site.setConsent("everything");
// @ts-expect-error: an event needs a type
site.track({ item: "sku-1" });
// @ts-expect-error: an experiment needs variants
site.experiments([{ key: "x" }]);
// @ts-expect-error: not an open() option
open({ wasm: "/insitu_bg.wasm" });
// @ts-expect-error: a context's namespaces hold features, not numbers
site.context({ page: 1 });
// @ts-expect-error: exposures arrive as events
open({ onExposure: (e: string) => e });

// --- load(): the entry point ------------------------------------------------------

// It resolves to a Site, or a fallback one when WebAssembly cannot run.
const loadOptions: LoadOptions = {
  consent: "functional",
  wasm: new URL("https://cdn.example/insitu_bg.wasm"),
  wasmFull: "/insitu_full.wasm",
  onFallback: (e: InsituError) => void e.code,
  onExposure: (e: ExposureEvent) => void e.experiment,
};
void load(loadOptions).then(async (s: Site | FallbackSite) => {
  const reason: InsituError | null = s.fallback;
  const fromFallback: boolean = s.slot("cta", { variants: ["a"] }).rank().fallback;
  await s.ready;
  const flushed: FlushResult = await s.flush();
  const a: Audit = s.audit();
  void [reason, fromFallback, flushed, a];
});
void load();

// --- private reports ----------------------------------------------------------------

const reportOptions: ReportOptions = { task: "hero-w49", periodDays: 7, bounds: { decisions: 50, xy: 80 }, segment: "mobile" };
const reporting = open({
  consent: "personalization",
  onReport: (r: Report) => {
    const m: number[] = r.measurement;
    const vdaf: { bits: number; length: number; chunkLength: number } = r.vdaf;
    const groups: ReportGroup[] = r.clipped;
    const slots: number = r.taskFile.slots;
    const line: string = r.line;
    void [m, vdaf, groups, slots, line, r.period, r.segment];
  },
});
reporting.slot("hero", { variants: ["a", "b"], reports: reportOptions });
const ledger = reporting.audit().reports[0]?.ledger[0];
const outcome: "reported" | "refused-duplicate" | "refused-non-finite" | "dropped-features-changed" | undefined = ledger?.outcome;
void outcome;
// @ts-expect-error: a task is required
reporting.slot("hero", { variants: ["a", "b"], reports: { periodDays: 1 } });
reporting.experiments([{ key: "cta", variants: ["a", "b"], reports: { task: "ab-cta", bounds: { rewards: 5 } } }]);
// @ts-expect-error: an experiment's reports hold counts only
reporting.experiments([{ key: "cta", variants: ["a", "b"], reports: { task: "ab-cta", learning: true } }]);
// @ts-expect-error: reports arrive as objects
open({ onReport: (r: string) => r });
// @ts-expect-error: onFallback takes an error, not a string
void load({ onFallback: (e: string) => e });
// @ts-expect-error: not a wasm source (a number; `WebAssembly.Module` is an empty interface in lib.dom, so it must not be the whole test)
void load({ wasm: 42 });

void [variant, p, pmf, seed, updates, pending, version, wrong, codes, sds, term, committed, adopted];
void [shown, alsoPlain, top, features, tier, network, history, ready, info, reason, forgotten];
