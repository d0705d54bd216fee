import { GatewayError } from "../errors/gateway-error.js";
import type { GatewayTimeouts } from "./gateway-options.js";

/** What the request is waiting for: nothing with a limit of its own, a try's first byte, or (streaming) the next batch. */
const waitingForNothing = 0;
const waitingForFirstByte = 1;
const waitingForBatch = 2;
type Phase = typeof waitingForNothing | typeof waitingForFirstByte | typeof waitingForBatch;

/** Node's timers take at most 2^31 - 1 ms; a longer wait is taken in steps. */
const longestTimerMs = 2 ** 31 - 1;

/**
 * The limits and the off switch of one request to the upstream: the client's disconnect, the total
 * time limit, the running try's first-byte limit and, once a stream flows, the idle limit between
 * batches.
 *
 * One timer serves every limit. It is armed for the nearest deadline and, when it fires, checks
 * the deadlines against the time and arms itself again for the next one, so a stream's batches
 * only note the time. A timer per limit, refreshed per batch, and an AbortController per layer
 * (request, try) cost the gateway three timers, three controllers and their listeners on every
 * request, for limits that almost never fire.
 *
 * Each try gets its own signal: a try that misses its first byte is aborted alone, and the next
 * try starts with a live one. The client's disconnect, the total limit and the idle limit abort
 * whichever try is running, and end any wait between tries. The signal of the try that answered
 * stays with what it started (the stream) until the request is done.
 */
export class RequestControl {
  readonly limits: GatewayTimeouts;
  readonly #clientSignal: AbortSignal;
  readonly #totalAt: number;
  #reason: "client-disconnect" | "timeout" | null = null;
  #try: AbortController | null = null;
  #tryTimedOut = false;
  #phase: Phase = waitingForNothing;
  /** When the running phase's limit passes (performance.now() time). */
  #phaseAt = Infinity;
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** When the armed timer fires, to tell whether a nearer deadline needs it re-armed. */
  #timerAt = Infinity;
  /** Ends a wait between tries early, when the request is aborted. */
  #wake: (() => void) | null = null;
  readonly #onClientGone = () => this.abort("client-disconnect");
  readonly #onTimer = () => this.#check();

  constructor(clientSignal: AbortSignal, limits: GatewayTimeouts) {
    this.#clientSignal = clientSignal;
    this.limits = limits;
    this.#totalAt = performance.now() + limits.totalMs;
    if (clientSignal.aborted) this.#reason = "client-disconnect";
    else clientSignal.addEventListener("abort", this.#onClientGone, { once: true });
  }

  /** Why the request was aborted, or null while it was not. */
  get reason(): "client-disconnect" | "timeout" | null {
    return this.#reason;
  }

  get aborted(): boolean {
    return this.#reason !== null;
  }

  /** Whether the last try failed for want of its first byte (and the request was not aborted). */
  get tryTimedOut(): boolean {
    return this.#tryTimedOut && this.#reason === null;
  }

  /**
   * A signal for a new try, whose first byte is due within the first-byte limit; with
   * `firstByteLimit: false`, only the total limit bounds its wait.
   */
  startTry(firstByteLimit = true): AbortSignal {
    const controller = new AbortController();
    this.#try = controller;
    this.#tryTimedOut = false;
    if (this.#reason !== null) {
      controller.abort();
      return controller.signal;
    }
    if (firstByteLimit) this.#enter(waitingForFirstByte, this.limits.firstByteMs);
    else {
      this.#phase = waitingForNothing;
      this.#arm(performance.now());
    }
    return controller.signal;
  }

  /** The try answered or failed: its first-byte limit no longer applies (a stream then calls `streaming`). */
  tryEnded(): void {
    this.#phase = waitingForNothing;
  }

  /** The stream's first batch is out: from now on, batches must come within the idle limit. */
  streaming(): void {
    this.#enter(waitingForBatch, this.limits.idleMs);
  }

  /**
   * A batch went to the client and the stream waits for it to ask for more: until `streaming()`
   * again only the total limit applies. A client that reads slowly is not an upstream that went
   * quiet, and one that stops reading altogether is ended by the total limit.
   */
  awaitingClient(): void {
    this.#phase = waitingForNothing;
  }

  /** A batch arrived: the idle limit counts again from now. */
  progressed(): void {
    this.#phaseAt = performance.now() + this.limits.idleMs;
  }

  /** What to answer with for an error: a 504 when the request ran out of its total time, else the error itself. */
  failure(error: unknown): unknown {
    return this.#reason === "timeout"
      ? new GatewayError("upstream_timeout", "The request took longer than the gateway allows.", { cause: error })
      : error;
  }

  /** Aborts the request and whatever try runs, keeping the first reason given. */
  abort(why: "client-disconnect" | "timeout"): void {
    this.#reason ??= why;
    this.#try?.abort();
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Cancels whatever still runs upstream, without claiming a reason. */
  cancel(): void {
    this.#try?.abort();
  }

  /** Waits `ms` before the next try; rejects at once if the request is aborted meanwhile. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const cancelled = () => new GatewayError("upstream_error", "The request was cancelled.");
      if (this.#reason !== null) return reject(cancelled());
      const timer = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        reject(cancelled());
      };
    });
  }

  /** The request is done: stops the timer and stops following the client. */
  dispose(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#phase = waitingForNothing;
    this.#clientSignal.removeEventListener("abort", this.#onClientGone);
  }

  #enter(phase: Phase, limitMs: number): void {
    const now = performance.now();
    this.#phase = phase;
    this.#phaseAt = now + limitMs;
    this.#arm(now);
  }

  /** Arms the timer for the nearest deadline, unless it already fires by then. */
  #arm(now: number): void {
    const next = this.#phase === waitingForNothing ? this.#totalAt : Math.min(this.#totalAt, this.#phaseAt);
    if (this.#timer !== null) {
      if (this.#timerAt <= next) return;
      clearTimeout(this.#timer);
    }
    const delay = Math.min(longestTimerMs, Math.max(1, Math.ceil(next - now)));
    this.#timerAt = now + delay;
    this.#timer = setTimeout(this.#onTimer, delay);
  }

  #check(): void {
    this.#timer = null;
    this.#timerAt = Infinity;
    if (this.#reason !== null) return;
    const now = performance.now();
    if (now >= this.#totalAt) return this.abort("timeout");
    if (this.#phase === waitingForBatch && now >= this.#phaseAt) return this.abort("timeout");
    if (this.#phase === waitingForFirstByte && now >= this.#phaseAt) {
      // Only this try fails; the request may try again.
      this.#phase = waitingForNothing;
      this.#tryTimedOut = true;
      this.#try?.abort();
    }
    this.#arm(now);
  }
}
