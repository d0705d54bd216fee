import { describe, expect, it } from "vitest";
import { countMessageTokens, countTextTokens, preloadTokenizer } from "./count-tokens.js";

describe("countTextTokens", () => {
  it("counts a short text as a small positive integer (o200k_base: `hello` + ` world`)", async () => {
    const count = await countTextTokens("hello world");
    expect(Number.isInteger(count)).toBe(true);
    expect(count).toBe(2);
  });

  it("counts the empty string as 0", async () => {
    expect(await countTextTokens("")).toBe(0);
  });

  it("counts longer text as more tokens", async () => {
    const short = await countTextTokens("The quick brown fox.");
    const long = await countTextTokens("The quick brown fox jumps over the lazy dog, again and again.");
    expect(long).toBeGreaterThan(short);
  });

  it("counts special-token text as plain text instead of throwing", async () => {
    expect(await countTextTokens("<|endoftext|>")).toBeGreaterThan(1);
  });

  it("counts non-Latin text and emoji", async () => {
    expect(await countTextTokens("Hyvää päivää 🦊")).toBeGreaterThan(2);
  });
});

describe("countMessageTokens", () => {
  // 3 per message + role ("user": 1) + content ("hello world": 2) + 3 priming the reply.
  const oneUserMessage = 3 + 1 + 2 + 3;

  it("adds OpenAI's per-message framing and reply priming to the text", async () => {
    expect(await countMessageTokens([{ role: "user", content: "hello world" }])).toBe(oneUserMessage);
  });

  it("counts each message's framing", async () => {
    const two = await countMessageTokens([
      { role: "user", content: "hello world" },
      { role: "user", content: "hello world" },
    ]);
    expect(two).toBe(oneUserMessage + 3 + 1 + 2);
  });

  it("counts the text parts of array content and skips images", async () => {
    const parts = await countMessageTokens([
      {
        role: "user",
        content: [
          { type: "text", text: "hello world" },
          { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
        ],
      },
    ]);
    expect(parts).toBe(oneUserMessage);
  });

  it("counts a name as its tokens plus one", async () => {
    const named = await countMessageTokens([{ role: "user", name: "alice", content: "hello world" }]);
    expect(named).toBe(oneUserMessage + 1 + (await countTextTokens("alice")));
  });

  it("counts tool calls' names and arguments, and tool results", async () => {
    const argumentsText = '{"city":"Edinburgh","country":"GB","units":"c"}';
    const assistant = {
      role: "assistant",
      content: null,
      tool_calls: [{ id: "call_1", type: "function", function: { name: "GetWeatherArgs", arguments: argumentsText } }],
    };
    const withoutCall = await countMessageTokens([{ role: "assistant", content: null }]);
    const withCall = await countMessageTokens([assistant]);
    expect(withCall - withoutCall).toBe((await countTextTokens("GetWeatherArgs")) + (await countTextTokens(argumentsText)));
    const toolResult = await countMessageTokens([{ role: "tool", tool_call_id: "call_1", content: "12 degrees" }]);
    expect(toolResult).toBeGreaterThan(3 + 3);
  });

  it("counts 0 for anything that is not a list of messages, and skips junk entries", async () => {
    expect(await countMessageTokens(undefined)).toBe(0);
    expect(await countMessageTokens("hello")).toBe(0);
    expect(await countMessageTokens([])).toBe(0);
    expect(await countMessageTokens([null, 42, { role: "user", content: "hello world" }])).toBe(oneUserMessage);
  });
});

describe("preloadTokenizer", () => {
  it("loads the tokenizer ahead of the first count", async () => {
    await preloadTokenizer();
    expect(await countTextTokens("hello world")).toBe(2);
  });
});
