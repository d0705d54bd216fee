/**
 * The `fake` control a test sends with a request, and the request checks that do not depend on
 * the endpoint. The control rides in the body (`fake: {...}`, which the gateway forwards with the
 * other unknown fields) or in the `x-fake: <json>` header; the header wins key by key, and the
 * strict profile reads only the header, since it rejects `fake` in the body like any unknown field.
 */

/**
 * Per-request behaviour. Counts are of content chunks (one word each), tool-call deltas, or
 * replayed pieces; the role chunk that opens a stream is not counted.
 */
export interface FakeControl {
  /** Content chunks to stream (= completion tokens). Default 8. Capped by max_tokens / max_completion_tokens. */
  chunks?: number;
  /** Pause before each counted chunk. Default 0: the whole stream goes out in one write. */
  intervalMs?: number;
  /** Pause before anything is written, headers included. */
  firstByteDelayMs?: number;
  /**
   * Hold the request before anything is written (after `firstByteDelayMs`) until the test calls
   * `openGate(name)`: for tests that need many requests in flight at once, without timing.
   */
  gate?: string;
  /** Destroy the socket after N chunks: the upstream dies mid-stream. Non-stream: before any byte. */
  failAfterChunks?: number;
  /** After N chunks, send the profile's in-stream error event and end the stream (no [DONE]). */
  errorEventAfterChunks?: number;
  /** Answer with this HTTP status and the profile's error body (OpenAI's for the openai profile). */
  status?: number;
  /** Replaces the error body, sent verbatim as JSON. */
  errorBody?: Record<string, unknown>;
  /** `retry-after-ms` header on the error response. */
  retryAfterMs?: number;
  /** `retry-after` header (seconds) on the error response. */
  retryAfter?: number;
  /**
   * Fail (with `status`, default 500) only the first N requests carrying the same `key`, then
   * answer normally: for retry tests. Counters clear on reset().
   */
  failTimes?: number;
  /** Groups requests for `failTimes`. Default "". */
  key?: string;
  /** Answer with two parallel tool calls, fragmented like the OpenAI capture (whole in Ollama). */
  toolCalls?: boolean;
  /** After N chunks, stop writing but keep the socket open. Non-stream: never answer. */
  hangAfterChunks?: number;
  /** Stream this capture from __fixtures__/sse/ (name with or without .txt) verbatim from its first `data:` line. */
  replay?: string;
  /** Split a replay into pieces of this many bytes instead of one piece per event. */
  replayChunkBytes?: number;
  /** Answer a streaming request with the whole JSON completion, as a server or proxy that does not stream. */
  ignoreStream?: boolean;
}

type ControlKind = "count" | "milliseconds" | "status" | "object" | "string" | "boolean";

const controlKinds: Readonly<Record<keyof FakeControl, ControlKind>> = {
  chunks: "count",
  intervalMs: "milliseconds",
  firstByteDelayMs: "milliseconds",
  gate: "string",
  failAfterChunks: "count",
  errorEventAfterChunks: "count",
  status: "status",
  errorBody: "object",
  retryAfterMs: "milliseconds",
  retryAfter: "milliseconds",
  failTimes: "count",
  key: "string",
  toolCalls: "boolean",
  hangAfterChunks: "count",
  replay: "string",
  replayChunkBytes: "count",
  ignoreStream: "boolean",
};

function fitsKind(kind: ControlKind, value: unknown): boolean {
  switch (kind) {
    case "count":
      return typeof value === "number" && Number.isInteger(value) && value >= 0;
    case "milliseconds":
      return typeof value === "number" && Number.isFinite(value) && value >= 0;
    case "status":
      return typeof value === "number" && Number.isInteger(value) && value >= 100 && value <= 599;
    case "object":
      return typeof value === "object" && value !== null && !Array.isArray(value);
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
  }
}

/** Checks one control object; a typo fails loudly instead of silently doing nothing. */
function validateControl(value: unknown, where: string): FakeControl | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return `${where} must be a JSON object.`;
  for (const [key, field] of Object.entries(value)) {
    const kind = controlKinds[key as keyof FakeControl] as ControlKind | undefined;
    if (kind === undefined) return `${where} has an unknown key '${key}'.`;
    if (!fitsKind(kind, field)) return `${where}.${key} has the wrong type or range.`;
  }
  return value as FakeControl;
}

/**
 * The merged control of a request: null when it sent none, a message when it sent a bad one.
 * `bodyField` is undefined for the strict profile, which never reads the body's `fake`.
 */
export function parseFakeControl(header: string | string[] | undefined, bodyField: unknown): FakeControl | null | string {
  let fromBody: FakeControl | null = null;
  if (bodyField !== undefined) {
    const checked = validateControl(bodyField, "fake");
    if (typeof checked === "string") return checked;
    fromBody = checked;
  }
  if (header === undefined) return fromBody;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Array.isArray(header) ? (header[0] ?? "") : header);
  } catch {
    return "The x-fake header is not valid JSON.";
  }
  const fromHeader = validateControl(parsed, "x-fake");
  if (typeof fromHeader === "string") return fromHeader;
  return fromBody === null ? fromHeader : { ...fromBody, ...fromHeader };
}

/** The first body field the known set does not contain, or null. */
export function unknownParameter(body: Record<string, unknown>, known: ReadonlySet<string>): string | null {
  for (const key in body) if (!known.has(key)) return key;
  return null;
}

/** How serde names a JSON value in "invalid type" messages, for TGI's plain-text 422. */
export function serdeDescription(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return `string ${JSON.stringify(value)}`;
  if (typeof value === "boolean") return `boolean \`${value}\``;
  if (typeof value === "number") return Number.isInteger(value) ? `integer \`${value}\`` : `floating point \`${value}\``;
  if (Array.isArray(value)) return "a sequence";
  return "a map";
}

/** OpenAI's CreateChatCompletionRequest fields (openapi 2.3.0): what the strict profile accepts. */
export const chatParameters = new Set([
  "messages", "model", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
  "max_completion_tokens", "max_tokens", "metadata", "modalities", "moderation", "n", "parallel_tool_calls",
  "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention",
  "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
  "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
  "web_search_options",
]);
export const completionParameters = new Set([
  "model", "prompt", "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n",
  "presence_penalty", "seed", "stop", "stream", "stream_options", "suffix", "temperature", "top_p", "user",
]);
export const embeddingParameters = new Set(["model", "input", "encoding_format", "dimensions", "user"]);

/**
 * What TGI's serde says about a body whose fields have the wrong JSON types (wire-formats §4:
 * "Failed to deserialize the JSON body into the target type: ..."), or null when they fit.
 */
export function tgiTypeRejection(body: Record<string, unknown>, promptField: "messages" | "prompt"): string | null {
  if (promptField === "messages") {
    if (body.messages === undefined) return "missing field `messages` at line 1 column 1";
    if (!Array.isArray(body.messages)) return `messages: invalid type: ${serdeDescription(body.messages)}, expected a sequence at line 1 column 1`;
  }
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== "boolean") {
    return `stream: invalid type: ${serdeDescription(body.stream)}, expected a boolean at line 1 column 1`;
  }
  if (body.max_tokens !== undefined && body.max_tokens !== null && !(Number.isInteger(body.max_tokens) && (body.max_tokens as number) >= 0)) {
    return `max_tokens: invalid type: ${serdeDescription(body.max_tokens)}, expected u32 at line 1 column 1`;
  }
  return null;
}
