/**
 * The agent dials out over HTTPS, as it does to any real gateway: the Upgrade happens inside TLS,
 * and HTTP/2 then runs over that TLS connection.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fakeReplyText, startFakeUpstream } from "@sluice/core/testing";
import type { FakeUpstream } from "@sluice/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reverseTunnelId } from "./hub/tunnel-hub.js";
import { tunnelProviderId } from "./tunnel-provider-name.js";
import { assertAgentBuilt, messages, send, spawnAgent, startWorld, stopAgents, streamedText, waitForStatus, waitUntil } from "./test-support.js";
import type { World } from "./test-support.js";

const fixtures = new URL("./__fixtures__/tls/", import.meta.url);
const certPath = new URL("loopback-cert.pem", fixtures);
const providerId = tunnelProviderId(reverseTunnelId("alice", "secure"));

let world: World;
let upstream: FakeUpstream;
let token: string;

beforeAll(async () => {
  assertAgentBuilt();
  world = await startWorld({ tls: { key: readFileSync(new URL("loopback-key.pem", fixtures)), cert: readFileSync(certPath) } });
  upstream = await startFakeUpstream();
  ({ secret: token } = await world.hub.createToken({ userId: "alice", name: "secure" }));
});

afterAll(async () => {
  await stopAgents();
  await world?.close();
  await upstream?.close();
});

describe("a reverse tunnel over HTTPS", () => {
  it("connects through TLS and carries concurrent streams", async () => {
    expect(world.hubUrl.startsWith("https://")).toBe(true);
    spawnAgent({ hubUrl: world.hubUrl, token, target: upstream.url, args: ["--ca", fileURLToPath(certPath)] });
    await waitForStatus(world, providerId, "running");
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        send(world, { key: world.alice.key, path: "/chat/completions", body: { model: "alice:secure/fake-model", messages, stream: true, fake: { chunks: 3 + index } } }),
      ),
    );
    for (const [index, reply] of replies.entries()) expect(streamedText(reply.text)).toEqual({ text: fakeReplyText(3 + index), done: true, errors: [] });
  });

  it("will not connect to a gateway whose certificate it does not trust", async () => {
    const untrusting = spawnAgent({ hubUrl: world.hubUrl, token, target: upstream.url, name: "untrusting", args: ["--reconnect-initial", "50"] });
    await waitUntil(() => /self-signed certificate|unable to verify/i.test(untrusting.output()), "the agent to refuse the certificate");
    expect(world.hub.get(reverseTunnelId("alice", "untrusting"))).toBeNull();
    await untrusting.kill();
  });
});
