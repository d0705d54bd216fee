import { describeProvider } from "@sluice/core/testing";
import type { ProviderHarness } from "@sluice/core/testing";
import { capturePayloads, fakeCompletion } from "./test-support/fake-azure-openai.js";
import { messages, startTestAzureProvider } from "./test-support/azure-test-setup.js";

const capture = "azure-chat-text-include-usage";

/**
 * Core's Provider conformance suite against the Azure adapter and the fake Azure data plane, over
 * real loopback sockets, replaying the real Azure capture (prompt-filter preamble included).
 */
const harness: ProviderHarness = {
  async start() {
    // One connection: a stream that did not release its connection would stall the next request.
    const { fake, provider, close } = await startTestAzureProvider({ connections: 1 });
    return {
      provider,
      model: "gpt-4o",
      close,
      upstream: {
        completion() {
          return {
            body: { messages },
            content: fakeCompletion.content,
            usage: { inputTokens: fakeCompletion.promptTokens, outputTokens: fakeCompletion.completionTokens },
          };
        },
        stream(options) {
          const fakeControl = options?.split === true ? { replay: capture, replayChunkBytes: 97, intervalMs: 1 } : { replay: capture };
          return { body: { messages, fake: fakeControl }, payloads: capturePayloads(capture), usage: { inputTokens: 15, outputTokens: 78 } };
        },
        failBeforeOutput: (status) => ({ messages, fake: { status } }),
        failAfterOutput: () => ({ messages, fake: { chunks: 8, failAfterChunks: 3 } }),
        slowStream: () => ({ messages, fake: { chunks: 60, intervalMs: 50 } }),
        lastRequestAbortedWithin: (ms) => fake.abortedWithin(fake.requests.length - 1, ms),
      },
    };
  },
};

describeProvider("azure-openai", harness);
