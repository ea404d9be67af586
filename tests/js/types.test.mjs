// The package's TypeScript declarations (pkg/index.d.ts, generated from
// src/ts/): a consumer (tests/js/types/consumer.ts)
// must type-check against the built pkg/ with tsc --strict, and each misuse
// it marks with @ts-expect-error must be rejected.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = fileURLToPath(new URL("../..", import.meta.url));

test("the TypeScript declarations type-check a strict consumer and reject misuse", () => {
  const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
  let out = "";
  try {
    execFileSync(process.execPath, [tsc, "-p", path.join(root, "tests/js/types/tsconfig.json")], {
      encoding: "utf8",
      stdio: "pipe",
    });
  } catch (e) {
    out = `${e.stdout}${e.stderr}`;
  }
  assert.equal(out, "", `tsc reported:\n${out}`);
});
