import { expect } from "vitest";
import { GatewayError, errorCodes } from "../errors/gateway-error.js";
import type { GatewayErrorCode } from "../errors/gateway-error.js";

/**
 * Expects `error` to be a GatewayError of `code`, with the status that code carries (and
 * `param`, when given), and returns it for further assertions.
 */
export function expectGatewayErrorValue(error: unknown, code: GatewayErrorCode, param?: string | null): GatewayError {
  if (!GatewayError.is(error)) {
    expect.fail(`expected a ${code} GatewayError, got ${String(error)}`);
  }
  expect({ code: error.code, status: error.status }).toEqual({ code, status: errorCodes[code].status });
  if (param !== undefined) expect(error.param).toBe(param);
  return error;
}

/** Awaits `promise`, expects it to reject with a GatewayError of `code` (and `param`), returns it. */
export async function expectGatewayError(promise: Promise<unknown>, code: GatewayErrorCode, param?: string | null): Promise<GatewayError> {
  const outcome = await promise.then(
    (value: unknown) => ({ rejected: false as const, value }),
    (reason: unknown) => ({ rejected: true as const, reason }),
  );
  if (!outcome.rejected) {
    expect.fail(`expected a ${code} GatewayError, but the call resolved to ${JSON.stringify(outcome.value)}`);
  }
  return expectGatewayErrorValue(outcome.reason, code, param);
}

/** Lets a test hand a store a value its types forbid, as untyped host code could. */
export function unchecked<Type>(value: unknown): Type {
  return value as Type;
}
