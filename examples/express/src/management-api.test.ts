/**
 * The management API end to end, over real loopback HTTP against the Express example: changes
 * made through it hold on the very next gateway request, its usage numbers are the ledger's, its
 * connect snippets point at the gateway, its errors name the field, and each change emits one event.
 */
import type { Server } from "node:http";
import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createManualClock } from "@sluice/core";
import type { ManualClock, SluiceEventName, UsageGrouping } from "@sluice/core";
import { startFakeUpstream } from "@sluice/core/testing";
import type { FakeUpstream } from "@sluice/core/testing";
import { hostConfigSchema } from "@sluice/example-host-kit";
import type { RunningSluice } from "@sluice/example-host-kit";
import { createExpressHost } from "./app.js";

const DAY = 86_400_000;
const openAIPath = "/api/openai/v1";
const managementPath = "/api/ai";
const demoChat = "alice:demo/demo-chat";
const demoEmbed = "alice:demo/demo-embed";

let sluice: RunningSluice;
let server: Server;
let origin: string;
let clock: ManualClock;
let upstream: FakeUpstream;
const sessions = new Map<string, string>();

beforeAll(async () => {
  clock = createManualClock({ start: Date.UTC(2026, 2, 10, 12) });
  upstream = await startFakeUpstream({ models: ["team-chat"] });
  const config = hostConfigSchema.parse({
    basePath: openAIPath,
    managementPath,
    demoUpstream: true,
    organization: {
      users: [
        { id: "alice", displayName: "Alice", roles: ["org:admin"] },
        { id: "bob", displayName: "Bob", roles: ["aiprovider:create"] },
        { id: "carol", displayName: "Carol" },
        { id: "dave", displayName: "Dave" },
      ],
      groups: [
        { id: "research", name: "Research", members: ["bob", "carol"] },
        { id: "ops", name: "Operations", members: ["bob"] },
      ],
      allocations: [
        { id: "alc_research", name: "Research", owner: { type: "group", groupId: "research" }, limit: 1_000_000_000 },
        { id: "alc_ops", name: "Operations", owner: { type: "group", groupId: "ops" }, limit: 1_000_000_000 },
      ],
      providers: [
        {
          owner: "alice",
          name: "demo",
          kind: "openai-compatible",
          settings: { endpoint: "${DEMO_UPSTREAM}/v1/chat/completions", models: ["demo-chat", "demo-embed"] },
          grants: [{ type: "group", groupId: "research" }],
        },
      ],
      // 1 µ$ per token in and out, so a cost in µ$ is a token count.
      prices: [{ provider: "alice:demo", model: "*", input: 1_000_000, output: 1_000_000 }],
    },
  });
  const host = await createExpressHost(config, { clock });
  sluice = host.sluice;
  server = host.app.listen(0, "127.0.0.1");
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const user of ["alice", "bob", "carol", "dave"]) sessions.set(user, await login(user));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await sluice.close();
  await upstream.close();
});

async function login(userId: string): Promise<string> {
  const response = await fetch(`${origin}/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ userId }),
  });
  expect(response.status).toBe(200);
  return response.headers.get("set-cookie")!.split(";")[0]!;
}

interface Reply {
  status: number;
  headers: Headers;
  // Tests read whatever the route answers; the shapes are asserted where they matter.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

async function api(user: string, method: string, path: string, body?: unknown): Promise<Reply> {
  const headers: Record<string, string> = { cookie: sessions.get(user)! };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${origin}${managementPath}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

/** A chat completion through the OpenAI-compatible API, with an AI key or a user's session. */
async function chat(credential: { key: string } | { user: string }, model: string, content = "Hello there, gateway."): Promise<Reply> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if ("key" in credential) headers.authorization = `Bearer ${credential.key}`;
  else headers.cookie = sessions.get(credential.user)!;
  const response = await fetch(`${origin}${openAIPath}/chat/completions`, {
    method: "POST",
    headers,
    body: JSON.stringify({ model, max_tokens: 32, messages: [{ role: "user", content }] }),
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

let names = 0;
const unique = (prefix: string) => `${prefix}-${(names += 1)}`;

async function createTeamProvider(name = unique("team")): Promise<Reply> {
  const created = await api("bob", "POST", "/providers", {
    kind: "openai-compatible",
    name,
    description: "Bob's team server",
    tags: ["team"],
    settings: { endpoint: upstream.chatCompletionsUrl },
  });
  expect(created.status).toBe(201);
  return created;
}

describe("changes take effect on the very next gateway request", () => {
  it("a provider created and shared through the API serves at once; a revoke refuses the next request", async () => {
    const provider = (await createTeamProvider()).body;
    expect(provider).toMatchObject({ kind: "openai-compatible", owner: "bob", status: "unknown", tags: ["team"], secretNames: [] });
    const model = `bob:${provider.name}/team-chat`;

    const shared = await api("bob", "POST", `/providers/${provider.id}/grants`, { type: "group", groupId: "research" });
    expect(shared.status).toBe(200);
    expect(shared.body).toMatchObject({ providerId: provider.id, subject: { type: "group", groupId: "research" }, grantedBy: "bob" });

    const listed = (await api("carol", "GET", "/providers")).body.data;
    expect(listed.find((entry: { id: string }) => entry.id === provider.id).models).toEqual([{ id: model, model: "team-chat", created: expect.any(Number) }]);

    const key = await api("carol", "POST", "/keys", { name: unique("laptop"), allocationId: "alc_research" });
    expect(key.status).toBe(201);
    expect(key.body.secret).toMatch(/^sk-sluice-/);
    expect((await chat({ key: key.body.secret }, model)).status).toBe(200);

    const revoked = await api("bob", "DELETE", `/providers/${provider.id}/grants?type=group&groupId=research`);
    expect(revoked.body).toEqual({ revoked: true });
    const refused = await chat({ key: key.body.secret }, model);
    expect(refused.status).toBe(404);
    expect(refused.body.error.code).toBe("model_not_found");
    expect((await api("carol", "GET", "/providers")).body.data.map((entry: { id: string }) => entry.id)).not.toContain(provider.id);
    // Past usage stays.
    const usage = (await api("carol", "GET", "/usage?days=1&breakdown=model")).body;
    expect(usage.breakdown.rows.map((row: { key: string }) => row.key)).toContain(model);
  });

  it("a key revoked through the API is refused on its next request", async () => {
    const name = unique("notebook");
    const key = (await api("carol", "POST", "/keys", { name, allocationId: "alc_research" })).body;
    expect((await chat({ key: key.secret }, demoChat)).status).toBe(200);

    const revoked = await api("carol", "DELETE", `/keys/${key.key.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: key.key.id, status: "revoked", revokedAt: clock.now() });
    const refused = await chat({ key: key.secret }, demoChat);
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe("revoked_api_key");

    expect((await api("carol", "GET", `/keys?name=${name}`)).body.data).toEqual([]);
    const withRevoked = (await api("carol", "GET", `/keys?name=${name.toUpperCase()}&includeRevoked=true`)).body.data;
    expect(withRevoked).toEqual([expect.objectContaining({ id: key.key.id, status: "revoked", allocationName: "Research" })]);
  });

  it("an allocation cut through the API holds from the next request", async () => {
    const allocation = (await api("alice", "POST", "/allocations", { name: "Ops pilot", owner: { type: "group", groupId: "ops" }, limit: 1_000_000 }))
      .body;
    expect(allocation).toMatchObject({ name: "Ops pilot", limit: 1_000_000, spent: 0, reserved: 0, remaining: 1_000_000, period: null });
    const key = (await api("bob", "POST", "/keys", { name: unique("pilot"), allocationId: allocation.id })).body;
    expect(key.key.allocationName).toBe("Ops pilot");
    expect((await chat({ key: key.secret }, demoChat)).status).toBe(200);

    const mine = (await api("bob", "GET", "/allocations")).body.data.find((entry: { id: string }) => entry.id === allocation.id);
    expect(mine.spent).toBeGreaterThan(0);
    const cut = await api("alice", "PATCH", `/allocations/${allocation.id}`, { limit: mine.spent });
    expect(cut.body).toMatchObject({ limit: mine.spent, remaining: 0 });

    const refused = await chat({ key: key.secret }, demoChat);
    expect(refused.status).toBe(402);
    expect(refused.body.error.code).toBe("allocation_exhausted");
  });

  it("a new key or endpoint serves the next request, and a deleted provider is gone", async () => {
    const guarded = await startFakeUpstream({ models: ["guarded-chat"], apiKey: "upstream-key" });
    try {
      const created = await api("bob", "POST", "/providers", {
        kind: "openai-compatible",
        name: unique("guarded"),
        settings: { endpoint: guarded.chatCompletionsUrl },
        secrets: { apiKey: "wrong-key" },
      });
      const model = `bob:${created.body.name}/guarded-chat`;
      expect((await chat({ user: "bob" }, model)).status).toBe(502);

      const updated = await api("bob", "PATCH", `/providers/${created.body.id}`, { secrets: { apiKey: "upstream-key" } });
      expect(updated.body).toMatchObject({ secretNames: ["apiKey"], version: 2 });
      expect((await chat({ user: "bob" }, model)).status).toBe(200);

      const moved = await api("bob", "PATCH", `/providers/${created.body.id}`, { settings: { endpoint: upstream.chatCompletionsUrl } });
      expect(moved.body.settings).toEqual({ endpoint: upstream.chatCompletionsUrl });
      expect((await chat({ user: "bob" }, `bob:${created.body.name}/team-chat`)).status).toBe(200);

      expect((await api("bob", "DELETE", `/providers/${created.body.id}`)).body).toEqual({ id: created.body.id, deleted: true });
      expect((await chat({ user: "bob" }, model)).status).toBe(404);
      expect((await api("bob", "GET", `/providers/${created.body.id}`)).status).toBe(404);
    } finally {
      await guarded.close();
    }
  });

  it("rediscovery bypasses the model cache and records the provider's health", async () => {
    const provider = (await createTeamProvider()).body;
    expect((await api("bob", "GET", `/providers/${provider.id}`)).body.models.map((entry: { model: string }) => entry.model)).toEqual(["team-chat"]);
    upstream.setModels(["team-chat", "team-coder"]);
    try {
      // The adapter caches discovery for a minute: a plain read still sees the old list.
      expect((await api("bob", "GET", `/providers/${provider.id}`)).body.models).toHaveLength(1);
      const discovered = await api("bob", "POST", `/providers/${provider.id}/discover`);
      expect(discovered.body).toMatchObject({ status: "reachable", statusReason: null });
      expect(discovered.body.models.map((entry: { id: string }) => entry.id)).toEqual([
        `bob:${provider.name}/team-chat`,
        `bob:${provider.name}/team-coder`,
      ]);
    } finally {
      upstream.setModels(["team-chat"]);
    }
  });
});

describe("usage reports", () => {
  let firstDay: number;
  let keys: { a: { id: string; secret: string }; b: { id: string; secret: string } };

  beforeAll(async () => {
    // A fresh UTC day, so the earlier tests' requests (on the day before) stay apart.
    clock.advance(DAY);
    firstDay = clock.now();
    const make = async (name: string) => {
      const created = (await api("carol", "POST", "/keys", { name, allocationId: "alc_research" })).body;
      return { id: created.key.id, secret: created.secret };
    };
    keys = { a: await make("usage-a"), b: await make("usage-b") };
    // Day 1: two chats with key a, one with the session. Day 2: key b on both models, and bob.
    for (const reply of [
      await chat({ key: keys.a.secret }, demoChat, "one two three"),
      await chat({ key: keys.a.secret }, demoEmbed, "four five six seven"),
      await chat({ user: "carol" }, demoChat, "from the chat page"),
    ]) {
      expect(reply.status).toBe(200);
    }
    clock.advance(DAY);
    for (const reply of [
      await chat({ key: keys.b.secret }, demoChat, "the next day"),
      await chat({ key: keys.b.secret }, demoEmbed, "the next day again"),
      await chat({ user: "bob" }, demoChat, "bob was here too"),
    ]) {
      expect(reply.status).toBe(200);
    }
  });

  const ledgerUsage = (from: number, to: number, groupBy: UsageGrouping, userId?: string) =>
    sluice.stores.ledger.usage({ from, to, groupBy, ...(userId ? { userId } : {}) });

  const sumShares = (rows: Array<{ share: number; sharePercent: number }>) => ({
    share: rows.reduce((sum, row) => sum + row.share, 0),
    percent: Math.round(rows.reduce((sum, row) => sum + row.sharePercent * 10, 0)) / 10,
  });

  it("reports a user's totals, days, models and keys exactly as the ledger has them", async () => {
    const report = (await api("carol", "GET", "/usage?days=7")).body;
    const today = Date.UTC(2026, 2, 12);
    expect(report).toMatchObject({ from: today + DAY - 7 * DAY, to: today + DAY, shareOf: "cost" });

    const byDay = await ledgerUsage(report.from, report.to, "day", "carol");
    expect(report.totals).toEqual(byDay.totals);
    expect(report.totals.inputTokens).toBeGreaterThan(0);
    expect(report.totals.outputTokens).toBeGreaterThan(0);
    expect(report.daily).toHaveLength(7);
    const lastTwo = report.daily.slice(-2);
    expect(lastTwo.map((row: { key: string }) => row.key)).toEqual(["2026-03-11", "2026-03-12"]);
    // Those two days used only the priced demo models, at 1 µ$ a token.
    for (const row of lastTwo) expect(row.cost).toBe(row.totalTokens);
    expect(report.daily.map(({ share: _share, sharePercent: _percent, label: _label, ...row }: Record<string, unknown>) => row)).toEqual(byDay.groups);
    expect(lastTwo.map((row: { requests: number }) => row.requests)).toEqual([3, 2]);

    const byModel = await ledgerUsage(report.from, report.to, "model", "carol");
    expect(report.breakdown.by).toBe("model");
    expect(report.breakdown.rows.map(({ share: _share, sharePercent: _percent, label: _label, ...row }: Record<string, unknown>) => row)).toEqual(
      byModel.groups,
    );
    expect(sumShares(report.breakdown.rows).share).toBeCloseTo(1, 10);
    expect(sumShares(report.breakdown.rows).percent).toBe(100);
    expect(report.allocations.map((allocation: { id: string }) => allocation.id)).toEqual(["alc_research"]);

    const byKey = (await api("carol", "GET", "/usage?days=7&breakdown=key")).body.breakdown.rows;
    const ledgerByKey = await ledgerUsage(report.from, report.to, "key", "carol");
    expect(byKey.map((row: { key: string | null; cost: number }) => [row.key, row.cost])).toEqual(
      ledgerByKey.groups.map((group) => [group.key, group.cost]),
    );
    const label = (keyId: string | null) => byKey.find((row: { key: string | null }) => row.key === keyId)?.label;
    expect([label(keys.a.id), label(keys.b.id), label(null)]).toEqual(["usage-a", "usage-b", null]);
  });

  it("covers any from/to range, and 'last N days' moves with the clock", async () => {
    const secondDay = (await api("carol", "GET", "/usage?from=2026-03-12&to=2026-03-13")).body;
    expect(secondDay.totals.requests).toBe(2);
    expect(secondDay.daily.map((row: { key: string }) => row.key)).toEqual(["2026-03-12"]);
    const byMillis = (await api("carol", "GET", `/usage?from=${firstDay}&to=${firstDay + 1}`)).body;
    expect(byMillis.totals.requests).toBe(3);

    clock.advance(6 * DAY);
    expect((await api("carol", "GET", "/usage?days=7")).body.totals.requests).toBe(2);
    expect((await api("carol", "GET", "/usage?days=30")).body.totals.requests).toBeGreaterThanOrEqual(5);
  });

  it("reports the organization to admins by user and by allocation, shares summing to 1", async () => {
    const byUser = (await api("alice", "GET", "/usage/organization?days=90&breakdown=user")).body;
    const ledgerByUser = await ledgerUsage(byUser.from, byUser.to, "user");
    expect(byUser.totals).toEqual(ledgerByUser.totals);
    expect(byUser.totals.activeUsers).toBe(2);
    expect(byUser.breakdown.rows.map((row: { key: string; label: string; cost: number; totalTokens: number }) => [row.key, row.label, row.cost, row.totalTokens])).toEqual(
      ledgerByUser.groups.map((group) => [group.key, group.key === "bob" ? "Bob" : "Carol", group.cost, group.totalTokens]),
    );
    for (const row of byUser.breakdown.rows) expect(row.share).toBeCloseTo(row.cost / byUser.totals.cost, 12);
    expect(sumShares(byUser.breakdown.rows).share).toBeCloseTo(1, 10);
    expect(sumShares(byUser.breakdown.rows).percent).toBe(100);

    const byAllocation = (await api("alice", "GET", "/usage/organization?days=90&breakdown=allocation")).body;
    const ledgerByAllocation = await ledgerUsage(byAllocation.from, byAllocation.to, "allocation");
    expect(byAllocation.breakdown.rows.map((row: { key: string; cost: number }) => [row.key, row.cost])).toEqual(
      ledgerByAllocation.groups.map((group) => [group.key, group.cost]),
    );
    expect(byAllocation.breakdown.rows.find((row: { key: string }) => row.key === "alc_research").label).toBe("Research");
    expect(sumShares(byAllocation.breakdown.rows).share).toBeCloseTo(1, 10);
    expect(sumShares(byAllocation.breakdown.rows).percent).toBe(100);

    const byModel = (await api("alice", "GET", "/usage/organization?days=90")).body;
    expect(byModel.breakdown.by).toBe("model");
    expect(byModel.totals.totalTokens).toBe(byModel.totals.inputTokens + byModel.totals.outputTokens);
  });

  it("names the bad query field", async () => {
    const param = async (query: string, user = "carol") => (await api(user, "GET", `/usage${query}`)).body.error?.param;
    expect(await param("?days=0")).toBe("days");
    expect(await param("?days=seven")).toBe("days");
    expect(await param("?days=7&from=2026-01-01")).toBe("days");
    expect(await param("?from=yesterday")).toBe("from");
    expect(await param("?breakdown=user")).toBe("breakdown");
    expect(await param("?bogus=1")).toBe("bogus");
    expect(await param("?days=7&days=30")).toBe("days");
    expect(await param("/organization?breakdown=key", "alice")).toBe("breakdown");
  });
});

describe("connecting a tool", () => {
  it("returns the base URL, the user's model ids and snippets that use them, without a secret", async () => {
    const connect = (await api("carol", "GET", "/connect")).body;
    expect(connect.baseUrl).toBe(`${origin}${openAIPath}`);
    const ids = connect.models.map((model: { id: string }) => model.id);
    expect(ids).toEqual(expect.arrayContaining([demoChat, demoEmbed]));
    for (const snippet of Object.values(connect.snippets) as string[]) {
      expect(snippet).toContain(connect.baseUrl);
      expect(snippet).toContain(ids[0]);
      expect(snippet).toContain(connect.apiKeyVariable);
      expect(snippet).not.toMatch(/sk-sluice-/);
    }
    // The snippet's model is one the gateway serves to this user.
    const listed = await fetch(`${origin}${openAIPath}/models`, { headers: { cookie: sessions.get("carol")! } });
    expect(((await listed.json()) as { data: Array<{ id: string }> }).data.map((model) => model.id)).toEqual(ids);
    // Dave is in no group: nothing to connect to yet, and the snippet says so.
    expect((await api("dave", "GET", "/connect")).body).toMatchObject({ models: [], snippets: { curl: expect.stringContaining("<a model id") } });
  });
});

describe("validation and the HTTP edge", () => {
  const paramOf = async (user: string, method: string, path: string, body: unknown) => {
    const reply = await api(user, method, path, body);
    expect(reply.status, JSON.stringify(reply.body)).toBe(400);
    return reply.body.error.param;
  };

  it("names the field at fault in every body", async () => {
    const provider = { kind: "openai-compatible", name: unique("valid"), settings: { endpoint: upstream.chatCompletionsUrl } };
    expect(await paramOf("bob", "POST", "/providers", { ...provider, settings: { endpoint: "ftp://nowhere" } })).toBe("settings.endpoint");
    expect(await paramOf("bob", "POST", "/providers", { ...provider, settings: {} })).toBe("settings.endpoint");
    expect(await paramOf("bob", "POST", "/providers", { ...provider, settings: { ...provider.settings, extra: 1 } })).toBe("settings.extra");
    expect(await paramOf("bob", "POST", "/providers", { ...provider, secrets: { token: "x" } })).toBe("secrets.token");
    expect(await paramOf("bob", "POST", "/providers", { ...provider, name: "has space" })).toBe("name");
    expect(await paramOf("bob", "POST", "/providers", { ...provider, kind: "mainframe" })).toBe("kind");
    expect(await paramOf("bob", "POST", "/providers", { ...provider, kind: "azure-openai" })).toBe("kind");
    // The acting user comes from the session, never from the body.
    expect(await paramOf("bob", "POST", "/providers", { ...provider, actor: "alice" })).toBe("actor");
    expect(await paramOf("bob", "POST", "/keys", { name: "k", allocationId: "alc_research", actor: "carol" })).toBe("actor");

    const created = (await createTeamProvider()).body;
    expect(await paramOf("bob", "PATCH", `/providers/${created.id}`, { settings: { endpoint: "not a url" } })).toBe("settings.endpoint");
    expect(await paramOf("bob", "PATCH", `/providers/${created.id}`, { kind: "openai-tunnel" })).toBe("kind");
    expect(await paramOf("bob", "PATCH", `/providers/${created.id}`, { owner: "alice" })).toBe("owner");
    expect(await paramOf("bob", "POST", `/providers/${created.id}/grants`, { type: "group" })).toBe("groupId");
    expect(await paramOf("bob", "POST", `/providers/${created.id}/grants`, { type: "everyone" })).toBe("type");

    expect(await paramOf("carol", "POST", "/keys", { name: "", allocationId: "alc_research" })).toBe("name");
    expect(await paramOf("carol", "POST", "/keys", { name: "k", allocationId: "alc_research", limit: -1 })).toBe("limit");
    expect(await paramOf("carol", "POST", "/keys", { name: "k", allocationId: "alc_research", limit: 1.5 })).toBe("limit");
    expect(await paramOf("carol", "POST", "/keys", { name: "k", allocationId: "alc_research", expiresAt: "tomorrow" })).toBe("expiresAt");
    expect(await paramOf("carol", "POST", "/keys", { name: "k", allocationId: "alc_research", expiresAt: "2020-01-01T00:00:00Z" })).toBe(
      "expiresAt",
    );
    expect(await paramOf("carol", "POST", "/keys", { name: "k", allocationId: "alc_research", restrictions: { models: ["nonsense"] } })).toBe(
      "restrictions.models[0]",
    );
    expect(await paramOf("carol", "POST", "/keys", { name: "k", allocationId: "alc_research", restrictions: { providers: [created.id] } })).toBe(
      "restrictions.providers[0]",
    );

    expect(await paramOf("alice", "POST", "/allocations", { name: "x", owner: { type: "group" }, limit: 1 })).toBe("owner.groupId");
    expect(await paramOf("alice", "POST", "/allocations", { name: "x", owner: { type: "organization" }, limit: 1, period: "year" })).toBe("period");
    expect(await paramOf("alice", "PATCH", "/allocations/alc_ops", { limit: "lots" })).toBe("limit");
  });

  it("creates a restricted, expiring key with an ISO expiry", async () => {
    const created = await api("carol", "POST", "/keys", {
      name: unique("restricted"),
      allocationId: "alc_research",
      expiresAt: "2027-01-01T00:00:00Z",
      restrictions: { models: [demoEmbed] },
      limit: 5_000,
    });
    expect(created.status).toBe(201);
    expect(created.headers.get("cache-control")).toBe("no-store");
    expect(created.body.key).toMatchObject({
      expiresAt: Date.UTC(2027, 0, 1),
      restrictions: { providers: null, models: [demoEmbed] },
      limit: 5_000,
      status: "active",
      lastUsedAt: null,
    });
    expect((await chat({ key: created.body.secret }, demoChat)).status).toBe(403);
    expect((await chat({ key: created.body.secret }, demoEmbed)).status).toBe(200);
    const listed = (await api("carol", "GET", `/keys?name=${created.body.key.name}`)).body.data[0];
    expect(listed.lastUsedAt).toBe(clock.now());
  });

  it("answers 409 on a name clash", async () => {
    const name = unique("clash");
    await createTeamProvider(name);
    const again = await api("bob", "POST", "/providers", { kind: "openai-compatible", name, settings: { endpoint: upstream.chatCompletionsUrl } });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: "conflict", param: "name" });
    // Another owner may use the same name.
    expect((await api("alice", "POST", "/providers", { kind: "openai-compatible", name, settings: { endpoint: upstream.chatCompletionsUrl } })).status).toBe(
      201,
    );

    const keyName = unique("key-clash");
    expect((await api("carol", "POST", "/keys", { name: keyName, allocationId: "alc_research" })).status).toBe(201);
    const keyAgain = await api("carol", "POST", "/keys", { name: keyName, allocationId: "alc_research" });
    expect(keyAgain.status).toBe(409);
    expect(keyAgain.body.error).toMatchObject({ code: "conflict", param: "name" });
  });

  it("answers a caller without a session before reading its body, and closes on one declared too large to read", async () => {
    const url = new URL(origin);
    const socket = connect(Number(url.port), url.hostname);
    let received = "";
    const answered = new Promise<void>((resolve, reject) => {
      socket.on("error", reject);
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString("utf8");
        if (received.includes("\r\n\r\n")) resolve();
      });
    });
    // 64 MiB declared, a few bytes sent: the answer must not wait for the rest.
    socket.write(`POST ${managementPath}/providers HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: ${64 * 1024 * 1024}\r\n\r\n{"kind":`);
    await answered;
    socket.destroy();
    expect(received).toMatch(/^HTTP\/1\.1 401 /);
    expect(received).toMatch(/\r\nconnection: close\r\n/i);
  });

  it("refuses what is not JSON (415), too large (413), the wrong method (405) or nowhere (404)", async () => {
    const raw = (method: string, path: string, init: RequestInit = {}) =>
      fetch(`${origin}${managementPath}${path}`, { method, ...init, headers: { cookie: sessions.get("bob")!, ...(init.headers as object) } });

    const form = await raw("POST", "/providers", { headers: { "content-type": "application/x-www-form-urlencoded" }, body: "name=x" });
    expect(form.status).toBe(415);
    expect(((await form.json()) as { error: { code: string } }).error.code).toBe("unsupported_media_type");

    const huge = await raw("POST", "/providers", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ kind: "openai-compatible", name: "huge", description: "x".repeat(2 * 1024 * 1024) }),
    });
    expect(huge.status).toBe(413);

    const broken = await raw("POST", "/providers", { headers: { "content-type": "application/json" }, body: "{not json" });
    expect(broken.status).toBe(400);
    const list = await raw("POST", "/providers", { headers: { "content-type": "application/json" }, body: "[]" });
    expect(list.status).toBe(400);

    const put = await raw("PUT", "/providers");
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, POST");

    const nowhere = await raw("GET", "/nowhere");
    expect(nowhere.status).toBe(404);
    expect(await nowhere.json()).toEqual({
      error: { message: "Invalid URL (GET /nowhere).", type: "invalid_request_error", param: null, code: "not_found" },
    });

    const anonymous = await fetch(`${origin}${managementPath}/providers`, { headers: { authorization: "Bearer sk-sluice-not-a-session" } });
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe("missing_identity");
  });

  it("lists Azure and other providers without an adapter here beside the rest, saying why they have no models", async () => {
    const azure = await sluice.stores.catalog.create({ kind: "azure-openai", owner: "bob", name: unique("azure"), status: "provisioning" });
    const listed = (await api("bob", "GET", "/providers")).body.data.find((entry: { id: string }) => entry.id === azure.id);
    expect(listed).toMatchObject({ kind: "azure-openai", status: "provisioning", models: [] });
    await sluice.stores.catalog.update(azure.id, { status: "provisioned" });
    const ready = (await api("bob", "GET", `/providers/${azure.id}`)).body;
    expect(ready).toMatchObject({ status: "provisioned", models: [], modelsError: expect.stringContaining("azure-openai") });
  });
});

describe("events", () => {
  const watched: SluiceEventName[] = [
    "provider-create",
    "provider-update",
    "provider-delete",
    "provider-status-change",
    "grant-change",
    "key-create",
    "key-revoke",
    "allocation-change",
  ];
  let seen: SluiceEventName[] = [];

  beforeEach(() => {
    seen = [];
  });

  beforeAll(() => {
    for (const name of watched) sluice.events.on(name, () => seen.push(name));
  });

  /** The events one change emitted. */
  async function emitted(change: () => Promise<Reply>): Promise<SluiceEventName[]> {
    seen = [];
    const reply = await change();
    expect(reply.status, JSON.stringify(reply.body)).toBeLessThan(300);
    return seen;
  }

  it("emits exactly one event per change, and none for a change that changes nothing", async () => {
    const name = unique("audited");
    let providerId = "";
    expect(
      await emitted(async () => {
        const reply = await api("bob", "POST", "/providers", { kind: "openai-compatible", name, settings: { endpoint: upstream.chatCompletionsUrl } });
        providerId = reply.body.id;
        return reply;
      }),
    ).toEqual(["provider-create"]);
    expect(await emitted(() => api("bob", "PATCH", `/providers/${providerId}`, { description: "audited" }))).toEqual(["provider-update"]);
    expect(await emitted(() => api("alice", "PATCH", `/providers/${providerId}`, { description: "audited" }))).toEqual([]);
    expect(await emitted(() => api("bob", "POST", `/providers/${providerId}/grants`, { type: "organization" }))).toEqual(["grant-change"]);
    expect(await emitted(() => api("alice", "POST", `/providers/${providerId}/grants`, { type: "organization" }))).toEqual([]);
    expect(await emitted(() => api("alice", "DELETE", `/providers/${providerId}/grants?type=organization`))).toEqual(["grant-change"]);
    expect(await emitted(() => api("bob", "DELETE", `/providers/${providerId}/grants?type=organization`))).toEqual([]);
    await api("bob", "POST", `/providers/${providerId}/grants`, { type: "group", groupId: "research" });
    // Deleting drops the grants with the provider: one provider-delete, no grant-change per grant.
    expect(await emitted(() => api("bob", "DELETE", `/providers/${providerId}`))).toEqual(["provider-delete"]);
    expect(await sluice.stores.permissions.canUse("carol", { id: providerId, owner: "bob", kind: "openai-compatible" })).toBe(false);

    let keyId = "";
    expect(
      await emitted(async () => {
        const reply = await api("dave", "POST", "/keys", { name: unique("audited"), allocationId: "alc_ops" }).then(async (refused) => {
          expect(refused.status).toBe(403);
          return api("carol", "POST", "/keys", { name: unique("audited"), allocationId: "alc_research" });
        });
        keyId = reply.body.key.id;
        return reply;
      }),
    ).toEqual(["key-create"]);
    expect(await emitted(() => api("carol", "DELETE", `/keys/${keyId}`))).toEqual(["key-revoke"]);
    expect(await emitted(() => api("carol", "DELETE", `/keys/${keyId}`))).toEqual([]);

    let allocationId = "";
    expect(
      await emitted(async () => {
        const reply = await api("alice", "POST", "/allocations", { name: "Audited", owner: { type: "organization" }, limit: 10 });
        allocationId = reply.body.id;
        return reply;
      }),
    ).toEqual(["allocation-change"]);
    expect(await emitted(() => api("alice", "PATCH", `/allocations/${allocationId}`, { limit: 20, period: "week" }))).toEqual(["allocation-change"]);
    expect(await emitted(() => api("alice", "PATCH", `/allocations/${allocationId}`, { limit: 20 }))).toEqual([]);
  });

  it("reports a health change found by rediscovery as a status change", async () => {
    const provider = (await createTeamProvider()).body;
    expect(await emitted(() => api("bob", "POST", `/providers/${provider.id}/discover`))).toEqual(["provider-update", "provider-status-change"]);
    expect(await emitted(() => api("bob", "POST", `/providers/${provider.id}/discover`))).toEqual([]);
  });
});
