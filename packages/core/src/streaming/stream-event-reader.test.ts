import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import type { ProviderStreamBatch } from "../provider/provider.js";
import { expectConsistentBatch } from "../testing/collect-stream-events.js";
import { SseDecoder } from "./sse-decoder.js";
import { StreamEventReader } from "./stream-event-reader.js";

const encoder = new TextEncoder();

function readCapture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../testing/__fixtures__/sse/${name}`, import.meta.url)));
}

/** The reference: every payload the WHATWG decoder finds, up to `[DONE]`. */
function referencePayloads(bytes: Uint8Array): string[] {
  const decoder = new SseDecoder();
  const payloads: string[] = [];
  for (const event of [...decoder.decode(bytes), ...decoder.flush()]) {
    if (event.data === "[DONE]") break;
    payloads.push(event.data);
  }
  return payloads;
}

/** Reads the chunks to the end; checks every batch against the contract on the way. */
function readAll(chunks: Uint8Array[]): { payloads: string[]; batches: ProviderStreamBatch[]; reader: StreamEventReader } {
  const reader = new StreamEventReader();
  const batches: ProviderStreamBatch[] = [];
  for (const chunk of chunks) {
    const batch = reader.read(chunk);
    if (batch !== null) batches.push(batch);
  }
  const last = reader.end();
  if (last !== null) batches.push(last);
  for (const batch of batches) {
    expect(batch.events.length).toBeGreaterThan(0);
    expectConsistentBatch(batch);
  }
  return { payloads: batches.flatMap((batch) => batch.events.map((event) => event.data)), batches, reader };
}

function splitAt(bytes: Uint8Array, ...offsets: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const offset of offsets) {
    chunks.push(bytes.subarray(from, offset));
    from = offset;
  }
  chunks.push(bytes.subarray(from));
  return chunks;
}

const chunk = (content: string) => JSON.stringify({ object: "chat.completion.chunk", model: "m", choices: [{ index: 0, delta: { content } }] });

/**
 * Streams in every shape the reader must get right: the plain `data:` runs it takes whole, and
 * everything it hands to the decoder, side by side in one body.
 */
const shapes: Record<string, string> = {
  "plain data events": `data: ${chunk("a")}\n\ndata: ${chunk("b")}\n\ndata: [DONE]\n\n`,
  "a keep-alive comment between events (TGI)": `data: ${chunk("a")}\n\n: keep-alive\n\ndata: ${chunk("b")}\n\ndata: [DONE]\n\n`,
  "no space after the colon (TGI 1.4)": `data:${chunk("a")}\n\ndata: ${chunk("b")}\n\ndata:${chunk("c")}\n\n`,
  "CRLF line ends": `data: ${chunk("a")}\r\n\r\ndata: ${chunk("b")}\r\n\r\ndata: [DONE]\r\n\r\n`,
  "CR line ends": `data: ${chunk("a")}\r\rdata: ${chunk("b")}\r\r`,
  "event and id fields": `event: message\nid: 7\ndata: ${chunk("a")}\n\ndata: ${chunk("b")}\n\nid: 8\ndata: ${chunk("c")}\n\n`,
  "a payload over several data lines": `data: {"object":"chat.completion.chunk",\ndata: "choices":[]}\n\ndata: ${chunk("b")}\n\n`,
  "a data line that reads like a field": `data: first\ndata: data: second\n\ndata: ${chunk("b")}\n\n`,
  "an empty payload and a field-less line": `data: \n\ndata\n\ndata: ${chunk("b")}\n\n`,
  "events after [DONE]": `data: ${chunk("a")}\n\ndata: [DONE]\n\ndata: ${chunk("never")}\n\n`,
  "a [DONE] look-alike": `data: [DONE] \n\ndata: ${chunk("b")}\n\ndata: [DONE]\n\n`,
  "no blank line at the end": `data: ${chunk("a")}\n\ndata: ${chunk("b")}`,
  "multi-byte characters": `data: ${chunk("Ünïcødé ✓ 🚀")}\n\ndata: ${chunk("日本語")}\n\n`,
  "a leading byte-order mark": `\uFEFFdata: ${chunk("a")}\n\ndata: ${chunk("b")}\n\n`,
};

describe("StreamEventReader reads every SSE shape as the WHATWG decoder does", () => {
  for (const [name, text] of Object.entries(shapes)) {
    const bytes = encoder.encode(text);
    const expected = referencePayloads(bytes);

    it(`${name}: whole, in one chunk`, () => {
      expect(readAll([bytes]).payloads).toEqual(expected);
    });

    it(`${name}: split into two chunks at every byte offset`, () => {
      for (let offset = 0; offset <= bytes.length; offset++) {
        expect(readAll(splitAt(bytes, offset)).payloads, `split at ${offset}`).toEqual(expected);
      }
    });

    it(`${name}: one byte at a time`, () => {
      const bytewise = Array.from({ length: bytes.length }, (_, index) => bytes.subarray(index, index + 1));
      expect(readAll(bytewise).payloads).toEqual(expected);
    });
  }

  it("reads the recorded captures in chunks of every size from 1 to 700 bytes", () => {
    for (const name of ["openai-chat-text-include-usage.txt", "azure-chat-text-include-usage.txt", "tgi-3.2.1-chat-text.hf-hub-cassette.txt"]) {
      const bytes = readCapture(name);
      const expected = referencePayloads(bytes);
      for (let size = 1; size <= 700; size += size < 40 ? 1 : 23) {
        const chunks = Array.from({ length: Math.ceil(bytes.length / size) }, (_, index) => bytes.subarray(index * size, (index + 1) * size));
        expect(readAll(chunks).payloads, `${name} in chunks of ${size}`).toEqual(expected);
      }
    }
  });
});

describe("StreamEventReader batches", () => {
  it("keeps an upstream's plain data events as the very text that arrived", () => {
    const text = `data: ${chunk("a")}\n\ndata: ${chunk("b")}\n\n`;
    const { batches } = readAll([encoder.encode(text)]);
    expect(batches.map((batch) => batch.text)).toEqual([text]);
  });

  it("frames what it decoded in the same shape: one `data: ` line per payload line", () => {
    const { batches } = readAll([encoder.encode(`: hi\r\nevent: x\r\ndata:one\r\ndata:two\r\n\r\n`)]);
    expect(batches.map((batch) => batch.text)).toEqual(["data: one\ndata: two\n\n"]);
    expect(batches[0]!.events).toEqual([{ data: "one\ntwo" }]);
  });

  it("stops at [DONE]: later events and later chunks are not read", () => {
    const { batches, reader } = readAll([encoder.encode(`data: ${chunk("a")}\n\ndata: [DONE]\n\n`), encoder.encode(`data: ${chunk("b")}\n\n`)]);
    expect(batches.flatMap((batch) => batch.events.map((event) => event.data))).toEqual([chunk("a")]);
    expect(reader.stats.endedBy).toBe("done");
  });

  it("marks the batch the stream ends with: at [DONE], or at the end of a body without it", () => {
    const reader = new StreamEventReader();
    expect(reader.read(encoder.encode(`data: ${chunk("a")}\n\n`))?.ended).toBe(false);
    expect(reader.read(encoder.encode(`data: ${chunk("b")}\n\ndata: [DONE]\n\n`))?.ended).toBe(true);

    const tgi = new StreamEventReader();
    expect(tgi.read(encoder.encode(`data:${chunk("a")}\n\ndata:${chunk("b")}`))?.ended).toBe(false);
    expect(tgi.end()?.ended).toBe(true);

    // A batch cut short by an error event is not the end: the error is still to come.
    const failing = new StreamEventReader();
    expect(failing.read(encoder.encode(`data: ${chunk("a")}\n\ndata: {"error":{"message":"x"}}\n\ndata: [DONE]\n\n`))?.ended).toBe(false);
    expect(failing.failure?.message).toBe("x");
  });

  it("reports the last usage and where the usage-only events are, parsing only those with a usage object", () => {
    const usage = (tokens: number, choices = "[]") => `{"choices":${choices},"usage":{"prompt_tokens":4,"completion_tokens":${tokens},"total_tokens":${4 + tokens}}}`;
    const events = [`{"choices":[{"delta":{"content":"a"}}],"usage":null}`, usage(1, '[{"delta":{"content":"b"}}]'), usage(2)];
    const text = events.map((payload) => `data: ${payload}\n\n`).join("");
    const reader = new StreamEventReader();
    const batch = reader.read(encoder.encode(text))!;
    expect(batch.usage).toEqual({ inputTokens: 4, outputTokens: 2, source: "upstream" });
    const usageOnlyStart = text.lastIndexOf("data: ");
    expect(batch.usageOnlySpans).toEqual([usageOnlyStart, text.length]);
    expect(batch.outputDeltaEvents).toBe(0);
    expectConsistentBatch(batch);
  });

  it("takes the latest usage from earlier events when the last one reports none", () => {
    const usage = (tokens: number) => `{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":${tokens}}}`;
    const events = [usage(1), usage(2), `{"choices":[{"delta":{"content":"late"}}],"usage":null}`];
    const text = events.map((payload) => `data: ${payload}\n\n`).join("");
    const batch = new StreamEventReader().read(encoder.encode(text))!;
    expect(batch.usage).toEqual({ inputTokens: 4, outputTokens: 2, source: "upstream" });
    const second = text.indexOf("data: ", 1);
    expect(batch.usageOnlySpans).toEqual([0, second, second, text.lastIndexOf("data: ")]);
    expectConsistentBatch(batch);
  });

  it("ignores a usage that is not an object, or not the payload's own", () => {
    const text = `data: {"choices":[{"delta":{"content":"a"}}],"usage":null}\n\ndata: {"choices":[],"extra":{"usage":{"prompt_tokens":1,"completion_tokens":1}}}\n\n`;
    const batch = new StreamEventReader().read(encoder.encode(text))!;
    expect(batch.usage).toBeNull();
    expect(batch.usageOnlySpans).toBeNull();
    expect(batch.outputDeltaEvents).toBe(1);
  });

  it("throws an error event that opens a chunk, and holds one that follows events until the next read", () => {
    const error = '{"error":{"message":"overloaded","type":"server_error"}}';
    expect(() => new StreamEventReader().read(encoder.encode(`data: ${error}\n\n`))).toThrow(GatewayError);

    const reader = new StreamEventReader();
    const batch = reader.read(encoder.encode(`data: ${chunk("a")}\n\ndata: ${error}\n\ndata: ${chunk("never")}\n\ndata: [DONE]\n\n`));
    expect(batch?.events.map((event) => event.data)).toEqual([chunk("a")]);
    expect(reader.failure?.message).toBe("overloaded");
    expect(reader.stats.endedBy).toBeNull();
    expect(reader.read(encoder.encode(`data: ${chunk("b")}\n\n`))).toBeNull();
  });

  it("takes llama.cpp's `error:` field and an `event: error` for error events, whatever follows them", () => {
    // llama.cpp's server before late 2025: the failure as an `error:` line, then [DONE] all the same.
    const llamaError = '{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}';
    let reader = new StreamEventReader();
    const batch = reader.read(encoder.encode(`data: ${chunk("a")}\n\nerror: ${llamaError}\n\ndata: [DONE]\n\n`));
    expect(batch?.events.map((event) => event.data)).toEqual([chunk("a")]);
    expect(batch?.ended).toBe(false);
    expect(reader.failure?.message).toBe("the request exceeds the available context size, try increasing it");
    expect(reader.failure?.status).toBe(400);
    expect(reader.stats.endedBy).toBeNull();

    // First in its chunk, it is thrown, as any error event.
    reader = new StreamEventReader();
    expect(() => reader.read(encoder.encode(`error: ${llamaError}\n\ndata: [DONE]\n\n`))).toThrow(/exceeds the available context size/);

    // A typed event whose payload is plain text, or already an error object.
    expect(() => new StreamEventReader().read(encoder.encode("event: error\ndata: model crashed\n\n"))).toThrow(/model crashed/);
    expect(() => new StreamEventReader().read(encoder.encode('event: error\ndata: {"error":{"message":"overloaded"}}\n\n'))).toThrow(/overloaded/);
  });

  it("does not take a nested error object for an error event (Azure's content-filter results)", () => {
    const filtered = '{"choices":[{"delta":{"content":"a"},"content_filter_results":{"error":{"code":"x","message":"filter unavailable"}}}]}';
    const reader = new StreamEventReader();
    expect(reader.read(encoder.encode(`data: ${filtered}\n\n`))?.events).toEqual([{ data: filtered }]);
    expect(reader.failure).toBeNull();
  });
});
