import { GatewayError, UndiciUpstreamClient, headerText, parseInput } from "@sluice/core";
import { isBareNotFound, parseUpstreamErrorBody, transportError, upstreamStatusError } from "./upstream-error.js";
import type { Clock, Deployment, Provider, ProviderHealth, ProviderModel, ProviderRecord } from "@sluice/core";
import { z } from "zod";
import { EndpointDeployment } from "./endpoint-deployment.js";
import type { Endpoint } from "./endpoint-deployment.js";
import { ModelDiscovery } from "./model-discovery.js";
import { openAICompatSettingsSchema } from "./openai-compat-settings.js";
import { parseUpstreamTarget, routePath } from "./upstream-target.js";
import type { UpstreamTarget } from "./upstream-target.js";

const secretsSchema = z.looseObject({ apiKey: z.string().min(1, { error: "must not be empty" }).optional() });

export interface OpenAICompatProviderOptions {
  record: ProviderRecord;
  secrets: Record<string, string>;
  clock: Clock;
  connections: number;
  connectTimeoutMs: number;
  modelCacheTtlMs: number;
  /** Time allowed for one `GET /models` during discovery. */
  discoveryTimeoutMs: number;
  /** Time allowed for one endpoint's health probe. */
  healthTimeoutMs: number;
}

/**
 * The Provider for one `openai-compatible` record: its settings validated (a 400 naming the
 * field when they are wrong), one deployment per endpoint, discovery, health and shutdown.
 */
export function createOpenAICompatProvider(options: OpenAICompatProviderOptions): Provider {
  const { record, clock } = options;
  const settings = parseInput(openAICompatSettingsSchema, record.settings, "settings");
  const secrets = parseInput(secretsSchema, options.secrets, "secrets");

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(settings.headers ?? {})) headers[name.toLowerCase()] = value;
  if (secrets.apiKey !== undefined) headers.authorization = `Bearer ${secrets.apiKey}`;

  const client = new UndiciUpstreamClient({
    connections: options.connections,
    connectTimeoutMs: options.connectTimeoutMs,
    upstreamName: "the upstream",
    statusError: ({ status, headers, text }) =>
      upstreamStatusError({ status, headers, body: parseUpstreamErrorBody(text, headerText(headers, "content-type")) }),
    transportError,
  });
  const endpoints: Endpoint[] = [settings.endpoint, ...(settings.fallbackEndpoints ?? [])].map((url) => ({
    // The schema has already refused anything parseUpstreamTarget would.
    target: parseUpstreamTarget(url) as UpstreamTarget,
    client,
    headers,
    dropStreamOptions: settings.quirks?.dropStreamOptions === true,
  }));
  const discovery = new ModelDiscovery({
    endpoints,
    configured: settings.models,
    clock,
    ttlMs: options.modelCacheTtlMs,
    timeoutMs: options.discoveryTimeoutMs,
  });

  async function probe(endpoint: Endpoint, signal: AbortSignal | undefined): Promise<string | null> {
    const timeout = AbortSignal.timeout(options.healthTimeoutMs);
    try {
      const response = await client.request({
        origin: endpoint.target.origin,
        path: routePath(endpoint.target, "/models"),
        method: "GET",
        headers: { ...endpoint.headers, accept: "application/json" },
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      });
      await response.body.dump().catch(() => undefined);
      return null;
    } catch (error) {
      const gatewayError = GatewayError.from(error);
      if (timeout.aborted) return `The upstream did not answer within ${options.healthTimeoutMs} ms.`;
      // A server without GET /models (404), or a busy one (429), is up all the same. Refused
      // credentials map to a 502 and count as a problem: nothing can be served with them.
      if (gatewayError.status < 500 || isBareNotFound(gatewayError)) return null;
      return gatewayError.message;
    }
  }

  return {
    record,

    listModels(listOptions?: { signal?: AbortSignal }): Promise<ProviderModel[]> {
      return discovery.list(listOptions?.signal);
    },

    deployments(model: string): Deployment[] {
      return endpoints.map((endpoint, index) => new EndpointDeployment({ id: `${record.id}/${index}`, model, endpoint }));
    },

    async health(healthOptions?: { signal?: AbortSignal }): Promise<ProviderHealth> {
      let problems: Array<string | null>;
      try {
        problems = await Promise.all(endpoints.map((endpoint) => probe(endpoint, healthOptions?.signal)));
      } catch (error) {
        problems = [GatewayError.from(error).message];
      }
      const failed = problems.flatMap((problem, index) => (problem === null ? [] : [{ index, problem }]));
      const checkedAt = clock.now();
      if (failed.length === endpoints.length) {
        const reason = failed.map(({ index, problem }) => `${endpointName(index)}: ${problem}`).join(" ");
        return { status: "unreachable", reason, checkedAt };
      }
      // Still serving through the endpoints that answered; say which did not.
      const reason = failed.length === 0 ? null : failed.map(({ index, problem }) => `${endpointName(index)}: ${problem}`).join(" ");
      return { status: "reachable", reason, checkedAt };
    },

    close(): Promise<void> {
      return client.close();
    },
  };
}

function endpointName(index: number): string {
  return index === 0 ? "endpoint" : `fallbackEndpoints[${index - 1}]`;
}
