export * from "./azure-openai-adapter.js";
export * from "./azure-settings.js";
export * from "./azure-settings-update.js";
export * from "./azure-provisioner.js";
export { discoverAzureDeployments, parseAccountResourceId } from "./discover-azure-deployments.js";
export type { AzureAccountRef, DiscoveredAzureDeployment, DiscoveredAzureResource } from "./discover-azure-deployments.js";
export { EntraTokenSource } from "./entra-token-source.js";
export type { EntraTokenSourceOptions } from "./entra-token-source.js";
export { fieldsRefusedBy } from "./api-version-fields.js";
