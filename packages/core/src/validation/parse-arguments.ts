import { GatewayError } from "../errors/gateway-error.js";
import { parseInput } from "./parse-input.js";

/**
 * Validation for the small arguments the contracts declare no object schema for: a bare id, a
 * lookup object such as `{ userId, keyId }`, a flag. Values still go through core's own schemas
 * and parseInput; these helpers only add what parseInput cannot know for a bare value, the name
 * of the field at fault, so every 400 names its `param` as the contracts require. Every store
 * implementation uses them, so all stores name the field at fault the same way.
 */

type CoreSchema = Parameters<typeof parseInput>[0];

/**
 * Strings each schema has already accepted unchanged, so the ids every request repeats (its user,
 * key, provider, owner) are checked once, not on every store call: zod costs a few microseconds a
 * field, and a request makes several such calls. Only a string that the schema returned as it was
 * is remembered (a string is immutable, so the verdict cannot go stale), and each set is bounded.
 */
const acceptedStrings = new WeakMap<CoreSchema, Set<string>>();
const acceptedStringsLimit = 4_096;

/** Parses one argument or field with a core schema; the 400 names `param` (prefixed to nested fields). */
export function parseField<Schema extends CoreSchema>(
  schema: Schema,
  value: unknown,
  param: string,
  what: string,
): ReturnType<typeof parseInput<Schema>> {
  const accepted = typeof value === "string" ? acceptedStrings.get(schema) : undefined;
  if (accepted?.has(value as string) === true) return value as ReturnType<typeof parseInput<Schema>>;
  try {
    const parsed = parseInput(schema, value, `${what} '${param}'`);
    if (typeof value === "string" && parsed === value) rememberAccepted(schema, accepted, value);
    return parsed;
  } catch (error) {
    if (!GatewayError.is(error) || error.code !== "invalid_request") throw error;
    const nested = error.param === null ? param : `${param}.${error.param}`;
    throw new GatewayError("invalid_request", error.message, { param: nested, cause: error.cause });
  }
}

/** Whether a core schema accepts `value` as it is: `safeParse`, remembered for strings like `parseField`. */
export function acceptsUnchanged(schema: CoreSchema, value: string): boolean {
  const accepted = acceptedStrings.get(schema);
  if (accepted?.has(value) === true) return true;
  const result = schema.safeParse(value);
  if (!result.success || result.data !== value) return false;
  rememberAccepted(schema, accepted, value);
  return true;
}

function rememberAccepted(schema: CoreSchema, known: Set<string> | undefined, value: string): void {
  let accepted = known;
  if (accepted === undefined) {
    accepted = new Set();
    acceptedStrings.set(schema, accepted);
  }
  // Forgetting everything at the bound is crude but cheap, and the ids in use come back at once.
  if (accepted.size >= acceptedStringsLimit) accepted.clear();
  accepted.add(value);
}

/**
 * Checks that an argument is a plain object holding no keys but `allowed`, as the strict object
 * schemas of core do, and returns it for its fields to be parsed one by one.
 */
export function parseArgumentObject(value: unknown, allowed: readonly string[], what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new GatewayError("invalid_request", `Invalid ${what}: must be an object`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new GatewayError("invalid_request", `Invalid ${what}: '${key}' is not a known field`, { param: key });
    }
  }
  return value as Record<string, unknown>;
}

/** Any string, the empty one included (a search text, say). */
export function parseText(value: unknown, param: string, what: string): string {
  if (typeof value !== "string") {
    throw new GatewayError("invalid_request", `Invalid ${what}: '${param}' must be a string`, { param });
  }
  return value;
}

/** A true/false field. */
export function parseFlag(value: unknown, param: string, what: string): boolean {
  if (typeof value !== "boolean") {
    throw new GatewayError("invalid_request", `Invalid ${what}: '${param}' must be true or false`, { param });
  }
  return value;
}

/** One of a core constant list of names (`roles`, say). */
export function parseChoice<Choice extends string>(
  choices: readonly Choice[],
  value: unknown,
  param: string,
  what: string,
): Choice {
  if (typeof value !== "string" || !(choices as readonly string[]).includes(value)) {
    const expected = choices.map((choice) => `'${choice}'`).join(", ");
    throw new GatewayError("invalid_request", `Invalid ${what}: '${param}' must be one of ${expected}`, { param });
  }
  return value as Choice;
}

/** A non-negative whole number: an epoch-ms time or a version counter. */
export function parseWholeNumber(value: unknown, param: string, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new GatewayError("invalid_request", `Invalid ${what}: '${param}' must be a non-negative whole number`, {
      param,
    });
  }
  return value;
}
