/**
 * The wait before reconnect attempt `attempt` (1 for the first retry): exponential from
 * `initialMs`, capped at `maxMs`, with "equal jitter" (half fixed, half random), so agents cut off
 * together by a gateway restart do not all come back in the same instant, yet none waits much
 * less than the schedule says.
 */
export function reconnectDelay(input: { attempt: number; initialMs: number; maxMs: number; random?: () => number }): number {
  const random = input.random ?? Math.random;
  const exponential = Math.min(input.maxMs, input.initialMs * 2 ** Math.max(0, input.attempt - 1));
  return Math.round(exponential / 2 + random() * (exponential / 2));
}
