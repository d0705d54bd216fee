/**
 * One cell of the benchmark, repeated, for working on a cost: the minimal proxy and Sluice run it
 * back to back, alternating which goes first, and it prints each path's server CPU per request
 * and requests/s per repetition, then the medians and their paired ratio. Much quicker than the
 * whole `npm run bench`, and the CPU figure is steady enough to see a change of 10 µs.
 *
 *   node dist/focus-cell.js streaming 32 [repetitions=6] [durationMs=1500]
 *   BENCH_PROFILE=1 node dist/focus-cell.js non-streaming 32   # --cpu-prof on the Sluice server
 *   BENCH_PROFILE=all node dist/focus-cell.js streaming 32     # on the minimal proxy too, to compare
 *   BENCH_PIN=1 ...                 # servers on CPU 1, client and upstream on CPU 0
 *   BENCH_SLUICE_FLAGS="--trace-gc" # extra Node flags for the Sluice server
 *   BENCH_COMPARE_ENV=NAME=1 ...    # Sluice against Sluice with NAME=1 set, instead of the proxy
 *   BENCH_BASELINE_DIST=<checkout>/bench/dist ...  # Sluice against another built checkout's Sluice
 *   BENCH_BASELINE=skeleton ...     # Sluice against its skeleton (streaming): what the gateway's policy costs
 *   BENCH_SUBJECT=skeleton ...      # the skeleton in Sluice's place: what the skeleton costs over the proxy
 *   BENCH_BASELINE=dispatch-proxy ... # Sluice against a minimal proxy on undici's dispatch API
 *   BENCH_ALLOCATIONS=1 ...         # heap bytes allocated per request by each server, and where
 *   BENCH_ALLOCATION_FRAMES=3 ...   # with BENCH_ALLOCATIONS, each site with its two nearest callers
 *   BENCH_PHASES=1 ... streaming 1  # at one connection: each server's time before the upstream call,
 *                                   # waiting for the upstream, relaying, and between answers (phase-timings.ts)
 *   BENCH_CYCLE=1 ...               # before each repetition, the other mode's cells (1, 32, 128) on
 *                                   # both paths: what a full run puts between two repetitions of a cell
 *
 * Besides CPU, each line shows the server's minor page faults and context switches per request, and
 * the share of the machine's CPU time its hypervisor gave to other guests meanwhile (Linux).
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { BenchProcess } from "./bench-process.js";
import type { AllocationSample, CellResult, CpuSample, MemorySample, PhaseTimingsSample, ReadyMessage, Target } from "./protocol.js";
import { readCpuTimes, stolenShare } from "./cpu-steal.js";
import { median } from "./statistics.js";
import { chatRequestBody } from "./workload.js";

const [modeArgument = "streaming", concurrencyArgument = "32", repetitionsArgument = "6", durationArgument = "1500"] = process.argv.slice(2);
if (modeArgument !== "streaming" && modeArgument !== "non-streaming") throw new Error("mode must be 'streaming' or 'non-streaming'");
const stream = modeArgument === "streaming";
const concurrency = Number(concurrencyArgument);
const repetitions = Number(repetitionsArgument);
const durationMs = Number(durationArgument);
const profileDirectory = fileURLToPath(new URL("../bench-results/profiles", import.meta.url));
const profileFlags = [...(process.env.BENCH_PROFILE === "1" || process.env.BENCH_PROFILE === "all" ? ["--cpu-prof", `--cpu-prof-dir=${profileDirectory}`] : []), ...(process.env.BENCH_SLUICE_FLAGS?.split(" ").filter(Boolean) ?? [])];
const proxyProfileFlags = process.env.BENCH_PROFILE === "all" ? profileFlags : [];

interface Path {
  name: string;
  process: BenchProcess;
  target: Target;
  model: string;
}

function pathOf(name: string, started: { process: BenchProcess; ready: Record<string, unknown> }): Path {
  const ready = started.ready as unknown as ReadyMessage;
  return {
    name,
    process: started.process,
    model: ready.model,
    target: {
      origin: ready.origin,
      path: ready.path,
      headers: { "content-type": "application/json", authorization: `Bearer ${ready.apiKey ?? "sk-bench-not-checked"}` },
    },
  };
}

function cpu(path: Path): Promise<CpuSample> {
  return path.process.request<CpuSample>({ type: "cpu" });
}

// BENCH_ALLOCATIONS=1: each server samples its heap allocations over the measured window (the
// sampler costs CPU, so the CPU figures of such a run read high; bytes per request do not).
const sampleAllocations = process.env.BENCH_ALLOCATIONS === "1";
const samplePhases = process.env.BENCH_PHASES === "1";
if (samplePhases && concurrency !== 1) throw new Error("BENCH_PHASES pairs each request with its upstream call, so it needs one connection");

async function run(client: BenchProcess, path: Path, warmupMs: number, measuredMs: number) {
  const window: {
    start: Promise<CpuSample> | null;
    upstream: Promise<CpuSample> | null;
    allocations: Promise<unknown> | null;
    phases: Promise<unknown> | null;
    machine: ReturnType<typeof readCpuTimes>;
  } = {
    machine: null,
    phases: null,
    start: null,
    upstream: null,
    allocations: null,
  };
  client.on("measure-start", () => {
    window.machine = readCpuTimes();
    window.start = cpu(path);
    window.upstream = upstream.request<CpuSample>({ type: "cpu" });
    if (sampleAllocations) window.allocations = path.process.request({ type: "allocations", action: "start" });
    if (samplePhases) window.phases = path.process.request({ type: "phase-timings", action: "start" });
  });
  const result = await client
    .request<CellResult>(
      { type: "cell", target: path.target, body: chatRequestBody({ model: path.model, stream }), stream, concurrency, warmupMs, durationMs: measuredMs },
      warmupMs + measuredMs + 30_000,
    )
    .finally(() => client.off("measure-start"));
  const stolen = stolenShare(window.machine, readCpuTimes());
  const [end, upstreamEnd] = await Promise.all([cpu(path), upstream.request<CpuSample>({ type: "cpu" })]);
  let allocated: AllocationSample | null = null;
  if (window.allocations !== null) {
    await window.allocations;
    allocated = await path.process.request<AllocationSample>({ type: "allocations", action: "stop" });
  }
  let phases: PhaseTimingsSample | null = null;
  if (window.phases !== null) {
    await window.phases;
    phases = await path.process.request<PhaseTimingsSample>({ type: "phase-timings", action: "stop" });
  }
  const begin = window.start === null ? end : await window.start;
  const upstreamBegin = window.upstream === null ? upstreamEnd : await window.upstream;
  const requests = Math.max(1, result.requests);
  return {
    requestsPerSecond: result.requestsPerSecond,
    cpuPerRequest: (end.cpuMicros - begin.cpuMicros) / requests,
    systemPerRequest: (end.systemMicros - begin.systemMicros) / requests,
    faultsPerRequest: (end.minorPageFaults - begin.minorPageFaults) / requests,
    switchesPerRequest: (end.contextSwitches - begin.contextSwitches) / requests,
    upstreamPerRequest: (upstreamEnd.cpuMicros - upstreamBegin.cpuMicros) / requests,
    clientPerRequest: result.clientCpuPerRequest,
    stolen,
    phases,
    errors: result.errors,
    allocated: allocated === null ? null : { bytesPerRequest: allocated.bytes / requests, sites: allocated.sites.map((entry) => ({ site: entry.site, bytesPerRequest: entry.bytes / requests })) },
  };
}

// BENCH_COMPARE_ENV=NAME=value: the baseline is a second Sluice server (or skeleton, with
// BENCH_SUBJECT=skeleton) with that variable set, for an A/B of two variants (the variant reads the
// variable) in one paired run.
// BENCH_BASELINE_DIST=<dir>: the baseline is the Sluice server of another checkout (built, with its
// bench built), for a before/after of a change in one paired run.
const compareEnv = process.env.BENCH_COMPARE_ENV ? Object.fromEntries([process.env.BENCH_COMPARE_ENV.split("=", 2) as [string, string]]) : null;
const baselineDist = process.env.BENCH_BASELINE_DIST || null;
// BENCH_BASELINE=skeleton: the baseline is Sluice's skeleton (skeleton-server.ts: the real edge,
// upstream call and stream reader, none of the gateway's policy), so the ratio is what the policy
// costs. BENCH_SUBJECT=skeleton measures the skeleton in Sluice's place (against the proxy).
// BENCH_BASELINE=dispatch-proxy: the baseline is the minimal proxy written on undici's dispatch API
// (dispatch-proxy.ts), the floor under the floor: Sluice's own upstream call is written that way.
const skeletonBaseline = process.env.BENCH_BASELINE === "skeleton";
const dispatchBaseline = process.env.BENCH_BASELINE === "dispatch-proxy";
const subjectScript = process.env.BENCH_SUBJECT === "skeleton" ? "skeleton-server" : "sluice-server";
const baselineName = compareEnv !== null ? `Sluice ${process.env.BENCH_COMPARE_ENV}` : baselineDist !== null ? "baseline" : skeletonBaseline ? "skeleton" : dispatchBaseline ? "dispatch proxy" : "minimal proxy";
const upstreamStarted = await BenchProcess.start({ name: "upstream", script: "upstream-server" });
const upstream = upstreamStarted.process;
const env = { BENCH_UPSTREAM_URL: (upstreamStarted.ready as unknown as ReadyMessage).origin };
const [proxyStarted, sluiceStarted, client] = await Promise.all([
  compareEnv !== null || baselineDist !== null
    ? BenchProcess.start({ name: baselineName, script: subjectScript, ...(baselineDist === null ? {} : { directory: baselineDist }), env: { ...env, ...compareEnv }, execArgv: proxyProfileFlags })
    : BenchProcess.start({ name: baselineName, script: skeletonBaseline ? "skeleton-server" : dispatchBaseline ? "dispatch-proxy" : "minimal-proxy", env, execArgv: proxyProfileFlags }),
  BenchProcess.start({ name: "Sluice", script: subjectScript, env, execArgv: profileFlags }),
  BenchProcess.start({ name: "load generator", script: "load-generator" }),
]);
const paths = [pathOf(baselineName, proxyStarted), pathOf("Sluice", sluiceStarted)];
// BENCH_PIN=1: the servers on CPU 1, the client and the upstream on CPU 0, so a server's cost is
// measured without the other processes preempting it or sharing its caches.
if (process.env.BENCH_PIN === "1") {
  const pin = (cpu: number, pid: number | undefined) => execFileSync("taskset", ["-a", "-p", "-c", String(cpu), String(pid)], { stdio: "ignore" });
  pin(1, proxyStarted.process.pid);
  pin(1, sluiceStarted.process.pid);
  pin(0, client.process.pid);
  pin(0, upstream.pid);
}
try {
  for (const path of paths) await run(client.process, path, 0, 1_000);
  type Sample = Awaited<ReturnType<typeof run>>;
  const samples = new Map<string, Sample[]>(paths.map((path) => [path.name, []]));
  const ratios: number[] = [];
  for (let repetition = 0; repetition < repetitions; repetition++) {
    const order = repetition % 2 === 0 ? paths : [...paths].reverse();
    const line: string[] = [];
    const results = new Map<string, Sample>();
    if (process.env.BENCH_CYCLE === "1") {
      // What a full run does between two runs of this cell: the other mode's cells, on every path.
      for (const other of [1, 32, 128]) {
        for (const path of order) {
          await client.process.request<CellResult>({ type: "cell", target: path.target, body: chatRequestBody({ model: path.model, stream: !stream }), stream: !stream, concurrency: other, warmupMs: 0, durationMs: 1500 }, 60_000);
        }
      }
    }
    for (const path of order) {
      const result = await run(client.process, path, 300, durationMs);
      results.set(path.name, result);
      samples.get(path.name)!.push(result);
      line.push(`${path.name} ${Math.round(result.requestsPerSecond)}/s ${Math.round(result.cpuPerRequest)} µs (${Math.round(result.systemPerRequest)} sys, ${result.faultsPerRequest.toFixed(2)} faults, ${result.switchesPerRequest.toFixed(2)} switches${result.stolen === null ? "" : `, ${(result.stolen * 100).toFixed(0)}% stolen`})${result.phases === null ? "" : ` [${phasesText(result.phases)}]`}${result.errors > 0 ? ` (${result.errors} errors)` : ""}`);
    }
    ratios.push(results.get("Sluice")!.requestsPerSecond / results.get(baselineName)!.requestsPerSecond);
    process.stdout.write(`[${repetition + 1}/${repetitions}] ${line.join("   ")}\n`);
  }
  for (const [name, runs] of samples) {
    process.stdout.write(
      `${name.padEnd(14)} median ${Math.round(median(runs.map((r) => r.requestsPerSecond)))}/s, ${Math.round(median(runs.map((r) => r.cpuPerRequest)))} µs CPU per request, ${Math.round(median(runs.map((r) => r.systemPerRequest)))} of it in the kernel; upstream ${Math.round(median(runs.map((r) => r.upstreamPerRequest)))} µs, client ${Math.round(median(runs.map((r) => r.clientPerRequest)))} µs\n`,
    );
  }
  process.stdout.write(`${modeArgument} c=${concurrency}: throughput ratio (paired median) ${median(ratios).toFixed(3)}\n`);
  if (samplePhases) {
    for (const [name, runs] of samples) {
      const measured = runs.flatMap((sample) => (sample.phases === null ? [] : [sample.phases]));
      const of = (pick: (phases: PhaseTimingsSample) => number) => median(measured.map(pick));
      process.stdout.write(
        `${name.padEnd(14)} ${phasesText({ requests: of((p) => p.requests), beforeUpstreamMicros: of((p) => p.beforeUpstreamMicros), upstreamMicros: of((p) => p.upstreamMicros), relayMicros: of((p) => p.relayMicros), outsideMicros: of((p) => p.outsideMicros) })} (medians of the repetitions' medians)\n`,
      );
    }
  }
  if (sampleAllocations) {
    for (const [name, runs] of samples) {
      const measured = runs.flatMap((sample) => (sample.allocated === null ? [] : [sample.allocated]));
      if (measured.length === 0) continue;
      process.stdout.write(`${name.padEnd(14)} allocates ${(median(measured.map((entry) => entry.bytesPerRequest)) / 1024).toFixed(1)} KiB per request (median of ${measured.length}); by site, over all repetitions:\n`);
      const bySite = new Map<string, number>();
      for (const entry of measured) for (const site of entry.sites) bySite.set(site.site, (bySite.get(site.site) ?? 0) + site.bytesPerRequest / measured.length);
      for (const [site, bytes] of [...bySite].sort((left, right) => right[1] - left[1]).slice(0, 15)) {
        process.stdout.write(`  ${Math.round(bytes).toString().padStart(6)} B  ${site}\n`);
      }
    }
  }
  for (const path of paths) {
    const memory = await path.process.request<MemorySample>({ type: "memory" });
    process.stdout.write(`${path.name.padEnd(14)} heap after GC ${(memory.heapUsed / 2 ** 20).toFixed(1)} MiB, RSS ${(memory.rss / 2 ** 20).toFixed(1)} MiB\n`);
  }
} finally {
  await Promise.all([paths[0]!.process.stop(), paths[1]!.process.stop(), client.process.stop()]);
  await upstreamStarted.process.stop();
}

function phasesText(phases: PhaseTimingsSample): string {
  return `before the upstream call ${phases.beforeUpstreamMicros.toFixed(1)} µs, upstream ${phases.upstreamMicros.toFixed(1)} µs, relay ${phases.relayMicros.toFixed(1)} µs, outside ${phases.outsideMicros.toFixed(1)} µs`;
}
