// Tests of the offline-evaluation driver scripts/replay.mjs: spawn it, speak
// its line protocol, check every reply. Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Session } from "../../scripts/replay.mjs";

const SCRIPT = fileURLToPath(new URL("../../scripts/replay.mjs", import.meta.url));
const TIMEOUT = { timeout: 15_000 };

/**
 * Start the driver. `request` sends one message and resolves with the next
 * stdout line (parsed); messages without replies are sent with `send`, and
 * the next `request` proves they produced none (replies would arrive out of turn).
 */
function startDriver() {
  const child = spawn(process.execPath, [SCRIPT], { stdio: ["pipe", "pipe", "pipe"] });
  const replies = [];
  const waiters = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    const reply = JSON.parse(line); // every stdout line must be JSON
    if (waiters.length > 0) waiters.shift()(reply);
    else replies.push(reply);
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const next = () => (replies.length > 0 ? Promise.resolve(replies.shift()) : new Promise((r) => waiters.push(r)));
  return {
    send(msg) {
      child.stdin.write(`${typeof msg === "string" ? msg : JSON.stringify(msg)}\n`);
    },
    request(msg) {
      this.send(msg);
      return next();
    },
    /** Close stdin and wait for the exit; returns { code, signal, unread } */
    async close() {
      child.stdin.end();
      const status = await exited;
      return { ...status, unread: replies.length, stderr };
    },
    exited,
  };
}

const K = 3;
const init = (extra = {}) => ({ type: "init", protocol: 1, num_actions: K, seed: 42, task: "test", options: {}, ...extra });
const predict = (t, x = t / 10) => ({
  type: "predict",
  t,
  shared: { x1: x, x2: -x, x3: 1 },
  actions: [{ a: 1 }, { b: 1, c: 0.5 }, {}],
});

/** A well-formed predict reply for K actions. */
function assertPrediction(reply, k = K) {
  assert.deepEqual(Object.keys(reply).sort(), ["action", "pmf", "probability"], JSON.stringify(reply));
  assert.ok(Number.isInteger(reply.action) && reply.action >= 0 && reply.action < k);
  assert.equal(reply.pmf.length, k);
  assert.ok(reply.pmf.every((p) => p >= 0 && p <= 1));
  assert.ok(Math.abs(reply.pmf.reduce((s, p) => s + p, 0) - 1) < 1e-9);
  assert.equal(reply.probability, reply.pmf[reply.action]);
  assert.ok(reply.probability > 0);
}

function assertError(reply, code) {
  assert.equal(reply.type, "error", JSON.stringify(reply));
  assert.equal(reply.code, code, reply.message);
  assert.equal(typeof reply.message, "string");
  assert.ok(reply.message.length > 0);
}

/** Run a fixed session (predicts and learns) and return every reply. */
async function scriptedRun(seed) {
  const d = startDriver();
  const out = [await d.request(init({ seed }))];
  for (let t = 0; t < 30; t++) {
    const p = await d.request(predict(t));
    out.push(p);
    d.send({ type: "learn", t, action: p.action, probability: p.probability, reward: (t + p.action) % 2 });
    if (t % 5 === 0) d.send({ type: "learn", t, action: (p.action + 1) % K, probability: 0.5, reward: 1 });
  }
  out.push(await d.request({ type: "end" }));
  const status = await d.close();
  assert.equal(status.code, 0);
  return out;
}

test("a scripted session: init, predicts, learns (chosen and not), end", TIMEOUT, async () => {
  const d = startDriver();
  assert.deepEqual(await d.request(init()), { type: "ready", name: "insitu-linucb" });
  for (let t = 0; t < 20; t++) {
    const p = await d.request(predict(t));
    assertPrediction(p);
    d.send({ type: "learn", t, action: p.action, probability: p.probability, reward: 1 });
    // Logged data for an action the driver did not choose, and a second learn for the same predict.
    d.send({ type: "learn", t, action: (p.action + 1) % K, probability: 0.2, reward: 0 });
    d.send({ type: "learn", t, action: p.action, probability: p.probability, reward: 0.5 });
  }
  assert.deepEqual(await d.request({ type: "end" }), { type: "bye" });
  const status = await d.close();
  assert.equal(status.code, 0);
  assert.equal(status.unread, 0, "learn messages get no reply");
});

test("learning a non-chosen action moves the model toward it", TIMEOUT, async () => {
  const d = startDriver();
  const greedy = { policy: { type: "greedy", minProbability: 0 } };
  assert.deepEqual(await d.request(init({ options: greedy })), { type: "ready", name: "insitu-greedy" });
  const p = await d.request(predict(1));
  assertPrediction(p);
  const other = (p.action + 1) % K;
  d.send({ type: "learn", t: 1, action: other, probability: 0, reward: 1 }); // learn(), not the decision
  d.send({ type: "learn", t: 1, action: p.action, probability: p.probability, reward: 0 }); // settles it
  d.send({ type: "learn", t: 1, action: other, probability: 0, reward: 1 }); // a second learn for one predict
  const q = await d.request(predict(2, 0.1)); // same features as the first predict
  assert.equal(q.action, other);
  assert.equal(q.probability, 1);
  assert.deepEqual(await d.request({ type: "end" }), { type: "bye" });
  assert.equal((await d.close()).code, 0);
});

test("the chosen action settles its decision exactly once; others go through learn()", () => {
  const session = new Session();
  session.handle(init());
  const p = session.handle(predict(1));
  const updates = () => session.slot.stats().variants.map((v) => v.updates);
  assert.equal(session.slot.stats().pending, 1);
  session.handle({ type: "learn", action: p.action, reward: 1 });
  assert.equal(session.slot.stats().pending, 0, "reward() settled the decision");
  session.handle({ type: "learn", action: p.action, reward: 1 }); // a repeat is logged data, not DUPLICATE_REWARD
  const other = (p.action + 1) % K;
  session.handle({ type: "learn", action: other, reward: 0 });
  const expected = [0, 0, 0];
  expected[p.action] += 2;
  expected[other] += 1;
  assert.deepEqual(updates(), expected);
  // An engine error (bad reward) leaves the decision unsettled.
  const q = session.handle(predict(2));
  assert.throws(() => session.handle({ type: "learn", action: q.action, reward: 2 }), { code: "INVALID_REWARD" });
  assert.equal(session.slot.stats().pending, 1);
  session.handle({ type: "end" });
});

test("a catalogue session: action features once at init, predicts without actions, learns through the shared learner", () => {
  const session = new Session();
  const features = [{ "c=a": 1 }, { "c=b": 1 }, { "c=a": 1, p: 0.5 }];
  const ready = session.handle({ type: "init", protocol: 1, num_actions: 3, seed: 1, options: { catalogue: true }, action_features: features });
  assert.equal(ready.type, "ready");
  const p = session.handle({ type: "predict", t: 1, shared: { "u=1": 1 } });
  // At the prior the three tie, whatever features describe them.
  for (const q of p.pmf) assert.ok(Math.abs(q - 1 / 3) < 1e-12, `${p.pmf}`);
  session.handle({ type: "learn", action: 2, reward: 1 });
  session.handle({ type: "learn", action: 2, reward: 1 });
  // The shared learner: both updates on its one entry.
  assert.equal(session.slot.stats().variants.reduce((n, v) => n + v.updates, 0), 2);
  const after = session.handle({ type: "predict", t: 2, shared: { "u=1": 1 } });
  assert.ok(after.pmf[2] > 0.9, `${after.pmf}`);
  // Per-call actions are refused for a catalogue, and a wrong number of action features at init.
  assert.throws(() => session.handle({ type: "predict", t: 3, shared: {}, actions: [{}, {}, {}] }), { code: "INVALID_CONTEXT" });
  assert.throws(() => session.handle({ type: "init", num_actions: 3, options: { catalogue: true }, action_features: [{}] }), { code: "BAD_MESSAGE" });
  assert.throws(() => session.handle({ type: "init", num_actions: 2, options: { catalogue: true } }), { code: "INVALID_OPTION" });
  session.handle({ type: "end" });
});

test("every error path gets an error reply and the session goes on", TIMEOUT, async () => {
  const d = startDriver();
  // Before init.
  assertError(await d.request(predict(0)), "NOT_INITIALIZED");
  assertError(await d.request({ type: "learn", action: 0, reward: 1 }), "NOT_INITIALIZED");
  // Malformed lines and messages.
  assertError(await d.request("{not json"), "BAD_JSON");
  assertError(await d.request("[1, 2]"), "BAD_MESSAGE");
  assertError(await d.request({ type: "reset" }), "UNKNOWN_MESSAGE");
  assertError(await d.request({ no: "type" }), "UNKNOWN_MESSAGE");
  // Bad init: the driver's checks, then the engine's (its InsituError code passes through).
  assertError(await d.request(init({ protocol: 2 })), "UNSUPPORTED_PROTOCOL");
  assertError(await d.request(init({ num_actions: "3" })), "BAD_MESSAGE");
  assertError(await d.request(init({ num_actions: 1 })), "INVALID_OPTION");
  assertError(await d.request(init({ num_actions: 65 })), "INVALID_OPTION");
  assertError(await d.request(init({ seed: -1 })), "INVALID_OPTION");
  assertError(await d.request(init({ options: { epsilon: 0.1 } })), "INVALID_OPTION");
  assertError(await d.request(init({ options: { interactions: "yes" } })), "INVALID_OPTION");
  assertError(await d.request(init({ options: { normalize: "yes" } })), "INVALID_OPTION");
  assertError(await d.request(init({ options: { bits: 40 } })), "INVALID_OPTION");
  assertError(await d.request(init({ options: { policy: { type: "ucb" } } })), "INVALID_OPTION");
  assertError(await d.request(init({ options: { noise: -1 } })), "INVALID_OPTION");
  assertError(await d.request(init({ options: [] })), "INVALID_OPTION");
  assertError(await d.request(predict(0)), "NOT_INITIALIZED"); // a failed init does not initialize

  assert.equal((await d.request(init())).type, "ready");
  assertError(await d.request({ type: "learn", action: 0, reward: 1 }), "NO_PREDICTION");
  // Bad predicts: wrong number of actions (the engine's check), bad features.
  const good = predict(1);
  assertError(await d.request({ ...good, actions: good.actions.slice(1) }), "INVALID_CONTEXT");
  assertError(await d.request({ ...good, actions: undefined }), "BAD_MESSAGE");
  assertError(await d.request('{"type":"predict","shared":{"x":1e999},"actions":[{},{},{}]}'), "NON_FINITE_FEATURE");
  assertError(await d.request({ ...good, shared: { x: null } }), "NON_FINITE_FEATURE");
  assertError(await d.request({ ...good, actions: [{}, { y: -1e999 }, {}] }), "NON_FINITE_FEATURE");
  assertError(await d.request({ ...good, shared: { x: "1" } }), "BAD_FEATURE");
  assertError(await d.request({ ...good, actions: [{}, 3, {}] }), "BAD_MESSAGE");
  // A failed predict leaves nothing for learn to refer to.
  assertError(await d.request({ type: "learn", action: 0, reward: 1 }), "NO_PREDICTION");

  const p = await d.request(good);
  assertPrediction(p);
  for (const action of [-1, K, 1.5, "0", null]) {
    assertError(await d.request({ type: "learn", action, reward: 1 }), "BAD_ACTION");
  }
  assertError(await d.request({ type: "learn", action: p.action, reward: 1.5 }), "INVALID_REWARD");
  assertError(await d.request({ type: "learn", action: (p.action + 1) % K, reward: -1 }), "INVALID_REWARD");
  d.send({ type: "learn", action: p.action, reward: 1 }); // still settles after the failed attempt
  assertPrediction(await d.request(predict(2)));
  assert.deepEqual(await d.request({ type: "end" }), { type: "bye" });
  const status = await d.close();
  assert.equal(status.code, 0);
  assert.equal(status.unread, 0);
});

test("EOF without end exits 0 quietly; lines after end are ignored", TIMEOUT, async () => {
  let d = startDriver();
  assert.equal((await d.request(init())).type, "ready");
  assertPrediction(await d.request(predict(0)));
  let status = await d.close();
  assert.equal(status.code, 0);
  assert.equal(status.unread, 0);

  d = startDriver();
  d.send(init());
  d.send({ type: "end" });
  d.send(predict(0));
  status = await d.close();
  assert.equal(status.code, 0);
  assert.equal(status.unread, 2, "ready and bye, nothing for the predict after end");
});

test("the same seed gives identical predictions across runs; another seed does not", TIMEOUT, async () => {
  const [a, b, c] = await Promise.all([scriptedRun(7), scriptedRun(7), scriptedRun(8)]);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test("options select the policy and hyperparameters", TIMEOUT, async () => {
  const d = startDriver();
  const cases = [
    [{ policy: { type: "linucb", alpha: 0.5 } }, "insitu-linucb"],
    [{ policy: { type: "egreedy", epsilon: 0.1 }, bits: 7, interactions: false }, "insitu-egreedy"],
    [{ policy: { type: "thompson", scale: 0.5, samples: 64 }, noise: 0.5, priorVariance: 2 }, "insitu-thompson"],
    [{ policy: { type: "greedy" } }, "insitu-greedy"],
    [{ bits: 6, normalize: false, policy: { minProbability: 0.01 } }, "insitu-linucb"],
  ];
  for (const [options, name] of cases) {
    assert.deepEqual(await d.request(init({ options })), { type: "ready", name });
    assertPrediction(await d.request(predict(0)));
  }
  assert.deepEqual(await d.request({ type: "end" }), { type: "bye" });
  assert.equal((await d.close()).code, 0);
});
