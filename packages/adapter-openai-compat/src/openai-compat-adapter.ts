import { systemClock } from "@sluice/core";
import type { Clock, ProviderAdapter } from "@sluice/core";
import { createOpenAICompatProvider } from "./openai-compat-provider.js";
import { validateOpenAICompatProvider } from "./openai-compat-settings.js";

export interface OpenAICompatAdapterOptions {
  /** Where discovery's cache and health's `checkedAt` read the time. Default: the system clock. */
  clock?: Clock;
  /** Keep-alive connections per upstream origin, per provider. Default 128. */
  connections?: number;
  /** Time allowed to open a connection (TCP and TLS). Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** How long a `GET /models` answer is reused. Default 60 000 ms. */
  modelCacheTtlMs?: number;
}

/**
 * The adapter for providers of kind `openai-compatible`: any server speaking OpenAI's chat
 * completions API (vLLM, Ollama, TGI, llama.cpp, LM Studio, OpenAI itself). Settings are
 * `openAICompatSettingsSchema`; the one secret is `apiKey`.
 *
 * Each Provider it creates owns its connection pools: the gateway's registry closes it when the
 * record changes or goes away.
 */
export function createOpenAICompatAdapter(options: OpenAICompatAdapterOptions = {}): ProviderAdapter {
  const clock = options.clock ?? systemClock;
  const connections = options.connections ?? 128;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const modelCacheTtlMs = options.modelCacheTtlMs ?? 60_000;
  return {
    kind: "openai-compatible",
    validate: validateOpenAICompatProvider,
    create: ({ record, secrets }) =>
      createOpenAICompatProvider({
        record,
        secrets,
        clock,
        connections,
        connectTimeoutMs,
        modelCacheTtlMs,
        discoveryTimeoutMs: 10_000,
        healthTimeoutMs: 5_000,
      }),
  };
}
