import {
  createEventBus,
  createId,
  createKeyInputSchema,
  GatewayError,
  generateKeySecret,
  hashKeySecret,
  keySecretHint,
  keySecretMatches,
  looksLikeKeySecret,
  parseArgumentObject,
  parseField,
  parseFlag,
  parseInput,
  parseText,
  parseWholeNumber,
  principalIdSchema,
  reserveInputSchema,
  systemClock,
} from "@sluice/core";
import type { AiKey, Clock, CreateKeyInput, KeyStore, KeyVerification, SluiceEventBus } from "@sluice/core";
import type pg from "pg";
import { createCacheInvalidation } from "./cache-invalidation.js";
import type { CacheInvalidation } from "./cache-invalidation.js";
import { readInteger, readNullableInteger } from "./database-values.js";
import { resolveCacheOptions } from "./postgres-cache-options.js";
import type { PostgresCacheOptions } from "./postgres-cache-options.js";
import { isUniqueViolation } from "./postgres-errors.js";
import { createTaggedCache } from "./tagged-cache.js";
import { withTransaction } from "./with-transaction.js";

export interface PostgresKeyStoreOptions {
  /** The pool to query; the caller owns it (closing the store does not end it). */
  pool: pg.Pool;
  clock?: Clock;
  events?: SluiceEventBus;
  cache?: PostgresCacheOptions | false;
}

export type PostgresKeyStore = KeyStore & {
  /** Stops listening for other instances' changes. Idempotent. */
  close(): Promise<void>;
};

/** What `verify` caches per secret hash: the key with its stored hash, or null for no such key. */
type VerifiedKey = { key: AiKey; secretHash: string } | null;

interface KeyRow {
  id: string;
  user_id: string;
  name: string;
  allocation_id: string;
  secret_hash: string;
  hint: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  allowed_providers: string[] | null;
  allowed_models: string[] | null;
  spend_limit: string | null;
}

const keyIdSchema = reserveInputSchema.shape.keyId.unwrap();

/** AI keys in PostgreSQL, shared by every gateway instance. */
export function createPostgresKeyStore(options: PostgresKeyStoreOptions): PostgresKeyStore {
  const { cache, channel } = resolveCacheOptions(options.cache);
  const invalidation = createCacheInvalidation({ pool: options.pool, channel, listen: cache !== null });
  const store = createKeyStoreOn({ ...options, invalidation });
  return { ...store, close: () => invalidation.close() };
}

/** The key store over a shared invalidation channel (one per instance, from createPostgresStores). */
export function createKeyStoreOn(
  options: PostgresKeyStoreOptions & { invalidation: CacheInvalidation },
): KeyStore {
  const { pool, invalidation } = options;
  const clock = options.clock ?? systemClock;
  const events = options.events ?? createEventBus();
  const { cache } = resolveCacheOptions(options.cache);
  /** Secret hash -> key: `verify` is the hot path, one lookup per request. */
  const verified = cache === null ? null : createTaggedCache<VerifiedKey>(cache);
  if (verified !== null) invalidation.register(verified);

  async function loadByHash(secretHash: string): Promise<VerifiedKey> {
    const result = await pool.query<KeyRow>("SELECT * FROM sluice_keys WHERE secret_hash = $1", [secretHash]);
    const row = result.rows[0];
    return row === undefined ? null : { key: toKey(row), secretHash: row.secret_hash };
  }

  return {
    async create(input: CreateKeyInput) {
      const parsed = parseInput(createKeyInputSchema, input, "key");
      const now = clock.now();
      const expiresAt = parsed.expiresAt ?? null;
      if (expiresAt !== null && expiresAt <= now) {
        throw new GatewayError("invalid_request", "Invalid key: 'expiresAt' must lie in the future", {
          param: "expiresAt",
        });
      }
      const secret = generateKeySecret();
      const secretHash = hashKeySecret(secret);
      let row: KeyRow;
      try {
        const result = await pool.query<KeyRow>(
          `INSERT INTO sluice_keys (id, user_id, name, allocation_id, secret_hash, hint, created_at, expires_at,
             last_used_at, revoked_at, allowed_providers, allowed_models, spend_limit)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9, $10, $11)
           RETURNING *`,
          [
            createId("key"),
            parsed.userId,
            parsed.name,
            parsed.allocationId,
            secretHash,
            keySecretHint(secret),
            now,
            expiresAt,
            parsed.restrictions?.providers ?? null,
            parsed.restrictions?.models ?? null,
            parsed.limit ?? null,
          ],
        );
        row = result.rows[0]!;
      } catch (error) {
        if (isUniqueViolation(error, "sluice_keys_live_name_key")) {
          throw new GatewayError("conflict", `You already have a key named '${parsed.name}'.`, { param: "name" });
        }
        throw error;
      }
      const key = toKey(row);
      events.publish("key-create", copyKey(key));
      return { key, secret };
    },

    async get(input) {
      const { userId, keyId } = parseOwnKey(input, "key lookup");
      const result = await pool.query<KeyRow>("SELECT * FROM sluice_keys WHERE id = $1 AND user_id = $2", [
        keyId,
        userId,
      ]);
      const row = result.rows[0];
      return row === undefined ? null : toKey(row);
    },

    async list(input) {
      const what = "key list";
      const fields = parseArgumentObject(input, ["userId", "nameContains", "includeRevoked"], what);
      const userId = parseField(principalIdSchema, fields.userId, "userId", what);
      const nameContains =
        fields.nameContains === undefined ? undefined : parseText(fields.nameContains, "nameContains", what);
      const includeRevoked =
        fields.includeRevoked === undefined ? false : parseFlag(fields.includeRevoked, "includeRevoked", what);
      const result = await pool.query<KeyRow>(
        `SELECT * FROM sluice_keys
         WHERE user_id = $1 AND ($2 OR revoked_at IS NULL)
         ORDER BY created_at DESC, id DESC`,
        [userId, includeRevoked],
      );
      // The name filter runs here, not in SQL: JavaScript's case folding is the contract's, and a
      // user has few keys. SQL's lower() would fold only ASCII under COLLATE "C".
      const needle = nameContains?.toLowerCase();
      return result.rows
        .filter((row) => needle === undefined || row.name.toLowerCase().includes(needle))
        .map(toKey);
    },

    async revoke(input) {
      const { userId, keyId } = parseOwnKey(input, "key revocation");
      const now = clock.now();
      const outcome = await withTransaction(pool, async (client) => {
        const revoked = await client.query<KeyRow>(
          `UPDATE sluice_keys SET revoked_at = $3
           WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL
           RETURNING *`,
          [keyId, userId, now],
        );
        if (revoked.rows[0] !== undefined) {
          await invalidation.announce(client, keyTag(keyId));
          return { row: revoked.rows[0], changed: true };
        }
        const existing = await client.query<KeyRow>("SELECT * FROM sluice_keys WHERE id = $1 AND user_id = $2", [
          keyId,
          userId,
        ]);
        return { row: existing.rows[0], changed: false };
      });
      if (outcome.row === undefined) {
        throw new GatewayError("not_found", "You have no key with that id.", { param: "keyId" });
      }
      const key = toKey(outcome.row);
      if (outcome.changed) {
        invalidation.applyLocally(keyTag(keyId));
        events.publish("key-revoke", copyKey(key));
      }
      return key;
    },

    async verify(secret: string): Promise<KeyVerification> {
      // Whatever arrives here came from an Authorization header: refuse junk before hashing it.
      if (typeof secret !== "string" || !looksLikeKeySecret(secret)) return { status: "unknown" };
      const secretHash = hashKeySecret(secret);
      const found =
        verified === null
          ? await loadByHash(secretHash)
          : await verified.read(
              secretHash,
              () => loadByHash(secretHash),
              // Filed under the key's id, so that its revocation finds it.
              (entry) => (entry === null ? [] : [keyTag(entry.key.id)]),
            );
      if (found === null || !keySecretMatches(secret, found.secretHash)) return { status: "unknown" };
      const key = copyKey(found.key);
      if (key.revokedAt !== null) return { status: "revoked", key };
      if (key.expiresAt !== null && key.expiresAt <= clock.now()) return { status: "expired", key };
      return { status: "valid", key };
    },

    async recordUse(input) {
      const fields = parseArgumentObject(input, ["keyId", "at"], "key use");
      const keyId = parseField(keyIdSchema, fields.keyId, "keyId", "key use");
      const at = parseWholeNumber(fields.at, "at", "key use");
      // Best effort by contract: a key deleted or never known is nothing to record.
      await pool.query(
        `UPDATE sluice_keys SET last_used_at = $2
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`,
        [keyId, at],
      );
      // No announcement: lastUsedAt may trail by the cache's TTL on other instances (the contract
      // allows seconds), and a notice per request would flood every instance. This instance's
      // cached verifications move forward at once.
      verified?.update(keyTag(keyId), (entry) => {
        if (entry === null) return entry;
        const previous = entry.key.lastUsedAt;
        return previous !== null && previous >= at ? entry : { ...entry, key: { ...entry.key, lastUsedAt: at } };
      });
    },
  };
}

function keyTag(keyId: string): string {
  return `key:${keyId}`;
}

function parseOwnKey(input: unknown, what: string): { userId: string; keyId: string } {
  const fields = parseArgumentObject(input, ["userId", "keyId"], what);
  return {
    userId: parseField(principalIdSchema, fields.userId, "userId", what),
    keyId: parseField(keyIdSchema, fields.keyId, "keyId", what),
  };
}

function toKey(row: KeyRow): AiKey {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    allocationId: row.allocation_id,
    hint: row.hint,
    createdAt: readInteger(row.created_at, "sluice_keys.created_at"),
    expiresAt: readNullableInteger(row.expires_at, "sluice_keys.expires_at"),
    lastUsedAt: readNullableInteger(row.last_used_at, "sluice_keys.last_used_at"),
    revokedAt: readNullableInteger(row.revoked_at, "sluice_keys.revoked_at"),
    restrictions: { providers: row.allowed_providers, models: row.allowed_models },
    limit: readNullableInteger(row.spend_limit, "sluice_keys.spend_limit"),
  };
}

function copyKey(key: AiKey): AiKey {
  return {
    ...key,
    restrictions: {
      providers: key.restrictions.providers === null ? null : [...key.restrictions.providers],
      models: key.restrictions.models === null ? null : [...key.restrictions.models],
    },
  };
}
