import { GatewayError, cancelledError, parseModelList, readBounded } from "@sluice/core";
import type { Clock, ProviderModel } from "@sluice/core";
import type { Endpoint } from "./endpoint-deployment.js";
import { routePath } from "./upstream-target.js";

/** A model list larger than this is not a model list. */
const modelsBodyLimit = 8 * 1024 * 1024;
/** A listing that fails is retried sooner than a good one is refreshed, so a blip does not last a minute. */
const failureTtlCapMs = 5_000;

type Outcome = { ok: true; models: ProviderModel[] } | { ok: false; error: GatewayError };

export interface ModelDiscoveryOptions {
  /** Primary first, then the fallbacks: the first that lists its models answers. */
  endpoints: readonly Endpoint[];
  /** `settings.models`: offered when the upstream lists nothing or cannot list. */
  configured: readonly string[] | undefined;
  clock: Clock;
  ttlMs: number;
  timeoutMs: number;
}

/**
 * `GET {base}/models`, cached for `ttlMs` (by the injected clock), with concurrent callers
 * sharing one upstream request. A caller's abort ends its own wait, never the shared request.
 *
 * Answers, in order: the upstream's models when it lists some; else the configured models; else
 * [] when the upstream truly lists none; else (the listing failed and nothing is configured) a
 * 503 `provider_unavailable`.
 */
export class ModelDiscovery {
  readonly #options: ModelDiscoveryOptions;
  #cached: { outcome: Outcome; expiresAt: number } | null = null;
  #inFlight: Promise<Outcome> | null = null;

  constructor(options: ModelDiscoveryOptions) {
    this.#options = options;
  }

  async list(signal?: AbortSignal): Promise<ProviderModel[]> {
    if (signal?.aborted) throw cancelledError(signal.reason);
    const cached = this.#cached;
    const outcome =
      cached !== null && cached.expiresAt > this.#options.clock.now() ? cached.outcome : await waitFor(this.#refresh(), signal);
    return this.#answer(outcome);
  }

  #answer(outcome: Outcome): ProviderModel[] {
    const configured = this.#options.configured;
    if (outcome.ok && outcome.models.length > 0) return outcome.models.map((model) => ({ ...model }));
    if (configured !== undefined && configured.length > 0) return [...new Set(configured)].map((id) => ({ id }));
    if (outcome.ok) return [];
    throw outcome.error;
  }

  #refresh(): Promise<Outcome> {
    this.#inFlight ??= this.#fetch().then((outcome) => {
      const ttl = outcome.ok ? this.#options.ttlMs : Math.min(this.#options.ttlMs, failureTtlCapMs);
      this.#cached = { outcome, expiresAt: this.#options.clock.now() + ttl };
      this.#inFlight = null;
      return outcome;
    });
    return this.#inFlight;
  }

  async #fetch(): Promise<Outcome> {
    let last: GatewayError | null = null;
    for (const endpoint of this.#options.endpoints) {
      try {
        return { ok: true, models: await fetchModels(endpoint, AbortSignal.timeout(this.#options.timeoutMs)) };
      } catch (error) {
        last = GatewayError.is(error) ? error : GatewayError.from(error);
      }
    }
    const reason = last?.message ?? "no endpoint is configured";
    return {
      ok: false,
      error: new GatewayError("provider_unavailable", `The provider's models could not be listed: ${reason}`, { cause: last }),
    };
  }
}

/** One endpoint's `GET /models`: `data` missing or null (Ollama with nothing installed) is []. */
export async function fetchModels(endpoint: Endpoint, signal: AbortSignal): Promise<ProviderModel[]> {
  const response = await endpoint.client.request({
    origin: endpoint.target.origin,
    path: routePath(endpoint.target, "/models"),
    method: "GET",
    headers: { ...endpoint.headers, accept: "application/json" },
    signal,
  });
  const text = await readBounded(response.body, modelsBodyLimit);
  if (signal.aborted) throw cancelledError(signal.reason);
  return parseModelList(text, "The upstream's");
}

/** The shared promise, or the caller's abort, whichever comes first. */
function waitFor<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(cancelledError(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
