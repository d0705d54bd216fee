import { describe, expect, it } from "vitest";
import type { ProviderResponse } from "../provider/provider.js";
import { answerText } from "./answer-text.js";

function response(text: string | undefined, body: Record<string, unknown>): ProviderResponse {
  return { status: 200, headers: {}, body, usage: null, ...(text === undefined ? {} : { text }) };
}

describe("answerText", () => {
  it("keeps the upstream's own text, renaming only its model", () => {
    const text = '{"id":"c1","object":"chat.completion","created":1,"model":"llama-3","choices":[],"x_vendor":{"a":1.50}}';
    expect(answerText(response(text, JSON.parse(text) as Record<string, unknown>), "alice:vllm/llama-3")).toBe(
      '{"id":"c1","object":"chat.completion","created":1,"model":"alice:vllm/llama-3","choices":[],"x_vendor":{"a":1.50}}',
    );
  });

  it("renames a model written with a space after the colon (Python servers)", () => {
    const text = '{"id": "c1", "model": "llama-3", "choices": []}';
    expect(answerText(response(text, JSON.parse(text) as Record<string, unknown>), "a:b/c")).toBe('{"id": "c1", "model":"a:b/c", "choices": []}');
  });

  it("never renames generated text that quotes a model key", () => {
    const body = { model: "m", choices: [{ message: { content: 'say "model":"m"' } }] };
    const text = JSON.stringify({ choices: body.choices, model: "m" });
    const answer = JSON.parse(answerText(response(text, body), "a:b/m")) as typeof body;
    expect(answer.model).toBe("a:b/m");
    expect(answer.choices[0]!.message.content).toBe('say "model":"m"');
  });

  it("serializes the parsed body when there is no text, or no model to rename in it", () => {
    expect(JSON.parse(answerText(response(undefined, { id: "c1", model: "m" }), "a:b/m"))).toEqual({ id: "c1", model: "a:b/m" });
    expect(JSON.parse(answerText(response('{"id":"c1"}', { id: "c1" }), "a:b/m"))).toEqual({ id: "c1", model: "a:b/m" });
    // Escaped differently from how JSON.stringify writes it: not found, so serialized.
    const escaped = '{"model":"a\\/b"}';
    expect(JSON.parse(answerText(response(escaped, { model: "a/b" }), "x:y/z"))).toEqual({ model: "x:y/z" });
  });
});
