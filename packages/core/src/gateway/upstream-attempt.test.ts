import { describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import type { Deployment } from "../provider/provider.js";
import { isRetryable, retryDelay, withFallback, withFirstByteTimeout, withRetry } from "./upstream-attempt.js";

const retry = { attemptsPerDeployment: 3, baseDelayMs: 1, maxDelayMs: 50 };

function deployment(id: string): Deployment {
  const refuse = () => Promise.reject(new Error("not used"));
  return { id, model: id, chatCompletion: refuse, streamChatCompletion: refuse, embeddings: refuse };
}

function failing(status: number, headers: Record<string, string> = {}, wireCode?: string) {
  return new GatewayError(status === 429 ? "rate_limit_exceeded" : status >= 500 ? "upstream_error" : "invalid_request", "x", {
    status,
    headers,
    ...(wireCode ? { wireCode } : {}),
  });
}

describe("isRetryable", () => {
  it("retries rate limits and upstream failures, not client errors", () => {
    expect(isRetryable(failing(429))).toBe(true);
    expect(isRetryable(failing(502))).toBe(true);
    expect(isRetryable(failing(400))).toBe(false);
  });

  it("does not retry a 429 that means the upstream account is out of quota", () => {
    expect(isRetryable(failing(429, {}, "insufficient_quota"))).toBe(false);
  });
});

describe("retryDelay", () => {
  it("prefers retry-after-ms, then retry-after in seconds or as a date", () => {
    expect(retryDelay(failing(429, { "retry-after-ms": "20", "retry-after": "9" }), 1, retry)).toBe(20);
    expect(retryDelay(failing(429, { "retry-after": "0.03" }), 1, retry)).toBe(30);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(retryDelay(failing(429, { "retry-after": "Thu, 01 Jan 2026 00:00:00 GMT" }), 1, retry, now)).toBe(0);
  });

  it("gives up on the deployment when asked to wait longer than the cap", () => {
    expect(retryDelay(failing(429, { "retry-after": "60" }), 1, retry)).toBeNull();
  });

  it("backs off exponentially with jitter when the upstream says nothing", () => {
    const options = { attemptsPerDeployment: 5, baseDelayMs: 100, maxDelayMs: 10_000 };
    for (let i = 0; i < 20; i++) {
      const third = retryDelay(failing(503), 3, options)!;
      expect(third).toBeGreaterThanOrEqual(200);
      expect(third).toBeLessThanOrEqual(400);
    }
  });
});

describe("withRetry", () => {
  it("retries a retryable failure on the same deployment until it succeeds", async () => {
    let calls = 0;
    const attempt = withRetry(async () => {
      calls++;
      if (calls < 3) throw failing(503);
      return "ok";
    }, retry);
    await expect(attempt(deployment("a"), new AbortController().signal)).resolves.toBe("ok");
    expect(calls).toBe(3);
  });

  it("stops after the configured number of tries", async () => {
    let calls = 0;
    const attempt = withRetry(async () => {
      calls++;
      throw failing(502);
    }, retry);
    await expect(attempt(deployment("a"), new AbortController().signal)).rejects.toMatchObject({ status: 502 });
    expect(calls).toBe(3);
  });

  it("never retries a client error", async () => {
    let calls = 0;
    const attempt = withRetry(async () => {
      calls++;
      throw failing(400);
    }, retry);
    await expect(attempt(deployment("a"), new AbortController().signal)).rejects.toMatchObject({ status: 400 });
    expect(calls).toBe(1);
  });

  it("stops waiting as soon as the client goes away", async () => {
    const controller = new AbortController();
    const attempt = withRetry(async () => {
      throw failing(429, { "retry-after-ms": "40" });
    }, retry);
    const result = attempt(deployment("a"), controller.signal);
    setTimeout(() => controller.abort(), 5);
    await expect(result).rejects.toBeInstanceOf(GatewayError);
  });
});

describe("withFallback", () => {
  it("moves to the next deployment after a retryable failure", async () => {
    const tried: string[] = [];
    const { result, deployment: served } = await withFallback(
      [deployment("east"), deployment("west")],
      async (target) => {
        tried.push(target.id);
        if (target.id === "east") throw failing(429, { "retry-after": "120" });
        return "answer";
      },
      new AbortController().signal,
    );
    expect(result).toBe("answer");
    expect(served.id).toBe("west");
    expect(tried).toEqual(["east", "west"]);
  });

  it("does not fall back after a client error", async () => {
    const tried: string[] = [];
    await expect(
      withFallback(
        [deployment("east"), deployment("west")],
        async (target) => {
          tried.push(target.id);
          throw failing(400);
        },
        new AbortController().signal,
      ),
    ).rejects.toMatchObject({ status: 400 });
    expect(tried).toEqual(["east"]);
  });

  it("rethrows the last failure when every deployment fails", async () => {
    await expect(
      withFallback([deployment("east"), deployment("west")], async (target) => {
        throw new GatewayError("upstream_error", `down: ${target.id}`);
      }, new AbortController().signal),
    ).rejects.toThrow("down: west");
  });
});

describe("withFirstByteTimeout", () => {
  it("fails a try that produces nothing in time with a 504, and aborts it", async () => {
    let aborted = false;
    const attempt = withFirstByteTimeout(
      (_target, signal) =>
        new Promise<string>((_resolve, reject) => {
          signal.addEventListener("abort", () => {
            aborted = true;
            reject(new Error("aborted"));
          });
        }),
      10,
    );
    await expect(attempt(deployment("a"), new AbortController().signal)).rejects.toMatchObject({ status: 504, code: "upstream_timeout" });
    expect(aborted).toBe(true);
  });

  it("passes through a try that answers in time", async () => {
    const attempt = withFirstByteTimeout(async () => "fast", 1_000);
    await expect(attempt(deployment("a"), new AbortController().signal)).resolves.toBe("fast");
  });
});
