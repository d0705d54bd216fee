import { createStreamStats, readProviderStream } from "@sluice/core";
import type { ProviderStreamEvent } from "@sluice/core";
import type { AzureBody } from "./azure-http-client.js";

/** After `[DONE]`, at most this much more is read to keep the connection (a chunked terminator is 5 bytes). */
const drainLimitBytes = 64 * 1024;
const drainTimeoutMs = 2_000;

/**
 * The events of an Azure SSE body, read by core's shared stream reader, which yields every event
 * unchanged: Azure's `choices: []` preamble with `prompt_filter_results`, the per-choice
 * `content_filter_results`, and the delta-less annotation chunks the asynchronous filter sends
 * after the finish chunk all reach the client as Azure wrote them (wire-formats §2.2).
 *
 * The body is released on every way out, so a pooled connection is never left half-read: drained
 * after `[DONE]` to be reused, destroyed on an early exit so Azure sees the client go away and
 * stops generating. Single use; `return()` before the first `next()` releases the body too.
 */
export function azureStreamEvents(body: AzureBody, signal: AbortSignal): AsyncIterable<ProviderStreamEvent> {
  const stats = createStreamStats();
  let bytesRead = 0;
  let released = false;

  const release = (): void => {
    if (released) return;
    released = true;
    if (body.readableEnded || body.destroyed) return;
    if (stats.endedBy === "done" && !signal.aborted) {
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
