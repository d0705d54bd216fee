/**
 * Budget periods. An allocation with a period starts each one at zero spend; boundaries fall at
 * UTC midnight (day), Monday UTC midnight (week) or the first of the month UTC (month), so every
 * gateway instance and the database agree on them without configuration.
 */
export const budgetPeriods = ["day", "week", "month"] as const;
export type BudgetPeriod = (typeof budgetPeriods)[number];

const DAY = 86_400_000;

/**
 * The last period each kind of period was asked about, `[start, end)`: every reservation asks,
 * nearly always about the same period, and the answer otherwise costs two Date objects.
 */
const lastPeriod: Record<BudgetPeriod, { start: number; end: number }> = {
  day: { start: 0, end: 0 },
  week: { start: 0, end: 0 },
  month: { start: 0, end: 0 },
};

/** The start of the period containing `at` (epoch ms, UTC). */
export function periodStart(period: BudgetPeriod, at: number): number {
  const last = lastPeriod[period];
  if (at >= last.start && at < last.end) return last.start;
  const start = computePeriodStart(period, at);
  lastPeriod[period] = { start, end: periodEndFrom(period, start) };
  return start;
}

function computePeriodStart(period: BudgetPeriod, at: number): number {
  const date = new Date(at);
  const midnight = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
  switch (period) {
    case "day":
      return midnight;
    case "week": {
      const daysSinceMonday = (date.getUTCDay() + 6) % 7;
      return midnight - daysSinceMonday * DAY;
    }
    case "month":
      return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
  }
}

/** The start of the period after the one containing `at`. */
export function periodEnd(period: BudgetPeriod, at: number): number {
  return periodEndFrom(period, periodStart(period, at));
}

function periodEndFrom(period: BudgetPeriod, start: number): number {
  switch (period) {
    case "day":
      return start + DAY;
    case "week":
      return start + 7 * DAY;
    case "month": {
      const date = new Date(start);
      return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
    }
  }
}

/** `YYYY-MM-DD` of the UTC day containing `at`: the key of per-day usage rows. */
export function utcDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}
