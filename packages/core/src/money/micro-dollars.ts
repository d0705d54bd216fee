import { z } from "zod";

/**
 * Money is an integer count of micro-dollars (1 USD = 1,000,000). Integers keep sums exact across
 * millions of charges; a safe integer holds about nine billion dollars.
 */
export type MicroDollars = number;

export const MICROS_PER_DOLLAR = 1_000_000;

/** A non-negative safe integer amount of micro-dollars. Fractions and negatives are refused. */
export const microDollarsSchema = z
  .number({ error: "must be a number of micro-dollars" })
  .int({ error: "must be a whole number of micro-dollars" })
  .nonnegative({ error: "must not be negative" })
  .max(Number.MAX_SAFE_INTEGER, { error: "is too large" });

export function dollarsToMicros(dollars: number): MicroDollars {
  return Math.round(dollars * MICROS_PER_DOLLAR);
}

/** For display only; never compute with the result. */
export function formatMicros(amount: MicroDollars): string {
  return `$${(amount / MICROS_PER_DOLLAR).toFixed(6)}`;
}
