/**
 * `npm run bench` for @sluice/store-postgres: the memory store against the PostgreSQL store, in
 * one run, on one machine.
 *
 * 1. Budget ledger: reserve + commit pairs per second and their latency, 1 and 32 concurrent
 *    callers, on one allocation and on one allocation per caller.
 * 2. Gateway: non-streaming chat completions per second through the whole gateway (a child
 *    process per store) against the fake upstream, 32 connections; Postgres as a ratio to memory.
 * 3. Usage reports at millions of charges: 7, 30 and 90 days, grouped by day, model, key, user
 *    and allocation, with the plans PostgreSQL chose.
 *
 * The database is DATABASE_URL's server (in a schema of its own, dropped at the end) or a
 * throwaway embedded server, stopped and removed at the end. Writes bench-results/postgres.md.
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { createSecretBox } from "@sluice/core";
import { createMemoryStores } from "@sluice/store-memory";
import { createPostgresStores } from "@sluice/store-postgres";
import { openBenchDatabase } from "./bench-database.js";
import type { BenchDatabase } from "./bench-database.js";
import { benchGateway } from "./gateway-bench.js";
import type { GatewayCell } from "./gateway-bench.js";
import { formatCount, formatMs } from "./latency-summary.js";
import { measureLedger, prepareLedger } from "./ledger-bench.js";
import type { LedgerCell } from "./ledger-bench.js";
import { benchUsage } from "./usage-bench.js";
import type { UsageBenchResult } from "./usage-bench.js";

const usageRows = Number(process.env.SLUICE_BENCH_USAGE_ROWS ?? 1_500_000);
// Each run's report goes to the ignored bench-results/ (as the gateway bench does): running the
// bench must not rewrite bench/RESULTS.md, which keeps the figures of a full, curated run.
const resultsPath = fileURLToPath(new URL("../bench-results/postgres.md", import.meta.url));

const startedAt = performance.now();
const loadAtStart = loadavg();
const log = (line: string) => process.stdout.write(`${line}\n`);

log("store-postgres bench: starting the database");
const database = await openBenchDatabase();
let closing: Promise<void> | null = null;
const close = () => (closing ??= database.close());
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void close().finally(() => process.exit(130)));
}

try {
  log(`  on ${database.description}`);
  const ledgerCells = await runLedgerBench(database);
  log("gateway: memory store against PostgreSQL store, 32 connections");
  const gatewayCells = await benchGateway({ databaseUrl: database.connectionString, connections: 32, warmupMs: 1_000, durationMs: 4_000, rounds: 2 });
  for (const cell of gatewayCells) log(`  ${cell.store} round ${cell.round}: ${formatCount(cell.requestsPerSecond)} req/s, p99 ${formatMs(cell.latency.p99)} ms, ${cell.errors} errors`);
  log(`usage: inserting ${formatCount(usageRows)} charges, then timing the reports`);
  const usage = await benchUsage({ connectionString: database.connectionString, rows: usageRows, days: 120, timedRuns: 3 });
  log(`  inserted in ${formatMs(usage.insertMs / 1000)} s, table ${usage.tableSize}`);
  const report = render({ database, ledgerCells, gatewayCells, usage, seconds: (performance.now() - startedAt) / 1000 });
  await mkdir(fileURLToPath(new URL("../bench-results/", import.meta.url)), { recursive: true });
  await writeFile(resultsPath, report);
  log("");
  log(report);
  log(`written to ${resultsPath}`);
} finally {
  await close();
}

async function runLedgerBench(benchDatabase: BenchDatabase): Promise<LedgerCell[]> {
  const secretBox = createSecretBox({ key: randomBytes(32) });
  const memory = createMemoryStores({ secretBox });
  const postgres = createPostgresStores({ connectionString: benchDatabase.connectionString, secretBox });
  try {
    await prepareLedger(memory.ledger);
    await prepareLedger(postgres.ledger);
    const cells: LedgerCell[] = [];
    for (const [concurrency, allocations] of [
      [1, "one"],
      [32, "one"],
      [32, "many"],
    ] as const) {
      for (const [store, ledger] of [
        ["memory", memory.ledger],
        ["postgres", postgres.ledger],
      ] as const) {
        const cell = await measureLedger({ store, ledger, concurrency, allocations, warmupMs: 500, durationMs: 2_500 });
        log(`ledger ${store}, ${concurrency} caller(s), ${allocations} allocation(s): ${formatCount(cell.pairsPerSecond)} pairs/s, p99 ${formatMs(cell.latency.p99)} ms`);
        cells.push(cell);
      }
    }
    return cells;
  } finally {
    await memory.close();
    await postgres.close();
  }
}

function render(input: {
  database: BenchDatabase;
  ledgerCells: LedgerCell[];
  gatewayCells: GatewayCell[];
  usage: UsageBenchResult;
  seconds: number;
}): string {
  const cpu = cpus();
  const lines = [
    "# store-postgres benchmark",
    "",
    `Run on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpu.length} x ${cpu[0]?.model.trim() ?? "unknown CPU"}, ` +
      `load average at start ${loadAtStart.map((value) => value.toFixed(2)).join(" ")}; ${input.seconds.toFixed(0)} s in all.`,
    `Database: ${input.database.description}. The benchmark, the gateways, the upstream and PostgreSQL share the machine.`,
    "Regenerate with `npm run bench` (all workspaces) or `npm run bench -w @sluice/store-postgres` after `npm run build`.",
    "",
    "## Budget ledger: reserve + commit pairs",
    "",
    "Each pair is what the gateway does per request: reserve a worst case against an allocation (monthly period) and the",
    "key's own cap, then commit the actual cost. Latency is the pair's, from the reserve's call to the commit's answer.",
    "PostgreSQL store: its own pool of node-postgres' default 10 connections.",
    "",
    "| callers | allocations | store | pairs/s | p50 ms | p99 ms | max ms |",
    "| ---: | :--- | :--- | ---: | ---: | ---: | ---: |",
  ];
  for (const cell of input.ledgerCells) {
    lines.push(
      `| ${cell.concurrency} | ${cell.allocations === "one" ? "one, shared" : "one per caller"} | ${cell.store} | ${formatCount(cell.pairsPerSecond)} | ` +
        `${formatMs(cell.latency.p50)} | ${formatMs(cell.latency.p99)} | ${formatMs(cell.latency.max)} |`,
    );
  }

  const mean = (store: GatewayCell["store"]) => {
    const cells = input.gatewayCells.filter((cell) => cell.store === store);
    return cells.reduce((sum, cell) => sum + cell.requestsPerSecond, 0) / cells.length;
  };
  const ratio = mean("postgres") / mean("memory");
  lines.push(
    "",
    "## Gateway throughput: PostgreSQL store as a ratio to the memory store",
    "",
    "Non-streaming chat completions through createGateway + the node:http handler + adapter-openai-compat, each gateway",
    "in a child process of its own, against the fake upstream (another child process); the load comes from the",
    "benchmark's process (undici Pool, 32 keep-alive connections, each sending its next request once the answer is",
    "read). Every request verifies a key, checks a grant, reserves against an allocation and the key's cap, and",
    "commits its cost. The stores alternate, twice. CPU: the gateway process's, per request (PostgreSQL's own is not in it).",
    "",
    "| round | store | req/s | p50 ms | p99 ms | gateway CPU µs/req | errors |",
    "| ---: | :--- | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const cell of input.gatewayCells) {
    lines.push(
      `| ${cell.round} | ${cell.store} | ${formatCount(cell.requestsPerSecond)} | ${formatMs(cell.latency.p50)} | ${formatMs(cell.latency.p99)} | ` +
        `${formatCount(cell.gatewayCpuMicros)} | ${cell.errors} |`,
    );
  }
  lines.push("", `**PostgreSQL / memory: ${ratio.toFixed(2)}** (mean req/s over the rounds).`);

  const { usage } = input;
  lines.push(
    "",
    `## Usage reports over ${formatCount(usage.rows)} charges`,
    "",
    `${formatCount(usage.rows)} charges spread evenly over ${usage.days} days (about ${formatCount(usage.rows / usage.days)} a day; 500 users, ` +
      `1,000 keys, 8 models, 20 allocations), inserted with generate_series through the store's schema in ` +
      `${(usage.insertMs / 1000).toFixed(1)} s, then VACUUM (ANALYZE) in ${(usage.vacuumMs / 1000).toFixed(1)} s; ` +
      `sluice_charges and its indexes take ${usage.tableSize}. Each time is one call of \`ledger.usage\` (one query: the totals, or the totals ` +
      "with the groups) after a warm-up call: the median of 3 calls when the warm-up took under 250 ms. " +
      "Scans: the scans of sluice_charges in the plans EXPLAIN shows for those queries. " +
      "Scopes: the whole organization (no filter), or one user's, one allocation's or one key's charges.",
    "",
    "| days | scope | group by | ms | groups | scans of sluice_charges |",
    "| ---: | :--- | :--- | ---: | ---: | :--- |",
  );
  for (const cell of usage.cells) {
    lines.push(`| ${cell.days} | ${cell.scope} | ${cell.groupBy === "none" ? "(totals only)" : cell.groupBy} | ${formatMs(cell.medianMs)} | ${formatCount(cell.groups)} | ${cell.scans.join("; ")} |`);
  }
  return `${lines.join("\n")}\n`;
}
