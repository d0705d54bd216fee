import { describe, expect, it } from "vitest";
import { z } from "zod";
import { GatewayError } from "../errors/gateway-error.js";
import { microDollarsSchema } from "../money/micro-dollars.js";
import { parseInput } from "./parse-input.js";

describe("parseInput", () => {
  const schema = z.strictObject({ limit: microDollarsSchema, tags: z.array(z.string()).optional() });

  it("returns the parsed value", () => {
    expect(parseInput(schema, { limit: 5 })).toEqual({ limit: 5 });
  });

  it("throws a 400 naming the offending field", () => {
    const cases: Array<[unknown, string]> = [
      [{ limit: -1 }, "limit"],
      [{ limit: 1.5 }, "limit"],
      [{ limit: "5" }, "limit"],
      [{ limit: 1, tags: ["a", 2] }, "tags[1]"],
    ];
    for (const [value, param] of cases) {
      try {
        parseInput(schema, value, "allocation");
        expect.unreachable();
      } catch (error) {
        expect(GatewayError.is(error)).toBe(true);
        expect((error as GatewayError).status).toBe(400);
        expect((error as GatewayError).param).toBe(param);
        expect((error as GatewayError).message).toContain(`'${param}'`);
      }
    }
  });

  it("names an unknown field as the parameter at fault", () => {
    expect(() => parseInput(schema, { limit: 1, surprise: true })).toThrow(/surprise/);
    try {
      parseInput(z.strictObject({ nested: schema }), { nested: { limit: 1, surprise: true } });
    } catch (error) {
      expect((error as GatewayError).param).toBe("nested.surprise");
    }
  });
});
