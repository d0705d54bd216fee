import { describe, expect, it } from "vitest";
import { countImageParts, imageTokenAllowance, worstCaseCost } from "./worst-case-cost.js";

const price = { input: 1_000_000, output: 2_000_000 };

describe("worstCaseCost", () => {
  it("bounds the prompt by its bytes and the output by the cap, times the choices", () => {
    expect(worstCaseCost({ price, bodyBytes: 500, maxOutputTokens: 100, defaultMaxOutputTokens: 4_096, choices: 2 })).toBe(500 + 2 * 100 * 2);
    expect(worstCaseCost({ price, bodyBytes: 500, maxOutputTokens: null, defaultMaxOutputTokens: 4_096, choices: null })).toBe(500 + 4_096 * 2);
  });

  it("adds an allowance for each image, which a short URL does not bound", () => {
    const withImages = worstCaseCost({ price, bodyBytes: 500, maxOutputTokens: 10, defaultMaxOutputTokens: 0, choices: 1, imageParts: 2 });
    expect(withImages).toBe(500 + 2 * imageTokenAllowance + 10 * 2);
  });

  it("reserves nothing for a model without a price", () => {
    expect(worstCaseCost({ price: null, bodyBytes: 500, maxOutputTokens: 10, defaultMaxOutputTokens: 0, choices: 1, imageParts: 3 })).toBe(0);
  });
});

describe("countImageParts", () => {
  it("counts image_url and input_image parts in content arrays, and nothing in plain text", () => {
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image_url", image_url: { url: "https://x/a.png" } }] },
      { role: "user", content: [{ type: "input_image", image_url: "https://x/b.png" }, { type: "image_url", image_url: { url: "data:," } }] },
      { role: "assistant", content: null },
    ];
    expect(countImageParts(messages)).toBe(3);
    expect(countImageParts([{ role: "user", content: [null, 7, "text"] }])).toBe(0);
  });
});
