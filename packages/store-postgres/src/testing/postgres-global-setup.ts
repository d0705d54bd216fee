import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres } from "./embedded-postgres-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The server the store-postgres tests use; each test file works in a schema of its own. */
    sluiceTestDatabaseUrl: string;
  }
}

/**
 * Starts one PostgreSQL server for the whole test run of this package, unless DATABASE_URL names
 * one already (the tests then only create and drop schemas of their own in it).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.DATABASE_URL;
  if (external !== undefined && external !== "") {
    project.provide("sluiceTestDatabaseUrl", external);
    return async () => {};
  }
  const server = await startEmbeddedPostgres();
  project.provide("sluiceTestDatabaseUrl", server.connectionString);
  return () => server.stop();
}
