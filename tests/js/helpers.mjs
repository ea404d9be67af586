// Shared by the JS test files (not a test file itself).
import assert from "node:assert/strict";

/** Assert `fn` throws a real Error (not a string) with the given code; returns it. */
export function throwsCode(fn, code) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected an error with code ${code}`);
  assert.equal(typeof caught, "object", "thrown value is an object, not a string");
  assert.ok(caught instanceof Error, "thrown value is an Error");
  assert.equal(caught.name, "InsituError");
  assert.equal(caught.code, code, caught.message);
  return caught;
}
