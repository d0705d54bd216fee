import { GatewayError } from "../errors/gateway-error.js";
import type { ProviderKind, ProviderRecord } from "../provider/provider-record.js";
import type { ManagementContext } from "./management-context.js";
import type { ProviderAccess } from "./provider-view.js";

/**
 * Kinds whose providers are discovered, not entered: a session tunnel appears when its tunnel
 * does (SPEC.md), so the management API neither creates, updates nor deletes one. The permission
 * store treats the same kind as its owner's alone.
 */
export const discoveredProviderKinds: ReadonlySet<ProviderKind> = new Set(["openai-tunnel"]);

export interface AccessibleProvider {
  record: ProviderRecord;
  access: ProviderAccess;
}

/**
 * The provider, when the actor may use or manage it. Otherwise a 404 worded exactly as for an id
 * that does not exist, so ids reveal nothing about other users' providers.
 */
export async function visibleProvider(context: ManagementContext, actor: string, providerId: string): Promise<AccessibleProvider> {
  const { catalog, permissions } = context.gateway.stores;
  const record = await catalog.get(providerId);
  if (record) {
    const [use, manage] = await Promise.all([permissions.canUse(actor, record), permissions.canManage(actor, record)]);
    if (use || manage) return { record, access: { use, manage } };
  }
  throw new GatewayError("not_found", `No provider '${providerId}' was found.`, { param: "providerId" });
}

/**
 * The provider, when the actor may manage it: 404 when they may not even see it, 403 when they
 * may use it but not manage it.
 */
export async function manageableProvider(
  context: ManagementContext,
  actor: string,
  providerId: string,
  action: string,
): Promise<AccessibleProvider> {
  const visible = await visibleProvider(context, actor, providerId);
  if (!visible.access.manage) {
    throw new GatewayError("permission_denied", `Only the provider's owner or an organization admin may ${action} it.`);
  }
  return visible;
}

/** Refuses to change a discovered provider (a tunnel): it follows its tunnel, not this API. */
export function refuseDiscovered(record: ProviderRecord, action: string): void {
  if (discoveredProviderKinds.has(record.kind)) {
    throw new GatewayError(
      "permission_denied",
      `'${record.name}' is a ${record.kind} provider: it comes and goes with its session's tunnel and cannot be ${action} through this API.`,
    );
  }
}
