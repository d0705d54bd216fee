import { GatewayError } from "../errors/gateway-error.js";
import type { Deployment } from "../provider/provider.js";
import type { GatewayRetry } from "./gateway-options.js";
import type { RequestControl } from "./request-control.js";

/**
 * One try at one deployment. Everything an attempt does happens before the first byte reaches the
 * client; that is what makes it safe to repeat (see `attemptDeployments`).
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

/**
 * Tries the deployments in turn until one answers. A try that misses its first byte within the
 * limit fails with a 504; a failed try is tried again on the same deployment while the failure is
 * retryable, up to `attemptsPerDeployment` tries and after the wait `retryDelay` names, unless
 * it is the deployment's own fault (a wrong URL); then the next deployment is tried. A failure
 * that is not retryable, or an aborted request, ends it at once; otherwise the last failure is
 * thrown once every deployment has failed.
 *
 * Without `firstByteLimit` (a whole answer, which arrives all at once), a try waits as long as
 * the total limit allows: its silence cannot tell a long generation from a hung server, and a
 * retry would run that generation again, unbilled.
 *
 * One loop rather than a wrapper per concern: each wrapper was an async layer, a closure and (for
 * the first-byte limit) a timer and an AbortController on every request.
 */
export async function attemptDeployments<T>(
  deployments: readonly Deployment[],
  attempt: Attempt<T>,
  control: RequestControl,
  retry: GatewayRetry,
  options: { firstByteLimit?: boolean } = {},
): Promise<T> {
  const firstByteLimit = options.firstByteLimit ?? true;
  let last: GatewayError | null = null;
  for (const deployment of deployments) {
    for (let tries = 1; ; tries++) {
      const signal = control.startTry(firstByteLimit);
      let error: GatewayError;
      try {
        const result = await attempt(deployment, signal);
        control.tryEnded();
        return result;
      } catch (thrown) {
        error = control.tryTimedOut
          ? new GatewayError("upstream_timeout", `The upstream did not answer within ${control.limits.firstByteMs} ms.`, { cause: thrown })
          : GatewayError.from(thrown);
      }
      control.tryEnded();
      if (control.aborted || !isRetryable(error)) throw error;
      last = error;
      if (error.deploymentFault || tries >= retry.attemptsPerDeployment) break;
      const delay = retryDelay(error, tries, retry);
      if (delay === null) break;
      await control.sleep(delay);
    }
  }
  throw last ?? new GatewayError("provider_unavailable", "No deployment serves this model.");
}
