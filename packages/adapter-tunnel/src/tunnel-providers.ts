import { GatewayError, systemClock } from "@sluice/core";
import type { Clock, CreateProviderInput, ProviderAdapter, ProviderCatalog, ProviderRecord } from "@sluice/core";
import type { Tunnel, TunnelDirectory } from "./tunnel-directory.js";
import { TunnelModelCache } from "./tunnel-model-cache.js";
import { createTunnelProvider } from "./tunnel-provider.js";
import { fallbackProviderName, sessionProviderName, tunnelIdOfProvider, tunnelProviderId } from "./tunnel-provider-name.js";

export const TUNNEL_PROVIDER_KIND = "openai-tunnel";

const stoppedReason = "The session or its tunnel stopped: restart them to use this provider again.";

export interface TunnelProvidersOptions {
  /** The gateway's provider catalog, where each tunnel's provider record is kept. */
  catalog: ProviderCatalog;
  /** Where tunnels come from: `createHostTunnelDirectory()` or `createTunnelHub()`. */
  directory: TunnelDirectory;
  clock?: Clock;
  /** How long a model server's `GET /v1/models` answer is reused. Default 30 000 ms. */
  modelCacheTtlMs?: number;
  /** Time allowed for one `GET /v1/models` through a tunnel. Default 10 000 ms. */
  discoveryTimeoutMs?: number;
  /**
   * Called when a catalog write fails while following the directory (the store is down, a name
   * is taken twice over). The tunnel is retried at its next change or `sync()`. Library code does
   * not log: route this to the host's logger.
   */
  onError?: (error: unknown, tunnelId: string) => void;
}

export interface TunnelProviders {
  /** Register with the gateway: `createGateway({ adapters: [..., tunnels.adapter] })`. */
  readonly adapter: ProviderAdapter;
  /** Resolves once the first full reconciliation, started at creation, is done. Never rejects. */
  readonly ready: Promise<void>;
  /**
   * Reconciles every tunnel the directory knows and every tunnel provider the catalog holds.
   * Changes are followed as they happen; call this after a catalog outage. Never rejects.
   */
  sync(): Promise<void>;
  /** Resolves when every change seen so far has reached the catalog. Never rejects. */
  settled(): Promise<void>;
  /** Stops following the directory (the directory itself stays open: it is the host's). Idempotent. */
  close(): Promise<void>;
}

/**
 * Session tunnels as providers. For each tunnel with the OpenAI flag, the catalog holds one record
 * of kind `openai-tunnel`, owned by the tunnel's user, with id `tun_<tunnel id>` and a name derived
 * from the session, whose status follows the tunnel's (`running` / `stopped`) through
 * `catalog.update`, which emits `provider-status-change`. No one creates these records by hand:
 * the adapter's `validate` refuses them.
 *
 * - A stopped tunnel stays listed, as `stopped`: the gateway answers 503 for it before reserving
 *   anything, and leaves it out of `/models`.
 * - A removed tunnel (or one that lost its OpenAI flag) loses its provider record.
 * - A tunnel provider the directory does not know (after a restart of a gateway whose catalog
 *   persists) reads `stopped` until its tunnel comes back.
 * - If the tunnel's user changes, the record is deleted and created again for the new owner:
 *   ownership always follows the tunnel.
 *
 * Writes are serialized, and each one reads the directory's state when it runs, so a burst of
 * changes to one tunnel collapses into one write with its latest state.
 */
export function createTunnelProviders(options: TunnelProvidersOptions): TunnelProviders {
  const { catalog, directory } = options;
  const clock = options.clock ?? systemClock;
  const models = new TunnelModelCache({ clock, ttlMs: options.modelCacheTtlMs ?? 30_000, timeoutMs: options.discoveryTimeoutMs ?? 10_000 });
  const removed = new Set<string>();
  const queued = new Set<string>();
  let worker: Promise<void> | null = null;
  let closed = false;

  function report(error: unknown, tunnelId: string): void {
    try {
      options.onError?.(error, tunnelId);
    } catch {
      // The host's error hook failing leaves nothing else to tell.
    }
  }

  function enqueue(tunnelIds: Iterable<string>): Promise<void> {
    for (const id of tunnelIds) queued.add(id);
    worker ??= drain().finally(() => {
      worker = null;
    });
    return worker;
  }

  async function drain(): Promise<void> {
    while (queued.size > 0) {
      const [tunnelId] = queued;
      queued.delete(tunnelId!);
      try {
        await reconcile(tunnelId!);
      } catch (error) {
        report(error, tunnelId!);
      }
    }
  }

  async function reconcile(tunnelId: string): Promise<void> {
    const providerId = tunnelProviderId(tunnelId);
    const tunnel = directory.get(tunnelId);
    let record = await catalog.get(providerId);
    if (record !== null && record.kind !== TUNNEL_PROVIDER_KIND) {
      throw new GatewayError("conflict", `The provider id '${providerId}' is taken by a provider of kind '${record.kind}'.`);
    }
    if (tunnel === null || !tunnel.openai) {
      const wasRemoved = removed.delete(tunnelId);
      if (record === null) return;
      if (wasRemoved || tunnel !== null) {
        try {
          await catalog.delete(providerId);
        } catch (error) {
          if (wasRemoved) removed.add(tunnelId);
          throw error;
        }
        return;
      }
      if (record.status !== "stopped") await catalog.update(providerId, { status: "stopped", statusReason: stoppedReason });
      return;
    }
    removed.delete(tunnelId);
    if (record !== null && record.owner !== tunnel.userId) {
      await catalog.delete(providerId);
      record = null;
    }
    if (record === null) {
      await createRecord(tunnel);
      return;
    }
    if (record.status !== tunnel.status) {
      await catalog.update(providerId, { status: tunnel.status, statusReason: tunnel.status === "stopped" ? stoppedReason : null });
    }
  }

  async function createRecord(tunnel: Tunnel): Promise<ProviderRecord> {
    const name = sessionProviderName(tunnel.name);
    const input: Omit<CreateProviderInput, "name"> = {
      id: tunnelProviderId(tunnel.id),
      kind: TUNNEL_PROVIDER_KIND,
      owner: tunnel.userId,
      description: `Session tunnel to ${tunnel.sessionId}`.slice(0, 2_000),
      tags: ["session-tunnel"],
      status: tunnel.status,
      statusReason: tunnel.status === "stopped" ? stoppedReason : null,
      settings: { tunnelId: tunnel.id, sessionId: tunnel.sessionId },
    };
    try {
      return await catalog.create({ ...input, name });
    } catch (error) {
      // The owner already has a provider of that name: the same tunnel always takes the same fallback.
      if (!GatewayError.is(error) || error.code !== "conflict" || (await catalog.get(tunnelProviderId(tunnel.id))) !== null) throw error;
      return catalog.create({ ...input, name: fallbackProviderName(name, tunnel.id) });
    }
  }

  async function sync(): Promise<void> {
    if (closed) return;
    const ids = new Set(directory.list().map((tunnel) => tunnel.id));
    try {
      for (const record of await catalog.list({ kind: TUNNEL_PROVIDER_KIND })) {
        const tunnelId = tunnelIdOfProvider(record.id);
        if (tunnelId !== null) ids.add(tunnelId);
      }
    } catch (error) {
      report(error, "*");
    }
    await enqueue(ids);
  }

  const unsubscribe = directory.onChange((change) => {
    if (closed) return;
    models.forget(change.tunnel.id);
    if (change.type === "remove") removed.add(change.tunnel.id);
    void enqueue([change.tunnel.id]);
  });

  const ready = sync();

  return {
    adapter: {
      kind: TUNNEL_PROVIDER_KIND,
      validate() {
        throw new GatewayError(
          "invalid_request",
          "Session-tunnel providers appear by themselves when a session's tunnel starts; they cannot be created or changed by hand.",
          { param: "kind" },
        );
      },
      create: ({ record }) => createTunnelProvider({ record, directory, models, clock, healthTimeoutMs: 5_000 }),
    },
    ready,
    sync,
    settled: async () => {
      while (worker !== null) await worker;
    },
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      queued.clear();
      while (worker !== null) await worker;
    },
  };
}
