import { GatewayError } from "../errors/gateway-error.js";

type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * The GatewayError for an upstream's own failure, the part of every adapter's status mapping that
 * does not depend on the upstream: 429 keeps the upstream's code (`insufficient_quota` must not be
 * retried) and its retry hints; 503 is `provider_unavailable` with its retry hints; 408 and 504
 * are `upstream_timeout`; any other status is a 502 `upstream_error`. All are retryable by status.
 * `upstream` names the upstream in messages ("Azure OpenAI", "The upstream").
 */
export function upstreamFailure(input: {
  status: number;
  headers: ResponseHeaders;
  /** The upstream's message, or a stand-in saying it gave none. */
  message: string;
  /** The upstream's error code, when it gave a string one. */
  code: string | null;
  upstream: string;
}): GatewayError {
  const { status, message, upstream } = input;
  if (status === 429) {
    return new GatewayError("rate_limit_exceeded", message, { wireCode: input.code ?? "rate_limit_exceeded", headers: retryHints(input.headers) });
  }
  if (status === 503) {
    return new GatewayError("provider_unavailable", `${upstream} is unavailable (HTTP 503): ${message}`, { headers: retryHints(input.headers) });
  }
  if (status === 408 || status === 504) return new GatewayError("upstream_timeout", `${upstream} timed out (HTTP ${status}): ${message}`);
  return new GatewayError("upstream_error", `${upstream} failed (HTTP ${status}): ${message}`);
}

/** A 429's or 503's `retry-after-ms` and `retry-after`, the first value of each, which the gateway honours before retrying. */
export function retryHints(headers: ResponseHeaders): Record<string, string> {
  const hints: Record<string, string> = {};
  for (const name of ["retry-after-ms", "retry-after"] as const) {
    const value = headers[name];
    const text = Array.isArray(value) ? value[0] : value;
    if (text !== undefined && text !== "") hints[name] = text;
  }
  return hints;
}
