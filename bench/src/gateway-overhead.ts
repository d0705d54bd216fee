/**
 * The gateway's own work per request, with no network: `gateway.handle` and the whole reply,
 * in one process, against a provider that answers from memory with bytes the fake upstream sent.
 * The loopback benches measure Sluice against a proxy on two shared CPUs, where one cell of one
 * run is good to about ±0.15; this measures what the gateway itself spends on a request to a
 * few microseconds (medians of separate runs agree within about 10%), so a change to the request
 * path can be judged before a full run.
 *
 *   node dist/gateway-overhead.js [streaming|non-streaming] [concurrency] [requests] [rounds]
 *
 * It prints the CPU per request of each round, and their median; with BENCH_ALLOCATIONS=1 (and
 * BENCH_ALLOCATION_FRAMES), also the heap allocated per request, and where. What it
 * leaves out (sockets, HTTP parsing, undici) is the same in the proxy and in Sluice.
 */
import { randomBytes } from "node:crypto";
import {
  applyOrganizationConfig,
  createEventBus,
  createGateway,
  createPriceBook,
  createSecretBox,
  pulledSseBatches,
} from "@sluice/core";
import type { Deployment, GatewayReply, Provider, ProviderAdapter, ProviderCall, PulledBody } from "@sluice/core";
import { startFakeUpstream } from "@sluice/core/testing";
import { createMemoryStores } from "@sluice/store-memory";
import { Pool } from "undici";
import { benchModelId, benchOrganization } from "./bench-organization.js";
import { allocations } from "./server-control.js";
import { chatRequestBody, upstreamModel } from "./workload.js";

const mode = process.argv[2] === "non-streaming" ? "non-streaming" : "streaming";
const concurrency = Number(process.argv[3] ?? 32);
const requestsPerRound = Number(process.argv[4] ?? 20_000);
const rounds = Number(process.argv[5] ?? 7);

/** The fake upstream's answers, captured once over loopback: what the adapter would read. */
async function captureAnswers(): Promise<{ stream: Buffer; json: Buffer }> {
  const upstream = await startFakeUpstream({ record: false, models: [upstreamModel] });
  const pool = new Pool(upstream.url);
  const answer = async (stream: boolean) => {
    const response = await pool.request({
      path: "/v1/chat/completions",
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chatRequestBody({ model: upstreamModel, stream }),
    });
    return Buffer.from(await response.body.arrayBuffer());
  };
  const captured = { stream: await answer(true), json: await answer(false) };
  await pool.close();
  await upstream.close();
  return captured;
}

const answers = await captureAnswers();

/** The whole stream, arrived at once: the adapter's undici body as the reader sees it, without the socket. */
class MemoryBody implements PulledBody {
  state: "open" | "ended" | "failed" = "ended";
  readonly failure = undefined;
  #chunk: Uint8Array | null;

  constructor(chunk: Uint8Array) {
    this.#chunk = chunk;
  }

  read(): Uint8Array | null {
    const chunk = this.#chunk;
    this.#chunk = null;
    return chunk;
  }

  listen(): void {}

  release(): void {
    this.#chunk = null;
  }
}

/**
 * A deployment that answers from memory, doing what the real adapter does around its HTTP call:
 * serialize the body, read the answer (the stream through the same reader as its undici body).
 */
class MemoryDeployment implements Deployment {
  readonly id = "memory/fake-model";
  readonly model = upstreamModel;

  async chatCompletion(call: ProviderCall) {
    JSON.stringify(call.body);
    const text = answers.json.toString("utf8");
    const body = JSON.parse(text) as Record<string, unknown>;
    const usage = body.usage as { prompt_tokens: number; completion_tokens: number };
    return {
      status: 200,
      headers: {},
      body,
      usage: { inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens, source: "upstream" as const },
      text,
    };
  }

  async streamChatCompletion(call: ProviderCall) {
    JSON.stringify(call.body);
    return { status: 200, headers: {}, batches: pulledSseBatches(new MemoryBody(answers.stream), call.signal) };
  }

  embeddings(): never {
    throw new Error("not benchmarked");
  }
}

const memoryAdapter: ProviderAdapter = {
  kind: "openai-compatible",
  create: ({ record }): Provider => {
    const deployment = new MemoryDeployment();
    return {
      record,
      listModels: async () => [{ id: upstreamModel }],
      deployments: (model) => (model === upstreamModel ? [deployment] : []),
      health: async () => ({ status: "reachable", reason: null, checkedAt: Date.now() }),
    };
  },
};

// The provider's endpoint is never called: the memory adapter answers in its place.
const organization = benchOrganization("http://127.0.0.1:9");

const events = createEventBus();
const stores = createMemoryStores({ secretBox: createSecretBox({ key: randomBytes(32) }), events });
const applied = await applyOrganizationConfig({ stores, config: organization });
const gateway = createGateway({ stores, adapters: [memoryAdapter], prices: createPriceBook({ prices: applied.prices }), events });
const secret = applied.createdKeys[0]!.secret;

const requestHeaders: Record<string, string> = {
  authorization: `Bearer ${secret}`,
  "content-type": "application/json",
  host: "127.0.0.1",
};
const headers = { get: (name: string) => requestHeaders[name] };
const body = Buffer.from(chatRequestBody({ model: benchModelId, stream: mode === "streaming" }));
const neverAborts = new AbortController().signal;

let delivered = 0;

async function oneRequest(): Promise<void> {
  // The edge copies the body it reads off the socket; so does this.
  const reply: GatewayReply = await gateway.handle({
    method: "POST",
    path: "/chat/completions",
    headers,
    body: Buffer.from(body),
    signal: neverAborts,
    raw: null,
  });
  if (reply.kind === "json") {
    if (reply.status !== 200) throw new Error(`status ${reply.status}: ${reply.body}`);
    delivered += Buffer.byteLength(reply.body);
    await reply.settled;
    return;
  }
  for await (const text of reply.events) delivered += Buffer.byteLength(text);
}

async function round(requests: number): Promise<number> {
  let left = requests;
  const worker = async () => {
    while (left > 0) {
      left -= 1;
      await oneRequest();
    }
  };
  const before = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cpu = process.cpuUsage(before);
  return (cpu.user + cpu.system) / requests;
}

await round(Math.min(requestsPerRound, 5_000));
const figures: number[] = [];
for (let index = 0; index < rounds; index++) {
  const cpuMicros = await round(requestsPerRound);
  figures.push(cpuMicros);
  console.log(`[${index + 1}/${rounds}] ${mode} c=${concurrency}: ${cpuMicros.toFixed(1)} µs of CPU per request`);
}
if (process.env.BENCH_ALLOCATIONS === "1") {
  await allocations("start");
  await round(requestsPerRound);
  const sample = await allocations("stop");
  console.log(`heap allocated per request: ${(sample.bytes / requestsPerRound / 1024).toFixed(1)} KiB; largest sites:`);
  for (const { site, bytes } of sample.sites) console.log(`  ${(bytes / requestsPerRound).toFixed(0).padStart(6)} B  ${site}`);
}
figures.sort((a, b) => a - b);
console.log(`median ${figures[Math.floor(figures.length / 2)]!.toFixed(1)} µs, best ${figures[0]!.toFixed(1)} µs per request (${delivered} bytes delivered)`);
await gateway.close();
await stores.close();
