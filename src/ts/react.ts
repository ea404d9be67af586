// React bindings (`insitu/react`): one site per page, opened with load()
// once, and hooks that decide during render when the site is ready and
// serve the fallback otherwise. Its own file of the package, importing the
// entry and React (a peer dependency), so a page without React pays nothing.
//
// The site is an external store (useSyncExternalStore): the server and a
// hydrating client see no site and render the fallback, so hydration
// matches the server's markup; the client then renders again with the site.
// A component's decision is kept per site, component (useId) and context,
// so re-rendering with an equal context never decides again. A slot decides
// with `defer` during render and the decision is activated when React
// commits it: a render React throws away (strict mode in development,
// Suspense) leaves a decision that never counts.

import { createElement, Fragment, useCallback, useEffect, useId, useSyncExternalStore, type ReactNode, type ReactElement } from "react";
import { load } from "./index.js";
import { keyOf } from "./bounded.js";
import type { Assignment } from "./experiments.js";
import type { FallbackSite } from "./fallback.js";
import type { Site, Slot } from "./site.js";
import type { Decision } from "./slot.js";
import type { ContextObject, ExperimentConfig, InsituOptions, LoadOptions } from "./types.js";

type AnySite = Site | FallbackSite;

/** The page's site, shared by every hook: null until load() has resolved (and always on a server). */
let page: Promise<AnySite> | null = null;
let current: AnySite | null = null;
let reportTo: LoadOptions["onError"] | undefined;
/** The experiments given to `preload` (on a server too), for their fallbacks before the site is ready. */
const configured = new Map<string, ExperimentConfig>();
const listeners = new Set<() => void>();
/** Per site: each slot opened by name (or why its options were refused), and each component's decisions. */
const slots = new WeakMap<AnySite, Map<string, Slot | Error>>();
const made = new WeakMap<AnySite, Map<string, Decision | Assignment | Error>>();
/** Decisions kept per site at most; past it the least recently used is made again when next rendered. */
const MAX_MADE = 4096;
/** Whether the site got its experiments (a later `preload` may bring them). */
let configuredSite = false;

const isServer = (): boolean => typeof window === "undefined" || typeof document === "undefined";

/**
 * Open the page's site with `load(options)`, once: later calls return the same promise (their
 * options are ignored). Call it as early as the page can (before `createRoot` or `hydrateRoot`),
 * and await it before rendering for decisions on the first paint. `experiments` configures the
 * site's experiments; a list the site refuses goes to `options.onError`. Never rejects (a page
 * where WebAssembly cannot run gets the fallback site). On a server it opens nothing.
 */
export function preload(options?: LoadOptions, experiments?: ExperimentConfig[]): Promise<AnySite | null> {
  const fresh = Array.isArray(experiments) && configured.size === 0;
  if (fresh) {
    for (const c of experiments!) if (c !== null && typeof c === "object" && typeof c.key === "string") configured.set(c.key, c);
  }
  if (isServer()) return Promise.resolve(null);
  if (page === null) {
    reportTo = options?.onError;
    page = load(options).then((site) => {
      current = site;
      publish();
      return site;
    });
  }
  // The first call that brings experiments configures them, whichever call opened the site.
  if (fresh) {
    void page.then((site) => {
      if (configuredSite) return;
      configuredSite = true;
      try {
        site.experiments(experiments!);
      } catch (e) {
        report(e);
      }
      // Assignments that failed before (no such experiment yet) are made again.
      const cache = made.get(site);
      for (const [k, v] of cache ?? []) if (v instanceof Error) cache!.delete(k);
      publish();
    });
  }
  return page;
}

/** What the hooks read: a new object at each change, so React renders again. */
let state: { site: AnySite | null } = { site: null };
const SERVER = { site: null };
function publish(): void {
  state = { site: current };
  for (const l of listeners) l();
}

function report(e: unknown): void {
  try {
    reportTo?.(e as never);
  } catch {
    // the site's own callback threw: nothing more to do
  }
}

const subscribe = (l: () => void): (() => void) => {
  listeners.add(l);
  return () => listeners.delete(l);
};
const getState = (): { site: AnySite | null } => state;
const getServerState = (): { site: null } => SERVER;

/** The page's site, or null before it is ready (and while hydrating, and on a server). */
export function useSite(): AnySite | null {
  return useSyncExternalStore(subscribe, getState, getServerState).site;
}

/**
 * Opens the page's site (`preload(options, experiments)`) and renders its children. Optional: the
 * hooks work without it once `preload` has been called.
 */
export function InsituSite(props: { options?: LoadOptions; experiments?: ExperimentConfig[]; children?: ReactNode }): ReactElement {
  void preload(props.options, props.experiments);
  return createElement(Fragment, null, props.children);
}

/** What `useDecision` returns. */
export interface SlotState {
  /** The decided variant, or the slot's fallback while the site is not ready. */
  variant: string;
  /** The decision, null while the site is not ready. */
  decision: Decision | null;
  ready: boolean;
  /** Reward this decision (default 1, in [0, 1]); a refused reward goes to `onError`, never thrown. */
  reward: (reward?: number) => void;
}

/**
 * Decide slot `name` (opened with `options` at its first use on the page; later components
 * naming it share it) for `context`: during render once the site is ready, the slot's fallback
 * before. An equal context on a later render keeps the decision.
 */
export function useDecision(name: string, options: InsituOptions, context?: ContextObject): SlotState {
  const site = useSite();
  const id = useId();
  const fp = keyOf(context);
  let decision: Decision | null = null;
  let slot: Slot | null = null;
  if (site !== null) {
    slot = slotOf(site, name, options);
    if (slot !== null) {
      const key = `${id}\u0000${name}\u0000${fp}`;
      const cache = cacheOf(site);
      decision = (recall(cache, key) as Decision | undefined) ?? null;
      if (decision === null) {
        decision = slot.rank(context === undefined ? { defer: true } : { context, defer: true });
        remember(cache, key, decision);
      }
    }
  }
  const decisionId = decision?.decisionId ?? null;
  // Committed: the decision was shown, so its reward counts.
  useEffect(() => {
    if (slot === null || decisionId === null) return;
    try {
      slot.activate({ decisionId });
    } catch (e) {
      report(e);
    }
  }, [slot, decisionId]);
  const reward = useCallback((r: number = 1) => {
    if (slot === null || decisionId === null) return;
    try {
      slot.reward({ decisionId, reward: r });
    } catch (e) {
      report(e);
    }
  }, [slot, decisionId]);
  return { variant: decision?.variant ?? fallbackOf(options), decision, ready: decision !== null && !decision.fallback, reward };
}

/** What `useExperiment` returns. */
export interface ExperimentState {
  /** The assigned variant, or the experiment's fallback while the site is not ready (null if the hook cannot know it). */
  variant: string | null;
  assignment: Assignment | null;
  ready: boolean;
  /** Reward the experiment (default 1); a refused reward goes to `onError`, never thrown. */
  reward: (reward?: number) => void;
}

/**
 * The visitor's variant of experiment `key` (configured with `preload`'s or `<InsituSite>`'s
 * `experiments`), assigned during render once the site is ready. The site reports the first
 * exposure to `onExposure`, once per visitor and experiment.
 */
export function useExperiment(key: string, attributes?: Record<string, unknown>): ExperimentState {
  const site = useSite();
  const id = useId();
  const fp = keyOf(attributes);
  let a: Assignment | null = null;
  if (site !== null) {
    const k = `${id}\u0000#${key}\u0000${fp}`;
    const cache = cacheOf(site);
    const kept = recall(cache, k);
    if (kept instanceof Error) a = null; // reported once, when it happened
    else if (kept !== undefined) a = kept as Assignment;
    else {
      try {
        a = site.run(key, attributes === undefined ? {} : { attributes });
        remember(cache, k, a);
      } catch (e) {
        report(e);
        remember(cache, k, e instanceof Error ? e : new Error(String(e)));
      }
    }
  }
  const reward = useCallback((r: number = 1) => {
    if (site === null) return;
    try {
      site.rewardExperiment(key, r);
    } catch (e) {
      report(e);
    }
  }, [site, key]);
  const c = configured.get(key);
  const fallback = c === undefined ? null : typeof c.fallback === "string" ? c.fallback : (c.variants?.[0] ?? null);
  return { variant: a?.variant ?? fallback, assignment: a, ready: a !== null && a.reason !== "unavailable", reward };
}

function slotOf(site: AnySite, name: string, options: InsituOptions): Slot | null {
  let m = slots.get(site);
  if (m === undefined) slots.set(site, (m = new Map()));
  let s = m.get(name);
  if (s === undefined) {
    try {
      s = site.slot(name, options);
    } catch (e) {
      report(e);
      s = e instanceof Error ? e : new Error(String(e));
    }
    m.set(name, s);
  }
  return s instanceof Error ? null : s;
}

type Kept = Decision | Assignment | Error;

function cacheOf(site: AnySite): Map<string, Kept> {
  let m = made.get(site);
  if (m === undefined) made.set(site, (m = new Map()));
  return m;
}

/** What `key` holds, made the most recently used. */
function recall(cache: Map<string, Kept>, key: string): Kept | undefined {
  const v = cache.get(key);
  if (v !== undefined) {
    cache.delete(key);
    cache.set(key, v);
  }
  return v;
}

function remember(cache: Map<string, Kept>, key: string, v: Kept): void {
  if (cache.size >= MAX_MADE) cache.delete(cache.keys().next().value!);
  cache.set(key, v);
}

/** The variant a slot serves before its site is ready: `fallback`, else its first variant. */
function fallbackOf(options: InsituOptions): string {
  if (typeof options?.fallback === "string") return options.fallback;
  const model = options?.model as { variants?: Array<{ id?: unknown }> } | undefined;
  const first = Array.isArray(options?.variants) ? options.variants[0] : Array.isArray(model?.variants) ? model.variants[0] : undefined;
  return typeof first === "string" ? first : typeof first?.id === "string" ? first.id : "";
}
