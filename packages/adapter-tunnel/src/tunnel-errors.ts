/**
 * Failures of a request through a tunnel, as the GatewayErrors the Deployment contract promises.
 * The model servers behind tunnels are the OpenAI-compatible servers of the openai-compatible
 * adapter (vLLM, Ollama, TGI, llama.cpp), so their error bodies are read as loosely:
 * `{"error":{"message",...}}`, vLLM's flat `{"object":"error","message"}`, TGI's
 * `{"error":"...","error_type"}`, FastAPI's `{"detail"}`, or plain text.
 */
import { GatewayError, upstreamFailure } from "@sluice/core";
import type { GatewayErrorCode } from "@sluice/core";

export interface ErrorBody {
  message: string | null;
  type: string | null;
  param: string | null;
  code: string | null;
}

/** Relayed messages are cut here. */
const maxMessageLength = 2_000;

/** The one answer for a tunnel that cannot serve: SPEC.md says it must be restarted. */
export function tunnelStopped(name: string): GatewayError {
  return new GatewayError(
    "provider_unavailable",
    `The session tunnel '${name}' is stopped: the session and its tunnel must be restarted before it can serve requests.`,
  );
}

export function cancelledError(cause: unknown): GatewayError {
  return new GatewayError("upstream_error", "The request was cancelled.", { cause });
}

/** A failure in transit: the tunnel's connection dropped or the host's tunnel refused the connection. */
export function transitError(error: unknown, signal: AbortSignal | undefined): GatewayError {
  if (signal?.aborted) return cancelledError(error);
  if (GatewayError.is(error)) return error;
  return new GatewayError("upstream_error", "The connection through the session tunnel failed.", { cause: error });
}

export function parseErrorBody(text: string, contentType: string): ErrorBody {
  const empty: ErrorBody = { message: null, type: null, param: null, code: null };
  const trimmed = text.trim();
  if (trimmed === "") return empty;
  if (trimmed.startsWith("{")) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (isRecord(parsed)) return readErrorObject(parsed);
    } catch {
      // Not JSON after all: read as text below.
    }
  }
  if (contentType.includes("html") || trimmed.startsWith("<")) return empty;
  return { ...empty, message: clip(trimmed) };
}

export function readErrorObject(payload: Record<string, unknown>): ErrorBody {
  const error = payload.error;
  if (isRecord(error)) {
    return { message: textOrNull(error.message), type: textOrNull(error.type), param: textOrNull(error.param), code: textOrNull(error.code) };
  }
  if (typeof error === "string") return { message: textOrNull(error), type: textOrNull(payload.error_type), param: null, code: null };
  if (typeof payload.message === "string") {
    return { message: textOrNull(payload.message), type: textOrNull(payload.type), param: textOrNull(payload.param), code: textOrNull(payload.code) };
  }
  const detail = payload.detail;
  if (typeof detail === "string") return { message: textOrNull(detail), type: null, param: null, code: null };
  if (Array.isArray(detail)) {
    const parts = detail.flatMap((item) => (isRecord(item) && typeof item.msg === "string" ? [item.msg] : []));
    return { message: parts.length === 0 ? null : clip(parts.join("; ")), type: null, param: null, code: null };
  }
  return { message: null, type: null, param: null, code: null };
}

/**
 * The GatewayError for a non-2xx answer from the model server (or from the agent, which answers
 * 502 when it cannot reach the model server): the client's own mistakes (400, 422, 404, 413)
 * relayed with the server's message; refused credentials (401, 403) as a 502 that blames the
 * tunnel's configuration, never the client's key; 429 and 503 with their retry headers; timeouts
 * as 504; anything else as 502.
 */
export function statusError(input: { status: number; headers: Record<string, string | string[] | undefined>; body: ErrorBody }): GatewayError {
  const { status, body } = input;
  const relayed = body.message ?? `The model server answered HTTP ${status} without saying why.`;
  const clientError = (code: GatewayErrorCode, relayStatus: number): GatewayError =>
    new GatewayError(code, relayed, { status: relayStatus, param: body.param, wireCode: body.code });
  if (status === 400 || status === 422) return clientError("invalid_request", 400);
  if (status === 404) return clientError("model_not_found", 404);
  if (status === 413) return clientError("request_too_large", 413);
  if (status === 401 || status === 403) {
    return new GatewayError(
      "upstream_error",
      `The model server in the session refused the tunnel's request (HTTP ${status}). Start the tunnel agent with the server's API key (--target-api-key-env).`,
    );
  }
  return upstreamFailure({ status, headers: input.headers, message: relayed, code: body.code, upstream: "The model server" });
}

export function headerText(headers: Record<string, string | string[] | undefined>, name: string): string {
  const value = headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? "";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function textOrNull(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? clip(value) : null;
}

function clip(text: string): string {
  return text.length <= maxMessageLength ? text : `${text.slice(0, maxMessageLength)}…`;
}
