/**
 * Budget under concurrency, end to end: 200 streaming requests at once against an allocation that
 * holds exactly 20 worst-case reservations. The fake upstream holds every request it receives at a
 * gate until all 200 have been answered or admitted, so every reservation overlaps by construction,
 * not by timing.
 */
import { APIError } from "openai";
import type { ChatCompletionChunk, ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BudgetRefuseEvent } from "@sluice/core";
import { fakePromptTokens, fakeReplyText } from "@sluice/core/testing";
import { bodyBytes, chatBody, price, startTestHost } from "./test-host.js";
import type { TestHost } from "./test-host.js";

const concurrent = 200;
const admitted = 20;
const maxTokens = 64;
const chunks = 3;
const body = chatBody({ stream: true, max_tokens: maxTokens }, { gate: "budget", chunks });
/** Body bytes as input tokens, plus max_tokens, at the per-token prices (1 µ$ each). */
const worstCase = (bodyBytes(body) * price.input + maxTokens * price.output) / 1_000_000;

let host: TestHost;
beforeAll(async () => {
  host = await startTestHost({ researchLimit: admitted * worstCase });
});
afterAll(() => host.close());

describe("budget under 200 concurrent streams", () => {
  it("admits exactly the 20 that fit, refuses 180 with 402 before any upstream call, and settles to the ledger", async () => {
    expect(Number.isInteger(worstCase)).toBe(true);
    const refusals: BudgetRefuseEvent[] = [];
    host.sluice.events.on("budget-refuse", (event) => refusals.push(event));
    let refused = 0;
    let allRefused!: () => void;
    const refusedAll = new Promise<void>((resolve) => (allRefused = resolve));

    const client = host.client(host.keys.carol);
    const results = Array.from({ length: concurrent }, async () => {
      try {
        const { data: stream, response } = await client.chat.completions
          .create(body as unknown as ChatCompletionCreateParamsStreaming)
          .withResponse();
        let text = "";
        for await (const chunk of stream as AsyncIterable<ChatCompletionChunk>) text += chunk.choices[0]?.delta.content ?? "";
        return { ok: true as const, text, requestId: response.headers.get("x-request-id")! };
      } catch (error) {
        if (error instanceof APIError && error.status === 402 && ++refused === concurrent - admitted) allRefused();
        return { ok: false as const, error };
      }
    });

    // Every admitted request is held at the gate while it holds its reservation.
    await refusedAll;
    await host.upstream.waitForRequest(admitted - 1, 10_000);
    expect(host.upstream.requests).toHaveLength(admitted);
    expect((await host.allocation()).reserved).toBe(admitted * worstCase);
    host.upstream.openGate("budget");

    const settled = await Promise.all(results);
    const succeeded = settled.filter((result) => result.ok);
    const failed = settled.filter((result) => !result.ok);
    expect(succeeded).toHaveLength(admitted);
    expect(failed).toHaveLength(concurrent - admitted);
    for (const result of failed) expect(result.error).toMatchObject({ status: 402, code: "allocation_exhausted" });
    for (const result of succeeded) expect(result.text).toBe(fakeReplyText(chunks));
    // The refusals were for the request's true worst case, computed as the test computes it.
    expect(refusals).toHaveLength(concurrent - admitted);
    expect(refusals.every((event) => event.amount === worstCase)).toBe(true);
    expect(host.upstream.requests).toHaveLength(admitted);

    await Promise.all(succeeded.map((result) => host.waitForEnd(result.requestId)));
    const allocation = await host.allocation();
    expect(allocation.reserved).toBe(0);
    expect(allocation.spent).toBeLessThanOrEqual(allocation.limit);
    const usage = await host.usage({ allocationIds: ["alc_research"] });
    expect(usage.totals.requests).toBe(admitted);
    expect(usage.totals.cost).toBe(allocation.spent);
    const perRequest = fakePromptTokens(body) + chunks;
    expect(usage.totals.cost).toBe(admitted * perRequest);
    const charged = await Promise.all(succeeded.map((result) => host.sluice.stores.ledger.getCharge(result.requestId)));
    expect(charged.every((charge) => charge !== null && charge.outputTokens === chunks)).toBe(true);
  });
});
