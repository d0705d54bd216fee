import { describe, expect, it } from "vitest";
import { renderConnectSnippets } from "./connect-snippets.js";

describe("renderConnectSnippets", () => {
  const snippets = renderConnectSnippets({ baseUrl: "https://ai.example.com/api/openai/v1", model: "alice:vllm/meta-llama/Llama-3-8B" });

  it("points every snippet at the base URL and the model", () => {
    for (const snippet of Object.values(snippets)) {
      expect(snippet).toContain("https://ai.example.com/api/openai/v1");
      expect(snippet).toContain("alice:vllm/meta-llama/Llama-3-8B");
    }
    expect(snippets.curl).toContain("https://ai.example.com/api/openai/v1/chat/completions");
  });

  it("reads the key from SLUICE_API_KEY and never holds one", () => {
    expect(snippets.python).toContain('os.environ["SLUICE_API_KEY"]');
    expect(snippets.node).toContain("process.env.SLUICE_API_KEY");
    expect(snippets.curl).toContain('"Authorization: Bearer $SLUICE_API_KEY"');
    expect(Object.values(snippets).join("\n")).not.toMatch(/sk-/);
  });

  it("quotes a model id that holds quotes safely for each language", () => {
    const odd = renderConnectSnippets({ baseUrl: "http://h/v1", model: `bob:p/it's "odd"` });
    expect(odd.python).toContain(`model="bob:p/it's \\"odd\\"",`);
    expect(odd.node).toContain(`model: "bob:p/it's \\"odd\\"",`);
    expect(odd.curl).toContain(`'\\''`);
  });
});
