import type { z } from "zod";
import { GatewayError } from "../errors/gateway-error.js";

/**
 * Validates a value that crossed a trust boundary (a request body, a store call from host code)
 * and returns the parsed value, or throws a 400 GatewayError naming the first offending field.
 */
export function parseInput<Schema extends z.ZodType>(schema: Schema, value: unknown, what = "input"): z.output<Schema> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  // An unknown key is reported at its parent's path; the key itself is the field at fault.
  const path = issue?.code === "unrecognized_keys" && issue.keys[0] !== undefined ? [...issue.path, issue.keys[0]] : issue?.path ?? [];
  const param = path.length > 0 ? formatPath(path) : null;
  const detail = issue?.message ?? "is invalid";
  const message = param ? `Invalid ${what}: '${param}' ${lowerFirst(detail)}` : `Invalid ${what}: ${lowerFirst(detail)}`;
  throw new GatewayError("invalid_request", message, { param, cause: result.error });
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

function lowerFirst(text: string): string {
  return text.length > 0 ? text[0]!.toLowerCase() + text.slice(1) : text;
}
