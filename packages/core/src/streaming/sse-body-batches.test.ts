import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import type { ProviderStreamBatch, ProviderStreamEvent } from "../provider/provider.js";
import { sseBodyBatches } from "./sse-body-batches.js";
import { createStreamStats } from "./stream-event-reader.js";

function contentChunk(text: string): string {
  return JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: text } }] });
}

function sse(...payloads: string[]): string {
  return payloads.map((payload) => `data: ${payload}\n\n`).join("");
}

/**
 * A byte body the test feeds by hand, as a socket would: `push` what arrived, `end`, or `fail`.
 * Its high-water mark is small, so a reader that stops reading shows as `pulledBeyond`.
 */
function manualBody(highWaterMark = 1024) {
  let reads = 0;
  const body = new Readable({
    highWaterMark,
    read() {
      reads += 1;
    },
  });
  return {
    body,
    push: (text: string) => body.push(Buffer.from(text)),
    end: () => body.push(null),
    fail: (error: Error) => body.destroy(error),
    /** How many times the body asked for more data (a paused reader stops these). */
    get reads() {
      return reads;
    },
  };
}

async function collect(batches: AsyncIterable<ProviderStreamBatch>): Promise<string[][]> {
  const out: string[][] = [];
  for await (const batch of batches) out.push(batch.events.map((event) => event.data));
  return out;
}

describe("sseBodyBatches", () => {
  it("yields the events of each arrival as one batch, and ends at [DONE]", async () => {
    const source = manualBody();
    const reading = collect(sseBodyBatches(source.body, new AbortController().signal));
    source.push(sse(contentChunk("a"), contentChunk("b")));
    await new Promise((resolve) => setImmediate(resolve));
    source.push(sse(contentChunk("c"), "[DONE]"));
    source.end();
    expect(await reading).toEqual([[contentChunk("a"), contentChunk("b")], [contentChunk("c")]]);
  });

  it("reads everything that has arrived in one step, whatever the body's chunking", async () => {
    const source = manualBody();
    source.push(sse(contentChunk("a")));
    source.push(sse(contentChunk("b")));
    source.push(`data: ${contentChunk("c").slice(0, 5)}`);
    const iterator = sseBodyBatches(source.body, new AbortController().signal);
    const first = await iterator.next();
    expect(first.value?.events.map((event) => event.data)).toEqual([contentChunk("a"), contentChunk("b")]);
    source.push(`${contentChunk("c").slice(5)}\n\ndata: [DONE]\n\n`);
    expect((await iterator.next()).value?.events.map((event) => event.data)).toEqual([contentChunk("c")]);
    expect((await iterator.next()).done).toBe(true);
  });

  it("dispatches the last event of a body that ends without a blank line or [DONE] (TGI 1.4)", async () => {
    const source = manualBody();
    const stats = createStreamStats();
    source.push(`data: ${contentChunk("a")}\n\ndata: ${contentChunk("b")}`);
    source.end();
    expect(await collect(sseBodyBatches(source.body, new AbortController().signal, { stats }))).toEqual([[contentChunk("a")], [contentChunk("b")]]);
    expect(stats.endedBy).toBe("eof");
  });

  it("marks usage, and finds it without counting output in the batch that reports it, into the stats handed in", async () => {
    const usage = JSON.stringify({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 } });
    const source = manualBody();
    source.push(sse(contentChunk("a"), contentChunk("b"), usage, "[DONE]"));
    const stats = createStreamStats();
    const events: ProviderStreamEvent[] = [];
    const batches: ProviderStreamBatch[] = [];
    for await (const batch of sseBodyBatches(source.body, new AbortController().signal, { stats })) {
      batches.push(batch);
      events.push(...batch.events);
    }
    expect(events.at(-1)).toMatchObject({ usageOnly: true, usage: { inputTokens: 7, outputTokens: 2, source: "upstream" } });
    expect(batches).toHaveLength(1);
    expect(batches[0]!.text).toBe(sse(contentChunk("a"), contentChunk("b"), usage));
    expect(batches[0]!.usageOnlySpans).toEqual([sse(contentChunk("a"), contentChunk("b")).length, sse(contentChunk("a"), contentChunk("b"), usage).length]);
    expect(stats).toEqual({ events: 3, outputDeltaEvents: 0, usage: { inputTokens: 7, outputTokens: 2, source: "upstream" }, endedBy: "done" });
  });

  it("returns the events before an error event, then throws it, and destroys the body", async () => {
    const source = manualBody();
    source.push(sse(contentChunk("partial"), JSON.stringify({ error: { message: "the model crashed" } }), contentChunk("never")));
    const iterator = sseBodyBatches(source.body, new AbortController().signal);
    expect((await iterator.next()).value?.events.map((event) => event.data)).toEqual([contentChunk("partial")]);
    const error: unknown = await iterator.next().catch((caught: unknown) => caught);
    expect(GatewayError.is(error) && error.message).toBe("the model crashed");
    expect(source.body.destroyed).toBe(true);
  });

  it("turns a body that fails mid-way into an upstream_error with the cause", async () => {
    const source = manualBody();
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    source.push(sse(contentChunk("a")));
    const iterator = sseBodyBatches(source.body, new AbortController().signal);
    expect((await iterator.next()).done).toBe(false);
    const pending = iterator.next();
    source.fail(reset);
    const error: unknown = await pending.catch((caught: unknown) => caught);
    expect(GatewayError.is(error) && error.code).toBe("upstream_error");
    expect(GatewayError.is(error) && error.cause).toBe(reset);
  });

  it("treats a body that closes without ending as a failure, not as the end of the stream", async () => {
    const source = manualBody();
    source.push(sse(contentChunk("a")));
    const iterator = sseBodyBatches(source.body, new AbortController().signal);
    await iterator.next();
    const pending = iterator.next();
    source.body.destroy();
    const error: unknown = await pending.catch((caught: unknown) => caught);
    expect(GatewayError.is(error) && error.code).toBe("upstream_error");
  });

  it("gives way to an abort while waiting for data, with the abort's reason, and destroys the body", async () => {
    const source = manualBody();
    const controller = new AbortController();
    source.push(sse(contentChunk("a")));
    const iterator = sseBodyBatches(source.body, controller.signal);
    await iterator.next();
    const pending = iterator.next();
    const reason = new GatewayError("upstream_timeout", "The upstream stopped sending.");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(source.body.destroyed).toBe(true);
  });

  it("destroys the body when the consumer leaves early, even before its first read", async () => {
    const early = manualBody();
    const iterator = sseBodyBatches(early.body, new AbortController().signal);
    await iterator.return();
    expect(early.body.destroyed).toBe(true);

    const midway = manualBody();
    midway.push(sse(contentChunk("a")));
    for await (const batch of sseBodyBatches(midway.body, new AbortController().signal)) {
      expect(batch.events).toHaveLength(1);
      break;
    }
    expect(midway.body.destroyed).toBe(true);
  });

  it("drains what follows [DONE] rather than destroying the body, so the connection stays usable", async () => {
    const source = manualBody();
    source.push(sse(contentChunk("a"), "[DONE]"));
    const iterator = sseBodyBatches(source.body, new AbortController().signal);
    await iterator.next();
    expect((await iterator.next()).done).toBe(true);
    // The chunked terminator, arriving after [DONE]: read, and the body ends cleanly.
    source.push("\r\n");
    source.end();
    await new Promise((resolve) => source.body.once("end", resolve));
    // Read to its end, not cut off: an undici body that ends so gives its connection back.
    expect(source.body.readableEnded).toBe(true);
    expect(source.body.errored).toBeNull();
  });

  it("stops pulling from the body while the consumer holds a batch (backpressure)", async () => {
    const source = manualBody(64);
    const iterator = sseBodyBatches(source.body, new AbortController().signal);
    source.push(sse(contentChunk("a")));
    await iterator.next();
    // More arrives than the high-water mark while nobody asks: the body stops asking for more.
    const accepted: boolean[] = [];
    for (let index = 0; index < 20; index++) accepted.push(source.push(sse(contentChunk(`x${index}`))));
    expect(accepted.at(-1)).toBe(false);
    const readsWhileHeld = source.reads;
    await new Promise((resolve) => setImmediate(resolve));
    expect(source.reads).toBe(readsWhileHeld);
    const next = await iterator.next();
    expect(next.value?.events.length).toBe(20);
    await iterator.return();
  });
});
