import { GatewayError } from "../errors/gateway-error.js";
import { normalizeBasePath, pathBelow } from "./base-path.js";
import { errorReply } from "../gateway/create-gateway.js";
import type { Gateway } from "../gateway/create-gateway.js";
import { doneEvent } from "../gateway/gateway-request.js";
import type { GatewayReply } from "../gateway/gateway-request.js";

export interface FetchHandlerOptions {
  /** Where the OpenAI-compatible API is mounted, e.g. `/api/openai/v1`. Default `/v1`. */
  basePath?: string;
}

/**
 * A web-standard `(Request) => Promise<Response>` handler, for runtimes built on fetch and for
 * tests. On Node, prefer `createNodeHandler`: a web Request/Response stack costs several times
 * the CPU per request (STYLE.md §2).
 */
export function createFetchHandler(gateway: Gateway, options: FetchHandlerOptions = {}): (request: Request) => Promise<Response> {
  const basePath = normalizeBasePath(options.basePath ?? "/v1");
  return async (request) => {
    const url = new URL(request.url);
    const path = pathBelow(url.pathname, basePath);
    if (path === null) {
      return toResponse(errorReply(new GatewayError("not_found", `Invalid URL (${request.method} ${url.pathname}).`)));
    }
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    // A consumer that cancels the response body has gone away, as surely as an aborted request.
    const cancelled = new AbortController();
    const reply = await gateway.handle({
      method: request.method,
      path,
      headers: { get: (name) => request.headers.get(name) ?? undefined },
      body: null,
      // Read only once the gateway knows who is asking: a caller without a valid key never has its body read.
      readBody: hasBody ? () => readBody(request, gateway.maxBodyBytes) : undefined,
      signal: AbortSignal.any([request.signal, cancelled.signal]),
      raw: request,
    });
    return toResponse(reply, cancelled);
  };
}

function toResponse(reply: GatewayReply, cancelled?: AbortController): Response {
  if (reply.kind === "json") return new Response(reply.body, { status: reply.status, headers: reply.headers });
  const events = reply.events;
  const abandoned = reply.signal;
  const encoder = new TextEncoder();
  /** A pull is waiting for the next piece: the gateway's own end of the stream then reaches the consumer through it. */
  let pulling = false;
  let finished = false;
  let onAbandoned: (() => void) | null = null;
  const finish = () => {
    finished = true;
    if (onAbandoned !== null) abandoned?.removeEventListener("abort", onAbandoned);
  };
  // A pull-based stream: the next event is read only when the consumer wants more, which is the
  // backpressure. cancel() first aborts the request (the gateway records a client disconnect and
  // stops the upstream, even while a read is pending), then ends the iteration, which settles it.
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      if (abandoned === undefined) return;
      // The gateway gave up (its total time ran out) while the consumer was not reading: end
      // the body with an error, as no clean end can reach a consumer that stopped reading, and
      // finish the iteration, which settles the request.
      onAbandoned = () => {
        if (pulling || finished) return;
        finish();
        controller.error(new Error("The gateway ended the stream: the client did not read it within the time allowed."));
        void events.return(undefined);
      };
      abandoned.addEventListener("abort", onAbandoned, { once: true });
    },
    async pull(controller) {
      pulling = true;
      const next = await events.next().finally(() => {
        pulling = false;
      });
      if (next.done) {
        finish();
        return controller.close();
      }
      controller.enqueue(encoder.encode(next.value));
      if (next.value.endsWith(doneEvent)) {
        // The stream's last piece: the client has it all, and the iteration only settles the
        // budget now, which it need not wait for.
        finish();
        controller.close();
        void settle(events);
      }
    },
    async cancel() {
      finish();
      cancelled?.abort();
      await events.return(undefined);
    },
  });
  return new Response(stream, { status: reply.status, headers: reply.headers });
}

/** Runs the rest of an iteration whose output is no longer wanted: what is left of it is settling. */
async function settle(events: AsyncGenerator<string, void, undefined>): Promise<void> {
  try {
    while (!(await events.next()).done);
  } catch {
    // Settling never throws; an iteration that does has nothing left to write anyway.
  }
}

/** The whole body, up to `limit` bytes; past it, a 413 GatewayError is thrown and the rest is not read. */
async function readBody(request: Request, limit: number): Promise<Uint8Array> {
  const tooLarge = new GatewayError("request_too_large", `The request body is larger than the gateway accepts (${limit} bytes).`);
  const declared = Number(request.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) throw tooLarge;
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read().catch((error: unknown) => {
      throw new GatewayError("invalid_request", "The request body could not be read.", { cause: error });
    });
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
