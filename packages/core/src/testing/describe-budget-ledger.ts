import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_RESERVATION_LEASE_MS } from "../budget/budget-ledger.js";
import type {
  AllocationBalance,
  AllocationOwner,
  BudgetLedger,
  ChargeInput,
  CommitResult,
  CreateAllocationInput,
  Reservation,
  ReserveInput,
  ReserveResult,
  UsageGroup,
} from "../budget/budget-ledger.js";
import { periodEnd } from "../budget/budget-period.js";
import type { BudgetPeriod } from "../budget/budget-period.js";
import { createManualClock } from "../clock/clock.js";
import { createEventBus } from "../events/sluice-events.js";
import type { SluiceEventName, SluiceEvents } from "../events/sluice-events.js";
import { createSecretBox } from "../provider/secret-box.js";
import type { StoreHarness, StoreHarnessContext, StoreUnderTest } from "./store-harness.js";
import { expectGatewayError } from "./expect-gateway-error.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Monday 2026-01-05, noon UTC: every test starts here, so period boundaries are known in advance. */
const START = Date.UTC(2026, 0, 5, 12);

type BalanceFigures = Pick<AllocationBalance, "spent" | "reserved" | "remaining">;

/** One seeded charge for the usage tests, committed at START + offset. */
interface SeedCharge extends ChargeInput {
  offset: number;
}

// Costs are distinct powers of two, so a total names exactly which charges a report counted.
const usageSeed: SeedCharge[] = [
  {
    offset: 0,
    requestId: "usage-1",
    userId: "alice",
    keyId: "key-alice",
    allocationId: "alc-research",
    providerId: "prv-azure",
    model: "alice:azure/gpt-4o",
    inputTokens: 100,
    outputTokens: 10,
    cost: 1_000,
  },
  {
    offset: HOUR,
    requestId: "usage-2",
    userId: "alice",
    keyId: null,
    allocationId: "alc-research",
    providerId: "prv-azure",
    model: "alice:azure/gpt-4o",
    inputTokens: 200,
    outputTokens: 20,
    cost: 2_000,
  },
  {
    offset: DAY,
    requestId: "usage-3",
    userId: "bob",
    keyId: "key-bob",
    allocationId: "alc-research",
    providerId: "prv-local",
    model: "bob:local/llama",
    inputTokens: 300,
    outputTokens: 30,
    cost: 4_000,
  },
  {
    offset: DAY + HOUR,
    requestId: "usage-4",
    userId: "alice",
    keyId: "key-alice",
    allocationId: "alc-platform",
    providerId: "prv-local",
    model: "bob:local/llama",
    inputTokens: 400,
    outputTokens: 40,
    cost: 8_000,
  },
  {
    offset: 3 * DAY,
    requestId: "usage-5",
    userId: "carol",
    keyId: "key-carol",
    allocationId: "alc-platform",
    providerId: "prv-azure",
    model: "alice:azure/gpt-4o-mini",
    inputTokens: 500,
    outputTokens: 50,
    cost: 16_000,
  },
];

/** What a usage group over these seeded charges must hold. */
function expectedGroup(key: string | null, requestIds: readonly string[]): UsageGroup {
  const charges = usageSeed.filter((charge) => requestIds.includes(charge.requestId));
  const inputTokens = charges.reduce((sum, charge) => sum + charge.inputTokens, 0);
  const outputTokens = charges.reduce((sum, charge) => sum + charge.outputTokens, 0);
  return {
    key,
    requests: charges.length,
    inputTokens,
    outputTokens,
    totalTokens: inputTokens + outputTokens,
    cost: charges.reduce((sum, charge) => sum + charge.cost, 0),
    activeUsers: new Set(charges.map((charge) => charge.userId)).size,
  };
}

/**
 * The BudgetLedger conformance suite. Every implementation runs it in one line:
 * `describeBudgetLedger("memory", { create: async (context) => ({ store: ..., inspect: ... }) })`.
 */
export function describeBudgetLedger(name: string, harness: StoreHarness<BudgetLedger>): void {
  describe(`BudgetLedger conformance: ${name}`, () => {
    let context: StoreHarnessContext;
    let underTest: StoreUnderTest<BudgetLedger> | undefined;
    let ledger: BudgetLedger;
    let requestCount = 0;

    beforeEach(async () => {
      context = {
        clock: createManualClock({ start: START }),
        events: createEventBus(),
        secretBox: createSecretBox({ key: randomBytes(32) }),
      };
      underTest = await harness.create(context);
      ledger = underTest.store;
    });

    afterEach(async () => {
      await underTest?.close?.();
      underTest = undefined;
    });

    function nextRequestId(): string {
      requestCount += 1;
      return `request-${requestCount}`;
    }

    function createAllocation(input: Partial<CreateAllocationInput> = {}): Promise<AllocationBalance> {
      return ledger.createAllocation({
        name: "Research",
        owner: { type: "group", groupId: "research" },
        limit: 10_000,
        ...input,
      });
    }

    function reserveInput(input: Partial<ReserveInput> & Pick<ReserveInput, "allocationId">): ReserveInput {
      return { requestId: nextRequestId(), userId: "alice", keyId: null, keyLimit: null, amount: 1_000, ...input };
    }

    function chargeInput(input: Partial<ChargeInput> & Pick<ChargeInput, "allocationId">): ChargeInput {
      return {
        requestId: nextRequestId(),
        userId: "alice",
        keyId: null,
        providerId: "prv-azure",
        model: "alice:azure/gpt-4o",
        inputTokens: 100,
        outputTokens: 20,
        cost: 1_000,
        ...input,
      };
    }

    function reserve(input: Partial<ReserveInput> & Pick<ReserveInput, "allocationId">): Promise<ReserveResult> {
      return ledger.reserve(reserveInput(input));
    }

    function commit(input: Partial<ChargeInput> & Pick<ChargeInput, "allocationId">): Promise<CommitResult> {
      return ledger.commit(chargeInput(input));
    }

    /** Reserves and insists the reservation was admitted. */
    async function reserveOk(input: Partial<ReserveInput> & Pick<ReserveInput, "allocationId">): Promise<Reservation> {
      const result = await reserve(input);
      if (!result.ok) throw new Error(`expected the reservation to be admitted, it was refused: ${result.reason}`);
      return result.reservation;
    }

    async function balanceOf(allocationId: string): Promise<AllocationBalance> {
      const balance = await ledger.getAllocation(allocationId);
      if (balance === null) throw new Error(`allocation ${allocationId} is missing`);
      return balance;
    }

    async function expectBalance(allocationId: string, figures: BalanceFigures): Promise<void> {
      const balance = await balanceOf(allocationId);
      expect({ spent: balance.spent, reserved: balance.reserved, remaining: balance.remaining }).toEqual(figures);
    }

    function expectRefused(
      result: ReserveResult,
      reason: "allocation_exhausted" | "key_limit_exhausted",
      remaining: number,
    ): void {
      expect(result).toEqual({ ok: false, reason, remaining });
    }

    function recordEvents<Name extends SluiceEventName>(eventName: Name): Array<SluiceEvents[Name][0]> {
      const seen: Array<SluiceEvents[Name][0]> = [];
      const listener = (...args: SluiceEvents[Name]): void => {
        seen.push(args[0]);
      };
      context.events.on(eventName, listener as never);
      return seen;
    }

    async function seedUsage(): Promise<void> {
      await createAllocation({ id: "alc-research", name: "Research", limit: 1_000_000 });
      await createAllocation({ id: "alc-platform", name: "Platform", owner: { type: "organization" }, limit: 1_000_000 });
      for (const { offset, ...charge } of usageSeed) {
        context.clock.set(START + offset);
        await ledger.commit(charge);
      }
    }

    describe("allocations", () => {
      it("creates an allocation with a generated id, no period and an untouched balance", async () => {
        const allocation = await createAllocation({ name: "Research", limit: 10_000 });

        expect(allocation.id).toMatch(/^alc_/);
        expect(allocation).toEqual({
          id: allocation.id,
          name: "Research",
          owner: { type: "group", groupId: "research" },
          limit: 10_000,
          period: null,
          createdAt: START,
          updatedAt: START,
          spent: 0,
          reserved: 0,
          remaining: 10_000,
          periodStart: null,
          periodEnd: null,
        });
      });

      it("gives every allocation its own id", async () => {
        const first = await createAllocation();
        const second = await createAllocation();

        expect(first.id).not.toBe(second.id);
      });

      it("keeps an id given by the caller", async () => {
        const allocation = await createAllocation({ id: "alc-research" });

        expect(allocation.id).toBe("alc-research");
        expect(await ledger.getAllocation("alc-research")).toEqual(allocation);
      });

      it("trims the name", async () => {
        const allocation = await createAllocation({ name: "  Research  " });

        expect(allocation.name).toBe("Research");
      });

      it("refuses an id that is taken (409) and leaves the first allocation as it was", async () => {
        const first = await createAllocation({ id: "alc-research", limit: 10_000 });

        await expectGatewayError(createAllocation({ id: "alc-research", name: "Other", limit: 1 }), "conflict");
        expect(await ledger.getAllocation("alc-research")).toEqual(first);
      });

      it("reads an allocation by id, and null for an unknown id", async () => {
        const allocation = await createAllocation();

        expect(await ledger.getAllocation(allocation.id)).toEqual(allocation);
        expect(await ledger.getAllocation("alc-unknown")).toBeNull();
      });

      it("lists allocations by name, then by id", async () => {
        await createAllocation({ id: "alc-3", name: "Zeta" });
        await createAllocation({ id: "alc-2", name: "Alpha" });
        await createAllocation({ id: "alc-1", name: "Alpha" });

        const listed = await ledger.listAllocations();

        expect(listed.map((allocation) => allocation.id)).toEqual(["alc-1", "alc-2", "alc-3"]);
      });

      it("lists an empty ledger as []", async () => {
        expect(await ledger.listAllocations()).toEqual([]);
      });

      it("filters the list by owner, a group or the organization", async () => {
        await createAllocation({ id: "alc-research", name: "Research", owner: { type: "group", groupId: "research" } });
        await createAllocation({ id: "alc-sales", name: "Sales", owner: { type: "group", groupId: "sales" } });
        await createAllocation({ id: "alc-everyone", name: "Everyone", owner: { type: "organization" } });

        const ids = async (owners: AllocationOwner[]): Promise<string[]> =>
          (await ledger.listAllocations({ owners })).map((allocation) => allocation.id);

        expect(await ids([{ type: "group", groupId: "research" }])).toEqual(["alc-research"]);
        expect(await ids([{ type: "organization" }])).toEqual(["alc-everyone"]);
        expect(await ids([{ type: "group", groupId: "sales" }, { type: "organization" }])).toEqual([
          "alc-everyone",
          "alc-sales",
        ]);
        expect(await ids([{ type: "group", groupId: "nobody" }])).toEqual([]);
      });

      it("includes each allocation's balance in the list", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await commit({ allocationId: allocation.id, cost: 2_500 });

        const [listed] = await ledger.listAllocations();

        expect(listed).toMatchObject({ id: allocation.id, spent: 2_500, reserved: 0, remaining: 7_500 });
      });

      it("updates the name, limit and period, stamps updatedAt and keeps the rest", async () => {
        const allocation = await createAllocation({ name: "Research", limit: 10_000 });
        context.clock.advance(MINUTE);

        const updated = await ledger.updateAllocation(allocation.id, {
          name: "Research Lab",
          limit: 20_000,
          period: "month",
        });

        expect(updated).toEqual({
          ...allocation,
          name: "Research Lab",
          limit: 20_000,
          period: "month",
          updatedAt: START + MINUTE,
          remaining: 20_000,
          periodStart: Date.UTC(2026, 0, 1),
          periodEnd: Date.UTC(2026, 1, 1),
        });
        expect(await ledger.getAllocation(allocation.id)).toEqual(updated);
      });

      it("leaves out of a patch what it does not name", async () => {
        const allocation = await createAllocation({ name: "Research", limit: 10_000, period: "day" });

        const updated = await ledger.updateAllocation(allocation.id, { limit: 5_000 });

        expect(updated).toMatchObject({ name: "Research", limit: 5_000, period: "day" });
      });

      it("removes a period with null", async () => {
        const allocation = await createAllocation({ period: "week" });

        const updated = await ledger.updateAllocation(allocation.id, { period: null });

        expect(updated).toMatchObject({ period: null, periodStart: null, periodEnd: null });
      });

      it("refuses to update an unknown allocation (404)", async () => {
        await expectGatewayError(ledger.updateAllocation("alc-unknown", { limit: 1 }), "not_found");
      });

      it("publishes allocation-change when an allocation is created and when it is updated", async () => {
        const changes = recordEvents("allocation-change");

        const allocation = await createAllocation({ name: "Research", limit: 10_000 });
        await ledger.updateAllocation(allocation.id, { limit: 20_000 });

        expect(changes).toHaveLength(2);
        expect(changes[0]).toMatchObject({ change: "created", allocation: { id: allocation.id, limit: 10_000 } });
        expect(changes[1]).toMatchObject({ change: "updated", allocation: { id: allocation.id, limit: 20_000 } });
      });

      it("publishes nothing when a create or update fails", async () => {
        await createAllocation({ id: "alc-research" });
        const changes = recordEvents("allocation-change");

        await expectGatewayError(createAllocation({ id: "alc-research" }), "conflict");
        await expectGatewayError(ledger.updateAllocation("alc-unknown", { limit: 1 }), "not_found");

        expect(changes).toEqual([]);
      });
    });

    describe("balance", () => {
      it("reports spent, reserved and remaining", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await commit({ allocationId: allocation.id, cost: 2_500 });
        await reserveOk({ allocationId: allocation.id, amount: 3_000 });

        await expectBalance(allocation.id, { spent: 2_500, reserved: 3_000, remaining: 4_500 });
      });

      it("never reports a negative remaining, while spent may pass the limit", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await commit({ allocationId: allocation.id, cost: 12_000 });

        await expectBalance(allocation.id, { spent: 12_000, reserved: 0, remaining: 0 });
      });

      it("counts only this allocation's charges and reservations", async () => {
        const research = await createAllocation({ name: "Research" });
        const sales = await createAllocation({ name: "Sales" });
        await commit({ allocationId: sales.id, cost: 2_000 });
        await reserveOk({ allocationId: sales.id, amount: 3_000 });

        await expectBalance(research.id, { spent: 0, reserved: 0, remaining: 10_000 });
      });
    });

    describe("reserve", () => {
      it("admits a reservation within the limit and holds it until the lease runs out", async () => {
        const allocation = await createAllocation({ limit: 10_000 });

        const result = await ledger.reserve({
          requestId: "request-a",
          allocationId: allocation.id,
          userId: "alice",
          keyId: "key-alice",
          keyLimit: null,
          amount: 4_000,
        });

        expect(result).toEqual({
          ok: true,
          reservation: {
            requestId: "request-a",
            allocationId: allocation.id,
            userId: "alice",
            keyId: "key-alice",
            amount: 4_000,
            createdAt: START,
            expiresAt: START + DEFAULT_RESERVATION_LEASE_MS,
          },
        });
        await expectBalance(allocation.id, { spent: 0, reserved: 4_000, remaining: 6_000 });
      });

      it("takes the lease from leaseMs when given", async () => {
        const allocation = await createAllocation();

        const reservation = await reserveOk({ allocationId: allocation.id, leaseMs: 30_000 });

        expect(reservation.expiresAt).toBe(START + 30_000);
      });

      it("admits a reservation that fills the limit exactly", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, amount: 6_000 });

        const result = await reserve({ allocationId: allocation.id, amount: 4_000 });

        expect(result.ok).toBe(true);
        await expectBalance(allocation.id, { spent: 0, reserved: 10_000, remaining: 0 });
      });

      it("refuses a reservation that would pass the limit, and holds nothing for it", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, amount: 6_000 });

        const result = await reserve({ allocationId: allocation.id, amount: 4_001 });

        expectRefused(result, "allocation_exhausted", 4_000);
        await expectBalance(allocation.id, { spent: 0, reserved: 6_000, remaining: 4_000 });
      });

      it("counts spend as well as reservations against the limit", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await commit({ allocationId: allocation.id, cost: 7_000 });
        await reserveOk({ allocationId: allocation.id, amount: 2_000 });

        const result = await reserve({ allocationId: allocation.id, amount: 1_001 });

        expectRefused(result, "allocation_exhausted", 1_000);
      });

      it("admits a reservation of 0 while something is left", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, amount: 9_999 });

        const result = await reserve({ allocationId: allocation.id, amount: 0 });

        expect(result.ok).toBe(true);
      });

      it("refuses even a reservation of 0 once reservations hold the whole limit", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, amount: 10_000 });

        const result = await reserve({ allocationId: allocation.id, amount: 0 });

        expectRefused(result, "allocation_exhausted", 0);
      });

      it("refuses even a reservation of 0 once the limit is spent", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await commit({ allocationId: allocation.id, cost: 10_000 });

        const result = await reserve({ allocationId: allocation.id, amount: 0 });

        expectRefused(result, "allocation_exhausted", 0);
      });

      it("admits nothing against a limit of 0", async () => {
        const allocation = await createAllocation({ limit: 0 });

        const result = await reserve({ allocationId: allocation.id, amount: 0 });

        expectRefused(result, "allocation_exhausted", 0);
      });

      it("refuses an unknown allocation (404)", async () => {
        await expectGatewayError(reserve({ allocationId: "alc-unknown" }), "not_found");
      });

      it("returns the same reservation when a live request id is reserved again, and holds it once", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        const first = await reserveOk({ allocationId: allocation.id, requestId: "request-a", amount: 4_000 });

        const again = await reserve({ allocationId: allocation.id, requestId: "request-a", amount: 5_000 });

        expect(again).toEqual({ ok: true, reservation: first });
        await expectBalance(allocation.id, { spent: 0, reserved: 4_000, remaining: 6_000 });
      });

      it("returns the existing reservation on a retry even when it holds the whole limit", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        const first = await reserveOk({ allocationId: allocation.id, requestId: "request-a", amount: 10_000 });

        const again = await reserve({ allocationId: allocation.id, requestId: "request-a", amount: 10_000 });

        expect(again).toEqual({ ok: true, reservation: first });
      });

      it("refuses to reserve a request id that was already committed (409)", async () => {
        const allocation = await createAllocation();
        await reserveOk({ allocationId: allocation.id, requestId: "request-a" });
        await commit({ allocationId: allocation.id, requestId: "request-a" });

        await expectGatewayError(reserve({ allocationId: allocation.id, requestId: "request-a" }), "conflict");
        await expectBalance(allocation.id, { spent: 1_000, reserved: 0, remaining: 9_000 });
      });

      it("refuses to reserve a request id committed without any reservation (409)", async () => {
        const allocation = await createAllocation();
        await commit({ allocationId: allocation.id, requestId: "request-a" });

        await expectGatewayError(reserve({ allocationId: allocation.id, requestId: "request-a" }), "conflict");
      });

      it("admits a request id again once its reservation was released", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, requestId: "request-a", amount: 4_000 });
        await ledger.release("request-a");

        const result = await reserve({ allocationId: allocation.id, requestId: "request-a", amount: 3_000 });

        expect(result).toMatchObject({ ok: true, reservation: { requestId: "request-a", amount: 3_000 } });
        await expectBalance(allocation.id, { spent: 0, reserved: 3_000, remaining: 7_000 });
      });

      it("admits a request id again once its reservation expired, holding only the new amount", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, requestId: "request-a", amount: 4_000, leaseMs: MINUTE });
        context.clock.advance(MINUTE);

        const result = await reserve({ allocationId: allocation.id, requestId: "request-a", amount: 3_000 });

        expect(result).toMatchObject({
          ok: true,
          reservation: { requestId: "request-a", amount: 3_000, createdAt: START + MINUTE },
        });
        await expectBalance(allocation.id, { spent: 0, reserved: 3_000, remaining: 7_000 });
      });
    });

    describe("key caps", () => {
      it("refuses a reservation that would pass the key's cap, naming what the key has left", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await commit({ allocationId: allocation.id, keyId: "key-alice", cost: 600 });

        const result = await reserve({ allocationId: allocation.id, keyId: "key-alice", keyLimit: 1_000, amount: 500 });

        expectRefused(result, "key_limit_exhausted", 400);
      });

      it("admits a reservation that fills the key's cap exactly", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, keyId: "key-alice", keyLimit: 1_000, amount: 600 });

        const result = await reserve({ allocationId: allocation.id, keyId: "key-alice", keyLimit: 1_000, amount: 400 });

        expect(result.ok).toBe(true);
        expect(await ledger.keyBalance("key-alice")).toEqual({ spent: 0, reserved: 1_000 });
      });

      it("refuses even a reservation of 0 once the key's cap is used up", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, keyId: "key-alice", keyLimit: 1_000, amount: 1_000 });

        const result = await reserve({ allocationId: allocation.id, keyId: "key-alice", keyLimit: 1_000, amount: 0 });

        expectRefused(result, "key_limit_exhausted", 0);
      });

      it("admits nothing for a key with a cap of 0", async () => {
        const allocation = await createAllocation({ limit: 10_000 });

        const result = await reserve({ allocationId: allocation.id, keyId: "key-alice", keyLimit: 0, amount: 0 });

        expectRefused(result, "key_limit_exhausted", 0);
      });

      it("holds nothing on the allocation when the key refuses", async () => {
        const allocation = await createAllocation({ limit: 10_000 });

        await reserve({ allocationId: allocation.id, keyId: "key-alice", keyLimit: 100, amount: 500 });

        await expectBalance(allocation.id, { spent: 0, reserved: 0, remaining: 10_000 });
        expect(await ledger.keyBalance("key-alice")).toEqual({ spent: 0, reserved: 0 });
      });

      it("checks the allocation before the key when both would refuse", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await commit({ allocationId: allocation.id, keyId: "key-alice", cost: 9_800 });

        const result = await reserve({ allocationId: allocation.id, keyId: "key-alice", keyLimit: 9_900, amount: 500 });

        expectRefused(result, "allocation_exhausted", 200);
      });

      it("ignores the key's spend when the key has no cap", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await commit({ allocationId: allocation.id, keyId: "key-alice", cost: 5_000 });

        const result = await reserve({ allocationId: allocation.id, keyId: "key-alice", keyLimit: null, amount: 5_000 });

        expect(result.ok).toBe(true);
      });

      it("counts only that key's charges and reservations against its cap", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await commit({ allocationId: allocation.id, keyId: "key-bob", cost: 3_000 });
        await commit({ allocationId: allocation.id, keyId: null, cost: 3_000 });
        await reserveOk({ allocationId: allocation.id, keyId: "key-bob", amount: 1_000 });

        const result = await reserve({ allocationId: allocation.id, keyId: "key-alice", keyLimit: 1_000, amount: 1_000 });

        expect(result.ok).toBe(true);
      });

      it("counts the key's lifetime spend, across periods and allocations", async () => {
        context.clock.set(Date.UTC(2026, 0, 7, 12));
        const daily = await createAllocation({ name: "Daily", limit: 10_000, period: "day" });
        const other = await createAllocation({ name: "Other", limit: 10_000 });
        await commit({ allocationId: daily.id, keyId: "key-alice", cost: 400 });
        await commit({ allocationId: other.id, keyId: "key-alice", cost: 200 });
        context.clock.set(Date.UTC(2026, 0, 8, 12));

        await expectBalance(daily.id, { spent: 0, reserved: 0, remaining: 10_000 });
        expect(await ledger.keyBalance("key-alice")).toEqual({ spent: 600, reserved: 0 });
        const result = await reserve({ allocationId: daily.id, keyId: "key-alice", keyLimit: 1_000, amount: 500 });
        expectRefused(result, "key_limit_exhausted", 400);
      });
    });

    describe("keyBalance", () => {
      it("is zero for a key that was never used", async () => {
        expect(await ledger.keyBalance("key-unused")).toEqual({ spent: 0, reserved: 0 });
      });

      it("sums the key's charges and its live reservations", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await commit({ allocationId: allocation.id, keyId: "key-alice", cost: 700 });
        await commit({ allocationId: allocation.id, keyId: "key-alice", cost: 300 });
        await reserveOk({ allocationId: allocation.id, keyId: "key-alice", amount: 2_000 });
        await reserveOk({ allocationId: allocation.id, keyId: "key-alice", amount: 500, leaseMs: MINUTE });
        await reserveOk({ allocationId: allocation.id, keyId: "key-bob", amount: 4_000 });
        context.clock.advance(MINUTE);

        expect(await ledger.keyBalance("key-alice")).toEqual({ spent: 1_000, reserved: 2_000 });
      });
    });

    describe("commit", () => {
      it("records the charge with the clock's time and returns it", async () => {
        const allocation = await createAllocation();
        const input = chargeInput({ allocationId: allocation.id, requestId: "request-a", keyId: "key-alice", cost: 12 });

        const result = await ledger.commit(input);

        expect(result).toEqual({ duplicate: false, charge: { ...input, at: START } });
        expect(await ledger.getCharge("request-a")).toEqual({ ...input, at: START });
      });

      it("reads an unknown charge as null", async () => {
        expect(await ledger.getCharge("request-unknown")).toBeNull();
      });

      it("charges less than the reservation when the request cost less, freeing the rest", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, requestId: "request-a", amount: 4_000 });

        await commit({ allocationId: allocation.id, requestId: "request-a", cost: 1_500 });

        await expectBalance(allocation.id, { spent: 1_500, reserved: 0, remaining: 8_500 });
      });

      it("charges more than the reservation in full, even past the limit, and then refuses reservations", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, requestId: "request-a", amount: 9_000 });

        await commit({ allocationId: allocation.id, requestId: "request-a", cost: 12_000 });

        await expectBalance(allocation.id, { spent: 12_000, reserved: 0, remaining: 0 });
        expectRefused(await reserve({ allocationId: allocation.id, amount: 0 }), "allocation_exhausted", 0);
      });

      it("records a charge that had no reservation", async () => {
        const allocation = await createAllocation({ limit: 10_000 });

        const result = await commit({ allocationId: allocation.id, requestId: "request-a", cost: 700 });

        expect(result.duplicate).toBe(false);
        await expectBalance(allocation.id, { spent: 700, reserved: 0, remaining: 9_300 });
      });

      it("records the charge of a request whose reservation expired, and drops that reservation", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, requestId: "request-a", amount: 4_000, leaseMs: MINUTE });
        context.clock.advance(2 * MINUTE);

        const result = await commit({ allocationId: allocation.id, requestId: "request-a", cost: 3_000 });

        expect(result).toMatchObject({ duplicate: false, charge: { cost: 3_000, at: START + 2 * MINUTE } });
        await expectBalance(allocation.id, { spent: 3_000, reserved: 0, remaining: 7_000 });
        expect(await ledger.sweepExpired()).toBe(0);
      });

      it("records the charge of a request whose reservation was released", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, requestId: "request-a", amount: 4_000 });
        await ledger.release("request-a");

        const result = await commit({ allocationId: allocation.id, requestId: "request-a", cost: 3_000 });

        expect(result.duplicate).toBe(false);
        await expectBalance(allocation.id, { spent: 3_000, reserved: 0, remaining: 7_000 });
      });

      it("ends the reservation: nothing left to release or renew", async () => {
        const allocation = await createAllocation();
        await reserveOk({ allocationId: allocation.id, requestId: "request-a" });

        await commit({ allocationId: allocation.id, requestId: "request-a" });

        expect(await ledger.release("request-a")).toBe(false);
        expect(await ledger.renew({ requestId: "request-a" })).toBeNull();
      });

      it("is idempotent: a second commit of the request returns the first charge and changes nothing", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, requestId: "request-a", amount: 2_000 });
        const charges = recordEvents("usage-charge");
        const first = await commit({ allocationId: allocation.id, requestId: "request-a", cost: 1_500 });
        context.clock.advance(MINUTE);

        const second = await commit({
          allocationId: allocation.id,
          requestId: "request-a",
          cost: 9_999,
          inputTokens: 7,
          outputTokens: 7,
        });

        expect(second).toEqual({ duplicate: true, charge: first.charge });
        expect(await ledger.getCharge("request-a")).toEqual(first.charge);
        await expectBalance(allocation.id, { spent: 1_500, reserved: 0, remaining: 8_500 });
        expect(charges).toHaveLength(1);
      });

      it("refuses an unknown allocation (404) and records nothing", async () => {
        await expectGatewayError(
          commit({ allocationId: "alc-unknown", requestId: "request-a" }),
          "not_found",
        );

        expect(await ledger.getCharge("request-a")).toBeNull();
      });

      it("publishes usage-charge with the charge", async () => {
        const allocation = await createAllocation();
        const charges = recordEvents("usage-charge");

        const result = await commit({ allocationId: allocation.id });

        expect(charges).toEqual([result.charge]);
      });
    });

    describe("release", () => {
      it("ends a live reservation and answers true", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, requestId: "request-a", amount: 4_000 });

        expect(await ledger.release("request-a")).toBe(true);
        await expectBalance(allocation.id, { spent: 0, reserved: 0, remaining: 10_000 });
      });

      it("is idempotent: a second release answers false", async () => {
        const allocation = await createAllocation();
        await reserveOk({ allocationId: allocation.id, requestId: "request-a" });
        await ledger.release("request-a");

        expect(await ledger.release("request-a")).toBe(false);
      });

      it("answers false for an unknown request id", async () => {
        expect(await ledger.release("request-unknown")).toBe(false);
      });

      it("answers false for a reservation that already expired", async () => {
        const allocation = await createAllocation();
        await reserveOk({ allocationId: allocation.id, requestId: "request-a", leaseMs: MINUTE });
        context.clock.advance(MINUTE);

        expect(await ledger.release("request-a")).toBe(false);
      });

      it("leaves the charge of a committed request alone", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await commit({ allocationId: allocation.id, requestId: "request-a", cost: 1_000 });

        expect(await ledger.release("request-a")).toBe(false);
        await expectBalance(allocation.id, { spent: 1_000, reserved: 0, remaining: 9_000 });
      });
    });

    describe("leases", () => {
      it("an abandoned reservation counts until its lease runs out, then stops counting before any sweep", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, keyId: "key-alice", amount: 4_000, leaseMs: MINUTE });

        context.clock.advance(MINUTE - 1);
        await expectBalance(allocation.id, { spent: 0, reserved: 4_000, remaining: 6_000 });

        context.clock.advance(1);
        await expectBalance(allocation.id, { spent: 0, reserved: 0, remaining: 10_000 });
        expect(await ledger.keyBalance("key-alice")).toEqual({ spent: 0, reserved: 0 });
      });

      it("an expired reservation no longer blocks new ones", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, amount: 10_000, leaseMs: MINUTE });
        context.clock.advance(MINUTE);

        const result = await reserve({ allocationId: allocation.id, amount: 10_000 });

        expect(result.ok).toBe(true);
      });

      it("sweepExpired deletes the expired reservations, counts them, and keeps the live ones", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, amount: 1_000, leaseMs: MINUTE });
        await reserveOk({ allocationId: allocation.id, amount: 2_000, leaseMs: MINUTE });
        await reserveOk({ allocationId: allocation.id, amount: 3_000, leaseMs: 5 * MINUTE });
        context.clock.advance(MINUTE);

        expect(await ledger.sweepExpired()).toBe(2);
        expect(await ledger.sweepExpired()).toBe(0);
        await expectBalance(allocation.id, { spent: 0, reserved: 3_000, remaining: 7_000 });
      });

      it("sweepExpired finds nothing when every reservation is live", async () => {
        const allocation = await createAllocation();
        await reserveOk({ allocationId: allocation.id });

        expect(await ledger.sweepExpired()).toBe(0);
      });

      it("renew extends a live reservation's lease from now", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        const reservation = await reserveOk({
          allocationId: allocation.id,
          requestId: "request-a",
          amount: 4_000,
          leaseMs: MINUTE,
        });
        context.clock.advance(MINUTE - 1);

        const renewed = await ledger.renew({ requestId: "request-a", leaseMs: MINUTE });

        expect(renewed).toEqual({ ...reservation, expiresAt: START + 2 * MINUTE - 1 });
        context.clock.advance(MINUTE - 1);
        await expectBalance(allocation.id, { spent: 0, reserved: 4_000, remaining: 6_000 });
        context.clock.advance(1);
        await expectBalance(allocation.id, { spent: 0, reserved: 0, remaining: 10_000 });
      });

      it("renew uses the default lease when none is given", async () => {
        const allocation = await createAllocation();
        await reserveOk({ allocationId: allocation.id, requestId: "request-a", leaseMs: MINUTE });
        context.clock.advance(30_000);

        const renewed = await ledger.renew({ requestId: "request-a" });

        expect(renewed?.expiresAt).toBe(START + 30_000 + DEFAULT_RESERVATION_LEASE_MS);
      });

      it("renew answers null for a reservation that expired", async () => {
        const allocation = await createAllocation();
        await reserveOk({ allocationId: allocation.id, requestId: "request-a", leaseMs: MINUTE });
        context.clock.advance(MINUTE);

        expect(await ledger.renew({ requestId: "request-a" })).toBeNull();
        await expectBalance(allocation.id, { spent: 0, reserved: 0, remaining: 10_000 });
      });

      it("renew answers null for a released or unknown request", async () => {
        const allocation = await createAllocation();
        await reserveOk({ allocationId: allocation.id, requestId: "request-a" });
        await ledger.release("request-a");

        expect(await ledger.renew({ requestId: "request-a" })).toBeNull();
        expect(await ledger.renew({ requestId: "request-unknown" })).toBeNull();
      });
    });

    describe("budget periods", () => {
      const wednesdayNoon = Date.UTC(2026, 0, 7, 12);
      const periods: Array<{ period: BudgetPeriod; start: number; end: number }> = [
        { period: "day", start: Date.UTC(2026, 0, 7), end: Date.UTC(2026, 0, 8) },
        // Weeks start on Monday, UTC.
        { period: "week", start: Date.UTC(2026, 0, 5), end: Date.UTC(2026, 0, 12) },
        { period: "month", start: Date.UTC(2026, 0, 1), end: Date.UTC(2026, 1, 1) },
      ];

      for (const { period, start, end } of periods) {
        describe(`a ${period} period`, () => {
          it("reports the bounds of the current period", async () => {
            context.clock.set(wednesdayNoon);

            const allocation = await createAllocation({ period });

            expect(allocation).toMatchObject({ period, periodStart: start, periodEnd: end });
          });

          it("counts charges until the period ends, then starts again at zero", async () => {
            context.clock.set(wednesdayNoon);
            const allocation = await createAllocation({ limit: 10_000, period });
            await commit({ allocationId: allocation.id, cost: 3_000 });

            context.clock.set(end - 1);
            await expectBalance(allocation.id, { spent: 3_000, reserved: 0, remaining: 7_000 });

            context.clock.set(end);
            await expectBalance(allocation.id, { spent: 0, reserved: 0, remaining: 10_000 });
            expect(await balanceOf(allocation.id)).toMatchObject({ periodStart: end, periodEnd: periodEnd(period, end) });
          });

          it("counts a charge made at the first instant of the new period", async () => {
            context.clock.set(wednesdayNoon);
            const allocation = await createAllocation({ limit: 10_000, period });
            await commit({ allocationId: allocation.id, cost: 3_000 });
            context.clock.set(end);

            await commit({ allocationId: allocation.id, cost: 500 });

            await expectBalance(allocation.id, { spent: 500, reserved: 0, remaining: 9_500 });
          });

          it("admits in the new period what the old one refused", async () => {
            context.clock.set(wednesdayNoon);
            const allocation = await createAllocation({ limit: 10_000, period });
            await commit({ allocationId: allocation.id, cost: 10_000 });
            expectRefused(await reserve({ allocationId: allocation.id, amount: 1 }), "allocation_exhausted", 0);

            context.clock.set(end);

            expect((await reserve({ allocationId: allocation.id, amount: 10_000 })).ok).toBe(true);
          });

          it("keeps the last period's charges in the ledger and in usage", async () => {
            context.clock.set(wednesdayNoon);
            const allocation = await createAllocation({ limit: 10_000, period });
            await commit({ allocationId: allocation.id, requestId: "request-a", cost: 3_000 });
            context.clock.set(end);

            const report = await ledger.usage({ from: start, to: end });

            expect(report.totals).toMatchObject({ requests: 1, cost: 3_000 });
            expect(await ledger.getCharge("request-a")).toMatchObject({ cost: 3_000, at: wednesdayNoon });
          });
        });
      }

      it("changing the period changes which charges count", async () => {
        context.clock.set(wednesdayNoon);
        const allocation = await createAllocation({ limit: 10_000 });
        await commit({ allocationId: allocation.id, cost: 1_000 });
        context.clock.set(wednesdayNoon + DAY);
        await commit({ allocationId: allocation.id, cost: 2_000 });
        await expectBalance(allocation.id, { spent: 3_000, reserved: 0, remaining: 7_000 });

        await ledger.updateAllocation(allocation.id, { period: "day" });
        await expectBalance(allocation.id, { spent: 2_000, reserved: 0, remaining: 8_000 });

        await ledger.updateAllocation(allocation.id, { period: null });
        await expectBalance(allocation.id, { spent: 3_000, reserved: 0, remaining: 7_000 });
      });

      it("keeps live reservations counting across a period boundary", async () => {
        context.clock.set(Date.UTC(2026, 0, 7, 23, 59));
        const allocation = await createAllocation({ limit: 10_000, period: "day" });
        await reserveOk({ allocationId: allocation.id, amount: 4_000, leaseMs: 10 * MINUTE });

        context.clock.set(Date.UTC(2026, 0, 8, 0, 1));

        await expectBalance(allocation.id, { spent: 0, reserved: 4_000, remaining: 6_000 });
      });
    });

    describe("changing a limit", () => {
      it("a lower limit takes effect on the next reserve, keeping what is already held", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, amount: 6_000 });

        const updated = await ledger.updateAllocation(allocation.id, { limit: 5_000 });

        expect(updated).toMatchObject({ limit: 5_000, spent: 0, reserved: 6_000, remaining: 0 });
        expectRefused(await reserve({ allocationId: allocation.id, amount: 0 }), "allocation_exhausted", 0);
      });

      it("a higher limit admits more on the next reserve", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        await reserveOk({ allocationId: allocation.id, amount: 10_000 });

        await ledger.updateAllocation(allocation.id, { limit: 15_000 });

        expect((await reserve({ allocationId: allocation.id, amount: 5_000 })).ok).toBe(true);
      });
    });

    describe("under concurrency", () => {
      const amount = 1_000;

      it("admits exactly as many of 500 concurrent reservations as fit the allocation", async () => {
        const allocation = await createAllocation({ limit: 50 * amount });

        const results = await Promise.all(
          Array.from({ length: 500 }, () => reserve({ allocationId: allocation.id, amount })),
        );

        expect(results.filter((result) => result.ok)).toHaveLength(50);
        for (const result of results) {
          if (!result.ok) expectRefused(result, "allocation_exhausted", 0);
        }
        await expectBalance(allocation.id, { spent: 0, reserved: 50 * amount, remaining: 0 });
      });

      it("admits exactly as many of 500 concurrent reservations as fit a key cap below the allocation's", async () => {
        const allocation = await createAllocation({ limit: 50 * amount });

        const results = await Promise.all(
          Array.from({ length: 500 }, () =>
            reserve({ allocationId: allocation.id, keyId: "key-alice", keyLimit: 20 * amount, amount }),
          ),
        );

        expect(results.filter((result) => result.ok)).toHaveLength(20);
        for (const result of results) {
          if (!result.ok) expectRefused(result, "key_limit_exhausted", 0);
        }
        await expectBalance(allocation.id, { spent: 0, reserved: 20 * amount, remaining: 30 * amount });
        expect(await ledger.keyBalance("key-alice")).toEqual({ spent: 0, reserved: 20 * amount });
      });

      it("admits exactly what fits the allocation when the key cap is above it", async () => {
        const allocation = await createAllocation({ limit: 50 * amount });

        const results = await Promise.all(
          Array.from({ length: 500 }, () =>
            reserve({ allocationId: allocation.id, keyId: "key-alice", keyLimit: 100 * amount, amount }),
          ),
        );

        expect(results.filter((result) => result.ok)).toHaveLength(50);
        for (const result of results) {
          if (!result.ok) expectRefused(result, "allocation_exhausted", 0);
        }
        expect(await ledger.keyBalance("key-alice")).toEqual({ spent: 0, reserved: 50 * amount });
      });

      it("keeps two capped keys sharing an allocation within both limits", async () => {
        const allocation = await createAllocation({ limit: 50 * amount });

        const results = await Promise.all(
          Array.from({ length: 500 }, (_, index) => {
            const keyId = index % 2 === 0 ? "key-alice" : "key-bob";
            return reserve({ allocationId: allocation.id, keyId, keyLimit: 30 * amount, amount });
          }),
        );

        expect(results.filter((result) => result.ok)).toHaveLength(50);
        const alice = await ledger.keyBalance("key-alice");
        const bob = await ledger.keyBalance("key-bob");
        expect(alice.reserved).toBeLessThanOrEqual(30 * amount);
        expect(bob.reserved).toBeLessThanOrEqual(30 * amount);
        expect(alice.reserved + bob.reserved).toBe(50 * amount);
      });

      it("never holds more than the limit when reservations of different sizes race", async () => {
        const limit = 100_000;
        const allocation = await createAllocation({ limit });
        const sizes = [1, 7, 130, 999, 2_500, 7_777];

        const results = await Promise.all(
          Array.from({ length: 300 }, (_, index) =>
            reserve({ allocationId: allocation.id, amount: sizes[index % sizes.length] }),
          ),
        );

        const held = results.reduce((sum, result) => sum + (result.ok ? result.reservation.amount : 0), 0);
        expect(held).toBeLessThanOrEqual(limit);
        const balance = await balanceOf(allocation.id);
        expect(balance.reserved).toBe(held);
        expect(balance.remaining).toBe(limit - held);
      });

      it("holds a request once when the same request id is reserved 100 times at once", async () => {
        const allocation = await createAllocation({ limit: 50 * amount });

        const results = await Promise.all(
          Array.from({ length: 100 }, () =>
            reserve({ allocationId: allocation.id, requestId: "request-a", amount }),
          ),
        );

        expect(results.every((result) => result.ok)).toBe(true);
        await expectBalance(allocation.id, { spent: 0, reserved: amount, remaining: 49 * amount });
      });

      it("charges a request once when it is committed 100 times at once", async () => {
        const allocation = await createAllocation({ limit: 50 * amount });
        const charges = recordEvents("usage-charge");

        const results = await Promise.all(
          Array.from({ length: 100 }, (_, index) =>
            commit({ allocationId: allocation.id, requestId: "request-a", cost: amount + index }),
          ),
        );

        const recorded = results.filter((result) => !result.duplicate);
        expect(recorded).toHaveLength(1);
        const [winner] = recorded;
        if (!winner) throw new Error("no commit recorded the charge");
        for (const result of results) expect(result.charge).toEqual(winner.charge);
        expect(charges).toEqual([winner.charge]);
        const spent = winner.charge.cost;
        await expectBalance(allocation.id, { spent, reserved: 0, remaining: 50 * amount - spent });
      });
    });

    describe("ledger totals", () => {
      it("usage agrees with every allocation's spent after a mixed sequence", async () => {
        const one = await createAllocation({ id: "alc-one", name: "One", limit: 100_000 });
        const two = await createAllocation({ id: "alc-two", name: "Two", limit: 100_000 });

        await reserveOk({ allocationId: one.id, requestId: "request-1", amount: 1_000 });
        await commit({ allocationId: one.id, requestId: "request-1", cost: 800 });
        await reserveOk({ allocationId: one.id, requestId: "request-2", amount: 2_000 });
        await commit({ allocationId: one.id, requestId: "request-2", cost: 2_500 });
        await commit({ allocationId: one.id, requestId: "request-2", cost: 9_999 });
        await reserveOk({ allocationId: two.id, requestId: "request-3", amount: 3_000 });
        await ledger.release("request-3");
        await reserveOk({ allocationId: two.id, requestId: "request-4", amount: 1_000, leaseMs: MINUTE });
        context.clock.advance(MINUTE);
        await commit({ allocationId: two.id, requestId: "request-4", cost: 1_200 });
        await commit({ allocationId: two.id, requestId: "request-5", cost: 700 });
        await reserveOk({ allocationId: one.id, requestId: "request-6", amount: 500 });
        await reserve({ allocationId: one.id, requestId: "request-7", amount: 1_000_000 });

        await expectBalance(one.id, { spent: 3_300, reserved: 500, remaining: 96_200 });
        await expectBalance(two.id, { spent: 1_900, reserved: 0, remaining: 98_100 });
        const report = await ledger.usage({ from: 0, to: context.clock.now() + 1, groupBy: "allocation" });
        expect(report.totals).toMatchObject({ requests: 4, cost: 3_300 + 1_900 });
        expect(report.groups.map((group) => group.key)).toEqual(["alc-one", "alc-two"]);
        for (const group of report.groups) {
          if (group.key === null) throw new Error("a charge without an allocation");
          expect(group.cost).toBe((await balanceOf(group.key)).spent);
        }
      });
    });

    describe("usage", () => {
      const everything = { from: START, to: START + 4 * DAY };

      it("totals every charge in the range", async () => {
        await seedUsage();

        const report = await ledger.usage(everything);

        expect(report).toEqual({
          from: everything.from,
          to: everything.to,
          totals: {
            requests: 5,
            inputTokens: 1_500,
            outputTokens: 150,
            totalTokens: 1_650,
            cost: 31_000,
            activeUsers: 3,
          },
          groups: [],
        });
      });

      it("reports zeros for a range without charges", async () => {
        await seedUsage();

        const report = await ledger.usage({ from: START + 10 * DAY, to: START + 11 * DAY, groupBy: "model" });

        expect(report.totals).toEqual({
          requests: 0,
          inputTokens: 0,
          outputTokens: 0,
          totalTokens: 0,
          cost: 0,
          activeUsers: 0,
        });
        expect(report.groups).toEqual([]);
      });

      it("counts a charge made at `from` and leaves out one made at `to`", async () => {
        await seedUsage();

        const report = await ledger.usage({ from: START + HOUR, to: START + DAY + HOUR });

        expect(report.totals).toMatchObject({ requests: 2, cost: 2_000 + 4_000 });
      });

      it("counts each active user once", async () => {
        await seedUsage();

        expect((await ledger.usage(everything)).totals.activeUsers).toBe(3);
        expect((await ledger.usage({ ...everything, userId: "alice" })).totals.activeUsers).toBe(1);
      });

      const filters = [
        { what: "user", filter: { userId: "alice" }, requests: 3, cost: 1_000 + 2_000 + 8_000 },
        { what: "key", filter: { keyId: "key-alice" }, requests: 2, cost: 1_000 + 8_000 },
        { what: "one allocation", filter: { allocationIds: ["alc-platform"] }, requests: 2, cost: 8_000 + 16_000 },
        {
          what: "several allocations",
          filter: { allocationIds: ["alc-research", "alc-platform"] },
          requests: 5,
          cost: 31_000,
        },
        { what: "provider", filter: { providerId: "prv-local" }, requests: 2, cost: 4_000 + 8_000 },
        { what: "model, matched exactly", filter: { model: "alice:azure/gpt-4o" }, requests: 2, cost: 1_000 + 2_000 },
        {
          what: "user and provider together",
          filter: { userId: "alice", providerId: "prv-azure" },
          requests: 2,
          cost: 3_000,
        },
        { what: "an unknown user", filter: { userId: "nobody" }, requests: 0, cost: 0 },
      ];
      for (const { what, filter, requests, cost } of filters) {
        it(`filters by ${what}`, async () => {
          await seedUsage();

          const report = await ledger.usage({ ...everything, ...filter });

          expect(report.totals).toMatchObject({ requests, cost });
        });
      }

      it("reports no groups without groupBy", async () => {
        await seedUsage();

        expect((await ledger.usage(everything)).groups).toEqual([]);
      });

      it("groups by model, highest cost first", async () => {
        await seedUsage();

        const report = await ledger.usage({ ...everything, groupBy: "model" });

        expect(report.groups).toEqual([
          expectedGroup("alice:azure/gpt-4o-mini", ["usage-5"]),
          expectedGroup("bob:local/llama", ["usage-3", "usage-4"]),
          expectedGroup("alice:azure/gpt-4o", ["usage-1", "usage-2"]),
        ]);
      });

      it("groups by key, with requests made without a key under null", async () => {
        await seedUsage();

        const report = await ledger.usage({ ...everything, groupBy: "key" });

        expect(report.groups).toEqual([
          expectedGroup("key-carol", ["usage-5"]),
          expectedGroup("key-alice", ["usage-1", "usage-4"]),
          expectedGroup("key-bob", ["usage-3"]),
          expectedGroup(null, ["usage-2"]),
        ]);
      });

      it("groups by user", async () => {
        await seedUsage();

        const report = await ledger.usage({ ...everything, groupBy: "user" });

        expect(report.groups).toEqual([
          expectedGroup("carol", ["usage-5"]),
          expectedGroup("alice", ["usage-1", "usage-2", "usage-4"]),
          expectedGroup("bob", ["usage-3"]),
        ]);
      });

      it("groups by allocation", async () => {
        await seedUsage();

        const report = await ledger.usage({ ...everything, groupBy: "allocation" });

        expect(report.groups).toEqual([
          expectedGroup("alc-platform", ["usage-4", "usage-5"]),
          expectedGroup("alc-research", ["usage-1", "usage-2", "usage-3"]),
        ]);
      });

      it("groups by provider", async () => {
        await seedUsage();

        const report = await ledger.usage({ ...everything, groupBy: "provider" });

        expect(report.groups).toEqual([
          expectedGroup("prv-azure", ["usage-1", "usage-2", "usage-5"]),
          expectedGroup("prv-local", ["usage-3", "usage-4"]),
        ]);
      });

      it("groups only the charges that pass the filters", async () => {
        await seedUsage();

        const report = await ledger.usage({ ...everything, userId: "alice", groupBy: "provider" });

        expect(report.groups).toEqual([
          expectedGroup("prv-local", ["usage-4"]),
          expectedGroup("prv-azure", ["usage-1", "usage-2"]),
        ]);
      });

      it("orders groups of equal cost by key, with the null group last", async () => {
        const allocation = await createAllocation({ limit: 1_000_000 });
        for (const keyId of ["key-b", null, "key-a"]) {
          await commit({ allocationId: allocation.id, keyId, cost: 500 });
        }
        await commit({ allocationId: allocation.id, keyId: "key-c", cost: 900 });

        const report = await ledger.usage({ from: START, to: START + 1, groupBy: "key" });

        expect(report.groups.map((group) => group.key)).toEqual(["key-c", "key-a", "key-b", null]);
      });

      it("groups by day with every day of the range present, quiet days as zero rows", async () => {
        await seedUsage();

        const report = await ledger.usage({ from: Date.UTC(2026, 0, 5), to: Date.UTC(2026, 0, 9), groupBy: "day" });

        expect(report.groups).toEqual([
          expectedGroup("2026-01-05", ["usage-1", "usage-2"]),
          expectedGroup("2026-01-06", ["usage-3", "usage-4"]),
          expectedGroup("2026-01-07", []),
          expectedGroup("2026-01-08", ["usage-5"]),
        ]);
      });

      it("groups by day including the partial first and last days of the range", async () => {
        await seedUsage();

        const report = await ledger.usage({ from: START + HOUR, to: Date.UTC(2026, 0, 7, 6), groupBy: "day" });

        expect(report.groups).toEqual([
          expectedGroup("2026-01-05", ["usage-2"]),
          expectedGroup("2026-01-06", ["usage-3", "usage-4"]),
          expectedGroup("2026-01-07", []),
        ]);
      });

      it("groups by day without the day that `to` opens at midnight", async () => {
        await seedUsage();

        const report = await ledger.usage({ from: Date.UTC(2026, 0, 5), to: Date.UTC(2026, 0, 7), groupBy: "day" });

        expect(report.groups.map((group) => group.key)).toEqual(["2026-01-05", "2026-01-06"]);
      });

      it("groups a range without charges into zero rows, one per day", async () => {
        const report = await ledger.usage({ from: Date.UTC(2026, 1, 1), to: Date.UTC(2026, 1, 4), groupBy: "day" });

        expect(report.groups).toEqual([
          expectedGroup("2026-02-01", []),
          expectedGroup("2026-02-02", []),
          expectedGroup("2026-02-03", []),
        ]);
      });
    });

    describe("returned objects are copies", () => {
      it("changing a returned allocation does not change the stored one", async () => {
        const allocation = await createAllocation({ owner: { type: "group", groupId: "research" }, limit: 10_000 });
        const read = await balanceOf(allocation.id);

        allocation.limit = 1;
        read.owner = { type: "organization" };
        read.spent = 99;

        expect(await balanceOf(allocation.id)).toMatchObject({
          owner: { type: "group", groupId: "research" },
          limit: 10_000,
          spent: 0,
        });
      });

      it("changing a returned reservation does not change the held one", async () => {
        const allocation = await createAllocation({ limit: 10_000 });
        const reservation = await reserveOk({ allocationId: allocation.id, requestId: "request-a", amount: 4_000 });

        reservation.amount = 1;
        reservation.expiresAt = 0;

        await expectBalance(allocation.id, { spent: 0, reserved: 4_000, remaining: 6_000 });
        expect(await ledger.renew({ requestId: "request-a", leaseMs: MINUTE })).toMatchObject({ amount: 4_000 });
      });

      it("changing a returned charge does not change the ledger", async () => {
        const allocation = await createAllocation();
        const { charge } = await commit({ allocationId: allocation.id, requestId: "request-a", cost: 1_000 });
        const read = await ledger.getCharge("request-a");

        charge.cost = 5;
        if (read) read.model = "changed";

        expect(await ledger.getCharge("request-a")).toMatchObject({ cost: 1_000, model: "alice:azure/gpt-4o" });
      });

      it("keeps its own copy of the input it was given", async () => {
        const owner = { type: "group" as const, groupId: "research" };
        const allocation = await createAllocation({ owner });

        owner.groupId = "changed";

        expect((await balanceOf(allocation.id)).owner).toEqual({ type: "group", groupId: "research" });
      });
    });

    describe("bad input", () => {
      const badReserves: Array<{ what: string; change: Record<string, unknown>; param: string }> = [
        { what: "a negative amount", change: { amount: -1 }, param: "amount" },
        { what: "a fractional amount", change: { amount: 1.5 }, param: "amount" },
        { what: "an amount given as a string", change: { amount: "100" }, param: "amount" },
        { what: "an amount that is NaN", change: { amount: Number.NaN }, param: "amount" },
        { what: "an empty request id", change: { requestId: "" }, param: "requestId" },
        { what: "a negative key limit", change: { keyLimit: -1 }, param: "keyLimit" },
        { what: "a lease of 0", change: { leaseMs: 0 }, param: "leaseMs" },
        { what: "a user id with a colon", change: { userId: "alice:admin" }, param: "userId" },
      ];
      for (const { what, change, param } of badReserves) {
        it(`refuses a reserve with ${what} (400 naming ${param}) and holds nothing`, async () => {
          const allocation = await createAllocation({ limit: 10_000 });

          await expectGatewayError(
            ledger.reserve({ ...reserveInput({ allocationId: allocation.id }), ...change } as ReserveInput),
            "invalid_request",
            param,
          );
          await expectBalance(allocation.id, { spent: 0, reserved: 0, remaining: 10_000 });
        });
      }

      it("refuses a reserve without a request id (400 naming requestId)", async () => {
        const allocation = await createAllocation();
        const { requestId: _omitted, ...withoutRequestId } = reserveInput({ allocationId: allocation.id });

        await expectGatewayError(ledger.reserve(withoutRequestId as ReserveInput), "invalid_request", "requestId");
      });

      it("refuses a reserve with an unknown field (400 naming the field)", async () => {
        const allocation = await createAllocation();

        await expectGatewayError(
          ledger.reserve({ ...reserveInput({ allocationId: allocation.id }), priority: "high" } as ReserveInput),
          "invalid_request",
          "priority",
        );
      });

      const badCharges: Array<{ what: string; change: Record<string, unknown>; param: string }> = [
        { what: "negative input tokens", change: { inputTokens: -1 }, param: "inputTokens" },
        { what: "negative output tokens", change: { outputTokens: -5 }, param: "outputTokens" },
        { what: "fractional output tokens", change: { outputTokens: 1.5 }, param: "outputTokens" },
        { what: "a fractional cost", change: { cost: 0.5 }, param: "cost" },
        { what: "a negative cost", change: { cost: -1 }, param: "cost" },
        { what: "a cost given as a string", change: { cost: "100" }, param: "cost" },
        { what: "an empty model", change: { model: "" }, param: "model" },
        { what: "an empty request id", change: { requestId: "" }, param: "requestId" },
      ];
      for (const { what, change, param } of badCharges) {
        it(`refuses a commit with ${what} (400 naming ${param}) and charges nothing`, async () => {
          const allocation = await createAllocation({ limit: 10_000 });

          await expectGatewayError(
            ledger.commit({ ...chargeInput({ allocationId: allocation.id }), ...change } as ChargeInput),
            "invalid_request",
            param,
          );
          await expectBalance(allocation.id, { spent: 0, reserved: 0, remaining: 10_000 });
        });
      }

      it("refuses a commit with an unknown field (400 naming the field)", async () => {
        const allocation = await createAllocation();

        await expectGatewayError(
          ledger.commit({ ...chargeInput({ allocationId: allocation.id }), currency: "EUR" } as ChargeInput),
          "invalid_request",
          "currency",
        );
      });

      it("refuses a commit without a request id (400 naming requestId)", async () => {
        const allocation = await createAllocation();
        const { requestId: _omitted, ...withoutRequestId } = chargeInput({ allocationId: allocation.id });

        await expectGatewayError(ledger.commit(withoutRequestId as ChargeInput), "invalid_request", "requestId");
      });

      const badAllocations: Array<{ what: string; change: Record<string, unknown>; param: string }> = [
        { what: "a negative limit", change: { limit: -1 }, param: "limit" },
        { what: "a fractional limit", change: { limit: 10.5 }, param: "limit" },
        { what: "an empty name", change: { name: "" }, param: "name" },
        { what: "a blank name", change: { name: "   " }, param: "name" },
        { what: "an unknown period", change: { period: "year" }, param: "period" },
        { what: "a group owner without a group id", change: { owner: { type: "group" } }, param: "owner.groupId" },
        { what: "an unknown field", change: { currency: "EUR" }, param: "currency" },
      ];
      for (const { what, change, param } of badAllocations) {
        it(`refuses to create an allocation with ${what} (400 naming ${param})`, async () => {
          await expectGatewayError(
            ledger.createAllocation({
              name: "Research",
              owner: { type: "organization" },
              limit: 10_000,
              ...change,
            } as CreateAllocationInput),
            "invalid_request",
            param,
          );
          expect(await ledger.listAllocations()).toEqual([]);
        });
      }

      it("refuses an update with a fractional limit (400 naming limit) and keeps the old one", async () => {
        const allocation = await createAllocation({ limit: 10_000 });

        await expectGatewayError(ledger.updateAllocation(allocation.id, { limit: 1.5 }), "invalid_request", "limit");
        expect((await balanceOf(allocation.id)).limit).toBe(10_000);
      });

      it("refuses a usage query whose `to` is before `from` (400 naming to)", async () => {
        await expectGatewayError(ledger.usage({ from: START, to: START - 1 }), "invalid_request", "to");
      });

      it("refuses a usage query with an unknown grouping (400 naming groupBy)", async () => {
        await expectGatewayError(
          ledger.usage({ from: START, to: START + DAY, groupBy: "week" as never }),
          "invalid_request",
          "groupBy",
        );
      });
    });
  });
}
