import { z } from "zod";
import { microDollarsSchema } from "../money/micro-dollars.js";
import type { MicroDollars } from "../money/micro-dollars.js";
import { groupIdSchema } from "../permissions/permission-store.js";
import { isPrincipalId, principalIdSchema } from "../provider/provider-record.js";
import { budgetPeriods } from "./budget-period.js";
import type { BudgetPeriod } from "./budget-period.js";

/** Who an allocation belongs to: members of a group draw from it, or everyone in the organization. */
export type AllocationOwner = { type: "group"; groupId: string } | { type: "organization" };

export const allocationOwnerSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("group"), groupId: groupIdSchema }),
  z.strictObject({ type: z.literal("organization") }),
]);

export interface Allocation {
  id: string;
  name: string;
  owner: AllocationOwner;
  /** The most that may be spent (per period, when there is one). */
  limit: MicroDollars;
  /** Null: the limit holds for the allocation's whole life. */
  period: BudgetPeriod | null;
  createdAt: number;
  updatedAt: number;
}

/** An allocation with its balance, computed at the moment of the read. */
export interface AllocationBalance extends Allocation {
  /** Charged in the current period (or ever, without a period). May exceed `limit`: see `commit`. */
  spent: MicroDollars;
  /** Held by live reservations. */
  reserved: MicroDollars;
  /** `max(0, limit - spent - reserved)`. */
  remaining: MicroDollars;
  periodStart: number | null;
  periodEnd: number | null;
}

export const createAllocationInputSchema = z.strictObject({
  id: z.string().min(1).max(128).optional(),
  name: z.string().trim().min(1).max(200),
  owner: allocationOwnerSchema,
  limit: microDollarsSchema,
  period: z.enum(budgetPeriods).nullable().optional(),
});
export type CreateAllocationInput = z.input<typeof createAllocationInputSchema>;

export const updateAllocationInputSchema = z.strictObject({
  name: z.string().trim().min(1).max(200).optional(),
  limit: microDollarsSchema.optional(),
  period: z.enum(budgetPeriods).nullable().optional(),
});
export type UpdateAllocationInput = z.input<typeof updateAllocationInputSchema>;

export const requestIdSchema = z
  .string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(200, { error: "must be at most 200 characters" });

/** How long a reservation lives unless renewed: long enough for a long stream's first minutes. */
export const DEFAULT_RESERVATION_LEASE_MS = 10 * 60_000;

export const reserveInputSchema = z.strictObject({
  requestId: requestIdSchema,
  allocationId: z.string().min(1),
  userId: principalIdSchema,
  /** The key the request came with, or null for a host-login request. */
  keyId: z.string().min(1).nullable(),
  /** That key's own cap, from its record; null for none. */
  keyLimit: microDollarsSchema.nullable(),
  /** The request's worst-case cost. */
  amount: microDollarsSchema,
  leaseMs: z.number().int().positive().max(24 * 3_600_000).optional(),
});
export type ReserveInput = z.input<typeof reserveInputSchema>;

export interface Reservation {
  requestId: string;
  allocationId: string;
  userId: string;
  keyId: string | null;
  amount: MicroDollars;
  createdAt: number;
  expiresAt: number;
}

export type ReserveResult =
  | { ok: true; reservation: Reservation }
  | {
      ok: false;
      reason: "allocation_exhausted" | "key_limit_exhausted";
      /** What is left on the limit that refused, for the error message. */
      remaining: MicroDollars;
    };

const tokenCountSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const chargeInputSchema = z.strictObject({
  requestId: requestIdSchema,
  allocationId: z.string().min(1),
  userId: principalIdSchema,
  keyId: z.string().min(1).nullable(),
  providerId: z.string().min(1),
  /** The model id as the client named it (`owner:provider-name/model-name`). */
  model: z.string().min(1).max(512),
  inputTokens: tokenCountSchema,
  outputTokens: tokenCountSchema,
  cost: microDollarsSchema,
});
export type ChargeInput = z.input<typeof chargeInputSchema>;

/*
 * Hand-written twins of the two schemas above, for a store's hot path: every gateway request
 * reserves and commits once, and zod's parse of these small objects cost more than the ledger
 * arithmetic (`npm run bench` profiles). True only for input the schema accepts as is; on false,
 * a store runs the schema, which words the error. A test holds each twin to its schema.
 */

const reserveKeys = new Set(["requestId", "allocationId", "userId", "keyId", "keyLimit", "amount", "leaseMs"]);
const chargeKeys = new Set(["requestId", "allocationId", "userId", "keyId", "providerId", "model", "inputTokens", "outputTokens", "cost"]);

/** Whether `input` certainly passes `reserveInputSchema`, and may be used as its parse. */
export function isReserveInput(input: unknown): input is z.output<typeof reserveInputSchema> {
  if (!hasOnlyKeys(input, reserveKeys)) return false;
  const value = input as Record<string, unknown>;
  return (
    isRequestParties(value) &&
    (value.keyLimit === null || isWhole(value.keyLimit)) &&
    isWhole(value.amount) &&
    (value.leaseMs === undefined || (isWhole(value.leaseMs) && (value.leaseMs as number) > 0 && (value.leaseMs as number) <= 24 * 3_600_000))
  );
}

/** Whether `input` certainly passes `chargeInputSchema`, and may be used as its parse. */
export function isChargeInput(input: unknown): input is z.output<typeof chargeInputSchema> {
  if (!hasOnlyKeys(input, chargeKeys)) return false;
  const value = input as Record<string, unknown>;
  return (
    isRequestParties(value) &&
    isText(value.providerId, Infinity) &&
    isText(value.model, 512) &&
    isWhole(value.inputTokens) &&
    isWhole(value.outputTokens) &&
    isWhole(value.cost)
  );
}

/** The fields both inputs open with: the request, and who pays for it. */
function isRequestParties(value: Record<string, unknown>): boolean {
  return (
    isText(value.requestId, 200) &&
    isText(value.allocationId, Infinity) &&
    isPrincipalId(value.userId) &&
    (value.keyId === null || isText(value.keyId, Infinity))
  );
}

function hasOnlyKeys(input: unknown, allowed: ReadonlySet<string>): boolean {
  if (typeof input !== "object" || input === null || Array.isArray(input) || Object.getPrototypeOf(input) !== Object.prototype) return false;
  for (const key in input) if (!allowed.has(key)) return false;
  return true;
}

function isText(value: unknown, maxLength: number): boolean {
  return typeof value === "string" && value.length > 0 && value.length <= maxLength;
}

function isWhole(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** One line of the append-only ledger. */
export interface Charge {
  requestId: string;
  allocationId: string;
  userId: string;
  keyId: string | null;
  providerId: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  cost: MicroDollars;
  at: number;
}

export interface CommitResult {
  charge: Charge;
  /** True when this request id was already charged: the stored charge is returned, nothing changes. */
  duplicate: boolean;
}

export const usageGroupings = ["day", "model", "key", "user", "allocation", "provider"] as const;
export type UsageGrouping = (typeof usageGroupings)[number];

export const usageQuerySchema = z
  .strictObject({
    /** Epoch ms, inclusive. */
    from: z.number().int().nonnegative(),
    /** Epoch ms, exclusive. */
    to: z.number().int().nonnegative(),
    userId: z.string().min(1).optional(),
    keyId: z.string().min(1).optional(),
    allocationIds: z.array(z.string().min(1)).optional(),
    providerId: z.string().min(1).optional(),
    model: z.string().min(1).optional(),
    groupBy: z.enum(usageGroupings).optional(),
  })
  .refine((query) => query.to >= query.from, { error: "'to' must not be before 'from'", path: ["to"] });
export type UsageQuery = z.input<typeof usageQuerySchema>;

export interface UsageTotals {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  cost: MicroDollars;
  /** Distinct users among the charges. */
  activeUsers: number;
}

export interface UsageGroup extends UsageTotals {
  /** The day (`YYYY-MM-DD`, UTC), model id, key id, user id, allocation id or provider id; null
   *  groups the charges that have none (requests without a key). */
  key: string | null;
}

export interface UsageReport {
  from: number;
  to: number;
  totals: UsageTotals;
  /** Per `groupBy`: days ascending, every day of the range present; otherwise by cost, highest first. */
  groups: UsageGroup[];
}

/**
 * Allocations, reservations and the ledger of charges.
 *
 * The guarantee: a reservation succeeds only when `spent + reserved + amount <= limit` for the
 * allocation and, when the key has a cap, for the key too; and an allocation with nothing left
 * (spent + reserved >= limit) admits no reservation at all, not even of 0. This holds under any
 * interleaving of concurrent callers (across processes, for a shared store), so concurrent
 * requests never overspend. A request that touches the key and the allocation takes both
 * atomically, or neither.
 *
 * `commit` records the truth: the actual cost may be above or below the reservation, and it is
 * charged in full (spend may then pass the limit by the estimate's error; later reservations are
 * refused). The ledger is append-only and idempotent per request id: a second commit of the same
 * request returns the first charge and changes nothing.
 *
 * Reservations that are neither committed nor released expire after their lease and stop counting;
 * `sweepExpired` deletes them and may run on every instance at once.
 */
export interface BudgetLedger {
  /** 409 on an id clash. */
  createAllocation(input: CreateAllocationInput): Promise<AllocationBalance>;
  /** 404 for an unknown id. A lower limit takes effect on the next `reserve`. */
  updateAllocation(id: string, patch: UpdateAllocationInput): Promise<AllocationBalance>;
  getAllocation(id: string): Promise<AllocationBalance | null>;
  /** Every allocation, or those owned by one of `owners`; ordered by name. */
  listAllocations(filter?: { owners?: readonly AllocationOwner[] }): Promise<AllocationBalance[]>;

  /**
   * Holds `amount` against the allocation (and the key's cap), or refuses with the reason.
   * Throws 404 for an unknown allocation. Repeating the reserve of a live request id returns the
   * existing reservation; reserving a request id that was already committed throws 409.
   */
  reserve(input: ReserveInput): Promise<ReserveResult>;

  /** Extends a live reservation's lease from now; null when it is gone (settled or expired). */
  renew(input: { requestId: string; leaseMs?: number }): Promise<Reservation | null>;

  /**
   * Charges the request's actual cost and ends its reservation, if one is still held. A charge is
   * recorded even when the reservation expired or was released: a charge is never lost.
   * Throws 404 for an unknown allocation.
   */
  commit(input: ChargeInput): Promise<CommitResult>;

  /** Ends a reservation without a charge. Idempotent: resolves whether one was held. */
  release(requestId: string): Promise<boolean>;

  /** Deletes expired reservations; resolves how many. Safe to run concurrently anywhere. */
  sweepExpired(): Promise<number>;

  getCharge(requestId: string): Promise<Charge | null>;

  /** A key's lifetime spend and what its live reservations hold. Zeros for an unused key. */
  keyBalance(keyId: string): Promise<{ spent: MicroDollars; reserved: MicroDollars }>;

  /** Totals and groups of the charges in [from, to) that match every filter. */
  usage(query: UsageQuery): Promise<UsageReport>;
}
