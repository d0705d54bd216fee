import type { LatencySummary } from "./protocol.js";

/** The nearest-rank percentile of sorted values (0 for none). */
export function percentile(sorted: ArrayLike<number>, fraction: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length)));
  return sorted[rank - 1]!;
}

export function summarize(values: readonly number[]): LatencySummary {
  // A typed array sorts numerically, and fast: a cell holds up to a few hundred thousand values.
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    mean: sorted.length === 0 ? 0 : sum / sorted.length,
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** (max - min) / median: how far repetitions of one measurement disagree, 0 for a single one. */
export function relativeSpread(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const middle = median(values);
  return middle === 0 ? 0 : (Math.max(...values) - Math.min(...values)) / Math.abs(middle);
}

/**
 * A seeded generator (xorshift32): the intervals a report gives come out the same whenever they
 * are worked out again from the same repetitions. Resampling needs no better randomness.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 0x9e3779b9;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 2 ** 32;
  };
}

/** The medians of `resamples` samples of `size` values drawn from `values` with replacement, sorted. */
function resampledMedians(values: readonly number[], size: number, resamples: number, random: () => number): Float64Array {
  const medians = new Float64Array(resamples);
  const sample = new Array<number>(size);
  for (let round = 0; round < resamples; round++) {
    for (let index = 0; index < size; index++) sample[index] = values[Math.floor(random() * values.length)]!;
    medians[round] = median(sample);
  }
  return medians.sort();
}

/**
 * A `level` interval for the median of `values` (percentile bootstrap). A cell's repetitions are
 * few and their spread is skewed by bursts of load, so no normal-theory formula fits them. Null
 * for fewer than two values.
 */
export function medianInterval(values: readonly number[], level = 0.9, resamples = 4_000, random = seededRandom(1)): [number, number] | null {
  if (values.length < 2) return null;
  const medians = resampledMedians(values, values.length, resamples, random);
  const tail = (1 - level) / 2;
  return [medians[Math.floor(tail * (resamples - 1))]!, medians[Math.ceil((1 - tail) * (resamples - 1))]!];
}

/**
 * The share of runs of `size` repetitions whose median would fall below `line`, were each
 * repetition drawn from `values`: how often a single run would put the cell below a target,
 * whatever the pooled values say about it.
 */
export function shareOfRunsBelow(values: readonly number[], line: number, size: number, resamples = 4_000, random = seededRandom(2)): number {
  if (values.length === 0) return Number.NaN;
  const medians = resampledMedians(values, size, resamples, random);
  let below = 0;
  while (below < medians.length && medians[below]! < line) below++;
  return below / medians.length;
}
