/**
 * A TokenCredential that counts its `getToken` calls and hands out tokens of a fixed lifetime,
 * timed by the test's clock. Not exported from the package.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";
import type { Clock } from "@sluice/core";

export interface FakeTokenCredential extends TokenCredential {
  /** Every `getToken` call, in order. */
  readonly calls: Array<{ scopes: string[] }>;
  /** Tokens handed out, in order. */
  readonly issued: string[];
  /** Whether `token` was issued and has not expired by `clock`. */
  isValid(token: string): boolean;
  /** The next `getToken` calls reject with `error` (until `succeed()`). */
  fail(error?: Error): void;
  succeed(): void;
}

export function createFakeTokenCredential(options: {
  clock: Clock;
  lifetimeMs: number;
  /** Time each `getToken` takes, in real milliseconds. Default 0. */
  delayMs?: number;
  /** Prefix of the tokens, to tell several credentials apart. */
  prefix?: string;
}): FakeTokenCredential {
  const calls: Array<{ scopes: string[] }> = [];
  const issued: string[] = [];
  const expiries = new Map<string, number>();
  let failure: Error | null = null;
  return {
    calls,
    issued,
    isValid(token) {
      const expiry = expiries.get(token);
      return expiry !== undefined && options.clock.now() < expiry;
    },
    fail(error = new Error("AADSTS7000215: Invalid client secret provided.")) {
      failure = error;
    },
    succeed() {
      failure = null;
    },
    async getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken | null> {
      calls.push({ scopes: Array.isArray(scopes) ? scopes : [scopes] });
      if (options.delayMs !== undefined && options.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
      if (failure !== null) throw failure;
      const token = `${options.prefix ?? "entra"}-token-${issued.length + 1}`;
      const expiresOnTimestamp = options.clock.now() + options.lifetimeMs;
      issued.push(token);
      expiries.set(token, expiresOnTimestamp);
      return { token, expiresOnTimestamp, tokenType: "Bearer" };
    },
  };
}
