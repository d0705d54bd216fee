import { GatewayError } from "../errors/gateway-error.js";
import type { ProviderCatalog } from "../provider/provider-catalog.js";
import type { ProviderRecord } from "../provider/provider-record.js";
import type { Provider, ProviderAdapter } from "../provider/provider.js";

interface Entry {
  version: number;
  provider: Promise<Provider>;
}

/**
 * Live providers, one per stored record, rebuilt when the record changes (a new endpoint or key
 * takes effect on the next request) and closed when replaced. Connection pools live in the
 * providers, so reusing them across requests is what keeps upstream connections warm.
 */
export class ProviderRegistry {
  readonly #catalog: ProviderCatalog;
  readonly #adapters: Map<string, ProviderAdapter>;
  readonly #entries = new Map<string, Entry>();

  constructor(options: { catalog: ProviderCatalog; adapters: readonly ProviderAdapter[] }) {
    this.#catalog = options.catalog;
    this.#adapters = new Map(options.adapters.map((adapter) => [adapter.kind, adapter]));
  }

  get(record: ProviderRecord): Promise<Provider> {
    const entry = this.#entries.get(record.id);
    if (entry && entry.version === record.version) return entry.provider;
    if (entry) void this.#close(entry);
    const provider = this.#create(record);
    this.#entries.set(record.id, { version: record.version, provider });
    // A failed creation (secrets unreadable) must not stay cached and fail every later request.
    provider.catch(() => {
      if (this.#entries.get(record.id)?.provider === provider) this.#entries.delete(record.id);
    });
    return provider;
  }

  /** Drops a deleted provider. */
  forget(providerId: string): void {
    const entry = this.#entries.get(providerId);
    if (!entry) return;
    this.#entries.delete(providerId);
    void this.#close(entry);
  }

  async close(): Promise<void> {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(entries.map((entry) => this.#close(entry)));
  }

  async #create(record: ProviderRecord): Promise<Provider> {
    const adapter = this.#adapters.get(record.kind);
    if (!adapter) {
      throw new GatewayError("provider_unavailable", `This gateway has no adapter for providers of kind '${record.kind}'.`);
    }
    const secrets = await this.#catalog.readSecrets(record.id);
    try {
      return adapter.create({ record, secrets });
    } catch (error) {
      // Settings that no longer validate are the provider owner's to fix, not the caller's: a
      // 503 says "this provider cannot serve", where the adapter's own 400 would blame the request.
      const reason = GatewayError.is(error) ? error.message : "its settings could not be loaded";
      throw new GatewayError("provider_unavailable", `The provider '${record.name}' cannot serve requests: ${reason}`, { cause: error });
    }
  }

  async #close(entry: Entry): Promise<void> {
    try {
      const provider = await entry.provider;
      await provider.close?.();
    } catch {
      // Nothing to release for a provider that never came up.
    }
  }
}
