import type { Readable } from "node:stream";
import type { ProviderStreamBatch } from "../provider/provider.js";
import { StreamEventReader } from "./stream-event-reader.js";
import type { StreamEventReaderOptions } from "./stream-event-reader.js";
import { abortError, readFailure } from "./stream-failures.js";

/** After `[DONE]`, at most this much more is read to end the exchange cleanly (a chunked terminator is 5 bytes). */
const drainLimitBytes = 64 * 1024;
const drainTimeoutMs = 2_000;

/**
 * The event batches of an SSE response body that arrives as a Node Readable: an undici response
 * body, an HTTP/2 stream from a tunnel, any byte stream. What `readProviderStream` does for an
 * async iterable, without its layers: the body is read with `read()` when the gateway asks for
 * the next batch, so each chunk costs one wait and its events none, and a reader that stops
 * asking leaves the data in the socket (backpressure).
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
  return new SseBodyBatches(body, signal, new StreamEventReader(options));
}

/** The batches of one body; `return()` releases it. */
export interface SseBatchIterator extends AsyncIterableIterator<ProviderStreamBatch, undefined, undefined> {
  return(): Promise<IteratorResult<ProviderStreamBatch, undefined>>;
}

const finished: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

class SseBodyBatches implements SseBatchIterator {
  readonly #body: Readable;
  readonly #signal: AbortSignal;
  readonly #reader: StreamEventReader;
  /** The body emitted 'end': everything it held has been read. */
  #ended = false;
  /** The body failed, or closed before its end; `#failure` says why. */
  #failed = false;
  #failure: unknown = undefined;
  #released = false;
  /** Resolves the pending `next()`'s wait for data, an end, a failure or an abort. */
  #wake: (() => void) | null = null;

  readonly #notify = (): void => {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  };
  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#notify();
  };
  readonly #onError = (error: unknown): void => {
    this.#failed = true;
    this.#failure = error;
    this.#notify();
  };
  readonly #onClose = (): void => {
    if (this.#ended || this.#failed) return;
    this.#onError(new Error("The upstream body closed before it ended."));
  };

  constructor(body: Readable, signal: AbortSignal, reader: StreamEventReader) {
    this.#body = body;
    this.#signal = signal;
    this.#reader = reader;
    body.on("readable", this.#notify);
    body.on("end", this.#onEnd);
    // Stays attached after release: a destroyed body may still report an error nobody reads.
    body.on("error", this.#onError);
    body.on("close", this.#onClose);
    signal.addEventListener("abort", this.#notify);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<ProviderStreamBatch, undefined>> {
    const reader = this.#reader;
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
      const chunk = this.#body.read() as Uint8Array | string | null;
      if (chunk !== null) {
        let batch: ProviderStreamBatch | null;
        try {
          batch = reader.read(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
        } catch (error) {
          this.#release();
          throw error;
        }
        if (batch !== null) return { done: false, value: batch };
        continue;
      }
      if (this.#ended) {
        const batch = reader.end();
        if (batch !== null) return { done: false, value: batch };
        continue;
      }
      if (this.#failed) {
        this.#release();
        throw readFailure(this.#failure);
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
    const body = this.#body;
    body.off("readable", this.#notify);
    body.off("end", this.#onEnd);
    body.off("close", this.#onClose);
    this.#signal.removeEventListener("abort", this.#notify);
    this.#notify();
    if (body.readableEnded || body.destroyed) return;
    if (this.#reader.stats.endedBy === "done" && !this.#signal.aborted) drain(body);
    else body.destroy();
  }
}

/** Reads what is left of a finished stream, bounded in size and time, then lets it go. */
function drain(body: Readable): void {
  let read = 0;
  // Usually all that is left has arrived with `[DONE]`: take it now, and be done at 'end'.
  for (let chunk = body.read() as Uint8Array | string | null; chunk !== null; chunk = body.read() as Uint8Array | string | null) {
    read += chunk.length;
    if (read > drainLimitBytes) {
      body.destroy();
      return;
    }
  }
  // The body's end has arrived (the usual case: the terminator came with [DONE]); the read that
  // returned null lets it emit 'end', and there is nothing to wait for. Node keeps this flag only
  // in the stream's state; without it, the bounded drain below is the safe fallback.
  if (body.readableEnded || (body as { _readableState?: { ended?: unknown } })._readableState?.ended === true) return;
  const stop = (): void => {
    clearTimeout(timer);
    body.off("data", onData);
  };
  const onData = (chunk: Uint8Array | string): void => {
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
  body.once("close", stop);
  body.once("end", stop);
  body.resume();
}
