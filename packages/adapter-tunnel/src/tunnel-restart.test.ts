/**
 * A gateway restart: the hub says goodbye (GOAWAY "closing"), the agent keeps trying, and comes
 * back as soon as a hub serves again, with the same tunnel id.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { startFakeUpstream } from "@sluice/core/testing";
import { afterAll, expect, it } from "vitest";
import { createTunnelHub, reverseTunnelId } from "./hub/tunnel-hub.js";
import { createMemoryTunnelTokenStore } from "./hub/tunnel-token-store.js";
import { assertAgentBuilt, spawnAgent, stopAgents, waitUntil } from "./test-support.js";

afterAll(stopAgents);

it("reconnects to the gateway after it restarts, instead of giving up", async () => {
  assertAgentBuilt();
  const upstream = await startFakeUpstream();
  const tokens = createMemoryTunnelTokenStore();
  const server = createServer((_request, response) => response.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const hubUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sluice/tunnel`;
  const tunnelId = reverseTunnelId("alice", "restart");
  try {
    const first = createTunnelHub({ tokens });
    const detach = first.attach(server);
    const { secret } = await first.createToken({ userId: "alice", name: "restart" });
    const agent = spawnAgent({ hubUrl, token: secret, target: upstream.url });
    await waitUntil(() => first.get(tunnelId)?.status === "running", "the first hub's tunnel");

    // Shut down: the agent is told the gateway is closing, and nothing listens for a moment.
    detach();
    await first.close();
    expect(first.get(tunnelId)?.status).toBe("stopped");
    await waitUntil(() => /gateway is restarting/.test(agent.output()), "the agent to notice");
    await new Promise((resolve) => setTimeout(resolve, 300));

    const second = createTunnelHub({ tokens });
    second.attach(server);
    await waitUntil(() => second.get(tunnelId)?.status === "running", "the agent to come back", 5_000);
    expect(agent.child.exitCode).toBeNull();
    await second.close();
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await upstream.close();
  }
});
