/**
 * Core's Provider conformance suite against a reverse-tunnel provider: every call goes from the
 * Provider through the hub, over HTTP/2 to a real agent process, and on to the fake model server.
 */
import { readFileSync } from "node:fs";
import { describeProvider, fakePromptTokens, fakeReplyText, startFakeUpstream } from "@sluice/core/testing";
import type { FakeUpstream, ProviderHarness } from "@sluice/core/testing";
import { afterAll, beforeAll } from "vitest";
import { reverseTunnelId } from "./hub/tunnel-hub.js";
import { tunnelProviderId } from "./tunnel-provider-name.js";
import { assertAgentBuilt, messages, spawnAgent, startWorld, stopAgents, waitForStatus } from "./test-support.js";
import type { World } from "./test-support.js";

const capture = "openai-chat-text-include-usage";
const providerId = tunnelProviderId(reverseTunnelId("alice", "conformance"));

/** The capture's data payloads, `[DONE]` left out, read independently of the reader under test. */
function capturePayloads(name: string): string[] {
  const text = readFileSync(new URL(`../../core/src/testing/__fixtures__/sse/${name}.txt`, import.meta.url), "utf8");
  return text
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
    .filter((payload) => payload !== "[DONE]");
}

// One gateway, agent and model server for the whole suite (an agent process per test would only
// add start-up time); each test starts from a reset model server and a fresh Provider.
let world: World;
let upstream: FakeUpstream;

beforeAll(async () => {
  assertAgentBuilt();
  world = await startWorld();
  upstream = await startFakeUpstream();
  const { secret } = await world.hub.createToken({ userId: "alice", name: "conformance" });
  spawnAgent({ hubUrl: world.hubUrl, token: secret, target: upstream.url });
  await waitForStatus(world, providerId, "running");
});

afterAll(async () => {
  await stopAgents();
  await world?.close();
  await upstream?.close();
});

const harness: ProviderHarness = {
  async start() {
    upstream.reset();
    const record = (await world.stores.catalog.get(providerId))!;
    const provider = world.tunnels.adapter.create({ record, secrets: {} });
    return {
      provider,
      model: "fake-model",
      close: async () => provider.close?.(),
      upstream: {
        completion() {
          const body = { messages, fake: { chunks: 5 } };
          return { body, content: fakeReplyText(5), usage: { inputTokens: fakePromptTokens(body), outputTokens: 5 } };
        },
        stream(options) {
          // A recording of api.openai.com; split, it goes out in 997-byte pieces that cut events apart.
          const fake = options?.split === true ? { replay: capture, replayChunkBytes: 997, intervalMs: 1 } : { replay: capture };
          return { body: { messages, fake }, payloads: capturePayloads(capture), usage: { inputTokens: 16, outputTokens: 300 } };
        },
        failBeforeOutput: (status) => ({ messages, fake: { status } }),
        failAfterOutput: () => ({ messages, fake: { chunks: 8, failAfterChunks: 3 } }),
        slowStream: () => ({ messages, fake: { chunks: 60, intervalMs: 50 } }),
        lastRequestAbortedWithin(ms) {
          return upstream.waitForAbort(upstream.requests.length - 1, ms).then(
            () => true,
            () => false,
          );
        },
      },
    };
  },
};

describeProvider("openai-tunnel (reverse tunnel)", harness);
