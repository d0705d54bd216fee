/**
 * Streams that do not end well, end to end: the client leaves, the upstream dies or reports an
 * error mid-stream, the upstream fails before the first byte (retry, relay, fallback). Whatever
 * happens, the request is settled: nothing stays reserved, and what was delivered is charged.
 */
import { createServer as createNetServer } from "node:net";
import type { AddressInfo } from "node:net";
import { once } from "node:events";
import { createServer as createHttpServer, request as httpRequest } from "node:http";
import type { IncomingMessage } from "node:http";
import { APIError, BadRequestError } from "openai";
import type { ChatCompletionChunk, ChatCompletionCreateParamsNonStreaming, ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { FakeControl } from "@sluice/core/testing";
import { fakePromptTokens, fakeReplyText } from "@sluice/core/testing";
import { bodyBytes, chatBody, countedOutputTokens, expectOpenAIError, postJson, price, sseData, startTestHost, upstreamModels } from "./test-host.js";
import type { TestHost } from "./test-host.js";

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let host: TestHost;
beforeAll(async () => {
  const deadPort = await closedPort();
  host = await startTestHost({
    organization(organization) {
      const live = (organization.providers[0]!.settings as { endpoint: string }).endpoint;
      organization.providers.push({
        owner: "alice",
        name: "fallback",
        kind: "openai-compatible",
        settings: {
          endpoint: `http://127.0.0.1:${deadPort}/v1/chat/completions`,
          fallbackEndpoints: [live],
          models: upstreamModels,
        },
        grants: [{ type: "group", groupId: "research" }],
      });
      organization.prices.push({ provider: "alice:fallback", model: "*", ...price });
    },
  });
});
afterAll(() => host.close());
beforeEach(() => host.upstream.reset());

const streaming = (fake: FakeControl, extra: Record<string, unknown> = {}) =>
  chatBody({ stream: true, ...extra }, fake) as unknown as ChatCompletionCreateParamsStreaming;
const nonStreaming = (fake: FakeControl, extra: Record<string, unknown> = {}) =>
  chatBody(extra, fake) as unknown as ChatCompletionCreateParamsNonStreaming;

function contentOf(chunk: ChatCompletionChunk): string {
  return chunk.choices[0]?.delta.content ?? "";
}

/** Checks the request left nothing reserved and returns its charge. */
async function settledCharge(requestId: string) {
  const end = await host.waitForEnd(requestId);
  expect((await host.allocation()).reserved).toBe(0);
  return { end, charge: await host.sluice.stores.ledger.getCharge(requestId) };
}

describe("the client goes away mid-stream", () => {
  const requested = 1_000;
  const body = streaming({ chunks: requested, intervalMs: 20 }, { max_tokens: requested });
  const worstCase = bodyBytes(body) + requested;

  // The first disconnect in a process runs cold code (compiled on first use) in client, gateway
  // and upstream, all in this one process: on a loaded machine that alone can cost tens of
  // milliseconds. One abandoned stream first, so the bound below measures the path, not the JIT.
  beforeAll(async () => {
    const { data: stream, response } = await host.client(host.keys.carol).chat.completions.create(body).withResponse();
    for await (const chunk of stream) {
      if (contentOf(chunk) !== "") break;
    }
    await host.waitForEnd(response.headers.get("x-request-id")!);
  });

  it("openai client abort: the upstream sees it within 100 ms, and only what was delivered is charged", async () => {
    const { data: stream, response } = await host.client(host.keys.carol).chat.completions.create(body).withResponse();
    let delivered = 0;
    let disconnectedAt = 0;
    for await (const chunk of stream) {
      if (contentOf(chunk) !== "") delivered++;
      if (delivered === 3) {
        disconnectedAt = Date.now();
        stream.controller.abort();
        break;
      }
    }
    const abortedAt = await host.upstream.waitForAbort(0, 5_000);
    expect(abortedAt - disconnectedAt).toBeLessThan(100);

    const { end, charge } = await settledCharge(response.headers.get("x-request-id")!);
    expect(end.outcome).toBe("client-disconnect");
    expect(charge).not.toBeNull();
    expect(charge!.outputTokens).toBeGreaterThanOrEqual(await countedOutputTokens(delivered));
    expect(charge!.outputTokens).toBeLessThanOrEqual(await countedOutputTokens(delivered + 3));
    expect(charge!.inputTokens).toBeGreaterThan(0);
    expect(charge!.cost).toBeGreaterThan(0);
    expect(charge!.cost).toBeLessThan(worstCase / 10);
  });

  it("raw socket destroyed: the same", async () => {
    const outgoing = httpRequest(`${host.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${host.keys.carol}` },
    });
    outgoing.end(JSON.stringify(body));
    const response = await new Promise<IncomingMessage>((resolve) => outgoing.once("response", resolve));
    expect(response.statusCode).toBe(200);
    let text = "";
    const disconnectedAt = await new Promise<number>((resolve) => {
      response.on("data", (chunk: Buffer) => {
        text += chunk.toString("utf8");
        if (text.split('"content":"').length - 1 >= 4) {
          const at = Date.now();
          outgoing.destroy();
          resolve(at);
        }
      });
    });
    // The role chunk has content "" and three content chunks followed.
    const delivered = sseData(text).filter((data) => /"content":"[^"]/.test(data)).length;
    expect(delivered).toBeGreaterThanOrEqual(3);
    const abortedAt = await host.upstream.waitForAbort(0, 5_000);
    expect(abortedAt - disconnectedAt).toBeLessThan(100);

    const { end, charge } = await settledCharge(String(response.headers["x-request-id"]));
    expect(end.outcome).toBe("client-disconnect");
    expect(charge!.outputTokens).toBeGreaterThanOrEqual(await countedOutputTokens(delivered));
    expect(charge!.outputTokens).toBeLessThanOrEqual(await countedOutputTokens(delivered + 3));
    expect(charge!.cost).toBeLessThan(worstCase / 10);
  });
});

describe("an edge that lets go of a stream before reading it", () => {
  it("still settles it: return() before the first piece releases the reservation and stops the upstream", async () => {
    const reply = await host.sluice.gateway.handle({
      method: "POST",
      path: "/chat/completions",
      headers: { get: (name) => ({ "content-type": "application/json", authorization: `Bearer ${host.keys.carol}` })[name] },
      body: Buffer.from(JSON.stringify(streaming({ chunks: 1_000, intervalMs: 20 }))),
      signal: new AbortController().signal,
      raw: null,
    });
    expect(reply.kind).toBe("stream");
    if (reply.kind !== "stream") return;
    // An async generator's return() before its first next() would skip its body, settling included.
    await reply.events.return(undefined);
    const requestId = reply.headers["x-request-id"]!;
    await host.upstream.waitForAbort(0, 2_000);
    const { end } = await settledCharge(requestId);
    expect(end.outcome).toBe("client-disconnect");
  });
});

describe("the upstream fails mid-stream", () => {
  it("dies after 3 chunks: the client gets an OpenAI-shaped error event and no [DONE]; the 3 chunks are charged", async () => {
    const { data: stream, response } = await host
      .client(host.keys.carol)
      .chat.completions.create(streaming({ chunks: 8, failAfterChunks: 3, intervalMs: 1 }))
      .withResponse();
    let text = "";
    const thrown = await (async () => {
      for await (const chunk of stream) text += contentOf(chunk);
    })().catch((error: unknown) => error);
    expect(thrown).toBeInstanceOf(APIError);
    expect((thrown as APIError).code).toBe("upstream_error");
    expect(text).toBe(fakeReplyText(3));
    const { end, charge } = await settledCharge(response.headers.get("x-request-id")!);
    expect(end.outcome).toBe("upstream-error");
    expect(charge).toMatchObject({ outputTokens: await countedOutputTokens(3) });

    // The same on the wire: the error is the last event, and there is no [DONE].
    const raw = await postJson(host, "/chat/completions", chatBody({ stream: true }, { chunks: 8, failAfterChunks: 3, intervalMs: 1 }), host.keys.carol);
    expect(raw.status).toBe(200);
    const events = sseData(raw.text);
    expect(events).not.toContain("[DONE]");
    expect(expectOpenAIError(events.at(-1)!)).toMatchObject({ type: "server_error", code: "upstream_error" });
    expect(events.filter((data) => /"content":"[^"]/.test(data))).toHaveLength(3);
  });

  it("sends an in-stream error event after 3 chunks: relayed as an error event, no [DONE], 3 chunks charged", async () => {
    const { data: stream, response } = await host
      .client(host.keys.carol)
      .chat.completions.create(streaming({ chunks: 8, errorEventAfterChunks: 3 }))
      .withResponse();
    let text = "";
    const thrown = await (async () => {
      for await (const chunk of stream) text += contentOf(chunk);
    })().catch((error: unknown) => error);
    expect(thrown).toBeInstanceOf(APIError);
    expect(text).toBe(fakeReplyText(3));
    const { charge } = await settledCharge(response.headers.get("x-request-id")!);
    expect(charge).toMatchObject({ outputTokens: await countedOutputTokens(3) });

    const raw = await postJson(host, "/chat/completions", chatBody({ stream: true }, { chunks: 8, errorEventAfterChunks: 3 }), host.keys.carol);
    const events = sseData(raw.text);
    expect(events).not.toContain("[DONE]");
    expectOpenAIError(events.at(-1)!);
  });
});

describe("the upstream fails before the first byte", () => {
  it("retries a 503 transparently (same fake.key): the client sees 200, one charge", async () => {
    const { data: stream, response } = await host
      .client(host.keys.carol)
      .chat.completions.create(streaming({ status: 503, failTimes: 1, key: "retry-503" }))
      .withResponse();
    let text = "";
    for await (const chunk of stream) text += contentOf(chunk);
    expect(response.status).toBe(200);
    expect(text).toBe(fakeReplyText(8));
    expect(host.upstream.requests.map((record) => record.status)).toEqual([503, 200]);
    const { charge } = await settledCharge(response.headers.get("x-request-id")!);
    expect(charge).toMatchObject({ outputTokens: 8 });
  });

  it("honours retry-after-ms on a 429 before retrying", async () => {
    const completion = await host
      .client(host.keys.carol)
      .chat.completions.create(nonStreaming({ status: 429, failTimes: 1, key: "retry-429", retryAfterMs: 300 }));
    expect(completion.choices[0]?.message.content).toBe(fakeReplyText(8));
    const [first, second] = host.upstream.requests;
    expect([first?.status, second?.status]).toEqual([429, 200]);
    // The gateway's own backoff here is 5 ms: only the header explains the wait.
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(295);
  });

  it("relays an upstream 400 as 400 and does not retry it", async () => {
    const error = await host
      .client(host.keys.carol)
      .chat.completions.create(streaming({ status: 400 }))
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BadRequestError);
    expect(host.upstream.requests).toHaveLength(1);

    const raw = await postJson(host, "/chat/completions", chatBody({}, { status: 400 }), host.keys.carol);
    expect(raw.status).toBe(400);
    expectOpenAIError(raw.text);
    expect(host.upstream.requests).toHaveLength(2);
    expect((await host.allocation()).reserved).toBe(0);
  });

  it("falls back from a dead primary endpoint to a live fallback endpoint", async () => {
    const client = host.client(host.keys.carol);
    const model = "alice:fallback/fake-chat";
    const { data: stream, response } = await client.chat.completions
      .create({ model, messages: [{ role: "user", content: "Say hello to the gateway." }], stream: true })
      .withResponse();
    let text = "";
    for await (const chunk of stream) {
      expect(chunk.model).toBe(model);
      text += contentOf(chunk);
    }
    expect(text).toBe(fakeReplyText(8));
    expect(host.upstream.requests.filter((record) => record.path === "/v1/chat/completions")).toHaveLength(1);
    const { charge } = await settledCharge(response.headers.get("x-request-id")!);
    expect(charge).toMatchObject({ model, outputTokens: 8, inputTokens: fakePromptTokens({ messages: [{ content: "Say hello to the gateway." }] }) });
  });
});

describe("an endpoint that redirects", () => {
  it("is tried once, not retried, and the fallback endpoint serves; the redirect is not followed", async () => {
    let redirected = 0;
    const moved = createHttpServer((request, response) => {
      redirected++;
      request.resume();
      response.writeHead(301, { location: "https://elsewhere.invalid/v1/chat/completions" }).end();
    });
    moved.listen(0, "127.0.0.1");
    await once(moved, "listening");
    const movedHost = await startTestHost({
      gateway: { retry: { attemptsPerDeployment: 3 } },
      organization(organization) {
        const live = (organization.providers[0]!.settings as { endpoint: string }).endpoint;
        const endpoint = `http://127.0.0.1:${(moved.address() as AddressInfo).port}/v1/chat/completions`;
        organization.providers.push({ owner: "alice", name: "moved", kind: "openai-compatible", settings: { endpoint, fallbackEndpoints: [live], models: upstreamModels }, grants: [{ type: "group", groupId: "research" }] });
        organization.prices.push({ provider: "alice:moved", model: "*", ...price });
      },
    });
    try {
      const reply = await postJson(movedHost, "/chat/completions", { ...chatBody({}), model: "alice:moved/fake-chat" }, movedHost.keys.carol);
      expect(reply.status).toBe(200);
      expect(redirected).toBe(1);
      expect(movedHost.upstream.requests).toHaveLength(1);
    } finally {
      await movedHost.close();
      moved.closeAllConnections();
      await new Promise((resolve) => moved.close(resolve));
    }
  });
});

describe("an upstream that ignores stream: true", () => {
  it("answers with its whole completion, which the client receives as a stream, charged once from its usage", async () => {
    const { data: stream, response } = await host
      .client(host.keys.carol)
      .chat.completions.create(streaming({ ignoreStream: true, chunks: 5 }))
      .withResponse();
    let text = "";
    const objects = new Set<string>();
    for await (const chunk of stream) {
      text += contentOf(chunk);
      objects.add(chunk.object);
    }
    expect(text).toBe(fakeReplyText(5));
    expect([...objects]).toEqual(["chat.completion.chunk"]);
    expect(host.upstream.requests).toHaveLength(1);
    const { end, charge } = await settledCharge(response.headers.get("x-request-id")!);
    expect(end.outcome).toBe("completed");
    expect(charge).toMatchObject({ outputTokens: 5 });
  });
});

describe("an upstream that answers 200 with no event at all", () => {
  it("is an upstream error before the first byte, not an empty finished stream; nothing is charged", async () => {
    // A server that gives up at once: its event stream holds nothing but [DONE].
    const empty = createHttpServer((request, response) => {
      request.resume();
      request.on("end", () => {
        response.writeHead(200, { "content-type": "text/event-stream" });
        response.end("data: [DONE]\n\n");
      });
    });
    empty.listen(0, "127.0.0.1");
    await once(empty, "listening");
    const emptyHost = await startTestHost({
      organization(organization) {
        const endpoint = `http://127.0.0.1:${(empty.address() as AddressInfo).port}/v1/chat/completions`;
        organization.providers.push({ owner: "alice", name: "empty", kind: "openai-compatible", settings: { endpoint, models: upstreamModels }, grants: [{ type: "group", groupId: "research" }] });
        organization.prices.push({ provider: "alice:empty", model: "*", ...price });
      },
    });
    try {
      const reply = await postJson(emptyHost, "/chat/completions", { ...chatBody({ stream: true }), model: "alice:empty/fake-chat" }, emptyHost.keys.carol);
      expect(reply.status).toBe(502);
      expect(expectOpenAIError(reply.text).message).toMatch(/without sending any event/);
      const requestId = String(reply.headers["x-request-id"]);
      await emptyHost.waitForEnd(requestId);
      expect((await emptyHost.allocation()).reserved).toBe(0);
      expect(await emptyHost.sluice.stores.ledger.getCharge(requestId)).toBeNull();
    } finally {
      await emptyHost.close();
      empty.closeAllConnections();
      await new Promise((resolve) => empty.close(resolve));
    }
  });
});
