import type pg from "pg";
import { migrations } from "./migrations/migrations.js";

export interface MigrateOptions {
  pool: pg.Pool;
}

export interface MigrateResult {
  /** The versions this run applied, ascending; empty when the schema was already current. */
  applied: number[];
  /** The schema's version after the run. */
  version: number;
}

/**
 * A fixed key for pg_advisory_lock: every instance that starts at once queues on it, so exactly
 * one runs the migrations while the others wait, then find nothing left to do.
 */
const MIGRATION_LOCK_KEY = 7_345_129_003_611_283;

/**
 * Brings the schema up to date: applies, in order, every migration the database has not recorded
 * in `sluice_schema_migrations`, each in its own transaction with the row that records it.
 * Idempotent, and safe to call from many instances at once (an advisory lock serializes whole
 * runs). Tables go into the first schema of the connection's search_path.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const client = await options.pool.connect();
  let broken = false;
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    try {
      return await applyPending(client);
    } finally {
      try {
        await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
      } catch {
        // The session is gone, and its lock with it; the connection must not return to the pool.
        broken = true;
      }
    }
  } finally {
    client.release(broken ? true : undefined);
  }
}

async function applyPending(client: pg.PoolClient): Promise<MigrateResult> {
  // applied_at is a record for operators, not store semantics, so the database's clock is fine here.
  await client.query(`
    CREATE TABLE IF NOT EXISTS sluice_schema_migrations (
      version int4 PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
  const recorded = await client.query<{ version: number }>("SELECT version FROM sluice_schema_migrations");
  const done = new Set(recorded.rows.map((row) => row.version));
  const applied: number[] = [];
  for (const migration of migrations) {
    if (done.has(migration.version)) continue;
    await client.query("BEGIN");
    try {
      await client.query(migration.sql);
      await client.query("INSERT INTO sluice_schema_migrations (version, name) VALUES ($1, $2)", [
        migration.version,
        migration.name,
      ]);
      await client.query("COMMIT");
    } catch (error) {
      // A failed ROLLBACK means a dead connection, which the unlock in `migrate` will notice.
      await client.query("ROLLBACK").catch(() => undefined);
      throw new Error(`Sluice migration ${migration.version} (${migration.name}) failed; nothing of it was applied.`, {
        cause: error,
      });
    }
    applied.push(migration.version);
    done.add(migration.version);
  }
  return { applied, version: Math.max(0, ...done) };
}
