import type pg from "pg";

/** What a store queries: the pool itself, or a client inside a transaction. */
export interface Queryable {
  query<Row extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<Row>>;
}

/**
 * Runs `work` in one transaction on one pooled connection: commits what it returns, rolls back
 * what it throws. READ COMMITTED (the default) is enough: every check-then-write in the stores
 * either locks the rows it depends on first (SELECT ... FOR UPDATE) or lets a unique constraint
 * decide, so no transaction needs SERIALIZABLE's retries.
 */
export async function withTransaction<Result>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<Result>,
): Promise<Result> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query("BEGIN");
    try {
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      try {
        await client.query("ROLLBACK");
      } catch {
        // The connection itself failed; it must not go back to the pool.
        broken = true;
      }
      throw error;
    }
  } finally {
    client.release(broken ? true : undefined);
  }
}
