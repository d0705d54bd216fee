import { z } from "zod";
import { GatewayError } from "../errors/gateway-error.js";
import type { GatewayContext } from "../gateway/gateway-context.js";
import type { User } from "../permissions/permission-store.js";
import { principalIdSchema } from "../provider/provider-record.js";
import type { ProviderAdapter } from "../provider/provider.js";

/** What every management operation needs: the gateway's own context, and how to describe it. */
export interface ManagementContext {
  gateway: GatewayContext;
  /** The gateway's adapters by kind: their `validate` hooks check provider settings. */
  adapters: ReadonlyMap<string, ProviderAdapter>;
  publicBaseUrl: string | null;
  openAIBasePath: string;
}

/** The authenticated user every management call acts as. */
export const actorSchema = principalIdSchema;

export const providerIdSchema = z
  .string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(128, { error: "must be at most 128 characters" });

/**
 * The actor as the permission store knows them. Users are the host's and Sluice mirrors them
 * (`upsertUser`); someone the host never mirrored is not in the organization, holds no role, is
 * in no group, and may do nothing here.
 */
export async function requireActor(context: ManagementContext, actor: string): Promise<User> {
  const user = await context.gateway.stores.permissions.getUser(actor);
  if (!user) {
    throw new GatewayError("permission_denied", `'${actor}' is not a user of this organization.`);
  }
  return user;
}

/** Org admins manage allocations and read the organization's usage. */
export async function requireAdmin(context: ManagementContext, actor: string, what: string): Promise<void> {
  await requireActor(context, actor);
  if (!(await context.gateway.stores.permissions.hasRole(actor, "org:admin"))) {
    throw new GatewayError("permission_denied", `Only organization admins may ${what}.`);
  }
}
