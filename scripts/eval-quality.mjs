#!/usr/bin/env node
// Learning-quality evaluation of the shipped engine, through the replay
// driver's line protocol (scripts/replay.mjs, one child process per
// problem × policy), so the measured code path is exactly the shipped one.
//
// Each problem is a seeded synthetic stream. Every policy sees the same
// contexts and the same reward draws (common random numbers: the reward of
// every action is drawn up front), so differences between rows come from the
// policies, not from luck of the stream. References on the same stream:
//   uniform   - the mean reward over all actions (what uniform random earns in expectation on these draws)
//   full-info - per-action online ridge regression on the raw features that
//               sees every action's reward each round and acts greedily (an
//               upper reference for a linear learner; it needs no exploration)
//   oracle    - always the action with the highest true expected reward
//
// Usage: node scripts/eval-quality.mjs [--rounds T] [--jobs N] [--no-tuning]
// Writes .artifacts/eval-quality.json. Exit 0 unless a run fails.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { cpus } from "node:os";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const REPLAY = fileURLToPath(new URL("./replay.mjs", import.meta.url));
const ENGINE_SEED = 7;
const LAST = 1000; // the "after learning" window

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const args = { rounds: null, jobs: Math.max(1, Math.min(2, cpus().length)), tuning: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--rounds") args.rounds = Number(argv[++i]);
    else if (a === "--jobs") args.jobs = Number(argv[++i]);
    else if (a === "--no-tuning") args.tuning = false;
    else {
      console.error(`unknown argument ${a}\nusage: node scripts/eval-quality.mjs [--rounds T] [--jobs N] [--no-tuning]`);
      process.exit(2);
    }
  }
  for (const [k, v] of [["rounds", args.rounds], ["jobs", args.jobs]]) {
    if (v !== null && !(Number.isInteger(v) && v > 0)) {
      console.error(`--${k} should be a positive integer`);
      process.exit(2);
    }
  }
  return args;
}

// ---------------------------------------------------------------- seeded PRNG

/**
 * sfc32 (Chris Doty-Humphrey's small fast counter generator), seeded through
 * splitmix32 so that nearby seeds give unrelated streams.
 */
class Prng {
  constructor(seed) {
    let s = seed >>> 0;
    const splitmix = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    this.d = splitmix();
    for (let i = 0; i < 12; i++) this.u32();
    this.spare = null;
  }

  u32() {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next() {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n) {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box–Muller, caching the second value). */
  normal() {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    const u = 1 - this.next(); // (0, 1]: log(u) is finite
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * this.next();
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }

  normals(n, sd = 1) {
    return Array.from({ length: n }, () => sd * this.normal());
  }
}

const sigmoid = (z) => 1 / (1 + Math.exp(-z));
const dot = (a, b) => a.reduce((s, ai, i) => s + ai * b[i], 0);
const named = (v, prefix) => Object.fromEntries(v.map((x, i) => [`${prefix}${i}`, x]));
const argmax = (v) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);

// ---------------------------------------------------------------- problems
//
// A problem's `round(rng)` returns one round: `x` (shared feature vector),
// `z` (per-action feature vectors, or null), `p` (true expected reward of
// each action) and `r` (the drawn reward of each action).

const bernoulli = (rng, p) => p.map((pa) => (rng.next() < pa ? 1 : 0));

/** Linear contextual bandit: K=5, d=8 Gaussian features, Bernoulli(sigmoid(w_a·x + b_a)). */
function linearProblem(rng) {
  const k = 5;
  const d = 8;
  const w = Array.from({ length: k }, () => rng.normals(d, 1.5 / Math.sqrt(d)));
  const b = rng.normals(k, 0.3);
  return {
    name: "linear",
    k,
    describe: "K=5, d=8 Gaussian x, reward ~ Bernoulli(sigmoid(w_a.x + b_a))",
    round(r) {
      const x = r.normals(d);
      const p = w.map((wa, a) => sigmoid(dot(wa, x) + b[a]));
      return { x, z: null, p, r: bernoulli(r, p) };
    },
  };
}

/**
 * Non-linear: K=5 radial bumps. x0, x1 ~ U[-1,1] locate the user; action a is
 * good near its centre (four corners and the origin); 4 noise features.
 * The origin action is not linearly separable from the others.
 */
function bumpsProblem() {
  const centres = [[-0.6, -0.6], [-0.6, 0.6], [0.6, -0.6], [0.6, 0.6], [0, 0]];
  const k = centres.length;
  return {
    name: "bumps",
    k,
    describe: "K=5 radial bumps over (x0,x1) ~ U[-1,1]^2 + 4 noise features, p = 0.1 + 0.7 exp(-|x-c_a|^2 / 0.18)",
    round(r) {
      const x = Array.from({ length: 6 }, () => 2 * r.next() - 1);
      const p = centres.map(([c0, c1]) => 0.1 + 0.7 * Math.exp(-((x[0] - c0) ** 2 + (x[1] - c1) ** 2) / (2 * 0.3 ** 2)));
      return { x, z: null, p, r: bernoulli(r, p) };
    },
  };
}

/**
 * Classification → bandit: Gaussian blobs, one per class; reward 1 if the
 * action is the (observed) label. `noise` replaces that fraction of labels by
 * a uniform random class; `scales` stretches some features (unnormalised inputs).
 */
function blobsProblem(rng, { name, k, d, spread, noise, scales, describe }) {
  const means = Array.from({ length: k }, () => rng.normals(d, spread));
  return {
    name,
    k,
    describe,
    round(r) {
      const y = r.int(k);
      const x = means[y].map((m, i) => (m + r.normal()) * (scales?.[i] ?? 1));
      const observed = r.next() < noise ? r.int(k) : y;
      const p = Array.from({ length: k }, (_, a) => (1 - noise) * (a === y ? 1 : 0) + noise / k);
      const rewards = Array.from({ length: k }, (_, a) => (a === observed ? 1 : 0));
      return { x, z: null, p, r: rewards };
    },
  };
}

/**
 * Action features (ADF-style): each round K=5 items are drawn from a pool of
 * 40, each described by 4 features; the slot index says nothing about the
 * item. Reward ~ Bernoulli(sigmoid(x'Wz + u·z)): only the shared × action
 * interaction can rank items for a user.
 */
function adfProblem(rng) {
  const k = 5;
  const d = 5;
  const m = 4;
  const pool = Array.from({ length: 40 }, () => rng.normals(m));
  const W = Array.from({ length: d }, () => rng.normals(m, 0.6));
  const u = rng.normals(m, 0.3);
  return {
    name: "adf",
    k,
    describe: "K=5 items of 40 per round (4 item features), d=5 shared, reward ~ Bernoulli(sigmoid(x'Wz + u.z))",
    round(r) {
      const x = r.normals(d);
      const items = [];
      while (items.length < k) {
        const i = r.int(pool.length);
        if (!items.includes(i)) items.push(i);
      }
      const z = items.map((i) => pool[i]);
      const p = z.map((za) => sigmoid(x.reduce((s, xi, i) => s + xi * dot(W[i], za), 0) + dot(u, za)));
      return { x, z, p, r: bernoulli(r, p) };
    },
  };
}

/** Problems with their stream seeds and lengths. */
function makeProblems(roundsOverride) {
  const problems = [
    { seed: 1001, rounds: 8000, make: (rng) => linearProblem(rng) },
    { seed: 1002, rounds: 8000, make: () => bumpsProblem() },
    {
      seed: 1003,
      rounds: 6000,
      make: (rng) =>
        blobsProblem(rng, {
          name: "blobs",
          k: 6,
          d: 10,
          spread: 1.2,
          noise: 0,
          describe: "K=6 Gaussian blobs in d=10 (class means ~N(0,1.2^2), unit noise); reward = [action == label]",
        }),
    },
    {
      seed: 1004,
      rounds: 8000,
      make: (rng) =>
        blobsProblem(rng, {
          name: "blobs-hard",
          k: 8,
          d: 12,
          spread: 0.7,
          noise: 0.15,
          scales: [4, 4, 0.25, 0.25],
          describe: "K=8 overlapping blobs in d=12 (means ~N(0,0.7^2)), 15% label noise, 4 features rescaled x4 / x0.25",
        }),
    },
    { seed: 1005, rounds: 8000, make: (rng) => adfProblem(rng) },
  ];
  return problems.map(({ seed, rounds, make }) => {
    const rng = new Prng(seed);
    const problem = make(rng);
    const T = roundsOverride ?? rounds;
    const stream = Array.from({ length: T }, () => problem.round(rng));
    return { ...problem, seed, T, stream };
  });
}

// ---------------------------------------------------------------- references

/** Online ridge regression (recursive least squares, prior N(0, I/lambda)). */
class Ridge {
  constructor(d, lambda = 1) {
    this.d = d;
    this.w = new Float64Array(d);
    this.P = new Float64Array(d * d); // inverse of (lambda I + X'X)
    for (let i = 0; i < d; i++) this.P[i * d + i] = 1 / lambda;
    this.s = new Float64Array(d);
  }

  predict(x) {
    return dot(x, this.w);
  }

  update(x, y) {
    const { d, P, s, w } = this;
    for (let i = 0; i < d; i++) {
      let v = 0;
      for (let j = 0; j < d; j++) v += P[i * d + j] * x[j];
      s[i] = v;
    }
    const q = 1 + dot(x, s);
    const g = (y - this.predict(x)) / q;
    for (let i = 0; i < d; i++) w[i] += s[i] * g;
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) P[i * d + j] -= (s[i] * s[j]) / q;
  }
}

/** The raw feature vector the full-information learner uses for action a. */
function rawFeatures(round, a) {
  if (round.z === null) return [...round.x, 1];
  // Action features: the same shared, action and shared × action terms the engine is given.
  const za = round.z[a];
  const cross = round.x.flatMap((xi) => za.map((zj) => xi * zj));
  return [...round.x, ...za, ...cross, 1];
}

/** Full-information greedy: learns every action's reward every round. */
function fullInformation(problem) {
  const { k, stream } = problem;
  const dim = rawFeatures(stream[0], 0).length;
  // Per-action models; with action features one model shared by all slots,
  // since a slot index means nothing there.
  const models = problem.stream[0].z === null ? Array.from({ length: k }, () => new Ridge(dim)) : Array(k).fill(new Ridge(dim));
  const rewards = stream.map((round) => {
    const feats = Array.from({ length: k }, (_, a) => rawFeatures(round, a));
    const choice = argmax(feats.map((f, a) => models[a].predict(f)));
    feats.forEach((f, a) => models[a].update(f, round.r[a]));
    return round.r[choice];
  });
  return summarize(rewards);
}

const average = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;

/** Mean reward overall and in the last window; the per-round rewards are kept for paired comparisons. */
function summarize(rewards) {
  return { mean: average(rewards), last: average(rewards.slice(-LAST)), rewards };
}

function references(problem) {
  return {
    uniform: summarize(problem.stream.map((round) => average(round.r))),
    "full-info": fullInformation(problem),
    oracle: summarize(problem.stream.map((round) => round.r[argmax(round.p)])),
  };
}

// ---------------------------------------------------------------- the driver

/** A replay.mjs child: `request` sends a line and resolves with the next reply line. */
function startReplay() {
  const child = spawn(process.execPath, [REPLAY], { stdio: ["pipe", "pipe", "pipe"] });
  const waiters = [];
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  createInterface({ input: child.stdout }).on("line", (line) => {
    const w = waiters.shift();
    if (w) w(JSON.parse(line));
    else stderr += `unexpected reply: ${line}\n`;
  });
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    send: (msg) => child.stdin.write(`${JSON.stringify(msg)}\n`),
    request(msg) {
      return new Promise((resolve) => {
        waiters.push(resolve);
        this.send(msg);
      });
    },
    async finish() {
      child.stdin.end();
      return { code: await exited, stderr };
    },
  };
}

/** Play one policy on one problem's stream through the driver. */
async function runPolicy(problem, policy) {
  const started = performance.now();
  const replay = startReplay();
  const fail = async (what) => {
    const { stderr } = await replay.finish();
    throw new Error(`${problem.name} / ${policy.label}: ${what}\n${stderr}`);
  };
  const ready = await replay.request({
    type: "init",
    protocol: 1,
    num_actions: problem.k,
    seed: ENGINE_SEED,
    task: problem.name,
    options: policy.options,
  });
  if (ready.type !== "ready") await fail(JSON.stringify(ready));
  const rewards = new Array(problem.T);
  for (let t = 0; t < problem.T; t++) {
    const round = problem.stream[t];
    const actions = Array.from({ length: problem.k }, (_, a) => (round.z === null ? {} : named(round.z[a], "z")));
    const reply = await replay.request({ type: "predict", t, shared: named(round.x, "x"), actions });
    if (reply.type === "error") await fail(JSON.stringify(reply));
    const r = round.r[reply.action];
    rewards[t] = r;
    replay.send({ type: "learn", t, action: reply.action, probability: reply.probability, reward: r });
  }
  const bye = await replay.request({ type: "end" });
  const { code } = await replay.finish();
  if (bye.type !== "bye" || code !== 0) await fail(`end: ${JSON.stringify(bye)}, exit ${code}`);
  return { name: ready.name, ...summarize(rewards), seconds: (performance.now() - started) / 1000 };
}

/** Run async jobs with at most `limit` at once, keeping their order. */
async function pool(jobs, limit) {
  const results = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

// ---------------------------------------------------------------- policies

// The default is whatever the engine ships ({}): LinUCB, alpha 0.5, 64
// slots, normalized features, a floor of 0.001. The other rows are the
// alternatives it has to beat.
const POLICIES = [
  { label: "linucb a=0.5 (default)", options: {} },
  { label: "thompson s=0.25", options: { policy: { type: "thompson" } } },
  { label: "linucb a=1", options: { policy: { type: "linucb", alpha: 1 } } },
  { label: "egreedy 0.1", options: { policy: { type: "egreedy", epsilon: 0.1 } } },
  { label: "greedy", options: { policy: { type: "greedy" } } },
];

// Further candidates: a smaller UCB bonus, other Thompson scales, more
// draws, and other hash tables: the default 2^7 = 128 slots is the widest
// that keeps the full covariance; 64 (the default before 2026-12-07) makes
// features collide more, as with interactions.
const TUNING = [
  { label: "linucb a=0.25", options: { policy: { type: "linucb", alpha: 0.25 } } },
  { label: "thompson s=1", options: { policy: { type: "thompson", scale: 1 } } },
  { label: "thompson s=0.5", options: { policy: { type: "thompson", scale: 0.5 } } },
  { label: "thompson n=64", options: { policy: { type: "thompson", samples: 64 } } },
  { label: "linucb bits=6 (old)", options: { bits: 6 } },
  { label: "thompson bits=6", options: { bits: 6, policy: { type: "thompson" } } },
  // The defaults before 2026-12-06 (64 slots, raw feature values, a floor of
  // 0.01 per variant), and 256 slots with a diagonal covariance.
  { label: "linucb raw minP=0.01 (older)", options: { bits: 6, normalize: false, policy: { type: "linucb", minProbability: 0.01 } } },
  { label: "linucb bits=8", options: { bits: 8 } },
  // Two slots per feature (`features.slotsPerFeature: 2`): what breast_cancer's dense numbers want.
  { label: "linucb 2 slots/feature", options: { slotsPerFeature: 2 } },
  { label: "thompson 2 slots/feature", options: { slotsPerFeature: 2, policy: { type: "thompson" } } },
];

// ---------------------------------------------------------------- report

const REFS = ["uniform", "full-info", "oracle"];
const DEFAULT_LABEL = POLICIES[0].label;

/**
 * Per problem, rank the given policies by mean reward (1 = best, ties share
 * the average rank: configurations that differ only in unused hash width tie
 * exactly); returns each label's mean rank over problems.
 */
function meanRanks(problems, labels, results) {
  const ranks = Object.fromEntries(labels.map((l) => [l, 0]));
  for (const p of problems) {
    const score = (l) => results[p.name][l].mean;
    for (const l of labels) {
      const better = labels.filter((o) => score(o) > score(l)).length;
      const tied = labels.filter((o) => score(o) === score(l)).length;
      ranks[l] += (1 + better + (tied - 1) / 2) / problems.length;
    }
  }
  return ranks;
}

/**
 * Mean over problems of (label - default) reward per round, with its standard
 * error. Both ran on the same stream, so the paired difference cancels the
 * stream's own noise; rounds are treated as independent (an approximation:
 * a learner's rounds are correlated through its model).
 */
function versusDefault(problems, results, label) {
  let mean = 0;
  let variance = 0;
  for (const p of problems) {
    const a = results[p.name][label].rewards;
    const b = results[p.name][DEFAULT_LABEL].rewards;
    const diff = a.map((x, t) => x - b[t]);
    const m = average(diff);
    const sd2 = diff.reduce((s, d) => s + (d - m) ** 2, 0) / (diff.length - 1);
    mean += m / problems.length;
    variance += sd2 / diff.length / problems.length ** 2;
  }
  return { mean, se: Math.sqrt(variance) };
}

const meanOf = (problems, results, label, field = "mean") => average(problems.map((p) => results[p.name][label][field]));

/** Normalised reward: 0 = uniform, 1 = oracle, averaged over problems (they differ in reward scale). */
const normOf = (problems, results, label, field) =>
  average(problems.map((p) => {
    const r = results[p.name];
    return (r[label][field] - r.uniform[field]) / (r.oracle[field] - r.uniform[field]);
  }));

/** One table: a row per policy, a column per problem, then mean, norm and (for policies) rank and Δ vs default. */
function printTable(title, problems, rows, results, field, ranks) {
  const width = Math.max(...rows.map((r) => r.length)) + 2;
  const cols = [...problems.map((p) => p.name), "mean", "norm"];
  const extra = ranks ? "   rank   Δ default ±2se" : "";
  const head = "policy".padEnd(width) + cols.map((c) => c.padStart(11)).join("") + extra;
  console.log(`\n${title}\n${head}\n${"-".repeat(head.length)}`);
  for (const label of rows) {
    const vals = problems.map((p) => results[p.name][label][field]);
    const nums = [...vals, average(vals), normOf(problems, results, label, field)];
    let line = label.padEnd(width) + nums.map((v) => v.toFixed(3).padStart(11)).join("");
    if (ranks && label in ranks) {
      const d = versusDefault(problems, results, label);
      const delta = label === DEFAULT_LABEL ? "" : `${d.mean >= 0 ? "+" : ""}${d.mean.toFixed(3)} ±${(2 * d.se).toFixed(3)}`;
      line += ranks[label].toFixed(1).padStart(7) + delta.padStart(18);
    }
    console.log(line);
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Results without the per-round rewards, for the JSON file. */
function slim(results) {
  return Object.fromEntries(
    Object.entries(results).map(([problem, rows]) => [
      problem,
      Object.fromEntries(Object.entries(rows).map(([label, { rewards, ...rest }]) => [label, rest])),
    ]),
  );
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const problems = makeProblems(args.rounds);
  const results = Object.fromEntries(problems.map((p) => [p.name, references(p)]));
  console.log(`streams and references: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  for (const p of problems) console.log(`  ${p.name.padEnd(11)} T=${p.T}  ${p.describe}`);

  const policies = args.tuning ? [...POLICIES, ...TUNING] : POLICIES;
  const jobs = problems.flatMap((p) =>
    policies.map((pol) => async () => {
      const r = await runPolicy(p, pol);
      console.error(`  ${p.name.padEnd(11)} ${pol.label.padEnd(24)} ${r.mean.toFixed(3)}  ${r.seconds.toFixed(1)} s`);
      return [p.name, pol.label, r];
    }),
  );
  const t1 = performance.now();
  console.error(`running ${jobs.length} driver sessions, ${args.jobs} at a time`);
  for (const [name, label, r] of await pool(jobs, args.jobs)) results[name][label] = r;
  const runSeconds = (performance.now() - t1) / 1000;

  const core = POLICIES.map((p) => p.label);
  const all = policies.map((p) => p.label);
  const coreRanks = meanRanks(problems, core, results);
  printTable(
    `Average reward, all rounds (rank: mean rank among the ${core.length} policies; norm: 0 = uniform, 1 = oracle)`,
    problems, [...REFS, ...core], results, "mean", coreRanks,
  );
  printTable(`Average reward, last ${LAST} rounds`, problems, [...REFS, ...core], results, "last");
  const allRanks = meanRanks(problems, all, results);
  if (args.tuning) {
    printTable(`Hyperparameter candidates, all rounds (rank among all ${all.length})`, problems, all, results, "mean", allRanks);
    printTable(`Hyperparameter candidates, last ${LAST} rounds`, problems, all, results, "last");
  }

  const best = (labels) => [...labels].sort((a, b) => meanOf(problems, results, b) - meanOf(problems, results, a))[0];
  const describe = (label, ranks) =>
    `${label}: mean ${meanOf(problems, results, label).toFixed(3)}, last-${LAST} ${meanOf(problems, results, label, "last").toFixed(3)}, mean rank ${ranks[label].toFixed(1)}`;
  const winner = best(core);
  console.log(`\nWinner of the ${core.length} policies by mean reward over problems: ${describe(winner, coreRanks)}`);
  console.log(`Default policy: ${describe(DEFAULT_LABEL, coreRanks)}${winner === DEFAULT_LABEL ? " (the default wins)" : " (the default does NOT win)"}`);
  const overall = best(all);
  if (args.tuning) console.log(`Best of all ${all.length} candidates: ${describe(overall, allRanks)}`);

  const sessionSeconds = problems.flatMap((p) => policies.map((pol) => results[p.name][pol.label].seconds));
  const rounds = problems.reduce((s, p) => s + p.T, 0) * policies.length;
  console.log(
    `Timing: ${jobs.length} sessions, ${rounds} rounds in ${runSeconds.toFixed(1)} s wall (${args.jobs} at a time); ` +
      `per session median ${median(sessionSeconds).toFixed(2)} s, ` +
      `${((1e6 * sessionSeconds.reduce((s, x) => s + x, 0)) / rounds).toFixed(0)} µs per round incl. the pipe; ` +
      `total ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  const out = {
    engineSeed: ENGINE_SEED,
    lastWindow: LAST,
    problems: problems.map((p) => ({ name: p.name, seed: p.seed, rounds: p.T, k: p.k, describe: p.describe })),
    policies: policies.map((p) => ({ label: p.label, options: p.options })),
    results: slim(results),
    meanRank: allRanks,
    versusDefault: Object.fromEntries(all.map((l) => [l, versusDefault(problems, results, l)])),
    winner,
    best: overall,
    seconds: (performance.now() - t0) / 1000,
  };
  mkdirSync(`${ROOT}/.artifacts`, { recursive: true });
  writeFileSync(`${ROOT}/.artifacts/eval-quality.json`, `${JSON.stringify(out, null, 2)}\n`);
  console.log("wrote .artifacts/eval-quality.json");
}

main().catch((e) => {
  console.error(e.stack ?? e);
  process.exit(1);
});
