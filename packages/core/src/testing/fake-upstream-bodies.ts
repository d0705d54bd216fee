/**
 * The fake upstream's non-streaming answers, in each profile's key order: chat completions,
 * legacy completions and embeddings. Pure functions of the request's numbers.
 */
import { encodeEmbeddingBase64, fakeEmbedding, fakePromptTokens, fakeReplyText, fakeToolCalls } from "./fake-upstream-content.js";
import { timingsFields, usageFields } from "./fake-upstream-profiles.js";
import type { ProfileSpec } from "./fake-upstream-profiles.js";

export interface ChatBodyInput {
  spec: ProfileSpec;
  id: string;
  created: number;
  model: string;
  promptTokens: number;
  /** Completion tokens: content words, or tool-call deltas when `toolCalls`. */
  completionTokens: number;
  finishReason: string;
  toolCalls: boolean;
  counter: number;
}

export function renderChatCompletionBody(input: ChatBodyInput): string {
  const { spec, id, created, model, finishReason } = input;
  const message: Record<string, unknown> = input.toolCalls
    ? {
        role: "assistant",
        content: null,
        tool_calls: fakeToolCalls.map((call, index) => ({
          id: spec.toolCallId(input.counter, index),
          type: "function",
          function: { name: call.name, arguments: call.fragments.join("") },
        })),
      }
    : { role: "assistant", content: fakeReplyText(input.completionTokens) };
  if (spec.errorStyle === "openai") {
    // api.openai.com always sends these two on the message (ChatCompletionResponseMessage).
    message.refusal = null;
    message.annotations = [];
  }
  const usage = usageFields(spec.usageStyle, input.promptTokens, input.completionTokens);
  let choice: Record<string, unknown>;
  if (spec.choice === "llamacpp") choice = { finish_reason: finishReason, index: 0, message };
  else if (spec.choice === "ollama") choice = { index: 0, message, finish_reason: finishReason };
  else if (spec.choice === "vllm") choice = { index: 0, message, logprobs: null, finish_reason: finishReason, stop_reason: null };
  else choice = { index: 0, message, logprobs: null, finish_reason: finishReason };

  const fingerprint = spec.systemFingerprint;
  if (spec.envelope === "llamacpp") {
    return JSON.stringify({
      choices: [choice],
      created,
      model,
      system_fingerprint: fingerprint,
      object: spec.completionObject,
      usage,
      id,
      timings: timingsFields(input.promptTokens, input.completionTokens),
    });
  }
  if (spec.envelope === "tgi") {
    return JSON.stringify({ object: spec.completionObject, id, created, model, system_fingerprint: fingerprint, choices: [choice], usage });
  }
  const body: Record<string, unknown> = { id, object: spec.completionObject, created, model, choices: [choice], usage };
  if (spec.serviceTier) body.service_tier = "default";
  if (fingerprint !== null) body.system_fingerprint = fingerprint;
  return JSON.stringify(body);
}

export interface CompletionBodyInput {
  spec: ProfileSpec;
  id: string;
  created: number;
  model: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: string;
}

/** A legacy `/v1/completions` answer, OpenAI's layout in every profile. */
export function renderCompletionBody(input: CompletionBodyInput): string {
  const body: Record<string, unknown> = {
    id: input.id,
    object: "text_completion",
    created: input.created,
    model: input.model,
    choices: [{ text: fakeReplyText(input.completionTokens), index: 0, logprobs: null, finish_reason: input.finishReason }],
    usage: usageFields(input.spec.usageStyle, input.promptTokens, input.completionTokens),
  };
  if (input.spec.systemFingerprint !== null) body.system_fingerprint = input.spec.systemFingerprint;
  return JSON.stringify(body);
}

/**
 * The items an embedding `input` asks for (one per string or token array), or null when it is
 * none of OpenAI's four shapes: string, string[], number[] (one input of token ids), number[][].
 */
export function embeddingItems(input: unknown): Array<string | readonly number[]> | null {
  if (typeof input === "string") return [input];
  if (!Array.isArray(input) || input.length === 0) return null;
  if (input.every((item) => typeof item === "number")) return [input as number[]];
  if (input.every((item) => typeof item === "string")) return input as string[];
  if (input.every((item) => Array.isArray(item) && item.every((id) => typeof id === "number"))) return input as number[][];
  return null;
}

export interface EmbeddingsBodyInput {
  input: unknown;
  items: ReadonlyArray<string | readonly number[]>;
  model: string;
  format: "float" | "base64";
  dimensions: number;
}

export function renderEmbeddingsBody(request: EmbeddingsBodyInput): string {
  const data = request.items.map((item, index) => {
    const vector = fakeEmbedding(item, request.dimensions);
    return { object: "embedding", index, embedding: request.format === "base64" ? encodeEmbeddingBase64(vector) : vector };
  });
  const promptTokens = fakePromptTokens({ input: request.input });
  return JSON.stringify({
    object: "list",
    data,
    model: request.model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  });
}
