import type { Allocation, AllocationOwner, BudgetLedger } from "../budget/budget-ledger.js";
import { GatewayError } from "../errors/gateway-error.js";
import type { Caller } from "./authenticate.js";
import type { StoreAnswers } from "./store-answers.js";

export type AllocationIdentity = Pick<Allocation, "id" | "name" | "owner">;

/**
 * Allocations by id, as far as choosing one needs them. An allocation's owner never changes, so
 * a hit saves a store round trip on every keyed request; a renamed allocation shows its old name
 * in this instance's error messages until the entry is evicted. The balance is never cached: the
 * reservation itself checks it.
 */
export class AllocationDirectory {
  readonly #entries = new Map<string, AllocationIdentity>();

  constructor(private readonly capacity = 10_000) {}

  async get(ledger: BudgetLedger, id: string): Promise<AllocationIdentity | null> {
    const cached = this.#entries.get(id);
    if (cached) return cached;
    const allocation = await ledger.getAllocation(id);
    if (!allocation) return null;
    if (this.#entries.size >= this.capacity) this.#entries.clear();
    const identity = { id: allocation.id, name: allocation.name, owner: allocation.owner };
    this.#entries.set(id, identity);
    return identity;
  }
}

/**
 * The allocation a request draws from, checked against the caller's current memberships: a user
 * removed from a group stops drawing from its allocation on the next request, key or not.
 */
export async function chooseAllocation(input: {
  caller: Caller;
  ledger: BudgetLedger;
  answers: StoreAnswers;
  directory: AllocationDirectory;
}): Promise<AllocationIdentity> {
  const { caller, ledger } = input;
  const groups = await input.answers.groupsOf(caller.userId);
  const mayDraw = (owner: AllocationOwner) => owner.type === "organization" || groups.includes(owner.groupId);

  if (caller.allocationId !== null) {
    const allocation = await input.directory.get(ledger, caller.allocationId);
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
