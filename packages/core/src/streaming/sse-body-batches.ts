import type { Readable } from "node:stream";
import type { ProviderStreamBatch } from "../provider/provider.js";
import { readablePulledBody } from "./pulled-body.js";
import type { PulledBody } from "./pulled-body.js";
import { StreamEventReader } from "./stream-event-reader.js";
import type { StreamEventReaderOptions } from "./stream-event-reader.js";
import { abortError, readFailure } from "./stream-failures.js";

/**
 * The event batches of an SSE response body that arrives as a Node Readable: an HTTP/2 stream
 * from a tunnel, any byte stream. What `readProviderStream` does for an async iterable, without
 * its layers: the body is read when the gateway asks for the next batch, so each chunk costs one
 * wait and its events none, and a reader that stops asking leaves the data in the socket
 * (backpressure). An undici response from `UndiciUpstreamClient` has its own `batches()`, with
 * no Readable at all.
 *
 * The body is released on every way out, so a connection is never left holding a half-read
 * response:
 * - at `[DONE]` the little that follows (a chunked terminator, an HTTP/2 end of stream) is
 *   drained, bounded in size and time, keeping the connection alive for the next request instead
 *   of paying a new TCP and TLS handshake per stream;
 * - on an early exit (`return()`, an error event, a failure, an abort of `signal`) the body is
 *   destroyed, which closes the connection or resets the stream, so the upstream sees the client
 *   go away and stops generating.
 *
 * Errors are those of `readProviderStream`. Single use: `[Symbol.asyncIterator]` returns the
 * object itself, and `return()` before the first `next()` releases the body too.
 */
export function sseBodyBatches(body: Readable, signal: AbortSignal, options: StreamEventReaderOptions = {}): SseBatchIterator {
  return pulledSseBatches(readablePulledBody(body, signal), signal, options);
}

/** The event batches of any `PulledBody`, as `sseBodyBatches` reads a Readable's; `body` must wake its reader when `signal` aborts. */
export function pulledSseBatches(body: PulledBody, signal: AbortSignal, options: StreamEventReaderOptions = {}): SseBatchIterator {
  return new SseBodyBatches(body, signal, new StreamEventReader(options));
}

/** The batches of one body; `return()` releases it. */
export interface SseBatchIterator extends AsyncIterableIterator<ProviderStreamBatch, undefined, undefined> {
  return(): Promise<IteratorResult<ProviderStreamBatch, undefined>>;
}

const finished: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

class SseBodyBatches implements SseBatchIterator {
  readonly #body: PulledBody;
  readonly #signal: AbortSignal;
  readonly #reader: StreamEventReader;
  #released = false;
  /** Resolves the pending `next()`'s wait for data, an end, a failure or an abort. */
  #wake: (() => void) | null = null;

  readonly #notify = (): void => {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  };

  constructor(body: PulledBody, signal: AbortSignal, reader: StreamEventReader) {
    this.#body = body;
    this.#signal = signal;
    this.#reader = reader;
    body.listen(this.#notify);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<ProviderStreamBatch, undefined>> {
    const reader = this.#reader;
    const body = this.#body;
    for (;;) {
      if (this.#released) return finished;
      if (this.#signal.aborted) {
        this.#release();
        throw abortError(this.#signal);
      }
      if (reader.failure !== null) {
        this.#release();
        throw reader.failure;
      }
      if (reader.stats.endedBy !== null) {
        this.#release();
        return finished;
      }
      const chunk = body.read();
      if (chunk !== null) {
        let batch: ProviderStreamBatch | null;
        try {
          batch = reader.read(chunk);
        } catch (error) {
          this.#release();
          throw error;
        }
        if (batch !== null) return { done: false, value: batch };
        continue;
      }
      if (body.state === "ended") {
        const batch = reader.end();
        if (batch !== null) return { done: false, value: batch };
        continue;
      }
      if (body.state === "failed") {
        this.#release();
        throw readFailure(body.failure);
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  async return(): Promise<IteratorResult<ProviderStreamBatch, undefined>> {
    this.#release();
    return finished;
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#body.release(this.#reader.stats.endedBy === "done" && !this.#signal.aborted);
    this.#notify();
  }
}
