import { z } from "zod";
import { grantSubjectSchema } from "../permissions/permission-store.js";
import type { Grant } from "../permissions/permission-store.js";
import { parseInput } from "../validation/parse-input.js";
import { actorSchema, providerIdSchema, requireActor } from "./management-context.js";
import type { ManagementContext } from "./management-context.js";
import { manageableProvider } from "./provider-access.js";
import { providerInputSchema } from "./manage-providers.js";
import type { ProviderInput } from "./manage-providers.js";

export const grantChangeInputSchema = z.strictObject({
  actor: actorSchema,
  providerId: providerIdSchema,
  /** Who gets (or loses) `aiprovider:use`: one group's members, or the whole organization. */
  subject: grantSubjectSchema,
});
export type GrantChangeInput = z.input<typeof grantChangeInputSchema>;

export interface RevokedGrant {
  /** Whether a grant existed and was removed (revoking is idempotent). */
  revoked: boolean;
}

/*
 * Sharing checks visibility here (404 for a provider the actor cannot see, 403 for one they may
 * only use) and leaves the rest to the permission store, which enforces owner-or-admin and
 * refuses sharing for tunnels (403 `sharing_not_supported`), and publishes `grant-change`.
 */

export async function listGrants(context: ManagementContext, raw: ProviderInput): Promise<Grant[]> {
  const input = parseInput(providerInputSchema, raw, "request");
  await requireActor(context, input.actor);
  const { record } = await manageableProvider(context, input.actor, input.providerId, "read the sharing of");
  return context.gateway.stores.permissions.listGrants({ actor: input.actor, provider: record });
}

export async function grantProvider(context: ManagementContext, raw: GrantChangeInput): Promise<Grant> {
  const input = parseInput(grantChangeInputSchema, raw, "grant");
  await requireActor(context, input.actor);
  const { record } = await manageableProvider(context, input.actor, input.providerId, "share");
  return context.gateway.stores.permissions.grant({ actor: input.actor, provider: record, subject: input.subject });
}

export async function revokeGrant(context: ManagementContext, raw: GrantChangeInput): Promise<RevokedGrant> {
  const input = parseInput(grantChangeInputSchema, raw, "grant");
  await requireActor(context, input.actor);
  const { record } = await manageableProvider(context, input.actor, input.providerId, "change the sharing of");
  const revoked = await context.gateway.stores.permissions.revoke({ actor: input.actor, provider: record, subject: input.subject });
  return { revoked };
}
