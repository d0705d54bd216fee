import {
  applyProviderPatch,
  createEventBus,
  createId,
  createProviderInputSchema,
  GatewayError,
  normalizeProviderSettings,
  parseArgumentObject,
  parseField,
  parseInput,
  parseWholeNumber,
  principalIdSchema,
  providerNameSchema,
  providerRefSchema,
  systemClock,
  updateProviderInputSchema,
} from "@sluice/core";
import type {
  Clock,
  CreateProviderInput,
  ListProvidersFilter,
  ProviderCatalog,
  ProviderKind,
  ProviderRecord,
  ProviderStatus,
  SecretBox,
  SluiceEventBus,
  UpdateProviderInput,
  UpdateProviderOptions,
} from "@sluice/core";
import type pg from "pg";
import { createCacheInvalidation } from "./cache-invalidation.js";
import type { CacheInvalidation } from "./cache-invalidation.js";
import { readInteger } from "./database-values.js";
import { resolveCacheOptions } from "./postgres-cache-options.js";
import type { PostgresCacheOptions } from "./postgres-cache-options.js";
import { isUniqueViolation, refusingNulText } from "./postgres-errors.js";
import { createTaggedCache } from "./tagged-cache.js";
import { withTransaction } from "./with-transaction.js";

export interface PostgresProviderCatalogOptions {
  /** The pool to query; the caller owns it. */
  pool: pg.Pool;
  secretBox: SecretBox;
  clock?: Clock;
  events?: SluiceEventBus;
}

interface ProviderRow {
  id: string;
  kind: ProviderKind;
  owner: string;
  name: string;
  description: string | null;
  tags: string[];
  status: ProviderStatus;
  status_reason: string | null;
  settings: Record<string, unknown>;
  sealed_secrets: Record<string, string>;
  created_at: string;
  updated_at: string;
  version: string;
}

const providerIdSchema = providerRefSchema.shape.id;

/**
 * Every cached catalog read is filed under this one tag: providers change rarely (an admin's
 * edit), so any change drops the whole catalog cache, on every instance.
 */
const CATALOG_TAG = "catalog";

/**
 * The provider catalog in PostgreSQL; secrets are stored sealed by the host's secret box. On its
 * own it caches nothing (it still announces its changes, so instances from createPostgresStores
 * drop what they cached); createPostgresStores gives it a cache.
 */
export function createPostgresProviderCatalog(options: PostgresProviderCatalogOptions): ProviderCatalog {
  const { channel } = resolveCacheOptions(undefined);
  const invalidation = createCacheInvalidation({ pool: options.pool, channel, listen: false });
  return createProviderCatalogOn({ ...options, invalidation, cache: false });
}

/**
 * The catalog over a shared invalidation channel (one per instance, from createPostgresStores).
 * `get` and `findByName` (one per request, resolving the model's provider) answer from a cache
 * that every change through any instance drops.
 */
export function createProviderCatalogOn(
  options: PostgresProviderCatalogOptions & { invalidation: CacheInvalidation; cache?: PostgresCacheOptions | false },
): ProviderCatalog {
  const { pool, secretBox, invalidation } = options;
  const clock = options.clock ?? systemClock;
  const events = options.events ?? createEventBus();
  const { cache } = resolveCacheOptions(options.cache);
  const records = cache === null ? null : createTaggedCache<ProviderRecord | null>(cache);
  if (records !== null) invalidation.register(records);

  /** A provider read by `condition`, from the cache when it has it; always a copy of what is cached. */
  async function readOne(cacheKey: string, condition: string, values: unknown[]): Promise<ProviderRecord | null> {
    const load = async (): Promise<ProviderRecord | null> => {
      const result = await pool.query<ProviderRow>(`SELECT * FROM sluice_providers WHERE ${condition}`, values);
      const row = result.rows[0];
      return row === undefined ? null : toRecord(row);
    };
    if (records === null) return load();
    const found = await records.read(cacheKey, load, () => [CATALOG_TAG]);
    return found === null ? null : structuredClone(found);
  }

  /** Runs a change in a transaction that tells every instance's catalog cache when it commits. */
  async function changing<Result>(work: (client: pg.PoolClient) => Promise<{ result: Result; changed: boolean }>): Promise<Result> {
    const outcome = await withTransaction(pool, async (client) => {
      const done = await work(client);
      if (done.changed) await invalidation.announce(client, CATALOG_TAG);
      return done;
    });
    if (outcome.changed) invalidation.applyLocally(CATALOG_TAG);
    return outcome.result;
  }

  function seal(providerId: string, secretName: string, value: string): string {
    return secretBox.seal(value, secretContext(providerId, secretName));
  }

  /** Whether a stored sealed secret already holds `value`, so re-sending the same key is no change. */
  function sealsValue(sealed: string, providerId: string, secretName: string, value: string): boolean {
    try {
      return secretBox.open(sealed, secretContext(providerId, secretName)) === value;
    } catch {
      // Sealed under another key: whatever it held, the new value replaces it.
      return false;
    }
  }

  return refusingNulText({
    async create(input: CreateProviderInput) {
      const parsed = parseInput(createProviderInputSchema, input, "provider");
      const id = parsed.id ?? createId("prv");
      const settings = normalizeProviderSettings(parsed.settings ?? {});
      const sealedSecrets: Record<string, string> = {};
      for (const [secretName, value] of Object.entries(parsed.secrets ?? {})) {
        sealedSecrets[secretName] = seal(id, secretName, value);
      }
      const now = clock.now();
      let row: ProviderRow;
      try {
        // A new provider can answer a lookup that found nothing before: cached misses go too.
        row = await changing(async (client) => {
          const result = await client.query<ProviderRow>(
            `INSERT INTO sluice_providers (id, kind, owner, name, description, tags, status, status_reason, settings,
               sealed_secrets, created_at, updated_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, 1)
             RETURNING *`,
            [
              id,
              parsed.kind,
              parsed.owner,
              parsed.name,
              parsed.description ?? null,
              parsed.tags ?? [],
              parsed.status ?? "unknown",
              parsed.statusReason ?? null,
              JSON.stringify(settings),
              JSON.stringify(sealedSecrets),
              now,
            ],
          );
          return { result: result.rows[0]!, changed: true };
        });
      } catch (error) {
        if (isUniqueViolation(error, "sluice_providers_pkey")) {
          throw new GatewayError("conflict", `A provider with the id '${id}' already exists.`, { param: "id" });
        }
        if (isUniqueViolation(error, "sluice_providers_owner_name_key")) throw nameTaken(parsed.owner, parsed.name);
        throw error;
      }
      const record = toRecord(row);
      events.publish("provider-create", structuredClone(record));
      return record;
    },

    async get(id: string) {
      const providerId = parseField(providerIdSchema, id, "id", "provider lookup");
      return readOne(`id\n${providerId}`, "id = $1", [providerId]);
    },

    async findByName(input: { owner: string; name: string }) {
      const fields = parseArgumentObject(input, ["owner", "name"], "provider lookup");
      const owner = parseField(principalIdSchema, fields.owner, "owner", "provider lookup");
      const name = parseField(providerNameSchema, fields.name, "name", "provider lookup");
      return readOne(`name\n${owner}\n${name}`, "owner = $1 AND name = $2", [owner, name]);
    },

    async list(filter?: ListProvidersFilter) {
      const fields = parseArgumentObject(filter ?? {}, ["owner", "kind", "ids"], "provider filter");
      const conditions: string[] = [];
      const values: unknown[] = [];
      if (fields.owner !== undefined) {
        values.push(parseField(principalIdSchema, fields.owner, "owner", "provider filter"));
        conditions.push(`owner = $${values.length}`);
      }
      if (fields.kind !== undefined) {
        values.push(parseField(createProviderInputSchema.shape.kind, fields.kind, "kind", "provider filter"));
        conditions.push(`kind = $${values.length}`);
      }
      if (fields.ids !== undefined) {
        values.push(parseField(providerIdSchema.array(), fields.ids, "ids", "provider filter"));
        conditions.push(`id = ANY ($${values.length}::text[])`);
      }
      const where = conditions.length === 0 ? "" : `WHERE ${conditions.join(" AND ")}`;
      const result = await pool.query<ProviderRow>(`SELECT * FROM sluice_providers ${where} ORDER BY owner, name`, values);
      return result.rows.map(toRecord);
    },

    async update(id: string, patch: UpdateProviderInput, updateOptions?: UpdateProviderOptions) {
      const providerId = parseField(providerIdSchema, id, "id", "provider update");
      const parsed = parseInput(updateProviderInputSchema, patch, "provider update");
      const optionFields = parseArgumentObject(updateOptions ?? {}, ["expectedVersion"], "update options");
      const expectedVersion =
        optionFields.expectedVersion === undefined
          ? undefined
          : parseWholeNumber(optionFields.expectedVersion, "expectedVersion", "update options");

      const outcome = await changing(async (client) => {
        const locked = await client.query<ProviderRow>("SELECT * FROM sluice_providers WHERE id = $1 FOR UPDATE", [
          providerId,
        ]);
        const row = locked.rows[0];
        if (row === undefined) throw providerNotFound(providerId);
        const current = toRecord(row);
        if (expectedVersion !== undefined && expectedVersion !== current.version) {
          throw new GatewayError(
            "conflict",
            `The provider changed: it is at version ${current.version}, not ${expectedVersion}.`,
            { param: "expectedVersion" },
          );
        }

        const { next, changed: fieldsChanged } = applyProviderPatch(current, parsed);
        let changed = fieldsChanged;
        const sealedSecrets = { ...row.sealed_secrets };
        if (parsed.secrets !== undefined) {
          let secretsChanged = false;
          for (const [secretName, value] of Object.entries(parsed.secrets)) {
            const existing = sealedSecrets[secretName];
            if (value === null) {
              if (existing !== undefined) {
                delete sealedSecrets[secretName];
                secretsChanged = true;
              }
            } else if (existing === undefined || !sealsValue(existing, providerId, secretName, value)) {
              sealedSecrets[secretName] = seal(providerId, secretName, value);
              secretsChanged = true;
            }
          }
          if (secretsChanged) {
            next.secretNames = sortedNames(sealedSecrets);
            changed = true;
          }
        }
        if (!changed) return { result: { previous: current, record: current, changed: false }, changed: false };

        next.version = current.version + 1;
        next.updatedAt = clock.now();
        try {
          await client.query(
            `UPDATE sluice_providers
             SET name = $2, description = $3, tags = $4, status = $5, status_reason = $6, settings = $7,
                 sealed_secrets = $8, updated_at = $9, version = $10
             WHERE id = $1`,
            [
              providerId,
              next.name,
              next.description,
              next.tags,
              next.status,
              next.statusReason,
              JSON.stringify(next.settings),
              JSON.stringify(sealedSecrets),
              next.updatedAt,
              next.version,
            ],
          );
        } catch (error) {
          if (isUniqueViolation(error, "sluice_providers_owner_name_key")) throw nameTaken(current.owner, next.name);
          throw error;
        }
        return { result: { previous: current, record: next, changed: true }, changed: true };
      });

      const { previous, record } = outcome;
      if (outcome.changed) {
        events.publish("provider-update", structuredClone(record));
        if (record.status !== previous.status) {
          events.publish("provider-status-change", { provider: structuredClone(record), previous: previous.status });
        }
      }
      return record;
    },

    async delete(id: string) {
      const providerId = parseField(providerIdSchema, id, "id", "provider deletion");
      const row = await changing(async (client) => {
        const result = await client.query<ProviderRow>("DELETE FROM sluice_providers WHERE id = $1 RETURNING *", [
          providerId,
        ]);
        return { result: result.rows[0], changed: result.rows[0] !== undefined };
      });
      if (row === undefined) return false;
      events.publish("provider-delete", toRecord(row));
      return true;
    },

    async readSecrets(id: string) {
      const providerId = parseField(providerIdSchema, id, "id", "secret lookup");
      const result = await pool.query<Pick<ProviderRow, "sealed_secrets">>(
        "SELECT sealed_secrets FROM sluice_providers WHERE id = $1",
        [providerId],
      );
      const row = result.rows[0];
      if (row === undefined) throw providerNotFound(providerId);
      const secrets: Record<string, string> = {};
      for (const [secretName, sealed] of Object.entries(row.sealed_secrets)) {
        secrets[secretName] = secretBox.open(sealed, secretContext(providerId, secretName));
      }
      return secrets;
    },
  });
}

/** The associated data binding a sealed secret to its provider and name (see `createSecretBox`). */
function secretContext(providerId: string, secretName: string): string {
  return `${providerId}:${secretName}`;
}

function providerNotFound(providerId: string): GatewayError {
  return new GatewayError("not_found", `No provider has the id '${providerId}'.`, { param: "id" });
}

function nameTaken(owner: string, name: string): GatewayError {
  return new GatewayError("conflict", `'${owner}' already has a provider named '${name}'.`, { param: "name" });
}

function sortedNames(secrets: Record<string, string>): string[] {
  // Sorted by UTF-16 code unit, as every Sluice store sorts.
  return Object.keys(secrets).sort((left, right) => (left < right ? -1 : left > right ? 1 : 0));
}

/**
 * Settings are stored as the JSON they are documented to be: a Date becomes its ISO string,
 * undefined members vanish. A value JSON cannot hold is the caller's error.
 */
function toRecord(row: ProviderRow): ProviderRecord {
  return {
    id: row.id,
    kind: row.kind,
    owner: row.owner,
    name: row.name,
    description: row.description,
    tags: row.tags,
    status: row.status,
    statusReason: row.status_reason,
    settings: row.settings,
    secretNames: sortedNames(row.sealed_secrets),
    createdAt: readInteger(row.created_at, "sluice_providers.created_at"),
    updatedAt: readInteger(row.updated_at, "sluice_providers.updated_at"),
    version: readInteger(row.version, "sluice_providers.version"),
  };
}
