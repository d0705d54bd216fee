import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import type { ProviderStreamBatch, ProviderStreamEvent } from "../provider/provider.js";
import { expectConsistentBatch } from "../testing/collect-stream-events.js";
import { readProviderStream } from "./read-provider-stream.js";
import { createStreamStats, type StreamStats } from "./stream-event-reader.js";

const encoder = new TextEncoder();

function readCapture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../testing/__fixtures__/sse/${name}`, import.meta.url)));
}

/** The payloads of a capture's `data: ` lines, [DONE] excluded: what the reader must yield. */
function capturePayloads(bytes: Uint8Array): string[] {
  return new TextDecoder()
    .decode(bytes)
    .split("\n")
    .filter((line) => line.startsWith("data: ") && line !== "data: [DONE]")
    .map((line) => line.slice("data: ".length));
}

/** Cuts bytes into chunks of a fixed size, as a socket might deliver them. */
function chunked(bytes: Uint8Array, size: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) chunks.push(bytes.subarray(offset, offset + size));
  return chunks;
}

/** An upstream body that yields the chunks, then throws `failure` if one is given. */
class FakeBody {
  /** Chunks handed to the reader so far. */
  pulled = 0;
  /** Whether the source generator's `finally` ran (it was exhausted, failed or closed). */
  closed = false;
  readonly body: AsyncIterable<Uint8Array>;

  constructor(chunks: Array<Uint8Array | string>, failure?: Error) {
    this.body = this.#generate(chunks, failure);
  }

  async *#generate(chunks: Array<Uint8Array | string>, failure: Error | undefined): AsyncGenerator<Uint8Array> {
    try {
      for (const chunk of chunks) {
        this.pulled += 1;
        yield typeof chunk === "string" ? encoder.encode(chunk) : chunk;
      }
      if (failure !== undefined) throw failure;
    } finally {
      this.closed = true;
    }
  }
}

function fakeBody(chunks: Array<Uint8Array | string>, failure?: Error): FakeBody {
  return new FakeBody(chunks, failure);
}

async function collect(
  body: AsyncIterable<Uint8Array>,
  options: { signal?: AbortSignal; stats?: StreamStats } = {},
): Promise<{ events: ProviderStreamEvent[]; stats: StreamStats; batches: ProviderStreamBatch[] }> {
  const stats = options.stats ?? createStreamStats();
  const events: ProviderStreamEvent[] = [];
  const batches: ProviderStreamBatch[] = [];
  for await (const batch of readProviderStream(body, { ...options, stats })) {
    expect(batch.events.length).toBeGreaterThan(0);
    expectConsistentBatch(batch);
    events.push(...batch.events);
    batches.push(batch);
  }
  return { events, stats, batches };
}

/** Output counted as the reader counts it: in the batches that report no usage. */
function countBeforeUsage(batches: ProviderStreamBatch[], count: (payloads: string[]) => number): number {
  return batches.filter((batch) => batch.usage === null).reduce((sum, batch) => sum + count(batch.events.map((event) => event.data)), 0);
}

async function collectError(body: AsyncIterable<Uint8Array>, events: ProviderStreamEvent[] = []): Promise<GatewayError> {
  try {
    for await (const batch of readProviderStream(body)) events.push(...batch.events);
  } catch (error) {
    if (GatewayError.is(error)) return error;
    throw error;
  }
  throw new Error("expected the stream to fail");
}

function sse(...payloads: string[]): string {
  return payloads.map((payload) => `data: ${payload}\n\n`).join("");
}

function contentChunk(content: string, usage = "null"): string {
  return `{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}},"finish_reason":null}],"usage":${usage}}`;
}

describe("readProviderStream on recorded upstream streams", () => {
  it("yields every OpenAI event unchanged and in order, with usage on the trailing usage-only chunk", async () => {
    const bytes = readCapture("openai-chat-text-include-usage.txt");
    const { events, stats, batches } = await collect(fakeBody(chunked(bytes, 512)).body);
    const payloads = capturePayloads(bytes);
    expect(events.map((event) => event.data)).toEqual(payloads);
    // The usage trailer arrives last, so every content chunk but those in its batch is counted.
    expect(countBeforeUsage(batches, countContentDeltas)).toBeGreaterThan(countContentDeltas(payloads) - 2);
    const last = events.at(-1);
    expect(last?.usage).toEqual({ inputTokens: 16, outputTokens: 300, cachedInputTokens: 0, source: "upstream" });
    expect(last?.usageOnly).toBe(true);
    expect(events.slice(0, -1).every((event) => event.usage === undefined && event.usageOnly === undefined)).toBe(true);
    expect(stats).toEqual({
      events: payloads.length,
      outputDeltaEvents: countBeforeUsage(batches, countContentDeltas),
      usage: { inputTokens: 16, outputTokens: 300, cachedInputTokens: 0, source: "upstream" },
      endedBy: "done",
    });
  });

  it("yields Azure's prompt-filter preamble and filter annotations unchanged, and finds its usage", async () => {
    const bytes = readCapture("azure-chat-text-include-usage.txt");
    const { events, stats } = await collect(fakeBody(chunked(bytes, 97)).body);
    expect(events.map((event) => event.data)).toEqual(capturePayloads(bytes));
    expect(events[0]?.data).toContain('"prompt_filter_results"');
    expect(events[0]?.usage).toBeUndefined();
    expect(events.at(-1)).toMatchObject({
      usage: { inputTokens: 15, outputTokens: 78, cachedInputTokens: 0, source: "upstream" },
      usageOnly: true,
    });
    // "Capital", " of", " Denmark", ".": the opener's `"content":""` does not count.
    expect(stats.outputDeltaEvents).toBe(4);
  });

  it("ends a TGI 3.2.1 stream at [DONE] with no usage, counting one output delta per content chunk", async () => {
    const bytes = readCapture("tgi-3.2.1-chat-text.hf-hub-cassette.txt");
    const { events, stats } = await collect(fakeBody(chunked(bytes, 333)).body);
    expect(events.map((event) => event.data)).toEqual(capturePayloads(bytes));
    expect(events).toHaveLength(20);
    expect(events.every((event) => event.usage === undefined)).toBe(true);
    expect(stats).toEqual({ events: 20, outputDeltaEvents: 20, usage: null, endedBy: "done" });
  });

  it("counts tool-call argument fragments as output deltas (OpenAI parallel tool calls)", async () => {
    const bytes = readCapture("openai-chat-tool-calls-parallel.txt");
    const { events, stats, batches } = await collect(fakeBody(chunked(bytes, 64)).body);
    const payloads = capturePayloads(bytes);
    expect(events.map((event) => event.data)).toEqual(payloads);
    expect(stats.outputDeltaEvents).toBe(countBeforeUsage(batches, countArgumentDeltas));
    expect(stats.outputDeltaEvents).toBeGreaterThan(countArgumentDeltas(payloads) - 2);
    expect(stats.usage).toEqual({ inputTokens: 149, outputTokens: 60, source: "upstream" });
  });
});

/** The reference count, by parsing: events with a non-empty `delta.content`. */
function countContentDeltas(payloads: string[]): number {
  return payloads.filter((payload) => {
    const chunk = JSON.parse(payload) as { choices: Array<{ delta?: { content?: unknown } }> };
    return chunk.choices.some((choice) => typeof choice.delta?.content === "string" && choice.delta.content !== "");
  }).length;
}

/** The reference count, by parsing: events with non-empty tool-call `arguments`. */
function countArgumentDeltas(payloads: string[]): number {
  return payloads.filter((payload) => {
    const chunk = JSON.parse(payload) as {
      choices: Array<{ delta?: { tool_calls?: Array<{ function?: { arguments?: string } }> } }>;
    };
    return chunk.choices.some((choice) => choice.delta?.tool_calls?.some((call) => (call.function?.arguments ?? "") !== ""));
  }).length;
}

describe("readProviderStream endings", () => {
  it("stops at [DONE] and reads no further, closing the body", async () => {
    const source = fakeBody([sse(contentChunk("a"), "[DONE]"), sse(contentChunk("after the end")), "data: more\n\n"]);
    const { events, stats } = await collect(source.body);
    expect(events.map((event) => event.data)).toEqual([contentChunk("a")]);
    expect(source.pulled).toBe(1);
    expect(source.closed).toBe(true);
    expect(stats.endedBy).toBe("done");
  });

  it("ends cleanly at the end of a body without [DONE] (TGI 1.4, with its trailing blank line)", async () => {
    const chunk = '{"id":"","object":"text_completion","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}';
    const finish = '{"id":"","object":"text_completion","choices":[{"index":0,"delta":{},"finish_reason":"eos_token"}]}';
    const { events, stats } = await collect(fakeBody([`data:${chunk}\n\n`, `data:${finish}\n\n`]).body);
    expect(events.map((event) => event.data)).toEqual([chunk, finish]);
    expect(stats).toEqual({ events: 2, outputDeltaEvents: 1, usage: null, endedBy: "eof" });
  });

  it("ends cleanly at the end of a body whose last event has no blank line after it", async () => {
    const { events, stats } = await collect(fakeBody([`data:${contentChunk("a")}\n\ndata:${contentChunk("b")}`]).body);
    expect(events.map((event) => event.data)).toEqual([contentChunk("a"), contentChunk("b")]);
    expect(stats.endedBy).toBe("eof");
  });

  it("returns the stats as the generator's value, and fills a stats object handed in", async () => {
    const stats = createStreamStats();
    const generator = readProviderStream(fakeBody([sse(contentChunk("a"), "[DONE]")]).body, { stats });
    const first = await generator.next();
    expect(first.done).toBe(false);
    expect((first.value as ProviderStreamBatch).events).toEqual([{ data: contentChunk("a") }]);
    expect(stats.events).toBe(1);
    const end = await generator.next();
    expect(end).toEqual({ done: true, value: stats });
    expect(end.value).toBe(stats);
  });

  it("yields an empty stream as no events", async () => {
    const { events, stats } = await collect(fakeBody([]).body);
    expect(events).toEqual([]);
    expect(stats).toEqual({ events: 0, outputDeltaEvents: 0, usage: null, endedBy: "eof" });
  });
});

describe("readProviderStream usage placement", () => {
  it("keeps the last of the cumulative usages vLLM repeats on every chunk", async () => {
    const usage = (completion: number) => `{"prompt_tokens":20,"total_tokens":${20 + completion},"completion_tokens":${completion}}`;
    const finalChunk = `{"id":"chat-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":${usage(3)}}`;
    const { events, stats } = await collect(
      fakeBody([sse(contentChunk("a", usage(1)), contentChunk("b", usage(2)), contentChunk("c", usage(3)), finalChunk, "[DONE]")]).body,
    );
    expect(events.map((event) => event.usage?.outputTokens)).toEqual([1, 2, 3, 3]);
    expect(events.map((event) => event.usageOnly)).toEqual([false, false, false, true]);
    expect(stats.usage).toEqual({ inputTokens: 20, outputTokens: 3, source: "upstream" });
    // Reported usage makes the estimate moot: a batch that has it is not scanned for output.
    expect(stats.outputDeltaEvents).toBe(0);
  });

  it("finds llama.cpp's usage inside its finish chunk, which is not usage-only", async () => {
    const finish =
      '{"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1754500000,"id":"chatcmpl-x","model":"gpt-3.5-turbo","object":"chat.completion.chunk","usage":{"completion_tokens":12,"prompt_tokens":80,"total_tokens":92},"timings":{"prompt_n":80,"predicted_n":12}}';
    const { events, stats } = await collect(fakeBody([sse(contentChunk("Hello"), finish, "[DONE]")]).body);
    expect(events[1]).toEqual({
      data: finish,
      usage: { inputTokens: 80, outputTokens: 12, source: "upstream" },
      usageOnly: false,
    });
    expect(stats.usage?.outputTokens).toBe(12);
  });
});

describe("readProviderStream failures", () => {
  const errorEvents = [
    ["OpenAI", '{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}', "The server had an error"],
    ["TGI in a stream", '{"error":{"message":"Input validation error","http_status_code":422}}', "Input validation error"],
    ["TGI native", '{"error":"CUDA out of memory","error_type":"generation"}', "CUDA out of memory"],
    ["vLLM < 0.10.1", '{"object":"error","message":"context too long","type":"BadRequestError","param":null,"code":400}', "context too long"],
  ] as const;

  it.each(errorEvents)("throws the %s error event as a GatewayError with its message", async (_shape, payload, message) => {
    const source = fakeBody([sse(contentChunk("partial"), payload, contentChunk("never read")), sse("[DONE]")]);
    const events: ProviderStreamEvent[] = [];
    const error = await collectError(source.body, events);
    // A 4xx the upstream names (TGI's 422, vLLM's 400) stays a client error; the rest are 502s.
    expect(GatewayError.is(error)).toBe(true);
    expect(error.message).toBe(message);
    expect(events.map((event) => event.data)).toEqual([contentChunk("partial")]);
    expect(source.closed).toBe(true);
    expect(source.pulled).toBe(1);
  });

  it("turns a body that fails mid-way into an upstream_error carrying the cause", async () => {
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    const events: ProviderStreamEvent[] = [];
    const error = await collectError(fakeBody([sse(contentChunk("a")), "data: {\"cut"], reset).body, events);
    expect(error.code).toBe("upstream_error");
    expect(error.status).toBe(502);
    expect(error.message).toMatch(/^The upstream connection failed mid-stream/);
    expect(error.message).not.toContain("ECONNRESET");
    expect(error.cause).toBe(reset);
    expect(events.map((event) => event.data)).toEqual([contentChunk("a")]);
  });

  it("passes on a GatewayError the body itself throws", async () => {
    const timeout = new GatewayError("upstream_timeout", "The upstream stopped sending for 60 s.");
    expect(await collectError(fakeBody([sse(contentChunk("a"))], timeout).body)).toBe(timeout);
  });

  it("does not meter as finished a stream that failed", async () => {
    const stats = createStreamStats();
    await expect(collect(fakeBody([sse(contentChunk("a"))], new Error("reset")).body, { stats })).rejects.toThrow(GatewayError);
    expect(stats).toEqual({ events: 1, outputDeltaEvents: 1, usage: null, endedBy: null });
  });
});

describe("readProviderStream cancellation", () => {
  it("yields the events of one chunk as one batch, and stops reading when the consumer breaks out", async () => {
    const source = fakeBody([sse(contentChunk("a"), contentChunk("b")), sse(contentChunk("c")), sse("[DONE]")]);
    const stats = createStreamStats();
    for await (const batch of readProviderStream(source.body, { stats })) {
      expect(batch.events.map((event) => event.data)).toEqual([contentChunk("a"), contentChunk("b")]);
      break;
    }
    expect(source.closed).toBe(true);
    expect(source.pulled).toBe(1);
    expect(stats).toMatchObject({ events: 2, endedBy: null });
  });

  it("yields nothing for a chunk that completes no event", async () => {
    const batches: string[][] = [];
    const halves = [`data: ${contentChunk("a").slice(0, 10)}`, `${contentChunk("a").slice(10)}\n\n`, sse(contentChunk("b"))];
    for await (const batch of readProviderStream(fakeBody(halves).body)) batches.push(batch.events.map((event) => event.data));
    expect(batches).toEqual([[contentChunk("a")], [contentChunk("b")]]);
  });

  it("stops reading the body when the consumer throws", async () => {
    const source = fakeBody([sse(contentChunk("a")), sse(contentChunk("b"))]);
    const failure = new Error("client went away");
    await expect(
      (async () => {
        for await (const _batch of readProviderStream(source.body)) throw failure;
      })(),
    ).rejects.toBe(failure);
    expect(source.closed).toBe(true);
  });

  /** A body that delivers the chunks, then never answers again; records whether it was closed. */
  function stalledBody(chunks: string[]): { body: AsyncIterable<Uint8Array>; returnCalls: number } {
    const state = {
      returnCalls: 0,
      body: {
        [Symbol.asyncIterator]: (): AsyncIterator<Uint8Array> => {
          let index = 0;
          return {
            next: () => {
              const chunk = chunks[index];
              index += 1;
              if (chunk === undefined) return new Promise<never>(() => undefined);
              return Promise.resolve({ done: false, value: encoder.encode(chunk) });
            },
            return: () => {
              state.returnCalls += 1;
              return Promise.resolve({ done: true, value: undefined });
            },
          };
        },
      },
    };
    return state;
  }

  it("gives way to an abort while a read is pending, and asks the body to close", async () => {
    const source = stalledBody([sse(contentChunk("a"))]);
    const controller = new AbortController();
    const events: ProviderStreamEvent[] = [];
    const reading = (async () => {
      for await (const batch of readProviderStream(source.body, { signal: controller.signal })) {
        events.push(...batch.events);
        setTimeout(() => controller.abort(), 5);
      }
    })();
    const error: unknown = await reading.catch((caught: unknown) => caught);
    expect(GatewayError.is(error) && error.code).toBe("upstream_error");
    expect(events).toHaveLength(1);
    expect(source.returnCalls).toBe(1);
  });

  it("reports an AbortSignal.timeout as upstream_timeout", async () => {
    const error: unknown = await collect(stalledBody([]).body, { signal: AbortSignal.timeout(5) }).catch((caught: unknown) => caught);
    expect(GatewayError.is(error) && error.code).toBe("upstream_timeout");
    expect(GatewayError.is(error) && error.status).toBe(504);
  });

  it("throws the abort reason itself when it is a GatewayError", async () => {
    const reason = new GatewayError("provider_unavailable", "The provider was stopped.");
    const controller = new AbortController();
    controller.abort(reason);
    const source = fakeBody([sse(contentChunk("a"))]);
    await expect(collect(source.body, { signal: controller.signal })).rejects.toBe(reason);
    expect(source.pulled).toBe(0);
  });

  it("stops after the batch the consumer held when aborted meanwhile", async () => {
    const controller = new AbortController();
    const source = fakeBody([sse(contentChunk("a"), contentChunk("b")), sse(contentChunk("c"))]);
    const events: ProviderStreamEvent[] = [];
    const error: unknown = await (async () => {
      for await (const batch of readProviderStream(source.body, { signal: controller.signal })) {
        events.push(...batch.events);
        controller.abort();
      }
    })().catch((caught: unknown) => caught);
    expect(GatewayError.is(error)).toBe(true);
    expect(events).toHaveLength(2);
    expect(source.pulled).toBe(1);
    expect(source.closed).toBe(true);
  });

  it("reports an abort that the body itself noticed as the abort, not as a connection failure", async () => {
    const controller = new AbortController();
    const body = (async function* () {
      yield encoder.encode(sse(contentChunk("a")));
      controller.abort(new GatewayError("upstream_timeout", "The upstream did not answer in time."));
      // undici rejects the pending read with its own error when the request's signal aborts.
      throw Object.assign(new Error("This operation was aborted"), { name: "AbortError" });
    })();
    const error: unknown = await collect(body, { signal: controller.signal }).catch((caught: unknown) => caught);
    expect(GatewayError.is(error) && error.code).toBe("upstream_timeout");
  });
});

describe("readProviderStream output counting", () => {
  it("counts output in the batches that report no usage, and skips the scan in one that does", async () => {
    const usage = '{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}';
    const { stats, batches } = await collect(fakeBody([sse(contentChunk("a"), contentChunk("b")), sse(contentChunk("c"), usage, "[DONE]")]).body);
    expect(batches.map((batch) => batch.outputDeltaEvents)).toEqual([2, 0]);
    expect(stats).toEqual({ events: 4, outputDeltaEvents: 2, usage: { inputTokens: 5, outputTokens: 3, source: "upstream" }, endedBy: "done" });
  });
});
