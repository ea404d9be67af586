// The panic hook is installed when the module is instantiated, with no call
// from the user. Uses the test-only build in target/pkg-panic (feature
// `test-panic`, built by scripts/test.sh), which exports a function that panics.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

test("a panic is reported by the hook and poisons the instance", () => {
  const logged = [];
  const original = console.error;
  console.error = (...args) => logged.push(args.join(" "));
  let mod;
  try {
    mod = require("../../target/pkg-panic/insitu.js");
    const slot = new mod.Insitu({ variants: ["a", "b"], fallback: "b" });
    assert.throws(() => mod.__insituTestPanic(), (e) => e instanceof WebAssembly.RuntimeError);
    assert.ok(
      logged.some((l) => l.includes("insitu: internal error") && l.includes("deliberate test panic")),
      `the hook logged the panic: ${JSON.stringify(logged)}`,
    );
    // After a trap the instance is corrupt: every call now fails fast with a code.
    assert.throws(() => new mod.Insitu({ variants: ["a", "b"] }), (e) => e instanceof Error && e.code === "POISONED");
    const d = slot.rank({});
    assert.equal(d.fallback, true);
    assert.equal(d.variant, "b");
    assert.equal(d.error.code, "POISONED");
  } finally {
    console.error = original;
  }
});
