import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { GatewayError, isRetryable } from "@sluice/core";
import type { FakeUpstreamProfile } from "@sluice/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createOpenAICompatAdapter } from "./openai-compat-adapter.js";
import { chatCall, providerRecord, startTestProvider, streamCall } from "./test-support.js";
import type { TestProvider } from "./test-support.js";
import { parseUpstreamErrorBody, upstreamStatusError } from "./upstream-error.js";

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  const error: unknown = await promise.then(
    () => new Error("expected a rejection"),
    (thrown: unknown) => thrown,
  );
  if (!GatewayError.is(error)) throw new Error(`expected a GatewayError, got ${String(error)}`);
  return error;
}

describe("parseUpstreamErrorBody", () => {
  it("reads OpenAI's and Ollama's nested shape", () => {
    const body = '{"error":{"message":"Unknown parameter: \'x\'.","type":"invalid_request_error","param":"x","code":"unknown_parameter"}}';
    expect(parseUpstreamErrorBody(body, "application/json")).toEqual({
      message: "Unknown parameter: 'x'.",
      type: "invalid_request_error",
      param: "x",
      code: "unknown_parameter",
    });
  });

  it("drops vLLM's and llama.cpp's integer codes", () => {
    expect(parseUpstreamErrorBody('{"error":{"message":"bad","type":"BadRequestError","param":null,"code":400}}', "application/json")).toEqual({
      message: "bad",
      type: "BadRequestError",
      param: null,
      code: null,
    });
    expect(parseUpstreamErrorBody('{"error":{"code":404,"message":"nope","type":"not_found_error"}}', "application/json").code).toBeNull();
  });

  it("reads vLLM's flat shape from before 0.10.1", () => {
    expect(
      parseUpstreamErrorBody('{"object":"error","message":"too long","type":"BadRequestError","param":"messages","code":400}', "application/json"),
    ).toEqual({ message: "too long", type: "BadRequestError", param: "messages", code: null });
  });

  it("reads TGI's and the HF router's string errors", () => {
    expect(parseUpstreamErrorBody('{"error":"Input validation error","error_type":"validation"}', "application/json")).toEqual({
      message: "Input validation error",
      type: "validation",
      param: null,
      code: null,
    });
    expect(parseUpstreamErrorBody('{"error":"Invalid username or password."}', "application/json").message).toBe("Invalid username or password.");
  });

  it("reads FastAPI's detail, string or list", () => {
    expect(parseUpstreamErrorBody('{"detail":"Not Found"}', "application/json").message).toBe("Not Found");
    const list = '{"detail":[{"loc":["body","messages"],"msg":"field required","type":"missing"}]}';
    expect(parseUpstreamErrorBody(list, "application/json").message).toBe("messages: field required");
  });

  it("wraps plain text, ignores HTML and empty bodies", () => {
    const text = "Failed to deserialize the JSON body into the target type: messages: invalid type";
    expect(parseUpstreamErrorBody(`${text}\n`, "text/plain; charset=utf-8").message).toBe(text);
    expect(parseUpstreamErrorBody("<html><body>502 Bad Gateway</body></html>", "text/html").message).toBeNull();
    expect(parseUpstreamErrorBody("", "application/json").message).toBeNull();
    expect(parseUpstreamErrorBody("{not json", "application/json").message).toBe("{not json");
  });

  it("cuts a runaway message", () => {
    expect(parseUpstreamErrorBody("x".repeat(10_000), "text/plain").message!.length).toBeLessThan(2_100);
  });
});

describe("upstreamStatusError", () => {
  const said = { message: "said", type: null, param: "messages", code: null };

  it("relays refused requests with the upstream's message and param", () => {
    const error = upstreamStatusError({ status: 422, headers: {}, body: said });
    expect(error.toJSON()).toEqual({ error: { message: "said", type: "invalid_request_error", param: "messages", code: null } });
    expect(error.status).toBe(400);
    expect(upstreamStatusError({ status: 404, headers: {}, body: said }).code).toBe("model_not_found");
    expect(upstreamStatusError({ status: 413, headers: {}, body: said }).status).toBe(413);
    expect(upstreamStatusError({ status: 400, headers: {}, body: { ...said, code: "unsupported_parameter" } }).wireCode).toBe(
      "unsupported_parameter",
    );
  });

  it("takes a 404 that says nothing (an HTML page) for a wrong endpoint, not a missing model: retryable, so fallbacks are tried", () => {
    const error = upstreamStatusError({ status: 404, headers: {}, body: parseUpstreamErrorBody("<html><h1>Not Found</h1></html>", "text/html") });
    expect(error.code).toBe("upstream_error");
    expect(error.status).toBe(502);
    expect(isRetryable(error)).toBe(true);
    expect(error.message).toMatch(/check the provider's endpoint URL/);
  });

  it("says something when the upstream said nothing", () => {
    const error = upstreamStatusError({ status: 400, headers: {}, body: { message: null, type: null, param: null, code: null } });
    expect(error.message).toBe("The upstream answered HTTP 400 without saying why.");
  });

  it("maps server failures to retryable statuses", () => {
    expect(upstreamStatusError({ status: 500, headers: {}, body: said }).status).toBe(502);
    expect(upstreamStatusError({ status: 424, headers: {}, body: said }).status).toBe(502);
    expect(upstreamStatusError({ status: 504, headers: {}, body: said }).code).toBe("upstream_timeout");
    const unavailable = upstreamStatusError({ status: 503, headers: { "retry-after": "2" }, body: said });
    expect(unavailable.code).toBe("provider_unavailable");
    expect(unavailable.headers).toEqual({ "retry-after": "2" });
    expect(isRetryable(unavailable)).toBe(true);
  });
});

describe("upstream errors through the adapter", () => {
  let running: TestProvider | undefined;
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  async function start(profile: FakeUpstreamProfile, options: { apiKey?: string; secrets?: Record<string, string> } = {}) {
    running = await startTestProvider({ profile, ...options });
    return running.provider.deployments("fake-model")[0]!;
  }

  const shapes: Array<[FakeUpstreamProfile, string]> = [
    ["openai", "openai"],
    ["vllm", "nested, integer code"],
    ["ollama", "nested, null code"],
    ["tgi", "string error"],
    ["llamacpp", "nested, integer code first"],
  ];
  for (const [profile, shape] of shapes) {
    it(`relays a 400 from ${profile} (${shape}) as a 400 in OpenAI's shape`, async () => {
      const deployment = await start(profile);
      const error = await rejection(deployment.chatCompletion(chatCall({ fake: { status: 400 } })));
      expect(error.status).toBe(400);
      expect(error.toJSON()).toEqual({ error: { message: "Invalid request.", type: "invalid_request_error", param: null, code: null } });
      const streamed = await rejection(deployment.streamChatCompletion(streamCall({ fake: { status: 400 } })));
      expect(streamed.status).toBe(400);
    });
  }

  it("relays a 404 as model_not_found, keeping a string code", async () => {
    const deployment = await start("openai");
    const error = await rejection(deployment.chatCompletion(chatCall({ fake: { status: 404 } })));
    expect(error.status).toBe(404);
    expect(error.code).toBe("model_not_found");
    expect(error.wireCode).toBe("model_not_found");
  });

  it("wraps TGI's text/plain 422 into a 400", async () => {
    const deployment = await start("tgi");
    const error = await rejection(deployment.chatCompletion(chatCall({ messages: "not a list" })));
    expect(error.status).toBe(400);
    expect(error.message).toMatch(/^Failed to deserialize the JSON body into the target type: messages: invalid type/);
    expect(error.wireCode).toBeNull();
  });

  it("never relays the upstream's 401, nor its message", async () => {
    const deployment = await start("openai", { apiKey: "sk-right", secrets: { apiKey: "sk-wrong-1234" } });
    const error = await rejection(deployment.chatCompletion(chatCall({})));
    expect(error.status).toBe(502);
    expect(error.code).toBe("upstream_error");
    expect(error.message).toMatch(/credentials/);
    expect(error.message).not.toMatch(/sk-/);
    const streamed = await rejection(deployment.streamChatCompletion(streamCall({})));
    expect(streamed.status).toBe(502);
  });

  it("treats a 403 like a 401", async () => {
    const deployment = await start("openai");
    const error = await rejection(deployment.chatCompletion(chatCall({ fake: { status: 403 } })));
    expect(error.status).toBe(502);
    expect(error.message).not.toMatch(/Country/);
  });

  it("keeps a 429's retry headers and code", async () => {
    const deployment = await start("openai");
    const error = await rejection(deployment.chatCompletion(chatCall({ fake: { status: 429, retryAfterMs: 250, retryAfter: 1 } })));
    expect(error.status).toBe(429);
    expect(error.wireCode).toBe("rate_limit_exceeded");
    expect(error.headers).toEqual({ "retry-after-ms": "250", "retry-after": "1" });
    expect(isRetryable(error)).toBe(true);
  });

  it("keeps insufficient_quota, which the gateway does not retry", async () => {
    const deployment = await start("openai");
    const errorBody = { error: { message: "You exceeded your current quota.", type: "insufficient_quota", param: null, code: "insufficient_quota" } };
    const error = await rejection(deployment.chatCompletion(chatCall({ fake: { status: 429, errorBody } })));
    expect(error.status).toBe(429);
    expect(error.wireCode).toBe("insufficient_quota");
    expect(error.message).toBe("You exceeded your current quota.");
    expect(isRetryable(error)).toBe(false);
  });

  it("maps a TGI overload 429 without a code to rate_limit_exceeded", async () => {
    const deployment = await start("tgi");
    const error = await rejection(deployment.chatCompletion(chatCall({ fake: { status: 429 } })));
    expect(error.status).toBe(429);
    expect(error.wireCode).toBe("rate_limit_exceeded");
  });

  it("maps 500 to a retryable 502 and 503 to 503", async () => {
    const deployment = await start("vllm");
    const failed = await rejection(deployment.chatCompletion(chatCall({ fake: { status: 500 } })));
    expect(failed.status).toBe(502);
    expect(failed.code).toBe("upstream_error");
    expect(failed.message).toMatch(/^The upstream failed \(HTTP 500\): /);
    expect(isRetryable(failed)).toBe(true);
    const unavailable = await rejection(deployment.chatCompletion(chatCall({ fake: { status: 503 } })));
    expect(unavailable.status).toBe(503);
    expect(unavailable.code).toBe("provider_unavailable");
  });

  it("maps a connection refused to a retryable 502 without naming the host", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const provider = createOpenAICompatAdapter().create({
      record: providerRecord({ endpoint: `http://127.0.0.1:${port}/v1/chat/completions` }),
      secrets: {},
    });
    try {
      const deployment = provider.deployments("m")[0]!;
      const error = await rejection(deployment.chatCompletion(chatCall({})));
      expect(error.status).toBe(502);
      expect(error.message).toBe("The upstream refused the connection.");
      expect(isRetryable(error)).toBe(true);
      const streamed = await rejection(deployment.streamChatCompletion(streamCall({})));
      expect(streamed.status).toBe(502);
    } finally {
      await provider.close?.();
    }
  });

  it("maps a connection dropped before any answer to a 502", async () => {
    const deployment = await start("openai");
    const error = await rejection(deployment.chatCompletion(chatCall({ fake: { failAfterChunks: 0 } })));
    expect(error.status).toBe(502);
    expect(error.code).toBe("upstream_error");
  });

  it("turns an error event in place of the first chunk into a thrown GatewayError", async () => {
    const deployment = await start("vllm");
    const stream = await deployment.streamChatCompletion(streamCall({ fake: { errorEventAfterChunks: 0 } }));
    const iterator = stream.batches[Symbol.asyncIterator]();
    // vLLM's role chunk comes before any counted chunk.
    expect((await iterator.next()).done).toBe(false);
    const error = await rejection(iterator.next());
    expect(error.status).toBe(502);
    expect(error.message).toMatch(/error while processing/);
  });
});
