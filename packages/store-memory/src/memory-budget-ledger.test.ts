import { createManualClock } from "@sluice/core";
import { describe, expect, it } from "vitest";
import { createMemoryBudgetLedger } from "./memory-budget-ledger.js";

// The conformance suite proves the contract; these pin the memory ledger's own bookkeeping: the
// running sums, the lazily dropped reservations and the cached spend per period.

const minute = 60_000;

function setup() {
  const clock = createManualClock({ start: Date.UTC(2026, 0, 5, 12, 0, 0) });
  const ledger = createMemoryBudgetLedger({ clock });
  return { clock, ledger };
}

function reserveInput(requestId: string, amount: number, extra: { leaseMs?: number; keyId?: string } = {}) {
  return {
    requestId,
    allocationId: "alc_team",
    userId: "alice",
    keyId: extra.keyId ?? null,
    keyLimit: null,
    amount,
    ...(extra.leaseMs === undefined ? {} : { leaseMs: extra.leaseMs }),
  };
}

function chargeInput(requestId: string, cost: number) {
  return {
    requestId,
    allocationId: "alc_team",
    userId: "alice",
    keyId: "key_a",
    providerId: "prv_a",
    model: "alice:vllm/llama",
    inputTokens: 10,
    outputTokens: 5,
    cost,
  };
}

describe("memory budget ledger bookkeeping", () => {
  it("stops counting a reservation whose renewal shortened its lease, once that lease ends", async () => {
    const { clock, ledger } = setup();
    await ledger.createAllocation({ id: "alc_team", name: "Team", owner: { type: "organization" }, limit: 1_000 });
    await ledger.reserve(reserveInput("long", 100, { leaseMs: 10 * minute, keyId: "key_a" }));

    await ledger.renew({ requestId: "long", leaseMs: minute });
    clock.advance(2 * minute);

    expect((await ledger.getAllocation("alc_team"))?.reserved).toBe(0);
    expect(await ledger.keyBalance("key_a")).toEqual({ spent: 0, reserved: 0 });
  });

  it("keeps counting reservations that outlive one that expired, and sweeps only the expired", async () => {
    const { clock, ledger } = setup();
    await ledger.createAllocation({ id: "alc_team", name: "Team", owner: { type: "organization" }, limit: 1_000 });
    await ledger.reserve(reserveInput("short", 100, { leaseMs: minute }));
    await ledger.reserve(reserveInput("long", 200, { leaseMs: 10 * minute }));
    clock.advance(2 * minute);

    // Reading the balance drops the expired reservation from the sum but does not delete it.
    expect((await ledger.getAllocation("alc_team"))?.reserved).toBe(200);
    expect(await ledger.release("short")).toBe(false);
    expect(await ledger.sweepExpired()).toBe(1);
    expect((await ledger.getAllocation("alc_team"))?.reserved).toBe(200);
  });

  it("holds a re-reserved request id once, in the allocation and the key", async () => {
    const { clock, ledger } = setup();
    await ledger.createAllocation({ id: "alc_team", name: "Team", owner: { type: "organization" }, limit: 1_000 });
    await ledger.reserve(reserveInput("retry", 300, { leaseMs: minute, keyId: "key_a" }));
    clock.advance(2 * minute);

    const again = await ledger.reserve(reserveInput("retry", 400, { keyId: "key_a" }));

    expect(again).toMatchObject({ ok: true, reservation: { amount: 400 } });
    expect((await ledger.getAllocation("alc_team"))?.reserved).toBe(400);
    expect(await ledger.keyBalance("key_a")).toEqual({ spent: 0, reserved: 400 });
    expect(await ledger.sweepExpired()).toBe(0);
  });

  it("recomputes the period's spend when the period changes, and again when it changes back", async () => {
    const { clock, ledger } = setup();
    await ledger.createAllocation({
      id: "alc_team",
      name: "Team",
      owner: { type: "organization" },
      limit: 10_000,
      period: "day",
    });
    await ledger.commit(chargeInput("monday", 100));
    clock.advance(24 * 60 * minute);
    await ledger.commit(chargeInput("tuesday", 20));

    expect((await ledger.getAllocation("alc_team"))?.spent).toBe(20);
    await ledger.updateAllocation("alc_team", { period: "month" });
    expect((await ledger.getAllocation("alc_team"))?.spent).toBe(120);
    await ledger.commit(chargeInput("tuesday-later", 3));
    await ledger.updateAllocation("alc_team", { period: "day" });
    expect((await ledger.getAllocation("alc_team"))?.spent).toBe(23);
    await ledger.updateAllocation("alc_team", { period: null });
    expect((await ledger.getAllocation("alc_team"))?.spent).toBe(123);
  });

  it("adds a charge to the cached period spend and starts the next period at zero", async () => {
    const { clock, ledger } = setup();
    await ledger.createAllocation({
      id: "alc_team",
      name: "Team",
      owner: { type: "organization" },
      limit: 10_000,
      period: "week",
    });
    await ledger.commit(chargeInput("first", 100));
    expect((await ledger.getAllocation("alc_team"))?.spent).toBe(100);
    await ledger.commit(chargeInput("second", 50));
    expect((await ledger.getAllocation("alc_team"))?.spent).toBe(150);

    // 2026-01-05 is a Monday: a week later is the next period.
    clock.advance(7 * 24 * 60 * minute);

    expect((await ledger.getAllocation("alc_team"))?.spent).toBe(0);
    await ledger.commit(chargeInput("third", 7));
    expect((await ledger.getAllocation("alc_team"))?.spent).toBe(7);
    expect(await ledger.keyBalance("key_a")).toEqual({ spent: 157, reserved: 0 });
  });

  it("dumps its state for inspection", async () => {
    const { ledger } = setup();
    await ledger.createAllocation({ id: "alc_team", name: "Team", owner: { type: "organization" }, limit: 1_000 });
    await ledger.reserve(reserveInput("held", 100));
    await ledger.commit(chargeInput("charged", 40));

    const dump = JSON.parse(ledger.inspect()) as { reservations: unknown[]; charges: unknown[] };

    expect(dump.reservations).toEqual([expect.objectContaining({ requestId: "held", amount: 100 })]);
    expect(dump.charges).toEqual([expect.objectContaining({ requestId: "charged", cost: 40 })]);
  });
});
