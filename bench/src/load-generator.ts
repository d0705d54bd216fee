/**
 * The client, in its own process: an undici Pool with keep-alive connections, one per concurrent
 * worker, each worker sending its next request as soon as the previous answer has been read
 * whole. It uses the Pool's `dispatch` with a plain handler rather than `request()`'s Readable:
 * on a 2-core machine the client shares the CPU with the servers, and every microsecond it spends
 * per request makes the paths look more alike than they are.
 *
 * Streams are scanned only until the first content delta (time to first token), then only their
 * last 14 bytes are kept, to check the stream ended with `data: [DONE]`.
 */
import { performance } from "node:perf_hooks";
import { Pool } from "undici";
import type { Dispatcher } from "undici";
import type { CellRequest, CellResult, LoadRequest, MeasureStartMessage, OpenStreamsRequest, OpenStreamsResult, Target } from "./protocol.js";
import { summarize } from "./statistics.js";

const contentMarker = Buffer.from('"content":"');
const doneMarker = Buffer.from("data: [DONE]\n\n");
const quote = 0x22;

/** Whether `bytes` holds a non-empty `"content":"…` delta (OpenAI opens with `"content":""`). */
function hasContent(bytes: Buffer): boolean {
  let at = bytes.indexOf(contentMarker);
  while (at !== -1) {
    const next = at + contentMarker.length;
    if (next < bytes.length && bytes[next] !== quote) return true;
    at = bytes.indexOf(contentMarker, next);
  }
  return false;
}

interface Outcome {
  ok: boolean;
  /** performance.now() at the first content delta (streams), else 0. */
  firstTokenAt: number;
  endAt: number;
}

interface Exchange {
  promise: Promise<Outcome>;
  /** Aborts the request (the memory test closes its hanging streams with it). */
  abort(): void;
}

function send(pool: Pool, target: Target, body: string, stream: boolean, onFirstToken?: () => void): Exchange {
  let controller: Dispatcher.DispatchController | null = null;
  let abortRequested = false;
  const promise = new Promise<Outcome>((resolve) => {
    let status = 0;
    let firstTokenAt = 0;
    // The last bytes seen: the marker may straddle two chunks, and [DONE] ends the last one.
    let tail: Buffer = Buffer.alloc(0);
    pool.dispatch(
      { path: target.path, method: "POST", headers: target.headers, body },
      {
        onRequestStart(started) {
          controller = started;
          if (abortRequested) started.abort(new Error("closed by the benchmark"));
        },
        onResponseStart(_controller, statusCode) {
          status = statusCode;
        },
        onResponseData(_controller, chunk) {
          if (!stream) return;
          if (firstTokenAt === 0) {
            const window = tail.length === 0 ? chunk : Buffer.concat([tail, chunk]);
            if (hasContent(window)) {
              firstTokenAt = performance.now();
              onFirstToken?.();
            }
          }
          tail = chunk.length >= doneMarker.length ? chunk.subarray(chunk.length - doneMarker.length) : Buffer.concat([tail, chunk]).subarray(-doneMarker.length);
        },
        onResponseEnd() {
          const ok = status === 200 && (!stream || (firstTokenAt !== 0 && tail.equals(doneMarker)));
          resolve({ ok, firstTokenAt, endAt: performance.now() });
        },
        onResponseError() {
          resolve({ ok: false, firstTokenAt, endAt: performance.now() });
        },
      },
    );
  });
  return {
    promise,
    abort() {
      abortRequested = true;
      (controller as Dispatcher.DispatchController | null)?.abort(new Error("closed by the benchmark"));
    },
  };
}

function clientCpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

async function runCell(request: CellRequest): Promise<CellResult> {
  const pool = new Pool(request.target.origin, {
    connections: request.concurrency,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 60_000,
  });
  const startedAt = performance.now();
  const measureFrom = startedAt + request.warmupMs;
  const stopAt = measureFrom + request.durationMs;
  const latencies: number[] = [];
  const firstTokens: number[] = [];
  let errors = 0;
  let lastEnd = measureFrom;
  let cpuAtStart = 0;
  const windowOpens = setTimeout(() => {
    cpuAtStart = clientCpuMicros();
    process.send?.({ type: "measure-start" } satisfies MeasureStartMessage);
  }, request.warmupMs);

  const worker = async (): Promise<void> => {
    for (;;) {
      const start = performance.now();
      if (start >= stopAt) return;
      const outcome = await send(pool, request.target, request.body, request.stream).promise;
      if (start < measureFrom) continue;
      lastEnd = Math.max(lastEnd, outcome.endAt);
      if (!outcome.ok) {
        errors++;
        // A server that refuses at once must not turn the cell into a busy loop.
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      latencies.push((outcome.endAt - start) * 1000);
      if (request.stream) firstTokens.push((outcome.firstTokenAt - start) * 1000);
    }
  };
  await Promise.all(Array.from({ length: request.concurrency }, worker));
  clearTimeout(windowOpens);
  const cpuUsed = clientCpuMicros() - cpuAtStart;
  await pool.close();

  const elapsedMs = lastEnd - measureFrom;
  return {
    requests: latencies.length,
    errors,
    elapsedMs,
    requestsPerSecond: elapsedMs > 0 ? (latencies.length * 1000) / elapsedMs : 0,
    latency: summarize(latencies),
    firstToken: request.stream ? summarize(firstTokens) : null,
    clientCpuPerRequest: latencies.length > 0 ? cpuUsed / latencies.length : 0,
  };
}

/** The memory test's streams: opened together, held open by the upstream, closed on request. */
let openStreams: { pool: Pool; exchanges: Exchange[] } | null = null;

async function openHangingStreams(request: OpenStreamsRequest): Promise<OpenStreamsResult> {
  const pool = new Pool(request.target.origin, { connections: request.count, pipelining: 1, headersTimeout: 0, bodyTimeout: 0 });
  const startedAt = performance.now();
  let opened = 0;
  let errors = 0;
  let allOpen: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    allOpen = resolve;
  });
  const onFirstToken = () => {
    opened++;
    if (opened + errors === request.count) allOpen();
  };
  const exchanges: Exchange[] = [];
  for (let index = 0; index < request.count; index++) {
    const exchange = send(pool, request.target, request.body, true, onFirstToken);
    void exchange.promise.then((outcome) => {
      // A stream that ends or fails before its first token never counts as open.
      if (outcome.firstTokenAt === 0) {
        errors++;
        if (opened + errors === request.count) allOpen();
      }
    });
    exchanges.push(exchange);
  }
  openStreams = { pool, exchanges };
  await Promise.race([done, new Promise((resolve) => setTimeout(resolve, request.timeoutMs))]);
  return { opened, errors, elapsedMs: performance.now() - startedAt };
}

async function closeHangingStreams(): Promise<void> {
  if (openStreams === null) return;
  const { pool, exchanges } = openStreams;
  openStreams = null;
  for (const exchange of exchanges) exchange.abort();
  await Promise.all(exchanges.map((exchange) => exchange.promise));
  await pool.destroy();
}

async function answer(message: LoadRequest): Promise<object> {
  switch (message.type) {
    case "cell":
      return runCell(message);
    case "open-streams":
      return openHangingStreams(message);
    case "close-streams":
      await closeHangingStreams();
      return {};
    case "close":
      await closeHangingStreams();
      return {};
  }
}

process.on("message", (message: LoadRequest) => {
  answer(message).then(
    (result) => {
      process.send?.({ id: message.id, ...result }, () => {
        if (message.type === "close") process.exit(0);
      });
    },
    (error: unknown) => {
      process.send?.({ id: message.id, error: error instanceof Error ? error.stack : String(error) });
    },
  );
});
process.on("disconnect", () => process.exit(0));
process.send?.({ type: "ready" });
