/**
 * Shared setup for this package's tests: a provider record, a Provider bound to a fake upstream
 * on loopback, and calls. Not exported from the package.
 */
import { readFileSync } from "node:fs";
import type { Clock, OpenAIRequestBody, Provider, ProviderCall, ProviderRecord } from "@sluice/core";
import { startFakeUpstream } from "@sluice/core/testing";
import type { FakeModel, FakeUpstream, FakeUpstreamProfile } from "@sluice/core/testing";
import { createOpenAICompatAdapter } from "./openai-compat-adapter.js";

export function providerRecord(settings: Record<string, unknown>, secretNames: string[] = []): ProviderRecord {
  return {
    id: "prv_test",
    kind: "openai-compatible",
    owner: "alice",
    name: "llama",
    description: null,
    tags: [],
    status: "unknown",
    statusReason: null,
    settings,
    secretNames,
    createdAt: 0,
    updatedAt: 0,
    version: 1,
  };
}

export interface TestProvider {
  upstream: FakeUpstream;
  provider: Provider;
  close(): Promise<void>;
}

export async function startTestProvider(
  input: {
    profile?: FakeUpstreamProfile;
    apiKey?: string;
    models?: ReadonlyArray<string | FakeModel>;
    settings?: Record<string, unknown>;
    secrets?: Record<string, string>;
    clock?: Clock;
    connections?: number;
    modelCacheTtlMs?: number;
  } = {},
): Promise<TestProvider> {
  const upstream = await startFakeUpstream({ profile: input.profile ?? "openai", apiKey: input.apiKey, models: input.models });
  const adapter = createOpenAICompatAdapter({
    clock: input.clock,
    connections: input.connections,
    modelCacheTtlMs: input.modelCacheTtlMs,
  });
  const secrets = input.secrets ?? (input.apiKey === undefined ? {} : { apiKey: input.apiKey });
  const provider = adapter.create({
    record: providerRecord({ endpoint: upstream.chatCompletionsUrl, ...input.settings }, Object.keys(secrets)),
    secrets,
  });
  return {
    upstream,
    provider,
    async close() {
      await provider.close?.();
      await upstream.close();
    },
  };
}

export const messages = [{ role: "user", content: "Say something about sluices." }];

let callCounter = 0;

export function chatCall(body: Record<string, unknown>, options: { model?: string; signal?: AbortSignal } = {}): ProviderCall {
  callCounter += 1;
  const request: OpenAIRequestBody = { messages, ...body, model: options.model ?? "fake-model" };
  return { body: request, signal: options.signal ?? new AbortController().signal, requestId: `req_test_${callCounter}` };
}

/** The gateway's upstream body for a stream: `stream: true`, usage always asked for. */
export function streamCall(body: Record<string, unknown>, options: { model?: string; signal?: AbortSignal } = {}): ProviderCall {
  return chatCall({ stream: true, stream_options: { include_usage: true }, ...body }, options);
}

/** Every event of a stream, in order (core's helper, under the name these tests use). */
export { collectStreamEvents as collect } from "@sluice/core/testing";

/**
 * The data payloads of a capture in core's fixtures, `[DONE]` left out: read here independently
 * of the SSE reader under test (the captures hold one `data:` line per event).
 */
export function capturePayloads(name: string): string[] {
  const text = readFileSync(new URL(`../../core/src/testing/__fixtures__/sse/${name}.txt`, import.meta.url), "utf8");
  const payloads: string[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("data:")) continue;
    const payload = line.slice(line.startsWith("data: ") ? 6 : 5);
    if (payload !== "[DONE]") payloads.push(payload);
  }
  return payloads;
}
