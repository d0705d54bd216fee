import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { seededRandom } from "../testing/seeded-random.js";
import { SseDecoder, type SseEvent } from "./sse-decoder.js";

const encoder = new TextEncoder();

function bytesOf(...parts: Array<string | number[]>): Uint8Array {
  const arrays = parts.map((part) => (typeof part === "string" ? encoder.encode(part) : Uint8Array.from(part)));
  const result = new Uint8Array(arrays.reduce((length, array) => length + array.length, 0));
  let offset = 0;
  for (const array of arrays) {
    result.set(array, offset);
    offset += array.length;
  }
  return result;
}

/** Feeds the chunks to one decoder, then flushes it: everything the stream produced. */
function decodeChunks(chunks: Array<Uint8Array | string>): SseEvent[] {
  const decoder = new SseDecoder();
  const events: SseEvent[] = [];
  for (const chunk of chunks) events.push(...decoder.decode(typeof chunk === "string" ? encoder.encode(chunk) : chunk));
  events.push(...decoder.flush());
  return events;
}

function dataOf(events: SseEvent[]): string[] {
  return events.map((event) => event.data);
}

function sameEvents(left: SseEvent[], right: SseEvent[]): boolean {
  if (left.length !== right.length) return false;
  return left.every((event, index) => {
    const other = right[index];
    return other !== undefined && event.data === other.data && event.event === other.event && event.id === other.id;
  });
}

/** The offsets (as [first, second) chunk boundaries) at which splitting `bytes` changes the events. */
function offsetsThatDiffer(bytes: Uint8Array, expected: SseEvent[], offsets: Iterable<number>): number[] {
  const failures: number[] = [];
  for (const offset of offsets) {
    if (!sameEvents(decodeChunks([bytes.subarray(0, offset), bytes.subarray(offset)]), expected)) failures.push(offset);
  }
  return failures;
}

function range(start: number, end: number): number[] {
  return Array.from({ length: Math.max(0, end - start) }, (_, index) => start + index);
}

const fixtureDirectory = new URL("../testing/__fixtures__/sse/", import.meta.url);
const captures = readdirSync(fixtureDirectory)
  .filter((name) => name.endsWith(".txt"))
  .sort()
  .map((name) => ({ name, bytes: new Uint8Array(readFileSync(new URL(name, fixtureDirectory))) }));

/**
 * The straightforward reading of our captures, which all use LF, single-line `data: ` events and
 * `: ` comment headers: every line starting with "data: " is one event.
 */
function referenceSplit(bytes: Uint8Array): string[] {
  return new TextDecoder()
    .decode(bytes)
    .split("\n")
    .filter((line) => line.startsWith("data: "))
    .map((line) => line.slice("data: ".length));
}


// Splitting a capture at every offset decodes it once per offset. Above this size that costs
// tens of seconds (the 101 KB OpenAI capture: ~20 s), so larger captures are split at every
// offset within each event's own block instead, plus a literal whole-file sample (see below).
const exhaustiveWholeFileLimit = 16 * 1024;

describe("SseDecoder on recorded upstream streams", () => {
  it("has the captures to test", () => {
    expect(captures.map((capture) => capture.name)).toEqual(
      expect.arrayContaining(["azure-chat-text-include-usage.txt", "openai-chat-text-include-usage.txt"]),
    );
    expect(captures.length).toBeGreaterThanOrEqual(5);
  });

  describe.each(captures)("$name", ({ bytes }) => {
    const whole = decodeChunks([bytes]);

    it("decodes to the events a line-by-line reading finds, ignoring the comment header", () => {
      const reference = referenceSplit(bytes);
      expect(reference.length).toBeGreaterThan(0);
      expect(dataOf(whole)).toEqual(reference);
      expect(whole.every((event) => event.event === undefined && event.id === undefined)).toBe(true);
    });

    it("decodes to the same events fed one byte at a time", () => {
      expect(sameEvents(decodeChunks(range(0, bytes.length).map((offset) => bytes.subarray(offset, offset + 1))), whole)).toBe(true);
    });

    it("decodes to the same events split into two chunks at every byte offset", () => {
      if (bytes.length <= exhaustiveWholeFileLimit) {
        expect(offsetsThatDiffer(bytes, whole, range(0, bytes.length + 1))).toEqual([]);
        return;
      }
      // A blank line returns the decoder to its initial state (the captures set no `id`), so a
      // split inside one event's block affects only that block: every offset of every block,
      // each fed to a fresh decoder, covers every offset of the file ...
      const blocks = blocksOf(bytes);
      expect(blocks.flatMap((block) => decodeChunks([block]))).toEqual(whole);
      const failures: string[] = [];
      blocks.forEach((block, blockIndex) => {
        const expected = decodeChunks([block]);
        for (const offset of offsetsThatDiffer(block, expected, range(0, block.length + 1))) {
          failures.push(`block ${blockIndex} at ${offset}`);
        }
      });
      expect(failures).toEqual([]);
      // ... and the literal whole-file split is checked at every offset of the head, the tail and
      // around each multi-byte character, and at a stride elsewhere.
      const offsets = new Set([...range(0, 2048), ...range(bytes.length - 2048, bytes.length + 1)]);
      bytes.forEach((byte, index) => {
        if (byte >= 0x80) for (const offset of range(index - 256, index + 256)) offsets.add(offset);
      });
      for (let offset = 0; offset < bytes.length; offset += 101) offsets.add(offset);
      expect(offsetsThatDiffer(bytes, whole, offsets)).toEqual([]);
    });

    it("decodes to the same events split into three chunks at random offsets", () => {
      const random = seededRandom(0x5eed + bytes.length);
      const failures: Array<[number, number]> = [];
      for (let trial = 0; trial < 300; trial += 1) {
        const first = Math.floor(random() * (bytes.length + 1));
        const second = first + Math.floor(random() * (bytes.length + 1 - first));
        const events = decodeChunks([bytes.subarray(0, first), bytes.subarray(first, second), bytes.subarray(second)]);
        if (!sameEvents(events, whole)) failures.push([first, second]);
      }
      expect(failures).toEqual([]);
    });
  });
});

/** The capture cut after each blank line ("\n\n"): one block per event (the first holds the header). */
function blocksOf(bytes: Uint8Array): Uint8Array[] {
  const blocks: Uint8Array[] = [];
  let start = 0;
  for (let index = 1; index < bytes.length; index += 1) {
    if (bytes[index] === 0x0a && bytes[index - 1] === 0x0a) {
      blocks.push(bytes.subarray(start, index + 1));
      start = index + 1;
    }
  }
  if (start < bytes.length) blocks.push(bytes.subarray(start));
  return blocks;
}

describe("SseDecoder field parsing", () => {
  it("accepts `data:` with no space after the colon (TGI 1.4)", () => {
    expect(dataOf(decodeChunks(['data:{"object":"text_completion"}\n\n']))).toEqual(['{"object":"text_completion"}']);
  });

  it("strips exactly one leading space from a value", () => {
    expect(dataOf(decodeChunks(["data:  two spaces\n\n", "data:\tand a tab\n\n"]))).toEqual([" two spaces", "\tand a tab"]);
  });

  it("joins multiple data lines with a line feed", () => {
    expect(dataOf(decodeChunks(["data: first\ndata: second\ndata:\ndata: fourth\n\n"]))).toEqual([
      "first\nsecond\n\nfourth",
    ]);
  });

  it("treats a field name without a colon as an empty value", () => {
    expect(decodeChunks(["data\n\n"])).toEqual([{ data: "" }]);
    expect(decodeChunks(["data\ndata\n\n"])).toEqual([{ data: "\n" }]);
  });

  it("ignores comment lines, keep-alives included", () => {
    expect(dataOf(decodeChunks([": keep-alive\n\n:\n", "data: x\n: between lines\ndata: y\n\n"]))).toEqual(["x\ny"]);
  });

  it("ignores fields other than data, event and id", () => {
    expect(decodeChunks(["retry: 1000\nfoo: bar\nDATA: shouted\ndata: kept\n\n"])).toEqual([{ data: "kept" }]);
  });

  it("does not emit an event without a data line, nor leak its type into the next event", () => {
    expect(decodeChunks(["event: ping\n\n", "id\n\n", "data: x\n\n"])).toEqual([{ data: "x" }]);
  });

  it("reports the event type for its own event only, and keeps the last id until it changes", () => {
    expect(
      decodeChunks(["event: update\nid: 7\ndata: a\n\n", "data: b\n\n", "id: 8\ndata: c\n\n", "id\ndata: d\n\n"]),
    ).toEqual([{ data: "a", event: "update", id: "7" }, { data: "b", id: "7" }, { data: "c", id: "8" }, { data: "d" }]);
  });

  it("ignores an id containing NUL, as WHATWG requires", () => {
    expect(decodeChunks(["id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n"])).toEqual([
      { data: "a", id: "1" },
      { data: "b", id: "1" },
    ]);
  });

  it("keeps colons after the first as part of the value", () => {
    expect(dataOf(decodeChunks(['data: {"a":"b:c"}\n\n']))).toEqual(['{"a":"b:c"}']);
  });
});

describe("SseDecoder line endings", () => {
  it("accepts CRLF", () => {
    expect(dataOf(decodeChunks(["data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n"]))).toEqual(["a\nb", "c"]);
  });

  it("accepts a lone CR", () => {
    expect(dataOf(decodeChunks(["data: a\rdata: b\r\rdata: c\r\r"]))).toEqual(["a\nb", "c"]);
  });

  it("accepts mixed endings in one stream", () => {
    expect(dataOf(decodeChunks(["data: a\n\r\ndata: b\r\rdata: c\r\n\n"]))).toEqual(["a", "b", "c"]);
  });

  it("reads a CR ending one chunk and an LF opening the next as one line end", () => {
    // Were the LF a second (blank) line, "a" and "b" would be dispatched as two events.
    expect(dataOf(decodeChunks(["data: a\r", "\ndata: b\r", "\n\r", "\n"]))).toEqual(["a\nb"]);
  });

  it("keeps a pending CR across chunks that decode to no text", () => {
    expect(dataOf(decodeChunks(["data: a\r", new Uint8Array(0), "\ndata: b\r\n\r\n"]))).toEqual(["a\nb"]);
  });

  it("reads CR, LF split over chunks followed by a blank CR line as the end of the event", () => {
    expect(dataOf(decodeChunks(["data: a\r", "\n", "\r", "data: b\r\n\r\n"]))).toEqual(["a", "b"]);
  });
});

describe("SseDecoder at the end of the stream", () => {
  it("emits nothing more on flush when the last event ended with a blank line", () => {
    const decoder = new SseDecoder();
    expect(dataOf(decoder.decode(encoder.encode("data: a\n\n")))).toEqual(["a"]);
    expect(decoder.flush()).toEqual([]);
  });

  it("emits on flush a last event that the body ended without a blank line (TGI 1.4)", () => {
    const decoder = new SseDecoder();
    expect(dataOf(decoder.decode(encoder.encode('data:{"n":1}\n\ndata:{"n":2}\n')))).toEqual(['{"n":1}']);
    expect(dataOf(decoder.flush())).toEqual(['{"n":2}']);
  });

  it("emits on flush a last line that has no line end at all", () => {
    expect(dataOf(decodeChunks(["data: a\ndata: b"]))).toEqual(["a\nb"]);
  });

  it("emits nothing on flush for a trailing comment or an event without data", () => {
    expect(decodeChunks(["data: a\n\n: bye"])).toEqual([{ data: "a" }]);
    expect(decodeChunks(["data: a\n\nevent: end\n"])).toEqual([{ data: "a" }]);
  });

  it("starts a new stream after flush", () => {
    const decoder = new SseDecoder();
    decoder.decode(encoder.encode("id: 1\ndata: a\n\ndata: unfinished"));
    expect(decoder.flush()).toEqual([{ data: "unfinished", id: "1" }]);
    expect(decoder.decode(bytesOf([0xef, 0xbb, 0xbf], "data: b\n\n"))).toEqual([{ data: "b" }]);
  });
});

describe("SseDecoder text decoding", () => {
  const fox = "🦊"; // four bytes in UTF-8

  it("decodes a multi-byte character split across chunks at every byte", () => {
    const bytes = encoder.encode(`data: {"content":"${fox} ø"}\n\n`);
    const expected = [`{"content":"${fox} ø"}`];
    for (let offset = 0; offset <= bytes.length; offset += 1) {
      expect(dataOf(decodeChunks([bytes.subarray(0, offset), bytes.subarray(offset)]))).toEqual(expected);
    }
    expect(dataOf(decodeChunks(Array.from(bytes, (byte) => Uint8Array.of(byte))))).toEqual(expected);
  });

  it("drops a UTF-8 byte order mark at the start of the stream, even split over chunks", () => {
    expect(dataOf(decodeChunks([bytesOf([0xef, 0xbb, 0xbf], "data: a\n\n")]))).toEqual(["a"]);
    expect(dataOf(decodeChunks([bytesOf([0xef]), bytesOf([0xbb]), bytesOf([0xbf], "data: a\n\n")]))).toEqual(["a"]);
  });

  it("keeps a U+FEFF that is not at the start of the stream", () => {
    expect(dataOf(decodeChunks(["data: \uFEFFa\n\n"]))).toEqual(["\uFEFFa"]);
  });

  it("keeps a U+FEFF that opens a later chunk, after chunks of plain ASCII", () => {
    expect(dataOf(decodeChunks(["data: a", bytesOf([0xef, 0xbb, 0xbf], "b\n\n")]))).toEqual(["a\uFEFFb"]);
    // As content, a BOM opening a line makes its field "\uFEFFdata", which WHATWG ignores.
    expect(dataOf(decodeChunks(["data: a\n\n", bytesOf([0xef, 0xbb, 0xbf], "data: b\n\n")]))).toEqual(["a"]);
    expect(dataOf(decodeChunks([bytesOf("data: a\n\n", [0xef, 0xbb, 0xbf], "data: b\n\n")]))).toEqual(["a"]);
  });

  it("decodes a character split across chunks that follow chunks of plain ASCII", () => {
    const bytes = encoder.encode(`data: {"content":"${fox}"}\n\n`);
    const at = bytes.indexOf(0xf0);
    expect(dataOf(decodeChunks([bytes.subarray(0, 4), bytes.subarray(4, at + 2), bytes.subarray(at + 2)]))).toEqual([`{"content":"${fox}"}`]);
  });

  it("starts each stream afresh after flush: a BOM opening the next one is dropped again", () => {
    const decoder = new SseDecoder();
    expect(dataOf(decoder.decode(encoder.encode("data: \u00e9\n\n")))).toEqual(["\u00e9"]);
    expect(decoder.flush()).toEqual([]);
    expect(dataOf(decoder.decode(bytesOf([0xef, 0xbb, 0xbf], "data: a\n\n")))).toEqual(["a"]);
    expect(decoder.flush()).toEqual([]);
    expect(dataOf(decoder.decode(encoder.encode("data: a\n\n")))).toEqual(["a"]);
    // Mid-stream the BOM is content: the line's field is "\uFEFFdata", which WHATWG ignores.
    expect(decoder.decode(bytesOf([0xef, 0xbb, 0xbf], "data: b\n\n"))).toEqual([]);
  });

  it("replaces invalid UTF-8 with U+FFFD rather than failing", () => {
    expect(dataOf(decodeChunks([bytesOf("data: a", [0xff], "b\n\n")]))).toEqual(["a\uFFFDb"]);
  });

  it("replaces a character cut off by the end of the body", () => {
    expect(dataOf(decodeChunks([bytesOf("data: a", [0xf0, 0x9f])]))).toEqual(["a\uFFFD"]);
  });
});
