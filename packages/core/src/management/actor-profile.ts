import { z } from "zod";
import type { Role } from "../permissions/permission-store.js";
import { parseInput } from "../validation/parse-input.js";
import { actorSchema, requireActor } from "./management-context.js";
import type { ManagementContext } from "./management-context.js";

export const actorInputSchema = z.strictObject({ actor: actorSchema });
export type ActorInput = z.input<typeof actorInputSchema>;

/** Who the actor is to Sluice: what a page needs to decide which controls to show. */
export interface ActorProfile {
  id: string;
  displayName: string | null;
  roles: Role[];
  groups: Array<{ id: string; name: string }>;
  /** Holds `aiprovider:create` (admins do). */
  canCreateProviders: boolean;
  /** Holds `org:admin`: manages allocations, every provider's sharing, and reads the organization's usage. */
  isAdmin: boolean;
}

export async function actorProfile(context: ManagementContext, raw: ActorInput): Promise<ActorProfile> {
  const input = parseInput(actorInputSchema, raw, "request");
  const user = await requireActor(context, input.actor);
  const { permissions } = context.gateway.stores;
  const groupIds = await permissions.groupsOf(user.id);
  const groups = await Promise.all(
    groupIds.map(async (id) => ({ id, name: (await permissions.getGroup(id))?.name ?? id })),
  );
  const [canCreateProviders, isAdmin] = await Promise.all([
    permissions.hasRole(user.id, "aiprovider:create"),
    permissions.hasRole(user.id, "org:admin"),
  ]);
  return { id: user.id, displayName: user.displayName, roles: [...user.roles], groups, canCreateProviders, isAdmin };
}
