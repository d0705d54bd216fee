/**
 * Turns whatever an OpenAI-compatible server answers with a non-2xx status into one GatewayError
 * in OpenAI's shape. Servers disagree on the error body (wire-formats §4, "Error shape"):
 *
 * - OpenAI, Ollama: `{"error":{"message","type","param","code":"string"|null}}`
 * - vLLM >= 0.10.1, llama.cpp: the same nesting with `code` an integer HTTP status
 * - vLLM < 0.10.1: flat `{"object":"error","message","type","param","code":400}`
 * - TGI: `{"error":"<message>","error_type":"validation"}`; the HF router: `{"error":"<message>"}`
 * - TGI's axum rejections: `text/plain`; FastAPI defaults: `{"detail":...}`; proxies: HTML or nothing
 */
import { GatewayError, connectionFailure, upstreamFailure } from "@sluice/core";
import type { GatewayErrorCode } from "@sluice/core";

/** What an upstream's error body says, read loosely. */
export interface UpstreamErrorBody {
  message: string | null;
  type: string | null;
  param: string | null;
  /** The upstream's `code` when it is a string; integer codes (an HTTP status) say nothing new. */
  code: string | null;
}

/** Upstream messages are relayed to clients; a runaway body is cut here. */
const maxMessageLength = 2_000;

export function parseUpstreamErrorBody(text: string, contentType: string): UpstreamErrorBody {
  const empty: UpstreamErrorBody = { message: null, type: null, param: null, code: null };
  const trimmed = text.trim();
  if (trimmed === "") return empty;
  if (trimmed.startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      parsed = undefined;
    }
    if (isRecord(parsed)) return readUpstreamErrorObject(parsed);
  }
  // An HTML page (a proxy's 502, a login wall) says nothing a client could use.
  if (contentType.includes("html") || trimmed.startsWith("<")) return empty;
  return { ...empty, message: clip(trimmed) };
}

/** What a parsed error body says; every field null when it is not an error shape we know. */
export function readUpstreamErrorObject(payload: Record<string, unknown>): UpstreamErrorBody {
  const error = payload.error;
  if (isRecord(error)) {
    return {
      message: stringOrNull(error.message),
      type: stringOrNull(error.type),
      param: stringOrNull(error.param),
      code: stringOrNull(error.code),
    };
  }
  if (typeof error === "string") {
    return { message: nonEmpty(error), type: stringOrNull(payload.error_type), param: null, code: null };
  }
  if (typeof payload.message === "string") {
    return {
      message: nonEmpty(payload.message),
      type: stringOrNull(payload.type),
      param: stringOrNull(payload.param),
      code: stringOrNull(payload.code),
    };
  }
  return { message: detailMessage(payload.detail), type: null, param: null, code: null };
}

/** FastAPI's `detail`: a string, or a list of validation problems with `msg` and `loc`. */
function detailMessage(detail: unknown): string | null {
  if (typeof detail === "string") return nonEmpty(detail);
  if (!Array.isArray(detail)) return null;
  const parts: string[] = [];
  for (const item of detail) {
    if (!isRecord(item) || typeof item.msg !== "string") continue;
    const where = Array.isArray(item.loc) ? item.loc.filter((part) => part !== "body").join(".") : "";
    parts.push(where === "" ? item.msg : `${where}: ${item.msg}`);
  }
  return parts.length === 0 ? null : clip(parts.join("; "));
}

/**
 * The GatewayError for an upstream's non-2xx answer.
 *
 * - 400, 422 (TGI's validation) -> 400 `invalid_request`; 404 -> 404 `model_not_found` (a 404
 *   that says nothing, an HTML page, is the endpoint's path instead: a retryable 502);
 *   413 -> 413 `request_too_large`: the client's request was refused, so the upstream's message
 *   and `param` are relayed as they are, and its `code` when it is a string (else null).
 * - 401, 403 -> 502: the provider's credentials were refused, not the client's. Never relayed as
 *   a 401 (the client would think its gateway key is wrong), nor with the upstream's message
 *   (OpenAI's echoes part of the key).
 * - 429 -> 429 keeping the upstream's `code` (`insufficient_quota` must not be retried; else
 *   `rate_limit_exceeded`) and its `retry-after-ms` / `retry-after`.
 * - 503 -> 503 `provider_unavailable`; 504 and 408 -> 504 `upstream_timeout`; any other status
 *   -> 502 `upstream_error`. All of these are retryable by status.
 */
export function upstreamStatusError(input: {
  status: number;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: UpstreamErrorBody;
}): GatewayError {
  const { status, body } = input;
  const relayed = body.message ?? `The upstream answered HTTP ${status} without saying why.`;
  // The upstream's own code when it is a string; null when it gave none or an integer status.
  const clientError = (code: GatewayErrorCode, relayStatus: number): GatewayError =>
    new GatewayError(code, relayed, { status: relayStatus, param: body.param, wireCode: body.code });

  if (status === 400 || status === 422) return clientError("invalid_request", 400);
  if (status === 404) {
    // A 404 that says nothing (an empty body, a web server's HTML page) is the endpoint's path,
    // not the model: an upstream error, which a fallback endpoint may not have.
    if (body.message === null) {
      return new GatewayError("upstream_error", "The upstream answered HTTP 404 without an error body: check the provider's endpoint URL.", {
        cause: notFoundCause,
        deploymentFault: true,
      });
    }
    return clientError("model_not_found", 404);
  }
  if (status === 413) return clientError("request_too_large", 413);
  if (status === 401 || status === 403) {
    return new GatewayError(
      "upstream_error",
      `The upstream rejected this provider's credentials (HTTP ${status}). The provider's owner should check its API key and access.`,
      // The same key fails the same way on every try and every endpoint of this provider.
      { retryable: false },
    );
  }
  return upstreamFailure({ status, headers: input.headers, message: relayed, code: body.code, upstream: "The upstream" });
}

/** The GatewayError for a request to an OpenAI-compatible upstream that got no HTTP answer (see `connectionFailure`). */
export function transportError(error: unknown, signal: AbortSignal | undefined): GatewayError {
  return connectionFailure(error, signal, { subject: "The upstream", object: "the upstream" });
}


function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringOrNull(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? clip(value) : null;
}

function nonEmpty(value: string): string | null {
  return value === "" ? null : clip(value);
}

function clip(text: string): string {
  return text.length <= maxMessageLength ? text : `${text.slice(0, maxMessageLength)}…`;
}

const notFoundCause = { httpStatus: 404 };

/** Whether `error` is a 404 that said nothing: a path the server does not have (`upstreamStatusError`). */
export function isBareNotFound(error: GatewayError): boolean {
  return error.cause === notFoundCause;
}
