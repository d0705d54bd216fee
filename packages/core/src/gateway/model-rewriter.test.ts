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

describe("modelRewriter over a batch of events", () => {
  const event = (payload: string) => `data: ${payload}\n\n`;

  it("rewrites every event of the batch in one call", () => {
    const rewrite = modelRewriter("alice:vllm/llama");
    const batch = [1, 2, 3].map((index) => event(`{"id":"c${index}","model":"llama-3","choices":[{"delta":{"content":"${index}"}}]}`)).join("");
    expect(rewrite(batch)).toBe(batch.replaceAll('"model":"llama-3"', '"model":"alice:vllm/llama"'));
  });

  it("rewrites Azure's empty model and the named one in the same batch", () => {
    const rewrite = modelRewriter("alice:azure/gpt-4o");
    const batch = event('{"choices":[],"model":"","prompt_filter_results":[]}') + event('{"choices":[{"delta":{"content":"Hi"}}],"model":"gpt-4o-2024-08-06"}');
    expect(rewrite(batch)).toBe(
      event('{"choices":[],"model":"alice:azure/gpt-4o","prompt_filter_results":[]}') +
        event('{"choices":[{"delta":{"content":"Hi"}}],"model":"alice:azure/gpt-4o"}'),
    );
  });

  it("never touches a model key inside generated text, or another model's name", () => {
    const rewrite = modelRewriter("a:b/up");
    const batch = event('{"model":"up","choices":[{"delta":{"content":"say \\"model\\":\\"up\\" and \\"model\\":\\"\\""}}]}') + event('{"model":"other"}');
    expect(rewrite(batch)).toBe(
      event('{"model":"a:b/up","choices":[{"delta":{"content":"say \\"model\\":\\"up\\" and \\"model\\":\\"\\""}}]}') + event('{"model":"other"}'),
    );
  });

  it("does not mistake a longer name that starts with the upstream's for it", () => {
    const rewrite = modelRewriter("a:b/up");
    expect(rewrite(event('{"model":"up"}') + event('{"model":"upper"}'))).toBe(event('{"model":"a:b/up"}') + event('{"model":"upper"}'));
  });
});

describe("modelRewriter with names that mean something to a pattern or a replacement", () => {
  it("treats every character of the upstream's name and of the model id literally", () => {
    const rewrite = modelRewriter("a:b/$&-$1-$$");
    const name = '"model":"we.ird+(name)?[x]{2}|$^\\\\"';
    expect(rewrite(`data: {${name}}\n\ndata: {"model":"weXird+(name)?[x]{2}|$^\\\\"}\n\n`)).toBe(
      `data: {"model":"a:b/$&-$1-$$"}\n\ndata: {"model":"weXird+(name)?[x]{2}|$^\\\\"}\n\n`,
    );
  });

  it("keeps learning until a text names the model, rewriting empty names meanwhile", () => {
    const rewrite = modelRewriter("a:b/c");
    expect(rewrite('data: {"model":""}\n\n')).toBe('data: {"model":"a:b/c"}\n\n');
    expect(rewrite('data: {"choices":[]}\n\n')).toBe('data: {"choices":[]}\n\n');
    expect(rewrite('data: {"model":"up"}\n\ndata: {"model":""}\n\n')).toBe('data: {"model":"a:b/c"}\n\ndata: {"model":"a:b/c"}\n\n');
  });
});
