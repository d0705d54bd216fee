/**
 * Who may do what through the management API: every operation, over real loopback HTTP against
 * the Express example, as a provider's owner, an org admin, a member of a group the provider is
 * shared with, an unrelated user, and with no identity. Each cell gets fresh fixtures, so a
 * delete in one cannot decide another.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostConfigSchema } from "@sluice/example-host-kit";
import type { RunningSluice } from "@sluice/example-host-kit";
import { createExpressHost } from "./app.js";

const managementPath = "/api/ai";
const actors = ["owner", "admin", "member", "stranger", "anonymous"] as const;
type Actor = (typeof actors)[number];
/** The users behind the roles: bob creates providers, alice is org admin, carol is in research, dave only in sales. */
const userOf: Record<Exclude<Actor, "anonymous">, string> = { owner: "bob", admin: "alice", member: "carol", stranger: "dave" };

let sluice: RunningSluice;
let server: Server;
let origin: string;
const cookies = new Map<Actor, string>();

beforeAll(async () => {
  const config = hostConfigSchema.parse({
    basePath: "/api/openai/v1",
    managementPath,
    demoUpstream: true,
    organization: {
      users: [
        { id: "alice", roles: ["org:admin"] },
        { id: "bob", roles: ["aiprovider:create"] },
        { id: "carol" },
        { id: "dave" },
      ],
      groups: [
        { id: "research", name: "Research", members: ["carol"] },
        { id: "ops", name: "Operations", members: ["bob"] },
        { id: "sales", name: "Sales", members: ["dave"] },
      ],
      allocations: [
        { id: "alc_org", name: "Everyone", owner: { type: "organization" }, limit: 100_000_000 },
        { id: "alc_research", name: "Research", owner: { type: "group", groupId: "research" }, limit: 100_000_000 },
      ],
    },
  });
  const host = await createExpressHost(config);
  sluice = host.sluice;
  server = host.app.listen(0, "127.0.0.1");
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const [actor, userId] of Object.entries(userOf)) cookies.set(actor as Actor, await login(userId));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await sluice.close();
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

interface Call {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  body?: unknown;
}

async function call(actor: Actor, request: Call): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  const cookie = cookies.get(actor);
  if (cookie) headers.cookie = cookie;
  if (request.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${origin}${managementPath}${request.path}`, {
    method: request.method,
    headers,
    ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

let counter = 0;

/** A fresh provider owned by bob, shared with research (carol's group), and a key of carol's. */
async function fixtures(): Promise<{ providerId: string; tunnelId: string; carolKeyId: string }> {
  counter += 1;
  const management = sluice.gateway.management;
  const provider = await management.createProvider({
    actor: "bob",
    kind: "openai-compatible",
    name: `shared-${counter}`,
    settings: { endpoint: `${sluice.demoUpstreamUrl}/v1/chat/completions` },
  });
  await management.grant({ actor: "bob", providerId: provider.id, subject: { type: "group", groupId: "research" } });
  // Tunnels are discovered, never created through the API: this stands in for the tunnel adapter.
  const tunnel = await sluice.stores.catalog.create({ kind: "openai-tunnel", owner: "bob", name: `tunnel-${counter}`, status: "running" });
  const key = await management.createKey({ actor: "carol", name: `key-${counter}`, allocationId: "alc_org" });
  return { providerId: provider.id, tunnelId: tunnel.id, carolKeyId: key.key.id };
}

type Fixtures = Awaited<ReturnType<typeof fixtures>>;

interface Row {
  operation: string;
  request: (fixtures: Fixtures) => Call;
  expected: Record<Actor, number>;
}

/** The matrix. 404 means "as if it did not exist"; 403 means "you may see it, not do this". */
const matrix: Row[] = [
  { operation: "read me", request: () => ({ method: "GET", path: "/me" }), expected: { owner: 200, admin: 200, member: 200, stranger: 200, anonymous: 401 } },
  { operation: "list usable providers", request: () => ({ method: "GET", path: "/providers" }), expected: { owner: 200, admin: 200, member: 200, stranger: 200, anonymous: 401 } },
  {
    operation: "create a provider",
    request: () => ({ method: "POST", path: "/providers", body: { kind: "openai-compatible", name: `new-${(counter += 1)}`, settings: { endpoint: "http://127.0.0.1:1/v1" } } }),
    expected: { owner: 201, admin: 201, member: 403, stranger: 403, anonymous: 401 },
  },
  { operation: "read a provider", request: (f) => ({ method: "GET", path: `/providers/${f.providerId}` }), expected: { owner: 200, admin: 200, member: 200, stranger: 404, anonymous: 401 } },
  {
    operation: "update a provider",
    request: (f) => ({ method: "PATCH", path: `/providers/${f.providerId}`, body: { description: "changed" } }),
    expected: { owner: 200, admin: 200, member: 403, stranger: 404, anonymous: 401 },
  },
  { operation: "delete a provider", request: (f) => ({ method: "DELETE", path: `/providers/${f.providerId}` }), expected: { owner: 200, admin: 200, member: 403, stranger: 404, anonymous: 401 } },
  {
    operation: "rediscover models",
    request: (f) => ({ method: "POST", path: `/providers/${f.providerId}/discover` }),
    expected: { owner: 200, admin: 200, member: 403, stranger: 404, anonymous: 401 },
  },
  { operation: "read grants", request: (f) => ({ method: "GET", path: `/providers/${f.providerId}/grants` }), expected: { owner: 200, admin: 200, member: 403, stranger: 404, anonymous: 401 } },
  {
    operation: "grant to a group",
    request: (f) => ({ method: "POST", path: `/providers/${f.providerId}/grants`, body: { type: "group", groupId: "sales" } }),
    expected: { owner: 200, admin: 200, member: 403, stranger: 404, anonymous: 401 },
  },
  {
    operation: "grant to the organization",
    request: (f) => ({ method: "POST", path: `/providers/${f.providerId}/grants`, body: { type: "organization" } }),
    expected: { owner: 200, admin: 200, member: 403, stranger: 404, anonymous: 401 },
  },
  {
    operation: "revoke a grant",
    request: (f) => ({ method: "DELETE", path: `/providers/${f.providerId}/grants?type=group&groupId=research` }),
    expected: { owner: 200, admin: 200, member: 403, stranger: 404, anonymous: 401 },
  },
  { operation: "read a tunnel", request: (f) => ({ method: "GET", path: `/providers/${f.tunnelId}` }), expected: { owner: 200, admin: 404, member: 404, stranger: 404, anonymous: 401 } },
  {
    operation: "update a tunnel",
    request: (f) => ({ method: "PATCH", path: `/providers/${f.tunnelId}`, body: { description: "changed" } }),
    expected: { owner: 403, admin: 404, member: 404, stranger: 404, anonymous: 401 },
  },
  { operation: "delete a tunnel", request: (f) => ({ method: "DELETE", path: `/providers/${f.tunnelId}` }), expected: { owner: 403, admin: 404, member: 404, stranger: 404, anonymous: 401 } },
  {
    operation: "share a tunnel",
    request: (f) => ({ method: "POST", path: `/providers/${f.tunnelId}/grants`, body: { type: "organization" } }),
    expected: { owner: 403, admin: 404, member: 404, stranger: 404, anonymous: 401 },
  },
  { operation: "read a tunnel's grants", request: (f) => ({ method: "GET", path: `/providers/${f.tunnelId}/grants` }), expected: { owner: 200, admin: 404, member: 404, stranger: 404, anonymous: 401 } },
  { operation: "read a missing provider", request: () => ({ method: "GET", path: "/providers/prv_missing" }), expected: { owner: 404, admin: 404, member: 404, stranger: 404, anonymous: 401 } },
  {
    operation: "create a key on the organization's allocation",
    request: () => ({ method: "POST", path: "/keys", body: { name: `org-${(counter += 1)}`, allocationId: "alc_org" } }),
    expected: { owner: 201, admin: 201, member: 201, stranger: 201, anonymous: 401 },
  },
  {
    operation: "create a key on research's allocation",
    request: () => ({ method: "POST", path: "/keys", body: { name: `research-${(counter += 1)}`, allocationId: "alc_research" } }),
    expected: { owner: 403, admin: 403, member: 201, stranger: 403, anonymous: 401 },
  },
  { operation: "list keys", request: () => ({ method: "GET", path: "/keys" }), expected: { owner: 200, admin: 200, member: 200, stranger: 200, anonymous: 401 } },
  { operation: "revoke carol's key", request: (f) => ({ method: "DELETE", path: `/keys/${f.carolKeyId}` }), expected: { owner: 404, admin: 404, member: 200, stranger: 404, anonymous: 401 } },
  { operation: "list own allocations", request: () => ({ method: "GET", path: "/allocations" }), expected: { owner: 200, admin: 200, member: 200, stranger: 200, anonymous: 401 } },
  { operation: "list every allocation", request: () => ({ method: "GET", path: "/allocations?all=true" }), expected: { owner: 403, admin: 200, member: 403, stranger: 403, anonymous: 401 } },
  {
    operation: "create an allocation",
    request: () => ({ method: "POST", path: "/allocations", body: { name: "Sales", owner: { type: "group", groupId: "sales" }, limit: 1_000_000 } }),
    expected: { owner: 403, admin: 201, member: 403, stranger: 403, anonymous: 401 },
  },
  {
    operation: "change an allocation's limit",
    request: () => ({ method: "PATCH", path: "/allocations/alc_research", body: { limit: 100_000_000, period: "month" } }),
    expected: { owner: 403, admin: 200, member: 403, stranger: 403, anonymous: 401 },
  },
  { operation: "read own usage", request: () => ({ method: "GET", path: "/usage?days=7&breakdown=key" }), expected: { owner: 200, admin: 200, member: 200, stranger: 200, anonymous: 401 } },
  {
    operation: "read the organization's usage",
    request: () => ({ method: "GET", path: "/usage/organization?days=30&breakdown=user" }),
    expected: { owner: 403, admin: 200, member: 403, stranger: 403, anonymous: 401 },
  },
  { operation: "connect a tool", request: () => ({ method: "GET", path: "/connect" }), expected: { owner: 200, admin: 200, member: 200, stranger: 200, anonymous: 401 } },
];

describe("management API authorization", () => {
  const cells = matrix.flatMap((row) => actors.map((actor) => ({ ...row, actor, status: row.expected[actor] })));

  it.each(cells)("$operation as $actor answers $status", async ({ request, actor, status }) => {
    const response = await call(actor, request(await fixtures()));
    expect(response.status, JSON.stringify(response.body)).toBe(status);
    if (status >= 400) {
      // One error shape for every refusal: OpenAI's, with all four keys.
      expect(Object.keys(response.body.error as object).sort()).toEqual(["code", "message", "param", "type"]);
    }
  });

  it("answers a provider one may not see exactly as a missing one", async () => {
    const { providerId } = await fixtures();
    const hidden = await call("stranger", { method: "GET", path: `/providers/${providerId}` });
    const missing = await call("stranger", { method: "GET", path: "/providers/prv_missing" });
    const normalize = (body: Record<string, unknown>, id: string) => JSON.stringify(body).replaceAll(id, "<id>");
    expect(normalize(hidden.body, providerId)).toBe(normalize(missing.body, "prv_missing"));
  });

  it("lists for each user exactly the providers they may use, or manage", async () => {
    const { providerId, tunnelId } = await fixtures();
    const ids = async (actor: Actor, scope = "use") =>
      ((await call(actor, { method: "GET", path: `/providers?scope=${scope}&models=false` })).body.data as Array<{ id: string }>).map(
        (provider) => provider.id,
      );
    expect(await ids("owner")).toEqual(expect.arrayContaining([providerId, tunnelId]));
    expect(await ids("member")).toContain(providerId);
    expect(await ids("member")).not.toContain(tunnelId);
    // Admins manage every provider but use none without a grant.
    expect(await ids("admin")).not.toContain(providerId);
    expect(await ids("admin", "manage")).toContain(providerId);
    expect(await ids("admin", "manage")).not.toContain(tunnelId);
    expect(await ids("stranger")).not.toContain(providerId);
    expect(await ids("stranger", "manage")).toEqual([]);
  });

  it("shows settings to those who manage a provider and never a secret to anyone", async () => {
    const created = await call("owner", {
      method: "POST",
      path: "/providers",
      body: {
        kind: "openai-compatible",
        name: "with-secret",
        settings: { endpoint: `${sluice.demoUpstreamUrl}/v1/chat/completions` },
        secrets: { apiKey: "upstream-secret-value" },
      },
    });
    expect(created.status).toBe(201);
    const providerId = created.body.id as string;
    await call("owner", { method: "POST", path: `/providers/${providerId}/grants`, body: { type: "group", groupId: "research" } });
    for (const actor of ["owner", "admin", "member"] as const) {
      const read = await call(actor, { method: "GET", path: `/providers/${providerId}` });
      expect(JSON.stringify(read.body)).not.toContain("upstream-secret-value");
      expect(read.body.secretNames).toEqual(["apiKey"]);
      expect(read.body.settings === null).toBe(actor === "member");
    }
  });

  it("says which tunnels are running, and that sharing them is not supported", async () => {
    const { tunnelId } = await fixtures();
    const listed = (await call("owner", { method: "GET", path: "/providers" })).body.data as Array<Record<string, unknown>>;
    expect(listed.find((provider) => provider.id === tunnelId)).toMatchObject({ kind: "openai-tunnel", status: "running" });
    const shared = await call("owner", { method: "POST", path: `/providers/${tunnelId}/grants`, body: { type: "organization" } });
    expect(shared.body.error).toMatchObject({ code: "sharing_not_supported" });
    const created = await call("owner", { method: "POST", path: "/providers", body: { kind: "openai-tunnel", name: "by-hand" } });
    expect(created.status).toBe(400);
    expect(created.body.error).toMatchObject({ param: "kind" });
  });

  it("only ever shows users their own keys", async () => {
    await fixtures();
    for (const actor of ["owner", "admin", "member", "stranger"] as const) {
      const keys = (await call(actor, { method: "GET", path: "/keys" })).body.data as Array<{ userId: string }>;
      expect(new Set(keys.map((key) => key.userId))).toEqual(new Set(keys.length ? [userOf[actor]] : []));
    }
  });

  it("lists the allocations each user may draw from", async () => {
    const ids = async (actor: Actor) =>
      ((await call(actor, { method: "GET", path: "/allocations" })).body.data as Array<{ id: string }>).map((allocation) => allocation.id);
    expect(await ids("member")).toEqual(expect.arrayContaining(["alc_org", "alc_research"]));
    expect(await ids("stranger")).not.toContain("alc_research");
    expect(await ids("admin")).not.toContain("alc_research");
  });

  it("refuses an actor the host never mirrored into the organization", async () => {
    // The login only admits known users, so this goes through the programmatic API.
    await expect(sluice.gateway.management.listKeys({ actor: "mallory" })).rejects.toMatchObject({ status: 403 });
    await expect(sluice.gateway.management.createKey({ actor: "mallory", name: "k", allocationId: "alc_org" })).rejects.toMatchObject({
      status: 403,
    });
  });
});
