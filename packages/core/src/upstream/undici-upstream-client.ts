import type { IncomingHttpHeaders } from "node:http";
import { Pool } from "undici";
import { GatewayError } from "../errors/gateway-error.js";
import { UpstreamExchange } from "./upstream-exchange.js";
import type { UpstreamBody, UpstreamResponse } from "./upstream-exchange.js";

export type { UpstreamBody, UpstreamResponse } from "./upstream-exchange.js";
export type UpstreamHeaders = IncomingHttpHeaders;

export interface UndiciUpstreamClientOptions {
  /** Connections per upstream origin. */
  connections: number;
  connectTimeoutMs: number;
  /** Names the upstream in messages, as it reads mid-sentence: "the upstream", "Azure OpenAI". */
  upstreamName: string;
  /**
   * The GatewayError for a non-2xx answer, from its status, headers and (bounded) body text: the
   * adapter's knowledge of its upstream's error shapes.
   */
  statusError(input: { status: number; headers: UpstreamHeaders; text: string }): GatewayError;
  /** The GatewayError for a request that got no HTTP answer, or was cancelled through `signal`. */
  transportError(error: unknown, signal: AbortSignal): GatewayError;
}

export interface UpstreamRequest {
  origin: string;
  path: string;
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** Error bodies are read up to this size: enough for any real message, bounded against a runaway. */
const errorBodyLimit = 64 * 1024;

/**
 * The HTTP side of one provider that calls its upstream through undici: one keep-alive Pool per
 * upstream origin (never the global fetch, STYLE.md §2), non-2xx answers read bounded and mapped
 * by the adapter, and the readers every route shares. Shared by the adapters; each brings its
 * own error mapping.
 */
export class UndiciUpstreamClient {
  readonly #pools = new Map<string, Pool>();
  readonly #options: UndiciUpstreamClientOptions;
  #closing: Promise<void> | null = null;

  constructor(options: UndiciUpstreamClientOptions) {
    this.#options = options;
  }

  /**
   * Sends one request and resolves with a 2xx response whose body the caller must consume or
   * destroy. A non-2xx answer rejects with its GatewayError (the body read, bounded, and
   * released); so does a failure to connect, and an abort of `signal` ("The request was cancelled.").
   */
  async request(request: UpstreamRequest): Promise<UpstreamResponse> {
    let response: UpstreamResponse;
    try {
      // The pool first: a closed client throws before the exchange watches the signal.
      const pool = this.#pool(request.origin);
      const exchange = new UpstreamExchange(request.signal);
      if (exchange.state === "open") {
        pool.dispatch({ path: request.path, method: request.method, headers: request.headers, body: request.body ?? null }, exchange);
      }
      response = await exchange.started;
    } catch (error) {
      throw this.#options.transportError(error, request.signal);
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return response;
    const text = await readBounded(response.body, errorBodyLimit);
    if (request.signal.aborted) throw this.#options.transportError(request.signal.reason, request.signal);
    throw this.#options.statusError({ status: response.statusCode, headers: response.headers, text });
  }

  /**
   * Reads a whole JSON object body: parsed, and its text as it arrived, so an answer passed on
   * unchanged can be written from the upstream's own text instead of serialized again. 502 when
   * it is not an object, the transport error on an abort.
   */
  async readJsonBody(body: UpstreamBody, signal: AbortSignal): Promise<{ object: Record<string, unknown>; text: string }> {
    const name = this.#options.upstreamName;
    const sentenceStart = name.charAt(0).toUpperCase() + name.slice(1);
    let text: string;
    try {
      text = await body.text();
    } catch (error) {
      if (signal.aborted) throw this.#options.transportError(error, signal);
      throw new GatewayError("upstream_error", `The connection to ${name} failed before the response was complete.`, {
        cause: error,
      });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new GatewayError("upstream_error", `${sentenceStart} answered with a body that is not JSON.`, { cause: error });
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new GatewayError("upstream_error", `${sentenceStart} answered with JSON that is not an object.`);
    }
    return { object: parsed as Record<string, unknown>, text };
  }

  /** Closes every pool once in-flight requests have finished. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= Promise.all([...this.#pools.values()].map((pool) => pool.close())).then(() => undefined);
    return this.#closing;
  }

  #pool(origin: string): Pool {
    if (this.#closing !== null) throw new GatewayError("provider_unavailable", "This provider has been closed.");
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      pool = new Pool(origin, {
        connections: this.#options.connections,
        connectTimeout: this.#options.connectTimeoutMs,
        // No header or body timers here: the gateway enforces first-byte, idle and total time
        // through the call's AbortSignal, and a second, hidden timer would only disagree with it.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.#pools.set(origin, pool);
    }
    return pool;
  }
}

/**
 * Up to `limit` bytes of a body as text; whatever arrived when the body fails. Leaving early
 * destroys the body (an undici body, a Node Readable, an HTTP/2 stream), so an oversized answer
 * closes its connection or stream rather than being read whole.
 */
export async function readBounded(body: AsyncIterable<Uint8Array>, limit: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= limit) break;
    }
  } catch {
    // The status already says what happened; a body cut short only loses detail.
  }
  return Buffer.concat(chunks).subarray(0, limit).toString("utf8");
}

/** One response header as a single string ("" when absent). */
export function headerText(headers: UpstreamHeaders, name: string): string {
  const value = headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? "";
}

const relayedNames = new Set(["x-request-id", "request-id", "openai-processing-ms"]);

/**
 * Correlation and rate-limit headers worth relaying (ProviderResponse.headers), plus the names an
 * adapter adds for its upstream (Azure's `apim-request-id`, `x-ms-region`, ...).
 */
export function relayedHeaders(headers: UpstreamHeaders, extraNames?: ReadonlySet<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    if (relayedNames.has(name) || name.startsWith("x-ratelimit-") || extraNames?.has(name)) {
      const value = headerText(headers, name);
      if (value !== "") out[name] = value;
    }
  }
  return out;
}
