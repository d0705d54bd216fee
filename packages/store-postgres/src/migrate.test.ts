import { afterEach, describe, expect, it } from "vitest";
import { migrate } from "./migrate.js";
import { migrations } from "./migrations/migrations.js";
import { runCli } from "./run-cli.js";
import { createTestDatabase } from "./testing/test-database.js";
import type { TestDatabase } from "./testing/test-database.js";

const latest = Math.max(...migrations.map((migration) => migration.version));

let database: TestDatabase | undefined;
afterEach(async () => {
  await database?.close();
  database = undefined;
});

async function emptySchema(): Promise<TestDatabase> {
  database = await createTestDatabase({ migrated: false });
  return database;
}

async function recordedVersions(test: TestDatabase): Promise<number[]> {
  const result = await test.pool.query<{ version: number }>("SELECT version FROM sluice_schema_migrations ORDER BY version");
  return result.rows.map((row) => row.version);
}

describe("migrate", () => {
  it("numbers the migrations uniquely, in ascending order", () => {
    const versions = migrations.map((migration) => migration.version);
    expect(versions).toEqual([...new Set(versions)].sort((left, right) => left - right));
  });

  it("applies every migration once, then finds nothing to do", async () => {
    const test = await emptySchema();

    const first = await migrate({ pool: test.pool });
    const second = await migrate({ pool: test.pool });

    expect(first).toEqual({ applied: migrations.map((migration) => migration.version), version: latest });
    expect(second).toEqual({ applied: [], version: latest });
    expect(await recordedVersions(test)).toEqual(migrations.map((migration) => migration.version));
  });

  it("lets several instances migrate at once: one applies, the others wait and find nothing left", async () => {
    const test = await emptySchema();
    const pools = [test.pool, test.createPool(), test.createPool(), test.createPool()];

    const results = await Promise.all(pools.map((pool) => migrate({ pool })));

    expect(results.filter((result) => result.applied.length > 0)).toHaveLength(1);
    for (const result of results) expect(result.version).toBe(latest);
    expect(await recordedVersions(test)).toEqual(migrations.map((migration) => migration.version));
  });
});

describe("sluice-postgres migrate", () => {
  function io(env: Record<string, string | undefined>) {
    const output = { stdout: "", stderr: "" };
    return {
      output,
      io: { env, stdout: (text: string) => (output.stdout += text), stderr: (text: string) => (output.stderr += text) },
    };
  }

  it("migrates the database DATABASE_URL names", async () => {
    const test = await emptySchema();
    const first = io({ DATABASE_URL: test.connectionString });
    const second = io({ DATABASE_URL: test.connectionString });

    expect(await runCli(["migrate"], first.io)).toBe(0);
    expect(await runCli(["migrate"], second.io)).toBe(0);

    expect(first.output.stdout).toContain(`schema at version ${latest}`);
    expect(second.output.stdout).toContain("nothing to apply");
    expect(await recordedVersions(test)).toEqual(migrations.map((migration) => migration.version));
  });

  it("explains itself without DATABASE_URL, or without a command it knows", async () => {
    const withoutUrl = io({});
    const unknown = io({ DATABASE_URL: "postgres://127.0.0.1:1/none" });

    expect(await runCli(["migrate"], withoutUrl.io)).toBe(2);
    expect(await runCli(["drop-everything"], unknown.io)).toBe(2);

    expect(withoutUrl.output.stderr).toContain("DATABASE_URL");
    expect(unknown.output.stderr).toContain("Usage: sluice-postgres migrate");
  });

  it("fails with exit code 1 when the database cannot be reached", async () => {
    const unreachable = io({ DATABASE_URL: "postgres://sluice:wrong@127.0.0.1:1/none" });

    expect(await runCli(["migrate"], unreachable.io)).toBe(1);
    expect(unreachable.output.stderr).toMatch(/^sluice-postgres: /);
  });
});
