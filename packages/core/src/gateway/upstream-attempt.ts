import { GatewayError } from "../errors/gateway-error.js";
import type { Deployment } from "../provider/provider.js";
import type { GatewayRetry } from "./gateway-options.js";

/**
 * One try at one deployment. Everything an attempt does happens before the first byte reaches the
 * client; that is what makes it safe to repeat. The wrappers below compose as
 * `withFallback(withRetry(withFirstByteTimeout(attempt)))`: a timeout makes a try fail, a failed try
 * is retried on the same deployment while it may be, and then the next deployment is tried.
 */
export type Attempt<T> = (deployment: Deployment, signal: AbortSignal) => Promise<T>;

/** Upstream 429s that mean "out of quota", which no amount of waiting fixes (wire-formats §5). */
const quotaCodes = new Set([
  "insufficient_quota",
  "credit_balance_exhausted",
  "organization_spend_limit_exceeded",
  "project_spend_limit_exceeded",
  "organization_usage_limit_exceeded",
]);

export function isRetryable(error: GatewayError): boolean {
  if (error.status === 429 && error.wireCode !== null && quotaCodes.has(error.wireCode)) return false;
  return error.retryable;
}

/**
 * Fails a try that has not produced its first byte within `ms`, with a 504.
 *
 * Each try gets its own signal, which the request's signal aborts too: a timed-out try must not
 * abort the request, whose next try needs a live signal. A listener rather than `AbortSignal.any`,
 * whose composite signals cost several times as much per request and stay in memory for as long
 * as a stream runs.
 */
export function withFirstByteTimeout<T>(next: Attempt<T>, ms: number): Attempt<T> {
  return async (deployment, signal) => {
    const controller = new AbortController();
    const follow = () => controller.abort(signal.reason);
    if (signal.aborted) follow();
    else signal.addEventListener("abort", follow, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, ms);
    try {
      // On success the listener stays: the try's signal must still follow the request's (a
      // disconnect, the total timeout) for as long as what it started runs.
      return await next(deployment, controller.signal);
    } catch (error) {
      signal.removeEventListener("abort", follow);
      if (timedOut && !signal.aborted) {
        throw new GatewayError("upstream_timeout", `The upstream did not answer within ${ms} ms.`, { cause: error });
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * The wait before retrying: the upstream's `retry-after-ms`, else its `retry-after` (seconds or an
 * HTTP date), else exponential backoff with jitter. Null when the upstream asks for longer than
 * `maxDelayMs`: better to try the next deployment than to hold the client that long.
 */
export function retryDelay(error: GatewayError, attempt: number, options: GatewayRetry, now = Date.now()): number | null {
  let delay: number | null = null;
  const milliseconds = error.headers["retry-after-ms"];
  const seconds = error.headers["retry-after"];
  if (milliseconds !== undefined && Number.isFinite(Number(milliseconds))) delay = Number(milliseconds);
  else if (seconds !== undefined) {
    const asNumber = Number(seconds);
    if (Number.isFinite(asNumber)) delay = asNumber * 1000;
    else {
      const date = Date.parse(seconds);
      if (Number.isFinite(date)) delay = date - now;
    }
  }
  if (delay === null) {
    const backoff = options.baseDelayMs * 2 ** (attempt - 1);
    delay = backoff / 2 + Math.random() * (backoff / 2);
  }
  delay = Math.max(0, delay);
  return delay > options.maxDelayMs ? null : delay;
}

/** Retries one deployment on retryable failures, up to `attemptsPerDeployment` tries. */
export function withRetry<T>(next: Attempt<T>, options: GatewayRetry): Attempt<T> {
  return async (deployment, signal) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await next(deployment, signal);
      } catch (thrown) {
        const error = GatewayError.from(thrown);
        if (signal.aborted || !isRetryable(error) || attempt >= options.attemptsPerDeployment) throw error;
        const delay = retryDelay(error, attempt, options);
        if (delay === null) throw error;
        await sleep(delay, signal);
      }
    }
  };
}

/** Tries each deployment in turn while failures are retryable; rethrows the last failure. */
export async function withFallback<T>(
  deployments: readonly Deployment[],
  next: Attempt<T>,
  signal: AbortSignal,
): Promise<{ result: T; deployment: Deployment }> {
  let last: GatewayError | null = null;
  for (const deployment of deployments) {
    try {
      return { result: await next(deployment, signal), deployment };
    } catch (thrown) {
      last = GatewayError.from(thrown);
      if (signal.aborted || !isRetryable(last)) throw last;
    }
  }
  throw last ?? new GatewayError("provider_unavailable", "No deployment serves this model.");
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new GatewayError("upstream_error", "The request was cancelled."));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new GatewayError("upstream_error", "The request was cancelled."));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
