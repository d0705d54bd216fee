import { describe, expect, it } from "vitest";
import { connectionFailure, upstreamFailure } from "./upstream-failure.js";

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

  it("tries a redirect on other deployments only, and does not retry a 402 (the account is out of credit)", () => {
    for (const status of [301, 302, 307, 308]) {
      expect(failure(status)).toMatchObject({ code: "upstream_error", status: 502, deploymentFault: true, retryable: true });
      expect(failure(status).message).toBe(`The upstream answered with a redirect (HTTP ${status}): check the provider's endpoint URL.`);
    }
    expect(failure(402)).toMatchObject({ status: 502, retryable: false });
    expect(failure(402).message).toMatch(/refused the request for payment \(HTTP 402\): busy/);
    expect(failure(500).deploymentFault).toBe(false);
  });
});

describe("connectionFailure", () => {
  const names = { subject: "Azure OpenAI", object: "Azure OpenAI" };
  const withCode = (code: string) => Object.assign(new Error("boom"), { code });

  it("says what failed without naming the host, as a retryable 502 or, for a connect timeout, a 504", () => {
    expect(connectionFailure(withCode("ECONNREFUSED"), undefined, names)).toMatchObject({ status: 502, message: "Azure OpenAI refused the connection." });
    expect(connectionFailure(withCode("ENOTFOUND"), undefined, names).message).toBe("Azure OpenAI's host name could not be resolved.");
    expect(connectionFailure(withCode("ERR_TLS_CERT_ALTNAME_INVALID"), undefined, names).message).toBe("The TLS connection to Azure OpenAI failed.");
    expect(connectionFailure(withCode("EHOSTUNREACH"), undefined, names).message).toBe("Azure OpenAI's network is unreachable.");
    expect(connectionFailure(withCode("UND_ERR_CONNECT_TIMEOUT"), undefined, names)).toMatchObject({ code: "upstream_timeout", status: 504 });
    expect(connectionFailure(new Error("no code"), undefined, names).message).toBe("Azure OpenAI could not be reached.");
  });

  it("finds the code inside an AggregateError (happy eyeballs) or a cause", () => {
    const aggregate = Object.assign(new AggregateError([withCode("ECONNREFUSED")], "all failed"), {});
    expect(connectionFailure(aggregate, undefined, names).message).toBe("Azure OpenAI refused the connection.");
    expect(connectionFailure(new Error("wrapped", { cause: withCode("ECONNRESET") }), undefined, names).message).toBe("Azure OpenAI closed the connection unexpectedly.");
  });

  it("leaves the meaning of an abort to the gateway, and says so of a closed pool", () => {
    const controller = new AbortController();
    controller.abort();
    expect(connectionFailure(withCode("ECONNRESET"), controller.signal, names).message).toBe("The request was cancelled.");
    expect(connectionFailure(withCode("UND_ERR_DESTROYED"), undefined, names)).toMatchObject({ code: "provider_unavailable", status: 503 });
  });
});
