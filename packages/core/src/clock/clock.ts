/**
 * Where Sluice reads the time. Every expiry, budget period and reservation lease goes through a
 * Clock, so tests move time by hand instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. Must never go backwards within one clock. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface ManualClock extends Clock {
  /** Moves time forward by `ms` (never backwards). */
  advance(ms: number): void;
  /** Sets the time; refuses to go backwards, as a real clock would. */
  set(epochMs: number): void;
}

/** A clock that only moves when told to: the one tests and conformance suites use. */
export function createManualClock(options: { start?: number } = {}): ManualClock {
  let current = options.start ?? Date.UTC(2026, 0, 5, 12, 0, 0);
  return {
    now: () => current,
    advance(ms) {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advance() takes a non-negative duration, got ${ms}`);
      current += ms;
    },
    set(epochMs) {
      if (epochMs < current) throw new RangeError("a manual clock does not go backwards");
      current = epochMs;
    },
  };
}
