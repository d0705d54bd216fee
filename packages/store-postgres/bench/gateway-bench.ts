import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Pool } from "undici";
import type { GatewayServerMessage, GatewayServerSettings } from "./gateway-server.js";
import { summarizeLatencies } from "./latency-summary.js";
import type { LatencySummary } from "./latency-summary.js";

export interface GatewayCell {
  store: "memory" | "postgres";
  round: number;
  requests: number;
  errors: number;
  requestsPerSecond: number;
  latency: LatencySummary;
  /** CPU time of the gateway's process per request, in µs (the database server's is not counted). */
  gatewayCpuMicros: number;
}

interface Started {
  child: ChildProcess;
  message: Extract<GatewayServerMessage, { type: "listening" }> | { type: "listening"; url: string };
}

/**
 * Non-streaming chat completions through the gateway, as a child process per store, against the
 * fake upstream (a child process too), from this process with an undici Pool of `connections`
 * keep-alive connections, each sending its next request once the previous answer is read. The
 * stores alternate for `rounds` rounds, so a drift of the machine's speed hits both alike.
 */
export async function benchGateway(input: {
  databaseUrl: string;
  connections: number;
  warmupMs: number;
  durationMs: number;
  rounds: number;
}): Promise<GatewayCell[]> {
  const children: ChildProcess[] = [];
  try {
    const upstream = await start("upstream-server.js", {});
    children.push(upstream.child);
    const upstreamUrl = (upstream.message as { url: string }).url;
    const servers = {} as Record<GatewayCell["store"], Started>;
    for (const store of ["memory", "postgres"] as const) {
      const settings: GatewayServerSettings = { store, upstreamUrl, ...(store === "postgres" ? { databaseUrl: input.databaseUrl } : {}) };
      servers[store] = await start("gateway-server.js", { BENCH_GATEWAY: JSON.stringify(settings) });
      children.push(servers[store].child);
    }
    const cells: GatewayCell[] = [];
    for (let round = 1; round <= input.rounds; round++) {
      for (const store of ["memory", "postgres"] as const) {
        cells.push({ store, round, ...(await measure(servers[store], input)) });
      }
    }
    return cells;
  } finally {
    await Promise.all(children.map((child) => stop(child)));
  }
}

async function measure(
  server: Started,
  input: { connections: number; warmupMs: number; durationMs: number },
): Promise<Omit<GatewayCell, "store" | "round">> {
  const listening = server.message as Extract<GatewayServerMessage, { type: "listening" }>;
  const pool = new Pool(`http://127.0.0.1:${listening.port}`, {
    connections: input.connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 60_000,
  });
  const body = JSON.stringify({ model: listening.model, max_tokens: 64, messages: [{ role: "user", content: "Say hello." }] });
  const headers = { authorization: `Bearer ${listening.apiKey}`, "content-type": "application/json" };
  const startedAt = performance.now();
  const measureFrom = startedAt + input.warmupMs;
  const stopAt = measureFrom + input.durationMs;
  const latencies: number[] = [];
  let errors = 0;
  let lastEnd = measureFrom;
  let cpuAtStart: Promise<number> | null = null;

  const worker = async (): Promise<void> => {
    for (;;) {
      const start = performance.now();
      if (start >= stopAt) return;
      if (start >= measureFrom) cpuAtStart ??= cpuOf(server.child);
      let ok: boolean;
      try {
        const response = await pool.request({ path: "/v1/chat/completions", method: "POST", headers, body });
        await response.body.dump();
        ok = response.statusCode === 200;
      } catch {
        ok = false;
      }
      const end = performance.now();
      if (start < measureFrom) continue;
      lastEnd = Math.max(lastEnd, end);
      if (ok) latencies.push(end - start);
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: input.connections }, worker));
  const cpuUsed = (await cpuOf(server.child)) - (await (cpuAtStart ?? Promise.resolve(0)));
  await pool.close();
  const elapsedMs = lastEnd - measureFrom;
  return {
    requests: latencies.length,
    errors,
    requestsPerSecond: elapsedMs > 0 ? (latencies.length * 1000) / elapsedMs : 0,
    latency: summarizeLatencies(latencies),
    gatewayCpuMicros: latencies.length > 0 ? cpuUsed / latencies.length : 0,
  };
}

function start(script: string, environment: NodeJS.ProcessEnv): Promise<Started> {
  const child = fork(fileURLToPath(new URL(`./${script}`, import.meta.url)), [], {
    env: { ...process.env, ...environment },
    execArgv: [],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`${script} exited with ${code} before listening`));
    child.once("exit", onExit);
    child.once("message", (message: Started["message"]) => {
      child.off("exit", onExit);
      resolve({ child, message });
    });
  });
}

function cpuOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const onMessage = (message: GatewayServerMessage) => {
      if (message.type !== "cpu") return;
      child.off("message", onMessage);
      resolve(message.micros);
    };
    child.on("message", onMessage);
    child.send({ type: "cpu" });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const force = setTimeout(() => child.kill("SIGKILL"), 5_000);
  child.send({ type: "stop" });
  await exited;
  clearTimeout(force);
}
