import { z } from "zod";
import { instantSchema } from "./instant-schema.js";

const DAY = 86_400_000;
/** The longest range a report covers: a year of daily rows, and a bounded ledger scan. */
export const MAX_USAGE_RANGE_DAYS = 366;

/**
 * Which charges a report covers: the last `days` UTC days (today included, default 30), or an
 * explicit `from` (inclusive) to `to` (exclusive, default now).
 */
export const usageRangeFields = {
  /** The last N UTC days, today included: 7, 30 and 90 are the usual ones. */
  days: z.number({ error: "must be a number" }).int({ error: "must be a whole number" }).min(1).max(MAX_USAGE_RANGE_DAYS).optional(),
  from: instantSchema.optional(),
  to: instantSchema.optional(),
};

/** Checks the range fields together; for the `superRefine` of a schema that spreads `usageRangeFields`. */
export function checkUsageRange(
  range: { days?: number | undefined; from?: number | undefined; to?: number | undefined },
  context: z.RefinementCtx,
): void {
  if (range.days !== undefined && (range.from !== undefined || range.to !== undefined)) {
    context.addIssue({ code: "custom", path: ["days"], message: "cannot be combined with 'from' or 'to'" });
  } else if (range.to !== undefined && range.from === undefined) {
    context.addIssue({ code: "custom", path: ["from"], message: "is required with 'to'" });
  } else if (range.from !== undefined && range.to !== undefined) {
    if (range.to < range.from) context.addIssue({ code: "custom", path: ["to"], message: "must not be before 'from'" });
    else if (range.to - range.from > MAX_USAGE_RANGE_DAYS * DAY) {
      context.addIssue({ code: "custom", path: ["to"], message: `must be at most ${MAX_USAGE_RANGE_DAYS} days after 'from'` });
    }
  }
}

/** The [from, to) a report covers, from the injected clock's `now`. */
export function resolveUsageRange(
  range: { days?: number | undefined; from?: number | undefined; to?: number | undefined },
  now: number,
): { from: number; to: number } {
  if (range.from !== undefined) return { from: range.from, to: Math.max(range.from, range.to ?? now) };
  const days = range.days ?? 30;
  const today = new Date(now);
  const to = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate()) + DAY;
  return { from: to - days * DAY, to };
}
