import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "./testing/test-database.js";
import type { TestDatabase } from "./testing/test-database.js";
import { withAdvisoryLock } from "./with-advisory-lock.js";

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase({ migrated: false });
});
afterAll(async () => {
  await database.close();
});

/** The advisory locks held now by this file's connections. */
async function heldLocks(): Promise<number> {
  const result = await database.pool.query<{ count: string }>(
    `SELECT count(*) AS count FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1`,
    [database.schema],
  );
  return Number(result.rows[0]!.count);
}

describe("withAdvisoryLock", () => {
  it("runs one holder of a name at a time, across pools (instances)", async () => {
    const pools = [database.pool, database.createPool(), database.createPool()];
    let inside = 0;
    let most = 0;
    const results = await Promise.all(
      pools.flatMap((pool, index) =>
        [0, 1].map((turn) =>
          withAdvisoryLock({ pool, name: "sluice-test:serialized" }, async () => {
            inside += 1;
            most = Math.max(most, inside);
            // Queries through the same pool while its lock connection is held.
            await pool.query("SELECT pg_sleep(0.02)");
            inside -= 1;
            return `${index}:${turn}`;
          }),
        ),
      ),
    );

    expect(most).toBe(1);
    expect(results).toHaveLength(6);
    expect(await heldLocks()).toBe(0);
  });

  it("lets different names run at once", async () => {
    const other = database.createPool();
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const first = withAdvisoryLock({ pool: database.pool, name: "sluice-test:first" }, () => blocked);

    const second = await withAdvisoryLock({ pool: other, name: "sluice-test:second" }, async () => "ran");

    expect(second).toBe("ran");
    release();
    await first;
  });

  it("releases the lock when the work throws", async () => {
    const failing = withAdvisoryLock({ pool: database.pool, name: "sluice-test:failing" }, async () => {
      throw new Error("boom");
    });
    await expect(failing).rejects.toThrow("boom");

    expect(await heldLocks()).toBe(0);
    const other = database.createPool();
    await expect(withAdvisoryLock({ pool: other, name: "sluice-test:failing" }, async () => "next")).resolves.toBe("next");
  });
});
