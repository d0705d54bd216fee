import { describe, expect, it } from "vitest";
import { seededRandom } from "../testing/seeded-random.js";
import { chatCompletionRequestSchema, isWellFormedChatRequest } from "./request-schemas.js";

/** Values a field might hold in a request: right, wrong, and at the edges. */
const fieldValues: Record<string, unknown[]> = {
  model: ["alice:lab/gpt-4o", "", 42, null, ["x"], undefined],
  messages: [
    [{ role: "user", content: "Hi" }],
    [{ role: "system", content: "Be brief." }, { role: "user", content: [{ type: "text", text: "Hi" }] }],
    [],
    [{ content: "no role" }],
    [{ role: 7 }],
    [null],
    [["user"]],
    "Hi",
    undefined,
  ],
  stream: [true, false, null, undefined, "true", 1],
  stream_options: [undefined, null, { include_usage: true }, { include_usage: false }, {}, { include_usage: "yes" }, [], "x"],
  max_tokens: [undefined, null, 1, 256, 10_000_000, 10_000_001, 0, -1, 1.5, "256", Number.NaN],
  max_completion_tokens: [undefined, null, 64, 0, 2.5],
  n: [undefined, null, 1, 128, 129, 0, 1.5],
  temperature: [undefined, 0.2, "hot"],
};

function generate(next: () => number): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [field, values] of Object.entries(fieldValues)) {
    const value = values[Math.floor(next() * values.length)];
    if (value !== undefined) body[field] = value;
  }
  return body;
}

describe("isWellFormedChatRequest", () => {
  it("accepts the bodies clients send", () => {
    const body = {
      model: "alice:lab/gpt-4o",
      messages: [{ role: "user", content: "Hello" }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 256,
      tools: [{ type: "function", function: { name: "f", parameters: {} } }],
    };
    expect(isWellFormedChatRequest(body)).toBe(true);
    expect(isWellFormedChatRequest({ model: "a:b/c", messages: [{ role: "user", content: "x" }] })).toBe(true);
  });

  it("never accepts a body the schema refuses, over 20,000 generated bodies", () => {
    const next = seededRandom(20261122);
    let accepted = 0;
    let refused = 0;
    for (let index = 0; index < 20_000; index++) {
      const body = generate(next);
      const schemaAccepts = chatCompletionRequestSchema.safeParse(body).success;
      const quickAccepts = isWellFormedChatRequest(body);
      if (quickAccepts && !schemaAccepts) expect.fail(`accepted a body the schema refuses: ${JSON.stringify(body)}`);
      if (quickAccepts) accepted++;
      if (!schemaAccepts) refused++;
    }
    // Both kinds were exercised, and the quick check is not a check that refuses everything.
    expect(accepted).toBeGreaterThan(10);
    expect(refused).toBeGreaterThan(10_000);
  });

  it("accepts every generated body the schema accepts: it refuses nothing good", () => {
    const next = seededRandom(7);
    for (let index = 0; index < 20_000; index++) {
      const body = generate(next);
      if (chatCompletionRequestSchema.safeParse(body).success) expect(isWellFormedChatRequest(body), JSON.stringify(body)).toBe(true);
    }
  });
});
