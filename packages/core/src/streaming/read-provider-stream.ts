/**
 * Turns an upstream's chat-completion SSE body into the ProviderStreamEvents the gateway forwards:
 * the one stream reader every OpenAI-compatible adapter shares.
 */
import { GatewayError } from "../errors/gateway-error.js";
import type { ProviderStreamEvent, TokenUsage } from "../provider/provider.js";
import { SseDecoder } from "./sse-decoder.js";
import { hasOutputDelta, readStreamError, readUsage } from "./stream-usage.js";

/**
 * What a stream has shown so far, kept current while it is read. The gateway meters from it: from
 * `usage` when the upstream reported any, else by estimating output from `outputDeltaEvents`.
 *
 * It is a mutable object handed in by the caller rather than only the generator's return value,
 * because `for await` discards return values, and a stream that fails or that the client abandons
 * never returns one: the output delivered so far must still be metered.
 */
export interface StreamStats {
  /** Events yielded (never counting `[DONE]`). */
  events: number;
  /**
   * Events with a non-empty content, refusal, reasoning or tool-call-arguments delta. Most
   * servers stream about one token per such event, so this estimates output tokens when the
   * upstream reports no usage, at the cost of a substring search per event instead of a parse.
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

export interface ReadProviderStreamOptions {
  /**
   * Cancels reading: the iteration throws and the body is closed. Pass the signal the upstream
   * request was made with too, so the HTTP client drops the connection.
   */
  signal?: AbortSignal;
  /** Updated as events arrive; the generator also returns it when the stream ends cleanly. */
  stats?: StreamStats;
  /** Count `outputDeltaEvents` (a substring scan per event). Default false. */
  countOutput?: boolean;
}

/**
 * Reads an SSE body and yields one event per upstream event, in arrival order, with its payload
 * text unchanged. An event that reports usage carries it (and `usageOnly` for a `choices: []`
 * trailer). The iteration ends at `[DONE]` (which is not yielded, and the rest of the body is not
 * read) or at the end of the body without one (TGI 1.4).
 *
 * Every other event is yielded as it came, Azure's included: its `choices: []` prompt-filter
 * preamble and its delta-less content-filter annotations cannot be told from chunks the client
 * needs without parsing every event (a delta-less choice may carry `finish_reason:
 * "content_filter"`), so normalizing them is the Azure adapter's choice, not this reader's.
 *
 * Throws a GatewayError:
 * - `upstream_error` with the upstream's message when it sends an error event;
 * - `upstream_error` when the body fails (a connection reset), with the failure as `cause`;
 * - the abort reason when `signal` aborts: itself if it is a GatewayError, `upstream_timeout` for
 *   an `AbortSignal.timeout`, else `upstream_error`.
 *
 * Leaving early (`break`, a throw in the consumer, an error event, `[DONE]`) closes the body's
 * iterator, which cancels the upstream request.
 */
export async function* readProviderStream(
  body: AsyncIterable<Uint8Array>,
  options: ReadProviderStreamOptions = {},
): AsyncGenerator<ProviderStreamEvent, StreamStats, undefined> {
  const { signal } = options;
  const stats = options.stats ?? createStreamStats();
  // Counting output costs a scan per event: only a caller that asks pays for it (the gateway
  // counts on the events it forwards, whatever the adapter).
  const countOutput = options.countOutput === true;
  const iterator = body[Symbol.asyncIterator]();
  const abortWatch = signal === undefined ? undefined : watchAbort(signal);
  const decoder = new SseDecoder();
  // "open": the body may hold more, close it on leaving. "finished": it ended or failed by itself.
  // "abandoned": a read is still pending after an abort; close it without waiting for that read.
  let bodyState = "open" as "open" | "finished" | "abandoned";
  try {
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      let result: IteratorResult<Uint8Array>;
      try {
        result = abortWatch === undefined ? await iterator.next() : await Promise.race([iterator.next(), abortWatch.aborted]);
      } catch (error) {
        if (signal?.aborted) {
          bodyState = error === abortWatch?.reason ? "abandoned" : "finished";
          throw abortError(signal);
        }
        bodyState = "finished";
        throw readFailure(error);
      }
      if (result.done === true) bodyState = "finished";
      const events = result.done === true ? decoder.flush() : decoder.decode(result.value);
      for (const event of events) {
        // The consumer may have aborted while holding an earlier event of the same chunk.
        if (signal?.aborted) throw abortError(signal);
        const data = event.data;
        if (data === "[DONE]") {
          stats.endedBy = "done";
          return stats;
        }
        const streamError = readStreamError(data);
        if (streamError !== null) throw streamError;
        if (countOutput && hasOutputDelta(data)) stats.outputDeltaEvents += 1;
        stats.events += 1;
        const found = readUsage(data);
        if (found === null) {
          yield { data };
        } else {
          stats.usage = found.usage;
          yield { data, usage: found.usage, usageOnly: found.usageOnly };
        }
      }
      if (result.done === true) {
        stats.endedBy = "eof";
        return stats;
      }
    }
  } finally {
    abortWatch?.dispose();
    if (bodyState === "open") await closeQuietly(iterator);
    // The pending read may never settle (a source stuck awaiting): ask it to close, do not wait.
    else if (bodyState === "abandoned") void closeQuietly(iterator);
  }
}

function readFailure(error: unknown): GatewayError {
  // An adapter's body wrapper may already have said precisely what failed (a 504, say).
  if (GatewayError.is(error)) return error;
  return new GatewayError(
    "upstream_error",
    "The upstream connection failed mid-stream, so the response is incomplete.",
    { cause: error },
  );
}

function abortError(signal: AbortSignal): GatewayError {
  const reason: unknown = signal.reason;
  if (GatewayError.is(reason)) return reason;
  if (reason instanceof Error && reason.name === "TimeoutError") {
    return new GatewayError("upstream_timeout", "The upstream did not finish the stream in time.", { cause: reason });
  }
  return new GatewayError("upstream_error", "The stream was cancelled before the upstream finished it.", {
    cause: reason,
  });
}

interface AbortWatch {
  /** Rejects with `reason` when the signal aborts; raced against each read. */
  aborted: Promise<never>;
  reason: object;
  dispose(): void;
}

/**
 * One listener and one promise per stream, so a read that never settles (a body that does not
 * watch the signal itself) still gives way to the abort.
 */
function watchAbort(signal: AbortSignal): AbortWatch {
  // Only compared by identity, never thrown to a caller: a plain object, because an Error would
  // capture a stack trace on every stream for nothing.
  const reason = { aborted: true };
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(reason);
  });
  // Nobody may be racing it when the abort fires (between reads, or after the stream ended).
  aborted.catch(() => undefined);
  signal.addEventListener("abort", onAbort, { once: true });
  return { aborted, reason, dispose: () => signal.removeEventListener("abort", onAbort) };
}

async function closeQuietly(iterator: AsyncIterator<Uint8Array>): Promise<void> {
  try {
    await iterator.return?.();
  } catch {
    // The stream is over for the caller either way; a failure to close the socket changes nothing.
  }
}
