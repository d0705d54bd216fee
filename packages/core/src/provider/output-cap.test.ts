import { describe, expect, it } from "vitest";
import { withOutputCap } from "./output-cap.js";

describe("withOutputCap", () => {
  const body = { model: "m", messages: [] };

  it("adds the cap in the field the adapter names, on a copy", () => {
    const capped = withOutputCap(body, 512, "max_completion_tokens");
    expect(capped).toEqual({ model: "m", messages: [], max_completion_tokens: 512 });
    expect(body).toEqual({ model: "m", messages: [] });
    expect(withOutputCap(body, 512, "max_tokens")).toMatchObject({ max_tokens: 512 });
  });

  it("leaves a body that names its own cap, in either field, and a call with no cap", () => {
    const own = { ...body, max_tokens: 10 };
    expect(withOutputCap(own, 512, "max_completion_tokens")).toBe(own);
    const ownCompletion = { ...body, max_completion_tokens: 10 };
    expect(withOutputCap(ownCompletion, 512, "max_tokens")).toBe(ownCompletion);
    expect(withOutputCap(body, undefined, "max_tokens")).toBe(body);
  });

  it("treats an explicit null as no cap", () => {
    expect(withOutputCap({ ...body, max_tokens: null }, 64, "max_tokens")).toMatchObject({ max_tokens: 64 });
  });
});
