/**
 * Revocation takes effect on the very next request, end to end: a revoked key, a revoked grant, an
 * allocation lowered below its spend, a user removed from the allocation's group. Each test works
 * first, changes the stores as the management layer would, and checks the next request.
 */
import { APIError, AuthenticationError, NotFoundError, PermissionDeniedError } from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chatModel, privateChatModel, startTestHost } from "./test-host.js";
import type { TestHost } from "./test-host.js";

const messages = [{ role: "user" as const, content: "Say hello to the gateway." }];

let host: TestHost;
beforeEach(async () => {
  host = await startTestHost();
});
afterEach(() => host.close());

async function modelIds(apiKey: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const model of host.client(apiKey).models.list()) ids.push(model.id);
  return ids.sort();
}

async function keyIdOf(userId: string): Promise<string> {
  const [key] = await host.sluice.stores.keys.list({ userId, nameContains: "test" });
  return key!.id;
}

describe("revocation, on the next request", () => {
  it("a revoked key: 401 revoked_api_key", async () => {
    const client = host.client(host.keys.carol);
    await expect(client.chat.completions.create({ model: chatModel, messages })).resolves.toMatchObject({ model: chatModel });
    await host.sluice.stores.keys.revoke({ userId: "carol", keyId: await keyIdOf("carol") });
    const error = await client.chat.completions.create({ model: chatModel, messages }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as APIError).code).toBe("revoked_api_key");
    await expect(client.models.list()).rejects.toBeInstanceOf(AuthenticationError);
  });

  it("a revoked grant: 404 model_not_found, and the models leave /models; past usage stays", async () => {
    const client = host.client(host.keys.carol);
    await client.chat.completions.create({ model: chatModel, messages });
    expect(await modelIds(host.keys.carol)).toEqual(["alice:fake/fake-chat", "alice:fake/fake-embed"]);

    const provider = await host.sluice.stores.catalog.findByName({ owner: "alice", name: "fake" });
    const revoked = await host.sluice.stores.permissions.revoke({
      actor: "alice",
      provider: provider!,
      subject: { type: "group", groupId: "research" },
    });
    expect(revoked).toBe(true);

    const before = host.upstream.requests.length;
    const error = await client.chat.completions.create({ model: chatModel, messages }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as APIError).code).toBe("model_not_found");
    expect(host.upstream.requests.length).toBe(before);
    expect(await modelIds(host.keys.carol)).toEqual([]);
    // The owner still uses it; carol's past usage is still on record.
    expect(await modelIds(host.keys.alice)).toEqual(["alice:fake/fake-chat", "alice:fake/fake-embed"]);
    expect((await host.usage({ userId: "carol" })).totals.requests).toBe(1);
  });

  it("an allocation lowered below its spend: 402, before any upstream call", async () => {
    const client = host.client(host.keys.carol);
    await client.chat.completions.create({ model: chatModel, messages });
    const { spent } = await host.allocation();
    expect(spent).toBeGreaterThan(0);
    await host.sluice.stores.ledger.updateAllocation("alc_research", { limit: spent - 1 });

    const before = host.upstream.requests.length;
    const error = await client.chat.completions.create({ model: chatModel, messages, stream: true }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).status).toBe(402);
    expect((error as APIError).code).toBe("allocation_exhausted");
    expect(host.upstream.requests.length).toBe(before);
    expect((await host.allocation()).reserved).toBe(0);
  });

  it("a user removed from the allocation's group: 403 permission_denied, even on their own provider", async () => {
    const client = host.client(host.keys.bob);
    await expect(client.chat.completions.create({ model: privateChatModel, messages })).resolves.toMatchObject({ model: privateChatModel });
    expect(await host.sluice.stores.permissions.removeMember({ groupId: "research", userId: "bob" })).toBe(true);

    const before = host.upstream.requests.length;
    const error = await client.chat.completions.create({ model: privateChatModel, messages }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as APIError).code).toBe("permission_denied");
    expect(host.upstream.requests.length).toBe(before);
    // The shared provider went with the group: for it, the answer is a 404.
    await expect(client.chat.completions.create({ model: chatModel, messages })).rejects.toBeInstanceOf(NotFoundError);
  });
});
