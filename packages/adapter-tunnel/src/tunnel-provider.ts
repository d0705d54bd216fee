import { GatewayError } from "@sluice/core";
import type { Clock, Deployment, Provider, ProviderHealth, ProviderModel, ProviderRecord } from "@sluice/core";
import type { TunnelDirectory } from "./tunnel-directory.js";
import { TunnelDeployment } from "./tunnel-deployment.js";
import { TunnelLink } from "./tunnel-link.js";
import type { TunnelModelCache } from "./tunnel-model-cache.js";
import { tunnelIdOfProvider } from "./tunnel-provider-name.js";

export interface TunnelProviderOptions {
  record: ProviderRecord;
  directory: TunnelDirectory;
  models: TunnelModelCache;
  clock: Clock;
  healthTimeoutMs: number;
}

/**
 * The Provider for one `openai-tunnel` record: a thin view over the tunnel, which lives in the
 * directory. It holds no connection of its own, so the gateway rebuilding it on every status
 * change (each one bumps the record's version) costs nothing, and closing it closes nothing.
 *
 * A record is served only through the tunnel its id names (`tun_<tunnel id>`), and only while that
 * tunnel belongs to the record's owner: see TunnelLink.
 */
export function createTunnelProvider(options: TunnelProviderOptions): Provider {
  const { record, clock } = options;
  const tunnelId = tunnelIdOfProvider(record.id);
  if (tunnelId === null) {
    throw new GatewayError("provider_unavailable", `'${record.name}' is not a session tunnel's own provider, so it has no tunnel to serve from.`);
  }
  const link = new TunnelLink({ record, tunnelId, directory: options.directory });
  // One model per request is the common case: reuse the object instead of allocating per call.
  let last: TunnelDeployment | null = null;

  return {
    record,

    listModels(listOptions?: { signal?: AbortSignal }): Promise<ProviderModel[]> {
      return options.models.list(link, listOptions?.signal);
    },

    deployments(model: string): Deployment[] {
      if (last === null || last.model !== model) last = new TunnelDeployment({ id: `${record.id}/${model}`, model, link });
      return [last];
    },

    async health(healthOptions?: { signal?: AbortSignal }): Promise<ProviderHealth> {
      if (!link.serving()) {
        return { status: "stopped", reason: "The session tunnel is not connected: the session and its tunnel must be restarted.", checkedAt: clock.now() };
      }
      const timeout = AbortSignal.timeout(options.healthTimeoutMs);
      const signal = healthOptions?.signal === undefined ? timeout : AbortSignal.any([healthOptions.signal, timeout]);
      try {
        const response = await link.send({ method: "GET", path: "/v1/models", headers: { accept: "application/json" }, signal });
        response.body.resume();
        return { status: "running", reason: null, checkedAt: clock.now() };
      } catch (error) {
        const gatewayError = GatewayError.from(error);
        // The tunnel is up; a model server without GET /models (404) or a busy one (429) is too.
        if (link.serving() && gatewayError.status < 500) return { status: "running", reason: null, checkedAt: clock.now() };
        const reason = timeout.aborted ? `The model server did not answer within ${options.healthTimeoutMs} ms.` : gatewayError.message;
        return { status: link.serving() ? "running" : "stopped", reason, checkedAt: clock.now() };
      }
    },

    async close(): Promise<void> {
      // Connections belong to the directory; the tunnel outlives this view.
    },
  };
}
