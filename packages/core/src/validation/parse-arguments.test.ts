import { describe, expect, it } from "vitest";
import { z } from "zod";
import { GatewayError } from "../errors/gateway-error.js";
import { principalIdSchema } from "../provider/provider-record.js";
import { acceptsUnchanged, parseField } from "./parse-arguments.js";

describe("parseField", () => {
  it("accepts a valid id the same way the first time and every time after", () => {
    expect(parseField(principalIdSchema, "alice", "userId", "argument")).toBe("alice");
    expect(parseField(principalIdSchema, "alice", "userId", "argument")).toBe("alice");
  });

  it("refuses an invalid value every time, naming the field, whatever it accepted before", () => {
    parseField(principalIdSchema, "alice", "userId", "argument");
    for (let round = 0; round < 2; round++) {
      const error = (() => {
        try {
          parseField(principalIdSchema, "al:ice", "userId", "argument");
        } catch (caught) {
          return caught;
        }
        return null;
      })();
      expect(GatewayError.is(error) && error.param).toBe("userId");
    }
    expect(() => parseField(principalIdSchema, 42, "userId", "argument")).toThrow(GatewayError);
  });

  it("returns what a transforming schema makes of the value every time, never the raw value", () => {
    const trimmed = z.string().trim().min(1);
    expect(parseField(trimmed, " bob ", "name", "argument")).toBe("bob");
    expect(parseField(trimmed, " bob ", "name", "argument")).toBe("bob");
  });

  it("keeps its memory per schema: a value one schema accepts is still checked by another", () => {
    const short = z.string().max(3);
    parseField(principalIdSchema, "abcdef", "userId", "argument");
    expect(() => parseField(short, "abcdef", "name", "argument")).toThrow(GatewayError);
  });

  it("still answers correctly after more distinct values than it remembers", () => {
    for (let index = 0; index < 10_000; index++) expect(parseField(principalIdSchema, `user-${index}`, "userId", "argument")).toBe(`user-${index}`);
    expect(() => parseField(principalIdSchema, "user 1", "userId", "argument")).toThrow(GatewayError);
  });
});

describe("acceptsUnchanged", () => {
  it("says whether the schema takes the string as it is, the same every time", () => {
    for (let round = 0; round < 2; round++) {
      expect(acceptsUnchanged(principalIdSchema, "alice")).toBe(true);
      expect(acceptsUnchanged(principalIdSchema, "al ice")).toBe(false);
      expect(acceptsUnchanged(z.string().trim(), " padded ")).toBe(false);
    }
  });
});
