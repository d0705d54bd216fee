import { describe, expect, it } from "vitest";
import { carriesOutput } from "./request-meter.js";

describe("carriesOutput", () => {
  it("sees content, tool-call arguments, refusals and legacy text", () => {
    expect(carriesOutput('{"choices":[{"delta":{"content":"Hi"}}]}')).toBe(true);
    expect(carriesOutput('{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"ci"}}]}}]}')).toBe(true);
    expect(carriesOutput('{"choices":[{"delta":{"refusal":"No"}}]}')).toBe(true);
    expect(carriesOutput('{"choices":[{"text":" world"}]}')).toBe(true);
  });

  it("ignores role-only, empty and finish chunks", () => {
    expect(carriesOutput('{"choices":[{"delta":{"role":"assistant","content":""}}]}')).toBe(false);
    expect(carriesOutput('{"choices":[{"delta":{},"finish_reason":"stop"}]}')).toBe(false);
    expect(carriesOutput('{"choices":[],"usage":{"prompt_tokens":1}}')).toBe(false);
  });
});
