import { afterEach, describe, expect, it, vi } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import { hasOutputDelta, outputDeltaText, readStreamError, readUsage } from "./stream-usage.js";

afterEach(() => {
  vi.restoreAllMocks();
});

// Payloads below are copied from the captures in testing/__fixtures__/sse and from the shapes
// documented in shared/reference/wire-formats.md §2 and §4.
const openAiContentChunk =
  '{"id":"chatcmpl-D8Z5oo6uDh67AD85p73ksdT1KxhE0","object":"chat.completion.chunk","created":1770933892,"model":"gpt-4.1-nano-2025-04-14","service_tier":"default","system_fingerprint":"fp_de604bd877","choices":[{"index":0,"delta":{"content":"Holiday"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"dTh"}';
const openAiUsageChunk =
  '{"id":"chatcmpl-D8Z5oo6uDh67AD85p73ksdT1KxhE0","object":"chat.completion.chunk","created":1770933892,"model":"gpt-4.1-nano-2025-04-14","service_tier":"default","system_fingerprint":"fp_de604bd877","choices":[],"usage":{"prompt_tokens":16,"completion_tokens":300,"total_tokens":316,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"h9RiQLL"}';
const azureUsageChunk =
  '{"choices":[],"created":1762317021,"id":"chatcmpl-CYPS1lijGoK8gd9lYzY3r9Sx50nbt","model":"gpt-5-nano-2025-08-07","obfuscation":"DjqQ9RbEQMJ3PX","object":"chat.completion.chunk","system_fingerprint":null,"usage":{"completion_tokens":78,"completion_tokens_details":{"accepted_prediction_tokens":0,"audio_tokens":0,"reasoning_tokens":64,"rejected_prediction_tokens":0},"prompt_tokens":15,"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":0},"total_tokens":93}}';
const azurePreamble =
  '{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":false,"detected":false},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]}';
const azureFinishChunk =
  '{"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1762317021,"id":"chatcmpl-CYPS1lijGoK8gd9lYzY3r9Sx50nbt","model":"gpt-5-nano-2025-08-07","obfuscation":"Zarov0xJhP","object":"chat.completion.chunk","system_fingerprint":null,"usage":null}';
const openAiToolCallsUsageChunk =
  '{"id":"chatcmpl-ABfwAwrNePHUgBBezonVC6MX3zd63","object":"chat.completion.chunk","created":1727346178,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_5050236cbd","choices":[],"usage":{"prompt_tokens":149,"completion_tokens":60,"total_tokens":209,"completion_tokens_details":{"reasoning_tokens":0}}}';
const llamaCppFinishChunk =
  '{"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1754500000,"id":"chatcmpl-x","model":"gpt-3.5-turbo","system_fingerprint":"b6097-9515c613","object":"chat.completion.chunk","usage":{"completion_tokens":12,"prompt_tokens":80,"total_tokens":92},"timings":{"prompt_n":80,"predicted_n":12}}';
const tgiChunk =
  '{"object":"chat.completion.chunk","id":"","created":1742565776,"model":"meta-llama/Llama-3.1-8B-Instruct","system_fingerprint":"3.2.1-native","choices":[{"index":0,"delta":{"role":"assistant","content":"Deep"},"logprobs":null,"finish_reason":null}],"usage":null}';

describe("readUsage", () => {
  it("reads OpenAI's include_usage trailer as a usage-only event", () => {
    expect(readUsage(openAiUsageChunk)).toEqual({
      usage: { inputTokens: 16, outputTokens: 300, cachedInputTokens: 0, source: "upstream" },
      usageOnly: true,
    });
  });

  it("reads Azure's usage trailer, whose keys come in alphabetical order", () => {
    expect(readUsage(azureUsageChunk)).toEqual({
      usage: { inputTokens: 15, outputTokens: 78, cachedInputTokens: 0, source: "upstream" },
      usageOnly: true,
    });
  });

  it("leaves out cached tokens when the upstream does not report them", () => {
    expect(readUsage(openAiToolCallsUsageChunk)).toEqual({
      usage: { inputTokens: 149, outputTokens: 60, source: "upstream" },
      usageOnly: true,
    });
  });

  it("reports cached prompt tokens", () => {
    const data = '{"choices":[],"usage":{"prompt_tokens":2000,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":1920}}}';
    expect(readUsage(data)?.usage.cachedInputTokens).toBe(1920);
  });

  it("finds usage inside llama.cpp's finish chunk, which still carries a choice", () => {
    expect(readUsage(llamaCppFinishChunk)).toEqual({
      usage: { inputTokens: 80, outputTokens: 12, source: "upstream" },
      usageOnly: false,
    });
  });

  it("counts a payload without choices as usage-only", () => {
    expect(readUsage('{"usage":{"prompt_tokens":1,"completion_tokens":2}}')?.usageOnly).toBe(true);
  });

  it("accepts the whitespace Python servers put around the colon", () => {
    expect(readUsage('{"choices": [], "usage" : {"prompt_tokens": 3, "completion_tokens": 4}}')?.usage).toEqual({
      inputTokens: 3,
      outputTokens: 4,
      source: "upstream",
    });
  });

  it("returns null for `usage: null`, on OpenAI and TGI chunks, without parsing them", () => {
    const parse = vi.spyOn(JSON, "parse");
    expect(readUsage(openAiContentChunk)).toBeNull();
    expect(readUsage(tgiChunk)).toBeNull();
    expect(readUsage(azurePreamble)).toBeNull();
    expect(readUsage('{"choices":[],"usage":\nnull}')).toBeNull();
    expect(parse).not.toHaveBeenCalled();
  });

  it("does not parse a chunk whose text merely mentions usage", () => {
    const parse = vi.spyOn(JSON, "parse");
    expect(readUsage('{"choices":[{"delta":{"content":"the \\"usage\\":{ field"}}]}')).toBeNull();
    expect(parse).not.toHaveBeenCalled();
  });

  it("returns null for malformed JSON", () => {
    expect(readUsage('{"choices":[],"usage":{"prompt_tokens":1,"completion_tok')).toBeNull();
  });

  it("returns null when the token counts are not numbers", () => {
    expect(readUsage('{"usage":{"prompt_tokens":"16","completion_tokens":300}}')).toBeNull();
    expect(readUsage('{"usage":{"prompt_tokens":16}}')).toBeNull();
    expect(readUsage('{"usage":{"prompt_tokens":16,"completion_tokens":-1}}')).toBeNull();
  });

  it("ignores a malformed optional detail instead of discarding the usage", () => {
    expect(readUsage('{"usage":{"prompt_tokens":1,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":"x"}}}')).toEqual({
      usage: { inputTokens: 1, outputTokens: 2, source: "upstream" },
      usageOnly: true,
    });
  });

  it("reads usage only at the top level", () => {
    expect(readUsage('{"choices":[{"delta":{},"usage":{"prompt_tokens":1,"completion_tokens":2}}]}')).toBeNull();
    expect(readUsage('{"x":{"usage":{"prompt_tokens":1,"completion_tokens":2}},"usage":null}')).toBeNull();
    expect(readUsage('{"x":["{\\"usage\\":{"],"usage":{"prompt_tokens":1,"completion_tokens":2}}')?.usage.inputTokens).toBe(1);
  });

  it("takes the last of a repeated usage member, as JSON.parse does", () => {
    expect(readUsage('{"usage":{"prompt_tokens":1,"completion_tokens":2},"usage":null}')).toBeNull();
    expect(readUsage('{"usage":null,"usage":{"prompt_tokens":3,"completion_tokens":4}}')?.usage.inputTokens).toBe(3);
  });

  it("returns null for a payload that is not one complete object", () => {
    expect(readUsage('[{"usage":{"prompt_tokens":1,"completion_tokens":2}}]')).toBeNull();
    expect(readUsage('{"usage":{"prompt_tokens":1,"completion_tokens":2}}}')).toBeNull();
    expect(readUsage('{"usage":{"prompt_tokens":1,"completion_tokens":2}} x')).toBeNull();
    expect(readUsage('{"usage":{"prompt_tokens":1,"completion_tokens":2},"x":"unterminated}')).toBeNull();
  });

});

describe("readStreamError", () => {
  function expectUpstreamError(data: string, message: string, status = 502): void {
    const error = readStreamError(data);
    expect(GatewayError.is(error)).toBe(true);
    expect(error?.code).toBe(status === 502 ? "upstream_error" : "invalid_request");
    expect(error?.status).toBe(status);
    expect(error?.message).toBe(message);
    expect(error?.cause).toEqual(JSON.parse(data));
  }

  it("reads OpenAI's error shape and keeps the upstream's message", () => {
    expectUpstreamError(
      '{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}',
      "The server had an error while processing your request. Sorry about that!",
    );
  });

  it("reads TGI's in-stream error with an HTTP status code", () => {
    expectUpstreamError(
      '{"error":{"message":"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096","http_status_code":422}}',
      "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096",
      400,
    );
  });

  it("reads TGI's native error, whose `error` is the message itself", () => {
    expectUpstreamError('{"error":"Request failed during generation: Server error: CUDA out of memory","error_type":"generation"}', "Request failed during generation: Server error: CUDA out of memory");
  });

  it("reads vLLM's flat error from before v0.10.1", () => {
    expectUpstreamError(
      '{"object":"error","message":"This model\'s maximum context length is 4096 tokens.","type":"BadRequestError","param":null,"code":400}',
      "This model's maximum context length is 4096 tokens.",
      400,
    );
  });

  it("finds the error key wherever the upstream serialized it, and with whitespace", () => {
    expectUpstreamError('{"id": "x", "error": {"message": "boom"}}', "boom");
  });

  it("says so when the upstream error has no message", () => {
    expect(readStreamError('{"error":{"code":500}}')?.message).toBe(
      "The upstream reported an error in the stream without a message.",
    );
    expect(readStreamError('{"error":""}')?.message).toBe("The upstream reported an error in the stream without a message.");
  });

  it("returns null for ordinary chunks without parsing them", () => {
    const parse = vi.spyOn(JSON, "parse");
    for (const data of [openAiContentChunk, openAiUsageChunk, azurePreamble, azureFinishChunk, tgiChunk, llamaCppFinishChunk]) {
      expect(readStreamError(data)).toBeNull();
    }
    expect(parse).not.toHaveBeenCalled();
  });

  it("ignores an error nested below the top level (Azure reports a failed filter inside a choice)", () => {
    const data =
      '{"choices":[{"content_filter_results":{"error":{"code":"content_filter_error","message":"The contents are not filtered"}},"delta":{"content":"x"},"index":0}],"id":"chatcmpl-1","object":"chat.completion.chunk"}';
    expect(readStreamError(data)).toBeNull();
  });

  it("returns null for `error: null`, a finish reason named error, and malformed JSON", () => {
    expect(readStreamError('{"choices":[],"error":null}')).toBeNull();
    expect(readStreamError('{"choices":[{"delta":{},"finish_reason":"error"}]}')).toBeNull();
    expect(readStreamError('{"error":{"message":"cut')).toBeNull();
  });

  it("does not mistake escaped text for an error key", () => {
    expect(readStreamError('{"choices":[{"delta":{"content":"{\\"error\\": 1}"}}]}')).toBeNull();
  });
});

describe("hasOutputDelta", () => {
  it("counts a non-empty content delta", () => {
    expect(hasOutputDelta(openAiContentChunk)).toBe(true);
    expect(hasOutputDelta(tgiChunk)).toBe(true);
  });

  it("does not count an empty or null content, a role-only opener, a finish chunk or a usage trailer", () => {
    expect(hasOutputDelta('{"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null}}],"usage":null}')).toBe(false);
    expect(hasOutputDelta('{"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}')).toBe(false);
    expect(hasOutputDelta(azureFinishChunk)).toBe(false);
    expect(hasOutputDelta(azurePreamble)).toBe(false);
    expect(hasOutputDelta(openAiUsageChunk)).toBe(false);
    expect(hasOutputDelta(llamaCppFinishChunk)).toBe(false);
  });

  it("counts tool-call argument fragments, but not the empty opener", () => {
    expect(hasOutputDelta('{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"ci"}}]}}]}')).toBe(true);
    expect(
      hasOutputDelta(
        '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"GetWeatherArgs","arguments":""}}]}}]}',
      ),
    ).toBe(false);
  });

  it("counts Ollama's whole tool call next to its empty content", () => {
    expect(
      hasOutputDelta(
        '{"choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"call_wteop8bt","index":0,"type":"function","function":{"name":"run_command","arguments":"{\\"command\\":\\"ls\\"}"}}]},"finish_reason":null}]}',
      ),
    ).toBe(true);
  });

  it("counts refusals and reasoning", () => {
    expect(hasOutputDelta('{"choices":[{"delta":{"content":null,"refusal":"I can\'t"}}]}')).toBe(true);
    expect(hasOutputDelta('{"choices":[{"delta":{"reasoning_content":"Let me think"}}]}')).toBe(true);
    expect(hasOutputDelta('{"choices":[{"delta":{"reasoning":"Hmm"}}]}')).toBe(true);
  });

  it("does not mistake Azure's content_filter_results for content", () => {
    expect(hasOutputDelta('{"choices":[{"content_filter_results":{"hate":{"filtered":false}},"delta":{},"index":0}]}')).toBe(false);
  });

  it("accepts whitespace around the colon", () => {
    expect(hasOutputDelta('{"choices": [{"delta": {"content" : "hi"}}]}')).toBe(true);
    expect(hasOutputDelta('{"choices": [{"delta": {"content": ""}}]}')).toBe(false);
  });

  it("counts a delta with escaped text", () => {
    expect(hasOutputDelta('{"choices":[{"delta":{"content":"\\n\\n"}}]}')).toBe(true);
    expect(hasOutputDelta('{"choices":[{"delta":{"content":"\\""}}]}')).toBe(true);
  });
});

describe("readStreamError keeps a client error a client error", () => {
  it("keeps TGI's http_status_code 422 as a 400 the gateway will not retry", () => {
    const error = readStreamError('{"error":{"message":"Input validation error: max_new_tokens","http_status_code":422}}');
    expect(error?.status).toBe(400);
    expect(error?.retryable).toBe(false);
    expect(error?.message).toBe("Input validation error: max_new_tokens");
  });

  it("reads vLLM's integer code, nested or flat", () => {
    expect(readStreamError('{"error":{"message":"bad","type":"BadRequestError","code":400}}')?.status).toBe(400);
    expect(readStreamError('{"object":"error","message":"bad","type":"BadRequestError","code":404}')?.status).toBe(404);
  });

  it("keeps a rate limit a retryable 429 and anything else an upstream failure", () => {
    expect(readStreamError('{"error":{"message":"slow down","http_status_code":429}}')?.status).toBe(429);
    expect(readStreamError('{"error":{"message":"boom","code":500}}')?.status).toBe(502);
    expect(readStreamError('{"error":{"message":"boom","code":"server_error"}}')?.status).toBe(502);
  });
});

describe("hasOutputDelta on the legacy completions API", () => {
  it("counts a non-empty text and ignores an empty one", () => {
    expect(hasOutputDelta('{"object":"text_completion","choices":[{"index":0,"text":" world"}]}')).toBe(true);
    expect(hasOutputDelta('{"object":"text_completion","choices":[{"index":0,"text":""}]}')).toBe(false);
  });
});

describe("outputDeltaText", () => {
  it("is the generated text of a delta: content, reasoning, a refusal, tool-call arguments, legacy text", () => {
    expect(outputDeltaText('{"choices":[{"delta":{"content":"Hello"}}]}')).toBe("Hello");
    expect(outputDeltaText('{"choices":[{"delta":{"reasoning_content":"Think"}}]}')).toBe("Think");
    expect(outputDeltaText('{"choices":[{"delta":{"refusal":"No"}}]}')).toBe("No");
    expect(outputDeltaText('{"choices":[{"text":"legacy","index":0}]}')).toBe("legacy");
    // Ollama sends a whole tool call in one event: all of its arguments are output.
    const call = '{"choices":[{"delta":{"content":"","tool_calls":[{"function":{"name":"f","arguments":"{\\"city\\": \\"Paris\\"}"}}]}}]}';
    expect(outputDeltaText(call)).toBe('{"city": "Paris"}');
  });

  it("decodes escapes, and joins several values of one event", () => {
    expect(outputDeltaText('{"choices":[{"delta":{"content":"a\\nb \\u00e9 \\"q\\""}}]}')).toBe('a\nb é "q"');
    expect(outputDeltaText('{"choices":[{"delta":{"content":"x"}},{"delta":{"content":"y"}}]}')).toBe("xy");
  });

  it("is empty for what is not output: empty strings, nulls, usage-only and role chunks", () => {
    expect(outputDeltaText('{"choices":[{"delta":{"role":"assistant","content":""}}]}')).toBe("");
    expect(outputDeltaText('{"choices":[{"delta":{"content":null}}]}')).toBe("");
    expect(outputDeltaText('{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}')).toBe("");
  });

  it("agrees with hasOutputDelta on which events carry output", () => {
    for (const data of ['{"choices":[{"delta":{"content":"Hi"}}]}', '{"choices":[{"delta":{"content":""}}]}', '{"choices":[{"delta":{"arguments":"{"}}]}', "{}"]) {
      expect(outputDeltaText(data) !== "").toBe(hasOutputDelta(data));
    }
  });
});
