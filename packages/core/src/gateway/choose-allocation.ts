import type { AllocationBalance, AllocationOwner, BudgetLedger } from "../budget/budget-ledger.js";
import { GatewayError } from "../errors/gateway-error.js";
import type { PermissionStore } from "../permissions/permission-store.js";
import type { Caller } from "./authenticate.js";

/**
 * The allocation a request draws from, checked against the caller's current memberships: a user
 * removed from a group stops drawing from its allocation on the next request, key or not.
 */
export async function chooseAllocation(input: {
  caller: Caller;
  ledger: BudgetLedger;
  permissions: PermissionStore;
}): Promise<AllocationBalance> {
  const { caller, ledger, permissions } = input;
  const groups = await permissions.groupsOf(caller.userId);
  const mayDraw = (owner: AllocationOwner) => owner.type === "organization" || groups.includes(owner.groupId);

  if (caller.allocationId !== null) {
    const allocation = await ledger.getAllocation(caller.allocationId);
    if (!allocation || !mayDraw(allocation.owner)) {
      throw new GatewayError(
        "permission_denied",
        allocation
          ? `You may no longer draw from the allocation '${allocation.name}'; ask an admin, or use a key bound to another allocation.`
          : "The budget allocation this request draws from no longer exists.",
      );
    }
    return allocation;
  }

  const owners: AllocationOwner[] = [{ type: "organization" }, ...groups.map((groupId) => ({ type: "group" as const, groupId }))];
  const allocations = await ledger.listAllocations({ owners });
  const chosen = allocations.find((allocation) => allocation.remaining > 0) ?? allocations[0];
  if (!chosen) {
    throw new GatewayError("allocation_exhausted", "You have no budget allocation to draw from; ask an admin for one.");
  }
  return chosen;
}
