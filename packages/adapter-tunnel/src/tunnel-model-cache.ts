import { GatewayError, parseModelList, readBounded } from "@sluice/core";
import type { Clock, ProviderModel } from "@sluice/core";
import { cancelledError } from "./tunnel-errors.js";
import type { TunnelLink } from "./tunnel-link.js";

/** A model list larger than this is not a model list. */
const modelsBodyLimit = 8 * 1024 * 1024;
/** A failed listing is retried sooner than a good one is refreshed, so a blip does not last a minute. */
const failureTtlCapMs = 5_000;

type Outcome = { ok: true; models: ProviderModel[] } | { ok: false; error: GatewayError };

interface Entry {
  cached: { outcome: Outcome; expiresAt: number } | null;
  inFlight: Promise<Outcome> | null;
  /** Bumped by `forget`: a listing that started before a reconnect is not cached after it. */
  generation: number;
}

/**
 * The model servers' `GET /v1/models`, one cache entry per tunnel (not per provider object: the
 * gateway rebuilds a provider on every status change, and the cache must survive that), with
 * concurrent callers sharing one request. A caller's abort ends its own wait, never the shared
 * request. `forget` drops a tunnel's entry when it reconnects: the session may now serve others.
 */
export class TunnelModelCache {
  readonly #entries = new Map<string, Entry>();
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #timeoutMs: number;

  constructor(options: { clock: Clock; ttlMs: number; timeoutMs: number }) {
    this.#clock = options.clock;
    this.#ttlMs = options.ttlMs;
    this.#timeoutMs = options.timeoutMs;
  }

  async list(link: TunnelLink, signal?: AbortSignal): Promise<ProviderModel[]> {
    if (signal?.aborted) throw cancelledError(signal.reason);
    const entry = this.#entry(link.tunnelId);
    const cached = entry.cached;
    const outcome = cached !== null && cached.expiresAt > this.#clock.now() ? cached.outcome : await waitFor(this.#refresh(entry, link), signal);
    if (!outcome.ok) throw outcome.error;
    return outcome.models.map((model) => ({ ...model }));
  }

  forget(tunnelId: string): void {
    const entry = this.#entries.get(tunnelId);
    if (entry === undefined) return;
    entry.generation += 1;
    entry.cached = null;
    entry.inFlight = null;
  }

  #entry(tunnelId: string): Entry {
    let entry = this.#entries.get(tunnelId);
    if (entry === undefined) {
      entry = { cached: null, inFlight: null, generation: 0 };
      this.#entries.set(tunnelId, entry);
    }
    return entry;
  }

  #refresh(entry: Entry, link: TunnelLink): Promise<Outcome> {
    if (entry.inFlight !== null) return entry.inFlight;
    const generation = entry.generation;
    const inFlight = fetchModels(link, AbortSignal.timeout(this.#timeoutMs)).then(
      (models): Outcome => ({ ok: true, models }),
      (error: unknown): Outcome => ({
        ok: false,
        error: new GatewayError("provider_unavailable", `The session tunnel's models could not be listed: ${GatewayError.from(error).message}`, {
          cause: error,
        }),
      }),
    );
    entry.inFlight = inFlight;
    void inFlight.then((outcome) => {
      if (entry.generation !== generation) return;
      const ttl = outcome.ok ? this.#ttlMs : Math.min(this.#ttlMs, failureTtlCapMs);
      entry.cached = { outcome, expiresAt: this.#clock.now() + ttl };
      entry.inFlight = null;
    });
    return inFlight;
  }
}

/** `GET /v1/models` through the tunnel: `data` missing or null (Ollama with nothing pulled) is []. */
async function fetchModels(link: TunnelLink, signal: AbortSignal): Promise<ProviderModel[]> {
  const response = await link.send({ method: "GET", path: "/v1/models", headers: { accept: "application/json" }, signal });
  const text = await readBounded(response.body, modelsBodyLimit);
  if (signal.aborted) throw cancelledError(signal.reason);
  return parseModelList(text, "The model server's");
}

/** The shared promise, or the caller's abort, whichever comes first. */
function waitFor<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(cancelledError(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    void promise.then((value) => {
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    });
  });
}
