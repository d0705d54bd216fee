/**
 * `npm run bench`: what Sluice costs against the floor, measured in one run under one set of
 * conditions (STYLE.md §2). Three paths serve the same chat completions on loopback, each server
 * and the client in its own process:
 *
 *   1. upstream direct: the fake upstream alone;
 *   2. minimal proxy: node:http + an undici Pool, forwarding bytes (minimal-proxy.ts);
 *   3. Sluice: createGateway + createNodeHandler + the openai-compat adapter + store-memory, with
 *      auth, permission, budget and metering on (sluice-server.ts).
 *
 * Throughput and latency cells (non-streaming and streaming, at 1, 32 and 128 connections) run
 * the three paths back to back, repeated and reduced to the median, so a noisy neighbour on the
 * machine hits all three alike. The two paths the targets compare always run next to each other,
 * each first as often as the other. Then, on fresh processes, the memory per open
 * stream at 1,000 concurrent streams.
 *
 * BENCH_QUICK=1: one repetition per cell (about a minute). BENCH_ONLY=throughput or
 * BENCH_ONLY=memory: one half of the run. BENCH_PROFILE=1: the Sluice server runs with --cpu-prof,
 * and its profiles land in bench-results/profiles/ (read one with
 * `node dist/profile-summary.js <file> [top] [function]`).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { request } from "undici";
import { BenchProcess } from "./bench-process.js";
import { readCpuTimes, stolenShare } from "./cpu-steal.js";
import type { CpuTimes } from "./cpu-steal.js";
import type { CellResult, CpuSample, MemorySample, OpenStreamsResult, ReadyMessage, Target } from "./protocol.js";
import { bytes, fixed, integer, markdownTable, ms, percent, signed, textTable } from "./report.js";
import type { Table } from "./report.js";
import { median, medianInterval, relativeSpread } from "./statistics.js";
import { chatRequestBody, contentChunks } from "./workload.js";

const quick = process.env.BENCH_QUICK === "1";
const profiling = process.env.BENCH_PROFILE === "1";
const only = process.env.BENCH_ONLY ?? "";
if (only !== "" && only !== "throughput" && only !== "memory") throw new Error("BENCH_ONLY must be 'throughput' or 'memory'");
// Eight short repetitions rather than a few long ones: on a shared machine, load comes in bursts
// of a few seconds, and more paired (proxy, Sluice) samples give a steadier median ratio. Eight,
// so each of the four orders below comes up twice per cell.
const settings = quick
  ? { repetitions: 1, warmupMs: 400, durationMs: 1_500, processWarmupMs: 500, memoryStreams: 1_000 }
  : { repetitions: 8, warmupMs: 300, durationMs: 1_200, processWarmupMs: 1_500, memoryStreams: 1_000 };
const concurrencies = [1, 32, 128] as const;
const modes = ["non-streaming", "streaming"] as const;
const paths = ["upstream", "proxy", "sluice"] as const;
/**
 * The orders a cell's paths run in, in turn. A ratio pairs the proxy with the Sluice run next to
 * it, so those two are always adjacent, with upstream direct before or after them; each of the
 * two goes first in half the orders, so drift in the machine's load favours neither.
 */
const pathOrders = [
  ["upstream", "proxy", "sluice"],
  ["upstream", "sluice", "proxy"],
  ["proxy", "sluice", "upstream"],
  ["sluice", "proxy", "upstream"],
] as const;
type Mode = (typeof modes)[number];
type PathName = (typeof paths)[number];

const pathLabels: Record<PathName, string> = { upstream: "upstream direct", proxy: "minimal proxy", sluice: "Sluice" };
const targets = { throughputRatio: 0.85, addedLatencyMicros: 150, memoryRatio: 1.25 };

const resultsDirectory = fileURLToPath(new URL("../bench-results/", import.meta.url));

interface Server {
  process: BenchProcess;
  target: Target;
  model: string;
}

type Servers = Record<PathName, Server>;

interface CellRun {
  mode: Mode;
  concurrency: number;
  path: PathName;
  repetition: number;
  result: CellResult;
  /** CPU of the path's own server process per request, µs (for upstream direct, the upstream's). */
  serverCpuPerRequest: number;
  /** CPU of the upstream process per request, µs. */
  upstreamCpuPerRequest: number;
  /** The machine's CPU time its hypervisor gave to other guests in the measured window, 0 to 1; null off Linux. */
  stolen: number | null;
}

interface MemoryRun {
  path: PathName;
  streams: number;
  opened: number;
  errors: number;
  openMs: number;
  baseline: MemorySample;
  loaded: MemorySample;
  afterClose: MemorySample;
  rssPerStream: number;
  heapPerStream: number;
}

function log(line = ""): void {
  process.stdout.write(`${line}\n`);
}

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

function serverOf(ready: Record<string, unknown>, processHandle: BenchProcess): Server {
  const message = ready as unknown as ReadyMessage;
  return {
    process: processHandle,
    model: message.model,
    target: {
      origin: message.origin,
      path: message.path,
      // Every path gets the same headers; only Sluice reads the key.
      headers: { "content-type": "application/json", authorization: `Bearer ${message.apiKey ?? "sk-bench-not-checked"}` },
    },
  };
}

async function startServers(): Promise<Servers> {
  const upstream = await BenchProcess.start({ name: "upstream", script: "upstream-server" });
  const upstreamServer = serverOf(upstream.ready, upstream.process);
  const env = { BENCH_UPSTREAM_URL: upstreamServer.target.origin };
  const profileFlags = profiling ? ["--cpu-prof", `--cpu-prof-dir=${resultsDirectory}profiles`] : [];
  const [proxy, sluice] = await Promise.all([
    BenchProcess.start({ name: "minimal proxy", script: "minimal-proxy", env }),
    BenchProcess.start({ name: "Sluice", script: "sluice-server", env, execArgv: profileFlags }),
  ]);
  return {
    upstream: upstreamServer,
    proxy: serverOf(proxy.ready, proxy.process),
    sluice: serverOf(sluice.ready, sluice.process),
  };
}

async function stopServers(servers: Servers): Promise<void> {
  await Promise.all([servers.proxy.process.stop(), servers.sluice.process.stop()]);
  await servers.upstream.process.stop();
}

/** One request per path and mode before anything is timed: a broken path must fail loudly, not measure fast. */
async function checkPaths(servers: Servers): Promise<void> {
  for (const path of paths) {
    const server = servers[path];
    for (const stream of [false, true]) {
      const response = await request(`${server.target.origin}${server.target.path}`, {
        method: "POST",
        headers: server.target.headers,
        body: chatRequestBody({ model: server.model, stream }),
      });
      const text = await response.body.text();
      const problems: string[] = [];
      if (response.statusCode !== 200) problems.push(`status ${response.statusCode}`);
      if (stream) {
        const contentEvents = text.split("\n\n").filter((event) => /"content":"[^"]/.test(event)).length;
        if (contentEvents !== contentChunks) problems.push(`${contentEvents} content events, expected ${contentChunks}`);
        if (!text.endsWith("data: [DONE]\n\n")) problems.push("no [DONE]");
        if (!text.includes('"usage":{')) problems.push("no usage chunk");
      } else if (!text.includes('"completion_tokens":')) {
        problems.push("no usage");
      }
      if (!text.includes(`"model":${JSON.stringify(server.model)}`)) problems.push(`model is not ${server.model}`);
      if (problems.length > 0) {
        throw new Error(`${pathLabels[path]} (${stream ? "stream" : "non-stream"}) answered wrongly: ${problems.join(", ")}\n${text.slice(0, 600)}`);
      }
    }
  }
}

async function cpuOf(server: Server): Promise<number> {
  return (await server.process.request<CpuSample>({ type: "cpu" })).cpuMicros;
}

async function runCell(servers: Servers, client: BenchProcess, cell: { mode: Mode; concurrency: number; path: PathName; repetition: number }): Promise<CellRun> {
  const server = servers[cell.path];
  const stream = cell.mode === "streaming";
  const window: { start: Promise<[number, number]> | null; machine: CpuTimes | null } = { start: null, machine: null };
  client.on("measure-start", () => {
    window.machine = readCpuTimes();
    window.start = Promise.all([cpuOf(server), cpuOf(servers.upstream)]);
  });
  const result = await client
    .request<CellResult>(
      {
        type: "cell",
        target: server.target,
        body: chatRequestBody({ model: server.model, stream }),
        stream,
        concurrency: cell.concurrency,
        warmupMs: settings.warmupMs,
        durationMs: settings.durationMs,
      },
      settings.warmupMs + settings.durationMs + 30_000,
    )
    .finally(() => client.off("measure-start"));
  const stolen = stolenShare(window.machine, readCpuTimes());
  const [serverEnd, upstreamEnd] = await Promise.all([cpuOf(server), cpuOf(servers.upstream)]);
  const [serverStart, upstreamStart] = window.start === null ? [serverEnd, upstreamEnd] : await window.start;
  const perRequest = (micros: number) => (result.requests > 0 ? micros / result.requests : Number.NaN);
  return {
    ...cell,
    result,
    serverCpuPerRequest: perRequest(serverEnd - serverStart),
    upstreamCpuPerRequest: perRequest(upstreamEnd - upstreamStart),
    stolen,
  };
}

async function measureThroughput(client: BenchProcess): Promise<CellRun[]> {
  const servers = await startServers();
  const runs: CellRun[] = [];
  try {
    await checkPaths(servers);
    // JIT, pools and lazily built state first, so the first cells are not measured cold.
    for (const mode of modes) {
      for (const path of paths) {
        const server = servers[path];
        const stream = mode === "streaming";
        await client.request<CellResult>({
          type: "cell",
          target: server.target,
          body: chatRequestBody({ model: server.model, stream }),
          stream,
          concurrency: 32,
          warmupMs: 0,
          durationMs: settings.processWarmupMs,
        });
      }
    }
    const cells = modes.flatMap((mode) => concurrencies.map((concurrency) => ({ mode, concurrency })));
    for (let repetition = 0; repetition < settings.repetitions; repetition++) {
      for (const [cellIndex, cell] of cells.entries()) {
        const order = pathOrders[(repetition + cellIndex) % pathOrders.length]!;
        const line: string[] = [];
        for (const path of order) {
          const run = await runCell(servers, client, { ...cell, path, repetition });
          runs.push(run);
          const stolen = run.stolen !== null && run.stolen >= 0.02 ? ` (${percent(run.stolen)} stolen)` : "";
          line.push(`${pathLabels[path]} ${integer(run.result.requestsPerSecond)}/s${stolen}${run.result.errors > 0 ? ` (${run.result.errors} errors)` : ""}`);
        }
        log(`  [${repetition + 1}/${settings.repetitions}] ${cell.mode.padEnd(13)} c=${String(cell.concurrency).padEnd(3)}  ${line.join("  ")}`);
      }
    }
  } finally {
    await stopServers(servers);
  }
  return runs;
}

async function waitForSockets(server: Server, atMost: number, timeoutMs: number): Promise<MemorySample> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sample = await server.process.request<MemorySample>({ type: "memory" });
    if (sample.sockets <= atMost || Date.now() > deadline) return sample;
    await sleep(250);
  }
}

async function measureMemory(client: BenchProcess): Promise<MemoryRun[]> {
  // Fresh processes: the throughput cells leave caches and a grown heap behind.
  const servers = await startServers();
  const runs: MemoryRun[] = [];
  try {
    // Warm every path first, so JIT code, pools and lazily built state sit in the baseline: full
    // streams, then a few streams closed by the client, which is how the test's streams end (and
    // what makes Sluice load its tokenizer, to count the output of a stream cut short).
    for (const path of paths) {
      const server = servers[path];
      await client.request<CellResult>({
        type: "cell",
        target: server.target,
        body: chatRequestBody({ model: server.model, stream: true }),
        stream: true,
        concurrency: 32,
        warmupMs: 0,
        durationMs: quick ? 500 : 1_000,
      });
      await client.request<OpenStreamsResult>({
        type: "open-streams",
        target: server.target,
        body: chatRequestBody({ model: server.model, stream: true, hangAfterFirstChunk: true }),
        count: 64,
        timeoutMs: 10_000,
      });
      await client.request({ type: "close-streams" });
    }
    for (const path of paths) {
      const server = servers[path];
      const baseline = await waitForSockets(server, 0, 3_000);
      const open = await client.request<OpenStreamsResult>(
        {
          type: "open-streams",
          target: server.target,
          body: chatRequestBody({ model: server.model, stream: true, hangAfterFirstChunk: true }),
          count: settings.memoryStreams,
          timeoutMs: 30_000,
        },
        60_000,
      );
      await sleep(500);
      const loaded = await server.process.request<MemorySample>({ type: "memory" });
      await client.request({ type: "close-streams" }, 30_000);
      const afterClose = await waitForSockets(server, baseline.sockets, 10_000);
      const opened = Math.max(1, open.opened);
      runs.push({
        path,
        streams: settings.memoryStreams,
        opened: open.opened,
        errors: open.errors,
        openMs: open.elapsedMs,
        baseline,
        loaded,
        afterClose,
        rssPerStream: (loaded.rss - baseline.rss) / opened,
        heapPerStream: (loaded.heapUsed - baseline.heapUsed) / opened,
      });
      log(`  ${pathLabels[path]}: ${open.opened}/${settings.memoryStreams} streams open in ${integer(open.elapsedMs)} ms, ${bytes((loaded.rss - baseline.rss) / opened)} RSS per stream`);
    }
  } finally {
    await stopServers(servers);
  }
  return runs;
}

interface Aggregate {
  mode: Mode;
  concurrency: number;
  path: PathName;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  firstTokenP50: number;
  firstTokenP99: number;
  serverCpuPerRequest: number;
  upstreamCpuPerRequest: number;
  clientCpuPerRequest: number;
  errors: number;
  /** (max - min) / median of requests/s across repetitions. */
  throughputSpread: number;
  repetitions: number;
}

function aggregate(runs: readonly CellRun[]): Aggregate[] {
  const out: Aggregate[] = [];
  if (runs.length === 0) return out;
  for (const mode of modes) {
    for (const concurrency of concurrencies) {
      for (const path of paths) {
        const cell = runs.filter((run) => run.mode === mode && run.concurrency === concurrency && run.path === path);
        const of = (pick: (run: CellRun) => number) => median(cell.map(pick));
        out.push({
          mode,
          concurrency,
          path,
          requestsPerSecond: of((run) => run.result.requestsPerSecond),
          p50: of((run) => run.result.latency.p50),
          p99: of((run) => run.result.latency.p99),
          firstTokenP50: of((run) => run.result.firstToken?.p50 ?? Number.NaN),
          firstTokenP99: of((run) => run.result.firstToken?.p99 ?? Number.NaN),
          serverCpuPerRequest: of((run) => run.serverCpuPerRequest),
          upstreamCpuPerRequest: of((run) => run.upstreamCpuPerRequest),
          clientCpuPerRequest: of((run) => run.result.clientCpuPerRequest),
          errors: cell.reduce((sum, run) => sum + run.result.errors, 0),
          throughputSpread: relativeSpread(cell.map((run) => run.result.requestsPerSecond)),
          repetitions: cell.length,
        });
      }
    }
  }
  return out;
}

/** Per repetition, Sluice against the minimal proxy measured next to it. */
function pairedValues(runs: readonly CellRun[], mode: Mode, concurrency: number, compare: (sluice: CellRun, proxy: CellRun) => number): number[] {
  const values: number[] = [];
  for (let repetition = 0; repetition < settings.repetitions; repetition++) {
    const find = (path: PathName) => runs.find((run) => run.mode === mode && run.concurrency === concurrency && run.path === path && run.repetition === repetition);
    const sluice = find("sluice");
    const proxy = find("proxy");
    if (sluice && proxy) values.push(compare(sluice, proxy));
  }
  return values;
}

/** The median of `pairedValues`. */
function pairedMedian(runs: readonly CellRun[], mode: Mode, concurrency: number, compare: (sluice: CellRun, proxy: CellRun) => number): number {
  return median(pairedValues(runs, mode, concurrency, compare));
}

interface Summary {
  /** Per cell, the median of the paired ratios and a 90% interval for it (null with one repetition). */
  throughputRatios: Array<{ mode: Mode; concurrency: number; ratio: number; interval: [number, number] | null }>;
  worstThroughputRatio: number;
  addedLatencyAtOneConnection: { nonStreaming: number; streamFirstToken: number; streamComplete: number };
  /** Sluice's server CPU per request minus the minimal proxy's, µs, per mode at 32 connections: the least noisy cost figure. */
  addedServerCpu: Record<Mode, number>;
  memory: { rssRatio: number; heapRatio: number; rssPerStream: Record<PathName, number>; heapPerStream: Record<PathName, number> };
  verdicts: { throughput: boolean; latency: boolean; memory: boolean };
}

function summarizeRuns(runs: readonly CellRun[], memory: readonly MemoryRun[]): Summary {
  const throughputRatios = modes.flatMap((mode) =>
    concurrencies.map((concurrency) => {
      const ratios = pairedValues(runs, mode, concurrency, (sluice, proxy) => sluice.result.requestsPerSecond / proxy.result.requestsPerSecond);
      return { mode, concurrency, ratio: median(ratios), interval: medianInterval(ratios) };
    }),
  );
  const worstThroughputRatio = Math.min(...throughputRatios.map((entry) => entry.ratio));
  const addedLatencyAtOneConnection = {
    nonStreaming: pairedMedian(runs, "non-streaming", 1, (sluice, proxy) => sluice.result.latency.p50 - proxy.result.latency.p50),
    streamFirstToken: pairedMedian(runs, "streaming", 1, (sluice, proxy) => (sluice.result.firstToken?.p50 ?? 0) - (proxy.result.firstToken?.p50 ?? 0)),
    streamComplete: pairedMedian(runs, "streaming", 1, (sluice, proxy) => sluice.result.latency.p50 - proxy.result.latency.p50),
  };
  const addedServerCpu = Object.fromEntries(
    modes.map((mode) => [mode, pairedMedian(runs, mode, 32, (sluice, proxy) => sluice.serverCpuPerRequest - proxy.serverCpuPerRequest)]),
  ) as Record<Mode, number>;
  const perStream = (pick: (run: MemoryRun) => number) =>
    Object.fromEntries(
      paths.map((path) => {
        const run = memory.find((candidate) => candidate.path === path);
        return [path, run === undefined ? Number.NaN : pick(run)];
      }),
    ) as Record<PathName, number>;
  const rssPerStream = perStream((run) => run.rssPerStream);
  const heapPerStream = perStream((run) => run.heapPerStream);
  const memorySummary = {
    rssRatio: rssPerStream.sluice / rssPerStream.proxy,
    heapRatio: heapPerStream.sluice / heapPerStream.proxy,
    rssPerStream,
    heapPerStream,
  };
  return {
    throughputRatios,
    worstThroughputRatio,
    addedLatencyAtOneConnection,
    addedServerCpu,
    memory: memorySummary,
    verdicts: {
      throughput: worstThroughputRatio >= targets.throughputRatio,
      latency: Math.max(addedLatencyAtOneConnection.nonStreaming, addedLatencyAtOneConnection.streamFirstToken) < targets.addedLatencyMicros,
      // On the heap: RSS per stream moves by 2x between runs (freed pages from the warm-up get
      // reused or not), while heapUsed after a full GC repeats within a few percent.
      memory: memorySummary.heapRatio <= targets.memoryRatio,
    },
  };
}

function tables(aggregates: readonly Aggregate[], memory: readonly MemoryRun[], summary: Summary): Table[] {
  const cellNote = `Median of ${settings.repetitions} run(s) per cell; each run ${settings.durationMs / 1000} s measured after ${settings.warmupMs / 1000} s of warm-up. CPU columns: µs of CPU per request in the path's server process (for upstream direct, the upstream) and in the upstream.`;
  const nonStreaming: Table = {
    title: "Non-streaming chat completions",
    columns: [
      { label: "conns", align: "right" },
      { label: "path", align: "left" },
      { label: "req/s", align: "right" },
      { label: "p50 ms", align: "right" },
      { label: "p99 ms", align: "right" },
      { label: "server CPU µs/req", align: "right" },
      { label: "upstream CPU µs/req", align: "right" },
      { label: "req/s spread", align: "right" },
      { label: "errors", align: "right" },
    ],
    rows: aggregates
      .filter((entry) => entry.mode === "non-streaming")
      .map((entry) => [
        String(entry.concurrency),
        pathLabels[entry.path],
        integer(entry.requestsPerSecond),
        ms(entry.p50),
        ms(entry.p99),
        fixed(entry.serverCpuPerRequest, 0),
        fixed(entry.upstreamCpuPerRequest, 0),
        percent(entry.throughputSpread),
        String(entry.errors),
      ]),
    notes: [cellNote],
  };
  const streaming: Table = {
    title: `Streaming chat completions (${contentChunks} content chunks, no pacing; first token = first content delta)`,
    columns: [
      { label: "conns", align: "right" },
      { label: "path", align: "left" },
      { label: "streams/s", align: "right" },
      { label: "first token p50 ms", align: "right" },
      { label: "first token p99 ms", align: "right" },
      { label: "full stream p50 ms", align: "right" },
      { label: "full stream p99 ms", align: "right" },
      { label: "server CPU µs/req", align: "right" },
      { label: "upstream CPU µs/req", align: "right" },
      { label: "req/s spread", align: "right" },
      { label: "errors", align: "right" },
    ],
    rows: aggregates
      .filter((entry) => entry.mode === "streaming")
      .map((entry) => [
        String(entry.concurrency),
        pathLabels[entry.path],
        integer(entry.requestsPerSecond),
        ms(entry.firstTokenP50),
        ms(entry.firstTokenP99),
        ms(entry.p50),
        ms(entry.p99),
        fixed(entry.serverCpuPerRequest, 0),
        fixed(entry.upstreamCpuPerRequest, 0),
        percent(entry.throughputSpread),
        String(entry.errors),
      ]),
    notes: [cellNote],
  };
  const memoryTable: Table = {
    title: `Memory per open stream (${settings.memoryStreams} concurrent streams held open after their first chunk)`,
    columns: [
      { label: "path", align: "left" },
      { label: "open", align: "right" },
      { label: "RSS / stream", align: "right" },
      { label: "heap / stream", align: "right" },
      { label: "baseline RSS", align: "right" },
      { label: "RSS at 1,000", align: "right" },
      { label: "RSS after close", align: "right" },
      { label: "heap baseline", align: "right" },
      { label: "heap at 1,000", align: "right" },
      { label: "heap after close", align: "right" },
    ],
    rows: memory.map((run) => [
      pathLabels[run.path],
      `${run.opened}/${run.streams}`,
      bytes(run.rssPerStream),
      bytes(run.heapPerStream),
      bytes(run.baseline.rss),
      bytes(run.loaded.rss),
      `${bytes(run.afterClose.rss)} (${signed((run.afterClose.rss - run.baseline.rss) / (1024 * 1024), 1)} MiB)`,
      bytes(run.baseline.heapUsed),
      bytes(run.loaded.heapUsed),
      `${bytes(run.afterClose.heapUsed)} (${signed((run.afterClose.heapUsed - run.baseline.heapUsed) / (1024 * 1024), 1)} MiB)`,
    ]),
    notes: [
      "Each figure is the server process's own memory after forced full GCs (--expose-gc), against its baseline with no stream open; upstream direct is the reference (the upstream holding the streams itself).",
      "RSS per stream is noisy (pages freed after the warm-up may or may not be reused by the new streams); the heap figure repeats within a few percent and carries the verdict.",
    ],
  };
  const verdict = (ok: boolean, measured: number) => (Number.isNaN(measured) ? "" : ok ? "PASS" : "MISS");
  const added = summary.addedLatencyAtOneConnection;
  const ratioTable: Table = {
    title: "Sluice against the minimal proxy (same run; per repetition, then the median)",
    columns: [
      { label: "measure", align: "left" },
      { label: "value", align: "right" },
      { label: "target", align: "right" },
      { label: "verdict", align: "left" },
    ],
    rows: [
      ...summary.throughputRatios.map((entry) => [
        `throughput ratio, ${entry.mode}, ${entry.concurrency} conn`,
        entry.interval === null ? fixed(entry.ratio, 3) : `${fixed(entry.ratio, 3)} (${fixed(entry.interval[0], 2)}-${fixed(entry.interval[1], 2)})`,
        "",
        "",
      ]),
      ["throughput ratio, worst cell", fixed(summary.worstThroughputRatio, 3), `>= ${targets.throughputRatio}`, verdict(summary.verdicts.throughput, summary.worstThroughputRatio)],
      ["added p50 latency, non-streaming, 1 conn", `${signed(added.nonStreaming)} µs`, `< ${targets.addedLatencyMicros} µs`, verdict(added.nonStreaming < targets.addedLatencyMicros, added.nonStreaming)],
      ["added p50 first-token latency, streaming, 1 conn", `${signed(added.streamFirstToken)} µs`, `< ${targets.addedLatencyMicros} µs`, verdict(added.streamFirstToken < targets.addedLatencyMicros, added.streamFirstToken)],
      ["added p50 full-stream latency, streaming, 1 conn", `${signed(added.streamComplete)} µs`, "", ""],
      ...modes.map((mode) => [`added server CPU per request, ${mode}, 32 conn`, `${signed(summary.addedServerCpu[mode])} µs`, "", ""]),
      ["memory per stream ratio (heap after GC)", fixed(summary.memory.heapRatio, 2), `<= ${targets.memoryRatio}`, verdict(summary.verdicts.memory, summary.memory.heapRatio)],
      ["memory per stream ratio (RSS; noisy, see note)", fixed(summary.memory.rssRatio, 2), "", ""],
    ].filter((row) => !row[1]!.includes("n/a")),
    notes: [
      "In brackets after a throughput ratio: a 90% interval for its median, from resampling the cell's repetitions. Where it spans the target, this run alone cannot say on which side the cell lies; `node dist/pool-runs.js <gateway.json>...` pools the repetitions of several runs.",
    ],
  };
  const measured = aggregates.length > 0 ? [nonStreaming, streaming] : [];
  return [...measured, ...(memory.length > 0 ? [memoryTable] : []), ratioTable];
}

function noiseNote(aggregates: readonly Aggregate[], runs: readonly CellRun[]): string {
  if (aggregates.length === 0) return "";
  const stolen = runs.flatMap((run) => (run.stolen === null ? [] : [run.stolen]));
  // Time the host gave other guests: high figures mean the neighbours, not the paths, moved the numbers.
  const stolenNote =
    stolen.length === 0 ? "" : ` CPU time stolen by the hypervisor in a measured window: ${percent(median(stolen))} at the median, ${percent(Math.max(...stolen))} at most.`;
  if (settings.repetitions < 2) return `Noise: one repetition per cell (BENCH_QUICK), so no spread to report.${stolenNote}`;
  const spreads = aggregates.map((entry) => entry.throughputSpread).sort((a, b) => a - b);
  const worst = aggregates.reduce((a, b) => (b.throughputSpread > a.throughputSpread ? b : a));
  return `Noise: req/s spread across repetitions (max - min over median) is ${percent(median(spreads))} at the median cell, ${percent(worst.throughputSpread)} at worst (${worst.mode}, ${worst.concurrency} conn, ${pathLabels[worst.path]}).${stolenNote}`;
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const machine = {
    node: process.version,
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAverageAtStart: loadavg().map((value) => Number(value.toFixed(2))),
  };
  log(`Sluice gateway benchmark: ${new Date(startedAt).toISOString()}, Node ${machine.node}, ${machine.cores} x ${machine.cpu}, load average ${machine.loadAverageAtStart.join(" ")}`);
  log(quick ? "BENCH_QUICK=1: one short repetition per cell." : `${settings.repetitions} repetitions per cell.`);

  const { process: client } = await BenchProcess.start({ name: "load generator", script: "load-generator" });
  let runs: CellRun[] = [];
  let memory: MemoryRun[] = [];
  try {
    if (only !== "memory") {
      log("\nThroughput and latency");
      runs = await measureThroughput(client);
    }
    if (only !== "throughput") {
      log("\nMemory per open stream");
      memory = await measureMemory(client);
    }
  } finally {
    await client.stop();
  }

  const aggregates = aggregate(runs);
  const summary = summarizeRuns(runs, memory);
  const allTables = tables(aggregates, memory, summary);
  const noise = noiseNote(aggregates, runs);
  const durationSeconds = Math.round((Date.now() - startedAt) / 1000);
  log("");
  for (const table of allTables) log(`${textTable(table)}\n`);
  log(noise);
  log(`Finished in ${durationSeconds} s.`);

  mkdirSync(resultsDirectory, { recursive: true });
  const json = { date: new Date(startedAt).toISOString(), machine, settings, durationSeconds, targets, summary, cells: aggregates, runs, memory };
  writeFileSync(`${resultsDirectory}gateway.json`, `${JSON.stringify(json, null, 2)}\n`);
  const markdown = [
    `Run on ${new Date(startedAt).toISOString().slice(0, 10)}, Node ${machine.node}, ${machine.cores} x ${machine.cpu}, load average at start ${machine.loadAverageAtStart.join(" ")}; ${durationSeconds} s.`,
    "",
    ...allTables.map((table) => `${markdownTable(table)}\n`),
    noise,
    "",
  ].join("\n");
  writeFileSync(`${resultsDirectory}gateway.md`, markdown);
  log(`Wrote ${resultsDirectory}gateway.json and gateway.md`);
}

await main();
