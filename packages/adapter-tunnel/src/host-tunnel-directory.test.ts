/**
 * Tunnels a host platform runs itself: it tells Sluice about them, and the provider follows.
 */
import { GatewayError } from "@sluice/core";
import { fakeReplyText, startFakeUpstream } from "@sluice/core/testing";
import type { FakeUpstream } from "@sluice/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHostTunnelDirectory } from "./host-tunnel-directory.js";
import type { HostTunnelDirectory } from "./host-tunnel-directory.js";
import { json, messages, send, startWorld, streamedText, waitForStatus, waitUntil } from "./test-support.js";
import type { World } from "./test-support.js";

let world: World;
let directory: HostTunnelDirectory;
let upstream: FakeUpstream;

const tunnel = {
  id: "jupyter-42",
  userId: "alice",
  sessionId: "sess-42",
  name: "My Notebook",
  openai: true,
  status: "running",
} as const;
const providerId = "tun_jupyter-42";
const model = "alice:My-Notebook/fake-model";

beforeAll(async () => {
  directory = createHostTunnelDirectory();
  world = await startWorld({ directory });
  upstream = await startFakeUpstream();
});

afterAll(async () => {
  await world?.close();
  await upstream?.close();
});

describe("a host-registered tunnel", () => {
  it("becomes its user's provider, named after the session, serving through the tunnel's target", async () => {
    directory.upsert({ ...tunnel, target: upstream.url });
    await waitForStatus(world, providerId, "running");
    expect(await world.stores.catalog.get(providerId)).toMatchObject({
      kind: "openai-tunnel",
      owner: "alice",
      name: "My-Notebook",
      settings: { tunnelId: "jupyter-42", sessionId: "sess-42" },
    });
    const reply = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model, messages, stream: true, fake: { chunks: 3 } } });
    expect(streamedText(reply.text)).toEqual({ text: fakeReplyText(3), done: true, errors: [] });
    expect(upstream.requests.at(-1)?.path).toBe("/v1/chat/completions");
  });

  it("follows its host's status events, and a stopped one answers 503 at no charge", async () => {
    const statuses: string[] = [];
    const onStatus = ({ provider }: { provider: { id: string; status: string } }): void => {
      if (provider.id === providerId) statuses.push(provider.status);
    };
    world.events.on("provider-status-change", onStatus);
    try {
      directory.setStatus("jupyter-42", "stopped");
      await waitForStatus(world, providerId, "stopped");
      const before = await world.stores.ledger.usage({ from: 0, to: Date.now() + 1, userId: "alice" });
      const refused = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model, messages } });
      expect(refused.status).toBe(503);
      expect((json(refused).error as { message: string }).message).toMatch(/must be restarted/);
      const after = await world.stores.ledger.usage({ from: 0, to: Date.now() + 1, userId: "alice" });
      expect(after.totals).toEqual(before.totals);
      // A repeated status is no change.
      directory.setStatus("jupyter-42", "stopped");
      directory.setStatus("jupyter-42", "running");
      await waitForStatus(world, providerId, "running");
      await world.tunnels.settled();
      expect(statuses).toEqual(["stopped", "running"]);
      const served = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model, messages, fake: { chunks: 2 } } });
      expect(served.status).toBe(200);
    } finally {
      world.events.off("provider-status-change", onStatus);
    }
  });

  it("refuses at once a tunnel its host stopped, even before the catalog caught up", async () => {
    const provider = world.tunnels.adapter.create({ record: (await world.stores.catalog.get(providerId))!, secrets: {} });
    directory.setStatus("jupyter-42", "stopped");
    const refused = await provider
      .deployments("fake-model")[0]!
      .chatCompletion({ body: { model: "fake-model", messages }, signal: AbortSignal.timeout(2_000), requestId: "req_race" })
      .then(() => null, (error: unknown) => error);
    expect(GatewayError.is(refused) && refused.code).toBe("provider_unavailable");
    expect((await provider.health()).status).toBe("stopped");
    directory.setStatus("jupyter-42", "running");
    await waitForStatus(world, providerId, "running");
    expect((await provider.health()).status).toBe("running");
  });

  it("sends the gateway's output cap as max_tokens, streamed or not, unless the body has a cap", async () => {
    const provider = world.tunnels.adapter.create({ record: (await world.stores.catalog.get(providerId))!, secrets: {} });
    const deployment = provider.deployments("fake-model")[0]!;
    const call = (body: Record<string, unknown>) => ({ body: { model: "fake-model", messages, ...body }, signal: AbortSignal.timeout(5_000), requestId: "req_cap", outputCap: 64 });
    await deployment.chatCompletion(call({}));
    expect(upstream.requests.at(-1)?.body).toMatchObject({ max_tokens: 64 });
    const stream = await deployment.streamChatCompletion(call({ stream: true }));
    for await (const _batch of stream.batches);
    expect(upstream.requests.at(-1)?.body).toMatchObject({ max_tokens: 64, stream: true });
    await deployment.chatCompletion(call({ max_completion_tokens: 9 }));
    expect(upstream.requests.at(-1)?.body).not.toHaveProperty("max_tokens");
    await provider.close?.();
  });

  it("relays a model server's whole JSON answer to a streaming request as a stream", async () => {
    const provider = world.tunnels.adapter.create({ record: (await world.stores.catalog.get(providerId))!, secrets: {} });
    const deployment = provider.deployments("fake-model")[0]!;
    const body = { model: "fake-model", messages, stream: true, stream_options: { include_usage: true }, fake: { ignoreStream: true, chunks: 3 } };
    const stream = await deployment.streamChatCompletion({ body, signal: AbortSignal.timeout(5_000), requestId: "req_json" });
    const events = [];
    for await (const batch of stream.batches) events.push(...batch.events);
    expect(upstream.requests.at(-1)?.stream).toBe(true);
    expect(events.map((event) => (JSON.parse(event.data) as { object: string }).object)).toEqual(["chat.completion.chunk", "chat.completion.chunk"]);
    expect(events[1]).toMatchObject({ usageOnly: true, usage: { outputTokens: 3 } });
    await provider.close?.();
  });

  it("accepts a target given as the server's /v1 base, and answers 502 when the target is unreachable", async () => {
    directory.upsert({ ...tunnel, id: "v1-base", name: "v1 base", target: `${upstream.url}/v1/` });
    await waitForStatus(world, "tun_v1-base", "running");
    const served = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model: "alice:v1-base/fake-model", messages } });
    expect(served.status).toBe(200);
    expect(upstream.requests.at(-1)?.path).toBe("/v1/chat/completions");

    directory.upsert({ ...tunnel, id: "nowhere", name: "nowhere", target: "http://127.0.0.1:9" });
    await waitForStatus(world, "tun_nowhere", "running");
    const failed = await send(world, { key: world.alice.key, path: "/chat/completions", body: { model: "alice:nowhere/fake-model", messages } });
    expect(failed.status).toBe(502);
    expect((json(failed).error as { message: string }).message).toMatch(/could not be reached through its tunnel \(connection refused\)/);
  });

  it("lists a stopped tunnel as stopped from the start, and drops the provider of a tunnel removed or without the OpenAI flag", async () => {
    directory.upsert({ ...tunnel, id: "later", name: "later", status: "stopped", target: upstream.url });
    await waitForStatus(world, "tun_later", "stopped");
    directory.upsert({ ...tunnel, id: "later", name: "later", status: "stopped", openai: false, target: upstream.url });
    await waitUntil(async () => (await world.stores.catalog.get("tun_later")) === null, "the provider to go");
    directory.upsert({ ...tunnel, id: "ssh-only", name: "ssh", openai: false, target: upstream.url });
    expect(directory.remove("v1-base")).toBe(true);
    expect(directory.remove("v1-base")).toBe(false);
    await world.tunnels.settled();
    expect(await world.stores.catalog.get("tun_v1-base")).toBeNull();
    expect(await world.stores.catalog.get("tun_ssh-only")).toBeNull();
    expect(directory.get("ssh-only")).toMatchObject({ openai: false });
  });

  it("validates what its host reports", () => {
    const attempts: Array<[unknown, string]> = [
      [{ ...tunnel, target: upstream.url, id: "has space" }, "id"],
      [{ ...tunnel, target: upstream.url, userId: "a:b" }, "userId"],
      [{ ...tunnel, target: upstream.url, status: "paused" }, "status"],
      [{ ...tunnel, target: "ftp://host" }, "target"],
      [{ ...tunnel, target: "http://user:pw@host" }, "target"],
      [{ ...tunnel, openai: "yes", target: upstream.url }, "openai"],
      [{ ...tunnel, target: upstream.url, extra: 1 }, "extra"],
    ];
    for (const [input, param] of attempts) {
      const error = (() => {
        try {
          directory.upsert(input as Parameters<HostTunnelDirectory["upsert"]>[0]);
          return null;
        } catch (thrown) {
          return thrown;
        }
      })();
      expect(GatewayError.is(error) && [error.status, error.param]).toEqual([400, param]);
    }
    expect(() => directory.setStatus("unknown-tunnel", "running")).toThrow(/No tunnel has the id/);
  });
});
