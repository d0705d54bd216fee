import { GatewayError } from "@sluice/core";
import { Pool } from "undici";
import type { Dispatcher } from "undici";
import { azureStatusError, cancelledError, parseAzureErrorBody, transportError } from "./azure-error.js";

export type AzureResponse = Dispatcher.ResponseData;
export type AzureBody = AzureResponse["body"];
export type AzureHeaders = AzureResponse["headers"];

export interface AzureHttpClientOptions {
  /** Connections per origin. */
  connections: number;
  connectTimeoutMs: number;
}

export interface AzureRequest {
  origin: string;
  path: string;
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** Error bodies are read up to this size: enough for any real message and filter result. */
const errorBodyLimit = 64 * 1024;

/**
 * The HTTP side of one provider: one keep-alive undici Pool per Azure origin (never the global
 * fetch, STYLE.md §2). A provider with deployments in several accounts has one pool per account.
 */
export class AzureHttpClient {
  readonly #pools = new Map<string, Pool>();
  readonly #options: AzureHttpClientOptions;
  #closing: Promise<void> | null = null;

  constructor(options: AzureHttpClientOptions) {
    this.#options = options;
  }

  /**
   * Sends one request and resolves with a 2xx response whose body the caller must consume or
   * destroy. A non-2xx answer rejects with its GatewayError (see `azureStatusError`); so does a
   * failure to connect, and an abort of `signal`.
   */
  async request(request: AzureRequest): Promise<AzureResponse> {
    let response: AzureResponse;
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
    throw azureStatusError({ status: response.statusCode, headers: response.headers, body: parseAzureErrorBody(text) });
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
        // The gateway enforces first-byte, idle and total time through the call's AbortSignal.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.#pools.set(origin, pool);
    }
    return pool;
  }
}

/** Reads a whole JSON object body; 502 when it is not one, "cancelled" on an abort. */
export async function readJsonObject(body: AzureBody, signal: AbortSignal): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await body.text();
  } catch (error) {
    if (signal.aborted) throw cancelledError(error);
    throw new GatewayError("upstream_error", "The Azure OpenAI connection failed before the response was complete.", { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new GatewayError("upstream_error", "Azure OpenAI answered with a body that is not JSON.", { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new GatewayError("upstream_error", "Azure OpenAI answered with JSON that is not an object.");
  }
  return parsed as Record<string, unknown>;
}

/** Up to `limit` bytes of a body as text; leaving early destroys the body. */
export async function readBounded(body: AzureBody, limit: number): Promise<string> {
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
export function headerText(headers: AzureHeaders, name: string): string {
  const value = headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? "";
}

const relayedNames = new Set(["x-request-id", "apim-request-id", "x-ms-region", "x-ms-deployment-name", "openai-processing-ms"]);

/** Correlation, routing and rate-limit headers worth relaying (wire-formats §3.3). */
export function relayedHeaders(headers: AzureHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    if (relayedNames.has(name) || name.startsWith("x-ratelimit-")) {
      const value = headerText(headers, name);
      if (value !== "") out[name] = value;
    }
  }
  return out;
}
