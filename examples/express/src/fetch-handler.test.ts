/**
 * The web-standard edge: `createFetchHandler` over the example host's gateway, called with
 * `Request` objects (no socket between the test and the handler; the upstream is still the fake
 * on loopback). Streaming and non-streaming chat, errors, and a cancelled stream.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createFetchHandler } from "@sluice/core";
import { fakePromptTokens, fakeReplyText } from "@sluice/core/testing";
import { basePath, chatBody, chatModel, countedOutputTokens, expectOpenAIError, holdCommits, sseData, startTestHost } from "./test-host.js";
import type { TestHost } from "./test-host.js";

let host: TestHost;
let handle: (request: Request) => Promise<Response>;
beforeAll(async () => {
  host = await startTestHost({ gateway: { maxBodyBytes: 4_096 } });
  handle = createFetchHandler(host.sluice.gateway, { basePath });
});
afterAll(() => host.close());
beforeEach(() => host.upstream.reset());

function post(path: string, body: unknown, apiKey: string): Request {
  return new Request(`http://gateway.test${basePath}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

const promptTokens = fakePromptTokens(chatBody());

describe("createFetchHandler with Request objects", () => {
  it("streams a chat completion as SSE, ending in [DONE], metered from the upstream's usage", async () => {
    const response = await handle(post("/chat/completions", chatBody({ stream: true }), host.keys.carol));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = sseData(await response.text());
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((data) => JSON.parse(data) as { model: string; choices: Array<{ delta: { content?: string } }>; usage?: unknown });
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("")).toBe(fakeReplyText(8));
    expect(chunks.every((chunk) => chunk.model === chatModel && chunk.usage == null)).toBe(true);

    const requestId = response.headers.get("x-request-id")!;
    await host.waitForEnd(requestId);
    expect(await host.sluice.stores.ledger.getCharge(requestId)).toMatchObject({ inputTokens: promptTokens, outputTokens: 8, cost: promptTokens + 8 });
  });

  it("ends the response, whole or streamed, without waiting for the charge's commit", async () => {
    const ledger = host.sluice.stores.ledger;
    const held = holdCommits(ledger);
    try {
      const streamed = await handle(post("/chat/completions", chatBody({ stream: true }), host.keys.carol));
      expect(sseData(await streamed.text()).at(-1)).toBe("[DONE]");
      const whole = await handle(post("/chat/completions", chatBody({ max_tokens: 3 }), host.keys.carol));
      expect(((await whole.json()) as { usage: Record<string, number> }).usage.completion_tokens).toBe(3);
      const requestIds = [streamed, whole].map((response) => response.headers.get("x-request-id")!);
      for (const requestId of requestIds) expect(await ledger.getCharge(requestId)).toBeNull();
      held.release();
      for (const requestId of requestIds) {
        await host.waitForEnd(requestId);
        expect(await ledger.getCharge(requestId)).not.toBeNull();
      }
    } finally {
      held.restore();
    }
  });

  it("answers a non-streaming chat as JSON with usage", async () => {
    const response = await handle(post("/chat/completions", chatBody({ max_tokens: 3 }), host.keys.carol));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { model: string; choices: Array<{ message: { content: string } }>; usage: Record<string, number> };
    expect(body.model).toBe(chatModel);
    expect(body.choices[0]?.message.content).toBe(fakeReplyText(3));
    expect(body.usage).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: 3 });
  });

  it("answers errors in OpenAI's shape: a bad key, a bad body, an oversized body, a path outside the base", async () => {
    const badKey = await handle(post("/chat/completions", chatBody(), "sk-sluice-nope"));
    expect(badKey.status).toBe(401);
    expect(expectOpenAIError(await badKey.text()).code).toBe("invalid_api_key");

    const badBody = await handle(post("/chat/completions", { model: chatModel }, host.keys.carol));
    expect(badBody.status).toBe(400);
    expect(expectOpenAIError(await badBody.text()).param).toBe("messages");

    const oversized = await handle(post("/chat/completions", chatBody({ padding: "x".repeat(5_000) }), host.keys.carol));
    expect(oversized.status).toBe(413);
    expectOpenAIError(await oversized.text());

    const outside = await handle(new Request("http://gateway.test/elsewhere", { headers: { authorization: `Bearer ${host.keys.carol}` } }));
    expect(outside.status).toBe(404);
    expectOpenAIError(await outside.text());
    expect(host.upstream.requests).toHaveLength(0);
  });

  it("answers an unknown caller without reading its body, even one that never ends, and a body that fails to read with a 400", async () => {
    const oversized = await handle(post("/chat/completions", chatBody({ padding: "x".repeat(5_000) }), "sk-sluice-nope"));
    expect(oversized.status).toBe(401);
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new TextEncoder().encode("{"));
        // Never closed: an edge that read the body first would wait for ever.
        return new Promise(() => undefined);
      },
    });
    const request = new Request(`http://gateway.test${basePath}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer sk-sluice-nope" },
      body: endless,
      duplex: "half",
    } as RequestInit);
    const refused = await handle(request);
    expect(refused.status).toBe(401);
    expect(expectOpenAIError(await refused.text()).code).toBe("invalid_api_key");
    expect(request.bodyUsed).toBe(false);

    const failing = new Request(`http://gateway.test${basePath}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${host.keys.carol}` },
      body: new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.error(new Error("the connection broke"));
        },
      }),
      duplex: "half",
    } as RequestInit);
    const broken = await handle(failing);
    expect(broken.status).toBe(400);
    expect(expectOpenAIError(await broken.text()).message).toBe("The request body could not be read.");
  });

  it("takes the first of two Authorization headers, as node:http does", async () => {
    const headers = new Headers({ "content-type": "application/json" });
    headers.append("authorization", `Bearer ${host.keys.carol}`);
    headers.append("authorization", "Bearer sk-sluice-other");
    const reply = await handle(new Request(`http://gateway.test${basePath}/models`, { headers }));
    expect(reply.status).toBe(200);
  });

  it("settles a stream whose consumer cancels it while the upstream is silent: the upstream is aborted at once, what was read is charged", async () => {
    /** Opens a stream whose upstream sends 3 chunks, then nothing, and reads the 3. */
    const openSilentStream = async () => {
      const response = await handle(post("/chat/completions", chatBody({ stream: true }, { chunks: 1_000, hangAfterChunks: 3 }), host.keys.carol));
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let text = "";
      while ((text.match(/"content":"[^"]/g) ?? []).length < 3) {
        const { value, done } = await reader.read();
        expect(done).toBe(false);
        text += decoder.decode(value, { stream: true });
      }
      return { reader, requestId: response.headers.get("x-request-id")! };
    };
    // The first cancellation in a process runs cold code (compiled on first use), which on a
    // loaded machine costs tens of milliseconds in this one process that plays client, gateway
    // and upstream at once: warm it, then measure.
    const warm = await openSilentStream();
    await warm.reader.cancel();
    await host.waitForEnd(warm.requestId);
    host.upstream.reset();

    // The cancel must not wait for an event that never comes.
    const { reader, requestId } = await openSilentStream();
    const cancelledAt = Date.now();
    await reader.cancel();
    expect((await host.upstream.waitForAbort(0, 5_000)) - cancelledAt).toBeLessThan(100);

    const end = await host.waitForEnd(requestId);
    expect(end.outcome).toBe("client-disconnect");
    expect((await host.allocation()).reserved).toBe(0);
    const charge = await host.sluice.stores.ledger.getCharge(requestId);
    const counted = await countedOutputTokens(3);
    expect(charge).toMatchObject({ outputTokens: counted, cost: charge!.inputTokens + counted });
  });

  it("ends a stream whose consumer stops reading at the total limit, and settles it", async () => {
    const limited = await startTestHost({ gateway: { timeouts: { firstByteMs: 2_000, idleMs: 300, totalMs: 1_000 } } });
    try {
      const limitedHandle = createFetchHandler(limited.sluice.gateway, { basePath });
      const response = await limitedHandle(post("/chat/completions", chatBody({ stream: true }, { chunks: 1_000, intervalMs: 5 }), limited.keys.carol));
      const requestId = response.headers.get("x-request-id")!;
      const reader = response.body!.getReader();
      expect((await reader.read()).done).toBe(false);
      // The consumer stops reading: the stream is not pulled, so no idle limit runs, but the total does.
      const end = await limited.waitForEnd(requestId, 5_000);
      expect(end.outcome).toBe("timeout");
      expect((await limited.allocation()).reserved).toBe(0);
      expect((await limited.sluice.stores.ledger.getCharge(requestId))?.outputTokens).toBeGreaterThan(0);
      // What the body still holds is read out, then it fails: the stream did not end cleanly.
      await expect(
        (async () => {
          for (;;) if ((await reader.read()).done) return;
        })(),
      ).rejects.toThrow(/did not read it within the time allowed/);
    } finally {
      await limited.close();
    }
  });
});
