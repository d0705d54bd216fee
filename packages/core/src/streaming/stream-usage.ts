/**
 * Cheap probes of chat-completion stream payloads: the usage they report, the errors they carry,
 * and whether they hold generated output.
 *
 * They sit on every stream, so each first looks for a key by substring search (`mayHoldStreamError`
 * searches a whole batch's text at once, `nextUsageObject` from where the reader asks) and parses
 * JSON only when a payload can hold what it looks for. A gateway forwards the upstream's bytes; parsing every chunk would cost
 * more than the rest of the gateway (STYLE.md §3).
 */
import { GatewayError } from "../errors/gateway-error.js";
import type { TokenUsage } from "../provider/provider.js";

export interface StreamUsage {
  usage: TokenUsage;
  /**
   * True when the payload carries no choices: OpenAI's `include_usage` trailer (`choices: []`),
   * which the gateway removes when the client did not ask for usage. False when usage rides on a
   * chunk with output (vLLM repeats it on every chunk, llama.cpp before Aug 2025 put it on the
   * finish chunk).
   */
  usageOnly: boolean;
}

const quote = 0x22;
const colon = 0x3a;
const openBrace = 0x7b;

/**
 * The usage an event reports, or null when it reports none.
 *
 * Parses only a payload where `"usage"` is followed by an object, so OpenAI's and TGI's
 * `"usage":null` on every chunk costs one substring search. Null as well for malformed JSON or
 * usage without numeric `prompt_tokens` and `completion_tokens`: metering then falls back to
 * counting, rather than charging a made-up number.
 */
export function readUsage(data: string): StreamUsage | null {
  if (!someValueStarts(data, usageKey, startsObject)) return null;
  const payload = parseObject(data);
  if (payload === null) return null;
  const usage = payload.usage;
  if (!isRecord(usage)) return null;
  const inputTokens = usage.prompt_tokens;
  const outputTokens = usage.completion_tokens;
  if (!isTokenCount(inputTokens) || !isTokenCount(outputTokens)) return null;
  const result: TokenUsage = { inputTokens, outputTokens, source: "upstream" };
  // Optional detail: a malformed one is dropped rather than costing the whole usage.
  const promptDetails = usage.prompt_tokens_details;
  if (isRecord(promptDetails) && isTokenCount(promptDetails.cached_tokens)) {
    result.cachedInputTokens = promptDetails.cached_tokens;
  }
  const choices = payload.choices;
  const usageOnly = choices === undefined || choices === null || (Array.isArray(choices) && choices.length === 0);
  return { usage: result, usageOnly };
}

/**
 * Whether any event of a batch's text may be an error event: its `"error"` key, found in one
 * search of the whole text. Only then are the events looked at one by one (`readStreamError`).
 */
export function mayHoldStreamError(text: string): boolean {
  return indexOfKey(text, errorKey, 0) !== -1;
}

/**
 * The index of the next `"usage"` key at or after `from` whose value is an object, or -1: the
 * events worth parsing for usage, in a batch's text. A regular expression, because V8 runs it
 * natively: OpenAI's `"usage":null` on every chunk is passed over without a step in script.
 */
export function nextUsageObject(text: string, from: number): number {
  usageObjectKey.lastIndex = from;
  return usageObjectKey.exec(text)?.index ?? -1;
}

/** `"usage"` as a key whose value is an object, with the whitespace JSON allows around the colon. */
const usageObjectKey = /"usage"[ \t\n\r]*:[ \t\n\r]*\{/g;

/**
 * The error an event carries in place of a chunk, as a GatewayError `upstream_error` keeping the
 * upstream's message, or null for an ordinary chunk. Once a stream has started, an upstream can
 * only report a failure this way (openai-python raises on any payload with a top-level `error`).
 *
 * Shapes recognized:
 * - OpenAI, Ollama, llama.cpp, vLLM >= 0.10.1: `{"error":{"message":...,"type":...}}`
 * - TGI in a stream: `{"error":{"message":...,"http_status_code":422}}`
 * - TGI native and the HF router: `{"error":"<message>","error_type":...}`
 * - vLLM < 0.10.1, flat: `{"object":"error","message":...,"type":...,"code":400}`
 *
 * The pre-check searches the whole payload for `"error"` rather than only its first bytes: every
 * server above puts it first, but the key's position is up to the upstream's serializer, and the
 * whole search costs about 70 ns on a typical chunk. A nested `"error"` (Azure reports a failed
 * content filter inside `content_filter_results`) costs a parse and is then correctly ignored.
 * The parsed upstream payload is kept as the error's `cause`, for adapters that want its type or
 * status.
 */
export function readStreamError(data: string): GatewayError | null {
  if (indexOfKey(data, errorKey, 0) === -1) return null;
  const payload = parseObject(data);
  if (payload === null) return null;
  const message = readErrorMessage(payload);
  if (message === null) return null;
  // A client error reported in the stream (TGI's `http_status_code: 422` for a bad request) must
  // stay a 4xx: as a 502 the gateway would retry a request that can never succeed.
  const status = readErrorStatus(payload);
  if (status === 429) return new GatewayError("rate_limit_exceeded", message, { cause: payload });
  if (status !== null && status >= 400 && status < 500) {
    return new GatewayError("invalid_request", message, { status: status === 422 ? 400 : status, cause: payload });
  }
  return new GatewayError("upstream_error", message, { cause: payload });
}

/** The HTTP status an error event names: TGI's `http_status_code`, or vLLM's integer `code`. */
function readErrorStatus(payload: Record<string, unknown>): number | null {
  const error = isRecord(payload.error) ? payload.error : payload;
  for (const candidate of [error.http_status_code, error.code, payload.code]) {
    if (typeof candidate === "number" && Number.isInteger(candidate) && candidate >= 400 && candidate < 600) return candidate;
  }
  return null;
}

const fallbackErrorMessage = "The upstream reported an error in the stream without a message.";

function readErrorMessage(payload: Record<string, unknown>): string | null {
  const error = payload.error;
  if (typeof error === "string") return error === "" ? fallbackErrorMessage : error;
  if (isRecord(error)) {
    return typeof error.message === "string" && error.message !== "" ? error.message : fallbackErrorMessage;
  }
  if (error !== undefined && error !== null && error !== false) return fallbackErrorMessage;
  if (payload.object === "error") {
    return typeof payload.message === "string" && payload.message !== "" ? payload.message : fallbackErrorMessage;
  }
  return null;
}

/**
 * The delta keys that hold generated output, all billed as output tokens: text, a refusal,
 * reasoning (`reasoning_content` from llama.cpp and vLLM, `reasoning` from Ollama), tool-call
 * arguments, and `text`, the legacy completions API's output. Within a chat-completion chunk these names only occur as delta keys.
 */
const outputKeys = ["content", "arguments", "refusal", "reasoning_content", "reasoning", "text"].map(jsonKey);

/**
 * Whether an event carries a non-empty output delta, found by substring search alone: counted
 * per stream, it lets the gateway estimate output tokens when the upstream reports no usage,
 * without parsing any chunk. Empty strings do not count: OpenAI opens with `"content":""`,
 * Ollama repeats it on every tool-call chunk, and tool calls open with `"arguments":""`.
 */
export function hasOutputDelta(data: string): boolean {
  for (const key of outputKeys) {
    if (someValueStarts(data, key, startsNonEmptyString)) return true;
  }
  return false;
}

/**
 * The generated text an event carries: the values of its output delta keys (as `hasOutputDelta`
 * finds them), decoded and joined; "" when it carries none. What the gateway counts with the
 * tokenizer when an upstream reports no usage: one event may hold a whole tool call's arguments
 * (Ollama), where counting events would call it one token. Each value is found by substring
 * search and only its own string literal is parsed, not the chunk.
 */
export function outputDeltaText(data: string): string {
  let text = "";
  for (const key of outputKeys) {
    for (let keyIndex = indexOfKey(data, key, 0); keyIndex !== -1; keyIndex = indexOfKey(data, key, keyIndex + key.quoted.length)) {
      const colonIndex = skipWhitespace(data, keyIndex + key.quoted.length);
      if (data.charCodeAt(colonIndex) !== colon) continue;
      const valueStart = skipWhitespace(data, colonIndex + 1);
      if (!startsNonEmptyString(data, valueStart)) continue;
      const valueEnd = stringLiteralEnd(data, valueStart);
      if (valueEnd === -1) continue;
      try {
        text += JSON.parse(data.slice(valueStart, valueEnd)) as string;
      } catch {
        // Not a well-formed string literal: nothing to count from it.
      }
    }
  }
  return text;
}

/** The index just past the JSON string literal that opens at `start` (a quote), or -1. */
function stringLiteralEnd(data: string, start: number): number {
  for (let index = start + 1; index < data.length; index++) {
    const code = data.charCodeAt(index);
    if (code === backslash) index++;
    else if (code === quote) return index + 1;
  }
  return -1;
}

const backslash = 0x5c;

/** A JSON key to search for: `"name"`, and the needle that finds it fast (see indexOfKey). */
interface JsonKey {
  quoted: string;
  tail: string;
}

function jsonKey(name: string): JsonKey {
  return { quoted: `"${name}"`, tail: `${name.slice(1)}"` };
}

const usageKey = jsonKey("usage");
const errorKey = jsonKey("error");

/**
 * The index of the next `"name"` at or after `from`, or -1. V8's indexOf scans for the needle's
 * first character, and in JSON a quote comes every few characters: searching for `sage"` and
 * then checking the two characters before it is 3-4 times faster than searching for `"usage"`
 * (about 60 ns against 230 ns on a 330-character OpenAI chunk, Node 24). Every probe runs on every
 * event, where the gateway's whole budget is a few microseconds.
 */
function indexOfKey(data: string, key: JsonKey, from: number): number {
  let tailIndex = data.indexOf(key.tail, from + 2);
  while (tailIndex !== -1) {
    const keyIndex = tailIndex - 2;
    if (data.startsWith(key.quoted, keyIndex)) return keyIndex;
    tailIndex = data.indexOf(key.tail, tailIndex + 1);
  }
  return -1;
}

/**
 * Whether some occurrence of `key` is a key (followed by a colon) whose value passes `accept`.
 * Tolerates JSON whitespace around the colon, which Python servers emit (`"usage": {`). A string
 * value containing the key cannot match: its quotes arrive escaped (`\"usage\"`).
 */
function someValueStarts(data: string, key: JsonKey, accept: (data: string, valueStart: number) => boolean): boolean {
  let keyIndex = indexOfKey(data, key, 0);
  while (keyIndex !== -1) {
    const afterKey = keyIndex + key.quoted.length;
    const colonIndex = skipWhitespace(data, afterKey);
    if (data.charCodeAt(colonIndex) === colon && accept(data, skipWhitespace(data, colonIndex + 1))) return true;
    keyIndex = indexOfKey(data, key, afterKey);
  }
  return false;
}

function skipWhitespace(data: string, index: number): number {
  let position = index;
  for (;;) {
    const code = data.charCodeAt(position);
    // JSON's whitespace: space, tab, line feed, carriage return.
    if (code !== 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) return position;
    position += 1;
  }
}

function startsObject(data: string, valueStart: number): boolean {
  return data.charCodeAt(valueStart) === openBrace;
}

function startsNonEmptyString(data: string, valueStart: number): boolean {
  return data.charCodeAt(valueStart) === quote && valueStart + 1 < data.length && data.charCodeAt(valueStart + 1) !== quote;
}

function parseObject(data: string): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  return isRecord(value) ? value : null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isTokenCount(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}
