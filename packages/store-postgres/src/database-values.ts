import { GatewayError } from "@sluice/core";

/**
 * Reads an integer the database returned. node-postgres hands int8 (bigint) and numeric values
 * (what SUM over int8 yields) to JavaScript as strings, so that no precision is lost silently;
 * this turns them into numbers and refuses any that a double cannot hold exactly, instead of
 * rounding money.
 */
export function readInteger(value: unknown, column: string): number {
  if (typeof value === "number") {
    if (Number.isSafeInteger(value)) return value;
  } else if (typeof value === "string" && /^-?\d+$/.test(value)) {
    const parsed = Number(value);
    if (Number.isSafeInteger(parsed)) return parsed;
  } else if (typeof value === "bigint") {
    if (value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)) return Number(value);
  }
  throw new GatewayError(
    "internal_error",
    `The database returned ${String(value)} for '${column}', which is not a whole number JavaScript can hold exactly.`,
  );
}

/** `readInteger` for a nullable column. */
export function readNullableInteger(value: unknown, column: string): number | null {
  return value === null || value === undefined ? null : readInteger(value, column);
}
