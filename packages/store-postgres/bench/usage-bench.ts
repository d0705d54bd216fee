import pg from "pg";
import type { UsageGrouping, UsageQuery } from "@sluice/core";
import { createPostgresBudgetLedger } from "@sluice/store-postgres";

export interface UsageCell {
  days: number;
  scope: string;
  groupBy: UsageGrouping | "none";
  /** Median of the timed calls of `ledger.usage` (one query: the totals, or the totals with the groups), in ms. */
  medianMs: number;
  groups: number;
  /** The scans of sluice_charges in its queries' plans (EXPLAIN), e.g. "Index Scan using sluice_charges_at_idx". */
  scans: string[];
}

export interface UsageBenchResult {
  rows: number;
  days: number;
  insertMs: number;
  vacuumMs: number;
  tableSize: string;
  cells: UsageCell[];
}

const DAY_MS = 86_400_000;
const USERS = 500;
const KEYS = 1_000;
const MODELS = 8;
const PROVIDERS = 4;
const ALLOCATIONS = 20;

/** Which usage queries run, as the management API asks them: the organization's, and one user's or one allocation's. */
const scopes: Array<{ name: string; filter: Partial<UsageQuery>; groupings: Array<UsageGrouping | "none"> }> = [
  { name: "organization", filter: {}, groupings: ["none", "day", "model", "key", "user", "allocation"] },
  { name: "one user", filter: { userId: "user_7" }, groupings: ["day", "model", "key"] },
  { name: "one allocation", filter: { allocationIds: ["alc_usage_3"] }, groupings: ["day", "model", "user"] },
  { name: "one key", filter: { keyId: "key_42" }, groupings: ["day", "model"] },
];

/**
 * Fills sluice_charges with `rows` charges spread evenly over the last `days` days (through the
 * store's own schema, with generate_series: 500 users, 1,000 keys, 8 models, 20 allocations),
 * then times `ledger.usage` over the last 7, 30 and 90 days, and EXPLAINs the queries it ran.
 */
export async function benchUsage(input: { connectionString: string; rows: number; days: number; timedRuns: number }): Promise<UsageBenchResult> {
  const pool = new pg.Pool({ connectionString: input.connectionString, max: 4 });
  pool.on("error", () => undefined);
  try {
    const now = Date.now();
    const span = input.days * DAY_MS;
    const from = now - span;
    const ledger = createPostgresBudgetLedger({ pool: recording(pool) });
    for (let index = 0; index < ALLOCATIONS; index++) {
      await ledger.createAllocation({ id: `alc_usage_${index}`, name: `Usage ${index}`, owner: { type: "organization" }, limit: 1_000_000_000_000 });
    }

    const insertStarted = performance.now();
    const batch = 250_000;
    for (let first = 1; first <= input.rows; first += batch) {
      const last = Math.min(input.rows, first + batch - 1);
      await pool.query(
        `INSERT INTO sluice_charges (request_id, allocation_id, user_id, key_id, provider_id, model, input_tokens, output_tokens, cost, at)
         SELECT 'req_usage_' || g, 'alc_usage_' || (g % ${ALLOCATIONS}), 'user_' || (g % ${USERS}),
                CASE WHEN g % 10 = 0 THEN NULL ELSE 'key_' || (g % ${KEYS}) END,
                'prv_usage_' || (g % ${PROVIDERS}), 'model-' || (g % ${MODELS}),
                100 + g % 900, 20 + g % 400, 1 + g % 5000, $1::int8 + (g - 1) * $2::int8 / $3::int8
         FROM generate_series($4::int8, $5::int8) AS g`,
        [from, span, input.rows, first, last],
      );
    }
    const insertMs = performance.now() - insertStarted;
    // What autovacuum does on a live server: statistics for the planner, the visibility map for index-only scans.
    const vacuumStarted = performance.now();
    await pool.query("VACUUM (ANALYZE) sluice_charges");
    const vacuumMs = performance.now() - vacuumStarted;
    const tableSize = (await pool.query<{ size: string }>("SELECT pg_size_pretty(pg_total_relation_size('sluice_charges')) AS size")).rows[0]!.size;

    const cells: UsageCell[] = [];
    for (const days of [7, 30, 90]) {
      for (const scope of scopes) {
        for (const groupBy of scope.groupings) {
          const query: UsageQuery = { from: now - days * DAY_MS, to: now, ...scope.filter, ...(groupBy === "none" ? {} : { groupBy }) };
          const warmUpStarted = performance.now();
          await ledger.usage(query);
          // A report that takes over a quarter of a second is timed once: the whole bench stays within minutes.
          const runs = performance.now() - warmUpStarted > 250 ? 1 : input.timedRuns;
          const times: number[] = [];
          let groups = 0;
          for (let run = 0; run < runs; run++) {
            const started = performance.now();
            const report = await ledger.usage(query);
            times.push(performance.now() - started);
            groups = report.groups.length;
          }
          const statements = recorded.splice(0);
          const scans = await scansOf(pool, statements.slice(-(groupBy === "none" ? 1 : 2)));
          times.sort((left, right) => left - right);
          cells.push({ days, scope: scope.name, groupBy, medianMs: times[Math.floor(times.length / 2)]!, groups, scans });
        }
      }
    }
    return { rows: input.rows, days: input.days, insertMs, vacuumMs, tableSize, cells };
  } finally {
    await pool.end();
  }
}

const recorded: Array<{ text: string; values: unknown[] }> = [];

/** The pool, recording each statement the ledger sends through `query`, to EXPLAIN it afterwards. */
function recording(pool: pg.Pool): pg.Pool {
  return new Proxy(pool, {
    get(target, property) {
      if (property === "query") {
        return (text: string, values?: unknown[]) => {
          recorded.push({ text, values: values ?? [] });
          return target.query(text, values);
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  Plans?: PlanNode[];
}

/** Every scan of sluice_charges in the statements' plans, deduplicated, in plan order. */
async function scansOf(pool: pg.Pool, statements: Array<{ text: string; values: unknown[] }>): Promise<string[]> {
  const scans = new Set<string>();
  for (const statement of statements) {
    const result = await pool.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) ${statement.text}`, statement.values);
    const visit = (node: PlanNode): void => {
      if (node["Index Name"]?.startsWith("sluice_charges") || node["Relation Name"] === "sluice_charges") {
        scans.add(node["Index Name"] ? `${node["Node Type"]} using ${node["Index Name"]}` : node["Node Type"]);
      }
      for (const child of node.Plans ?? []) visit(child);
    };
    visit(result.rows[0]!["QUERY PLAN"][0]!.Plan);
  }
  return [...scans];
}
