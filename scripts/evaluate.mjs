#!/usr/bin/env node
// Offline policy evaluation over exported logs: what `slot.evaluate()`
// computes on a device, over a file of logged decisions. Each line is one
// settled decision in the replay protocol's shape (scripts/replay.mjs), a
// predict and its learn in one object:
//
//   {"shared": {name: number}, "actions": [{name: number}, ...]?, "action": i, "probability": p, "reward": r}
//
// or, with --slot, a site's own shape: {"context": {namespace: {...}}, "actions"?,
// "variant": "id", "probability": p, "reward": r}. `probability` is what the
// logging policy served the variant with, in (0, 1]; `reward` is in [0, 1].
//
// The lines are learned in order by a slot running the package's own full
// engine, each scored before it is learned (progressive validation), so the
// `policy` and `greedy` rows are the insitu learner replayed on the log, and
// `served` is the policy that logged it.
//
// Usage:
//   node scripts/evaluate.mjs --actions K [--bits B] [--policy JSON] [--level L] [--json] < log.jsonl
//   node scripts/evaluate.mjs --slot slot-options.json [--level L] [--json] log.jsonl
//
// A bad line is reported on stderr with its number and error code, and
// skipped. Exit status: 0 with an evaluation, 1 for bad arguments, 2 when
// no line could be evaluated (NO_DATA).

import { createReadStream, readFileSync, realpathSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Insitu } from "../pkg/index.js";
// Importing the replay driver instantiates the full engine, as the replay does.
import { engineOptions } from "./replay.mjs";

const USAGE = "usage: evaluate.mjs (--actions K [--bits B] [--policy JSON] | --slot FILE) [--level L] [--json] [LOG]";

/** The command line, checked; throws an Error with `code` "USAGE". */
export function parseArgs(argv) {
  const out = { actions: null, bits: null, policy: null, slot: null, level: 0.95, json: false, file: null };
  const usage = (msg) => Object.assign(new Error(`${msg}\n${USAGE}`), { code: "USAGE" });
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--actions") out.actions = Number(value());
    else if (a === "--bits") out.bits = Number(value());
    else if (a === "--policy") {
      const v = value();
      try {
        out.policy = JSON.parse(v);
      } catch {
        throw usage(`--policy should be JSON, but is ${v}`);
      }
    } else if (a === "--slot") out.slot = value();
    else if (a === "--level") out.level = Number(value());
    else if (a === "--json") out.json = true;
    else if (a.startsWith("--")) throw usage(`unknown option ${a}`);
    else if (out.file === null) out.file = a;
    else throw usage(`one log file only, but got ${out.file} and ${a}`);
  }
  if ((out.actions === null) === (out.slot === null)) throw usage("give --actions K or --slot FILE");
  if (out.actions !== null && !(Number.isSafeInteger(out.actions) && out.actions >= 1)) throw usage("--actions should be a positive integer");
  if (out.bits !== null && !Number.isSafeInteger(out.bits)) throw usage("--bits should be an integer");
  if (!(out.level >= 0.5 && out.level <= 0.999)) throw usage("--level should be a number in [0.5, 0.999]");
  return out;
}

/** The slot options: the site's (--slot), or the replay driver's for K actions. */
export function slotOptions(args) {
  if (args.slot !== null) return JSON.parse(readFileSync(args.slot, "utf8"));
  const o = {};
  if (args.bits !== null) o.bits = args.bits;
  if (args.policy !== null) o.policy = args.policy;
  return engineOptions(args.actions, 1, o);
}

/** One log line as `learn` options; throws an Error with a `code` for a bad line. */
export function learnOptions(line, slot, site) {
  const bad = (msg) => Object.assign(new Error(msg), { code: "BAD_LINE" });
  let m;
  try {
    m = JSON.parse(line);
  } catch (e) {
    throw Object.assign(new Error(`not JSON: ${e.message}`), { code: "BAD_JSON" });
  }
  if (typeof m !== "object" || m === null || Array.isArray(m)) throw bad("a line should be a JSON object");
  const o = { reward: m.reward, probability: m.probability };
  if (o.probability === undefined) throw bad("`probability` is required: what the logging policy served the variant with");
  if (site) {
    o.context = m.context;
    if (m.actions !== undefined) o.actions = m.actions;
    o.variant = m.variant ?? (Number.isInteger(m.action) ? slot.variants[m.action] : undefined);
  } else {
    o.context = { shared: m.shared ?? {} };
    if (m.actions !== undefined) {
      if (!Array.isArray(m.actions)) throw bad("`actions` should be an array");
      o.actions = m.actions.map((a) => ({ action: a }));
    }
    o.variant = Number.isInteger(m.action) ? slot.variants[m.action] : undefined;
  }
  if (o.variant === undefined) throw bad(`\`action\` should be a variant index in [0, ${slot.variants.length}), or \`variant\` an id`);
  return o;
}

const f = (x) => (x === null ? "—" : x.toFixed(4));
const interval = (i) => (i === null ? "—" : `${f(i.value)} [${f(i.low)}, ${f(i.high)}]`);

/** The evaluation as a table. */
export function table(e) {
  const rows = [
    `decisions ${e.decisions}, greedy matched the served variant on ${(100 * e.matchRate).toFixed(1)}%; ${Math.round(100 * e.level)}% intervals (${e.method})`,
    ["policy", "IPS", "SNIPS", "DR", "DR − served", "ESS"].join("\t"),
  ];
  for (const x of e.estimates) {
    const name = x.policy === "variant" ? `variant ${x.variant}` : x.policy;
    rows.push([name, interval(x.ips), interval(x.snips), interval(x.dr), interval(x.lift), x.ess.toFixed(1)].join("\t"));
  }
  return rows.join("\n");
}

export async function main(argv, { stdin = process.stdin, out = console.log, err = console.error } = {}) {
  let args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    err(e.message);
    return 1;
  }
  let slot;
  try {
    slot = new Insitu(slotOptions(args));
  } catch (e) {
    err(`evaluate: the slot options are refused (${e.code ?? "ERROR"}): ${e.message}`);
    return 1;
  }
  let n = 0;
  let skipped = 0;
  try {
    const input = args.file === null ? stdin : createReadStream(args.file);
    for await (const line of createInterface({ input, crlfDelay: Infinity })) {
      n++;
      if (line.trim() === "") continue;
      try {
        slot.learn(learnOptions(line, slot, args.slot !== null));
      } catch (e) {
        skipped++;
        err(`line ${n}: skipped (${e.code ?? "ERROR"}): ${e.message}`);
      }
    }
  } catch (e) {
    slot.close();
    err(`evaluate: cannot read ${args.file ?? "stdin"}: ${e.message}`);
    return 1;
  }
  try {
    const e = slot.evaluate({ level: args.level });
    out(args.json ? JSON.stringify({ ...e, skipped }) : table(e));
    return 0;
  } catch (e) {
    err(`evaluate: ${e.code ?? "ERROR"}: ${e.message}`);
    return e.code === "NO_DATA" ? 2 : 1;
  } finally {
    slot.close();
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
