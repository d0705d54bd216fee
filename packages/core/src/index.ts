export * from "./errors/gateway-error.js";
export * from "./clock/clock.js";
export * from "./money/micro-dollars.js";
export * from "./ids/create-id.js";
export * from "./validation/parse-input.js";
export * from "./events/sluice-events.js";
export * from "./pricing/price-book.js";
export * from "./provider/provider-record.js";
export * from "./provider/provider.js";
export * from "./provider/output-cap.js";
export * from "./provider/provider-catalog.js";
export * from "./provider/secret-box.js";
export * from "./provider/model-id.js";
export * from "./permissions/permission-store.js";
export * from "./keys/key-store.js";
export * from "./keys/key-secret.js";
export * from "./budget/budget-period.js";
export * from "./budget/budget-ledger.js";
export * from "./stores.js";
export * from "./streaming/sse-decoder.js";
export * from "./streaming/stream-usage.js";
export * from "./provider/response-usage.js";
export * from "./provider/model-list.js";
export * from "./streaming/stream-event-reader.js";
export * from "./streaming/read-provider-stream.js";
export * from "./streaming/count-tokens.js";
export * from "./gateway/gateway-options.js";
export * from "./gateway/gateway-request.js";
export * from "./gateway/create-gateway.js";
export * from "./gateway/authenticate.js";
export * from "./gateway/request-control.js";
export * from "./gateway/upstream-attempt.js";
export * from "./http/node-handler.js";
export * from "./http/fetch-handler.js";
export * from "./http/koa-middleware.js";
export * from "./config/organization-config.js";
export type { Management } from "./management/management.js";
export type { ManagementOptions } from "./management/management-options.js";
export type { ActorInput, ActorProfile } from "./management/actor-profile.js";
export type { ProviderAccess, ProviderModelView, ProviderView } from "./management/provider-view.js";
export { discoveredProviderKinds } from "./management/provider-access.js";
export {
  createManagedProviderInputSchema,
  listProvidersInputSchema,
  providerInputSchema,
  updateManagedProviderInputSchema,
} from "./management/manage-providers.js";
export type {
  CreateManagedProviderInput,
  DeletedProvider,
  ListProvidersInput,
  ProviderInput,
  UpdateManagedProviderInput,
} from "./management/manage-providers.js";
export { grantChangeInputSchema } from "./management/manage-sharing.js";
export type { GrantChangeInput, RevokedGrant } from "./management/manage-sharing.js";
export { createManagedKeyInputSchema, keyInputSchema, listKeysInputSchema } from "./management/manage-keys.js";
export type { CreatedKeyView, CreateManagedKeyInput, KeyInput, KeyView, ListKeysInput } from "./management/manage-keys.js";
export {
  createManagedAllocationInputSchema,
  listAllocationsInputSchema,
  updateManagedAllocationInputSchema,
} from "./management/manage-allocations.js";
export type {
  CreateManagedAllocationInput,
  ListAllocationsInput,
  UpdateManagedAllocationInput,
} from "./management/manage-allocations.js";
export { instantSchema } from "./management/instant-schema.js";
export { MAX_USAGE_RANGE_DAYS } from "./management/usage-range.js";
export { usageShares } from "./management/usage-shares.js";
export type { UsageShare } from "./management/usage-shares.js";
export { organizationUsageInputSchema, usageInputSchema } from "./management/usage-report.js";
export type { OrganizationUsageInput, PersonalUsage, UsageInput, UsageRow, UsageSummary } from "./management/usage-report.js";
export { API_KEY_VARIABLE, renderConnectSnippets } from "./management/connect-snippets.js";
export type { ConnectSnippets } from "./management/connect-snippets.js";
export { connectInputSchema } from "./management/connect-info.js";
export type { ConnectInfo, ConnectInput, ConnectModel } from "./management/connect-info.js";
export { handleManagementRequest } from "./management/management-routes.js";
export type { ManagementRequest } from "./management/management-routes.js";
export { createManagementNodeHandler } from "./management/management-node-handler.js";
export type { ManagementHandlerOptions } from "./management/management-node-handler.js";
export { createManagementKoaMiddleware } from "./management/management-koa-middleware.js";
export * from "./validation/parse-arguments.js";
export * from "./streaming/answer-as-stream.js";
export { readablePulledBody } from "./streaming/pulled-body.js";
export type { PulledBody } from "./streaming/pulled-body.js";
export * from "./streaming/sse-body-batches.js";
export * from "./upstream/undici-upstream-client.js";
export * from "./upstream/upstream-failure.js";
export * from "./provider/provider-patch.js";
