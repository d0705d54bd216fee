/**
 * A tunnel belongs to the user whose token opened it, to that user alone: no agent can claim
 * another user, and no other user (an admin included) can see or call it, whatever they guess.
 */
import { request as httpRequest } from "node:http";
import { GatewayError } from "@sluice/core";
import { startFakeUpstream } from "@sluice/core/testing";
import type { FakeUpstream } from "@sluice/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reverseTunnelId } from "./hub/tunnel-hub.js";
import { TUNNEL_NAME_HEADER, TUNNEL_UPGRADE_PROTOCOL } from "./protocol/tunnel-protocol.js";
import { tunnelProviderId } from "./tunnel-provider-name.js";
import { assertAgentBuilt, hubPath, json, messages, send, spawnAgent, startWorld, stopAgents, waitForStatus } from "./test-support.js";
import type { World } from "./test-support.js";

let world: World;
let aliceServer: FakeUpstream;
let bobServer: FakeUpstream;
let aliceToken: string;
let bobToken: string;

const aliceTunnel = tunnelProviderId(reverseTunnelId("alice", "shared-name"));
const bobTunnel = tunnelProviderId(reverseTunnelId("bob", "shared-name"));

beforeAll(async () => {
  assertAgentBuilt();
  world = await startWorld();
  aliceServer = await startFakeUpstream({ models: ["alice-model"] });
  bobServer = await startFakeUpstream({ models: ["bob-model"] });
  ({ secret: aliceToken } = await world.hub.createToken({ userId: "alice", name: "alice" }));
  ({ secret: bobToken } = await world.hub.createToken({ userId: "bob", name: "bob" }));
  spawnAgent({ hubUrl: world.hubUrl, token: bobToken, target: bobServer.url, name: "shared-name" });
  spawnAgent({ hubUrl: world.hubUrl, token: aliceToken, target: aliceServer.url, name: "shared-name" });
  await waitForStatus(world, bobTunnel, "running");
  await waitForStatus(world, aliceTunnel, "running");
});

afterAll(async () => {
  await stopAgents();
  await world?.close();
  await aliceServer?.close();
  await bobServer?.close();
});

/** An upgrade request by hand, saying whatever an agent might. */
function rawUpgrade(headers: Record<string, string>, path = hubPath): Promise<{ status: number; body: string }> {
  const { port } = new URL(world.origin);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: "127.0.0.1", port: Number(port), path, headers: { connection: "Upgrade", upgrade: TUNNEL_UPGRADE_PROTOCOL, ...headers } });
    outgoing.on("upgrade", (_response, socket) => {
      socket.destroy();
      resolve({ status: 101, body: "" });
    });
    outgoing.on("response", (response) => {
      let body = "";
      response.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    outgoing.on("error", reject);
    outgoing.end();
  });
}

describe("a token of one user cannot bring up a tunnel for another", () => {
  it("gives each user their own tunnel for the same session name, served by their own agent", async () => {
    expect((await world.stores.catalog.get(aliceTunnel))?.owner).toBe("alice");
    expect((await world.stores.catalog.get(bobTunnel))?.owner).toBe("bob");
    const forAlice = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model: "alice:shared-name/alice-model", messages } });
    const forBob = await send(world, { key: world.bob.key, path: "/chat/completions", body: { model: "bob:shared-name/bob-model", messages } });
    expect([forAlice.status, forBob.status]).toEqual([200, 200]);
    expect(aliceServer.requests.map((recorded) => recorded.path)).toContain("/v1/chat/completions");
    expect(bobServer.requests.some((recorded) => (recorded.body as { model?: string } | undefined)?.model === "alice-model")).toBe(false);
  });

  it("takes the user from the token, whatever the agent claims", async () => {
    // Alice's token, a request that names Bob every way it could.
    const upgraded = await rawUpgrade({
      authorization: `Bearer ${aliceToken}`,
      [TUNNEL_NAME_HEADER]: "bob:shared-name",
      "x-sluice-tunnel-user": "bob",
      "x-forwarded-user": "bob",
    });
    expect(upgraded.status).toBe(101);
    expect(world.hub.list().filter((tunnel) => tunnel.userId === "bob")).toHaveLength(1);
    expect(world.hub.list().every((tunnel) => tunnel.userId === "bob" || tunnel.userId === "alice")).toBe(true);
    // Bob's tunnel is still Bob's agent's: it was not replaced.
    expect(world.hub.get(reverseTunnelId("bob", "shared-name"))).toMatchObject({ userId: "bob", status: "running" });
  });

  it("refuses unknown, malformed and revoked tokens with a 401, and a real agent exits with status 3", async () => {
    for (const authorization of ["", "Bearer st-sluice-not-a-real-token", `Bearer ${aliceToken}x`, `Basic ${aliceToken}`]) {
      const refused = await rawUpgrade(authorization === "" ? {} : { authorization });
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: "invalid_api_key" } });
    }
    const { token, secret } = await world.hub.createToken({ userId: "bob", name: "short-lived" });
    await world.hub.revokeToken({ userId: "bob", tokenId: token.id });
    expect((await rawUpgrade({ authorization: `Bearer ${secret}` })).status).toBe(401);
    const agent = spawnAgent({ hubUrl: world.hubUrl, token: "st-sluice-guessed", target: aliceServer.url });
    expect((await agent.exited).code).toBe(3);
  });

  it("answers upgrades for other paths or protocols with an error instead of leaving them hanging", async () => {
    expect((await rawUpgrade({ authorization: `Bearer ${aliceToken}` }, "/somewhere-else")).status).toBe(404);
    expect((await rawUpgrade({ authorization: `Bearer ${aliceToken}`, upgrade: "websocket" })).status).toBe(400);
  });

  it("lets a user revoke only their own tokens", async () => {
    const [aliceTokenRecord] = await world.hub.listTokens({ userId: "alice" });
    expect(await world.hub.revokeToken({ userId: "bob", tokenId: aliceTokenRecord!.id })).toBeNull();
    expect(world.hub.get(reverseTunnelId("alice", "shared-name"))?.status).toBe("running");
  });
});

describe("another user can neither list nor call a tunnel", () => {
  const guesses = [
    "alice:shared-name/alice-model",
    "alice:shared-name/bob-model",
    "carol:shared-name/alice-model",
    `${aliceTunnel}/alice-model`,
    `alice:${aliceTunnel}/alice-model`,
    `alice:${reverseTunnelId("alice", "shared-name")}/alice-model`,
  ];

  it("lists only the caller's own tunnels, for users and admins alike", async () => {
    const forBob = (json(await send(world, { key: world.bob.key, path: "/models" })).data as Array<{ id: string }>).map((row) => row.id);
    expect(forBob).toEqual(["bob:shared-name/bob-model"]);
    const forCarol = json(await send(world, { key: world.carol.key, path: "/models" })).data as unknown[];
    expect(forCarol).toEqual([]);
    const forAlice = (json(await send(world, { key: world.alice.key, path: "/models" })).data as Array<{ id: string }>).map((row) => row.id);
    expect(forAlice).toEqual(["alice:shared-name/alice-model"]);

    // The host's provider list shows what `canUse` allows: the owner's own only.
    const records = await world.stores.catalog.list({ kind: "openai-tunnel" });
    for (const user of ["bob", "carol"]) {
      const visible = [];
      for (const record of records) if (await world.stores.permissions.canUse(user, record)) visible.push(record.owner);
      expect(visible.every((owner) => owner === user)).toBe(true);
    }
  });

  it("answers every guess at another user's tunnel as a model that does not exist", async () => {
    const before = aliceServer.requests.length;
    for (const caller of [world.bob, world.carol]) {
      for (const model of guesses) {
        for (const stream of [false, true]) {
          const reply = await send(world, { key: caller.key, path: "/chat/completions", body: { model, messages, stream } });
          expect(reply.status, `${caller.id} ${model}`).toBe(404);
          expect(json(reply).error).toMatchObject({ code: "model_not_found" });
        }
        const embedding = await send(world, { key: caller.key, path: "/embeddings", body: { model, input: "x" } });
        expect(embedding.status).toBe(404);
        const retrieved = await send(world, { key: caller.key, path: `/models/${encodeURIComponent(model)}` });
        expect(retrieved.status).toBe(404);
      }
    }
    expect(aliceServer.requests.length).toBe(before);
  });

  it("cannot be shared, not even by its owner or an admin", async () => {
    const record = (await world.stores.catalog.get(aliceTunnel))!;
    for (const actor of ["alice", "carol"]) {
      const refused = await world.stores.permissions
        .grant({ actor, provider: record, subject: { type: "organization" } })
        .then(() => null, (error: unknown) => error);
      expect(GatewayError.is(refused) && refused.code).toBe("sharing_not_supported");
    }
    expect(await world.stores.permissions.canUse("carol", record)).toBe(false);
    expect(await world.stores.permissions.canManage("carol", record)).toBe(false);
  });

  it("refuses tunnel providers entered by hand", () => {
    expect(() => world.tunnels.adapter.validate?.({ settings: { tunnelId: reverseTunnelId("alice", "shared-name") }, secrets: {} })).toThrow(
      /cannot be created or changed by hand/,
    );
  });

  it("never serves a hand-made record through another user's tunnel", async () => {
    // Even if a record of Bob's pointed at Alice's tunnel, the provider would not reach it.
    const forged = { ...(await world.stores.catalog.get(aliceTunnel))!, owner: "bob" };
    const provider = world.tunnels.adapter.create({ record: forged, secrets: {} });
    const [deployment] = provider.deployments("alice-model");
    const refused = await deployment!
      .chatCompletion({ body: { model: "alice-model", messages }, signal: AbortSignal.timeout(2_000), requestId: "req_forged" })
      .then(() => null, (error: unknown) => error);
    expect(GatewayError.is(refused) && refused.status).toBe(503);
    expect(() => world.tunnels.adapter.create({ record: { ...forged, id: "prv_handmade" }, secrets: {} })).toThrow(/not a session tunnel's own provider/);
  });
});
