import type { BudgetLedger } from "@sluice/core";
import { summarizeLatencies } from "./latency-summary.js";
import type { LatencySummary } from "./latency-summary.js";

export interface LedgerCell {
  store: string;
  concurrency: number;
  /** "one": every caller on one allocation (they queue on its lock); "many": one allocation per caller. */
  allocations: "one" | "many";
  pairs: number;
  pairsPerSecond: number;
  /** Of one reserve + commit pair, from the reserve's call to the commit's answer. */
  latency: LatencySummary;
}

const CALLERS = 32;
/** Never refuses: every pair measures the path that admits. */
const UNLIMITED = 1_000_000_000_000_000;

/** The allocations the cells draw from, created once per ledger. */
export async function prepareLedger(ledger: BudgetLedger): Promise<void> {
  await ledger.createAllocation({ id: "alc_one", name: "One", owner: { type: "organization" }, limit: UNLIMITED, period: "month" });
  for (let caller = 0; caller < CALLERS; caller++) {
    await ledger.createAllocation({
      id: `alc_many_${caller}`,
      name: `Many ${caller}`,
      owner: { type: "organization" },
      limit: UNLIMITED,
      period: "month",
    });
  }
}

/**
 * Reserve + commit pairs, as the gateway makes them for every request: a worst case reserved
 * against the allocation and the key's cap (so the key's balance row is locked too), then the
 * actual cost committed. `concurrency` callers loop for `durationMs` after `warmupMs`.
 */
export async function measureLedger(input: {
  store: string;
  ledger: BudgetLedger;
  concurrency: number;
  allocations: "one" | "many";
  warmupMs: number;
  durationMs: number;
}): Promise<LedgerCell> {
  const { ledger } = input;
  const cell = `${input.store}-${input.concurrency}-${input.allocations}`;
  const startedAt = performance.now();
  const measureFrom = startedAt + input.warmupMs;
  const stopAt = measureFrom + input.durationMs;
  const latencies: number[] = [];
  let lastEnd = measureFrom;

  const caller = async (index: number): Promise<void> => {
    const allocationId = input.allocations === "one" ? "alc_one" : `alc_many_${index}`;
    const identity = { allocationId, userId: `user_${index}`, keyId: `key_${cell}_${index}` };
    for (let sequence = 0; ; sequence++) {
      const start = performance.now();
      if (start >= stopAt) return;
      const requestId = `req_${cell}_${index}_${sequence}`;
      const reserved = await ledger.reserve({ requestId, ...identity, keyLimit: UNLIMITED, amount: 5_000, leaseMs: 600_000 });
      if (!reserved.ok) throw new Error(`the benchmark's reserve was refused (${reserved.reason})`);
      await ledger.commit({
        requestId,
        ...identity,
        providerId: "prv_bench",
        model: "olivia:bench/bench-model",
        inputTokens: 120,
        outputTokens: 80,
        cost: 1_100,
      });
      const end = performance.now();
      if (start < measureFrom) continue;
      latencies.push(end - start);
      lastEnd = Math.max(lastEnd, end);
    }
  };
  await Promise.all(Array.from({ length: input.concurrency }, (_, index) => caller(index)));
  const elapsedMs = lastEnd - measureFrom;
  return {
    store: input.store,
    concurrency: input.concurrency,
    allocations: input.allocations,
    pairs: latencies.length,
    pairsPerSecond: elapsedMs > 0 ? (latencies.length * 1000) / elapsedMs : 0,
    latency: summarizeLatencies(latencies),
  };
}
