/**
 * What the client sends reaches the upstream as it was meant: fields the gateway does not read
 * pass through, and numbers keep their value, even those a double cannot hold.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chatBody, chatModel, countedOutputTokens, expectOpenAIError, postJson, sseData, startTestHost, upstreamModels } from "./test-host.js";
import type { TestHost } from "./test-host.js";

let host: TestHost;
beforeAll(async () => {
  host = await startTestHost();
});
afterAll(() => host.close());

describe("the upstream gets the client's request", () => {
  it("with fields the gateway does not read, unchanged, and 64-bit integers digit for digit", async () => {
    const extras = {
      response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object" } } },
      logit_bias: { "50256": -100 },
      vendor_extension: { nested: [1, "two", null, { deep: true }] },
    };
    // Written by hand: JSON.stringify cannot write an integer past 2^53 as it stands.
    const body = JSON.stringify(chatBody({ max_tokens: 4, ...extras })).replace(/}$/, ',"seed":9223372036854775807,"user_id":-12345678901234567890}');
    const reply = await postJson(host, "/chat/completions", body, host.keys.carol);
    expect(reply.status, reply.text).toBe(200);
    const received = host.upstream.requests.at(-1)!;
    expect(received.body).toMatchObject(extras);
    expect(received.rawBody).toContain('"seed":9223372036854775807');
    expect(received.rawBody).toContain('"user_id":-12345678901234567890');
  });
});

describe("a body nested deeper than any request needs", () => {
  const nested = (depth: number) => JSON.stringify(chatBody({ max_tokens: 4 })).replace(/}$/, `,"response_format":${"[".repeat(depth)}${"]".repeat(depth)}}`);

  it("past 1,000 levels is the client's error, a 400, and the next request is served", async () => {
    for (const depth of [1_001, 20_000]) {
      const reply = await postJson(host, "/chat/completions", nested(depth), host.keys.carol);
      expect(reply.status).toBe(400);
      expect(expectOpenAIError(reply.text).message).toMatch(/nests deeper than 1000 levels/);
    }
    // 999 arrays inside the body: 1,000 levels, the most allowed.
    const reply = await postJson(host, "/chat/completions", nested(999), host.keys.carol);
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.text).model).toBe(chatModel);
    expect((await host.allocation()).reserved).toBe(0);
  });
});

describe("the usage chunk the gateway writes when the upstream sent none", () => {
  it("has the shape of the stream it ends: a chat chunk, or a legacy text_completion", async () => {
    // An upstream asked for no usage (the quirk) sends none; the client asked for it.
    const quiet = await startTestHost({
      organization(organization) {
        const settings = organization.providers[0]!.settings as Record<string, unknown>;
        organization.providers.push({ owner: "alice", name: "quiet", kind: "openai-compatible", settings: { ...settings, models: upstreamModels, quirks: { dropStreamOptions: true } }, grants: [{ type: "group", groupId: "research" }] });
        organization.prices.push({ provider: "alice:quiet", model: "*", input: 1, output: 1 });
      },
    });
    try {
      const model = "alice:quiet/fake-chat";
      const streamOptions = { stream: true, stream_options: { include_usage: true }, max_tokens: 3 };
      for (const [path, body, object] of [
        ["/chat/completions", { ...chatBody(streamOptions), model }, "chat.completion.chunk"],
        ["/completions", { model, prompt: "Say hello", ...streamOptions }, "text_completion"],
      ] as const) {
        const reply = await postJson(quiet, path, body, quiet.keys.carol);
        expect(reply.status, reply.text).toBe(200);
        const events = sseData(reply.text);
        expect(events.at(-1)).toBe("[DONE]");
        const usage = JSON.parse(events.at(-2)!) as Record<string, unknown>;
        expect(usage).toMatchObject({ object, model, choices: [], usage: { completion_tokens: await countedOutputTokens(3) } });
      }
    } finally {
      await quiet.close();
    }
  });
});
