import { describe, expect, it } from "vitest";
import { modelRewriter } from "./model-rewriter.js";

describe("modelRewriter", () => {
  it("replaces the upstream's model name with the gateway's model id", () => {
    const rewrite = modelRewriter("alice:vllm/llama");
    expect(rewrite('{"id":"x","model":"meta-llama/Llama-3-8B","choices":[]}')).toBe('{"id":"x","model":"alice:vllm/llama","choices":[]}');
  });

  it("learns the name from the first chunk that has one, past Azure's empty-model preamble", () => {
    const rewrite = modelRewriter("alice:azure/gpt-4o");
    expect(rewrite('{"choices":[],"model":"","prompt_filter_results":[]}')).toBe('{"choices":[],"model":"alice:azure/gpt-4o","prompt_filter_results":[]}');
    expect(rewrite('{"choices":[{"delta":{"content":"Hi"}}],"model":"gpt-4o-2024-08-06"}')).toBe(
      '{"choices":[{"delta":{"content":"Hi"}}],"model":"alice:azure/gpt-4o"}',
    );
    expect(rewrite('{"choices":[{"delta":{"content":"!"}}],"model":"gpt-4o-2024-08-06"}')).toContain('"model":"alice:azure/gpt-4o"');
    // Annotation chunks after the finish chunk carry an empty model again.
    expect(rewrite('{"id":"","model":"","choices":[{"content_filter_results":{}}]}')).toContain('"model":"alice:azure/gpt-4o"');
  });

  it("leaves chunks without a model, or spelling it differently, unchanged", () => {
    const rewrite = modelRewriter("a:b/c");
    rewrite('{"model":"up"}');
    expect(rewrite('{"choices":[]}')).toBe('{"choices":[]}');
    expect(rewrite('{"model": "up"}')).toBe('{"model": "up"}');
  });

  it("handles names with escaped characters", () => {
    const rewrite = modelRewriter("a:b/c");
    expect(rewrite('{"model":"we\\"ird"}')).toBe('{"model":"a:b/c"}');
  });
});
