/** One row's part of a total: a fraction, and a percentage with one decimal. */
export interface UsageShare {
  /** value / total, unrounded; 0 when the total is 0. The fractions of all rows sum to 1. */
  share: number;
  /**
   * The share in percent, to one decimal, rounded by the largest-remainder method so the rows
   * add up to exactly 100.0 (three rows of a third read 33.4, 33.3, 33.3, not 33.3 three times).
   */
  sharePercent: number;
}

/** Each value's share of their sum. Values are non-negative (micro-dollars or tokens). */
export function usageShares(values: readonly number[]): UsageShare[] {
  const total = values.reduce((sum, value) => sum + value, 0);
  if (total <= 0) return values.map(() => ({ share: 0, sharePercent: 0 }));
  // Work in tenths of a percent: 1000 units to hand out.
  const exact = values.map((value) => (value / total) * 1000);
  const units = exact.map(Math.floor);
  let left = 1000 - units.reduce((sum, unit) => sum + unit, 0);
  const byRemainder = exact
    .map((value, index) => ({ index, remainder: value - units[index]! }))
    .sort((left, right) => right.remainder - left.remainder || left.index - right.index);
  for (const { index } of byRemainder) {
    if (left <= 0) break;
    units[index]! += 1;
    left -= 1;
  }
  return values.map((value, index) => ({ share: value / total, sharePercent: units[index]! / 10 }));
}
