import type { ProviderStreamBatch } from "../provider/provider.js";
import { readProviderStream } from "./read-provider-stream.js";

/**
 * A whole answer as a stream, for a server that ignores `stream: true` and answers with JSON (a
 * proxy that buffers, a server without streaming): the client asked for a stream and gets one,
 * and the gateway meters it as any other. Null when `answer` is not a chat or legacy completion.
 *
 * The stream is what the server would have sent in one piece: a chunk with each choice's whole
 * message as its delta (tool calls given their `index`, as deltas carry it), a usage-only chunk
 * when the answer reports usage (the gateway strips it unless the client asked for usage), and
 * `[DONE]`. Fields the gateway does not know (a vendor's extensions, logprobs, content-filter
 * results) are kept where they were.
 */
export function answerAsStream(answer: Record<string, unknown>): AsyncGenerator<ProviderStreamBatch, unknown, undefined> | null {
  const text = answerAsEvents(answer);
  return text === null ? null : readProviderStream(oneChunk(Buffer.from(text)));
}

/** The SSE text of `answerAsStream`, `[DONE]` included; null for anything but a completion. */
export function answerAsEvents(answer: Record<string, unknown>): string | null {
  const { id, object, created, model, choices, usage, ...rest } = answer;
  if (!Array.isArray(choices) || !choices.every(isObject)) return null;
  const chat = object === "chat.completion" || choices.some((choice) => isObject(choice.message));
  if (!chat && !choices.every((choice) => typeof choice.text === "string")) return null;
  const chunkObject = chat ? "chat.completion.chunk" : "text_completion";
  const chunk = { id, object: chunkObject, created, model, ...rest, choices: chat ? choices.map(chatChoiceDelta) : choices };
  let text = `data: ${JSON.stringify(chunk)}\n\n`;
  if (isObject(usage)) {
    text += `data: ${JSON.stringify({ id, object: chunkObject, created, model, choices: [], usage })}\n\n`;
  }
  return `${text}data: [DONE]\n\n`;
}

/** A chat choice with its message as a delta. */
function chatChoiceDelta(choice: Record<string, unknown>, position: number): Record<string, unknown> {
  const { message, index, ...rest } = choice;
  const delta: Record<string, unknown> = isObject(message) ? { ...message } : {};
  if (Array.isArray(delta.tool_calls)) {
    delta.tool_calls = delta.tool_calls.map((call: unknown, callIndex) => (isObject(call) ? { index: callIndex, ...call } : call));
  }
  return { index: typeof index === "number" ? index : position, delta, ...rest };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

async function* oneChunk(chunk: Uint8Array): AsyncGenerator<Uint8Array> {
  yield chunk;
}
