import { describe, expect, it } from "vitest";
import type { PermissionStore } from "../permissions/permission-store.js";
import type { ProviderCatalog } from "../provider/provider-catalog.js";
import type { ProviderRecord } from "../provider/provider-record.js";
import { StoreAnswers } from "./store-answers.js";

const llama = { id: "prv_llama", owner: "alice", name: "llama", kind: "openai-compatible", version: 1 } as ProviderRecord;

/** A catalog and a permission store that count what they are asked; `revisions: false` leaves revision() out. */
function fakeStores(options: { revisions?: boolean; users?: string[] } = {}) {
  const asked = { findByName: 0, canUse: 0, groupsOf: 0 };
  const revisions = { catalog: 0, permissions: 0 };
  const users = new Set(options.users ?? ["alice"]);
  let pending: Promise<void> | null = null;
  const catalog = {
    async findByName(input: { owner: string; name: string }) {
      asked.findByName += 1;
      if (pending !== null) await pending;
      return input.owner === llama.owner && input.name === llama.name ? llama : null;
    },
    ...(options.revisions === false ? {} : { revision: () => revisions.catalog }),
  } as unknown as ProviderCatalog;
  const permissions = {
    async canUse(userId: string) {
      asked.canUse += 1;
      return users.has(userId);
    },
    async groupsOf(userId: string) {
      asked.groupsOf += 1;
      return userId === "alice" ? ["research"] : [];
    },
    ...(options.revisions === false ? {} : { revision: () => revisions.permissions }),
  } as unknown as PermissionStore;
  return {
    asked,
    revisions,
    users,
    answers: new StoreAnswers(catalog, permissions),
    /** Holds the next lookups until the returned function is called. */
    holdLookups(): () => void {
      let release!: () => void;
      pending = new Promise((resolve) => {
        release = resolve;
      });
      return () => {
        pending = null;
        release();
      };
    },
  };
}

describe("StoreAnswers", () => {
  it("asks the stores once while neither changes", async () => {
    const stores = fakeStores();
    for (let request = 0; request < 3; request++) {
      expect(await stores.answers.usableProvider("alice", "alice", "llama")).toBe(llama);
      expect(await stores.answers.groupsOf("alice")).toEqual(["research"]);
    }
    expect(stores.asked).toEqual({ findByName: 1, canUse: 1, groupsOf: 1 });
  });

  it("asks again as soon as either store has changed", async () => {
    const stores = fakeStores();
    await stores.answers.usableProvider("alice", "alice", "llama");
    stores.revisions.permissions += 1;
    stores.users.delete("alice");
    expect(await stores.answers.usableProvider("alice", "alice", "llama")).toBeNull();
    stores.revisions.catalog += 1;
    stores.users.add("alice");
    expect(await stores.answers.usableProvider("alice", "alice", "llama")).toBe(llama);
    expect(stores.asked).toMatchObject({ findByName: 3, canUse: 3 });
  });

  it("keeps each user's answer apart, a refusal included", async () => {
    const stores = fakeStores({ users: ["alice"] });
    expect(await stores.answers.usableProvider("bob", "alice", "llama")).toBeNull();
    expect(await stores.answers.usableProvider("alice", "alice", "llama")).toBe(llama);
    expect(await stores.answers.usableProvider("bob", "alice", "llama")).toBeNull();
    expect(await stores.answers.usableProvider("alice", "alice", "other")).toBeNull();
    expect(stores.asked.findByName).toBe(3);
  });

  it("does not reuse an answer the stores gave while they were changing", async () => {
    const stores = fakeStores();
    const release = stores.holdLookups();
    const asking = stores.answers.usableProvider("alice", "alice", "llama");
    // A grant is revoked while the lookup is on its way: its answer may predate the change.
    stores.revisions.permissions += 1;
    release();
    await asking;
    await stores.answers.usableProvider("alice", "alice", "llama");
    expect(stores.asked.findByName).toBe(2);
  });

  it("asks every time when a store has no revision", async () => {
    const stores = fakeStores({ revisions: false });
    for (let request = 0; request < 3; request++) {
      await stores.answers.usableProvider("alice", "alice", "llama");
      await stores.answers.groupsOf("alice");
    }
    expect(stores.asked).toEqual({ findByName: 3, canUse: 3, groupsOf: 3 });
  });
});
