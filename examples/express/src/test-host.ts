/**
 * The end-to-end tests' fixture: a fake upstream (recording) and the Express example host on real
 * loopback sockets, with an organization built in code. Everything listens on 127.0.0.1, port 0.
 *
 * The organization (money in micro-dollars; every price is 1 µ$ per token, so a cost in µ$ is
 * the token count and a worst case is `body bytes + max_tokens`):
 * - users alice (org admin), bob, carol, dave (in no group);
 * - groups research (alice, bob, carol) and ops (bob);
 * - allocations `alc_research` (research) and `alc_ops` (ops), limits per test, no period;
 * - providers `alice:fake` (granted to research) and `bob:private` (not shared), both at the fake
 *   upstream, which lists `fake-chat` and `fake-embed`;
 * - one key per user named "test", bound to `alc_research` (dave's included).
 */
import { once } from "node:events";
import { Agent, createServer, request as httpRequest } from "node:http";
import type { IncomingHttpHeaders, Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import type { ClientOptions } from "openai";
import { expect } from "vitest";
import { countTextTokens, createManualClock } from "@sluice/core";
import type { AllocationBalance, BudgetLedger, ManualClock, RequestEndEvent, UsageReport } from "@sluice/core";
import { fakeReplyText, startFakeUpstream } from "@sluice/core/testing";
import type { FakeControl, FakeUpstream } from "@sluice/core/testing";
import { hostConfigSchema } from "@sluice/example-host-kit";
import type { HostGatewayOptions, RunningSluice } from "@sluice/example-host-kit";
import { createExpressHost } from "./app.js";

export const basePath = "/api/openai/v1";
export const chatModel = "alice:fake/fake-chat";
export const embedModel = "alice:fake/fake-embed";
export const privateChatModel = "bob:private/fake-chat";
export const upstreamModels = ["fake-chat", "fake-embed"];
/** 1 µ$ per token, in and out: `$1 per million tokens` is 1,000,000 µ$. */
export const price = { input: 1_000_000, output: 1_000_000 };
export const users = ["alice", "bob", "carol", "dave"] as const;
export type UserName = (typeof users)[number];

export interface TestHostOptions {
  /** `alc_research`'s limit in µ$. Default 1,000,000,000 ($1,000: never in the way). */
  researchLimit?: number;
  /** `alc_ops`'s limit in µ$. Default 1,000,000,000. */
  opsLimit?: number;
  /** Gateway options, passed through the host kit (retry delays are short by default here). */
  gateway?: HostGatewayOptions;
  /** Edits the organization before it is applied: more providers, grants, keys. */
  organization?: (organization: OrganizationDraft) => void;
}

/** The organization config as built here, open to edits. */
export interface OrganizationDraft {
  users: Array<Record<string, unknown>>;
  groups: Array<Record<string, unknown>>;
  allocations: Array<Record<string, unknown>>;
  providers: Array<Record<string, unknown>>;
  prices: Array<Record<string, unknown>>;
  keys: Array<Record<string, unknown>>;
}

export interface TestHost {
  upstream: FakeUpstream;
  sluice: RunningSluice;
  /** The stores' and the gateway's clock: it moves only when a test moves it. */
  clock: ManualClock;
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** `origin` + the API's base path. */
  baseUrl: string;
  /** The secret of each user's "test" key. */
  keys: Record<UserName, string>;
  /** The official client, pointed at the gateway, without retries. */
  client(apiKey: string, options?: ClientOptions): OpenAI;
  /** `request-end` events seen so far, by request id. */
  ends: Map<string, RequestEndEvent>;
  /** Resolves once the gateway has finished (and settled) request `requestId`. */
  waitForEnd(requestId: string, timeoutMs?: number): Promise<RequestEndEvent>;
  allocation(id?: string): Promise<AllocationBalance>;
  /** Every charge ever recorded, summed; `groupBy` as the ledger has it. */
  usage(filter?: { allocationIds?: string[]; userId?: string; groupBy?: "key" | "user" }): Promise<UsageReport>;
  providerId(owner: string, name: string): Promise<string>;
  close(): Promise<void>;
}

export async function startTestHost(options: TestHostOptions = {}): Promise<TestHost> {
  const upstream = await startFakeUpstream({ models: upstreamModels });
  const clock = createManualClock({ start: Date.now() });
  const settings = { endpoint: upstream.chatCompletionsUrl, models: upstreamModels };
  const organization: OrganizationDraft = {
    users: [
      { id: "alice", displayName: "Alice", roles: ["org:admin"] },
      { id: "bob", displayName: "Bob" },
      { id: "carol", displayName: "Carol" },
      { id: "dave", displayName: "Dave" },
    ],
    groups: [
      { id: "research", name: "Research", members: ["alice", "bob", "carol"] },
      { id: "ops", name: "Operations", members: ["bob"] },
    ],
    allocations: [
      { id: "alc_research", name: "Research", owner: { type: "group", groupId: "research" }, limit: options.researchLimit ?? 1e9 },
      { id: "alc_ops", name: "Operations", owner: { type: "group", groupId: "ops" }, limit: options.opsLimit ?? 1e9 },
    ],
    providers: [
      { owner: "alice", name: "fake", kind: "openai-compatible", settings, grants: [{ type: "group", groupId: "research" }] },
      { owner: "bob", name: "private", kind: "openai-compatible", settings },
    ],
    prices: [
      { provider: "alice:fake", model: "*", ...price },
      { provider: "bob:private", model: "*", ...price },
    ],
    keys: users.map((userId) => ({ userId, name: "test", allocationId: "alc_research" })),
  };
  options.organization?.(organization);

  const config = hostConfigSchema.parse({ basePath, demoUpstream: false, organization });
  const { app, sluice } = await createExpressHost(config, {
    clock,
    gateway: { ...options.gateway, retry: { baseDelayMs: 5, maxDelayMs: 2_000, ...options.gateway?.retry } },
  });
  const server: Server = createServer(app);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const keys = {} as Record<UserName, string>;
  for (const key of sluice.createdKeys) keys[key.userId as UserName] = key.secret;

  const ends = new Map<string, RequestEndEvent>();
  const endWaiters = new Map<string, (event: RequestEndEvent) => void>();
  sluice.events.on("request-end", (event) => {
    ends.set(event.requestId, event);
    endWaiters.get(event.requestId)?.(event);
  });

  const clients: OpenAI[] = [];
  return {
    upstream,
    sluice,
    clock,
    origin,
    baseUrl: `${origin}${basePath}`,
    keys,
    ends,
    client(apiKey, clientOptions = {}) {
      const client = new OpenAI({ apiKey, baseURL: `${origin}${basePath}`, maxRetries: 0, timeout: 30_000, ...clientOptions });
      clients.push(client);
      return client;
    },
    waitForEnd(requestId, timeoutMs = 10_000) {
      const seen = ends.get(requestId);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          endWaiters.delete(requestId);
          reject(new Error(`request ${requestId} did not end within ${timeoutMs} ms`));
        }, timeoutMs);
        endWaiters.set(requestId, (event) => {
          clearTimeout(timer);
          endWaiters.delete(requestId);
          resolve(event);
        });
      });
    },
    async allocation(id = "alc_research") {
      const allocation = await sluice.stores.ledger.getAllocation(id);
      if (!allocation) throw new Error(`no allocation ${id}`);
      return allocation;
    },
    usage(filter = {}) {
      return sluice.stores.ledger.usage({ from: 0, to: clock.now() + 1, ...filter });
    },
    async providerId(owner, name) {
      const record = await sluice.stores.catalog.findByName({ owner, name });
      if (!record) throw new Error(`no provider ${owner}:${name}`);
      return record.id;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // The upstream first: it ends any stream still hanging, which the gateway's pools wait for.
      await upstream.close();
      await sluice.close();
    },
  };
}

/** A chat body with the fake upstream's per-request control riding along (the gateway forwards unknown fields). */
export function chatBody(extra: Record<string, unknown> = {}, fake?: FakeControl): Record<string, unknown> {
  return {
    model: chatModel,
    messages: [{ role: "user", content: "Say hello to the gateway." }],
    ...extra,
    ...(fake === undefined ? {} : { fake }),
  };
}

export interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

const rawAgent = new Agent({ keepAlive: true, maxSockets: 64 });

/** One request over node:http, nothing added: what a test sends is what goes on the wire. */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array; agent?: Agent } = {},
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, { method: options.method ?? "GET", headers: options.headers ?? {}, agent: options.agent ?? rawAgent });
    outgoing.on("error", reject);
    outgoing.on("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("error", reject);
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text: Buffer.concat(chunks).toString("utf8") }));
    });
    outgoing.end(options.body);
  });
}

/** POSTs JSON to `path` under the base path with a bearer key. */
export function postJson(host: TestHost, path: string, body: unknown, apiKey: string, headers: Record<string, string> = {}): Promise<RawReply> {
  return rawRequest(`${host.baseUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}`, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

export interface OpenAIErrorShape {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

/**
 * Asserts that `text` is exactly OpenAI's error body: `{"error":{message,type,param,code}}`, all
 * four keys present, nothing else, with the right types. Returns the error object.
 */
export function expectOpenAIError(text: string): OpenAIErrorShape {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`not a JSON error body: ${JSON.stringify(text.slice(0, 200))}`);
  }
  expect(parsed).toBeTypeOf("object");
  expect(Object.keys(parsed as object)).toEqual(["error"]);
  const error = (parsed as { error: Record<string, unknown> }).error;
  expect(Object.keys(error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(error.message).toBeTypeOf("string");
  expect((error.message as string).length).toBeGreaterThan(0);
  expect(error.type).toBeTypeOf("string");
  expect(error.param === null || typeof error.param === "string").toBe(true);
  expect(error.code === null || typeof error.code === "string").toBe(true);
  return error as unknown as OpenAIErrorShape;
}

/** The `data` payloads of an SSE body, in order (`[DONE]` included). */
export function sseData(text: string): string[] {
  return text
    .split("\n\n")
    .filter((event) => event.startsWith("data:"))
    .map((event) => event.slice(event.startsWith("data: ") ? 6 : 5));
}

/** The UTF-8 size of a body as the openai client sends it (JSON.stringify of the params). */
export function bodyBytes(body: unknown): number {
  return Buffer.byteLength(JSON.stringify(body));
}

/** Holds every commit until `release()`, as a slow database would. */
export function holdCommits(ledger: BudgetLedger) {
  const commit = ledger.commit;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  ledger.commit = async (input) => {
    await gate;
    return commit.call(ledger, input);
  };
  return {
    release,
    restore() {
      release();
      ledger.commit = commit;
    },
  };
}

/**
 * The output tokens the gateway counts for the first `chunks` content chunks of the fake's reply,
 * when no usage arrives: it counts the delivered text with its tokenizer (o200k_base), in which
 * the fake's first word alone is three tokens.
 */
export function countedOutputTokens(chunks: number): Promise<number> {
  return countTextTokens(fakeReplyText(chunks));
}
