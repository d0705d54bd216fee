import type { Dispatcher } from "undici";
import type { ProviderStreamEvent } from "../provider/provider.js";
import { createStreamStats, readProviderStream } from "./read-provider-stream.js";

/** A response body from undici's `request()` (a Pool's, an Agent's). */
export type UndiciBody = Dispatcher.ResponseData["body"];

/** After `[DONE]`, at most this much more is read to keep the connection (a chunked terminator is 5 bytes). */
const drainLimitBytes = 64 * 1024;
const drainTimeoutMs = 2_000;

/**
 * The events of an SSE body that undici's `request()` returned, read by the shared stream reader,
 * with the body released on every way out so the pool's connection is never left holding a
 * half-read response (every adapter that calls its upstream through undici shares this):
 *
 * - at `[DONE]` the little that follows (the chunked terminator) is drained, keeping the
 *   connection alive for the next request instead of paying a new TCP and TLS handshake per stream;
 * - on an early exit (`break`, an error event, a failure, an abort) the body is destroyed, which
 *   closes the connection, and the upstream sees the client go away and stops generating.
 *
 * Single use: every call of `[Symbol.asyncIterator]` returns the same iterator. Calling `return()`
 * before the first `next()` releases the body too, which an async generator alone would not.
 */
export function undiciSseEvents(body: UndiciBody, signal: AbortSignal): AsyncIterable<ProviderStreamEvent> {
  const stats = createStreamStats();
  let bytesRead = 0;
  let released = false;

  const release = (): void => {
    if (released) return;
    released = true;
    if (body.readableEnded || body.destroyed) return;
    if (stats.endedBy === "done" && !signal.aborted) {
      // dump() reads to the end, or destroys the body past the limit or the timeout.
      body
        .dump({ limit: bytesRead + body.readableLength + drainLimitBytes, signal: AbortSignal.timeout(drainTimeoutMs) })
        .catch(() => undefined);
    } else {
      // undici reports a destroyed, unfinished body as an 'error' event: nobody reads it any more.
      body.on("error", ignore);
      body.destroy();
    }
  };

  // Node's own iterator destroys the body on return(); this one leaves that decision to release().
  const chunks = body.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer, undefined>;
  const source: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      async next() {
        const result = await chunks.next();
        if (result.done !== true) bytesRead += result.value.length;
        return result;
      },
      async return() {
        // Destroy first when giving up: a read may still be pending, and it only ends with the body.
        if (stats.endedBy !== "done") release();
        await chunks.return?.().catch(() => undefined);
        release();
        return { done: true, value: undefined };
      },
    }),
  };

  const events = readProviderStream(source, { signal, stats });
  const iterator: AsyncIterator<ProviderStreamEvent, undefined> = {
    async next() {
      try {
        const result = await events.next();
        if (result.done === true) {
          release();
          return { done: true, value: undefined };
        }
        return result;
      } catch (error) {
        release();
        throw error;
      }
    },
    async return() {
      try {
        await events.return(stats);
      } finally {
        release();
      }
      return { done: true, value: undefined };
    },
  };
  return { [Symbol.asyncIterator]: () => iterator };
}

function ignore(): void {
  // The stream's outcome has already been decided; a late error from the closed body changes nothing.
}
