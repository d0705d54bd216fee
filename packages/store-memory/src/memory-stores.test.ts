import { randomBytes } from "node:crypto";
import { createEventBus, createManualClock, createSecretBox } from "@sluice/core";
import {
  describeBudgetLedger,
  describeKeyStore,
  describePermissionStore,
  describeProviderCatalog,
} from "@sluice/core/testing";
import { describe, expect, it } from "vitest";
import { createMemoryBudgetLedger } from "./memory-budget-ledger.js";
import { createMemoryKeyStore } from "./memory-key-store.js";
import { createMemoryPermissionStore } from "./memory-permission-store.js";
import { createMemoryProviderCatalog } from "./memory-provider-catalog.js";
import { createMemoryStores } from "./memory-stores.js";

// Each test gets fresh, empty stores wired to the suite's clock, bus and secret box.
describeProviderCatalog("memory", {
  create: async (context) => {
    const catalog = createMemoryProviderCatalog(context);
    return { store: catalog, inspect: async () => catalog.inspect() };
  },
});

describePermissionStore("memory", {
  create: async (context) => {
    const permissions = createMemoryPermissionStore(context);
    return { store: permissions, inspect: async () => permissions.inspect() };
  },
});

describeKeyStore("memory", {
  create: async (context) => {
    const keys = createMemoryKeyStore(context);
    return { store: keys, inspect: async () => keys.inspect() };
  },
});

describeBudgetLedger("memory", {
  create: async (context) => {
    const ledger = createMemoryBudgetLedger(context);
    return { store: ledger, inspect: async () => ledger.inspect() };
  },
});

describe("createMemoryStores", () => {
  it("wires every store to one clock and one event bus", async () => {
    const clock = createManualClock({ start: Date.UTC(2026, 0, 5) });
    const events = createEventBus();
    const seen: string[] = [];
    for (const name of ["provider-create", "grant-change", "key-create", "allocation-change"] as const) {
      events.on(name, () => seen.push(name));
    }
    const stores = createMemoryStores({ secretBox: createSecretBox({ key: randomBytes(32) }), clock, events });

    const provider = await stores.catalog.create({ kind: "openai-compatible", owner: "alice", name: "llama" });
    await stores.permissions.grant({ actor: "alice", provider, subject: { type: "organization" } });
    const { key } = await stores.keys.create({ userId: "alice", name: "laptop", allocationId: "alc_team" });
    const allocation = await stores.ledger.createAllocation({
      id: "alc_team",
      name: "Team",
      owner: { type: "organization" },
      limit: 1_000,
    });

    expect(seen).toEqual(["provider-create", "grant-change", "key-create", "allocation-change"]);
    expect([provider.createdAt, key.createdAt, allocation.createdAt]).toEqual([clock.now(), clock.now(), clock.now()]);
    await stores.close();
    await stores.close();
  });
});
