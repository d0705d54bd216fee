import { createManualClock, GatewayError } from "@sluice/core";
import { afterEach, describe, expect, it } from "vitest";
import { capturePayloads, contentFilterErrorBody, fakeCompletion } from "./test-support/fake-azure-openai.js";
import { createFakeTokenCredential } from "./test-support/fake-token-credential.js";
import { chatCall, collect, startTestAzureProvider, streamCall, testApiKey } from "./test-support/azure-test-setup.js";
import type { TestAzureProvider } from "./test-support/azure-test-setup.js";

let running: TestAzureProvider | undefined;

afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function start(input: Parameters<typeof startTestAzureProvider>[0] = {}): Promise<TestAzureProvider> {
  running = await startTestAzureProvider(input);
  return running;
}

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  const error = await promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (thrown: unknown) => thrown,
  );
  expect(GatewayError.is(error), String(error)).toBe(true);
  return error as GatewayError;
}

function deployment(test: TestAzureProvider, model = "gpt-4o") {
  const [first] = test.provider.deployments(model);
  if (first === undefined) throw new Error(`no deployment for ${model}`);
  return first;
}

describe("the deployments URL shape", () => {
  it("calls /openai/deployments/{name}/chat/completions with the GA api-version and the api-key header", async () => {
    const test = await start();
    const response = await deployment(test).chatCompletion(chatCall({ temperature: 0.2, response_format: { type: "text" } }));
    const [request] = test.fake.requests;
    expect(request?.path).toBe("/openai/deployments/gpt-4o/chat/completions");
    expect(request?.query.get("api-version")).toBe("2024-10-21");
    expect(request?.headers["api-key"]).toBe(testApiKey);
    expect(request?.headers.authorization).toBeUndefined();
    // Everything the gateway sent passes through.
    expect(request?.body).toMatchObject({ temperature: 0.2, response_format: { type: "text" }, model: "gpt-4o" });
    expect(response.status).toBe(200);
    expect(response.usage).toEqual({ inputTokens: fakeCompletion.promptTokens, outputTokens: fakeCompletion.completionTokens, cachedInputTokens: 0, source: "upstream" });
    // Azure's annotations reach the client as Azure wrote them.
    expect(response.body.prompt_filter_results).toEqual([
      expect.objectContaining({ prompt_index: 0, content_filter_results: expect.objectContaining({ jailbreak: { filtered: false, detected: false } }) }),
    ]);
    const choices = response.body.choices as Array<Record<string, unknown>>;
    expect(choices[0]?.content_filter_results).toMatchObject({ hate: { filtered: false, severity: "safe" } });
    expect(response.headers).toMatchObject({ "x-ms-region": "East US 2", "x-ms-deployment-name": "gpt-4o" });
    expect(response.headers["apim-request-id"]).toMatch(/^apim-/);
  });

  it("uses the configured api-version and drops what it refuses (stream_options before 2024-10-21)", async () => {
    const test = await start({ settings: { apiVersion: "2024-06-01" } });
    const stream = await deployment(test).streamChatCompletion(streamCall({ max_completion_tokens: 50 }));
    await collect(stream.batches);
    const [request] = test.fake.requests;
    expect(request?.query.get("api-version")).toBe("2024-06-01");
    expect(request?.body).not.toHaveProperty("stream_options");
    // The cap is kept under the name the old version knows, so the budget's worst case holds.
    expect(request?.body).not.toHaveProperty("max_completion_tokens");
    expect(request?.body).toMatchObject({ max_tokens: 50, stream: true });
  });

  it("sends the gateway's output cap as max_completion_tokens, under the old name for versions before it", async () => {
    for (const [apiVersion, field] of [["2024-10-21", "max_completion_tokens"], ["2024-06-01", "max_tokens"]] as const) {
      const test = await start({ settings: { apiVersion } });
      await collect((await deployment(test).streamChatCompletion({ ...streamCall(), outputCap: 64 })).batches);
      await deployment(test).chatCompletion({ ...chatCall({ max_tokens: 5 }), outputCap: 64 });
      const [streamed, own] = test.fake.requests;
      expect(streamed?.body).toMatchObject({ [field]: 64 });
      expect(own?.body).toMatchObject({ max_tokens: 5 });
      expect(own?.body).not.toHaveProperty("max_completion_tokens");
    }
  });

  it("keeps stream_options on 2024-10-21 but drops parallel_tool_calls, which it refuses", async () => {
    const test = await start();
    const stream = await deployment(test).streamChatCompletion(streamCall({ parallel_tool_calls: false, tools: [] }));
    const events = await collect(stream.batches);
    const [request] = test.fake.requests;
    expect(request?.status).toBe(200);
    expect(request?.body).toMatchObject({ stream_options: { include_usage: true }, tools: [] });
    expect(request?.body).not.toHaveProperty("parallel_tool_calls");
    expect(events.at(-1)?.usageOnly).toBe(true);
  });

  it("calls /embeddings of the deployment and meters its input tokens", async () => {
    const test = await start();
    const response = await deployment(test, "embed").embeddings({
      body: { model: "embed", input: ["a", "b"] },
      signal: new AbortController().signal,
      requestId: "req_embed",
    });
    expect(test.fake.requests[0]?.path).toBe("/openai/deployments/embed/embeddings");
    expect(test.fake.requests[0]?.query.get("api-version")).toBe("2024-10-21");
    expect((response.body.data as unknown[]).length).toBe(2);
    expect(response.usage).toEqual({ inputTokens: 10, outputTokens: 0, source: "upstream" });
  });
});

describe("the v1 URL shape", () => {
  it("calls /openai/v1/chat/completions with the deployment in model and no api-version", async () => {
    const test = await start({ settings: { apiShape: "v1" } });
    const response = await deployment(test).chatCompletion(chatCall({ parallel_tool_calls: true, tools: [] }));
    const [request] = test.fake.requests;
    expect(request?.path).toBe("/openai/v1/chat/completions");
    expect(request?.query.has("api-version")).toBe(false);
    expect(request?.body).toMatchObject({ model: "gpt-4o", parallel_tool_calls: true });
    expect(response.status).toBe(200);
  });

  it("streams and embeds on /openai/v1/", async () => {
    const test = await start({ settings: { apiShape: "v1", apiVersion: "preview" } });
    const stream = await deployment(test).streamChatCompletion(streamCall({ fake: { replay: "azure-chat-text-include-usage" } }));
    expect((await collect(stream.batches)).map((event) => event.data)).toEqual(capturePayloads("azure-chat-text-include-usage"));
    await deployment(test, "embed").embeddings({ body: { model: "embed", input: "x" }, signal: new AbortController().signal, requestId: "r" });
    expect(test.fake.requests.map((request) => `${request.path}?${request.query.toString()}`)).toEqual([
      "/openai/v1/chat/completions?api-version=preview",
      "/openai/v1/embeddings?api-version=preview",
    ]);
  });
});

describe("Azure's stream shapes pass through intact", () => {
  it("relays the real capture byte for byte: the prompt-filter preamble, per-choice filter results, the usage chunk", async () => {
    const test = await start();
    const stream = await deployment(test).streamChatCompletion(streamCall({ fake: { replay: "azure-chat-text-include-usage" } }));
    const events = await collect(stream.batches);
    expect(events.map((event) => event.data)).toEqual(capturePayloads("azure-chat-text-include-usage"));
    const first = JSON.parse(events[0]!.data) as Record<string, unknown>;
    expect(first.choices).toEqual([]);
    expect(first.prompt_filter_results).toBeDefined();
    expect(events[0]?.usage).toBeUndefined();
    const last = events.at(-1)!;
    expect(last.usageOnly).toBe(true);
    expect(last.usage).toEqual({ inputTokens: 15, outputTokens: 78, cachedInputTokens: 0, source: "upstream" });
    expect(stream.headers["x-ms-deployment-name"]).toBe("gpt-4o");
  });

  it("relays the asynchronous filter's delta-less annotation chunks that follow the finish chunk", async () => {
    const test = await start();
    const stream = await deployment(test).streamChatCompletion(streamCall({ fake: { replay: "azure-chat-async-filter-after-finish" } }));
    const events = await collect(stream.batches);
    const payloads = capturePayloads("azure-chat-async-filter-after-finish");
    expect(events.map((event) => event.data)).toEqual(payloads);
    const parsed = events.map((event) => JSON.parse(event.data) as { choices: Array<Record<string, unknown>> });
    const finish = parsed.findIndex((chunk) => chunk.choices[0]?.finish_reason === "stop");
    const annotations = parsed.slice(finish + 1).filter((chunk) => chunk.choices[0]?.content_filter_offsets !== undefined);
    expect(annotations.length).toBe(2);
    for (const annotation of annotations) {
      expect(annotation.choices[0]).not.toHaveProperty("delta");
      expect(annotation.choices[0]?.content_filter_results).toHaveProperty("protected_material_text");
    }
    expect(events.at(-1)?.usage).toMatchObject({ inputTokens: 11, outputTokens: 4 });
  });

  it("reads the capture the same when Azure's writes cut events apart", async () => {
    const test = await start();
    const stream = await deployment(test).streamChatCompletion(
      streamCall({ fake: { replay: "azure-chat-text-include-usage", replayChunkBytes: 61, intervalMs: 1 } }),
    );
    expect((await collect(stream.batches)).map((event) => event.data)).toEqual(capturePayloads("azure-chat-text-include-usage"));
  });
});

describe("Azure's errors", () => {
  for (const spelling of ["innererror", "inner_error"] as const) {
    it(`relays the content-filter 400 with its ${spelling} as Azure sent it, streamed or not`, async () => {
      const test = await start();
      const sent = (JSON.parse(contentFilterErrorBody(spelling)) as { error: Record<string, unknown> }).error;
      for (const call of [chatCall({ fake: { contentFilter: spelling } }), streamCall({ fake: { contentFilter: spelling } })]) {
        const error = await rejection(
          call.body.stream === true ? deployment(test).streamChatCompletion(call) : deployment(test).chatCompletion(call),
        );
        expect(error.status).toBe(400);
        expect(error.code).toBe("content_filter");
        const wire = error.toJSON().error as Record<string, unknown>;
        expect(wire).toMatchObject({ message: sent.message, param: "prompt", code: "content_filter", type: "invalid_request_error" });
        expect(wire[spelling]).toEqual(sent[spelling]);
        expect(error.retryable).toBe(false);
      }
    });
  }

  it("turns a 429 into a 429 keeping retry-after-ms and retry-after", async () => {
    const test = await start();
    const error = await rejection(deployment(test).chatCompletion(chatCall({ fake: { status: 429, retryAfterMs: 1500, retryAfter: 2 } })));
    expect(error.status).toBe(429);
    expect(error.headers).toEqual({ "retry-after-ms": "1500", "retry-after": "2" });
    expect(error.wireCode).toBe("rate_limit_exceeded");
    expect(error.message).toContain("exceeded token rate limit");
    expect(error.retryable).toBe(true);
  });

  it("turns DeploymentNotFound into a 404 model_not_found", async () => {
    const test = await start({ settings: { deployments: [{ name: "gone", model: "gpt-4o" }] } });
    const error = await rejection(deployment(test, "gone").chatCompletion(chatCall({}, { model: "gone" })));
    expect(error.status).toBe(404);
    expect(error.wireCode).toBe("model_not_found");
    expect(error.message).toContain("does not exist");
  });

  it("turns a refused key into a 502 that blames the provider's credentials, not the client's", async () => {
    const test = await start({ secrets: { apiKey: "not-the-key" } });
    const error = await rejection(deployment(test).chatCompletion(chatCall()));
    expect(error.status).toBe(502);
    expect(error.message).toContain("credentials");
    expect(error.message).not.toContain("not-the-key");
  });

  it("answers 503 when the api-key secret is missing", async () => {
    const test = await start({ secrets: {} });
    const error = await rejection(deployment(test).chatCompletion(chatCall()));
    expect(error.status).toBe(503);
    expect(test.fake.requests).toHaveLength(0);
  });

  it("relays another 400 with Azure's message and param", async () => {
    const test = await start();
    const error = await rejection(deployment(test).chatCompletion(chatCall({ fake: { status: 400 } })));
    expect(error.toJSON().error).toMatchObject({ param: "temperature", code: "invalid_value", type: "invalid_request_error" });
  });

  it("makes a 500 a retryable 502", async () => {
    const test = await start();
    const error = await rejection(deployment(test).chatCompletion(chatCall({ fake: { status: 500 } })));
    expect(error.status).toBe(502);
    expect(error.retryable).toBe(true);
  });
});

describe("Entra ID auth", () => {
  it("sends the credential's token as a bearer, with the Cognitive Services scope", async () => {
    const clock = createManualClock();
    const credential = createFakeTokenCredential({ clock, lifetimeMs: 3_600_000 });
    const test = await start({
      credential,
      clock,
      settings: { auth: "entra" },
      secrets: {},
      fake: { acceptsToken: (token) => credential.isValid(token) },
    });
    await deployment(test).chatCompletion(chatCall());
    await deployment(test).chatCompletion(chatCall());
    expect(test.fake.requests.map((request) => request.headers.authorization)).toEqual(["Bearer entra-token-1", "Bearer entra-token-1"]);
    expect(test.fake.requests[0]?.headers["api-key"]).toBeUndefined();
    expect(credential.calls).toEqual([{ scopes: ["https://cognitiveservices.azure.com/.default"] }]);
  });
});

describe("deployments and models", () => {
  it("tries the named deployment in each of its accounts, then other deployments of the same model", async () => {
    const test = await start({
      settings: {
        deployments: [
          { name: "gpt-4o", model: "gpt-4o" },
          { name: "gpt-4o-west", model: "gpt-4o", endpoint: "https://west.example.com" },
          { name: "gpt-4o", model: "gpt-4o", endpoint: "https://sweden.example.com/", apiKeySecret: "swedenKey" },
          { name: "gpt-4o-batch", model: "gpt-4o", fallback: false },
          { name: "mini", model: "gpt-4o-mini" },
        ],
      },
      secrets: { apiKey: testApiKey, swedenKey: "k2" },
    });
    const ids = (name: string) => test.provider.deployments(name).map((each) => each.id);
    expect(ids("gpt-4o")).toEqual([
      expect.stringMatching(/\/127\.0\.0\.1:\d+\/gpt-4o$/),
      "prv_azure_test/sweden.example.com/gpt-4o",
      "prv_azure_test/west.example.com/gpt-4o-west",
    ]);
    expect(test.provider.deployments("gpt-4o-west").map((each) => each.model)).toEqual(["gpt-4o-west", "gpt-4o", "gpt-4o"]);
    expect(ids("gpt-4o-batch")).toHaveLength(4);
    expect(ids("mini")).toHaveLength(1);
    expect(ids("unknown")).toEqual([]);
    expect((await test.provider.listModels()).map((model) => model.id)).toEqual(["gpt-4o", "gpt-4o-west", "gpt-4o-batch", "mini"]);
  });

  it("reports health: reachable resources as provisioned, a dead one as unreachable", async () => {
    const test = await start();
    expect(await test.provider.health()).toMatchObject({ status: "provisioned", reason: null });
    await test.fake.close();
    const health = await test.provider.health();
    expect(health.status).toBe("unreachable");
    expect(health.reason).toContain("127.0.0.1");
  });
});
