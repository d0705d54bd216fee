import { createEventBus, systemClock } from "@sluice/core";
import type { SluiceStores, StoreOptions } from "@sluice/core";
import pg from "pg";
import { createCacheInvalidation } from "./cache-invalidation.js";
import { migrate } from "./migrate.js";
import { createPostgresBudgetLedger } from "./postgres-budget-ledger.js";
import { resolveCacheOptions } from "./postgres-cache-options.js";
import type { PostgresCacheOptions } from "./postgres-cache-options.js";
import { createKeyStoreOn } from "./postgres-key-store.js";
import { createPermissionStoreOn } from "./postgres-permission-store.js";
import { createProviderCatalogOn } from "./postgres-provider-catalog.js";

export interface PostgresStoresOptions extends StoreOptions {
  /**
   * The pool to use. The stores never end a pool they were given: its owner does. Without one,
   * the stores open their own from `connectionString` (or node-postgres' PG* environment
   * variables) and end it in `close()`.
   */
  pool?: pg.Pool;
  connectionString?: string;
  /** Caching of key verifications and permission checks; `false` reads the database every time. */
  cache?: PostgresCacheOptions | false;
}

export type PostgresStores = SluiceStores & {
  /**
   * The pool the stores query through: the one given, or the one they opened (and end in
   * `close()`). For a host's own start-up steps, such as `withAdvisoryLock`.
   */
  readonly pool: pg.Pool;
  /** Applies the schema migrations this version needs (see `migrate`). */
  migrate(): Promise<void>;
};

/**
 * Every store on one PostgreSQL database, for one gateway instance among any number sharing it.
 * Budgets hold across instances (reservations lock rows in the database); each instance caches
 * key verifications and permission checks and learns of other instances' changes through
 * LISTEN/NOTIFY. Run `migrate()` (or the `sluice-postgres migrate` CLI) before serving.
 */
export function createPostgresStores(options: PostgresStoresOptions): PostgresStores {
  if (options.pool !== undefined && options.connectionString !== undefined) {
    throw new TypeError("Pass either a pool or a connectionString, not both.");
  }
  const ownsPool = options.pool === undefined;
  const pool = options.pool ?? new pg.Pool({ connectionString: options.connectionString });
  if (ownsPool) {
    // An idle connection the server drops (a restart, a failover) is removed from the pool and
    // replaced on demand. Without a listener, node-postgres would rethrow that error and end the
    // process; library code does not log, so there is nothing more to do with it here.
    pool.on("error", () => undefined);
  }
  const clock = options.clock ?? systemClock;
  const events = options.events ?? createEventBus();
  const { cache, channel } = resolveCacheOptions(options.cache);
  const invalidation = createCacheInvalidation({ pool, channel, listen: cache !== null });
  const shared = { pool, clock, events, invalidation, cache: options.cache };
  const { flushUses, ...keys } = createKeyStoreOn(shared);
  let closing: Promise<void> | null = null;

  return {
    catalog: createProviderCatalogOn({ ...shared, secretBox: options.secretBox }),
    permissions: createPermissionStoreOn(shared),
    keys,
    ledger: createPostgresBudgetLedger({ pool, clock, events }),
    pool,
    async migrate() {
      await migrate({ pool });
    },
    close() {
      closing ??= (async () => {
        // Key uses held back for a moment are written before the pool goes.
        await flushUses().catch(() => undefined);
        await invalidation.close();
        if (ownsPool) await pool.end();
      })();
      return closing;
    },
  };
}
