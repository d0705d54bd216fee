/**
 * Turns an upstream's chat-completion SSE body into the ProviderStreamEvents the gateway forwards:
 * the one stream reader every OpenAI-compatible adapter shares.
 */
import type { ProviderStreamBatch } from "../provider/provider.js";
import { StreamEventReader } from "./stream-event-reader.js";
import type { StreamStats } from "./stream-event-reader.js";
import { abortError, readFailure } from "./stream-failures.js";

export interface ReadProviderStreamOptions {
  /**
   * Cancels reading: the iteration throws and the body is closed. Pass the signal the upstream
   * request was made with too, so the HTTP client drops the connection.
   */
  signal?: AbortSignal;
  /** Updated as events arrive; the generator also returns it when the stream ends cleanly. */
  stats?: StreamStats;
}

/**
 * Reads an SSE body and yields its events in batches (ProviderStreamBatch): the events each chunk of
 * the body completed, in arrival order, their text unchanged where the upstream wrote plain
 * `data:` events (a chunk that completes none yields nothing), with the usage they report.
 * The iteration ends at `[DONE]` (which is not yielded, and the rest of the body is not read) or at
 * the end of the body without one (TGI 1.4).
 *
 * Batches, not single events: an upstream usually delivers several events per read, and every
 * async step costs more than the work of an event, in each layer the events pass through.
 *
 * Every other event is yielded as it came, Azure's included: its `choices: []` prompt-filter
 * preamble and its delta-less content-filter annotations cannot be told from chunks the client
 * needs without parsing every event (a delta-less choice may carry `finish_reason:
 * "content_filter"`), so normalizing them is the Azure adapter's choice, not this reader's.
 *
 * Throws a GatewayError:
 * - `upstream_error` with the upstream's message when it sends an error event (after yielding
 *   the events of its chunk that came before it);
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
): AsyncGenerator<ProviderStreamBatch, StreamStats, undefined> {
  const { signal } = options;
  const reader = new StreamEventReader(options);
  const iterator = body[Symbol.asyncIterator]();
  const abortWatch = signal === undefined ? undefined : watchAbort(signal);
  // "open": the body may hold more, close it on leaving. "finished": it ended or failed by itself.
  // "abandoned": a read is still pending after an abort; close it without waiting for that read.
  let bodyState = "open" as "open" | "finished" | "abandoned";
  try {
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      if (reader.failure !== null) throw reader.failure;
      if (reader.stats.endedBy !== null) return reader.stats;
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
      const batch = result.done === true ? reader.end() : reader.read(result.value);
      // The consumer may have aborted while holding the previous batch.
      if (signal?.aborted) throw abortError(signal);
      if (batch !== null) yield batch;
    }
  } finally {
    abortWatch?.dispose();
    if (bodyState === "open") await closeQuietly(iterator);
    // The pending read may never settle (a source stuck awaiting): ask it to close, do not wait.
    else if (bodyState === "abandoned") void closeQuietly(iterator);
  }
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
