import {
  allocationOwnerSchema,
  chargeInputSchema,
  isChargeInput,
  isReserveInput,
  createAllocationInputSchema,
  createEventBus,
  createId,
  DEFAULT_RESERVATION_LEASE_MS,
  GatewayError,
  parseArgumentObject,
  parseField,
  parseInput,
  periodEnd,
  periodStart,
  requestIdSchema,
  reserveInputSchema,
  systemClock,
  updateAllocationInputSchema,
  usageQuerySchema,
  utcDay,
} from "@sluice/core";
import type {
  Allocation,
  AllocationBalance,
  AllocationOwner,
  BudgetLedger,
  BudgetPeriod,
  Charge,
  Clock,
  MicroDollars,
  Reservation,
  SluiceEventBus,
  UsageGroup,
  UsageGrouping,
  UsageReport,
  UsageTotals,
} from "@sluice/core";
import { ChargeLog } from "./charge-log.js";
import { compareText } from "./compare-text.js";
import { createReservationPool } from "./reservation-pool.js";
import type { ReservationPool } from "./reservation-pool.js";

export interface MemoryBudgetLedgerOptions {
  clock?: Clock;
  events?: SluiceEventBus;
}

export type MemoryBudgetLedger = BudgetLedger & {
  /** Everything stored, as JSON text. For conformance tests. */
  inspect(): string;
};

interface AllocationState {
  /** Never handed out: every read returns a copy. */
  allocation: Allocation;
  lifetimeSpent: MicroDollars;
  /**
   * What the charges in one period add up to, so a reserve does not re-add the period's charges.
   * It describes the period starting at `start`, whatever the allocation's period is now: a
   * rollover or a change of period reads a different start or period and recomputes.
   */
  periodSpent: { period: BudgetPeriod; start: number; spent: MicroDollars } | null;
  pool: ReservationPool;
}

interface KeyState {
  lifetimeSpent: MicroDollars;
  pool: ReservationPool;
}

const DAY_MS = 86_400_000;

const allocationIdSchema = reserveInputSchema.shape.allocationId;
const keyIdSchema = reserveInputSchema.shape.keyId.unwrap();
const renewInputSchema = reserveInputSchema.pick({ requestId: true, leaseMs: true });

/**
 * Allocations, reservations and charges held in process memory.
 *
 * Every check-and-update runs without an `await` between the check and the write, so calls on
 * one event loop cannot interleave inside one: that is the whole of the atomicity guarantee here.
 */
export function createMemoryBudgetLedger(options: MemoryBudgetLedgerOptions = {}): MemoryBudgetLedger {
  const clock = options.clock ?? systemClock;
  const events = options.events ?? createEventBus();
  const allocations = new Map<string, AllocationState>();
  /** Request id -> its reservation, live or expired-but-not-swept. */
  const reservations = new Map<string, Reservation>();
  const charges = new ChargeLog();
  const keys = new Map<string, KeyState>();

  function requireAllocation(id: string): AllocationState {
    const state = allocations.get(id);
    if (!state) throw new GatewayError("not_found", `No allocation has the id '${id}'.`, { param: "allocationId" });
    return state;
  }

  function keyStateOf(keyId: string): KeyState {
    let state = keys.get(keyId);
    if (!state) keys.set(keyId, (state = { lifetimeSpent: 0, pool: createReservationPool() }));
    return state;
  }

  function spentNow(state: AllocationState, now: number): MicroDollars {
    const period = state.allocation.period;
    if (period === null) return state.lifetimeSpent;
    const start = periodStart(period, now);
    const cached = state.periodSpent;
    if (cached !== null && cached.period === period && cached.start === start) return cached.spent;
    const spent = charges.costOf(state.allocation.id, start, periodEnd(period, now));
    state.periodSpent = { period, start, spent };
    return spent;
  }

  function balanceOf(state: AllocationState, now: number): AllocationBalance {
    const { allocation } = state;
    const spent = spentNow(state, now);
    const reserved = state.pool.reserved(now);
    return {
      ...copyAllocation(allocation),
      spent,
      reserved,
      remaining: Math.max(0, allocation.limit - spent - reserved),
      periodStart: allocation.period === null ? null : periodStart(allocation.period, now),
      periodEnd: allocation.period === null ? null : periodEnd(allocation.period, now),
    };
  }

  /** Removes a reservation everywhere it is counted. */
  function forget(reservation: Reservation): void {
    reservations.delete(reservation.requestId);
    allocations.get(reservation.allocationId)?.pool.delete(reservation);
    if (reservation.keyId !== null) keys.get(reservation.keyId)?.pool.delete(reservation);
  }

  return {
    async createAllocation(input) {
      const parsed = parseInput(createAllocationInputSchema, input, "allocation");
      const id = parsed.id ?? createId("alc");
      if (allocations.has(id)) {
        throw new GatewayError("conflict", `An allocation with the id '${id}' already exists.`, { param: "id" });
      }
      const now = clock.now();
      const allocation: Allocation = {
        id,
        name: parsed.name,
        owner: parsed.owner,
        limit: parsed.limit,
        period: parsed.period ?? null,
        createdAt: now,
        updatedAt: now,
      };
      const state: AllocationState = {
        allocation,
        lifetimeSpent: 0,
        periodSpent: null,
        pool: createReservationPool(),
      };
      allocations.set(id, state);
      events.publish("allocation-change", { change: "created", allocation: copyAllocation(allocation) });
      return balanceOf(state, now);
    },

    async updateAllocation(id, patch) {
      const allocationId = parseField(allocationIdSchema, id, "id", "allocation update");
      const parsed = parseInput(updateAllocationInputSchema, patch, "allocation update");
      const state = requireAllocation(allocationId);
      const current = state.allocation;
      const now = clock.now();
      const next: Allocation = {
        ...current,
        name: parsed.name ?? current.name,
        limit: parsed.limit ?? current.limit,
        period: parsed.period === undefined ? current.period : parsed.period,
      };
      if (next.name === current.name && next.limit === current.limit && next.period === current.period) {
        return balanceOf(state, now);
      }
      next.updatedAt = now;
      state.allocation = next;
      events.publish("allocation-change", { change: "updated", allocation: copyAllocation(next) });
      return balanceOf(state, now);
    },

    async getAllocation(id) {
      const allocationId = parseField(allocationIdSchema, id, "id", "allocation lookup");
      const state = allocations.get(allocationId);
      return state ? balanceOf(state, clock.now()) : null;
    },

    async listAllocations(filter) {
      const fields = parseArgumentObject(filter ?? {}, ["owners"], "allocation filter");
      const owners =
        fields.owners === undefined
          ? undefined
          : parseField(allocationOwnerSchema.array(), fields.owners, "owners", "allocation filter");
      const now = clock.now();
      const matches: AllocationBalance[] = [];
      for (const state of allocations.values()) {
        if (owners !== undefined && !owners.some((owner) => sameOwner(owner, state.allocation.owner))) continue;
        matches.push(balanceOf(state, now));
      }
      return matches.sort((left, right) => compareText(left.name, right.name) || compareText(left.id, right.id));
    },

    async reserve(input) {
      const parsed = isReserveInput(input) ? input : parseInput(reserveInputSchema, input, "reservation");
      const state = requireAllocation(parsed.allocationId);
      if (charges.has(parsed.requestId)) {
        throw new GatewayError("conflict", `The request '${parsed.requestId}' was already charged.`, {
          param: "requestId",
        });
      }
      const now = clock.now();
      const previous = reservations.get(parsed.requestId);
      // A retry of a request that still holds its reservation holds nothing more.
      if (previous !== undefined && previous.expiresAt > now) return { ok: true, reservation: { ...previous } };

      const limit = state.allocation.limit;
      const allocationUsed = spentNow(state, now) + state.pool.reserved(now);
      if (!admits(allocationUsed, parsed.amount, limit)) {
        return { ok: false, reason: "allocation_exhausted", remaining: Math.max(0, limit - allocationUsed) };
      }
      if (parsed.keyLimit !== null) {
        const key = parsed.keyId === null ? undefined : keys.get(parsed.keyId);
        const keyUsed = key === undefined ? 0 : key.lifetimeSpent + key.pool.reserved(now);
        if (!admits(keyUsed, parsed.amount, parsed.keyLimit)) {
          return { ok: false, reason: "key_limit_exhausted", remaining: Math.max(0, parsed.keyLimit - keyUsed) };
        }
      }

      if (previous !== undefined) forget(previous);
      const reservation: Reservation = {
        requestId: parsed.requestId,
        allocationId: parsed.allocationId,
        userId: parsed.userId,
        keyId: parsed.keyId,
        amount: parsed.amount,
        createdAt: now,
        expiresAt: now + (parsed.leaseMs ?? DEFAULT_RESERVATION_LEASE_MS),
      };
      reservations.set(reservation.requestId, reservation);
      state.pool.add(reservation);
      if (reservation.keyId !== null) keyStateOf(reservation.keyId).pool.add(reservation);
      return { ok: true, reservation: { ...reservation } };
    },

    async renew(input) {
      const parsed = parseInput(renewInputSchema, input, "renewal");
      const now = clock.now();
      const reservation = reservations.get(parsed.requestId);
      if (reservation === undefined || reservation.expiresAt <= now) return null;
      reservation.expiresAt = now + (parsed.leaseMs ?? DEFAULT_RESERVATION_LEASE_MS);
      allocations.get(reservation.allocationId)?.pool.expiryMoved(reservation.expiresAt);
      if (reservation.keyId !== null) keys.get(reservation.keyId)?.pool.expiryMoved(reservation.expiresAt);
      return { ...reservation };
    },

    async commit(input) {
      const parsed = isChargeInput(input) ? input : parseInput(chargeInputSchema, input, "charge");
      const state = requireAllocation(parsed.allocationId);
      // A request that holds a reservation has no charge yet (reserve refuses a charged request,
      // and a charge ends its reservation), so the charge log, which grows with every request,
      // is searched only for a request without one.
      const reservation = reservations.get(parsed.requestId);
      if (reservation === undefined) {
        const previous = charges.get(parsed.requestId);
        if (previous !== undefined) return { charge: previous, duplicate: true };
      }

      const charge: Charge = {
        requestId: parsed.requestId,
        allocationId: parsed.allocationId,
        userId: parsed.userId,
        keyId: parsed.keyId,
        providerId: parsed.providerId,
        model: parsed.model,
        inputTokens: parsed.inputTokens,
        outputTokens: parsed.outputTokens,
        cost: parsed.cost,
        at: clock.now(),
      };
      charges.append(charge);
      state.lifetimeSpent += charge.cost;
      const cached = state.periodSpent;
      if (cached !== null && periodStart(cached.period, charge.at) === cached.start) cached.spent += charge.cost;
      if (charge.keyId !== null) keyStateOf(charge.keyId).lifetimeSpent += charge.cost;
      // The reservation ends with the charge, whether it was still live or had already lapsed.
      if (reservation !== undefined) forget(reservation);
      events.publish("usage-charge", { ...charge });
      return { charge: { ...charge }, duplicate: false };
    },

    async release(requestId) {
      const id = parseField(requestIdSchema, requestId, "requestId", "release");
      const reservation = reservations.get(id);
      // An expired reservation already holds nothing; it is left for `sweepExpired` to delete.
      if (reservation === undefined || reservation.expiresAt <= clock.now()) return false;
      forget(reservation);
      return true;
    },

    async sweepExpired() {
      const now = clock.now();
      let swept = 0;
      for (const reservation of reservations.values()) {
        if (reservation.expiresAt > now) continue;
        forget(reservation);
        swept += 1;
      }
      return swept;
    },

    async getCharge(requestId) {
      const id = parseField(requestIdSchema, requestId, "requestId", "charge lookup");
      return charges.get(id) ?? null;
    },

    async keyBalance(keyId) {
      const id = parseField(keyIdSchema, keyId, "keyId", "key balance");
      const state = keys.get(id);
      if (state === undefined) return { spent: 0, reserved: 0 };
      return { spent: state.lifetimeSpent, reserved: state.pool.reserved(clock.now()) };
    },

    async usage(query) {
      const parsed = parseInput(usageQuerySchema, query, "usage query");
      const allocationIds = parsed.allocationIds === undefined ? undefined : new Set(parsed.allocationIds);
      const grouping = parsed.groupBy;
      const total = new Tally();
      const groups = new Map<string | null, Tally>();
      // One pass, tallying as it goes: a report over a long range holds no list of its charges.
      for (const charge of charges.unnamedCharges(parsed.from, parsed.to)) {
        if (
          (parsed.userId !== undefined && charge.userId !== parsed.userId) ||
          (parsed.keyId !== undefined && charge.keyId !== parsed.keyId) ||
          (allocationIds !== undefined && !allocationIds.has(charge.allocationId)) ||
          (parsed.providerId !== undefined && charge.providerId !== parsed.providerId) ||
          (parsed.model !== undefined && charge.model !== parsed.model)
        ) {
          continue;
        }
        total.add(charge);
        if (grouping === undefined) continue;
        const key = grouping === "day" ? utcDay(charge.at) : groupValue(charge, grouping);
        let tally = groups.get(key);
        if (tally === undefined) groups.set(key, (tally = new Tally()));
        tally.add(charge);
      }
      const report: UsageReport = { from: parsed.from, to: parsed.to, totals: total.totals(), groups: [] };
      if (grouping === "day") report.groups = dayGroups(groups, parsed.from, parsed.to);
      else if (grouping !== undefined) report.groups = valueGroups(groups);
      return report;
    },

    inspect() {
      return JSON.stringify(
        {
          allocations: [...allocations.values()].map((state) => ({
            allocation: state.allocation,
            lifetimeSpent: state.lifetimeSpent,
            periodSpent: state.periodSpent,
            pooledReservations: state.pool.requestIds(),
          })),
          reservations: [...reservations.values()],
          charges: [...charges.charges()],
          keys: Object.fromEntries(
            [...keys].map(([keyId, state]) => [
              keyId,
              { lifetimeSpent: state.lifetimeSpent, pooledReservations: state.pool.requestIds() },
            ]),
          ),
        },
        null,
        2,
      );
    },
  };
}

/**
 * Whether a limit with `used` already spent or held admits `amount` more. A limit that is used up
 * admits nothing, not even a reservation of 0, so a free-looking request cannot slip past it.
 */
function admits(used: MicroDollars, amount: MicroDollars, limit: MicroDollars): boolean {
  return used < limit && used + amount <= limit;
}

function sameOwner(left: AllocationOwner, right: AllocationOwner): boolean {
  if (left.type === "organization" || right.type === "organization") return left.type === right.type;
  return left.groupId === right.groupId;
}

/** What a set of charges adds up to, added one charge at a time. */
class Tally {
  requests = 0;
  inputTokens = 0;
  outputTokens = 0;
  cost = 0;
  readonly users = new Set<string>();

  add(charge: Omit<Charge, "requestId">): void {
    this.requests += 1;
    this.inputTokens += charge.inputTokens;
    this.outputTokens += charge.outputTokens;
    this.cost += charge.cost;
    this.users.add(charge.userId);
  }

  totals(): UsageTotals {
    return {
      requests: this.requests,
      inputTokens: this.inputTokens,
      outputTokens: this.outputTokens,
      totalTokens: this.inputTokens + this.outputTokens,
      cost: this.cost,
      activeUsers: this.users.size,
    };
  }
}

const emptyTally = new Tally();

/** One row per UTC day that intersects [from, to), days without charges included, ascending. */
function dayGroups(tallies: ReadonlyMap<string | null, Tally>, from: number, to: number): UsageGroup[] {
  const groups: UsageGroup[] = [];
  for (let dayStart = periodStart("day", from); dayStart < to; dayStart += DAY_MS) {
    const day = utcDay(dayStart);
    groups.push({ key: day, ...(tallies.get(day) ?? emptyTally).totals() });
  }
  return groups;
}

/** One row per distinct value, the highest cost first, then by key with null last. */
function valueGroups(tallies: ReadonlyMap<string | null, Tally>): UsageGroup[] {
  const groups: UsageGroup[] = [...tallies].map(([key, tally]) => ({ key, ...tally.totals() }));
  return groups.sort((left, right) => right.cost - left.cost || compareGroupKeys(left.key, right.key));
}

function groupValue(charge: Omit<Charge, "requestId">, grouping: Exclude<UsageGrouping, "day">): string | null {
  switch (grouping) {
    case "model":
      return charge.model;
    case "key":
      return charge.keyId;
    case "user":
      return charge.userId;
    case "allocation":
      return charge.allocationId;
    case "provider":
      return charge.providerId;
  }
}

function compareGroupKeys(left: string | null, right: string | null): number {
  if (left === null) return right === null ? 0 : 1;
  if (right === null) return -1;
  return compareText(left, right);
}

function copyAllocation(allocation: Allocation): Allocation {
  return { ...allocation, owner: { ...allocation.owner } };
}
