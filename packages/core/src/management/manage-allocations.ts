import { z } from "zod";
import { allocationOwnerSchema } from "../budget/budget-ledger.js";
import type { Allocation, AllocationBalance, AllocationOwner } from "../budget/budget-ledger.js";
import { budgetPeriods } from "../budget/budget-period.js";
import { GatewayError } from "../errors/gateway-error.js";
import { microDollarsSchema } from "../money/micro-dollars.js";
import { parseInput } from "../validation/parse-input.js";
import { actorSchema, requireActor, requireAdmin } from "./management-context.js";
import type { ManagementContext } from "./management-context.js";

const allocationNameSchema = z
  .string({ error: "must be a string" })
  .trim()
  .min(1, { error: "must not be empty" })
  .max(200, { error: "must be at most 200 characters" });

const allocationIdSchema = z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }).max(128);

export const listAllocationsInputSchema = z.strictObject({
  actor: actorSchema,
  /** Every allocation of the organization, not only those the actor may draw from: org admins only. */
  all: z.boolean({ error: "must be a boolean" }).optional(),
});
export type ListAllocationsInput = z.input<typeof listAllocationsInputSchema>;

export const createManagedAllocationInputSchema = z.strictObject({
  actor: actorSchema,
  name: allocationNameSchema,
  /** Whose members draw from it: one group, or the whole organization. */
  owner: allocationOwnerSchema,
  /** Micro-dollars ($50 is 50000000), per period when there is one. */
  limit: microDollarsSchema,
  /** `day`, `week` or `month` (UTC): spend starts at zero each period. Null: one limit for ever. */
  period: z.enum(budgetPeriods).nullable().optional(),
});
export type CreateManagedAllocationInput = z.input<typeof createManagedAllocationInputSchema>;

export const updateManagedAllocationInputSchema = z.strictObject({
  actor: actorSchema,
  allocationId: allocationIdSchema,
  name: allocationNameSchema.optional(),
  /** A lower limit takes effect on the next request. */
  limit: microDollarsSchema.optional(),
  period: z.enum(budgetPeriods).nullable().optional(),
});
export type UpdateManagedAllocationInput = z.input<typeof updateManagedAllocationInputSchema>;

/** Whether the user may draw from the allocation: the organization's, or one of their groups'. */
export async function mayDrawFrom(context: ManagementContext, userId: string, allocation: Pick<Allocation, "owner">): Promise<boolean> {
  if (allocation.owner.type === "organization") return (await context.gateway.stores.permissions.getUser(userId)) !== null;
  return (await context.gateway.stores.permissions.groupsOf(userId)).includes(allocation.owner.groupId);
}

/** The allocations the actor may draw from, with their balances; every one for an admin asking for `all`. */
export async function listAllocations(context: ManagementContext, raw: ListAllocationsInput): Promise<AllocationBalance[]> {
  const input = parseInput(listAllocationsInputSchema, raw, "request");
  const { ledger, permissions } = context.gateway.stores;
  if (input.all === true) {
    await requireAdmin(context, input.actor, "list every allocation");
    return ledger.listAllocations();
  }
  await requireActor(context, input.actor);
  const groups = await permissions.groupsOf(input.actor);
  const owners: AllocationOwner[] = [{ type: "organization" }, ...groups.map((groupId) => ({ type: "group" as const, groupId }))];
  return ledger.listAllocations({ owners });
}

export async function createAllocation(context: ManagementContext, raw: CreateManagedAllocationInput): Promise<AllocationBalance> {
  const input = parseInput(createManagedAllocationInputSchema, raw, "allocation");
  await requireAdmin(context, input.actor, "create allocations");
  if (input.owner.type === "group" && !(await context.gateway.stores.permissions.getGroup(input.owner.groupId))) {
    throw new GatewayError("not_found", `No group has the id '${input.owner.groupId}'.`, { param: "owner.groupId" });
  }
  return context.gateway.stores.ledger.createAllocation({
    name: input.name,
    owner: input.owner,
    limit: input.limit,
    period: input.period ?? null,
  });
}

export async function updateAllocation(context: ManagementContext, raw: UpdateManagedAllocationInput): Promise<AllocationBalance> {
  const input = parseInput(updateManagedAllocationInputSchema, raw, "allocation update");
  await requireAdmin(context, input.actor, "change allocations");
  const { actor: _actor, allocationId, ...patch } = input;
  return context.gateway.stores.ledger.updateAllocation(allocationId, patch);
}
