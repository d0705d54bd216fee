/** The GatewayErrors a stream reader throws when its body fails or its signal aborts. */
import { GatewayError } from "../errors/gateway-error.js";

/** A body that failed mid-stream (a connection reset). */
export function readFailure(error: unknown): GatewayError {
  // An adapter's body wrapper may already have said precisely what failed (a 504, say).
  if (GatewayError.is(error)) return error;
  return new GatewayError(
    "upstream_error",
    "The upstream connection failed mid-stream, so the response is incomplete.",
    { cause: error },
  );
}

/** The reader's signal aborted: its reason when that is a GatewayError, else what it means. */
export function abortError(signal: AbortSignal): GatewayError {
  const reason: unknown = signal.reason;
  if (GatewayError.is(reason)) return reason;
  if (reason instanceof Error && reason.name === "TimeoutError") {
    return new GatewayError("upstream_timeout", "The upstream did not finish the stream in time.", { cause: reason });
  }
  return new GatewayError("upstream_error", "The stream was cancelled before the upstream finished it.", {
    cause: reason,
  });
}
