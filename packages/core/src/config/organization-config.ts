import { z } from "zod";
import { GatewayError } from "../errors/gateway-error.js";
import { allocationOwnerSchema } from "../budget/budget-ledger.js";
import { budgetPeriods } from "../budget/budget-period.js";
import { keyRestrictionsSchema } from "../keys/key-store.js";
import { microDollarsSchema } from "../money/micro-dollars.js";
import { grantSubjectSchema, groupIdSchema, roles } from "../permissions/permission-store.js";
import { priceEntrySchema } from "../pricing/price-book.js";
import type { PriceEntry } from "../pricing/price-book.js";
import {
  principalIdSchema,
  providerKinds,
  providerNameSchema,
  providerSecretsSchema,
  providerSettingsSchema,
  providerTagsSchema,
} from "../provider/provider-record.js";
import type { SluiceStores } from "../stores.js";
import { parseInput } from "../validation/parse-input.js";

/**
 * An organization declared in one JSON document: users and their roles, groups and members,
 * allocations, providers with their grants, prices, and keys to create. Hosts keep it in a file
 * (the examples read `SLUICE_CONFIG`) and apply it at start; applying it twice changes nothing.
 */
export const organizationConfigSchema = z.strictObject({
  users: z
    .array(
      z.strictObject({
        id: principalIdSchema,
        displayName: z.string().max(200).optional(),
        roles: z.array(z.enum(roles)).optional(),
      }),
    )
    .default([]),
  groups: z
    .array(z.strictObject({ id: groupIdSchema, name: z.string().min(1).max(200), members: z.array(principalIdSchema).default([]) }))
    .default([]),
  allocations: z
    .array(
      z.strictObject({
        id: z.string().min(1).max(128),
        name: z.string().min(1).max(200),
        owner: allocationOwnerSchema,
        /** Micro-dollars: $50 is 50000000. */
        limit: microDollarsSchema,
        period: z.enum(budgetPeriods).nullable().optional(),
      }),
    )
    .default([]),
  providers: z
    .array(
      z.strictObject({
        owner: principalIdSchema,
        name: providerNameSchema,
        kind: z.enum(providerKinds),
        description: z.string().max(2_000).optional(),
        tags: providerTagsSchema.optional(),
        settings: providerSettingsSchema.default({}),
        secrets: providerSecretsSchema.optional(),
        /** Shared with these, on the owner's behalf. */
        grants: z.array(grantSubjectSchema).default([]),
      }),
    )
    .default([]),
  prices: z.array(priceEntrySchema.omit({ providerId: true }).extend({ provider: z.string().optional() })).default([]),
  keys: z
    .array(
      z.strictObject({
        userId: principalIdSchema,
        name: z.string().min(1).max(100),
        allocationId: z.string().min(1),
        restrictions: keyRestrictionsSchema.optional(),
        limit: microDollarsSchema.nullable().optional(),
      }),
    )
    .default([]),
});
export type OrganizationConfig = z.input<typeof organizationConfigSchema>;

export interface AppliedOrganization {
  /** Secrets of the keys this application created (keys that already existed are not re-created). */
  createdKeys: Array<{ userId: string; name: string; secret: string }>;
  /** Prices with provider names resolved to ids, ready for `createPriceBook`. */
  prices: PriceEntry[];
}

/**
 * Creates or updates everything the config declares. Existing users, groups, allocations and
 * providers (matched by id, or owner and name) are updated in place; keys are created only when
 * the user has no live key of that name. Prices name providers as `owner:provider-name`.
 */
export async function applyOrganizationConfig(input: {
  stores: Pick<SluiceStores, "catalog" | "permissions" | "keys" | "ledger">;
  config: unknown;
}): Promise<AppliedOrganization> {
  const config = parseInput(organizationConfigSchema, input.config, "organization config");
  const { catalog, permissions, keys, ledger } = input.stores;

  for (const user of config.users) {
    await permissions.upsertUser({ id: user.id, displayName: user.displayName ?? null });
    for (const role of user.roles ?? []) await permissions.setRole({ userId: user.id, role, enabled: true });
  }
  for (const group of config.groups) {
    await permissions.upsertGroup({ id: group.id, name: group.name });
    for (const member of group.members) await permissions.addMember({ groupId: group.id, userId: member });
  }
  for (const allocation of config.allocations) {
    const existing = await ledger.getAllocation(allocation.id);
    if (existing) await ledger.updateAllocation(allocation.id, { name: allocation.name, limit: allocation.limit, period: allocation.period ?? null });
    else await ledger.createAllocation({ ...allocation, period: allocation.period ?? null });
  }

  const providerIds = new Map<string, string>();
  for (const provider of config.providers) {
    const { grants, ...fields } = provider;
    const existing = await catalog.findByName({ owner: provider.owner, name: provider.name });
    const record = existing
      ? await catalog.update(existing.id, {
          description: fields.description ?? null,
          tags: fields.tags ?? [],
          settings: fields.settings,
          ...(fields.secrets ? { secrets: fields.secrets } : {}),
        })
      : await catalog.create({ ...fields, description: fields.description ?? null, status: "unknown" });
    providerIds.set(`${record.owner}:${record.name}`, record.id);
    for (const subject of grants) await permissions.grant({ actor: record.owner, provider: record, subject });
  }

  const createdKeys: AppliedOrganization["createdKeys"] = [];
  for (const key of config.keys) {
    const existing = await keys.list({ userId: key.userId, nameContains: key.name });
    if (existing.some((candidate) => candidate.name === key.name)) continue;
    const { secret } = await keys.create(key);
    createdKeys.push({ userId: key.userId, name: key.name, secret });
  }

  const prices = config.prices.map(({ provider, ...price }): PriceEntry => {
    if (provider === undefined) return price;
    const providerId = providerIds.get(provider);
    if (!providerId) {
      throw new GatewayError("invalid_request", `A price names '${provider}', which is not a provider declared in the config.`, {
        param: "prices",
      });
    }
    return { ...price, providerId };
  });
  return { createdKeys, prices };
}
