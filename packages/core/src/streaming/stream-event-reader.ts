/**
 * The synchronous heart of every stream reader: decodes SSE bytes into the events the gateway
 * forwards, marking usage, stopping at `[DONE]` and turning an error event into a GatewayError.
 * The async readers (`readProviderStream` over any async iterable of bytes, `sseBodyBatches` over
 * a Node Readable) only feed it chunks, so whatever the transport, a chunk costs one async step
 * and its events none.
 */
import type { GatewayError } from "../errors/gateway-error.js";
import type { ProviderStreamEvent, TokenUsage } from "../provider/provider.js";
import { SseDecoder } from "./sse-decoder.js";
import type { SseEvent } from "./sse-decoder.js";
import { hasOutputDelta, readStreamError, readUsage } from "./stream-usage.js";

/**
 * What a stream has shown so far, kept current while it is read. The gateway meters from it: from
 * `usage` when the upstream reported any, else by estimating output from `outputDeltaEvents`.
 *
 * It is a mutable object the caller may hand in, because a stream that fails or that the client
 * abandons never returns a value: the output delivered so far must still be metered.
 */
export interface StreamStats {
  /** Events read (never counting `[DONE]`). */
  events: number;
  /**
   * Events with a non-empty content, refusal, reasoning or tool-call-arguments delta, when the
   * reader was asked to count them (`countOutput`). Most servers stream about one token per such
   * event, so this estimates output tokens when the upstream reports no usage.
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
  /** Updated as events are read. */
  stats?: StreamStats;
  /** Count `outputDeltaEvents` (a substring scan per event). Default false. */
  countOutput?: boolean;
}

export class StreamEventReader {
  readonly stats: StreamStats;
  /**
   * An error event that arrived after other events of the same chunk: those are returned first,
   * and the error is the reader's answer from then on. Check it before reading the next chunk.
   */
  failure: GatewayError | null = null;
  readonly #decoder = new SseDecoder();
  readonly #countOutput: boolean;

  constructor(options: StreamEventReaderOptions = {}) {
    this.stats = options.stats ?? createStreamStats();
    this.#countOutput = options.countOutput === true;
  }

  /** True once `[DONE]`, the end of the body, or an error event has been read: nothing more will come. */
  get finished(): boolean {
    return this.stats.endedBy !== null || this.failure !== null;
  }

  /**
   * The events one chunk of the body completed, in order; often several, or none. After
   * `[DONE]` the rest of the body is ignored. Throws the GatewayError of an error event when it
   * is the chunk's first event; later in the chunk, the events before it are returned and the
   * error waits in `failure`.
   */
  read(chunk: Uint8Array): ProviderStreamEvent[] {
    if (this.finished) return [];
    return this.#classify(this.#decoder.decode(chunk));
  }

  /** The body ended: the event it may still hold (TGI 1.4 ends without a blank line or `[DONE]`). */
  end(): ProviderStreamEvent[] {
    if (this.finished) return [];
    const events = this.#classify(this.#decoder.flush());
    this.stats.endedBy ??= "eof";
    return events;
  }

  #classify(decoded: SseEvent[]): ProviderStreamEvent[] {
    const stats = this.stats;
    const events: ProviderStreamEvent[] = [];
    for (const event of decoded) {
      const data = event.data;
      if (data === "[DONE]") {
        stats.endedBy = "done";
        break;
      }
      const streamError = readStreamError(data);
      if (streamError !== null) {
        this.failure = streamError;
        if (events.length === 0) throw streamError;
        break;
      }
      if (this.#countOutput && hasOutputDelta(data)) stats.outputDeltaEvents += 1;
      stats.events += 1;
      const found = readUsage(data);
      if (found === null) {
        events.push({ data });
      } else {
        stats.usage = found.usage;
        events.push({ data, usage: found.usage, usageOnly: found.usageOnly });
      }
    }
    return events;
  }
}
