export * from "./tunnel-directory.js";
export * from "./tunnel-providers.js";
export { tunnelProviderId, sessionProviderName } from "./tunnel-provider-name.js";
export * from "./host-tunnel-directory.js";
export * from "./hub/tunnel-hub.js";
export * from "./hub/tunnel-token-store.js";
export * from "./agent/tunnel-agent.js";
export { TUNNEL_UPGRADE_PROTOCOL, TUNNEL_NAME_HEADER, tunnelCloseReasons } from "./protocol/tunnel-protocol.js";
export type { TunnelCloseReason } from "./protocol/tunnel-protocol.js";
