import { GatewayError, UndiciUpstreamClient, parseInput } from "@sluice/core";
import { azureStatusError, parseAzureErrorBody, transportError } from "./azure-error.js";
import type { Clock, Deployment, Provider, ProviderHealth, ProviderModel, ProviderRecord } from "@sluice/core";
import { z } from "zod";
import { AzureDeployment } from "./azure-deployment.js";
import type { AzureAuthorizer, AzureTarget } from "./azure-deployment.js";
import { parseAzureEndpoint } from "./azure-endpoint.js";
import type { AzureEndpoint } from "./azure-endpoint.js";
import { effectiveApiVersion, parseAzureSettings } from "./azure-settings.js";
import type { AzureOpenAISettings } from "./azure-settings.js";
import type { EntraTokenSource } from "./entra-token-source.js";

const secretsSchema = z.record(z.string(), z.string().min(1, { error: "must not be empty" }));

export interface AzureOpenAIProviderOptions {
  record: ProviderRecord;
  secrets: Record<string, string>;
  clock: Clock;
  connections: number;
  connectTimeoutMs: number;
  healthTimeoutMs: number;
  /** The adapter's shared token source; null when the adapter has no credential. */
  tokens: EntraTokenSource | null;
}

interface Entry {
  name: string;
  model: string;
  fallback: boolean;
  deployment: AzureDeployment;
  target: AzureTarget;
}

/**
 * The Provider for one `azure-openai` record. Its models are the deployment names in settings;
 * `deployments(name)` gives that name's entries (one per account or region it is listed for),
 * then every other entry running the same model, so the gateway falls back across them.
 *
 * A record that is still provisioning, or failed to, has no deployments until the provisioner
 * fills them in; the gateway refuses it by status before asking.
 */
export function createAzureOpenAIProvider(options: AzureOpenAIProviderOptions): Provider {
  const { record, clock } = options;
  const settings = parseAzureSettings(record.settings);
  const secrets = parseInput(secretsSchema, options.secrets, "secrets");
  const client = new UndiciUpstreamClient({
    connections: options.connections,
    connectTimeoutMs: options.connectTimeoutMs,
    upstreamName: "Azure OpenAI",
    statusError: ({ status, headers, text }) => azureStatusError({ status, headers, body: parseAzureErrorBody(text) }),
    transportError,
  });
  const apiVersion = effectiveApiVersion(settings);

  const authorizers = new Map<string, AzureAuthorizer>();
  function authorizer(secretName: string): AzureAuthorizer {
    let found = authorizers.get(secretName);
    if (found !== undefined) return found;
    found = createAuthorizer(settings, secrets, secretName, options.tokens);
    authorizers.set(secretName, found);
    return found;
  }

  const targets = new Map<string, AzureTarget>();
  const entries: Entry[] = settings.deployments.map((deployment) => {
    const endpointUrl = (deployment.endpoint ?? settings.endpoint)!;
    const secretName = deployment.apiKeySecret ?? "apiKey";
    const key = `${endpointUrl} ${secretName}`;
    let target = targets.get(key);
    if (target === undefined) {
      target = {
        // The schema has already refused anything parseAzureEndpoint would.
        endpoint: parseAzureEndpoint(endpointUrl) as AzureEndpoint,
        shape: settings.apiShape,
        apiVersion,
        client,
        authorizer: authorizer(secretName),
      };
      targets.set(key, target);
    }
    return {
      name: deployment.name,
      model: deployment.model,
      fallback: deployment.fallback !== false,
      target,
      deployment: new AzureDeployment({ id: `${record.id}/${target.endpoint.host}/${deployment.name}`, deploymentName: deployment.name, target }),
    };
  });

  // deployments() runs on every request: the answers are computed once per provider.
  const byName = new Map<string, Deployment[]>();
  for (const entry of entries) {
    if (byName.has(entry.name)) continue;
    const named = entries.filter((candidate) => candidate.name === entry.name);
    const fallbacks = entries.filter((candidate) => candidate.name !== entry.name && candidate.fallback && candidate.model === entry.model);
    byName.set(entry.name, [...named, ...fallbacks].map((candidate) => candidate.deployment));
  }
  const models: ProviderModel[] = [...byName.keys()].map((name) => ({ id: name, ownedBy: "azure" }));

  async function probe(target: AzureTarget, signal: AbortSignal | undefined): Promise<string | null> {
    const timeout = AbortSignal.timeout(options.healthTimeoutMs);
    const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    try {
      const auth = await target.authorizer.headers(combined);
      // The v1 model list exists on every resource; the dated data plane has no cheap route.
      const response = await client.request({
        origin: target.endpoint.origin,
        path: `${target.endpoint.basePath}/openai/v1/models`,
        method: "GET",
        headers: { ...auth, accept: "application/json" },
        signal: combined,
      });
      await response.body.dump().catch(() => undefined);
      return null;
    } catch (error) {
      if (timeout.aborted) return `Azure OpenAI did not answer within ${options.healthTimeoutMs} ms.`;
      const gatewayError = GatewayError.from(error);
      // A 404 (a proxy without the route) or a 429 says the resource is up; refused credentials
      // (mapped to 502) and failures say it cannot serve.
      if (gatewayError.status < 500) return null;
      return gatewayError.message;
    }
  }

  return {
    record,

    async listModels(): Promise<ProviderModel[]> {
      return models.map((model) => ({ ...model }));
    },

    deployments(model: string): Deployment[] {
      return byName.get(model) ?? [];
    },

    async health(healthOptions?: { signal?: AbortSignal }): Promise<ProviderHealth> {
      const checkedAt = clock.now();
      if (record.status === "provisioning" || record.status === "failed") {
        return { status: record.status, reason: record.statusReason, checkedAt };
      }
      const probed = [...targets.values()];
      if (probed.length === 0) return { status: "unreachable", reason: "The provider lists no deployments.", checkedAt };
      const problems = await Promise.all(probed.map((target) => probe(target, healthOptions?.signal)));
      const failed = problems.flatMap((problem, index) => (problem === null ? [] : [`${probed[index]!.endpoint.host}: ${problem}`]));
      if (failed.length === probed.length) return { status: "unreachable", reason: failed.join(" "), checkedAt };
      return { status: "provisioned", reason: failed.length === 0 ? null : failed.join(" "), checkedAt };
    },

    close(): Promise<void> {
      return client.close();
    },
  };
}

function createAuthorizer(
  settings: AzureOpenAISettings,
  secrets: Record<string, string>,
  secretName: string,
  tokens: EntraTokenSource | null,
): AzureAuthorizer {
  if (settings.auth === "entra") {
    if (tokens === null) {
      const error = new GatewayError(
        "provider_unavailable",
        "This Azure OpenAI provider uses Entra ID, but the gateway's Azure adapter was given no credential.",
      );
      return { headers: () => Promise.reject(error) };
    }
    return {
      async headers(signal) {
        return { authorization: `Bearer ${await tokens.token(signal)}` };
      },
    };
  }
  const key = secrets[secretName];
  if (key === undefined) {
    const error = new GatewayError("provider_unavailable", `This Azure OpenAI provider has no '${secretName}' secret set for its api-key auth.`);
    return { headers: () => Promise.reject(error) };
  }
  const headers = Object.freeze({ "api-key": key });
  return { headers: () => headers };
}
