import { describe, expect, it } from "vitest";
import { median, medianInterval, seededRandom, shareOfRunsBelow } from "./statistics.js";

describe("medianInterval", () => {
  it("holds the median, and comes out the same from the same values", () => {
    const values = [0.81, 0.95, 0.88, 0.86, 0.79, 0.92, 0.9, 0.84];
    const interval = medianInterval(values)!;
    expect(interval[0]).toBeLessThanOrEqual(median(values));
    expect(interval[1]).toBeGreaterThanOrEqual(median(values));
    expect(medianInterval(values)).toEqual(interval);
  });

  it("narrows as repetitions that agree accumulate", () => {
    const random = seededRandom(7);
    const draw = () => 0.9 + (random() - 0.5) * 0.2;
    const few = Array.from({ length: 8 }, draw);
    const many = [...few, ...Array.from({ length: 64 }, draw)];
    const width = (interval: [number, number] | null) => interval![1] - interval![0];
    expect(width(medianInterval(many))).toBeLessThan(width(medianInterval(few)) / 2);
  });

  it("gives no interval for fewer than two values", () => {
    expect(medianInterval([0.9])).toBeNull();
    expect(medianInterval([])).toBeNull();
  });
});

describe("shareOfRunsBelow", () => {
  it("is 0 or 1 when every value is on one side of the line", () => {
    expect(shareOfRunsBelow([0.9, 0.95, 1.0], 0.85, 8)).toBe(0);
    expect(shareOfRunsBelow([0.7, 0.75, 0.8], 0.85, 8)).toBe(1);
  });

  it("is near a half when the values straddle the line evenly", () => {
    const values = [0.8, 0.82, 0.84, 0.86, 0.88, 0.9];
    const share = shareOfRunsBelow(values, 0.85, 8);
    expect(share).toBeGreaterThan(0.35);
    expect(share).toBeLessThan(0.65);
  });
});

describe("seededRandom", () => {
  it("repeats for a seed and stays within [0, 1)", () => {
    const first = seededRandom(3);
    const second = seededRandom(3);
    for (let draw = 0; draw < 1_000; draw++) {
      const value = first();
      expect(value).toBe(second());
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThan(1);
    }
  });
});
