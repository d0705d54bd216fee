import { z } from "zod";
import { GatewayError } from "../errors/gateway-error.js";
import { keyNameSchema, keyRestrictionsSchema } from "../keys/key-store.js";
import type { AiKey } from "../keys/key-store.js";
import { microDollarsSchema } from "../money/micro-dollars.js";
import { parseModelId } from "../provider/model-id.js";
import { parseInput } from "../validation/parse-input.js";
import { instantSchema } from "./instant-schema.js";
import { mayDrawFrom } from "./manage-allocations.js";
import { actorSchema, requireActor } from "./management-context.js";
import type { ManagementContext } from "./management-context.js";

export const createManagedKeyInputSchema = z.strictObject({
  actor: actorSchema,
  name: keyNameSchema,
  /** The allocation every request made with the key draws from: the organization's or one of the actor's groups'. */
  allocationId: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }).max(128),
  /** When the key stops working; it must lie in the future. Omit or null for a key that never expires. */
  expiresAt: instantSchema.nullable().optional(),
  /** Provider ids and model ids (`owner:provider-name/model-name`) the key is limited to; null for any. */
  restrictions: keyRestrictionsSchema.optional(),
  /** The key's own lifetime spending cap in micro-dollars, on top of its allocation's limit. */
  limit: microDollarsSchema.nullable().optional(),
});
export type CreateManagedKeyInput = z.input<typeof createManagedKeyInputSchema>;

export const listKeysInputSchema = z.strictObject({
  actor: actorSchema,
  /** Only keys whose name contains this, ignoring case. */
  nameContains: z.string({ error: "must be a string" }).max(100).optional(),
  includeRevoked: z.boolean({ error: "must be a boolean" }).optional(),
});
export type ListKeysInput = z.input<typeof listKeysInputSchema>;

export const keyInputSchema = z.strictObject({
  actor: actorSchema,
  keyId: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }).max(128),
});
export type KeyInput = z.input<typeof keyInputSchema>;

/** A key as its owner sees it in their list: never its secret. */
export interface KeyView extends AiKey {
  /** The allocation's name, or null when it no longer exists. */
  allocationName: string | null;
  status: "active" | "expired" | "revoked";
}

export interface CreatedKeyView {
  key: KeyView;
  /** The secret, shown this once: only its hash is kept. */
  secret: string;
}

export async function createKey(context: ManagementContext, raw: CreateManagedKeyInput): Promise<CreatedKeyView> {
  const input = parseInput(createManagedKeyInputSchema, raw, "key");
  await requireActor(context, input.actor);
  const { ledger, keys } = context.gateway.stores;
  const allocation = await ledger.getAllocation(input.allocationId);
  if (!allocation) {
    throw new GatewayError("not_found", `No allocation has the id '${input.allocationId}'.`, { param: "allocationId" });
  }
  if (!(await mayDrawFrom(context, input.actor, allocation))) {
    throw new GatewayError(
      "permission_denied",
      `You may not draw from the allocation '${allocation.name}': it belongs to a group you are not in.`,
      { param: "allocationId" },
    );
  }
  if (input.restrictions) await checkRestrictions(context, input.actor, input.restrictions);
  const created = await keys.create({
    userId: input.actor,
    name: input.name,
    allocationId: allocation.id,
    expiresAt: input.expiresAt ?? null,
    ...(input.restrictions ? { restrictions: input.restrictions } : {}),
    limit: input.limit ?? null,
  });
  return { key: toKeyView(created.key, allocation.name, context.gateway.clock.now()), secret: created.secret };
}

/** The actor's own keys, newest first. */
export async function listKeys(context: ManagementContext, raw: ListKeysInput): Promise<KeyView[]> {
  const input = parseInput(listKeysInputSchema, raw, "request");
  await requireActor(context, input.actor);
  const listed = await context.gateway.stores.keys.list({
    userId: input.actor,
    ...(input.nameContains !== undefined ? { nameContains: input.nameContains } : {}),
    ...(input.includeRevoked !== undefined ? { includeRevoked: input.includeRevoked } : {}),
  });
  const names = await allocationNames(context);
  const now = context.gateway.clock.now();
  return listed.map((key) => toKeyView(key, names.get(key.allocationId) ?? null, now));
}

/** Revokes one of the actor's own keys; another user's key id is answered as unknown (404). */
export async function revokeKey(context: ManagementContext, raw: KeyInput): Promise<KeyView> {
  const input = parseInput(keyInputSchema, raw, "request");
  await requireActor(context, input.actor);
  const key = await context.gateway.stores.keys.revoke({ userId: input.actor, keyId: input.keyId });
  const allocation = await context.gateway.stores.ledger.getAllocation(key.allocationId);
  return toKeyView(key, allocation?.name ?? null, context.gateway.clock.now());
}

export async function allocationNames(context: ManagementContext): Promise<Map<string, string>> {
  return new Map((await context.gateway.stores.ledger.listAllocations()).map((allocation) => [allocation.id, allocation.name]));
}

/**
 * A restriction may only name providers and models the actor may use now: anything else is
 * refused with the same words whether it exists or not.
 */
async function checkRestrictions(
  context: ManagementContext,
  actor: string,
  restrictions: { providers?: string[] | null | undefined; models?: string[] | null | undefined },
): Promise<void> {
  const { catalog, permissions } = context.gateway.stores;
  for (const [index, providerId] of (restrictions.providers ?? []).entries()) {
    const record = await catalog.get(providerId);
    if (!record || !(await permissions.canUse(actor, record))) {
      throw new GatewayError("invalid_request", `'${providerId}' is not a provider you may use.`, {
        param: `restrictions.providers[${index}]`,
      });
    }
  }
  for (const [index, modelId] of (restrictions.models ?? []).entries()) {
    const parsed = parseModelId(modelId);
    const record = parsed ? await catalog.findByName({ owner: parsed.owner, name: parsed.providerName }).catch(() => null) : null;
    if (!record || !(await permissions.canUse(actor, record))) {
      throw new GatewayError(
        "invalid_request",
        `'${modelId}' is not a model you may use; model ids look like 'owner:provider-name/model-name'.`,
        { param: `restrictions.models[${index}]` },
      );
    }
  }
}

function toKeyView(key: AiKey, allocationName: string | null, now: number): KeyView {
  const status = key.revokedAt !== null ? "revoked" : key.expiresAt !== null && key.expiresAt <= now ? "expired" : "active";
  return { ...key, restrictions: { ...key.restrictions }, allocationName, status };
}
