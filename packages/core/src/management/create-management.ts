import { normalizeBasePath } from "../http/base-path.js";
import type { GatewayContext } from "../gateway/gateway-context.js";
import type { ProviderAdapter } from "../provider/provider.js";
import { actorProfile } from "./actor-profile.js";
import { connectInfo } from "./connect-info.js";
import { createAllocation, listAllocations, updateAllocation } from "./manage-allocations.js";
import { createKey, listKeys, revokeKey } from "./manage-keys.js";
import { createProvider, deleteProvider, discoverModels, getProvider, listProviders, updateProvider } from "./manage-providers.js";
import { grantProvider, listGrants, revokeGrant } from "./manage-sharing.js";
import type { Management } from "./management.js";
import type { ManagementContext } from "./management-context.js";
import type { ManagementOptions } from "./management-options.js";
import { organizationUsage, personalUsage } from "./usage-report.js";

/** The management API over a gateway's own stores, registry and clock; `createGateway` builds it. */
export function createManagement(input: {
  context: GatewayContext;
  adapters: readonly ProviderAdapter[];
  options?: ManagementOptions;
}): Management {
  const context: ManagementContext = {
    gateway: input.context,
    adapters: new Map(input.adapters.map((adapter) => [adapter.kind, adapter])),
    publicBaseUrl: input.options?.publicBaseUrl?.replace(/\/+$/, "") ?? null,
    openAIBasePath: normalizeBasePath(input.options?.openAIBasePath ?? "/v1"),
  };
  return {
    async identify(request) {
      const identity = input.context.identify ? await input.context.identify(request) : null;
      return identity?.userId ?? null;
    },
    me: (options) => actorProfile(context, options),
    listProviders: (options) => listProviders(context, options),
    createProvider: (options) => createProvider(context, options),
    getProvider: (options) => getProvider(context, options),
    updateProvider: (options) => updateProvider(context, options),
    deleteProvider: (options) => deleteProvider(context, options),
    discoverModels: (options) => discoverModels(context, options),
    listGrants: (options) => listGrants(context, options),
    grant: (options) => grantProvider(context, options),
    revokeGrant: (options) => revokeGrant(context, options),
    createKey: (options) => createKey(context, options),
    listKeys: (options) => listKeys(context, options),
    revokeKey: (options) => revokeKey(context, options),
    listAllocations: (options) => listAllocations(context, options),
    createAllocation: (options) => createAllocation(context, options),
    updateAllocation: (options) => updateAllocation(context, options),
    usage: (options) => personalUsage(context, options),
    organizationUsage: (options) => organizationUsage(context, options),
    connect: (options) => connectInfo(context, options),
  };
}
