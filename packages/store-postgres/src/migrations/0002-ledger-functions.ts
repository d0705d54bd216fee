import type { Migration } from "./migration.js";

/**
 * Planner statistics for the usage reports, and the budget ledger's hot path as functions, so
 * that a reserve, a commit and a release each cost one round trip: every step that used to be its
 * own statement inside an explicit transaction now runs inside one function call, which PostgreSQL runs as one statement, atomically (its own
 * implicit transaction when called alone).
 *
 * The locking is unchanged: the allocation rows a call needs are locked first, in id order, by one
 * `SELECT ... ORDER BY id FOR UPDATE`, then the key's balance row. Lock waits happen inside the
 * database, so a reserve holds the allocation's lock only for the time the database works, never
 * for a round trip to the client.
 *
 * Periods: the callers pass `bounds`, the [start, end) of the day, week and month containing
 * `now` (computed by the stores' own periodStart/periodEnd), six int8 in that order.
 *
 * Outcomes are text: the stores map them to results and errors. `retry` asks the caller to call
 * again (a concurrent change moved the request's reservation to an allocation this call did not
 * lock). A commit that must start over raises SQLSTATE SLRTY, which rolls its charge back.
 */
export const ledgerFunctions: Migration = {
  version: 2,
  name: "ledger-functions",
  sql: `
-- Usage reports aggregate per (group, user) first. Without these, the planner multiplies the
-- columns' distinct counts (1,000 keys x 500 users = 500,000 groups, where there are about 1,000),
-- expects a hash table too big for work_mem and sorts the whole range instead.
CREATE STATISTICS sluice_charges_key_user (ndistinct) ON key_id, user_id FROM sluice_charges;
CREATE STATISTICS sluice_charges_model_user (ndistinct) ON model, user_id FROM sluice_charges;
CREATE STATISTICS sluice_charges_allocation_user (ndistinct) ON allocation_id, user_id FROM sluice_charges;
CREATE STATISTICS sluice_charges_provider_user (ndistinct) ON provider_id, user_id FROM sluice_charges;

CREATE FUNCTION sluice_period_bound(period text, bounds int8[], finish boolean) RETURNS int8
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT CASE period
    WHEN 'day' THEN bounds[1 + finish::int]
    WHEN 'week' THEN bounds[3 + finish::int]
    WHEN 'month' THEN bounds[5 + finish::int]
  END
$fn$;

CREATE FUNCTION sluice_reserve(
  p_request_id text, p_allocation_id text, p_user_id text, p_key_id text, p_amount int8, p_key_limit int8,
  p_now int8, p_expires_at int8, p_bounds int8[]
) RETURNS TABLE (outcome text, remaining int8, reservation sluice_reservations)
LANGUAGE plpgsql AS $fn$
DECLARE
  held_on text;
  allocation sluice_allocations;
  previous sluice_reservations;
  created sluice_reservations;
  period_from int8;
  period_to int8;
  spent int8;
  used int8;
  key_used int8;
BEGIN
  -- Where the request already holds a reservation, if anywhere: that allocation is locked too, so
  -- a lapsed reservation of the request on another allocation is released here, in lock order.
  SELECT r.allocation_id INTO held_on FROM sluice_reservations r WHERE r.request_id = p_request_id;
  PERFORM 1 FROM sluice_allocations a WHERE a.id IN (p_allocation_id, held_on) ORDER BY a.id FOR UPDATE;

  -- Release the locked allocations' expired reservations before checking, so that what stays in
  -- reserved is exactly what is live.
  WITH released AS (
    DELETE FROM sluice_reservations r
    WHERE r.allocation_id IN (p_allocation_id, held_on) AND r.expires_at <= p_now
    RETURNING r.allocation_id, r.amount
  ), totals AS (
    SELECT d.allocation_id, sum(d.amount) AS amount FROM released d GROUP BY d.allocation_id
  )
  UPDATE sluice_allocations a SET reserved = a.reserved - t.amount FROM totals t WHERE a.id = t.allocation_id;

  SELECT * INTO allocation FROM sluice_allocations a WHERE a.id = p_allocation_id;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'not_found'::text, NULL::int8, NULL::sluice_reservations;
    RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM sluice_charges c WHERE c.request_id = p_request_id) THEN
    RETURN QUERY SELECT 'charged'::text, NULL::int8, NULL::sluice_reservations;
    RETURN;
  END IF;
  SELECT * INTO previous FROM sluice_reservations r WHERE r.request_id = p_request_id;
  IF FOUND THEN
    -- A retry of a request that still holds its reservation holds nothing more.
    IF previous.expires_at > p_now THEN
      RETURN QUERY SELECT 'ok'::text, NULL::int8, previous;
      RETURN;
    END IF;
    -- Lapsed, on an allocation this call has not locked (those were released above).
    RETURN QUERY SELECT 'retry'::text, NULL::int8, NULL::sluice_reservations;
    RETURN;
  END IF;

  IF allocation.period IS NULL THEN
    spent := allocation.lifetime_spent;
  ELSE
    period_from := sluice_period_bound(allocation.period, p_bounds, false);
    period_to := sluice_period_bound(allocation.period, p_bounds, true);
    IF allocation.period_start IS NOT DISTINCT FROM period_from THEN
      spent := allocation.period_spent;
    ELSE
      SELECT coalesce(sum(c.cost), 0) INTO spent FROM sluice_charges c
      WHERE c.allocation_id = p_allocation_id AND c.at >= period_from AND c.at < period_to;
      UPDATE sluice_allocations a SET period_start = period_from, period_spent = spent WHERE a.id = p_allocation_id;
    END IF;
  END IF;

  -- A limit that is used up admits nothing, not even a reservation of 0.
  used := spent + allocation.reserved;
  IF NOT (used < allocation.spend_limit AND used + p_amount <= allocation.spend_limit) THEN
    RETURN QUERY SELECT 'allocation_exhausted'::text, greatest(0, allocation.spend_limit - used), NULL::sluice_reservations;
    RETURN;
  END IF;
  IF p_key_limit IS NOT NULL THEN
    key_used := 0;
    IF p_key_id IS NOT NULL THEN
      -- The key's row after the allocation's: created here, never before, to keep the lock order.
      -- An upsert that updates nothing but locks the row, created or not.
      INSERT INTO sluice_key_balances AS b (key_id, lifetime_spent) VALUES (p_key_id, 0)
      ON CONFLICT (key_id) DO UPDATE SET key_id = EXCLUDED.key_id
      RETURNING b.lifetime_spent INTO key_used;
      -- The key's reservations span allocations this call has not locked: summed live, by a
      -- statement that starts after the key's lock is granted.
      key_used := key_used + (SELECT coalesce(sum(r.amount), 0) FROM sluice_reservations r
                              WHERE r.key_id = p_key_id AND r.expires_at > p_now);
    END IF;
    IF NOT (key_used < p_key_limit AND key_used + p_amount <= p_key_limit) THEN
      RETURN QUERY SELECT 'key_limit_exhausted'::text, greatest(0, p_key_limit - key_used), NULL::sluice_reservations;
      RETURN;
    END IF;
  END IF;

  INSERT INTO sluice_reservations AS r (request_id, allocation_id, user_id, key_id, amount, created_at, expires_at)
  VALUES (p_request_id, p_allocation_id, p_user_id, p_key_id, p_amount, p_now, p_expires_at)
  RETURNING r.* INTO created;
  UPDATE sluice_allocations a SET reserved = a.reserved + p_amount WHERE a.id = p_allocation_id;
  RETURN QUERY SELECT 'ok'::text, NULL::int8, created;
END
$fn$;

CREATE FUNCTION sluice_commit(
  p_request_id text, p_allocation_id text, p_user_id text, p_key_id text, p_provider_id text, p_model text,
  p_input_tokens int8, p_output_tokens int8, p_cost int8, p_now int8, p_bounds int8[]
) RETURNS TABLE (outcome text, charge sluice_charges)
LANGUAGE plpgsql AS $fn$
DECLARE
  held_on text;
  allocation sluice_allocations;
  recorded sluice_charges;
  period_from int8;
  dropped int8;
BEGIN
  -- The reservation normally lies on the charged allocation; when it lies on another, that one is
  -- locked too, both in id order.
  SELECT r.allocation_id INTO held_on FROM sluice_reservations r WHERE r.request_id = p_request_id;
  PERFORM 1 FROM sluice_allocations a WHERE a.id IN (p_allocation_id, held_on) ORDER BY a.id FOR UPDATE;
  SELECT * INTO allocation FROM sluice_allocations a WHERE a.id = p_allocation_id;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'not_found'::text, NULL::sluice_charges;
    RETURN;
  END IF;

  INSERT INTO sluice_charges AS c (request_id, allocation_id, user_id, key_id, provider_id, model, input_tokens,
    output_tokens, cost, at)
  VALUES (p_request_id, p_allocation_id, p_user_id, p_key_id, p_provider_id, p_model, p_input_tokens,
    p_output_tokens, p_cost, p_now)
  ON CONFLICT (request_id) DO NOTHING
  RETURNING c.* INTO recorded;
  IF NOT FOUND THEN
    -- Charged before: the ledger keeps the first charge and nothing changes.
    RETURN QUERY SELECT 'duplicate'::text, c FROM sluice_charges c WHERE c.request_id = p_request_id;
    RETURN;
  END IF;

  -- Keep the period's cached spend exact: add the charge to it when it describes the current
  -- period, else recompute it for the current period (counting this charge).
  period_from := sluice_period_bound(allocation.period, p_bounds, false);
  IF allocation.period IS NOT NULL AND allocation.period_start IS DISTINCT FROM period_from THEN
    UPDATE sluice_allocations a SET lifetime_spent = a.lifetime_spent + p_cost, period_start = period_from,
      period_spent = (SELECT coalesce(sum(c.cost), 0) FROM sluice_charges c
                      WHERE c.allocation_id = p_allocation_id AND c.at >= period_from
                        AND c.at < sluice_period_bound(allocation.period, p_bounds, true))
    WHERE a.id = p_allocation_id;
  ELSE
    UPDATE sluice_allocations a SET lifetime_spent = a.lifetime_spent + p_cost,
      period_spent = CASE WHEN a.period_start = period_from THEN a.period_spent + p_cost ELSE a.period_spent END
    WHERE a.id = p_allocation_id;
  END IF;
  IF p_key_id IS NOT NULL THEN
    -- The key's row after the allocations', as everywhere.
    INSERT INTO sluice_key_balances AS b (key_id, lifetime_spent) VALUES (p_key_id, p_cost)
    ON CONFLICT (key_id) DO UPDATE SET lifetime_spent = b.lifetime_spent + EXCLUDED.lifetime_spent;
  END IF;

  -- The reservation ends with the charge, whether it was still live or had already lapsed.
  WITH deleted AS (
    DELETE FROM sluice_reservations r
    WHERE r.request_id = p_request_id AND r.allocation_id IN (p_allocation_id, held_on)
    RETURNING r.allocation_id, r.amount
  ), updated AS (
    UPDATE sluice_allocations a SET reserved = a.reserved - d.amount FROM deleted d WHERE a.id = d.allocation_id
    RETURNING 1
  )
  SELECT count(*) INTO dropped FROM updated;
  IF dropped = 0 AND EXISTS (SELECT 1 FROM sluice_reservations r WHERE r.request_id = p_request_id) THEN
    -- A reservation on an allocation this call did not lock appeared after the first look (a
    -- reserve raced it): roll everything back, and the caller starts over.
    RAISE EXCEPTION 'sluice: the reservation moved; commit again' USING ERRCODE = 'SLRTY';
  END IF;
  RETURN QUERY SELECT 'ok'::text, recorded;
END
$fn$;

CREATE FUNCTION sluice_release(p_request_id text, p_now int8) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
  held_on text;
  dropped int8;
BEGIN
  -- An expired reservation already holds nothing; it is left for a reserve or a sweep to delete.
  SELECT r.allocation_id INTO held_on FROM sluice_reservations r
  WHERE r.request_id = p_request_id AND r.expires_at > p_now;
  IF NOT FOUND THEN
    RETURN 'none';
  END IF;
  PERFORM 1 FROM sluice_allocations a WHERE a.id = held_on FOR UPDATE;
  WITH deleted AS (
    DELETE FROM sluice_reservations r
    WHERE r.request_id = p_request_id AND r.allocation_id = held_on AND r.expires_at > p_now
    RETURNING r.allocation_id, r.amount
  ), updated AS (
    UPDATE sluice_allocations a SET reserved = a.reserved - d.amount FROM deleted d WHERE a.id = d.allocation_id
    RETURNING 1
  )
  SELECT count(*) INTO dropped FROM updated;
  -- Nothing dropped: committed, released or re-reserved elsewhere since the first look.
  RETURN CASE WHEN dropped > 0 THEN 'released' ELSE 'retry' END;
END
$fn$;
`,
};
