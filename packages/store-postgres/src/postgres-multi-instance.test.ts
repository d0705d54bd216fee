import { randomBytes } from "node:crypto";
import { createManualClock, createSecretBox } from "@sluice/core";
import type { ProviderRef } from "@sluice/core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPostgresStores } from "./postgres-stores.js";
import type { PostgresStores, PostgresStoresOptions } from "./postgres-stores.js";
import { createTestDatabase } from "./testing/test-database.js";
import type { TestDatabase } from "./testing/test-database.js";

// Two gateway instances, as a deployment runs them: two processes' worth of stores, each with its
// own pool and its own caches, on one database.

const START = Date.UTC(2026, 0, 5, 12);
const provider: ProviderRef = { id: "prv_shared", owner: "owner", kind: "openai-compatible" };

let database: TestDatabase;
let opened: PostgresStores[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});
beforeEach(async () => {
  await database.empty();
});
afterEach(async () => {
  await Promise.all(opened.map((stores) => stores.close()));
  opened = [];
});

/** Waits until `count` instances listen: an instance clears its caches when it starts listening. */
async function untilListening(count: number): Promise<void> {
  await timeUntil(async () => (await listeningConnections()).length === count, 2_000);
}

/** One instance: its own pool, caches and listening connection. */
function startInstance(options: Partial<PostgresStoresOptions> = {}): PostgresStores {
  const stores = createPostgresStores({
    pool: database.createPool(),
    clock: createManualClock({ start: START }),
    secretBox: createSecretBox({ key: randomBytes(32) }),
    ...options,
  });
  opened.push(stores);
  return stores;
}

/** Polls `check` until it holds, and resolves how long that took; rejects after `withinMs`. */
async function timeUntil(check: () => Promise<boolean>, withinMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > withinMs) throw new Error(`not true within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The listening connections of this file's instances (their last statement was the LISTEN). */
async function listeningConnections(): Promise<number[]> {
  const result = await database.pool.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle' AND query LIKE 'LISTEN %'",
    [database.schema],
  );
  return result.rows.map((row) => row.pid);
}

/** Terminates the instances' listening connections from the server side, as a failover would. */
async function dropListeningConnections(): Promise<number> {
  const result = await database.pool.query(
    "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid",
    [await listeningConnections()],
  );
  return result.rowCount ?? 0;
}

describe("cache invalidation across instances", () => {
  // A TTL far longer than the test: only a notification can explain a fresh answer.
  const longTtl = { ttlMs: 60_000 };

  it("sees another instance's key revocation within a second, through NOTIFY", async () => {
    const first = startInstance({ cache: longTtl });
    const second = startInstance({ cache: longTtl });
    const { key, secret } = await first.keys.create({ userId: "alice", name: "laptop", allocationId: "alc" });
    expect((await second.keys.verify(secret)).status).toBe("valid");
    expect((await second.keys.verify(secret)).status).toBe("valid");

    await first.keys.revoke({ userId: "alice", keyId: key.id });

    expect((await first.keys.verify(secret)).status).toBe("revoked");
    const elapsed = await timeUntil(async () => (await second.keys.verify(secret)).status === "revoked", 1_000);
    expect(elapsed).toBeLessThan(1_000);
  });

  it("sees another instance's grant revocation and membership change within a second", async () => {
    const first = startInstance({ cache: longTtl });
    const second = startInstance({ cache: longTtl });
    for (const id of ["owner", "member"]) await first.permissions.upsertUser({ id });
    await first.permissions.upsertGroup({ id: "team", name: "Team" });
    await first.permissions.addMember({ groupId: "team", userId: "member" });
    await first.permissions.grant({ actor: "owner", provider, subject: { type: "group", groupId: "team" } });
    expect(await second.permissions.canUse("member", provider)).toBe(true);

    await first.permissions.revoke({ actor: "owner", provider, subject: { type: "group", groupId: "team" } });
    await timeUntil(async () => !(await second.permissions.canUse("member", provider)), 1_000);

    await first.permissions.grant({ actor: "owner", provider, subject: { type: "group", groupId: "team" } });
    await timeUntil(() => second.permissions.canUse("member", provider), 1_000);
    await first.permissions.removeMember({ groupId: "team", userId: "member" });
    await timeUntil(async () => !(await second.permissions.canUse("member", provider)), 1_000);
  });

  it("sees another instance's role change within a second", async () => {
    const first = startInstance({ cache: longTtl });
    const second = startInstance({ cache: longTtl });
    await first.permissions.upsertUser({ id: "admin" });
    await first.permissions.setRole({ userId: "admin", role: "org:admin", enabled: true });
    expect(await second.permissions.canManage("admin", provider)).toBe(true);

    await first.permissions.setRole({ userId: "admin", role: "org:admin", enabled: false });

    await timeUntil(async () => !(await second.permissions.canManage("admin", provider)), 1_000);
    expect(await second.permissions.hasRole("admin", "aiprovider:create")).toBe(false);
  });

  it("sees another instance's provider changes and group memberships within a second", async () => {
    const first = startInstance({ cache: longTtl });
    const second = startInstance({ cache: longTtl });
    const lookup = { owner: "owner", name: "shared" };
    // A cached miss, then a cached hit: both must give way to the other instance's changes.
    expect(await second.catalog.findByName(lookup)).toBeNull();
    const created = await first.catalog.create({ id: "prv_cached", kind: "openai-compatible", ...lookup });
    await timeUntil(async () => (await second.catalog.findByName(lookup))?.id === created.id, 1_000);
    expect((await second.catalog.get(created.id))?.name).toBe("shared");

    await first.catalog.update(created.id, { name: "renamed" });
    await timeUntil(async () => (await second.catalog.findByName(lookup)) === null, 1_000);
    expect((await second.catalog.get(created.id))?.name).toBe("renamed");
    await first.catalog.delete(created.id);
    await timeUntil(async () => (await second.catalog.get(created.id)) === null, 1_000);

    await first.permissions.upsertUser({ id: "member" });
    await first.permissions.upsertGroup({ id: "team", name: "Team" });
    expect(await second.permissions.groupsOf("member")).toEqual([]);
    await first.permissions.addMember({ groupId: "team", userId: "member" });
    await timeUntil(async () => (await second.permissions.groupsOf("member")).includes("team"), 1_000);
    await first.permissions.deleteGroup("team");
    await timeUntil(async () => (await second.permissions.groupsOf("member")).length === 0, 1_000);
  });

  it("reads its own provider changes and memberships at once, and hands out copies", async () => {
    const stores = startInstance({ cache: longTtl });
    const lookup = { owner: "owner", name: "mine" };
    expect(await stores.catalog.findByName(lookup)).toBeNull();
    const created = await stores.catalog.create({ kind: "openai-compatible", ...lookup, tags: ["a"] });
    const found = await stores.catalog.findByName(lookup);
    expect(found).toEqual(created);
    found!.tags.push("mutated");
    expect((await stores.catalog.findByName(lookup))?.tags).toEqual(["a"]);
    await stores.catalog.update(created.id, { tags: ["b"] });
    expect((await stores.catalog.get(created.id))?.tags).toEqual(["b"]);

    await stores.permissions.upsertUser({ id: "member" });
    await stores.permissions.upsertGroup({ id: "team", name: "Team" });
    expect(await stores.permissions.groupsOf("member")).toEqual([]);
    await stores.permissions.addMember({ groupId: "team", userId: "member" });
    const groups = await stores.permissions.groupsOf("member");
    expect(groups).toEqual(["team"]);
    groups.push("mutated");
    expect(await stores.permissions.groupsOf("member")).toEqual(["team"]);
    await stores.permissions.removeMember({ groupId: "team", userId: "member" });
    expect(await stores.permissions.groupsOf("member")).toEqual([]);
  });

  it("writes a busy key's use about once a second, shows every use at once, and writes the last on close", async () => {
    const stores = startInstance({ cache: longTtl });
    const { key, secret } = await stores.keys.create({ userId: "alice", name: "laptop", allocationId: "alc" });
    const stored = async (): Promise<string | null> =>
      (await database.pool.query<{ at: string | null }>("SELECT last_used_at AS at FROM sluice_keys")).rows[0]!.at;

    await stores.keys.recordUse({ keyId: key.id, at: START + 1 });
    expect(await stored()).toBe(String(START + 1));
    for (let use = 2; use <= 50; use += 1) await stores.keys.recordUse({ keyId: key.id, at: START + use });
    // Held back, but this instance shows it everywhere.
    expect(await stored()).toBe(String(START + 1));
    expect((await stores.keys.get({ userId: "alice", keyId: key.id }))?.lastUsedAt).toBe(START + 50);
    expect((await stores.keys.list({ userId: "alice" }))[0]?.lastUsedAt).toBe(START + 50);
    expect(await stores.keys.verify(secret)).toMatchObject({ status: "valid", key: { lastUsedAt: START + 50 } });

    await timeUntil(async () => (await stored()) === String(START + 50), 2_000);
    await stores.keys.recordUse({ keyId: key.id, at: START + 60 });
    await stores.close();
    expect(await stored()).toBe(String(START + 60));
  });

  it("serves cached answers without reading the database", async () => {
    const stores = startInstance({ cache: longTtl });
    await untilListening(1);
    const { secret } = await stores.keys.create({ userId: "alice", name: "laptop", allocationId: "alc" });
    await stores.keys.verify(secret);

    // Rows changed behind the stores' back (no notification) stay unseen until the TTL runs out.
    await database.pool.query("UPDATE sluice_keys SET revoked_at = 1");

    expect((await stores.keys.verify(secret)).status).toBe("valid");
  });

  it("falls back on the TTL when notifications do not arrive", async () => {
    // Different channels: the second instance never hears the first.
    const first = startInstance({ cache: { ttlMs: 200, channel: "sluice_test_first" } });
    const second = startInstance({ cache: { ttlMs: 200, channel: "sluice_test_second" } });
    await untilListening(2);
    const { key, secret } = await first.keys.create({ userId: "alice", name: "laptop", allocationId: "alc" });
    expect((await second.keys.verify(secret)).status).toBe("valid");

    await first.keys.revoke({ userId: "alice", keyId: key.id });

    const elapsed = await timeUntil(async () => (await second.keys.verify(secret)).status === "revoked", 1_000);
    expect(elapsed).toBeGreaterThan(50);
  });

  it("reconnects its listening connection after it drops, and clears what it may have missed", async () => {
    const first = startInstance({ cache: longTtl });
    const second = startInstance({ cache: longTtl });
    const { key, secret } = await first.keys.create({ userId: "alice", name: "laptop", allocationId: "alc" });
    const other = await first.keys.create({ userId: "alice", name: "desktop", allocationId: "alc" });
    expect((await second.keys.verify(secret)).status).toBe("valid");
    expect((await second.keys.verify(other.secret)).status).toBe("valid");
    await untilListening(2);
    expect((await second.keys.verify(other.secret)).status).toBe("valid");

    const dropped = await listeningConnections();
    expect(await dropListeningConnections()).toBe(2);
    // Changed while nobody listens: no instance can hear of it.
    await database.pool.query("UPDATE sluice_keys SET revoked_at = $2 WHERE id = $1", [other.key.id, START]);

    await timeUntil(async () => {
      const current = await listeningConnections();
      return current.length === 2 && current.every((pid) => !dropped.includes(pid));
    }, 2_000);
    expect((await second.keys.verify(other.secret)).status).toBe("revoked");
    await first.keys.revoke({ userId: "alice", keyId: key.id });
    await timeUntil(async () => (await second.keys.verify(secret)).status === "revoked", 1_000);
  });
});

describe("budgets across instances", () => {
  it("admits exactly 50 of 500 concurrent reservations split across two instances", async () => {
    const first = startInstance({ cache: false });
    const second = startInstance({ cache: false });
    const amount = 1_000;
    const allocation = await first.ledger.createAllocation({
      name: "Shared",
      owner: { type: "organization" },
      limit: 50 * amount,
    });

    const results = await Promise.all(
      Array.from({ length: 500 }, (_, index) =>
        (index % 2 === 0 ? first : second).ledger.reserve({
          requestId: `request-${index}`,
          allocationId: allocation.id,
          userId: "alice",
          keyId: index % 3 === 0 ? "key-alice" : null,
          keyLimit: index % 3 === 0 ? 100 * amount : null,
          amount,
        }),
      ),
    );

    expect(results.filter((result) => result.ok)).toHaveLength(50);
    for (const stores of [first, second]) {
      expect(await stores.ledger.getAllocation(allocation.id)).toMatchObject({ reserved: 50 * amount, remaining: 0 });
    }
  });

  it("keeps every counter exact under mixed concurrent reserves, commits, releases and sweeps", async () => {
    // One clock for both instances, a little before midnight: it moves a millisecond per request,
    // so leases lapse mid-run and the daily period rolls over while requests are in flight.
    const clock = createManualClock({ start: Date.UTC(2026, 0, 5, 23, 59, 59, 880) });
    const first = startInstance({ cache: false, clock });
    const second = startInstance({ cache: false, clock });
    const allocationIds = ["alc-a", "alc-b", "alc-c"];
    for (const id of allocationIds) {
      await first.ledger.createAllocation({ id, name: id, owner: { type: "organization" }, limit: 40_000, period: "day" });
    }

    // Reservations on several allocations and keys at once, some charged against another
    // allocation than the one they reserved on, swept from both instances while they run.
    const work = Array.from({ length: 300 }, async (_, index) => {
      const stores = index % 2 === 0 ? first : second;
      clock.advance(1);
      const requestId = `mixed-${index}`;
      const allocationId = allocationIds[index % 3]!;
      const keyId = `key-${index % 4}`;
      const reserved = await stores.ledger.reserve({
        requestId,
        allocationId,
        userId: "alice",
        keyId,
        keyLimit: 30_000,
        amount: 100 + (index % 7) * 50,
        leaseMs: index % 5 === 0 ? 1 : 60_000,
      });
      if (index % 11 === 0) await stores.ledger.sweepExpired();
      if (!reserved.ok) return;
      if (index % 3 === 0) {
        await stores.ledger.release(requestId);
      } else {
        await stores.ledger.commit({
          requestId,
          allocationId: index % 10 === 1 ? allocationIds[(index + 1) % 3]! : allocationId,
          userId: "alice",
          keyId,
          providerId: "prv",
          model: "owner:prv/model",
          inputTokens: 10,
          outputTokens: 5,
          cost: 90 + (index % 5) * 40,
        });
      }
    });
    await Promise.all(work);
    // One more reserve after the rollover refreshes an allocation's cached period spend.
    await first.ledger.reserve({
      requestId: "after",
      allocationId: "alc-a",
      userId: "alice",
      keyId: null,
      keyLimit: null,
      amount: 0,
    });

    const drift = await database.pool.query(
      `SELECT a.id,
              a.reserved - (SELECT coalesce(sum(amount), 0) FROM sluice_reservations r
                            WHERE r.allocation_id = a.id) AS reserved_drift,
              a.lifetime_spent - (SELECT coalesce(sum(cost), 0) FROM sluice_charges c
                                  WHERE c.allocation_id = a.id) AS spent_drift,
              a.period_spent - (SELECT coalesce(sum(cost), 0) FROM sluice_charges c
                                WHERE c.allocation_id = a.id AND c.at >= a.period_start
                                  AND c.at < a.period_start + 86400000) AS period_drift
       FROM sluice_allocations a ORDER BY a.id`,
    );
    expect(drift.rows).toEqual(
      allocationIds.map((id) => ({ id, reserved_drift: "0", spent_drift: "0", period_drift: "0" })),
    );
    const keyDrift = await database.pool.query(
      `SELECT count(*)::int AS drifting FROM sluice_key_balances k
       WHERE k.lifetime_spent <> (SELECT coalesce(sum(cost), 0) FROM sluice_charges c WHERE c.key_id = k.key_id)`,
    );
    expect(keyDrift.rows[0]).toEqual({ drifting: 0 });
    const report = await first.ledger.usage({ from: 0, to: clock.now() + 1, groupBy: "allocation" });
    expect(report.totals.requests).toBeGreaterThan(100);
    const today = await first.ledger.usage({ from: Date.UTC(2026, 0, 6), to: clock.now() + 1, groupBy: "allocation" });
    for (const group of today.groups) {
      expect((await second.ledger.getAllocation(group.key!))?.spent).toBe(group.cost);
    }
  });
});
