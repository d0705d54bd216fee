import { z } from "zod";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import { parseInput } from "../validation/parse-input.js";
import { checkUsageRange, resolveUsageRange, usageRangeFields } from "./usage-range.js";

const DAY = 86_400_000;
const now = Date.UTC(2026, 0, 5, 12, 30);
const schema = z.strictObject(usageRangeFields).superRefine(checkUsageRange);

function paramOf(value: unknown): string | null {
  try {
    parseInput(schema, value, "usage query");
  } catch (error) {
    if (GatewayError.is(error)) return error.param;
    throw error;
  }
  throw new Error("expected a 400");
}

describe("usage ranges", () => {
  it("covers the last N UTC days, today included, from the clock", () => {
    expect(resolveUsageRange({ days: 7 }, now)).toEqual({ from: Date.UTC(2025, 11, 30), to: Date.UTC(2026, 0, 6) });
    expect(resolveUsageRange({ days: 1 }, now)).toEqual({ from: Date.UTC(2026, 0, 5), to: Date.UTC(2026, 0, 6) });
  });

  it("defaults to the last 30 days", () => {
    const range = resolveUsageRange({}, now);
    expect(range.to - range.from).toBe(30 * DAY);
  });

  it("takes an explicit range, `to` defaulting to now", () => {
    expect(resolveUsageRange({ from: 1_000, to: 5_000 }, now)).toEqual({ from: 1_000, to: 5_000 });
    expect(resolveUsageRange({ from: 1_000 }, now)).toEqual({ from: 1_000, to: now });
  });

  it("accepts epoch milliseconds, ISO dates and date-times", () => {
    expect(parseInput(schema, { from: "2026-01-01", to: "2026-01-02T12:00:00Z" }, "q")).toEqual({
      from: Date.UTC(2026, 0, 1),
      to: Date.UTC(2026, 0, 2, 12),
    });
    expect(parseInput(schema, { from: 0, to: 10 }, "q")).toEqual({ from: 0, to: 10 });
  });

  it("names the field at fault", () => {
    expect(paramOf({ days: 0 })).toBe("days");
    expect(paramOf({ days: 367 })).toBe("days");
    expect(paramOf({ days: 7, from: 0 })).toBe("days");
    expect(paramOf({ to: 10 })).toBe("from");
    expect(paramOf({ from: 10, to: 5 })).toBe("to");
    expect(paramOf({ from: 0, to: 367 * DAY })).toBe("to");
    expect(paramOf({ from: "yesterday" })).toBe("from");
    expect(paramOf({ week: 1 })).toBe("week");
  });
});
