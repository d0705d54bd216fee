import { randomBytes } from "node:crypto";
import { GatewayError, createEventBus, createManualClock, createSecretBox } from "@sluice/core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readInteger } from "./database-values.js";
import { createPostgresStores } from "./postgres-stores.js";
import { createTestDatabase } from "./testing/test-database.js";
import type { TestDatabase } from "./testing/test-database.js";

const secretBox = createSecretBox({ key: randomBytes(32) });

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});
beforeEach(async () => {
  await database.empty();
});

describe("createPostgresStores", () => {
  it("wires every store to one clock and one event bus", async () => {
    const clock = createManualClock({ start: Date.UTC(2026, 0, 5) });
    const events = createEventBus();
    const seen: string[] = [];
    for (const name of ["provider-create", "grant-change", "key-create", "allocation-change"] as const) {
      events.on(name, () => seen.push(name));
    }
    const stores = createPostgresStores({ pool: database.pool, secretBox, clock, events });

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
    // A pool it was given stays open: its owner ends it.
    expect((await database.pool.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
  });

  it("refuses text holding a NUL character with a 400 naming it, as PostgreSQL cannot store one", async () => {
    const stores = createPostgresStores({ pool: database.pool, secretBox });
    const attempts: Array<() => Promise<unknown>> = [
      () => stores.keys.create({ userId: "alice", name: "lap\u0000top", allocationId: "alc_team" }),
      () => stores.catalog.create({ kind: "openai-compatible", owner: "alice", name: "llama", description: "a\u0000b" }),
      () => stores.ledger.createAllocation({ id: "alc_nul", name: "Te\u0000am", owner: { type: "organization" }, limit: 1 }),
      () => stores.permissions.upsertUser({ id: "bo\u0000b" }),
    ];
    for (const attempt of attempts) {
      const error: unknown = await attempt().catch((caught: unknown) => caught);
      expect(GatewayError.is(error) && { code: error.code, status: error.status }).toEqual({ code: "invalid_request", status: 400 });
      expect((error as GatewayError).message).toMatch(/NUL/);
    }
    // Settings are stored as JSON text, which holds an escaped NUL as it is.
    const escaped = await stores.catalog.create({ kind: "openai-compatible", owner: "alice", name: "llama2", settings: { endpoint: "http://x\u0000" } });
    expect((await stores.catalog.get(escaped.id))?.settings).toEqual({ endpoint: "http://x\u0000" });
    // Nothing half-written, and the stores still work.
    expect(await stores.catalog.findByName({ owner: "alice", name: "llama" })).toBeNull();
    expect((await stores.keys.create({ userId: "alice", name: "laptop", allocationId: "alc_team" })).key.name).toBe("laptop");
    await stores.close();
  });

  it("opens a pool from a connection string, migrates through it, and ends it on close", async () => {
    const stores = createPostgresStores({ connectionString: database.connectionString, secretBox });

    await stores.migrate();
    await stores.ledger.createAllocation({ id: "alc", name: "Team", owner: { type: "organization" }, limit: 1 });
    expect(await stores.ledger.getAllocation("alc")).toMatchObject({ limit: 1 });
    await stores.close();
    await stores.close();

    await expect(stores.ledger.getAllocation("alc")).rejects.toThrow();
  });

  it("refuses a pool and a connection string together", () => {
    const both = { pool: database.pool, connectionString: database.connectionString, secretBox };

    expect(() => createPostgresStores(both)).toThrow(TypeError);
  });

  it("works without caches", async () => {
    const stores = createPostgresStores({ pool: database.pool, secretBox, cache: false });
    const { key, secret } = await stores.keys.create({ userId: "alice", name: "laptop", allocationId: "alc" });
    await stores.permissions.upsertUser({ id: "alice" });
    await stores.permissions.setRole({ userId: "alice", role: "org:admin", enabled: true });

    expect((await stores.keys.verify(secret)).status).toBe("valid");
    await stores.keys.revoke({ userId: "alice", keyId: key.id });
    expect((await stores.keys.verify(secret)).status).toBe("revoked");
    expect(await stores.permissions.hasRole("alice", "aiprovider:create")).toBe(true);
    await stores.close();
  });

  it("never stores a provider secret or a key secret in the clear", async () => {
    const stores = createPostgresStores({ pool: database.pool, secretBox });
    await stores.catalog.create({
      kind: "openai-compatible",
      owner: "alice",
      name: "llama",
      secrets: { apiKey: "sk-upstream-plaintext-4f1d" },
    });
    const { secret } = await stores.keys.create({ userId: "alice", name: "laptop", allocationId: "alc" });

    const stored = await database.inspect();

    expect(stored).not.toContain("sk-upstream-plaintext-4f1d");
    expect(stored).not.toContain(secret);
    await stores.close();
  });
});

describe("int8 values", () => {
  it("reads int8 and numeric text as numbers, and refuses what a double cannot hold exactly", () => {
    expect(readInteger("9007199254740991", "cost")).toBe(Number.MAX_SAFE_INTEGER);
    expect(readInteger("-12", "cost")).toBe(-12);
    expect(readInteger(7, "cost")).toBe(7);
    for (const unsafe of ["9007199254740992", "123456789012345678901", "1.5", "", null, 2 ** 53, 0.5]) {
      expect(() => readInteger(unsafe, "cost")).toThrow(GatewayError);
    }
  });

  it("refuses to report money the database holds beyond 2^53 rather than round it", async () => {
    const stores = createPostgresStores({ pool: database.pool, secretBox, clock: createManualClock() });
    await stores.ledger.createAllocation({ id: "alc", name: "Team", owner: { type: "organization" }, limit: 1 });
    // Two charges, each within range, whose sum is not.
    for (const requestId of ["a", "b"]) {
      await stores.ledger.commit({
        requestId,
        allocationId: "alc",
        userId: "alice",
        keyId: null,
        providerId: "prv",
        model: "alice:prv/model",
        inputTokens: 0,
        outputTokens: 0,
        cost: Number.MAX_SAFE_INTEGER - 1,
      });
    }

    const refusal = await stores.ledger.getAllocation("alc").catch((error: unknown) => error);

    expect(GatewayError.is(refusal) && refusal.code).toBe("internal_error");
    await stores.close();
  });
});
