/**
 * A smoke test of the Koa example host on real loopback sockets: `/models`, a streaming chat with
 * the official openai client, and the host's login route metering a keyless call to its user.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI, { AuthenticationError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Koa from "koa";
import { createKoaMiddleware, createManualClock } from "@sluice/core";
import { fakePromptTokens, fakeReplyText, startFakeUpstream } from "@sluice/core/testing";
import type { FakeUpstream } from "@sluice/core/testing";
import { hostConfigSchema } from "@sluice/example-host-kit";
import { createKoaHost } from "./app.js";
import type { KoaHost } from "./app.js";

const basePath = "/api/openai/v1";
const model = "alice:fake/fake-chat";
const messages = [{ role: "user" as const, content: "Say hello to the gateway." }];

let upstream: FakeUpstream;
let host: KoaHost;
let server: Server;
let origin: string;
let carolKey: string;

beforeAll(async () => {
  upstream = await startFakeUpstream({ models: ["fake-chat"] });
  const config = hostConfigSchema.parse({
    basePath,
    demoUpstream: false,
    organization: {
      users: [{ id: "alice", roles: ["org:admin"] }, { id: "carol" }, { id: "dave" }],
      groups: [{ id: "research", name: "Research", members: ["alice", "carol"] }],
      allocations: [{ id: "alc_research", name: "Research", owner: { type: "group", groupId: "research" }, limit: 1_000_000 }],
      providers: [
        {
          owner: "alice",
          name: "fake",
          kind: "openai-compatible",
          settings: { endpoint: upstream.chatCompletionsUrl },
          grants: [{ type: "group", groupId: "research" }],
        },
      ],
      prices: [{ provider: "alice:fake", model: "*", input: 1_000_000, output: 1_000_000 }],
      keys: [{ userId: "carol", name: "test", allocationId: "alc_research" }],
    },
  });
  host = await createKoaHost(config, { clock: createManualClock({ start: Date.now() }) });
  carolKey = host.sluice.createdKeys[0]!.secret;
  const callback = host.app.callback();
  server = createServer((request, response) => void callback(request, response));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await host.sluice.close();
  await upstream.close();
});

function client(options: ConstructorParameters<typeof OpenAI>[0] = {}): OpenAI {
  return new OpenAI({ apiKey: carolKey, baseURL: `${origin}${basePath}`, maxRetries: 0, ...options });
}

describe("the Koa example host", () => {
  it("lists the caller's models", async () => {
    const ids: string[] = [];
    for await (const entry of client().models.list()) ids.push(entry.id);
    expect(ids).toEqual([model]);
    await expect(client({ apiKey: "sk-sluice-nope" }).models.list()).rejects.toBeInstanceOf(AuthenticationError);
  });

  it("streams a chat completion", async () => {
    let text = "";
    for await (const chunk of await client().chat.completions.create({ model, messages, stream: true })) {
      expect(chunk.model).toBe(model);
      text += chunk.choices[0]?.delta.content ?? "";
    }
    expect(text).toBe(fakeReplyText(8));
  });

  it("logs a user in, and meters a call made with the session cookie and no key to that user", async () => {
    const login = await fetch(`${origin}/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ userId: "carol" }),
    });
    expect(login.status).toBe(200);
    expect(await login.json()).toEqual({ userId: "carol" });
    const cookie = login.headers.getSetCookie()[0]!.split(";")[0]!;

    const response = await fetch(`${origin}${basePath}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", cookie },
      body: JSON.stringify({ model, messages, max_tokens: 2 }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { choices: Array<{ message: { content: string } }> };
    expect(body.choices[0]?.message.content).toBe(fakeReplyText(2));
    const charge = await host.sluice.stores.ledger.getCharge(response.headers.get("x-request-id")!);
    expect(charge).toMatchObject({ userId: "carol", keyId: null, outputTokens: 2, cost: fakePromptTokens({ messages }) + 2 });

    const refused = await fetch(`${origin}/login`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"userId":"mallory"}' });
    expect(refused.status).toBe(401);
    const anonymous = await fetch(`${origin}${basePath}/models`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe("missing_identity");
  });
});

describe("mounting the gateway in other Koa apps", () => {
  /** Serves `app` on loopback for the length of `use`. */
  async function serving<T>(app: Koa, use: (origin: string) => Promise<T>): Promise<T> {
    const callback = app.callback();
    const other = createServer((request, response) => void callback(request, response));
    other.listen(0, "127.0.0.1");
    await once(other, "listening");
    try {
      return await use(`http://127.0.0.1:${(other.address() as AddressInfo).port}`);
    } finally {
      other.closeAllConnections();
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
  }

  const chat = (at: string) =>
    fetch(at, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${carolKey}` },
      body: JSON.stringify({ model, messages, max_tokens: 2 }),
      signal: AbortSignal.timeout(5_000),
    });

  it("behind a body parser that keeps what it read on Koa's request (koa-bodyparser, koa-body)", async () => {
    const app = new Koa();
    app.use(async (context, next) => {
      const chunks: Buffer[] = [];
      for await (const chunk of context.req) chunks.push(chunk as Buffer);
      (context.request as { body?: unknown }).body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      await next();
    });
    app.use(createKoaMiddleware(host.sluice.gateway, { basePath }));
    await serving(app, async (at) => {
      const response = await chat(`${at}${basePath}/chat/completions`);
      expect(response.status).toBe(200);
      expect(((await response.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content).toBe(fakeReplyText(2));
    });
  });

  it("at `/`, where every path is the gateway's, and after the host's own routes", async () => {
    const app = new Koa();
    app.use(async (context, next) => {
      if (context.path !== "/health") return next();
      context.body = "ok";
    });
    app.use(createKoaMiddleware(host.sluice.gateway, { basePath: "/" }));
    await serving(app, async (at) => {
      expect((await chat(`${at}/chat/completions`)).status).toBe(200);
      expect(await (await fetch(`${at}/health`)).text()).toBe("ok");
    });
  });
});
