import { describe, expect, it } from "vitest";
import { createEventBus } from "./sluice-events.js";
import type { BudgetRefuseEvent } from "./sluice-events.js";

const refusal: BudgetRefuseEvent = {
  requestId: "r1",
  userId: "alice",
  keyId: null,
  allocationId: "alc_1",
  reason: "allocation_exhausted",
  amount: 10,
  at: 0,
};

describe("SluiceEventBus", () => {
  it("delivers typed events to subscribers", () => {
    const bus = createEventBus();
    const seen: BudgetRefuseEvent[] = [];
    bus.on("budget-refuse", (event) => seen.push(event));
    bus.publish("budget-refuse", refusal);
    expect(seen).toEqual([refusal]);
  });

  it("keeps a throwing listener from failing the publisher, and reports it", () => {
    const bus = createEventBus();
    const reported: unknown[] = [];
    bus.on("budget-refuse", () => {
      throw new Error("listener bug");
    });
    bus.on("listener-error", ({ event, error }) => reported.push([event, (error as Error).message]));
    expect(() => bus.publish("budget-refuse", refusal)).not.toThrow();
    expect(reported).toEqual([["budget-refuse", "listener bug"]]);
  });

  it("survives a throwing listener-error listener too", () => {
    const bus = createEventBus();
    bus.on("budget-refuse", () => {
      throw new Error("first");
    });
    bus.on("listener-error", () => {
      throw new Error("second");
    });
    expect(() => bus.publish("budget-refuse", refusal)).not.toThrow();
  });
});
