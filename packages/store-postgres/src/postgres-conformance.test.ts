import {
  describeBudgetLedger,
  describeKeyStore,
  describePermissionStore,
  describeProviderCatalog,
} from "@sluice/core/testing";
import { afterAll, beforeAll } from "vitest";
import { createPostgresBudgetLedger } from "./postgres-budget-ledger.js";
import { createPostgresKeyStore } from "./postgres-key-store.js";
import { createPostgresPermissionStore } from "./postgres-permission-store.js";
import { createPostgresProviderCatalog } from "./postgres-provider-catalog.js";
import { createTestDatabase } from "./testing/test-database.js";
import type { TestDatabase } from "./testing/test-database.js";

// One schema for this file; every test starts from empty tables, with a store wired to the
// suite's clock, bus and secret box. `inspect` dumps every row of every table.
let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});

async function emptyDatabase(): Promise<TestDatabase> {
  await database.empty();
  return database;
}

describeProviderCatalog("postgres", {
  create: async (context) => {
    const { pool, inspect } = await emptyDatabase();
    return { store: createPostgresProviderCatalog({ pool, ...context }), inspect };
  },
});

describePermissionStore("postgres", {
  create: async (context) => {
    const { pool, inspect } = await emptyDatabase();
    const store = createPostgresPermissionStore({ pool, clock: context.clock, events: context.events });
    return { store, inspect, close: () => store.close() };
  },
});

describeKeyStore("postgres", {
  create: async (context) => {
    const { pool, inspect } = await emptyDatabase();
    const store = createPostgresKeyStore({ pool, clock: context.clock, events: context.events });
    return { store, inspect, close: () => store.close() };
  },
});

describeBudgetLedger("postgres", {
  create: async (context) => {
    const { pool, inspect } = await emptyDatabase();
    return { store: createPostgresBudgetLedger({ pool, clock: context.clock, events: context.events }), inspect };
  },
});
