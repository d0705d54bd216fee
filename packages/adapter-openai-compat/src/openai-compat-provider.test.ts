import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createManualClock, GatewayError, parseInput } from "@sluice/core";
import type { Provider } from "@sluice/core";
import { startFakeUpstream } from "@sluice/core/testing";
import type { FakeUpstream } from "@sluice/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import type { OpenAICompatDeployment } from "./endpoint-deployment.js";
import { createOpenAICompatAdapter } from "./openai-compat-adapter.js";
import { openAICompatSettingsSchema } from "./openai-compat-settings.js";
import { chatCall, collect, providerRecord, startTestProvider, streamCall } from "./test-support.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function upstreamFor(options: Parameters<typeof startFakeUpstream>[0] = {}): Promise<FakeUpstream> {
  const upstream = await startFakeUpstream(options);
  cleanups.push(() => upstream.close());
  return upstream;
}

function providerFor(settings: Record<string, unknown>, options: { secrets?: Record<string, string>; adapter?: Parameters<typeof createOpenAICompatAdapter>[0] } = {}): Provider {
  const provider = createOpenAICompatAdapter(options.adapter).create({ record: providerRecord(settings), secrets: options.secrets ?? {} });
  cleanups.push(async () => provider.close?.());
  return provider;
}

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  const error: unknown = await promise.then(
    () => new Error("expected a rejection"),
    (thrown: unknown) => thrown,
  );
  if (!GatewayError.is(error)) throw new Error(`expected a GatewayError, got ${String(error)}`);
  return error;
}

/** A hand-written upstream for shapes the fake does not produce; counts its connections. */
async function startServer(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  const server: Server = createServer({ keepAlive: true }, handler);
  server.on("connection", () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
}

describe("settings", () => {
  it("refuses a non-URL endpoint with a 400 naming `endpoint`", () => {
    let thrown: unknown;
    try {
      parseInput(openAICompatSettingsSchema, { endpoint: "not a url" }, "settings");
    } catch (error) {
      thrown = error;
    }
    expect(GatewayError.is(thrown)).toBe(true);
    expect((thrown as GatewayError).status).toBe(400);
    expect((thrown as GatewayError).param).toBe("endpoint");
    expect((thrown as GatewayError).message).toBe("Invalid settings: 'endpoint' must be an absolute http(s) URL");
  });

  it("refuses bad settings when the adapter creates the provider, naming the field", () => {
    const create = (settings: Record<string, unknown>) => () => createOpenAICompatAdapter().create({ record: providerRecord(settings), secrets: {} });
    const paramOf = (run: () => unknown): string | null => {
      try {
        run();
      } catch (error) {
        return GatewayError.is(error) ? error.param : "not a GatewayError";
      }
      return "no error";
    };
    expect(paramOf(create({}))).toBe("endpoint");
    expect(paramOf(create({ endpoint: "ftp://host/v1" }))).toBe("endpoint");
    expect(paramOf(create({ endpoint: "http://host:8000/api" }))).toBe("endpoint");
    expect(paramOf(create({ endpoint: "http://user:pw@host/v1" }))).toBe("endpoint");
    expect(paramOf(create({ endpoint: "http://host/v1", fallbackEndpoints: ["nope"] }))).toBe("fallbackEndpoints[0]");
    expect(paramOf(create({ endpoint: "http://host/v1", headers: { Authorization: "Bearer x" } }))).toBe("headers.Authorization");
    expect(paramOf(create({ endpoint: "http://host/v1", headers: { "x-a": "one\r\ntwo" } }))).toBe("headers.x-a");
    expect(paramOf(create({ endpoint: "http://host/v1", models: [""] }))).toBe("models[0]");
    expect(paramOf(create({ endpoint: "http://host/v1", quirks: { dropStreamOption: true } }))).toBe("quirks.dropStreamOption");
    expect(paramOf(create({ endpoint: "http://host/v1", extra: 1 }))).toBe("extra");
    expect(paramOf(create({ endpoint: "http://host/v1/chat/completions" }))).toBe("no error");
  });
});

describe("requests", () => {
  it("sends the API key as Bearer, the settings headers and the request id", async () => {
    const upstream = await upstreamFor({ apiKey: "sk-upstream" });
    const provider = providerFor(
      { endpoint: upstream.chatCompletionsUrl, headers: { "X-Team": "lab", "OpenAI-Organization": "org-1" } },
      { secrets: { apiKey: "sk-upstream" } },
    );
    const response = await provider.deployments("fake-model")[0]!.chatCompletion(chatCall({}));
    expect(response.status).toBe(200);
    const headers = upstream.requests[0]!.headers;
    expect(headers.authorization).toBe("Bearer sk-upstream");
    expect(headers["x-team"]).toBe("lab");
    expect(headers["openai-organization"]).toBe("org-1");
    expect(headers["x-request-id"]).toMatch(/^req_test_/);
    expect(headers["content-type"]).toBe("application/json");
  });

  it("sends no authorization without a key", async () => {
    const upstream = await upstreamFor();
    const provider = providerFor({ endpoint: upstream.chatCompletionsUrl });
    await provider.deployments("fake-model")[0]!.chatCompletion(chatCall({}));
    expect(upstream.requests[0]!.headers.authorization).toBeUndefined();
  });

  it("passes the body through, unknown fields included, with the deployment's model", async () => {
    const upstream = await upstreamFor();
    const provider = providerFor({ endpoint: upstream.chatCompletionsUrl });
    const body = { tools: [{ type: "function", function: { name: "f", parameters: {} } }], vendor_extension: { a: 1 } };
    await provider.deployments("fake-model")[0]!.chatCompletion(chatCall(body));
    expect(upstream.requests[0]!.body).toMatchObject({ ...body, model: "fake-model" });
  });

  it("sends the gateway's output cap as max_tokens, streamed or not, unless the body has a cap", async () => {
    const upstream = await upstreamFor();
    const deployment = providerFor({ endpoint: upstream.chatCompletionsUrl }).deployments("fake-model")[0]!;
    await deployment.chatCompletion({ ...chatCall({}), outputCap: 64 });
    await collect((await deployment.streamChatCompletion({ ...streamCall({}), outputCap: 64 })).batches);
    await deployment.chatCompletion({ ...chatCall({ max_completion_tokens: 9 }), outputCap: 64 });
    expect(upstream.requests.map((request) => (request.body as Record<string, unknown>).max_tokens)).toEqual([64, 64, undefined]);
    expect(upstream.requests[2]!.body).toMatchObject({ max_completion_tokens: 9 });
  });

  it("derives every route from a base URL ending in /v1", async () => {
    const upstream = await upstreamFor();
    const provider = providerFor({ endpoint: `${upstream.url}/v1/` });
    const deployment = provider.deployments("fake-model")[0]! as OpenAICompatDeployment;
    await deployment.chatCompletion(chatCall({}));
    await deployment.embeddings(chatCall({ messages: undefined, input: "hello" }));
    const completion = await deployment.completions(chatCall({ messages: undefined, prompt: "Once", fake: { chunks: 2 } }));
    expect(completion.body).toMatchObject({ object: "text_completion" });
    expect(completion.usage).toMatchObject({ outputTokens: 2 });
    expect(await provider.listModels()).toEqual([{ id: "fake-model", created: 1700000000, ownedBy: "openai" }]);
    expect(upstream.requests.map((request) => `${request.method} ${request.path}`)).toEqual([
      "POST /v1/chat/completions",
      "POST /v1/embeddings",
      "POST /v1/completions",
      "GET /v1/models",
    ]);
  });

  it("streams legacy completions through streamCompletions, and answers them whole through completions", async () => {
    const upstream = await upstreamFor();
    const provider = providerFor({ endpoint: upstream.chatCompletionsUrl });
    const deployment = provider.deployments("fake-model")[0]! as OpenAICompatDeployment;
    const body = { messages: undefined, prompt: "Once", stream: true, stream_options: { include_usage: true }, fake: { chunks: 3 } };
    const events = await collect((await deployment.streamCompletions(chatCall(body))).batches);
    expect(events.at(-1)).toMatchObject({ usageOnly: true, usage: { outputTokens: 3 } });
    const whole = await deployment.completions(chatCall({ prompt: "Once", fake: { chunks: 3 } }));
    expect(whole.usage).toMatchObject({ outputTokens: 3 });
    expect(upstream.requests.map((request) => [request.path, request.stream])).toEqual([
      ["/v1/completions", true],
      ["/v1/completions", false],
    ]);
  });

  it("keeps the query string of the endpoint on every route", async () => {
    const upstream = await upstreamFor();
    const provider = providerFor({ endpoint: `${upstream.chatCompletionsUrl}?api-version=1` });
    await provider.deployments("fake-model")[0]!.chatCompletion(chatCall({}));
    await provider.listModels();
    expect(upstream.requests.map((request) => request.url)).toEqual(["/v1/chat/completions?api-version=1", "/v1/models?api-version=1"]);
  });

  it("reports null usage when the answer has none", async () => {
    const server = await startServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/json", "x-request-id": "req_up_1", "x-other": "no" });
      response.end(JSON.stringify({ id: "x", object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: "hi" } }] }));
    });
    const provider = providerFor({ endpoint: `${server.url}/v1` });
    const response = await provider.deployments("m")[0]!.chatCompletion(chatCall({}));
    expect(response.usage).toBeNull();
    expect(response.headers).toEqual({ "x-request-id": "req_up_1" });
  });

  it("relays a whole JSON answer to a streaming request as a stream, usage and tool calls included", async () => {
    const upstream = await upstreamFor();
    const provider = providerFor({ endpoint: upstream.chatCompletionsUrl });
    const stream = await provider.deployments("fake-model")[0]!.streamChatCompletion(streamCall({ fake: { ignoreStream: true, toolCalls: true } }));
    const events = await collect(stream.batches);
    expect(events).toHaveLength(2);
    const chunk = JSON.parse(events[0]!.data) as { object: string; choices: Array<{ delta: { tool_calls: Array<{ index: number; function: { name: string } }> }; finish_reason: string }> };
    expect(chunk.object).toBe("chat.completion.chunk");
    expect(chunk.choices[0]!.finish_reason).toBe("tool_calls");
    expect(chunk.choices[0]!.delta.tool_calls.map((call) => call.index)).toEqual([0, 1]);
    expect(events[1]).toMatchObject({ usageOnly: true, usage: { source: "upstream" } });
    expect(upstream.requests).toHaveLength(1);
  });

  it("rejects a streaming request answered with JSON", async () => {
    const server = await startServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: { message: "model is loading", type: "server_error" } }));
    });
    const provider = providerFor({ endpoint: `${server.url}/v1` });
    const error = await rejection(provider.deployments("m")[0]!.streamChatCompletion(streamCall({})));
    expect(error.status).toBe(502);
    expect(error.message).toBe("The upstream reported an error: model is loading");
  });

  it("rejects a streaming request answered with an HTML page (a login wall, a web app at the URL)", async () => {
    const server = await startServer((_request, response) => {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      response.end("<!doctype html><title>Sign in</title>");
    });
    const provider = providerFor({ endpoint: `${server.url}/v1` });
    const error = await rejection(provider.deployments("m")[0]!.streamChatCompletion(streamCall({})));
    expect(error.status).toBe(502);
    expect(error.message).toMatch(/HTML page instead of an event stream/);
  });

  it("asks again without stream_options when the server refuses it, and does not send it again", async () => {
    const sent: Array<Record<string, unknown>> = [];
    const server = await startServer((request, response) => {
      let text = "";
      request.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
      request.on("end", () => {
        const body = JSON.parse(text) as Record<string, unknown>;
        sent.push(body);
        if (body.stream_options !== undefined) {
          // OpenAI's wording, as strict servers and old Azure API versions answer (wire-formats §3.3).
          response.writeHead(400, { "content-type": "application/json" });
          response.end(JSON.stringify({ error: { message: "Unknown parameter: 'stream_options'.", type: "invalid_request_error", param: "stream_options", code: "unknown_parameter" } }));
          return;
        }
        response.writeHead(200, { "content-type": "text/event-stream" });
        response.end('data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n');
      });
    });
    const deployment = providerFor({ endpoint: `${server.url}/v1` }).deployments("m")[0]!;
    for (let attempt = 0; attempt < 2; attempt++) {
      const events = await collect((await deployment.streamChatCompletion(streamCall({}))).batches);
      expect(events.map((event) => event.data)).toEqual(['{"choices":[{"index":0,"delta":{"content":"hi"}}]}']);
    }
    // Refused once, then never sent: three requests for two streams.
    expect(sent.map((body) => body.stream_options !== undefined)).toEqual([true, false, false]);
  });

  it("relays any other 400 as the client's error, without asking again", async () => {
    let requests = 0;
    const server = await startServer((request, response) => {
      requests++;
      request.resume();
      request.on("end", () => {
        response.writeHead(400, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: { message: "temperature is out of range", type: "invalid_request_error", param: "temperature" } }));
      });
    });
    const error = await rejection(providerFor({ endpoint: `${server.url}/v1` }).deployments("m")[0]!.streamChatCompletion(streamCall({})));
    expect(error.status).toBe(400);
    expect(requests).toBe(1);
  });

  it("keeps the connection for the next request after a stream that ended with [DONE]", async () => {
    const server = await startServer((request, response) => {
      request.resume();
      request.on("end", () => {
        response.writeHead(200, { "content-type": "text/event-stream" });
        response.write('data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n');
        response.write('data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n');
        response.write("data: [DONE]\n\n");
        // The terminator comes a moment after [DONE], as it may from a real server.
        setTimeout(() => response.end(), 20);
      });
    });
    const provider = providerFor({ endpoint: `${server.url}/v1` }, { adapter: { connections: 1 } });
    const deployment = provider.deployments("m")[0]!;
    for (let round = 0; round < 3; round++) {
      const events = await collect((await deployment.streamChatCompletion(streamCall({}))).batches);
      expect(events).toHaveLength(2);
    }
    expect(server.connections()).toBe(1);
  });

  it("rejects with 'cancelled' and drops the connection on an abort before the upstream answers", async () => {
    const upstream = await upstreamFor();
    const provider = providerFor({ endpoint: upstream.chatCompletionsUrl });
    const deployment = provider.deployments("fake-model")[0]!;
    for (const [index, start] of [
      [0, (signal: AbortSignal) => deployment.chatCompletion(chatCall({ fake: { firstByteDelayMs: 5_000 } }, { signal }))],
      [1, (signal: AbortSignal) => deployment.streamChatCompletion(streamCall({ fake: { firstByteDelayMs: 5_000 } }, { signal }))],
    ] as const) {
      const controller = new AbortController();
      const pending = start(controller.signal);
      await upstream.waitForRequest(index);
      controller.abort();
      const error = await rejection(pending);
      expect(error.message).toBe("The request was cancelled.");
      expect(error.code).toBe("upstream_error");
      const abortedAt = await upstream.waitForAbort(index, 100);
      expect(abortedAt).toBeGreaterThan(0);
    }
  });
});

describe("fallback endpoints", () => {
  it("gives one deployment per endpoint, in order, each reaching its own upstream", async () => {
    const primary = await upstreamFor();
    const secondary = await upstreamFor({ profile: "vllm" });
    const provider = providerFor({ endpoint: primary.chatCompletionsUrl, fallbackEndpoints: [`${secondary.url}/v1`] });
    const deployments = provider.deployments("served");
    expect(deployments.map((deployment) => [deployment.id, deployment.model])).toEqual([
      ["prv_test/0", "served"],
      ["prv_test/1", "served"],
    ]);
    await deployments[1]!.chatCompletion(chatCall({}, { model: "served" }));
    expect(primary.requests).toHaveLength(0);
    expect(secondary.requests).toHaveLength(1);
  });

  it("lists models from a fallback when the primary cannot", async () => {
    const secondary = await upstreamFor({ models: ["from-fallback"] });
    const dead = await startServer((_request, response) => {
      response.writeHead(500);
      response.end();
    });
    const provider = providerFor({ endpoint: `${dead.url}/v1`, fallbackEndpoints: [secondary.chatCompletionsUrl] });
    expect((await provider.listModels()).map((model) => model.id)).toEqual(["from-fallback"]);
  });
});

describe("model discovery", () => {
  it("makes one upstream call for concurrent listings and reuses it until the TTL passes", async () => {
    const clock = createManualClock();
    const upstream = await upstreamFor({ models: ["a", "b"] });
    const provider = providerFor({ endpoint: upstream.chatCompletionsUrl }, { adapter: { clock, modelCacheTtlMs: 60_000 } });
    const lists = await Promise.all(Array.from({ length: 20 }, () => provider.listModels()));
    for (const list of lists) expect(list.map((model) => model.id)).toEqual(["a", "b"]);
    expect(upstream.requests).toHaveLength(1);

    clock.advance(59_999);
    await provider.listModels();
    expect(upstream.requests).toHaveLength(1);

    upstream.setModels(["c"]);
    clock.advance(1);
    expect((await provider.listModels()).map((model) => model.id)).toEqual(["c"]);
    expect(upstream.requests).toHaveLength(2);
  });

  it("returns copies: changing a listed model changes nothing cached", async () => {
    const upstream = await upstreamFor({ models: ["a"] });
    const provider = providerFor({ endpoint: upstream.chatCompletionsUrl });
    (await provider.listModels())[0]!.id = "changed";
    expect((await provider.listModels())[0]!.id).toBe("a");
  });

  it("Ollama with nothing installed (`data: null`): [] then the configured models", async () => {
    const upstream = await upstreamFor({ profile: "ollama", models: [] });
    expect(await providerFor({ endpoint: upstream.chatCompletionsUrl }).listModels()).toEqual([]);
    const configured = providerFor({ endpoint: upstream.chatCompletionsUrl, models: ["llama3:8b", "llama3:8b", "qwen"] });
    expect(await configured.listModels()).toEqual([{ id: "llama3:8b" }, { id: "qwen" }]);
  });

  it("prefers the upstream's list to the configured one", async () => {
    const upstream = await upstreamFor({ profile: "ollama", models: ["llama3:latest"] });
    const provider = providerFor({ endpoint: upstream.chatCompletionsUrl, models: ["configured"] });
    expect(await provider.listModels()).toEqual([{ id: "llama3:latest", created: 1700000000, ownedBy: "library" }]);
  });

  it("falls back to the configured models when listing fails, and says why when none are configured", async () => {
    const upstream = await upstreamFor();
    // Every request to this upstream, GET /models included, is told to fail.
    const failing = { endpoint: upstream.chatCompletionsUrl, headers: { "x-fake": JSON.stringify({ status: 500 }) } };
    expect(await providerFor({ ...failing, models: ["m1"] }).listModels()).toEqual([{ id: "m1" }]);
    const error = await rejection(providerFor(failing).listModels());
    expect(error.code).toBe("provider_unavailable");
    expect(error.status).toBe(503);
    expect(error.message).toMatch(/^The provider's models could not be listed: The upstream failed \(HTTP 500\)/);
  });

  it("treats a server without GET /models as a failed listing", async () => {
    const server = await startServer((_request, response) => {
      response.writeHead(404, { "content-type": "application/json" });
      response.end('{"detail":"Not Found"}');
    });
    expect(await providerFor({ endpoint: `${server.url}/v1`, models: ["m"] }).listModels()).toEqual([{ id: "m" }]);
    expect((await rejection(providerFor({ endpoint: `${server.url}/v1` }).listModels())).code).toBe("provider_unavailable");
  });

  it("ends only the aborted caller's wait", async () => {
    const server = await startServer((_request, response) => {
      setTimeout(() => {
        response.writeHead(200, { "content-type": "application/json" });
        response.end('{"object":"list","data":[{"id":"slow"}]}');
      }, 100);
    });
    const provider = providerFor({ endpoint: `${server.url}/v1` });
    const controller = new AbortController();
    const aborted = provider.listModels({ signal: controller.signal });
    const patient = provider.listModels();
    controller.abort();
    expect((await rejection(aborted)).message).toBe("The request was cancelled.");
    expect(await patient).toEqual([{ id: "slow" }]);
  });
});

describe("health", () => {
  it("reports reachable, with the clock's time", async () => {
    const clock = createManualClock();
    const upstream = await upstreamFor();
    const provider = providerFor({ endpoint: upstream.chatCompletionsUrl }, { adapter: { clock } });
    expect(await provider.health()).toEqual({ status: "reachable", reason: null, checkedAt: clock.now() });
    expect(upstream.requests[0]!.path).toBe("/v1/models");
  });

  it("reports a server without /models as reachable", async () => {
    const server = await startServer((_request, response) => {
      response.writeHead(404);
      response.end();
    });
    expect((await providerFor({ endpoint: `${server.url}/v1` }).health()).status).toBe("reachable");
  });

  it("reports unreachable with a reason, never throwing", async () => {
    const upstream = await upstreamFor({ apiKey: "sk-right" });
    const wrongKey = providerFor({ endpoint: upstream.chatCompletionsUrl }, { secrets: { apiKey: "sk-wrong" } });
    const health = await wrongKey.health();
    expect(health.status).toBe("unreachable");
    expect(health.reason).toMatch(/credentials/);

    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const refused = await providerFor({ endpoint: `http://127.0.0.1:${port}/v1` }).health();
    expect(refused).toMatchObject({ status: "unreachable", reason: "endpoint: The upstream refused the connection." });
  });

  it("stays reachable when a fallback answers, naming the endpoint that did not", async () => {
    const upstream = await upstreamFor();
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const provider = providerFor({ endpoint: `http://127.0.0.1:${port}/v1`, fallbackEndpoints: [upstream.chatCompletionsUrl] });
    expect(await provider.health()).toMatchObject({ status: "reachable", reason: "endpoint: The upstream refused the connection." });
  });
});

describe("close", () => {
  it("lets in-flight streams finish, is idempotent, and refuses new requests", async () => {
    const running = await startTestProvider();
    cleanups.push(() => running.upstream.close());
    const deployment = running.provider.deployments("fake-model")[0]!;
    const stream = await deployment.streamChatCompletion(streamCall({ fake: { chunks: 10, intervalMs: 10 } }));
    const reading = collect(stream.batches);
    const first = running.provider.close!();
    const second = running.provider.close!();
    const events = await reading;
    await Promise.all([first, second]);
    expect(events.at(-1)?.usageOnly).toBe(true);
    expect(running.upstream.requests[0]!.outcome).toBe("completed");
    await running.provider.close!();
    const error = await rejection(deployment.chatCompletion(chatCall({})));
    expect(error.code).toBe("provider_unavailable");
    expect((await running.provider.health()).status).toBe("unreachable");
  });
});
