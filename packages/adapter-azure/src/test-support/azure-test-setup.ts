/**
 * Shared setup for this package's tests: provider records, a Provider bound to the fake Azure
 * data plane, calls. Not exported from the package.
 */
import type { TokenCredential } from "@azure/core-auth";
import type { Clock, OpenAIRequestBody, Provider, ProviderCall, ProviderRecord } from "@sluice/core";
import { createAzureOpenAIAdapter } from "../azure-openai-adapter.js";
import { startFakeAzureOpenAI } from "./fake-azure-openai.js";
import type { FakeAzureDeployment, FakeAzureOpenAI, FakeAzureOpenAIOptions } from "./fake-azure-openai.js";

export function azureRecord(
  settings: Record<string, unknown>,
  fields: Partial<Pick<ProviderRecord, "id" | "status" | "statusReason" | "secretNames" | "name" | "owner">> = {},
): ProviderRecord {
  return {
    id: fields.id ?? "prv_azure_test",
    kind: "azure-openai",
    owner: fields.owner ?? "alice",
    name: fields.name ?? "azure",
    description: null,
    tags: [],
    status: fields.status ?? "provisioned",
    statusReason: fields.statusReason ?? null,
    settings,
    secretNames: fields.secretNames ?? [],
    createdAt: 0,
    updatedAt: 0,
    version: 1,
  };
}

export const testApiKey = "0123456789abcdef0123456789abcdef";

export const defaultFakeDeployments: FakeAzureDeployment[] = [
  { name: "gpt-4o", model: "gpt-4o-2024-08-06" },
  { name: "embed", model: "text-embedding-3-small" },
];

export interface TestAzureProvider {
  fake: FakeAzureOpenAI;
  provider: Provider;
  close(): Promise<void>;
}

export async function startTestAzureProvider(
  input: {
    fake?: FakeAzureOpenAIOptions;
    settings?: Record<string, unknown>;
    secrets?: Record<string, string>;
    credential?: TokenCredential;
    clock?: Clock;
    connections?: number;
  } = {},
): Promise<TestAzureProvider> {
  const fake = await startFakeAzureOpenAI({ deployments: defaultFakeDeployments, apiKeys: [testApiKey], ...input.fake });
  const adapter = createAzureOpenAIAdapter({ credential: input.credential, clock: input.clock, connections: input.connections });
  const secrets = input.secrets ?? { apiKey: testApiKey };
  const settings = {
    endpoint: fake.url,
    deployments: [
      { name: "gpt-4o", model: "gpt-4o" },
      { name: "embed", model: "text-embedding-3-small" },
    ],
    ...input.settings,
  };
  const provider = adapter.create({ record: azureRecord(adapter.validate!({ settings, secrets }), { secretNames: Object.keys(secrets) }), secrets });
  return {
    fake,
    provider,
    async close() {
      await provider.close?.();
      await fake.close();
    },
  };
}

export const messages = [{ role: "user", content: "What does a sluice do?" }];

let callCounter = 0;

export function chatCall(body: Record<string, unknown> = {}, options: { model?: string; signal?: AbortSignal } = {}): ProviderCall {
  callCounter += 1;
  const request: OpenAIRequestBody = { messages, ...body, model: options.model ?? "gpt-4o" };
  return { body: request, signal: options.signal ?? new AbortController().signal, requestId: `req_azure_${callCounter}` };
}

/** The gateway's upstream body for a stream: `stream: true`, usage always asked for. */
export function streamCall(body: Record<string, unknown> = {}, options: { model?: string; signal?: AbortSignal } = {}): ProviderCall {
  return chatCall({ stream: true, stream_options: { include_usage: true }, ...body }, options);
}

/** Every event of a stream, in order (core's helper, under the name these tests use). */
export { collectStreamEvents as collect } from "@sluice/core/testing";
