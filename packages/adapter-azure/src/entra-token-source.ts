import type { AccessToken, TokenCredential } from "@azure/core-auth";
import { GatewayError, systemClock } from "@sluice/core";
import type { Clock } from "@sluice/core";

export interface EntraTokenSourceOptions {
  credential: TokenCredential;
  /** The token's audience. */
  scope: string;
  /** Refresh this long before the token expires. Default 5 minutes. */
  refreshMarginMs?: number;
  /**
   * After a failed refresh, wait this long before asking the credential again, serving the
   * still-valid token meanwhile (or failing fast once it has expired). Default 10 seconds.
   */
  retryAfterFailureMs?: number;
  /** Time allowed for one `getToken`. Default 30 seconds. */
  getTokenTimeoutMs?: number;
  clock?: Clock;
}

/**
 * One Entra ID access token, shared by every request that needs it.
 *
 * - A cached token is served until `refreshMarginMs` before it expires (or the credential's own
 *   `refreshAfterTimestamp`, when earlier); the credential is never asked per request.
 * - Then one refresh starts in the background. Requests keep getting the cached token while it is
 *   still valid; only when it has expired do they wait, and then all of them wait for the same
 *   `getToken` call.
 * - A failed refresh keeps serving the cached token while it is valid and retries after
 *   `retryAfterFailureMs`. An expired token is never served: requests then fail with a 503
 *   `provider_unavailable` (retryable, so the gateway may try another deployment).
 */
export class EntraTokenSource {
  readonly #credential: TokenCredential;
  readonly #scope: string;
  readonly #refreshMarginMs: number;
  readonly #retryAfterFailureMs: number;
  readonly #getTokenTimeoutMs: number;
  readonly #clock: Clock;
  #token: AccessToken | null = null;
  #refreshing: Promise<AccessToken> | null = null;
  #lastFailure: { at: number; error: GatewayError } | null = null;

  constructor(options: EntraTokenSourceOptions) {
    this.#credential = options.credential;
    this.#scope = options.scope;
    this.#refreshMarginMs = options.refreshMarginMs ?? 5 * 60_000;
    this.#retryAfterFailureMs = options.retryAfterFailureMs ?? 10_000;
    this.#getTokenTimeoutMs = options.getTokenTimeoutMs ?? 30_000;
    this.#clock = options.clock ?? systemClock;
  }

  /** A valid access token; rejects with a 503 GatewayError when none can be had. */
  async token(signal?: AbortSignal): Promise<string> {
    const now = this.#clock.now();
    const cached = this.#token;
    const valid = cached !== null && now < cached.expiresOnTimestamp;
    if (valid && now < this.#refreshAt(cached)) return cached.token;

    const failure = this.#lastFailure;
    const coolingDown = failure !== null && now - failure.at < this.#retryAfterFailureMs;
    if (this.#refreshing === null && !coolingDown) this.#startRefresh();
    if (valid) return cached.token;
    if (this.#refreshing === null) throw failure!.error;
    const refreshing = this.#refreshing;
    if (signal === undefined) return (await refreshing).token;
    // The refresh is shared: one caller giving up must not cancel it for the others.
    return (await raceAbort(refreshing, signal)).token;
  }

  #refreshAt(token: AccessToken): number {
    const early = token.expiresOnTimestamp - this.#refreshMarginMs;
    return token.refreshAfterTimestamp === undefined ? early : Math.min(early, token.refreshAfterTimestamp);
  }

  #startRefresh(): void {
    const refreshing = this.#refresh();
    this.#refreshing = refreshing;
    // Settled either way: the next caller after this starts afresh. Nobody may be waiting for a
    // background refresh, so its failure is handled here (it is remembered in #lastFailure).
    refreshing
      .finally(() => {
        if (this.#refreshing === refreshing) this.#refreshing = null;
      })
      .catch(() => undefined);
  }

  async #refresh(): Promise<AccessToken> {
    try {
      let token: AccessToken | null;
      try {
        token = await this.#credential.getToken(this.#scope, { abortSignal: AbortSignal.timeout(this.#getTokenTimeoutMs) });
      } catch (error) {
        throw new GatewayError(
          "provider_unavailable",
          "The gateway could not obtain an Entra ID token for this Azure OpenAI provider; its credential failed.",
          { cause: error },
        );
      }
      if (token === null || typeof token.token !== "string" || token.expiresOnTimestamp <= this.#clock.now()) {
        throw new GatewayError(
          "provider_unavailable",
          "The gateway could not obtain an Entra ID token for this Azure OpenAI provider; its credential returned none.",
        );
      }
      this.#token = token;
      this.#lastFailure = null;
      return token;
    } catch (error) {
      this.#lastFailure = { at: this.#clock.now(), error: error as GatewayError };
      throw error;
    }
  }
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(cancelled(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelled(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error as Error);
      },
    );
  });
}

function cancelled(signal: AbortSignal): GatewayError {
  const reason: unknown = signal.reason;
  if (GatewayError.is(reason)) return reason;
  return new GatewayError("upstream_error", "The request was cancelled.", { cause: reason });
}
