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
  ReserveResult,
  SluiceEventBus,
  UsageGroup,
  UsageGrouping,
  UsageTotals,
} from "@sluice/core";
import type pg from "pg";
import { readInteger, readNullableInteger } from "./database-values.js";
import { isUniqueViolation } from "./postgres-errors.js";
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

/** What a reserve learns in one statement: what it released, and the request's charge and reservation. */
type RequestLookupRow = { released: string; charged: boolean } & {
  [Column in keyof ReservationRow]: ReservationRow[Column] | null;
};

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

  /**
   * What the allocation has spent in its current period, from the cached (period_start,
   * period_spent) when it describes the period containing `now`; otherwise recomputed from the
   * charges and cached. Only ever called with the allocation's row locked.
   */
  async function spentUnderLock(client: pg.PoolClient, row: AllocationRow, now: number): Promise<MicroDollars> {
    if (row.period === null) return readInteger(row.lifetime_spent, "sluice_allocations.lifetime_spent");
    const start = periodStart(row.period, now);
    if (readNullableInteger(row.period_start, "sluice_allocations.period_start") === start) {
      return readInteger(row.period_spent, "sluice_allocations.period_spent");
    }
    const spent = await chargesBetween(client, row.id, start, periodEnd(row.period, now));
    await client.query("UPDATE sluice_allocations SET period_start = $2, period_spent = $3 WHERE id = $1", [
      row.id,
      start,
      spent,
    ]);
    return spent;
  }

  /**
   * One attempt at a reservation, in one transaction. Answers `retry` when the request id holds an
   * expired reservation on another allocation, whose lock this transaction may not take (it would
   * break the lock order): the caller releases that one on its own and tries again.
   */
  async function reserveOnce(
    client: pg.PoolClient,
    input: ReturnType<typeof reserveInputSchema.parse>,
    now: number,
  ): Promise<ReserveResult | "retry"> {
    // Every statement below holds the allocation's lock, so each round trip counts: reads and
    // writes are merged where one statement can do both.
    const allocation = await lockAllocations(client, [input.allocationId]).then((rows) => rows[0]);
    if (allocation === undefined) throw allocationNotFound(input.allocationId);

    // Release the locked allocation's expired reservations (this request's own lapsed one among
    // them) before checking, so that what stays in `reserved` is exactly what is live. The same
    // statement looks the request up; it reads the snapshot from before its own delete.
    const lookup = await client.query<RequestLookupRow>(
      `WITH released AS (
         DELETE FROM sluice_reservations WHERE allocation_id = $1 AND expires_at <= $2 RETURNING amount
       )
       SELECT (SELECT coalesce(sum(amount), 0) FROM released) AS released,
              EXISTS (SELECT 1 FROM sluice_charges WHERE request_id = $3) AS charged,
              previous.*
       FROM (SELECT 1) AS one
       LEFT JOIN sluice_reservations previous ON previous.request_id = $3`,
      [allocation.id, now, input.requestId],
    );
    const { released, charged, ...previous } = lookup.rows[0]!;
    if (charged) throw alreadyCharged(input.requestId);
    const releasedAmount = readInteger(released, "released");
    const heldBefore = readInteger(allocation.reserved, "sluice_allocations.reserved") - releasedAmount;
    // Whatever this attempt answers, the release is committed with it, so the counter follows now.
    if (releasedAmount > 0) await setReserved(client, allocation.id, heldBefore);
    if (previous.request_id !== null) {
      // A retry of a request that still holds its reservation holds nothing more.
      if (readInteger(previous.expires_at, "expires_at") > now) {
        return { ok: true, reservation: toReservation(previous as ReservationRow) };
      }
      if (previous.allocation_id !== allocation.id) return "retry";
    }

    const limit = readInteger(allocation.spend_limit, "sluice_allocations.spend_limit");
    const used = (await spentUnderLock(client, allocation, now)) + heldBefore;
    let refusal: ReserveResult | null = null;
    if (!admits(used, input.amount, limit)) {
      refusal = { ok: false, reason: "allocation_exhausted", remaining: Math.max(0, limit - used) };
    } else if (input.keyLimit !== null) {
      const keyUsed = input.keyId === null ? 0 : await lockKeyAndReadUse(client, input.keyId, now);
      if (!admits(keyUsed, input.amount, input.keyLimit)) {
        refusal = { ok: false, reason: "key_limit_exhausted", remaining: Math.max(0, input.keyLimit - keyUsed) };
      }
    }
    if (refusal !== null) return refusal;

    const inserted = await client.query<ReservationRow>(
      `WITH inserted AS (
         INSERT INTO sluice_reservations (request_id, allocation_id, user_id, key_id, amount, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING *
       ), counted AS (
         UPDATE sluice_allocations SET reserved = $8 WHERE id = $2
       )
       SELECT * FROM inserted`,
      [
        input.requestId,
        allocation.id,
        input.userId,
        input.keyId,
        input.amount,
        now,
        now + (input.leaseMs ?? DEFAULT_RESERVATION_LEASE_MS),
        heldBefore + input.amount,
      ],
    );
    return { ok: true, reservation: toReservation(inserted.rows[0]!) };
  }

  /**
   * Deletes the request's reservation if it has expired, under its allocation's lock, keeping the
   * counter in step. Used when a reserve meets a lapsed reservation it cannot release itself.
   */
  async function releaseIfExpired(requestId: string, now: number): Promise<void> {
    const found = await pool.query<ReservationRow>("SELECT * FROM sluice_reservations WHERE request_id = $1", [
      requestId,
    ]);
    const row = found.rows[0];
    if (row === undefined || readInteger(row.expires_at, "expires_at") > now) return;
    await withTransaction(pool, async (client) => {
      await lockAllocations(client, [row.allocation_id]);
      await deleteReservations(client, "request_id = $1 AND allocation_id = $2 AND expires_at <= $3", [
        requestId,
        row.allocation_id,
        now,
      ]);
    });
  }

  return {
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
      for (let attempt = 1; ; attempt += 1) {
        try {
          const outcome = await withTransaction(pool, (client) => reserveOnce(client, parsed, now));
          if (outcome !== "retry") return outcome;
          await releaseIfExpired(parsed.requestId, now);
        } catch (error) {
          // Two reserves of one request id on different allocations raced to insert it: the loser
          // tries again and finds the winner's reservation.
          if (!isUniqueViolation(error, "sluice_reservations_pkey") || attempt >= MAX_ATTEMPTS) throw error;
        }
        if (attempt >= MAX_ATTEMPTS) throw concurrentChange();
      }
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
        // The reservation normally lies on the charged allocation; when it lies on another, that
        // one is locked too, both in id order.
        const held = await pool.query<{ allocation_id: string }>(
          "SELECT allocation_id FROM sluice_reservations WHERE request_id = $1",
          [parsed.requestId],
        );
        const heldOn = held.rows[0]?.allocation_id;
        const outcome = await withTransaction(pool, async (client) => {
          const ids = new Set([parsed.allocationId, heldOn ?? parsed.allocationId]);
          const locked = await lockAllocations(client, [...ids]);
          const allocation = locked.find((row) => row.id === parsed.allocationId);
          if (allocation === undefined) throw allocationNotFound(parsed.allocationId);

          const inserted = await client.query<ChargeRow>(
            `INSERT INTO sluice_charges (request_id, allocation_id, user_id, key_id, provider_id, model, input_tokens,
               output_tokens, cost, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (request_id) DO NOTHING
             RETURNING *`,
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
            ],
          );
          if (inserted.rows[0] === undefined) {
            // Charged before: the ledger keeps the first charge and nothing changes.
            const existing = await client.query<ChargeRow>("SELECT * FROM sluice_charges WHERE request_id = $1", [
              parsed.requestId,
            ]);
            return { charge: toCharge(existing.rows[0]!), duplicate: true };
          }
          const charge = toCharge(inserted.rows[0]);

          // Keep the period's cached spend exact: add the charge to it when it describes the
          // current period, else recompute it for the current period (counting this charge).
          const start = allocation.period === null ? null : periodStart(allocation.period, now);
          await client.query(
            `UPDATE sluice_allocations SET lifetime_spent = lifetime_spent + $2,
               period_spent = CASE WHEN period_start = $3 THEN period_spent + $2 ELSE period_spent END
             WHERE id = $1`,
            [allocation.id, charge.cost, start],
          );
          if (start !== null && readNullableInteger(allocation.period_start, "sluice_allocations.period_start") !== start) {
            await spentUnderLock(client, allocation, now);
          }
          if (charge.keyId !== null) {
            // The key's row after the allocations', as everywhere.
            await client.query(
              `INSERT INTO sluice_key_balances (key_id, lifetime_spent) VALUES ($1, $2)
               ON CONFLICT (key_id) DO UPDATE
                 SET lifetime_spent = sluice_key_balances.lifetime_spent + EXCLUDED.lifetime_spent`,
              [charge.keyId, charge.cost],
            );
          }
          // The reservation ends with the charge, whether it was still live or had already lapsed.
          const dropped = await deleteReservations(client, "request_id = $1 AND allocation_id = ANY ($2::text[])", [
            parsed.requestId,
            locked.map((row) => row.id),
          ]);
          if (dropped === 0) {
            // A reservation on an allocation this commit did not lock appeared after the first
            // look (a reserve raced it): start over, to lock that allocation too.
            const late = await client.query("SELECT 1 FROM sluice_reservations WHERE request_id = $1", [parsed.requestId]);
            if (late.rowCount !== 0) throw new RetryCommit();
          }
          return { charge, duplicate: false };
        }).catch((error: unknown) => {
          if (error instanceof RetryCommit) return null;
          throw error;
        });
        if (outcome === null) continue;
        if (!outcome.duplicate) events.publish("usage-charge", { ...outcome.charge });
        return { charge: { ...outcome.charge }, duplicate: outcome.duplicate };
      }
      throw concurrentChange();
    },

    async release(requestId) {
      const id = parseField(requestIdSchema, requestId, "requestId", "release");
      const now = clock.now();
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
        const found = await pool.query<ReservationRow>("SELECT * FROM sluice_reservations WHERE request_id = $1", [id]);
        const row = found.rows[0];
        // An expired reservation already holds nothing; it is left for a reserve or a sweep to delete.
        if (row === undefined || readInteger(row.expires_at, "expires_at") <= now) return false;
        const released = await withTransaction(pool, async (client) => {
          await lockAllocations(client, [row.allocation_id]);
          return deleteReservations(client, "request_id = $1 AND allocation_id = $2 AND expires_at > $3", [
            id,
            row.allocation_id,
            now,
          ]);
        });
        if (released > 0) return true;
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

      const totals = await pool.query<TotalsRow>(`SELECT ${aggregates("")} FROM sluice_charges WHERE ${where}`, values);
      let groups: UsageGroup[] = [];
      if (parsed.groupBy === "day") {
        // Epoch milliseconds count no leap seconds, so UTC days are the multiples of DAY_MS.
        const grouped = await pool.query<TotalsRow & { day_start: string }>(
          `WITH matching AS (
             SELECT at - at % ${DAY_MS} AS day_start, user_id, input_tokens, output_tokens, cost, request_id
             FROM sluice_charges WHERE ${where}
           )
           SELECT d.day_start, ${aggregates("m.")}
           FROM generate_series($${values.length + 1}::int8, $${values.length + 2}::int8, ${DAY_MS}::int8) AS d (day_start)
           LEFT JOIN matching m ON m.day_start = d.day_start
           GROUP BY d.day_start ORDER BY d.day_start`,
          [...values, periodStart("day", parsed.from), parsed.to - 1],
        );
        groups = grouped.rows.map((row) => ({ key: utcDay(readInteger(row.day_start, "day_start")), ...toTotals(row) }));
      } else if (parsed.groupBy !== undefined) {
        const column = groupColumns[parsed.groupBy];
        const grouped = await pool.query<TotalsRow & { key: string | null }>(
          `SELECT ${column} AS key, ${aggregates("")} FROM sluice_charges WHERE ${where}
           GROUP BY ${column} ORDER BY sum(cost) DESC, ${column} ASC NULLS LAST`,
          values,
        );
        groups = grouped.rows.map((row) => ({ key: row.key, ...toTotals(row) }));
      }
      return { from: parsed.from, to: parsed.to, totals: toTotals(totals.rows[0]!), groups };
    },
  };
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

/**
 * Locks the key's balance row and reads what the key has spent and holds. The key's row comes
 * second in the lock order, so it is created here, after the allocation's lock, never before:
 * inserting it first would hold a lock on it while waiting for the allocation's, the reverse
 * order, and two reserves could deadlock.
 */
async function lockKeyAndReadUse(client: pg.PoolClient, keyId: string, now: number): Promise<MicroDollars> {
  // An upsert that updates nothing but locks the row, created or not, in one round trip.
  const key = await client.query<{ lifetime_spent: string }>(
    `INSERT INTO sluice_key_balances (key_id, lifetime_spent) VALUES ($1, 0)
     ON CONFLICT (key_id) DO UPDATE SET key_id = EXCLUDED.key_id
     RETURNING lifetime_spent`,
    [keyId],
  );
  // The key's reservations span allocations this transaction has not locked, so they are summed
  // live rather than counted. The sum's statement starts after the lock is granted, so it sees
  // every reservation of the key that an earlier holder of the lock inserted.
  const reserved = await client.query<{ reserved: string }>(
    "SELECT coalesce(sum(amount), 0) AS reserved FROM sluice_reservations WHERE key_id = $1 AND expires_at > $2",
    [keyId, now],
  );
  return (
    readInteger(key.rows[0]!.lifetime_spent, "sluice_key_balances.lifetime_spent") +
    readInteger(reserved.rows[0]!.reserved, "reserved")
  );
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

async function setReserved(client: pg.PoolClient, allocationId: string, reserved: MicroDollars): Promise<void> {
  await client.query("UPDATE sluice_allocations SET reserved = $2 WHERE id = $1", [allocationId, reserved]);
}

function aggregates(prefix: string): string {
  return `count(${prefix}request_id) AS requests,
    coalesce(sum(${prefix}input_tokens), 0) AS input_tokens,
    coalesce(sum(${prefix}output_tokens), 0) AS output_tokens,
    coalesce(sum(${prefix}cost), 0) AS cost,
    count(DISTINCT ${prefix}user_id) AS active_users`;
}

/**
 * Whether a limit with `used` already spent or held admits `amount` more. A limit that is used up
 * admits nothing, not even a reservation of 0, so a free-looking request cannot slip past it.
 */
function admits(used: MicroDollars, amount: MicroDollars, limit: MicroDollars): boolean {
  return used < limit && used + amount <= limit;
}

/** Thrown inside a commit's transaction to roll it back and start over. */
class RetryCommit extends Error {}

function allocationNotFound(id: string): GatewayError {
  return new GatewayError("not_found", `No allocation has the id '${id}'.`, { param: "allocationId" });
}

function alreadyCharged(requestId: string): GatewayError {
  return new GatewayError("conflict", `The request '${requestId}' was already charged.`, { param: "requestId" });
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
