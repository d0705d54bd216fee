import { z } from "zod";
import { GatewayError } from "../errors/gateway-error.js";
import {
  providerKinds,
  providerNameSchema,
  providerSecretsSchema,
  providerSettingsSchema,
  providerTagsSchema,
} from "../provider/provider-record.js";
import type { ProviderRecord, UpdateProviderInput } from "../provider/provider-record.js";
import type { ProviderAdapter } from "../provider/provider.js";
import { parseInput } from "../validation/parse-input.js";
import { actorSchema, providerIdSchema, requireActor } from "./management-context.js";
import type { ManagementContext } from "./management-context.js";
import { discoveredProviderKinds, manageableProvider, refuseDiscovered, visibleProvider } from "./provider-access.js";
import { providerModels, toProviderView } from "./provider-view.js";
import type { ProviderView } from "./provider-view.js";

const descriptionSchema = z.string({ error: "must be a string" }).max(2_000, { error: "must be at most 2000 characters" });

export const listProvidersInputSchema = z.strictObject({
  actor: actorSchema,
  /**
   * `use` (default): the providers the actor may use, as the chat page lists them.
   * `manage`: the providers the actor may change and share (their own; every one for an org admin).
   */
  scope: z.enum(["use", "manage"]).optional(),
  /** List each provider's models (default true). */
  models: z.boolean({ error: "must be a boolean" }).optional(),
});
export type ListProvidersInput = z.input<typeof listProvidersInputSchema>;

export const createManagedProviderInputSchema = z.strictObject({
  actor: actorSchema,
  kind: z.enum(providerKinds),
  name: providerNameSchema,
  description: descriptionSchema.nullable().optional(),
  tags: providerTagsSchema.optional(),
  /** The kind's settings; its adapter validates them (`settings.endpoint` for OpenAI-compatible). */
  settings: providerSettingsSchema.optional(),
  /** Secrets by name (`apiKey`); stored sealed, never shown again. */
  secrets: providerSecretsSchema.optional(),
});
export type CreateManagedProviderInput = z.input<typeof createManagedProviderInputSchema>;

export const providerInputSchema = z.strictObject({ actor: actorSchema, providerId: providerIdSchema });
export type ProviderInput = z.input<typeof providerInputSchema>;

export const updateManagedProviderInputSchema = z.strictObject({
  actor: actorSchema,
  providerId: providerIdSchema,
  /** Refuse with a 409 unless the provider is still at this version. */
  expectedVersion: z.number({ error: "must be a number" }).int().positive().optional(),
  name: providerNameSchema.optional(),
  description: descriptionSchema.nullable().optional(),
  tags: providerTagsSchema.optional(),
  /** Merged into the current settings key by key; a `null` value removes that setting. */
  settings: z.record(z.string(), z.unknown(), { error: "must be an object" }).optional(),
  /** Sets the named secrets; a `null` value removes one. Secrets not named stay as they are. */
  secrets: z
    .record(z.string().min(1).max(64), z.string().min(1, { error: "must not be empty" }).max(16_384).nullable(), {
      error: "must be an object of secret names to strings",
    })
    .optional(),
});
export type UpdateManagedProviderInput = z.input<typeof updateManagedProviderInputSchema>;

export interface DeletedProvider {
  id: string;
  deleted: true;
}

export async function listProviders(context: ManagementContext, raw: ListProvidersInput): Promise<ProviderView[]> {
  const input = parseInput(listProvidersInputSchema, raw, "request");
  await requireActor(context, input.actor);
  const { catalog, permissions } = context.gateway.stores;
  const scope = input.scope ?? "use";
  const listed: Array<{ record: ProviderRecord; use: boolean; manage: boolean }> = [];
  for (const record of await catalog.list()) {
    const [use, manage] = await Promise.all([permissions.canUse(input.actor, record), permissions.canManage(input.actor, record)]);
    if (scope === "use" ? use : manage) listed.push({ record, use, manage });
  }
  return Promise.all(
    listed.map(async ({ record, use, manage }) =>
      toProviderView(record, { use, manage }, input.models === false ? undefined : await providerModels(context, record)),
    ),
  );
}

export async function createProvider(context: ManagementContext, raw: CreateManagedProviderInput): Promise<ProviderView> {
  const input = parseInput(createManagedProviderInputSchema, raw, "provider");
  await requireActor(context, input.actor);
  const { catalog, permissions } = context.gateway.stores;
  if (!(await permissions.hasRole(input.actor, "aiprovider:create"))) {
    throw new GatewayError(
      "permission_denied",
      "Creating providers needs the 'aiprovider:create' permission; ask an organization admin for it.",
    );
  }
  if (discoveredProviderKinds.has(input.kind)) {
    throw new GatewayError(
      "invalid_request",
      `Providers of kind '${input.kind}' are not created by hand: one appears when its session's tunnel starts.`,
      { param: "kind" },
    );
  }
  const adapter = adapterFor(context, input.kind);
  const secrets = input.secrets ?? {};
  const settings = validateSettings(adapter, input.settings ?? {}, secrets);
  const record = await catalog.create({
    kind: input.kind,
    owner: input.actor,
    name: input.name,
    description: input.description ?? null,
    tags: input.tags ?? [],
    status: "unknown",
    settings,
    secrets,
  });
  try {
    adapter.provision?.({ record });
  } catch {
    // The record is stored and returned either way: a provisioning that cannot even start shows
    // as the record's status staying put, never as a failed create that in fact created.
  }
  return toProviderView(record, { use: true, manage: true });
}

export async function getProvider(context: ManagementContext, raw: ProviderInput): Promise<ProviderView> {
  const input = parseInput(providerInputSchema, raw, "request");
  await requireActor(context, input.actor);
  const { record, access } = await visibleProvider(context, input.actor, input.providerId);
  return toProviderView(record, access, await providerModels(context, record));
}

export async function updateProvider(context: ManagementContext, raw: UpdateManagedProviderInput): Promise<ProviderView> {
  const input = parseInput(updateManagedProviderInputSchema, raw, "provider update");
  await requireActor(context, input.actor);
  const { record, access } = await manageableProvider(context, input.actor, input.providerId, "update");
  refuseDiscovered(record, "updated");

  const patch: UpdateProviderInput = {};
  if (input.name !== undefined) patch.name = input.name;
  if (input.description !== undefined) patch.description = input.description;
  if (input.tags !== undefined) patch.tags = input.tags;
  if (input.settings !== undefined || input.secrets !== undefined) {
    const settings = input.settings === undefined ? record.settings : mergeSettings(record.settings, input.settings);
    const validated = validateSettings(adapterFor(context, record.kind), settings, input.secrets ?? {});
    if (input.settings !== undefined) patch.settings = validated;
    if (input.secrets !== undefined) patch.secrets = input.secrets;
  }
  const updated = await context.gateway.stores.catalog.update(
    record.id,
    patch,
    input.expectedVersion === undefined ? {} : { expectedVersion: input.expectedVersion },
  );
  return toProviderView(updated, access);
}

/**
 * Deletes the provider, then drops its grants and its live connections. The adapter's
 * `deprovision` runs first (a refusal keeps the record); then the catalog's delete, so no request
 * can resolve the provider once that has begun; past usage records stay in the ledger.
 */
export async function deleteProvider(context: ManagementContext, raw: ProviderInput): Promise<DeletedProvider> {
  const input = parseInput(providerInputSchema, raw, "request");
  await requireActor(context, input.actor);
  const { record } = await manageableProvider(context, input.actor, input.providerId, "delete");
  refuseDiscovered(record, "deleted");
  const { catalog, permissions } = context.gateway.stores;
  await context.adapters.get(record.kind)?.deprovision?.({ record });
  await catalog.delete(record.id);
  await permissions.forgetProvider(record.id);
  context.gateway.registry.forget(record.id);
  return { id: record.id, deleted: true };
}

/**
 * Discovers the provider's models afresh: its live Provider (and the adapter's model cache) is
 * rebuilt, its health checked, and a changed status stored (which emits `provider-update` and
 * `provider-status-change`).
 */
export async function discoverModels(context: ManagementContext, raw: ProviderInput): Promise<ProviderView> {
  const input = parseInput(providerInputSchema, raw, "request");
  await requireActor(context, input.actor);
  const { record, access } = await manageableProvider(context, input.actor, input.providerId, "rediscover the models of");
  const { catalog } = context.gateway.stores;
  context.gateway.registry.forget(record.id);

  const provider = context.gateway.registry.get(record);
  const [health, models] = await Promise.all([
    provider.then((live) => live.health({ signal: AbortSignal.timeout(context.gateway.timeouts.firstByteMs) })).catch(() => null),
    providerModels(context, record),
  ]);
  let current = record;
  if (health && (health.status !== record.status || health.reason !== record.statusReason)) {
    current = await catalog.update(record.id, { status: health.status, statusReason: health.reason });
  }
  return toProviderView(current, access, models);
}

function adapterFor(context: ManagementContext, kind: string): ProviderAdapter {
  const adapter = context.adapters.get(kind);
  if (!adapter) {
    throw new GatewayError("invalid_request", `This gateway serves no providers of kind '${kind}'.`, { param: "kind" });
  }
  return adapter;
}

/** The adapter's own check of a provider's settings and secrets; any JSON object without one. */
function validateSettings(
  adapter: ProviderAdapter,
  settings: Record<string, unknown>,
  secrets: Record<string, string | null>,
): Record<string, unknown> {
  return adapter.validate ? adapter.validate({ settings, secrets }) : settings;
}

/** JSON-merge-patch at the top level: named keys replace, `null` removes, the rest stay. */
function mergeSettings(current: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...current };
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete merged[name];
    else merged[name] = value;
  }
  return merged;
}
