import { fakePromptTokens, fakeReplyText } from "@sluice/core/testing";
import type { FakeUpstreamProfile } from "@sluice/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { chatCall, collect, messages, startTestProvider, streamCall } from "./test-support.js";
import type { TestProvider } from "./test-support.js";

// How the adapter copes with each server family the fake upstream imitates (wire-formats §2, §4).

describe("server families", () => {
  let running: TestProvider | undefined;
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  async function start(profile: FakeUpstreamProfile, settings: Record<string, unknown> = {}) {
    running = await startTestProvider({ profile, settings });
    return { deployment: running.provider.deployments("fake-model")[0]!, upstream: running.upstream };
  }

  const expectedInput = fakePromptTokens({ messages });

  it("vLLM: usage on every chunk, the last one wins", async () => {
    const { deployment } = await start("vllm");
    const stream = await deployment.streamChatCompletion(streamCall({ fake: { chunks: 6 } }));
    const events = await collect(stream.batches);
    const withUsage = events.filter((event) => event.usage !== undefined);
    expect(withUsage.length).toBeGreaterThan(2);
    expect(withUsage.at(-1)?.usage).toEqual({ inputTokens: expectedInput, outputTokens: 6, source: "upstream" });
    // Usage riding on chunks with choices is not a usage-only trailer.
    expect(withUsage.slice(0, -1).every((event) => event.usageOnly === false)).toBe(true);
    expect(events.at(-1)?.usageOnly).toBe(true);
  });

  it("vLLM: a non-streamed request never carries stream_options (vLLM answers 400 to it)", async () => {
    const { deployment, upstream } = await start("vllm");
    const response = await deployment.chatCompletion(chatCall({ stream_options: { include_usage: true }, fake: { chunks: 3 } }));
    expect(response.status).toBe(200);
    expect(response.usage).toMatchObject({ inputTokens: expectedInput, outputTokens: 3 });
    expect(upstream.requests[0]!.body).not.toHaveProperty("stream_options");
  });

  it("strict: a body asking for a stream on the non-stream call is sent as a non-stream", async () => {
    const { deployment, upstream } = await start("strict");
    const response = await deployment.chatCompletion(chatCall({ stream: true, stream_options: { include_usage: true } }));
    expect(response.status).toBe(200);
    expect(upstream.requests[0]!.body).toMatchObject({ stream: false });
    expect(upstream.requests[0]!.body).not.toHaveProperty("stream_options");
  });

  it("quirks.dropStreamOptions: streams go without stream_options", async () => {
    const { deployment, upstream } = await start("vllm", { quirks: { dropStreamOptions: true } });
    await collect((await deployment.streamChatCompletion(streamCall({ fake: { chunks: 2 } }))).batches);
    const sent = upstream.requests[0]!.body as Record<string, unknown>;
    expect(sent.stream).toBe(true);
    expect(sent).not.toHaveProperty("stream_options");
  });

  it("TGI: `data:` without a space, [DONE] not yielded", async () => {
    const { deployment } = await start("tgi");
    const stream = await deployment.streamChatCompletion(streamCall({ fake: { chunks: 4 } }));
    const events = await collect(stream.batches);
    expect(events.length).toBeGreaterThan(0);
    for (const event of events) {
      expect(event.data.startsWith("{")).toBe(true);
      expect(event.data).not.toContain("[DONE]");
    }
    const text = events
      .map((event) => JSON.parse(event.data) as { choices: Array<{ delta?: { content?: string } }> })
      .map((chunk) => chunk.choices[0]?.delta?.content ?? "")
      .join("");
    expect(text).toBe(fakeReplyText(4));
  });

  it("TGI 1.4: the stream ends at the end of the body, without [DONE] and without usage", async () => {
    const { deployment } = await start("tgi-legacy");
    const stream = await deployment.streamChatCompletion(streamCall({ fake: { chunks: 4 } }));
    const events = await collect(stream.batches);
    expect(events.length).toBe(5);
    expect(events.every((event) => event.usage === undefined)).toBe(true);
    expect(JSON.parse(events.at(-1)!.data)).toMatchObject({ object: "text_completion", choices: [{ finish_reason: "eos_token" }] });
  });

  it("TGI: a non-streamed answer passes through", async () => {
    const { deployment } = await start("tgi");
    const response = await deployment.chatCompletion(chatCall({ fake: { chunks: 3 } }));
    expect(response.body).toMatchObject({ id: "", choices: [{ message: { content: fakeReplyText(3) } }] });
    expect(response.usage).toMatchObject({ inputTokens: expectedInput, outputTokens: 3 });
  });

  it("llama.cpp: usage inside the finish chunk, not usage-only", async () => {
    const { deployment } = await start("llamacpp");
    const stream = await deployment.streamChatCompletion(streamCall({ fake: { chunks: 5 } }));
    const events = await collect(stream.batches);
    const withUsage = events.filter((event) => event.usage !== undefined);
    expect(withUsage).toHaveLength(1);
    expect(withUsage[0]!.usageOnly).toBe(false);
    expect(withUsage[0]!.usage).toMatchObject({ inputTokens: expectedInput, outputTokens: 5 });
    expect(withUsage[0]!.data).toContain('"timings"');
  });

  it("no usage: no event carries usage or is marked usage-only", async () => {
    const { deployment } = await start("no-usage");
    const events = await collect((await deployment.streamChatCompletion(streamCall({ fake: { chunks: 3 } }))).batches);
    expect(events.length).toBeGreaterThan(3);
    expect(events.some((event) => event.usage !== undefined || event.usageOnly === true)).toBe(false);
  });

  it("Ollama: tool calls arrive whole and pass through untouched", async () => {
    const { deployment } = await start("ollama");
    const events = await collect((await deployment.streamChatCompletion(streamCall({ fake: { toolCalls: true } }))).batches);
    const toolDeltas = events.filter((event) => event.data.includes('"tool_calls":['));
    expect(toolDeltas.length).toBe(2);
    expect(events.at(-1)?.usageOnly).toBe(true);
  });

  it("embeddings: usage without completion tokens reads as zero output", async () => {
    const { deployment, upstream } = await start("vllm");
    const response = await deployment.embeddings(chatCall({ messages: undefined, input: ["one", "two"] }));
    expect(upstream.requests[0]!.path).toBe("/v1/embeddings");
    expect(response.body).toMatchObject({ object: "list" });
    expect(response.usage).toEqual({ inputTokens: fakePromptTokens({ input: ["one", "two"] }), outputTokens: 0, source: "upstream" });
  });
});
