// A trap in the core (a panic: a bug) leaves the instance in an unknown state,
// so src/ts/core.ts marks it poisoned: the call that trapped and every later
// call fail with POISONED, and rank() serves the fallback. Uses the test-only
// full engine target/pkg-panic/insitu_full.wasm (cargo feature `test-panic`,
// built by scripts/test.sh), which exports `test_panic`, a function that
// panics. No public method calls it, so the tests reach it through the
// engine's own call path: `Core.call` from the control plane's tsc output
// (target/ts/, `npx tsc -p tsconfig.json`), and the engine a slot of the
// built package runs on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { init, Insitu, InsituError, isFallback, MemoryStorage, open, throwsCode, WASM_FULL } from "./helpers.mjs";

const PANIC = new URL("../../target/pkg-panic/insitu_full.wasm", import.meta.url);
const TS = new URL("../../target/ts/", import.meta.url);

function panicBuild() {
  assert.ok(existsSync(PANIC), `${PANIC.pathname} is missing: scripts/test.sh builds it (cargo --features full,test-panic)`);
  return readFileSync(PANIC);
}

/** The trap, through `core.call`: it fails with POISONED, caused by the RuntimeError of the trap. */
function trap(core) {
  let caught;
  try {
    core.call("test_panic", []);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof Error && caught.name === "InsituError", `a coded error, not ${caught}`);
  assert.equal(caught.code, "POISONED");
  assert.ok(caught.cause instanceof WebAssembly.RuntimeError, "the trap is kept as the cause");
  return caught;
}

test("Core: a trap poisons the instance, and every later call fails with POISONED", async () => {
  assert.ok(existsSync(new URL("core.js", TS)), "target/ts/ is missing: run `npx tsc -p tsconfig.json`");
  const { Core, instantiate } = await import(new URL("core.js", TS).href);
  const { Hasher } = await import(new URL("features.js", TS).href);
  const { Learner, Prepared } = await import(new URL("slot.js", TS).href);
  const core = new Core(await instantiate(panicBuild()), true);
  assert.equal(core.has("test_panic"), true, "the test build exports test_panic");
  const slot = new Learner(core, new Prepared({ variants: ["a", "b"], fallback: "b", seed: 1 }, new Hasher()), () => 0);
  const d = slot.rank({});
  assert.equal(d.fallback, false, "decides before the trap");
  const poisoned = trap(core);
  assert.equal(core.poisoned, poisoned);
  // Every later call fails fast with the same error, without running the instance.
  for (const [name, args] of [["test_panic", []], ["io", [1]], ["stats", [slot.h]], ["no_such_export", []]]) {
    assert.throws(() => core.call(name, args), (e) => e === poisoned, name);
  }
  const r = slot.rank({});
  assert.equal(r.fallback, true);
  assert.equal(r.variant, "b");
  assert.equal(r.error.code, "POISONED");
  assert.throws(() => slot.reward({ decisionId: d.decisionId, reward: 1 }), (e) => e.code === "POISONED");
  assert.throws(() => new Learner(core, new Prepared({ variants: ["a", "b"] }, new Hasher()), () => 0), (e) => e.code === "POISONED");
});

test("the built package: after a trap, slots serve their fallback, calls fail with POISONED, sites do not open", async () => {
  await init(panicBuild());
  try {
    const storage = new MemoryStorage();
    const errors = [];
    const site = open({ storage, consent: "personalization", flushDelayMs: 60_000, onError: (e) => errors.push(e) });
    const hero = site.slot("hero", { variants: ["a", "b"], fallback: "b" });
    const slot = new Insitu({ variants: ["a", "b"], fallback: "b", seed: 1 });
    const d = slot.rank();
    assert.equal(d.fallback, false, "decides before the trap");
    assert.equal(hero.rank().fallback, false);
    // The engine the slot runs on (src/ts/insitu.ts keeps its learner as `l`, src/ts/slot.ts its engine as `core`).
    const core = slot.l?.core;
    assert.equal(typeof core?.call, "function", "the slot's engine is reachable for the test");
    trap(core);

    isFallback(slot.rank(), "b", "POISONED");
    isFallback(hero.rank({ context: { page: { x: 1 } } }), "b", "POISONED");
    throwsCode(() => slot.reward({ decisionId: d.decisionId, reward: 1 }), "POISONED");
    throwsCode(() => slot.stats(), "POISONED");
    throwsCode(() => slot.learn({ variant: "a", reward: 1 }), "POISONED");
    throwsCode(() => new Insitu({ variants: ["a", "b"] }), "POISONED");
    throwsCode(() => open({ storage: null }), "POISONED");
    throwsCode(() => site.slot("side", { variants: ["a", "b"] }), "POISONED");
    // The site still answers what needs no engine, and never rejects.
    const flushed = await site.flush();
    assert.equal(flushed.written, false);
    assert.ok(flushed.error instanceof InsituError);
    assert.equal(flushed.error.code, "POISONED");
    assert.deepEqual(errors.map((e) => e.code), ["POISONED"], "reported");
    assert.equal(storage.getItem("insitu"), null, "nothing written from a corrupt instance");
    assert.equal(site.audit().network, "none");
    site.close();
  } finally {
    // A fresh instance is a fresh engine.
    await init(WASM_FULL);
  }
  assert.equal(new Insitu({ variants: ["a", "b"] }).rank().fallback, false);
});
