/** Percentiles of latencies in milliseconds (nearest rank). */
export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
}

export function summarizeLatencies(latencies: readonly number[]): LatencySummary {
  if (latencies.length === 0) return { p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const sorted = [...latencies].sort((left, right) => left - right);
  const rank = (fraction: number) => sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
  return { p50: rank(0.5), p99: rank(0.99), max: sorted[sorted.length - 1]! };
}

/** Milliseconds for a table: three significant digits, at least 0.001. */
export function formatMs(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  if (value >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

/** A count with thousands separators. */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}
