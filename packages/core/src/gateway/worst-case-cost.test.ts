import { describe, expect, it } from "vitest";
import { countInputParts, defaultFileTokenAllowance, imageTokenAllowance, worstCaseCost } from "./worst-case-cost.js";

const price = { input: 1_000_000, output: 2_000_000 };

describe("worstCaseCost", () => {
  it("bounds the prompt by its bytes and the output by the cap, times the choices", () => {
    expect(worstCaseCost({ price, bodyBytes: 500, maxOutputTokens: 100, defaultMaxOutputTokens: 4_096, choices: 2 })).toBe(500 + 2 * 100 * 2);
    expect(worstCaseCost({ price, bodyBytes: 500, maxOutputTokens: null, defaultMaxOutputTokens: 4_096, choices: null })).toBe(500 + 4_096 * 2);
  });

  it("adds an allowance for each image, which a short URL does not bound", () => {
    const withImages = worstCaseCost({ price, bodyBytes: 500, maxOutputTokens: 10, defaultMaxOutputTokens: 0, choices: 1, parts: { images: 2, files: 0 } });
    expect(withImages).toBe(500 + 2 * imageTokenAllowance + 10 * 2);
  });

  it("adds the file allowance for each file, whose id says nothing of its length", () => {
    const parts = { images: 1, files: 2 };
    expect(worstCaseCost({ price, bodyBytes: 500, maxOutputTokens: 10, defaultMaxOutputTokens: 0, choices: 1, parts })).toBe(
      500 + imageTokenAllowance + 2 * defaultFileTokenAllowance + 10 * 2,
    );
    expect(worstCaseCost({ price, bodyBytes: 500, maxOutputTokens: 10, defaultMaxOutputTokens: 0, choices: 1, parts, fileTokenAllowance: 1_000_000 })).toBe(
      500 + imageTokenAllowance + 2_000_000 + 10 * 2,
    );
    expect(worstCaseCost({ price, bodyBytes: 500, maxOutputTokens: 10, defaultMaxOutputTokens: 0, choices: 1, parts, fileTokenAllowance: 0 })).toBe(
      500 + imageTokenAllowance + 10 * 2,
    );
  });

  it("reserves nothing for a model without a price", () => {
    expect(worstCaseCost({ price: null, bodyBytes: 500, maxOutputTokens: 10, defaultMaxOutputTokens: 0, choices: 1, parts: { images: 3, files: 1 } })).toBe(0);
  });
});

describe("countInputParts", () => {
  it("counts image and file parts in content arrays, and nothing in plain text", () => {
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image_url", image_url: { url: "https://x/a.png" } }] },
      { role: "user", content: [{ type: "input_image", image_url: "https://x/b.png" }, { type: "image_url", image_url: { url: "data:," } }] },
      { role: "user", content: [{ type: "file", file: { file_id: "file-abc" } }, { type: "file", file: { filename: "a.pdf", file_data: "data:application/pdf;base64,JVBERi0=" } }] },
      { role: "assistant", content: null },
    ];
    expect(countInputParts(messages)).toEqual({ images: 3, files: 2 });
    expect(countInputParts([{ role: "user", content: [null, 7, "text"] }])).toEqual({ images: 0, files: 0 });
  });
});
