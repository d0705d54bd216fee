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
import { isUniqueViolation, refusingNulText } from "./postgres-errors.js";
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
  /** Writes the key uses still waiting, then stops listening for other instances' changes. Idempotent. */
  close(): Promise<void>;
};

/** The key store as createPostgresStores holds it: with a way to write the pending key uses. */
export type KeyStoreOnChannel = KeyStore & {
  /** Writes every key use `recordUse` is still holding back. */
  flushUses(): Promise<void>;
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

/**
 * `recordUse` writes a key's lastUsedAt at most about once per this many wall-clock ms per
 * instance: the first use in a window is written at once, later ones are merged and written
 * together when the window ends.
 */
const USE_WRITE_INTERVAL_MS = 1_000;

/** AI keys in PostgreSQL, shared by every gateway instance. */
export function createPostgresKeyStore(options: PostgresKeyStoreOptions): PostgresKeyStore {
  const { cache, channel } = resolveCacheOptions(options.cache);
  const invalidation = createCacheInvalidation({ pool: options.pool, channel, listen: cache !== null });
  const { flushUses, ...store } = createKeyStoreOn({ ...options, invalidation });
  let closing: Promise<void> | null = null;
  return {
    ...store,
    close() {
      closing ??= flushUses().finally(() => invalidation.close());
      return closing;
    },
  };
}

/** The key store over a shared invalidation channel (one per instance, from createPostgresStores). */
export function createKeyStoreOn(
  options: PostgresKeyStoreOptions & { invalidation: CacheInvalidation },
): KeyStoreOnChannel {
  const { pool, invalidation } = options;
  const clock = options.clock ?? systemClock;
  const events = options.events ?? createEventBus();
  const { cache } = resolveCacheOptions(options.cache);
  /** Secret hash -> key: `verify` is the hot path, one lookup per request. */
  const verified = cache === null ? null : createTaggedCache<VerifiedKey>(cache);
  if (verified !== null) invalidation.register(verified);

  /** Key id -> the latest use recorded here and not yet written; reads show it over the stored value. */
  const pendingUses = new Map<string, number>();
  /** Key id -> when (wall clock) this instance last wrote its lastUsedAt. */
  const lastWritten = new Map<string, number>();
  let flushTimer: NodeJS.Timeout | null = null;
  let flushing: Promise<void> | null = null;

  /** Writes the uses in `uses` (key id -> at) in one statement, never moving lastUsedAt backwards. */
  async function writeUses(uses: ReadonlyMap<string, number>): Promise<void> {
    if (uses.size === 0) return;
    // Counted from the start, so that uses arriving while this write runs wait for the next window.
    const wroteAt = performance.now();
    for (const keyId of uses.keys()) lastWritten.set(keyId, wroteAt);
    // Best effort by contract: a key deleted or never known is nothing to record.
    await pool.query(
      `UPDATE sluice_keys k SET last_used_at = u.at
       FROM unnest($1::text[], $2::int8[]) AS u (id, at)
       WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`,
      [[...uses.keys()], [...uses.values()]],
    );
    for (const [keyId, at] of uses) {
      // A later use recorded during the write stays pending.
      if (pendingUses.get(keyId) === at) pendingUses.delete(keyId);
    }
  }

  async function flushUses(): Promise<void> {
    if (flushTimer !== null) clearTimeout(flushTimer);
    flushTimer = null;
    await flushing;
    const uses = new Map(pendingUses);
    flushing = writeUses(uses).finally(() => {
      flushing = null;
    });
    await flushing;
    // Forget write times that no longer hold anything back.
    const horizon = performance.now() - USE_WRITE_INTERVAL_MS;
    for (const [keyId, wroteAt] of lastWritten) if (wroteAt < horizon) lastWritten.delete(keyId);
  }

  function scheduleFlush(): void {
    if (flushTimer !== null) return;
    flushTimer = setTimeout(() => {
      flushTimer = null;
      // Best effort: a failed write is retried with the next use's flush, never surfaced.
      flushUses().catch(() => undefined);
    }, USE_WRITE_INTERVAL_MS);
    flushTimer.unref();
  }

  /** The key as stored, with a use recorded here but not yet written. */
  function withPendingUse(key: AiKey): AiKey {
    const pending = pendingUses.get(key.id);
    if (pending === undefined || (key.lastUsedAt !== null && key.lastUsedAt >= pending)) return key;
    return { ...key, lastUsedAt: pending };
  }

  async function loadByHash(secretHash: string): Promise<VerifiedKey> {
    const result = await pool.query<KeyRow>("SELECT * FROM sluice_keys WHERE secret_hash = $1", [secretHash]);
    const row = result.rows[0];
    return row === undefined ? null : { key: toKey(row), secretHash: row.secret_hash };
  }

  return refusingNulText({
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
      return row === undefined ? null : withPendingUse(toKey(row));
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
        .map((row) => withPendingUse(toKey(row)));
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
      const key = withPendingUse(toKey(outcome.row));
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
      const key = withPendingUse(copyKey(found.key));
      if (key.revokedAt !== null) return { status: "revoked", key };
      if (key.expiresAt !== null && key.expiresAt <= clock.now()) return { status: "expired", key };
      return { status: "valid", key };
    },

    async recordUse(input) {
      const fields = parseArgumentObject(input, ["keyId", "at"], "key use");
      const keyId = parseField(keyIdSchema, fields.keyId, "keyId", "key use");
      const at = parseWholeNumber(fields.at, "at", "key use");
      const previous = pendingUses.get(keyId);
      const wroteAt = lastWritten.get(keyId);
      if (previous === undefined && (wroteAt === undefined || performance.now() - wroteAt >= USE_WRITE_INTERVAL_MS)) {
        // The first use of the key in a while is written at once.
        await writeUses(new Map([[keyId, at]]));
      } else {
        // Written moments ago: this use is held back (reads here show it) and written with the
        // others at the end of the window, so a busy key costs one write a second, not one a request.
        if (previous === undefined || previous < at) pendingUses.set(keyId, at);
        scheduleFlush();
      }
      // No announcement: lastUsedAt may trail by the write window plus the cache's TTL on other
      // instances (the contract allows seconds), and a notice per request would flood every
      // instance. This instance's cached verifications move forward at once.
      verified?.update(keyTag(keyId), (entry) => {
        if (entry === null) return entry;
        const stored = entry.key.lastUsedAt;
        return stored !== null && stored >= at ? entry : { ...entry, key: { ...entry.key, lastUsedAt: at } };
      });
    },

    flushUses,
  });
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
