import { describe, expect, it } from "vitest";
import { reconnectDelay } from "./reconnect-backoff.js";

describe("reconnectDelay", () => {
  it("doubles per attempt up to the cap, with half of it random", () => {
    const low = (attempt: number) => reconnectDelay({ attempt, initialMs: 500, maxMs: 30_000, random: () => 0 });
    const high = (attempt: number) => reconnectDelay({ attempt, initialMs: 500, maxMs: 30_000, random: () => 1 });
    expect([1, 2, 3, 4].map(high)).toEqual([500, 1_000, 2_000, 4_000]);
    expect([1, 2, 3, 4].map(low)).toEqual([250, 500, 1_000, 2_000]);
    expect(high(20)).toBe(30_000);
    expect(low(20)).toBe(15_000);
  });

  it("spreads agents that retry together", () => {
    const delays = new Set(Array.from({ length: 50 }, () => reconnectDelay({ attempt: 3, initialMs: 500, maxMs: 30_000 })));
    expect(delays.size).toBeGreaterThan(10);
    for (const delay of delays) expect(delay).toBeGreaterThanOrEqual(1_000);
  });
});
