import type { Readable } from "node:stream";
import { createStreamStats, readProviderStream } from "@sluice/core";
import type { ProviderStreamEvent } from "@sluice/core";

/** After `[DONE]`, at most this much more is read (a chunked terminator, an HTTP/2 END_STREAM). */
const drainLimitBytes = 64 * 1024;
const drainTimeoutMs = 2_000;

/**
 * The events of a tunnelled SSE body, read by core's shared stream reader, with the body released
 * on every way out:
 *
 * - after `[DONE]` the little that follows is read, so the exchange ends cleanly (a host tunnel's
 *   keep-alive connection stays usable; a reverse tunnel's stream ends without a reset);
 * - on any early exit (`break`, an error event, a failure, an abort) the body is destroyed, which
 *   cancels the exchange: the agent resets its request to the model server, or the host tunnel's
 *   connection closes, and the model server stops generating.
 *
 * Single use: every `[Symbol.asyncIterator]()` returns the same iterator, and `return()` before the
 * first `next()` releases the body too.
 */
export function tunnelEvents(body: Readable, signal: AbortSignal): AsyncIterable<ProviderStreamEvent> {
  const stats = createStreamStats();
  let released = false;

  const release = (): void => {
    if (released) return;
    released = true;
    if (body.readableEnded || body.destroyed) return;
    if (stats.endedBy === "done" && !signal.aborted) {
      drain(body);
    } else {
      // A destroyed body may still report an 'error' nobody reads any more.
      body.on("error", ignore);
      body.destroy();
    }
  };

  const chunks = body.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer, undefined>;
  const source: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      next: () => chunks.next(),
      async return() {
        // Destroy first when giving up: a read may still be pending, and it ends only with the body.
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

/** Reads what is left of a finished stream, bounded in size and time, then lets it go. */
function drain(body: Readable): void {
  let read = 0;
  const stop = (): void => {
    clearTimeout(timer);
    body.off("data", onData);
  };
  const onData = (chunk: Buffer): void => {
    read += chunk.length;
    if (read > drainLimitBytes) {
      stop();
      body.destroy();
    }
  };
  const timer = setTimeout(() => {
    stop();
    body.destroy();
  }, drainTimeoutMs);
  timer.unref();
  body.on("data", onData);
  body.on("error", ignore);
  body.once("close", stop);
  body.once("end", stop);
  body.resume();
}

function ignore(): void {
  // The stream's outcome has already been decided; a late error from the released body changes nothing.
}
