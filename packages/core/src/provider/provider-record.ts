import { z } from "zod";

export const providerKinds = ["azure-openai", "openai-compatible", "openai-tunnel"] as const;
export type ProviderKind = (typeof providerKinds)[number];

/**
 * A provider's status. Azure providers move `provisioning` → `provisioned` | `failed`; tunnels are
 * `running` | `stopped`; custom OpenAI-compatible providers are `reachable` | `unreachable` after a
 * health check, and `unknown` before the first one.
 */
export const providerStatuses = [
  "provisioning",
  "provisioned",
  "failed",
  "running",
  "stopped",
  "reachable",
  "unreachable",
  "unknown",
] as const;
export type ProviderStatus = (typeof providerStatuses)[number];

/**
 * A user or owner id. It is the first segment of a model id (`owner:provider-name/model-name`), so
 * it may not contain `:` or `/`, nor white space.
 */
const principalIdPattern = /^[^\s:/]+$/;

export const principalIdSchema = z
  .string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(200, { error: "must be at most 200 characters" })
  .regex(principalIdPattern, { error: "must not contain ':', '/' or white space" });

/** Whether `value` passes `principalIdSchema` unchanged: the same check without zod, for hot paths. */
export function isPrincipalId(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= 200 && principalIdPattern.test(value);
}

/** A provider's name, unique per owner: the middle segment of a model id. */
export const providerNameSchema = z
  .string({ error: "must be a string" })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, {
    error: "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
  });

export const providerTagsSchema = z
  .array(z.string().min(1).max(64), { error: "must be an array of strings" })
  .max(32, { error: "must have at most 32 tags" });

/** Kind-specific, non-secret settings (endpoint, deployments, ...): plain JSON, owned by the adapter. */
export const providerSettingsSchema = z.record(z.string(), z.unknown());

/** Secrets by name (`apiKey`, ...). A `null` value in an update deletes that secret. */
export const providerSecretsSchema = z.record(
  z.string().min(1).max(64),
  z.string().min(1, { error: "must not be empty" }).max(16_384),
);

/**
 * A stored provider as every read returns it. It never holds a secret's value: `secretNames` says
 * which secrets are set, so a UI can show "API key: set".
 */
export interface ProviderRecord {
  id: string;
  kind: ProviderKind;
  /** The owning user's id. */
  owner: string;
  name: string;
  description: string | null;
  tags: string[];
  status: ProviderStatus;
  /** Why the status is what it is, e.g. Azure's message for a failed provisioning. */
  statusReason: string | null;
  settings: Record<string, unknown>;
  secretNames: string[];
  createdAt: number;
  updatedAt: number;
  /** Increments on every change; pass it back as `expectedVersion` for optimistic updates. */
  version: number;
}

export const createProviderInputSchema = z.strictObject({
  /** Lets an adapter choose the id (a tunnel's id, say); generated when absent. */
  id: z.string().min(1).max(128).optional(),
  kind: z.enum(providerKinds),
  owner: principalIdSchema,
  name: providerNameSchema,
  description: z.string().max(2_000).nullable().optional(),
  tags: providerTagsSchema.optional(),
  status: z.enum(providerStatuses).optional(),
  statusReason: z.string().max(4_000).nullable().optional(),
  settings: providerSettingsSchema.optional(),
  secrets: providerSecretsSchema.optional(),
});
export type CreateProviderInput = z.input<typeof createProviderInputSchema>;

export const updateProviderInputSchema = z.strictObject({
  name: providerNameSchema.optional(),
  description: z.string().max(2_000).nullable().optional(),
  tags: providerTagsSchema.optional(),
  status: z.enum(providerStatuses).optional(),
  statusReason: z.string().max(4_000).nullable().optional(),
  /** Replaces the settings object whole. */
  settings: providerSettingsSchema.optional(),
  /** Sets the named secrets; a `null` value deletes one. Secrets not named stay as they are. */
  secrets: z.record(z.string().min(1).max(64), z.string().min(1).max(16_384).nullable()).optional(),
});
export type UpdateProviderInput = z.input<typeof updateProviderInputSchema>;

/** A provider as the permission checks need it. */
export type ProviderRef = Pick<ProviderRecord, "id" | "owner" | "kind">;
