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

  it("answers right whatever order times come in, across period boundaries (it remembers the last period)", () => {
    const reference = (period: "day" | "week" | "month", time: number): number => {
      const date = new Date(time);
      if (period === "month") return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
      const midnight = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
      return period === "day" ? midnight : midnight - ((date.getUTCDay() + 6) % 7) * 86_400_000;
    };
    const base = at("2026-01-01T00:00:00Z");
    let seed = 7;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    for (let index = 0; index < 5_000; index++) {
      // Mostly nearby times (the cache's case), sometimes a jump of up to three years either way.
      const time = index % 10 === 0 ? base + Math.floor((random() - 0.5) * 6 * 365 * 86_400_000) : base + Math.floor(random() * 40 * 86_400_000);
      for (const period of ["day", "week", "month"] as const) {
        expect(periodStart(period, time), `${period} of ${new Date(time).toISOString()}`).toBe(reference(period, time));
        expect(periodEnd(period, time)).toBeGreaterThan(time);
      }
    }
  });
});
