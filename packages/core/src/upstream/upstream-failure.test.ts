import { describe, expect, it } from "vitest";
import { upstreamFailure } from "./upstream-failure.js";

const failure = (status: number, headers: Record<string, string | string[] | undefined> = {}, code: string | null = null) =>
  upstreamFailure({ status, headers, message: "busy", code, upstream: "The upstream" });

describe("upstreamFailure", () => {
  it("keeps a 429's code and retry hints, so quota errors are not retried and waits are honoured", () => {
    const limited = failure(429, { "retry-after-ms": "250", "retry-after": ["1", "2"], other: "x" }, "insufficient_quota");
    expect(limited.status).toBe(429);
    expect(limited.wireCode).toBe("insufficient_quota");
    expect(limited.headers).toEqual({ "retry-after-ms": "250", "retry-after": "1" });
    expect(failure(429).wireCode).toBe("rate_limit_exceeded");
  });

  it("answers 503 as provider_unavailable with its hints, timeouts as 504, and the rest as 502", () => {
    expect(failure(503, { "retry-after": "3" })).toMatchObject({ code: "provider_unavailable", status: 503, headers: { "retry-after": "3" } });
    expect(failure(503).message).toBe("The upstream is unavailable (HTTP 503): busy");
    for (const status of [408, 504]) expect(failure(status)).toMatchObject({ code: "upstream_timeout", status: 504 });
    for (const status of [500, 502, 520]) expect(failure(status)).toMatchObject({ code: "upstream_error", status: 502 });
    expect(failure(500).retryable).toBe(true);
  });
});
