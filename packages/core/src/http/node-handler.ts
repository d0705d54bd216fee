import type { IncomingMessage, ServerResponse } from "node:http";
import { GatewayError } from "../errors/gateway-error.js";
import { errorReply } from "../gateway/create-gateway.js";
import type { Gateway } from "../gateway/create-gateway.js";
import { doneEvent } from "../gateway/gateway-request.js";
import type { GatewayReply, StreamReply } from "../gateway/gateway-request.js";
import { nodeRequestTarget, normalizeBasePath } from "./base-path.js";
import { nodeHeaders, readNodeBodyOrThrow, unreadBodyClosesConnection } from "./read-node-body.js";

export interface NodeHandlerOptions {
  /**
   * Where the OpenAI-compatible API is mounted, e.g. `/api/openai/v1`. Default `/v1`. Mounted
   * under a path by Express (`app.use("/api/openai/v1", handler)`), give that path or `/`.
   */
  basePath?: string;
}

/**
 * A node:http request handler. With `next`, requests outside the base path go to it (Express,
 * Connect); without, they get a 404. A body already read by an upstream body parser (Express's
 * `express.json()`) is taken from `request.body`.
 */
export type NodeHandler = (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void) => void;

export function createNodeHandler(gateway: Gateway, options: NodeHandlerOptions = {}): NodeHandler {
  const basePath = normalizeBasePath(options.basePath ?? "/v1");
  return (request, response, next) => {
    const target = nodeRequestTarget(request, basePath);
    if (target === null) {
      if (next) return next();
      const url = request.url ?? "/";
      return writeJson(response, errorReply(new GatewayError("not_found", `Invalid URL (${request.method} ${url.split("?")[0]}).`)));
    }
    serve(gateway, request, response, target.path).catch((error: unknown) => {
      if (!response.headersSent) writeJson(response, errorReply(GatewayError.from(error)));
      else response.destroy();
    });
  };
}

async function serve(gateway: Gateway, request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
  const controller = new AbortController();
  // 'close' fires on both a finished response and a vanished client; only the second is an abort.
  response.once("close", () => {
    if (!response.writableFinished) controller.abort();
  });

  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  let bodyRead = false;
  const reply = await gateway.handle({
    method: request.method ?? "GET",
    path,
    headers: nodeHeaders(request),
    body: null,
    // Read only once the gateway knows who is asking: a caller without a valid key never has its body read.
    readBody: hasBody
      ? () => {
          bodyRead = true;
          return readNodeBodyOrThrow(request, gateway.maxBodyBytes);
        }
      : undefined,
    signal: controller.signal,
    raw: request,
  });
  if (reply.kind === "json") {
    // The rest of an oversized body is not read; close rather than leave it in the socket.
    if (reply.status === 413 || (hasBody && !bodyRead && unreadBodyClosesConnection(request, gateway.maxBodyBytes))) {
      response.setHeader("connection", "close");
    }
    return writeJson(response, reply);
  }
  await writeStream(response, reply, controller.signal);
}

function writeJson(response: ServerResponse, reply: Extract<GatewayReply, { kind: "json" }>): void {
  if (response.destroyed) return;
  response.writeHead(reply.status, { ...reply.headers, "content-length": Buffer.byteLength(reply.body) });
  response.end(reply.body);
}

/**
 * Writes a stream with backpressure: when the socket's buffer is full, it stops pulling events
 * (and so stops reading the upstream) until 'drain'. A vanished client ends the iteration, which
 * settles the request's budget.
 *
 * Events that are ready together (an upstream usually delivers several per read) go out as one
 * chunk: each is appended to `pending`, and a write is scheduled with process.nextTick, which
 * runs once the promise chain producing them waits on I/O (Node's own socket corking relies on
 * the same ordering). A `write` per event costs four buffers per event in the socket's writev
 * (chunk size, CRLF, data, CRLF): 97 for a 20-token stream, against 5 this way (`npm run bench`,
 * strace). A paced upstream still gets one write per event, as each arrives on its own.
 *
 * The piece that ends with `data: [DONE]` ends the response at once: the iteration then only
 * settles the budget, and a database commit's round trip need not hold the client's last bytes.
 *
 * A client that stops reading without going away leaves the socket full; when the gateway gives
 * up on the stream meanwhile (`reply.signal`: its total time ran out), the connection is dropped,
 * since nothing more can reach the client, and the iteration is finished, which settles it.
 */
async function writeStream(response: ServerResponse, reply: StreamReply, signal: AbortSignal): Promise<void> {
  const events = reply.events;
  let pending = "";
  let flushScheduled = false;
  /** The response has ended; what the iteration still does is settling, which the client need not wait for. */
  let ended = false;
  const end = () => {
    ended = true;
    const text = pending;
    pending = "";
    response.end(text);
  };
  /** Set when a write filled the socket's buffer: resolves true on 'drain', false on abort or when the gateway gives up. */
  const socketFull: { drained: Promise<boolean> | null } = { drained: null };
  const flush = () => {
    flushScheduled = false;
    if (pending === "" || signal.aborted || response.destroyed) return;
    const text = pending;
    pending = "";
    if (!response.write(text)) socketFull.drained = drained(response, signal, reply.signal);
  };
  try {
    // No flushHeaders(): the gateway answers only once the first upstream event is in hand, so
    // the headers leave with it in the same write.
    response.writeHead(reply.status, reply.headers);
    for (;;) {
      if (socketFull.drained !== null) {
        const writable = await socketFull.drained;
        socketFull.drained = null;
        if (!writable) {
          // Given up with the socket still full: no clean end can reach the client.
          if (!signal.aborted) response.destroy();
          break;
        }
      }
      const next = await events.next();
      if (next.done) break;
      if (signal.aborted) break;
      if (ended) continue;
      pending += next.value;
      if (next.value.endsWith(doneEvent)) {
        // The last events and the chunked terminator, together, before the budget is settled.
        end();
        continue;
      }
      if (!flushScheduled) {
        flushScheduled = true;
        process.nextTick(flush);
      }
    }
    // A stream that ended without [DONE] (an error event) ends here; the scheduled flush finds nothing.
    if (!signal.aborted && !ended && !response.destroyed) end();
  } finally {
    await events.return(undefined);
  }
}

function drained(response: ServerResponse, signal: AbortSignal, abandoned: AbortSignal | undefined): Promise<boolean> {
  if (signal.aborted || abandoned?.aborted === true) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      response.off("drain", onDrain);
      signal.removeEventListener("abort", onAbort);
      abandoned?.removeEventListener("abort", onAbort);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onAbort = () => done(false);
    response.on("drain", onDrain);
    signal.addEventListener("abort", onAbort, { once: true });
    abandoned?.addEventListener("abort", onAbort, { once: true });
  });
}
