/**
 * The gateway's time limits, end to end over real sockets: an upstream that never sends its first
 * byte, a non-streamed answer that takes long, a stream that stalls, and a stream that runs past
 * the request's total limit. Each ends as
 * a client can tell (a 504, or an error event with no [DONE]), aborts the upstream, and settles:
 * nothing stays reserved and what was delivered is charged.
 *
 * The limits are short and the upstream's pauses are long against them, so a loaded machine
 * changes when a limit fires, not which one does.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { chatBody, countedOutputTokens, embedModel, expectOpenAIError, postJson, sseData, startTestHost } from "./test-host.js";
import type { TestHost } from "./test-host.js";

const limits = { firstByteMs: 250, idleMs: 250, totalMs: 1_200 };

let host: TestHost;
beforeAll(async () => {
  host = await startTestHost({ gateway: { timeouts: limits, retry: { attemptsPerDeployment: 2 } } });
});
afterAll(() => host.close());
beforeEach(() => host.upstream.reset());

async function settled(requestId: string) {
  const end = await host.waitForEnd(requestId, 5_000);
  expect((await host.allocation()).reserved).toBe(0);
  return { end, charge: await host.sluice.stores.ledger.getCharge(requestId) };
}

const contentEvents = (events: string[]) => events.filter((data) => /"content":"[^"]/.test(data));

describe("the first-byte limit", () => {
  it("answers a stream that sends nothing in time with 504, after trying again once, and aborts both tries", async () => {
    const reply = await postJson(host, "/chat/completions", chatBody({ stream: true }, { firstByteDelayMs: 5_000 }), host.keys.carol);
    expect(reply.status).toBe(504);
    expect(expectOpenAIError(reply.text)).toMatchObject({ code: "upstream_timeout", message: `The upstream did not answer within ${limits.firstByteMs} ms.` });
    expect(host.upstream.requests).toHaveLength(2);
    await host.upstream.waitForAbort(1, 2_000);
    expect(host.upstream.requests.map((record) => record.outcome)).toEqual(["client-aborted", "client-aborted"]);
    const { end, charge } = await settled(String(reply.headers["x-request-id"]));
    expect(end).toMatchObject({ status: 504, errorCode: "upstream_timeout" });
    expect(charge?.outputTokens ?? 0).toBe(0);
  });

  it("applies to embeddings", async () => {
    const body = { model: embedModel, input: "hello", fake: { firstByteDelayMs: 5_000 } };
    const reply = await postJson(host, "/embeddings", body, host.keys.carol);
    expect(reply.status).toBe(504);
    expect(expectOpenAIError(reply.text)).toMatchObject({ code: "upstream_timeout" });
    await settled(String(reply.headers["x-request-id"]));
  });

  it("leaves alone an upstream that answers just within it", async () => {
    const reply = await postJson(host, "/chat/completions", chatBody({ stream: true }, { firstByteDelayMs: 50, chunks: 4 }), host.keys.carol);
    expect(reply.status).toBe(200);
    expect(sseData(reply.text).at(-1)).toBe("[DONE]");
  });

  it("does not cut a non-streamed answer, which arrives whole: it is waited for once, within the total limit", async () => {
    const reply = await postJson(host, "/chat/completions", chatBody({}, { firstByteDelayMs: 3 * limits.firstByteMs }), host.keys.carol);
    expect(reply.status).toBe(200);
    expect(host.upstream.requests).toHaveLength(1);
    const { charge } = await settled(String(reply.headers["x-request-id"]));
    expect(charge?.outputTokens).toBeGreaterThan(0);
  });

  it("answers a non-streamed request that outlasts the total limit with 504 after one try, never generating it twice", async () => {
    const reply = await postJson(host, "/chat/completions", chatBody({}, { firstByteDelayMs: 5_000 }), host.keys.carol);
    expect(reply.status).toBe(504);
    expect(expectOpenAIError(reply.text)).toMatchObject({ code: "upstream_timeout", message: "The request took longer than the gateway allows." });
    expect(host.upstream.requests).toHaveLength(1);
    await host.upstream.waitForAbort(0, 2_000);
    expect(host.upstream.requests[0]!.outcome).toBe("client-aborted");
    const { end } = await settled(String(reply.headers["x-request-id"]));
    expect(end).toMatchObject({ status: 504, errorCode: "upstream_timeout" });
  });
});

describe("the idle limit between a stream's events", () => {
  it("ends a stalled stream with an error event and no [DONE], aborts the upstream, and charges what was delivered", async () => {
    const reply = await postJson(host, "/chat/completions", chatBody({ stream: true }, { chunks: 8, hangAfterChunks: 3 }), host.keys.carol);
    expect(reply.status).toBe(200);
    const events = sseData(reply.text);
    expect(events).not.toContain("[DONE]");
    expect(contentEvents(events)).toHaveLength(3);
    expect(expectOpenAIError(events.at(-1)!)).toMatchObject({ code: "upstream_timeout" });
    await host.upstream.waitForAbort(0, 2_000);
    const { end, charge } = await settled(String(reply.headers["x-request-id"]));
    expect(end.outcome).toBe("timeout");
    expect(charge).toMatchObject({ outputTokens: await countedOutputTokens(3) });
  });

  it("lets a slow stream run longer than the idle limit while each gap stays under it", async () => {
    // 8 events 60 ms apart: about 500 ms in all, twice the idle limit.
    const reply = await postJson(host, "/chat/completions", chatBody({ stream: true }, { chunks: 8, intervalMs: 60 }), host.keys.carol);
    const events = sseData(reply.text);
    expect(events.at(-1)).toBe("[DONE]");
    expect(contentEvents(events)).toHaveLength(8);
    const { end } = await settled(String(reply.headers["x-request-id"]));
    expect(end.outcome).toBe("completed");
  });
});

describe("the total limit", () => {
  it("cuts a stream that keeps flowing past it, with an error event, and charges what was delivered", async () => {
    // 40 events 80 ms apart would take 3.2 s; every gap is well under the idle limit.
    const reply = await postJson(host, "/chat/completions", chatBody({ stream: true, max_tokens: 40 }, { chunks: 40, intervalMs: 80 }), host.keys.carol);
    const events = sseData(reply.text);
    expect(events).not.toContain("[DONE]");
    expect(expectOpenAIError(events.at(-1)!)).toMatchObject({ code: "upstream_timeout" });
    const delivered = contentEvents(events).length;
    expect(delivered).toBeGreaterThan(0);
    expect(delivered).toBeLessThan(40);
    await host.upstream.waitForAbort(0, 2_000);
    const { end, charge } = await settled(String(reply.headers["x-request-id"]));
    expect(end.outcome).toBe("timeout");
    expect(charge).toMatchObject({ outputTokens: await countedOutputTokens(delivered) });
  });
});
