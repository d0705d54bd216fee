import { describe, expect, it } from "vitest";
import { periodEnd, periodStart, utcDay } from "./budget-period.js";

const at = (iso: string) => Date.parse(iso);

describe("budget periods", () => {
  it("starts days at UTC midnight", () => {
    expect(periodStart("day", at("2026-03-15T23:59:59.999Z"))).toBe(at("2026-03-15T00:00:00Z"));
    expect(periodEnd("day", at("2026-03-15T00:00:00Z"))).toBe(at("2026-03-16T00:00:00Z"));
  });

  it("starts weeks on Monday", () => {
    // 2026-03-15 is a Sunday; its week began on Monday the 9th.
    expect(periodStart("week", at("2026-03-15T12:00:00Z"))).toBe(at("2026-03-09T00:00:00Z"));
    expect(periodStart("week", at("2026-03-16T00:00:00Z"))).toBe(at("2026-03-16T00:00:00Z"));
    expect(periodEnd("week", at("2026-03-15T12:00:00Z"))).toBe(at("2026-03-16T00:00:00Z"));
  });

  it("starts months on the first, across year ends and leap days", () => {
    expect(periodStart("month", at("2028-02-29T10:00:00Z"))).toBe(at("2028-02-01T00:00:00Z"));
    expect(periodEnd("month", at("2028-02-29T10:00:00Z"))).toBe(at("2028-03-01T00:00:00Z"));
    expect(periodEnd("month", at("2026-12-31T23:00:00Z"))).toBe(at("2027-01-01T00:00:00Z"));
  });

  it("names usage days by their UTC date", () => {
    expect(utcDay(at("2026-03-15T23:59:59Z"))).toBe("2026-03-15");
  });
});
