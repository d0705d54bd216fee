import { describe, expect, it } from "vitest";
import { answerAsEvents, answerAsStream } from "./answer-as-stream.js";

const dataOf = (text: string) =>
  text
    .split("\n\n")
    .filter((event) => event.startsWith("data: "))
    .map((event) => event.slice("data: ".length));

describe("answerAsEvents", () => {
  it("turns a chat completion into a chunk per answer, a usage chunk and [DONE], keeping unknown fields", () => {
    const answer = {
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 7,
      model: "m",
      system_fingerprint: "fp",
      prompt_filter_results: [{ prompt_index: 0 }],
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: "{}" } }] },
          logprobs: null,
          finish_reason: "tool_calls",
          content_filter_results: {},
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
    };
    const data = dataOf(answerAsEvents(answer)!);
    expect(data.at(-1)).toBe("[DONE]");
    expect(JSON.parse(data[0]!)).toEqual({
      id: "chatcmpl-1",
      object: "chat.completion.chunk",
      created: 7,
      model: "m",
      system_fingerprint: "fp",
      prompt_filter_results: [{ prompt_index: 0 }],
      choices: [
        {
          index: 0,
          delta: { role: "assistant", content: null, tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "{}" } }] },
          logprobs: null,
          finish_reason: "tool_calls",
          content_filter_results: {},
        },
      ],
    });
    expect(JSON.parse(data[1]!)).toEqual({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 7, model: "m", choices: [], usage: answer.usage });
  });

  it("streams a legacy completion's choices as text_completion chunks, and sends no usage chunk without usage", () => {
    const data = dataOf(answerAsEvents({ id: "cmpl-1", object: "text_completion", choices: [{ index: 0, text: "Once", finish_reason: "stop" }] })!);
    expect(data).toHaveLength(2);
    expect(JSON.parse(data[0]!)).toEqual({ id: "cmpl-1", object: "text_completion", choices: [{ index: 0, text: "Once", finish_reason: "stop" }] });
  });

  it("answers null for JSON that is not a completion (an error object, a list)", () => {
    expect(answerAsEvents({ error: { message: "loading" } })).toBeNull();
    expect(answerAsEvents({ object: "list", data: [] })).toBeNull();
    expect(answerAsEvents({ choices: [{ index: 0 }] })).toBeNull();
    expect(answerAsEvents({ choices: ["x"] })).toBeNull();
  });
});

describe("answerAsStream", () => {
  it("reads as the gateway reads any stream: the usage chunk marked, and the end at [DONE]", async () => {
    const stream = answerAsStream({
      id: "c",
      object: "chat.completion",
      choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    })!;
    const events = [];
    for await (const batch of stream) events.push(...batch.events);
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({ usageOnly: true, usage: { inputTokens: 1, outputTokens: 1, source: "upstream" } });
  });
});
