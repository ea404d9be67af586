// The control plane's one error type, and safe descriptions of bad values.
//
// Every error the package throws or reports is an `InsituError`: a real
// `Error` whose `code` is one of `CODES` (the list in schema/errors.json,
// which the Rust core and the README are tested against too). Messages name
// the offending field and describe the offending value without ever running
// code of the caller's (no `String(value)`, which throws for Symbols and
// null-prototype objects and runs getters and `toString`).

/** Every error code, in the order of schema/errors.json. */
export const CODES = [
  "INVALID_OPTION",
  "INVALID_MODEL",
  "INVALID_CONTEXT",
  "NON_FINITE_FEATURE",
  "STRING_TOO_LONG",
  "TOO_MANY_FEATURES",
  "INVALID_REWARD",
  "UNKNOWN_DECISION",
  "DECISION_EXPIRED",
  "DUPLICATE_REWARD",
  "NOT_ACTIVATED",
  "UNKNOWN_VARIANT",
  "NUMERICAL_ERROR",
  "SNAPSHOT_FOREIGN",
  "SNAPSHOT_CORRUPT",
  "SNAPSHOT_VERSION",
  "SNAPSHOT_TOO_LARGE",
  "INVALID_EVENT",
  "UNKNOWN_EVENT_TYPE",
  "INVALID_EXPERIMENT",
  "UNKNOWN_EXPERIMENT",
  "REPORT_REFUSED",
  "NO_DATA",
  "STORAGE_QUOTA",
  "STORAGE_UNAVAILABLE",
  "POISONED",
  "WASM_UNAVAILABLE",
] as const;

/** A stable, machine-readable error code. */
export type ErrorCode = (typeof CODES)[number];

/** What every error of this package is: `name` is `"InsituError"`, `code` is stable. */
export class InsituError extends Error {
  /** The stable code; switch on this, not on the message. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, cause?: unknown) {
    super(message);
    this.name = "InsituError";
    this.code = code;
    if (cause !== undefined) this.cause = cause;
  }
}

/** An `InsituError` with `code` and `message`. */
export const fail = (code: ErrorCode, message: string, cause?: unknown): InsituError =>
  new InsituError(code, message, cause);

/** `INVALID_OPTION` naming the option: "option `field` why". */
export const option = (field: string, why: string): InsituError =>
  fail("INVALID_OPTION", `option \`${field}\` ${why}`);

/** Longest preview of a string in a message, in UTF-16 units. */
const PREVIEW = 48;

/**
 * A short, safe description of any value for an error message: numbers and
 * short strings as themselves (strings in backticks), everything else by its
 * kind. Never throws and never runs the caller's code (getters, Proxy traps,
 * `toString`, `Symbol.toPrimitive`).
 */
export function describe(value: unknown): string {
  try {
    switch (typeof value) {
      case "number":
      case "boolean":
      case "undefined":
        return Object.is(value, -0) ? "0" : String(value);
      case "bigint":
        return `${String(value)}n (a BigInt)`;
      case "string":
        return value.length > PREVIEW ? `\`${value.slice(0, PREVIEW)}…\` (${value.length} characters)` : `\`${value}\``;
      case "symbol":
        return "a Symbol";
      case "function":
        return "a function";
      default:
        if (value === null) return "null";
        // Array.isArray sees through a Proxy without running a trap.
        if (Array.isArray(value)) return "an array";
        return "an object";
    }
  } catch {
    return "a value";
  }
}

/** A thrown value as an `InsituError`: itself when it is one, else `code` with what it says. */
export function coded(e: unknown, code: ErrorCode): InsituError {
  if (e instanceof InsituError) return e;
  let what = "unknown error";
  try {
    if (e instanceof Error) what = `${e.name}: ${e.message}`;
    else what = describe(e);
  } catch {
    // A hostile error object: keep the generic text.
  }
  return fail(code, what, e);
}
