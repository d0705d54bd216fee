/**
 * The official `openai` client against the Express example host: what SPEC.md promises existing
 * SDKs (streaming, usage, embeddings in both encodings, `/models`, typed errors), and the host's
 * own login metered like a key.
 */
import OpenAI, { APIError, AuthenticationError, NotFoundError } from "openai";
import type { ChatCompletionChunk, ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fakeEmbedding, fakePromptTokens, fakeReplyText } from "@sluice/core/testing";
import { chatModel, embedModel, privateChatModel, rawRequest, startTestHost } from "./test-host.js";
import type { TestHost } from "./test-host.js";

const messages = [{ role: "user" as const, content: "Say hello to the gateway." }];
/** What the fake upstream counts for `messages`: ceil(25 / 4). */
const promptTokens = fakePromptTokens({ messages });

let host: TestHost;
beforeAll(async () => {
  host = await startTestHost({ opsLimit: 1 });
});
afterAll(() => host.close());

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<{ text: string; chunks: ChatCompletionChunk[] }> {
  const chunks: ChatCompletionChunk[] = [];
  let text = "";
  for await (const chunk of stream) {
    chunks.push(chunk);
    text += chunk.choices[0]?.delta.content ?? "";
  }
  return { text, chunks };
}

function requestIdOf(response: Response): string {
  const id = response.headers.get("x-request-id");
  expect(id).toMatch(/^req/);
  return id!;
}

describe("the openai client through the gateway", () => {
  it("streams a chat completion: the deltas spell the fake's reply, the model is the gateway id, and the charge is the upstream's usage", async () => {
    const client = host.client(host.keys.carol);
    const { data: stream, response } = await client.chat.completions
      .create({ model: chatModel, messages, stream: true })
      .withResponse();
    const { text, chunks } = await collect(stream);
    expect(text).toBe(fakeReplyText(8));
    expect(chunks.every((chunk) => chunk.model === chatModel)).toBe(true);

    const requestId = requestIdOf(response);
    expect((await host.waitForEnd(requestId)).outcome).toBe("completed");
    const charge = await host.sluice.stores.ledger.getCharge(requestId);
    const [carolKey] = await host.sluice.stores.keys.list({ userId: "carol", nameContains: "test" });
    expect(charge).toMatchObject({ userId: "carol", keyId: carolKey!.id, model: chatModel, inputTokens: promptTokens, outputTokens: 8 });
    expect(charge!.cost).toBe(promptTokens + 8);
  });

  it("answers a non-streaming chat with usage and the gateway's model id", async () => {
    const completion = await host.client(host.keys.carol).chat.completions.create({ model: chatModel, messages, max_tokens: 5 });
    expect(completion.model).toBe(chatModel);
    expect(completion.choices[0]?.message.content).toBe(fakeReplyText(5));
    expect(completion.usage).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: 5, total_tokens: promptTokens + 5 });
  });

  it("sends the usage chunk only to a client that asked for it with stream_options.include_usage", async () => {
    const client = host.client(host.keys.carol);
    const withUsage = await collect(
      await client.chat.completions.create({ model: chatModel, messages, stream: true, stream_options: { include_usage: true } }),
    );
    const last = withUsage.chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(expect.objectContaining({ prompt_tokens: promptTokens, completion_tokens: 8, total_tokens: promptTokens + 8 }));
    expect(withUsage.chunks.slice(0, -1).every((chunk) => chunk.usage == null)).toBe(true);

    const without = await collect(await client.chat.completions.create({ model: chatModel, messages, stream: true }));
    expect(without.text).toBe(fakeReplyText(8));
    expect(without.chunks.every((chunk) => chunk.usage == null && chunk.choices.length > 0)).toBe(true);
    // The gateway asked the upstream for usage anyway, to meter the stream.
    const forwarded = host.upstream.requests.at(-1)!.body as { stream_options?: { include_usage?: boolean } };
    expect(forwarded.stream_options?.include_usage).toBe(true);
  });

  it("returns embeddings as floats, as base64 (what openai-python sends by default) decoding to the same vector, and as the SDK's default", async () => {
    const client = host.client(host.keys.carol);
    const expected = fakeEmbedding("hello gateway", 16);

    const floats = await client.embeddings.create({ model: embedModel, input: "hello gateway", encoding_format: "float" });
    expect(floats.model).toBe(embedModel);
    expect(floats.data[0]?.embedding).toEqual(expected);
    expect(floats.usage.prompt_tokens).toBe(fakePromptTokens({ input: "hello gateway" }));

    const encoded = await client.embeddings.create({ model: embedModel, input: "hello gateway", encoding_format: "base64" });
    const base64 = encoded.data[0]?.embedding as unknown as string;
    expect(typeof base64).toBe("string");
    const bytes = Buffer.from(base64, "base64");
    expect(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4))).toEqual(expected);

    // openai-node, like openai-python, asks for base64 when the caller names no encoding, and decodes it.
    const byDefault = await client.embeddings.create({ model: embedModel, input: "hello gateway" });
    expect((host.upstream.requests.at(-1)!.body as { encoding_format?: string }).encoding_format).toBe("base64");
    expect(Array.from(byDefault.data[0]!.embedding)).toEqual(expected);
  });

  it("lists exactly the models each user may use, as owner:provider/model", async () => {
    const ids = async (user: "alice" | "bob" | "carol" | "dave") => {
      const list: string[] = [];
      for await (const model of host.client(host.keys[user]).models.list()) list.push(model.id);
      return list.sort();
    };
    const shared = ["alice:fake/fake-chat", "alice:fake/fake-embed"];
    expect(await ids("carol")).toEqual(shared);
    // Bob also has his own unshared provider; an org admin gets no implicit use of it.
    expect(await ids("bob")).toEqual([...shared, "bob:private/fake-chat", "bob:private/fake-embed"]);
    expect(await ids("alice")).toEqual(shared);
    expect(await ids("dave")).toEqual([]);
    const model = await host.client(host.keys.carol).models.retrieve(chatModel);
    expect(model).toMatchObject({ id: chatModel, object: "model", owned_by: "alice" });
  });
});

describe("typed errors through the openai client", () => {
  it("401 AuthenticationError for an unknown key and for junk", async () => {
    for (const apiKey of ["sk-sluice-0000000000000000000000000000000000000000000", "not-a-key"]) {
      const error = await host.client(apiKey).models.list().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(AuthenticationError);
      expect((error as APIError).status).toBe(401);
      expect((error as APIError).code).toBe("invalid_api_key");
    }
  });

  it("404 NotFoundError with code model_not_found for another user's unshared provider", async () => {
    const before = host.upstream.requests.length;
    const error = await host
      .client(host.keys.carol)
      .chat.completions.create({ model: privateChatModel, messages })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as APIError).code).toBe("model_not_found");
    expect((error as APIError).param).toBe("model");
    expect(host.upstream.requests.length).toBe(before);
  });

  it("402 for an exhausted allocation, before any upstream call", async () => {
    const { secret } = await host.sluice.stores.keys.create({ userId: "bob", name: "ops", allocationId: "alc_ops" });
    const before = host.upstream.requests.length;
    const error = await host
      .client(secret)
      .chat.completions.create({ model: chatModel, messages, stream: true } satisfies ChatCompletionCreateParamsStreaming)
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).status).toBe(402);
    expect((error as APIError).code).toBe("allocation_exhausted");
    expect((error as APIError).type).toBe("insufficient_quota");
    expect(host.upstream.requests.length).toBe(before);
    expect((await host.allocation("alc_ops")).reserved).toBe(0);
  });

  it("401 for a key once it has expired", async () => {
    const { secret } = await host.sluice.stores.keys.create({
      userId: "carol",
      name: "short-lived",
      allocationId: "alc_research",
      expiresAt: host.clock.now() + 60_000,
    });
    const client = host.client(secret);
    await expect(client.chat.completions.create({ model: chatModel, messages, max_tokens: 1 })).resolves.toMatchObject({ model: chatModel });
    host.clock.advance(60_000);
    const error = await client.chat.completions.create({ model: chatModel, messages }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as APIError).code).toBe("expired_api_key");
  });
});

describe("the host's own login", () => {
  it("meters a chat call made with the login cookie and no key to that user, with keyId null", async () => {
    const login = await rawRequest(`${host.origin}/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ userId: "carol" }),
    });
    expect(login.status).toBe(200);
    const cookie = String(login.headers["set-cookie"]?.[0]).split(";")[0]!;
    expect(cookie).toMatch(/^sluice_demo_session=/);

    // No key at all: the client's Authorization header is removed, only the cookie goes.
    const sent: Headers[] = [];
    const client = new OpenAI({
      apiKey: "unused",
      baseURL: host.baseUrl,
      maxRetries: 0,
      defaultHeaders: { authorization: null, cookie },
      fetch: (url, init) => {
        sent.push(new Headers(init?.headers));
        return fetch(url, init);
      },
    });
    const { data: stream, response } = await client.chat.completions.create({ model: chatModel, messages, stream: true }).withResponse();
    expect((await collect(stream)).text).toBe(fakeReplyText(8));
    expect(sent.map((headers) => [headers.has("authorization"), headers.get("cookie")])).toEqual([[false, cookie]]);
    const requestId = requestIdOf(response);
    await host.waitForEnd(requestId);
    expect(await host.sluice.stores.ledger.getCharge(requestId)).toMatchObject({
      userId: "carol",
      keyId: null,
      allocationId: "alc_research",
      outputTokens: 8,
      cost: promptTokens + 8,
    });

    const rejected = await rawRequest(`${host.origin}/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ userId: "mallory" }),
    });
    expect(rejected.status).toBe(401);
    const anonymous = new OpenAI({ apiKey: "unused", baseURL: host.baseUrl, maxRetries: 0, defaultHeaders: { authorization: null } });
    const error = await anonymous.models.list().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as APIError).code).toBe("missing_identity");
  });
});
