/**
 * What a session tunnel costs: the same streaming chat requests sent, in one run,
 *
 *   direct        client -> model server
 *   host tunnel   client -> gateway -> model server (the host-tunnel path: an undici Pool)
 *   reverse       client -> gateway -> hub ==HTTP/2 over one connection==> sluice-tunnel agent -> model server
 *
 * so "gateway" is host tunnel minus direct, and "reverse tunnel" is reverse minus host tunnel.
 * The model server (core's fake upstream) and the agent run as their own processes; the client
 * and the gateway share this one. Besides wall-clock figures, which a busy machine skews, it
 * reports CPU time per request, which it skews far less. Run with `npm run bench` (it builds
 * first). About 35 s.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { createHostTunnelDirectory, createMemoryTunnelTokenStore, createTunnelHub, createTunnelProviders } from "@sluice/adapter-tunnel";
import type { TunnelDirectory } from "@sluice/adapter-tunnel";
import { createGateway, createNodeHandler, createSecretBox } from "@sluice/core";
import { createMemoryStores } from "@sluice/store-memory";
import { Pool } from "undici";

const cli = fileURLToPath(new URL("../dist/bin/sluice-tunnel.js", import.meta.url));
const chunksPerReply = 16;
const sequentialRequests = 400;
const throughputSeconds = 4;
const concurrency = 64;
const bulkChunks = 100_000;

interface Target {
  name: string;
  origin: string;
  path: string;
  headers: Record<string, string>;
  model: string;
}

interface Measured {
  p50: number;
  p99: number;
  ttfbP50: number;
  requestsPerSecond: number;
  megabytesPerSecond: number;
  /** CPU time per request during the throughput phase: this process (client, gateway, hub), the agent's. */
  cpuMicrosPerRequest: number;
  agentCpuMicrosPerRequest: number | null;
}

/** A child's CPU time in ms from /proc (Linux; null elsewhere), at the usual 100 ticks per second. */
function childCpuMs(pid: number | undefined): number | null {
  if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return null;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const children: ChildProcess[] = [];

function startChild(args: string[], cwd?: string): { child: ChildProcess; line: Promise<string> } {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], cwd });
  children.push(child);
  let output = "";
  const line = new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      const end = output.indexOf("\n");
      if (end !== -1) resolve(output.slice(0, end));
    });
    child.once("exit", (code) => reject(new Error(`child exited (${code}) before it was ready`)));
  });
  // Only the model server's readiness is awaited; a later exit (killed at the end) is expected.
  line.catch(() => undefined);
  child.stderr!.resume();
  return { child, line };
}

/** The fake model server in its own process, quiet and without recording. */
async function startModelServer(): Promise<string> {
  const source = `
    import { startFakeUpstream } from "@sluice/core/testing";
    const upstream = await startFakeUpstream({ record: false, models: ["fake-model"] });
    console.log(upstream.url);
  `;
  const { line } = startChild(["--input-type=module", "-e", source], fileURLToPath(new URL("..", import.meta.url)));
  return line;
}

async function startGateway(directory: TunnelDirectory, hub?: ReturnType<typeof createTunnelHub>) {
  const stores = createMemoryStores({ secretBox: createSecretBox({ key: randomBytes(32) }) });
  await stores.permissions.upsertUser({ id: "alice" });
  const allocation = await stores.ledger.createAllocation({ name: "bench", owner: { type: "organization" }, limit: 1e15 });
  const { secret } = await stores.keys.create({ userId: "alice", name: "bench", allocationId: allocation.id });
  const tunnels = createTunnelProviders({ catalog: stores.catalog, directory });
  const gateway = createGateway({ stores, adapters: [tunnels.adapter] });
  const handler = createNodeHandler(gateway, { basePath: "/v1" });
  const server = createServer((request, response) => handler(request, response));
  hub?.attach(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    key: secret,
    stores,
    async close() {
      await tunnels.close();
      await directory.close();
      server.closeAllConnections();
      server.close();
      await gateway.close();
    },
  };
}

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

async function measure(target: Target, agentPid?: number): Promise<Measured> {
  const pool = new Pool(target.origin, { connections: concurrency * 2 });
  const body = (chunks: number) => JSON.stringify({ model: target.model, stream: true, messages: [{ role: "user", content: "Hi" }], fake: { chunks } });
  const small = body(chunksPerReply);
  const once = async (payload: string): Promise<{ total: number; ttfb: number; bytes: number }> => {
    const started = performance.now();
    const response = await pool.request({ path: target.path, method: "POST", headers: target.headers, body: payload });
    let ttfb = -1;
    let bytes = 0;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      if (ttfb < 0) ttfb = performance.now() - started;
      bytes += chunk.length;
    }
    if (response.statusCode !== 200) throw new Error(`${target.name}: HTTP ${response.statusCode}`);
    return { total: performance.now() - started, ttfb, bytes };
  };

  for (let index = 0; index < 200; index++) await once(small);
  const totals: number[] = [];
  const ttfbs: number[] = [];
  for (let index = 0; index < sequentialRequests; index++) {
    const { total, ttfb } = await once(small);
    totals.push(total);
    ttfbs.push(ttfb);
  }
  totals.sort((a, b) => a - b);
  ttfbs.sort((a, b) => a - b);

  let completed = 0;
  const deadline = performance.now() + throughputSeconds * 1_000;
  const throughputStart = performance.now();
  const cpuBefore = process.cpuUsage();
  const agentBefore = childCpuMs(agentPid);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await once(small);
        completed += 1;
      }
    }),
  );
  const requestsPerSecond = completed / ((performance.now() - throughputStart) / 1_000);
  const cpu = process.cpuUsage(cpuBefore);
  const agentAfter = childCpuMs(agentPid);
  const cpuMicrosPerRequest = (cpu.user + cpu.system) / completed;
  const agentCpuMicrosPerRequest = agentBefore === null || agentAfter === null ? null : ((agentAfter - agentBefore) * 1_000) / completed;

  const bulkStart = performance.now();
  const { bytes } = await once(body(bulkChunks));
  const megabytesPerSecond = bytes / 1e6 / ((performance.now() - bulkStart) / 1_000);
  await pool.close();
  return {
    p50: percentile(totals, 0.5),
    p99: percentile(totals, 0.99),
    ttfbP50: percentile(ttfbs, 0.5),
    requestsPerSecond,
    megabytesPerSecond,
    cpuMicrosPerRequest,
    agentCpuMicrosPerRequest,
  };
}

async function main(): Promise<void> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first (\`npm run bench\` at the root does).`);
  const modelServer = await startModelServer();

  const host = createHostTunnelDirectory();
  host.upsert({ id: "bench", userId: "alice", sessionId: "bench", name: "host", openai: true, status: "running", target: modelServer });
  const hostGateway = await startGateway(host);

  const hub = createTunnelHub({ tokens: createMemoryTunnelTokenStore() });
  const reverseGateway = await startGateway(hub, hub);
  const { secret } = await hub.createToken({ userId: "alice", name: "reverse" });
  const agent = startChild([cli, "--gateway", `${reverseGateway.origin}/sluice/tunnel`, "--token", secret, "--target", modelServer, "--quiet"]);
  const deadline = Date.now() + 10_000;
  while ((await reverseGateway.stores.catalog.list({ kind: "openai-tunnel" }))[0]?.status !== "running") {
    if (Date.now() > deadline) throw new Error("the agent did not connect within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  const json = { "content-type": "application/json" };
  const targets: Target[] = [
    { name: "direct", origin: modelServer, path: "/v1/chat/completions", headers: json, model: "fake-model" },
    {
      name: "host tunnel",
      origin: hostGateway.origin,
      path: "/v1/chat/completions",
      headers: { ...json, authorization: `Bearer ${hostGateway.key}` },
      model: "alice:host/fake-model",
    },
    {
      name: "reverse tunnel",
      origin: reverseGateway.origin,
      path: "/v1/chat/completions",
      headers: { ...json, authorization: `Bearer ${reverseGateway.key}` },
      model: "alice:reverse/fake-model",
    },
  ];

  const results = new Map<string, Measured>();
  for (const target of targets) {
    process.stdout.write(`measuring ${target.name}...\n`);
    results.set(target.name, await measure(target, target.name === "reverse tunnel" ? agent.child.pid : undefined));
  }

  const row = (cells: string[]) => cells.map((cell, index) => (index === 0 ? cell.padEnd(16) : cell.padStart(12))).join(" ");
  console.log(
    `\nStreaming chat, ${chunksPerReply} events per reply (Node ${process.version}); latency from ${sequentialRequests} sequential requests,` +
      `\nthroughput from ${concurrency} concurrent clients for ${throughputSeconds} s, bulk from one ${bulkChunks.toLocaleString("en")}-event stream.\n`,
  );
  console.log(row(["path", "p50 ms", "p99 ms", "TTFB p50 ms", "req/s", "bulk MB/s", "CPU µs/req", "agent µs/req"]));
  for (const [name, result] of results) {
    console.log(
      row([
        name,
        result.p50.toFixed(3),
        result.p99.toFixed(3),
        result.ttfbP50.toFixed(3),
        result.requestsPerSecond.toFixed(0),
        result.megabytesPerSecond.toFixed(1),
        result.cpuMicrosPerRequest.toFixed(0),
        result.agentCpuMicrosPerRequest === null ? "-" : result.agentCpuMicrosPerRequest.toFixed(0),
      ]),
    );
  }
  const direct = results.get("direct")!;
  const hostPath = results.get("host tunnel")!;
  const reverse = results.get("reverse tunnel")!;
  console.log(
    `\nAdded p50 latency: gateway ${(hostPath.p50 - direct.p50).toFixed(3)} ms; reverse tunnel on top ${(reverse.p50 - hostPath.p50).toFixed(3)} ms.` +
      `\nThroughput: reverse tunnel ${((reverse.requestsPerSecond / hostPath.requestsPerSecond) * 100).toFixed(0)}% of the gateway without it,` +
      ` ${((reverse.requestsPerSecond / direct.requestsPerSecond) * 100).toFixed(0)}% of direct.` +
      `\nCPU per request: gateway ${(hostPath.cpuMicrosPerRequest - direct.cpuMicrosPerRequest).toFixed(0)} µs; the reverse tunnel adds` +
      ` ${(reverse.cpuMicrosPerRequest - hostPath.cpuMicrosPerRequest).toFixed(0)} µs in the gateway process` +
      (reverse.agentCpuMicrosPerRequest === null ? "." : ` and ${reverse.agentCpuMicrosPerRequest.toFixed(0)} µs in the agent.`) +
      "\n(\"CPU µs/req\" is this process: the client, and for the tunnels the gateway and hub too.)",
  );

  await hostGateway.close();
  await reverseGateway.close();
}

try {
  await main();
} finally {
  for (const child of children) child.kill("SIGKILL");
}
