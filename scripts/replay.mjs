#!/usr/bin/env node
// Offline-evaluation driver: runs the built package (pkg/index.js on the full
// engine, pkg/insitu_full.wasm) behind a line protocol, so an evaluation harness can replay a bandit stream through
// exactly the code a site ships.
//
// One JSON object per line on stdin; each reply is one JSON line on stdout.
// Logs go to stderr only.
//
//   {"type":"init","protocol":1,"num_actions":K,"seed":S,"task":"...","options":{...}}
//       -> {"type":"ready","name":"insitu-<policy>"}
//     with options.catalogue (true or {"bits":n}) and "action_features":[{name:number},...]
//     (K maps, given once): a catalogue, one learner shared by the actions through them
//   {"type":"predict","t":T,"shared":{name:number},"actions":[{name:number},...]}
//       -> {"action":i,"probability":p,"pmf":[...]}
//     (a catalogue's predict gives no actions: its action features are the init's)
//   {"type":"learn","t":T,"action":i,"probability":p,"reward":r}
//       -> (no reply) learns from the latest predict's features
//   {"type":"end"}
//       -> {"type":"bye"}, then exit 0
//
// A bad line gets {"type":"error","code":"...","message":"..."} and the
// session goes on. Codes are the engine's InsituError codes when the engine
// raised the error, otherwise one of ERROR_CODES below.
//
// Usage: node scripts/replay.mjs < session.jsonl

import { createInterface } from "node:readline";
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import init, { Insitu } from "../pkg/index.js";

// `new Insitu()` runs on the full engine, instantiated once from its bytes.
await init(readFileSync(new URL("../pkg/insitu_full.wasm", import.meta.url)));

/** Codes of errors the driver itself detects (the engine's own codes pass through). */
export const ERROR_CODES = Object.freeze({
  BAD_JSON: "BAD_JSON", // the line is not JSON
  BAD_MESSAGE: "BAD_MESSAGE", // JSON, but not a message object, or a field has the wrong type
  UNKNOWN_MESSAGE: "UNKNOWN_MESSAGE", // `type` is not init / predict / learn / end
  UNSUPPORTED_PROTOCOL: "UNSUPPORTED_PROTOCOL", // init names a protocol other than 1
  INVALID_OPTION: "INVALID_OPTION", // a driver option is unknown or has the wrong type (same code as the engine's)
  NOT_INITIALIZED: "NOT_INITIALIZED", // predict or learn before a successful init
  NO_PREDICTION: "NO_PREDICTION", // learn without a (successful) predict to refer to
  BAD_FEATURE: "BAD_FEATURE", // a feature value is not a number
  BAD_ACTION: "BAD_ACTION", // learn's action is not an index in [0, K)
  INTERNAL: "INTERNAL", // anything unexpected; a bug in the driver
});

const PROTOCOL = 1;
// Keys `options` may hold. Anything else is an error rather than silently
// ignored, so a typo in an experiment config cannot run the defaults.
const DRIVER_OPTIONS = new Set(["policy", "bits", "normalize", "slotsPerFeature", "interactions", "noise", "priorVariance", "catalogue"]);
// Only used to refuse absurd sizes before building the variant list; the
// engine enforces the real limit (and names it in its error).
const MAX_ACTIONS_TO_TRY = 4096;

class ProtocolError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
  }
}

const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Check a feature map `{name: number}`. `null` passes through: it is what
 * JSON writers make of NaN, so the engine reports it as NON_FINITE_FEATURE,
 * like a number that overflowed to Infinity while parsing.
 */
function checkFeatures(value, field) {
  if (!isObject(value)) {
    throw new ProtocolError(ERROR_CODES.BAD_MESSAGE, `${field} should be an object of name: number, but is ${JSON.stringify(value)}`);
  }
  for (const [name, x] of Object.entries(value)) {
    if (typeof x !== "number" && x !== null) {
      throw new ProtocolError(ERROR_CODES.BAD_FEATURE, `${field}.${name} should be a number, but is ${JSON.stringify(x)}`);
    }
  }
  return value;
}

/**
 * Engine options from the init message's `options` (driver keys only; the engine validates values);
 * with `actionFeatures` (K feature maps), each variant's own features, once.
 */
export function engineOptions(numActions, seed, options, actionFeatures = null) {
  if (options === undefined || options === null) options = {};
  if (!isObject(options)) {
    throw new ProtocolError(ERROR_CODES.INVALID_OPTION, `options should be an object, but is ${JSON.stringify(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!DRIVER_OPTIONS.has(key)) {
      throw new ProtocolError(
        ERROR_CODES.INVALID_OPTION,
        `option \`${key}\` is not known; use ${[...DRIVER_OPTIONS].join(", ")}`,
      );
    }
  }
  const interactions = options.interactions ?? true;
  if (typeof interactions !== "boolean") {
    throw new ProtocolError(ERROR_CODES.INVALID_OPTION, `options.interactions should be true or false, but is ${JSON.stringify(interactions)}`);
  }
  const features = { allow: ["shared", "action"] };
  if (options.bits !== undefined) features.bits = options.bits;
  if (options.normalize !== undefined) features.normalize = options.normalize;
  if (options.slotsPerFeature !== undefined) features.slotsPerFeature = options.slotsPerFeature;
  // A catalogue crosses the context with its actions' features itself.
  if (interactions && options.catalogue === undefined) features.interactions = [["shared", "action"]];
  // Leave out what was not given, so the engine's own defaults apply.
  const variants = Array.from({ length: numActions }, (_, i) =>
    actionFeatures === null ? String(i) : { id: String(i), features: { action: actionFeatures[i] } });
  const out = { variants, features };
  for (const key of ["policy", "noise", "priorVariance", "catalogue"]) {
    if (options[key] !== undefined) out[key] = options[key];
  }
  if (seed !== undefined) out.seed = seed;
  return out;
}

/**
 * One protocol session over one engine instance. `handle` takes a parsed
 * message and returns the reply object, or null when the message has none.
 * Errors are thrown; `handleLine` turns them into error replies.
 */
export class Session {
  constructor({ log = () => {} } = {}) {
    this.log = log;
    this.slot = null;
    this.k = 0;
    this.catalogue = false;
    this.last = null; // { context, actions, decisionId, action, settled }
    // The engine's clock, advanced once per predict. Decisions expire after a
    // day of engine time, so the driver counts steps instead of reading the
    // wall clock (or trusting `t`): a replay must not depend on how fast it runs.
    this.clock = 0;
    this.ended = false;
  }

  /** Reply to one raw line: a reply object, or null for no reply (learn, blank line). */
  handleLine(line) {
    if (line.trim() === "") return null;
    let msg;
    try {
      msg = JSON.parse(line);
    } catch (e) {
      return errorReply(ERROR_CODES.BAD_JSON, `line is not JSON: ${e.message}`);
    }
    try {
      return this.handle(msg);
    } catch (e) {
      if (typeof e?.code === "string") return errorReply(e.code, e.message);
      this.log(`replay: internal error: ${e?.stack ?? e}`);
      return errorReply(ERROR_CODES.INTERNAL, String(e?.message ?? e));
    }
  }

  handle(msg) {
    if (!isObject(msg)) {
      throw new ProtocolError(ERROR_CODES.BAD_MESSAGE, `a message should be a JSON object, but is ${JSON.stringify(msg)}`);
    }
    switch (msg.type) {
      case "init":
        return this.init(msg);
      case "predict":
        return this.predict(msg);
      case "learn":
        this.learn(msg);
        return null;
      case "end":
        this.ended = true;
        this.reset();
        return { type: "bye" };
      default:
        throw new ProtocolError(ERROR_CODES.UNKNOWN_MESSAGE, `unknown message type ${JSON.stringify(msg.type)}`);
    }
  }

  reset() {
    this.slot?.close();
    this.slot = null;
    this.last = null;
  }

  init(msg) {
    // A failed init leaves the session uninitialized rather than running on
    // with the previous configuration.
    this.reset();
    if (msg.protocol !== undefined && msg.protocol !== PROTOCOL) {
      throw new ProtocolError(ERROR_CODES.UNSUPPORTED_PROTOCOL, `protocol ${JSON.stringify(msg.protocol)} is not supported; this driver speaks ${PROTOCOL}`);
    }
    const k = msg.num_actions;
    if (!Number.isSafeInteger(k) || k < 0 || k > MAX_ACTIONS_TO_TRY) {
      throw new ProtocolError(ERROR_CODES.BAD_MESSAGE, `num_actions should be a positive integer, but is ${JSON.stringify(k)}`);
    }
    let actionFeatures = null;
    if (msg.action_features !== undefined) {
      if (!Array.isArray(msg.action_features) || msg.action_features.length !== k) {
        throw new ProtocolError(ERROR_CODES.BAD_MESSAGE, `action_features should be an array of ${k} feature objects`);
      }
      actionFeatures = msg.action_features.map((a, i) => checkFeatures(a, `action_features[${i}]`));
    }
    const slot = new Insitu(engineOptions(k, msg.seed, msg.options, actionFeatures)); // throws InsituError on bad values
    this.slot = slot;
    this.k = k;
    this.catalogue = msg.options?.catalogue !== undefined && msg.options.catalogue !== false;
    this.clock = 0;
    const name = `insitu-${slot.policy}`;
    this.log(`replay: ${name}, K=${k}, seed=${msg.seed}, task=${msg.task ?? "-"}`);
    return { type: "ready", name };
  }

  predict(msg) {
    if (this.slot === null) throw new ProtocolError(ERROR_CODES.NOT_INITIALIZED, "predict before a successful init");
    // A failed predict must not leave an older one for the next learn to use.
    this.last = null;
    const shared = checkFeatures(msg.shared ?? {}, "shared");
    // A catalogue's actions are the init's: its predicts may give none (undefined, as if left out).
    const given = !(this.catalogue && msg.actions === undefined);
    if (given && !Array.isArray(msg.actions)) {
      throw new ProtocolError(ERROR_CODES.BAD_MESSAGE, `actions should be an array of ${this.k} feature objects, but is ${JSON.stringify(msg.actions)}`);
    }
    const actions = given ? msg.actions.map((a, i) => ({ action: checkFeatures(a, `actions[${i}]`) })) : undefined;
    const context = { shared };
    // A wrong number of actions is left to the engine (INVALID_CONTEXT).
    this.clock += 1;
    const d = this.slot.rank({ context, actions, now: this.clock });
    if (d.fallback) throw d.error; // rank never throws; its error carries the code
    this.last = { context, actions, decisionId: d.decisionId, action: d.index, settled: false };
    return { action: d.index, probability: d.probability, pmf: d.pmf };
  }

  learn(msg) {
    if (this.slot === null) throw new ProtocolError(ERROR_CODES.NOT_INITIALIZED, "learn before a successful init");
    const last = this.last;
    if (last === null) throw new ProtocolError(ERROR_CODES.NO_PREDICTION, "learn without a successful predict to refer to");
    const a = msg.action;
    if (!Number.isInteger(a) || a < 0 || a >= this.k) {
      throw new ProtocolError(ERROR_CODES.BAD_ACTION, `action should be an index in [0, ${this.k}), but is ${JSON.stringify(a)}`);
    }
    // The chosen action settles its decision (once); any other action, or a
    // repeat, is logged data for that variant. Engine errors (e.g.
    // INVALID_REWARD) leave the decision unsettled.
    if (a === last.action && !last.settled) {
      this.slot.reward({ decisionId: last.decisionId, reward: msg.reward, now: this.clock });
      last.settled = true;
    } else {
      this.slot.learn({ context: last.context, actions: last.actions, variant: String(a), reward: msg.reward });
    }
  }
}

function errorReply(code, message) {
  return { type: "error", code, message };
}

function main() {
  const session = new Session({ log: (s) => process.stderr.write(`${s}\n`) });
  // A reader that went away is not an error of ours: stop quietly.
  process.stdout.on("error", (e) => process.exit(e.code === "EPIPE" ? 0 : 1));
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  rl.on("line", (line) => {
    if (session.ended) return;
    const reply = session.handleLine(line);
    if (reply === null) return;
    // Writes to a pipe are synchronous in Node on Linux, so each reply is
    // flushed before the next line is read.
    process.stdout.write(`${JSON.stringify(reply)}\n`);
    if (session.ended) {
      rl.close();
      process.stdout.write("", () => process.exit(0));
    }
  });
  // EOF without `end`: nothing to say. Once the engine is freed nothing is
  // left on the event loop, so the process ends with code 0.
  rl.on("close", () => session.reset());
}

// Run as a program, not when imported by the tests.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) main();
