import type { Readable } from "node:stream";

/**
 * A response body read by pulling, as the SSE batch reader needs it: the bytes that have arrived,
 * whether more will come, and a call when that changes. Two sources implement it: a Node Readable
 * (`readablePulledBody`: an HTTP/2 stream from a tunnel, any byte stream) and the body of an
 * undici dispatch (`UpstreamBody`), which skips a Readable's machinery on the gateway's hot path.
 */
export interface PulledBody {
  /** What has arrived and not been read, in one piece, or null; reading lets a paused source go on. */
  read(): Uint8Array | null;
  /** `open`: more may come. `ended`: everything has arrived (`read` may still hold some). `failed`: see `failure`. */
  readonly state: "open" | "ended" | "failed";
  readonly failure: unknown;
  /**
   * Sets the one function called whenever `read` or `state` may have changed, or the signal the
   * body was made with aborts (null: none). The body holds it until it is released.
   */
  listen(onChange: (() => void) | null): void;
  /**
   * Lets the body go. With `keepConnection` (the stream ended cleanly at `[DONE]`), what little
   * still follows is read and dropped, bounded in size and time, so the connection serves the next
   * request; without, the body is cut, which closes the connection or resets the stream, and the
   * upstream sees the reader go away. Idempotent.
   */
  release(keepConnection: boolean): void;
}

/** After `[DONE]`, at most this much more is read to end the exchange cleanly (a chunked terminator is 5 bytes). */
export const drainLimitBytes = 64 * 1024;
export const drainTimeoutMs = 2_000;

/** A Node Readable as a `PulledBody`; `signal` wakes the reader when it aborts. */
export function readablePulledBody(body: Readable, signal: AbortSignal): PulledBody {
  return new ReadablePulledBody(body, signal);
}

class ReadablePulledBody implements PulledBody {
  readonly #body: Readable;
  readonly #signal: AbortSignal;
  state: "open" | "ended" | "failed" = "open";
  failure: unknown = undefined;
  #onChange: (() => void) | null = null;
  #released = false;

  readonly #notify = (): void => {
    this.#onChange?.();
  };
  readonly #onEnd = (): void => {
    this.state = "ended";
    this.#notify();
  };
  readonly #onError = (error: unknown): void => {
    if (this.state !== "open") return;
    this.state = "failed";
    this.failure = error;
    this.#notify();
  };
  readonly #onClose = (): void => {
    if (this.state === "open") this.#onError(new Error("The upstream body closed before it ended."));
  };

  constructor(body: Readable, signal: AbortSignal) {
    this.#body = body;
    this.#signal = signal;
    body.on("readable", this.#notify);
    body.on("end", this.#onEnd);
    // Stays attached after release: a destroyed body may still report an error nobody reads.
    body.on("error", this.#onError);
    body.on("close", this.#onClose);
    signal.addEventListener("abort", this.#notify);
  }

  read(): Uint8Array | null {
    const chunk = this.#body.read() as Uint8Array | string | null;
    return typeof chunk === "string" ? Buffer.from(chunk) : chunk;
  }

  listen(onChange: (() => void) | null): void {
    this.#onChange = onChange;
  }

  release(keepConnection: boolean): void {
    if (this.#released) return;
    this.#released = true;
    this.#onChange = null;
    const body = this.#body;
    body.off("readable", this.#notify);
    body.off("end", this.#onEnd);
    body.off("close", this.#onClose);
    this.#signal.removeEventListener("abort", this.#notify);
    if (body.readableEnded || body.destroyed) return;
    if (keepConnection) drain(body);
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
