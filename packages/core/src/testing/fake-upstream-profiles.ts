/**
 * The server families the fake upstream imitates, each as data: how it frames events, orders
 * keys, places role, finish and usage, and shapes its errors and model list. Every quirk comes
 * from /work/shared/reference/wire-formats.md (captures and server source) and is named there.
 */

/** Which server the fake upstream imitates. */
export type FakeUpstreamProfile =
  | "openai"
  | "vllm"
  | "ollama"
  | "tgi"
  | "tgi-legacy"
  | "llamacpp"
  | "no-usage"
  | "strict";

export const fakeUpstreamProfiles: readonly FakeUpstreamProfile[] = [
  "openai",
  "vllm",
  "ollama",
  "tgi",
  "tgi-legacy",
  "llamacpp",
  "no-usage",
  "strict",
];

type UsageStyle = "openai" | "vllm" | "plain" | "llamacpp";
type ErrorStyle = "openai" | "vllm" | "ollama" | "tgi" | "llamacpp";

export interface ProfileSpec {
  readonly name: FakeUpstreamProfile;
  /** `data: ` everywhere but TGI, whose axum version writes `data:` with no space. */
  readonly dataPrefix: string;
  /** The terminating event, or null where the stream just ends (TGI 1.4). */
  readonly doneEvent: string | null;
  readonly chunkObject: string;
  readonly completionObject: string;
  /** Key order of a chunk: OpenAI's (id first), TGI 3's (object first) or llama.cpp's (choices first). */
  readonly envelope: "openai" | "tgi" | "llamacpp";
  readonly serviceTier: boolean;
  readonly systemFingerprint: string | null;
  /** The first chunk's delta when the role gets its own chunk; null when the role rides every delta. */
  readonly roleChunkDelta: string | null;
  /** The role delta that opens a tool-call stream, where content is null rather than "". */
  readonly toolRoleChunkDelta: string | null;
  readonly choice: "openai" | "vllm" | "ollama" | "llamacpp";
  /** Where finish_reason goes: an empty-delta chunk, a content:"" chunk, or the last content chunk. */
  readonly finish: "empty-delta" | "empty-content" | "last-content";
  /** Where stream usage goes, when asked for. */
  readonly usage: "final-chunk" | "every-chunk" | "finish-chunk" | "never";
  /** Whether chunks without usage carry `"usage":null`: only when asked (OpenAI), always (TGI), never. */
  readonly usageNull: "when-requested" | "always" | "never";
  readonly usageStyle: UsageStyle;
  /** vLLM: `stream_options: {}` already means include_usage (its StreamOptions defaults it to true). */
  readonly includeUsageDefault: boolean;
  readonly timings: boolean;
  readonly stopReason: string;
  /** Tool calls arrive whole, one per delta (Ollama before v0.32.6), instead of fragmented. */
  readonly wholeToolCalls: boolean;
  /** vLLM's first tool delta has no `arguments` key. */
  readonly toolHeaderArguments: boolean;
  readonly errorStyle: ErrorStyle;
  /** Rejects top-level body fields OpenAI does not know, and reads `fake` only from the header. */
  readonly strict: boolean;
  /** Rejects `stream_options` on a non-streaming request (vLLM, and OpenAI itself). */
  readonly rejectsStreamOptionsWithoutStream: boolean;
  /** Answers a body of the wrong JSON types with axum's plain-text 422. */
  readonly plainTextRejections: boolean;
  readonly streamHeaders: Readonly<Record<string, string>>;
  readonly jsonHeaders: Readonly<Record<string, string>>;
  chatId(counter: number): string;
  completionId(counter: number): string;
  toolCallId(counter: number, index: number): string;
}

const openAiStreamHeaders = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" };
const openAiJsonHeaders = { "content-type": "application/json" };

function padded(counter: number, radix: number, width: number): string {
  return counter.toString(radix).padStart(width, "0");
}

const openAi: ProfileSpec = {
  name: "openai",
  dataPrefix: "data: ",
  doneEvent: "data: [DONE]\n\n",
  chunkObject: "chat.completion.chunk",
  completionObject: "chat.completion",
  envelope: "openai",
  serviceTier: true,
  systemFingerprint: "fp_fake",
  roleChunkDelta: '{"role":"assistant","content":"","refusal":null}',
  toolRoleChunkDelta: '{"role":"assistant","content":null}',
  choice: "openai",
  finish: "empty-delta",
  usage: "final-chunk",
  usageNull: "when-requested",
  usageStyle: "openai",
  includeUsageDefault: false,
  timings: false,
  stopReason: "stop",
  wholeToolCalls: false,
  toolHeaderArguments: true,
  errorStyle: "openai",
  strict: false,
  rejectsStreamOptionsWithoutStream: false,
  plainTextRejections: false,
  streamHeaders: openAiStreamHeaders,
  jsonHeaders: openAiJsonHeaders,
  chatId: (counter) => `chatcmpl-fake${padded(counter, 36, 20)}`,
  completionId: (counter) => `cmpl-fake${padded(counter, 36, 20)}`,
  toolCallId: (counter, index) => `call_fake${padded(counter, 36, 12)}x${index}`,
};

const tgiStreamHeaders = { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" };
const tgiJsonHeaders = { "content-type": "application/json" };

const tgi: ProfileSpec = {
  ...openAi,
  name: "tgi",
  dataPrefix: "data:",
  doneEvent: "data:[DONE]\n\n",
  envelope: "tgi",
  serviceTier: false,
  systemFingerprint: "3.2.1-native",
  roleChunkDelta: null,
  toolRoleChunkDelta: null,
  finish: "last-content",
  usageNull: "always",
  usageStyle: "plain",
  errorStyle: "tgi",
  plainTextRejections: true,
  streamHeaders: tgiStreamHeaders,
  jsonHeaders: tgiJsonHeaders,
  chatId: () => "",
  completionId: () => "",
  toolCallId: (_counter, index) => String(index),
};

const profiles: Readonly<Record<FakeUpstreamProfile, ProfileSpec>> = {
  openai: openAi,
  // OpenAI's own wire shape; what differs is the request validation (see `strict`).
  strict: { ...openAi, name: "strict", strict: true, rejectsStreamOptionsWithoutStream: true },
  "no-usage": { ...openAi, name: "no-usage", usage: "never", usageNull: "never" },
  vllm: {
    ...openAi,
    name: "vllm",
    serviceTier: false,
    systemFingerprint: null,
    roleChunkDelta: '{"role":"assistant","content":""}',
    toolRoleChunkDelta: '{"role":"assistant","content":""}',
    choice: "vllm",
    finish: "empty-content",
    usage: "every-chunk",
    usageStyle: "vllm",
    includeUsageDefault: true,
    toolHeaderArguments: false,
    errorStyle: "vllm",
    rejectsStreamOptionsWithoutStream: true,
    streamHeaders: { "content-type": "text/event-stream; charset=utf-8" },
    chatId: (counter) => `chatcmpl-${padded(counter, 16, 32)}`,
    completionId: (counter) => `cmpl-${padded(counter, 16, 32)}`,
    toolCallId: (counter, index) => `chatcmpl-tool-${padded(counter * 2 + index, 16, 32)}`,
  },
  ollama: {
    ...openAi,
    name: "ollama",
    serviceTier: false,
    systemFingerprint: "fp_ollama",
    roleChunkDelta: null,
    toolRoleChunkDelta: null,
    choice: "ollama",
    finish: "empty-content",
    usageStyle: "plain",
    wholeToolCalls: true,
    errorStyle: "ollama",
    streamHeaders: { "content-type": "text/event-stream" },
    // Ollama's ids are `chatcmpl-<rand.Intn(999)>`: short and not unique.
    chatId: (counter) => `chatcmpl-${counter % 1000}`,
    completionId: (counter) => `cmpl-${counter % 1000}`,
    toolCallId: (counter, index) => `call_${padded(counter * 2 + index, 36, 8)}`,
  },
  tgi,
  "tgi-legacy": {
    ...tgi,
    name: "tgi-legacy",
    doneEvent: null,
    chunkObject: "text_completion",
    completionObject: "text_completion",
    envelope: "openai",
    systemFingerprint: "1.4.3-native",
    finish: "empty-delta",
    // stream_options arrived in TGI 2.3.0; 1.4 never sends usage in a stream.
    usage: "never",
    usageNull: "never",
    stopReason: "eos_token",
  },
  llamacpp: {
    ...openAi,
    name: "llamacpp",
    envelope: "llamacpp",
    serviceTier: false,
    systemFingerprint: "b6097-9515c613",
    roleChunkDelta: '{"role":"assistant","content":null}',
    choice: "llamacpp",
    usage: "finish-chunk",
    usageNull: "never",
    usageStyle: "llamacpp",
    timings: true,
    errorStyle: "llamacpp",
    streamHeaders: { "content-type": "text/event-stream" },
    chatId: (counter) => `chatcmpl-${padded(counter, 36, 32)}`,
    completionId: (counter) => `cmpl-${padded(counter, 36, 32)}`,
    toolCallId: (counter, index) => `${padded(counter * 2 + index, 36, 32)}`,
  },
};

export function profileSpec(profile: FakeUpstreamProfile): ProfileSpec {
  return profiles[profile];
}

/** The usage object in the profile's key order. */
export function usageFields(style: UsageStyle, promptTokens: number, completionTokens: number): Record<string, unknown> {
  const totalTokens = promptTokens + completionTokens;
  switch (style) {
    case "openai":
      return {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: totalTokens,
        prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
        completion_tokens_details: {
          reasoning_tokens: 0,
          audio_tokens: 0,
          accepted_prediction_tokens: 0,
          rejected_prediction_tokens: 0,
        },
      };
    case "vllm":
      return { prompt_tokens: promptTokens, total_tokens: totalTokens, completion_tokens: completionTokens };
    case "llamacpp":
      return { completion_tokens: completionTokens, prompt_tokens: promptTokens, total_tokens: totalTokens };
    case "plain":
      return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: totalTokens };
  }
}

/** llama.cpp's `timings`, derived from the token counts so they stay deterministic. */
export function timingsFields(promptTokens: number, completionTokens: number): Record<string, number> {
  return {
    cache_n: 0,
    prompt_n: promptTokens,
    prompt_ms: promptTokens * 0.5,
    prompt_per_token_ms: 0.5,
    prompt_per_second: 2000,
    predicted_n: completionTokens,
    predicted_ms: completionTokens * 10,
    predicted_per_token_ms: 10,
    predicted_per_second: 100,
  };
}

/** An error in OpenAI's terms, before a profile shapes it. */
export interface ErrorSpec {
  status: number;
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

const statusMessages: Readonly<Record<number, { message: string; type: string; code: string | null }>> = {
  400: { message: "Invalid request.", type: "invalid_request_error", code: null },
  401: { message: "Incorrect API key provided.", type: "invalid_request_error", code: "invalid_api_key" },
  403: { message: "Country, region, or territory not supported", type: "request_forbidden", code: "unsupported_country_region_territory" },
  404: { message: "The model does not exist or you do not have access to it.", type: "invalid_request_error", code: "model_not_found" },
  408: { message: "Request timed out.", type: "server_error", code: null },
  429: {
    message: "Rate limit reached for requests. Please try again in 1s.",
    type: "requests",
    code: "rate_limit_exceeded",
  },
  500: { message: "The server had an error while processing your request. Sorry about that!", type: "server_error", code: null },
  502: { message: "Bad gateway.", type: "server_error", code: null },
  503: { message: "The engine is currently overloaded, please try again later", type: "server_error", code: "server_is_overloaded" },
};

/** OpenAI's error for a status, as api.openai.com words it (wire-formats §5). */
export function errorForStatus(status: number): ErrorSpec {
  const known = statusMessages[status];
  if (known !== undefined) return { status, param: null, ...known };
  return {
    status,
    message: `The fake upstream answered HTTP ${status}.`,
    type: status >= 500 ? "server_error" : "invalid_request_error",
    param: null,
    code: null,
  };
}

function vllmType(status: number): string {
  if (status === 400) return "BadRequestError";
  if (status === 404) return "NotFoundError";
  if (status === 429) return "TooManyRequestsError";
  if (status === 503) return "ServiceUnavailableError";
  return status >= 500 ? "InternalServerError" : "BadRequestError";
}

function ollamaType(status: number): string {
  if (status === 400) return "invalid_request_error";
  if (status === 404) return "not_found_error";
  return "api_error";
}

function tgiType(status: number): string {
  if (status === 422 || status === 400) return "validation";
  if (status === 429) return "overloaded";
  return "generation";
}

function llamaCppType(status: number): string {
  if (status === 400) return "invalid_request_error";
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 501) return "not_supported_error";
  if (status === 503) return "unavailable_error";
  return "server_error";
}

/** The error body each server family sends (wire-formats §4, "Error shape"). */
export function renderErrorBody(style: ErrorStyle, error: ErrorSpec): string {
  switch (style) {
    case "openai":
      return JSON.stringify({ error: { message: error.message, type: error.type, param: error.param, code: error.code } });
    case "vllm":
      // vLLM >= 0.10.1 nests the error and puts the HTTP status, an integer, in `code`.
      return JSON.stringify({ error: { message: error.message, type: vllmType(error.status), param: error.param, code: error.status } });
    case "ollama":
      return JSON.stringify({ error: { message: error.message, type: ollamaType(error.status), param: null, code: null } });
    case "tgi":
      return JSON.stringify({ error: error.message, error_type: tgiType(error.status) });
    case "llamacpp":
      return JSON.stringify({ error: { code: error.status, message: error.message, type: llamaCppType(error.status) } });
  }
}

/** The error event a server sends inside a stream that has already started. */
export function renderStreamErrorData(style: ErrorStyle): string {
  const message = "The server had an error while processing your request. Sorry about that!";
  switch (style) {
    case "tgi":
      return JSON.stringify({ error: { message: `Request failed during generation: ${message}`, http_status_code: 422 } });
    case "llamacpp":
      return JSON.stringify({ error: { code: 500, message, type: "server_error" } });
    case "vllm":
      return JSON.stringify({ error: { message, type: "InternalServerError", param: null, code: 500 } });
    case "ollama":
      return JSON.stringify({ error: { message, type: "api_error", param: null, code: null } });
    case "openai":
      return JSON.stringify({ error: { message, type: "server_error", param: null, code: null } });
  }
}

/** The 401 each family sends for a missing or wrong key. */
export function renderUnauthorized(spec: ProfileSpec, keyWasSent: boolean): string {
  if (spec.errorStyle === "vllm") return '{"error":"Unauthorized"}';
  if (spec.errorStyle === "tgi") return JSON.stringify({ error: "Invalid credentials in Authorization header" });
  if (spec.errorStyle === "llamacpp") return JSON.stringify({ error: { code: 401, message: "Invalid API Key", type: "authentication_error" } });
  const error: ErrorSpec = keyWasSent
    ? {
        status: 401,
        message:
          "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        type: "invalid_request_error",
        param: null,
        code: "invalid_api_key",
      }
    : {
        status: 401,
        message:
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        type: "invalid_request_error",
        param: null,
        code: null,
      };
  return renderErrorBody(spec.errorStyle, error);
}

/** A model the fake upstream lists. */
export interface FakeModel {
  id: string;
  /** Unix seconds; default 1700000000. */
  created?: number;
  /** Default: what the profile's server reports (`openai`, `vllm`, `library`, the model id, `llamacpp`). */
  ownedBy?: string;
}

/** `GET /v1/models`, as each family shapes it (wire-formats §4, `/v1/models`). */
export function renderModels(spec: ProfileSpec, models: readonly FakeModel[]): string {
  const rows = models.map((model) => modelRow(spec, model));
  if (spec.name === "ollama") {
    // Ollama answers `"data": null` when no model is installed (middleware/openai_test.go).
    return JSON.stringify({ object: "list", data: rows.length === 0 ? null : rows });
  }
  if (spec.name === "llamacpp") {
    return JSON.stringify({
      models: models.map((model) => ({ name: model.id, model: model.id, type: "model", capabilities: ["completion"] })),
      object: "list",
      data: rows,
    });
  }
  return JSON.stringify({ object: "list", data: rows });
}

export function modelRow(spec: ProfileSpec, model: FakeModel): Record<string, unknown> {
  const created = model.created ?? 1700000000;
  switch (spec.errorStyle) {
    case "vllm":
      return {
        id: model.id,
        object: "model",
        created,
        owned_by: model.ownedBy ?? "vllm",
        root: model.id,
        parent: null,
        max_model_len: 8192,
      };
    case "ollama":
      return { id: model.id, object: "model", created, owned_by: model.ownedBy ?? "library" };
    case "tgi":
      return { id: model.id, object: "model", created: model.created ?? 0, owned_by: model.ownedBy ?? model.id };
    case "llamacpp":
      return { id: model.id, object: "model", created, owned_by: model.ownedBy ?? "llamacpp", meta: { n_ctx_train: 8192 } };
    case "openai":
      return { id: model.id, object: "model", created, owned_by: model.ownedBy ?? "openai" };
  }
}
