import http2 from "node:http2";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { Pool } from "undici";
import { TUNNEL_ERROR_HEADER, forwardableHeaders } from "../protocol/tunnel-protocol.js";

export interface AgentProxyOptions {
  /** The model server's base URL (`http://127.0.0.1:8000`, or its `/v1` base). */
  target: URL;
  /** Sent to the model server as `Authorization: Bearer`; it never leaves the session. */
  targetApiKey?: string;
  /** Keep-alive connections to the model server. */
  connections: number;
  connectTimeoutMs: number;
  /** Request bodies larger than this are refused with a 413. */
  maxBodyBytes: number;
}

export interface AgentProxy {
  /** Serves one stream of the tunnel: the request it carries goes to the model server. */
  handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void;
  close(): Promise<void>;
}

/**
 * The agent's side of each tunnelled request: an HTTP/2 stream from the hub becomes an HTTP/1.1
 * request to the model server, and its answer streams back with backpressure (a full HTTP/2
 * window pauses the read from the model server). A stream the hub resets (the client went
 * away) aborts the request, and the model server sees its client disconnect. A model server that
 * fails mid-answer resets the stream, so the gateway sees a failure, never a clean but short end.
 *
 * Only OpenAI's routes under `/v1/` are served, with GET and POST: the gateway can reach nothing
 * else of the model server, nor anything else in the session. Any credentials the gateway sends
 * are dropped; the model server's own key is added here.
 */
export function createAgentProxy(options: AgentProxyOptions): AgentProxy {
  const { target } = options;
  const prefix = target.pathname.replace(/\/+$/, "").replace(/\/v1$/, "");
  const pool = new Pool(target.origin, {
    connections: options.connections,
    connectTimeout: options.connectTimeoutMs,
    // The gateway bounds every request, and resets the stream when its time is up.
    headersTimeout: 0,
    bodyTimeout: 0,
  });

  async function handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const controller = new AbortController();
    let finished = false;
    stream.on("error", ignore);
    stream.once("close", () => {
      if (!finished) controller.abort();
    });

    const method = headers[":method"];
    const path = headers[":path"];
    if (method !== "GET" && method !== "POST") {
      answer(stream, 405, "method_not_allowed", "The session tunnel carries GET and POST requests only.");
      return;
    }
    if (typeof path !== "string" || !isOpenAIPath(path)) {
      answer(stream, 404, "not_found", "The session tunnel serves OpenAI's routes under /v1/ only.");
      return;
    }

    let body: Buffer | undefined;
    if (method === "POST") {
      const read = await readBody(stream, options.maxBodyBytes);
      if (read === null) {
        if (!stream.closed) answer(stream, 413, "request_too_large", `The tunnel agent accepts request bodies of up to ${options.maxBodyBytes} bytes.`);
        return;
      }
      body = read;
    }
    if (controller.signal.aborted) return;

    const upstreamHeaders = forwardableHeaders(headers);
    if (body !== undefined) upstreamHeaders["content-length"] = String(body.byteLength);
    if (options.targetApiKey !== undefined) upstreamHeaders.authorization = `Bearer ${options.targetApiKey}`;

    // undici's stream(): the answer is written straight into the HTTP/2 stream, with undici
    // pausing the model server's socket while the stream's window is full. Leaner than request()
    // plus a pipeline, which allocates a body stream per request.
    let responded = false;
    try {
      await pool.stream({ path: `${prefix}${path}`, method, headers: upstreamHeaders, body, signal: controller.signal }, (response) => {
        if (stream.closed || stream.destroyed) throw new Error("the tunnel closed the request");
        stream.respond({ ":status": response.statusCode, ...forwardableHeaders(response.headers) });
        responded = true;
        return stream;
      });
      finished = true;
    } catch (error) {
      if (controller.signal.aborted || stream.closed) return;
      if (!responded) {
        answer(stream, 502, "tunnel_target_unreachable", `The tunnel agent could not reach the model server (${failureName(error)}).`);
        return;
      }
      // The model server failed mid-answer: reset, so no one mistakes a cut answer for a whole one.
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  }

  return {
    handle(stream, headers) {
      void handle(stream, headers).catch(() => {
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      });
    },
    close: () => pool.close(),
  };
}

/** `/v1/...`, with no way out of it (`..`, encoded slashes, backslashes). */
function isOpenAIPath(path: string): boolean {
  if (!path.startsWith("/v1/")) return false;
  const pathname = path.split("?")[0]!;
  return !/(^|\/)\.\.?(\/|$)|%2f|%5c|%2e|\\/i.test(pathname);
}

function readBody(stream: ServerHttp2Stream, limit: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (result: Buffer | null): void => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("close", onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        done(null);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => done(Buffer.concat(chunks, size));
    const onClose = (): void => done(null);
    stream.on("data", onData);
    stream.once("end", onEnd);
    stream.once("close", onClose);
  });
}

/** An error the agent answers itself, in OpenAI's shape, marked as the tunnel's own. */
function answer(stream: ServerHttp2Stream, status: number, code: string, message: string): void {
  if (stream.closed || stream.headersSent) return;
  const body = JSON.stringify({ error: { message, type: status >= 500 ? "server_error" : "invalid_request_error", param: null, code } });
  stream.respond({ ":status": status, "content-type": "application/json", "content-length": Buffer.byteLength(body), [TUNNEL_ERROR_HEADER]: code });
  stream.end(body);
}

function failureName(error: unknown): string {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused: is it running?";
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
      return "connection reset";
    case "UND_ERR_CONNECT_TIMEOUT":
    case "ETIMEDOUT":
      return "connection timed out";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host name not resolved";
    default:
      return "connection failed";
  }
}

function ignore(): void {
  // The stream's outcome is decided by its close; a late error adds nothing.
}
