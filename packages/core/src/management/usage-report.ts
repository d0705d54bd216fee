import { z } from "zod";
import type { AllocationBalance, UsageGroup, UsageGrouping, UsageTotals } from "../budget/budget-ledger.js";
import { parseInput } from "../validation/parse-input.js";
import { listAllocations } from "./manage-allocations.js";
import { allocationNames } from "./manage-keys.js";
import { actorSchema, requireActor, requireAdmin } from "./management-context.js";
import type { ManagementContext } from "./management-context.js";
import { usageShares } from "./usage-shares.js";
import { checkUsageRange, resolveUsageRange, usageRangeFields } from "./usage-range.js";

export const usageInputSchema = z
  .strictObject({
    actor: actorSchema,
    ...usageRangeFields,
    /** How to break the spend down: by model (default) or by key. */
    breakdown: z.enum(["model", "key"]).optional(),
  })
  .superRefine(checkUsageRange);
export type UsageInput = z.input<typeof usageInputSchema>;

export const organizationUsageInputSchema = z
  .strictObject({
    actor: actorSchema,
    ...usageRangeFields,
    /** How to break the spend down: by model (default), by user or by allocation. */
    breakdown: z.enum(["model", "user", "allocation"]).optional(),
  })
  .superRefine(checkUsageRange);
export type OrganizationUsageInput = z.input<typeof organizationUsageInputSchema>;

/** One row of a report: a day, model, key, user or allocation, with its part of the total. */
export interface UsageRow extends UsageTotals {
  /** The day (`YYYY-MM-DD`, UTC), model id, key id, user id or allocation id; null for requests made without a key. */
  key: string | null;
  /** What to show for it: the key's or allocation's name, the user's display name; the key itself otherwise. */
  label: string | null;
  /** Its part of the total (of `shareOf`): a fraction, and a percentage to one decimal. */
  share: number;
  sharePercent: number;
}

export interface UsageSummary {
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, exclusive. */
  to: number;
  /**
   * What the shares divide: the cost, or the tokens when nothing in the range had a price
   * (unpriced models are metered at zero cost).
   */
  shareOf: "cost" | "tokens";
  /** Money in integer micro-dollars. `activeUsers` counts the distinct users who made requests. */
  totals: UsageTotals;
  /** One row per UTC day of the range, oldest first, days without use included. */
  daily: UsageRow[];
  breakdown: { by: UsageGrouping; rows: UsageRow[] };
}

export interface PersonalUsage extends UsageSummary {
  /** The allocations the user may draw from, with their balances now. */
  allocations: AllocationBalance[];
}

/** The actor's own usage: what they spent with their keys and through the host's pages. */
export async function personalUsage(context: ManagementContext, raw: UsageInput): Promise<PersonalUsage> {
  const input = parseInput(usageInputSchema, raw, "usage query");
  await requireActor(context, input.actor);
  const by = input.breakdown ?? "model";
  const labels =
    by === "key"
      ? new Map(
          (await context.gateway.stores.keys.list({ userId: input.actor, includeRevoked: true })).map((key) => [key.id, key.name]),
        )
      : null;
  const summary = await summarize(context, { range: input, userId: input.actor, by, labels });
  const allocations = await listAllocations(context, { actor: input.actor });
  return { ...summary, allocations };
}

/** The organization's usage, for org admins: every user's requests. */
export async function organizationUsage(context: ManagementContext, raw: OrganizationUsageInput): Promise<UsageSummary> {
  const input = parseInput(organizationUsageInputSchema, raw, "usage query");
  await requireAdmin(context, input.actor, "read the organization's usage");
  const by = input.breakdown ?? "model";
  let labels: Map<string, string> | null = null;
  if (by === "user") {
    labels = new Map((await context.gateway.stores.permissions.listUsers()).map((user) => [user.id, user.displayName ?? user.id]));
  } else if (by === "allocation") {
    labels = await allocationNames(context);
  }
  return summarize(context, { range: input, userId: null, by, labels });
}

async function summarize(
  context: ManagementContext,
  input: {
    range: { days?: number | undefined; from?: number | undefined; to?: number | undefined };
    userId: string | null;
    by: UsageGrouping;
    labels: Map<string, string> | null;
  },
): Promise<UsageSummary> {
  const { from, to } = resolveUsageRange(input.range, context.gateway.clock.now());
  const { ledger } = context.gateway.stores;
  const query = { from, to, ...(input.userId === null ? {} : { userId: input.userId }) };
  const [daily, breakdown] = await Promise.all([
    ledger.usage({ ...query, groupBy: "day" }),
    ledger.usage({ ...query, groupBy: input.by }),
  ]);
  const totals = breakdown.totals;
  const shareOf = totals.cost > 0 ? "cost" : "tokens";
  return {
    from,
    to,
    shareOf,
    totals: { ...totals },
    daily: toRows(daily.groups, shareOf, null),
    breakdown: { by: input.by, rows: toRows(breakdown.groups, shareOf, input.labels) },
  };
}

function toRows(groups: readonly UsageGroup[], shareOf: "cost" | "tokens", labels: Map<string, string> | null): UsageRow[] {
  const shares = usageShares(groups.map((group) => (shareOf === "cost" ? group.cost : group.totalTokens)));
  return groups.map((group, index) => ({
    ...group,
    label: group.key === null ? null : (labels?.get(group.key) ?? group.key),
    share: shares[index]!.share,
    sharePercent: shares[index]!.sharePercent,
  }));
}
