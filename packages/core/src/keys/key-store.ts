import { z } from "zod";
import { microDollarsSchema } from "../money/micro-dollars.js";
import type { MicroDollars } from "../money/micro-dollars.js";
import { principalIdSchema } from "../provider/provider-record.js";

/** What a key may reach. `null` means no restriction on that axis. */
export interface KeyRestrictions {
  /** Provider ids the key may use. */
  providers: string[] | null;
  /** Full model ids (`owner:provider-name/model-name`) the key may use. */
  models: string[] | null;
}

/** A key as every read returns it: never its secret, nor the secret's hash. */
export interface AiKey {
  id: string;
  userId: string;
  name: string;
  /** The budget allocation every request made with the key draws from. */
  allocationId: string;
  /** `sk-sluice-…abcd`: enough for a person to tell keys apart. */
  hint: string;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
  restrictions: KeyRestrictions;
  /** The key's own lifetime spending cap, on top of its allocation's limit; null for none. */
  limit: MicroDollars | null;
}

export const keyNameSchema = z
  .string({ error: "must be a string" })
  .trim()
  .min(1, { error: "must not be empty" })
  .max(100, { error: "must be at most 100 characters" });

export const keyRestrictionsSchema = z.strictObject({
  providers: z.array(z.string().min(1)).max(100).nullable().optional(),
  models: z.array(z.string().min(1)).max(500).nullable().optional(),
});

export const createKeyInputSchema = z.strictObject({
  userId: principalIdSchema,
  name: keyNameSchema,
  allocationId: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }),
  /** Epoch ms; must lie in the future. Omit or null for a key that does not expire. */
  expiresAt: z.number().int().positive().nullable().optional(),
  restrictions: keyRestrictionsSchema.optional(),
  limit: microDollarsSchema.nullable().optional(),
});
export type CreateKeyInput = z.input<typeof createKeyInputSchema>;

export interface CreatedKey {
  key: AiKey;
  /** The secret, returned this once; only its hash is stored. */
  secret: string;
}

export type KeyVerification =
  | { status: "valid"; key: AiKey }
  | { status: "revoked" | "expired"; key: AiKey }
  | { status: "unknown" };

/**
 * AI keys: each belongs to one user and draws from one budget allocation.
 *
 * Semantics every implementation keeps:
 * - Only a hash of the secret is stored; no read returns the secret or the hash.
 * - A user sees and revokes only their own keys: another user's key id is answered as unknown
 *   (null, or a 404 for a mutation), never as forbidden, so ids leak nothing.
 * - Names are unique among a user's live (unrevoked) keys: a clash throws 409 `conflict`.
 * - `revoke` takes effect at once: the next `verify` of that secret is `revoked`. It is idempotent
 *   and keeps the first revocation time.
 * - `verify` compares in constant time and reports `expired` from the injected clock.
 * - The store does not check that the user may draw from the allocation; the management layer does
 *   at creation and the gateway at every request.
 * Emits `key-create` and `key-revoke`.
 */
export interface KeyStore {
  /** Creates a key and returns its secret once. 400 for an expiry in the past; 409 on a name clash. */
  create(input: CreateKeyInput): Promise<CreatedKey>;

  /** The user's key, or null when there is none with that id for that user. */
  get(input: { userId: string; keyId: string }): Promise<AiKey | null>;

  /** The user's keys, newest first; revoked keys only when asked for. */
  list(input: { userId: string; nameContains?: string; includeRevoked?: boolean }): Promise<AiKey[]>;

  /** Revokes the user's key. 404 when the user has no such key. Idempotent. */
  revoke(input: { userId: string; keyId: string }): Promise<AiKey>;

  /** Looks a presented secret up. Never throws for a malformed secret: `unknown`. */
  verify(secret: string): Promise<KeyVerification>;

  /**
   * Notes that the key was used at `at`. Best effort: implementations may coalesce writes, so
   * `lastUsedAt` may trail by a few seconds, and it never moves backwards.
   */
  recordUse(input: { keyId: string; at: number }): Promise<void>;
}

/** Whether a key's restrictions admit a call to this provider and model. */
export function keyAllows(key: Pick<AiKey, "restrictions">, target: { providerId: string; modelId: string }): boolean {
  const { providers, models } = key.restrictions;
  if (providers !== null && !providers.includes(target.providerId)) return false;
  if (models !== null && !models.includes(target.modelId)) return false;
  return true;
}
