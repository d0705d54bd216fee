/**
 * The worst case a request reserves is a bound only if the upstream cannot go past it. A request
 * that names no output cap is reserved at the gateway's configured cap, so the gateway sends that
 * cap upstream: the charge then stays within the reservation, and an allocation within its limit.
 * And an image, whose URL is short and whose tokens are many, is reserved an allowance of its own,
 * as is a file, which an uploaded file's id says nothing about.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bodyBytes, chatBody, chatModel, expectOpenAIError, postJson, sseData, startTestHost } from "./test-host.js";
import type { TestHost } from "./test-host.js";

const cap = 50;
let host: TestHost;
beforeAll(async () => {
  // A price of 1 µ$ per token each way: the limit fits this file's capped requests, and not one
  // request that ran to the upstream's 5,000 tokens.
  host = await startTestHost({ gateway: { defaultMaxOutputTokens: cap }, researchLimit: 4_000 });
});
afterAll(() => host.close());

describe("a request without max_tokens", () => {
  it("is held upstream to the cap it was reserved at, streamed or not, and never charged past it", async () => {
    for (const stream of [true, false]) {
      host.upstream.reset();
      // The upstream would write 5,000 tokens if let.
      const body = chatBody({ stream }, { chunks: 5_000 });
      const reply = await postJson(host, "/chat/completions", body, host.keys.carol);
      expect(reply.status, reply.text).toBe(200);
      expect(host.upstream.requests[0]?.body).toMatchObject({ max_tokens: cap });
      if (stream) expect(sseData(reply.text).at(-1)).toBe("[DONE]");

      const requestId = String(reply.headers["x-request-id"]);
      await host.waitForEnd(requestId);
      const charge = await host.sluice.stores.ledger.getCharge(requestId);
      expect(charge?.outputTokens).toBe(cap);
      expect(charge!.cost).toBeLessThanOrEqual(bodyBytes(body) + cap);
    }
    const allocation = await host.allocation();
    expect(allocation.spent).toBeLessThanOrEqual(allocation.limit);
  });

  it("keeps the client's own cap, in either field, as it sent it", async () => {
    for (const own of [{ max_tokens: 7 }, { max_completion_tokens: 7 }]) {
      host.upstream.reset();
      const reply = await postJson(host, "/chat/completions", chatBody({ ...own }), host.keys.carol);
      expect(reply.status).toBe(200);
      const sent = host.upstream.requests[0]?.body as Record<string, unknown>;
      expect(sent).toMatchObject(own);
      expect(Object.keys(sent).filter((key) => key === "max_tokens" || key === "max_completion_tokens")).toEqual(Object.keys(own));
    }
  });
});

describe("a request with images", () => {
  it("reserves an allowance per image, which its short URL does not cover", async () => {
    // 3,000 µ$ at 1 µ$ a token: room for a text request, not for an image's 4,096-token allowance.
    const small = await startTestHost({ researchLimit: 3_000 });
    try {
      const text = { model: chatModel, max_tokens: 4, messages: [{ role: "user", content: "What is in the picture?" }] };
      const image = {
        ...text,
        messages: [{ role: "user", content: [{ type: "text", text: "What is in the picture?" }, { type: "image_url", image_url: { url: "https://example.test/cat.png" } }] }],
      };
      const refused = await postJson(small, "/chat/completions", image, small.keys.carol);
      expect(refused.status).toBe(402);
      expect(expectOpenAIError(refused.text).message).toMatch(/may cost up to/);
      expect(small.upstream.requests).toHaveLength(0);
      expect((await postJson(small, "/chat/completions", text, small.keys.carol)).status).toBe(200);
    } finally {
      await small.close();
    }
  });
});

describe("a request with files", () => {
  it("reserves the file allowance per file, which an uploaded file's short id does not cover", async () => {
    // 10,000 µ$ at 1 µ$ a token: room for the text request, not for one file at a 16,384-token allowance.
    const small = await startTestHost({ researchLimit: 10_000, gateway: { fileTokenAllowance: 16_384 } });
    try {
      const text = { model: chatModel, max_tokens: 4, messages: [{ role: "user", content: "Summarize the report." }] };
      const file = {
        ...text,
        messages: [{ role: "user", content: [{ type: "text", text: "Summarize the report." }, { type: "file", file: { file_id: "file-6F2ksmvXxt4VdoqmHRw6kL" } }] }],
      };
      const refused = await postJson(small, "/chat/completions", file, small.keys.carol);
      expect(refused.status).toBe(402);
      expect(expectOpenAIError(refused.text).message).toMatch(/may cost up to \$0\.016/);
      expect(small.upstream.requests).toHaveLength(0);
      expect((await postJson(small, "/chat/completions", text, small.keys.carol)).status).toBe(200);
    } finally {
      await small.close();
    }
  });
});
