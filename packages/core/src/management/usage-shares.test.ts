import { describe, expect, it } from "vitest";
import { usageShares } from "./usage-shares.js";

const percentSum = (values: number[]) => usageShares(values).reduce((sum, row) => sum + Math.round(row.sharePercent * 10), 0) / 10;

describe("usageShares", () => {
  it("gives each value its fraction of the total, unrounded", () => {
    expect(usageShares([300, 100]).map((row) => row.share)).toEqual([0.75, 0.25]);
  });

  it("rounds percentages to one decimal that add up to exactly 100", () => {
    expect(usageShares([1, 1, 1]).map((row) => row.sharePercent)).toEqual([33.4, 33.3, 33.3]);
    expect(percentSum([1, 1, 1])).toBe(100);
    expect(percentSum([5, 7, 11, 13, 17, 19, 23])).toBe(100);
    expect(percentSum([1_000_000, 1, 1])).toBe(100);
  });

  it("hands the rounding to the largest remainders, ties to the earlier row", () => {
    // 2/3 = 66.66… and 1/3 = 33.33…: the larger remainder (.66) gets the tenth.
    expect(usageShares([2, 1]).map((row) => row.sharePercent)).toEqual([66.7, 33.3]);
  });

  it("answers zero shares when there is nothing to share", () => {
    expect(usageShares([0, 0])).toEqual([
      { share: 0, sharePercent: 0 },
      { share: 0, sharePercent: 0 },
    ]);
    expect(usageShares([])).toEqual([]);
  });

  it("gives a zero row a zero share", () => {
    expect(usageShares([0, 10])).toEqual([
      { share: 0, sharePercent: 0 },
      { share: 1, sharePercent: 100 },
    ]);
  });
});
