// The package's two JavaScript files: index.js (everything up to the first
// decisions, and the fallback site) and full.js (the full engine's control
// plane, imported with insitu_full.wasm after the first paint, or by init()).
// A page must decide without full.js, and a full.js that cannot be loaded
// (missing, or failing as it runs) must cost the page view its learning only:
// decisions go on, site.ready resolves, flush() resolves without writing,
// onError hears it once, and storage stays byte-identical.
// Each case runs a copy of pkg/ in a temporary directory, imported fresh.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { MemoryStorage, PKG_URL, WASM, WASM_FULL } from "./helpers.mjs";

const T0 = 1_700_000_050_000;
const SLOT = { variants: ["a", "b", "c"], features: { allow: ["page"] }, seed: 5 };
const HERO = { key: "hero", variants: ["x", "y"] };

/** A fresh copy of the package; `full` is full.js's text (null: no full.js). */
async function packageWith(full) {
  const dir = mkdtempSync(join(tmpdir(), "insitu-lazy-"));
  for (const f of ["index.js", "insitu_bg.wasm", "insitu_full.wasm"]) copyFileSync(new URL(f, PKG_URL), join(dir, f));
  if (full !== null) writeFileSync(join(dir, "full.js"), full);
  const pkg = await import(pathToFileURL(join(dir, "index.js")).href);
  return { pkg, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const realFull = readFileSync(new URL("full.js", PKG_URL), "utf8");

/** Assert `fn` throws an InsituError (of the copy's own class: not helpers' `throwsCode`) with `code`. */
function throwsCode(fn, code) {
  assert.throws(fn, (e) => e instanceof Error && e.name === "InsituError" && e.code === code);
}

test("index.js imports nothing before its first decision; full.js is imported only where it is needed", () => {
  const entry = readFileSync(new URL("index.js", PKG_URL), "utf8");
  // Minified ES module: a static import would be `import{...}from"..."`, `import * as`, or `import"..."`.
  assert.doesNotMatch(entry, /(^|[;}\s])import\s*([{*"']|[\w$]+\s*,?\s*(\{|from))/, "no static import in index.js");
  assert.match(entry, /import\(\s*["']\.\/full\.js["']\s*\)/, "full.js is a dynamic import");
  assert.doesNotMatch(realFull, /(^|[;}\s])import\s*([{*"']|[\w$]+\s*,?\s*(\{|from))/, "full.js imports nothing either");
});

for (const [what, full] of [
  ["missing", null],
  ["throwing as it runs", 'throw new Error("broken chunk");'],
]) {
  test(`full.js ${what}: the page decides, loses nothing stored, and says why once`, async () => {
    const { pkg: good, done: doneGood } = await packageWith(realFull);
    const { pkg, done } = await packageWith(full);
    try {
      // An earlier page view stored learning, a waiting decision and experiment state.
      const storage = new MemoryStorage();
      const earlier = await good.load({ storage, consent: "personalization", unit: "u", now: () => T0, flushDelayMs: 60_000, wasm: WASM, wasmFull: WASM_FULL });
      await earlier.ready;
      const s = earlier.slot("hero", SLOT);
      for (let i = 0; i < 6; i++) s.reward({ decisionId: s.rank({ context: { page: { n: i } } }).decisionId, reward: 1 });
      earlier.experiments([HERO]);
      const assigned = earlier.run("hero").variant;
      assert.equal((await earlier.flush()).written, true);
      earlier.close();
      const before = new Map(storage.map);

      const errors = [];
      const site = await pkg.load({
        storage, consent: "personalization", unit: "u", now: () => T0 + 1000, flushDelayMs: 0, wasm: WASM, wasmFull: WASM_FULL,
        onError: (e) => errors.push(e),
      });
      assert.equal(site.fallback, null, "the first-decision module runs without full.js");
      const hero = site.slot("hero", SLOT);
      const d = hero.rank({ context: site.context({ page: { n: 1 } }) });
      assert.equal(d.fallback, false, d.error?.message);
      hero.reward({ decisionId: d.decisionId, reward: 1 });
      site.track({ type: "view" });
      site.experiments([HERO]);
      assert.equal(site.run("hero").variant, assigned, "the stored assignment");
      await site.ready; // resolves although the control plane of the full engine failed
      assert.deepEqual(errors.map((e) => e.code), ["WASM_UNAVAILABLE"], "reported once");
      assert.match(errors[0].message, /full engine/);
      assert.equal(hero.explain(), null, "no explanation without the full engine");
      const after = hero.rank({ context: { page: { n: 2 } } });
      assert.equal(after.fallback, false, "still deciding");
      throwsCode(() => hero.reward({ decisionId: d.decisionId, reward: 1 }), "DUPLICATE_REWARD");
      hero.reward({ decisionId: after.decisionId, reward: 0 });
      // Stored state would have opened the site on the full engine: without it,
      // the first-decision module decides from the priors; what is stored waits.
      assert.equal(hero.stats().variants.reduce((n, v) => n + v.updates, 0), 0, "decides from the priors");
      const r = await site.flush();
      assert.deepEqual([r.written, r.reason, r.error?.code], [false, "learning-unavailable", "WASM_UNAVAILABLE"]);
      const a = site.audit();
      assert.ok(a.history.some((h) => h.event === "handover-failed"));
      site.close();
      await new Promise((ok) => setTimeout(ok, 20));
      assert.deepEqual(storage.map, before, "storage is byte-identical");

      // init() says why; open() and new Insitu() keep saying it is not initialized.
      await assert.rejects(pkg.default(WASM_FULL));
      throwsCode(() => pkg.open({ storage: null }), "WASM_UNAVAILABLE");
      throwsCode(() => new pkg.Insitu({ variants: ["a", "b"] }), "WASM_UNAVAILABLE");

      // Without WebAssembly the fallback site needs no full.js either.
      const real = WebAssembly.instantiate;
      WebAssembly.instantiate = () => Promise.reject(new WebAssembly.CompileError("blocked"));
      let fallback;
      try {
        fallback = await pkg.load({ storage, consent: "personalization", wasm: WASM, wasmFull: WASM_FULL, onFallback() {} });
      } finally {
        WebAssembly.instantiate = real;
      }
      assert.equal(fallback.fallback.code, "WASM_UNAVAILABLE");
      assert.equal(fallback.slot("hero", { ...SLOT, fallback: "c" }).rank().variant, "c");
      assert.deepEqual(storage.map, before, "the fallback site writes nothing");
      fallback.setConsent("none");
      assert.deepEqual([...storage.map.keys()], [], "lowering consent still deletes");
    } finally {
      done();
      doneGood();
    }
  });
}

test("with full.js, init() then open() and new Insitu() run on the full engine", async () => {
  const { pkg, done } = await packageWith(realFull);
  try {
    throwsCode(() => pkg.open({ storage: null }), "WASM_UNAVAILABLE");
    await pkg.default(WASM_FULL);
    const site = pkg.open({ storage: null });
    const slot = site.slot("hero", SLOT);
    const d = slot.rank({ context: { page: { n: 1 } } });
    slot.reward({ decisionId: d.decisionId, reward: 1 });
    assert.notEqual(slot.explain({ context: { page: { n: 1 } } }), null, "explain needs full.js: it is there");
    const one = new pkg.Insitu(SLOT);
    one.reward({ decisionId: one.rank().decisionId, reward: 1 });
    const synced = one.sync(null, { slot: "hero", now: T0 });
    assert.ok(synced.bytes instanceof Uint8Array && synced.bytes.length > 0);
    assert.equal(one.commit(), true);
    assert.equal(new pkg.Insitu(SLOT).restore(synced.bytes, { slot: "hero", now: T0 }).replayed, 0);
    site.close();
  } finally {
    done();
  }
});
