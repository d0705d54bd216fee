/**
 * A real `sluice-tunnel` process in front of a fake model server, connected to a real gateway on
 * loopback: what a user gets when they run the agent in their session.
 */
import { request as httpRequest } from "node:http";
import type { IncomingMessage } from "node:http";
import { fakeReplyText, startFakeUpstream } from "@sluice/core/testing";
import type { FakeUpstream } from "@sluice/core/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { reverseTunnelId } from "./hub/tunnel-hub.js";
import { tunnelProviderId } from "./tunnel-provider-name.js";
import {
  assertAgentBuilt,
  basePath,
  json,
  messages,
  send,
  spawnAgent,
  stopAgents,
  streamedText,
  waitForStatus,
  waitUntil,
} from "./test-support.js";
import type { AgentProcess, World } from "./test-support.js";
import { startWorld } from "./test-support.js";

const session = "notebook";
const providerId = tunnelProviderId(reverseTunnelId("alice", session));
const model = `alice:${session}/fake-model`;

let world: World;
let upstream: FakeUpstream;
let token: string;
let agent: AgentProcess;

function startAgent(args: string[] = []): AgentProcess {
  return spawnAgent({ hubUrl: world.hubUrl, token, target: upstream.url, name: session, args });
}

beforeAll(async () => {
  assertAgentBuilt();
  // A quicker heartbeat than the default (2 s / 3 s), so a frozen agent is found dead within 2 s,
  // yet lenient enough that a loaded test machine does not drop a healthy agent.
  world = await startWorld({ hub: { heartbeatIntervalMs: 500, heartbeatTimeoutMs: 1_500 } });
  upstream = await startFakeUpstream({ models: ["fake-model", "fake-embed"] });
  ({ secret: token } = await world.hub.createToken({ userId: "alice", name: "alice's laptop" }));
  agent = startAgent();
  await waitForStatus(world, providerId, "running");
});

afterEach(() => {
  upstream.reset();
});

afterAll(async () => {
  await stopAgents();
  await world?.close();
  await upstream?.close();
});

describe("a reverse tunnel through a real agent process", () => {
  it("appears for its owner as a running provider named after the session, with the model server's models", async () => {
    const record = await world.stores.catalog.get(providerId);
    expect(record).toMatchObject({ kind: "openai-tunnel", owner: "alice", name: session, status: "running", secretNames: [] });
    const models = json(await send(world, { key: world.alice.key, path: "/models" }));
    expect((models.data as Array<{ id: string }>).map((row) => row.id).sort()).toEqual([`alice:${session}/fake-embed`, model]);
  });

  it("serves chat, streamed and not, and embeddings, metering each", async () => {
    const complete = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model, messages, fake: { chunks: 4 } } });
    expect(complete.status).toBe(200);
    const body = json(complete) as { model: string; choices: Array<{ message: { content: string } }> };
    expect(body.model).toBe(model);
    expect(body.choices[0]?.message.content).toBe(fakeReplyText(4));

    const streamed = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model, messages, stream: true, fake: { chunks: 6 } } });
    expect(streamed.status).toBe(200);
    expect(streamedText(streamed.text)).toEqual({ text: fakeReplyText(6), done: true, errors: [] });

    const embedded = await send(world, {
      key: world.alice.key,
      path: "/embeddings",
      body: { model: `alice:${session}/fake-embed`, input: "sluice gates" },
    });
    expect(embedded.status).toBe(200);
    expect((json(embedded).data as unknown[]).length).toBe(1);

    const usage = await world.stores.ledger.usage({ from: 0, to: Date.now() + 1, userId: "alice", providerId });
    expect(usage.totals.requests).toBeGreaterThanOrEqual(3);
  });

  it("carries 100 concurrent streams over its one connection, each intact", async () => {
    const chunks = Array.from({ length: 100 }, (_, index) => 5 + (index % 20));
    const replies = await Promise.all(
      chunks.map((count) =>
        send(world, {
          key: world.alice.key,
          path: "/chat/completions",
          body: { model, messages, stream: true, fake: { chunks: count, intervalMs: 2 } },
        }),
      ),
    );
    for (const [index, reply] of replies.entries()) {
      expect(reply.status, reply.text).toBe(200);
      expect(streamedText(reply.text)).toEqual({ text: fakeReplyText(chunks[index]!), done: true, errors: [] });
    }
    expect(upstream.requests.filter((recorded) => recorded.path === "/v1/chat/completions")).toHaveLength(100);
    // All of them reached the model server while others were still streaming: one tunnel, many streams.
    const streams = upstream.requests.filter((recorded) => recorded.stream);
    const firstFinished = Math.min(...streams.map((recorded) => recorded.finishedAt ?? Infinity));
    expect(streams.filter((recorded) => recorded.receivedAt <= firstFinished).length).toBeGreaterThan(1);
  });

  it("cancels the request at the model server when the client disconnects", async () => {
    const body = JSON.stringify({ model, messages, stream: true, fake: { chunks: 400, intervalMs: 20 } });
    const disconnectedAt = await new Promise<number>((resolve, reject) => {
      const outgoing = httpRequest(`${world.origin}${basePath}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${world.alice.key}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      });
      outgoing.on("error", () => undefined);
      outgoing.on("response", (incoming) => {
        incoming.once("data", () => {
          outgoing.destroy();
          resolve(Date.now());
        });
      });
      outgoing.on("close", () => reject(new Error("closed before the first chunk")));
      outgoing.end(body);
    });
    const abortedAt = await upstream.waitForAbort(0, 2_000);
    expect(abortedAt - disconnectedAt).toBeLessThan(500);
    expect(upstream.requests[0]?.outcome).toBe("client-aborted");
  });

  it("holds the model server back while the client does not read (flow control end to end)", async () => {
    // About 23 MB of events: far more than every buffer and window between client and model server.
    const chunks = 100_000;
    const body = JSON.stringify({ model, messages, stream: true, max_tokens: chunks, fake: { chunks } });
    let received = 0;
    let incoming: IncomingMessage | undefined;
    await new Promise<void>((resolve, reject) => {
      const outgoing = httpRequest(`${world.origin}${basePath}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${world.alice.key}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      });
      outgoing.on("error", reject);
      outgoing.on("response", (response) => {
        incoming = response;
        response.once("data", (chunk: Buffer) => {
          received += chunk.length;
          response.pause();
          resolve();
        });
      });
      outgoing.end(body);
    });
    // The client reads nothing for a while: the model server must still be stuck in its write.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(upstream.requests[0]?.outcome).toBe("pending");
    let tail = "";
    await new Promise<void>((resolve, reject) => {
      incoming!.on("data", (chunk: Buffer) => {
        received += chunk.length;
        tail = (tail + chunk.toString("latin1")).slice(-64);
      });
      incoming!.on("end", resolve);
      incoming!.on("error", reject);
      incoming!.resume();
    });
    expect(tail.endsWith("data: [DONE]\n\n")).toBe(true);
    expect(received).toBeGreaterThan(chunks * 150);
    await waitUntil(() => upstream.requests[0]?.outcome === "completed", "the model server to finish");
  });

  it("keeps the model server's API key in the session and drops the gateway's credentials", async () => {
    const guarded = await startFakeUpstream({ apiKey: "sk-model-server-secret", models: ["guarded"] });
    const { secret } = await world.hub.createToken({ userId: "alice", name: "guarded" });
    const guardedAgent = spawnAgent({
      hubUrl: world.hubUrl,
      token: secret,
      target: guarded.url,
      name: "guarded",
      args: ["--target-api-key-env", "MODEL_SERVER_KEY"],
      env: { MODEL_SERVER_KEY: "sk-model-server-secret" },
    });
    const guardedId = tunnelProviderId(reverseTunnelId("alice", "guarded"));
    try {
      await waitForStatus(world, guardedId, "running");
      const reply = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model: "alice:guarded/guarded", messages } });
      expect(reply.status, reply.text).toBe(200);
      expect(guarded.requests[0]?.headers.authorization).toBe("Bearer sk-model-server-secret");
      // The gateway holds no secret for it, and what the gateway sends never reaches the model server.
      expect((await world.stores.catalog.get(guardedId))?.secretNames).toEqual([]);
      const direct = await world.hub.request(reverseTunnelId("alice", "guarded"), {
        method: "GET",
        path: "/v1/models",
        headers: { authorization: "Bearer sk-gateway-must-not-leak", cookie: "session=1" },
        signal: AbortSignal.timeout(2_000),
      });
      await direct.body.toArray();
      expect(direct.status).toBe(200);
      expect(guarded.requests[1]?.headers.authorization).toBe("Bearer sk-model-server-secret");
      expect(guarded.requests[1]?.headers.cookie).toBeUndefined();
      // Nothing but OpenAI's routes: the tunnel is no way into the session.
      const outside = await world.hub.request(reverseTunnelId("alice", "guarded"), {
        method: "GET",
        path: "/v1/../admin",
        headers: {},
        signal: AbortSignal.timeout(2_000),
      });
      await outside.body.toArray();
      expect(outside.status).toBe(404);
      expect(guarded.requests).toHaveLength(2);
    } finally {
      await guardedAgent.kill();
      await guarded.close();
    }
  });

  it("answers 502 when the agent cannot reach its model server", async () => {
    const { secret } = await world.hub.createToken({ userId: "alice", name: "dead" });
    const deadAgent = spawnAgent({ hubUrl: world.hubUrl, token: secret, target: "http://127.0.0.1:9", name: "dead" });
    try {
      await waitForStatus(world, tunnelProviderId(reverseTunnelId("alice", "dead")), "running");
      const reply = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model: "alice:dead/any", messages } });
      expect(reply.status).toBe(502);
      expect((json(reply).error as { message: string }).message).toMatch(/could not reach the model server/);
    } finally {
      await deadAgent.kill();
    }
  });

  it("goes stopped within 5 s of the agent being killed, refuses with 503 at no charge, and runs again on restart", async () => {
    const before = await world.stores.ledger.usage({ from: 0, to: Date.now() + 1, userId: "alice" });
    const charges: unknown[] = [];
    const onCharge = (charge: unknown): void => {
      charges.push(charge);
    };
    world.events.on("usage-charge", onCharge);
    try {
      const killedAt = Date.now();
      await agent.kill("SIGKILL");
      await waitForStatus(world, providerId, "stopped", 5_000);
      // The killed process's kernel closes the connection: the hub sees it at once, long before the
      // heartbeat (a PING unanswered for 1.5 s here) would.
      expect(Date.now() - killedAt).toBeLessThan(1_200);

      const refused = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model, messages, stream: true } });
      expect(refused.status).toBe(503);
      expect(json(refused).error).toMatchObject({ code: "provider_unavailable", type: "server_error" });
      expect((json(refused).error as { message: string }).message).toMatch(/session and (its )?tunnel must be restarted/);
      // Listed as stopped, but its models are not offered.
      expect((await world.stores.catalog.get(providerId))?.status).toBe("stopped");
      const models = json(await send(world, { key: world.alice.key, path: "/models" })).data as Array<{ id: string }>;
      expect(models.some((row) => row.id.startsWith(`alice:${session}/`))).toBe(false);

      const after = await world.stores.ledger.usage({ from: 0, to: Date.now() + 1, userId: "alice" });
      expect(after.totals).toEqual(before.totals);
      expect(charges).toEqual([]);
      expect((await world.stores.ledger.getAllocation(world.allocationId))?.reserved).toBe(0);
      expect(upstream.requests).toHaveLength(0);

      agent = startAgent();
      await waitForStatus(world, providerId, "running", 5_000);
      const served = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model, messages, fake: { chunks: 2 } } });
      expect(served.status).toBe(200);
    } finally {
      world.events.off("usage-charge", onCharge);
    }
  });

  it("finds a frozen agent dead by heartbeat, and the agent reconnects once it thaws", async () => {
    const statuses: string[] = [];
    const onStatus = ({ provider }: { provider: { id: string; status: string } }): void => {
      if (provider.id === providerId) statuses.push(provider.status);
    };
    world.events.on("provider-status-change", onStatus);
    try {
      // SIGSTOP keeps the socket open: only the missing PING answers can tell.
      await agent.kill("SIGSTOP");
      const detectedIn = await waitForStatus(world, providerId, "stopped", 5_000);
      expect(detectedIn).toBeLessThan(4_000);
      await agent.kill("SIGCONT");
      await waitForStatus(world, providerId, "running", 5_000);
      expect(statuses).toEqual(["stopped", "running"]);
      const served = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model, messages, fake: { chunks: 2 } } });
      expect(served.status).toBe(200);
    } finally {
      world.events.off("provider-status-change", onStatus);
    }
  });

  it("replaces an agent when a second one connects for the same session; the first stops for good", async () => {
    const second = startAgent();
    const first = agent;
    const { code } = await first.exited;
    expect(code).toBe(4);
    expect(first.output()).toMatch(/took the tunnel over/);
    agent = second;
    await waitUntil(async () => (await world.stores.catalog.get(providerId))?.status === "running", "the second agent");
    const served = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model, messages, fake: { chunks: 2 } } });
    expect(served.status).toBe(200);
  });

  it("goes stopped at once when the agent shuts down on SIGTERM, which exits cleanly", async () => {
    const { secret } = await world.hub.createToken({ userId: "alice", name: "graceful" });
    const gracefulId = tunnelProviderId(reverseTunnelId("alice", "graceful"));
    const graceful = spawnAgent({ hubUrl: world.hubUrl, token: secret, target: upstream.url });
    await waitForStatus(world, gracefulId, "running");
    graceful.child.kill("SIGTERM");
    expect((await graceful.exited).code).toBe(0);
    await waitForStatus(world, gracefulId, "stopped", 1_000);
  });

  it("removes the tunnel and its provider when the token is revoked, and the agent exits", async () => {
    const { token: revocable, secret } = await world.hub.createToken({ userId: "alice", name: "revocable" });
    const revocableId = tunnelProviderId(reverseTunnelId("alice", "revocable"));
    const revocableAgent = spawnAgent({ hubUrl: world.hubUrl, token: secret, target: upstream.url });
    await waitForStatus(world, revocableId, "running");
    await world.hub.revokeToken({ userId: "alice", tokenId: revocable.id });
    expect((await revocableAgent.exited).code).toBe(4);
    await waitUntil(async () => (await world.stores.catalog.get(revocableId)) === null, "the provider to go");
    // The revoked token cannot connect again.
    const again = spawnAgent({ hubUrl: world.hubUrl, token: secret, target: upstream.url });
    expect((await again.exited).code).toBe(3);
    expect(again.output()).toMatch(/refused the tunnel token/);
  });
});
