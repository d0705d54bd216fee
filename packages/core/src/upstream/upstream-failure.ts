import { GatewayError } from "../errors/gateway-error.js";

type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * The GatewayError for an upstream's own failure, the part of every adapter's status mapping that
 * does not depend on the upstream: 429 keeps the upstream's code (`insufficient_quota` must not be
 * retried) and its retry hints; 503 is `provider_unavailable` with its retry hints; 408 and 504
 * are `upstream_timeout`; any other status is a 502 `upstream_error`. All are retryable by status,
 * but for a redirect (tried on other deployments only: the URL is wrong) and a 402 (the
 * provider's account is out of credit: not retried).
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
  if (status >= 300 && status < 400) {
    // The gateway does not follow redirects: an API that moved is a provider to reconfigure, and
    // following one would send the request (and the provider's key) somewhere nobody chose.
    return new GatewayError("upstream_error", `${upstream} answered with a redirect (HTTP ${status}): check the provider's endpoint URL.`, {
      deploymentFault: true,
    });
  }
  if (status === 402) {
    // Out of credit: the provider's account, which every try and every endpoint shares.
    return new GatewayError("upstream_error", `${upstream} refused the request for payment (HTTP 402): ${message} The provider's owner should check its account.`, {
      retryable: false,
    });
  }
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

/** The error for an abort of the call's signal: the gateway decides what it means. */
export function cancelledError(cause: unknown): GatewayError {
  return new GatewayError("upstream_error", "The request was cancelled.", { cause });
}

const tlsCodes = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/;

/**
 * The GatewayError for a request that got no HTTP answer: refused, reset, unresolvable, a TLS
 * failure. 502 (504 for a connect timeout), so the gateway may retry and fall back; an abort of
 * the call's signal is `cancelledError`. Messages name the failure, never the host: API clients
 * should not learn where a provider lives. `upstream` names it as a sentence's subject ("Azure
 * OpenAI", "The upstream") and `object` elsewhere in one ("Azure OpenAI", "the upstream").
 */
export function connectionFailure(error: unknown, signal: AbortSignal | undefined, upstream: { subject: string; object: string }): GatewayError {
  if (signal?.aborted) return cancelledError(error);
  if (GatewayError.is(error)) return error;
  const code = errorCode(error);
  if (code === "UND_ERR_CLOSED" || code === "UND_ERR_DESTROYED") {
    return new GatewayError("provider_unavailable", "This provider has been closed.", { cause: error });
  }
  if (code === "UND_ERR_CONNECT_TIMEOUT" || code === "ETIMEDOUT") {
    return new GatewayError("upstream_timeout", `${upstream.subject} did not accept the connection in time.`, { cause: error });
  }
  const { subject, object } = upstream;
  let what: string;
  if (code === "ECONNREFUSED") what = `${subject} refused the connection.`;
  else if (code === "ENOTFOUND" || code === "EAI_AGAIN") what = `${subject}'s host name could not be resolved.`;
  else if (code === "ECONNRESET" || code === "EPIPE" || code === "UND_ERR_SOCKET") what = `${subject} closed the connection unexpectedly.`;
  else if (code !== null && tlsCodes.test(code)) what = `The TLS connection to ${object} failed.`;
  else if (code === "EHOSTUNREACH" || code === "ENETUNREACH") what = `${subject}'s network is unreachable.`;
  else what = `${subject} could not be reached.`;
  return new GatewayError("upstream_error", what, { cause: error });
}

/** A Node or undici error code, looking through AggregateError (happy eyeballs) and `cause`. */
function errorCode(error: unknown): string | null {
  for (let current: unknown = error, depth = 0; typeof current === "object" && current !== null && depth < 4; depth++) {
    const record = current as { code?: unknown; errors?: unknown; cause?: unknown };
    if (typeof record.code === "string") return record.code;
    const nested = Array.isArray(record.errors) ? (record.errors as unknown[])[0] : undefined;
    current = nested ?? record.cause;
  }
  return null;
}
