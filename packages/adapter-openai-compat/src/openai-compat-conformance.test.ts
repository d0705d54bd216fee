import { describeProvider, fakePromptTokens, fakeReplyText } from "@sluice/core/testing";
import type { ProviderHarness } from "@sluice/core/testing";
import { capturePayloads, messages, startTestProvider } from "./test-support.js";

const capture = "openai-chat-text-include-usage";

/** The conformance suite against the fake upstream's OpenAI profile, over real loopback sockets. */
const harness: ProviderHarness = {
  async start() {
    // One connection: a stream that did not release its connection would stall the next request.
    const { upstream, provider, close } = await startTestProvider({ profile: "openai", connections: 1 });
    return {
      provider,
      model: "fake-model",
      close,
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

describeProvider("openai-compatible", harness);
