/**
 * A diagnostic path, not one of the three the targets are judged on: Sluice's skeleton. It is the
 * real node:http edge (`createNodeHandler`) and the same upstream call and stream reader as the
 * OpenAI-compatible adapter (`UndiciUpstreamClient`, its body's `batches()`), with the
 * model renamed in the events, but with none of the gateway's policy: no authentication, access
 * check, price, reservation, commit, timeouts, retries or events. Measured against Sluice
 * (`BENCH_BASELINE=skeleton` in focus-cell), it says what that policy costs per request; against
 * the minimal proxy, what the skeleton itself costs. Streaming chat only.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { GatewayError, UndiciUpstreamClient, createNodeHandler } from "@sluice/core";
import type { Gateway, GatewayReply, GatewayRequest } from "@sluice/core";
import { benchModelId } from "./bench-organization.js";
import { serveControl } from "./server-control.js";
import { keepAliveTimeoutMs, serverOptions, upstreamConnections, upstreamFromEnvironment, upstreamModel } from "./workload.js";

const upstream = upstreamFromEnvironment();
const client = new UndiciUpstreamClient({
  connections: upstreamConnections,
  connectTimeoutMs: 10_000,
  upstreamName: "the upstream",
  statusError: ({ status }) => new GatewayError("upstream_error", `The upstream answered ${status}.`),
  transportError: (error) => GatewayError.from(error),
});
const basePath = "/v1";
// The same rename the gateway makes: every `"model":"<upstream name>"` (and `""`) to the model id.
const upstreamName = /"model":(?:"fake-model"|"")/g;
const renamed = `"model":${JSON.stringify(benchModelId)}`;
// Experiments, with BENCH_COMPARE_ENV: SKELETON_KEEP_NAME=1 relays the events as the upstream named
// them; SKELETON_RAW=1 also forwards the request body unparsed and the answer's bytes unread (as
// latin1 text, with no SSE reader), leaving the edge and the upstream client alone.
// SKELETON_RAW_BODY=1 forwards only the request body unparsed, the answer still read as events.
const raw = process.env.SKELETON_RAW === "1";
const rawBody = process.env.SKELETON_RAW_BODY === "1";
const keepName = raw || rawBody || process.env.SKELETON_KEEP_NAME === "1";

/** The request's body: the node:http edge leaves it to be read, as the gateway does once it knows the caller. */
async function bodyOf(request: GatewayRequest): Promise<Buffer> {
  const bytes = request.body ?? (await request.readBody?.()) ?? new Uint8Array();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function upstreamBodyOf(bytes: Buffer): string {
  const body = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
  return JSON.stringify({ ...body, model: upstreamModel, stream: true, stream_options: { include_usage: true } });
}

async function handleRaw(request: GatewayRequest): Promise<GatewayReply> {
  const answer = await client.request({
    origin: upstream,
    path: "/v1/chat/completions",
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: (await bodyOf(request)).toString("latin1"),
    signal: request.signal,
  });
  async function* events(): AsyncGenerator<string, void, undefined> {
    for await (const chunk of answer.body) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1");
  }
  return {
    kind: "stream",
    status: 200,
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
    events: events(),
  };
}

async function handle(request: GatewayRequest): Promise<GatewayReply> {
  if (raw) return handleRaw(request);
  const bytes = await bodyOf(request);
  const answer = await client.request({
    origin: upstream,
    path: "/v1/chat/completions",
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: rawBody ? bytes.toString("latin1") : upstreamBodyOf(bytes),
    signal: request.signal,
  });
  const batches = answer.body.batches();
  async function* events(): AsyncGenerator<string, void, undefined> {
    let last = "";
    for await (const batch of batches) {
      const text = keepName ? batch.text : batch.text.replace(upstreamName, renamed);
      if (batch.ended) {
        last = text;
        break;
      }
      yield text;
    }
    yield `${last}data: [DONE]\n\n`;
  }
  return {
    kind: "stream",
    status: 200,
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
    events: events(),
  };
}

// The edge reads only these two members of a gateway.
const skeleton: Pick<Gateway, "handle" | "maxBodyBytes"> = { handle, maxBodyBytes: 1024 * 1024 };
const server = createServer(serverOptions, createNodeHandler(skeleton as Gateway, { basePath }));
server.keepAliveTimeout = keepAliveTimeoutMs;
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

const { port } = server.address() as AddressInfo;
serveControl({ origin: `http://127.0.0.1:${port}`, path: `${basePath}/chat/completions`, model: keepName ? upstreamModel : benchModelId, apiKey: null }, async () => {
  server.closeAllConnections();
  await Promise.all([new Promise((resolve) => server.close(resolve)), client.close()]);
});
