/**
 * The synchronous heart of every stream reader: turns SSE bytes into batches the gateway forwards,
 * with their usage, stopping at `[DONE]` and turning an error event into a GatewayError. The async
 * readers (`readProviderStream` over any async iterable of bytes, `sseBodyBatches` over a Node
 * Readable) only feed it chunks, so whatever the transport, a chunk costs one async step.
 *
 * A chunk is read as a whole wherever it can be. Nearly every upstream writes each event as one
 * `data: <payload>` line and a blank line; a run of such events is recognised with one string
 * search per event and becomes the batch's text as it arrived, with no event sliced out, parsed
 * or re-framed. The whole text is then searched once for an error; usage is looked for in the
 * last event first, and only an event that reports usage is parsed. Anything else (comments,
 * `event:` or `id:` fields, multi-line data, CR line ends, an event split across chunks) goes
 * through the WHATWG decoder and is re-framed in the same shape, so the gateway sees one format
 * whatever the upstream sent.
 * Measured in `npm run bench` (streaming, 32 connections), reading, classifying and framing event
 * by event cost the gateway most of what it added to the minimal proxy.
 */
import type { GatewayError } from "../errors/gateway-error.js";
import type { ProviderStreamBatch, ProviderStreamEvent, TokenUsage } from "../provider/provider.js";
import { SseDecoder } from "./sse-decoder.js";
import type { SseEvent } from "./sse-decoder.js";
import { mayHoldStreamError, nextUsageObject, outputDeltaText, readStreamError, readUsage } from "./stream-usage.js";

/**
 * What a stream has shown so far, kept current while it is read. The gateway meters from `usage`
 * when the upstream reported any; otherwise it counts the batches' `outputText` with its tokenizer.
 *
 * It is a mutable object the caller may hand in, because a stream that fails or that the client
 * abandons never returns a value: the output delivered so far must still be metered.
 */
export interface StreamStats {
  /** Events read (never counting `[DONE]`). */
  events: number;
  /**
   * Events with a non-empty content, refusal, reasoning or tool-call-arguments delta, in batches
   * that reported no usage (see `ProviderStreamBatch.outputDeltaEvents`): the fallback estimate,
   * about one token per event, where a batch carries no `outputText` to count.
   */
  outputDeltaEvents: number;
  /** The last usage the upstream reported; vLLM repeats cumulative usage on every chunk, so the last wins. */
  usage: TokenUsage | null;
  /**
   * How the stream ended: `done` at `[DONE]`, `eof` when the body closed without one (TGI 1.4
   * never sends it), null while it is running or when it failed or was abandoned.
   */
  endedBy: "done" | "eof" | null;
}

export function createStreamStats(): StreamStats {
  return { events: 0, outputDeltaEvents: 0, usage: null, endedBy: null };
}

export interface StreamEventReaderOptions {
  /** Updated as batches are read. */
  stats?: StreamStats;
}

const lineFeed = 0x0a;
const dataPrefix = "data: ";
const doneLine = "data: [DONE]";

/** The complete events of one piece of text, framed; `done` when `[DONE]` ended them. */
interface Framed {
  text: string;
  events: number;
  done: boolean;
}

export class StreamEventReader {
  readonly stats: StreamStats;
  /**
   * An error event that arrived after other events of the same chunk: those are returned first,
   * and the error is the reader's answer from then on. Check it before reading the next chunk.
   */
  failure: GatewayError | null = null;
  readonly #decoder = new SseDecoder();

  constructor(options: StreamEventReaderOptions = {}) {
    this.stats = options.stats ?? createStreamStats();
  }

  /** True once `[DONE]`, the end of the body, or an error event has been read: nothing more will come. */
  get finished(): boolean {
    return this.stats.endedBy !== null || this.failure !== null;
  }

  /**
   * The events one chunk of the body completed, as a batch, or null when it completed none. After
   * `[DONE]` the rest of the body is ignored. Throws the GatewayError of an error event when it
   * is the chunk's first event; later in the chunk, the events before it are returned and the
   * error waits in `failure`.
   */
  read(chunk: Uint8Array): ProviderStreamBatch | null {
    if (this.finished) return null;
    return this.#classify(this.#frame(this.#decoder.decodeText(chunk)));
  }

  /** The body ended: the event it may still hold (TGI 1.4 ends without a blank line or `[DONE]`). */
  end(): ProviderStreamBatch | null {
    if (this.finished) return null;
    // The end of the body ends the stream as [DONE] would, though it is recorded as `eof`.
    const batch = this.#classify(frameEvents(this.#decoder.flush(), { text: "", events: 0, done: false }), true);
    this.stats.endedBy ??= "eof";
    return batch;
  }

  /** The complete events of a decoded chunk, framed: plain `data:` runs as they are, the rest decoded. */
  #frame(decoded: string): Framed {
    const decoder = this.#decoder;
    const framed: Framed = { text: "", events: 0, done: false };
    // CR line ends are rare and have subtle rules (a CR may end one chunk and its LF open the next).
    if (decoded.includes("\r")) return frameEvents(decoder.consume(decoded), framed);
    let position = 0;
    if (!decoder.atEventBoundary) {
      // The chunk finishes an event begun in the one before: decode up to that event's blank line.
      let end: number;
      if (decoder.atLineStart && decoded.charCodeAt(0) === lineFeed) {
        end = 1;
      } else {
        const blankLine = decoded.indexOf("\n\n");
        if (blankLine === -1) return frameEvents(decoder.consume(decoded), framed);
        end = blankLine + 2;
      }
      frameEvents(decoder.consume(end === decoded.length ? decoded : decoded.slice(0, end)), framed);
      if (framed.done || !decoder.atEventBoundary) {
        return framed.done || end === decoded.length ? framed : frameEvents(decoder.consume(decoded.slice(end)), framed);
      }
      position = end;
    }
    // A run of one-line `data:` events, each followed by its blank line.
    let runEnd = position;
    let runEvents = 0;
    while (decoded.startsWith(dataPrefix, runEnd)) {
      const lineEnd = decoded.indexOf("\n", runEnd);
      if (lineEnd === -1 || decoded.charCodeAt(lineEnd + 1) !== lineFeed) break;
      if (lineEnd - runEnd === doneLine.length && decoded.startsWith(doneLine, runEnd)) {
        framed.done = true;
        break;
      }
      runEvents += 1;
      runEnd = lineEnd + 2;
    }
    if (runEvents > 0) {
      const run = position === 0 && runEnd === decoded.length ? decoded : decoded.slice(position, runEnd);
      framed.text = framed.text === "" ? run : framed.text + run;
      framed.events += runEvents;
    }
    if (framed.done || runEnd === decoded.length) return framed;
    // What the run stopped at (a comment, another field, an event still arriving) and what follows.
    return frameEvents(decoder.consume(runEnd === 0 ? decoded : decoded.slice(runEnd)), framed);
  }

  #classify(framed: Framed, atEnd = false): ProviderStreamBatch | null {
    const stats = this.stats;
    if (framed.events === 0) {
      if (framed.done) stats.endedBy = "done";
      return null;
    }
    let text = framed.text;
    let events = framed.events;
    // An error event ends the stream where it stands, [DONE] or not after it.
    if (mayHoldStreamError(text)) {
      const cut = this.#cutAtError(text);
      if (cut !== null) {
        text = cut.text;
        events = cut.events;
        framed.done = false;
      }
    }
    if (framed.done) stats.endedBy = "done";
    const usage = latestUsage(text);
    let outputDeltaEvents = 0;
    let outputText = "";
    if (usage === null) {
      for (let start = 0; start < text.length; ) {
        const end = text.indexOf("\n\n", start) + 2;
        const delta = outputDeltaText(text.slice(start, end));
        if (delta !== "") {
          outputDeltaEvents += 1;
          outputText += delta;
        }
        start = end;
      }
    } else {
      stats.usage = usage;
    }
    stats.events += events;
    stats.outputDeltaEvents += outputDeltaEvents;
    const ended = framed.done || (atEnd && this.failure === null);
    return new SseBatch(text, usage, outputDeltaEvents, outputText, ended);
  }

  /**
   * The events before the first error event, or null when no event is one (an `"error"` key that
   * is not a top-level error, such as Azure's content-filter results). Sets `failure`, and throws
   * it when the error is the first event.
   */
  #cutAtError(text: string): { text: string; events: number } | null {
    let events = 0;
    for (let start = 0; start < text.length; ) {
      const end = text.indexOf("\n\n", start) + 2;
      const streamError = readStreamError(eventData(text, start, end));
      if (streamError !== null) {
        this.failure = streamError;
        if (events === 0) throw streamError;
        return { text: text.slice(0, start), events };
      }
      events += 1;
      start = end;
    }
    return null;
  }
}

/** Appends decoded events to `framed` in the batch format, up to `[DONE]`. */
function frameEvents(decoded: readonly SseEvent[], framed: Framed): Framed {
  for (const event of decoded) {
    if (framed.done) break;
    const data = event.event === "error" ? errorPayload(event.data) : event.data;
    if (data === "[DONE]") {
      framed.done = true;
      break;
    }
    framed.text += `${dataPrefix}${data.includes("\n") ? data.replaceAll("\n", `\n${dataPrefix}`) : data}\n\n`;
    framed.events += 1;
  }
  return framed;
}

/**
 * The payload of an event typed `error` (`event: error`, or llama.cpp's `error:` field) in the
 * shape every error event is recognised by: a top-level `error`. A payload that has one is kept;
 * another JSON object becomes its `error`, and text its message.
 */
function errorPayload(data: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return JSON.stringify({ error: { message: data } });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return JSON.stringify({ error: { message: data } });
  return "error" in parsed ? data : JSON.stringify({ error: parsed });
}

/** The payload of the event at `[start, end)` of a batch's text (end includes the blank line). */
function eventData(text: string, start: number, end: number): string {
  const block = text.slice(start + dataPrefix.length, end - 2);
  return block.includes("\n") ? block.replaceAll(`\n${dataPrefix}`, "\n") : block;
}

/**
 * The last usage the text's events report, or null. Usage comes last: OpenAI's `include_usage`
 * trailer is a stream's last event, and a server that repeats usage on every chunk (vLLM) has its
 * latest in the last one. So the last event is looked at first, and the others only when it
 * reports none. Only events with a `"usage"` object are read; OpenAI's `"usage":null` on every
 * chunk costs a glance each.
 */
function latestUsage(text: string): TokenUsage | null {
  // Every event ends with a blank line, and the only blank lines are those.
  const boundary = text.lastIndexOf("\n\n", text.length - 3);
  const lastStart = boundary === -1 ? 0 : boundary + 2;
  if (nextUsageObject(text, lastStart) !== -1) {
    const usage = readUsage(eventData(text, lastStart, text.length))?.usage ?? null;
    if (usage !== null) return usage;
  }
  let usage: TokenUsage | null = null;
  for (let key = nextUsageObject(text, 0); key !== -1 && key < lastStart; ) {
    const { start, end } = eventAround(text, key);
    usage = readUsage(eventData(text, start, end))?.usage ?? usage;
    key = nextUsageObject(text, end);
  }
  return usage;
}

/**
 * Where the usage-only events are in `text`, as `[start, end)` pairs, or null when there are none:
 * what the gateway cuts out when the client did not ask for usage. Asked only then.
 */
function usageOnlySpansOf(text: string): number[] | null {
  let spans: number[] | null = null;
  for (let key = nextUsageObject(text, 0); key !== -1; ) {
    const { start, end } = eventAround(text, key);
    if (readUsage(eventData(text, start, end))?.usageOnly === true) (spans ??= []).push(start, end);
    key = nextUsageObject(text, end);
  }
  return spans;
}

/** The `[start, end)` of the event in a batch's text that holds `index`. */
function eventAround(text: string, index: number): { start: number; end: number } {
  const previousEnd = text.lastIndexOf("\n\n", index);
  return { start: previousEnd === -1 ? 0 : previousEnd + 2, end: text.indexOf("\n\n", index) + 2 };
}

/** A batch whose events, and usage-only spans, are worked out only if someone asks for them. */
class SseBatch implements ProviderStreamBatch {
  #events: ProviderStreamEvent[] | null = null;
  #usageOnlySpans: readonly number[] | null | undefined = undefined;

  constructor(
    readonly text: string,
    readonly usage: TokenUsage | null,
    readonly outputDeltaEvents: number,
    readonly outputText: string,
    readonly ended: boolean,
  ) {}

  get usageOnlySpans(): readonly number[] | null {
    // A usage-only event reports usage, so a batch with none has none.
    if (this.#usageOnlySpans === undefined) this.#usageOnlySpans = this.usage === null ? null : usageOnlySpansOf(this.text);
    return this.#usageOnlySpans;
  }

  get events(): readonly ProviderStreamEvent[] {
    if (this.#events !== null) return this.#events;
    const events: ProviderStreamEvent[] = [];
    const text = this.text;
    for (let start = 0; start < text.length; ) {
      const end = text.indexOf("\n\n", start) + 2;
      const data = eventData(text, start, end);
      const found = this.usage === null ? null : readUsage(data);
      events.push(found === null ? { data } : { data, usage: found.usage, usageOnly: found.usageOnly });
      start = end;
    }
    this.#events = events;
    return events;
  }
}
