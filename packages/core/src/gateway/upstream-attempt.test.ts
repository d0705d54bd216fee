import { describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import type { Deployment } from "../provider/provider.js";
import { RequestControl } from "./request-control.js";
import { attemptDeployments, isRetryable, retryDelay } from "./upstream-attempt.js";
import type { Attempt } from "./upstream-attempt.js";

const retry = { attemptsPerDeployment: 3, baseDelayMs: 1, maxDelayMs: 50 };
const limits = { firstByteMs: 1_000, idleMs: 1_000, totalMs: 10_000 };

/** Runs `attempt` over the deployments with a fresh control, disposed afterwards. */
async function attemptAll<T>(
  deployments: Deployment[],
  attempt: Attempt<T>,
  options: { clientSignal?: AbortSignal; limits?: typeof limits } = {},
): Promise<T> {
  const control = new RequestControl(options.clientSignal ?? new AbortController().signal, options.limits ?? limits);
  try {
    return await attemptDeployments(deployments, attempt, control, retry);
  } finally {
    control.dispose();
  }
}

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

describe("attemptDeployments: retries on one deployment", () => {
  it("retries a retryable failure on the same deployment until it succeeds", async () => {
    let calls = 0;
    const answer = attemptAll([deployment("a")], async () => {
      calls++;
      if (calls < 3) throw failing(503);
      return "ok";
    });
    await expect(answer).resolves.toBe("ok");
    expect(calls).toBe(3);
  });

  it("stops after the configured number of tries", async () => {
    let calls = 0;
    const answer = attemptAll([deployment("a")], async () => {
      calls++;
      throw failing(502);
    });
    await expect(answer).rejects.toMatchObject({ status: 502 });
    expect(calls).toBe(3);
  });

  it("never retries a client error", async () => {
    let calls = 0;
    const answer = attemptAll([deployment("a")], async () => {
      calls++;
      throw failing(400);
    });
    await expect(answer).rejects.toMatchObject({ status: 400 });
    expect(calls).toBe(1);
  });

  it("stops waiting between tries as soon as the client goes away", async () => {
    const client = new AbortController();
    let calls = 0;
    const answer = attemptAll(
      [deployment("a"), deployment("b")],
      async () => {
        calls++;
        throw failing(429, { "retry-after-ms": "40" });
      },
      { clientSignal: client.signal },
    );
    setTimeout(() => client.abort(), 5);
    const startedAt = performance.now();
    await expect(answer).rejects.toBeInstanceOf(GatewayError);
    expect(performance.now() - startedAt).toBeLessThan(35);
    expect(calls).toBe(1);
  });

  it("gives every try a signal of its own, which the client's disconnect aborts", async () => {
    const client = new AbortController();
    const signals: AbortSignal[] = [];
    const answer = attemptAll(
      [deployment("a")],
      (_target, signal) => {
        signals.push(signal);
        if (signals.length === 1) return Promise.reject(failing(503));
        return new Promise<string>((_resolve, reject) => signal.addEventListener("abort", () => reject(new Error("aborted"))));
      },
      { clientSignal: client.signal },
    );
    await expect.poll(() => signals.length).toBe(2);
    expect(signals[0]).not.toBe(signals[1]);
    expect(signals[1]!.aborted).toBe(false);
    client.abort();
    await expect(answer).rejects.toBeInstanceOf(GatewayError);
    expect(signals[1]!.aborted).toBe(true);
  });
});

describe("attemptDeployments: fallback across deployments", () => {
  it("moves to the next deployment after a retryable failure", async () => {
    const tried: string[] = [];
    const result = await attemptAll([deployment("east"), deployment("west")], async (target) => {
      tried.push(target.id);
      if (target.id === "east") throw failing(429, { "retry-after": "120" });
      return "answer";
    });
    expect(result).toBe("answer");
    expect(tried).toEqual(["east", "west"]);
  });

  it("moves on at once from a deployment whose own fault it is (a wrong URL), without trying it again", async () => {
    const tried: string[] = [];
    const result = await attemptAll([deployment("moved"), deployment("west")], async (target) => {
      tried.push(target.id);
      if (target.id === "moved") throw new GatewayError("upstream_error", "redirect", { deploymentFault: true });
      return "answer";
    });
    expect(result).toBe("answer");
    expect(tried).toEqual(["moved", "west"]);
  });

  it("does not fall back after a client error", async () => {
    const tried: string[] = [];
    const answer = attemptAll([deployment("east"), deployment("west")], async (target) => {
      tried.push(target.id);
      throw failing(400);
    });
    await expect(answer).rejects.toMatchObject({ status: 400 });
    expect(tried).toEqual(["east"]);
  });

  it("rethrows the last failure when every deployment fails", async () => {
    const answer = attemptAll([deployment("east"), deployment("west")], async (target) => {
      throw new GatewayError("upstream_error", `down: ${target.id}`);
    });
    await expect(answer).rejects.toThrow("down: west");
  });
});

describe("attemptDeployments: the first-byte limit", () => {
  const short = { firstByteMs: 10, idleMs: 1_000, totalMs: 10_000 };

  it("fails a try that produces nothing in time with a 504, aborts it, and tries again", async () => {
    let aborted = 0;
    const answer = attemptAll(
      [deployment("a")],
      (_target, signal) =>
        new Promise<string>((_resolve, reject) => {
          signal.addEventListener("abort", () => {
            aborted++;
            reject(new Error("aborted"));
          });
        }),
      { limits: short },
    );
    await expect(answer).rejects.toMatchObject({ status: 504, code: "upstream_timeout", message: "The upstream did not answer within 10 ms." });
    expect(aborted).toBe(retry.attemptsPerDeployment);
  });

  it("passes through a try that answers in time", async () => {
    await expect(attemptAll([deployment("a")], async () => "fast", { limits: short })).resolves.toBe("fast");
  });

  it("falls back to the next deployment when one never answers", async () => {
    const answer = attemptAll(
      [deployment("slow"), deployment("fast")],
      (target, signal) =>
        target.id === "fast"
          ? Promise.resolve("fast")
          : new Promise<string>((_resolve, reject) => signal.addEventListener("abort", () => reject(new Error("aborted")))),
      { limits: short },
    );
    await expect(answer).resolves.toBe("fast");
  });
});
