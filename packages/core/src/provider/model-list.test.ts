import { describe, expect, it } from "vitest";
import { expectGatewayErrorValue } from "../testing/expect-gateway-error.js";
import { parseModelList } from "./model-list.js";

describe("parseModelList", () => {
  it("keeps each usable model once, with what it says of itself", () => {
    const text = JSON.stringify({
      object: "list",
      data: [
        { id: "llama-3", object: "model", created: 1_700_000_000, owned_by: "vllm" },
        { id: "llama-3", created: 1 },
        { id: "qwen", created: -5, owned_by: "" },
        { id: "" },
        { created: 1 },
        "not a row",
      ],
    });
    expect(parseModelList(text, "The upstream's")).toEqual([{ id: "llama-3", created: 1_700_000_000, ownedBy: "vllm" }, { id: "qwen" }]);
  });

  it("reads a missing or null list as no models (Ollama with nothing pulled)", () => {
    expect(parseModelList("{}", "The upstream's")).toEqual([]);
    expect(parseModelList('{"data":null}', "The upstream's")).toEqual([]);
  });

  it("answers 502, naming whose list it was, for anything that is not a model list", () => {
    for (const text of ["<html>", "42", '{"data":{}}', '[{"id":"m"}]', '{"error":"Service temporarily unavailable"}']) {
      const error = (() => {
        try {
          parseModelList(text, "The model server's");
        } catch (caught) {
          return caught;
        }
        return null;
      })();
      expect(expectGatewayErrorValue(error, "upstream_error").message).toMatch(/^The model server's model list /);
    }
  });
});
