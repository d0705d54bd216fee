import { GatewayError } from "@sluice/core";
import { Pool } from "undici";
import type { Dispatcher } from "undici";
import { cancelledError, parseUpstreamErrorBody, transportError, upstreamStatusError } from "./upstream-error.js";

export type UpstreamResponse = Dispatcher.ResponseData;
export type UpstreamBody = UpstreamResponse["body"];
export type UpstreamHeaders = UpstreamResponse["headers"];

export interface UpstreamClientOptions {
  /** Connections per upstream origin. */
  connections: number;
  connectTimeoutMs: number;
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
 * The HTTP side of one provider: one keep-alive undici Pool per upstream origin (never the
 * global fetch, STYLE.md §2), and the readers every route shares.
 */
export class UpstreamClient {
  readonly #pools = new Map<string, Pool>();
  readonly #options: UpstreamClientOptions;
  #closing: Promise<void> | null = null;

  constructor(options: UpstreamClientOptions) {
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
      response = await this.#pool(request.origin).request({
        path: request.path,
        method: request.method,
        headers: request.headers,
        body: request.body,
        signal: request.signal,
      });
    } catch (error) {
      throw transportError(error, request.signal);
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return response;
    const text = await readBounded(response.body, errorBodyLimit);
    if (request.signal.aborted) throw cancelledError(request.signal.reason);
    throw upstreamStatusError({
      status: response.statusCode,
      headers: response.headers,
      body: parseUpstreamErrorBody(text, headerText(response.headers, "content-type")),
    });
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

/** Reads a whole JSON object body; 502 when it is not one, "cancelled" on an abort. */
export async function readJsonObject(body: UpstreamBody, signal: AbortSignal): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await body.text();
  } catch (error) {
    if (signal.aborted) throw cancelledError(error);
    throw new GatewayError("upstream_error", "The upstream connection failed before the response was complete.", {
      cause: error,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new GatewayError("upstream_error", "The upstream answered with a body that is not JSON.", { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new GatewayError("upstream_error", "The upstream answered with JSON that is not an object.");
  }
  return parsed as Record<string, unknown>;
}

/**
 * Up to `limit` bytes of a body as text; whatever arrived when the body fails. Leaving early
 * destroys the body, so an oversized answer closes its connection rather than being read whole.
 */
export async function readBounded(body: UpstreamBody, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
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

/** Correlation and rate-limit headers worth relaying (ProviderResponse.headers). */
export function relayedHeaders(headers: UpstreamHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    if (name === "x-request-id" || name === "request-id" || name === "openai-processing-ms" || name.startsWith("x-ratelimit-")) {
      const value = headerText(headers, name);
      if (value !== "") out[name] = value;
    }
  }
  return out;
}
