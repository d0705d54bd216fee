import {
  allocationOwnerSchema,
  chargeInputSchema,
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
  UsageTotals,
} from "@sluice/core";
import type pg from "pg";
import { readInteger, readNullableInteger } from "./database-values.js";
import { isUniqueViolation, refusingNulText } from "./postgres-errors.js";
import type { Queryable } from "./with-transaction.js";
import { withTransaction } from "./with-transaction.js";

export interface PostgresBudgetLedgerOptions {
  /** The pool to query; the caller owns it. */
  pool: pg.Pool;
  clock?: Clock;
  events?: SluiceEventBus;
}

interface AllocationRow {
  id: string;
  name: string;
  owner_type: "organization" | "group";
  owner_group_id: string | null;
  spend_limit: string;
  period: BudgetPeriod | null;
  created_at: string;
  updated_at: string;
  lifetime_spent: string;
  reserved: string;
  period_start: string | null;
  period_spent: string | null;
}

/** An allocation row with its balance as `balanceQuery` computes it. */
interface BalanceRow extends AllocationRow {
  spent_now: string;
  reserved_now: string;
}

interface ReservationRow {
  request_id: string;
  allocation_id: string;
  user_id: string;
  key_id: string | null;
  amount: string;
  created_at: string;
  expires_at: string;
}

/** What sluice_reserve answers: its outcome, and the reservation when it holds one. */
type ReserveRow = {
  outcome: "ok" | "allocation_exhausted" | "key_limit_exhausted" | "not_found" | "charged" | "retry";
  remaining: string | null;
} & { [Column in keyof ReservationRow]: ReservationRow[Column] | null };

interface ChargeRow {
  request_id: string;
  allocation_id: string;
  user_id: string;
  key_id: string | null;
  provider_id: string;
  model: string;
  input_tokens: string;
  output_tokens: string;
  cost: string;
  at: string;
}

/** What sluice_commit answers: its outcome, and the charge (new or the earlier one) unless not_found. */
type CommitRow = { outcome: "ok" | "duplicate" | "not_found" } & {
  [Column in keyof ChargeRow]: ChargeRow[Column] | null;
};

interface TotalsRow {
  requests: string;
  input_tokens: string;
  output_tokens: string;
  cost: string;
  active_users: string;
}

const DAY_MS = 86_400_000;

/** How many allocations one sweep transaction locks at most, so a sweep never stalls reserves for long. */
const SWEEP_BATCH = 100;

/** How often an operation starts over after a concurrent change moved what it had read. */
const MAX_ATTEMPTS = 10;

const allocationIdSchema = reserveInputSchema.shape.allocationId;
const keyIdSchema = reserveInputSchema.shape.keyId.unwrap();
const renewInputSchema = reserveInputSchema.pick({ requestId: true, leaseMs: true });

/** The SQL column each usage grouping groups by. */
const groupColumns: Record<Exclude<UsageGrouping, "day">, string> = {
  model: "model",
  key: "key_id",
  user: "user_id",
  allocation: "allocation_id",
  provider: "provider_id",
};

/**
 * Allocations, reservations and the ledger of charges in PostgreSQL, shared by every gateway
 * instance.
 *
 * Atomicity comes from row locks taken in one fixed order: allocation rows first (several at
 * once in id order), then the key's balance row. Every change to an allocation's `reserved`
 * counter or to its rows in sluice_reservations happens under that allocation's lock, so a
 * reserve that holds the lock reads an exact balance and no concurrent reserve, on any
 * instance, can slip in between its check and its insert. A key's reservations are summed live
 * under the key row's lock instead of counted, because they span allocations whose locks a
 * reserve does not hold. Expired reservations stop counting at once: reads subtract them, and a
 * reserve deletes those of the allocation it locked before it checks.
 */
export function createPostgresBudgetLedger(options: PostgresBudgetLedgerOptions): BudgetLedger {
  const { pool } = options;
  const clock = options.clock ?? systemClock;
  const events = options.events ?? createEventBus();

  async function balancesWhere(
    queryable: Queryable,
    condition: string,
    values: unknown[],
    now: number,
  ): Promise<AllocationBalance[]> {
    const bounds = periodBounds(now);
    const result = await queryable.query<BalanceRow>(
      `${balanceQuery(values.length + 1)} WHERE ${condition} ORDER BY a.name, a.id`,
      [...values, now, ...bounds],
    );
    return result.rows.map((row) => toBalance(row, now));
  }

  async function balanceOf(queryable: Queryable, allocationId: string, now: number): Promise<AllocationBalance | null> {
    const [balance] = await balancesWhere(queryable, "a.id = $1", [allocationId], now);
    return balance ?? null;
  }

  return refusingNulText({
    async createAllocation(input) {
      const parsed = parseInput(createAllocationInputSchema, input, "allocation");
      const id = parsed.id ?? createId("alc");
      const now = clock.now();
      const period = parsed.period ?? null;
      const owner = parsed.owner;
      try {
        await pool.query(
          `INSERT INTO sluice_allocations (id, name, owner_type, owner_group_id, spend_limit, period, created_at,
             updated_at, lifetime_spent, reserved, period_start, period_spent)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 0, 0, $8, $9)`,
          [
            id,
            parsed.name,
            owner.type,
            owner.type === "group" ? owner.groupId : null,
            parsed.limit,
            period,
            now,
            // A new allocation has no charges: its current period's spend is known to be 0.
            period === null ? null : periodStart(period, now),
            period === null ? null : 0,
          ],
        );
      } catch (error) {
        if (isUniqueViolation(error, "sluice_allocations_pkey")) {
          throw new GatewayError("conflict", `An allocation with the id '${id}' already exists.`, { param: "id" });
        }
        throw error;
      }
      const allocation: Allocation = {
        id,
        name: parsed.name,
        owner: copyOwner(owner),
        limit: parsed.limit,
        period,
        createdAt: now,
        updatedAt: now,
      };
      events.publish("allocation-change", { change: "created", allocation: copyAllocation(allocation) });
      return {
        ...allocation,
        spent: 0,
        reserved: 0,
        remaining: allocation.limit,
        periodStart: period === null ? null : periodStart(period, now),
        periodEnd: period === null ? null : periodEnd(period, now),
      };
    },

    async updateAllocation(id, patch) {
      const allocationId = parseField(allocationIdSchema, id, "id", "allocation update");
      const parsed = parseInput(updateAllocationInputSchema, patch, "allocation update");
      const now = clock.now();
      const outcome = await withTransaction(pool, async (client) => {
        const [row] = await lockAllocations(client, [allocationId]);
        if (row === undefined) throw allocationNotFound(allocationId);
        const name = parsed.name ?? row.name;
        const limit = parsed.limit ?? readInteger(row.spend_limit, "sluice_allocations.spend_limit");
        const period = parsed.period === undefined ? row.period : parsed.period;
        const changed =
          name !== row.name ||
          limit !== readInteger(row.spend_limit, "sluice_allocations.spend_limit") ||
          period !== row.period;
        if (changed) {
          // A new period changes which charges count: recompute its spend from the ledger now.
          const periodChanged = period !== row.period;
          const start = period === null ? null : periodStart(period, now);
          const spent =
            !periodChanged || period === null || start === null
              ? null
              : await chargesBetween(client, allocationId, start, periodEnd(period, now));
          await client.query(
            `UPDATE sluice_allocations SET name = $2, spend_limit = $3, period = $4, updated_at = $5,
               period_start = CASE WHEN $6 THEN $7 ELSE period_start END,
               period_spent = CASE WHEN $6 THEN $8 ELSE period_spent END
             WHERE id = $1`,
            [allocationId, name, limit, period, now, periodChanged, start, spent],
          );
        }
        const balance = await balanceOf(client, allocationId, now);
        return { balance: balance!, changed };
      });
      if (outcome.changed) {
        events.publish("allocation-change", { change: "updated", allocation: allocationOf(outcome.balance) });
      }
      return outcome.balance;
    },

    async getAllocation(id) {
      const allocationId = parseField(allocationIdSchema, id, "id", "allocation lookup");
      return balanceOf(pool, allocationId, clock.now());
    },

    async listAllocations(filter) {
      const fields = parseArgumentObject(filter ?? {}, ["owners"], "allocation filter");
      const now = clock.now();
      if (fields.owners === undefined) return balancesWhere(pool, "true", [], now);
      const owners = parseField(allocationOwnerSchema.array(), fields.owners, "owners", "allocation filter");
      const groupIds = owners.flatMap((owner) => (owner.type === "group" ? [owner.groupId] : []));
      const organization = owners.some((owner) => owner.type === "organization");
      return balancesWhere(
        pool,
        "((a.owner_type = 'organization' AND $1) OR (a.owner_type = 'group' AND a.owner_group_id = ANY ($2::text[])))",
        [organization, groupIds],
        now,
      );
    },

    async reserve(input) {
      const parsed = parseInput(reserveInputSchema, input, "reservation");
      const now = clock.now();
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
        let row: ReserveRow;
        try {
          // One round trip: sluice_reserve locks, releases, checks and inserts in one statement.
          const result = await pool.query<ReserveRow>(
            `SELECT f.outcome, f.remaining, (f.reservation).*
             FROM sluice_reserve($1::text, $2::text, $3::text, $4::text, $5::int8, $6::int8, $7::int8, $8::int8,
               $9::int8[]) AS f`,
            [
              parsed.requestId,
              parsed.allocationId,
              parsed.userId,
              parsed.keyId,
              parsed.amount,
              parsed.keyLimit,
              now,
              now + (parsed.leaseMs ?? DEFAULT_RESERVATION_LEASE_MS),
              periodBounds(now),
            ],
          );
          row = result.rows[0]!;
        } catch (error) {
          // Two reserves of one request id on different allocations raced to insert it: the loser
          // tries again and finds the winner's reservation.
          if (isUniqueViolation(error, "sluice_reservations_pkey")) continue;
          throw error;
        }
        switch (row.outcome) {
          case "ok":
            return { ok: true, reservation: toReservation(row as ReservationRow) };
          case "allocation_exhausted":
          case "key_limit_exhausted":
            return { ok: false, reason: row.outcome, remaining: readInteger(row.remaining, "remaining") };
          case "not_found":
            throw allocationNotFound(parsed.allocationId);
          case "charged":
            throw alreadyCharged(parsed.requestId);
          case "retry":
            // The request's lapsed reservation moved to an allocation the call did not lock.
            continue;
        }
      }
      throw concurrentChange();
    },

    async renew(input) {
      const parsed = parseInput(renewInputSchema, input, "renewal");
      const now = clock.now();
      // Only the expiry moves, not the amount, so no counter changes and no lock is needed.
      const result = await pool.query<ReservationRow>(
        `UPDATE sluice_reservations SET expires_at = $3
         WHERE request_id = $1 AND expires_at > $2
         RETURNING *`,
        [parsed.requestId, now, now + (parsed.leaseMs ?? DEFAULT_RESERVATION_LEASE_MS)],
      );
      const row = result.rows[0];
      return row === undefined ? null : toReservation(row);
    },

    async commit(input) {
      const parsed = parseInput(chargeInputSchema, input, "charge");
      const now = clock.now();
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
        let row: CommitRow;
        try {
          // One round trip: the charge, the counters and the reservation's end, in one statement.
          const result = await pool.query<CommitRow>(
            `SELECT f.outcome, (f.charge).*
             FROM sluice_commit($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::int8, $8::int8,
               $9::int8, $10::int8, $11::int8[]) AS f`,
            [
              parsed.requestId,
              parsed.allocationId,
              parsed.userId,
              parsed.keyId,
              parsed.providerId,
              parsed.model,
              parsed.inputTokens,
              parsed.outputTokens,
              parsed.cost,
              now,
              periodBounds(now),
            ],
          );
          row = result.rows[0]!;
        } catch (error) {
          // A reserve moved the request's reservation to an allocation the call had not locked;
          // the call rolled back: start over, to lock that allocation too.
          if (isRetryCommit(error)) continue;
          throw error;
        }
        if (row.outcome === "not_found") throw allocationNotFound(parsed.allocationId);
        const charge = toCharge(row as ChargeRow);
        const duplicate = row.outcome === "duplicate";
        if (!duplicate) events.publish("usage-charge", { ...charge });
        return { charge: { ...charge }, duplicate };
      }
      throw concurrentChange();
    },

    async release(requestId) {
      const id = parseField(requestIdSchema, requestId, "requestId", "release");
      const now = clock.now();
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
        // One round trip: find the live reservation, lock its allocation, drop it.
        const result = await pool.query<{ outcome: "none" | "released" | "retry" }>(
          "SELECT sluice_release($1::text, $2::int8) AS outcome",
          [id, now],
        );
        const outcome = result.rows[0]!.outcome;
        if (outcome !== "retry") return outcome === "released";
        // Committed, released or re-reserved elsewhere since the first look: look again.
      }
      throw concurrentChange();
    },

    async sweepExpired() {
      const now = clock.now();
      let swept = 0;
      for (;;) {
        const pending = await pool.query<{ allocation_id: string }>(
          `SELECT DISTINCT allocation_id FROM sluice_reservations WHERE expires_at <= $1
           ORDER BY allocation_id LIMIT ${SWEEP_BATCH}`,
          [now],
        );
        const ids = pending.rows.map((row) => row.allocation_id);
        if (ids.length === 0) return swept;
        // Another instance sweeping the same rows waits for these locks, then finds them gone.
        swept += await withTransaction(pool, async (client) => {
          await lockAllocations(client, ids);
          return deleteReservations(client, "allocation_id = ANY ($1::text[]) AND expires_at <= $2", [ids, now]);
        });
        if (ids.length < SWEEP_BATCH) return swept;
      }
    },

    async getCharge(requestId) {
      const id = parseField(requestIdSchema, requestId, "requestId", "charge lookup");
      const result = await pool.query<ChargeRow>("SELECT * FROM sluice_charges WHERE request_id = $1", [id]);
      const row = result.rows[0];
      return row === undefined ? null : toCharge(row);
    },

    async keyBalance(keyId) {
      const id = parseField(keyIdSchema, keyId, "keyId", "key balance");
      const result = await pool.query<{ spent: string | null; reserved: string }>(
        `SELECT (SELECT lifetime_spent FROM sluice_key_balances WHERE key_id = $1) AS spent,
                (SELECT coalesce(sum(amount), 0) FROM sluice_reservations
                 WHERE key_id = $1 AND expires_at > $2) AS reserved`,
        [id, clock.now()],
      );
      const row = result.rows[0]!;
      return {
        spent: readNullableInteger(row.spent, "sluice_key_balances.lifetime_spent") ?? 0,
        reserved: readInteger(row.reserved, "reserved"),
      };
    },

    async usage(query) {
      const parsed = parseInput(usageQuerySchema, query, "usage query");
      const values: unknown[] = [parsed.from, parsed.to];
      const conditions = ["at >= $1", "at < $2"];
      const filter = (column: string, value: unknown, cast = ""): void => {
        values.push(value);
        conditions.push(`${column} = ${cast === "" ? `$${values.length}` : `ANY ($${values.length}${cast})`}`);
      };
      if (parsed.userId !== undefined) filter("user_id", parsed.userId);
      if (parsed.keyId !== undefined) filter("key_id", parsed.keyId);
      if (parsed.allocationIds !== undefined) filter("allocation_id", parsed.allocationIds, "::text[]");
      if (parsed.providerId !== undefined) filter("provider_id", parsed.providerId);
      if (parsed.model !== undefined) filter("model", parsed.model);
      const where = conditions.join(" AND ");

      // Every aggregate is taken per user first, then summed over the users: activeUsers becomes a
      // count of rows instead of count(DISTINCT user_id), which PostgreSQL can only do by sorting
      // every matching charge.
      if (parsed.groupBy === undefined) {
        const totals = await pool.query<TotalsRow>(
          `SELECT ${sumsOver("u")}, count(*) AS active_users
           FROM (SELECT user_id, ${perUser()} FROM sluice_charges WHERE ${where} GROUP BY user_id) AS u`,
          values,
        );
        return { from: parsed.from, to: parsed.to, totals: toTotals(totals.rows[0]!), groups: [] };
      }

      // Grouped: one scan of the charges, aggregated per (group, user); the totals and the groups
      // both come from those few rows, in one statement. The totals come first (part 0).
      const byDay = parsed.groupBy === "day";
      // Epoch milliseconds count no leap seconds, so UTC days are the multiples of DAY_MS.
      const groupKey = parsed.groupBy === "day" ? `at - at % ${DAY_MS}` : groupColumns[parsed.groupBy];
      const groupsQuery = byDay
        ? `SELECT d.day_start AS key, coalesce(p.requests, 0) AS requests, coalesce(p.input_tokens, 0) AS input_tokens,
             coalesce(p.output_tokens, 0) AS output_tokens, coalesce(p.cost, 0) AS cost,
             coalesce(p.active_users, 0) AS active_users
           FROM generate_series($${values.length + 1}::int8, $${values.length + 2}::int8, ${DAY_MS}::int8) AS d (day_start)
           LEFT JOIN (SELECT key, ${sumsOver("per_user")}, count(*) AS active_users FROM per_user GROUP BY key) AS p
             ON p.key = d.day_start`
        : `SELECT key, ${sumsOver("per_user")}, count(*) AS active_users FROM per_user GROUP BY key`;
      const result = await pool.query<TotalsRow & { part: number; key: string | null }>(
        `WITH per_user AS MATERIALIZED (
           SELECT ${groupKey} AS key, user_id, ${perUser()}
           FROM sluice_charges WHERE ${where} GROUP BY 1, user_id
         )
         SELECT 0 AS part, NULL AS key, ${sumsOver("per_user")},
           (SELECT count(DISTINCT user_id) FROM per_user) AS active_users
         FROM per_user
         UNION ALL
         SELECT 1 AS part, g.* FROM (${groupsQuery}) AS g
         ORDER BY part, ${byDay ? "key" : "cost DESC, key ASC NULLS LAST"}`,
        byDay ? [...values, periodStart("day", parsed.from), parsed.to - 1] : values,
      );
      const [totals, ...grouped] = result.rows;
      const groups: UsageGroup[] = grouped.map((row) => ({
        key: byDay ? utcDay(readInteger(row.key, "day_start")) : row.key,
        ...toTotals(row),
      }));
      return { from: parsed.from, to: parsed.to, totals: toTotals(totals!), groups };
    },
  });
}

/**
 * The balance of allocations `a` at a moment: spent from the cached period spend when it is for
 * the current period, else summed from the ledger; reserved from the counter less the expired
 * reservations not yet deleted. Parameters from `$first`: now, then the day, week and month
 * bounds (start, end) containing it.
 */
function balanceQuery(first: number): string {
  const now = `$${first}`;
  const bound = (offset: number): string => `$${first + offset}::int8`;
  return `
    SELECT a.*,
      CASE
        WHEN a.period IS NULL THEN a.lifetime_spent
        WHEN a.period_start = bounds.start THEN a.period_spent
        ELSE (SELECT coalesce(sum(c.cost), 0) FROM sluice_charges c
              WHERE c.allocation_id = a.id AND c.at >= bounds.start AND c.at < bounds.finish)
      END AS spent_now,
      a.reserved - (SELECT coalesce(sum(r.amount), 0) FROM sluice_reservations r
                    WHERE r.allocation_id = a.id AND r.expires_at <= ${now}::int8) AS reserved_now
    FROM sluice_allocations a
    CROSS JOIN LATERAL (
      SELECT CASE a.period WHEN 'day' THEN ${bound(1)} WHEN 'week' THEN ${bound(3)} ELSE ${bound(5)} END AS start,
             CASE a.period WHEN 'day' THEN ${bound(2)} WHEN 'week' THEN ${bound(4)} ELSE ${bound(6)} END AS finish
    ) AS bounds`;
}

function periodBounds(now: number): number[] {
  return (["day", "week", "month"] as const).flatMap((period) => [periodStart(period, now), periodEnd(period, now)]);
}

/** The sum of the allocation's charges with `at` in [from, to). */
async function chargesBetween(queryable: Queryable, allocationId: string, from: number, to: number): Promise<MicroDollars> {
  const result = await queryable.query<{ spent: string }>(
    "SELECT coalesce(sum(cost), 0) AS spent FROM sluice_charges WHERE allocation_id = $1 AND at >= $2 AND at < $3",
    [allocationId, from, to],
  );
  return readInteger(result.rows[0]!.spent, "spent");
}

/** Locks the allocations' rows in id order (the fixed order that keeps transactions from deadlocking). */
async function lockAllocations(client: pg.PoolClient, ids: readonly string[]): Promise<AllocationRow[]> {
  const result = await client.query<AllocationRow>(
    "SELECT * FROM sluice_allocations WHERE id = ANY ($1::text[]) ORDER BY id FOR UPDATE",
    [ids],
  );
  return result.rows;
}

/**
 * Deletes the reservations matching `condition` and takes their amounts off their allocations'
 * counters, in one statement. The caller holds the locks of every allocation it can touch.
 */
async function deleteReservations(client: pg.PoolClient, condition: string, values: unknown[]): Promise<number> {
  const result = await client.query<{ deleted: string }>(
    `WITH deleted AS (
       DELETE FROM sluice_reservations WHERE ${condition} RETURNING allocation_id, amount
     ), totals AS (
       SELECT allocation_id, sum(amount) AS amount, count(*) AS deleted FROM deleted GROUP BY allocation_id
     ), updated AS (
       UPDATE sluice_allocations a SET reserved = a.reserved - totals.amount
       FROM totals WHERE a.id = totals.allocation_id
       RETURNING totals.deleted
     )
     SELECT coalesce(sum(deleted), 0) AS deleted FROM updated`,
    values,
  );
  return readInteger(result.rows[0]!.deleted, "deleted");
}

/** One user's share of a usage report's aggregates, for a `GROUP BY ..., user_id`. */
function perUser(): string {
  return "count(*) AS requests, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cost) AS cost";
}

/** The per-user shares of `relation`, summed (0 when there are none). */
function sumsOver(relation: string): string {
  return `coalesce(sum(${relation}.requests), 0) AS requests,
    coalesce(sum(${relation}.input_tokens), 0) AS input_tokens,
    coalesce(sum(${relation}.output_tokens), 0) AS output_tokens,
    coalesce(sum(${relation}.cost), 0) AS cost`;
}

function allocationNotFound(id: string): GatewayError {
  return new GatewayError("not_found", `No allocation has the id '${id}'.`, { param: "allocationId" });
}

function alreadyCharged(requestId: string): GatewayError {
  return new GatewayError("conflict", `The request '${requestId}' was already charged.`, { param: "requestId" });
}

/** The error sluice_commit raises to roll itself back when the request's reservation moved. */
function isRetryCommit(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "SLRTY";
}

function concurrentChange(): GatewayError {
  return new GatewayError("conflict", "The reservation kept changing under concurrent requests; try again.");
}

function toTotals(row: TotalsRow): UsageTotals {
  const inputTokens = readInteger(row.input_tokens, "input_tokens");
  const outputTokens = readInteger(row.output_tokens, "output_tokens");
  return {
    requests: readInteger(row.requests, "requests"),
    inputTokens,
    outputTokens,
    totalTokens: readInteger(inputTokens + outputTokens, "total_tokens"),
    cost: readInteger(row.cost, "cost"),
    activeUsers: readInteger(row.active_users, "active_users"),
  };
}

function toBalance(row: BalanceRow, now: number): AllocationBalance {
  const allocation = toAllocation(row);
  const spent = readInteger(row.spent_now, "spent");
  const reserved = readInteger(row.reserved_now, "reserved");
  return {
    ...allocation,
    spent,
    reserved,
    remaining: Math.max(0, allocation.limit - spent - reserved),
    periodStart: allocation.period === null ? null : periodStart(allocation.period, now),
    periodEnd: allocation.period === null ? null : periodEnd(allocation.period, now),
  };
}

function toAllocation(row: AllocationRow): Allocation {
  return {
    id: row.id,
    name: row.name,
    owner: row.owner_type === "organization" ? { type: "organization" } : { type: "group", groupId: row.owner_group_id! },
    limit: readInteger(row.spend_limit, "sluice_allocations.spend_limit"),
    period: row.period,
    createdAt: readInteger(row.created_at, "sluice_allocations.created_at"),
    updatedAt: readInteger(row.updated_at, "sluice_allocations.updated_at"),
  };
}

function allocationOf(balance: AllocationBalance): Allocation {
  return {
    id: balance.id,
    name: balance.name,
    owner: copyOwner(balance.owner),
    limit: balance.limit,
    period: balance.period,
    createdAt: balance.createdAt,
    updatedAt: balance.updatedAt,
  };
}

function toReservation(row: ReservationRow): Reservation {
  return {
    requestId: row.request_id,
    allocationId: row.allocation_id,
    userId: row.user_id,
    keyId: row.key_id,
    amount: readInteger(row.amount, "sluice_reservations.amount"),
    createdAt: readInteger(row.created_at, "sluice_reservations.created_at"),
    expiresAt: readInteger(row.expires_at, "sluice_reservations.expires_at"),
  };
}

function toCharge(row: ChargeRow): Charge {
  return {
    requestId: row.request_id,
    allocationId: row.allocation_id,
    userId: row.user_id,
    keyId: row.key_id,
    providerId: row.provider_id,
    model: row.model,
    inputTokens: readInteger(row.input_tokens, "sluice_charges.input_tokens"),
    outputTokens: readInteger(row.output_tokens, "sluice_charges.output_tokens"),
    cost: readInteger(row.cost, "sluice_charges.cost"),
    at: readInteger(row.at, "sluice_charges.at"),
  };
}

function copyOwner(owner: AllocationOwner): AllocationOwner {
  return owner.type === "organization" ? { type: "organization" } : { type: "group", groupId: owner.groupId };
}

function copyAllocation(allocation: Allocation): Allocation {
  return { ...allocation, owner: copyOwner(allocation.owner) };
}
