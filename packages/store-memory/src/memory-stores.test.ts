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

describe("revision", () => {
  // The gateway reuses the catalog's and permission store's answers while their revisions stand
  // still (core's StoreAnswers): every change must move them, and reads must not.
  it("moves with every change to permissions, failed ones included, and never with a read", async () => {
    const stores = createMemoryStores({ secretBox: createSecretBox({ key: randomBytes(32) }) });
    const { permissions } = stores;
    const provider = await stores.catalog.create({ kind: "openai-compatible", owner: "alice", name: "llama" });
    const changes: Array<[string, () => Promise<unknown>]> = [
      ["upsertUser", () => permissions.upsertUser({ id: "bob" })],
      ["setRole", () => permissions.setRole({ userId: "bob", role: "org:admin", enabled: true })],
      ["upsertGroup", () => permissions.upsertGroup({ id: "research", name: "Research" })],
      ["addMember", () => permissions.addMember({ groupId: "research", userId: "bob" })],
      ["grant", () => permissions.grant({ actor: "alice", provider, subject: { type: "group", groupId: "research" } })],
      ["revoke", () => permissions.revoke({ actor: "alice", provider, subject: { type: "group", groupId: "research" } })],
      ["removeMember", () => permissions.removeMember({ groupId: "research", userId: "bob" })],
      ["deleteGroup", () => permissions.deleteGroup("research")],
      ["forgetProvider", () => permissions.forgetProvider(provider.id)],
      ["a refused grant", () => permissions.grant({ actor: "mallory", provider, subject: { type: "organization" } }).catch(() => undefined)],
    ];
    for (const [name, change] of changes) {
      const before = permissions.revision!();
      await change();
      expect(permissions.revision!(), name).not.toBe(before);
    }
    const settled = permissions.revision!();
    await permissions.canUse("bob", provider);
    await permissions.groupsOf("bob");
    await permissions.listUsers();
    expect(permissions.revision!()).toBe(settled);
  });

  it("moves with every change to the catalog, and never with a read", async () => {
    const { catalog } = createMemoryStores({ secretBox: createSecretBox({ key: randomBytes(32) }) });
    let before = catalog.revision!();
    const provider = await catalog.create({ kind: "openai-compatible", owner: "alice", name: "llama" });
    expect(catalog.revision!()).not.toBe(before);
    before = catalog.revision!();
    await catalog.update(provider.id, { status: "stopped" });
    expect(catalog.revision!(), "a status change").not.toBe(before);
    before = catalog.revision!();
    await catalog.findByName({ owner: "alice", name: "llama" });
    await catalog.get(provider.id);
    await catalog.list();
    expect(catalog.revision!()).toBe(before);
    await catalog.delete(provider.id);
    expect(catalog.revision!()).not.toBe(before);
  });
});
