import type { TokenCredential } from "@azure/core-auth";
import { GatewayError, systemClock } from "@sluice/core";
import type { Clock, ProviderAdapter, ProviderRecord } from "@sluice/core";
import { createAzureOpenAIProvider } from "./azure-openai-provider.js";
import type { AzureProvisioner } from "./azure-provisioner.js";
import { azureOpenAIScope, parseAzureSettings } from "./azure-settings.js";
import { EntraTokenSource } from "./entra-token-source.js";

export interface AzureOpenAIAdapterOptions {
  /**
   * Signs data-plane requests of providers with `auth: "entra"`: any TokenCredential from
   * @azure/identity (DefaultAzureCredential, a managed identity, workload identity, a client
   * secret). Its identity needs a data-plane role on each resource, such as "Cognitive Services
   * OpenAI User". Tokens are for `https://cognitiveservices.azure.com/.default`, shared by every
   * provider and request of this adapter.
   */
  credential?: TokenCredential;
  /** Refresh a token this long before it expires. Default 5 minutes. */
  tokenRefreshMarginMs?: number;
  /** Where token expiry and health's `checkedAt` read the time. Default: the system clock. */
  clock?: Clock;
  /** Keep-alive connections per Azure resource, per provider. Default 128. */
  connections?: number;
  /** Time allowed to open a connection (TCP and TLS). Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Time allowed for one health probe. Default 5 000 ms. */
  healthTimeoutMs?: number;
  /**
   * Provisions and tears down managed providers (`settings.managed`) created and deleted through
   * the management API: `createAzureProvisioner`'s result. Without one, a managed provider created
   * there waits for the host to call the provisioner itself.
   */
  provisioner?: AzureProvisioner;
}

/**
 * The adapter for providers of kind `azure-openai`: Azure OpenAI resources, attached by hand or
 * provisioned by `createAzureProvisioner`. Settings are `azureOpenAISettingsSchema`; the secret is
 * `apiKey` for `auth: "api-key"`.
 *
 * `validate` checks settings and secrets as a create or update would store them and returns the
 * settings normalized (defaults filled in). It sees only the new settings, so it cannot refuse a
 * change of a managed provider's region or model: hosts call `assertAzureSettingsUpdate` with the
 * stored and the new settings for that.
 *
 * With a `provisioner`, a managed provider created through the management API is provisioned in
 * the background (status `provisioning`, then `provisioned` or `failed` with Azure's message), and
 * deleting it deletes its Azure deployment first; an Azure refusal refuses the delete (502).
 */
export function createAzureOpenAIAdapter(options: AzureOpenAIAdapterOptions = {}): ProviderAdapter {
  const clock = options.clock ?? systemClock;
  const provisioner = options.provisioner;
  const tokens =
    options.credential === undefined
      ? null
      : new EntraTokenSource({
          credential: options.credential,
          scope: azureOpenAIScope,
          refreshMarginMs: options.tokenRefreshMarginMs,
          clock,
        });
  return {
    kind: "azure-openai",

    validate({ settings, secrets }) {
      const parsed = parseAzureSettings(settings);
      if (parsed.auth === "entra" && tokens === null) {
        throw new GatewayError("invalid_request", "Invalid settings: 'auth' is 'entra', but this gateway has no Azure credential configured.", {
          param: "settings.auth",
        });
      }
      if (parsed.auth === "api-key") {
        for (const name of new Set(parsed.deployments.map((deployment) => deployment.apiKeySecret ?? "apiKey"))) {
          if (secrets[name] === null) {
            throw new GatewayError("invalid_request", `Invalid secrets: '${name}' is needed by the api-key auth and cannot be deleted.`, {
              param: `secrets.${name}`,
            });
          }
        }
      }
      return parsed;
    },

    provision({ record }) {
      if (provisioner === undefined || !isManaged(record)) return;
      // Azure's refusals land in the record as `failed`; what rejects (the provisioner closed, the
      // record deleted meanwhile) leaves it for `resumeAll` or the delete.
      provisioner.provision(record).catch(() => undefined);
    },

    async deprovision({ record }) {
      if (provisioner === undefined || !isManaged(record)) return;
      await provisioner.deprovision(record);
    },

    create: ({ record, secrets }) =>
      createAzureOpenAIProvider({
        record,
        secrets,
        clock,
        connections: options.connections ?? 128,
        connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
        healthTimeoutMs: options.healthTimeoutMs ?? 5_000,
        tokens,
      }),
  };
}

/** Whether Sluice provisions the record's Azure resources: its settings carry `managed`. */
function isManaged(record: ProviderRecord): boolean {
  return typeof record.settings.managed === "object" && record.settings.managed !== null;
}
