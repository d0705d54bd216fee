import type pg from "pg";

export interface AdvisoryLockOptions {
  /** The pool to take the lock's connection from; `work` may use the pool's other connections. */
  pool: pg.Pool;
  /**
   * The lock's name, the same on every instance that must take turns (for example
   * `"my-app:apply-organization-config"`). PostgreSQL hashes it to the 64-bit key of
   * pg_advisory_lock, in a key space shared with every other advisory lock of the database.
   */
  name: string;
}

/**
 * Runs `work` while holding a PostgreSQL advisory lock: across every process on the database,
 * one `work` of the same lock name runs at a time, and the others wait their turn in the order
 * they asked. For start-up steps several instances would otherwise race on, such as applying a
 * declared organization (two instances creating the same allocation at once: one gets a 409).
 *
 * The lock belongs to a session: one connection of the pool holds it until `work` settles, so the
 * pool needs at least two connections when `work` queries through it. If that connection dies,
 * PostgreSQL drops the lock with it; `work` still finishes, and the connection is discarded.
 */
export async function withAdvisoryLock<Result>(options: AdvisoryLockOptions, work: () => Promise<Result>): Promise<Result> {
  const client = await options.pool.connect();
  let broken = false;
  try {
    await client.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [options.name]);
    try {
      return await work();
    } finally {
      try {
        await client.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [options.name]);
      } catch {
        // The session is gone, and its lock with it; the connection must not return to the pool.
        broken = true;
      }
    }
  } finally {
    client.release(broken ? true : undefined);
  }
}
