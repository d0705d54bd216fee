/**
 * Several runs of `npm run bench`, pooled: each cell's paired throughput ratios (Sluice against
 * the minimal proxy measured next to it) from every run together, with a 90% interval for their
 * median and the share of single runs that would put the cell below the target.
 *
 *   node dist/pool-runs.js run-1/gateway.json run-2/gateway.json ...
 *
 * One run has eight repetitions per cell, and on a shared machine a cell's median then moves by
 * several hundredths from run to run: the pooled figures say where a cell lies, and how often a
 * single run would say otherwise. Runs measured with other settings (repetitions, warm-up,
 * window, or the order of cells) are pooled apart.
 */
import { readFileSync } from "node:fs";
import { fixed, markdownTable, percent, signed, textTable } from "./report.js";
import type { Table } from "./report.js";
import { median, medianInterval, shareOfRunsBelow } from "./statistics.js";

interface SavedRun {
  path: string;
  mode: string;
  concurrency: number;
  repetition: number;
  result: { requestsPerSecond: number };
}

interface SavedReport {
  date: string;
  settings: Record<string, number> & { repetitions: number };
  targets: { throughputRatio: number; addedLatencyMicros: number; memoryRatio: number };
  summary: {
    worstThroughputRatio: number;
    addedLatencyAtOneConnection: { nonStreaming: number; streamFirstToken: number };
    memory: { heapRatio: number };
  };
  runs: SavedRun[];
}

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write("usage: node dist/pool-runs.js <gateway.json> [<gateway.json> ...]\n");
  process.exit(2);
}

const reports = files.map((file) => JSON.parse(readFileSync(file, "utf8")) as SavedReport);
/** How a run was measured: its settings, which pooled runs must share. */
const methodOf = (report: SavedReport) =>
  Object.entries(report.settings)
    .map(([name, value]) => `${name} ${value}`)
    .join(", ");
const methods = new Map<string, typeof reports>();
for (const report of reports) {
  const method = methodOf(report);
  methods.set(method, [...(methods.get(method) ?? []), report]);
}

for (const [method, group] of methods) {
  const target = group[0]!.targets.throughputRatio;
  const repetitions = group[0]!.settings.repetitions;
  const cells = new Map<string, number[]>();
  for (const report of group) {
    const pairs = new Map<string, { proxy?: number; sluice?: number; cell: string }>();
    for (const run of report.runs) {
      if (run.path !== "proxy" && run.path !== "sluice") continue;
      const cell = `${run.mode}, ${run.concurrency} conn`;
      const key = `${cell}#${run.repetition}`;
      const pair = pairs.get(key) ?? { cell };
      pair[run.path] = run.result.requestsPerSecond;
      pairs.set(key, pair);
    }
    for (const pair of pairs.values()) {
      if (pair.proxy === undefined || pair.sluice === undefined || pair.proxy === 0) continue;
      cells.set(pair.cell, [...(cells.get(pair.cell) ?? []), pair.sluice / pair.proxy]);
    }
  }

  let everyCellAbove = true;
  const rows = [...cells].map(([cell, ratios]) => {
    const interval = medianInterval(ratios);
    if (interval === null || interval[0] < target) everyCellAbove = false;
    return [
      cell,
      String(ratios.length),
      fixed(median(ratios), 3),
      interval === null ? "" : `${fixed(interval[0], 3)}-${fixed(interval[1], 3)}`,
      percent(shareOfRunsBelow(ratios, target, repetitions)),
    ];
  });
  const worst = group.map((report) => report.summary.worstThroughputRatio);
  const latency = group.map((report) => Math.max(report.summary.addedLatencyAtOneConnection.nonStreaming, report.summary.addedLatencyAtOneConnection.streamFirstToken));
  const memory = group.map((report) => report.summary.memory.heapRatio).filter((value) => Number.isFinite(value));
  const table: Table = {
    title: `Throughput ratio, Sluice against the minimal proxy: ${group.length} run${group.length === 1 ? "" : "s"} pooled (${method})`,
    columns: [
      { label: "cell", align: "left" },
      { label: "pairs", align: "right" },
      { label: "median", align: "right" },
      { label: "90% interval", align: "right" },
      { label: `single runs below ${target}`, align: "right" },
    ],
    rows,
    notes: [
      `Runs: ${group.map((report) => report.date.slice(0, 16)).join(", ")}.`,
      `Each run's worst cell: ${worst.map((value) => fixed(value, 3)).join(", ")} (${worst.filter((value) => value >= target).length} of ${worst.length} at or above ${target}).`,
      `Pooled, ${everyCellAbove ? "every cell's interval lies above" : "not every cell's interval lies above"} ${target}. "Single runs below" is the share of runs of ${repetitions} repetitions whose median would fall below it, were each repetition drawn from the pooled ones.`,
      `Added p50 latency at one connection (the larger of non-streaming and first token), per run: ${latency.map((value) => `${signed(value)} µs`).join(", ")}.`,
      ...(memory.length > 0 ? [`Memory per open stream (heap) against the proxy, per run: ${memory.map((value) => fixed(value, 2)).join(", ")}.`] : []),
    ],
  };
  process.stdout.write(`${textTable(table)}\n\n`);
  if (process.env.POOL_MARKDOWN === "1") process.stdout.write(`${markdownTable(table)}\n\n`);
}
