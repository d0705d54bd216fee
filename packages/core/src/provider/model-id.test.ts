import { describe, expect, it } from "vitest";
import { formatModelId, parseModelId } from "./model-id.js";

describe("model ids", () => {
  it("split into owner, provider name and upstream model", () => {
    expect(parseModelId("alice:vllm-llama/meta-llama-3-8b")).toEqual({
      owner: "alice",
      providerName: "vllm-llama",
      model: "meta-llama-3-8b",
    });
  });

  it("keep slashes and colons inside the upstream model name", () => {
    expect(parseModelId("bob:hf/meta-llama/Llama-3-8B")?.model).toBe("meta-llama/Llama-3-8B");
    expect(parseModelId("bob:ollama/llama3:latest")?.model).toBe("llama3:latest");
  });

  it("reject ids missing a part", () => {
    for (const id of ["gpt-4o", "alice:vllm", ":p/m", "alice:/m", "alice:p/", "a/b:c/d", ""]) {
      expect(parseModelId(id), id).toBeNull();
    }
  });

  it("format back to the same id", () => {
    const id = "alice:vllm-llama/meta-llama/Llama-3-8B";
    expect(formatModelId(parseModelId(id)!)).toBe(id);
  });
});
