/**
 * Turns what Azure OpenAI answers with a non-2xx status into one GatewayError in OpenAI's shape,
 * keeping what Azure adds (wire-formats §3.3). Azure's bodies are `{"error":{...}}` with:
 *
 * - a content-filtered prompt: 400, `code: "content_filter"`, `param: "prompt"`, and the
 *   per-category results under `innererror.content_filter_result` (most captures) or
 *   `inner_error.content_filter_results` (the 2024-10-21 and v1 specs): relayed as they came;
 * - a rate limit: 429 with `code: "429"` (a string), no `type` or `param`, and the wait in
 *   `retry-after-ms` / `retry-after`;
 * - a missing deployment: 404 `code: "DeploymentNotFound"`;
 * - a refused key or token: 401 `code: "401"` (403 without the data-plane role).
 */
import { GatewayError, connectionFailure, upstreamFailure } from "@sluice/core";

export interface AzureErrorBody {
  message: string | null;
  type: string | null;
  param: string | null;
  code: string | null;
  /** Every other key of Azure's error object (`innererror`, `inner_error`, `status`), unchanged. */
  extra: Record<string, unknown>;
}

/** Upstream messages are relayed to clients; a runaway body is cut here. */
const maxMessageLength = 2_000;
const standardKeys = new Set(["message", "type", "param", "code"]);

export function parseAzureErrorBody(text: string): AzureErrorBody {
  const empty: AzureErrorBody = { message: null, type: null, param: null, code: null, extra: {} };
  const trimmed = text.trim();
  if (trimmed === "") return empty;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    // An HTML page from a proxy says nothing a client could use; plain text might.
    return trimmed.startsWith("<") ? empty : { ...empty, message: clip(trimmed) };
  }
  if (!isRecord(parsed)) return empty;
  const error = isRecord(parsed.error) ? parsed.error : parsed;
  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) if (!standardKeys.has(key)) extra[key] = value;
  return {
    message: stringOrNull(error.message) ?? (typeof parsed.error === "string" ? stringOrNull(parsed.error) : null),
    type: stringOrNull(error.type),
    param: stringOrNull(error.param),
    // Azure writes HTTP statuses as strings ("429", "401"): they say nothing the status does not.
    code: typeof error.code === "string" && error.code !== "" && !/^\d{3}$/.test(error.code) ? clip(error.code) : null,
    extra,
  };
}

/** The details relayed with a client error: Azure's inner error, under whichever spelling it used. */
function innerDetails(body: AzureErrorBody): Record<string, unknown> | undefined {
  const details: Record<string, unknown> = {};
  for (const key of ["innererror", "inner_error"]) if (body.extra[key] !== undefined) details[key] = body.extra[key];
  return Object.keys(details).length === 0 ? undefined : details;
}

/**
 * The GatewayError for Azure's non-2xx answer.
 *
 * - 400 `content_filter` -> 400 `content_filter`, `param` "prompt", with every extra key of
 *   Azure's error object (`innererror` / `inner_error` with the filter results, `status`) in
 *   the relayed error object, so clients see the categories exactly as Azure sent them.
 * - Other 400s, 413, 422 -> the client's request was refused: relayed with Azure's message,
 *   `param`, `code` and inner error.
 * - 404 `DeploymentNotFound` -> 404 `model_not_found` with Azure's message. Any other 404 means
 *   the endpoint or api-version is wrong: a 502, the provider's configuration at fault.
 * - 401, 403 -> 502: the provider's key or identity was refused, not the client's.
 * - 429 -> 429 keeping `retry-after-ms` / `retry-after`, which the gateway honours before
 *   retrying or falling back to the next deployment.
 * - 503 -> 503; 408, 504 -> 504; any other status -> 502.
 */
export function azureStatusError(input: {
  status: number;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: AzureErrorBody;
}): GatewayError {
  const { status, body } = input;
  const relayed = body.message ?? `Azure OpenAI answered HTTP ${status} without saying why.`;

  if (status === 400 && body.code === "content_filter") {
    return new GatewayError("content_filter", relayed, {
      param: body.param ?? "prompt",
      wireCode: "content_filter",
      details: body.extra,
    });
  }
  if (status === 400 || status === 422) {
    return new GatewayError("invalid_request", relayed, {
      status: 400,
      param: body.param,
      wireCode: body.code,
      ...(body.type === null ? {} : { type: body.type }),
      details: innerDetails(body),
    });
  }
  if (status === 413) return new GatewayError("request_too_large", relayed, { param: body.param, wireCode: body.code });
  if (status === 404) {
    if (body.code === "DeploymentNotFound") {
      return new GatewayError("model_not_found", relayed, { param: "model", wireCode: "model_not_found" });
    }
    return new GatewayError(
      "upstream_error",
      `Azure OpenAI answered 404 (${relayed}). The provider's endpoint or api-version may be wrong.`,
    );
  }
  if (status === 401 || status === 403) {
    return new GatewayError(
      "upstream_error",
      `Azure OpenAI rejected this provider's credentials (HTTP ${status}). The provider's owner should check its API key, or its identity's data-plane role (Cognitive Services OpenAI User).`,
    );
  }
  return upstreamFailure({ status, headers: input.headers, message: relayed, code: body.code, upstream: "Azure OpenAI" });
}

/** The GatewayError for a request to Azure OpenAI that got no HTTP answer (see `connectionFailure`). */
export function transportError(error: unknown, signal: AbortSignal | undefined): GatewayError {
  return connectionFailure(error, signal, { subject: "Azure OpenAI", object: "Azure OpenAI" });
}


function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringOrNull(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? clip(value) : null;
}

function clip(text: string): string {
  return text.length <= maxMessageLength ? text : `${text.slice(0, maxMessageLength)}…`;
}
