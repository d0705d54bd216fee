import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fakeEmbedding, fakePromptTokens, fakeReplyText, fakeReplyWord, startFakeUpstream } from "./fake-upstream.js";
import type { FakeControl, FakeUpstream, FakeUpstreamOptions } from "./fake-upstream.js";

const agent = new Agent({ connections: 16 });
afterAll(() => agent.close());

const running: FakeUpstream[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((upstream) => upstream.close()));
});

async function start(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const upstream = await startFakeUpstream(options);
  running.push(upstream);
  return upstream;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

async function send(
  url: string,
  options: { method?: "GET" | "POST"; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const method = options.method ?? (options.body === undefined ? "GET" : "POST");
  const response = await request(url, {
    method,
    dispatcher: agent,
    headers: { "content-type": "application/json", ...options.headers },
    ...(options.body === undefined ? {} : { body: typeof options.body === "string" ? options.body : JSON.stringify(options.body) }),
  });
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
}

function json(reply: Reply): Record<string, unknown> {
  return JSON.parse(reply.text) as Record<string, unknown>;
}

/** The `data` of every event, `data:` with or without its space, in order. */
function eventData(raw: string): string[] {
  return raw
    .split("\n\n")
    .filter((event) => event.startsWith("data:"))
    .map((event) => event.slice(event.startsWith("data: ") ? 6 : 5));
}

interface Chunk {
  id: string;
  object: string;
  model: string;
  choices: Array<{
    index: number;
    delta: Record<string, unknown>;
    finish_reason: string | null;
    stop_reason?: unknown;
  }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
  timings?: Record<string, number>;
  system_fingerprint?: string;
}

function chunksOf(raw: string): Chunk[] {
  return eventData(raw)
    .filter((data) => data !== "[DONE]")
    .map((data) => JSON.parse(data) as Chunk);
}

function contentOf(chunks: Chunk[]): string {
  return chunks.map((chunk) => (chunk.choices[0]?.delta.content as string | null | undefined) ?? "").join("");
}

const messages = [
  { role: "system", content: "You are terse." },
  { role: "user", content: [{ type: "text", text: "Say hello to the gateway." }] },
];
// 14 + 25 = 39 characters -> ceil(39 / 4) = 10 prompt tokens.
const promptTokens = 10;

function chatBody(extra: Record<string, unknown> = {}, fake?: FakeControl): Record<string, unknown> {
  return { model: "fake-model", messages, ...extra, ...(fake === undefined ? {} : { fake }) };
}

const streamWithUsage = { stream: true, stream_options: { include_usage: true } };

describe("fake upstream: token accounting", () => {
  it("counts prompt tokens as ceil(characters / 4), text parts included, minimum 1", () => {
    expect(fakePromptTokens({ messages })).toBe(promptTokens);
    expect(fakePromptTokens({ messages: [] })).toBe(1);
    expect(fakePromptTokens({ prompt: ["abcd", "efgh", "i"] })).toBe(3);
    expect(fakePromptTokens({ input: [[1, 2, 3], [4]] })).toBe(4);
  });

  it("replies with one word per chunk, each after the first with its leading space", () => {
    expect(fakeReplyWord(0)).not.toMatch(/^ /);
    expect(fakeReplyWord(1)).toMatch(/^ \S+$/);
    expect(fakeReplyText(3)).toBe(fakeReplyWord(0) + fakeReplyWord(1) + fakeReplyWord(2));
  });
});

describe("fake upstream: openai profile", () => {
  it("streams a role chunk, one word per content chunk, an empty-delta finish and [DONE], with no usage unless asked", async () => {
    const upstream = await start();
    const reply = await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }, { chunks: 5 }) });
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(reply.text.startsWith('data: {"id":"chatcmpl-')).toBe(true);
    expect(reply.text.endsWith("data: [DONE]\n\n")).toBe(true);
    const chunks = chunksOf(reply.text);
    expect(chunks).toHaveLength(1 + 5 + 1);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: "assistant", content: "", refusal: null });
    expect(chunks.slice(1, 6).map((chunk) => chunk.choices[0]?.delta)).toEqual(
      [0, 1, 2, 3, 4].map((index) => ({ content: fakeReplyWord(index) })),
    );
    expect(chunks[6]?.choices[0]).toMatchObject({ delta: {}, finish_reason: "stop" });
    expect(contentOf(chunks)).toBe(fakeReplyText(5));
    expect(reply.text).not.toContain('"usage"');
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
  });

  it("adds usage:null to every chunk and a final choices:[] usage chunk when include_usage is set", async () => {
    const upstream = await start();
    const reply = await send(upstream.chatCompletionsUrl, { body: chatBody(streamWithUsage) });
    const chunks = chunksOf(reply.text);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: 8, total_tokens: promptTokens + 8 });
    expect(chunks.slice(0, -1).every((chunk) => chunk.usage === null)).toBe(true);
    expect(chunks.slice(1, -2)).toHaveLength(8);
  });

  it("answers non-streaming requests with the reply text and usage", async () => {
    const upstream = await start();
    const reply = await send(upstream.chatCompletionsUrl, { body: chatBody({}, { chunks: 4 }) });
    const body = json(reply) as { object: string; choices: Array<{ message: { content: string }; finish_reason: string }>; usage: Record<string, number> };
    expect(reply.headers["content-type"]).toBe("application/json");
    expect(body.object).toBe("chat.completion");
    expect(body.choices[0]?.message.content).toBe(fakeReplyText(4));
    expect(body.choices[0]?.finish_reason).toBe("stop");
    expect(body.usage).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: 4, total_tokens: promptTokens + 4 });
  });

  it("caps the reply at max_tokens / max_completion_tokens and finishes with length", async () => {
    const upstream = await start();
    const streamed = chunksOf((await send(upstream.chatCompletionsUrl, { body: chatBody({ ...streamWithUsage, max_tokens: 3 }) })).text);
    expect(contentOf(streamed)).toBe(fakeReplyText(3));
    expect(streamed.at(-2)?.choices[0]?.finish_reason).toBe("length");
    expect(streamed.at(-1)?.usage?.completion_tokens).toBe(3);
    const whole = json(await send(upstream.chatCompletionsUrl, { body: chatBody({ max_completion_tokens: 2 }) })) as {
      choices: Array<{ finish_reason: string }>;
      usage: { completion_tokens: number };
    };
    expect(whole.choices[0]?.finish_reason).toBe("length");
    expect(whole.usage.completion_tokens).toBe(2);
  });

  it("streams two parallel tool calls with fragmented arguments, one token per delta", async () => {
    const upstream = await start();
    const reply = await send(upstream.chatCompletionsUrl, { body: chatBody(streamWithUsage, { toolCalls: true }) });
    const chunks = chunksOf(reply.text);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: "assistant", content: null });
    const argumentsByIndex = new Map<number, string>();
    const names: string[] = [];
    for (const chunk of chunks) {
      const calls = chunk.choices[0]?.delta.tool_calls as
        | Array<{ index: number; id?: string; function: { name?: string; arguments?: string } }>
        | undefined;
      for (const call of calls ?? []) {
        if (call.function.name !== undefined) names.push(call.function.name);
        argumentsByIndex.set(call.index, (argumentsByIndex.get(call.index) ?? "") + (call.function.arguments ?? ""));
      }
    }
    expect(names).toEqual(["get_weather", "get_stock_price"]);
    expect(JSON.parse(argumentsByIndex.get(0) ?? "")).toEqual({ city: "Edinburgh", country: "GB", units: "c" });
    expect(JSON.parse(argumentsByIndex.get(1) ?? "")).toEqual({ ticker: "AAPL", exchange: "NASDAQ" });
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("tool_calls");
    const toolDeltaCount = chunks.filter((chunk) => chunk.choices[0]?.delta.tool_calls !== undefined).length;
    expect(toolDeltaCount).toBe(22);
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(toolDeltaCount);
  });

  it("serves legacy completions, streamed and not", async () => {
    const upstream = await start();
    const body = { model: "fake-model", prompt: "Once upon a time", fake: { chunks: 3 } };
    const whole = json(await send(`${upstream.url}/v1/completions`, { body })) as {
      object: string;
      choices: Array<{ text: string }>;
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    expect(whole.object).toBe("text_completion");
    expect(whole.choices[0]?.text).toBe(fakeReplyText(3));
    expect(whole.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 3 });
    const streamed = await send(`${upstream.url}/v1/completions`, { body: { ...body, ...streamWithUsage } });
    const events = eventData(streamed.text);
    expect(events.at(-1)).toBe("[DONE]");
    const parsed = events.slice(0, -1).map((data) => JSON.parse(data) as { choices: Array<{ text: string; finish_reason: string | null }>; usage?: { completion_tokens: number } });
    expect(parsed.map((event) => event.choices[0]?.text ?? "").join("")).toBe(fakeReplyText(3));
    expect(parsed.at(-2)?.choices[0]?.finish_reason).toBe("stop");
    expect(parsed.at(-1)?.usage?.completion_tokens).toBe(3);
  });
});

describe("fake upstream: profiles", () => {
  it("vllm: usage on every chunk when asked, stop_reason, finish on a content:'' chunk", async () => {
    const upstream = await start({ profile: "vllm" });
    const chunks = chunksOf((await send(upstream.chatCompletionsUrl, { body: chatBody(streamWithUsage, { chunks: 3 }) })).text);
    expect(chunks.map((chunk) => chunk.usage?.completion_tokens)).toEqual([0, 1, 2, 3, 3, 3]);
    expect(chunks.every((chunk) => chunk.usage?.prompt_tokens === promptTokens)).toBe(true);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: "assistant", content: "" });
    expect(chunks[4]?.choices[0]).toEqual({ index: 0, delta: { content: "" }, logprobs: null, finish_reason: "stop", stop_reason: null });
    expect(chunks[5]?.choices).toEqual([]);
    expect(chunks.slice(0, 4).every((chunk) => chunk.choices[0]?.stop_reason === null)).toBe(true);
  });

  it("vllm: no usage without stream_options; a 400 with an integer code for stream_options on a non-stream", async () => {
    const upstream = await start({ profile: "vllm" });
    const plain = await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }) });
    expect(plain.text).not.toContain('"usage"');
    const rejected = await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: false, stream_options: { include_usage: true } }) });
    expect(rejected.status).toBe(400);
    expect(json(rejected)).toEqual({
      error: { message: "Stream options can only be defined when `stream=True`.", type: "BadRequestError", param: null, code: 400 },
    });
  });

  it("ollama: role on every chunk, finish on content:'', short chatcmpl-<n> ids, usage chunk only when asked", async () => {
    const upstream = await start({ profile: "ollama" });
    const chunks = chunksOf((await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }, { chunks: 2 }) })).text);
    expect(chunks).toHaveLength(3);
    expect(chunks.every((chunk) => chunk.choices[0]?.delta.role === "assistant")).toBe(true);
    expect(chunks[2]?.choices[0]).toEqual({ index: 0, delta: { role: "assistant", content: "" }, finish_reason: "stop" });
    expect(chunks[0]?.id).toMatch(/^chatcmpl-\d{1,3}$/);
    expect(chunks[0]?.system_fingerprint).toBe("fp_ollama");
    const withUsage = chunksOf((await send(upstream.chatCompletionsUrl, { body: chatBody(streamWithUsage, { chunks: 2 }) })).text);
    expect(withUsage.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: promptTokens, completion_tokens: 2 } });
  });

  it("ollama: tool calls arrive whole, one per delta", async () => {
    const upstream = await start({ profile: "ollama" });
    const chunks = chunksOf((await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }, { toolCalls: true }) })).text);
    expect(chunks).toHaveLength(3);
    const first = chunks[0]?.choices[0]?.delta.tool_calls as Array<{ function: { arguments: string } }>;
    expect(JSON.parse(first[0]?.function.arguments ?? "")).toEqual({ city: "Edinburgh", country: "GB", units: "c" });
    expect(chunks[2]?.choices[0]?.finish_reason).toBe("tool_calls");
  });

  it("tgi: data: without space, empty id, role on every delta, finish on the last content chunk, usage:null everywhere", async () => {
    const upstream = await start({ profile: "tgi", models: ["meta-llama/Llama-3.1-8B-Instruct"] });
    const reply = await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }, { chunks: 3 }) });
    expect(reply.headers["x-accel-buffering"]).toBe("no");
    expect(reply.text.startsWith('data:{"object":"chat.completion.chunk","id":""')).toBe(true);
    expect(reply.text).not.toContain("data: ");
    expect(reply.text.endsWith("data:[DONE]\n\n")).toBe(true);
    const chunks = chunksOf(reply.text);
    expect(chunks).toHaveLength(3);
    expect(chunks.every((chunk) => chunk.usage === null && chunk.id === "" && chunk.choices[0]?.delta.role === "assistant")).toBe(true);
    expect(chunks.map((chunk) => chunk.choices[0]?.finish_reason)).toEqual([null, null, "stop"]);
    expect(chunks[0]?.model).toBe("meta-llama/Llama-3.1-8B-Instruct");
    expect(contentOf(chunks)).toBe(fakeReplyText(3));
    const withUsage = chunksOf((await send(upstream.chatCompletionsUrl, { body: chatBody(streamWithUsage, { chunks: 3 }) })).text);
    expect(withUsage).toHaveLength(4);
    expect(withUsage.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: promptTokens, completion_tokens: 3, total_tokens: promptTokens + 3 } });
  });

  it("tgi: a plain-text 422 for a body of the wrong types", async () => {
    const upstream = await start({ profile: "tgi" });
    const reply = await send(upstream.chatCompletionsUrl, { body: { model: "tgi", messages: "hello" } });
    expect(reply.status).toBe(422);
    expect(reply.headers["content-type"]).toMatch(/^text\/plain/);
    expect(reply.text).toMatch(/^Failed to deserialize the JSON body into the target type: messages: invalid type: string "hello"/);
  });

  it("tgi-legacy: object text_completion and no [DONE]: the stream just ends", async () => {
    const upstream = await start({ profile: "tgi-legacy" });
    const reply = await send(upstream.chatCompletionsUrl, { body: chatBody(streamWithUsage, { chunks: 2 }) });
    expect(reply.text).not.toContain("[DONE]");
    const chunks = chunksOf(reply.text);
    expect(chunks.every((chunk) => chunk.object === "text_completion")).toBe(true);
    expect(chunks.at(-1)?.choices[0]).toMatchObject({ delta: {}, finish_reason: "eos_token" });
    expect(reply.text).not.toContain('"usage"');
  });

  it("llamacpp: usage inside the finish chunk with timings, no separate usage chunk", async () => {
    const upstream = await start({ profile: "llamacpp" });
    const reply = await send(upstream.chatCompletionsUrl, { body: chatBody(streamWithUsage, { chunks: 2 }) });
    expect(reply.text.startsWith('data: {"choices":[')).toBe(true);
    const chunks = chunksOf(reply.text);
    expect(chunks).toHaveLength(4);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: "assistant", content: null });
    const finish = chunks[3];
    expect(finish?.choices[0]).toEqual({ finish_reason: "stop", index: 0, delta: {} });
    expect(finish?.usage).toEqual({ completion_tokens: 2, prompt_tokens: promptTokens, total_tokens: promptTokens + 2 });
    expect(finish?.timings).toMatchObject({ prompt_n: promptTokens, predicted_n: 2 });
    const withoutUsage = chunksOf((await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }, { chunks: 2 }) })).text);
    expect(withoutUsage.at(-1)?.usage).toBeUndefined();
    expect(withoutUsage.at(-1)?.timings).toBeDefined();
  });

  it("no-usage: never sends usage in a stream, even when asked, but always in a non-stream answer", async () => {
    const upstream = await start({ profile: "no-usage" });
    const streamed = await send(upstream.chatCompletionsUrl, { body: chatBody(streamWithUsage) });
    expect(streamed.text).not.toContain('"usage"');
    expect(contentOf(chunksOf(streamed.text))).toBe(fakeReplyText(8));
    const whole = json(await send(upstream.chatCompletionsUrl, { body: chatBody() })) as { usage: { completion_tokens: number } };
    expect(whole.usage.completion_tokens).toBe(8);
  });

  it("strict: rejects unknown fields, `fake` included, and reads the control from the x-fake header", async () => {
    const upstream = await start({ profile: "strict" });
    const rejected = await send(upstream.chatCompletionsUrl, { body: chatBody({}, { chunks: 2 }) });
    expect(rejected.status).toBe(400);
    expect(json(rejected)).toEqual({
      error: { message: "Unknown parameter: 'fake'.", type: "invalid_request_error", param: "fake", code: "unknown_parameter" },
    });
    const unknownField = await send(upstream.chatCompletionsUrl, { body: chatBody({ top_k: 3 }) });
    expect((json(unknownField).error as { param: string }).param).toBe("top_k");
    const controlled = await send(upstream.chatCompletionsUrl, {
      body: chatBody({ stream: true }),
      headers: { "x-fake": JSON.stringify({ chunks: 2 }) },
    });
    expect(contentOf(chunksOf(controlled.text))).toBe(fakeReplyText(2));
    const streamOptions = await send(upstream.chatCompletionsUrl, { body: chatBody({ stream_options: { include_usage: true } }) });
    expect(streamOptions.status).toBe(400);
  });

  it("reads the x-fake header in every profile, over the body's field", async () => {
    const upstream = await start({ profile: "openai" });
    const reply = await send(upstream.chatCompletionsUrl, {
      body: chatBody({ stream: true }, { chunks: 5 }),
      headers: { "x-fake": JSON.stringify({ chunks: 1 }) },
    });
    expect(contentOf(chunksOf(reply.text))).toBe(fakeReplyText(1));
    expect(upstream.requests[0]?.control).toEqual({ chunks: 1 });
  });
});

describe("fake upstream: scripted failures", () => {
  it("answers fake.status with an OpenAI-shaped body and the retry-after headers", async () => {
    const upstream = await start();
    const reply = await send(upstream.chatCompletionsUrl, { body: chatBody({}, { status: 429, retryAfterMs: 250, retryAfter: 1 }) });
    expect(reply.status).toBe(429);
    expect(reply.headers["retry-after-ms"]).toBe("250");
    expect(reply.headers["retry-after"]).toBe("1");
    expect(json(reply)).toEqual({
      error: { message: expect.any(String) as string, type: "requests", param: null, code: "rate_limit_exceeded" },
    });
  });

  it("sends errorBody verbatim, and each profile's own error shape otherwise", async () => {
    const upstream = await start();
    const custom = { error: { message: "quota", type: "insufficient_quota", param: null, code: "insufficient_quota" } };
    const reply = await send(upstream.chatCompletionsUrl, { body: chatBody({}, { status: 429, errorBody: custom }) });
    expect(json(reply)).toEqual(custom);
    const vllm = await start({ profile: "vllm" });
    expect((json(await send(vllm.chatCompletionsUrl, { body: chatBody({}, { status: 503 }) })).error as { code: unknown }).code).toBe(503);
    const tgi = await start({ profile: "tgi" });
    expect(json(await send(tgi.chatCompletionsUrl, { body: chatBody({}, { status: 429 }) }))).toMatchObject({ error_type: "overloaded" });
  });

  it("fails only the first failTimes requests of a key, then succeeds; reset() clears the counts", async () => {
    const upstream = await start();
    const statuses = async (key: string, count: number): Promise<number[]> => {
      const result: number[] = [];
      for (let index = 0; index < count; index++) {
        result.push((await send(upstream.chatCompletionsUrl, { body: chatBody({}, { status: 503, failTimes: 2, key }) })).status);
      }
      return result;
    };
    expect(await statuses("a", 4)).toEqual([503, 503, 200, 200]);
    expect(await statuses("b", 3)).toEqual([503, 503, 200]);
    upstream.reset();
    expect(upstream.requests).toHaveLength(0);
    expect(await statuses("a", 1)).toEqual([503]);
  });

  it("dies mid-stream after failAfterChunks: the client gets the role and N chunks, then a broken connection", async () => {
    const upstream = await start();
    const response = await request(upstream.chatCompletionsUrl, {
      method: "POST",
      dispatcher: agent,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(chatBody({ stream: true }, { failAfterChunks: 3 })),
    });
    expect(response.statusCode).toBe(200);
    let received = "";
    let failure: unknown = null;
    try {
      for await (const piece of response.body) received += (piece as Buffer).toString("utf8");
    } catch (error) {
      failure = error;
    }
    expect(failure).not.toBeNull();
    expect(contentOf(chunksOf(received))).toBe(fakeReplyText(3));
    expect(received).not.toContain("[DONE]");
    await expect(upstream.waitForAbort(0, 500)).rejects.toThrow(/server-destroyed/);
    expect(upstream.requests[0]?.abortedAt).toBeNull();
  });

  it("sends an in-stream error event after errorEventAfterChunks and ends without [DONE]", async () => {
    const upstream = await start();
    const reply = await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }, { errorEventAfterChunks: 2 }) });
    const events = eventData(reply.text);
    expect(events).toHaveLength(4);
    expect(JSON.parse(events[3] ?? "")).toEqual({
      error: { message: expect.any(String) as string, type: "server_error", param: null, code: null },
    });
    expect(reply.text).not.toContain("[DONE]");
  });

  it("delays the first byte by firstByteDelayMs", async () => {
    const upstream = await start();
    const started = Date.now();
    const reply = await send(upstream.chatCompletionsUrl, { body: chatBody({}, { firstByteDelayMs: 60 }) });
    expect(reply.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
  });

  it("rejects an unknown control key so a typo cannot pass silently", async () => {
    const upstream = await start();
    const reply = await send(upstream.chatCompletionsUrl, { body: { ...chatBody(), fake: { chunk: 3 } } });
    expect(reply.status).toBe(400);
    expect((json(reply).error as { message: string }).message).toContain("'chunk'");
  });
});

describe("fake upstream: disconnects", () => {
  async function openStream(upstream: FakeUpstream, fake: FakeControl, controller: AbortController): Promise<AsyncIterator<unknown>> {
    const response = await request(upstream.chatCompletionsUrl, {
      method: "POST",
      dispatcher: agent,
      signal: controller.signal,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(chatBody({ stream: true }, fake)),
    });
    const iterator = response.body[Symbol.asyncIterator]();
    await iterator.next();
    return iterator;
  }

  it("records a client abort of a paced stream within 100 ms", async () => {
    const upstream = await start();
    const controller = new AbortController();
    const iterator = await openStream(upstream, { chunks: 1000, intervalMs: 20 }, controller);
    const abortedAt = Date.now();
    controller.abort();
    await expect(iterator.next()).rejects.toThrow();
    const seenAt = await upstream.waitForAbort(0, 1000);
    expect(seenAt - abortedAt).toBeLessThan(100);
    expect(upstream.requests[0]?.outcome).toBe("client-aborted");
  });

  it("records a client abort of a hanging stream within 100 ms", async () => {
    const upstream = await start();
    const controller = new AbortController();
    const waiting = upstream.waitForAbort(0, 2000);
    await openStream(upstream, { hangAfterChunks: 2 }, controller);
    const abortedAt = Date.now();
    controller.abort();
    expect((await waiting) - abortedAt).toBeLessThan(100);
  });

  it("rejects waitForAbort for a request that completed", async () => {
    const upstream = await start();
    await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }) });
    await expect(upstream.waitForAbort(0, 500)).rejects.toThrow(/completed/);
    expect(upstream.requests[0]?.outcome).toBe("completed");
    expect(upstream.requests[0]?.finishedAt).not.toBeNull();
  });

  it("close() destroys a hanging stream", async () => {
    const upstream = await startFakeUpstream();
    const controller = new AbortController();
    const iterator = await openStream(upstream, { hangAfterChunks: 1 }, controller);
    await upstream.close();
    await expect(iterator.next()).rejects.toThrow();
    expect(upstream.requests[0]?.outcome).toBe("server-destroyed");
  });

  it("writes a large chunk-by-chunk stream to a slow reader without losing a byte", async () => {
    const upstream = await start();
    const chunkCount = 20000;
    const response = await request(upstream.chatCompletionsUrl, {
      method: "POST",
      dispatcher: agent,
      headers: { "content-type": "application/json" },
      // failAfterChunks past the end forces the chunk-by-chunk path, where 'drain' matters.
      body: JSON.stringify(chatBody({ stream: true }, { chunks: chunkCount, failAfterChunks: chunkCount + 1 })),
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const text = await response.body.text();
    expect(contentOf(chunksOf(text))).toBe(fakeReplyText(chunkCount));
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
  });
});

describe("fake upstream: test-support controls", () => {
  it("holds requests at fake.gate until openGate(name), then lets later ones straight through until reset()", async () => {
    const upstream = await start();
    const held = [0, 1, 2].map(() => send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }, { gate: "g" }) }));
    await upstream.waitForRequest(2);
    expect(upstream.requests.map((record) => record.status)).toEqual([null, null, null]);
    upstream.openGate("g");
    expect((await Promise.all(held)).map((reply) => reply.status)).toEqual([200, 200, 200]);
    expect((await send(upstream.chatCompletionsUrl, { body: chatBody({}, { gate: "g" }) })).status).toBe(200);
    upstream.reset();
    const again = send(upstream.chatCompletionsUrl, { body: chatBody({}, { gate: "g" }) });
    await upstream.waitForRequest(0);
    expect(upstream.requests[0]?.status).toBeNull();
    upstream.openGate("g");
    expect((await again).status).toBe(200);
  });

  it("counts the bytes and chunks a stream wrote", async () => {
    const upstream = await start();
    const plain = await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }, { chunks: 5 }) });
    const paced = await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }, { chunks: 3, intervalMs: 1 }) });
    expect(upstream.requests[0]).toMatchObject({ bytesWritten: Buffer.byteLength(plain.text), chunksWritten: 5 });
    expect(upstream.requests[1]).toMatchObject({ bytesWritten: Buffer.byteLength(paced.text), chunksWritten: 3 });
  });

  it("renders a huge stream chunk by chunk and stops writing while the reader does not read", async () => {
    const upstream = await start();
    const controller = new AbortController();
    const response = await request(upstream.chatCompletionsUrl, {
      method: "POST",
      dispatcher: agent,
      signal: controller.signal,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(chatBody({ stream: true }, { chunks: 2_000_000 })),
    });
    const record = await upstream.waitForRequest(0);
    // Wait until the writes stall: the socket buffers are full and nobody reads.
    let last = -1;
    while (record.bytesWritten !== last) {
      last = record.bytesWritten;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(record.bytesWritten).toBeGreaterThan(0);
    expect(record.bytesWritten).toBeLessThan(64 * 1024 * 1024);
    expect(record.chunksWritten).toBeLessThan(2_000_000);
    controller.abort();
    await response.body.text().catch(() => undefined);
    await upstream.waitForAbort(0, 2000);
  });
});

describe("fake upstream: replay", () => {
  const directory = fileURLToPath(new URL("./__fixtures__/sse/", import.meta.url));
  const captures = readdirSync(directory).filter((name) => name.endsWith(".txt"));

  function fromFirstDataLine(name: string): string {
    const text = readFileSync(`${directory}${name}`, "utf8");
    return text.startsWith("data:") ? text : text.slice(text.indexOf("\ndata:") + 1);
  }

  it("has captures to replay", () => {
    expect(captures.length).toBeGreaterThanOrEqual(5);
  });

  for (const name of captures) {
    it(`replays ${name} byte for byte from its first data: line, whole and in 7-byte pieces`, async () => {
      const upstream = await start();
      const expected = fromFirstDataLine(name);
      const whole = await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }, { replay: name }) });
      expect(whole.headers["content-type"]).toMatch(/^text\/event-stream/);
      expect(whole.text).toBe(expected);
      const pieces = await send(upstream.chatCompletionsUrl, {
        body: chatBody({ stream: true }, { replay: name.replace(/\.txt$/, ""), replayChunkBytes: 7 }),
      });
      expect(pieces.text).toBe(expected);
    });
  }

  it("paces a replay event by event with intervalMs, and fails it like a generated stream", async () => {
    const upstream = await start();
    const name = "tgi-3.2.1-chat-text.hf-hub-cassette";
    const expected = fromFirstDataLine(`${name}.txt`);
    const started = Date.now();
    const paced = await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }, { replay: name, intervalMs: 2 }) });
    expect(paced.text).toBe(expected);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2 * (eventData(expected).length - 1));
    const failed = await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }, { replay: name, errorEventAfterChunks: 3 }) });
    const events = eventData(failed.text);
    expect(events.slice(0, 3)).toEqual(eventData(expected).slice(0, 3));
    expect(JSON.parse(events[3] ?? "")).toHaveProperty("error");
  });

  it("answers 400 for a capture that does not exist or a name that escapes the folder", async () => {
    const upstream = await start();
    for (const replay of ["no-such-capture", "../index.ts"]) {
      const reply = await send(upstream.chatCompletionsUrl, { body: chatBody({ stream: true }, { replay }) });
      expect(reply.status).toBe(400);
    }
  });
});

describe("fake upstream: embeddings", () => {
  it("returns the same deterministic vectors as float and as base64", async () => {
    const upstream = await start();
    const input = ["first input", "second input"];
    const floats = json(await send(`${upstream.url}/v1/embeddings`, { body: { model: "embed", input } })) as {
      data: Array<{ index: number; embedding: number[] }>;
      usage: { prompt_tokens: number; total_tokens: number };
    };
    const base64 = json(await send(`${upstream.url}/v1/embeddings`, { body: { model: "embed", input, encoding_format: "base64" } })) as {
      data: Array<{ embedding: string }>;
    };
    expect(floats.data).toHaveLength(2);
    expect(floats.usage).toEqual({ prompt_tokens: fakePromptTokens({ input }), total_tokens: fakePromptTokens({ input }) });
    floats.data.forEach((item, index) => {
      const bytes = Buffer.from(base64.data[index]?.embedding ?? "", "base64");
      const decoded = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
      expect(decoded).toEqual(item.embedding);
      expect(item.embedding).toEqual(fakeEmbedding(input[index] ?? "", 16));
      const length = Math.hypot(...item.embedding);
      expect(length).toBeCloseTo(1, 5);
    });
    expect(floats.data[0]?.embedding).not.toEqual(floats.data[1]?.embedding);
  });

  it("honours dimensions and rejects an unknown encoding_format", async () => {
    const upstream = await start();
    const sized = json(await send(`${upstream.url}/v1/embeddings`, { body: { model: "embed", input: "x", dimensions: 5 } })) as {
      data: Array<{ embedding: number[] }>;
    };
    expect(sized.data[0]?.embedding).toHaveLength(5);
    const rejected = await send(`${upstream.url}/v1/embeddings`, { body: { model: "embed", input: "x", encoding_format: "int8" } });
    expect(rejected.status).toBe(400);
  });
});

describe("fake upstream: models, keys, routes, recording", () => {
  it("lists the configured models, one by id, and Ollama's data:null when there are none", async () => {
    const upstream = await start({ models: ["alpha", { id: "beta", ownedBy: "team", created: 1 }] });
    expect(json(await send(`${upstream.url}/v1/models`))).toEqual({
      object: "list",
      data: [
        { id: "alpha", object: "model", created: 1700000000, owned_by: "openai" },
        { id: "beta", object: "model", created: 1, owned_by: "team" },
      ],
    });
    expect(json(await send(`${upstream.url}/v1/models/beta`))).toMatchObject({ id: "beta" });
    expect((await send(`${upstream.url}/v1/models/gamma`)).status).toBe(404);
    upstream.setModels([]);
    expect(json(await send(`${upstream.url}/v1/models`))).toEqual({ object: "list", data: [] });
    const ollama = await start({ profile: "ollama", models: [] });
    expect(json(await send(`${ollama.url}/v1/models`))).toEqual({ object: "list", data: null });
  });

  it("checks the API key: 401 when missing or wrong, in OpenAI's shape", async () => {
    const upstream = await start({ apiKey: "sk-right" });
    const missing = await send(upstream.chatCompletionsUrl, { body: chatBody() });
    expect(missing.status).toBe(401);
    expect(json(missing)).toMatchObject({ error: { type: "invalid_request_error", param: null, code: null } });
    const wrong = await send(upstream.chatCompletionsUrl, { body: chatBody(), headers: { authorization: "Bearer sk-wrong" } });
    expect(wrong.status).toBe(401);
    expect(json(wrong)).toMatchObject({ error: { code: "invalid_api_key" } });
    const right = await send(upstream.chatCompletionsUrl, { body: chatBody(), headers: { authorization: "Bearer sk-right" } });
    expect(right.status).toBe(200);
    const azure = await start({ apiKey: "azure-key", apiKeyHeader: "api-key" });
    expect((await send(azure.chatCompletionsUrl, { body: chatBody(), headers: { "api-key": "azure-key" } })).status).toBe(200);
  });

  it("answers 404 in OpenAI's shape for any other route", async () => {
    const upstream = await start({ profile: "tgi" });
    const reply = await send(`${upstream.url}/v1/responses`, { body: {} });
    expect(reply.status).toBe(404);
    expect(json(reply)).toEqual({
      error: { message: "Invalid URL (POST /v1/responses)", type: "invalid_request_error", param: null, code: null },
    });
  });

  it("records method, path, headers, parsed body, stream flag and timing", async () => {
    const upstream = await start();
    const before = Date.now();
    const body = chatBody({ stream: true, custom_field: { kept: true } }, { chunks: 1 });
    await send(`${upstream.chatCompletionsUrl}?api-version=1`, { body, headers: { "x-trace": "abc" } });
    const [recorded] = upstream.requests;
    expect(recorded).toMatchObject({ index: 0, method: "POST", path: "/v1/chat/completions", url: "/v1/chat/completions?api-version=1" });
    expect(recorded?.headers["x-trace"]).toBe("abc");
    expect(recorded?.body).toEqual(body);
    expect(recorded?.stream).toBe(true);
    expect(recorded?.status).toBe(200);
    expect(recorded?.receivedAt).toBeGreaterThanOrEqual(before);
    await expect(upstream.waitForRequest(0)).resolves.toBe(recorded);
  });

  it("records nothing when record is false", async () => {
    const upstream = await start({ record: false });
    expect((await send(upstream.chatCompletionsUrl, { body: chatBody() })).status).toBe(200);
    expect(upstream.requests).toHaveLength(0);
  });
});
