import { randomBytes } from "node:crypto";
import pg from "pg";
import { migrate } from "@sluice/store-postgres";
import { startEmbeddedPostgres } from "../src/testing/embedded-postgres-server.js";

/** The benchmark's database: a migrated schema of its own, on DATABASE_URL's server or an embedded one. */
export interface BenchDatabase {
  /** Connects into the bench's schema (its search_path travels in the connection string). */
  connectionString: string;
  /** Which server, for the report. */
  description: string;
  /** Drops the schema, and stops the embedded server if one was started. */
  close(): Promise<void>;
}

/**
 * Uses DATABASE_URL when set (creating, then dropping, a schema `sluice_bench_<random>` there),
 * else starts the same throwaway server the tests use: from the embedded-postgres package's
 * binaries, on loopback, as `nobody` when run as root, its files removed on close.
 */
export async function openBenchDatabase(): Promise<BenchDatabase> {
  const external = process.env.DATABASE_URL;
  const server = external ? null : await startEmbeddedPostgres();
  const serverUrl = external ?? server!.connectionString;
  const schema = `sluice_bench_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Pool({ connectionString: serverUrl, max: 1 });
  // A connection still closing when the server stops reports its end as an error: nothing to do.
  admin.on("error", () => undefined);
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
    const url = new URL(serverUrl);
    url.searchParams.set("options", `-c search_path=${schema}`);
    const connectionString = url.href;
    const migrating = new pg.Pool({ connectionString, max: 1 });
    migrating.on("error", () => undefined);
    await migrate({ pool: migrating });
    await migrating.end();
    const version = (await admin.query<{ server_version: string }>("SHOW server_version")).rows[0]!.server_version;
    const description = external
      ? `the server at DATABASE_URL (PostgreSQL ${version})`
      : `an embedded PostgreSQL ${version} on loopback (fsync, synchronous_commit and full_page_writes off, shared_buffers 64MB)`;
    return {
      connectionString,
      description,
      async close() {
        await admin.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => undefined);
        await admin.end();
        await server?.stop();
      },
    };
  } catch (error) {
    await admin.end().catch(() => undefined);
    await server?.stop();
    throw error;
  }
}
